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
pub mod metrics;
pub mod provers;
pub mod relayer;
pub mod replay;
pub mod rpc;
pub mod sequencer;
pub mod settlement;
pub mod storage;
pub mod watcher;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::{Server, ServerHandle};
use zkl_state::{BlockParams, State};

pub use config::NodeConfig;
use sequencer::{Policy, Sequencer, SequencerHandle};
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
    #[error("prover workers are configured but this node was started without a proof checker")]
    NoProofCheck,
}

/// Components injected by whoever starts the node (the node does not depend on the circuit).
#[derive(Default, Clone)]
pub struct Services {
    /// Checks proofs submitted by workers; required when `provers` is configured.
    pub proof_check: Option<Arc<dyn provers::ProofCheck>>,
    /// Extra data handed to workers with each job (the block's witness).
    pub job_payload: Option<Arc<dyn provers::JobPayload>>,
}

/// A running node.
pub struct Node {
    pub rpc_addr: SocketAddr,
    /// Where `GET /metrics` is served, when configured.
    pub metrics_addr: Option<SocketAddr>,
    pub handle: ServerHandle,
    pub sequencer: SequencerHandle,
    /// The Layer-1 watchers and committers, if the configuration has an `l1` section.
    pub l1: Option<l1::L1Tasks>,
    pub storage: Arc<Storage>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    /// Set once if the sequencer stopped on a failure (see [`Node::failure`]).
    fatal: tokio::sync::watch::Receiver<Option<String>>,
}

impl Node {
    /// Resolves with the reason if the node can no longer work (its log cannot be written);
    /// the process running it should then stop with an error. Pending otherwise.
    pub async fn failure(&self) -> String {
        let mut rx = self.fatal.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(task) = &self.metrics_task {
            task.abort();
        }
    }
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
/// Layer-1 tasks if the configuration has an `l1` section (see [`start_with`] for where their
/// proofs come from).
pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
    start_with(config, Services::default()).await
}

/// [`start_with`] with only the proof source of the Layer-1 committers.
pub async fn start_with_proofs(
    config: NodeConfig,
    proofs: Option<Arc<dyn committer::ProofSource>>,
) -> Result<Node, NodeError> {
    start_inner(config, Services::default(), proofs).await
}

/// [`start`] with injected components. The Layer-1 committers settle with the proofs of the
/// `zkl prover` workers if `provers` is configured, otherwise with the contracts' test circuit
/// (which only `TestVerifier` deployments accept).
pub async fn start_with(config: NodeConfig, services: Services) -> Result<Node, NodeError> {
    start_inner(config, services, None).await
}

/// Starts the node. With an `l1` section and no proof source given, the committers settle with
/// the proofs of the `zkl prover` workers if `provers` is configured, otherwise with the
/// contracts' test circuit (which only `TestVerifier` deployments accept).
async fn start_inner(
    config: NodeConfig,
    services: Services,
    proofs: Option<Arc<dyn committer::ProofSource>>,
) -> Result<Node, NodeError> {
    let storage = Arc::new(Storage::open(&config.data_dir)?);
    let proofs: Option<Arc<dyn committer::ProofSource>> = match (&config.l1, &config.provers, proofs) {
        (Some(_), Some(_), None) => Some(Arc::new(committer::QueueProofSource { storage: storage.clone() })),
        (Some(_), None, None) => {
            tracing::warn!(
                "l1: no provers configured, proofs come from the test circuit (TestVerifier deployments only)"
            );
            Some(Arc::new(committer::TestCircuitProofSource::new()?))
        }
        (_, _, given) => given,
    };
    let mut seq = Sequencer::recover(genesis(&config)?, storage.clone(), Duration::from_millis(config.block_time_ms))?;
    seq.policy = Policy {
        fees: config.fees.clone(),
        max_queued_per_account: config.max_queued_per_account,
        ..Policy::default()
    };
    let metrics = seq.metrics.clone();
    let provers = match &config.provers {
        Some(pc) => {
            let check = services.proof_check.clone().ok_or(NodeError::NoProofCheck)?;
            let last = seq.state.read().unwrap_or_else(|p| p.into_inner()).last_block();
            // Subscribe before reading the stored blocks so no sealed block is missed.
            let mut events = seq.events.subscribe();
            let queue = Arc::new(provers::ProverQueue::new(
                pc.clone(),
                storage.clone(),
                check,
                services.job_payload.clone(),
                genesis(&config)?,
                last,
            )?);
            let q = queue.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(sequencer::Event::Block(b)) => q.add(b.number),
                        Ok(sequencer::Event::Rewind(from)) => {
                            if let Err(err) = q.rewind(from) {
                                tracing::error!(%err, "prover queue rewind failed");
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            // Missed notifications: every stored block without a proof is a job.
                            if let Err(err) = q.rescan() {
                                tracing::error!(%err, "prover queue rescan failed");
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
            Some(queue)
        }
        None => None,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = SequencerHandle { tx };
    let (state, events, policy) = (seq.state.clone(), seq.events.clone(), seq.policy.clone());
    let (fatal_tx, fatal) = tokio::sync::watch::channel(None);
    std::thread::Builder::new()
        .name("sequencer".into())
        .spawn(move || {
            if let Err(e) = seq.run(rx) {
                tracing::error!(%e, "the sequencer cannot write its log; it stopped");
                let _ = fatal_tx.send(Some(format!("the sequencer stopped: {e}")));
            }
        })
        .map_err(|e| NodeError::Rpc(e.to_string()))?;
    let l1 = match (&config.l1, proofs) {
        (Some(_), Some(proofs)) => l1::start(&config, storage.clone(), handle.clone(), proofs).await?,
        (Some(_), None) => return Err(l1::L1Error::Config("the l1 section needs a proof source".into()).into()),
        (None, _) => None,
    };
    let ctx = rpc::Ctx {
        config: config.clone(),
        state,
        storage: storage.clone(),
        sequencer: handle.clone(),
        events,
        policy,
        provers,
        l1_clients: l1.as_ref().map(|t| t.clients.clone()).unwrap_or_default(),
    };
    let module = rpc::module(ctx).map_err(|e| NodeError::Rpc(e.to_string()))?;
    let server = Server::builder().build(config.rpc_addr).await.map_err(|e| NodeError::Rpc(e.to_string()))?;
    let rpc_addr = server.local_addr().map_err(|e| NodeError::Rpc(e.to_string()))?;
    let handle_rpc = server.start(module);
    let (metrics_addr, metrics_task) = match config.metrics_addr {
        Some(addr) => {
            let (addr, task) = metrics::serve(addr, metrics)
                .await
                .map_err(|e| NodeError::Rpc(format!("cannot serve metrics on {addr}: {e}")))?;
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    tracing::info!(%rpc_addr, ?metrics_addr, "node started");
    Ok(Node { rpc_addr, metrics_addr, handle: handle_rpc, sequencer: handle, metrics_task, l1, storage, fatal })
}
