//! The block circuit behind the node's prover traits:
//! - [`WitnessPayload`] (node side) hands each job the block's witness ([`zkl_circuit::wire`]
//!   bytes), built from the inputs the node's replay of its log gives it;
//! - [`CircuitProver`] (worker side) proves a job's witness with the block circuit's keys, run by
//!   the [`worker`] loop, which reaches the node only through `zkl-rpc-api`;
//! - [`CircuitCheck`] (node side) verifies a submitted proof against the block's public input.
//!
//! The node-side plug-ins implement `zkl-node`'s traits only with the feature `node` (enabled by
//! the `zkl` binary, which runs both sides); without it the crate does not depend on the node.
//!
//! Keys are the deterministic development keys of `zkl_circuit::groth16::KeyCache` (generated
//! once, cached under `target/zkl-keys`, checked by hash), one pair per block capacity.

pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ark_bn254::Bn254;
use ark_groth16::Proof;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use serde_json::{Value, json};
use zkl_circuit::block::{BlockCircuit, BlockWitness};
use zkl_circuit::groth16::KeyCache;
/// A circuit's Groth16 keys (what [`load_keys`] and [`load_exit_keys`] return).
pub use zkl_circuit::groth16::Keys;
use zkl_circuit::wire;
use zkl_rpc_api::{BlockRecord, Job};
use zkl_state::{BlockParams, SealedBlock, State};
use zkl_types::SignedTx;

use crate::worker::BlockProver;

/// Why a proof could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum ProverError {
    #[error("block circuit keys for capacity {capacity}: {msg}")]
    Keys { capacity: usize, msg: String },
    #[error("exit circuit keys: {0}")]
    ExitKeys(String),
    #[error("block {block}: public input: {msg}")]
    PublicInput { block: u32, msg: String },
    #[error("malformed proof: {0}")]
    MalformedProof(String),
    #[error("the proof does not verify")]
    DoesNotVerify,
    #[error("cannot verify: {0}")]
    Verify(String),
    #[error("the job carries no witness")]
    NoWitness,
    #[error("the witness is malformed: {0}")]
    MalformedWitness(String),
    #[error("the witness does not belong to block {0}")]
    ForeignWitness(u32),
    #[error("block {block}: cannot build the witness: {msg}")]
    Witness { block: u32, msg: String },
    #[error("cannot prove: {0}")]
    Prove(String),
}

/// Fee slots of the circuit for a block capacity (the state machine's per-block fee-token limit).
pub fn fee_slots(capacity: usize) -> usize {
    BlockParams::for_capacity(capacity).max_fee_tokens
}

/// The key cache name of the block circuit of `capacity` chunks.
pub fn key_name(capacity: usize) -> String {
    key_name_routed(capacity, capacity)
}

/// The key cache name of the block circuit of `capacity` chunks and `work_slots` work slots
/// (`≥ capacity`: one chunk gadget per position, named as [`key_name`]).
pub fn key_name_routed(capacity: usize, work_slots: usize) -> String {
    if work_slots < capacity {
        format!("block-c{capacity}-w{work_slots}-f{}", fee_slots(capacity))
    } else {
        format!("block-c{capacity}-f{}", fee_slots(capacity))
    }
}

/// Loads (or, the first time, generates with a progress display) the keys for `capacity`.
pub fn load_keys(capacity: usize, progress: bool) -> Result<Keys, ProverError> {
    load_routed_keys(capacity, capacity, progress)
}

/// Loads (or generates) the keys of the circuit of `capacity` chunks and `work_slots` work slots.
pub fn load_routed_keys(capacity: usize, work_slots: usize, progress: bool) -> Result<Keys, ProverError> {
    let circuit = BlockCircuit::blank_routed(capacity, work_slots, fee_slots(capacity));
    KeyCache::new(KeyCache::default_dir(), progress)
        .load_or_setup(&key_name_routed(capacity, work_slots), circuit)
        .map_err(|e| ProverError::Keys { capacity, msg: e.to_string() })
}

/// The exit circuit's development keys (exodus claims), from the same cache.
pub fn load_exit_keys(progress: bool) -> Result<Keys, ProverError> {
    zkl_circuit::exit::exit_keys(&KeyCache::new(KeyCache::default_dir(), progress))
        .map_err(|e| ProverError::ExitKeys(e.to_string()))
}

/// Keys by circuit (capacity, work slots), loaded on first use.
#[derive(Default)]
pub struct KeyRing {
    keys: Mutex<HashMap<(usize, usize), Arc<Keys>>>,
    progress: bool,
}

impl KeyRing {
    pub fn new(progress: bool) -> Self {
        KeyRing { keys: Mutex::default(), progress }
    }

    /// Adds keys already loaded.
    pub fn insert(&self, capacity: usize, keys: Keys) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).insert((capacity, capacity), Arc::new(keys));
    }

    /// The keys of the circuit of `capacity` chunks (one chunk gadget per position).
    pub fn get(&self, capacity: usize) -> Result<Arc<Keys>, ProverError> {
        self.get_routed(capacity, capacity)
    }

    /// The keys of the circuit of `capacity` chunks and `work_slots` work slots.
    pub fn get_routed(&self, capacity: usize, work_slots: usize) -> Result<Arc<Keys>, ProverError> {
        let id = (capacity, work_slots.min(capacity));
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&id) {
            return Ok(k.clone());
        }
        let k = Arc::new(load_routed_keys(id.0, id.1, self.progress)?);
        keys.insert(id, k.clone());
        Ok(k)
    }
}

