//! The node's entry rules: the future-nonce queue (ordering, limits, durability), the fee policy
//! and `zkl_estimateFee`, pending priority operations, the tx-status and account-change
//! subscriptions, and metrics.

use jsonrpsee::core::client::Subscription;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::WsClientBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zkl_node::config::{FeePolicy, FeeRate};
use zkl_node::{Node, NodeConfig};
use zkl_rpc_api::{
    AccountChange, AccountChanges, AdminApiClient, EventsApiClient, FeeQuery, RevertRequest, TxRecord, TxStatus,
    ZklApiClient,
};
use zkl_state::testkit::{ETH, ONE, USDC, User, deposit, matching};
use zkl_types::{Op, SignedTx};

struct Net {
    node: Node,
    http: HttpClient,
    users: Vec<(User, u32)>,
}

fn config(dir: &std::path::Path, fees: FeePolicy) -> NodeConfig {
    let mut c = NodeConfig::demo(dir.to_path_buf());
    c.dev_priority_ops = true;
    c.block_time_ms = 60_000; // blocks are sealed by the tests
    c.max_queued_per_account = 3;
    c.fees = fees;
    c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    c.admin = Some(zkl_node::config::AdminConfig { tokens: vec![ADMIN.into()] });
    c
}

const ADMIN: &str = "operator";

async fn start(config: NodeConfig) -> (Node, HttpClient) {
    let node = zkl_node::start(config).await.expect("node starts");
    let http = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr)).unwrap();
    (node, http)
}

/// A node with two funded users whose L2 keys are set (nonce 1 each).
async fn net(dir: &std::path::Path, fees: FeePolicy) -> Net {
    net_from(config(dir, fees)).await
}

/// [`net`] with the node configured by `config`.
async fn net_from(config: NodeConfig) -> Net {
    let cpk_fee = config.fees.min_fee(ETH, 3).unwrap().unwrap_or(0);
    let (node, http) = start(config).await;
    let mut users = Vec::new();
    for seed in [1u64, 2] {
        let u = User::new(seed);
        let Op::Deposit(op) = http.dev_priority_op(deposit(1, seed, u.address, ETH, ETH, 10 * ONE)).await.unwrap()
        else {
            panic!("a deposit")
        };
        let id = op.account;
        http.send_tx(u.change_pubkey(id, 0, 1, ETH, cpk_fee)).await.unwrap();
        users.push((u, id));
    }
    http.seal_block(ADMIN.into()).await.unwrap();
    Net { node, http, users }
}

async fn status(http: &HttpClient, hash: &str) -> TxStatus {
    http.tx_status(hash.to_string()).await.unwrap().status().clone()
}

async fn balance(http: &HttpClient, id: u32, token: u16) -> u128 {
    http.account(id.to_string()).await.unwrap().balance(0, token)
}

async fn send(http: &HttpClient, tx: SignedTx) -> String {
    http.send_tx(tx).await.unwrap()
}

