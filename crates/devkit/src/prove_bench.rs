//! `zkl bench prove`: the block circuit's Groth16 figures per block capacity (constraints, prove
//! and verify time, peak memory), on a full block of transfers built by the state machine.

use std::time::Instant;

use zkl_circuit::block::{BlockCircuit, BlockWitness};
use zkl_state::testkit::{ETH, ONE, User, demo_registry, deposit};
use zkl_state::{BlockParams, State};
use zkl_types::Address;

use zkl_prover::{KeyRing, fee_slots};

/// One capacity's figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlockFigures {
    pub chunks: usize,
    /// Work slots of a circuit with fewer work slots than chunks (`None`: one gadget per chunk).
    pub work_slots: Option<usize>,
    /// The ops of the proven block: `capacity` transfers, or with work slots as many deposits
    /// (three chunks, one work slot each) as fit.
    pub op: &'static str,
    pub ops: usize,
    pub fee_slots: usize,
    pub constraints: usize,
    /// One proof: witness generation, satisfaction check and Groth16 prover.
    pub prove_s: f64,
    /// Of which witness generation (synthesis without building the constraint matrices).
    pub witness_s: f64,
    /// Of which the Groth16 prover (FFTs and multi-scalar multiplications).
    pub groth16_s: f64,
    /// Wall time per constraint on this machine.
    pub us_per_constraint: f64,
    /// Chunks proven per second (a transfer is one chunk).
    pub transfers_per_s: f64,
    /// The block's ops proven per second.
    pub ops_per_s: f64,
    pub verify_ms: f64,
    /// Peak resident memory of this process while proving (Linux `VmHWM` after resetting it).
    pub peak_rss_mb: Option<u64>,
}

/// A block of `deposits` deposits (three chunks each) to fresh addresses in a block of
/// `capacity` chunks, with the state before it.
pub fn deposit_block(capacity: usize, deposits: usize) -> Result<BlockWitness, String> {
    let fail = |e: &dyn std::fmt::Display| format!("benchmark block: {e}");
    let mut st = State::new(demo_registry(), Address::from_evm([0xfe; 20]));
    st.set_block_params(BlockParams::for_capacity(capacity));
    st.seal_block(1);
    let pre = st.clone();
    let mut txs = Vec::new();
    for k in 0..deposits {
        let owner = User::new(100 + k as u64).address;
        st.execute_priority(&deposit(1, k as u64, owner, ETH, ETH, ONE)).map_err(|e| fail(&e))?;
        txs.push(None);
    }
    let sealed = st.seal_block(2);
    BlockWitness::build(&pre, &sealed, &txs, fee_slots(capacity)).map_err(|e| fail(&e))
}

/// A full block of `capacity` one-chunk transfers (each with a fee) from one account to another,
/// with the state before it: the witness the prover gets for a busy block.
pub fn transfer_block(capacity: usize) -> Result<BlockWitness, String> {
    let fail = |e: &dyn std::fmt::Display| format!("benchmark block: {e}");
    let (a, b) = (User::new(1), User::new(2));
    let mut st = State::new(demo_registry(), Address::from_evm([0xfe; 20]));
    st.set_block_params(BlockParams::for_capacity(capacity));
    let mut a_id = 0;
    for (serial, user) in [a.address, b.address].into_iter().enumerate() {
        let op = st.execute_priority(&deposit(1, serial as u64, user, ETH, ETH, 1000 * ONE)).map_err(|e| fail(&e))?;
        if let (0, zkl_types::op::Op::Deposit(d)) = (serial, &op) {
            a_id = d.account;
        }
        st.seal_block(1);
    }
    st.execute_tx(&a.change_pubkey(a_id, 0, 1, ETH, 0)).map_err(|e| fail(&e))?;
    st.seal_block(2);
    let pre = st.clone();
    let mut txs = Vec::new();
    for nonce in 1..=capacity as u32 {
        let tx = a.transfer(a_id, b.address, ETH, ONE, ONE / 1000, nonce);
        st.execute_tx(&tx).map_err(|e| fail(&e))?;
        txs.push(Some(tx));
    }
    let sealed = st.seal_block(3);
    BlockWitness::build(&pre, &sealed, &txs, fee_slots(capacity)).map_err(|e| fail(&e))
}

/// Resets the process's peak-RSS counter (Linux); false where unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak RSS in MiB since the last reset (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// Proves and verifies a full transfer block of `capacity` chunks with keys from `keys`
/// (generated, with progress, the first time); with `work_slots` below the capacity, a block
/// of deposits (as many as fit both) with the circuit of that many work slots.
pub fn measure_block(keys: &KeyRing, capacity: usize, work_slots: Option<usize>) -> Result<BlockFigures, String> {
    let routed = work_slots.filter(|w| *w < capacity);
    let (witness, op, ops) = match routed {
        None => (transfer_block(capacity)?, "transfer", capacity),
        Some(w) => {
            let deposits = w.min(capacity / 3);
            let witness = deposit_block(capacity, deposits)?.route(w).map_err(|e| e.to_string())?;
            (witness, "deposit", deposits)
        }
    };
    let input = witness.public_input;
    let work = routed.unwrap_or(capacity);
    let k = keys.get_routed(capacity, work).map_err(|e| e.to_string())?;
    let constraints = zkl_circuit::block::BlockCost::measure_routed(capacity, work, fee_slots(capacity))
        .map_err(|e| e.to_string())?
        .total;
    let tracked = reset_peak_rss();
    let t = Instant::now();
    let (proof, timings) =
        k.prove_timed(BlockCircuit { witness }, &mut rand::rngs::OsRng).map_err(|e| e.to_string())?;
    let prove_s = t.elapsed().as_secs_f64();
    let peak = if tracked { peak_rss_mb() } else { None };
    let t = Instant::now();
    let ok = k.verify(&[input], &proof).map_err(|e| e.to_string())?;
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    if !ok {
        return Err(format!("the proof of the capacity-{capacity} benchmark block does not verify"));
    }
    Ok(BlockFigures {
        chunks: capacity,
        work_slots: routed,
        op,
        ops,
        fee_slots: fee_slots(capacity),
        constraints,
        prove_s,
        witness_s: timings.witness.as_secs_f64(),
        groth16_s: timings.groth16.as_secs_f64(),
        us_per_constraint: prove_s * 1e6 / constraints as f64,
        transfers_per_s: capacity as f64 / prove_s,
        ops_per_s: ops as f64 / prove_s,
        verify_ms,
        peak_rss_mb: peak,
    })
}

/// Constraints per op type supported by the block circuit: the op's chunks times (the universal
/// chunk gadget + a chunk's share of the pubdata SHA-256), measured at capacity 4
/// ([`zkl_circuit::block::constraints_per_op`]).
pub fn constraints_per_op() -> Result<Vec<(&'static str, usize)>, String> {
    zkl_circuit::block::constraints_per_op(4, fee_slots(4)).map_err(|e| e.to_string())
}

/// The same with work slots: an op's work slots times a slot (chunk gadget and routing) plus its
/// chunks times a position and the pubdata share, measured at capacity 8 with 4 work slots
/// ([`zkl_circuit::block::constraints_per_op_routed`]).
pub fn constraints_per_op_work_slots() -> Result<Vec<(&'static str, usize)>, String> {
    zkl_circuit::block::constraints_per_op_routed(8, 4, fee_slots(8)).map_err(|e| e.to_string())
}
