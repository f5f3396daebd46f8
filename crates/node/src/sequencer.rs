//! The sequencer: one thread owns all writes. It takes txs in batches, checks their signatures in
//! parallel, executes them into the block being built, seals blocks by size or time, and commits
//! everything it accepted to the log in one durable write before it answers.
//!
//! While settlement is halted (a chain refused a block, see [`crate::settlement`]) it seals
//! nothing and refuses new txs and priority requests with the halt's reason, until the operator
//! rewinds ([`Request::Rewind`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use tokio::sync::{broadcast, oneshot};
use zkl_crypto::fr_to_hex;
use zkl_state::{SealedBlock, State, TxError};
use zkl_types::op::chunks_of;
use zkl_types::{AccountId, AuthFact, ChainId, Nonce, PriorityRequest, SignedTx, Tx};

use crate::config::FeePolicy;
use crate::metrics::Metrics;
use crate::replay::{Replay, check_serial};
use crate::settlement::{HALT_KEY, Halt, RevertPlan, RewindReport, progress_key, revert_key};
use zkl_rpc_api::AccountChange;

use crate::storage::{
    Batch, BlockRecord, LogEntry, PriorityRecord, QueuedTx, Storage, StorageError, TxRecord, TxStatus,
};

/// Why the sequencer refused work. The message is the one-line reason the API returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequencerError {
    /// A rule of the state machine.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The node's fee policy (too low, or a token it does not take).
    #[error("{0}")]
    Fee(String),
    /// The future-nonce queue's limits, or a different tx for a queued nonce.
    #[error("{0}")]
    Queue(String),
    /// A priority request whose serial was already applied.
    #[error("{0}")]
    DuplicatePriority(String),
    /// Settlement is halted: no new work until the operator reverts.
    #[error("{0}")]
    Halted(Box<Halt>),
    /// A rewind that cannot be done (nothing changed).
    #[error("{0}")]
    Rewind(String),
    /// The sequencer is gone (shut down, or stopped on a storage failure).
    #[error("sequencer stopped")]
    Stopped,
}

/// What the sequencer is asked to do.
pub enum Request {
    /// Txs to execute in order; the reply holds each tx's hash or its rejection.
    Txs(Vec<SignedTx>, oneshot::Sender<Vec<Result<[u8; 32], SequencerError>>>),
    /// A priority operation (from a chain watcher, or the dev endpoint).
    Priority(PriorityRequest, oneshot::Sender<Result<zkl_types::Op, SequencerError>>),
    /// Seal the current block now if it holds anything.
    Seal(oneshot::Sender<Option<u32>>),
    /// The lowest serial id of chain `chain` not applied yet (0 if none was).
    NextSerial(zkl_types::ChainId, oneshot::Sender<u64>),
    /// An on-chain ChangePubKey authorisation read from a chain; the reply says whether it was new.
    AuthFact(AuthFact, oneshot::Sender<bool>),
    /// Settlement halted (`Some`): stop sealing and refuse new work; the record is persisted.
    /// The halt names the refused block's commitment: a settler that simulated a block the
    /// operator has rewound (and maybe sealed again) meanwhile must not halt the new one, so a
    /// halt whose block no longer has that commitment is ignored. `None` lifts the halt (the
    /// refusal went away by itself).
    Halt(Option<(Halt, String)>, oneshot::Sender<()>),
    /// The operator's way out of a halt (processed alone, after the work received with it).
    Rewind(Rewind, oneshot::Sender<Result<RewindReport, SequencerError>>),
}

/// Rewind to the end of block `from_block − 1` and re-sequence everything after it except
/// `drop`; the chains' settlers revert the blocks they committed (`plans`).
#[derive(Debug, Clone)]
pub struct Rewind {
    pub from_block: u32,
    /// Hashes of txs (their signed hash) or priority requests (`keccak256(chain ‖ serial)`) to
    /// leave out. Leaving out a priority request leaves out the later ones of its chain too,
    /// and the chain's watcher reads them again from the contract.
    pub drop: HashSet<[u8; 32]>,
    /// Recorded as the dropped txs' rejection reason.
    pub reason: String,
    pub plans: Vec<(ChainId, RevertPlan)>,
}

/// Events published to subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    Block(Arc<BlockRecord>),
    /// A queued tx changed status (executed into the block being built, or rejected).
    Tx(Arc<TxRecord>),
    /// Blocks from this number on were rewound (their records replaced or gone).
    Rewind(u32),
    /// The accounts the txs and priority ops executed since the last publication changed.
    Accounts(Arc<Vec<AccountChange>>),
}

