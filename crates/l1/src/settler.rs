//! The settler of one chain: for every sealed block, in order, it commits the block on its chain
//! (full pubdata if the chain is a data-availability chain), proves it with a proof from a
//! [`ProofSource`], relays the other chains' sync hashes (signatures collected by the
//! [`Relayer`]) and executes it.
//!
//! The contract is the truth for what is done: every step starts from its counters
//! (`blockCounters`, `isSyncHashReceived`), and a call is simulated (`eth_estimateGas`) before it
//! is sent, so a call the contract would refuse is never sent. A commit the contract refuses
//! halts settlement ([`zkl_node::settlement`]): the settler finds the refused block and op by
//! simulating shorter commits, records the halt (the sequencer stops sealing), asks again every
//! [`REFUSAL_RECHECK`], and reverts what the operator rewound ([`RevertPlan`]). At most one tx per chain is in flight.
//! It is recorded in redb (nonce, fees, hashes) *before* it is sent; until it is
//! `confirmations` deep, the settler sends nothing else, and after `tx_timeout_ms` it replaces
//! it with the same nonce and fees raised by 25%. A restart resumes from that record: the same
//! nonce is reused, so a tx sent just before a crash is replaced, never duplicated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::consensus::TxEnvelope;
use alloy::network::{Ethereum, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use zkl_contracts::bindings::ZkLink::{self, CommitBlockInfo, ExecuteBlockInfo, StoredBlockInfo};
use zkl_contracts::block::{L2Block, genesis_info};
use zkl_types::{ChainId, ChangePubKeyAuth, Op, Tx};

use zkl_node::sequencer::SequencerHandle;
use zkl_node::settlement::{
    CommitterError, HALT_KEY, Halt, L1Counters, RefusedOp, RevertPlan, counters_key, error_key, revert_key,
};
use zkl_node::storage::{BlockRecord, Storage};

use crate::client::sleep_or_stop;
use crate::proofs::{ProofError, ProofSource};
use crate::relayer::Relayer;
use crate::{ChainClient, L1Error};

/// Blocks per commit / prove / execute call.
const MAX_BATCH: u32 = 8;

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
    Relay {
        src: ChainId,
        block: u32,
        sync_hash: B256,
        sigs: Vec<Bytes>,
    },
    /// `receiveFinalBlock` for a block with the oracle's finality attestation.
    Finalize {
        block: u32,
        sigs: Vec<Bytes>,
    },
    Execute(Vec<u32>),
    /// Reverts committed blocks the node rewound (newest first).
    Revert(Vec<StoredBlockInfo>),
}

impl Action {
    fn describe(&self) -> String {
        match self {
            Action::Commit(b) => format!("commit {b:?}"),
            Action::Prove(b) => format!("prove {b:?}"),
            Action::Relay { src, block, .. } => format!("receiveSyncHash chain {src} block {block}"),
            Action::Finalize { block, .. } => format!("receiveFinalBlock {block}"),
            Action::Execute(b) => format!("execute {b:?}"),
            Action::Revert(b) => format!("revert {:?}", b.iter().map(|i| i.blockNumber).collect::<Vec<_>>()),
        }
    }
}

/// This chain's on-chain ops per commit transaction (each costs about 100,000 gas to commit).
const MAX_ONCHAIN_OPS_PER_COMMIT: usize = 64;

/// How often a chain that refused a block is asked again (a refusal can go away by itself, e.g.
/// a timestamp ahead of the chain's clock).
const REFUSAL_RECHECK: Duration = Duration::from_secs(10);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A contract's refusal, decoded: the error's name and arguments when it is one of ZkLink's.
fn describe_refusal(e: &alloy::contract::Error) -> Option<String> {
    use alloy::sol_types::SolInterface;
    if let Some(data) = e.as_revert_data() {
        return Some(match ZkLink::ZkLinkErrors::abi_decode(&data) {
            Ok(decoded) => format!("{decoded:?}"),
            Err(_) => format!("execution reverted: 0x{}", hex::encode(&data)),
        });
    }
    match e {
        // The node answered and refused (out of gas, a revert without data): not a transport
        // failure.
        alloy::contract::Error::TransportError(alloy::transports::RpcError::ErrorResp(p)) => {
            Some(p.message.to_string())
        }
        _ => None,
    }
}

