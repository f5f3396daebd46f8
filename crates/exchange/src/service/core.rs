//! The exchange's one engine thread: it owns the engine and its store and serves requests in
//! batches: it reads the node for them, logs every change before it answers or sends a match,
//! hands the batch's matches to the node and waits for the node's answers before it takes the
//! next batch, and publishes market data. Requests reach it over a bounded channel; the API's
//! handlers await the reply.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use tokio::runtime::Handle;
use tokio::sync::{broadcast, oneshot};
use zkl_crypto::{PrivateKey, PubKeyHash};
use zkl_rpc_api::exchange::{
    AccountUpdate, CancelRequest, DepthUpdate, FillResult, Level, OrderId, OrderInfo, OrderRequest, OrderStatus,
    PlaceResult, Side, Trade, codes,
};
use zkl_rpc_api::{AccountInfo, BatchResult, TxStatus};
use zkl_types::{AccountId, Nonce, OrderMatching, SignedTx, SlotId, SubAccountId, TokenId, Tx, tx_hash};

use super::node::NodeClient;
use crate::engine::{Accepted, Engine, EngineError, Event, LiveOrder, NodeView, Unavailable};
use crate::store::Store;

/// Requests served together at most (one store commit and one node round trip for all).
pub const BATCH: usize = 512;

/// Trades kept per pair for `exchange_trades` (the indexer keeps the whole history).
pub const TRADES_KEPT: usize = 10_000;

/// A failed request: an API error code and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i32,
    pub message: String,
}

impl ApiError {
    fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match e {
            EngineError::UnknownOrder(_) | EngineError::UnknownPair { .. } => codes::NOT_FOUND,
            EngineError::Node(_) => codes::UNAVAILABLE,
            _ => codes::REJECTED,
        };
        Self::new(code, e.to_string())
    }
}

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// What the market-data subscribers receive.
#[derive(Debug, Clone)]
pub enum Market {
    Depth(DepthUpdate),
    Trade(Trade),
    Account(AccountId, AccountUpdate),
}

pub enum Command {
    Place(Box<OrderRequest>, Reply<PlaceResult>),
    Cancel(CancelRequest, Reply<OrderInfo>),
    Orders(AccountId, Reply<Vec<OrderInfo>>),
    Book {
        base: TokenId,
        quote: TokenId,
        levels: usize,
        reply: Reply<DepthUpdate>,
    },
    Trades {
        base: TokenId,
        quote: TokenId,
        limit: usize,
        before: Option<u64>,
        reply: Reply<Vec<Trade>>,
    },
    /// A depth snapshot and the market feed from right after it.
    SubscribeDepth {
        base: TokenId,
        quote: TokenId,
        reply: Reply<(DepthUpdate, broadcast::Receiver<Market>)>,
    },
}

/// The handlers' side of the engine thread.
#[derive(Clone)]
pub struct CoreHandle {
    pub commands: SyncSender<Command>,
    pub market: broadcast::Sender<Market>,
}

impl CoreHandle {
    /// Sends a command and waits for its reply; refused at once when the queue is full.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        match self.commands.try_send(make(tx)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(ApiError::new(codes::UNAVAILABLE, "the exchange is busy; retry")),
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::new(codes::UNAVAILABLE, "the exchange stopped"));
            }
        }
        rx.await.unwrap_or_else(|_| Err(ApiError::new(codes::UNAVAILABLE, "the exchange stopped")))
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn hash_hex(h: [u8; 32]) -> String {
    format!("0x{}", hex::encode(h))
}

/// The hash of the `OrderMatching` tx of `m` (the matcher's signature is not part of it).
pub fn matching_hash(m: &OrderMatching) -> String {
    hash_hex(tx_hash(&Tx::OrderMatching(Box::new(m.clone())).message()))
}

/// The `OrderMatching` tx of `m` signed by `key`, and its hash: its message computed once (three
/// Poseidon hashes) for both.
fn signed_matching(m: &OrderMatching, key: &PrivateKey) -> (SignedTx, String) {
    let tx = Tx::OrderMatching(Box::new(m.clone()));
    let message = tx.message();
    let signature = key.sign(&message);
    (SignedTx { tx, signature }, hash_hex(tx_hash(&message)))
}

