//! The exchange process against a real node (in process, no Layer 1): orders from several
//! traders trade through the node, market data follows the books, signed cancels, a fill the
//! node refuses, and restarts (with matches in flight).

use std::sync::{Arc, Mutex};

use jsonrpsee::core::client::Subscription;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use zkl_exchange::engine::{EngineConfig, Event, PairConfig};
use zkl_exchange::service::core::matching_hash;
use zkl_exchange::service::node::{HttpNode, NodeClient};
use zkl_exchange::service::{Exchange, ExchangeConfig, MatcherConfig, start_with};
use zkl_exchange::store::{Store, restore};
use zkl_node::{Node, NodeConfig};
use zkl_rpc_api::exchange::{
    AccountUpdate, CancelRequest, DepthUpdate, ExchangeApiClient, Level, OrderRequest, OrderStatus, TimeInForce, Trade,
    codes,
};
use zkl_rpc_api::{AccountInfo, AdminApiClient, BatchResult, TxStatus, ZklApiClient};
use zkl_state::testkit::{ETH, ONE, USDC, User, deposit};
use zkl_types::{Op, OrderMatching, SignedOrder, SignedTx, Tx};

/// ETH/USDC: ticks of 0.01 USDC, lots of 0.0001 ETH.
const TICK: u128 = ONE / 100;
const LOT: u128 = ONE / 10_000;
/// The first deposit of a fresh node creates account 2: the matcher's.
const MATCHER: u32 = 2;
const ADMIN: &str = "operator";

struct Net {
    node: Node,
    url: String,
    http: HttpClient,
    /// User 0 is the matcher; 1..=4 trade.
    users: Vec<User>,
    ids: Vec<u32>,
}

impl Net {
    async fn start(dir: &std::path::Path) -> Net {
        let mut c = NodeConfig::demo(dir.join("node"));
        c.dev_priority_ops = true;
        c.matchers = vec![MATCHER];
        c.admin = Some(zkl_node::config::AdminConfig { tokens: vec![ADMIN.into()] });
        let node = zkl_node::start(c).await.expect("node starts");
        let url = format!("http://{}", node.rpc_addr);
        let http = HttpClientBuilder::default().build(&url).unwrap();
        let users: Vec<User> = (0..5).map(User::new).collect();
        let mut ids = Vec::new();
        let mut serial = 0;
        for u in &users {
            let mut id = 0;
            // 1,000 ETH on chain 1, 10,000,000 USDC (6 decimals on Layer 1) on chain 2.
            for (chain, token, amount) in [(1, ETH, 1_000 * ONE), (2, USDC, 10_000_000_000_000)] {
                serial += 1;
                let Op::Deposit(d) =
                    http.dev_priority_op(deposit(chain, serial, u.address, token, token, amount)).await.unwrap()
                else {
                    panic!("a deposit")
                };
                id = d.account;
            }
            http.send_tx(u.change_pubkey(id, 0, 1, ETH, 0)).await.unwrap();
            ids.push(id);
        }
        assert_eq!(ids[0], MATCHER);
        Net { node, url, http, users, ids }
    }

    async fn account(&self, who: usize) -> AccountInfo {
        self.http.account(self.ids[who].to_string()).await.unwrap()
    }

    fn order(&self, who: usize, slot: u16, is_sell: bool, ticks: u128, lots: u128) -> SignedOrder {
        self.users[who].order(self.ids[who], slot, 0, ETH, USDC, lots * LOT, ticks * TICK, is_sell)
    }

    fn request(&self, who: usize, order: SignedOrder, tif: TimeInForce) -> OrderRequest {
        OrderRequest { order, pubkey: self.users[who].pubkey, tif }
    }

    fn config(&self, dir: &std::path::Path) -> ExchangeConfig {
        ExchangeConfig {
            node: self.url.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.join("exchange"),
            matcher: MatcherConfig {
                account: MATCHER,
                eth_private_key: format!("0x{}", hex::encode(self.users[0].eth.to_bytes())),
            },
            pairs: vec![PairConfig { base: ETH, quote: USDC, tick: TICK, lot: LOT }],
            max_queue: 1000,
        }
    }
}

/// The node, with a tx the test slips in just before the exchange's next batch of matches
/// (a trader moving funds between the exchange's check and its match).
/// Or a delay before the next batch reaches the node (requests pile up behind it).
#[derive(Clone)]
struct Racing {
    inner: Arc<HttpNode>,
    slip: Arc<Mutex<Option<SignedTx>>>,
    delay: Arc<Mutex<Option<std::time::Duration>>>,
}

impl Racing {
    fn new(net: &Net) -> Self {
        Self { inner: Arc::new(HttpNode::new(&net.url).unwrap()), slip: Arc::default(), delay: Arc::default() }
    }
}

