//! The block circuit behind the node's prover traits:
//! - [`WitnessPayload`] (node side) replays the node's log on a replica state and hands each job
//!   the block's witness ([`zkl_circuit::wire`] bytes);
//! - [`CircuitProver`] (worker side) proves a job's witness with the block circuit's keys;
//! - [`CircuitCheck`] (node side) verifies a submitted proof against the block's public input.
//!
//! Keys are the deterministic development keys of `zkl_circuit::groth16::KeyCache` (generated
//! once, cached under `target/zkl-keys`, checked by hash), one pair per block capacity.

pub mod bench;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ark_bn254::Bn254;
use ark_groth16::Proof;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use serde_json::{Value, json};
use zkl_circuit::block::{BlockCircuit, BlockWitness};
use zkl_circuit::groth16::{KeyCache, Keys};
use zkl_circuit::wire;
use zkl_node::provers::{Job, JobPayload, ProofCheck};
use zkl_node::storage::{Applied, BlockRecord, LogEntry, Storage};
use zkl_node::worker::BlockProver;
use zkl_state::{BlockParams, State};

/// Fee slots of the circuit for a block capacity (the state machine's per-block fee-token limit).
pub fn fee_slots(capacity: usize) -> usize {
    BlockParams::for_capacity(capacity).max_fee_tokens
}

/// The key cache name of the block circuit of `capacity` chunks.
pub fn key_name(capacity: usize) -> String {
    format!("block-c{capacity}-f{}", fee_slots(capacity))
}

/// Loads (or, the first time, generates with a progress display) the keys for `capacity`.
pub fn load_keys(capacity: usize, progress: bool) -> Result<Keys, String> {
    KeyCache::new(KeyCache::default_dir(), progress)
        .load_or_setup(&key_name(capacity), BlockCircuit::blank(capacity, fee_slots(capacity)))
        .map_err(|e| format!("block circuit keys for capacity {capacity}: {e}"))
}

/// Keys by capacity, loaded on first use.
#[derive(Default)]
pub struct KeyRing {
    keys: Mutex<HashMap<usize, Arc<Keys>>>,
    progress: bool,
}

impl KeyRing {
    pub fn new(progress: bool) -> Self {
        KeyRing { keys: Mutex::default(), progress }
    }

    /// Adds keys already loaded.
    pub fn insert(&self, capacity: usize, keys: Keys) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).insert(capacity, Arc::new(keys));
    }

    pub fn get(&self, capacity: usize) -> Result<Arc<Keys>, String> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&capacity) {
            return Ok(k.clone());
        }
        let k = Arc::new(load_keys(capacity, self.progress)?);
        keys.insert(capacity, k.clone());
        Ok(k)
    }
}

fn public_input(block: &BlockRecord) -> Result<zkl_crypto::Fr, String> {
    zkl_crypto::parse_fr(&block.public_input).map_err(|e| format!("block {}: public input: {e}", block.number))
}

/// Verifies submitted proofs with the block circuit's verifying key.
pub struct CircuitCheck {
    pub keys: Arc<KeyRing>,
}

