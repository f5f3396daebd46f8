#!/usr/bin/env bash
# The project's main job. Until the multi-chain devnet lands (anvil chains, contracts, watchers,
# prover), it runs the most complete demo there is: a Layer-2 node with the demo token registry
# (ETH and USDC on chains 1 and 2, USDT on chain 2, USDC+USDT merged as USD), deposits injected
# as development priority operations, and the README's trading scenario through `zkl wallet` and
# `zkl matcher`. The node keeps running (JSON-RPC, docs/api.md) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p zkl
zkl=$PWD/target/release/zkl

work=$(mktemp -d)
node_pid=
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

# Anvil's well-known test keys: A, B, and the matcher M.
key_a=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
key_b=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
key_m=0x5de4111afa1a4b94908f83103eb1d1706367c2e68ca870fc3d21e4a7de09c05a
addr() { $zkl key derive --eth-private-key "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["eth_address"])'; }
addr_a=$(addr $key_a); addr_b=$(addr $key_b); addr_m=$(addr $key_m)

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
l1 = lambda chains, d: [{"chain": c, "decimals": d} for c in chains]
json.dump({
    "data_dir": work + "/db", "rpc_addr": "127.0.0.1:3030", "block_capacity": 64, "block_time_ms": 500,
    "fee_owner": "0x00000000000000000000000000000000000000fe", "matchers": [4], "dev_priority_ops": True,
    "chains": [{"id": 1, "name": "chain-1"}, {"id": 2, "name": "chain-2"}],
    "tokens": [
        {"id": 1, "symbol": "ETH", "l1": l1([1, 2], 18)},
        {"id": 2, "symbol": "USDC", "group": 100, "l1": l1([1, 2], 6)},
        {"id": 3, "symbol": "USDT", "group": 100, "l1": l1([2], 6)},
        {"id": 100, "symbol": "USD", "is_group": True},
    ],
}, open(work + "/node.json", "w"), indent=1)
PY
$zkl node --config "$work/node.json" > "$work/node.out" &
node_pid=$!
until [ -s "$work/node.out" ]; do sleep 0.2; done
url=http://127.0.0.1:3030
echo "== node: $(head -1 "$work/node.out")"

rpc() { python3 - "$url" "$@" <<'PY'
import json, sys, urllib.request
url, method, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
req = urllib.request.Request(url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(), {"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(req)).get("result")))
PY
}
deposit() { rpc zkl_devPriorityOp "[{\"type\":\"deposit\",\"chain\":$1,\"serial_id\":$2,\"sub\":0,\"l1_token\":$3,\"l2_token\":$3,\"l1_amount\":\"$4\",\"owner\":\"$5\"}]" >/dev/null; }
echo "== deposits: A 1,000 USDC on chain 1; B 1 ETH on chain 2; M 0.1 ETH on chain 1"
deposit 1 0 2 1000000000 "$addr_a"
deposit 2 0 1 1000000000000000000 "$addr_b"
deposit 1 1 1 100000000000000000 "$addr_m"
w() { $zkl wallet --node $url --eth-private-key "$@"; }
for k in $key_a $key_b $key_m; do w "$k" change-pubkey >/dev/null; done
echo "== B signs: sell 1 ETH at 1,000 USDC; A signs: buy 1 ETH at 1,000 USDC"
w $key_b sign-order --base 1 --quote 2 --side sell --amount 1 --price 1000 --slot 1 > "$work/sell.json"
w $key_a sign-order --base 1 --quote 2 --side buy --amount 1 --price 1000 --slot 1 > "$work/buy.json"
for fill in 0.4 0.6; do
  echo "== matcher fills $fill ETH: $($zkl matcher submit "$work/sell.json" "$work/buy.json" --fill $fill --node $url --eth-private-key $key_m)"
done
echo "== A withdraws 0.9 ETH on chain 2: $(w $key_a withdraw --chain 2 --l2-token 1 --l1-token 1 --amount 0.9)"
echo "== B withdraws 990 USDC on chain 1: $(w $key_b withdraw --chain 1 --l2-token 2 --l1-token 2 --amount 990)"
echo -n "== B withdraws 1 USDC on chain 2 (no USDC liquidity there): "
w $key_b withdraw --chain 2 --l2-token 2 --l1-token 2 --amount 1 2>&1 || true
sleep 1
echo "== A: $(w $key_a account)"
echo "== B: $(w $key_b account)"
echo "== state: $(rpc zkl_stateRoot '[]')"
echo "== node running at $url (JSON-RPC, docs/api.md); Ctrl-C stops it"
wait "$node_pid"
