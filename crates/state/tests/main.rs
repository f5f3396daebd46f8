//! The integration tests of `state`, as one binary (one link instead of 6): run one file's
//! tests with `cargo test -p zkl-state --test state <file>::`.

mod api_doc;
mod common;
mod fuzz;
mod golden;
mod invariants;
mod json;
mod rules;
