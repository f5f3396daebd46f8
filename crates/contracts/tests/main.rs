//! The integration tests of `contracts`, as one binary (one link instead of 5): run one file's
//! tests with `cargo test -p zkl-contracts --test contracts <file>::`.

mod attacks;
mod bench_smoke;
mod common;
mod exodus;
mod generated;
mod l1_flow;
