//! The sequencer: one thread owns all writes. It takes txs in batches, checks their signatures in
//! parallel, executes them into the block being built, seals blocks by size or time, and commits
//! everything it accepted to the log in one durable write before it answers.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use tokio::sync::{broadcast, oneshot};
use zkl_crypto::fr_to_hex;
use zkl_state::{SealedBlock, State, TxError};
use zkl_types::{PriorityRequest, SignedTx};

use crate::storage::{Batch, BlockRecord, LogEntry, Storage, StorageError, TxRecord, TxStatus};

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
}

pub struct Sequencer {
    pub state: Arc<RwLock<State>>,
    pub storage: Arc<Storage>,
    pub events: broadcast::Sender<Event>,
    pub block_time: Duration,
    next_seq: u64,
    pending: Vec<([u8; 32], TxRecord)>,
    block_started: Option<Instant>,
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
                    pending.push((tx.hash(), TxRecord { hash: hex32(&tx.hash()), seq, status: TxStatus::Pending, tx }));
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
        Ok(Sequencer {
            state: Arc::new(RwLock::new(state)),
            storage,
            events,
            block_time,
            next_seq,
            pending,
            block_started,
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
        block.number
    }

    fn execute_txs(&mut self, txs: &[SignedTx], batch: &mut Batch, state: &mut State) -> Vec<Result<[u8; 32], String>> {
        let verified: Vec<_> = {
            let s: &State = state;
            txs.par_iter().map(|t| s.verify_signatures(t)).collect()
        };
        let mut out = Vec::with_capacity(txs.len());
        for (tx, keys) in txs.iter().zip(verified) {
            let result = keys.and_then(|keys| {
                let mut result = state.execute_verified(tx, &keys);
                if matches!(result, Err(TxError::BlockFull { .. }) | Err(TxError::TooManyFeeTokens(_))) {
                    self.seal(batch, state);
                    result = state.execute_verified(tx, &keys);
                }
                result
            });
            out.push(match result {
                Ok(_) => {
                    let hash = tx.hash();
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    batch.log(seq, &LogEntry::Tx { tx: tx.clone() });
                    let record = TxRecord { hash: hex32(&hash), seq, status: TxStatus::Pending, tx: tx.clone() };
                    batch.tx(&hash, &record);
                    self.pending.push((hash, record));
                    self.block_started.get_or_insert_with(Instant::now);
                    Ok(hash)
                }
                Err(e) => Err(e.to_string()),
            });
        }
        out
    }

    /// Runs until every request sender is gone.
    pub fn run(mut self, requests: Receiver<Request>) {
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
            if let Err(err) = self.storage.commit(batch) {
                tracing::error!(%err, "cannot persist accepted work; stopping the sequencer");
                std::process::exit(3);
            }
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
