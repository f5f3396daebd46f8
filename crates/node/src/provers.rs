//! The prover job queue: every sealed block is a job; `zkl prover` workers (any number, on any
//! machine) take jobs over JSON-RPC, send heartbeats while they prove, and submit the proof. A
//! job whose worker stays silent longer than the heartbeat timeout goes back to the queue and is
//! handed to the next worker that asks. The node checks every submitted proof against the
//! block's public input before it stores it; the first valid proof of a block wins.
//!
//! Workers authenticate with a bearer token from the configuration (`provers.tokens`), sent as
//! the first parameter of every prover method.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zkl_state::State;

use crate::replay::{BlockInputs, BlockReplayer};
use crate::storage::{BlockRecord, Storage, StorageError};

/// Whether `token` is one of `tokens`. Every token is compared in full, so timing does not
/// reveal a prefix.
pub fn token_in(tokens: &[String], token: &str) -> bool {
    tokens.iter().fold(false, |ok, t| {
        let same = t.len() == token.len() && t.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        ok | same
    })
}

/// The error of an injected [`ProofCheck`] or [`JobPayload`] (the plug-in's own type, boxed: the
/// node does not depend on the circuit).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PluginError(pub Box<dyn std::error::Error + Send + Sync>);

/// Checks a proof (the prover's bytes, arkworks-compressed Groth16 for the block circuit) for a
/// block. Injected by whoever starts the node, so the node does not depend on the circuit.
pub trait ProofCheck: Send + Sync {
    fn check(&self, block: &BlockRecord, proof: &[u8]) -> Result<(), PluginError>;
}

/// What a worker receives with a job besides the block record (e.g. the block's witness),
/// computed from the block's inputs as the node's one replay of its log rebuilds them.
pub trait JobPayload: Send + Sync {
    fn payload(&self, inputs: BlockInputs<'_>) -> Result<Value, PluginError>;
}

/// The prover section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProverConfig {
    /// Bearer tokens workers present (one per worker or per operator).
    pub tokens: Vec<String>,
    /// A job goes back to the queue after this long without a heartbeat.
    #[serde(default = "default_heartbeat_timeout")]
    pub heartbeat_timeout_ms: u64,
}

fn default_heartbeat_timeout() -> u64 {
    30_000
}

pub use zkl_rpc_api::Job;

/// Why a prover request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProverError {
    #[error("unknown prover token")]
    Unauthorized,
    #[error("unknown job {0}")]
    UnknownJob(u64),
    #[error("job {job} was handed to another worker after {timeout_ms} ms without a heartbeat")]
    Reassigned { job: u64, timeout_ms: u64 },
    #[error("block {0} is already proven")]
    AlreadyProven(u32),
    #[error("invalid proof for block {block}: {reason}")]
    InvalidProof { block: u32, reason: String },
    #[error("{0}")]
    Unavailable(String),
}

impl From<StorageError> for ProverError {
    fn from(e: StorageError) -> Self {
        ProverError::Unavailable(e.to_string())
    }
}

#[derive(Debug, Clone)]
struct Assignment {
    job: u64,
    worker: String,
    last_heartbeat: Instant,
}

#[derive(Default)]
struct Inner {
    /// Blocks without a valid proof, with their current assignment.
    open: BTreeMap<u32, Option<Assignment>>,
    /// Every job id handed out, to its block (stale ids are recognised).
    jobs: BTreeMap<u64, u32>,
    next_job: u64,
    /// The last sealed block the queue knows of (from a notification or from storage).
    known_last: u32,
}

/// Opens a job for every block of `first..=last` without a stored proof; the queue then knows of
/// the blocks up to `last`.
fn open_unproven(storage: &Storage, inner: &mut Inner, first: u32, last: u32) -> Result<(), StorageError> {
    for n in first..=last {
        if storage.proof(n)?.is_none() {
            inner.open.entry(n).or_insert(None);
        }
    }
    inner.known_last = inner.known_last.max(last);
    Ok(())
}

/// The queue. Proofs are stored durably; the queue itself is rebuilt from the sealed blocks that
/// have none.
pub struct ProverQueue {
    config: ProverConfig,
    storage: Arc<Storage>,
    check: Arc<dyn ProofCheck>,
    payload: Option<(Arc<dyn JobPayload>, BlockReplayer)>,
    inner: Mutex<Inner>,
}

impl ProverQueue {
    /// A queue holding every block up to `last_block` that has no stored proof. Payloads are
    /// built from the log replayed from `genesis`.
    pub fn new(
        config: ProverConfig,
        storage: Arc<Storage>,
        check: Arc<dyn ProofCheck>,
        payload: Option<Arc<dyn JobPayload>>,
        genesis: State,
        last_block: u32,
    ) -> Result<Self, StorageError> {
        let payload = payload.map(|p| (p, BlockReplayer::new(genesis)));
        let mut inner = Inner { next_job: 1, ..Inner::default() };
        open_unproven(&storage, &mut inner, 1, last_block)?;
        Ok(ProverQueue { config, storage, check, payload, inner: Mutex::new(inner) })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.heartbeat_timeout_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn authorize(&self, token: &str) -> Result<(), ProverError> {
        if token_in(&self.config.tokens, token) { Ok(()) } else { Err(ProverError::Unauthorized) }
    }

    /// Forgets the jobs and proofs of blocks `from` and later (they were rewound; the new blocks
    /// arrive as new jobs). A proof checked against an old block is not stored afterwards.
    pub fn rewind(&self, from: u32) -> Result<(), StorageError> {
        let mut inner = self.lock();
        inner.open.retain(|n, _| *n < from);
        inner.jobs.retain(|_, n| *n < from);
        inner.known_last = inner.known_last.min(from.saturating_sub(1));
        self.storage.delete_proofs_from(from)
    }

    /// A newly sealed block becomes a job.
    pub fn add(&self, block: u32) {
        let mut inner = self.lock();
        inner.open.entry(block).or_insert(None);
        inner.known_last = inner.known_last.max(block);
    }

    /// Adds the stored blocks sealed after the last one the queue knows of, so a block is a job
    /// as soon as it is sealed, whether or not its notification has arrived yet. Holds the lock
    /// throughout, so a concurrent rewind or proof submission sees all of it or none.
    fn catch_up(&self) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let (first, last) = (inner.known_last + 1, self.storage.last_block()?.unwrap_or(0));
        open_unproven(&self.storage, &mut inner, first, last)
    }

