#!/usr/bin/env bash
# Installs the Layer-1 tooling the contract tests need: solc-js and anvil (npm package
# @foundry-rs/anvil-linux-amd64), pinned by contracts/package-lock.json, into contracts/node_modules.
# Idempotent: does nothing when contracts/node_modules is present. Tests find anvil at
# contracts/node_modules/.bin/anvil (or $ZKL_ANVIL).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x contracts/node_modules/.bin/anvil ] || [ ! -d contracts/node_modules/solc ]; then
    echo "==> npm ci (contracts)"
    # solc-js and the anvil package need no install scripts.
    npm ci --prefix contracts --ignore-scripts --no-audit --no-fund
fi
