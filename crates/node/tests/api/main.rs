//! The node's API without Layer 1 (one test binary: they share the build). `mempool`: queue,
//! fees, subscriptions, metrics; `rpc_fuzz`: arbitrary params; `settlement_seam`: the node and
//! its settlement layer;
//! `storage_failure`: a log that cannot be written.

mod mempool;
mod rpc_fuzz;
mod settlement_seam;
mod storage_failure;
