//! The node's API without Layer 1 (one test binary: they share the build). `mempool`: queue,
//! fees, subscriptions, metrics; `provers`: the prover job queue; `rpc_fuzz`: arbitrary params.

mod mempool;
mod provers;
mod rpc_fuzz;
