//! End to end with the real block circuit (capacity 4): a node seals blocks, its prover queue
//! hands each block's witness (replayed from the log) to a worker, the worker proves it with the
//! block circuit, the node checks and stores the proof.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use serde_json::Value;
use zkl_node::provers::{ProofCheck, ProverConfig};
use zkl_node::storage::BlockRecord;
use zkl_node::worker::WorkerConfig;
use zkl_node::{NodeConfig, Services};
use zkl_prover::{CircuitCheck, CircuitProver, KeyRing, WitnessPayload};
use zkl_state::testkit::{ETH, ONE, User, deposit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_proves_the_nodes_blocks_with_the_block_circuit() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().to_path_buf());
    config.dev_priority_ops = true;
    config.block_capacity = 4;
    config.block_time_ms = 60_000;
    config.provers = Some(ProverConfig { tokens: vec!["t".into()], heartbeat_timeout_ms: 60_000 });
    config.admin = Some(zkl_node::config::AdminConfig { tokens: vec!["operator".into()] });

    let keys = Arc::new(KeyRing::new(false));
    let check = Arc::new(CircuitCheck { keys: keys.clone() });
    let genesis = zkl_node::genesis(&config).unwrap();
    let node = zkl_node::start_with(
        config,
        Services { proof_check: Some(check.clone()), job_payload: Some(Arc::new(WitnessPayload::new(genesis))) },
    )
    .await
    .unwrap();
    let http = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr)).unwrap();

    // Two deposits (three chunks each), a key change (three) and a transfer with a fee (one):
    // three blocks of capacity 4.
    let (a, b) = (User::new(1), User::new(2));
    let op: Value =
        http.request("zkl_devPriorityOp", rpc_params![deposit(1, 0, a.address, ETH, ETH, 5 * ONE)]).await.unwrap();
    let a_id = op["account"].as_u64().unwrap() as u32;
    let _: Value =
        http.request("zkl_devPriorityOp", rpc_params![deposit(2, 0, b.address, ETH, ETH, ONE)]).await.unwrap();
    let _: Value = http.request("zkl_sealBlock", rpc_params!["operator"]).await.unwrap();
    let _: Value = http.request("zkl_sendTx", rpc_params![a.change_pubkey(a_id, 0, 1, ETH, 0)]).await.unwrap();
    let _: Value =
        http.request("zkl_sendTx", rpc_params![a.transfer(a_id, b.address, ETH, ONE, ONE / 1000, 1)]).await.unwrap();
    let _: Value = http.request("zkl_sealBlock", rpc_params!["operator"]).await.unwrap();

    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = WorkerConfig {
        node: format!("http://{}", node.rpc_addr),
        token: "t".into(),
        name: "circuit".into(),
        poll: Duration::from_millis(100),
        heartbeat: Duration::from_secs(5),
    };
    let report = tokio::spawn(zkl_node::worker::run(worker, Arc::new(CircuitProver { keys }), rx));
    let root: Value = http.request("zkl_stateRoot", rpc_params![]).await.unwrap();
    let last = root["block"].as_u64().unwrap() as u32;
    assert_eq!(last, 3);
    let mut proofs = Vec::new();
    for b in 1..=last {
        let proof = loop {
            let r: Result<Value, _> = http.request("zkl_proof", rpc_params![b]).await;
            if let Ok(v) = r {
                break hex::decode(v["proof"].as_str().unwrap().trim_start_matches("0x")).unwrap();
            }
            assert!(!report.is_finished(), "worker stopped early");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        proofs.push(proof);
    }
    stop.send(true).unwrap();
    let report = report.await.unwrap().unwrap();
    assert_eq!(report.proven, (1..=last).collect::<Vec<_>>(), "{report:?}");

    // The stored proofs verify for their own blocks only.
    for (i, proof) in proofs.iter().enumerate() {
        let b = i as u32 + 1;
        let own: BlockRecord = http.request("zkl_block", rpc_params![b]).await.unwrap();
        let other: BlockRecord = http.request("zkl_block", rpc_params![b % last + 1]).await.unwrap();
        check.check(&own, proof).unwrap();
        assert!(check.check(&other, proof).is_err());
    }
}
