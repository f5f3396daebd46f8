//! Prints the constraint cost of every gadget and of the block circuit per
//! part, capacity and op kind (setup-mode synthesis, no witness):
//! `cargo run -p zkl-circuit --example constraint_report`.

use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::uint8::UInt8;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};
use zkl_circuit::block::{
    BlockCost, SUPPORTED_OPS, constraints_per_op, constraints_per_op_routed, op_name, work_per_op,
};
use zkl_circuit::commitment::{BlockHeaderVar, HEADER_BYTES};
use zkl_circuit::ecc::PointVar;
use zkl_circuit::eddsa::{self, SignatureVar};
use zkl_circuit::groth16::{SynthFn, constraint_report};
use zkl_circuit::merkle::{self, ACCOUNT_TREE_DEPTH, BALANCE_TREE_DEPTH, QuadPath};
use zkl_circuit::{BoolVar, Fr, FrVar, bits, poseidon, sha256};

type Cs = ConstraintSystemRef<Fr>;

thread_local! {
    static GADGET_COST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` and records the constraints it adds.
fn measure<T>(cs: &Cs, f: impl FnOnce() -> Result<T, SynthesisError>) -> Result<(), SynthesisError> {
    let before = cs.num_constraints();
    f()?;
    GADGET_COST.with(|c| c.set(cs.num_constraints() - before));
    Ok(())
}

fn w(cs: &Cs) -> Result<FrVar, SynthesisError> {
    FrVar::new_witness(cs.clone(), || Ok(Fr::from(0u64)))
}

fn path_update(cs: Cs, depth: usize) -> Result<(), SynthesisError> {
    let bits = (0..2 * depth).map(|_| BoolVar::new_witness(cs.clone(), || Ok(false))).collect::<Result<Vec<_>, _>>()?;
    let sib = (0..depth).map(|_| Ok([w(&cs)?, w(&cs)?, w(&cs)?])).collect::<Result<Vec<_>, SynthesisError>>()?;
    let path = QuadPath::new(&bits, sib)?;
    let (root, old, new) = (w(&cs)?, w(&cs)?, w(&cs)?);
    measure(&cs, || merkle::update(&root, &old, &new, &path))
}

fn sha(cs: Cs, len: usize) -> Result<(), SynthesisError> {
    let bytes = UInt8::new_witness_vec(cs.clone(), &vec![0u8; len])?;
    measure(&cs, || sha256::sha256(&bytes))
}

fn main() -> Result<(), SynthesisError> {
    let mut rows: Vec<(String, usize)> = Vec::new();
    // Each closure allocates its inputs, then calls `measure` around the gadget alone.
    let mut row = |name: &str, f: Box<dyn FnOnce(Cs) -> Result<(), SynthesisError>>| -> Result<(), SynthesisError> {
        GADGET_COST.with(|c| c.set(0));
        constraint_report(SynthFn(f))?;
        rows.push((name.to_string(), GADGET_COST.with(|c| c.get())));
        Ok(())
    };
    for n in [2usize, 4, 5] {
        row(
            &format!("poseidon, {n} inputs"),
            Box::new(move |cs| {
                let v = (0..n).map(|_| w(&cs)).collect::<Result<Vec<_>, _>>()?;
                measure(&cs, || poseidon::hash(&v))
            }),
        )?;
    }
    row("quad path update, depth 12", Box::new(|cs| path_update(cs, ACCOUNT_TREE_DEPTH)))?;
    row("quad path update, depth 11", Box::new(|cs| path_update(cs, BALANCE_TREE_DEPTH)))?;
    row(
        "generic path slot (depth 12 or 11)",
        Box::new(|cs| {
            let bits =
                (0..24).map(|_| BoolVar::new_witness(cs.clone(), || Ok(false))).collect::<Result<Vec<_>, _>>()?;
            let sib = (0..12).map(|_| Ok([w(&cs)?, w(&cs)?, w(&cs)?])).collect::<Result<Vec<_>, SynthesisError>>()?;
            let path = QuadPath::new(&bits, sib)?;
            let (root, old, new) = (w(&cs)?, w(&cs)?, w(&cs)?);
            let short = BoolVar::new_witness(cs.clone(), || Ok(true))?;
            measure(&cs, || merkle::update_short_or_full(&root, &old, &new, &path, &short))
        }),
    )?;
    row(
        "eddsa-poseidon verify",
        Box::new(|cs| {
            let en = BoolVar::new_witness(cs.clone(), || Ok(true))?;
            let a = PointVar { x: w(&cs)?, y: w(&cs)? };
            let sig = SignatureVar { r8: PointVar { x: w(&cs)?, y: w(&cs)? }, s: w(&cs)? };
            let msg = w(&cs)?;
            measure(&cs, || eddsa::verify(&en, &a, &msg, &sig))
        }),
    )?;
    row(
        "pubkey hash",
        Box::new(|cs| {
            let a = PointVar { x: w(&cs)?, y: w(&cs)? };
            measure(&cs, || eddsa::pubkey_hash(&a))
        }),
    )?;
    row(
        "unpack amount (40 bit)",
        Box::new(|cs| {
            let x = w(&cs)?;
            measure(&cs, || bits::unpack_amount(&x))
        }),
    )?;
    row(
        "unpack fee (16 bit)",
        Box::new(|cs| {
            let x = w(&cs)?;
            measure(&cs, || bits::unpack_fee(&x))
        }),
    )?;
    row(
        "canonical 254-bit decomposition",
        Box::new(|cs| {
            let x = w(&cs)?;
            measure(&cs, || bits::to_bits_le_strict(&x))
        }),
    )?;
    row("sha256, 55 bytes (1 block)", Box::new(|cs| sha(cs, 55)))?;
    row("sha256, 119 bytes (2 blocks)", Box::new(|cs| sha(cs, 119)))?;
    row(
        "block commitment (236-byte header)",
        Box::new(|cs| {
            let header = BlockHeaderVar {
                block_number: w(&cs)?,
                timestamp: w(&cs)?,
                old_root: w(&cs)?,
                new_root: w(&cs)?,
                pubdata_hash: UInt8::new_witness_vec(cs.clone(), &[0u8; 32])?,
                onchain_hashes: [w(&cs)?, w(&cs)?, w(&cs)?, w(&cs)?],
            };
            measure(&cs, || header.public_input())
        }),
    )?;
    println!("{:<40} {:>10}", "gadget", "constraints");
    for (name, n) in &rows {
        println!("{name:<40} {n:>10}");
    }
    println!("(sha256 header blocks: {})", sha256::blocks_for(HEADER_BYTES));

    // The block circuit: every chunk position runs the same universal gadget, so every op kind
    // costs (its chunks) x (chunk gadget + its share of the pubdata SHA-256).
    println!();
    println!(
        "{:<10} {:>6} {:>10} {:>12} {:>10} {:>12} {:>10}",
        "capacity", "fees", "total", "per chunk", "per fee", "commitment", "inputs"
    );
    let mut totals = Vec::new();
    for (capacity, fee_slots) in [(4usize, 2usize), (8, 2)] {
        let c = BlockCost::measure(capacity, fee_slots)?;
        println!(
            "{capacity:<10} {fee_slots:>6} {:>10} {:>12} {:>10} {:>12} {:>10}",
            c.total,
            c.chunks.iter().max().copied().unwrap_or(0),
            c.fee_slots.iter().max().copied().unwrap_or(0),
            c.commitment,
            c.inputs
        );
        totals.push((capacity, c));
    }
    if let [(c4, a), (c8, b)] = totals.as_slice() {
        let marginal = (b.total - a.total) / (c8 - c4);
        println!("marginal cost of one chunk (capacity 4 -> 8, incl. pubdata SHA-256 share): {marginal}");
    }
    // Per op kind (zkl_circuit::block::constraints_per_op: chunks x (gadget + pubdata share)).
    let gadget = totals.last().map(|(_, c)| c.chunks.iter().max().copied().unwrap_or(0)).unwrap_or(0);
    for (name, n) in constraints_per_op(8, 2)? {
        let chunks = SUPPORTED_OPS.iter().find(|(code, _)| op_name(*code) == Some(name)).map_or(0, |(_, c)| *c);
        println!("  {name:<16} {chunks} chunk(s): {n:>8} (gadget only {:>8})", chunks * gadget);
    }

    // Work slots (fewer than the chunks): an op pays its work slots' gadgets (routing included)
    // and its chunks' positions and pubdata share (zkl_circuit::block::constraints_per_op_routed).
    println!();
    println!(
        "{:<10} {:>6} {:>6} {:>10} {:>12} {:>12} {:>12}",
        "capacity", "work", "fees", "total", "per slot", "positions", "commitment"
    );
    for (capacity, work, fee_slots) in [(8usize, 4usize, 2usize), (38, 19, 9)] {
        let c = BlockCost::measure_routed(capacity, work, fee_slots)?;
        println!(
            "{capacity:<10} {work:>6} {fee_slots:>6} {:>10} {:>12} {:>12} {:>12}",
            c.total,
            c.chunks.iter().max().copied().unwrap_or(0),
            c.positions,
            c.commitment
        );
        for (name, n) in constraints_per_op_routed(capacity, work, fee_slots)? {
            let code = SUPPORTED_OPS.iter().find(|(code, _)| op_name(*code) == Some(name)).map_or(0, |(c, _)| *c);
            println!("  {name:<16} {} work slot(s): {n:>8}", work_per_op(code));
        }
    }
    Ok(())
}
