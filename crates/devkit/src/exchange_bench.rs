//! `zkl bench exchange`: signed orders from many traders through the exchange's JSON-RPC API
//! into a node (both in process); measures orders accepted per second, fills included by the
//! node per second, the latency from placing an order to its matches (the exchange answers at
//! the match, the fills pending), and from that answer to the fill's inclusion in a sealed L2
//! block (seen on the node's WebSocket block subscription).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::Subscription;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::ws_client::WsClientBuilder;
use rayon::prelude::*;

use crate::percentile;
use zkl_exchange::engine::PairConfig;
use zkl_exchange::service::{ExchangeConfig, MatcherConfig};
use zkl_node::config::NodeConfig;
use zkl_node::storage::BlockRecord;
use zkl_rpc_api::exchange::{ExchangeApiClient, OrderRequest, TimeInForce};
use zkl_rpc_api::{AdminApiClient, EventsApiClient, ZklApiClient};
use zkl_state::testkit::{ETH, ONE, USDC, User, deposit};
use zkl_types::{Op, SignedTx};

const TICK: u128 = ONE / 100;
const LOT: u128 = ONE / 10_000;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeBenchConfig {
    /// Traders (half sell, half buy).
    pub traders: u32,
    pub orders_per_trader: u32,
    /// Concurrent API clients (each owns a share of the traders).
    pub senders: u32,
    /// `None`: every order at 1,000 USDC ± 10 ticks (about three quarters trade). `Some(p)`:
    /// p% of the orders priced to cross (up to 10 ticks through the middle), the others resting
    /// 1-20 ticks away from it on their own side.
    pub crossing: Option<u32>,
}

impl Default for ExchangeBenchConfig {
    fn default() -> Self {
        Self { traders: 64, orders_per_trader: 100, senders: 16, crossing: None }
    }
}

/// Results of a run.
#[derive(Debug, Clone)]
pub struct ExchangeBenchReport {
    pub orders: usize,
    pub refused_orders: usize,
    /// Fills the node included in a block.
    pub matches: usize,
    /// Fills the exchange made that no block included by the end (refused by the node).
    pub refused_matches: usize,
    pub orders_per_s: f64,
    pub matches_per_s: f64,
    pub p50_order_to_match_ms: f64,
    pub p99_order_to_match_ms: f64,
    pub p50_match_to_inclusion_ms: f64,
    pub p99_match_to_inclusion_ms: f64,
}