/// `block` with only the first `keep` on-chain ops of `chain` (the later ones become Noop chunks
/// and their witnesses are left out).
fn with_first_onchain_ops(block: &L2Block, chain: ChainId, keep: usize) -> L2Block {
    let (mut seen, mut cpks) = (0, 0);
    let mut ops = Vec::with_capacity(block.ops.len());
    for op in &block.ops {
        if op.onchain_chain() == Some(chain) {
            seen += 1;
            if seen > keep {
                ops.extend(std::iter::repeat_n(Op::Noop, op.chunks()));
                continue;
            }
            cpks += usize::from(matches!(op, Op::ChangePubKey(_)));
        }
        ops.push(*op);
    }
    let mut out = block.clone();
    out.ops = ops;
    out.cpk_witnesses[usize::from(chain) - 1].truncate(cpks);
    out
}

pub struct Settler {
    client: ChainClient,
    storage: Arc<Storage>,
    proofs: Arc<dyn ProofSource>,
    relayer: Arc<Relayer>,
    sequencer: SequencerHandle,
    others: Vec<ChainId>,
    /// `stored[n]`: the stored info of block n on this chain (0 = genesis), computed locally.
    stored: Mutex<Vec<StoredBlockInfo>>,
    /// Proofs by block, with the commitment they prove.
    proof_cache: Mutex<HashMap<u32, (B256, [U256; 8])>>,
    published: Mutex<Option<L1Counters>>,
    /// When this chain last re-checked a block it refused.
    last_recheck: Mutex<Option<Instant>>,
    /// Per kind, the batch being waited for (see `batch_wait_ms`): its first block and since
    /// when. One timer per kind: a commit and a prove batch wait at the same time.
    batch_wait: Mutex<[Option<(u32, Instant)>; 2]>,
}

/// The actions that wait for a full batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchKind {
    Commit = 0,
    Prove = 1,
}

fn parse_b256(text: &str) -> Result<B256, String> {
    text.parse().map_err(|_| format!("{text:?} is not 32 bytes of hex"))
}

impl Settler {
    pub fn new(
        client: ChainClient,
        storage: Arc<Storage>,
        proofs: Arc<dyn ProofSource>,
        relayer: Arc<Relayer>,
        sequencer: SequencerHandle,
        others: Vec<ChainId>,
        genesis_root: B256,
    ) -> Self {
        let genesis = genesis_info(genesis_root);
        Self {
            client,
            storage,
            proofs,
            relayer,
            sequencer,
            others,
            stored: Mutex::new(vec![genesis]),
            proof_cache: Mutex::new(HashMap::new()),
            published: Mutex::new(None),
            last_recheck: Mutex::new(None),
            batch_wait: Mutex::new([None; 2]),
        }
    }

    fn chain(&self) -> ChainId {
        self.client.chain()
    }

    fn inconsistent(&self, msg: String) -> L1Error {
        L1Error::Inconsistent { chain: self.chain(), msg }
    }

    /// (Named before the committer became the settler; kept so a restarted node finds its
    /// in-flight tx.)
    fn pending_key(&self) -> String {
        format!("committer/{}/pending", self.chain())
    }

    /// The in-flight tx, if any.
    pub fn pending(&self) -> Result<Option<PendingTx>, L1Error> {
        Ok(self.storage.l1_get(&self.pending_key())?)
    }

    fn record(&self, number: u32) -> Result<BlockRecord, L1Error> {
        self.storage.block(number)?.ok_or_else(|| self.inconsistent(format!("no sealed block {number}")))
    }

