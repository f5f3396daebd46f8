//! Node configuration (a JSON file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zkl_types::{AccountId, Address, ChainId, TokenError, TokenId, TokenRegistry};

/// One connected chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainConfig {
    /// L2 chain id (1..=4).
    pub id: ChainId,
    pub name: String,
}

/// An L1 deployment of a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct L1TokenConfig {
    pub chain: ChainId,
    pub decimals: u8,
}

/// A token id: an asset (with L1 deployments) or a merge group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenConfig {
    pub id: TokenId,
    pub symbol: String,
    #[serde(default)]
    pub is_group: bool,
    #[serde(default)]
    pub group: Option<TokenId>,
    #[serde(default)]
    pub l1: Vec<L1TokenConfig>,
}

/// The price of one chunk of block space in one fee token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeeRate {
    pub token: TokenId,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub per_chunk: u128,
}

/// The node's fee policy: which tokens it takes as fees and the minimum fee per chunk of the
/// op. Empty = any token, no minimum (development). Order matchings pay the fee ratios their
/// orders carry and are not subject to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeePolicy {
    #[serde(default)]
    pub rates: Vec<FeeRate>,
}

impl FeePolicy {
    /// The minimum fee, in `token`, for an op of `chunks` chunks: `Ok(None)` when the node has
    /// no fee policy, an error naming the accepted tokens when `token` is not one of them.
    pub fn min_fee(&self, token: TokenId, chunks: usize) -> Result<Option<u128>, String> {
        if self.rates.is_empty() {
            return Ok(None);
        }
        let Some(rate) = self.rates.iter().find(|r| r.token == token) else {
            let accepted: Vec<String> = self.rates.iter().map(|r| r.token.to_string()).collect();
            return Err(format!("token {token} is not accepted for fees (accepted: {})", accepted.join(", ")));
        };
        let raw = rate.per_chunk.checked_mul(chunks as u128).ok_or("fee overflows")?;
        zkl_types::round_up_fee(raw).map(Some).ok_or_else(|| format!("fee {raw} cannot be packed"))
    }
}

/// Everything the node needs to start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeConfig {
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// JSON-RPC (HTTP and WebSocket on the same port); port 0 picks a free one.
    #[serde(default = "default_rpc")]
    pub rpc_addr: SocketAddr,
    /// Block capacity in chunks.
    #[serde(default = "default_capacity")]
    pub block_capacity: usize,
    /// A non-empty block is sealed at the latest this long after its first tx.
    #[serde(default = "default_block_time")]
    pub block_time_ms: u64,
    /// Owner of the fee account (account 0).
    pub fee_owner: Address,
    /// Accounts allowed to submit order matchings.
    #[serde(default)]
    pub matchers: Vec<AccountId>,
    /// Queued txs per account with nonces ahead of the account's nonce.
    #[serde(default = "default_queue_limit")]
    pub max_queued_per_account: usize,
    /// Minimum fees (see [`FeePolicy`]).
    #[serde(default)]
    pub fees: FeePolicy,
    /// Prover workers (`zkl prover`): their tokens and heartbeat timeout; no prover API when absent.
    #[serde(default)]
    pub provers: Option<crate::provers::ProverConfig>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address; off when absent.
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
    pub chains: Vec<ChainConfig>,
    pub tokens: Vec<TokenConfig>,
    /// Development only: accept priority operations over JSON-RPC (`zkl_devPriorityOp`) instead
    /// of from chain watchers. Never enable on a real deployment.
    #[serde(default)]
    pub dev_priority_ops: bool,
}

fn default_rpc() -> SocketAddr {
    "127.0.0.1:0".parse().expect("valid address")
}
fn default_capacity() -> usize {
    64
}
fn default_block_time() -> u64 {
    200
}
fn default_queue_limit() -> usize {
    16
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid configuration {path}: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("invalid token registry: {0}")]
    Registry(#[from] TokenError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let config: NodeConfig = serde_json::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.display().to_string(), source })?;
        config.registry()?;
        if config.block_capacity == 0 {
            return Err(ConfigError::Invalid("block_capacity must be positive".into()));
        }
        let registry = config.registry()?;
        for rate in &config.fees.rates {
            if registry.token(rate.token).is_err() {
                return Err(ConfigError::Invalid(format!("fee rate for unknown token {}", rate.token)));
            }
        }
        Ok(config)
    }

    /// The token registry this configuration describes.
    pub fn registry(&self) -> Result<TokenRegistry, ConfigError> {
        let mut r = TokenRegistry::new();
        for c in &self.chains {
            r.add_chain(c.id)?;
        }
        for t in &self.tokens {
            if t.is_group { r.add_group(t.id, &t.symbol)? } else { r.add_token(t.id, &t.symbol)? }
        }
        for t in &self.tokens {
            if let Some(g) = t.group {
                r.set_group(t.id, g)?;
            }
            for l1 in &t.l1 {
                r.add_l1(t.id, l1.chain, l1.decimals)?;
            }
        }
        Ok(r)
    }

    /// The demo set-up: chains 1 and 2, ETH and USDC on both, USDT on chain 2, USD group.
    pub fn demo(data_dir: PathBuf) -> Self {
        let l1 = |chains: &[ChainId], decimals| chains.iter().map(|c| L1TokenConfig { chain: *c, decimals }).collect();
        NodeConfig {
            data_dir,
            rpc_addr: default_rpc(),
            block_capacity: default_capacity(),
            block_time_ms: default_block_time(),
            fee_owner: Address::from_evm([0xfe; 20]),
            matchers: vec![],
            max_queued_per_account: default_queue_limit(),
            fees: FeePolicy::default(),
            metrics_addr: None,
            provers: None,
            chains: vec![ChainConfig { id: 1, name: "chain-1".into() }, ChainConfig { id: 2, name: "chain-2".into() }],
            tokens: vec![
                TokenConfig { id: 1, symbol: "ETH".into(), is_group: false, group: None, l1: l1(&[1, 2], 18) },
                TokenConfig { id: 2, symbol: "USDC".into(), is_group: false, group: Some(100), l1: l1(&[1, 2], 6) },
                TokenConfig { id: 3, symbol: "USDT".into(), is_group: false, group: Some(100), l1: l1(&[2], 6) },
                TokenConfig { id: 100, symbol: "USD".into(), is_group: true, group: None, l1: vec![] },
            ],
            dev_priority_ops: false,
        }
    }
}
