//! The zkLink-rs node (sequencer): a durable tx log in redb, one sequencer thread that executes
//! and seals blocks, and a JSON-RPC API over HTTP and WebSocket.
//!
//! Guarantee: once `zkl_sendTx` has returned a hash, the tx is in the log on disk; after a crash
//! the node replays the log and reaches the same state.

pub mod bench;
pub mod committer;
pub mod config;
pub mod devnet;
pub mod l1;
pub mod relayer;
pub mod rpc;
pub mod sequencer;
pub mod storage;
pub mod watcher;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::{Server, ServerHandle};
use zkl_state::{BlockParams, State};

pub use config::NodeConfig;
use sequencer::{Sequencer, SequencerHandle};
use storage::Storage;

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot serve JSON-RPC: {0}")]
    Rpc(String),
    #[error(transparent)]
    L1(#[from] l1::L1Error),
}

/// A running node.
pub struct Node {
    pub rpc_addr: SocketAddr,
    pub handle: ServerHandle,
    pub sequencer: SequencerHandle,
    /// The Layer-1 watchers and committers, if the configuration has an `l1` section.
    pub l1: Option<l1::L1Tasks>,
    pub storage: Arc<Storage>,
}

/// The genesis state a configuration describes.
pub fn genesis(config: &NodeConfig) -> Result<State, NodeError> {
    let mut state = State::new(config.registry()?, config.fee_owner);
    state.set_block_params(BlockParams::for_capacity(config.block_capacity));
    for m in &config.matchers {
        state.set_matcher(*m, true);
    }
    Ok(state)
}

/// Opens the database, replays the log, starts the sequencer and the JSON-RPC server, and the
/// Layer-1 tasks if the configuration has an `l1` section (with proofs of the contracts' test
/// circuit, which only `TestVerifier` deployments accept, until the block circuit exists).
pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
    let proofs: Option<Arc<dyn committer::ProofSource>> = match config.l1 {
        Some(_) => {
            tracing::warn!("l1: proofs come from the test circuit (TestVerifier deployments only)");
            Some(Arc::new(committer::TestCircuitProofSource::new()?))
        }
        None => None,
    };
    start_with_proofs(config, proofs).await
}

/// As [`start`], with the proof source of the Layer-1 committers.
pub async fn start_with_proofs(
    config: NodeConfig,
    proofs: Option<Arc<dyn committer::ProofSource>>,
) -> Result<Node, NodeError> {
    let storage = Arc::new(Storage::open(&config.data_dir)?);
    let seq = Sequencer::recover(genesis(&config)?, storage.clone(), Duration::from_millis(config.block_time_ms))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = SequencerHandle { tx };
    let ctx = rpc::Ctx {
        config: config.clone(),
        state: seq.state.clone(),
        storage: storage.clone(),
        sequencer: handle.clone(),
        events: seq.events.clone(),
    };
    std::thread::Builder::new()
        .name("sequencer".into())
        .spawn(move || seq.run(rx))
        .map_err(|e| NodeError::Rpc(e.to_string()))?;
    let module = rpc::module(ctx).map_err(|e| NodeError::Rpc(e.to_string()))?;
    let server = Server::builder().build(config.rpc_addr).await.map_err(|e| NodeError::Rpc(e.to_string()))?;
    let rpc_addr = server.local_addr().map_err(|e| NodeError::Rpc(e.to_string()))?;
    let l1 = match (&config.l1, proofs) {
        (Some(_), Some(proofs)) => l1::start(&config, storage.clone(), handle.clone(), proofs).await?,
        (Some(_), None) => return Err(l1::L1Error::Config("the l1 section needs a proof source".into()).into()),
        (None, _) => None,
    };
    let handle_rpc = server.start(module);
    tracing::info!(%rpc_addr, "node started");
    Ok(Node { rpc_addr, handle: handle_rpc, sequencer: handle, l1, storage })
}