async fn rejected(http: &HttpClient, tx: SignedTx) -> String {
    match http.send_tx(tx).await {
        Err(jsonrpsee::core::ClientError::Call(e)) => e.message().to_string(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_nonces_wait_in_the_queue_and_run_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(dir.path(), FeePolicy::default()).await;
    let (a, a_id) = &n.users[0];
    let b = &n.users[1].0;
    let before = balance(&n.http, *a_id, ETH).await;

    // Nonces 3 and 2 arrive before 1: both are queued, nothing moves.
    let h3 = send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 3)).await;
    let h2 = send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 2)).await;
    assert_eq!(status(&n.http, &h3).await, TxStatus::Queued);
    assert_eq!(status(&n.http, &h2).await, TxStatus::Queued);
    assert_eq!(balance(&n.http, *a_id, ETH).await, before);

    // The same queued tx again is idempotent; a different tx for a queued nonce is refused.
    let again = send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 3)).await;
    assert_eq!(again, h3);
    let msg = rejected(&n.http, a.transfer(*a_id, b.address, ETH, 2 * ONE, 0, 3)).await;
    assert!(msg.contains("already has a queued tx with nonce 3"), "{msg}");
    // Too far ahead (limit 3) and a used nonce are refused with the reason.
    let msg = rejected(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 5)).await;
    assert!(msg.contains("too far ahead"), "{msg}");
    let msg = rejected(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 0)).await;
    assert!(msg.contains("nonce"), "{msg}");

    // Nonce 1 closes the gap: 1, 2, 3 run in order in the same block.
    let h1 = send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 1)).await;
    for h in [&h1, &h2, &h3] {
        assert_eq!(status(&n.http, h).await, TxStatus::Pending, "{h}");
    }
    assert_eq!(balance(&n.http, *a_id, ETH).await, before - 3 * ONE);
    let block = n.http.seal_block(ADMIN.into()).await.unwrap().expect("a block");
    let record = n.http.block(block).await.unwrap();
    assert_eq!(record.tx_hashes, [h1, h2, h3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_tx_that_fails_its_turn_is_rejected_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(dir.path(), FeePolicy::default()).await;
    let (a, a_id) = &n.users[0];
    let b = &n.users[1].0;
    // Nonce 2 spends more than will be left after nonce 1.
    let h2 = send(&n.http, a.transfer(*a_id, b.address, ETH, 9 * ONE, 0, 2)).await;
    send(&n.http, a.transfer(*a_id, b.address, ETH, 2 * ONE, 0, 1)).await;
    let s = status(&n.http, &h2).await;
    assert!(matches!(&s, TxStatus::Rejected { reason } if reason.contains("balance")), "{s:?}");
    assert_eq!(balance(&n.http, *a_id, ETH).await, 8 * ONE);
    assert_eq!(n.http.account(a_id.to_string()).await.unwrap().nonce, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(dir.path(), FeePolicy::default()).await;
    let (a, a_id) = n.users[0].clone();
    let b = n.users[1].0.clone();
    let h2 = send(&n.http, a.transfer(a_id, b.address, ETH, ONE, 0, 2)).await;
    n.node.handle.stop().unwrap();
    n.node.handle.clone().stopped().await;
    drop(n);
    // The sequencer thread holds the database until its channel closes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let (_node, http) = start(config(dir.path(), FeePolicy::default())).await;
    assert_eq!(status(&http, &h2).await, TxStatus::Queued);
    send(&http, a.transfer(a_id, b.address, ETH, ONE, 0, 1)).await;
    assert_eq!(status(&http, &h2).await, TxStatus::Pending);
    assert_eq!(balance(&http, a_id, ETH).await, 8 * ONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fees_below_the_policy_are_refused_and_estimates_match_it() {
    let dir = tempfile::tempdir().unwrap();
    let fees = FeePolicy { rates: vec![FeeRate { token: ETH, per_chunk: 1_000_000_000_000 }] };
    let n = net(dir.path(), fees).await;
    let (a, a_id) = &n.users[0];
    let b = &n.users[1].0;

    let query = |kind: &str, token: u16, to| FeeQuery { kind: kind.into(), token, to };
    let est = n.http.estimate_fee(query("transfer", ETH, Some(b.address))).await.unwrap();
    assert_eq!(est.chunks, 1);
    let fee = est.fee;
    assert_eq!(fee, 1_000_000_000_000);
    let new = User::new(99).address;
    let est_new = n.http.estimate_fee(query("transfer", ETH, Some(new))).await.unwrap();
    assert_eq!(est_new.chunks, 3);
    let est_w = n.http.estimate_fee(query("withdraw", ETH, None)).await.unwrap();
    assert_eq!(est_w.fee, 3_000_000_000_000);

    let msg = rejected(&n.http, a.transfer(*a_id, b.address, ETH, ONE, fee - 1_000_000, 1)).await;
    assert!(msg.contains("below the node's minimum"), "{msg}");
    // A transfer to a new account costs the three-chunk fee.
    let msg = rejected(&n.http, a.transfer(*a_id, new, ETH, ONE, fee, 1)).await;
    assert!(msg.contains("below the node's minimum 3000000000000"), "{msg}");
    send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, fee, 1)).await;

    // Unknown kinds and tokens the node does not take are refused with the reason.
    let e = n.http.estimate_fee(query("transfer", USDC, None)).await;
    assert!(format!("{e:?}").contains("not accepted for fees"), "{e:?}");
    let e = n.http.estimate_fee(query("swap", ETH, None)).await;
    assert!(format!("{e:?}").contains("unknown kind"), "{e:?}");
    let msg = rejected(&n.http, a.transfer(*a_id, b.address, USDC, 0, 0, 2)).await;
    assert!(msg.contains("not accepted for fees"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_priority_ops_status_subscription_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(dir.path(), FeePolicy::default()).await;
    let (a, a_id) = &n.users[0];
    let b = &n.users[1].0;

    n.http.dev_priority_op(deposit(2, 7, b.address, USDC, USDC, 5_000_000)).await.unwrap();
    let on2 = n.http.pending_priority_ops(2).await.unwrap();
    let on1 = n.http.pending_priority_ops(1).await.unwrap();
    assert_eq!(on2.len(), 1, "{on2:?}");
    assert_eq!(on1, []);
    let e = n.http.pending_priority_ops(3).await;
    assert!(format!("{e:?}").contains("no chain 3"), "{e:?}");

    // A subscriber to a queued tx sees it queued, then pending, then included.
    let ws = WsClientBuilder::default().build(format!("ws://{}", n.node.rpc_addr)).await.unwrap();
    let h2 = send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 2)).await;
    let mut sub: Subscription<TxRecord> = ws.subscribe_tx_status(h2.clone()).await.unwrap();
    assert_eq!(sub.next().await.unwrap().unwrap().status, TxStatus::Queued);
    send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 1)).await;
    assert_eq!(sub.next().await.unwrap().unwrap().status, TxStatus::Pending);
    let block = n.http.seal_block(ADMIN.into()).await.unwrap().expect("a block");
    let included = sub.next().await.unwrap().unwrap();
    assert_eq!(included.status, TxStatus::Included { block });
    assert_eq!(n.http.pending_priority_ops(2).await.unwrap(), []);

    // Metrics: counters reflect what happened.
    let addr = n.node.metrics_addr.expect("metrics configured");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing in {text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("zkl_txs_accepted_total"), 4.0); // two ChangePubKeys, two transfers
    assert_eq!(value("zkl_txs_queued_total"), 1.0);
    assert_eq!(value("zkl_priority_ops_total"), 3.0);
    assert_eq!(value("zkl_last_block"), f64::from(block));
    assert_eq!(value("zkl_queue_len"), 0.0);
}

