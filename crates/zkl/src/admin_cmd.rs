//! `zkl admin …`: the node's operator methods, a thin wrapper over `zkl_wallet::Admin`.

use serde_json::json;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::Failure;

#[derive(Args)]
pub struct AdminArgs {
    /// Node JSON-RPC URL
    #[arg(long, default_value = "http://127.0.0.1:3030")]
    pub node: String,
    /// An admin token of the node (`admin.tokens` in its configuration)
    #[arg(long, env = "ZKL_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Settlement per chain: counters, the committer's last error, a halt and what was refused
    Status,
    /// Seal the block being built now
    Seal,
    /// After a halt: revert the refused block (and later ones) on every chain, drop the refused
    /// op, and re-sequence every other tx and priority request of the reverted blocks
    RevertBlocks {
        /// First block to revert (default: the halted block)
        #[arg(long)]
        from_block: Option<u32>,
        /// Hashes of txs or priority requests to leave out (default: the refused op); repeatable
        #[arg(long)]
        drop: Vec<String>,
    },
}

pub fn run_admin(a: AdminArgs) -> Result<ExitCode, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    let admin = zkl_wallet::Admin::new(&a.node, &a.token).map_err(|e| Failure::Usage(e.to_string()))?;
    let result = rt.block_on(async {
        match a.command {
            AdminCommand::Status => admin.l1_status().await.map(|v| json!(v)),
            AdminCommand::Seal => admin.seal().await.map(|v| json!(v)),
            AdminCommand::RevertBlocks { from_block, drop } => {
                admin.revert_blocks(from_block, (!drop.is_empty()).then_some(drop)).await.map(|v| json!(v))
            }
        }
    });
    let value = result.map_err(|e| Failure::Failed(e.to_string()))?;
    println!("{value}");
    Ok(ExitCode::SUCCESS)
}
