//! `zkl bench state --json` prints one JSON line with the documented keys (tiny sizes here; the
//! real figures come from the default sizes, outside the test suite).

use std::process::Command;

#[test]
fn bench_state_json_shape() {
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["bench", "state", "--json", "--accounts", "50", "--blocks", "1", "--block-size", "20"])
        .output()
        .expect("run zkl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert!(v["transfers_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["orders_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["accounts"], 50);
    assert_eq!(v["blocks"], 2);
    let root = v["final_root"].as_str().unwrap();
    assert!(root.starts_with("0x") && root.len() == 66);
    // Same sizes, same transactions: the same final root.
    let again = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["bench", "state", "--json", "--accounts", "50", "--blocks", "1", "--block-size", "20"])
        .output()
        .unwrap();
    let v2: serde_json::Value = serde_json::from_str(String::from_utf8(again.stdout).unwrap().trim()).unwrap();
    assert_eq!(v2["final_root"], v["final_root"]);
}

#[test]
fn bench_state_rejects_bad_sizes() {
    let out = Command::new(env!("CARGO_BIN_EXE_zkl")).args(["bench", "state", "--accounts", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--accounts"), "{err}");
}

#[test]
fn bench_node_json_shape() {
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["bench", "node", "--json", "--accounts", "4", "--txs-per-account", "5", "--senders", "2"])
        .output()
        .expect("run zkl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert!(v["accepted_tx_per_s"].as_f64().unwrap() > 0.0, "{v}");
    let (p50, p99) = (v["p50_inclusion_ms"].as_f64().unwrap(), v["p99_inclusion_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p99 >= p50, "{v}");
}

#[test]
fn bench_exchange_json_shape() {
    let out = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["bench", "exchange", "--json", "--traders", "4", "--orders-per-trader", "10", "--senders", "2"])
        .output()
        .expect("run zkl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    for key in ["orders_per_s", "matches_per_s"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    for key in ["p99_order_to_match_ms", "p99_match_to_inclusion_ms"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
}
