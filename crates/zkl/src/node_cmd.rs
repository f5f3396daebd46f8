//! `zkl node --config FILE`: runs the sequencer node until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use crate::Failure;

/// Structured logs on stderr (JSON lines); RUST_LOG sets the filter, `info` by default.
///
/// arkworks' constraint gadgets are `#[instrument]`ed at INFO under the targets `gr1cs` and
/// `r1cs`, recording every argument with `Debug`: with those spans enabled, synthesising a block
/// circuit spends most of its time formatting (a C = 4 proof went from under a minute to over
/// five). They are always off.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_env_filter(log_filter()).try_init();
}

/// [`init_logs`] into a file instead of stderr.
pub fn init_logs_to(file: std::fs::File) {
    let writer = std::sync::Mutex::new(file);
    let _ = tracing_subscriber::fmt().json().with_writer(writer).with_env_filter(log_filter()).try_init();
}

fn log_filter() -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    for quiet in ["gr1cs=off", "r1cs=off"] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// The multi-threaded runtime every long-running command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))
}

/// A service's first stdout line: where to reach its JSON-RPC API (scripts and tests read it).
pub fn print_endpoints(addr: std::net::SocketAddr) {
    println!("{}", serde_json::json!({ "rpc": format!("http://{addr}"), "ws": format!("ws://{addr}") }));
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn terminated() -> Result<(), Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Failure::Failed(e.to_string()))?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(|e| Failure::Failed(e.to_string())),
        _ = term.recv() => Ok(()),
    }
}

pub fn run_node(config: PathBuf) -> Result<ExitCode, Failure> {
    let config = zkl_node::NodeConfig::load(&config).map_err(|e| Failure::Usage(e.to_string()))?;
    init_logs();
    runtime()?.block_on(async {
        let services = match &config.provers {
            // Prover workers are served: check their proofs with the block circuit's key (set up
            // now, with a progress display, the first time) and hand them replayed witnesses.
            Some(_) => {
                let keys = Arc::new(zkl_prover::KeyRing::new(true));
                keys.get(config.block_capacity).map_err(|e| Failure::Failed(e.to_string()))?;
                zkl_node::genesis(&config).map_err(|e| Failure::Usage(e.to_string()))?;
                zkl_node::Services {
                    proof_check: Some(Arc::new(zkl_prover::CircuitCheck { keys })),
                    job_payload: Some(Arc::new(zkl_prover::WitnessPayload)),
                    ..Default::default()
                }
            }
            None => zkl_node::Services::default(),
        };
        let node = zkl_l1::start_node(config, services, None).await.map_err(|e| Failure::Failed(e.to_string()))?;
        // First line on stdout: where to reach the node (scripts and tests read it).
        println!(
            "{}",
            serde_json::json!({
                "rpc": format!("http://{}", node.rpc_addr),
                "ws": format!("ws://{}", node.rpc_addr),
                "metrics": node.metrics_addr.map(|a| format!("http://{a}/metrics")),
            })
        );
        let outcome = tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| Failure::Failed(e.to_string())).map(|_| ExitCode::SUCCESS),
            reason = node.failure() => Err(Failure::Failed(reason)),
        };
        let _ = node.handle.stop();
        outcome
    })
}
