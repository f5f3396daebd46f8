//! `zkl indexer --node URL --database postgres://…`: follows a node's blocks and the chains'
//! settlement into PostgreSQL and serves the explorer API until Ctrl-C or SIGTERM
//! (`zkl_indexer`, docs/indexer.md).

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::Failure;

pub fn run_indexer(node: String, database: String, listen: SocketAddr, poll_ms: u64) -> Result<ExitCode, Failure> {
    crate::node_cmd::init_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let config = zkl_indexer::IndexerConfig { node, database, listen, poll_ms };
        let indexer = zkl_indexer::start(config).await.map_err(|e| Failure::Failed(e.to_string()))?;
        // First line on stdout: where to reach the explorer API (scripts and tests read it).
        println!(
            "{}",
            serde_json::json!({
                "rpc": format!("http://{}", indexer.addr),
                "ws": format!("ws://{}", indexer.addr),
            })
        );
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| Failure::Failed(e.to_string()))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| Failure::Failed(e.to_string()))?,
            _ = term.recv() => {}
        }
        indexer.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
