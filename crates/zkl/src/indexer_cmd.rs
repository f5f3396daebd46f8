//! `zkl indexer --node URL --database postgres://…`: follows a node's blocks and the chains'
//! settlement into PostgreSQL and serves the explorer API until Ctrl-C or SIGTERM
//! (`zkl_indexer`, docs/indexer.md).

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::Failure;

pub fn run_indexer(node: String, database: String, listen: SocketAddr, poll_ms: u64) -> Result<ExitCode, Failure> {
    crate::node_cmd::init_logs();
    crate::node_cmd::runtime()?.block_on(async {
        let config = zkl_indexer::IndexerConfig { node, database, listen, poll_ms };
        let indexer = zkl_indexer::start(config).await.map_err(|e| Failure::Failed(e.to_string()))?;
        crate::node_cmd::print_endpoints(indexer.addr);
        let outcome = crate::node_cmd::terminated().await;
        indexer.stop().await;
        outcome.map(|_| ExitCode::SUCCESS)
    })
}
