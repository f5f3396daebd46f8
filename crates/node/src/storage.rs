//! Durable storage (redb). The log is the source of truth: every accepted tx, every priority
//! operation and every block seal, in order. The state is the fold of the log, so replaying it
//! after a crash recovers the same root. An entry is committed before the API answers.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use zkl_state::{SealedBlock, State, TxError};
use zkl_types::{AuthFact, Op, PriorityRequest, SignedTx};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");
const BLOCKS: TableDefinition<u32, &[u8]> = TableDefinition::new("blocks");
/// Layer-1 progress (watchers, settlers), JSON values under string keys.
const L1: TableDefinition<&str, &[u8]> = TableDefinition::new("l1");
/// Valid proofs by block number (the prover's bytes).
const PROOFS: TableDefinition<u32, &[u8]> = TableDefinition::new("proofs");
/// Txs accepted with a nonce ahead of their account's, waiting for the gap to close.
const QUEUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("queue");
/// Priority requests by their hash `keccak256(chain ‖ serial)`.
const PRIORITY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("priority");

/// One entry of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogEntry {
    Tx {
        tx: SignedTx,
    },
    Priority {
        request: PriorityRequest,
    },
    Seal {
        timestamp: u64,
        /// The capacity the block was sealed at (logged, so a replay seals the same block
        /// whatever the configuration is now; absent in logs written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity: Option<usize>,
    },
    /// An on-chain ChangePubKey authorisation read from a chain (before the txs that use it).
    AuthFact {
        fact: AuthFact,
    },
}

/// What applying one log entry did.
pub enum Applied {
    Tx(Op),
    Priority(Op),
    Sealed(Box<SealedBlock>),
    Fact,
}

impl LogEntry {
    /// Applies the entry to `state`: the one replay of the log, shared by the sequencer's
    /// recovery and rewind and by the prover's witness builder.
    pub fn apply(&self, state: &mut State) -> Result<Applied, TxError> {
        Ok(match self {
            LogEntry::Tx { tx } => Applied::Tx(state.execute_tx(tx)?),
            LogEntry::Priority { request } => Applied::Priority(state.execute_priority(request)?),
            LogEntry::Seal { timestamp, capacity } => {
                if let Some(c) = capacity {
                    // The block as it was sealed, or nothing: a log sealed at a capacity the
                    // configuration no longer allows does not silently become another block.
                    if !state.can_seal_at(*c) {
                        return Err(TxError::SealCapacity(*c));
                    }
                }
                Applied::Sealed(Box::new(state.seal_block_at(*timestamp, *capacity)))
            }
            LogEntry::AuthFact { fact } => {
                state.add_auth_fact(*fact);
                Applied::Fact
            }
        })
    }
}

pub use zkl_rpc_api::{BlockRecord, PriorityRecord, TxRecord, TxStatus};

/// A tx waiting in the queue: `account`'s nonce must reach `nonce` first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueuedTx {
    pub account: u32,
    pub nonce: u32,
    pub tx: SignedTx,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

fn e<E: std::fmt::Display>(err: E) -> StorageError {
    StorageError(err.to_string())
}

