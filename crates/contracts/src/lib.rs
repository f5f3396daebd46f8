//! zkLink-rs Layer-1 contracts, from Rust.
//!
//! - [`artifacts`]: where the committed solc-js artifacts (`contracts/out/*.json`) live and how
//!   their freshness is checked;
//! - [`bindings`]: alloy `sol!` bindings generated from those artifacts;
//! - `anvil`: a harness that runs anvil on a free 127.0.0.1 port and kills it on drop;
//! - [`block`]: a block as the contracts see it (commit and execute calldata, stored infos) from
//!   its typed ops, and the light oracle's digest;
//! - `deploy`: deploys the contracts and wraps a deployment for tests and benchmarks;
//! - `layout_sol`, `poseidon_sol` and `verifier`: generators of `Layout.sol` (the op layout
//!   table), `PoseidonT6.sol` and Groth16 verifiers;
//! - `solc`: compiles generated Solidity (the block circuit's verifier) with solc-js at run time;
//! - `bench`: the gas benchmark behind `zkl bench gas`.
//!
//! Production users (the wallet, the settlement layer) get `artifacts`, `bindings` and `block`;
//! the feature `proofs` adds `verifier`, and `test-utils` the harness, deploy helpers, generators,
//! `solc` and the gas benchmark.

#[cfg(feature = "test-utils")]
pub mod anvil;
pub mod artifacts;
#[cfg(feature = "test-utils")]
pub mod bench;
pub mod bindings;
pub mod block;
#[cfg(feature = "test-utils")]
pub mod deploy;
#[cfg(feature = "test-utils")]
pub mod layout_sol;
#[cfg(feature = "test-utils")]
pub mod poseidon_sol;
#[cfg(feature = "test-utils")]
pub mod solc;
#[cfg(feature = "proofs")]
pub mod verifier;

pub use zkl_crypto::field::Fr;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ContractsError {
    #[error("anvil binary not found at {0} (run scripts/setup-l1.sh, or set ZKL_ANVIL)")]
    AnvilNotFound(String),
    #[error("cannot start anvil: {0}")]
    AnvilSpawn(String),
    #[error("anvil did not become ready on 127.0.0.1:{0}")]
    AnvilTimeout(u16),
    #[error("RPC error: {0}")]
    Rpc(String),
    #[error("contract call failed: {0}")]
    Contract(String),
    #[error("transaction reverted: {0}")]
    Reverted(String),
    #[error("artifact error: {0}")]
    Artifact(String),
    #[error("the verifier generator supports exactly 1 public input, the key has {0}")]
    PublicInputCount(usize),
    #[error("prover error: {0}")]
    Prover(String),
    #[error("invalid op encoding: {0}")]
    Encoding(String),
}

impl From<alloy::contract::Error> for ContractsError {
    fn from(e: alloy::contract::Error) -> Self {
        ContractsError::Contract(e.to_string())
    }
}

impl From<alloy::transports::TransportError> for ContractsError {
    fn from(e: alloy::transports::TransportError) -> Self {
        ContractsError::Rpc(e.to_string())
    }
}

impl From<alloy::providers::PendingTransactionError> for ContractsError {
    fn from(e: alloy::providers::PendingTransactionError) -> Self {
        ContractsError::Rpc(e.to_string())
    }
}
