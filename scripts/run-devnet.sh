#!/usr/bin/env bash
# The project's main job. Until the multi-chain devnet lands (issue "The node and a one-command
# multi-chain devnet"), it runs the most complete demo there is: the Layer-2 cryptography end to
# end through the `zkl` command line.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p zkl
zkl=target/release/zkl

eth_key=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
echo "== L2 key of anvil's first account (personal_sign of the documented message)"
derived=$($zkl key derive --eth-private-key "$eth_key")
echo "$derived"
l2_key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["l2_private_key"])' "$derived")
pub=$($zkl crypto pubkey --private-key "$l2_key")
x=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["x"])' "$pub")
y=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["y"])' "$pub")

msg=$($zkl crypto poseidon 1 2 3)
echo "== message = poseidon(1, 2, 3) = $msg"
sig=$($zkl crypto sign --private-key "$l2_key" --message "$msg")
echo "== signature: $sig"
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$sig" "$1"; }
echo -n "== verify: "
$zkl crypto verify --pubkey-x "$x" --pubkey-y "$y" --message "$msg" --r8-x "$(field r8_x)" --r8-y "$(field r8_y)" --s "$(field s)"
echo -n "== verify with another message: "
$zkl crypto verify --pubkey-x "$x" --pubkey-y "$y" --message 42 --r8-x "$(field r8_x)" --r8-y "$(field r8_y)" --s "$(field s)" || true