    /// Adds every stored block that has no proof (after missed notifications).
    pub fn rescan(&self) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let last = self.storage.last_block()?.unwrap_or(0);
        open_unproven(&self.storage, &mut inner, 1, last)
    }

    /// Blocks waiting for a proof (assigned or not).
    pub fn open_blocks(&self) -> Vec<u32> {
        self.lock().open.keys().copied().collect()
    }

    /// Hands the lowest unassigned block (or one whose worker went silent) to `worker`.
    pub fn take(&self, token: &str, worker: &str) -> Result<Option<Job>, ProverError> {
        self.authorize(token)?;
        self.catch_up()?;
        let timeout = self.timeout();
        let (job, number) = {
            let mut inner = self.lock();
            let Some((&number, slot)) =
                inner.open.iter_mut().find(|(_, a)| a.as_ref().is_none_or(|a| a.last_heartbeat.elapsed() > timeout))
            else {
                return Ok(None);
            };
            if let Some(old) = slot.as_ref() {
                tracing::warn!(block = number, job = old.job, worker = %old.worker, "prover went silent; reassigning");
            }
            let job = inner.next_job;
            inner.next_job += 1;
            inner
                .open
                .insert(number, Some(Assignment { job, worker: worker.to_string(), last_heartbeat: Instant::now() }));
            inner.jobs.insert(job, number);
            (job, number)
        };
        let Some(block) = self.storage.block(number)? else {
            // Rewound meanwhile (the rewind notification is on its way): not a job any more.
            let mut inner = self.lock();
            inner.open.remove(&number);
            inner.jobs.remove(&job);
            return Err(ProverError::Unavailable(format!("block {number} is not stored")));
        };
        let payload = match &self.payload {
            Some((p, replayer)) => match replayer
                .with_block(&self.storage, number, |inputs| p.payload(inputs))
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(v) => v,
                Err(e) => {
                    // Nobody can prove it without its payload: free the block again.
                    self.lock().open.insert(number, None);
                    tracing::error!(block = number, %e, "cannot build the job's payload");
                    return Err(ProverError::Unavailable(format!("block {number}: {e}")));
                }
            },
            None => Value::Null,
        };
        tracing::info!(block = number, job, worker, "prover job handed out");
        Ok(Some(Job { job, block, payload }))
    }

    /// The block of `job` while `job` is still the block's current assignment.
    fn current(&self, inner: &Inner, job: u64) -> Result<u32, ProverError> {
        let number = *inner.jobs.get(&job).ok_or(ProverError::UnknownJob(job))?;
        match inner.open.get(&number) {
            None => Err(ProverError::AlreadyProven(number)),
            Some(Some(a)) if a.job == job => Ok(number),
            Some(_) => Err(ProverError::Reassigned { job, timeout_ms: self.config.heartbeat_timeout_ms }),
        }
    }

    /// Keeps `job` assigned to its worker.
    pub fn heartbeat(&self, token: &str, job: u64) -> Result<u32, ProverError> {
        self.authorize(token)?;
        let mut inner = self.lock();
        let number = self.current(&inner, job)?;
        if let Some(Some(a)) = inner.open.get_mut(&number) {
            a.last_heartbeat = Instant::now();
        }
        Ok(number)
    }

    /// Checks and stores a proof for `job`'s block. A valid proof is accepted even from a worker
    /// whose job was reassigned meanwhile (a proof is a proof); the first valid one wins.
    pub fn submit(&self, token: &str, job: u64, proof: &[u8]) -> Result<u32, ProverError> {
        self.authorize(token)?;
        let number = {
            let inner = self.lock();
            let number = *inner.jobs.get(&job).ok_or(ProverError::UnknownJob(job))?;
            if !inner.open.contains_key(&number) {
                return Err(ProverError::AlreadyProven(number));
            }
            number
        };
        let block = self
            .storage
            .block(number)?
            .ok_or_else(|| ProverError::Unavailable(format!("block {number} is not stored")))?;
        self.check
            .check(&block, proof)
            .map_err(|e| ProverError::InvalidProof { block: number, reason: e.to_string() })?;
        let mut inner = self.lock();
        if inner.jobs.get(&job) != Some(&number) {
            return Err(ProverError::UnknownJob(job)); // rewound meanwhile
        }
        if !inner.open.contains_key(&number) {
            return Err(ProverError::AlreadyProven(number));
        }
        self.storage.put_proof(number, proof)?;
        inner.open.remove(&number);
        tracing::info!(block = number, job, "block proven");
        Ok(number)
    }
}