/// Entry rules of the node that are policy, not protocol: minimum fees and the future-nonce
/// queue's limits.
#[derive(Debug, Clone)]
pub struct Policy {
    pub fees: FeePolicy,
    /// Queued txs per account, and how far ahead of the account's nonce one may be.
    pub max_queued_per_account: usize,
    /// Queued txs in all.
    pub max_queued: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { fees: FeePolicy::default(), max_queued_per_account: 16, max_queued: 100_000 }
    }
}

/// The chunks `tx` will occupy in the state `state` (a transfer to an unknown address creates
/// the account: three chunks).
pub fn tx_chunks(state: &State, tx: &Tx) -> usize {
    chunks_of(state.op_code_of(tx.kind(), tx.recipient())).expect("known op code")
}

/// Checks `tx`'s fee against the policy in state `state`.
pub fn check_fee(policy: &FeePolicy, state: &State, tx: &Tx) -> Result<(), SequencerError> {
    let Some((token, fee)) = tx.fee() else { return Ok(()) };
    match policy.min_fee(token, tx_chunks(state, tx)).map_err(SequencerError::Fee)? {
        Some(min) if fee < min => Err(SequencerError::Fee(format!(
            "fee {fee} is below the node's minimum {min} in token {token} for this {} (see zkl_estimateFee)",
            tx.name()
        ))),
        _ => Ok(()),
    }
}

pub struct Sequencer {
    pub state: Arc<RwLock<State>>,
    /// The state before any log entry (rewinds replay from it).
    genesis: State,
    pub storage: Arc<Storage>,
    pub events: broadcast::Sender<Event>,
    pub block_time: Duration,
    /// Smaller capacities a block may be sealed at (`NodeConfig::block_capacities`).
    pub capacities: Vec<usize>,
    next_seq: u64,
    pending: Vec<([u8; 32], TxRecord)>,
    /// Per op of the block being built, the hash of its tx or priority request.
    pending_ops: Vec<[u8; 32]>,
    /// The priority requests of the block being built.
    pending_priority: Vec<([u8; 32], PriorityRecord)>,
    block_started: Option<Instant>,
    /// Future-nonce txs by (account, nonce).
    queue: BTreeMap<(AccountId, Nonce), ([u8; 32], SignedTx)>,
    pub policy: Policy,
    pub metrics: Arc<Metrics>,
    /// Per chain: one past the highest priority serial id applied (a request at or below the
    /// highest one is a duplicate and refused).
    next_serial: HashMap<zkl_types::ChainId, u64>,
    /// Settlement halted: nothing is sealed and new work is refused.
    halt: Option<Halt>,
    /// Events to publish once the work that produced them is durable.
    outbox: Vec<Event>,
    /// The accounts changed by the work since the last publication ([`Event::Accounts`]).
    changes: Vec<AccountChange>,
}

fn hex32(h: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(h))
}

