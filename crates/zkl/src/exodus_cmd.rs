//! `zkl exodus …`: the recovery tool, a thin wrapper over `zkl-exodus`. It reads only the chains
//! (never the node), prints one JSON value on stdout and exits 2 with a one-line error on bad
//! input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use zkl_exodus::{ChainsFile, ExodusError};

use crate::Failure;

#[derive(Args)]
pub struct ExodusArgs {
    /// The chains: a JSON object with a `chains` array of {l2_chain, rpc, zklink,
    /// data_availability} (the devnet writes DATA_DIR/devnet.json)
    #[arg(long)]
    pub chains: PathBuf,
    #[command(subcommand)]
    pub command: ExodusCommand,
}

#[derive(Subcommand)]
pub enum ExodusCommand {
    /// Per chain: exodus mode and when claims open, block counters, the oldest request's deadline
    Status,
    /// Switch every chain whose oldest priority request expired into exodus mode
    Activate {
        /// Pays the gas
        #[arg(long, env = "ZKL_ETH_PRIVATE_KEY", hide_env_values = true)]
        eth_private_key: String,
    },
}

fn failure(e: ExodusError) -> Failure {
    match e {
        ExodusError::ChainsFile { .. } | ExodusError::Key => Failure::Usage(e.to_string()),
        ExodusError::Rpc { .. } => Failure::Failed(e.to_string()),
    }
}

pub fn run_exodus(a: ExodusArgs) -> Result<ExitCode, Failure> {
    let file = ChainsFile::read(&a.chains).map_err(failure)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    let value = rt.block_on(async {
        match a.command {
            ExodusCommand::Status => zkl_exodus::status(&file).await.map(|s| json!({ "chains": s })),
            ExodusCommand::Activate { eth_private_key } => {
                let key = zkl_exodus::signer(&eth_private_key)?;
                zkl_exodus::activate(&file, &key).await.map(|s| json!({ "chains": s }))
            }
        }
    });
    println!("{}", value.map_err(failure)?);
    Ok(ExitCode::SUCCESS)
}