/// The account feed names the accounts each executed tx and priority op changed, in order, and
/// the matcher of an order matching; a rewind tells its subscribers that any account may have
/// changed. A tx the node refuses changes nothing and is not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_feed_names_what_each_tx_changed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FeePolicy::default());
    c.matchers = vec![2];
    let n = net_from(c).await;
    let (a, a_id) = &n.users[0];
    let (b, b_id) = &n.users[1];
    assert_eq!(*a_id, 2, "user 0 is the matcher");
    let ws = WsClientBuilder::default().build(format!("ws://{}", n.node.rpc_addr)).await.unwrap();
    let mut sub: Subscription<AccountChanges> = ws.subscribe_account_changes().await.unwrap();
    let mut next = async || tokio::time::timeout(std::time::Duration::from_secs(5), sub.next()).await.unwrap();
    let changed =
        |matcher, accounts: Vec<u32>| AccountChanges::Changed { changes: vec![AccountChange { matcher, accounts }] };

    send(&n.http, a.transfer(*a_id, b.address, ETH, ONE, 0, 1)).await;
    assert_eq!(next().await.unwrap().unwrap(), changed(None, vec![*a_id, *b_id]));
    rejected(&n.http, a.transfer(*a_id, b.address, ETH, 100 * ONE, 0, 2)).await;
    n.http.dev_priority_op(deposit(2, 1, b.address, USDC, USDC, 5_000_000_000)).await.unwrap();
    assert_eq!(next().await.unwrap().unwrap(), changed(None, vec![*b_id]));
    let ask = a.order(*a_id, 0, 0, ETH, USDC, ONE, 1000 * ONE, true);
    let bid = b.order(*b_id, 0, 0, ETH, USDC, ONE, 1000 * ONE, false);
    let fill = matching(a, *a_id, ask, bid, ONE, (0, 0));
    assert!(matches!(n.http.send_batch(vec![fill]).await.unwrap()[0], zkl_rpc_api::BatchResult::Accepted { .. }));
    assert_eq!(next().await.unwrap().unwrap(), changed(Some(*a_id), vec![*a_id, *b_id]));

    let block = n.http.seal_block(ADMIN.into()).await.unwrap().expect("a block");
    let req = RevertRequest { from_block: Some(block), drop: None };
    n.http.revert_blocks(ADMIN.into(), Some(req)).await.unwrap();
    assert!(matches!(next().await.unwrap().unwrap(), AccountChanges::Reset { .. }));
}
