//! The committer of one chain: for every sealed block, in order, it commits the block on its chain
//! (full pubdata if the chain is a data-availability chain), proves it with a proof from a
//! [`ProofSource`], relays the other chains' sync hashes (signatures collected by the
//! [`Relayer`]) and executes it.
//!
//! The contract is the truth for what is done: every step starts from its counters
//! (`blockCounters`, `receivedSyncHash`), and a call is simulated (`eth_estimateGas`) before it is
//! sent, so a call the contract would refuse is never sent. At most one tx per chain is in flight.
//! It is recorded in redb (nonce, fees, hashes) *before* it is sent; until it is
//! `confirmations` deep, the committer sends nothing else, and after `tx_timeout_ms` it replaces
//! it with the same nonce and fees raised by 25%. A restart resumes from that record: the same
//! nonce is reused, so a tx sent just before a crash is replaced, never duplicated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::consensus::TxEnvelope;
use alloy::network::{Ethereum, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use zkl_contracts::bindings::ZkLink::{ExecuteBlockInfo, StoredBlockInfo};
use zkl_contracts::deploy::L2Block;
use zkl_contracts::ops;
use zkl_types::{ChainId, ChangePubKeyAuth, Tx};

use crate::l1::{ChainClient, L1Error, sleep_or_stop};
use crate::relayer::Relayer;
use crate::storage::Storage;

/// Blocks per commit / prove / execute call.
const MAX_BATCH: u32 = 8;

/// Where proofs come from. The proof is the verifier's `uint256[8]` encoding of a Groth16 proof
/// whose public input is the block commitment's low 253 bits.
pub trait ProofSource: Send + Sync {
    /// The proof of `block`, or `None` while it is not available yet (asked again later).
    fn proof(&self, block: u32, commitment: B256) -> Result<Option<[U256; 8]>, String>;
}

/// Proofs published by `zkl prover` workers through the node's prover queue (table `PROOFS`,
/// arkworks' compressed encoding, checked against the block's public input when submitted).
pub struct QueueProofSource {
    pub storage: Arc<Storage>,
}

impl ProofSource for QueueProofSource {
    fn proof(&self, block: u32, _commitment: B256) -> Result<Option<[U256; 8]>, String> {
        use ark_serialize::CanonicalDeserialize;
        let Some(bytes) = self.storage.proof(block).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let proof = ark_groth16::Proof::<ark_bn254::Bn254>::deserialize_compressed(bytes.as_slice())
            .map_err(|e| format!("stored proof of block {block} is malformed: {e}"))?;
        Ok(Some(zkl_contracts::verifier::encode_proof(&proof)))
    }
}

/// Proofs of `zkl_contracts::verifier::test_circuit`, which the `TestVerifier` deployments check:
/// real Groth16 proofs whose public input is the block commitment (the circuit does not check the
/// block's rules; the block circuit replaces it).
pub struct TestCircuitProofSource {
    pk: ark_groth16::ProvingKey<ark_bn254::Bn254>,
}

impl TestCircuitProofSource {
    pub fn new() -> Result<Self, L1Error> {
        let pk = zkl_contracts::verifier::test_circuit::proving_key().map_err(|e| L1Error::Proof(e.to_string()))?;
        Ok(Self { pk })
    }
}

impl ProofSource for TestCircuitProofSource {
    fn proof(&self, block: u32, commitment: B256) -> Result<Option<[U256; 8]>, String> {
        let proof = zkl_contracts::verifier::test_circuit::prove(&self.pk, ops::public_input(commitment), block.into())
            .map_err(|e| e.to_string())?;
        Ok(Some(zkl_contracts::verifier::encode_proof(&proof)))
    }
}

/// The genesis root the contracts must be deployed with.
pub fn genesis_root(config: &crate::NodeConfig) -> Result<B256, crate::NodeError> {
    Ok(B256::from(zkl_crypto::field::fr_to_be_bytes(&crate::genesis(config)?.root())))
}

/// A chain's settlement counters as its contract last reported them (`blockCounters`), published
/// by the committer in the `L1` table under [`counters_key`] for the RPC (`zkl_l1Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct L1Counters {
    pub committed: u32,
    pub proven: u32,
    pub executed: u32,
}

