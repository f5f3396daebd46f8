//! Fuzzing the JSON-RPC API: every method (and unknown ones) called with arbitrary JSON params,
//! and with mutations of valid ones, gets an answer (a result or an error object) and the node
//! stays up; no request panics or hangs the node.
//!
//! A long run: `PROPTEST_CASES=1000000 cargo test --release -p zkl-node --test api rpc_fuzz`.

use std::time::Duration;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use zkl_node::NodeConfig;
use zkl_rpc_api::{AdminApiClient, ZklApiClient, method};
use zkl_state::testkit::{ETH, ONE, User, deposit};

/// Every method, and one that does not exist.
fn methods() -> Vec<&'static str> {
    zkl_rpc_api::method::ALL.into_iter().chain(["noSuchMethod"]).collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z_]{0,12}".prop_map(Value::from),
        "0x[0-9a-f]{0,70}".prop_map(Value::from),
        "[0-9]{1,45}".prop_map(Value::from),
        Just(Value::from("operator")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("type".to_string()),
                    Just("tx".to_string()),
                    Just("signature".to_string()),
                    Just("account".to_string()),
                    Just("kind".to_string()),
                    Just("token".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid signed transfer's JSON, to mutate.
fn valid_tx() -> Value {
    let (u, v) = (User::new(1), User::new(2));
    serde_json::to_value(u.transfer(2, v.address, ETH, ONE, 0, 0)).unwrap()
}

/// Replaces the value at a random path of `v` with `new`.
fn mutate(v: &mut Value, path: &[usize], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let k = m.keys().nth(first % m.len()).cloned().unwrap();
            mutate(m.get_mut(&k).unwrap(), rest, new);
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[first % n], rest, new);
        }
        _ => *v = new,
    }
}

async fn call(http: &HttpClient, method: &str, params: Vec<Value>) -> Result<(), String> {
    let mut p = ArrayParams::new();
    for v in params {
        p.insert(v).unwrap();
    }
    match tokio::time::timeout(Duration::from_secs(10), http.request::<Value, _>(method, p)).await {
        Err(_) => Err(format!("{method} did not answer within 10 s")),
        Ok(Ok(_)) | Ok(Err(jsonrpsee::core::ClientError::Call(_))) => Ok(()),
        Ok(Err(e)) => Err(format!("{method}: not a JSON-RPC answer: {e}")),
    }
}

#[test]
fn arbitrary_params_get_an_answer_and_the_node_stays_up() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.dev_priority_ops = true;
    config.admin = Some(zkl_node::config::AdminConfig { tokens: vec!["operator".into()] });
    let node = rt.block_on(zkl_node::start(config)).unwrap();
    let http = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr)).unwrap();
    // Some state: an account with a key.
    let u = User::new(1);
    rt.block_on(async {
        http.dev_priority_op(deposit(1, 0, u.address, ETH, ETH, ONE)).await.unwrap();
        http.send_tx(u.change_pubkey(2, 0, 1, ETH, 0)).await.unwrap();
    });

    let mut runner = TestRunner::default();
    let strategy = (
        prop::sample::select(methods()),
        proptest::collection::vec(json_value(), 0..4),
        any::<bool>(),
        proptest::collection::vec(any::<usize>(), 0..4),
    );
    runner
        .run(&strategy, |(method, params, mutate_tx, path)| {
            let params = if mutate_tx && [method::SEND_TX, method::SEND_BATCH].contains(&method) {
                let mut tx = valid_tx();
                mutate(&mut tx, &path, params.first().cloned().unwrap_or(Value::Null));
                if method == method::SEND_TX { vec![tx] } else { vec![Value::Array(vec![tx])] }
            } else {
                params
            };
            rt.block_on(call(&http, method, params)).map_err(TestCaseError::fail)
        })
        .unwrap();
    // Still up and answering.
    let root = rt.block_on(http.state_root()).unwrap();
    assert!(root.root.starts_with("0x"));
    drop(http);
    let _ = node.handle.stop();
}
