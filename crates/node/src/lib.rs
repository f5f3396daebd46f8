//! The zkLink-rs node (sequencer): a durable tx log in redb, one sequencer thread that executes
//! and seals blocks, and a JSON-RPC API over HTTP and WebSocket.
//!
//! Guarantee: once `zkl_sendTx` has returned a hash, the tx is in the log on disk; after a crash
//! the node replays the log and reaches the same state.

pub mod config;
pub mod metrics;
pub mod provers;
pub mod replay;
pub mod rpc;
pub mod sequencer;
pub mod settlement;
pub mod storage;

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
    #[error("settlement: {0}")]
    Settlement(#[from] settlement::SettlementError),
    #[error("the configuration has an l1 section but this node was started without a settlement layer")]
    NoSettlement,
    #[error("the settlement layer serves chains {served:?}, the configuration has {configured:?}")]
    SettlementChains { configured: Vec<zkl_types::ChainId>, served: Vec<zkl_types::ChainId> },
    #[error("prover workers are configured but this node was started without a proof checker")]
    NoProofCheck,
}

/// Components injected by whoever starts the node (the node depends neither on the circuit nor on
/// the Layer-1 crate).
#[derive(Default, Clone)]
pub struct Services {
    /// Starts the watchers and settlers of the `l1` section (`zkl_l1::Starter`); required when
    /// the configuration has one.
    pub settlement: Option<Arc<dyn settlement::SettlementStarter>>,
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
    /// The settlement layer (Layer-1 watchers and settlers), if the configuration has an `l1`
    /// section.
    pub l1: Option<Arc<dyn settlement::SettlementLayer>>,
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

/// The genesis root the contracts must be deployed with (big-endian).
pub fn genesis_root(config: &NodeConfig) -> Result<[u8; 32], NodeError> {
    Ok(zkl_crypto::field::fr_to_be_bytes(&genesis(config)?.root()))
}

/// Opens the database, replays the log, starts the sequencer and the JSON-RPC server. A
/// configuration with an `l1` section needs [`start_with`] and a settlement layer.
pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
    start_with(config, Services::default()).await
}

/// [`start`] with injected components: the settlement layer, and the proof checker and job
/// payload of the prover queue when `provers` is configured.
pub async fn start_with(config: NodeConfig, services: Services) -> Result<Node, NodeError> {
    if config.l1.is_some() && services.settlement.is_none() {
        return Err(NodeError::NoSettlement);
    }
    let storage = Arc::new(Storage::open(&config.data_dir)?);
    let mut seq = Sequencer::recover(genesis(&config)?, storage.clone(), Duration::from_millis(config.block_time_ms))?;
    seq.capacities = config.block_capacities.clone();
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
    let l1 = match (&config.l1, &services.settlement) {
        (Some(l1), Some(starter)) => {
            let ctx = settlement::SettlementContext {
                config: config.clone(),
                storage: storage.clone(),
                sequencer: handle.clone(),
            };
            let layer = starter.start(ctx).await?;
            // The revert path plans one revert per configured chain: the layer must serve
            // exactly those.
            let mut configured: Vec<_> = l1.chains.iter().map(|c| c.l2_chain).collect();
            let mut served = layer.chains();
            configured.sort_unstable();
            served.sort_unstable();
            if served != configured {
                layer.stop().await;
                return Err(NodeError::SettlementChains { configured, served });
            }
            Some(layer)
        }
        _ => None,
    };
    let ctx = rpc::Ctx {
        config: config.clone(),
        state,
        storage: storage.clone(),
        sequencer: handle.clone(),
        events,
        policy,
        provers,
        settlement: l1.clone(),
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
