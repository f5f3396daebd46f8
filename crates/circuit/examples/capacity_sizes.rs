//! The largest block capacity whose circuit fits each FFT domain: Groth16's domain is the
//! constraint count plus the public inputs rounded up to a power of two, so a circuit just past a
//! power of two pays for a domain (FFTs, H query) twice its size. Fee slots follow the node's
//! rule (`BlockParams::for_capacity`). `cargo run --release -p zkl-circuit --example
//! capacity_sizes [max_log2] [k]` (default 21; each measurement is a setup-mode synthesis). With
//! `k`, circuits of C chunks and ⌈C/k⌉ work slots (k = 3: a block of three-chunk ops such as
//! deposits and withdrawals fills both).

use zkl_circuit::block::BlockCost;
use zkl_state::BlockParams;

fn size(capacity: usize, per_slot: Option<usize>) -> usize {
    let slots = BlockParams::for_capacity(capacity).max_fee_tokens;
    let work = per_slot.map_or(capacity, |k| capacity.div_ceil(k));
    let cost = BlockCost::measure_routed(capacity, work, slots).expect("synthesis");
    // One public input, plus the constant one.
    cost.total + 2
}

fn main() {
    let max_log2: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(21);
    let per_slot: Option<usize> = std::env::args().nth(2).and_then(|a| a.parse().ok()).filter(|k| *k > 1);
    println!("{:>7} {:>9} {:>6} {:>11} {:>7}", "domain", "capacity", "work", "constraints", "filled");
    let mut lo = 1usize;
    for k in 19..=max_log2 {
        let domain = 1usize << k;
        // Largest capacity with size(capacity) <= domain (size grows with capacity).
        let mut hi = lo.max(2);
        while size(hi, per_slot) <= domain {
            lo = hi;
            hi *= 2;
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if size(mid, per_slot) <= domain { lo = mid } else { hi = mid }
        }
        let s = size(lo, per_slot);
        let work = per_slot.map_or(lo, |k| lo.div_ceil(k));
        println!("{:>7} {:>9} {:>6} {:>11} {:>6.1}%", format!("2^{k}"), lo, work, s, 100.0 * s as f64 / domain as f64);
    }
}
