//! The prover job queue and workers: jobs for every sealed block, parallel workers, a silent
//! worker's job handed to another, tokens, invalid proofs, and proofs that survive a restart.
//!
//! The proof system here is zkl-contracts' small test circuit (a real Groth16 circuit whose one
//! public input is the block's public input); the block circuit plugs into the same traits.

use std::sync::Arc;
use std::time::Duration;

use ark_bn254::Bn254;
use ark_groth16::{Groth16, Proof, ProvingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use zkl_contracts::verifier::test_circuit;
use zkl_node::provers::{PluginError, ProofCheck, ProverConfig};
use zkl_rpc_api::{BlockRecord, Job};

use zkl_node::{Node, NodeConfig, Services};
use zkl_prover::ProverError;
use zkl_prover::worker::{BlockProver, WorkerConfig, WorkerError};
use zkl_rpc_api::{AdminApiClient, ProverApiClient, ZklApiClient};
use zkl_state::testkit::{ETH, ONE, User, deposit};

const TOKEN: &str = "s3cret-worker-token";

struct TestProofs {
    pk: ProvingKey<Bn254>,
}

fn public_input(block: &BlockRecord) -> Result<zkl_crypto::Fr, ProverError> {
    zkl_crypto::parse_fr(&block.public_input)
        .map_err(|e| ProverError::PublicInput { block: block.number, msg: e.to_string() })
}

impl ProofCheck for TestProofs {
    fn check(&self, block: &BlockRecord, proof: &[u8]) -> Result<(), PluginError> {
        let plugin = |e: ProverError| PluginError(Box::new(e));
        let proof = Proof::<Bn254>::deserialize_compressed(proof)
            .map_err(|e| plugin(ProverError::MalformedProof(e.to_string())))?;
        let pvk = ark_groth16::prepare_verifying_key(&self.pk.vk);
        match Groth16::<Bn254>::verify_proof(&pvk, &proof, &[public_input(block).map_err(plugin)?]) {
            Ok(true) => Ok(()),
            Ok(false) => Err(plugin(ProverError::DoesNotVerify)),
            Err(e) => Err(plugin(ProverError::Verify(e.to_string()))),
        }
    }
}

impl BlockProver for TestProofs {
    fn prove(&self, job: &Job) -> Result<Vec<u8>, ProverError> {
        let proof = test_circuit::prove(&self.pk, public_input(&job.block)?, job.job)
            .map_err(|e| ProverError::Prove(e.to_string()))?;
        let mut out = Vec::new();
        proof.serialize_compressed(&mut out).map_err(|e| ProverError::Prove(e.to_string()))?;
        Ok(out)
    }
}

fn proofs() -> Arc<TestProofs> {
    Arc::new(TestProofs { pk: test_circuit::proving_key().expect("test key") })
}

fn config(dir: &std::path::Path, timeout_ms: u64) -> NodeConfig {
    let mut c = NodeConfig::demo(dir.to_path_buf());
    c.dev_priority_ops = true;
    c.block_time_ms = 60_000;
    c.provers = Some(ProverConfig { tokens: vec!["other".into(), TOKEN.into()], heartbeat_timeout_ms: timeout_ms });
    c.admin = Some(zkl_node::config::AdminConfig { tokens: vec!["operator".into()] });
    c
}

async fn start(dir: &std::path::Path, timeout_ms: u64, p: &Arc<TestProofs>) -> (Node, HttpClient) {
    let services = Services { proof_check: Some(p.clone()), ..Default::default() };
    let node = zkl_node::start_with(config(dir, timeout_ms), services).await.expect("node starts");
    let http = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr)).unwrap();
    (node, http)
}

/// Seals blocks of one deposit each, with priority serials `serials` on chain 1.
async fn seal_blocks(http: &HttpClient, serials: std::ops::Range<u64>) {
    for i in serials {
        let u = User::new(100 + i);
        http.dev_priority_op(deposit(1, i, u.address, ETH, ETH, ONE)).await.unwrap();
        http.seal_block("operator".into()).await.unwrap();
    }
}

fn worker_config(node: &Node, name: &str, token: &str) -> WorkerConfig {
    WorkerConfig {
        node: format!("http://{}", node.rpc_addr),
        token: token.into(),
        name: name.into(),
        poll: Duration::from_millis(50),
        heartbeat: Duration::from_millis(100),
    }
}

