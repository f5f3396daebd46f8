//! The recovery tool's library (`zkl exodus`): everything it does reads the chains' RPC and the
//! contracts, never the operator's node (protocol.md section 18).
//!
//! - [`ChainsFile`]: where the chains are (`{"chains":[{l2_chain, rpc, zklink,
//!   data_availability}]}`; the devnet writes it to `DATA_DIR/devnet.json`).
//! - [`status`]: per chain, exodus mode and its deadlines, the block counters, the oldest
//!   unexecuted priority request's deadline.
//! - [`activate`]: switches every chain whose oldest request expired into exodus mode and says
//!   when the others can be.
//! - [`sync`]: carries the highest finality attestation and the public block proofs to every
//!   chain and executes there, so every chain claims against the same root.
//! - [`recover`]: the state rebuilt from Layer-1 data, and [`recover::claim`], which proves and
//!   claims a key's balances on every chain, refunds its unexecuted deposits and withdraws its
//!   pending balances.

pub mod blocks;
mod progress;
pub mod recover;
pub mod sync;
#[cfg(feature = "test-utils")]
pub mod test_utils;

use std::collections::BTreeSet;
use std::path::Path;

use alloy::network::EthereumWallet;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};
use zkl_contracts::bindings::ZkLink::{self, ZkLinkInstance};
use zkl_types::ChainId;

/// Errors of the recovery tool; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum ExodusError {
    #[error("--chains {path}: {msg}")]
    ChainsFile { path: String, msg: String },
    #[error("the private key is not a secp256k1 key")]
    Key,
    #[error("--data-dir {0}")]
    DataDir(String),
    #[error("{0}")]
    Usage(String),
    #[error("chain {chain}: {msg}")]
    Rpc { chain: ChainId, msg: String },
    #[error("block {block}: {msg}")]
    Rebuild { block: u32, msg: String },
}

impl ExodusError {
    /// A rebuild failure at `block` (0: before any block).
    pub fn rebuild(block: u32, msg: impl std::fmt::Display) -> Self {
        ExodusError::Rebuild { block, msg: msg.to_string() }
    }
}

/// One chain of a [`ChainsFile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEntry {
    pub l2_chain: ChainId,
    pub rpc: String,
    pub zklink: Address,
    pub data_availability: bool,
}

/// The chains of a deployment (extra fields, such as the devnet's, are ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainsFile {
    pub chains: Vec<ChainEntry>,
}

impl ChainsFile {
    /// Reads and checks the file: at least one chain, distinct chain ids in 1..=4, exactly one
    /// data-availability chain, http(s) RPC URLs.
    pub fn read(path: &Path) -> Result<Self, ExodusError> {
        let fail = |msg: String| ExodusError::ChainsFile { path: path.display().to_string(), msg };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file: ChainsFile = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        file.check().map_err(fail)?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        if self.chains.is_empty() {
            return Err("no chains".into());
        }
        let mut seen = BTreeSet::new();
        for c in &self.chains {
            if !(1..=zkl_types::MAX_CHAINS).contains(&c.l2_chain) || !seen.insert(c.l2_chain) {
                return Err(format!("chain {} is out of 1..=4 or listed twice", c.l2_chain));
            }
            if !(c.rpc.starts_with("http://") || c.rpc.starts_with("https://")) {
                return Err(format!("chain {}: rpc {:?} is not an http(s) URL", c.l2_chain, c.rpc));
            }
        }
        match self.chains.iter().filter(|c| c.data_availability).count() {
            1 => Ok(()),
            n => Err(format!("{n} chains are marked data_availability, exactly one must be")),
        }
    }
}

impl ChainsFile {
    /// A connection to every chain, in the file's order, signing with `key` if given.
    pub fn connect(&self, key: Option<&PrivateKeySigner>) -> Result<Vec<Connection>, ExodusError> {
        self.chains.iter().map(|e| Connection::open(e, key)).collect()
    }
}

/// The data-availability chain's connection among `conns`.
pub(crate) fn data_availability(conns: &[Connection]) -> Result<&Connection, ExodusError> {
    conns
        .iter()
        .find(|c| c.entry.data_availability)
        .ok_or_else(|| ExodusError::rebuild(0, "no data-availability chain"))
}

/// A connection to one chain's contract, signing with `key` if given.
pub struct Connection {
    pub entry: ChainEntry,
    pub zklink: ZkLinkInstance<DynProvider>,
    pub provider: DynProvider,
}

impl Connection {
    pub fn open(entry: &ChainEntry, key: Option<&PrivateKeySigner>) -> Result<Self, ExodusError> {
        let url = entry.rpc.parse().map_err(|e| ExodusError::Rpc { chain: entry.l2_chain, msg: format!("{e}") })?;
        let provider = match key {
            Some(k) => ProviderBuilder::new().wallet(EthereumWallet::from(k.clone())).connect_http(url).erased(),
            None => ProviderBuilder::new().connect_http(url).erased(),
        };
        Ok(Self { entry: entry.clone(), zklink: ZkLink::new(entry.zklink, provider.clone()), provider })
    }

