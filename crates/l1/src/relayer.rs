//! The light oracle: M-of-N signers carry each chain's sync hash to the other chains.
//!
//! Each [`OracleSigner`] holds its own key and reads the sync hash itself from the source chain's
//! contract (the `BlockCommit` event of that block, at least `confirmations` deep, while the block
//! is still committed there); it never signs a value it is handed. The [`Relayer`] asks every
//! signer, keeps the sync hash at least `threshold` of them agree on, and returns their
//! signatures sorted by signer address, as `receiveSyncHash` expects. The settler of the
//! destination chain sends them.
//!
//! Second round (protocol.md section 18): a signer attests a block *final* only after reading on
//! every chain that the block is committed there with one sync hash and that the chain holds
//! every other chain's sync hash of it, and only while no chain is in exodus mode. That
//! attestation names no destination: one set of signatures serves every chain, and anyone may
//! carry it.

use std::collections::HashMap;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use zkl_contracts::bindings::ZkLink;
use zkl_contracts::block::{final_digest, signer, sync_hash_digest};
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
        Ok(Some((sync_hash, self.sign_digest(&digest)?)))
    }

    fn sign_digest(&self, digest: &B256) -> Result<Bytes, L1Error> {
        let sig = self.key.sign_hash_sync(digest).map_err(|e| L1Error::Config(format!("oracle signer: {e}")))?;
        Ok(Bytes::from(sig.as_bytes().to_vec()))
    }

    /// Block `block`'s sync hash and this signer's finality attestation of it, if every chain has
    /// committed it with that sync hash and holds every other chain's (read `confirmations` deep),
    /// and no chain is in exodus mode; `None` otherwise.
    pub async fn sign_final(&self, block: u32) -> Result<Option<(B256, Bytes)>, L1Error> {
        let mut common: Option<B256> = None;
        for &chain in self.sources.keys() {
            match (self.read_sync_hash(chain, block).await?, common) {
                (None, _) => return Ok(None),
                (Some(h), Some(c)) if h != c => return Ok(None),
                (Some(h), _) => common = Some(h),
            }
        }
        let Some(sync_hash) = common else { return Ok(None) };
        for (&chain, s) in &self.sources {
            let rpc = |e: &dyn std::fmt::Display| L1Error::Rpc { chain, msg: e.to_string() };
            let head = s.provider.get_block_number().await.map_err(|e| rpc(&e))?;
            let at = BlockId::number((head + 1).saturating_sub(s.confirmations.max(1)));
            let zklink = ZkLink::new(s.contract, s.provider.clone());
            if zklink.exodusMode().block(at).call().await.map_err(|e| rpc(&e))? {
                return Ok(None);
            }
            for &other in self.sources.keys().filter(|o| **o != chain) {
                if !zklink.isSyncHashReceived(other, sync_hash).block(at).call().await.map_err(|e| rpc(&e))? {
                    return Ok(None);
                }
            }
        }
        Ok(Some((sync_hash, self.sign_digest(&final_digest(block, sync_hash))?)))
    }
}

/// A signer's value and signature, `None` if it would not sign (yet).
type SignerAnswer = Result<Option<(B256, Bytes)>, L1Error>;

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
        let mut answers = Vec::new();
        for s in &self.signers {
            answers.push((s.address(), s.sign(src, block, dst_evm_chain_id, dst_contract).await));
        }
        Ok(self.quorum(answers))
    }

    /// Block `block`'s sync hash with `threshold` finality attestations, sorted by signer
    /// address (for `receiveFinalBlock` on any chain); `None` until that many signers attest.
    pub async fn collect_final(&self, block: u32) -> Result<Option<(B256, Vec<Bytes>)>, L1Error> {
        let mut answers = Vec::new();
        for s in &self.signers {
            answers.push((s.address(), s.sign_final(block).await));
        }
        Ok(self.quorum(answers))
    }

    /// The value at least `threshold` signers signed, with `threshold` of their signatures
    /// sorted by signer address.
    fn quorum(&self, answers: Vec<(Address, SignerAnswer)>) -> Option<(B256, Vec<Bytes>)> {
        let mut by_hash: HashMap<B256, Vec<(Address, Bytes)>> = HashMap::new();
        for (signer, answer) in answers {
            match answer {
                Ok(Some((h, sig))) => by_hash.entry(h).or_default().push((signer, sig)),
                Ok(None) => {}
                Err(err) => tracing::warn!(%signer, %err, "oracle signer"),
            }
        }
        let (hash, mut sigs) = by_hash.into_iter().find(|(_, v)| v.len() >= self.threshold)?;
        sigs.sort_by_key(|(a, _)| *a);
        sigs.truncate(self.threshold);
        Some((hash, sigs.into_iter().map(|(_, s)| s).collect()))
    }
}