/// Writes buffered for one group commit.
#[derive(Default)]
pub struct Batch {
    /// Applied first: removes log entries from `.0` on, and blocks and proofs from `.1` on.
    truncate: Option<(u64, u32)>,
    l1: Vec<(String, Option<Vec<u8>>)>,
    log: Vec<(u64, Vec<u8>)>,
    txs: Vec<(Vec<u8>, Vec<u8>)>,
    blocks: Vec<(u32, Vec<u8>)>,
    /// Queue insertions (`Some`) and removals (`None`), in order.
    queue: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    priority: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Batch {
    pub fn log(&mut self, seq: u64, entry: &LogEntry) {
        self.log.push((seq, serde_json::to_vec(entry).expect("serialisable")));
    }
    pub fn tx(&mut self, hash: &[u8; 32], record: &TxRecord) {
        self.txs.push((hash.to_vec(), serde_json::to_vec(record).expect("serialisable")));
    }
    pub fn block(&mut self, record: &BlockRecord) {
        self.blocks.push((record.number, serde_json::to_vec(record).expect("serialisable")));
    }
    pub fn priority(&mut self, hash: &[u8; 32], record: &PriorityRecord) {
        self.priority.push((hash.to_vec(), serde_json::to_vec(record).expect("serialisable")));
    }
    pub fn enqueue(&mut self, hash: &[u8; 32], q: &QueuedTx) {
        self.queue.push((hash.to_vec(), Some(serde_json::to_vec(q).expect("serialisable"))));
    }
    pub fn dequeue(&mut self, hash: &[u8; 32]) {
        self.queue.push((hash.to_vec(), None));
    }
    /// Removes the log from entry `seq` on and the blocks and proofs from `block` on (before the
    /// batch's other writes).
    pub fn truncate(&mut self, seq: u64, block: u32) {
        self.truncate = Some((seq, block));
    }
    /// Sets (or with `None` removes) a Layer-1 table value in the same commit.
    pub fn l1<T: Serialize>(&mut self, key: &str, value: Option<&T>) {
        self.l1.push((key.to_string(), value.map(|v| serde_json::to_vec(v).expect("serialisable"))));
    }
    pub fn is_empty(&self) -> bool {
        self.truncate.is_none()
            && self.l1.is_empty()
            && self.log.is_empty()
            && self.txs.is_empty()
            && self.blocks.is_empty()
            && self.queue.is_empty()
            && self.priority.is_empty()
    }
}

/// The node's database.
pub struct Storage {
    db: Database,
}

impl Storage {
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(e)?;
        Self::init(Database::create(dir.join("node.redb")).map_err(e)?)
    }

    /// A database on any redb backend (in memory, or one that fails on purpose in tests).
    pub fn with_backend(backend: impl redb::StorageBackend) -> Result<Self, StorageError> {
        Self::init(Database::builder().create_with_backend(backend).map_err(e)?)
    }

    fn init(db: Database) -> Result<Self, StorageError> {
        let w = db.begin_write().map_err(e)?;
        w.open_table(LOG).map_err(e)?;
        w.open_table(TXS).map_err(e)?;
        w.open_table(BLOCKS).map_err(e)?;
        w.open_table(L1).map_err(e)?;
        w.open_table(QUEUE).map_err(e)?;
        w.open_table(PRIORITY).map_err(e)?;
        w.open_table(PROOFS).map_err(e)?;
        w.commit().map_err(e)?;
        Ok(Storage { db })
    }

    /// Commits a batch durably (one fsync for all its writes).
    pub fn commit(&self, batch: Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(e)?;
        {
            let mut log = w.open_table(LOG).map_err(e)?;
            let mut blocks = w.open_table(BLOCKS).map_err(e)?;
            if let Some((seq, block)) = batch.truncate {
                log.retain_in(seq.., |_, _| false).map_err(e)?;
                blocks.retain_in(block.., |_, _| false).map_err(e)?;
                w.open_table(PROOFS).map_err(e)?.retain_in(block.., |_, _| false).map_err(e)?;
            }
            let mut l1 = w.open_table(L1).map_err(e)?;
            for (k, v) in &batch.l1 {
                match v {
                    Some(v) => l1.insert(k.as_str(), v.as_slice()).map_err(e)?,
                    None => l1.remove(k.as_str()).map_err(e)?,
                };
            }
            for (k, v) in &batch.log {
                log.insert(*k, v.as_slice()).map_err(e)?;
            }
            let mut txs = w.open_table(TXS).map_err(e)?;
            for (k, v) in &batch.txs {
                txs.insert(k.as_slice(), v.as_slice()).map_err(e)?;
            }
            for (k, v) in &batch.blocks {
                blocks.insert(*k, v.as_slice()).map_err(e)?;
            }
            let mut priority = w.open_table(PRIORITY).map_err(e)?;
            for (k, v) in &batch.priority {
                priority.insert(k.as_slice(), v.as_slice()).map_err(e)?;
            }
            let mut queue = w.open_table(QUEUE).map_err(e)?;
            for (k, v) in &batch.queue {
                match v {
                    Some(v) => queue.insert(k.as_slice(), v.as_slice()).map_err(e)?,
                    None => queue.remove(k.as_slice()).map_err(e)?,
                };
            }
        }
        w.commit().map_err(e)
    }

