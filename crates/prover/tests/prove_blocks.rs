//! End to end with the real block circuit (capacity 4): a node seals blocks, its prover queue
//! hands each block's witness (replayed from the log) to a worker, the worker proves it with the
//! block circuit, the node checks and stores the proof.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::http_client::HttpClientBuilder;
use zkl_node::provers::{ProofCheck, ProverConfig};
use zkl_node::{NodeConfig, Services};
use zkl_prover::worker::WorkerConfig;
use zkl_prover::{CircuitCheck, CircuitProver, KeyRing, WitnessPayload};
use zkl_rpc_api::{AdminApiClient, ZklApiClient};
use zkl_state::testkit::{ETH, ONE, User, deposit};
use zkl_types::Op;

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

    let node = zkl_node::start_with(
        config,
        Services {
            proof_check: Some(check.clone()),
            job_payload: Some(Arc::new(WitnessPayload)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let http = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr)).unwrap();

    // Two deposits (three chunks each), a key change (three) and a transfer with a fee (one):
    // three blocks of capacity 4.
    let (a, b) = (User::new(1), User::new(2));
    let Op::Deposit(op) = http.dev_priority_op(deposit(1, 0, a.address, ETH, ETH, 5 * ONE)).await.unwrap() else {
        panic!("a deposit")
    };
    let a_id = op.account;
    http.dev_priority_op(deposit(2, 0, b.address, ETH, ETH, ONE)).await.unwrap();
    http.seal_block("operator".into()).await.unwrap();
    http.send_tx(a.change_pubkey(a_id, 0, 1, ETH, 0)).await.unwrap();
    http.send_tx(a.transfer(a_id, b.address, ETH, ONE, ONE / 1000, 1)).await.unwrap();
    http.seal_block("operator".into()).await.unwrap();

    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = WorkerConfig {
        node: format!("http://{}", node.rpc_addr),
        token: "t".into(),
        name: "circuit".into(),
        poll: Duration::from_millis(100),
        heartbeat: Duration::from_secs(5),
    };
    let report = tokio::spawn(zkl_prover::worker::run(worker, Arc::new(CircuitProver { keys }), rx));
    let last = http.state_root().await.unwrap().block;
    assert_eq!(last, 3);
    let mut proofs = Vec::new();
    for b in 1..=last {
        let proof = loop {
            if let Ok(v) = http.proof(b).await {
                break hex::decode(v.proof.trim_start_matches("0x")).unwrap();
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
        let own = http.block(b).await.unwrap();
        let other = http.block(b % last + 1).await.unwrap();
        check.check(&own, proof).unwrap();
        assert!(check.check(&other, proof).is_err());
    }
}
