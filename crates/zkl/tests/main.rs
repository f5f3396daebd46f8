//! The integration tests of `zkl`, as one binary (one link instead of 8): run one file's
//! tests with `cargo test -p zkl --test cli <file>::`.

mod bench_cli;
mod common;
mod crypto_cli;
mod devnet_cli;
mod e2e_two_chains;
mod exchange_cli;
mod node_faults;
mod node_recovery;
mod wallet_cli;
