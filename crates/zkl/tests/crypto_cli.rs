//! The `zkl crypto` and `zkl key` commands against circomlibjs / zk-kit / ethers vectors, and
//! their rejection of bad input (exit code 2, one line naming the argument, no panic).

use std::process::{Command, Output};

use serde_json::Value;

const VECTORS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../crypto/tests/vectors/circom.json"));

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn zkl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkl")).args(args).output().expect("run zkl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap().trim_end().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Decimal (as circomlibjs prints) to the CLI's 0x + 64 lowercase hex.
fn hex64(decimal: &str) -> String {
    let n = num_bigint_from_decimal(decimal);
    format!("0x{n:0>64}")
}

fn num_bigint_from_decimal(decimal: &str) -> String {
    // Small arbitrary-precision conversion to avoid a dependency: repeated division by 16.
    let mut digits: Vec<u32> = decimal.bytes().map(|b| u32::from(b - b'0')).collect();
    let mut out = Vec::new();
    while !(digits.is_empty() || digits.iter().all(|d| *d == 0)) {
        let mut rem = 0;
        let mut next = Vec::with_capacity(digits.len());
        for d in digits {
            let cur = rem * 10 + d;
            next.push(cur / 16);
            rem = cur % 16;
        }
        out.push(std::char::from_digit(rem, 16).unwrap());
        digits = next.into_iter().skip_while(|d| *d == 0).collect();
    }
    if out.is_empty() {
        out.push('0');
    }
    out.iter().rev().collect()
}

fn assert_usage_error(o: &Output, names: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected, got {err:?}");
    assert!(err.contains(names), "{err:?} does not name {names}");
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{err:?}");
    assert!(o.stdout.is_empty());
}

