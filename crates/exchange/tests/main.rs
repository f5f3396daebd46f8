//! The integration tests of `exchange`, as one binary (one link instead of 4): run one file's
//! tests with `cargo test -p zkl-exchange --test exchange <file>::`.

mod book;
mod common;
mod engine;
mod node_rules;
mod service;