fn public_input(block: &BlockRecord) -> Result<zkl_crypto::Fr, ProverError> {
    zkl_crypto::parse_fr(&block.public_input)
        .map_err(|e| ProverError::PublicInput { block: block.number, msg: e.to_string() })
}

/// Verifies submitted proofs with the block circuit's verifying key.
pub struct CircuitCheck {
    pub keys: Arc<KeyRing>,
}

impl CircuitCheck {
    /// Whether `proof` proves `block`.
    pub fn verify(&self, block: &BlockRecord, proof: &[u8]) -> Result<(), ProverError> {
        let proof =
            Proof::<Bn254>::deserialize_compressed(proof).map_err(|e| ProverError::MalformedProof(e.to_string()))?;
        let keys = self.keys.get(block.capacity)?;
        match keys.verify(&[public_input(block)?], &proof) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProverError::DoesNotVerify),
            Err(e) => Err(ProverError::Verify(e.to_string())),
        }
    }
}

/// Proves jobs whose payload is `{"witness":"0x…"}` (see [`WitnessPayload`]).
pub struct CircuitProver {
    pub keys: Arc<KeyRing>,
}

/// The witness in a job's payload, checked to belong to the job's block.
pub fn job_witness(job: &Job) -> Result<BlockWitness, ProverError> {
    let hex = job.payload["witness"].as_str().ok_or(ProverError::NoWitness)?;
    let bytes = hex
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| ProverError::MalformedWitness("not 0x hex".into()))?;
    let w = wire::decode(&bytes).map_err(|e| ProverError::MalformedWitness(e.to_string()))?;
    // (The node proves every block with the circuit of one gadget per chunk; work-slot circuits
    // are not chosen per block yet.)
    if w.block_number != job.block.number
        || w.capacity() != job.block.capacity
        || w.chunks.len() != job.block.capacity
        || w.routing.is_some()
        || w.public_input != public_input(&job.block)?
    {
        return Err(ProverError::ForeignWitness(job.block.number));
    }
    Ok(w)
}

impl BlockProver for CircuitProver {
    fn prove(&self, job: &Job) -> Result<Vec<u8>, ProverError> {
        let witness = job_witness(job)?;
        let keys = self.keys.get(job.block.capacity)?;
        let proof = keys
            .prove(BlockCircuit { witness }, &mut rand::rngs::OsRng)
            .map_err(|e| ProverError::Prove(e.to_string()))?;
        let mut out = Vec::new();
        proof.serialize_compressed(&mut out).map_err(|e| ProverError::Prove(e.to_string()))?;
        Ok(out)
    }
}

/// Each job's witness, built by the block circuit from the block's inputs (the node's one
/// replay of its log, `zkl_node::replay`), so the witness is exactly the sealed block's.
pub struct WitnessPayload;

impl WitnessPayload {
    /// The payload `{"witness":"0x…"}` of the block `block` sealed on `pre` from `txs`.
    pub fn build(pre: &State, block: &SealedBlock, txs: &[Option<SignedTx>]) -> Result<Value, ProverError> {
        let w = BlockWitness::build(pre, block, txs, fee_slots(block.capacity))
            .map_err(|e| ProverError::Witness { block: block.number, msg: e.to_string() })?;
        Ok(json!({"witness": format!("0x{}", hex::encode(wire::encode(&w)))}))
    }
}

/// The node-side plug-ins as `zkl-node`'s traits.
#[cfg(feature = "node")]
mod node_side {
    use zkl_node::provers::{JobPayload, PluginError, ProofCheck};
    use zkl_node::replay::BlockInputs;

    use super::*;

    impl ProofCheck for CircuitCheck {
        fn check(&self, block: &BlockRecord, proof: &[u8]) -> Result<(), PluginError> {
            self.verify(block, proof).map_err(|e| PluginError(Box::new(e)))
        }
    }

    impl JobPayload for WitnessPayload {
        fn payload(&self, inputs: BlockInputs<'_>) -> Result<Value, PluginError> {
            WitnessPayload::build(inputs.pre, inputs.block, inputs.txs).map_err(|e| PluginError(Box::new(e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(w: &BlockWitness) -> Job {
        let block: BlockRecord = serde_json::from_value(json!({
            "number": 3, "timestamp": 0, "capacity": 4, "old_root": "0", "new_root": "0", "commitment": "0",
            "public_input": "0", "tx_hashes": [], "ops": [], "pubdata": "0x",
        }))
        .expect("a block record");
        Job { job: 1, block, payload: json!({"witness": format!("0x{}", hex::encode(wire::encode(w)))}) }
    }

    /// The node proves every block with the circuit of one gadget per chunk: a witness of
    /// another capacity, or routed to work slots, is not the job's.
    #[test]
    fn only_the_blocks_own_circuit_witness_is_accepted() {
        let mut w = BlockWitness::blank(4, 2);
        w.block_number = 3;
        assert_eq!(job_witness(&job(&w)).map(|w| w.chunks.len()).ok(), Some(4));
        // Eight chunks routed to four work slots: as many chunk witnesses as the job's capacity.
        let mut routed = BlockWitness::blank(8, 2).route(4).expect("a blank block needs no work");
        routed.block_number = 3;
        assert!(matches!(job_witness(&job(&routed)), Err(ProverError::ForeignWitness(3))));
        // Four chunk witnesses over the pubdata of a 5-chunk block.
        let mut longer = w.clone();
        longer.pubdata = vec![0; 5 * 20];
        assert!(matches!(job_witness(&job(&longer)), Err(ProverError::ForeignWitness(3))));
        w.block_number = 4;
        assert!(matches!(job_witness(&job(&w)), Err(ProverError::ForeignWitness(3))));
    }
}
