//! The integration tests of `circuit`, as one binary (one link instead of 7): run one file's
//! tests with `cargo test -p zkl-circuit --test circuit <file>::`.

mod block;
mod block_verifier_anvil;
mod bytes;
mod common;
mod eddsa;
mod exit;
mod groth16;
mod poseidon_merkle;
