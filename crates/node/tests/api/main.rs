//! The node's API without Layer 1 (one test binary: they share the build). `mempool`: queue,
//! fees, subscriptions, metrics; `provers`: the prover job queue; `rpc_fuzz`: arbitrary params;
//! `storage_failure`: a log that cannot be written.

mod mempool;
mod rpc_fuzz;
mod storage_failure;
