#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine (Rust toolchain, node/npm and
# python3 present). Installs whatever else it needs itself. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# One full build per run: incremental state only costs time and disk here.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Each step says when it starts, so a CI log shows where the time goes.
step() { echo "==> $1 (at ${SECONDS} s)"; }

step "format"
cargo fmt --all -- --check
step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "production crates without development features"
# A workspace build unifies features; these must also build as their users get them (no
# test-utils, no proofs, the prover without the node).
cargo check --locked -p zkl-node -p zkl-prover -p zkl-wallet -p zkl-contracts -p zkl-state -p zkl-exodus -p zkl-indexer
step "L1 tooling"
scripts/setup-l1.sh
step "PostgreSQL (the indexer's tests)"
scripts/setup-postgres.sh
step "tests"
# Unit and integration tests and the binary's; not the examples (clippy --all-targets compiles
# them) nor doc tests (the docs have no Rust examples).
cargo test --workspace --locked --lib --bins --tests
step "done"
