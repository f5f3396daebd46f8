//! The sequencer: one thread owns all writes. It takes txs in batches, checks their signatures in
//! parallel, executes them into the block being built, seals blocks by size or time, and commits
//! everything it accepted to the log in one durable write before it answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use tokio::sync::{broadcast, oneshot};
use zkl_crypto::fr_to_hex;
use zkl_state::{SealedBlock, State, TxError};
use zkl_types::op::{chunks_of, code};
use zkl_types::{AccountId, Nonce, PriorityRequest, SignedTx, Tx};

use crate::config::FeePolicy;
use crate::metrics::Metrics;
use crate::storage::{Batch, BlockRecord, LogEntry, QueuedTx, Storage, StorageError, TxRecord, TxStatus};

/// What the sequencer is asked to do.
pub enum Request {
    /// Txs to execute in order; the reply holds each tx's hash or its rejection.
    Txs(Vec<SignedTx>, oneshot::Sender<Vec<Result<[u8; 32], String>>>),
    /// A priority operation (from a chain watcher, or the dev endpoint).
    Priority(PriorityRequest, oneshot::Sender<Result<zkl_types::Op, String>>),
    /// Seal the current block now if it holds anything.
    Seal(oneshot::Sender<Option<u32>>),
    /// The lowest serial id of chain `chain` not applied yet (0 if none was).
    NextSerial(zkl_types::ChainId, oneshot::Sender<u64>),
}

/// Events published to subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    Block(Arc<BlockRecord>),
    /// A queued tx changed status (executed into the block being built, or rejected).
    Tx(Arc<TxRecord>),
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
    let op = match tx {
        Tx::Transfer(t) if state.account_by_owner(&t.to).is_none() => code::TRANSFER_TO_NEW,
        Tx::Transfer(_) => code::TRANSFER,
        Tx::Withdraw(_) => code::WITHDRAW,
        Tx::ChangePubKey(_) => code::CHANGE_PUBKEY,
        Tx::ForcedExit(_) => code::FORCED_EXIT,
        Tx::OrderMatching(_) => code::ORDER_MATCHING,
    };
    chunks_of(op).expect("known op code")
}

/// Checks `tx`'s fee against the policy in state `state`.
pub fn check_fee(policy: &FeePolicy, state: &State, tx: &Tx) -> Result<(), String> {
    let Some((token, fee)) = tx.fee() else { return Ok(()) };
    match policy.min_fee(token, tx_chunks(state, tx))? {
        Some(min) if fee < min => Err(format!(
            "fee {fee} is below the node's minimum {min} in token {token} for this {} (see zkl_estimateFee)",
            tx.name()
        )),
        _ => Ok(()),
    }
}

pub struct Sequencer {
    pub state: Arc<RwLock<State>>,
    pub storage: Arc<Storage>,
    pub events: broadcast::Sender<Event>,
    pub block_time: Duration,
    next_seq: u64,
    pending: Vec<([u8; 32], TxRecord)>,
    block_started: Option<Instant>,
    /// Future-nonce txs by (account, nonce).
    queue: BTreeMap<(AccountId, Nonce), ([u8; 32], SignedTx)>,
    pub policy: Policy,
    pub metrics: Arc<Metrics>,
    /// Per chain: one past the highest priority serial id applied (a request at or below the
    /// highest one is a duplicate and refused).
    next_serial: HashMap<zkl_types::ChainId, u64>,
}

/// Refuses a priority request whose serial id was already applied (or an older one).
fn check_serial(next_serial: &HashMap<zkl_types::ChainId, u64>, request: &PriorityRequest) -> Result<(), String> {
    let next = next_serial.get(&request.chain()).copied().unwrap_or(0);
    if request.serial_id() < next {
        return Err(format!(
            "duplicate priority request: chain {} serial {} already applied (next is {next})",
            request.chain(),
            request.serial_id()
        ));
    }
    Ok(())
}

fn hex32(h: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(h))
}