    /// A block record as the contracts see it (no ChangePubKey witnesses).
    fn block_of(&self, r: &BlockRecord) -> Result<L2Block, L1Error> {
        let new_root = parse_b256(&r.new_root).map_err(|m| self.inconsistent(format!("block {}: {m}", r.number)))?;
        Ok(L2Block::new(r.number, r.timestamp, new_root, r.ops.clone(), r.capacity))
    }

    /// Sealed block `number` as the contracts see it, with the ChangePubKey witnesses of its txs.
    pub fn l2_block(&self, number: u32) -> Result<L2Block, L1Error> {
        self.l2_block_of(&self.record(number)?)
    }

    /// [`Self::l2_block`] of a record already read.
    fn l2_block_of(&self, r: &BlockRecord) -> Result<L2Block, L1Error> {
        let number = r.number;
        let bad = |m: String| self.inconsistent(format!("block {number}: {m}"));
        let mut block = self.block_of(r)?;
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
        Ok(block)
    }

    /// `stored[n]`, computing the missing ones from the sealed blocks. A cached info whose block
    /// the node has since rewound and sealed again is recomputed.
    fn stored_info(&self, n: u32) -> Result<StoredBlockInfo, L1Error> {
        let mut stored = self.stored.lock().unwrap_or_else(|p| p.into_inner());
        if n > 0 && (n as usize) < stored.len() {
            let now = parse_b256(&self.record(n)?.commitment).map_err(|e| self.inconsistent(e))?;
            if stored[n as usize].commitment != now {
                stored.truncate(n as usize);
            }
        }
        while stored.len() <= n as usize {
            let next = stored.len() as u32;
            let block = self.block_of(&self.record(next)?)?;
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
        let commitment = self.stored_info(n)?.commitment;
        if let Some((c, p)) = self.proof_cache.lock().unwrap_or_else(|p| p.into_inner()).get(&n)
            && *c == commitment
        {
            return Ok(Some(*p));
        }
        let Some(p) = self.proofs.proof(n, commitment)? else {
            return Ok(None);
        };
        self.proof_cache.lock().unwrap_or_else(|p| p.into_inner()).insert(n, (commitment, p));
        Ok(Some(p))
    }

    /// The stored infos, newest first, of the blocks `plan.from_block..=committed` as this chain
    /// committed them before the node rewound.
    fn reverted_infos(&self, plan: &RevertPlan, committed: u32) -> Result<Vec<StoredBlockInfo>, L1Error> {
        let mut prev = self.stored_info(plan.from_block - 1)?;
        let mut out = Vec::new();
        for r in plan.blocks.iter().take_while(|r| r.number <= committed) {
            let info =
                self.block_of(r)?.stored_info(&prev, self.chain()).map_err(|e| self.inconsistent(e.to_string()))?;
            out.push(info.clone());
            prev = info;
        }
        if out.last().map(|i| i.blockNumber) != Some(committed) {
            return Err(self.inconsistent(format!(
                "the contract has committed block {committed}, which the revert plan from block {} does not hold",
                plan.from_block
            )));
        }
        out.reverse();
        Ok(out)
    }

    /// The blocks to commit next from `first`: at most [`MAX_BATCH`], at most `last`, and at most
    /// [`MAX_ONCHAIN_OPS_PER_COMMIT`] on-chain ops of this chain (at least one block).
    fn commit_batch(&self, first: u32, last: u32) -> Result<Vec<u32>, L1Error> {
        let mut blocks = Vec::new();
        let mut onchain = 0;
        for n in first..=last.min(first + MAX_BATCH - 1) {
            let own = self.record(n)?.ops.iter().filter(|op| op.onchain_chain() == Some(self.chain())).count();
            if !blocks.is_empty() && onchain + own > MAX_ONCHAIN_OPS_PER_COMMIT {
                break;
            }
            onchain += own;
            blocks.push(n);
        }
        Ok(blocks)
    }

    /// Whether a batch of `kind` starting at `first` goes now: when it is `full` (it cannot grow)
    /// or its first block has been ready for `batch_wait_ms`.
    fn batch_due(&self, kind: BatchKind, first: u32, full: bool) -> bool {
        let wait = Duration::from_millis(self.client.config.batch_wait_ms);
        let mut timers = self.batch_wait.lock().unwrap_or_else(|p| p.into_inner());
        let timer = &mut timers[kind as usize];
        let since = match *timer {
            Some((n, since)) if n == first => since,
            _ => {
                let now = Instant::now();
                *timer = Some((first, now));
                now
            }
        };
        full || since.elapsed() >= wait
    }

    /// The next step, from the contract's counters; `None` if there is nothing to do yet.
    async fn next_action(&self) -> Result<Option<Action>, L1Error> {
        let chain = self.chain();
        let halt: Option<Halt> = self.storage.l1_get(HALT_KEY)?;
        let plan: Option<RevertPlan> = self.storage.l1_get(&revert_key(chain))?;
        let z = &self.client.zklink;
        let c = z.blockCounters().call().await.map_err(|e| self.client.rpc(e))?;
        self.publish(L1Counters { committed: c.committed, proven: c.proven, executed: c.executed })?;
        if let Some(plan) = plan {
            if c.committed >= plan.from_block {
                if c.executed >= plan.from_block {
                    return Err(
                        self.inconsistent(format!("block {} is executed here and cannot be reverted", plan.from_block))
                    );
                }
                return Ok(Some(Action::Revert(self.reverted_infos(&plan, c.committed)?)));
            }
            self.storage.l1_put::<RevertPlan>(&revert_key(chain), None)?;
            tracing::warn!(chain, from_block = plan.from_block, "reverted blocks are gone from this chain");
        }
        let sealed = self.storage.last_block()?.unwrap_or(0);
        if c.committed < sealed {
            let first = c.committed + 1;
            let last = match &halt {
                // The refusing chain asks again now and then, one block at a time.
                Some(h) if h.chain == chain && h.block == first => {
                    let mut at = self.last_recheck.lock().unwrap_or_else(|p| p.into_inner());
                    if at.is_some_and(|t| t.elapsed() < REFUSAL_RECHECK) {
                        first - 1
                    } else {
                        *at = Some(Instant::now());
                        first
                    }
                }
                // Nothing from the halted block on is committed anywhere.
                Some(h) => sealed.min(h.block.saturating_sub(1)),
                None => sealed,
            };
            if last >= first {
                let blocks = self.commit_batch(first, last)?;
                // Full: MAX_BATCH blocks, or cut by the on-chain ops limit; a halt never waits.
                let full = blocks.len() == MAX_BATCH as usize || blocks.last() < Some(&last) || halt.is_some();
                if self.batch_due(BatchKind::Commit, first, full) {
                    return Ok(Some(Action::Commit(blocks)));
                }
            }
        }
        if c.proven < c.committed {
            // The blocks whose proofs are ready, in order, of one capacity (one verifier checks
            // the batch; a missing proof ends it, and while the next block has none, proven
            // blocks are still executed below).
            let mut ready = Vec::new();
            let capacity = self.record(c.proven + 1)?.capacity;
            // Full: MAX_BATCH blocks, or the next committed block has another capacity; a halt
            // never waits.
            let mut full = halt.is_some();
            for n in c.proven + 1..=c.committed.min(c.proven + MAX_BATCH) {
                if self.record(n)?.capacity != capacity {
                    full = true;
                    break;
                }
                if self.proof(n)?.is_none() {
                    break;
                }
                ready.push(n);
            }
            full |= ready.len() == MAX_BATCH as usize;
            if !ready.is_empty() && self.batch_due(BatchKind::Prove, ready[0], full) {
                return Ok(Some(Action::Prove(ready)));
            }
        }
        if c.executed < c.proven {
            // Sync hashes are relayed for the proven blocks on a grid every chain agrees on
            // (multiples of MAX_BATCH), and for the newest proven block once nothing newer is
            // committed here (a quiet node's last blocks), not for every block: a sync hash
            // chains every commitment before it, so the contract checks only the last executed
            // block's. The lowest such block still missing here is relayed first.
            let mut worthy: Vec<u32> = (c.executed + 1..=c.proven).filter(|n| n % MAX_BATCH == 0).collect();
            if worthy.last() != Some(&c.proven) && c.proven == c.committed {
                worthy.push(c.proven);
            }
            let mut held = Vec::new();
            for &n in &worthy {
                match self.missing_sync_hash(n).await? {
                    None => held.push(n),
                    Some((src, own)) => {
                        let (evm, contract) = (self.client.config.evm_chain_id, *z.address());
                        match self.relayer.collect(src, n, evm, contract).await? {
                            Some((sync_hash, _)) if sync_hash != own => {
                                return Err(self.inconsistent(format!(
                                    "block {n}: chain {src} committed sync hash {sync_hash}, this chain {own}"
                                )));
                            }
                            Some((sync_hash, sigs)) => {
                                return Ok(Some(Action::Relay { src, block: n, sync_hash, sigs }));
                            }
                            // That chain has not committed it yet.
                            None => {}
                        }
                    }
                }
            }
            let final_ = z.exodusStatus().call().await.map_err(|e| self.client.rpc(e))?.totalBlocksFinal;
            // Final once every chain holds every other chain's sync hash of it (their settlers
            // relay on the same grid), if the oracle attests it: the newest such block it
            // attests, walking down (a chain whose confirmations lag makes the newest ones wait,
            // never the older ones).
            for &n in held.iter().rev().filter(|&&n| n > final_) {
                let own = self.stored_info(n)?.syncHash;
                match self.relayer.collect_final(n).await? {
                    Some((sync_hash, _)) if sync_hash != own => {
                        return Err(self.inconsistent(format!(
                            "block {n}: the oracle attests sync hash {sync_hash} final, this chain committed {own}"
                        )));
                    }
                    Some((_, sigs)) => return Ok(Some(Action::Finalize { block: n, sigs })),
                    None => {}
                }
            }
            // Final blocks, at most MAX_BATCH, ending at one whose sync hashes this chain holds.
            let mut last = c.executed;
            for n in (c.executed + 1..=final_.min(c.proven).min(c.executed + MAX_BATCH)).rev() {
                if self.missing_sync_hash(n).await?.is_none() {
                    last = n;
                    break;
                }
            }
            return Ok((last > c.executed).then(|| Action::Execute((c.executed + 1..=last).collect())));
        }
        Ok(None)
    }

    /// The first other chain whose sync hash of block `n` this chain does not hold, with this
    /// chain's own sync hash of `n`; `None` if it holds them all.
    async fn missing_sync_hash(&self, n: u32) -> Result<Option<(ChainId, B256)>, L1Error> {
        let own = self.stored_info(n)?.syncHash;
        for &src in &self.others {
            let held = self.client.zklink.isSyncHashReceived(src, own).call().await.map_err(|e| self.client.rpc(e))?;
            if !held {
                return Ok(Some((src, own)));
            }
        }
        Ok(None)
    }

    /// The commit calldata of `blocks` after `prev`.
    fn commit_infos(&self, blocks: &[L2Block]) -> Result<Vec<CommitBlockInfo>, L1Error> {
        let da = self.client.config.data_availability;
        blocks.iter().map(|b| b.commit_info(self.chain(), da).map_err(|e| self.inconsistent(e.to_string()))).collect()
    }

    /// Simulates committing `blocks` after `prev`: `Ok(None)` if the contract accepts, the
    /// decoded refusal otherwise.
    async fn simulate_commit(&self, prev: &StoredBlockInfo, blocks: &[L2Block]) -> Result<Option<String>, L1Error> {
        let call = self.client.zklink.commitBlocks(prev.clone(), self.commit_infos(blocks)?).from(self.client.sender);
        match call.estimate_gas().await {
            Ok(_) => Ok(None),
            Err(e) => describe_refusal(&e).map(Some).ok_or_else(|| self.client.rpc(e)),
        }
    }

    /// This chain refused to commit `blocks`: finds the block and the op, and halts settlement.
    async fn halt_on_refusal(&self, blocks: &[u32], error: String) -> Result<Halt, L1Error> {
        let chain = self.chain();
        let prev = self.stored_info(blocks[0] - 1)?;
        let mut batch = Vec::new();
        let mut refused = None;
        for &n in blocks {
            // The record is read once: the halt names the block by its commitment, so a halt
            // found on a block the operator has rewound meanwhile is ignored by the sequencer.
            let record = self.record(n)?;
            batch.push(self.l2_block_of(&record)?);
            if let Some(e) = self.simulate_commit(&prev, &batch).await? {
                refused = Some((record, e));
                break;
            }
        }
        // A refusal that does not reproduce (the chain moved on meanwhile) halts nothing; the
        // next step simulates again.
        let (Some((record, error)), Some(block)) = (refused, batch.pop()) else {
            let action = format!("commit {blocks:?}");
            return Err(L1Error::Refused { chain, action, error: format!("{error} (did not reproduce)") });
        };
        // The shortest prefix of the block's on-chain ops of this chain that is refused ends with
        // the refused op (refusals are monotone in the prefix); none if even no op is refused.
        let own = block.onchain_ops(chain).count();
        let (mut lo, mut hi) = (0, own + 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let prefix = with_first_onchain_ops(&block, chain, mid);
            let mut candidate = batch.clone();
            candidate.push(prefix);
            if self.simulate_commit(&prev, &candidate).await?.is_some() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let n = record.number;
        let op = (1..=own).contains(&lo).then(|| {
            let index = record
                .ops
                .iter()
                .enumerate()
                .filter(|(_, op)| op.onchain_chain() == Some(chain))
                .nth(lo - 1)
                .map_or(0, |(i, _)| i);
            let kind = serde_json::to_value(record.ops[index])
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_string))
                .unwrap_or_default();
            RefusedOp { index, kind, hash: record.op_hashes.get(index).cloned().unwrap_or_default() }
        });
        let old: Option<Halt> = self.storage.l1_get(HALT_KEY)?;
        let since_ms = match &old {
            Some(h) if h.chain == chain && h.block == n => h.since_ms,
            _ => now_ms(),
        };
        let halt = Halt { block: n, chain, error, op, since_ms };
        if old.as_ref().is_none_or(|h| h.block > n || (h.block == n && h.chain == chain)) {
            self.sequencer.halt(halt.clone(), record.commitment).await.map_err(L1Error::Sequencer)?;
        }
        Ok(halt)
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
        let chain = self.chain();
        let fail = |e: &dyn std::fmt::Display| self.client.rpc(format!("{}: {e}", action.describe()));
        macro_rules! go {
            ($call:expr) => {{
                let call = $call.from(from);
                let gas = match call.estimate_gas().await {
                    Ok(gas) => gas,
                    Err(e) => {
                        return Err(match describe_refusal(&e) {
                            Some(error) => L1Error::Refused { chain, action: action.describe(), error },
                            None => fail(&e),
                        });
                    }
                };
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
                let blocks = blocks.iter().map(|&n| self.l2_block(n)).collect::<Result<Vec<_>, _>>()?;
                go!(z.commitBlocks(prev, self.commit_infos(&blocks)?))
            }
            Action::Prove(blocks) => {
                let mut infos = Vec::new();
                let mut proofs = Vec::new();
                for &n in blocks {
                    infos.push(self.stored_info(n)?);
                    proofs.push(self.proof(n)?.ok_or(ProofError::Missing(n))?);
                }
                let capacity = self.record(blocks[0])?.capacity;
                let capacity =
                    u32::try_from(capacity).map_err(|_| self.inconsistent(format!("capacity {capacity}")))?;
                go!(z.proveBlocks(infos, proofs, capacity))
            }
            Action::Relay { src, block, sync_hash, sigs } => {
                go!(z.receiveSyncHash(*src, *block, *sync_hash, sigs.clone()))
            }
            Action::Finalize { block, sigs } => go!(z.receiveFinalBlock(self.stored_info(*block)?, sigs.clone())),
            Action::Execute(blocks) => {
                let mut infos = Vec::new();
                for &n in blocks {
                    let withdrawals = self.l2_block(n)?.packed_withdrawals(self.chain());
                    infos.push(ExecuteBlockInfo { storedBlock: self.stored_info(n)?, withdrawals });
                }
                go!(z.executeBlocks(infos))
            }
            Action::Revert(infos) => go!(z.revertBlocks(infos.clone())),
        }
    }

    /// Simulates and signs `action`. A refused commit halts settlement (the error says where);
    /// a commit that passes again lifts this chain's halt.
    async fn sign_checked(
        &self,
        action: &Action,
        nonce: u64,
        max_fee: u128,
        priority_fee: u128,
    ) -> Result<TxEnvelope, L1Error> {
        match self.sign(action, nonce, max_fee, priority_fee).await {
            Err(L1Error::Refused { error, .. }) if matches!(action, Action::Commit(_)) => {
                let Action::Commit(blocks) = action else { unreachable!() };
                let halt = self.halt_on_refusal(blocks, error).await?;
                Err(L1Error::Halted(Box::new(halt)))
            }
            Ok(env) => {
                if let Action::Commit(blocks) = action {
                    let halt: Option<Halt> = self.storage.l1_get(HALT_KEY)?;
                    if halt.is_some_and(|h| h.chain == self.chain() && blocks.contains(&h.block)) {
                        self.sequencer.lift_halt().await.map_err(L1Error::Sequencer)?;
                    }
                }
                Ok(env)
            }
            Err(e) => Err(e),
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
            let env = self.sign_checked(&action, p.nonce, p.max_fee, p.priority_fee).await?;
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
        let env = self.sign_checked(&action, nonce, max_fee, priority_fee).await?;
        let hash = self.record_and_broadcast(&mut p, env).await?;
        tracing::info!(chain = self.chain(), action = %p.action, tx = %hash, nonce, "sent");
        Ok(Some(p.action))
    }

    /// Publishes the outcome of a step for `zkl_l1Status` (the last error, cleared by a success).
    fn report(&self, result: &Result<Option<String>, L1Error>) -> Result<(), L1Error> {
        let key = error_key(self.chain());
        match result {
            Ok(Some(_)) => self.storage.l1_put::<CommitterError>(&key, None)?,
            Ok(None) => {}
            Err(e) => {
                let (action, error) = match e {
                    L1Error::Refused { action, error, .. } => (action.clone(), error.clone()),
                    L1Error::Halted(h) => (format!("commit [{}]", h.block), h.to_string()),
                    other => (String::new(), other.to_string()),
                };
                self.storage.l1_put(&key, Some(&CommitterError { action, error, at_ms: now_ms() }))?;
            }
        }
        Ok(())
    }

    /// Runs until asked to stop; errors are logged and the step retried.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.client.config.poll_ms);
        loop {
            let result = self.tick().await;
            if let Err(err) = &result {
                tracing::warn!(chain = self.chain(), %err, "settler");
            }
            if let Err(err) = self.report(&result) {
                tracing::warn!(chain = self.chain(), %err, "settler status");
            }
            if sleep_or_stop(poll, &mut stop).await {
                return;
            }
        }
    }
}
