#!/usr/bin/env bash
# The project's main job: `zkl devnet`. Two anvil chains with the ZkLink contracts (the block
# circuit's Groth16 verifier on both), test USDC on both chains and USDT on chain 2 (merged into
# one L2 token group), the node settling every block on both chains, a `zkl prover` worker
# proving the blocks, the light-oracle signers, a whitelisted matcher account with the exchange
# (`zkl exchange`) and the indexer (`zkl indexer`, on a PostgreSQL server of its own; Debian's
# postgresql package is installed if missing). The first run
# sets up the block circuit's keys (a minute or two, with a progress bar; cached afterwards).
# Prints the endpoints and funded keys as one JSON line; Ctrl-C stops everything.
# README.md walks through the trading scenario with `zkl wallet` against it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-l1.sh
./scripts/setup-postgres.sh
cargo build --release --locked -p zkl
data_dir=${ZKL_DEVNET_DIR:-$(mktemp -d)/devnet}
echo "==> data dir $data_dir (node.log, prover.log, exchange.log, indexer.log)" >&2
exec ./target/release/zkl devnet --data-dir "$data_dir" "$@"
