//! Groth16 circuit building blocks for zkLink-rs (BN254, arkworks 0.6 `gr1cs`).
//!
//! Every gadget here makes exactly the checks of its native counterpart in `zkl-crypto` (or of
//! the rule of `docs/protocol.md` it implements), and is tested against it:
//!
//! - [`poseidon`]: circomlib Poseidon for 1..=16 inputs (`zkl_crypto::poseidon::hash`).
//! - [`merkle`]: sparse quad-tree path updates (protocol.md section 10).
//! - [`ecc`] and [`eddsa`]: BabyJubJub in circomlib coordinates, EdDSA-Poseidon verification
//!   with the strict rules of `zkl_crypto::eddsa` (protocol.md section 5).
//! - [`bits`]: range-checked bit and byte decompositions, packed amounts and fees (section 8).
//! - [`sha256`] and [`commitment`]: SHA-256 over bytes and the block commitment (section 13).
//! - [`exit`]: the exodus exit circuit (a balance's pro-rata claim on one chain, the rule of
//!   `zkl_state::exodus`).
//! - [`block`]: the block circuit (witness, gadget, cost reporting) and [`wire`], the witness's
//!   byte format for prover workers.
//! - [`groth16`]: deterministic development setup, on-disk key cache, prove/verify, constraint
//!   reports.

pub mod bits;
pub mod block;
pub mod commitment;
pub mod ecc;
pub mod eddsa;
pub mod exit;
pub mod groth16;
pub mod merkle;
pub mod poseidon;
pub mod sha256;
pub mod wire;

/// The circuit field: the BN254 scalar field.
pub use zkl_crypto::Fr;

/// Field-element variable of the circuit field.
pub type FrVar = ark_r1cs_std::fields::fp::FpVar<Fr>;
/// Boolean variable of the circuit field.
pub type BoolVar = ark_r1cs_std::boolean::Boolean<Fr>;

pub use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
