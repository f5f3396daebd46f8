//! `kill -9` the `zkl exchange` process while four traders place crossing orders; after every
//! restart the exchange's trades are exactly the fills the node executed (none lost, none
//! doubled: the sellers' ETH and the buyers' USDC moved by exactly the trades' sums), every
//! order it acknowledged as resting still rests or traded, and every resting order's slot on
//! the node holds what the exchange has left of it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use zkl_exchange::engine::PairConfig;
use zkl_exchange::service::{ExchangeConfig, MatcherConfig};
use zkl_node::NodeConfig;
use zkl_rpc_api::exchange::{ExchangeApiClient, OrderRequest, OrderStatus, TimeInForce};
use zkl_rpc_api::{AdminApiClient, ZklApiClient};
use zkl_state::testkit::{ETH, ONE, USDC, User, deposit};
use zkl_types::Op;

const TICK: u128 = ONE / 100;
const LOT: u128 = ONE / 10_000;

/// A running `zkl exchange`; dropping it kills it with SIGKILL.
struct ExchangeProc {
    child: Child,
    client: HttpClient,
}

impl Drop for ExchangeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_exchange(config: &std::path::Path) -> ExchangeProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["exchange", "--config", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zkl exchange");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the exchange prints its address");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad first line {line:?}: {e}"));
    let client = HttpClientBuilder::default().build(v["rpc"].as_str().unwrap()).unwrap();
    ExchangeProc { child, client }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_and_doubles_no_fill() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = NodeConfig::demo(dir.path().join("node"));
    c.dev_priority_ops = true;
    c.block_time_ms = 200;
    c.matchers = vec![2];
    let node = zkl_node::start(c).await.unwrap();
    let url = format!("http://{}", node.rpc_addr);
    let http = HttpClientBuilder::default().build(&url).unwrap();
    // User 0 is the matcher (account 2); 1 and 2 sell, 3 and 4 buy.
    let users: Vec<User> = (0..5).map(User::new).collect();
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let mut id = 0;
        for (chain, token, amount) in [(1, ETH, 1_000 * ONE), (2, USDC, 10_000_000_000_000)] {
            let req = deposit(chain, 2 * i as u64 + chain as u64, u.address, token, token, amount);
            let Op::Deposit(d) = http.dev_priority_op(req).await.unwrap() else { panic!("a deposit") };
            id = d.account;
        }
        http.send_tx(u.change_pubkey(id, 0, 1, ETH, 0)).await.unwrap();
        ids.push(id);
    }
    assert_eq!(ids[0], 2);
    let initial: Vec<(u128, u128)> = (0..5).map(|_| (1_000 * ONE, 10_000_000 * ONE)).collect();

    let config = ExchangeConfig {
        node: url.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("exchange"),
        matcher: MatcherConfig { account: 2, eth_private_key: format!("0x{}", hex::encode(users[0].eth.to_bytes())) },
        pairs: vec![PairConfig { base: ETH, quote: USDC, tick: TICK, lot: LOT }],
        max_queue: 1000,
    };
    let config_path = dir.path().join("exchange.json");
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();

    let mut next_slot = [0u16; 5];
    let mut acked_open: BTreeSet<u64> = BTreeSet::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..4 {
        let ex = start_exchange(&config_path);
        // Four traders, one task each, placing orders until the kill.
        let mut tasks = Vec::new();
        for who in 1..5usize {
            let client = ex.client.clone();
            let (user, id) = (users[who].clone(), ids[who]);
            let first_slot = next_slot[who];
            let seed = rng ^ who as u64;
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut slot = first_slot;
                let mut r = seed;
                loop {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    let is_sell = who <= 2;
                    let ticks = 100_000 + (r % 21) as u128 - 10;
                    let lots = 1 + (r >> 8) % 20;
                    let order = user.order(id, slot, 0, ETH, USDC, lots as u128 * LOT, ticks * TICK, is_sell);
                    slot += 1;
                    let req = OrderRequest { order, pubkey: user.pubkey, tif: TimeInForce::Gtc };
                    match client.place_order(req, None).await {
                        Ok(placed) => {
                            if placed.order.status == OrderStatus::Open {
                                acked.push(placed.order.id);
                            }
                        }
                        Err(_) => return (who, slot, acked),
                    }
                }
            }));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(300 + rng % 900)).await;
        drop(ex); // SIGKILL
        for t in tasks {
            let (who, slot, acked) = t.await.unwrap();
            next_slot[who] = slot;
            acked_open.extend(acked);
        }

        let ex = start_exchange(&config_path);
        // Every trade, newest first, 1,000 per page.
        let mut trades = Vec::new();
        loop {
            let before = trades.last().map(|t: &zkl_rpc_api::exchange::Trade| t.seq);
            let page = ex.client.trades(ETH, USDC, Some(1000), before).await.unwrap();
            let full = page.len() == 1000;
            trades.extend(page);
            if !full {
                break;
            }
        }
        // None lost or doubled: the node moved exactly what the trades say.
        let mut sold: BTreeMap<u32, u128> = BTreeMap::new();
        let mut paid: BTreeMap<u32, u128> = BTreeMap::new();
        for t in &trades {
            let (seller, buyer) = match t.taker_side {
                zkl_rpc_api::exchange::Side::Buy => (t.maker_account, t.taker_account),
                zkl_rpc_api::exchange::Side::Sell => (t.taker_account, t.maker_account),
            };
            *sold.entry(seller).or_default() += t.base_amount;
            *paid.entry(buyer).or_default() += t.quote_amount;
            let status = http.tx_status(t.tx_hash.clone()).await;
            assert!(status.is_ok(), "round {round}: the node has trade {}'s tx", t.seq);
        }
        for who in 1..5 {
            let a = http.account(ids[who].to_string()).await.unwrap();
            if who <= 2 {
                let moved = initial[who].0 - a.balance(0, ETH);
                assert_eq!(moved, sold.get(&ids[who]).copied().unwrap_or(0), "round {round}: seller {who}'s ETH");
            } else {
                let moved = initial[who].1 - a.balance(0, USDC);
                assert_eq!(moved, paid.get(&ids[who]).copied().unwrap_or(0), "round {round}: buyer {who}'s USDC");
            }
            // Every resting order's slot holds what the exchange has left of it.
            for o in ex.client.orders(ids[who]).await.unwrap() {
                let s = a.order_slot(o.sub, o.slot);
                assert_eq!(s.nonce, o.nonce, "round {round}: order {}", o.id);
                assert!(
                    s.residue == o.left || (s.residue == 0 && o.left == o.amount),
                    "round {round}: order {o:?} slot {s:?}"
                );
            }
        }
        // Every order acknowledged as resting rests or traded.
        let mut live = BTreeSet::new();
        for id in &ids[1..] {
            live.extend(ex.client.orders(*id).await.unwrap().into_iter().map(|o| o.id));
        }
        let traded: BTreeSet<u64> = trades.iter().flat_map(|t| [t.maker_order, t.taker_order]).collect();
        for id in &acked_open {
            assert!(live.contains(id) || traded.contains(id), "round {round}: acknowledged order {id} vanished");
        }
        eprintln!(
            "round {round}: {} trades, {} resting, {} acknowledged resting",
            trades.len(),
            live.len(),
            acked_open.len()
        );
        drop(ex);
    }
}