/// Runs the benchmark against a node started in process with `config` (development priority
/// operations fund the traders) and an exchange whose store lives in `dir`.
pub async fn run(
    mut config: NodeConfig,
    dir: &std::path::Path,
    bench: ExchangeBenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ExchangeBenchReport, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    config.dev_priority_ops = true;
    let admin = "bench".to_string();
    config.admin = Some(zkl_node::config::AdminConfig { tokens: vec![admin.clone()] });
    // The first deposit creates account 2: the matcher's.
    config.matchers = vec![2];
    let node = zkl_node::start(config).await.map_err(|x| e(&x))?;
    let node_url = format!("http://{}", node.rpc_addr);
    let http = HttpClientBuilder::default().build(&node_url).map_err(|x| e(&x))?;
    let ws = WsClientBuilder::default().build(format!("ws://{}", node.rpc_addr)).await.map_err(|x| e(&x))?;

    progress("creating and funding the matcher and the traders");
    let users: Vec<User> = (0..=bench.traders).into_par_iter().map(|i| User::new(20_000 + u64::from(i))).collect();
    let mut ids = Vec::with_capacity(users.len());
    let mut serial = 0;
    for u in &users {
        let mut id = 0;
        // 1,000 ETH on chain 1 and 10,000,000 USDC (6 decimals on Layer 1) on chain 2.
        for (chain, token, amount) in [(1, ETH, 1_000 * ONE), (2, USDC, 10_000_000_000_000)] {
            serial += 1;
            let op = http.dev_priority_op(deposit(chain, serial, u.address, token, token, amount)).await;
            let Op::Deposit(d) = op.map_err(|x| e(&x))? else { return Err("a deposit became another op".into()) };
            id = d.account;
        }
        ids.push(id);
    }
    if ids[0] != 2 {
        return Err(format!("the matcher got account {} (the node was not fresh)", ids[0]));
    }
    let cpks: Vec<SignedTx> = users.par_iter().zip(&ids).map(|(u, id)| u.change_pubkey(*id, 0, 1, ETH, 0)).collect();
    for chunk in cpks.chunks(500) {
        http.send_batch(chunk.to_vec()).await.map_err(|x| e(&x))?;
    }
    http.seal_block(admin.clone()).await.map_err(|x| e(&x))?;

    let exchange = zkl_exchange::service::start(ExchangeConfig {
        node: node_url,
        listen: "127.0.0.1:0".parse().expect("an address"),
        data_dir: dir.join("exchange"),
        matcher: MatcherConfig { account: 2, eth_private_key: format!("0x{}", hex::encode(users[0].eth.to_bytes())) },
        pairs: vec![PairConfig { base: ETH, quote: USDC, tick: TICK, lot: LOT }],
        max_queue: 100_000,
    })
    .await
    .map_err(|x| e(&x))?;
    let client = HttpClientBuilder::default()
        .max_concurrent_requests(4 * bench.senders as usize)
        .build(format!("http://{}", exchange.addr))
        .map_err(|x| e(&x))?;

    progress("signing orders");
    // Even traders sell, odd ones buy, at 1,000 USDC ± 10 ticks: about half of the orders cross.
    let per_trader: Vec<Vec<OrderRequest>> = (1..users.len())
        .into_par_iter()
        .map(|t| {
            let mut r = 0x9e37_79b9_7f4a_7c15u64 ^ t as u64;
            (0..bench.orders_per_trader)
                .map(|k| {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    let is_sell = t % 2 == 0;
                    let away = 1 + (r % 20) as u128;
                    let ticks = match bench.crossing {
                        None => 100_000 + (r % 21) as u128 - 10,
                        // Through the middle: a sell down to 10 ticks below it, a bid up to 10 above.
                        Some(p) if (r >> 40) % 100 < u64::from(p) => {
                            if is_sell {
                                100_000 - away / 2
                            } else {
                                100_000 + away / 2
                            }
                        }
                        Some(_) if is_sell => 100_000 + away,
                        Some(_) => 100_000 - away,
                    };
                    let lots = 1 + (r >> 8) % 20;
                    let slot = u16::try_from(k).unwrap_or(u16::MAX);
                    let order =
                        users[t].order(ids[t], slot, 0, ETH, USDC, u128::from(lots) * LOT, ticks * TICK, is_sell);
                    OrderRequest { order, pubkey: users[t].pubkey, tif: TimeInForce::Gtc }
                })
                .collect()
        })
        .collect();
    let total: usize = per_trader.iter().map(Vec::len).sum();

    let mut blocks: Subscription<BlockRecord> = ws.subscribe_blocks().await.map_err(|x| e(&x))?;
    let matched: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();

    progress("placing orders");
    let start = Instant::now();
    let mut senders = Vec::new();
    for s in 0..bench.senders as usize {
        let mine: Vec<Vec<OrderRequest>> = per_trader.iter().skip(s).step_by(bench.senders as usize).cloned().collect();
        let client = client.clone();
        let matched = matched.clone();
        senders.push(tokio::spawn(async move {
            let (mut ok, mut bad, mut fills, mut refused) = (0usize, 0usize, 0usize, 0usize);
            let mut to_match = Vec::new();
            let longest = mine.iter().map(Vec::len).max().unwrap_or(0);
            for k in 0..longest {
                for orders in &mine {
                    let Some(req) = orders.get(k) else { continue };
                    let sent = Instant::now();
                    match client.place_order(req.clone(), None).await {
                        Ok(placed) => {
                            ok += 1;
                            let now = Instant::now();
                            // Answered at the match: the node's verdict follows (inclusion below).
                            let accepted: Vec<_> = placed.fills.iter().filter(|f| f.refused.is_none()).collect();
                            refused += placed.fills.len() - accepted.len();
                            fills += accepted.len();
                            if !accepted.is_empty() {
                                to_match.push((now - sent).as_secs_f64() * 1000.0);
                                let mut m = matched.lock().expect("not poisoned");
                                for f in accepted {
                                    m.insert(f.tx_hash.clone(), now);
                                }
                            }
                        }
                        Err(_) => bad += 1,
                    }
                }
            }
            (ok, bad, fills, refused, to_match)
        }));
    }
    let (mut orders, mut refused_orders, mut fills, mut refused_matches) = (0, 0, 0, 0);
    let mut to_match = Vec::new();
    // When each tx hash arrived in a block (a fill's block can arrive before its answer).
    let mut in_blocks: HashMap<String, Instant> = HashMap::new();
    let mut done_sending = None;
    let sending_done = std::sync::atomic::AtomicBool::new(false);
    let send_all = async {
        for s in senders {
            let (ok, bad, f, r, lat) = s.await.map_err(|x| e(&x))?;
            orders += ok;
            refused_orders += bad;
            fills += f;
            refused_matches += r;
            to_match.extend(lat);
        }
        done_sending = Some(start.elapsed());
        sending_done.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok::<(), String>(())
    };
    let collect = async {
        // Until every order was answered and every match made was included (or no block came
        // for 2 s after the last answer).
        loop {
            let finished = sending_done.load(std::sync::atomic::Ordering::SeqCst);
            match tokio::time::timeout(Duration::from_secs(2), blocks.next()).await {
                Ok(Some(Ok(block))) => {
                    let now = Instant::now();
                    in_blocks.extend(block.tx_hashes.into_iter().map(|h| (h, now)));
                    let m = matched.lock().expect("not poisoned");
                    if finished && m.keys().all(|h| in_blocks.contains_key(h)) {
                        break;
                    }
                }
                Ok(_) => break,
                Err(_) if finished => break,
                Err(_) => {}
            }
        }
    };
    let (sent, _) = tokio::join!(send_all, collect);
    sent?;
    let elapsed = done_sending.unwrap_or_else(|| start.elapsed());
    // Matches count when a block holds them: over the time to the last such block.
    let mut inclusion = Vec::new();
    let mut last_inclusion = None;
    for (hash, answered) in matched.lock().expect("not poisoned").iter() {
        if let Some(&at) = in_blocks.get(hash) {
            inclusion.push(at.saturating_duration_since(*answered).as_secs_f64() * 1000.0);
            last_inclusion = last_inclusion.max(Some(at));
        }
    }
    let included = inclusion.len();
    let settling = last_inclusion.map_or(elapsed, |t| t - start);
    exchange.stop().await;
    let _ = node.handle.stop();
    if orders + refused_orders != total {
        return Err(format!("{} of {total} orders were answered", orders + refused_orders));
    }
    to_match.sort_by(|a, b| a.total_cmp(b));
    inclusion.sort_by(|a, b| a.total_cmp(b));
    Ok(ExchangeBenchReport {
        orders,
        refused_orders,
        matches: included,
        refused_matches: refused_matches + fills.saturating_sub(included),
        orders_per_s: orders as f64 / elapsed.as_secs_f64(),
        matches_per_s: included as f64 / settling.as_secs_f64(),
        p50_order_to_match_ms: percentile(&to_match, 0.5),
        p99_order_to_match_ms: percentile(&to_match, 0.99),
        p50_match_to_inclusion_ms: percentile(&inclusion, 0.5),
        p99_match_to_inclusion_ms: percentile(&inclusion, 0.99),
    })
}
