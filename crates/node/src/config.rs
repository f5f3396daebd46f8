//! Node configuration (a JSON file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zkl_types::{AccountId, Address, ChainId, TokenError, TokenId, TokenRegistry};

pub use zkl_rpc_api::{ChainConfig, L1TokenConfig, TokenConfig};

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
    /// Smaller capacities a block may be sealed at: the smallest one its ops and fee tokens fit
    /// (a block sealed early is cheaper to prove). The provers need keys and every chain's
    /// contract a verifier for each of these and for `block_capacity`.
    #[serde(default)]
    pub block_capacities: Vec<usize>,
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
    /// Operator methods (`zkl_sealBlock`, `zkl_revertBlocks`): their bearer tokens; without this
    /// section they are disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminConfig>,
    pub chains: Vec<ChainConfig>,
    pub tokens: Vec<TokenConfig>,
    /// Development only: accept priority operations over JSON-RPC (`zkl_devPriorityOp`) instead
    /// of from chain watchers. Never enable on a real deployment.
    #[serde(default)]
    pub dev_priority_ops: bool,
    /// Layer-1 chains the node watches and settles on; without it the node runs without L1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1: Option<L1Config>,
}

/// One Layer-1 chain: where its `ZkLink` contract is and how the node talks to it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct L1ChainConfig {
    /// L2 chain id (1..=4) of this chain.
    pub l2_chain: ChainId,
    /// EVM chain id (checked against the RPC endpoint at start).
    pub evm_chain_id: u64,
    pub rpc_url: String,
    /// The `ZkLink` contract (`0x` + 40 hex digits).
    pub contract: String,
    /// A log or tx counts once it is this many blocks deep (1 = mined).
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// This chain receives the full pubdata.
    #[serde(default)]
    pub data_availability: bool,
    /// Private key (`0x` + 64 hex digits) of the validator that commits, proves, relays and executes.
    pub committer_key: String,
    /// The first L1 block the watcher scans (the contract's deployment block).
    #[serde(default)]
    pub start_block: u64,
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// A sent tx not mined after this long is replaced with higher fees.
    #[serde(default = "default_tx_timeout_ms")]
    pub tx_timeout_ms: u64,
    /// How long commits and proofs wait for a full batch (8 blocks, one `commitBlocks` or
    /// `proveBlocks`) once the first block of the batch is ready. 0 sends what is ready at once
    /// (lowest latency); a wait trades latency for L1 gas when blocks or proofs trickle in (a
    /// proof alone costs about 258,000 gas to verify, one of a batch of 8 about 87,000).
    #[serde(default)]
    pub batch_wait_ms: u64,
}

impl std::fmt::Debug for L1ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1ChainConfig")
            .field("l2_chain", &self.l2_chain)
            .field("evm_chain_id", &self.evm_chain_id)
            .field("rpc_url", &self.rpc_url)
            .field("contract", &self.contract)
            .field("confirmations", &self.confirmations)
            .field("data_availability", &self.data_availability)
            .finish_non_exhaustive()
    }
}

/// The light oracle: M-of-N signers (development: the node runs them in-process, each with its
/// own key and its own reads of the source chain).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OracleConfig {
    pub signer_keys: Vec<String>,
    pub threshold: usize,
}

impl std::fmt::Debug for OracleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OracleConfig")
            .field("signers", &self.signer_keys.len())
            .field("threshold", &self.threshold)
            .finish()
    }
}

/// The `admin` section: bearer tokens of the operator methods.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminConfig {
    pub tokens: Vec<String>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig").field("tokens", &self.tokens.len()).finish()
    }
}

impl AdminConfig {
    /// Whether `token` is one of the tokens (compared in full, so timing reveals no prefix).
    pub fn allows(&self, token: &str) -> bool {
        crate::provers::token_in(&self.tokens, token)
    }
}

/// The `l1` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct L1Config {
    pub chains: Vec<L1ChainConfig>,
    pub oracle: OracleConfig,
}

fn default_confirmations() -> u64 {
    1
}
fn default_poll_ms() -> u64 {
    500
}
fn default_tx_timeout_ms() -> u64 {
    30_000
}

