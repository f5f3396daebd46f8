//! Layer 1: for every settlement chain of the node's `l1` section, a [`watcher`] that feeds the
//! chain's priority requests (deposits, full exits) and authorisation facts to the sequencer, a
//! [`settler`] that commits, proves and executes every sealed block on the chain (reverting what
//! the operator rewound), and the oracle [`relayer`] that carries each chain's sync hashes to the
//! others. It reaches the node only through `zkl_node::settlement`: the configuration, the
//! storage (sealed blocks, proofs, the `L1` table) and the sequencer handle.

pub mod client;
pub mod proofs;
pub mod relayer;
pub mod settler;
pub mod watcher;

use std::collections::HashMap;
use std::sync::Arc;

use alloy::primitives::B256;
use alloy::providers::{Provider, ProviderBuilder};
use jsonrpsee::core::async_trait;
use zkl_node::sequencer::SequencerHandle;
use zkl_node::settlement::{SettlementContext, SettlementError, SettlementLayer, SettlementStarter};
use zkl_node::storage::Storage;
use zkl_node::{Node, NodeConfig, NodeError, Services};
use zkl_types::ChainId;

pub use client::{ChainClient, L1Error, parse_address};
use proofs::{ProofSource, QueueProofSource, TestCircuitProofSource};
use relayer::{OracleSigner, Relayer, Source};
use settler::Settler;
use watcher::Watcher;

impl From<L1Error> for SettlementError {
    fn from(e: L1Error) -> Self {
        SettlementError(Box::new(e))
    }
}

/// Starts the settlement layer of a node: with the given proof source, or else the proofs of the
/// `zkl prover` workers if `provers` is configured, or else the contracts' test circuit (which
/// only `TestVerifier` deployments accept).
#[derive(Default, Clone)]
pub struct Starter {
    pub proofs: Option<Arc<dyn ProofSource>>,
}

#[async_trait]
impl SettlementStarter for Starter {
    async fn start(&self, ctx: SettlementContext) -> Result<Arc<dyn SettlementLayer>, SettlementError> {
        let proofs: Arc<dyn ProofSource> = match (&self.proofs, &ctx.config.provers) {
            (Some(given), _) => given.clone(),
            (None, Some(_)) => Arc::new(QueueProofSource { storage: ctx.storage.clone() }),
            (None, None) => {
                tracing::warn!(
                    "l1: no provers configured, proofs come from the test circuit (TestVerifier deployments only)"
                );
                Arc::new(TestCircuitProofSource::new().map_err(L1Error::from)?)
            }
        };
        let tasks = start(&ctx.config, ctx.storage, ctx.sequencer, proofs).await?;
        let tasks = tasks.ok_or_else(|| L1Error::Config("the configuration has no l1 section".into()))?;
        Ok(Arc::new(tasks))
    }
}

/// Starts the node and, if the configuration has an `l1` section, its settlement layer
/// ([`Starter`] with `proofs`).
pub async fn start_node(
    config: NodeConfig,
    mut services: Services,
    proofs: Option<Arc<dyn ProofSource>>,
) -> Result<Node, NodeError> {
    if config.l1.is_some() && services.settlement.is_none() {
        services.settlement = Some(Arc::new(Starter { proofs }));
    }
    zkl_node::start_with(config, services).await
}

