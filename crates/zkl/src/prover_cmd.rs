//! `zkl prover --node URL --token T`: a prover worker; `zkl prover export-verifier`: the Solidity
//! verifier of the block circuit's key.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::Failure;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProverArgs {
    #[command(subcommand)]
    pub command: Option<ProverCommand>,
    /// The node's JSON-RPC URL (http://…)
    #[arg(long)]
    pub node: Option<String>,
    /// The worker's token (one of the node's `provers.tokens`); or ZKL_PROVER_TOKEN
    #[arg(long)]
    pub token: Option<String>,
    /// Name shown in the node's logs
    #[arg(long, default_value = "zkl-prover")]
    pub name: String,
}

#[derive(clap::Subcommand)]
pub enum ProverCommand {
    /// Print (or write) the Solidity Groth16 verifier of the block circuit for a capacity
    ExportVerifier {
        /// Block capacity in chunks
        #[arg(long)]
        capacity: usize,
        /// Contract name
        #[arg(long, default_value = "BlockVerifier")]
        name: String,
        /// Write to this file instead of stdout
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run_prover(args: ProverArgs) -> Result<ExitCode, Failure> {
    if let Some(ProverCommand::ExportVerifier { capacity, name, out }) = args.command {
        if capacity == 0 {
            return Err(Failure::Usage("--capacity must be positive".into()));
        }
        let keys = zkl_prover::load_keys(capacity, true).map_err(|e| Failure::Failed(e.to_string()))?;
        let sol = zkl_contracts::verifier::groth16_verifier_solidity(&keys.vk, &name)
            .map_err(|e| Failure::Failed(e.to_string()))?;
        match out {
            Some(path) => std::fs::write(&path, sol)
                .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", path.display())))?,
            None => print!("{sol}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let node = args.node.ok_or_else(|| Failure::Usage("--node is required (the node's http:// URL)".into()))?;
    let token = args
        .token
        .or_else(|| std::env::var("ZKL_PROVER_TOKEN").ok())
        .ok_or_else(|| Failure::Usage("--token (or ZKL_PROVER_TOKEN) is required".into()))?;
    crate::node_cmd::init_logs();
    crate::node_cmd::runtime()?.block_on(async {
        let (stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop.send(true);
        });
        let cfg = zkl_prover::worker::WorkerConfig {
            node,
            token,
            name: args.name,
            poll: Duration::from_millis(500),
            heartbeat: Duration::from_secs(5),
        };
        let prover = Arc::new(zkl_prover::CircuitProver { keys: Arc::new(zkl_prover::KeyRing::new(true)) });
        let report = zkl_prover::worker::run(cfg, prover, rx).await.map_err(|e| Failure::Failed(e.to_string()))?;
        eprintln!("proved blocks {:?}; refused {:?}", report.proven, report.refused);
        Ok(ExitCode::SUCCESS)
    })
}