/// The API's view of a sealed block.
pub fn block_record(b: &SealedBlock, tx_hashes: Vec<String>, op_hashes: Vec<String>) -> BlockRecord {
    BlockRecord {
        number: b.number,
        timestamp: b.timestamp,
        capacity: b.capacity,
        old_root: fr_to_hex(&b.commitment.old_root),
        new_root: fr_to_hex(&b.commitment.new_root),
        commitment: hex32(&b.commitment_hash),
        public_input: fr_to_hex(&b.public_input),
        tx_hashes,
        ops: b.ops.clone(),
        op_hashes,
        pubdata: format!("0x{}", hex::encode(&b.pubdata)),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Sequencer {
    /// Rebuilds the state by replaying the log.
    pub fn recover(genesis: State, storage: Arc<Storage>, block_time: Duration) -> Result<Self, StorageError> {
        let log = storage.log()?;
        let mut replay = Replay::new(genesis.clone());
        replay.apply_all(log.iter().map(|(seq, e)| (*seq, e)))?;
        let Replay { state, next_seq, next_serial } = replay;
        // The block being built: the entries after the last seal, oldest first.
        let mut since_seal: Vec<_> =
            log.iter().rev().take_while(|(_, e)| !matches!(e, LogEntry::Seal { .. })).collect();
        since_seal.reverse();
        let (mut pending, mut pending_ops, mut pending_priority) = (Vec::new(), Vec::new(), Vec::new());
        for (seq, e) in since_seal {
            match e {
                LogEntry::Tx { tx } => {
                    let record = TxRecord {
                        hash: hex32(&tx.hash()),
                        seq: Some(*seq),
                        status: TxStatus::Pending,
                        tx: tx.clone(),
                    };
                    pending.push((tx.hash(), record));
                    pending_ops.push(tx.hash());
                }
                LogEntry::Priority { request } => {
                    let hash = request.hash();
                    pending_ops.push(hash);
                    if let Some(r) = storage.priority(&hash)? {
                        pending_priority.push((hash, r));
                    }
                }
                LogEntry::AuthFact { .. } | LogEntry::Seal { .. } => {}
            }
        }
        let halt = storage.l1_get::<Halt>(HALT_KEY)?;
        let block_started = (!state.pending_ops().is_empty()).then(Instant::now);
        let (events, _) = broadcast::channel(1024);
        let queue = storage.queued()?.into_iter().map(|(hash, q)| ((q.account, q.nonce), (hash, q.tx))).collect();
        let metrics = Metrics::new();
        metrics.halted.set(i64::from(halt.is_some()));
        metrics.last_block.set(i64::from(state.last_block()));
        metrics.accounts.set(i64::from(state.account_count()));
        Ok(Sequencer {
            state: Arc::new(RwLock::new(state)),
            genesis,
            storage,
            events,
            block_time,
            capacities: Vec::new(),
            next_seq,
            pending,
            pending_ops,
            pending_priority,
            block_started,
            queue,
            policy: Policy::default(),
            metrics,
            next_serial,
            halt,
            outbox: Vec::new(),
            changes: Vec::new(),
        })
    }

    fn seal(&mut self, batch: &mut Batch, state: &mut State) -> u32 {
        let capacity = state.fitting_capacity(&self.capacities);
        self.seal_at(batch, state, capacity)
    }

    /// Seals the block being built at `capacity` ([`State::fitting_capacity`], decided before
    /// its fees were credited).
    fn seal_at(&mut self, batch: &mut Batch, state: &mut State, capacity: usize) -> u32 {
        let timestamp = now();
        let block = state.seal_block_at(timestamp, Some(capacity));
        batch.log(self.next_seq, &LogEntry::Seal { timestamp, capacity: Some(block.capacity) });
        self.next_seq += 1;
        let mut hashes = Vec::with_capacity(self.pending.len());
        for (hash, mut record) in self.pending.drain(..) {
            record.status = TxStatus::Included { block: block.number };
            hashes.push(record.hash.clone());
            batch.tx(&hash, &record);
        }
        for (hash, mut record) in self.pending_priority.drain(..) {
            record.status = TxStatus::Included { block: block.number };
            batch.priority(&hash, &record);
        }
        let op_hashes = self.pending_ops.drain(..).map(|h| hex32(&h)).collect();
        let record = block_record(&block, hashes, op_hashes);
        batch.block(&record);
        self.outbox.push(Event::Block(Arc::new(record)));
        self.block_started = None;
        self.metrics.blocks_sealed.inc();
        self.metrics.last_block.set(i64::from(block.number));
        block.number
    }

    /// Executes one verified tx into the block being built (sealing first if it does not fit)
    /// and records it in the log.
    fn execute_one(
        &mut self,
        tx: &SignedTx,
        keys: &zkl_state::VerifiedKeys,
        batch: &mut Batch,
        state: &mut State,
    ) -> Result<[u8; 32], TxError> {
        let mut result = state.execute_verified(tx, keys);
        if matches!(result, Err(ref e) if needs_new_block(e)) {
            self.seal(batch, state);
            result = state.execute_verified(tx, keys);
        }
        let op = result?;
        let matcher = match &tx.tx {
            Tx::OrderMatching(m) => Some(m.matcher),
            _ => None,
        };
        self.changes.push(AccountChange { matcher, accounts: op.accounts() });
        let hash = keys.tx_hash();
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.log(seq, &LogEntry::Tx { tx: tx.clone() });
        let record = TxRecord { hash: hex32(&hash), seq: Some(seq), status: TxStatus::Pending, tx: tx.clone() };
        batch.tx(&hash, &record);
        self.pending.push((hash, record));
        self.pending_ops.push(hash);
        self.block_started.get_or_insert_with(Instant::now);
        self.metrics.txs_accepted.inc();
        Ok(hash)
    }

    /// Puts a tx whose nonce is ahead of its account's into the queue, within the limits.
    fn enqueue(
        &mut self,
        tx: &SignedTx,
        account: AccountId,
        expected: Nonce,
        got: Nonce,
        batch: &mut Batch,
    ) -> Result<[u8; 32], SequencerError> {
        let hash = tx.hash();
        let limit = self.policy.max_queued_per_account;
        if let Some((queued, _)) = self.queue.get(&(account, got)) {
            return if *queued == hash {
                Ok(hash)
            } else {
                Err(SequencerError::Queue(format!("account {account} already has a queued tx with nonce {got}")))
            };
        }
        if u64::from(got - expected) > limit as u64 {
            return Err(SequencerError::Queue(format!(
                "nonce {got} is too far ahead of account {account}'s nonce {expected} (the queue holds at most {limit} ahead)"
            )));
        }
        if self.queue.range((account, 0)..=(account, Nonce::MAX)).count() >= limit {
            return Err(SequencerError::Queue(format!("account {account} already has {limit} queued txs")));
        }
        if self.queue.len() >= self.policy.max_queued {
            return Err(SequencerError::Queue("the node's queue is full; retry later".into()));
        }
        batch.enqueue(&hash, &QueuedTx { account, nonce: got, tx: tx.clone() });
        batch.tx(&hash, &TxRecord { hash: hex32(&hash), seq: None, status: TxStatus::Queued, tx: tx.clone() });
        self.queue.insert((account, got), (hash, tx.clone()));
        self.metrics.txs_queued.inc();
        self.metrics.queue_len.set(self.queue.len() as i64);
        Ok(hash)
    }

    /// Executes `account`'s queued txs while the next one's nonce is the account's nonce. A
    /// queued tx that fails is rejected with the state machine's reason and leaves the queue.
    fn drain_queue(&mut self, account: AccountId, batch: &mut Batch, state: &mut State) {
        while let Some(nonce) = state.account(account).map(|a| a.nonce) {
            let Some((hash, tx)) = self.queue.remove(&(account, nonce)) else { break };
            batch.dequeue(&hash);
            let result = check_fee(&self.policy.fees, state, &tx.tx)
                .and_then(|()| Ok(state.verify_signatures(&tx)?))
                .and_then(|keys| Ok(self.execute_one(&tx, &keys, batch, state)?))
                .map_err(|e| e.to_string());
            let record = match result {
                Ok(_) => self.pending.last().map(|(_, r)| r.clone()),
                Err(reason) => {
                    self.metrics.txs_rejected.inc();
                    let record = TxRecord { hash: hex32(&hash), seq: None, status: TxStatus::Rejected { reason }, tx };
                    batch.tx(&hash, &record);
                    Some(record)
                }
            };
            if let Some(record) = record {
                self.outbox.push(Event::Tx(Arc::new(record)));
            }
        }
        self.metrics.queue_len.set(self.queue.len() as i64);
    }

    fn execute_txs(
        &mut self,
        txs: &[SignedTx],
        batch: &mut Batch,
        state: &mut State,
    ) -> Vec<Result<[u8; 32], SequencerError>> {
        let verified: Vec<_> = {
            let s: &State = state;
            txs.par_iter().map(|t| s.verify_signatures(t)).collect()
        };
        let mut out = Vec::with_capacity(txs.len());
        for (tx, keys) in txs.iter().zip(verified) {
            let result = check_fee(&self.policy.fees, state, &tx.tx)
                .map_err(|e| (None, e))
                .and_then(|()| keys.map_err(|e| (None, e.into())))
                .and_then(|keys| {
                    self.execute_one(tx, &keys, batch, state).map_err(|e| match e {
                        TxError::BadNonce { account, expected, got } if got > expected => {
                            (Some((account, expected, got)), e.into())
                        }
                        e => (None, e.into()),
                    })
                });
            out.push(match result {
                Ok(hash) => {
                    self.drain_queue(tx.tx.signer(), batch, state);
                    Ok(hash)
                }
                Err((Some((account, expected, got)), _)) => self.enqueue(tx, account, expected, got, batch),
                Err((None, e)) => Err(e),
            });
            if out.last().is_some_and(|r| r.is_err()) {
                self.metrics.txs_rejected.inc();
            }
        }
        self.metrics.accounts.set(i64::from(state.account_count()));
        out
    }

    /// After recovery: executes queued txs whose turn has come and rejects those whose nonce
    /// has passed (neither happens unless the queue was written by an older node).
    fn sweep_queue(&mut self) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        let state_lock = Arc::clone(&self.state);
        let mut state = state_lock.write().unwrap_or_else(|p| p.into_inner());
        let accounts: std::collections::BTreeSet<AccountId> = self.queue.keys().map(|(a, _)| *a).collect();
        for account in accounts {
            let nonce = state.account(account).map_or(0, |a| a.nonce);
            let stale: Vec<_> = self.queue.range((account, 0)..(account, nonce)).map(|(k, _)| *k).collect();
            for key in stale {
                if let Some((hash, tx)) = self.queue.remove(&key) {
                    batch.dequeue(&hash);
                    let reason = format!("nonce {} was used by another tx", key.1);
                    batch.tx(
                        &hash,
                        &TxRecord { hash: hex32(&hash), seq: None, status: TxStatus::Rejected { reason }, tx },
                    );
                }
            }
            self.drain_queue(account, &mut batch, &mut state);
        }
        drop(state);
        self.storage.commit(batch)?;
        self.publish();
        Ok(())
    }

    /// Seals the block whose time is up. Its roots are hashed under the state's read lock, so
    /// account reads go on meanwhile: only this thread writes the state, so nothing changes it
    /// between the plan and its application.
    fn seal_due(&mut self) -> Result<(), StorageError> {
        let state_lock = Arc::clone(&self.state);
        let capacity = {
            let mut state = state_lock.write().unwrap_or_else(|p| p.into_inner());
            if state.pending_ops().is_empty() {
                return Ok(());
            }
            // Decided before the fees are credited (they count as the block's fee tokens).
            let capacity = state.fitting_capacity(&self.capacities);
            state.credit_fees();
            capacity
        };
        let plan = state_lock.read().unwrap_or_else(|p| p.into_inner()).plan_commit();
        let mut batch = Batch::default();
        let mut state = state_lock.write().unwrap_or_else(|p| p.into_inner());
        state.apply_commit(plan);
        self.seal_at(&mut batch, &mut state, capacity);
        drop(state);
        self.commit(batch)
    }

    /// Makes `batch` durable, then publishes its events.
    fn commit(&mut self, batch: Batch) -> Result<(), StorageError> {
        // Which accounts changed goes out first: the state already shows it to readers, and a
        // follower that reads an account again for nothing (the commit failing) loses nothing.
        self.publish_changes();
        let started = Instant::now();
        self.storage.commit(batch)?;
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        self.publish();
        Ok(())
    }

    /// Publishes the events of durable work.
    fn publish(&mut self) {
        for event in self.outbox.drain(..) {
            let _ = self.events.send(event);
        }
        self.publish_changes();
    }

    /// Publishes which accounts the work since the last publication changed.
    fn publish_changes(&mut self) {
        if !self.changes.is_empty() {
            let _ = self.events.send(Event::Accounts(Arc::new(std::mem::take(&mut self.changes))));
        }
    }

    /// Applies a priority request into the block being built (sealing first if it does not fit)
    /// and logs it.
    fn execute_priority(
        &mut self,
        request: &PriorityRequest,
        batch: &mut Batch,
        state: &mut State,
    ) -> Result<zkl_types::Op, SequencerError> {
        check_serial(&self.next_serial, request).map_err(SequencerError::DuplicatePriority)?;
        let mut result = state.execute_priority(request);
        if matches!(result, Err(ref e) if needs_new_block(e)) {
            self.seal(batch, state);
            result = state.execute_priority(request);
        }
        let op = result?;
        self.changes.push(AccountChange { matcher: None, accounts: op.accounts() });
        self.next_serial.insert(request.chain(), request.serial_id() + 1);
        let hash = request.hash();
        let record = PriorityRecord { hash: hex32(&hash), status: TxStatus::Pending, request: request.clone(), op };
        batch.priority(&hash, &record);
        self.pending_priority.push((hash, record));
        self.pending_ops.push(hash);
        batch.log(self.next_seq, &LogEntry::Priority { request: request.clone() });
        self.next_seq += 1;
        self.block_started.get_or_insert_with(Instant::now);
        self.metrics.priority_ops.inc();
        Ok(op)
    }

    /// Records an on-chain authorisation (logged once, before any tx that uses it).
    fn add_auth_fact(&mut self, fact: AuthFact, batch: &mut Batch, state: &mut State) -> bool {
        let new = state.add_auth_fact(fact);
        if new {
            batch.log(self.next_seq, &LogEntry::AuthFact { fact });
            self.next_seq += 1;
        }
        new
    }

    fn reject(&mut self, batch: &mut Batch, hash: [u8; 32], tx: SignedTx, reason: String) {
        self.metrics.txs_rejected.inc();
        let record = TxRecord { hash: hex32(&hash), seq: None, status: TxStatus::Rejected { reason }, tx };
        batch.tx(&hash, &record);
        self.outbox.push(Event::Tx(Arc::new(record)));
    }

    /// Rewinds to the end of block `from_block − 1` and re-sequences what came after (see
    /// [`Rewind`]), in one durable write. On error nothing changes.
    fn rewind(&mut self, args: Rewind) -> Result<RewindReport, SequencerError> {
        let last = self.state.read().unwrap_or_else(|p| p.into_inner()).last_block();
        if args.from_block == 0 || args.from_block > last {
            return Err(SequencerError::Rewind(format!(
                "block {} is not a sealed block (the last is {last})",
                args.from_block
            )));
        }
        let log = self.storage.log().map_err(|e| SequencerError::Rewind(e.to_string()))?;
        // The log up to the seal of block from_block − 1 stays; the rest is re-sequenced.
        let mut seals = 0;
        let cut = log
            .iter()
            .position(|(_, e)| {
                if seals == args.from_block - 1 {
                    return true;
                }
                seals += u32::from(matches!(e, LogEntry::Seal { .. }));
                false
            })
            .unwrap_or(log.len());
        let (kept, tail) = log.split_at(cut);
        let cut_seq = tail.first().map_or(self.next_seq, |(seq, _)| *seq);
        let mut replay = Replay::new(self.genesis.clone());
        replay.apply_all(kept.iter().map(|(seq, e)| (*seq, e))).map_err(|e| SequencerError::Rewind(e.to_string()))?;
        let Replay { mut state, next_serial, .. } = replay;

        // Dropped priority requests: that serial and every later one of the chain.
        let mut dropped_from: HashMap<ChainId, u64> = HashMap::new();
        for (_, e) in tail {
            if let LogEntry::Priority { request } = e
                && args.drop.contains(&request.hash())
            {
                let first = dropped_from.entry(request.chain()).or_insert(u64::MAX);
                *first = (*first).min(request.serial_id());
            }
        }

        let saved = (
            self.next_seq,
            std::mem::take(&mut self.pending),
            std::mem::take(&mut self.pending_ops),
            std::mem::take(&mut self.pending_priority),
            self.block_started.take(),
            std::mem::replace(&mut self.next_serial, next_serial),
            self.queue.clone(),
        );
        self.next_seq = cut_seq;
        let mut batch = Batch::default();
        batch.truncate(cut_seq, args.from_block);
        for (chain, plan) in &args.plans {
            batch.l1(&revert_key(*chain), Some(plan));
        }
        batch.l1::<Halt>(HALT_KEY, None);
        for chain in dropped_from.keys() {
            batch.l1::<()>(&progress_key(*chain), None);
        }
        let mut report = RewindReport { from_block: args.from_block, ..RewindReport::default() };
        let result = self.resequence(tail, &args, &dropped_from, &mut batch, &mut state, &mut report);
        let result =
            result.and_then(|()| self.storage.commit(batch).map_err(|e| SequencerError::Rewind(e.to_string())));
        if let Err(e) = result {
            (
                self.next_seq,
                self.pending,
                self.pending_ops,
                self.pending_priority,
                self.block_started,
                self.next_serial,
                self.queue,
            ) = saved;
            self.outbox.clear();
            self.changes.clear();
            return Err(SequencerError::Rewind(format!(
                "rewind to block {} failed, nothing changed: {e}",
                args.from_block
            )));
        }
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
        self.halt = None;
        self.metrics.halted.set(0);
        // The rewind tells every account follower to read again.
        self.changes.clear();
        self.outbox.insert(0, Event::Rewind(args.from_block));
        self.publish();
        tracing::warn!(?report, "rewound and re-sequenced");
        Ok(report)
    }

    fn resequence(
        &mut self,
        tail: &[(u64, LogEntry)],
        args: &Rewind,
        dropped_from: &HashMap<ChainId, u64>,
        batch: &mut Batch,
        state: &mut State,
        report: &mut RewindReport,
    ) -> Result<(), SequencerError> {
        let mut signers = BTreeSet::new();
        for (_, entry) in tail {
            match entry {
                LogEntry::Tx { tx } => {
                    let hash = tx.hash();
                    if args.drop.contains(&hash) {
                        report.dropped.push(hex32(&hash));
                        self.reject(batch, hash, tx.clone(), args.reason.clone());
                        continue;
                    }
                    let result = state.verify_signatures(tx).and_then(|keys| self.execute_one(tx, &keys, batch, state));
                    match result {
                        Ok(_) => report.requeued += 1,
                        Err(e) => {
                            let reason = format!("no longer valid after block {} was reverted: {e}", args.from_block);
                            report.rejected.push((hex32(&hash), reason.clone()));
                            self.reject(batch, hash, tx.clone(), reason);
                        }
                    }
                    signers.insert(tx.tx.signer());
                }
                LogEntry::Priority { request } => {
                    if dropped_from.get(&request.chain()).is_some_and(|first| request.serial_id() >= *first) {
                        let hash = request.hash();
                        report.dropped.push(hex32(&hash));
                        if let Ok(Some(mut record)) = self.storage.priority(&hash) {
                            let reason = format!(
                                "{}; the chain's queue from serial {} is read again",
                                args.reason,
                                dropped_from[&request.chain()]
                            );
                            record.status = TxStatus::Rejected { reason };
                            batch.priority(&hash, &record);
                        }
                        continue;
                    }
                    self.execute_priority(request, batch, state)?;
                    report.priority += 1;
                }
                LogEntry::AuthFact { fact } => {
                    self.add_auth_fact(*fact, batch, state);
                }
                LogEntry::Seal { .. } => {}
            }
        }
        for account in signers {
            self.drain_queue(account, batch, state);
        }
        Ok(())
    }

    /// Runs until every request sender is gone.
    /// Serves requests until every handle is dropped. If the log cannot be written it stops at
    /// once with the error: nothing of the unwritten work is acknowledged (its callers get
    /// "sequencer stopped"), and the node must not go on.
    pub fn run(mut self, requests: Receiver<Request>) -> Result<(), StorageError> {
        self.sweep_queue()?;
        loop {
            let timeout = match self.block_started {
                Some(t) => self.block_time.saturating_sub(t.elapsed()),
                None => Duration::from_secs(3600),
            };
            let first = match requests.recv_timeout(timeout) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let mut work: Vec<Request> = Vec::new();
            let mut rewind = None;
            let mut next = first;
            while let Some(r) = next {
                match r {
                    Request::Rewind(args, reply) => {
                        rewind = Some((args, reply));
                        break;
                    }
                    r => work.push(r),
                }
                next = if work.len() < 512 { requests.try_recv().ok() } else { None };
            }
            let mut batch = Batch::default();
            let mut replies: Vec<Box<dyn FnOnce()>> = Vec::new();
            {
                let state_lock = Arc::clone(&self.state);
                let mut state = state_lock.write().unwrap_or_else(|p| p.into_inner());
                for req in work {
                    match req {
                        Request::Txs(txs, reply) => {
                            let results = match &self.halt {
                                Some(halt) => vec![Err(SequencerError::Halted(Box::new(halt.clone()))); txs.len()],
                                None => self.execute_txs(&txs, &mut batch, &mut state),
                            };
                            replies.push(Box::new(move || {
                                let _ = reply.send(results);
                            }));
                        }
                        Request::Priority(request, reply) => {
                            let result = match &self.halt {
                                Some(halt) => Err(SequencerError::Halted(Box::new(halt.clone()))),
                                None => self.execute_priority(&request, &mut batch, &mut state),
                            };
                            replies.push(Box::new(move || {
                                let _ = reply.send(result);
                            }));
                        }
                        Request::AuthFact(fact, reply) => {
                            let new = self.add_auth_fact(fact, &mut batch, &mut state);
                            replies.push(Box::new(move || {
                                let _ = reply.send(new);
                            }));
                        }
                        Request::Halt(halt, reply) => {
                            let halt = match halt {
                                Some((h, commitment)) => {
                                    let sealed = self.storage.block(h.block)?.map(|b| b.commitment);
                                    if sealed.as_ref() == Some(&commitment) {
                                        Some(h)
                                    } else {
                                        tracing::warn!(%h, "stale halt ignored: the block was rewound meanwhile");
                                        self.halt.clone()
                                    }
                                }
                                None => None,
                            };
                            if halt != self.halt {
                                match &halt {
                                    Some(h) => tracing::error!(%h, "settlement halted"),
                                    None => tracing::warn!("settlement resumed"),
                                }
                                batch.l1(HALT_KEY, halt.as_ref());
                                self.metrics.halted.set(i64::from(halt.is_some()));
                                self.halt = halt;
                            }
                            replies.push(Box::new(move || {
                                let _ = reply.send(());
                            }));
                        }
                        Request::Rewind(..) => unreachable!("rewinds are taken out above"),
                        Request::NextSerial(chain, reply) => {
                            let next = self.next_serial.get(&chain).copied().unwrap_or(0);
                            replies.push(Box::new(move || {
                                let _ = reply.send(next);
                            }));
                        }
                        Request::Seal(reply) => {
                            let sealed = (self.halt.is_none() && !state.pending_ops().is_empty())
                                .then(|| self.seal(&mut batch, &mut state));
                            replies.push(Box::new(move || {
                                let _ = reply.send(sealed);
                            }));
                        }
                    }
                }
            }
            // Nothing is acknowledged before it is durable.
            self.commit(batch)?;
            for reply in replies {
                reply();
            }
            // A block whose time is up is sealed after the work's answers: hashing its roots
            // takes tens of milliseconds that no sender waits for.
            if self.halt.is_none() && self.block_started.is_some_and(|t| t.elapsed() >= self.block_time) {
                self.seal_due()?;
            }
            if let Some((args, reply)) = rewind {
                let _ = reply.send(self.rewind(args));
            }
        }
    }
}

/// The block being built has no room for the op: seal it and try again in a new one.
fn needs_new_block(e: &TxError) -> bool {
    matches!(e, TxError::BlockFull { .. } | TxError::TooManyFeeTokens(_) | TxError::TooManyOnchainOps(_))
}

/// Handle used by the API to reach the sequencer.
#[derive(Clone)]
pub struct SequencerHandle {
    pub tx: Sender<Request>,
}

impl SequencerHandle {
    pub async fn send_txs(&self, txs: Vec<SignedTx>) -> Vec<Result<[u8; 32], SequencerError>> {
        let n = txs.len();
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Txs(txs, reply)).is_err() {
            return vec![Err(SequencerError::Stopped); n];
        }
        rx.await.unwrap_or_else(|_| vec![Err(SequencerError::Stopped); n])
    }

    pub async fn priority(&self, request: PriorityRequest) -> Result<zkl_types::Op, SequencerError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Priority(request, reply)).map_err(|_| SequencerError::Stopped)?;
        rx.await.map_err(|_| SequencerError::Stopped)?
    }

    /// The lowest serial id of `chain` the sequencer has not applied yet.
    pub async fn next_serial(&self, chain: zkl_types::ChainId) -> Result<u64, SequencerError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::NextSerial(chain, reply)).map_err(|_| SequencerError::Stopped)?;
        rx.await.map_err(|_| SequencerError::Stopped)
    }

    pub async fn seal(&self) -> Option<u32> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Seal(reply)).ok()?;
        rx.await.ok().flatten()
    }

    /// Hands an on-chain authorisation to the sequencer; true if it was new.
    pub async fn auth_fact(&self, fact: AuthFact) -> Result<bool, SequencerError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::AuthFact(fact, reply)).map_err(|_| SequencerError::Stopped)?;
        rx.await.map_err(|_| SequencerError::Stopped)
    }

    /// Halts settlement on `halt.block`, if that block still has `commitment` (see
    /// [`Request::Halt`]).
    pub async fn halt(&self, halt: Halt, commitment: String) -> Result<(), SequencerError> {
        self.set_halt(Some((halt, commitment))).await
    }

    /// Lifts the settlement halt.
    pub async fn lift_halt(&self) -> Result<(), SequencerError> {
        self.set_halt(None).await
    }

    async fn set_halt(&self, halt: Option<(Halt, String)>) -> Result<(), SequencerError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Halt(halt, reply)).map_err(|_| SequencerError::Stopped)?;
        rx.await.map_err(|_| SequencerError::Stopped)
    }

    /// Rewinds and re-sequences (see [`Rewind`]).
    pub async fn rewind(&self, args: Rewind) -> Result<RewindReport, SequencerError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Rewind(args, reply)).map_err(|_| SequencerError::Stopped)?;
        rx.await.map_err(|_| SequencerError::Stopped)?
    }
}