async fn wait_proven(http: &HttpClient, blocks: std::ops::RangeInclusive<u32>) {
    for _ in 0..600 {
        let mut all = true;
        for b in blocks.clone() {
            all &= http.proof(b).await.is_ok();
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("blocks {blocks:?} were not all proven in time");
}

fn call_error<T: std::fmt::Debug>(r: Result<T, jsonrpsee::core::ClientError>) -> (i32, String) {
    match r {
        Err(jsonrpsee::core::ClientError::Call(e)) => (e.code(), e.message().to_string()),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_prove_every_block_and_the_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let p = proofs();
    let (node, http) = start(dir.path(), 5_000, &p).await;
    seal_blocks(&http, 0..4).await;

    let (stop, rx) = tokio::sync::watch::channel(false);
    let w1 = tokio::spawn(zkl_prover::worker::run(worker_config(&node, "w1", TOKEN), p.clone(), rx.clone()));
    let w2 = tokio::spawn(zkl_prover::worker::run(worker_config(&node, "w2", "other"), p.clone(), rx));
    wait_proven(&http, 1..=4).await;
    // A block sealed while the workers run is proven too.
    seal_blocks(&http, 4..5).await;
    wait_proven(&http, 5..=5).await;
    stop.send(true).unwrap();
    let (r1, r2) = (w1.await.unwrap().unwrap(), w2.await.unwrap().unwrap());
    let mut proven: Vec<u32> = r1.proven.iter().chain(&r2.proven).copied().collect();
    proven.sort();
    assert_eq!(proven, vec![1, 2, 3, 4, 5], "each block proven exactly once: {r1:?} {r2:?}");

    for b in 1..=5u32 {
        let r = http.proof(b).await.unwrap();
        let bytes = hex::decode(r.proof.trim_start_matches("0x")).unwrap();
        let record = http.block(b).await.unwrap();
        p.check(&record, &bytes).expect("stored proof verifies");
        // ... and only for its own block.
        let other = http.block(b % 5 + 1).await.unwrap();
        assert!(p.check(&other, &bytes).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_workers_job_goes_to_another_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = proofs();
    let (node, http) = start(dir.path(), 300, &p).await;
    seal_blocks(&http, 0..1).await;

    // A worker takes block 1 and then goes silent.
    let silent = http.prover_take_job(TOKEN.into(), "silent".into()).await.unwrap().expect("a job");
    assert_eq!(silent.block.number, 1);
    let none = http.prover_take_job(TOKEN.into(), "eager".into()).await.unwrap();
    assert!(none.is_none(), "an assigned job with a fresh heartbeat is not handed out twice");
    let beat = http.prover_heartbeat(TOKEN.into(), silent.job).await.unwrap();
    assert_eq!(beat.block, 1);

    // After the timeout a live worker gets it under a new job id and proves it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let w = tokio::spawn(zkl_prover::worker::run(worker_config(&node, "live", TOKEN), p.clone(), rx));
    wait_proven(&http, 1..=1).await;
    stop.send(true).unwrap();
    assert_eq!(w.await.unwrap().unwrap().proven, vec![1]);

    // The silent worker's heartbeat and late proof are refused with the reason.
    let (code, msg) = call_error(http.prover_heartbeat(TOKEN.into(), silent.job).await);
    assert_eq!(code, 1);
    assert!(msg.contains("already proven"), "{msg}");
    let late = hex::encode(p.prove(&silent).unwrap());
    let (_, msg) = call_error(http.prover_submit_proof(TOKEN.into(), silent.job, format!("0x{late}")).await);
    assert!(msg.contains("block 1 is already proven"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_invalid_proofs_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let p = proofs();
    let (node, http) = start(dir.path(), 5_000, &p).await;
    seal_blocks(&http, 0..2).await;

    let (code, msg) = call_error(http.prover_take_job("wrong".into(), "w".into()).await);
    assert_eq!((code, msg.as_str()), (4, "unknown prover token"));
    let (stop, rx) = tokio::sync::watch::channel(false);
    let refused = zkl_prover::worker::run(worker_config(&node, "w", "s3cret-worker-tokem"), p.clone(), rx).await;
    let err = refused.unwrap_err();
    assert!(matches!(err, WorkerError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("unknown prover token"), "{err}");
    drop(stop);

    let job1 = http.prover_take_job(TOKEN.into(), "w".into()).await.unwrap().expect("a job");
    let job2 = http.prover_take_job(TOKEN.into(), "w".into()).await.unwrap().expect("a job");
    assert_eq!((job1.block.number, job2.block.number), (1, 2));
    // Block 2's proof submitted for block 1, garbage, and bad hex are refused; nothing is stored.
    let wrong = format!("0x{}", hex::encode(p.prove(&job2).unwrap()));
    let (code, msg) = call_error(http.prover_submit_proof(TOKEN.into(), job1.job, wrong).await);
    assert_eq!(code, 1);
    assert!(msg.contains("invalid proof for block 1"), "{msg}");
    let (_, msg) = call_error(http.prover_submit_proof(TOKEN.into(), job1.job, "0x0102".into()).await);
    assert!(msg.contains("malformed proof"), "{msg}");
    let (code, _) = call_error(http.prover_submit_proof(TOKEN.into(), job1.job, "zz".into()).await);
    assert_eq!(code, -32602);
    let (code, _) = call_error(http.prover_heartbeat(TOKEN.into(), 999).await);
    assert_eq!(code, 2);
    let (code, _) = call_error(http.proof(1).await);
    assert_eq!(code, 2);

    // Block 1 proven; after a restart only block 2 is a job, and block 1's proof is still there.
    let good = format!("0x{}", hex::encode(p.prove(&job1).unwrap()));
    let r = http.prover_submit_proof(TOKEN.into(), job1.job, good.clone()).await.unwrap();
    assert_eq!(r.block, 1);
    node.handle.stop().unwrap();
    node.handle.clone().stopped().await;
    drop(node);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_node, http) = start(dir.path(), 5_000, &p).await;
    let stored = http.proof(1).await.unwrap();
    assert_eq!(stored.proof, good);
    let next = http.prover_take_job(TOKEN.into(), "w".into()).await.unwrap().expect("a job");
    assert_eq!(next.block.number, 2);
    let none = http.prover_take_job(TOKEN.into(), "w".into()).await.unwrap();
    assert!(none.is_none());
}
