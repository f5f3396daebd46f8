//! The indexer against a real node (in process, no Layer 1) and a real PostgreSQL server (its
//! own, `zkl_indexer::local_pg`): after a random run the indexed history rebuilds the node's
//! state exactly, lists and candles agree with the node's blocks, the indexer resumes where it
//! stopped, and it follows a node whose blocks changed under it.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zkl_indexer::local_pg::LocalPostgres;
use zkl_indexer::{Indexer, IndexerConfig};
use zkl_node::{Node, NodeConfig};
use zkl_rpc_api::explorer::{CandleQuery, ExplorerApiClient, HistoryQuery, OpEntry, Page, TradeQuery, codes, pos};
use zkl_rpc_api::{AdminApiClient, BlockRecord, ZklApiClient};
use zkl_state::State;
use zkl_state::testkit::{ETH, ONE, USDC, User, deposit, matching};
use zkl_types::Op;

const ADMIN: &str = "operator";
/// The first deposit of a fresh node creates account 2: the matcher's.
const MATCHER: u32 = 2;
/// 2,000 USDC per ETH.
const PRICE: u128 = 2_000 * ONE;

struct Net {
    config: NodeConfig,
    node: Node,
    url: String,
    http: HttpClient,
    users: Vec<User>,
    ids: Vec<u32>,
    serial: u64,
    slots: Vec<u16>,
}

impl Net {
    /// A node whose first deposits come from users `seeds` (user 0 is the matcher).
    async fn start(dir: &std::path::Path, seeds: std::ops::Range<u64>) -> Net {
        let mut c = NodeConfig::demo(dir.to_path_buf());
        c.dev_priority_ops = true;
        c.matchers = vec![MATCHER];
        c.block_capacity = 8;
        c.admin = Some(zkl_node::config::AdminConfig { tokens: vec![ADMIN.into()] });
        let node = zkl_node::start(c.clone()).await.expect("node starts");
        let url = format!("http://{}", node.rpc_addr);
        let http = HttpClientBuilder::default().build(&url).unwrap();
        let users: Vec<User> = seeds.map(User::new).collect();
        let mut net = Net { config: c, node, url, http, slots: vec![0; users.len()], users, ids: vec![], serial: 0 };
        for who in 0..net.users.len() {
            let id = net.deposit(who, 1, ETH, 100 * ONE).await;
            net.deposit(who, 2, USDC, 1_000_000_000_000).await;
            net.http.send_tx(net.users[who].change_pubkey(id, 0, 1, ETH, 0)).await.unwrap();
            net.ids.push(id);
        }
        net
    }

    /// A deposit of `amount` L1 units; the account it went to.
    async fn deposit(&mut self, who: usize, chain: u8, token: u16, amount: u128) -> u32 {
        self.serial += 1;
        let request = deposit(chain, self.serial, self.users[who].address, token, token, amount);
        let Op::Deposit(d) = self.http.dev_priority_op(request).await.unwrap() else { panic!("a deposit") };
        d.account
    }

    async fn nonce(&self, who: usize) -> u32 {
        self.http.account(self.ids[who].to_string()).await.unwrap().nonce
    }

    async fn seal(&self) {
        self.http.seal_block(ADMIN.into()).await.unwrap();
    }

    /// One random action; refusals (not enough balance) are part of the run.
    async fn act(&mut self, rng: &mut StdRng) {
        let n = self.users.len();
        let who = rng.gen_range(1..n);
        let other = (who + rng.gen_range(1..n - 1)) % n;
        let other = if other == 0 { 1 } else { other };
        let token = if rng.gen_bool(0.5) { ETH } else { USDC };
        let amount = u128::from(rng.gen_range(1u32..5_000)) * ONE / 1_000;
        let nonce = self.nonce(who).await;
        let (id, user) = (self.ids[who], &self.users[who]);
        let tx = match rng.gen_range(0..10) {
            0 => {
                let chain = rng.gen_range(1..=2);
                self.deposit(who, chain, ETH, amount).await;
                return;
            }
            1..=3 => user.transfer(id, self.users[other].address, token, amount, ONE / 1_000, nonce),
            // A new address: a transfer to a new account.
            4 => user.transfer(id, User::new(1_000 + self.serial).address, token, amount, 0, nonce),
            5 => user.withdraw(id, rng.gen_range(1..=2), ETH, ETH, amount, 0, nonce),
            6 => {
                self.seal().await;
                return;
            }
            _ => {
                // `who` sells `lots` thousandths of an ETH to `other` at 2,000 USDC, fresh slots.
                let base = u128::from(rng.gen_range(1u32..1_000)) * ONE / 1_000;
                let maker = user.order(id, self.slots[who], 0, ETH, USDC, base, PRICE, true);
                let taker =
                    self.users[other].order(self.ids[other], self.slots[other], 0, ETH, USDC, base, PRICE, false);
                self.slots[who] += 1;
                self.slots[other] += 1;
                matching(&self.users[0], MATCHER, maker, taker, base, (0, 0))
            }
        };
        let _ = self.http.send_tx(tx).await;
    }

