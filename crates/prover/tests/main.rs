//! The integration tests of `prover`, as one binary (one link instead of 2): run one file's
//! tests with `cargo test -p zkl-prover --test prover <file>::`.

mod prove_blocks;
mod workers;
