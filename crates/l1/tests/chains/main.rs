//! The node against anvil chains with the ZkLink contracts (one test binary: they share the
//! build). `flow`: deposits, settlement on both chains, restarts; `parity`: every block the node
//! seals commits on every chain; `settlement`: halts and the operator's revert; `oracle`: the
//! finality attestation; `exodus`: the operator gone, every user recovers with the tool.

mod common;
mod exodus;
mod flow;
mod oracle;
mod parity;
mod settlement;
