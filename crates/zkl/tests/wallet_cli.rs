//! The wallet and matcher commands against a running node: keys, a transfer, two signed orders
//! matched in two partial fills, a withdrawal, and clear errors for rejected txs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use zkl_rpc_api::AdminApiClient;

use jsonrpsee::http_client::HttpClientBuilder;
use serde_json::Value;
use zkl_node::NodeConfig;
use zkl_state::testkit::{ETH, ONE, USDC, User, deposit};

struct Node(Child);
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn zkl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkl")).args(args).output().expect("run zkl")
}

fn ok_json(o: Output) -> Value {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn key(u: &User) -> String {
    format!("0x{}", hex::encode(u.eth.to_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_and_matcher_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.dev_priority_ops = true;
    config.matchers = vec![4];
    let path = dir.path().join("node.json");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["node", "--config", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _node = Node(child);
    let url = serde_json::from_str::<Value>(&line).unwrap()["rpc"].as_str().unwrap().to_string();
    let rpc = HttpClientBuilder::default().build(&url).unwrap();

    let (a, b, m) = (User::new(1), User::new(2), User::new(3));
    for (i, (u, chain, token, amount)) in
        [(&a, 1, USDC, 1_000_000_000u128), (&b, 2, ETH, ONE), (&m, 1, ETH, ONE / 10)].into_iter().enumerate()
    {
        rpc.dev_priority_op(deposit(chain, i as u64, u.address, token, token, amount)).await.unwrap();
    }
    let (ka, kb, km) = (key(&a), key(&b), key(&m));
    for k in [&ka, &kb, &km] {
        ok_json(zkl(&["wallet", "--node", &url, "--eth-private-key", k, "change-pubkey"]));
    }
    let t = ok_json(zkl(&[
        "wallet",
        "--node",
        &url,
        "--eth-private-key",
        &ka,
        "transfer",
        "--to",
        &b.address.to_string(),
        "--token",
        "2",
        "--amount",
        "10",
        "--fee",
        "0.01",
    ]));
    assert!(t["tx_hash"].as_str().unwrap().starts_with("0x"));

    // B sells 1 ETH at 1,000 USDC; A buys 0.5, filled 0.2 then 0.3.
    let sell = zkl(&[
        "wallet",
        "--node",
        &url,
        "--eth-private-key",
        &kb,
        "sign-order",
        "--base",
        "1",
        "--quote",
        "2",
        "--side",
        "sell",
        "--amount",
        "1",
        "--price",
        "1000",
        "--slot",
        "1",
    ]);
    let buy = zkl(&[
        "wallet",
        "--node",
        &url,
        "--eth-private-key",
        &ka,
        "sign-order",
        "--base",
        "1",
        "--quote",
        "2",
        "--side",
        "buy",
        "--amount",
        "0.5",
        "--price",
        "1000",
        "--slot",
        "1",
    ]);
    let (sell_path, buy_path) = (dir.path().join("sell.json"), dir.path().join("buy.json"));
    std::fs::write(&sell_path, ok_json(sell).to_string()).unwrap();
    std::fs::write(&buy_path, ok_json(buy).to_string()).unwrap();
    for fill in ["0.2", "0.3"] {
        ok_json(zkl(&[
            "matcher",
            "submit",
            sell_path.to_str().unwrap(),
            buy_path.to_str().unwrap(),
            "--fill",
            fill,
            "--node",
            &url,
            "--eth-private-key",
            &km,
        ]));
    }
    // The filled order cannot match again: a clear one-line error, exit code 1.
    let again = zkl(&[
        "matcher",
        "submit",
        sell_path.to_str().unwrap(),
        buy_path.to_str().unwrap(),
        "--fill",
        "0.1",
        "--node",
        &url,
        "--eth-private-key",
        &km,
    ]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("order nonce") && err.trim_end().lines().count() == 1, "{err}");
    // A is not a matcher.
    let not_matcher = zkl(&[
        "matcher",
        "submit",
        sell_path.to_str().unwrap(),
        buy_path.to_str().unwrap(),
        "--fill",
        "0.1",
        "--node",
        &url,
        "--eth-private-key",
        &ka,
    ]);
    assert!(String::from_utf8_lossy(&not_matcher.stderr).contains("not an allowed matcher"));

    ok_json(zkl(&[
        "wallet",
        "--node",
        &url,
        "--eth-private-key",
        &ka,
        "withdraw",
        "--chain",
        "2",
        "--l2-token",
        "1",
        "--l1-token",
        "1",
        "--amount",
        "0.4",
    ]));
    // Beyond chain 2's USDC liquidity (none was deposited there).
    let too_much = zkl(&[
        "wallet",
        "--node",
        &url,
        "--eth-private-key",
        &kb,
        "withdraw",
        "--chain",
        "2",
        "--l2-token",
        "2",
        "--l1-token",
        "2",
        "--amount",
        "100",
    ]);
    assert_eq!(too_much.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&too_much.stderr).contains("insufficient liquidity"));

    let acc = ok_json(zkl(&["wallet", "--node", &url, "--eth-private-key", &ka, "account"]));
    let bal = |acc: &Value, token: u64| -> String {
        acc["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["token"] == token)
            .map(|b| b["display"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(bal(&acc, 1), "0.0995"); // 0.5 ETH minus 10 bps, minus 0.4 withdrawn
    assert_eq!(bal(&acc, 2), "489.99"); // 1000 − 10.01 − 500
    let accb = ok_json(zkl(&["wallet", "--node", &url, "--eth-private-key", &kb, "account"]));
    assert_eq!(bal(&accb, 2), "509.75"); // 10 + 500 − 5 bps
    assert_eq!(bal(&accb, 1), "0.5");
    // Bad input: exit 2, one line naming the argument.
    let bad = zkl(&[
        "wallet",
        "--node",
        &url,
        "--eth-private-key",
        &ka,
        "transfer",
        "--to",
        "0x12",
        "--token",
        "2",
        "--amount",
        "1",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--to"));
}
