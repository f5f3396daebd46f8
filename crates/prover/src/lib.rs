//! The block circuit behind the node's prover traits:
//! - [`WitnessPayload`] (node side) hands each job the block's witness ([`zkl_circuit::wire`]
//!   bytes), built from the inputs the node's replay of its log gives it;
//! - [`CircuitProver`] (worker side) proves a job's witness with the block circuit's keys, run by
//!   the [`worker`] loop, which reaches the node only through `zkl-rpc-api`;
//! - [`CircuitCheck`] (node side) verifies a submitted proof against the block's public input.
//!
//! Keys are the deterministic development keys of `zkl_circuit::groth16::KeyCache` (generated
//! once, cached under `target/zkl-keys`, checked by hash), one pair per block capacity.

pub mod bench;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ark_bn254::Bn254;
use ark_groth16::Proof;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use serde_json::{Value, json};
use zkl_circuit::block::{BlockCircuit, BlockWitness};
use zkl_circuit::groth16::{KeyCache, Keys};
use zkl_circuit::wire;
use zkl_node::provers::{JobPayload, ProofCheck};
use zkl_node::replay::BlockInputs;
use zkl_rpc_api::{BlockRecord, Job};
use zkl_state::BlockParams;

use crate::worker::BlockProver;

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

/// Each job's witness, built by the block circuit from the block's inputs (the node's one
/// replay of its log, `zkl_node::replay`), so the witness is exactly the sealed block's.
pub struct WitnessPayload;

impl JobPayload for WitnessPayload {
    fn payload(&self, inputs: BlockInputs<'_>) -> Result<Value, String> {
        let b = inputs.block;
        let w = BlockWitness::build(inputs.pre, b, inputs.txs, fee_slots(b.capacity))
            .map_err(|e| format!("block {}: {e}", b.number))?;
        Ok(json!({"witness": format!("0x{}", hex::encode(wire::encode(&w)))}))
    }
}