/// Sleeps `wait`, then doubles it up to 5 s (retries of the node).
fn back_off(wait: &mut Duration) {
    std::thread::sleep(*wait);
    *wait = (*wait * 2).min(Duration::from_secs(5));
}

/// The node's 20-byte key hash from its `0x` hex; `None` for the zero hash (no key yet).
fn parse_pkh(text: &str) -> Option<PubKeyHash> {
    let bytes: [u8; 20] = hex::decode(text.trim_start_matches("0x")).ok()?.try_into().ok()?;
    (bytes != [0; 20]).then_some(PubKeyHash(bytes))
}

/// The node read through its API, each account at most once per batch of requests, and the
/// matches of the batch not yet answered by the node laid over it: their slots as they will be,
/// and what their traders give taken off their balances (what they receive is not counted until
/// the node has it, so an admission never relies on a fill that may be refused).
struct Fetched<'a, N> {
    node: &'a N,
    rt: &'a Handle,
    cache: RefCell<HashMap<AccountId, Option<AccountInfo>>>,
    gives: HashMap<(AccountId, SubAccountId, TokenId), u128>,
    slots: HashMap<(AccountId, SubAccountId, SlotId), (Nonce, u128)>,
}

impl<'a, N: NodeClient> Fetched<'a, N> {
    fn new(node: &'a N, rt: &'a Handle) -> Self {
        Self { node, rt, cache: RefCell::new(HashMap::new()), gives: HashMap::new(), slots: HashMap::new() }
    }

    fn with<T>(&self, id: AccountId, f: impl FnOnce(Option<&AccountInfo>) -> T) -> Result<T, Unavailable> {
        if !self.cache.borrow().contains_key(&id) {
            let info = self.rt.block_on(self.node.account(id))?;
            self.cache.borrow_mut().insert(id, info);
        }
        Ok(f(self.cache.borrow()[&id].as_ref()))
    }

    /// Reads `ids` from the node concurrently (a failed read is left to the request that needs
    /// it, which then fails alone).
    fn prefetch(&self, ids: &BTreeSet<AccountId>) {
        let reads = ids.iter().map(|&id| async move { (id, self.node.account(id).await) });
        for (id, read) in self.rt.block_on(futures_util::future::join_all(reads)) {
            if let Ok(info) = read {
                self.cache.borrow_mut().insert(id, info);
            }
        }
    }

    /// Lays `m` (handed to the node, not yet answered) over the node's state.
    fn in_flight(&mut self, m: &OrderMatching) {
        for (order, residue_before) in [(&m.maker, m.maker_residue_before), (&m.taker, m.taker_residue_before)] {
            let o = &order.order;
            let left = if residue_before == 0 { o.amount } else { residue_before };
            let after = left.saturating_sub(m.base_fill);
            let slot = if after == 0 { (o.nonce.saturating_add(1), 0) } else { (o.nonce, after) };
            self.slots.insert((o.account, o.sub, o.slot), slot);
            let (token, amount) = if o.is_sell { (o.base, m.base_fill) } else { (o.quote, m.quote_fill) };
            *self.gives.entry((o.account, o.sub, token)).or_default() += amount;
        }
    }
}

impl<N: NodeClient> NodeView for Fetched<'_, N> {
    fn pubkey_hash(&self, account: AccountId) -> Result<Option<PubKeyHash>, Unavailable> {
        self.with(account, |a| a.and_then(|a| parse_pkh(&a.pubkey_hash)))
    }
    fn balance(&self, account: AccountId, sub: SubAccountId, token: TokenId) -> Result<u128, Unavailable> {
        let given = self.gives.get(&(account, sub, token)).copied().unwrap_or(0);
        self.with(account, |a| a.map_or(0, |a| a.balance(sub, token)).saturating_sub(given))
    }
    fn slot(&self, account: AccountId, sub: SubAccountId, slot: SlotId) -> Result<(Nonce, u128), Unavailable> {
        if let Some(&s) = self.slots.get(&(account, sub, slot)) {
            return Ok(s);
        }
        self.with(account, |a| {
            a.map_or((0, 0), |a| {
                let s = a.order_slot(sub, slot);
                (s.nonce, s.residue)
            })
        })
    }
}

