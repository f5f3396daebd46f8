//! Constraint cost reporting: per block part and per op kind.

use super::gadget::synthesize;
use super::*;

/// Constraints spent by each part of a block circuit (setup-mode synthesis, no witness).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCost {
    pub total: usize,
    /// Public input, pubdata bytes, fee-slot tokens.
    pub inputs: usize,
    /// With work slots: the per-position part (op-start counter, op codes, which chunks need
    /// work, each position taken once). 0 when every position runs the chunk gadget.
    pub positions: usize,
    /// Each chunk position's universal gadget, or each work slot's (its routing included); all
    /// equal but for a work slot's ordering check (the first has none).
    pub chunks: Vec<usize>,
    /// Each fee slot's credit to account 0.
    pub fee_slots: Vec<usize>,
    /// Pubdata SHA-256 and the commitment (header SHA-256, decompositions, public input).
    pub commitment: usize,
}

impl BlockCost {
    /// The circuit with one chunk gadget per position.
    pub fn measure(capacity: usize, fee_slots: usize) -> Result<Self, SynthesisError> {
        Self::measure_routed(capacity, capacity, fee_slots)
    }

    /// The circuit of `capacity` chunks and `work_slots` work slots (`≥ capacity`: one chunk
    /// gadget per position).
    pub fn measure_routed(capacity: usize, work_slots: usize, fee_slots: usize) -> Result<Self, SynthesisError> {
        use ark_relations::gr1cs::{ConstraintSystem, OptimizationGoal, SynthesisMode};
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        let mut marks = Vec::new();
        let w = BlockWitness::blank_routed(capacity, work_slots, fee_slots);
        let (routed, slots) = (w.routing.is_some(), w.chunks.len());
        synthesize(&cs, &w, &mut marks)?;
        let total = cs.num_constraints();
        let diff = |a: usize, b: usize| b.saturating_sub(a);
        let at = |k: usize| marks.get(k).copied().unwrap_or(total);
        // Marks: [positions], each slot or position, [the positions' cover check], each fee slot,
        // the commitment.
        let (first, after) = if routed { (1, 1) } else { (0, 0) };
        let fees_at = first + slots + after;
        Ok(Self {
            total,
            inputs: at(0),
            positions: if routed { diff(at(0), at(1)) + diff(at(first + slots), at(fees_at)) } else { 0 },
            chunks: (0..slots).map(|i| diff(at(first + i), at(first + i + 1))).collect(),
            fee_slots: (0..fee_slots).map(|j| diff(at(fees_at + j), at(fees_at + j + 1))).collect(),
            commitment: diff(at(fees_at + fee_slots), total),
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
    constraints_per_op_routed(capacity, capacity, fee_slots)
}

/// The work slots an op needs (the layout table's `work_chunks`: none for a Noop, two for a
/// ForcedExit or an OrderMatching, one otherwise).
pub fn work_per_op(op_code: u8) -> usize {
    zkl_types::layout::of(op_code).map_or(1, |l| l.work_chunks)
}

/// As [`constraints_per_op`] for the circuit of `work_slots` work slots: with fewer work slots
/// than chunks an op costs its work slots times a slot (chunk gadget and routing) plus its
/// chunks times a position's share (counter, cover check) and the pubdata share.
pub fn constraints_per_op_routed(
    capacity: usize,
    work_slots: usize,
    fee_slots: usize,
) -> Result<Vec<(&'static str, usize)>, SynthesisError> {
    const MORE: usize = 16;
    let cost = BlockCost::measure_routed(capacity, work_slots, fee_slots)?;
    let gadget = cost.chunks.iter().copied().max().unwrap_or(0);
    let bytes = capacity * CHUNK_BYTES;
    let share = pubdata_cost(bytes + MORE * CHUNK_BYTES)?.saturating_sub(pubdata_cost(bytes)?) / MORE;
    let routed = work_slots < capacity;
    let position = cost.positions.div_ceil(capacity);
    Ok(SUPPORTED_OPS
        .iter()
        .filter_map(|(code, chunks)| {
            let cost = if routed {
                work_per_op(*code) * gadget + chunks * (position + share)
            } else {
                chunks * (gadget + share)
            };
            Some((op_name(*code)?, cost))
        })
        .collect())
}