    /// The whole log, in order.
    pub fn log(&self) -> Result<Vec<(u64, LogEntry)>, StorageError> {
        self.log_from(0)
    }

    /// The log from entry `first` on, in order.
    pub fn log_from(&self, first: u64) -> Result<Vec<(u64, LogEntry)>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(LOG).map_err(e)?;
        let mut out = Vec::new();
        for item in t.range(first..).map_err(e)? {
            let (k, v) = item.map_err(e)?;
            out.push((k.value(), serde_json::from_slice(v.value()).map_err(e)?));
        }
        Ok(out)
    }

    /// The queued txs (any order).
    pub fn queued(&self) -> Result<Vec<([u8; 32], QueuedTx)>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(QUEUE).map_err(e)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(e)? {
            let (k, v) = item.map_err(e)?;
            let hash: [u8; 32] = k.value().try_into().map_err(|_| StorageError("queue key is not a hash".into()))?;
            out.push((hash, serde_json::from_slice(v.value()).map_err(e)?));
        }
        Ok(out)
    }

    /// A priority request's record by its hash `keccak256(chain ‖ serial)`.
    pub fn priority(&self, hash: &[u8; 32]) -> Result<Option<PriorityRecord>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(PRIORITY).map_err(e)?;
        match t.get(hash.as_slice()).map_err(e)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(e)?)),
            None => Ok(None),
        }
    }

    pub fn tx(&self, hash: &[u8; 32]) -> Result<Option<TxRecord>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(TXS).map_err(e)?;
        match t.get(hash.as_slice()).map_err(e)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(e)?)),
            None => Ok(None),
        }
    }

    /// Removes the stored proofs of blocks `from` and later.
    pub fn delete_proofs_from(&self, from: u32) -> Result<(), StorageError> {
        let w = self.db.begin_write().map_err(e)?;
        w.open_table(PROOFS).map_err(e)?.retain_in(from.., |_, _| false).map_err(e)?;
        w.commit().map_err(e)
    }

    /// Stores the proof of block `number` durably.
    pub fn put_proof(&self, number: u32, proof: &[u8]) -> Result<(), StorageError> {
        let w = self.db.begin_write().map_err(e)?;
        w.open_table(PROOFS).map_err(e)?.insert(number, proof).map_err(e)?;
        w.commit().map_err(e)
    }

    pub fn proof(&self, number: u32) -> Result<Option<Vec<u8>>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(PROOFS).map_err(e)?;
        Ok(t.get(number).map_err(e)?.map(|v| v.value().to_vec()))
    }

    /// The number of the last stored block.
    pub fn last_block(&self) -> Result<Option<u32>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(BLOCKS).map_err(e)?;
        Ok(t.last().map_err(e)?.map(|(k, _)| k.value()))
    }

    pub fn block(&self, number: u32) -> Result<Option<BlockRecord>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(BLOCKS).map_err(e)?;
        match t.get(number).map_err(e)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(e)?)),
            None => Ok(None),
        }
    }

    /// A Layer-1 progress value.
    pub fn l1_get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let r = self.db.begin_read().map_err(e)?;
        let t = r.open_table(L1).map_err(e)?;
        match t.get(key).map_err(e)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(e)?)),
            None => Ok(None),
        }
    }

    /// Stores (durably) or, with `None`, removes a Layer-1 progress value.
    pub fn l1_put<T: Serialize>(&self, key: &str, value: Option<&T>) -> Result<(), StorageError> {
        let w = self.db.begin_write().map_err(e)?;
        {
            let mut t = w.open_table(L1).map_err(e)?;
            match value {
                Some(v) => {
                    let bytes = serde_json::to_vec(v).map_err(e)?;
                    t.insert(key, bytes.as_slice()).map_err(e)?;
                }
                None => {
                    t.remove(key).map_err(e)?;
                }
            }
        }
        w.commit().map_err(e)
    }
}
