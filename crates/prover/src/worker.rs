//! A prover worker (`zkl prover --node URL`): takes jobs from a node's prover queue, proves them
//! while sending heartbeats, and submits the proofs. Run as many as you like, anywhere: it
//! speaks to the node only through the API (`zkl_rpc_api::ProverApi`).

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use tokio::sync::watch;
use zkl_rpc_api::{Job, ProverApiClient, codes};

use crate::ProverError;

/// Proves a job's block; returns the proof bytes the node's proof check accepts.
pub trait BlockProver: Send + Sync {
    fn prove(&self, job: &Job) -> Result<Vec<u8>, ProverError>;
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot reach node {node}: {msg}")]
    Connect { node: String, msg: String },
    #[error("node refused the worker: {0}")]
    Unauthorized(String),
    #[error("prover task failed: {0}")]
    Task(String),
}

/// Where and how a worker works.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The node's JSON-RPC URL (`http://…`).
    pub node: String,
    pub token: String,
    /// Shown in the node's logs.
    pub name: String,
    /// Wait between polls when there is no job.
    pub poll: Duration,
    /// Interval between heartbeats while proving (well below the node's timeout).
    pub heartbeat: Duration,
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Blocks whose proof the node accepted.
    pub proven: Vec<u32>,
    /// Proofs the node refused (already proven by another worker, or invalid), with the reason.
    pub refused: Vec<(u32, String)>,
}

fn client(cfg: &WorkerConfig) -> Result<HttpClient, WorkerError> {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(300))
        .build(&cfg.node)
        .map_err(|e| WorkerError::Connect { node: cfg.node.clone(), msg: e.to_string() })
}

/// Works until `stop` turns true. Connection errors are retried; an unauthorised token ends the
/// worker with an error.
pub async fn run(
    cfg: WorkerConfig,
    prover: Arc<dyn BlockProver>,
    mut stop: watch::Receiver<bool>,
) -> Result<WorkerReport, WorkerError> {
    let http = client(&cfg)?;
    let mut report = WorkerReport::default();
    while !*stop.borrow() {
        let job = match http.prover_take_job(cfg.token.clone(), cfg.name.clone()).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tokio::select! { _ = tokio::time::sleep(cfg.poll) => {}, _ = stop.changed() => {} }
                continue;
            }
            Err(jsonrpsee::core::ClientError::Call(e)) if e.code() == codes::UNAUTHORIZED => {
                return Err(WorkerError::Unauthorized(e.message().to_string()));
            }
            Err(e) => {
                tracing::warn!(%e, "cannot take a job; retrying");
                tokio::select! { _ = tokio::time::sleep(cfg.poll) => {}, _ = stop.changed() => {} }
                continue;
            }
        };
        let block = job.block.number;
        tracing::info!(block, job = job.job, "proving");
        // Heartbeats while the proof runs on a blocking thread.
        let beat = {
            let http = http.clone();
            let (token, id, every) = (cfg.token.clone(), job.job, cfg.heartbeat);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = http.prover_heartbeat(token.clone(), id).await {
                        tracing::warn!(%e, job = id, "heartbeat refused");
                    }
                }
            })
        };
        let p = prover.clone();
        let proved = tokio::task::spawn_blocking(move || {
            let r = p.prove(&job);
            (job.job, r)
        })
        .await;
        beat.abort();
        let (id, proof) = proved.map_err(|e| WorkerError::Task(e.to_string()))?;
        let proof = match proof {
            Ok(p) => p,
            Err(reason) => {
                tracing::error!(block, %reason, "cannot prove; the job returns to the queue after the timeout");
                report.refused.push((block, reason.to_string()));
                continue;
            }
        };
        let hex = format!("0x{}", hex::encode(proof));
        let refused = match http.prover_submit_proof(cfg.token.clone(), id, hex).await {
            Ok(_) => {
                tracing::info!(block, job = id, "proof accepted");
                report.proven.push(block);
                continue;
            }
            Err(jsonrpsee::core::ClientError::Call(e)) => e.message().to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(block, job = id, %refused, "proof refused");
        report.refused.push((block, refused));
    }
    Ok(report)
}