/// The running Layer-1 tasks; dropping it does not stop them, [`L1Tasks::stop`] does.
pub struct L1Tasks {
    /// A connection to every chain's contract.
    pub clients: Vec<ChainClient>,
    stop: tokio::sync::watch::Sender<bool>,
    handles: tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl SettlementLayer for L1Tasks {
    fn chains(&self) -> Vec<ChainId> {
        self.clients.iter().map(ChainClient::chain).collect()
    }

    async fn irreversible(&self, chain: ChainId) -> Result<u32, SettlementError> {
        let client = self
            .clients
            .iter()
            .find(|c| c.chain() == chain)
            .ok_or_else(|| L1Error::Config(format!("no settlement chain {chain}")))?;
        let z = &client.zklink;
        let counters = z.blockCounters().call().await.map_err(|e| client.rpc(e))?;
        let fin = z.exodusStatus().call().await.map_err(|e| client.rpc(e))?.totalBlocksFinal;
        let mut last = counters.executed.max(fin);
        if self.clients.len() > 1 && counters.committed > last {
            // The committed blocks' sync hashes, from the newest commit of each block number.
            let logs = z.BlockCommit_filter().from_block(client.config.start_block).query().await;
            let mut sync_hash = HashMap::new();
            for (ev, _) in logs.map_err(|e| client.rpc(e))? {
                sync_hash.insert(ev.blockNumber, ev.syncHash);
            }
            for n in last + 1..=counters.committed {
                let Some(&h) = sync_hash.get(&n) else { continue };
                let mut synced = true;
                for other in self.clients.iter().map(ChainClient::chain).filter(|c| *c != chain) {
                    synced &= z.isSyncHashReceived(other, h).call().await.map_err(|e| client.rpc(e))?;
                }
                if synced {
                    last = n;
                }
            }
        }
        Ok(last)
    }

    async fn stop(&self) {
        let _ = self.stop.send(true);
        for h in self.handles.lock().await.drain(..) {
            let _ = h.await;
        }
    }
}

/// Starts a watcher and a settler for every chain of `config.l1`, with in-process oracle
/// signers (each with its own key and its own reads of the source chains).
pub async fn start(
    config: &NodeConfig,
    storage: Arc<Storage>,
    sequencer: SequencerHandle,
    proofs: Arc<dyn ProofSource>,
) -> Result<Option<L1Tasks>, L1Error> {
    let Some(l1) = &config.l1 else { return Ok(None) };
    if config.dev_priority_ops {
        return Err(L1Error::Config("dev_priority_ops cannot be combined with an l1 section".into()));
    }
    l1.validate(&config.chains).map_err(|e| L1Error::Config(e.to_string()))?;
    let registry = config.registry().map_err(|e| L1Error::Config(e.to_string()))?;
    let mut clients = Vec::new();
    let chain_count = u8::try_from(l1.chains.len()).map_err(|_| L1Error::Config("too many chains".into()))?;
    let da_chain = l1.chains.iter().find(|c| c.data_availability).map(|c| c.l2_chain).unwrap_or(0);
    let mut capacities = config.block_capacities.clone();
    capacities.push(config.block_capacity);
    for c in &l1.chains {
        let client = ChainClient::connect(c).await?;
        client.check_contract(chain_count, da_chain, &registry, &capacities).await?;
        clients.push(client);
    }
    // Each signer reads the source chains through its own connections.
    let mut signers = Vec::new();
    for key in &l1.oracle.signer_keys {
        let mut sources = HashMap::new();
        for c in &clients {
            let url = c.config.rpc_url.parse().map_err(|e| L1Error::Config(format!("rpc_url: {e}")))?;
            sources.insert(
                c.chain(),
                Source {
                    provider: ProviderBuilder::new().connect_http(url).erased(),
                    contract: *c.zklink.address(),
                    confirmations: c.config.confirmations,
                    start_block: c.config.start_block,
                },
            );
        }
        signers.push(OracleSigner::new(key, sources)?);
    }
    let relayer = Arc::new(Relayer::new(signers, l1.oracle.threshold)?);
    let genesis_root = B256::from(zkl_node::genesis_root(config).map_err(|e| L1Error::Config(e.to_string()))?);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for c in &clients {
        let watcher = Watcher::new(c.clone(), storage.clone(), sequencer.clone(), registry.clone());
        handles.push(tokio::spawn(watcher.run(rx.clone())));
        let others: Vec<ChainId> = clients.iter().map(|o| o.chain()).filter(|o| *o != c.chain()).collect();
        let settler = Settler::new(
            c.clone(),
            storage.clone(),
            proofs.clone(),
            relayer.clone(),
            sequencer.clone(),
            others,
            genesis_root,
        );
        handles.push(tokio::spawn(settler.run(rx.clone())));
    }
    Ok(Some(L1Tasks { clients, stop, handles: tokio::sync::Mutex::new(handles) }))
}