impl ProofCheck for CircuitCheck {
    fn check(&self, block: &BlockRecord, proof: &[u8]) -> Result<(), String> {
        let proof = Proof::<Bn254>::deserialize_compressed(proof).map_err(|e| format!("malformed proof: {e}"))?;
        let keys = self.keys.get(block.capacity)?;
        match keys.verify(&[public_input(block)?], &proof) {
            Ok(true) => Ok(()),
            Ok(false) => Err("the proof does not verify".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Proves jobs whose payload is `{"witness":"0x…"}` (see [`WitnessPayload`]).
pub struct CircuitProver {
    pub keys: Arc<KeyRing>,
}

/// The witness in a job's payload, checked to belong to the job's block.
pub fn job_witness(job: &Job) -> Result<BlockWitness, String> {
    let hex = job.payload["witness"].as_str().ok_or("the job carries no witness")?;
    let bytes = hex.strip_prefix("0x").and_then(|h| hex::decode(h).ok()).ok_or("the witness is not 0x hex")?;
    let w = wire::decode(&bytes).map_err(|e| e.to_string())?;
    if w.block_number != job.block.number
        || w.chunks.len() != job.block.capacity
        || w.public_input != public_input(&job.block)?
    {
        return Err(format!("the witness does not belong to block {}", job.block.number));
    }
    Ok(w)
}

impl BlockProver for CircuitProver {
    fn prove(&self, job: &Job) -> Result<Vec<u8>, String> {
        let witness = job_witness(job)?;
        let keys = self.keys.get(job.block.capacity)?;
        let proof = keys.prove(BlockCircuit { witness }, &mut rand::rngs::OsRng).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        proof.serialize_compressed(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// A replica of the state, `next_seq` being the first log entry it has not applied.
struct Replica {
    state: State,
    next_seq: u64,
}

/// Builds each job's witness by replaying the node's log on a replica of the state (the same
/// state machine and the same replay, [`LogEntry::apply`], so the witness is exactly the sealed
/// block's). Blocks are usually asked for in order; asking for an earlier block than the replica
/// has passed, or after the node rewound blocks the replica had applied, rebuilds it from genesis.
pub struct WitnessPayload {
    genesis: State,
    replica: Mutex<Option<Replica>>,
}

impl WitnessPayload {
    /// `genesis` is the node's genesis state (`zkl_node::genesis`).
    pub fn new(genesis: State) -> Self {
        WitnessPayload { genesis, replica: Mutex::new(None) }
    }

    /// The witness of block `number`, from the log in `storage`.
    pub fn witness(&self, storage: &Storage, number: u32) -> Result<BlockWitness, String> {
        let mut guard = self.replica.lock().unwrap_or_else(|p| p.into_inner());
        // The replica's last block must still be the stored one (the node may have rewound).
        let current = |r: &mut Replica| {
            let last = r.state.last_block();
            last == 0
                || storage
                    .block(last)
                    .ok()
                    .flatten()
                    .is_some_and(|b| b.new_root == zkl_crypto::fr_to_hex(&r.state.root()))
        };
        let reusable = guard.take().filter(|r| r.state.last_block() < number);
        let mut r = match reusable.map(|mut r| (current(&mut r), r)) {
            Some((true, r)) => r,
            _ => Replica { state: self.genesis.clone(), next_seq: 0 },
        };
        let fail = |seq: u64, e: &dyn std::fmt::Display| format!("replaying log entry {seq}: {e}");
        let mut pre: Option<State> = None;
        let mut txs = Vec::new();
        for (seq, entry) in storage.log_from(r.next_seq).map_err(|e| e.to_string())? {
            if pre.is_none() && r.state.last_block() + 1 == number && !matches!(entry, LogEntry::Seal { .. }) {
                pre = Some(r.state.clone());
            }
            match entry.apply(&mut r.state).map_err(|e| fail(seq, &e))? {
                Applied::Tx(_) => {
                    if pre.is_some()
                        && let LogEntry::Tx { tx } = entry
                    {
                        txs.push(Some(tx));
                    }
                }
                Applied::Priority(_) => {
                    if pre.is_some() {
                        txs.push(None);
                    }
                }
                Applied::Fact => {}
                Applied::Sealed(sealed) => {
                    r.next_seq = seq + 1;
                    if sealed.number == number {
                        let pre = pre.ok_or_else(|| format!("block {number} holds no ops"))?;
                        let w = BlockWitness::build(&pre, &sealed, &txs, fee_slots(sealed.capacity))
                            .map_err(|e| format!("block {number}: {e}"))?;
                        *guard = Some(r);
                        return Ok(w);
                    }
                }
            }
        }
        Err(format!("block {number} is not sealed in the log"))
    }
}

impl JobPayload for WitnessPayload {
    fn payload(&self, storage: &Storage, block: &BlockRecord) -> Result<Value, String> {
        let w = self.witness(storage, block.number)?;
        Ok(json!({"witness": format!("0x{}", hex::encode(wire::encode(&w)))}))
    }
}
