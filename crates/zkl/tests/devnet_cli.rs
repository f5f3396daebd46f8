//! `zkl devnet` starts two anvils with the contracts, the node, the exchange and the indexer,
//! prints where they are, and stops everything on Ctrl-C or SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use zkl_rpc_api::ZklApiClient;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_starts_prints_endpoints_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args([
            "devnet",
            "--test-verifier",
            "--priority-expiration",
            "600",
            "--data-dir",
            dir.path().join("db").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zkl devnet");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad first line {line:?}: {e}"));

    let node = HttpClientBuilder::default().build(v["rpc"].as_str().unwrap()).unwrap();
    // The matcher is set up before the line is printed: account 2, with its L2 key.
    assert_eq!(v["matcher"]["account"], 2);
    let matcher = node.account("2".into()).await.unwrap();
    assert_ne!(matcher.pubkey_hash.trim_start_matches("0x").trim_start_matches('0'), "");
    assert_eq!(v["proofs"], "test verifier");
    // The exchange runs as that matcher and trades the devnet's pairs.
    let exchange = HttpClientBuilder::default().build(v["exchange"]["rpc"].as_str().unwrap()).unwrap();
    let pairs: Value = exchange.request("exchange_pairs", rpc_params![]).await.unwrap();
    assert_eq!(pairs[0]["base"], 1);
    assert_eq!(pairs[0]["quote"], 2);
    // The indexer runs on a PostgreSQL server of the devnet's own (scripts/setup-postgres.sh
    // installs the binaries), which stops with the devnet.
    let indexer = HttpClientBuilder::default().build(v["indexer"]["rpc"].as_str().expect("an indexer")).unwrap();
    let status: Value = indexer.request("explorer_status", rpc_params![]).await.unwrap();
    assert!(status["block"].is_u64(), "{status}");
    let database = v["indexer"]["database"].as_str().unwrap();
    let pg_port: u16 = database.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_ok());
    let chains = v["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 2);
    let mut endpoints = Vec::new();
    for c in chains {
        let rpc = HttpClientBuilder::default().build(c["rpc"].as_str().unwrap()).unwrap();
        let id: String = rpc.request("eth_chainId", rpc_params![]).await.unwrap();
        assert_eq!(u64::from_str_radix(id.trim_start_matches("0x"), 16).unwrap(), c["evm_chain_id"].as_u64().unwrap());
        endpoints.push(rpc);
    }
    assert_eq!(v["funded_keys"].as_array().unwrap().len(), 3);

    // The wallet CLI on L1: balance of the minted test USDC, an ERC-20 deposit, a bad chain.
    let key = v["funded_keys"][0].as_str().unwrap().to_string();
    let rpc = v["rpc"].as_str().unwrap().to_string();
    let wallet = |args: &[&str]| {
        let mut all = vec!["wallet", "--node", &rpc, "--eth-private-key", &key];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_zkl")).args(all).output().unwrap()
    };
    let usdc = |out: std::process::Output| -> Value { serde_json::from_slice(&out.stdout).unwrap() };
    assert_eq!(usdc(wallet(&["l1-balance", "--chain", "1", "--l1-token", "2"]))["display"], "1000000");
    let out = wallet(&["deposit", "--chain", "1", "--l1-token", "2", "--amount", "10.5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(usdc(out)["l1_tx_hash"].as_str().unwrap().starts_with("0x"));
    assert_eq!(usdc(wallet(&["l1-balance", "--chain", "1", "--l1-token", "2"]))["display"], "999989.5");
    let out = wallet(&["deposit", "--chain", "3", "--l1-token", "2", "--amount", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "error: the node settles on no L1 chain 3");
    let out = wallet(&["deposit", "--chain", "1", "--l1-token", "2", "--amount", "0.0000001"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 6 decimals"));

    // The recovery tool reads the chains from the devnet's file, never the node.
    let chains_file = dir.path().join("db").join("devnet.json");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&chains_file).unwrap()).unwrap();
    assert_eq!(written, v);
    // As the README writes it: `zkl exodus SUBCOMMAND --chains FILE …`.
    let exodus = |args: &[&str]| {
        let mut all = vec!["exodus"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--chains", chains_file.to_str().unwrap()]);
        Command::new(env!("CARGO_BIN_EXE_zkl")).args(all).output().unwrap()
    };
    let out = exodus(&["status"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, c) in status["chains"].as_array().unwrap().iter().enumerate() {
        assert_eq!(c["l2_chain"], i + 1);
        assert_eq!(c["exodus"], false);
        if let Some(deadline) = c["oldest_request_deadline"].as_u64() {
            assert!(deadline <= c["now"].as_u64().unwrap() + 600, "{c}");
        }
    }
    // Nothing expired (the node serves every request): no chain is switched.
    let out = exodus(&["activate", "--eth-private-key", &key]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let activation: Value = serde_json::from_slice(&out.stdout).unwrap();
    for c in activation["chains"].as_array().unwrap() {
        assert!(["no_pending_request", "not_before"].contains(&c["outcome"].as_str().unwrap()), "{c}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["exodus", "--chains", "/nonexistent", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: --chains /nonexistent: "));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_zkl")).args(["exodus", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "error: --chains FILE is required");

    // The exodus drill's first step: the operator (node, prover, oracle) is gone, the chains stay.
    let db = dir.path().join("db");
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["devnet", "halt-operator", "--data-dir", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut node_down = false;
    for _ in 0..50 {
        if node.account("2".into()).await.is_err() {
            node_down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(node_down, "the node still answers after halt-operator");
    for rpc in &endpoints {
        assert!(rpc.request::<String, _>("eth_chainId", rpc_params![]).await.is_ok(), "a chain stopped with the node");
    }
    assert!(exodus(&["status"]).status.success(), "the tool reads the chains without the node");
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["devnet", "halt-operator", "--data-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // SIGTERM, like Ctrl-C (SIGINT): the node and both anvils stop.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    for rpc in endpoints {
        assert!(rpc.request::<String, _>("eth_chainId", rpc_params![]).await.is_err(), "anvil still running");
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err(), "PostgreSQL still running");
}

/// `zkl indexer` without a reachable database exits with one line; without one, with usage.
#[test]
fn indexer_reports_an_unreachable_or_missing_database_in_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let database = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["indexer", "--node", "http://127.0.0.1:1", "--database", &database])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().last().unwrap().starts_with("error: database: "), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["indexer", "--node", "http://127.0.0.1:1"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database"));
}