/// The API's view of a sealed block.
pub fn block_record(b: &SealedBlock, tx_hashes: Vec<String>) -> BlockRecord {
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
        pubdata: format!("0x{}", hex::encode(&b.pubdata)),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Sequencer {
    /// Rebuilds the state by replaying the log.
    pub fn recover(mut state: State, storage: Arc<Storage>, block_time: Duration) -> Result<Self, StorageError> {
        let log = storage.log()?;
        let mut pending = Vec::new();
        let mut next_seq = 0;
        let mut next_serial = HashMap::new();
        for (seq, entry) in log {
            next_seq = seq + 1;
            match entry {
                LogEntry::Tx { tx } => {
                    state
                        .execute_tx(&tx)
                        .map_err(|e| StorageError(format!("log entry {seq} no longer applies: {e}")))?;
                    pending.push((
                        tx.hash(),
                        TxRecord { hash: hex32(&tx.hash()), seq: Some(seq), status: TxStatus::Pending, tx },
                    ));
                }
                LogEntry::Priority { request } => {
                    check_serial(&next_serial, &request)
                        .map_err(|e| StorageError(format!("log entry {seq} no longer applies: {e}")))?;
                    next_serial.insert(request.chain(), request.serial_id() + 1);
                    state
                        .execute_priority(&request)
                        .map_err(|e| StorageError(format!("log entry {seq} no longer applies: {e}")))?;
                }
                LogEntry::Seal { timestamp } => {
                    state.seal_block(timestamp);
                    pending.clear();
                }
            }
        }
        let block_started = (!state.pending_ops().is_empty()).then(Instant::now);
        let (events, _) = broadcast::channel(1024);
        let queue = storage.queued()?.into_iter().map(|(hash, q)| ((q.account, q.nonce), (hash, q.tx))).collect();
        let metrics = Metrics::new();
        metrics.last_block.set(i64::from(state.last_block()));
        metrics.accounts.set(i64::from(state.account_count()));
        Ok(Sequencer {
            state: Arc::new(RwLock::new(state)),
            storage,
            events,
            block_time,
            next_seq,
            pending,
            block_started,
            queue,
            policy: Policy::default(),
            metrics,
            next_serial,
        })
    }

    fn seal(&mut self, batch: &mut Batch, state: &mut State) -> u32 {
        let timestamp = now();
        let block = state.seal_block(timestamp);
        batch.log(self.next_seq, &LogEntry::Seal { timestamp });
        self.next_seq += 1;
        let mut hashes = Vec::with_capacity(self.pending.len());
        for (hash, mut record) in self.pending.drain(..) {
            record.status = TxStatus::Included { block: block.number };
            hashes.push(record.hash.clone());
            batch.tx(&hash, &record);
        }
        let record = block_record(&block, hashes);
        batch.block(&record);
        let _ = self.events.send(Event::Block(Arc::new(record)));
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
        if matches!(result, Err(TxError::BlockFull { .. }) | Err(TxError::TooManyFeeTokens(_))) {
            self.seal(batch, state);
            result = state.execute_verified(tx, keys);
        }
        result?;
        let hash = tx.hash();
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.log(seq, &LogEntry::Tx { tx: tx.clone() });
        let record = TxRecord { hash: hex32(&hash), seq: Some(seq), status: TxStatus::Pending, tx: tx.clone() };
        batch.tx(&hash, &record);
        self.pending.push((hash, record));
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
    ) -> Result<[u8; 32], String> {
        let hash = tx.hash();
        let limit = self.policy.max_queued_per_account;
        if let Some((queued, _)) = self.queue.get(&(account, got)) {
            return if *queued == hash {
                Ok(hash)
            } else {
                Err(format!("account {account} already has a queued tx with nonce {got}"))
            };
        }
        if u64::from(got - expected) > limit as u64 {
            return Err(format!(
                "nonce {got} is too far ahead of account {account}'s nonce {expected} (the queue holds at most {limit} ahead)"
            ));
        }
        if self.queue.range((account, 0)..=(account, Nonce::MAX)).count() >= limit {
            return Err(format!("account {account} already has {limit} queued txs"));
        }
        if self.queue.len() >= self.policy.max_queued {
            return Err("the node's queue is full; retry later".into());
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
                .and_then(|()| state.verify_signatures(&tx).map_err(|e| e.to_string()))
                .and_then(|keys| self.execute_one(&tx, &keys, batch, state).map_err(|e| e.to_string()));
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
                let _ = self.events.send(Event::Tx(Arc::new(record)));
            }
        }
        self.metrics.queue_len.set(self.queue.len() as i64);
    }

    fn execute_txs(&mut self, txs: &[SignedTx], batch: &mut Batch, state: &mut State) -> Vec<Result<[u8; 32], String>> {
        let verified: Vec<_> = {
            let s: &State = state;
            txs.par_iter().map(|t| s.verify_signatures(t)).collect()
        };
        let mut out = Vec::with_capacity(txs.len());
        for (tx, keys) in txs.iter().zip(verified) {
            let result = check_fee(&self.policy.fees, state, &tx.tx)
                .map_err(|e| (None, e))
                .and_then(|()| keys.map_err(|e| (None, e.to_string())))
                .and_then(|keys| {
                    self.execute_one(tx, &keys, batch, state).map_err(|e| match e {
                        TxError::BadNonce { account, expected, got } if got > expected => {
                            (Some((account, expected, got)), e.to_string())
                        }
                        e => (None, e.to_string()),
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
    fn sweep_queue(&mut self) {
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
        if let Err(err) = self.storage.commit(batch) {
            tracing::error!(%err, "cannot persist the queue sweep; stopping the sequencer");
            std::process::exit(3);
        }
    }

    /// Runs until every request sender is gone.
    pub fn run(mut self, requests: Receiver<Request>) {
        self.sweep_queue();
        loop {
            let timeout = match self.block_started {
                Some(t) => self.block_time.saturating_sub(t.elapsed()),
                None => Duration::from_secs(3600),
            };
            let first = match requests.recv_timeout(timeout) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut work: Vec<Request> = first.into_iter().collect();
            while work.len() < 512 {
                match requests.try_recv() {
                    Ok(r) => work.push(r),
                    Err(_) => break,
                }
            }
            let mut batch = Batch::default();
            let mut replies: Vec<Box<dyn FnOnce()>> = Vec::new();
            {
                let state_lock = Arc::clone(&self.state);
                let mut state = state_lock.write().unwrap_or_else(|p| p.into_inner());
                for req in work {
                    match req {
                        Request::Txs(txs, reply) => {
                            let results = self.execute_txs(&txs, &mut batch, &mut state);
                            replies.push(Box::new(move || {
                                let _ = reply.send(results);
                            }));
                        }
                        Request::Priority(request, reply) => {
                            let result = check_serial(&self.next_serial, &request).and_then(|()| {
                                let mut result = state.execute_priority(&request);
                                if matches!(result, Err(TxError::BlockFull { .. })) {
                                    self.seal(&mut batch, &mut state);
                                    result = state.execute_priority(&request);
                                }
                                result.map_err(|e| e.to_string())
                            });
                            if result.is_ok() {
                                self.next_serial.insert(request.chain(), request.serial_id() + 1);
                                batch.log(self.next_seq, &LogEntry::Priority { request });
                                self.next_seq += 1;
                                self.block_started.get_or_insert_with(Instant::now);
                                self.metrics.priority_ops.inc();
                            }
                            replies.push(Box::new(move || {
                                let _ = reply.send(result);
                            }));
                        }
                        Request::NextSerial(chain, reply) => {
                            let next = self.next_serial.get(&chain).copied().unwrap_or(0);
                            replies.push(Box::new(move || {
                                let _ = reply.send(next);
                            }));
                        }
                        Request::Seal(reply) => {
                            let sealed = (!state.pending_ops().is_empty()).then(|| self.seal(&mut batch, &mut state));
                            replies.push(Box::new(move || {
                                let _ = reply.send(sealed);
                            }));
                        }
                    }
                }
                if self.block_started.is_some_and(|t| t.elapsed() >= self.block_time) && !state.pending_ops().is_empty()
                {
                    self.seal(&mut batch, &mut state);
                }
            }
            // Nothing is acknowledged before it is durable.
            let started = Instant::now();
            if let Err(err) = self.storage.commit(batch) {
                tracing::error!(%err, "cannot persist accepted work; stopping the sequencer");
                std::process::exit(3);
            }
            self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
            for reply in replies {
                reply();
            }
        }
    }
}

/// Handle used by the API to reach the sequencer.
#[derive(Clone)]
pub struct SequencerHandle {
    pub tx: Sender<Request>,
}

impl SequencerHandle {
    pub async fn send_txs(&self, txs: Vec<SignedTx>) -> Vec<Result<[u8; 32], String>> {
        let n = txs.len();
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Txs(txs, reply)).is_err() {
            return vec![Err("sequencer stopped".into()); n];
        }
        rx.await.unwrap_or_else(|_| vec![Err("sequencer stopped".into()); n])
    }

    pub async fn priority(&self, request: PriorityRequest) -> Result<zkl_types::Op, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Priority(request, reply)).map_err(|_| "sequencer stopped".to_string())?;
        rx.await.map_err(|_| "sequencer stopped".to_string())?
    }

    /// The lowest serial id of `chain` the sequencer has not applied yet.
    pub async fn next_serial(&self, chain: zkl_types::ChainId) -> Result<u64, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::NextSerial(chain, reply)).map_err(|_| "sequencer stopped".to_string())?;
        rx.await.map_err(|_| "sequencer stopped".to_string())
    }

    pub async fn seal(&self) -> Option<u32> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Seal(reply)).ok()?;
        rx.await.ok().flatten()
    }
}