    pub(crate) fn rpc(&self, e: impl std::fmt::Display) -> ExodusError {
        ExodusError::Rpc { chain: self.entry.l2_chain, msg: e.to_string() }
    }

    /// Sends `call`, waits for its receipt, fails if it reverted; returns the transaction hash.
    pub(crate) async fn send<D: alloy::contract::CallDecoder>(
        &self,
        call: alloy::contract::CallBuilder<&DynProvider, D>,
        what: &str,
    ) -> Result<String, ExodusError> {
        let pending = call.send().await.map_err(|e| self.rpc(format!("{what}: {e}")))?;
        let receipt = pending.get_receipt().await.map_err(|e| self.rpc(format!("{what}: {e}")))?;
        if !receipt.status() {
            return Err(self.rpc(format!("{what} reverted ({})", receipt.transaction_hash)));
        }
        Ok(receipt.transaction_hash.to_string())
    }

    /// The calldata of the transaction that emitted a log.
    pub(crate) async fn input_of(&self, tx: Option<alloy::primitives::B256>) -> Result<Vec<u8>, ExodusError> {
        let hash = tx.ok_or_else(|| self.rpc("a log without its transaction"))?;
        let tx = self.provider.get_transaction_by_hash(hash).await.map_err(|e| self.rpc(e))?;
        let tx = tx.ok_or_else(|| self.rpc(format!("transaction {hash} not found")))?;
        Ok(alloy::consensus::Transaction::input(&tx).to_vec())
    }

    /// The chain's latest block timestamp.
    pub async fn now(&self) -> Result<u64, ExodusError> {
        let latest = alloy::eips::BlockNumberOrTag::Latest.into();
        let block = self.provider.get_block(latest).await.map_err(|e| self.rpc(e))?;
        Ok(block.ok_or_else(|| self.rpc("no latest block"))?.header.timestamp)
    }
}

/// Parses a hex private key.
pub fn signer(key: &str) -> Result<PrivateKeySigner, ExodusError> {
    key.trim().parse().map_err(|_| ExodusError::Key)
}

/// One chain's exodus-relevant state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    pub l2_chain: ChainId,
    pub exodus: bool,
    /// Unix time exodus mode began (absent before).
    pub activated_at: Option<u64>,
    /// Unix time claims and refunds open (absent before exodus).
    pub claims_open_at: Option<u64>,
    pub committed: u32,
    pub proven: u32,
    pub final_block: u32,
    pub executed: u32,
    /// Unexecuted priority requests.
    pub pending_requests: u64,
    /// Unix time the oldest unexecuted request expires (absent without one).
    pub oldest_request_deadline: Option<u64>,
    /// The chain's latest block time.
    pub now: u64,
}

impl ChainStatus {
    /// Whether `activateExodusMode` would succeed now.
    pub fn activatable(&self) -> bool {
        !self.exodus && self.oldest_request_deadline.is_some_and(|d| self.now >= d)
    }
}

/// Reads one chain's status.
pub async fn chain_status(c: &Connection) -> Result<ChainStatus, ExodusError> {
    let z = &c.zklink;
    let e = z.exodusStatus().call().await.map_err(|e| c.rpc(e))?;
    let counters = z.blockCounters().call().await.map_err(|e| c.rpc(e))?;
    let queue = z.priorityQueue().call().await.map_err(|e| c.rpc(e))?;
    let oldest_request_deadline = if queue.first < queue.total {
        Some(z.priorityRequest(queue.first).call().await.map_err(|e| c.rpc(e))?.expiration)
    } else {
        None
    };
    Ok(ChainStatus {
        l2_chain: c.entry.l2_chain,
        exodus: e.active,
        activated_at: e.active.then_some(e.activatedAt),
        claims_open_at: e.active.then_some(e.claimsOpenAt),
        committed: counters.committed,
        proven: counters.proven,
        final_block: e.totalBlocksFinal,
        executed: counters.executed,
        pending_requests: queue.total - queue.first,
        oldest_request_deadline,
        now: c.now().await?,
    })
}

/// Every chain's status, in the file's order.
pub async fn status(file: &ChainsFile) -> Result<Vec<ChainStatus>, ExodusError> {
    let mut out = Vec::new();
    for c in file.connect(None)? {
        out.push(chain_status(&c).await?);
    }
    Ok(out)
}

/// What [`activate`] did on one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Activation {
    /// This call switched the chain into exodus mode.
    Activated { l2_chain: ChainId, tx: String },
    /// The chain was in exodus mode already.
    AlreadyActive { l2_chain: ChainId },
    /// The oldest request expires at `at` (chain time).
    NotBefore { l2_chain: ChainId, at: u64 },
    /// No request is pending: a full-exit request the operator does not serve starts the clock.
    NoPendingRequest { l2_chain: ChainId },
}