    /// Every sealed block.
    async fn blocks(&self) -> Vec<BlockRecord> {
        let tip = self.http.state_root().await.unwrap().block;
        let mut blocks = Vec::new();
        for n in 1..=tip {
            blocks.push(ZklApiClient::block(&self.http, n).await.unwrap());
        }
        blocks
    }
}

async fn start_indexer(pg: &LocalPostgres, node: &str) -> (Indexer, HttpClient) {
    let config = IndexerConfig {
        node: node.to_string(),
        database: pg.url.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_ms: 20,
    };
    let indexer = zkl_indexer::start(config).await.expect("indexer starts");
    let api = HttpClientBuilder::default().build(format!("http://{}", indexer.addr)).unwrap();
    (indexer, api)
}

/// Waits until the indexer has the node's last block.
async fn caught_up(api: &HttpClient, net: &Net) {
    let tip = net.http.state_root().await.unwrap();
    for _ in 0..1_000 {
        let status = api.status().await.unwrap();
        if status.block == tip.block && status.node_block == tip.block {
            let root = explorer_block(api, tip.block).await.map(|b| b.block.new_root).ok();
            if tip.block == 0 || root.as_deref() == Some(&tip.root) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the indexer did not reach block {} in 20 s", tip.block);
}

/// Every page of a list, following `next`.
async fn all<T, F, Fut>(mut page: F) -> Vec<T>
where
    F: FnMut(Option<u64>) -> Fut,
    Fut: std::future::Future<Output = Page<T>>,
{
    let mut items = Vec::new();
    let mut before = None;
    loop {
        let p = page(before).await;
        items.extend(p.items);
        match p.next {
            Some(n) => before = Some(n),
            None => return items,
        }
    }
}

/// The indexed blocks' ops replayed on the genesis state give each block's root, and the last
/// is the node's.
async fn replay_matches_node(api: &HttpClient, net: &Net) {
    let tip = net.http.state_root().await.unwrap();
    let mut state = zkl_node::genesis(&net.config).unwrap();
    for n in 1..=tip.block {
        let detail = explorer_block(api, n).await.unwrap();
        for entry in &detail.ops {
            state.apply_op(&entry.op).unwrap_or_else(|e| panic!("block {n} op {}: {e}", entry.index));
        }
        state.credit_fees();
        let root = format!("0x{}", hex_root(&mut state));
        assert_eq!(root, detail.block.new_root, "block {n}");
    }
    assert_eq!(format!("0x{}", hex_root(&mut state)), tip.root);
}

fn hex_root(state: &mut State) -> String {
    zkl_crypto::field::fr_to_be_bytes(&state.root()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The node's ops as (pos, hash, op), no-ops left out.
fn node_ops(blocks: &[BlockRecord]) -> Vec<(u64, String, Op)> {
    blocks
        .iter()
        .flat_map(|b| {
            b.ops
                .iter()
                .enumerate()
                .filter(|(_, op)| !matches!(op, Op::Noop))
                .map(|(i, op)| (pos(b.number, i as u32), b.op_hashes[i].clone(), *op))
        })
        .collect()
}

fn triples(entries: &[OpEntry]) -> Vec<(u64, String, Op)> {
    let mut t: Vec<_> = entries.iter().map(|e| (e.pos, e.hash.clone(), e.op)).collect();
    t.reverse();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_history_rebuilds_the_node_state_and_agrees_with_its_blocks() {
    let pg = LocalPostgres::start().expect("PostgreSQL starts (scripts/setup-postgres.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    let mut net = Net::start(dir.path(), 0..5).await;
    let seed = std::env::var("INDEXER_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);
    eprintln!("seed {seed}");

    // Half the run with the indexer following, then it stops, the other half without it, then
    // a new indexer resumes on the same database.
    let (indexer, api) = start_indexer(&pg, &net.url).await;
    for _ in 0..60 {
        net.act(&mut rng).await;
    }
    net.seal().await;
    caught_up(&api, &net).await;
    indexer.stop().await;
    for _ in 0..60 {
        net.act(&mut rng).await;
    }
    net.seal().await;
    let (indexer, api) = start_indexer(&pg, &net.url).await;
    caught_up(&api, &net).await;

    replay_matches_node(&api, &net).await;
    let blocks = net.blocks().await;
    let ops = node_ops(&blocks);
    let count = |name: &str| ops.iter().filter(|(_, _, op)| op.name() == name).count();
    for kind in ["deposit", "transfer", "transfer_to_new", "withdraw", "order_matching"] {
        assert!(count(kind) > 0, "the run has no {kind}: pick another seed");
    }

    // Every op, and each account's, page by page (small pages), equal the node's.
    let every = all(|before| {
        let api = api.clone();
        async move { api.account_ops(HistoryQuery { before, limit: Some(7), ..Default::default() }).await.unwrap() }
    })
    .await;
    assert_eq!(triples(&every), ops);
    for id in net.ids.iter().copied() {
        let mine = all(|before| {
            let api = api.clone();
            async move {
                let q = HistoryQuery { account: Some(id), before, limit: Some(5) };
                api.account_ops(q).await.unwrap()
            }
        })
        .await;
        let expected: Vec<_> = ops.iter().filter(|(_, _, op)| op.accounts().contains(&id)).cloned().collect();
        assert_eq!(triples(&mine), expected, "account {id}");
        let transfers = api.transfers(HistoryQuery { account: Some(id), ..Default::default() }).await.unwrap();
        let expected: Vec<_> = expected
            .iter()
            .filter(|(_, _, op)| matches!(op, Op::Transfer(_) | Op::TransferToNew(_)))
            .cloned()
            .collect();
        assert_eq!(triples(&transfers.items), expected, "account {id}'s transfers");
    }
    let deposits = api.deposits(HistoryQuery::default()).await.unwrap();
    assert_eq!(deposits.items.len(), count("deposit"));
    let withdrawals = api.withdrawals(HistoryQuery { limit: Some(1_000), ..Default::default() }).await.unwrap();
    assert_eq!(withdrawals.items.len(), count("withdraw"));
    // No chain settles here: no stages.
    assert!(withdrawals.items.iter().all(|w| w.l1.is_empty()));

    // By hash, and a block's ops in order.
    for (p, hash, op) in ops.iter().step_by(5) {
        let entry = api.op(hash.clone()).await.unwrap();
        assert_eq!((entry.pos, entry.op), (*p, *op));
    }
    let detail = explorer_block(&api, blocks.len() as u32).await.unwrap();
    assert_eq!(detail.block.txs as usize, blocks.last().unwrap().tx_hashes.len());

    // Trades: the node's matchings at their exact price; candles per minute from them.
    let trades = all(|before| {
        let api = api.clone();
        async move {
            let q = TradeQuery { base: Some(ETH), quote: Some(USDC), before, limit: Some(4), ..Default::default() };
            api.trades(q).await.unwrap()
        }
    })
    .await;
    assert_eq!(trades.len(), count("order_matching"));
    let mut expected_candles: BTreeMap<u64, (u128, u128, u32)> = BTreeMap::new();
    for t in &trades {
        assert_eq!(t.price, PRICE);
        assert_eq!(t.quote_amount, t.base_amount * 2_000);
        let c = expected_candles.entry(t.timestamp / 60 * 60).or_default();
        c.0 += t.base_amount;
        c.1 += t.quote_amount;
        c.2 += 1;
    }
    let candles = api.candles(CandleQuery { base: ETH, quote: USDC, interval: 60, from: None, to: None, limit: None });
    let candles = candles.await.unwrap();
    let got: BTreeMap<u64, (u128, u128, u32)> =
        candles.iter().map(|c| (c.start, (c.volume, c.quote_volume, c.trades))).collect();
    assert_eq!(got, expected_candles);
    assert!(candles.iter().all(|c| (c.open, c.high, c.low, c.close) == (PRICE, PRICE, PRICE, PRICE)));
    // Only the last `limit` intervals of the range; none before the first trade.
    let q = |limit, to| CandleQuery { base: ETH, quote: USDC, interval: 60, from: None, to, limit };
    let last = api.candles(q(Some(1), None)).await.unwrap();
    assert_eq!(last, candles[candles.len() - 1..]);
    let first = trades.iter().map(|t| t.timestamp).min().unwrap();
    assert_eq!(api.candles(q(None, Some(first))).await.unwrap(), []);
    let taker = trades[0].taker;
    let theirs = api.trades(TradeQuery { account: Some(taker), ..Default::default() }).await.unwrap();
    assert!(!theirs.items.is_empty());
    assert!(theirs.items.iter().all(|t| t.maker == taker || t.taker == taker));

    // Bad queries: typed errors.
    let code = |e: jsonrpsee::core::client::Error| match e {
        jsonrpsee::core::client::Error::Call(e) => e.code(),
        other => panic!("{other}"),
    };
    assert_eq!(code(explorer_block(&api, 10_000).await.unwrap_err()), codes::NOT_FOUND);
    assert_eq!(code(api.op("0x00".into()).await.unwrap_err()), codes::NOT_FOUND);
    let q = HistoryQuery { limit: Some(0), ..Default::default() };
    assert_eq!(code(api.account_ops(q).await.unwrap_err()), codes::INVALID_PARAMS);
    assert_eq!(code(api.blocks(None, Some(1_001)).await.unwrap_err()), codes::INVALID_PARAMS);
    let q = CandleQuery { base: ETH, quote: USDC, interval: 61, from: None, to: None, limit: None };
    assert_eq!(code(api.candles(q).await.unwrap_err()), codes::INVALID_PARAMS);

    indexer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_blocks_changed_is_followed_after_forgetting_the_old_ones() {
    let pg = LocalPostgres::start().expect("PostgreSQL starts (scripts/setup-postgres.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    // Node A: three users; indexed, then gone.
    let a = Net::start(&dir.path().join("a"), 0..3).await;
    a.seal().await;
    let (indexer, api) = start_indexer(&pg, &a.url).await;
    caught_up(&api, &a).await;
    let a_blocks = a.blocks().await;
    indexer.stop().await;
    a.node.handle.stop().unwrap();
    drop(a);

    // Node B on the same database: other users, so block 1 differs already.
    let b = Net::start(&dir.path().join("b"), 10..12).await;
    b.seal().await;
    let (indexer, api) = start_indexer(&pg, &b.url).await;
    caught_up(&api, &b).await;
    replay_matches_node(&api, &b).await;
    let every = api.account_ops(HistoryQuery { limit: Some(1_000), ..Default::default() }).await.unwrap();
    assert_eq!(triples(&every.items), node_ops(&b.blocks().await));
    // (Priority requests are named by chain and serial, the same on both nodes; txs are not.)
    let a_tx = a_blocks.iter().flat_map(|b| &b.tx_hashes).next().unwrap();
    assert!(api.op(a_tx.clone()).await.is_err(), "node A's ops are forgotten");
    let b_blocks = b.blocks().await;
    let b_tx = b_blocks.iter().flat_map(|b| &b.tx_hashes).next().unwrap();
    assert_eq!(&api.op(b_tx.clone()).await.unwrap().hash, b_tx);
    indexer.stop().await;
}

/// `explorer_block` (the node's API has a `block` too).
async fn explorer_block(
    api: &HttpClient,
    number: u32,
) -> Result<zkl_rpc_api::explorer::BlockDetail, jsonrpsee::core::client::Error> {
    ExplorerApiClient::block(api, number).await
}