/// The `L1` table key of chain `chain`'s [`L1Counters`].
pub fn counters_key(chain: ChainId) -> String {
    format!("counters/{chain}")
}

/// The in-flight tx of a chain, recorded before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingTx {
    pub action: String,
    pub nonce: u64,
    pub max_fee: u128,
    pub priority_fee: u128,
    /// Every version sent with this nonce (replacements append).
    pub hashes: Vec<B256>,
    pub sent_at_ms: u64,
}

/// What to send next.
enum Action {
    Commit(Vec<u32>),
    Prove(Vec<u32>),
    Relay { src: ChainId, block: u32, sync_hash: B256, sigs: Vec<Bytes> },
    Execute(u32),
}

impl Action {
    fn describe(&self) -> String {
        match self {
            Action::Commit(b) => format!("commit {b:?}"),
            Action::Prove(b) => format!("prove {b:?}"),
            Action::Relay { src, block, .. } => format!("receiveSyncHash chain {src} block {block}"),
            Action::Execute(b) => format!("execute [{b}]"),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub struct Committer {
    client: ChainClient,
    storage: Arc<Storage>,
    proofs: Arc<dyn ProofSource>,
    relayer: Arc<Relayer>,
    others: Vec<ChainId>,
    /// `stored[n]`: the stored info of block n on this chain (0 = genesis), computed locally.
    stored: Mutex<Vec<StoredBlockInfo>>,
    proof_cache: Mutex<HashMap<u32, [U256; 8]>>,
    published: Mutex<Option<L1Counters>>,
}

fn parse_b256(text: &str) -> Result<B256, String> {
    text.parse().map_err(|_| format!("{text:?} is not 32 bytes of hex"))
}

impl Committer {
    pub fn new(
        client: ChainClient,
        storage: Arc<Storage>,
        proofs: Arc<dyn ProofSource>,
        relayer: Arc<Relayer>,
        others: Vec<ChainId>,
        genesis_root: B256,
    ) -> Self {
        let genesis = StoredBlockInfo {
            blockNumber: 0,
            priorityOperations: 0,
            timestamp: 0,
            stateRoot: genesis_root,
            commitment: B256::ZERO,
            syncHash: B256::ZERO,
            withdrawalsHash: B256::ZERO,
        };
        Self {
            client,
            storage,
            proofs,
            relayer,
            others,
            stored: Mutex::new(vec![genesis]),
            proof_cache: Mutex::new(HashMap::new()),
            published: Mutex::new(None),
        }
    }

    fn chain(&self) -> ChainId {
        self.client.chain()
    }

    fn inconsistent(&self, msg: String) -> L1Error {
        L1Error::Inconsistent { chain: self.chain(), msg }
    }

    fn pending_key(&self) -> String {
        format!("committer/{}/pending", self.chain())
    }

    /// The in-flight tx, if any.
    pub fn pending(&self) -> Result<Option<PendingTx>, L1Error> {
        Ok(self.storage.l1_get(&self.pending_key())?)
    }

    /// Sealed block `number` as the contracts see it, with the ChangePubKey witnesses of its txs.
    pub fn l2_block(&self, number: u32) -> Result<L2Block, L1Error> {
        let r = self.storage.block(number)?.ok_or_else(|| self.inconsistent(format!("no sealed block {number}")))?;
        let bad = |m: String| self.inconsistent(format!("block {number}: {m}"));
        let pubdata = hex::decode(r.pubdata.trim_start_matches("0x")).map_err(|e| bad(e.to_string()))?;
        let new_root = parse_b256(&r.new_root).map_err(bad)?;
        let mut block = L2Block::new(number, r.timestamp, new_root, pubdata);
        for h in &r.tx_hashes {
            let hash: [u8; 32] = parse_b256(h).map_err(bad)?.0;
            let tx = self.storage.tx(&hash)?.ok_or_else(|| bad(format!("tx {h} missing")))?;
            if let Tx::ChangePubKey(t) = tx.tx.tx {
                let slot = block
                    .cpk_witnesses
                    .get_mut(usize::from(t.chain).wrapping_sub(1))
                    .ok_or_else(|| bad(format!("change_pubkey on chain {}", t.chain)))?;
                slot.push(match t.auth {
                    ChangePubKeyAuth::EthSignature(sig) => Bytes::from(sig.to_vec()),
                    ChangePubKeyAuth::Onchain => Bytes::new(),
                });
            }
        }
        let old_root = parse_b256(&r.old_root).map_err(bad)?;
        let commitment = block.commitment(old_root).map_err(|e| bad(e.to_string()))?;
        if commitment != parse_b256(&r.commitment).map_err(bad)? {
            return Err(bad("the contracts' commitment differs from the node's".into()));
        }
        Ok(block)
    }

    /// `stored[n]`, computing the missing ones from the sealed blocks.
    fn stored_info(&self, n: u32) -> Result<StoredBlockInfo, L1Error> {
        let mut stored = self.stored.lock().unwrap_or_else(|p| p.into_inner());
        while stored.len() <= n as usize {
            let next = stored.len() as u32;
            let block = self.l2_block(next)?;
            let prev = stored[stored.len() - 1].clone();
            let info = block.stored_info(&prev, self.chain()).map_err(|e| self.inconsistent(e.to_string()))?;
            stored.push(info);
        }
        Ok(stored[n as usize].clone())
    }

    /// Records the contract's counters when they changed.
    fn publish(&self, now: L1Counters) -> Result<(), L1Error> {
        let mut last = self.published.lock().unwrap_or_else(|p| p.into_inner());
        if *last != Some(now) {
            self.storage.l1_put(&counters_key(self.chain()), Some(&now))?;
            *last = Some(now);
        }
        Ok(())
    }

    /// The proof of block `n`, `None` while the proof source has none yet.
    fn proof(&self, n: u32) -> Result<Option<[U256; 8]>, L1Error> {
        if let Some(p) = self.proof_cache.lock().unwrap_or_else(|p| p.into_inner()).get(&n) {
            return Ok(Some(*p));
        }
        let info = self.stored_info(n)?;
        let Some(p) = self.proofs.proof(n, info.commitment).map_err(L1Error::Proof)? else {
            return Ok(None);
        };
        self.proof_cache.lock().unwrap_or_else(|p| p.into_inner()).insert(n, p);
        Ok(Some(p))
    }

    /// The next step, from the contract's counters; `None` if there is nothing to do yet.
    async fn next_action(&self) -> Result<Option<Action>, L1Error> {
        let z = &self.client.zklink;
        let c = z.blockCounters().call().await.map_err(|e| self.client.rpc(e))?;
        self.publish(L1Counters { committed: c.committed, proven: c.proven, executed: c.executed })?;
        let sealed = self.storage.last_block()?.unwrap_or(0);
        if c.committed < sealed {
            let last = sealed.min(c.committed + MAX_BATCH);
            return Ok(Some(Action::Commit((c.committed + 1..=last).collect())));
        }
        if c.proven < c.committed {
            // The blocks whose proofs are ready, in order (a missing proof ends the batch; while
            // the next block has none, proven blocks are still executed below).
            let mut ready = Vec::new();
            for n in c.proven + 1..=c.committed.min(c.proven + MAX_BATCH) {
                if self.proof(n)?.is_none() {
                    break;
                }
                ready.push(n);
            }
            if !ready.is_empty() {
                return Ok(Some(Action::Prove(ready)));
            }
        }
        if c.executed < c.proven {
            let n = c.executed + 1;
            let own = self.stored_info(n)?.syncHash;
            for &src in &self.others {
                let got = z.receivedSyncHash(src, n).call().await.map_err(|e| self.client.rpc(e))?;
                if got == B256::ZERO {
                    let (evm, contract) = (self.client.config.evm_chain_id, *z.address());
                    return Ok(match self.relayer.collect(src, n, evm, contract).await? {
                        Some((sync_hash, sigs)) => {
                            if sync_hash != own {
                                return Err(self.inconsistent(format!(
                                    "block {n}: chain {src} committed sync hash {sync_hash}, this chain {own}"
                                )));
                            }
                            Some(Action::Relay { src, block: n, sync_hash, sigs })
                        }
                        None => None,
                    });
                }
                if got != own {
                    return Err(
                        self.inconsistent(format!("block {n}: received sync hash {got} from chain {src}, own {own}"))
                    );
                }
            }
            return Ok(Some(Action::Execute(n)));
        }
        Ok(None)
    }

    /// Simulates `action` (a call the contract would refuse fails here) and signs it with `nonce`
    /// and the given fees, without sending it.
    async fn sign(
        &self,
        action: &Action,
        nonce: u64,
        max_fee: u128,
        priority_fee: u128,
    ) -> Result<TxEnvelope, L1Error> {
        let z = &self.client.zklink;
        let from = self.client.sender;
        let fail = |e: &dyn std::fmt::Display| self.client.rpc(format!("{}: {e}", action.describe()));
        macro_rules! go {
            ($call:expr) => {{
                let call = $call.from(from);
                let gas = call.estimate_gas().await.map_err(|e| fail(&e))?;
                let mut req = call
                    .nonce(nonce)
                    .gas(gas + gas / 5)
                    .max_fee_per_gas(max_fee)
                    .max_priority_fee_per_gas(priority_fee)
                    .into_transaction_request();
                req.set_chain_id(self.client.config.evm_chain_id);
                <_ as NetworkTransactionBuilder<Ethereum>>::build(req, &self.client.wallet).await.map_err(|e| fail(&e))
            }};
        }
        match action {
            Action::Commit(blocks) => {
                let prev = self.stored_info(blocks[0] - 1)?;
                let mut infos = Vec::new();
                for &n in blocks {
                    let info = self.l2_block(n)?.commit_info(self.chain(), self.client.config.data_availability);
                    infos.push(info.map_err(|e| self.inconsistent(e.to_string()))?);
                }
                go!(z.commitBlocks(prev, infos))
            }
            Action::Prove(blocks) => {
                let mut infos = Vec::new();
                let mut proofs = Vec::new();
                for &n in blocks {
                    infos.push(self.stored_info(n)?);
                    proofs.push(self.proof(n)?.ok_or_else(|| L1Error::Proof(format!("no proof of block {n}")))?);
                }
                go!(z.proveBlocks(infos, proofs))
            }
            Action::Relay { src, block, sync_hash, sigs } => {
                go!(z.receiveSyncHash(*src, *block, *sync_hash, sigs.clone()))
            }
            Action::Execute(n) => {
                let info = self.stored_info(*n)?;
                let block = self.l2_block(*n)?;
                let ws = block.withdrawals(self.chain()).map_err(|e| self.inconsistent(e.to_string()))?;
                let w = Bytes::from(ops::pack_withdrawals(&ws));
                go!(z.executeBlocks(vec![ExecuteBlockInfo { storedBlock: info, withdrawals: w }]))
            }
        }
    }

    /// Records `p` with the signed tx's hash, then broadcasts it.
    async fn record_and_broadcast(&self, p: &mut PendingTx, env: TxEnvelope) -> Result<B256, L1Error> {
        let hash = *env.tx_hash();
        p.hashes.push(hash);
        p.sent_at_ms = now_ms();
        self.storage.l1_put(&self.pending_key(), Some(&*p))?;
        if let Err(e) = self.client.provider.send_tx_envelope(env).await {
            let msg = e.to_string();
            if !msg.contains("already known") && !msg.contains("already imported") {
                return Err(self.client.rpc(format!("{}: {msg}", p.action)));
            }
        }
        Ok(hash)
    }

    async fn fees(&self) -> Result<(u128, u128), L1Error> {
        let f = self.client.provider.estimate_eip1559_fees().await.map_err(|e| self.client.rpc(e))?;
        Ok((f.max_fee_per_gas, f.max_priority_fee_per_gas))
    }

    /// One step: follows the in-flight tx, or sends the next one. Returns a description of what it
    /// sent, if anything.
    pub async fn tick(&self) -> Result<Option<String>, L1Error> {
        let provider: &DynProvider = &self.client.provider;
        if let Some(mut p) = self.pending()? {
            let head = self.client.head().await?;
            for h in &p.hashes {
                if let Some(r) = provider.get_transaction_receipt(*h).await.map_err(|e| self.client.rpc(e))? {
                    let mined = r.block_number.unwrap_or(head);
                    if head + 1 < mined + self.client.config.confirmations {
                        return Ok(None); // waiting for confirmations
                    }
                    if !r.status() {
                        tracing::warn!(chain = self.chain(), action = %p.action, tx = %h, "tx reverted");
                    }
                    self.storage.l1_put::<PendingTx>(&self.pending_key(), None)?;
                    return Ok(None);
                }
            }
            let used =
                provider.get_transaction_count(self.client.sender).latest().await.map_err(|e| self.client.rpc(e))?;
            if used > p.nonce {
                // The nonce was consumed by a version whose hash was not recorded (a crash between
                // sending and recording): the contract's counters tell what it did.
                self.storage.l1_put::<PendingTx>(&self.pending_key(), None)?;
                return Ok(None);
            }
            if now_ms() < p.sent_at_ms + self.client.config.tx_timeout_ms {
                return Ok(None);
            }
            // Stuck (or never known to be sent): replace with higher fees, same nonce.
            let Some(action) = self.next_action().await? else { return Ok(None) };
            let (max_fee, priority_fee) = self.fees().await?;
            p.max_fee = max_fee.max(p.max_fee + p.max_fee / 4 + 1);
            p.priority_fee = priority_fee.max(p.priority_fee + p.priority_fee / 4 + 1).min(p.max_fee);
            p.action = action.describe();
            let env = self.sign(&action, p.nonce, p.max_fee, p.priority_fee).await?;
            let hash = self.record_and_broadcast(&mut p, env).await?;
            tracing::info!(chain = self.chain(), action = %p.action, tx = %hash, max_fee = p.max_fee, "replaced stuck tx");
            return Ok(Some(format!("replace {}", p.action)));
        }
        let Some(action) = self.next_action().await? else { return Ok(None) };
        let nonce =
            provider.get_transaction_count(self.client.sender).latest().await.map_err(|e| self.client.rpc(e))?;
        let (max_fee, priority_fee) = self.fees().await?;
        let mut p =
            PendingTx { action: action.describe(), nonce, max_fee, priority_fee, hashes: vec![], sent_at_ms: now_ms() };
        let env = self.sign(&action, nonce, max_fee, priority_fee).await?;
        let hash = self.record_and_broadcast(&mut p, env).await?;
        tracing::info!(chain = self.chain(), action = %p.action, tx = %hash, nonce, "sent");
        Ok(Some(p.action))
    }

    /// Runs until asked to stop; errors are logged and the step retried.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.client.config.poll_ms);
        loop {
            if let Err(err) = self.tick().await {
                tracing::warn!(chain = self.chain(), %err, "committer");
            }
            if sleep_or_stop(poll, &mut stop).await {
                return;
            }
        }
    }
}
