//! Development tools, not linked by the production node or prover: the devnet (anvils with the
//! contracts deployed for a node configuration), the node benchmark (`zkl bench node`), the
//! exchange benchmark (`zkl bench exchange`) and the block-proving benchmark (`zkl bench prove`).

pub mod devnet;
pub mod exchange_bench;
pub mod exodus_bench;
pub mod node_bench;
pub mod prove_bench;
