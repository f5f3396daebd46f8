//! Constraint cost reporting: per block part and per op kind.

use super::gadget::synthesize;
use super::*;

/// Constraints spent by each part of a block circuit (setup-mode synthesis, no witness).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCost {
    pub total: usize,
    /// Public input, pubdata bytes, fee-slot tokens.
    pub inputs: usize,
    /// Each chunk position's universal gadget (all equal: every op kind pays the same).
    pub chunks: Vec<usize>,
    /// Each fee slot's credit to account 0.
    pub fee_slots: Vec<usize>,
    /// Pubdata SHA-256 and the commitment (header SHA-256, decompositions, public input).
    pub commitment: usize,
}

impl BlockCost {
    pub fn measure(capacity: usize, fee_slots: usize) -> Result<Self, SynthesisError> {
        use ark_relations::gr1cs::{ConstraintSystem, OptimizationGoal, SynthesisMode};
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        let mut marks = Vec::new();
        synthesize(&cs, &BlockWitness::blank(capacity, fee_slots), &mut marks)?;
        let total = cs.num_constraints();
        let diff = |a: usize, b: usize| b.saturating_sub(a);
        let at = |k: usize| marks.get(k).copied().unwrap_or(total);
        Ok(Self {
            total,
            inputs: at(0),
            chunks: (0..capacity).map(|i| diff(at(i), at(i + 1))).collect(),
            fee_slots: (0..fee_slots).map(|j| diff(at(capacity + j), at(capacity + j + 1))).collect(),
            commitment: diff(at(capacity + fee_slots), total),
        })
    }
}

/// The name of an op code the circuit supports (`zkl_types::Op::name`).
pub fn op_name(op_code: u8) -> Option<&'static str> {
    SUPPORTED_OPS.iter().find(|(c, _)| *c == op_code).and_then(|(c, _)| zkl_types::layout::of(*c)).map(|l| l.name)
}

/// The constraints of the pubdata bytes and their SHA-256 for `bytes` bytes.
fn pubdata_cost(bytes: usize) -> Result<usize, SynthesisError> {
    use ark_relations::gr1cs::{ConstraintSystem, OptimizationGoal, SynthesisMode};
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    let data = UInt8::new_witness_vec(cs.clone(), &vec![0u8; bytes])?;
    sha256::sha256(&data)?;
    Ok(cs.num_constraints())
}

/// The constraints each supported op kind costs in the block circuit of `capacity` chunks and
/// `fee_slots` fee slots, measured (setup-mode synthesis): every chunk position runs the same
/// universal gadget, so an op costs its chunk count times the marginal cost of a chunk, which
/// is the chunk gadget ([`BlockCost::measure`]) plus one chunk's share of the pubdata bytes and
/// SHA-256 (measured as the cost of 16 more chunks, a whole number of SHA-256 blocks, over 16).
/// The block's fixed costs (fee slots, commitment header) are not included. Ops the circuit
/// does not support are left out.
pub fn constraints_per_op(capacity: usize, fee_slots: usize) -> Result<Vec<(&'static str, usize)>, SynthesisError> {
    const MORE: usize = 16;
    let cost = BlockCost::measure(capacity, fee_slots)?;
    let gadget = cost.chunks.iter().copied().max().unwrap_or(0);
    let bytes = capacity * CHUNK_BYTES;
    let share = pubdata_cost(bytes + MORE * CHUNK_BYTES)?.saturating_sub(pubdata_cost(bytes)?) / MORE;
    Ok(SUPPORTED_OPS.iter().filter_map(|(code, chunks)| Some((op_name(*code)?, chunks * (gadget + share)))).collect())
}