impl L1Config {
    /// Checks what can be checked without a network. Every chain of `chains` must be settled on
    /// (a chain without a contract would check nobody's deposits or keys), and exactly one of
    /// them receives the pubdata.
    pub fn validate(&self, chains: &[ChainConfig]) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let mut seen = std::collections::HashSet::new();
        for c in &self.chains {
            if !chains.iter().any(|k| k.id == c.l2_chain) {
                return bad(format!("l1 chain {} is not in chains", c.l2_chain));
            }
            if !seen.insert(c.l2_chain) {
                return bad(format!("l1 chain {} appears twice", c.l2_chain));
            }
            if c.confirmations == 0 {
                return bad(format!("l1 chain {}: confirmations must be at least 1", c.l2_chain));
            }
            if c.poll_ms == 0 || c.tx_timeout_ms == 0 {
                return bad(format!("l1 chain {}: poll_ms and tx_timeout_ms must be positive", c.l2_chain));
            }
        }
        for c in chains {
            if !self.chains.iter().any(|l| l.l2_chain == c.id) {
                return bad(format!("chain {} has no l1 entry (every chain needs its contract)", c.id));
            }
        }
        let da = self.chains.iter().filter(|c| c.data_availability).count();
        if da != 1 {
            return bad(format!("exactly one l1 chain must have data_availability (found {da})"));
        }
        let n = self.oracle.signer_keys.len();
        if self.oracle.threshold == 0 || self.oracle.threshold > n {
            return bad(format!("oracle threshold {} must be within 1..={n}", self.oracle.threshold));
        }
        Ok(())
    }
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
        if let Some(c) = config.block_capacities.iter().find(|&&c| c == 0 || c > config.block_capacity) {
            return Err(ConfigError::Invalid(format!(
                "block_capacities: {c} is not within 1..={} (block_capacity)",
                config.block_capacity
            )));
        }
        let registry = config.registry()?;
        for rate in &config.fees.rates {
            if registry.token(rate.token).is_err() {
                return Err(ConfigError::Invalid(format!("fee rate for unknown token {}", rate.token)));
            }
        }
        if let Some(l1) = &config.l1 {
            if config.dev_priority_ops {
                return Err(ConfigError::Invalid("dev_priority_ops cannot be combined with an l1 section".into()));
            }
            l1.validate(&config.chains)?;
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
            block_capacities: Vec::new(),
            block_time_ms: default_block_time(),
            fee_owner: Address::from_evm([0xfe; 20]),
            matchers: vec![],
            max_queued_per_account: default_queue_limit(),
            fees: FeePolicy::default(),
            metrics_addr: None,
            admin: None,
            provers: None,
            chains: vec![ChainConfig { id: 1, name: "chain-1".into() }, ChainConfig { id: 2, name: "chain-2".into() }],
            tokens: vec![
                TokenConfig { id: 1, symbol: "ETH".into(), is_group: false, group: None, l1: l1(&[1, 2], 18) },
                TokenConfig { id: 2, symbol: "USDC".into(), is_group: false, group: Some(100), l1: l1(&[1, 2], 6) },
                TokenConfig { id: 3, symbol: "USDT".into(), is_group: false, group: Some(100), l1: l1(&[2], 6) },
                TokenConfig { id: 100, symbol: "USD".into(), is_group: true, group: None, l1: vec![] },
            ],
            dev_priority_ops: false,
            l1: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l1(threshold: usize) -> L1Config {
        let chain = |id| L1ChainConfig {
            l2_chain: id,
            evm_chain_id: 31_000 + u64::from(id),
            rpc_url: "http://127.0.0.1:1".into(),
            contract: format!("0x{}", "11".repeat(20)),
            confirmations: 2,
            data_availability: id == 1,
            committer_key: format!("0x{}", "22".repeat(32)),
            start_block: 0,
            poll_ms: 100,
            tx_timeout_ms: 1000,
            batch_wait_ms: 0,
        };
        L1Config {
            chains: vec![chain(1), chain(2)],
            oracle: OracleConfig { signer_keys: vec!["0x33".into(), "0x44".into(), "0x55".into()], threshold },
        }
    }

    #[test]
    fn l1_section_is_optional_and_checked() {
        let demo = NodeConfig::demo("db".into());
        let value = serde_json::to_value(&demo).unwrap_or_default();
        assert!(value.get("dev_priority_ops").is_some() && value.get("l1").is_none());
        let chains = &demo.chains;
        assert!(l1(2).validate(chains).is_ok());
        let bad = |c: L1Config, what: &str| {
            let msg = c.validate(chains).map(|_| String::new()).unwrap_or_else(|e| e.to_string());
            assert!(msg.contains(what), "{msg:?} should mention {what:?}");
        };
        bad(l1(0), "threshold 0");
        bad(l1(4), "threshold 4");
        let mut c = l1(2);
        c.chains[1].l2_chain = 3;
        bad(c, "l1 chain 3 is not in chains");
        let mut c = l1(2);
        c.chains[1].l2_chain = 1;
        bad(c, "appears twice");
        let mut c = l1(2);
        c.chains[0].confirmations = 0;
        bad(c, "confirmations");
        let mut c = l1(2);
        c.chains.pop();
        bad(c, "chain 2 has no l1 entry");
        let mut c = l1(2);
        c.chains[1].data_availability = true;
        bad(c, "exactly one l1 chain must have data_availability (found 2)");
        // Keys never show in debug output.
        let debug = format!("{:?}", l1(2));
        assert!(!debug.contains(&"22".repeat(32)) && !debug.contains("0x33"), "{debug}");
    }
}