/// An order as the API shows it.
fn info(id: OrderId, live: &LiveOrder, status: OrderStatus, reason: Option<String>) -> OrderInfo {
    let o = &live.order.order;
    OrderInfo {
        id,
        account: o.account,
        sub: o.sub,
        slot: o.slot,
        nonce: o.nonce,
        base: o.base,
        quote: o.quote,
        side: Side::of(o.is_sell),
        price: o.price,
        amount: o.amount,
        left: live.left,
        maker_fee_bps: o.maker_fee_bps,
        taker_fee_bps: o.taker_fee_bps,
        tif: live.tif,
        status,
        reason,
    }
}

/// The orders whose fills the node refused, and from the first refusal on every order of a
/// later fill of the placement (the refusal broke the residues those fills claim), with why:
/// the exchange no longer knows what their slots hold, so it removes them (their owners place
/// them again: the same signed order fills what its slot really has left).
fn broken(acc: &Accepted, outcomes: &Outcomes) -> BTreeMap<OrderId, String> {
    let mut out = BTreeMap::new();
    let Some(first) = outcomes.iter().position(Option::is_some) else { return out };
    for (j, fill) in acc.placement.fills.iter().enumerate().skip(first) {
        let why = match &outcomes[j] {
            Some(reason) => format!("the node refused a fill of it: {reason}"),
            None => "the node refused an earlier fill of the same order".to_string(),
        };
        for id in [fill.maker, acc.id] {
            out.entry(id).or_insert_with(|| why.clone());
        }
    }
    out
}

/// The engine thread's state.
pub struct Core<N> {
    engine: Engine,
    store: Store,
    node: N,
    rt: Handle,
    key: PrivateKey,
    market: broadcast::Sender<Market>,
    depth_seq: HashMap<(TokenId, TokenId), u64>,
    trades: HashMap<(TokenId, TokenId), VecDeque<Trade>>,
    trade_seq: u64,
    /// The store failed: the engine may be ahead of it, so the thread stops.
    failed: bool,
}

/// How a placement's matches fared at the node: `None` accepted, `Some(reason)` refused.
type Outcomes = Vec<Option<String>>;

/// What settling one placement left for its answer: how the node answered its matches, their
/// tx hashes, the orders the node's refusals broke ([`broken`]) and those of them the engine
/// removed (as they were).
struct Settled {
    outcomes: Outcomes,
    hashes: Vec<String>,
    broken: BTreeMap<OrderId, String>,
    gone: Vec<(OrderId, LiveOrder, String)>,
}

impl<N: NodeClient> Core<N> {
    /// The engine rebuilt from the store; the matches of a placement that were in flight when
    /// the service stopped are resolved with the node (accepted ones kept, lost ones sent again,
    /// refused ones handled) before anything else.
    pub fn open(engine: Engine, store: Store, node: N, rt: Handle, key: PrivateKey) -> Result<Self, String> {
        let (market, _) = broadcast::channel(65_536);
        let mut core = Self {
            engine,
            store,
            node,
            rt,
            key,
            market,
            depth_seq: HashMap::new(),
            trades: HashMap::new(),
            trade_seq: 0,
            failed: false,
        };
        let events = core.store.events().map_err(|e| e.to_string())?;
        let mut in_flight: BTreeMap<OrderId, Accepted> = BTreeMap::new();
        for (seq, event) in events.iter().enumerate() {
            let replayed =
                core.engine.replay(event).map_err(|e| format!("exchange store: event {seq} does not replay: {e}"))?;
            match (event, replayed) {
                (Event::Submitted { .. }, Some(acc)) if !acc.matches.is_empty() => {
                    in_flight.insert(acc.id, acc);
                }
                (Event::Settled { order, refused }, _) => {
                    if let Some(acc) = in_flight.remove(order) {
                        let outcomes: Outcomes =
                            (0..acc.matches.len()).map(|i| refused.contains(&(i as u32)).then(String::new)).collect();
                        let hashes: Vec<String> = acc.matches.iter().map(matching_hash).collect();
                        core.record_trades(&acc, &outcomes, &hashes);
                    }
                }
                _ => {}
            }
        }
        if !in_flight.is_empty() {
            let placements: Vec<Accepted> = in_flight.into_values().collect();
            tracing::info!(placements = placements.len(), "resolving matches in flight at the last stop");
            core.settle_placements(placements, true).map_err(|e| e.message)?;
        }
        Ok(core)
    }