#[test]
fn poseidon_matches_circomlibjs() {
    for case in vectors()["poseidon"].as_array().unwrap() {
        let inputs: Vec<&str> = case["inputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let o = zkl(&[&["crypto", "poseidon"], inputs.as_slice()].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), hex64(case["output"].as_str().unwrap()));
    }
    // Hex inputs are read too.
    assert_eq!(stdout(&zkl(&["crypto", "poseidon", "0x1", "0x02"])), stdout(&zkl(&["crypto", "poseidon", "1", "2"])));
}

#[test]
fn pubkey_sign_and_verify_match_circomlibjs() {
    for key in vectors()["eddsa"].as_array().unwrap() {
        let prv = key["private_key"].as_str().unwrap();
        let pk: Value = serde_json::from_str(&stdout(&zkl(&["crypto", "pubkey", "--private-key", prv]))).unwrap();
        let (x, y) = (hex64(key["pubkey_x"].as_str().unwrap()), hex64(key["pubkey_y"].as_str().unwrap()));
        assert_eq!(pk["x"], x.as_str());
        assert_eq!(pk["y"], y.as_str());
        assert_eq!(pk["pubkey_hash"].as_str().unwrap().len(), 42);
        for s in key["signatures"].as_array().unwrap() {
            let msg = s["message"].as_str().unwrap();
            let o = zkl(&["crypto", "sign", "--private-key", prv, "--message", msg]);
            let sig: Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(sig["r8_x"], hex64(s["r8_x"].as_str().unwrap()).as_str());
            assert_eq!(sig["r8_y"], hex64(s["r8_y"].as_str().unwrap()).as_str());
            assert_eq!(sig["s"], hex64(s["s"].as_str().unwrap()).as_str());

            let verify = |m: &str, s_value: &str| {
                zkl(&[
                    "crypto",
                    "verify",
                    "--pubkey-x",
                    &x,
                    "--pubkey-y",
                    &y,
                    "--message",
                    m,
                    "--r8-x",
                    s["r8_x"].as_str().unwrap(),
                    "--r8-y",
                    s["r8_y"].as_str().unwrap(),
                    "--s",
                    s_value,
                ])
            };
            let ok = verify(msg, s["s"].as_str().unwrap());
            assert_eq!((ok.status.code(), stdout(&ok)), (Some(0), "valid".to_string()));
            // Tampered message and tampered S are invalid (exit 1).
            let other_msg = if msg == "0" { "1" } else { "0" };
            let bad = verify(other_msg, s["s"].as_str().unwrap());
            assert_eq!((bad.status.code(), stdout(&bad)), (Some(1), "invalid".to_string()));
        }
    }
}

#[test]
fn verify_rejects_s_above_order_and_points_off_curve() {
    let key = &vectors()["eddsa"][0];
    let s = &key["signatures"][1];
    let args = |px: &str, s_value: &str| {
        zkl(&[
            "crypto",
            "verify",
            "--pubkey-x",
            px,
            "--pubkey-y",
            key["pubkey_y"].as_str().unwrap(),
            "--message",
            s["message"].as_str().unwrap(),
            "--r8-x",
            s["r8_x"].as_str().unwrap(),
            "--r8-y",
            s["r8_y"].as_str().unwrap(),
            "--s",
            s_value,
        ])
    };
    // S + l: what a malleability attack submits.
    let l = "2736030358979909402780800718157159386076813972158567259200215660948447373041";
    let s_plus_l = add_decimal(s["s"].as_str().unwrap(), l);
    let o = args(key["pubkey_x"].as_str().unwrap(), &s_plus_l);
    assert_eq!((o.status.code(), stdout(&o)), (Some(1), "invalid".to_string()));
    assert!(stderr(&o).contains("subgroup order"));
    let o = args("5", s["s"].as_str().unwrap());
    assert_eq!((o.status.code(), stdout(&o)), (Some(1), "invalid".to_string()));
    assert!(stderr(&o).contains("not on BabyJubJub"));
}

fn add_decimal(a: &str, b: &str) -> String {
    let (a, b): (Vec<u32>, Vec<u32>) = (
        a.bytes().rev().map(|c| u32::from(c - b'0')).collect(),
        b.bytes().rev().map(|c| u32::from(c - b'0')).collect(),
    );
    let mut out = Vec::new();
    let mut carry = 0;
    for i in 0..a.len().max(b.len()) {
        let d = a.get(i).unwrap_or(&0) + b.get(i).unwrap_or(&0) + carry;
        out.push(std::char::from_digit(d % 10, 10).unwrap());
        carry = d / 10;
    }
    if carry > 0 {
        out.push('1');
    }
    out.iter().rev().collect()
}

#[test]
fn key_derive_matches_ethers() {
    for d in vectors()["key_derivation"].as_array().unwrap() {
        let o = zkl(&["key", "derive", "--eth-private-key", d["eth_private_key"].as_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(out["eth_address"], d["eth_address"]);
        assert_eq!(out["l2_private_key"], d["l2_private_key"]);
        assert_eq!(out["pubkey_x"], hex64(d["pubkey_x"].as_str().unwrap()).as_str());
        assert_eq!(out["pubkey_y"], hex64(d["pubkey_y"].as_str().unwrap()).as_str());
        assert_eq!(out["pubkey_hash"], d["pubkey_hash"]);
    }
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_argument() {
    let p = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
    let key = "0x0001020304050607080900010203040506070809000102030405060708090001";
    let seventeen: Vec<String> = (1..=17).map(|i| i.to_string()).collect();
    let seventeen: Vec<&str> = seventeen.iter().map(String::as_str).collect();
    assert_usage_error(&zkl(&["crypto", "poseidon", "12x"]), "<X>");
    assert_usage_error(&zkl(&["crypto", "poseidon", p]), "<X>");
    assert_usage_error(&zkl(&["crypto", "poseidon", "-5"]), "-5");
    assert_usage_error(&zkl(&["crypto", "poseidon"]), "<X>");
    assert_usage_error(&zkl(&[&["crypto", "poseidon"], seventeen.as_slice()].concat()), "<X>");
    assert_usage_error(&zkl(&["crypto", "pubkey", "--private-key", "0x1234"]), "--private-key");
    assert_usage_error(&zkl(&["crypto", "pubkey", "--private-key", &key.replace("0x", "")]), "--private-key");
    assert_usage_error(&zkl(&["crypto", "pubkey", "--private-key", &key.replace('1', "g")]), "--private-key");
    assert_usage_error(&zkl(&["crypto", "pubkey"]), "--private-key");
    assert_usage_error(&zkl(&["crypto", "sign", "--private-key", key]), "--message");
    assert_usage_error(&zkl(&["crypto", "sign", "--private-key", key, "--message", p]), "--message");
    assert_usage_error(&zkl(&["crypto", "verify", "--pubkey-x", "1"]), "--pubkey-y");
    assert_usage_error(&zkl(&["crypto", "verify", "--pubkey-x", "x", "--pubkey-y", "1"]), "--pubkey-x");
    assert_usage_error(
        &zkl(&["key", "derive", "--eth-private-key", &format!("0x{}", "0".repeat(64))]),
        "--eth-private-key",
    );
    assert_usage_error(&zkl(&["key", "derive", "--eth-private-key", "0xabc"]), "--eth-private-key");
    assert_usage_error(&zkl(&["key", "derive"]), "--eth-private-key");
    assert_usage_error(&zkl(&["crypto", "frobnicate"]), "frobnicate");
}
