//! The light oracle: M-of-N signers carry each chain's sync hash to the other chains.
//!
//! Each [`OracleSigner`] holds its own key and reads the sync hash itself from the source chain's
//! contract (the `BlockCommit` event of that block, at least `confirmations` deep, while the block
//! is still committed there); it never signs a value it is handed. The [`Relayer`] asks every
//! signer, keeps the sync hash at least `threshold` of them agree on, and returns their
//! signatures sorted by signer address, as `receiveSyncHash` expects. The settler of the
//! destination chain sends them.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use zkl_contracts::bindings::ZkLink;
use zkl_contracts::block::{signer, sync_hash_digest};
use zkl_types::ChainId;

use crate::L1Error;

/// Where a signer reads a source chain.
#[derive(Clone)]
pub struct Source {
    pub provider: DynProvider,
    pub contract: Address,
    pub confirmations: u64,
    pub start_block: u64,
}

/// One oracle signer.
pub struct OracleSigner {
    key: PrivateKeySigner,
    sources: HashMap<ChainId, Source>,
}

impl OracleSigner {
    pub fn new(key: &str, sources: HashMap<ChainId, Source>) -> Result<Self, L1Error> {
        let key = signer(key).map_err(|_| L1Error::Config("an oracle signer key is not a private key".into()))?;
        Ok(Self { key, sources })
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The sync hash of block `block` as committed on chain `src`, if that commit is confirmed.
    pub async fn read_sync_hash(&self, src: ChainId, block: u32) -> Result<Option<B256>, L1Error> {
        let s = self.sources.get(&src).ok_or_else(|| L1Error::Config(format!("oracle: no source chain {src}")))?;
        let rpc = |e: &dyn std::fmt::Display| L1Error::Rpc { chain: src, msg: e.to_string() };
        let zklink = ZkLink::new(s.contract, s.provider.clone());
        let counters = zklink.blockCounters().call().await.map_err(|e| rpc(&e))?;
        if counters.committed < block {
            return Ok(None);
        }
        let logs = zklink
            .BlockCommit_filter()
            .topic1(U256::from(block))
            .from_block(s.start_block)
            .query()
            .await
            .map_err(|e| rpc(&e))?;
        let Some((ev, log)) = logs.into_iter().max_by_key(|(_, l)| (l.block_number, l.log_index)) else {
            return Ok(None);
        };
        let head = s.provider.get_block_number().await.map_err(|e| rpc(&e))?;
        let mined = log.block_number.unwrap_or(u64::MAX);
        if mined > head || head - mined + 1 < s.confirmations {
            return Ok(None);
        }
        Ok(Some(ev.syncHash))
    }

    /// Reads block `block`'s sync hash on `src` and signs it for the contract `dst_contract` on
    /// EVM chain `dst_evm_chain_id`.
    pub async fn sign(
        &self,
        src: ChainId,
        block: u32,
        dst_evm_chain_id: u64,
        dst_contract: Address,
    ) -> Result<Option<(B256, Bytes)>, L1Error> {
        let Some(sync_hash) = self.read_sync_hash(src, block).await? else { return Ok(None) };
        let digest = sync_hash_digest(dst_evm_chain_id, dst_contract, src, block, sync_hash);
        let sig = self.key.sign_hash_sync(&digest).map_err(|e| L1Error::Config(format!("oracle signer: {e}")))?;
        Ok(Some((sync_hash, Bytes::from(sig.as_bytes().to_vec()))))
    }
}

/// Collects `threshold` matching signatures.
pub struct Relayer {
    signers: Vec<OracleSigner>,
    threshold: usize,
}

impl Relayer {
    pub fn new(signers: Vec<OracleSigner>, threshold: usize) -> Result<Self, L1Error> {
        if threshold == 0 || threshold > signers.len() {
            return Err(L1Error::Config(format!("oracle threshold {threshold} of {} signers", signers.len())));
        }
        Ok(Self { signers, threshold })
    }

    /// The sync hash of (`src`, `block`) with `threshold` signatures for the destination contract,
    /// sorted by signer address; `None` while fewer than `threshold` signers agree on a value.
    pub async fn collect(
        &self,
        src: ChainId,
        block: u32,
        dst_evm_chain_id: u64,
        dst_contract: Address,
    ) -> Result<Option<(B256, Vec<Bytes>)>, L1Error> {
        let mut by_hash: HashMap<B256, Vec<(Address, Bytes)>> = HashMap::new();
        for s in &self.signers {
            match s.sign(src, block, dst_evm_chain_id, dst_contract).await {
                Ok(Some((h, sig))) => by_hash.entry(h).or_default().push((s.address(), sig)),
                Ok(None) => {}
                Err(err) => tracing::warn!(signer = %s.address(), %err, "oracle signer"),
            }
        }
        let Some((hash, mut sigs)) = by_hash.into_iter().find(|(_, v)| v.len() >= self.threshold) else {
            return Ok(None);
        };
        sigs.sort_by_key(|(a, _)| *a);
        sigs.truncate(self.threshold);
        Ok(Some((hash, sigs.into_iter().map(|(_, s)| s).collect())))
    }
}