/// Activates exodus mode on every chain where the oldest unexecuted request has expired, paying
/// gas with `key`.
pub async fn activate(file: &ChainsFile, key: &PrivateKeySigner) -> Result<Vec<Activation>, ExodusError> {
    let mut out = Vec::new();
    for c in file.connect(Some(key))? {
        let s = chain_status(&c).await?;
        let l2_chain = s.l2_chain;
        out.push(match s.oldest_request_deadline {
            _ if s.exodus => Activation::AlreadyActive { l2_chain },
            None => Activation::NoPendingRequest { l2_chain },
            Some(at) if !s.activatable() => Activation::NotBefore { l2_chain, at },
            Some(_) => Activation::Activated {
                l2_chain,
                tx: c.send(c.zklink.activateExodusMode(), "activateExodusMode").await?,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(l2_chain: ChainId, da: bool) -> ChainEntry {
        ChainEntry { l2_chain, rpc: "http://127.0.0.1:1".into(), zklink: Address::ZERO, data_availability: da }
    }

    #[test]
    fn chains_file_checks() {
        let ok = ChainsFile { chains: vec![entry(1, true), entry(2, false)] };
        assert_eq!(ok.check(), Ok(()));
        let cases = [
            (vec![], "no chains"),
            (vec![entry(1, true), entry(1, false)], "listed twice"),
            (vec![entry(5, true)], "out of 1..=4"),
            (vec![entry(1, false), entry(2, false)], "0 chains are marked"),
            (vec![entry(1, true), entry(2, true)], "2 chains are marked"),
        ];
        for (chains, msg) in cases {
            let err = ChainsFile { chains }.check().unwrap_err();
            assert!(err.contains(msg), "{err}");
        }
        let mut bad = ok.clone();
        bad.chains[0].rpc = "ws://x".into();
        assert!(bad.check().unwrap_err().contains("not an http(s) URL"));
    }

    #[test]
    fn devnet_lines_parse_and_extra_fields_are_ignored() {
        let text = r#"{"rpc":"http://n","chains":[{"l2_chain":1,"evm_chain_id":31001,"rpc":"http://127.0.0.1:8545",
            "zklink":"0x5FbDB2315678afecb367f032d93F642f64180aa3","data_availability":true,"erc20":{}}]}"#;
        let f: ChainsFile = serde_json::from_str(text).unwrap();
        assert_eq!(f.chains[0].l2_chain, 1);
        assert_eq!(f.check(), Ok(()));
    }

    /// A chain whose request expired is switched (once); a chain without one is left alone and
    /// the answer says why.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn activate_switches_expired_chains_only() {
        use alloy::providers::ext::AnvilApi;
        use zkl_contracts::anvil::DEV_KEYS;
        use zkl_contracts::deploy::{Chain, ChainConfig, ETH_TOKEN_ID, send};
        let config = |evm: u64, l2_chain: u8| ChainConfig {
            evm_chain_id: evm,
            l2_chain,
            chain_count: 2,
            data_availability_chain: 1,
            priority_expiration: 600,
            priority_fee: 0,
            genesis_root: alloy::primitives::B256::repeat_byte(1),
            fee_owner: alloy::primitives::Address::ZERO,
        };
        let (a, b) = (Chain::deploy(config(7401, 1)).await.unwrap(), Chain::deploy(config(7402, 2)).await.unwrap());
        let file = crate::test_utils::chains_file([&a, &b]);
        let key = signer(DEV_KEYS[2]).unwrap();
        send(a.zklink_as(DEV_KEYS[1]).unwrap().requestFullExit(2, 0, ETH_TOKEN_ID, ETH_TOKEN_ID)).await.unwrap();
        let s = status(&file).await.unwrap();
        let deadline = s[0].oldest_request_deadline.expect("a pending request");
        assert_eq!((s[0].pending_requests, s[1].oldest_request_deadline), (1, None));
        assert_eq!(
            activate(&file, &key).await.unwrap(),
            vec![Activation::NotBefore { l2_chain: 1, at: deadline }, Activation::NoPendingRequest { l2_chain: 2 }]
        );
        a.provider.anvil_increase_time(601).await.unwrap();
        a.provider.anvil_mine(Some(1), None).await.unwrap();
        let first = activate(&file, &key).await.unwrap();
        assert!(matches!(first[0], Activation::Activated { l2_chain: 1, .. }), "{first:?}");
        assert_eq!(first[1], Activation::NoPendingRequest { l2_chain: 2 });
        let s = status(&file).await.unwrap();
        assert!(s[0].exodus && !s[1].exodus);
        assert_eq!(s[0].claims_open_at, s[0].activated_at.map(|t| t + 600));
        assert_eq!(activate(&file, &key).await.unwrap()[0], Activation::AlreadyActive { l2_chain: 1 });
    }

    #[test]
    fn activatable_only_after_the_deadline_and_outside_exodus() {
        let s = ChainStatus {
            l2_chain: 1,
            exodus: false,
            activated_at: None,
            claims_open_at: None,
            committed: 0,
            proven: 0,
            final_block: 0,
            executed: 0,
            pending_requests: 1,
            oldest_request_deadline: Some(100),
            now: 99,
        };
        assert!(!s.activatable());
        assert!(ChainStatus { now: 100, ..s.clone() }.activatable());
        assert!(!ChainStatus { now: 100, exodus: true, ..s.clone() }.activatable());
        assert!(!ChainStatus { now: 100, oldest_request_deadline: None, ..s }.activatable());
    }
}