impl NodeClient for Racing {
    async fn account(&self, id: u32) -> Result<Option<AccountInfo>, zkl_exchange::engine::Unavailable> {
        self.inner.account(id).await
    }
    async fn send_batch(&self, txs: Vec<SignedTx>) -> Result<Vec<BatchResult>, zkl_exchange::engine::Unavailable> {
        let delay = self.delay.lock().unwrap().take();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let slip = self.slip.lock().unwrap().take();
        if let Some(tx) = slip {
            let r = self.inner.send_batch(vec![tx]).await?;
            assert!(matches!(r[0], BatchResult::Accepted { .. }), "{r:?}");
        }
        self.inner.send_batch(txs).await
    }
    async fn status(&self, hash: &str) -> Result<Option<TxStatus>, zkl_exchange::engine::Unavailable> {
        self.inner.status(hash).await
    }
}

async fn ws(ex: &Exchange) -> WsClient {
    WsClientBuilder::default().build(format!("ws://{}", ex.addr)).await.unwrap()
}

async fn next<T: serde::de::DeserializeOwned>(sub: &mut Subscription<T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
        .await
        .expect("a notification within 10 s")
        .expect("open")
        .expect("decodes")
}

/// Applies depth updates to a snapshot: a level of amount 0 is gone.
fn apply(book: &mut DepthUpdate, u: &DepthUpdate) {
    assert_eq!(u.seq, book.seq + 1, "updates arrive in sequence");
    book.seq = u.seq;
    for (side, changes, bids) in [(&mut book.bids, &u.bids, true), (&mut book.asks, &u.asks, false)] {
        for l in changes {
            side.retain(|x: &Level| x.price != l.price);
            if l.amount > 0 {
                side.push(*l);
            }
        }
        side.sort_by_key(|l| l.price);
        if bids {
            side.reverse();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_trade_through_the_node_and_market_data_follows() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let ex = start_with(net.config(dir.path()), Racing::new(&net)).await.unwrap();
    let c = ws(&ex).await;
    let mut depth: Subscription<DepthUpdate> = c.subscribe_depth(ETH, USDC).await.unwrap();
    let mut trades: Subscription<Trade> = c.subscribe_trades(ETH, USDC).await.unwrap();
    let mut buyer_feed: Subscription<AccountUpdate> = c.subscribe_account(net.ids[3]).await.unwrap();
    let mut book = next(&mut depth).await;
    assert!(book.snapshot && book.bids.is_empty() && book.asks.is_empty());
    let before: Vec<AccountInfo> = futures_all(&net).await;

    // An order from an account the node does not have is refused as such, not as the node
    // being unreachable.
    let ghost = net.users[1].order(9_999, 0, 0, ETH, USDC, LOT, 100_000 * TICK, true);
    let err = c.place_order(net.request(1, ghost, TimeInForce::Gtc), Some(true)).await.unwrap_err();
    assert!(
        matches!(&err, jsonrpsee::core::ClientError::Call(o) if o.code() == codes::REJECTED && o.message() == "account 9999 has no L2 key"),
        "{err}"
    );

    // Two asks rest; a bid crossing both takes the better one whole and the other in part.
    let a =
        c.place_order(net.request(1, net.order(1, 0, true, 100_000, 10), TimeInForce::Gtc), Some(true)).await.unwrap();
    let b =
        c.place_order(net.request(2, net.order(2, 0, true, 100_100, 10), TimeInForce::Gtc), Some(true)).await.unwrap();
    assert_eq!((a.order.status, b.order.status), (OrderStatus::Open, OrderStatus::Open));
    assert!(a.fills.is_empty() && a.order.left == 10 * LOT);
    let bid =
        c.place_order(net.request(3, net.order(3, 0, false, 100_100, 15), TimeInForce::Gtc), Some(true)).await.unwrap();
    assert_eq!(bid.order.status, OrderStatus::Filled, "{bid:?}");
    let filled: Vec<_> = bid.fills.iter().map(|f| (f.maker_order, f.base_amount, f.price, f.refused.clone())).collect();
    assert_eq!(filled, vec![(a.order.id, 10 * LOT, 100_000 * TICK, None), (b.order.id, 5 * LOT, 100_100 * TICK, None)]);
    let statuses: Vec<_> = bid.affected.iter().map(|o| (o.id, o.status, o.left)).collect();
    assert_eq!(statuses, vec![(a.order.id, OrderStatus::Filled, 0), (b.order.id, OrderStatus::Open, 5 * LOT)]);

    // The node executed both fills: the buyer got 15 lots, the sellers gave theirs, and the
    // partly filled ask's slot holds what the exchange has left of it.
    for f in &bid.fills {
        let status = net.http.tx_status(f.tx_hash.clone()).await.unwrap();
        assert_eq!(status.status(), &TxStatus::Pending);
    }
    let after: Vec<AccountInfo> = futures_all(&net).await;
    // (less the taker's fee: 10 bps of what it receives)
    assert_eq!(after[3].balance(0, ETH) - before[3].balance(0, ETH), 15 * LOT - 15 * LOT / 1000);
    assert_eq!(before[1].balance(0, ETH) - after[1].balance(0, ETH), 10 * LOT);
    assert_eq!(before[2].balance(0, ETH) - after[2].balance(0, ETH), 5 * LOT);
    assert_eq!(after[2].order_slot(0, 0).residue, 5 * LOT);
    assert_eq!(after[1].order_slot(0, 0).nonce, 1, "a filled order moves its slot on");

    // Trades: pushed and queried (newest first, paged by seq).
    let t1 = next(&mut trades).await;
    let t2 = next(&mut trades).await;
    assert_eq!((t1.base_amount, t2.base_amount), (10 * LOT, 5 * LOT));
    assert_eq!(t1.tx_hash, bid.fills[0].tx_hash);
    let listed = c.trades(ETH, USDC, None, None).await.unwrap();
    assert_eq!(listed, vec![t2.clone(), t1.clone()]);
    assert_eq!(c.trades(ETH, USDC, Some(5), Some(t2.seq)).await.unwrap(), vec![t1.clone()]);
    let too_many = c.trades(ETH, USDC, Some(5000), None).await.unwrap_err().to_string();
    assert!(too_many.contains("at most 1000"), "{too_many}");

    // The buyer's feed: its two fills, then its order.
    let mut feed = Vec::new();
    for _ in 0..3 {
        feed.push(next(&mut buyer_feed).await);
    }
    assert_eq!(feed[0], AccountUpdate::Fill(t1));
    assert_eq!(feed[1], AccountUpdate::Fill(t2));
    assert!(matches!(&feed[2], AccountUpdate::Order(o) if o.id == bid.order.id && o.status == OrderStatus::Filled));

    // Signed cancels: another key is refused, an unknown id is not found, the owner's works.
    let b_order = net.order(2, 0, true, 100_100, 10).order;
    let forged = CancelRequest {
        id: b.order.id,
        pubkey: net.users[3].pubkey,
        signature: net.users[3].l2.sign(&b_order.cancel_message(b.order.id)),
    };
    let e = c.cancel_order(forged).await.unwrap_err();
    assert!(e.to_string().contains("not signed by account"), "{e}");
    let wrong_message = CancelRequest {
        id: b.order.id,
        pubkey: net.users[2].pubkey,
        signature: net.users[2].l2.sign(&b_order.cancel_message(b.order.id + 1)),
    };
    assert!(c.cancel_order(wrong_message).await.unwrap_err().to_string().contains("bad cancel signature"));
    let cancel = |id| CancelRequest {
        id,
        pubkey: net.users[2].pubkey,
        signature: net.users[2].l2.sign(&b_order.cancel_message(id)),
    };
    match c.cancel_order(cancel(999)).await.unwrap_err() {
        jsonrpsee::core::ClientError::Call(e) => assert_eq!(e.code(), codes::NOT_FOUND),
        other => panic!("{other}"),
    }
    let cancelled = c.cancel_order(cancel(b.order.id)).await.unwrap();
    assert_eq!((cancelled.status, cancelled.left), (OrderStatus::Cancelled, 5 * LOT));
    assert!(c.orders(net.ids[2]).await.unwrap().is_empty());

    // A post-only bid rests, an IOC that does not cross expires; the depth feed, applied to
    // the first snapshot, is the book.
    let post = c
        .place_order(net.request(4, net.order(4, 0, false, 99_000, 3), TimeInForce::PostOnly), Some(true))
        .await
        .unwrap();
    assert_eq!(post.order.status, OrderStatus::Open);
    let ioc =
        c.place_order(net.request(4, net.order(4, 1, true, 101_000, 3), TimeInForce::Ioc), Some(true)).await.unwrap();
    assert_eq!((ioc.order.status, ioc.order.left), (OrderStatus::Expired, 3 * LOT));
    let now = c.book(ETH, USDC, None).await.unwrap();
    while book.seq < now.seq {
        let u = next(&mut depth).await;
        assert!(!u.snapshot);
        apply(&mut book, &u);
    }
    assert_eq!((book.bids.clone(), book.asks.clone()), (now.bids.clone(), now.asks.clone()));
    assert_eq!(now.bids, vec![Level { price: 99_000 * TICK, amount: 3 * LOT, orders: 1 }]);
    assert!(now.asks.is_empty());
    let mut forged = net.order(1, 1, true, 99_000, 1);
    forged.order.price += TICK;
    let e = c.place_order(net.request(1, forged, TimeInForce::Gtc), Some(true)).await.unwrap_err();
    assert!(e.to_string().contains("bad order signature"), "{e}");
    let post_again =
        c.place_order(net.request(1, net.order(1, 1, true, 99_000, 1), TimeInForce::PostOnly), Some(true)).await;
    assert!(post_again.unwrap_err().to_string().contains("post-only"));
    ex.stop().await;
}

async fn futures_all(net: &Net) -> Vec<AccountInfo> {
    let mut out = Vec::new();
    for who in 0..5 {
        out.push(net.account(who).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_the_node_refuses_removes_its_orders_and_the_taker_can_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let racing = Racing::new(&net);
    let ex = start_with(net.config(dir.path()), racing.clone()).await.unwrap();
    let c = ws(&ex).await;
    let ask =
        c.place_order(net.request(1, net.order(1, 0, true, 100_000, 10), TimeInForce::Gtc), Some(true)).await.unwrap();
    let ask2 =
        c.place_order(net.request(2, net.order(2, 0, true, 100_000, 10), TimeInForce::Gtc), Some(true)).await.unwrap();

    // Trader 1 sends its ETH away after the exchange checked it and before the match lands.
    let nonce = net.account(1).await.nonce;
    let all = net.account(1).await.balance(0, ETH);
    *racing.slip.lock().unwrap() = Some(net.users[1].transfer(net.ids[1], net.users[0].address, ETH, all, 0, nonce));
    let bid_order = net.order(3, 0, false, 100_000, 15);
    let bid = c.place_order(net.request(3, bid_order.clone(), TimeInForce::Gtc), Some(true)).await.unwrap();
    assert_eq!(bid.fills.len(), 2, "{bid:?}");
    let refusal = bid.fills[0].refused.clone().expect("the node refused the first fill");
    assert!(refusal.contains("balance") || refusal.contains("insufficient"), "{refusal}");
    assert!(bid.fills[1].refused.is_some(), "the second fill claims a residue the refusal broke");
    // Every order of the broken fills is removed, with why; nothing rests, nothing is reserved.
    assert_eq!(bid.order.status, OrderStatus::Removed);
    let removed: Vec<_> = bid.affected.iter().map(|o| (o.id, o.status)).collect();
    assert_eq!(removed, vec![(ask.order.id, OrderStatus::Removed), (ask2.order.id, OrderStatus::Removed)]);
    assert!(c.book(ETH, USDC, None).await.unwrap().asks.is_empty());
    assert!(c.trades(ETH, USDC, None, None).await.unwrap().is_empty());
    for who in [1, 2, 3] {
        let a = net.account(who).await;
        assert_eq!((a.order_slot(0, 0).nonce, a.order_slot(0, 0).residue), (0, 0), "trader {who}: nothing filled");
    }

    // The owners place the same signed orders again: they trade.
    c.place_order(net.request(2, ask2_order(&net), TimeInForce::Gtc), Some(true)).await.unwrap();
    let again = c.place_order(net.request(3, bid_order, TimeInForce::Gtc), Some(true)).await.unwrap();
    assert_eq!(
        again.fills.iter().map(|f| (f.base_amount, f.refused.is_none())).collect::<Vec<_>>(),
        vec![(10 * LOT, true)]
    );
    assert_eq!((again.order.status, again.order.left), (OrderStatus::Open, 5 * LOT));
    let (book, orders, trades) = (
        c.book(ETH, USDC, None).await.unwrap(),
        c.orders(net.ids[3]).await.unwrap(),
        c.trades(ETH, USDC, None, None).await.unwrap(),
    );
    assert_eq!(book.bids, vec![Level { price: 100_000 * TICK, amount: 5 * LOT, orders: 1 }]);
    assert_eq!(trades.len(), 1);
    ex.stop().await;

    // A restart rebuilds the same book, orders and trades from the store.
    let ex = start_with(net.config(dir.path()), racing).await.unwrap();
    let c = ws(&ex).await;
    assert_eq!(c.book(ETH, USDC, None).await.unwrap().bids, book.bids);
    assert_eq!(c.orders(net.ids[3]).await.unwrap(), orders);
    assert_eq!(c.trades(ETH, USDC, None, None).await.unwrap(), trades);
    ex.stop().await;
}

fn ask2_order(net: &Net) -> SignedOrder {
    net.order(2, 0, true, 100_000, 10)
}

/// A placement logged with its matches but stopped before they reached the node (lost) or
/// before the node's answer was logged (accepted): the restarted exchange sends the lost ones
/// once and does not send the accepted ones again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_in_flight_at_a_crash_are_settled_once_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let config = net.config(dir.path());
    for already_sent in [false, true] {
        let ex = start_with(config.clone(), Racing::new(&net)).await.unwrap();
        let c = ws(&ex).await;
        let slot = u16::from(already_sent);
        let ask = net.users[1].order(net.ids[1], slot, 0, ETH, USDC, 10 * LOT, 100_000 * TICK, true);
        c.place_order(net.request(1, ask, TimeInForce::Gtc), Some(true)).await.unwrap();
        ex.stop().await;

        // The crash: the taker's admission is in the store, its matches went nowhere (or
        // reached the node, whose answer was not logged).
        let bid = net.users[3].order(net.ids[3], slot, 0, ETH, USDC, 4 * LOT, 100_000 * TICK, false);
        let event = Event::Submitted {
            request: Box::new(net.request(3, bid, TimeInForce::Gtc)),
            left: 4 * LOT,
            fresh: true,
            removed: vec![],
            at_ms: 1,
        };
        let path = config.data_dir.join("exchange.redb");
        let engine_config = EngineConfig { matcher: MATCHER, pairs: config.pairs.clone() };
        let matches = {
            let store = Store::open(&path).unwrap();
            let mut engine = restore(engine_config, &store).unwrap();
            store.append(&event).unwrap();
            engine.replay(&event).unwrap().unwrap().matches
        };
        assert_eq!(matches.len(), 1);
        let hash = matching_hash(&matches[0]);
        if already_sent {
            let tx = Tx::OrderMatching(Box::new(matches[0].clone())).sign(&net.users[0].l2);
            net.http.send_tx(tx).await.unwrap();
        }
        let seller_before = net.account(1).await.balance(0, ETH);

        let ex = start_with(config.clone(), Racing::new(&net)).await.unwrap();
        let c = ws(&ex).await;
        assert_eq!(net.http.tx_status(hash.clone()).await.unwrap().status(), &TxStatus::Pending);
        let seller_after = net.account(1).await.balance(0, ETH);
        let moved = if already_sent { 0 } else { 4 * LOT };
        assert_eq!(seller_before - seller_after, moved, "round {already_sent}: the match executed once");
        let resting = c.orders(net.ids[1]).await.unwrap();
        assert_eq!(resting.iter().map(|o| o.left).collect::<Vec<_>>(), vec![6 * LOT]);
        assert_eq!(net.account(1).await.order_slot(0, slot).residue, 6 * LOT);
        let trades = c.trades(ETH, USDC, None, None).await.unwrap();
        assert_eq!(trades.first().map(|t| t.tx_hash.clone()), Some(hash));
        // The store now records the node's answer: the next restart sends nothing.
        let events = Store::open(&path).map(|s| s.events().unwrap());
        assert!(events.is_err(), "the running exchange holds the store");
        ex.stop().await;
        let events = Store::open(&path).unwrap().events().unwrap();
        assert!(matches!(events.last(), Some(Event::Settled { refused, .. }) if refused.is_empty()), "{events:?}");
        // Clear the book for the next round.
        let ex = start_with(config.clone(), Racing::new(&net)).await.unwrap();
        let c = ws(&ex).await;
        let o = resting[0].clone();
        let ask = net.users[1].order(net.ids[1], slot, 0, ETH, USDC, 10 * LOT, 100_000 * TICK, true).order;
        let sig = net.users[1].l2.sign(&ask.cancel_message(o.id));
        c.cancel_order(CancelRequest { id: o.id, pubkey: net.users[1].pubkey, signature: sig }).await.unwrap();
        ex.stop().await;
    }
}

/// Two placements in flight at a crash: the node refused the first one's match (it keeps no
/// record of a refusal) and accepted the second's. The restarted exchange counts the first
/// refused and the second accepted and sends neither again (sent again, the second would be
/// refused, its fill recorded as lost although the node executed it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_match_before_an_accepted_one_at_a_crash_is_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let config = net.config(dir.path());
    let ex = start_with(config.clone(), Racing::new(&net)).await.unwrap();
    let c = ws(&ex).await;
    c.place_order(net.request(1, net.order(1, 0, true, 100_000, 10), TimeInForce::Gtc), Some(true)).await.unwrap();
    c.place_order(net.request(2, net.order(2, 0, true, 100_100, 10), TimeInForce::Gtc), Some(true)).await.unwrap();
    ex.stop().await;

    // The crash: two bids admitted, each taking one ask whole; their matches left the exchange.
    let submitted = |who: usize, price| Event::Submitted {
        request: Box::new(net.request(who, net.order(who, 0, false, price, 10), TimeInForce::Gtc)),
        left: 10 * LOT,
        fresh: true,
        removed: vec![],
        at_ms: 1,
    };
    let path = config.data_dir.join("exchange.redb");
    let matches: Vec<OrderMatching> = {
        let store = Store::open(&path).unwrap();
        let mut engine = restore(EngineConfig { matcher: MATCHER, pairs: config.pairs.clone() }, &store).unwrap();
        let mut out = Vec::new();
        for event in [submitted(3, 100_000), submitted(4, 100_100)] {
            store.append(&event).unwrap();
            out.extend(engine.replay(&event).unwrap().unwrap().matches);
        }
        out
    };
    assert_eq!(matches.len(), 2);
    // Trader 1 moved its ETH away first: the node refuses the first match, accepts the second.
    let nonce = net.account(1).await.nonce;
    let all = net.account(1).await.balance(0, ETH);
    net.http.send_tx(net.users[1].transfer(net.ids[1], net.users[0].address, ETH, all, 0, nonce)).await.unwrap();
    let signed = matches.iter().map(|m| Tx::OrderMatching(Box::new(m.clone())).sign(&net.users[0].l2)).collect();
    let judged = net.http.send_batch(signed).await.unwrap();
    assert!(matches!(judged[..], [BatchResult::Rejected { .. }, BatchResult::Accepted { .. }]), "{judged:?}");
    let seller = net.account(2).await.balance(0, ETH);

    let ex = start_with(config.clone(), Racing::new(&net)).await.unwrap();
    let c = ws(&ex).await;
    let trades = c.trades(ETH, USDC, None, None).await.unwrap();
    assert_eq!(trades.iter().map(|t| t.tx_hash.clone()).collect::<Vec<_>>(), [matching_hash(&matches[1])]);
    assert!(c.orders(net.ids[1]).await.unwrap().is_empty(), "the refused fill's ask is removed");
    assert!(c.orders(net.ids[2]).await.unwrap().is_empty(), "the accepted fill's ask is filled");
    assert_eq!(net.account(2).await.balance(0, ETH), seller, "the accepted match executed once");
    ex.stop().await;
    let events = Store::open(&path).unwrap().events().unwrap();
    let refused: Vec<Vec<u32>> = events
        .iter()
        .filter_map(|e| if let Event::Settled { refused, .. } = e { Some(refused.clone()) } else { None })
        .collect();
    assert_eq!(refused, [vec![0], vec![]]);
}

/// The engine does not wait for the node: while a batch's matches are held on their way to the
/// node, an order that rests is admitted and answered, and later orders are matched against the
/// ask as the fills in flight leave it (checked against its slot as those fills leave it); every
/// fill is accepted by the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_admitted_while_matches_are_in_flight_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let racing = Racing::new(&net);
    let ex = start_with(net.config(dir.path()), racing.clone()).await.unwrap();
    let c = ws(&ex).await;
    let ask =
        c.place_order(net.request(1, net.order(1, 0, true, 100_000, 10), TimeInForce::Gtc), Some(true)).await.unwrap();

    // The first bid's match is held back 500 ms; two more bids and a sell arrive meanwhile.
    *racing.delay.lock().unwrap() = Some(std::time::Duration::from_millis(500));
    let first = {
        let (c, req) = (ws(&ex).await, net.request(3, net.order(3, 0, false, 100_000, 1), TimeInForce::Gtc));
        tokio::spawn(async move { c.place_order(req, Some(true)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let resting =
        c.place_order(net.request(2, net.order(2, 0, false, 99_000, 3), TimeInForce::Gtc), Some(true)).await.unwrap();
    assert_eq!(resting.order.status, OrderStatus::Open);
    assert!(!first.is_finished(), "the resting order is answered while the earlier match is held");
    let mut later = Vec::new();
    for (who, slot) in [(4, 0), (3, 1), (4, 1)] {
        let (c, req) = (ws(&ex).await, net.request(who, net.order(who, slot, false, 100_000, 3), TimeInForce::Gtc));
        later.push(tokio::spawn(async move { c.place_order(req, Some(true)).await }));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(first.await.unwrap().unwrap().fills.len(), 1);
    let mut filled = 0;
    for t in later {
        let placed = t.await.unwrap().unwrap();
        assert!(placed.fills.iter().all(|f| f.refused.is_none()), "{placed:?}");
        assert!(placed.affected.iter().all(|o| o.status != OrderStatus::Removed), "{placed:?}");
        filled += placed.fills.iter().map(|f| f.base_amount).sum::<u128>();
    }
    assert_eq!(filled, 9 * LOT);
    let resting = c.orders(net.ids[1]).await.unwrap();
    assert!(resting.is_empty(), "the ask is filled: {resting:?}");
    let slot = net.account(1).await.order_slot(0, 0);
    assert_eq!((slot.nonce, slot.residue), (1, 0));
    assert_eq!(c.trades(ETH, USDC, None, None).await.unwrap().len(), 4);
    let _ = ask;
    ex.stop().await;
}

/// A cancel racing a crossing order: whichever the engine takes first, the ask's units are
/// either filled or cancelled, never both, and the node's slot agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_a_fill_never_loses_or_doubles_units() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let ex = start_with(net.config(dir.path()), Racing::new(&net)).await.unwrap();
    let c = ws(&ex).await;
    let (mut cancelled_first, mut filled_first) = (0, 0);
    for round in 0..12u16 {
        let ask_order = net.order(1, round, true, 100_000, 10);
        let ask = c.place_order(net.request(1, ask_order.clone(), TimeInForce::Gtc), Some(true)).await.unwrap();
        let id = ask.order.id;
        let signature = net.users[1].l2.sign(&ask_order.order.cancel_message(id));
        let cancel = CancelRequest { id, pubkey: net.users[1].pubkey, signature };
        let bid = net.request(3, net.order(3, round, false, 100_000, 4), TimeInForce::Ioc);
        let (c1, c2) = (ws(&ex).await, ws(&ex).await);
        let (cancelled, placed) = if round % 2 == 0 {
            tokio::join!(
                async move { c1.cancel_order(cancel).await },
                async move { c2.place_order(bid, Some(true)).await }
            )
        } else {
            let (p, x) = tokio::join!(async move { c2.place_order(bid, Some(true)).await }, async move {
                c1.cancel_order(cancel).await
            });
            (x, p)
        };
        let cancelled = cancelled.expect("the ask rests until cancelled (the bid takes 4 of 10 lots)");
        let placed = placed.unwrap();
        let filled: u128 = placed.fills.iter().filter(|f| f.refused.is_none()).map(|f| f.base_amount).sum();
        assert_eq!(cancelled.left + filled, 10 * LOT, "round {round}");
        if filled == 0 {
            cancelled_first += 1
        } else {
            filled_first += 1
        }
        let slot = net.account(1).await.order_slot(0, round);
        assert_eq!((slot.nonce, slot.residue), (0, if filled == 0 { 0 } else { 10 * LOT - filled }), "round {round}");
    }
    assert!(c.orders(net.ids[1]).await.unwrap().is_empty());
    eprintln!("cancel first {cancelled_first}, fill first {filled_first}");
    ex.stop().await;
}

/// While settlement is halted the node takes no work: the exchange's matches wait for it (the
/// orders stay), and go through once the halt is lifted. A placement is answered at its match,
/// its fills pending (their fate follows on the account feed); one that waits for the node is
/// answered once the node has judged its fills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_wait_while_settlement_is_halted() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let ex = start_with(net.config(dir.path()), Racing::new(&net)).await.unwrap();
    let c = ws(&ex).await;
    let ask =
        c.place_order(net.request(1, net.order(1, 0, true, 100_000, 10), TimeInForce::Gtc), Some(true)).await.unwrap();
    let mut feed: Subscription<AccountUpdate> = c.subscribe_account(net.ids[4]).await.unwrap();

    let seq = &net.node.sequencer;
    let block = seq.seal().await.expect("a block");
    let commitment = net.node.storage.block(block).unwrap().unwrap().commitment;
    let halt = zkl_node::settlement::Halt { block, chain: 1, error: "Refused()".into(), op: None, since_ms: 0 };
    seq.halt(halt, commitment).await.unwrap();
    let bid = {
        let (c, req) = (ws(&ex).await, net.request(3, net.order(3, 0, false, 100_000, 4), TimeInForce::Gtc));
        tokio::spawn(async move { c.place_order(req, Some(true)).await })
    };
    // Answered at the match although the node takes no work.
    let quick = net.request(4, net.order(4, 0, false, 100_000, 2), TimeInForce::Gtc);
    let quick = tokio::time::timeout(std::time::Duration::from_secs(5), c.place_order(quick, None)).await;
    let quick = quick.expect("answered at the match").unwrap();
    let fills: Vec<_> = quick.fills.iter().map(|f| (f.base_amount, f.pending, f.refused.is_some())).collect();
    assert_eq!(fills, [(2 * LOT, true, false)], "{quick:?}");
    assert_eq!(quick.order.status, OrderStatus::Filled);
    assert_eq!(quick.fills[0].tx_hash.len(), 66);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(!bid.is_finished(), "the match waits for the node");
    seq.lift_halt().await.unwrap();
    let placed = bid.await.unwrap().unwrap();
    assert_eq!(
        placed.fills.iter().map(|f| (f.base_amount, f.refused.clone(), f.pending)).collect::<Vec<_>>(),
        [(4 * LOT, None, false)]
    );
    assert_eq!(placed.order.status, OrderStatus::Filled);
    // The quick fill's fate follows on its trader's feed once the node accepted it.
    let fill = loop {
        if let AccountUpdate::Fill(t) = next(&mut feed).await {
            break t;
        }
    };
    assert_eq!((fill.tx_hash.as_str(), fill.base_amount), (quick.fills[0].tx_hash.as_str(), 2 * LOT));
    let status = net.http.tx_status(fill.tx_hash.clone()).await.expect("the node holds the fill");
    assert!(!matches!(status.status(), TxStatus::Rejected { .. }), "{status:?}");
    let resting = c.orders(net.ids[1]).await.unwrap();
    assert_eq!(resting.iter().map(|o| (o.id, o.left)).collect::<Vec<_>>(), [(ask.order.id, 4 * LOT)]);
    assert_eq!(net.account(1).await.order_slot(0, 0).residue, 4 * LOT);
    ex.stop().await;
}

/// The node, counting the exchange's reads of each account and telling when its account feed
/// is subscribed.
#[derive(Clone)]
struct Counting {
    inner: Arc<HttpNode>,
    reads: Arc<Mutex<std::collections::HashMap<u32, usize>>>,
    live: Arc<std::sync::atomic::AtomicBool>,
}

impl Counting {
    fn reads(&self, id: u32) -> usize {
        self.reads.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

impl NodeClient for Counting {
    async fn account(&self, id: u32) -> Result<Option<AccountInfo>, zkl_exchange::engine::Unavailable> {
        *self.reads.lock().unwrap().entry(id).or_default() += 1;
        self.inner.account(id).await
    }
    async fn send_batch(&self, txs: Vec<SignedTx>) -> Result<Vec<BatchResult>, zkl_exchange::engine::Unavailable> {
        self.inner.send_batch(txs).await
    }
    async fn status(&self, hash: &str) -> Result<Option<TxStatus>, zkl_exchange::engine::Unavailable> {
        self.inner.status(hash).await
    }
    async fn account_changes(
        &self,
    ) -> Result<Option<zkl_exchange::service::node::ChangeStream>, zkl_exchange::engine::Unavailable> {
        let feed = self.inner.account_changes().await;
        if matches!(feed, Ok(Some(_))) {
            self.live.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        feed
    }
}

/// With the node's account feed live the exchange reads a trader once, not for every order;
/// it reads it again when another tx changed it (the feed says so: an order the funds no
/// longer back is then refused by the exchange, not sent to the node to be refused), and when
/// an order gives a token that the trader's fills brought since the read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_mirrors_accounts_and_reads_them_again_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::start(dir.path()).await;
    let node =
        Counting { inner: Arc::new(HttpNode::new(&net.url).unwrap()), reads: Arc::default(), live: Arc::default() };
    let ex = start_with(net.config(dir.path()), node.clone()).await.unwrap();
    let c = ws(&ex).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !node.live.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the exchange subscribes to the node's account feed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let place = |who: usize, slot: u16, is_sell: bool, ticks: u128, lots: u128, tif: TimeInForce| {
        let req = net.request(who, net.order(who, slot, is_sell, ticks, lots), tif);
        let c = &c;
        async move { c.place_order(req, Some(true)).await }
    };

    // Trader 1's asks: read for the first, not again for the next ten.
    place(1, 0, true, 100_000, 1, TimeInForce::Gtc).await.unwrap();
    let first = node.reads(net.ids[1]);
    assert!(first >= 1);
    for slot in 1..=10 {
        place(1, slot, true, 100_000 + u128::from(slot), 1, TimeInForce::Gtc).await.unwrap();
    }
    // (Once more at most: an account read more than a second ago is read again.)
    assert!(node.reads(net.ids[1]) <= first + 1, "the mirror serves trader 1's account");

    // Trader 1 sends nearly all its ETH away behind the exchange's back: once the feed reports
    // it, an ask for more than is left is refused with why.
    let a = net.account(1).await;
    let away = a.balance(0, ETH) - ONE / 10;
    net.http.send_tx(net.users[1].transfer(net.ids[1], net.users[0].address, ETH, away, 0, a.nonce)).await.unwrap();
    let refused = loop {
        match place(1, 11, true, 100_000, 5_000, TimeInForce::Ioc).await {
            Err(e) => break e.to_string(),
            Ok(placed) => {
                assert!(placed.fills.is_empty(), "nothing bids: {placed:?}");
                assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(5), "never refused");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    assert!(refused.contains("not reserved by its orders"), "{refused}");
    assert!(node.reads(net.ids[1]) > first, "read again after the transfer");

    // Trader 4 keeps 1 USDC, sells 1 ETH to trader 3 for 1,000 USDC, then bids for 450 USDC:
    // what the fill brought is not in the account as read before it, so it is read again.
    let a = net.account(4).await;
    let away = a.balance(0, USDC) - ONE;
    net.http.send_tx(net.users[4].transfer(net.ids[4], net.users[0].address, USDC, away, 0, a.nonce)).await.unwrap();
    place(3, 0, false, 100_000, 10_000, TimeInForce::Gtc).await.unwrap();
    let sold = place(4, 0, true, 100_000, 10_000, TimeInForce::Gtc).await.unwrap();
    assert_eq!(sold.fills.len(), 1, "{sold:?}");
    assert!(sold.fills[0].refused.is_none(), "{sold:?}");
    let before = node.reads(net.ids[4]);
    let bid = place(4, 1, false, 90_000, 5_000, TimeInForce::Gtc).await.unwrap();
    assert_eq!(bid.order.status, OrderStatus::Open, "{bid:?}");
    assert!(node.reads(net.ids[4]) > before, "read again for the bid");
    ex.stop().await;
}