    pub fn market(&self) -> broadcast::Sender<Market> {
        self.market.clone()
    }

    /// Serves commands until every sender is gone, in batches: the requests waiting when the
    /// thread is free (at most [`BATCH`]) are admitted in arrival order, their events logged in
    /// one commit, all their matches handed to the node at once, the node's answers logged in a
    /// second commit, and only then answered.
    pub fn run(mut self, commands: Receiver<Command>) {
        while let Ok(first) = commands.recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match commands.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.serve(batch);
            if self.failed {
                tracing::error!("the exchange's store failed; the exchange stops (restart it to replay its store)");
                return;
            }
        }
    }

    fn serve(&mut self, batch: Vec<Command>) {
        let mut view = Fetched::new(&self.node, &self.rt);
        // Before the engine's sequential work: the orders' signatures in parallel, and the
        // accounts of their traders read from the node concurrently.
        let signed: Vec<bool> = batch
            .par_iter()
            .map(|c| match c {
                Command::Place(req, _) => req.signature_ok(),
                _ => true,
            })
            .collect();
        let traders: BTreeSet<AccountId> = batch
            .iter()
            .filter_map(|c| match c {
                Command::Place(req, _) => Some(req.order.order.account),
                _ => None,
            })
            .collect();
        view.prefetch(&traders);
        let mut events = Vec::new();
        let mut placed: Vec<(Accepted, Reply<PlaceResult>)> = Vec::new();
        let mut cancelled: Vec<(OrderInfo, Reply<OrderInfo>)> = Vec::new();
        for (command, signed) in batch.into_iter().zip(signed) {
            match command {
                Command::Place(_, reply) if !signed => {
                    let _ = reply.send(Err(EngineError::BadSignature.into()));
                }
                Command::Place(req, reply) => match self.engine.submit_checked(*req, &view) {
                    Ok(mut acc) => {
                        acc.at_ms = now_ms();
                        events.push(acc.event());
                        for m in &acc.matches {
                            view.in_flight(m);
                        }
                        placed.push((acc, reply));
                    }
                    // Refused: nothing changed.
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                },
                Command::Cancel(req, reply) => match Self::cancel(&mut self.engine, &view, &req) {
                    Ok(info) => {
                        events.push(Event::Cancelled { id: req.id });
                        cancelled.push((info, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Command::Orders(account, reply) => {
                    let orders = self
                        .engine
                        .orders_of(account)
                        .into_iter()
                        .map(|(id, l)| info(id, l, OrderStatus::Open, None))
                        .collect();
                    let _ = reply.send(Ok(orders));
                }
                Command::Book { base, quote, levels, reply } => {
                    let _ = reply.send(self.snapshot(base, quote, levels));
                }
                Command::Trades { base, quote, limit, before, reply } => {
                    let r = self.pair_exists(base, quote).map(|()| {
                        self.trades
                            .get(&(base, quote))
                            .map(|t| {
                                t.iter()
                                    .rev()
                                    .filter(|t| before.is_none_or(|b| t.seq < b))
                                    .take(limit)
                                    .cloned()
                                    .collect()
                            })
                            .unwrap_or_default()
                    });
                    let _ = reply.send(r);
                }
                Command::SubscribeDepth { base, quote, reply } => {
                    let r = self.snapshot(base, quote, usize::MAX).map(|s| (s, self.market.subscribe()));
                    let _ = reply.send(r);
                }
            }
        }
        drop(view);
        // Durable before anyone hears of it or any match leaves.
        if !events.is_empty()
            && let Err(e) = self.log(&events)
        {
            for (_, reply) in placed {
                let _ = reply.send(Err(e.clone()));
            }
            for (_, reply) in cancelled {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        for (info, reply) in cancelled {
            let o = info.order();
            self.depth_changed((o.base, o.quote), &BTreeSet::from([(o.is_sell, o.price)]));
            let _ = self.market.send(Market::Account(o.account, AccountUpdate::Order(info.clone())));
            let _ = reply.send(Ok(info));
        }
        let (placements, replies): (Vec<Accepted>, Vec<Reply<PlaceResult>>) = placed.into_iter().unzip();
        match self.settle_placements(placements, false) {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn pair_exists(&self, base: TokenId, quote: TokenId) -> Result<(), ApiError> {
        self.engine.book(base, quote).map(|_| ()).ok_or_else(|| EngineError::UnknownPair { base, quote }.into())
    }

    fn snapshot(&self, base: TokenId, quote: TokenId, levels: usize) -> Result<DepthUpdate, ApiError> {
        let book = self.engine.book(base, quote).ok_or(EngineError::UnknownPair { base, quote })?;
        let depth = book.depth(levels);
        let seq = self.depth_seq.get(&(base, quote)).copied().unwrap_or(0);
        Ok(DepthUpdate { base, quote, seq, snapshot: true, bids: depth.bids, asks: depth.asks })
    }

    /// Appends `events` in one commit; a failure stops the thread after this request.
    fn log(&mut self, events: &[Event]) -> Result<(), ApiError> {
        self.store.append_all(events).map_err(|e| {
            self.failed = true;
            ApiError::new(codes::UNAVAILABLE, e.to_string())
        })
    }

    /// Hands the matches of `placements` (logged) to the node and waits for its answers (looking
    /// each up first when `unsure`: after a restart), removes the orders refused fills broke,
    /// logs the answers and the removals in one commit, and publishes what changed; the
    /// placements' results, in order.
    fn settle_placements(&mut self, placements: Vec<Accepted>, unsure: bool) -> Result<Vec<PlaceResult>, ApiError> {
        let (txs, hashes): (Vec<SignedTx>, Vec<String>) =
            placements.iter().flat_map(|a| &a.matches).map(|m| signed_matching(m, &self.key)).unzip();
        let outcomes = if txs.is_empty() { Vec::new() } else { self.settle(&txs, &hashes, unsure) };
        let (mut outcomes, mut hashes) = (outcomes.into_iter(), hashes.into_iter());
        let mut events = Vec::new();
        let mut settled = Vec::new();
        for acc in &placements {
            let outcomes: Outcomes = outcomes.by_ref().take(acc.matches.len()).collect();
            let hashes: Vec<String> = hashes.by_ref().take(acc.matches.len()).collect();
            let broken = broken(acc, &outcomes);
            let mut gone: Vec<(OrderId, LiveOrder, String)> = Vec::new();
            for (&id, why) in &broken {
                if let Some(live) = self.engine.remove(id) {
                    gone.push((id, live, why.clone()));
                }
            }
            if !acc.matches.is_empty() {
                let refused = outcomes.iter().enumerate().filter(|(_, o)| o.is_some()).map(|(i, _)| i as u32).collect();
                events.push(Event::Settled { order: acc.id, refused });
            }
            events.extend(gone.iter().map(|(id, _, _)| Event::Cancelled { id: *id }));
            settled.push(Settled { outcomes, hashes, broken, gone });
        }
        if !events.is_empty() {
            self.log(&events)?;
        }
        Ok(placements.iter().zip(&settled).map(|(acc, settled)| self.publish(acc, settled)).collect())
    }

    /// Hands `txs` (with their `hashes`) to the node, in order, until it has judged each: a tx whose fate is
    /// unknown (`unsure`: it may have been sent before a restart; or the node could not be
    /// reached) is looked up before it is sent (again), so none is sent twice and none is lost;
    /// while the node takes no work (settlement halted) the matches wait, they are not refused.
    fn settle(&self, txs: &[SignedTx], hashes: &[String], mut unsure: bool) -> Outcomes {
        let mut outcomes: Outcomes = Vec::with_capacity(txs.len());
        let mut wait = Duration::from_millis(100);
        while outcomes.len() < txs.len() {
            let next = outcomes.len();
            if unsure {
                match self.rt.block_on(self.node.status(&hashes[next])) {
                    Ok(Some(TxStatus::Rejected { reason })) => {
                        outcomes.push(Some(reason));
                        continue;
                    }
                    Ok(Some(_)) => {
                        outcomes.push(None);
                        continue;
                    }
                    Ok(None) => unsure = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "the node cannot be reached; retrying");
                        back_off(&mut wait);
                        continue;
                    }
                }
            }
            let batch = txs[next..txs.len().min(next + 1000)].to_vec();
            match self.rt.block_on(self.node.send_batch(batch)) {
                Ok(results) => {
                    wait = Duration::from_millis(100);
                    for r in results {
                        match r {
                            BatchResult::Accepted { .. } => outcomes.push(None),
                            BatchResult::Rejected { error, retry: false } => outcomes.push(Some(error)),
                            // Not judged (settlement halted, the sequencer stopped): the rest
                            // waits for the node, in order.
                            BatchResult::Rejected { error, retry: true } => {
                                tracing::warn!(%error, "the node takes no work now; waiting to send the matches");
                                back_off(&mut wait);
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sending matches failed; looking them up");
                    unsure = true;
                    back_off(&mut wait);
                }
            }
        }
        outcomes
    }

    /// Records the accepted fills of `acc` (their txs' `hashes`) as trades; returns them.
    fn record_trades(&mut self, acc: &Accepted, outcomes: &Outcomes, hashes: &[String]) -> Vec<Trade> {
        let o = &acc.request.order.order;
        let mut out = Vec::new();
        for (((fill, m), outcome), hash) in acc.placement.fills.iter().zip(&acc.matches).zip(outcomes).zip(hashes) {
            if outcome.is_some() {
                continue;
            }
            self.trade_seq += 1;
            let trade = Trade {
                seq: self.trade_seq,
                base: o.base,
                quote: o.quote,
                price: fill.price,
                base_amount: fill.base,
                quote_amount: fill.quote,
                taker_side: Side::of(o.is_sell),
                maker_order: fill.maker,
                taker_order: acc.id,
                maker_account: m.maker.order.account,
                taker_account: o.account,
                at_ms: acc.at_ms,
                tx_hash: hash.clone(),
            };
            let kept = self.trades.entry((o.base, o.quote)).or_default();
            if kept.len() == TRADES_KEPT {
                kept.pop_front();
            }
            kept.push_back(trade.clone());
            out.push(trade);
        }
        out
    }

    /// The placement's answer, and its market data: trades, the changed price levels, and each
    /// account's order changes and fills.
    fn publish(&mut self, acc: &Accepted, settled: &Settled) -> PlaceResult {
        let Settled { outcomes, hashes, broken, gone: removed } = settled;
        let req = &acc.request;
        let o = &req.order.order;
        let pair = (o.base, o.quote);
        let trades = self.record_trades(acc, outcomes, hashes);
        let fills: Vec<FillResult> = acc
            .placement
            .fills
            .iter()
            .zip(hashes)
            .zip(outcomes)
            .map(|((f, hash), outcome)| FillResult {
                maker_order: f.maker,
                price: f.price,
                base_amount: f.base,
                quote_amount: f.quote,
                tx_hash: hash.clone(),
                refused: outcome.clone(),
            })
            .collect();

        // The taker as it stands now.
        let taker_removed = removed.iter().find(|(id, _, _)| *id == acc.id);
        let taker_live = LiveOrder { order: req.order.clone(), fresh: acc.fresh, left: 0, tif: req.tif };
        let order = match (self.engine.order(acc.id), taker_removed) {
            (Some(live), _) => info(acc.id, live, OrderStatus::Open, None),
            (None, Some((_, live, why))) => info(acc.id, live, OrderStatus::Removed, Some(why.clone())),
            (None, None) if broken.contains_key(&acc.id) => {
                info(acc.id, &taker_live, OrderStatus::Removed, broken.get(&acc.id).cloned())
            }
            (None, None) if acc.placement.expired > 0 => {
                info(acc.id, &LiveOrder { left: acc.placement.expired, ..taker_live }, OrderStatus::Expired, None)
            }
            (None, None) => info(acc.id, &taker_live, OrderStatus::Filled, None),
        };

        // The resting orders that changed, as they stand now.
        let mut affected: Vec<OrderInfo> = Vec::new();
        let reason_before: HashMap<OrderId, &String> = acc.removed.iter().map(|(id, why)| (*id, why)).collect();
        for (id, live) in &acc.closed {
            let (status, reason) = if let Some(why) = reason_before.get(id) {
                (OrderStatus::Removed, Some((*why).clone()))
            } else if acc.placement.self_trade_cancelled.contains(id) {
                (OrderStatus::Cancelled, Some("self-trade prevention: a newer order of the same trader met it".into()))
            } else if let Some(why) = broken.get(id) {
                (OrderStatus::Removed, Some(why.clone()))
            } else {
                (OrderStatus::Filled, None)
            };
            affected.push(info(*id, live, status, reason));
        }
        let listed: BTreeSet<OrderId> = acc.closed.iter().map(|(id, _)| *id).chain([acc.id]).collect();
        for (id, live, why) in removed.iter().filter(|(id, _, _)| !listed.contains(id)) {
            affected.push(info(*id, live, OrderStatus::Removed, Some(why.clone())));
        }
        let makers: BTreeSet<OrderId> = acc.placement.fills.iter().map(|f| f.maker).collect();
        for id in makers.iter().filter(|id| !listed.contains(id) && !removed.iter().any(|(r, _, _)| r == *id)) {
            if let Some(live) = self.engine.order(*id) {
                affected.push(info(*id, live, OrderStatus::Open, None));
            }
        }

        // Market data: trades, changed levels, account updates.
        let market = self.market.clone();
        let send = |m: Market| {
            let _ = market.send(m);
        };
        for t in &trades {
            send(Market::Trade(t.clone()));
            send(Market::Account(t.maker_account, AccountUpdate::Fill(t.clone())));
            send(Market::Account(t.taker_account, AccountUpdate::Fill(t.clone())));
        }
        let mut touched: BTreeSet<(bool, u128)> = BTreeSet::new();
        touched.extend(acc.placement.fills.iter().map(|f| (f.maker_side == Side::Sell, f.price)));
        touched.extend(acc.closed.iter().map(|(_, l)| (l.order.order.is_sell, l.order.order.price)));
        touched.extend(removed.iter().map(|(_, l, _)| (l.order.order.is_sell, l.order.order.price)));
        if acc.placement.rested > 0 {
            touched.insert((o.is_sell, o.price));
        }
        self.depth_changed(pair, &touched);
        for info in affected.iter().chain([&order]) {
            send(Market::Account(info.account, AccountUpdate::Order(info.clone())));
        }
        PlaceResult { order, fills, affected }
    }

    /// Publishes the levels `touched` (is_sell, price) of `pair` as they are now.
    fn depth_changed(&mut self, pair: (TokenId, TokenId), touched: &BTreeSet<(bool, u128)>) {
        if touched.is_empty() {
            return;
        }
        let Some(book) = self.engine.book(pair.0, pair.1) else { return };
        let level = |sell: bool, price: u128| -> Level { book.level(Side::of(sell), price) };
        let bids = touched.iter().rev().filter(|(s, _)| !s).map(|&(s, p)| level(s, p)).collect();
        let asks = touched.iter().filter(|(s, _)| *s).map(|&(s, p)| level(s, p)).collect();
        let seq = self.depth_seq.entry(pair).or_default();
        *seq += 1;
        let update = DepthUpdate { base: pair.0, quote: pair.1, seq: *seq, snapshot: false, bids, asks };
        let _ = self.market.send(Market::Depth(update));
    }

    /// Checks a signed cancel against the node's key for the owner and cancels the order (the
    /// caller logs it).
    fn cancel(engine: &mut Engine, view: &impl NodeView, req: &CancelRequest) -> Result<OrderInfo, ApiError> {
        let live = engine.order(req.id).ok_or(EngineError::UnknownOrder(req.id))?;
        let o = &live.order.order;
        let pkh = view.pubkey_hash(o.account).map_err(EngineError::from)?;
        if pkh != Some(req.pubkey.pubkey_hash()) {
            return Err(ApiError::new(
                codes::REJECTED,
                format!("the cancel is not signed by account {}'s L2 key", o.account),
            ));
        }
        if req.pubkey.verify(&o.cancel_message(req.id), &req.signature).is_err() {
            return Err(ApiError::new(codes::REJECTED, "bad cancel signature"));
        }
        let live = engine.cancel(o.account, req.id)?;
        Ok(info(req.id, &live, OrderStatus::Cancelled, None))
    }
}
