//! The indexer (`zkl indexer`, docs/indexer.md): follows a node's sealed blocks and the chains'
//! settlement counters into PostgreSQL, and serves the explorer API (`zkl_rpc_api::explorer`)
//! from there. It uses the node only through its public API, and it can be stopped (or killed)
//! and restarted at any time: every block is written in one transaction, and it resumes after
//! the last block written. When the node's chain of blocks no longer matches what was indexed
//! (the operator reverted blocks after a halt), it forgets the blocks that differ and indexes
//! the node's.

pub mod api;
pub mod db;
mod follow;
pub mod local_pg;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What the indexer follows, where it writes and where it serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IndexerConfig {
    /// The node's JSON-RPC endpoint.
    pub node: String,
    /// `postgres://user:password@host:port/database`.
    pub database: String,
    /// The explorer API's address.
    pub listen: SocketAddr,
    /// How long to wait between two looks at the node once caught up (ms).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

fn default_poll_ms() -> u64 {
    200
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexerError {
    #[error("database: {0}")]
    Database(String),
    #[error("node: {0}")]
    Node(String),
    #[error("cannot serve the explorer API: {0}")]
    Listen(String),
}

impl IndexerError {
    fn db(e: tokio_postgres::Error) -> Self {
        // The server's own message when there is one ("relation … does not exist"), not only
        // "db error".
        match e.as_db_error() {
            Some(d) => IndexerError::Database(d.message().to_string()),
            None => IndexerError::Database(e.to_string()),
        }
    }

    fn node(e: jsonrpsee::core::client::Error) -> Self {
        IndexerError::Node(e.to_string())
    }
}

/// A running indexer.
pub struct Indexer {
    /// Where the explorer API listens.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    follower: tokio::task::JoinHandle<()>,
    server: jsonrpsee::server::ServerHandle,
}

impl Indexer {
    /// Stops following and serving; a block being written is either committed or rolled back.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.follower.await;
        let _ = self.server.stop();
        self.server.stopped().await;
    }
}

/// Connects to the database (applying its migrations) and the node, then follows the node in
/// the background and serves the explorer API. Fails if the database cannot be reached.
pub async fn start(config: IndexerConfig) -> Result<Indexer, IndexerError> {
    let writer = db::connect(&config.database).await?;
    let node = jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .build(&config.node)
        .map_err(IndexerError::node)?;
    let (stop, stopped) = watch::channel(false);
    let (addr, server) = api::serve(config.listen, api::Api::new(config.database.clone())).await?;
    let follower = tokio::spawn(follow::run(config, writer, node, stopped));
    Ok(Indexer { addr, stop, follower, server })
}
