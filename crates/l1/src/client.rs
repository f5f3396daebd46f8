//! What the Layer-1 components share: their error, a connection to one chain's `ZkLink`
//! contract, and their polling sleep.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use zkl_contracts::bindings::ZkLink::{self, ZkLinkInstance};
use zkl_contracts::block::signer;
use zkl_types::{ChainId, TokenRegistry};

use zkl_node::config::L1ChainConfig;
use zkl_node::sequencer::SequencerError;
use zkl_node::settlement::Halt;
use zkl_node::storage::StorageError;

/// Why a Layer-1 component could not make progress.
#[derive(Debug, thiserror::Error)]
pub enum L1Error {
    #[error("invalid l1 configuration: {0}")]
    Config(String),
    #[error("chain {chain}: RPC error: {msg}")]
    Rpc { chain: ChainId, msg: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("sequencer: {0}")]
    Sequencer(#[from] SequencerError),
    #[error("sequencer: priority request {serial}: {source}")]
    Priority { serial: u64, source: SequencerError },
    #[error("chain {chain}: {msg}")]
    Inconsistent { chain: ChainId, msg: String },
    #[error("chain {chain} refuses {action}: {error}")]
    Refused { chain: ChainId, action: String, error: String },
    #[error("{0}")]
    Halted(Box<Halt>),
    #[error("proof source: {0}")]
    Proof(#[from] crate::proofs::ProofError),
}

/// `0x` + 40 hex digits.
pub fn parse_address(text: &str) -> Result<Address, L1Error> {
    text.parse().map_err(|_| L1Error::Config(format!("{text:?} is not an address")))
}

/// One chain's contract, through a provider that signs with the committer key.
#[derive(Clone)]
pub struct ChainClient {
    pub config: L1ChainConfig,
    pub provider: DynProvider,
    pub zklink: ZkLinkInstance<DynProvider>,
    /// The committer's address.
    pub sender: Address,
    /// The committer's key (txs are signed locally so their hash is recorded before sending).
    pub wallet: EthereumWallet,
}

impl ChainClient {
    /// Connects and checks that the endpoint serves the configured EVM chain id.
    pub async fn connect(config: &L1ChainConfig) -> Result<Self, L1Error> {
        let chain = config.l2_chain;
        let key = signer(&config.committer_key)
            .map_err(|_| L1Error::Config(format!("chain {chain}: committer_key is not a private key")))?;
        let sender = key.address();
        let url = config.rpc_url.parse().map_err(|e| L1Error::Config(format!("chain {chain}: rpc_url: {e}")))?;
        let wallet = EthereumWallet::from(key);
        let provider = ProviderBuilder::new().wallet(wallet.clone()).connect_http(url).erased();
        let evm = provider.get_chain_id().await.map_err(|e| L1Error::Rpc { chain, msg: e.to_string() })?;
        if evm != config.evm_chain_id {
            return Err(L1Error::Config(format!(
                "chain {chain}: {} serves EVM chain {evm}, configured {}",
                config.rpc_url, config.evm_chain_id
            )));
        }
        let zklink = ZkLink::new(parse_address(&config.contract)?, provider.clone());
        Ok(Self { config: config.clone(), provider, zklink, sender, wallet })
    }

    pub fn chain(&self) -> ChainId {
        self.config.l2_chain
    }

    /// An RPC error of this chain.
    pub fn rpc<E: std::fmt::Display>(&self, e: E) -> L1Error {
        L1Error::Rpc { chain: self.chain(), msg: e.to_string() }
    }

    /// The latest block number.
    pub async fn head(&self) -> Result<u64, L1Error> {
        self.provider.get_block_number().await.map_err(|e| self.rpc(e))
    }

    /// Checks that the contract is deployed for the node's configuration: its L2 chain id, the
    /// number of chains, the data-availability chain, a block verifier for every capacity the
    /// node seals blocks at, and every L1 token it registered known to
    /// the node with the same decimals and merge group. A contract that disagrees would refuse
    /// blocks the node seals, or accept deposits the node cannot credit.
    pub async fn check_contract(
        &self,
        chain_count: u8,
        data_availability_chain: ChainId,
        registry: &TokenRegistry,
        capacities: &[usize],
    ) -> Result<(), L1Error> {
        let chain = self.chain();
        let bad = |msg: String| L1Error::Config(format!("chain {chain}: contract {}: {msg}", self.config.contract));
        let info = self.zklink.chainInfo().call().await.map_err(|e| self.rpc(e))?;
        let want = (chain, chain_count, data_availability_chain);
        let got = (info.chainId, info.chainCount, info.dataAvailabilityChain);
        if got != want {
            return Err(bad(format!(
                "deployed as (chain, chain count, data-availability chain) {got:?}, the node expects {want:?}"
            )));
        }
        // Every capacity the node may seal a block at needs a verifier here, or such a block
        // would be committed and never proven (the verifiers are fixed at deployment).
        for &c in capacities {
            let capacity = u32::try_from(c).map_err(|_| bad(format!("capacity {c}")))?;
            if self.zklink.blockVerifier(capacity).call().await.map_err(|e| self.rpc(e))?.is_zero() {
                return Err(bad(format!(
                    "no block verifier for capacity {c}, which the node seals blocks at (block_capacity / block_capacities)"
                )));
            }
        }
        // Every token the contract registered must be one the node converts the same way: a
        // deposit of a token the node does not know would stop its watcher.
        let registered = self
            .zklink
            .TokenRegistered_filter()
            .from_block(self.config.start_block)
            .query()
            .await
            .map_err(|e| self.rpc(e))?;
        for (ev, _) in registered {
            let node = registry.l1_decimals(chain, ev.tokenId).ok();
            let group = registry.token(ev.tokenId).ok().and_then(|t| t.group).unwrap_or(0);
            if node != Some(ev.decimals) || group != ev.group {
                return Err(bad(format!(
                    "token {} is registered with {} decimals and group {}; the node has {} and group {group}",
                    ev.tokenId,
                    ev.decimals,
                    ev.group,
                    node.map_or("no such token on this chain".to_string(), |d| format!("{d} decimals")),
                )));
            }
        }
        for t in registry.tokens() {
            if registry.l1_decimals(chain, t.id).is_ok()
                && !self.zklink.getToken(t.id).call().await.map_err(|e| self.rpc(e))?.registered
            {
                tracing::warn!(
                    chain,
                    token = t.id,
                    "token configured on the node but not registered in the contract (no deposits of it can happen)"
                );
            }
        }
        Ok(())
    }
}

/// Sleeps `d` or until `stop` flips; returns true if asked to stop.
pub(crate) async fn sleep_or_stop(d: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
