//! `zkl exodus …`: the recovery tool, a thin wrapper over `zkl-exodus`. It reads only the chains
//! (never the node), prints one JSON value on stdout and exits 2 with a one-line error on bad
//! input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use zkl_exodus::recover::RebuildOptions;
use zkl_exodus::{ChainsFile, ExodusError};

use crate::Failure;

#[derive(Args)]
pub struct ExodusArgs {
    /// The chains: a JSON object with a `chains` array of {l2_chain, rpc, zklink,
    /// data_availability} (the devnet writes DATA_DIR/devnet.json); required, before or after the
    /// subcommand
    #[arg(long, global = true)]
    pub chains: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ExodusCommand,
}

#[derive(Subcommand)]
pub enum ExodusCommand {
    /// Per chain: exodus mode and when claims open, block counters, the oldest request's deadline;
    /// with a key, what a claim would pay that key's accounts on each chain now
    Status {
        /// The owner whose claims to show (nothing is sent)
        #[arg(long, env = "ZKL_ETH_PRIVATE_KEY", hide_env_values = true)]
        eth_private_key: Option<String>,
    },
    /// The L1 full-exit request that starts the clock on a chain (works with the node down)
    RequestExit {
        /// The account's owner (pays the priority fee and gas)
        #[arg(long, env = "ZKL_ETH_PRIVATE_KEY", hide_env_values = true)]
        eth_private_key: String,
        /// The L2 chain id
        #[arg(long)]
        chain: u8,
        /// The L2 token id
        #[arg(long)]
        token: u16,
        /// The sub-account
        #[arg(long, default_value_t = 0)]
        sub: u8,
    },
    /// Switch every chain whose oldest priority request expired into exodus mode, then sync
    Activate {
        /// Pays the gas
        #[arg(long, env = "ZKL_ETH_PRIVATE_KEY", hide_env_values = true)]
        eth_private_key: String,
    },
    /// Bring every chain in exodus to the highest final block any chain knows (carry the oracle's
    /// attestation and the public block proofs, execute) before claims open
    Sync {
        /// Pays the gas
        #[arg(long, env = "ZKL_ETH_PRIVATE_KEY", hide_env_values = true)]
        eth_private_key: String,
    },
    /// Rebuild the state from the chains, then prove and claim every balance the key owns on
    /// every chain, refund its unexecuted deposits and withdraw its pending balances (needs every
    /// chain in exodus with claims open); a second run claims nothing new
    Claim {
        /// The owner's Ethereum key (claims pay the owner, who pays the gas)
        #[arg(long, env = "ZKL_ETH_PRIVATE_KEY", hide_env_values = true)]
        eth_private_key: String,
        /// Where the blocks fetched from L1 are kept, so a rerun fetches only new ones
        /// (`l1-blocks.redb`), and the report of the last run (`last-claim.json`)
        #[arg(long)]
        data_dir: PathBuf,
    },
}

fn failure(e: ExodusError) -> Failure {
    match e {
        ExodusError::ChainsFile { .. } | ExodusError::Key | ExodusError::DataDir(_) | ExodusError::Usage(_) => {
            Failure::Usage(e.to_string())
        }
        ExodusError::Rpc { .. } | ExodusError::Rebuild { .. } => Failure::Failed(e.to_string()),
    }
}

pub fn run_exodus(a: ExodusArgs) -> Result<ExitCode, Failure> {
    let chains = a.chains.ok_or_else(|| Failure::Usage("--chains FILE is required".into()))?;
    let file = ChainsFile::read(&chains).map_err(failure)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    let value = rt.block_on(async {
        match a.command {
            ExodusCommand::Claim { eth_private_key, data_dir } => {
                let key = zkl_exodus::signer(&eth_private_key)?;
                std::fs::create_dir_all(&data_dir)
                    .map_err(|e| ExodusError::DataDir(format!("{}: {e}", data_dir.display())))?;
                let keys = zkl_prover::load_exit_keys(true)
                    .map_err(|e| ExodusError::rebuild(0, e))?;
                let options = RebuildOptions { data_dir: Some(&data_dir), progress: true, ..Default::default() };
                let report = zkl_exodus::recover::claim(&file, &key, &keys, options).await?;
                let value = json!(report);
                let _ = std::fs::write(data_dir.join("last-claim.json"), format!("{value}\n"));
                Ok(value)
            }
            ExodusCommand::Status { eth_private_key } => {
                let chains = zkl_exodus::status(&file).await?;
                match eth_private_key {
                    None => Ok(json!({ "chains": chains })),
                    Some(k) => {
                        let key = zkl_exodus::signer(&k)?;
                        let pay = zkl_exodus::recover::would_pay(&file, key.address()).await?;
                        Ok(json!({ "chains": chains, "would_pay": pay }))
                    }
                }
            }
            ExodusCommand::RequestExit { eth_private_key, chain, token, sub } => {
                let key = zkl_exodus::signer(&eth_private_key)?;
                let (account, l1_token, tx) = zkl_exodus::recover::request_exit(&file, &key, chain, token, sub).await?;
                Ok(json!({ "chain": chain, "account": account, "sub": sub, "l2_token": token, "l1_token": l1_token, "tx": tx }))
            }
            ExodusCommand::Activate { eth_private_key } => {
                let key = zkl_exodus::signer(&eth_private_key)?;
                let activated = zkl_exodus::activate(&file, &key).await?;
                let synced = zkl_exodus::sync::sync(&file, &key).await?;
                Ok(json!({ "chains": activated, "sync": synced }))
            }
            ExodusCommand::Sync { eth_private_key } => {
                let key = zkl_exodus::signer(&eth_private_key)?;
                zkl_exodus::sync::sync(&file, &key).await.map(|s| json!({ "sync": s }))
            }
        }
    });
    println!("{}", value.map_err(failure)?);
    Ok(ExitCode::SUCCESS)
}
