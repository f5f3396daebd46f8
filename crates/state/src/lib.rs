//! The Layer-2 state machine of zkLink-rs: accounts in a Poseidon quad Merkle tree, every spot
//! transaction with its rules, blocks with their pubdata and commitment.
//!
//! - [`State::apply_op`] holds the semantics of every operation (section 11 of
//!   `docs/protocol.md`); everything else (signed txs, priority requests, blocks) reduces to it.
//! - Rejections are typed ([`TxError`]); a rejected tx or op changes nothing.
//! - Tree roots are computed lazily over dirty paths, in parallel across accounts.
//! - [`exodus`]: what a balance pays on each chain once the rollup has stopped
//!   ([`State::exodus_claim`]); the exit circuit proves the same rule.
//!
//! Feature `test-utils`: [`testkit`] (users, signed txs, deposits for tests and benchmarks) and
//! `benchmark` (`zkl bench state`); production crates do not enable it.

pub mod account;
#[cfg(feature = "test-utils")]
pub mod benchmark;
pub mod block;
pub mod error;
pub mod exec;
pub mod exodus;
pub mod state;
#[cfg(any(test, feature = "test-utils"))]
pub mod testkit;
pub mod tree;

pub use account::{Account, OrderSlot};
pub use block::{BlockParams, SealedBlock};
pub use error::TxError;
pub use exec::VerifiedKeys;
pub use exodus::{ExodusClaim, ExodusError, exodus_amounts};
pub use state::{CommitPlan, State};
pub use tree::{MerkleProof, QuadTree, TreePlan};
