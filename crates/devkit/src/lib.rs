//! Development tools, not linked by the production node or prover: the devnet (anvils with the
//! contracts deployed for a node configuration), the node benchmark (`zkl bench node`), the
//! exchange benchmark (`zkl bench exchange`) and the block-proving benchmark (`zkl bench prove`).

pub mod devnet;
pub mod exchange_bench;
pub mod exodus_bench;
pub mod node_bench;
pub mod prove_bench;

/// The `p` quantile (0..=1) of sorted samples, nearest rank; NaN without samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
