//! The node against anvil chains with the ZkLink contracts (one test binary: they share the
//! build). `flow`: deposits, settlement on both chains, restarts; `parity`: every block the node
//! seals commits on every chain; `settlement`: halts and the operator's revert; `oracle`: the
//! finality attestation.

mod common;
mod flow;
mod oracle;
mod parity;
mod settlement;
