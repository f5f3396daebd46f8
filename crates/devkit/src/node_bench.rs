//! `zkl bench node`: signed transfers from many accounts through the JSON-RPC API; measures
//! accepted tx/s and the latency from submission to inclusion in a sealed L2 block (seen on the
//! WebSocket block subscription).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::Subscription;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::ws_client::WsClientBuilder;
use rayon::prelude::*;

use crate::percentile;
use zkl_rpc_api::{AdminApiClient, EventsApiClient, ZklApiClient};
use zkl_state::testkit::{ETH, ONE, User, deposit};
use zkl_types::{Op, SignedTx};

use zkl_node::config::NodeConfig;
use zkl_node::storage::BlockRecord;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct NodeBenchConfig {
    pub accounts: u32,
    pub txs_per_account: u32,
    /// Concurrent JSON-RPC senders (each owns a share of the accounts, keeping nonce order).
    pub senders: u32,
}

impl Default for NodeBenchConfig {
    fn default() -> Self {
        NodeBenchConfig { accounts: 200, txs_per_account: 50, senders: 32 }
    }
}

/// Results of a run.
#[derive(Debug, Clone)]
pub struct NodeBenchReport {
    pub accepted: usize,
    pub rejected: usize,
    pub accepted_tx_per_s: f64,
    pub p50_inclusion_ms: f64,
    pub p99_inclusion_ms: f64,
}

/// Runs the benchmark against a node started in-process with `config` (which must allow
/// development priority operations, used to fund the accounts).
pub async fn run(
    mut config: NodeConfig,
    bench: NodeBenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<NodeBenchReport, String> {
    config.dev_priority_ops = true;
    let admin_token = "bench".to_string();
    config.admin = Some(zkl_node::config::AdminConfig { tokens: vec![admin_token.clone()] });
    let node = zkl_node::start(config).await.map_err(|e| e.to_string())?;
    let http = HttpClientBuilder::default()
        .max_concurrent_requests(4 * bench.senders as usize)
        .build(format!("http://{}", node.rpc_addr))
        .map_err(|e| e.to_string())?;
    let ws = WsClientBuilder::default().build(format!("ws://{}", node.rpc_addr)).await.map_err(|e| e.to_string())?;

    progress("creating and funding accounts");
    let users: Vec<User> = (0..bench.accounts).into_par_iter().map(|i| User::new(10_000 + u64::from(i))).collect();
    let mut ids = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let op = http
            .dev_priority_op(deposit(1, i as u64, u.address, ETH, ETH, 1_000 * ONE))
            .await
            .map_err(|e| e.to_string())?;
        let Op::Deposit(d) = op else { return Err(format!("a deposit became {op:?}")) };
        ids.push(d.account);
    }
    let cpks: Vec<SignedTx> = users.par_iter().zip(&ids).map(|(u, id)| u.change_pubkey(*id, 0, 1, ETH, 0)).collect();
    for chunk in cpks.chunks(500) {
        http.send_batch(chunk.to_vec()).await.map_err(|e| e.to_string())?;
    }
    http.seal_block(admin_token.clone()).await.map_err(|e| e.to_string())?;

    progress("signing transfers");
    let n = users.len();
    let per_account: Vec<Vec<SignedTx>> = (0..n)
        .into_par_iter()
        .map(|i| {
            (0..bench.txs_per_account)
                .map(|k| {
                    let to = &users[(i + 1 + k as usize % (n - 1)) % n];
                    users[i].transfer(ids[i], to.address, ETH, ONE / 1_000, 0, 1 + k)
                })
                .collect()
        })
        .collect();

    let mut blocks: Subscription<BlockRecord> = ws.subscribe_blocks().await.map_err(|e| e.to_string())?;
    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let total: usize = per_account.iter().map(Vec::len).sum();

    progress("sending transfers");
    let start = Instant::now();
    let mut senders = Vec::new();
    for s in 0..bench.senders as usize {
        let mine: Vec<Vec<SignedTx>> = per_account.iter().skip(s).step_by(bench.senders as usize).cloned().collect();
        let http = http.clone();
        let submitted = submitted.clone();
        senders.push(tokio::spawn(async move {
            let (mut ok, mut bad) = (0usize, 0usize);
            // Round-robin over this sender's accounts, each in nonce order.
            let longest = mine.iter().map(Vec::len).max().unwrap_or(0);
            for k in 0..longest {
                for txs in &mine {
                    let Some(tx) = txs.get(k) else { continue };
                    let hash = format!("0x{}", hex::encode(tx.hash()));
                    submitted.lock().expect("not poisoned").insert(hash, Instant::now());
                    match http.send_tx(tx.clone()).await {
                        Ok(_) => ok += 1,
                        Err(_) => bad += 1,
                    }
                }
            }
            (ok, bad)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let (mut accepted, mut rejected) = (0, 0);
    let mut done_sending = None;
    let collect = async {
        while latencies.len() < total {
            match tokio::time::timeout(Duration::from_secs(3), blocks.next()).await {
                Ok(Some(Ok(block))) => {
                    let now = Instant::now();
                    let map = submitted.lock().expect("not poisoned");
                    for h in &block.tx_hashes {
                        if let Some(t) = map.get(h) {
                            latencies.push((now - *t).as_secs_f64() * 1000.0);
                        }
                    }
                }
                _ => break,
            }
        }
    };
    let send_all = async {
        for s in senders {
            let (ok, bad) = s.await.map_err(|e| e.to_string())?;
            accepted += ok;
            rejected += bad;
        }
        done_sending = Some(start.elapsed());
        Ok::<(), String>(())
    };
    let (_, sent) = tokio::join!(collect, send_all);
    sent?;
    let elapsed = done_sending.unwrap_or_else(|| start.elapsed());
    let _ = node.handle.stop();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(NodeBenchReport {
        accepted,
        rejected,
        accepted_tx_per_s: accepted as f64 / elapsed.as_secs_f64(),
        p50_inclusion_ms: percentile(&latencies, 0.5),
        p99_inclusion_ms: percentile(&latencies, 0.99),
    })
}
