//! The exchange's one engine thread: it owns the engine and its store and serves requests in
//! batches: it reads the node for them, logs every change before it answers or sends a match,
//! hands each batch's matches to the settler thread, which sends them to the node in order, and
//! takes the next batch while the node judges them (the matches in flight laid over what the node
//! says); the node's answers come back as a command, are logged, and only then answered and
//! published. Requests reach it over a bounded channel; the API's handlers await the reply.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use tokio::runtime::Handle;
use tokio::sync::{broadcast, oneshot};
use zkl_crypto::remembered::Remembered;
use zkl_crypto::{Fr, PrivateKey, PubKeyHash};
use zkl_rpc_api::exchange::{
    AccountUpdate, CancelRequest, DepthUpdate, FillResult, Level, OrderId, OrderInfo, OrderRequest, OrderStatus,
    PlaceResult, Side, Trade, codes,
};
use zkl_rpc_api::{AccountInfo, BatchResult, TxStatus};
use zkl_types::{AccountId, Nonce, OrderMatching, SignedTx, SlotId, SubAccountId, TokenId, Tx, tx_hash};

use super::feed::Feed;
use super::node::NodeClient;
use crate::engine::{Accepted, Engine, EngineError, Event, LiveOrder, NodeView, Unavailable};
use crate::store::Store;

/// Requests served together at most (one store commit and one node round trip for all).
pub const BATCH: usize = 512;

/// Trades kept per pair for `exchange_trades` (the indexer keeps the whole history).
pub const TRADES_KEPT: usize = 10_000;

/// Matches handed to the node and not answered yet beyond which new orders are refused as
/// "busy" (the node takes no work, e.g. while settlement is halted).
pub const MAX_IN_FLIGHT: usize = 10_000;

/// How long a stopping engine waits for the node's answers to the matches in flight (those it
/// does not get are looked up on the node at the next start).
const STOP_WAIT: Duration = Duration::from_secs(10);

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
    /// A placement whose signature the API checked; answered at its match, or once the node
    /// has judged its fills.
    Place(Box<Placement>, Reply<PlaceResult>),
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
    /// The node's answers to the matches of job `job` (from the settler thread), and their tx
    /// hashes.
    Judged {
        job: u64,
        outcomes: Outcomes,
        hashes: Vec<String>,
    },
    /// Answer what is in flight, then end the thread (the API is closed).
    Stop,
}

/// An order whose signature the API has checked, with its message (`Order::message`), and
/// whether its placement waits for the node's answers to its fills.
pub struct Placement {
    pub request: OrderRequest,
    pub message: Fr,
    pub wait: bool,
}

impl Placement {
    /// The placement of `request` if `request.pubkey` signed it (whose key it is, the engine
    /// checks against the node).
    pub fn checked(request: OrderRequest, wait: bool) -> Result<Self, ApiError> {
        let message = request.signed_message().ok_or(EngineError::BadSignature)?;
        Ok(Self { request, message, wait })
    }
}

/// Order messages the engine keeps for the matches of resting orders (what it forgets it
/// computes again).
const MESSAGES_KEPT: usize = 1 << 16;

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
    hash_hex(tx_hash(&m.message()))
}

/// The `OrderMatching` tx of `m` signed by `key` over its `message`.
fn signed_matching(m: &OrderMatching, message: &Fr, key: &PrivateKey) -> SignedTx {
    SignedTx { tx: Tx::OrderMatching(Box::new(m.clone())), signature: key.sign(message) }
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

/// One order's side of a match handed to the node and not answered yet.
#[derive(Debug, Clone, Copy)]
struct Leg {
    job: u64,
    /// The order slot as the node holds it just before the fill, and as the fill leaves it.
    before: (Nonce, u128),
    after: (Nonce, u128),
    /// What the trader gives in the fill.
    token: TokenId,
    give: u128,
}

/// The matches handed to the node, per trader and order slot in the order they were sent, laid
/// over what the node says: each slot as the fills will leave it, and what each trader gives
/// taken off its balance (what it receives is not counted until a read of the node shows it, so
/// an admission never relies on a fill that may be refused). A read of the node may already
/// show some of them executed: a slot's fills form a chain of states, and the slot the node
/// shows is the `before` of the first fill it has not executed (all count as not executed when
/// the node shows none of the chain's states). The fills the node accepted stay until their
/// trader's account is read again ([`InFlight::forget`]): the account as last read (kept in the
/// [`Mirror`]) may be older than them.
#[derive(Debug, Default)]
struct InFlight {
    legs: HashMap<AccountId, HashMap<(SubAccountId, SlotId), VecDeque<Leg>>>,
    /// Matches not answered yet.
    matches: usize,
    /// The last job the node answered.
    judged: Option<u64>,
}

impl InFlight {
    fn add(&mut self, job: u64, m: &OrderMatching) {
        for (order, residue_before) in [(&m.maker, m.maker_residue_before), (&m.taker, m.taker_residue_before)] {
            let o = &order.order;
            let left = if residue_before == 0 { o.amount } else { residue_before };
            let rest = left.saturating_sub(m.base_fill);
            let after = if rest == 0 { (o.nonce.saturating_add(1), 0) } else { (o.nonce, rest) };
            let (token, give) = if o.is_sell { (o.base, m.base_fill) } else { (o.quote, m.quote_fill) };
            let leg = Leg { job, before: (o.nonce, residue_before), after, token, give };
            self.legs.entry(o.account).or_default().entry((o.sub, o.slot)).or_default().push_back(leg);
        }
        self.matches += 1;
    }

    /// The node judged the `matches` of job `job`: the oldest in flight (jobs are judged in order).
    fn judged(&mut self, job: u64, matches: usize) {
        self.judged = Some(job);
        self.matches = self.matches.saturating_sub(matches);
    }

    /// Drops `account`'s fills the node has judged: a read of the account made from now on
    /// shows those it accepted.
    fn forget(&mut self, account: AccountId) {
        let Some(judged) = self.judged else { return };
        let Some(slots) = self.legs.get_mut(&account) else { return };
        slots.retain(|_, chain| {
            while chain.front().is_some_and(|l| l.job <= judged) {
                chain.pop_front();
            }
            !chain.is_empty()
        });
        if slots.is_empty() {
            self.legs.remove(&account);
        }
    }

    /// [`Self::forget`] for every account.
    fn forget_all(&mut self) {
        let accounts: Vec<AccountId> = self.legs.keys().copied().collect();
        for account in accounts {
            self.forget(account);
        }
    }

    /// How many of `account`'s fills the node has judged and are still kept.
    fn judged_legs(&self, account: AccountId) -> usize {
        let Some(judged) = self.judged else { return 0 };
        self.legs.get(&account).map_or(0, |slots| slots.values().flatten().filter(|l| l.job <= judged).count())
    }

    /// The slot as the fills in flight leave it; `None` if none is in flight.
    fn slot(&self, account: AccountId, sub: SubAccountId, slot: SlotId) -> Option<(Nonce, u128)> {
        self.legs.get(&account)?.get(&(sub, slot))?.back().map(|l| l.after)
    }

    /// What the fills in flight that `node` (the account as read) has not executed yet take
    /// from the trader's `token`.
    fn giving(&self, account: AccountId, sub: SubAccountId, token: TokenId, node: Option<&AccountInfo>) -> u128 {
        let Some(slots) = self.legs.get(&account) else { return 0 };
        let mut out = 0u128;
        for (&(_, slot), chain) in slots.iter().filter(|((s, _), _)| *s == sub) {
            let now = node.map(|a| {
                let s = a.order_slot(sub, slot);
                (s.nonce, s.residue)
            });
            let first_pending = match now {
                Some(now) if chain.back().is_some_and(|l| l.after == now) => chain.len(),
                Some(now) => chain.iter().position(|l| l.before == now).unwrap_or(0),
                None => 0,
            };
            out = chain
                .iter()
                .skip(first_pending)
                .filter(|l| l.token == token)
                .fold(out, |a, l| a.saturating_add(l.give));
        }
        out
    }
}

/// The accounts the engine read from the node, kept from one batch to the next while the
/// node's account feed ([`Feed`]) is live, with what the exchange's own fills did since (the
/// legs of [`InFlight`]). An account is read again when another tx changed it (the feed says
/// so), when the feed lost track, when the node refused a fill of it, when an order would give a
/// token its accepted fills brought it since the read (not counted until a read shows it), and
/// after [`MIRROR_LEGS`] accepted fills. Without a live feed nothing is kept between batches.
#[derive(Debug, Default)]
struct Mirror {
    /// The accounts as read, and when.
    accounts: HashMap<AccountId, (Option<AccountInfo>, Instant)>,
    /// The reads in the order made, for [`MIRROR_AGE`] (an account read again since has a
    /// later entry).
    reads: VecDeque<(Instant, AccountId)>,
    /// Per account, the tokens its accepted fills brought since it was read.
    received: HashMap<AccountId, HashSet<TokenId>>,
    flight: InFlight,
}

/// Accounts kept at most; beyond, the mirror starts again.
const MIRROR_ACCOUNTS: usize = 100_000;

/// Accepted fills of one account kept at most before it is read again.
const MIRROR_LEGS: usize = 64;

/// How long an account read is used at most (a backstop: the feed reports every change).
const MIRROR_AGE: Duration = Duration::from_secs(1);

impl Mirror {
    /// `account` is read again when next needed.
    fn invalidate(&mut self, account: AccountId) {
        self.accounts.remove(&account);
        self.received.remove(&account);
        self.flight.forget(account);
    }

    fn invalidate_all(&mut self) {
        self.accounts.clear();
        self.reads.clear();
        self.received.clear();
        self.flight.forget_all();
    }

    /// Whether `account`'s accepted fills brought it `token` since it was read.
    fn received(&self, account: AccountId, token: TokenId) -> bool {
        self.received.get(&account).is_some_and(|t| t.contains(&token))
    }

    /// The accounts read before `old` are read again when next needed.
    fn invalidate_read_before(&mut self, old: Instant) {
        while let Some(&(at, account)) = self.reads.front()
            && at < old
        {
            self.reads.pop_front();
            if self.accounts.get(&account).is_some_and(|(_, read)| *read == at) {
                self.invalidate(account);
            }
        }
    }

    /// The node answered job `job`'s `matches` with `outcomes`: the traders of a refused fill
    /// are read again, the others remember what they received.
    fn judged<'m>(&mut self, job: u64, matches: impl Iterator<Item = &'m OrderMatching>, outcomes: &Outcomes) {
        self.flight.judged(job, outcomes.len());
        for (m, outcome) in matches.zip(outcomes) {
            for order in [&m.maker.order, &m.taker.order] {
                let kept = self.accounts.contains_key(&order.account);
                if !kept || outcome.is_some() || self.flight.judged_legs(order.account) > MIRROR_LEGS {
                    self.invalidate(order.account);
                } else {
                    let got = if order.is_sell { order.quote } else { order.base };
                    self.received.entry(order.account).or_default().insert(got);
                }
            }
        }
    }
}

/// The node read through its API, each account at most once per batch of requests and not at
/// all while the [`Mirror`] has it, with the matches in flight ([`InFlight`]) laid over it.
struct Fetched<'a, N> {
    node: &'a N,
    rt: &'a Handle,
    cache: RefCell<HashMap<AccountId, (Option<AccountInfo>, Instant)>>,
    /// The accounts read in this batch.
    read: RefCell<Vec<AccountId>>,
    flight: InFlight,
}

impl<'a, N: NodeClient> Fetched<'a, N> {
    fn new(node: &'a N, rt: &'a Handle, mirror: &mut Mirror) -> Self {
        Self {
            node,
            rt,
            cache: RefCell::new(std::mem::take(&mut mirror.accounts)),
            read: RefCell::default(),
            flight: std::mem::take(&mut mirror.flight),
        }
    }

    /// Gives the accounts and the fills back to `mirror`; those read in this batch show every
    /// fill the node answered before it.
    fn finish(self, mirror: &mut Mirror) {
        mirror.accounts = self.cache.into_inner();
        mirror.flight = self.flight;
        for account in self.read.into_inner() {
            mirror.flight.forget(account);
            mirror.received.remove(&account);
            if let Some((_, at)) = mirror.accounts.get(&account) {
                mirror.reads.push_back((*at, account));
            }
        }
    }

    fn with<T>(&self, id: AccountId, f: impl FnOnce(Option<&AccountInfo>) -> T) -> Result<T, Unavailable> {
        if !self.cache.borrow().contains_key(&id) {
            let info = self.rt.block_on(self.node.account(id))?;
            self.cache.borrow_mut().insert(id, (info, Instant::now()));
            self.read.borrow_mut().push(id);
        }
        Ok(f(self.cache.borrow()[&id].0.as_ref()))
    }

    /// Reads those of `ids` it does not have from the node, concurrently (a failed read is left
    /// to the request that needs it, which then fails alone).
    fn prefetch(&self, ids: &BTreeSet<AccountId>) {
        let missing: Vec<AccountId> = ids.iter().copied().filter(|id| !self.cache.borrow().contains_key(id)).collect();
        let reads = missing.iter().map(|&id| async move { (id, self.node.account(id).await) });
        for (id, read) in self.rt.block_on(futures_util::future::join_all(reads)) {
            if let Ok(info) = read {
                self.cache.borrow_mut().insert(id, (info, Instant::now()));
                self.read.borrow_mut().push(id);
            }
        }
    }
}

impl<N: NodeClient> NodeView for Fetched<'_, N> {
    fn pubkey_hash(&self, account: AccountId) -> Result<Option<PubKeyHash>, Unavailable> {
        self.with(account, |a| a.and_then(|a| parse_pkh(&a.pubkey_hash)))
    }
    fn balance(&self, account: AccountId, sub: SubAccountId, token: TokenId) -> Result<u128, Unavailable> {
        self.with(account, |a| {
            let giving = self.flight.giving(account, sub, token, a);
            a.map_or(0, |a| a.balance(sub, token)).saturating_sub(giving)
        })
    }
    fn slot(&self, account: AccountId, sub: SubAccountId, slot: SlotId) -> Result<(Nonce, u128), Unavailable> {
        if let Some(s) = self.flight.slot(account, sub, slot) {
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
    node: Arc<N>,
    rt: Handle,
    key: PrivateKey,
    market: broadcast::Sender<Market>,
    depth_seq: HashMap<(TokenId, TokenId), u64>,
    trades: HashMap<(TokenId, TokenId), VecDeque<Trade>>,
    trade_seq: u64,
    /// The store failed: the engine may be ahead of it, so the thread stops.
    failed: bool,
    /// The accounts read from the node and the matches handed to the settler, laid over them.
    mirror: Mirror,
    /// What the node's account feed says changed.
    feed: Arc<Feed>,
    /// The placements whose matches are in flight, per job in the order sent, with their replies.
    pending: VecDeque<Pending>,
    next_job: u64,
    /// To the settler thread (started by [`Self::run`]).
    jobs: Option<Sender<Job>>,
    /// Tells the settler to give up (the engine is stopping).
    cancel: Arc<AtomicBool>,
    /// Orders' messages by id ([`MESSAGES_KEPT`] at most).
    messages: Remembered<OrderId, Fr>,
}

/// How a placement's matches fared at the node: `None` accepted, `Some(reason)` refused.
pub type Outcomes = Vec<Option<String>>;

/// One batch's matches, for the settler to sign and send, with their messages and tx hashes.
struct Job {
    id: u64,
    matches: Vec<OrderMatching>,
    messages: Vec<Fr>,
    hashes: Vec<String>,
}

/// The placements of one job, waiting for the node's answers; the replies of those that wait
/// for them (the others were answered at the match).
struct Pending {
    job: u64,
    placements: Vec<Accepted>,
    replies: Vec<Option<Reply<PlaceResult>>>,
}

/// What settling one placement left for its answer: how the node answered its matches, their
/// tx hashes, the orders the node's refusals broke ([`broken`]) and those of them the engine
/// removed (as they were).
struct Settled {
    outcomes: Outcomes,
    hashes: Vec<String>,
    broken: BTreeMap<OrderId, String>,
    gone: Vec<(OrderId, LiveOrder, String)>,
}

/// Jobs the node has judged, taken into the engine and not logged yet.
#[derive(Default)]
struct Judged {
    events: Vec<Event>,
    placements: Vec<Accepted>,
    replies: Vec<Option<Reply<PlaceResult>>>,
    settled: Vec<Settled>,
}

/// The matches of `placements`, in order.
fn matches_of(placements: &[Accepted]) -> Vec<OrderMatching> {
    placements.iter().flat_map(|a| a.matches.iter().cloned()).collect()
}

/// The `OrderMatching` txs of `matches` signed by `key`, and their hashes (in parallel).
fn sign_all(matches: &[OrderMatching], key: &PrivateKey) -> (Vec<SignedTx>, Vec<String>) {
    matches
        .par_iter()
        .map(|m| {
            let message = m.message();
            (signed_matching(m, &message, key), hash_hex(tx_hash(&message)))
        })
        .unzip()
}

/// The settler thread: sends each job's matches to the node in order (the jobs waiting when it
/// is free in one call) and posts the node's answers back to the engine thread as
/// [`Command::Judged`]. Ends when the engine drops its side of `jobs`, stops listening, or sets
/// `cancel` (between tries: a job cut short is looked up on the node at the next start).
fn settler<N: NodeClient>(
    node: Arc<N>,
    rt: Handle,
    key: PrivateKey,
    jobs: Receiver<Job>,
    answers: SyncSender<Command>,
    cancel: Arc<AtomicBool>,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while let Ok(job) = jobs.try_recv() {
            group.push(job);
        }
        let all: Vec<(&OrderMatching, &Fr)> = group.iter().flat_map(|j| j.matches.iter().zip(&j.messages)).collect();
        let txs: Vec<SignedTx> = all.par_iter().map(|(m, message)| signed_matching(m, message, &key)).collect();
        let hashes: Vec<String> = group.iter().flat_map(|j| j.hashes.iter().cloned()).collect();
        let Some(outcomes) = settle(&*node, &rt, &txs, &hashes, false, &cancel) else { return };
        let (mut outcomes, mut hashes) = (outcomes.into_iter(), hashes.into_iter());
        for job in group {
            let n = job.matches.len();
            let judged = Command::Judged {
                job: job.id,
                outcomes: outcomes.by_ref().take(n).collect(),
                hashes: hashes.by_ref().take(n).collect(),
            };
            if answers.send(judged).is_err() {
                return;
            }
        }
    }
}

/// Hands `txs` (with their `hashes`) to the node, in order, until it has judged each; while the
/// node takes no work (settlement halted) the matches wait, they are not refused. When their
/// fate is unknown (`unsure`: they may have been sent before a restart; or the node could not be
/// reached) every tx left is looked up first, so none is sent twice and none is lost: the node
/// keeps a record of the txs it accepted, not of those it refused, and judges txs in the order
/// sent (the exchange sends a tx only once those before it are judged), so an unknown tx before
/// a known one was refused, and only the unknown txs after the last known one are sent again.
fn settle<N: NodeClient>(
    node: &N,
    rt: &Handle,
    txs: &[SignedTx],
    hashes: &[String],
    mut unsure: bool,
    cancel: &AtomicBool,
) -> Option<Outcomes> {
    let mut outcomes: Outcomes = Vec::with_capacity(txs.len());
    let mut wait = Duration::from_millis(100);
    while outcomes.len() < txs.len() {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let next = outcomes.len();
        if unsure {
            let lookups = hashes[next..].iter().map(|h| node.status(h));
            let found: Result<Vec<Option<TxStatus>>, Unavailable> =
                rt.block_on(futures_util::future::join_all(lookups)).into_iter().collect();
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "the node cannot be reached; retrying");
                    back_off(&mut wait);
                    continue;
                }
            };
            let judged = found.iter().rposition(Option::is_some).map_or(0, |last| last + 1);
            outcomes.extend(found.into_iter().take(judged).map(|status| match status {
                Some(TxStatus::Rejected { reason }) => Some(reason),
                Some(_) => None,
                None => Some("the node refused it (it judged a later match)".to_string()),
            }));
            unsure = false;
            continue;
        }
        let batch = txs[next..txs.len().min(next + 1000)].to_vec();
        match rt.block_on(node.send_batch(batch)) {
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
    Some(outcomes)
}

impl<N: NodeClient> Core<N> {
    /// The engine rebuilt from the store; the matches of the placements that were in flight
    /// when the service stopped are resolved with the node (accepted ones kept, lost ones sent
    /// again, refused ones handled) before anything else.
    pub fn open(
        engine: Engine,
        store: Store,
        node: Arc<N>,
        feed: Arc<Feed>,
        rt: Handle,
        key: PrivateKey,
    ) -> Result<Self, String> {
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
            mirror: Mirror::default(),
            feed,
            pending: VecDeque::new(),
            next_job: 0,
            jobs: None,
            cancel: Arc::default(),
            messages: Remembered::new(MESSAGES_KEPT),
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
            let (txs, hashes) = sign_all(&matches_of(&placements), &core.key);
            let outcomes =
                settle(&*core.node, &core.rt, &txs, &hashes, true, &AtomicBool::new(false)).expect("not cancelled");
            core.conclude(placements, outcomes, hashes).map_err(|e| e.message)?;
        }
        Ok(core)
    }

    pub fn market(&self) -> broadcast::Sender<Market> {
        self.market.clone()
    }

    /// Serves commands until [`Command::Stop`] or until every sender is gone, in batches: the
    /// requests waiting when the thread is free (at most [`BATCH`]) are admitted in arrival
    /// order, their events logged in one commit and their matches handed to the settler; the
    /// node's answers ([`Command::Judged`]) are logged in a second commit, and only then are
    /// the placements answered. `own` is a sender of `commands` for the settler's answers.
    pub fn run(mut self, commands: Receiver<Command>, own: SyncSender<Command>) {
        let (jobs, queue) = std::sync::mpsc::channel();
        let (node, rt, key, cancel) = (self.node.clone(), self.rt.clone(), self.key.clone(), self.cancel.clone());
        let settler = std::thread::Builder::new()
            .name("exchange-settler".into())
            .spawn(move || settler(node, rt, key, queue, own, cancel));
        let settler = match settler {
            Ok(handle) => handle,
            Err(e) => {
                tracing::error!(error = %e, "the exchange's settler thread cannot start");
                return;
            }
        };
        self.jobs = Some(jobs);
        self.serve_until_stopped(&commands);
        // No more jobs; the settler gives up what it has not sent (the next start looks it up)
        // and ends before the engine does, so a restart never races it.
        self.jobs = None;
        self.cancel.store(true, Ordering::Relaxed);
        drop(commands);
        let _ = settler.join();
    }

    /// [`Self::run`]'s loop: until [`Command::Stop`] (then the answers to the matches in flight,
    /// waited for at most [`STOP_WAIT`], are logged and answered) or a store failure.
    fn serve_until_stopped(&mut self, commands: &Receiver<Command>) {
        let mut stopping = false;
        while let Ok(first) = commands.recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match commands.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            let mut requests = Vec::with_capacity(batch.len());
            let mut judged = Judged::default();
            for command in batch {
                match command {
                    Command::Judged { job, outcomes, hashes } => self.take_judged(job, outcomes, hashes, &mut judged),
                    Command::Stop => stopping = true,
                    other => requests.push(other),
                }
            }
            if !requests.is_empty() || !judged.placements.is_empty() {
                self.serve(requests, judged);
            }
            if self.failed {
                tracing::error!("the exchange's store failed; the exchange stops (restart it to replay its store)");
                return;
            }
            if stopping {
                break;
            }
        }
        let deadline = Instant::now() + STOP_WAIT;
        while !self.pending.is_empty() && !self.failed {
            match commands.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Command::Judged { job, outcomes, hashes }) => {
                    let mut judged = Judged::default();
                    self.take_judged(job, outcomes, hashes, &mut judged);
                    self.serve(Vec::new(), judged);
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// The node's answers to job `job` taken into the engine (the orders refused fills broke
    /// removed) and added to `judged`, whose events the next commit logs before anything is
    /// published or answered.
    fn take_judged(&mut self, job: u64, outcomes: Outcomes, hashes: Vec<String>, judged: &mut Judged) {
        if self.failed {
            return;
        }
        let Some(p) = self.pending.pop_front() else { return };
        debug_assert_eq!(p.job, job, "jobs are answered in order");
        self.mirror.judged(job, p.placements.iter().flat_map(|a| &a.matches), &outcomes);
        let (events, settled) = self.settle_placements(&p.placements, outcomes, hashes);
        judged.events.extend(events);
        judged.placements.extend(p.placements);
        judged.replies.extend(p.replies);
        judged.settled.extend(settled);
    }

    /// Concludes `placements` with the node's answers and sends their results.
    fn answer(
        &mut self,
        placements: Vec<Accepted>,
        replies: Vec<Option<Reply<PlaceResult>>>,
        outcomes: Outcomes,
        hashes: Vec<String>,
    ) {
        match self.conclude(placements, outcomes, hashes) {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(result));
                    }
                }
            }
            Err(e) => {
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Serves `batch` after taking in the `judged` jobs: one store commit logs both (the
    /// judged jobs' events first, as the engine took them in), then the judged placements are
    /// published and answered, then the batch.
    fn serve(&mut self, batch: Vec<Command>, judged: Judged) {
        let job = self.next_job;
        self.follow_feed();
        // Before the engine's sequential work (the API checked the orders' signatures): the
        // accounts of their traders, and of the makers they would trade with as the book
        // stands, read from the node concurrently unless the mirror has them. A trader whose
        // order gives a token its fills brought since its account was read is read again.
        let mut traders: BTreeSet<AccountId> = BTreeSet::new();
        for c in &batch {
            if let Command::Place(p, _) = c {
                let o = &p.request.order.order;
                if self.mirror.received(o.account, if o.is_sell { o.base } else { o.quote }) {
                    self.mirror.invalidate(o.account);
                }
                traders.insert(o.account);
                traders.extend(self.engine.makers_for(&p.request));
            }
        }
        let mut view = Fetched::new(&*self.node, &self.rt, &mut self.mirror);
        view.prefetch(&traders);
        let Judged { mut events, placements: judged, replies: judged_replies, settled } = judged;
        let mut placed: Vec<(Accepted, bool, Reply<PlaceResult>)> = Vec::new();
        let mut cancelled: Vec<(OrderInfo, Reply<OrderInfo>)> = Vec::new();
        for command in batch {
            match command {
                Command::Place(_, reply) if view.flight.matches >= MAX_IN_FLIGHT => {
                    let _ = reply.send(Err(ApiError::new(
                        codes::UNAVAILABLE,
                        "the exchange is busy: its matches wait for the node; retry",
                    )));
                }
                Command::Place(p, reply) => match self.engine.submit_checked(p.request, &view) {
                    Ok(mut acc) => {
                        self.messages.insert(acc.id, p.message);
                        acc.at_ms = now_ms();
                        events.push(acc.event());
                        for m in &acc.matches {
                            view.flight.add(job, m);
                        }
                        placed.push((acc, p.wait, reply));
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
                // Taken out of the batch by `run`.
                Command::Judged { .. } | Command::Stop => {}
            }
        }
        view.finish(&mut self.mirror);
        // Durable before anyone hears of it or any match leaves.
        if !events.is_empty()
            && let Err(e) = self.log(&events)
        {
            for (_, _, reply) in placed {
                let _ = reply.send(Err(e.clone()));
            }
            for (_, reply) in cancelled {
                let _ = reply.send(Err(e.clone()));
            }
            for reply in judged_replies.into_iter().flatten() {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        for ((acc, settled), reply) in judged.iter().zip(&settled).zip(judged_replies) {
            let result = self.publish(acc, settled);
            if let Some(reply) = reply {
                let _ = reply.send(Ok(result));
            }
        }
        for (info, reply) in cancelled {
            let o = info.order();
            self.depth_changed((o.base, o.quote), &BTreeSet::from([(o.is_sell, o.price)]));
            let _ = self.market.send(Market::Account(o.account, AccountUpdate::Order(info.clone())));
            let _ = reply.send(Ok(info));
        }
        // Placements that matched nothing are answered now, and so are the others, their fills
        // pending, unless they wait for the node's answers.
        let (matched, resting): (Vec<_>, Vec<_>) = placed.into_iter().partition(|(acc, _, _)| !acc.matches.is_empty());
        let (placements, replies): (Vec<Accepted>, Vec<_>) =
            resting.into_iter().map(|(acc, _, reply)| (acc, Some(reply))).unzip();
        self.answer(placements, replies, Vec::new(), Vec::new());
        if matched.is_empty() {
            return;
        }
        let matches: Vec<OrderMatching> = matched.iter().flat_map(|(acc, _, _)| acc.matches.iter().cloned()).collect();
        let messages: Vec<Fr> = matched.iter().flat_map(|(acc, _, _)| self.match_messages(acc)).collect();
        let hashes: Vec<String> = messages.iter().map(|m| hash_hex(tx_hash(m))).collect();
        let (mut placements, mut replies) = (Vec::with_capacity(matched.len()), Vec::with_capacity(matched.len()));
        let mut first = 0;
        for (acc, wait, reply) in matched {
            let n = acc.matches.len();
            if wait {
                replies.push(Some(reply));
            } else {
                let _ = reply.send(Ok(self.at_match(&acc, hashes[first..first + n].to_vec())));
                replies.push(None);
            }
            first += n;
            placements.push(acc);
        }
        self.next_job += 1;
        self.pending.push_back(Pending { job, placements, replies });
        if let Some(jobs) = &self.jobs
            && jobs.send(Job { id: job, matches, messages, hashes }).is_ok()
        {
            return;
        }
        // The settler is gone (it cannot be while the engine runs): these wait for the next
        // start, which looks them up.
        tracing::error!("the exchange's settler thread ended; matches wait for a restart");
    }

    /// Takes in what the node's account feed reported since the last batch: the accounts other
    /// txs changed are read again; all are when the feed is not live or lost track.
    fn follow_feed(&mut self) {
        let changes = self.feed.take();
        if !changes.live || changes.reset || self.mirror.accounts.len() > MIRROR_ACCOUNTS {
            self.mirror.invalidate_all();
            return;
        }
        for account in changes.dirty {
            self.mirror.invalidate(account);
        }
        if let Some(old) = Instant::now().checked_sub(MIRROR_AGE) {
            self.mirror.invalidate_read_before(old);
        }
    }

    /// The signed messages of `acc`'s matches, from its orders' messages (kept since their
    /// admission, or computed again).
    fn match_messages(&self, acc: &Accepted) -> Vec<Fr> {
        let message = |id: OrderId, o: &zkl_types::Order| self.messages.get(&id).unwrap_or_else(|| o.message());
        let taker = message(acc.id, &acc.request.order.order);
        acc.placement
            .fills
            .iter()
            .zip(&acc.matches)
            .map(|(f, m)| m.message_with(&message(f.maker, &m.maker.order), &taker))
            .collect()
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

    /// Takes the node's answers (`outcomes`, per match of `placements` in order, with their tx
    /// `hashes`): removes the orders refused fills broke, logs the answers and the removals in
    /// one commit, and publishes what changed; the placements' results, in order.
    fn conclude(
        &mut self,
        placements: Vec<Accepted>,
        outcomes: Outcomes,
        hashes: Vec<String>,
    ) -> Result<Vec<PlaceResult>, ApiError> {
        let (events, settled) = self.settle_placements(&placements, outcomes, hashes);
        if !events.is_empty() {
            self.log(&events)?;
        }
        Ok(placements.iter().zip(&settled).map(|(acc, settled)| self.publish(acc, settled)).collect())
    }

    /// Takes the node's answers to `placements` into the engine: removes the orders refused
    /// fills broke; the events that log it, and what each placement's answer needs.
    fn settle_placements(
        &mut self,
        placements: &[Accepted],
        outcomes: Outcomes,
        hashes: Vec<String>,
    ) -> (Vec<Event>, Vec<Settled>) {
        let (mut outcomes, mut hashes) = (outcomes.into_iter(), hashes.into_iter());
        let mut events = Vec::new();
        let mut settled = Vec::new();
        for acc in placements {
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
        (events, settled)
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

    /// The answer to a placement at its match: its fills (with their tx `hashes`) pending.
    fn at_match(&self, acc: &Accepted, hashes: Vec<String>) -> PlaceResult {
        let settled =
            Settled { outcomes: vec![None; acc.matches.len()], hashes, broken: BTreeMap::new(), gone: Vec::new() };
        self.result(acc, &settled, true).0
    }

    /// The placement's answer as things stand: its order, its fills as `settled` says (or
    /// `pending`), and the resting orders it changed; and whether the taker rested and has left
    /// the book since (then it is not published again).
    fn result(&self, acc: &Accepted, settled: &Settled, pending: bool) -> (PlaceResult, bool) {
        let Settled { outcomes, hashes, broken, gone: removed } = settled;
        let req = &acc.request;
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
                pending,
            })
            .collect();
        // The taker as it stands now; one that rested and has left the book since (cancelled,
        // or filled by later placements, whose updates went out before this one) as this
        // placement left it, and not published again.
        let taker_removed = removed.iter().find(|(id, _, _)| *id == acc.id);
        let taker_now = self.engine.order(acc.id);
        let left_since =
            taker_now.is_none() && taker_removed.is_none() && !broken.contains_key(&acc.id) && acc.placement.rested > 0;
        let taker_live = LiveOrder { order: req.order.clone(), fresh: acc.fresh, left: 0, tif: req.tif };
        let order = match (taker_now, taker_removed) {
            (Some(live), _) => info(acc.id, live, OrderStatus::Open, None),
            (None, Some((_, live, why))) => info(acc.id, live, OrderStatus::Removed, Some(why.clone())),
            (None, None) if broken.contains_key(&acc.id) => {
                info(acc.id, &taker_live, OrderStatus::Removed, broken.get(&acc.id).cloned())
            }
            (None, None) if left_since => {
                info(acc.id, &LiveOrder { left: acc.placement.rested, ..taker_live }, OrderStatus::Open, None)
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

        (PlaceResult { order, fills, affected }, left_since)
    }

    /// The placement's answer once the node judged its fills, and its market data: trades, the
    /// changed price levels, and each account's order changes and fills.
    fn publish(&mut self, acc: &Accepted, settled: &Settled) -> PlaceResult {
        let trades = self.record_trades(acc, &settled.outcomes, &settled.hashes);
        let (result, left_since) = self.result(acc, settled, false);
        let removed = &settled.gone;
        let o = &acc.request.order.order;
        let pair = (o.base, o.quote);
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
        for info in result.affected.iter().chain((!left_since).then_some(&result.order)) {
            send(Market::Account(info.account, AccountUpdate::Order(info.clone())));
        }
        result
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

#[cfg(test)]
mod tests {
    use super::*;
    use zkl_rpc_api::{Balance, OrderSlotInfo};
    use zkl_state::testkit::{ETH, ONE, USDC, User};

    /// Account 10 as the node shows it: `eth` ETH, order slot 0 at `slot` (nonce, residue).
    fn seller(eth: u128, slot: (Nonce, u128)) -> AccountInfo {
        AccountInfo {
            id: 10,
            owner: Default::default(),
            nonce: 0,
            pubkey_hash: String::new(),
            balances: vec![Balance { sub: 0, token: ETH, amount: eth }],
            order_slots: vec![OrderSlotInfo { sub: 0, slot: 0, nonce: slot.0, residue: slot.1 }],
        }
    }

    /// An ask of 10 ETH filled by 4, then by the other 6, in two jobs: until the node answers,
    /// its slot as read tells which fills it has executed, and only the others are taken off
    /// the balance; a slot state outside the chain counts them all; answered jobs leave.
    #[test]
    fn fills_in_flight_count_until_the_node_shows_them() {
        let (s, b) = (User::new(1), User::new(2));
        let ask = s.order(10, 0, 0, ETH, USDC, 10 * ONE, 1000 * ONE, true);
        let bid = |slot| b.order(11, slot, 0, ETH, USDC, 10 * ONE, 1000 * ONE, false);
        let fill = |base, residue, bid| OrderMatching {
            matcher: 2,
            maker: ask.clone(),
            taker: bid,
            base_fill: base * ONE,
            quote_fill: base * 1000 * ONE,
            maker_residue_before: residue,
            taker_residue_before: 0,
        };
        let mut flight = InFlight::default();
        flight.add(0, &fill(4, 0, bid(0)));
        flight.add(1, &fill(6, 6 * ONE, bid(1)));
        assert_eq!(flight.slot(10, 0, 0), Some((1, 0)), "the slot as both fills leave it");
        let giving = |f: &InFlight, slot| f.giving(10, 0, ETH, Some(&seller(100 * ONE, slot)));
        assert_eq!(giving(&flight, (0, 0)), 10 * ONE, "none executed");
        assert_eq!(giving(&flight, (0, 6 * ONE)), 6 * ONE, "the first executed");
        assert_eq!(giving(&flight, (1, 0)), 0, "both executed");
        assert_eq!(giving(&flight, (0, 3 * ONE)), 10 * ONE, "a state outside the chain counts all");
        assert_eq!(flight.giving(10, 0, ETH, None), 10 * ONE, "an account the node does not show");
        assert_eq!(flight.giving(10, 0, USDC, Some(&seller(0, (0, 0)))), 0, "the seller gives ETH only");
        assert_eq!(flight.giving(11, 0, USDC, None), 10_000 * ONE, "the buyers give USDC");

        // Answered fills stay until their traders are read again: the account as last read
        // may be older than them.
        flight.judged(0, 1);
        assert_eq!((flight.matches, giving(&flight, (0, 0))), (1, 10 * ONE));
        assert_eq!(flight.judged_legs(10), 1, "the seller's answered fill is kept");
        flight.forget(11);
        assert_eq!(flight.slot(11, 0, 0), None, "the first bid's slot, read again, has nothing in flight");
        assert_eq!(flight.slot(11, 0, 1), Some((0, 4 * ONE)), "the second bid's fill is not answered yet");
        flight.forget(10);
        assert_eq!(giving(&flight, (0, 6 * ONE)), 6 * ONE, "only the unanswered fill is left");
        flight.judged(1, 1);
        flight.forget_all();
        assert_eq!((flight.matches, flight.slot(10, 0, 0)), (0, None));
        assert!(flight.legs.is_empty());
    }

    /// The mirror reads a trader again after a refused fill, after [`MIRROR_LEGS`] accepted
    /// ones, and remembers what accepted fills brought it.
    #[test]
    fn the_mirror_reads_again_what_it_cannot_know() {
        let (s, b) = (User::new(1), User::new(2));
        let ask = s.order(10, 0, 0, ETH, USDC, 100 * ONE, 1000 * ONE, true);
        let fill = |k: u128| OrderMatching {
            matcher: 2,
            maker: ask.clone(),
            taker: b.order(11, k as u16, 0, ETH, USDC, ONE, 1000 * ONE, false),
            base_fill: ONE,
            quote_fill: 1000 * ONE,
            maker_residue_before: if k == 0 { 0 } else { (100 - k) * ONE },
            taker_residue_before: 0,
        };
        let mut mirror = Mirror::default();
        mirror.accounts.insert(10, (Some(seller(100 * ONE, (0, 0))), Instant::now()));
        mirror.accounts.insert(11, (None, Instant::now()));
        let first = fill(0);
        mirror.flight.add(0, &first);
        mirror.judged(0, [&first].into_iter(), &vec![None]);
        assert!(mirror.received(10, USDC) && mirror.received(11, ETH) && !mirror.received(10, ETH));
        assert_eq!(mirror.flight.judged_legs(10), 1, "kept: the seller as read does not show it");
        assert!(mirror.accounts.contains_key(&10));

        let second = fill(1);
        mirror.flight.add(1, &second);
        mirror.judged(1, [&second].into_iter(), &vec![Some("refused".into())]);
        assert!(!mirror.accounts.contains_key(&10) && !mirror.accounts.contains_key(&11), "both read again");
        assert!(!mirror.received(10, USDC));
        assert_eq!(mirror.flight.judged_legs(10), 0);

        mirror.accounts.insert(10, (Some(seller(100 * ONE, (0, 0))), Instant::now()));
        for k in 2..2 + MIRROR_LEGS as u128 + 1 {
            let m = fill(k);
            mirror.flight.add(k as u64, &m);
            mirror.judged(k as u64, [&m].into_iter(), &vec![None]);
        }
        assert!(!mirror.accounts.contains_key(&10), "read again after {MIRROR_LEGS} accepted fills");
        assert!(mirror.flight.judged_legs(10) <= MIRROR_LEGS);
        // The buyer is not kept: nothing is remembered for it.
        assert_eq!((mirror.flight.judged_legs(11), mirror.received(11, ETH)), (0, false));
    }

    /// An account read before the cut is read again, unless it was read again since.
    #[test]
    fn the_mirror_forgets_old_reads() {
        let t0 = Instant::now();
        let (t1, t2) = (t0 + Duration::from_millis(1), t0 + Duration::from_millis(2));
        let mut mirror = Mirror::default();
        mirror.accounts.insert(10, (None, t2));
        mirror.accounts.insert(11, (None, t1));
        mirror.reads.extend([(t0, 10), (t1, 11), (t2, 10)]);
        mirror.invalidate_read_before(t1 + Duration::from_micros(500));
        assert!(mirror.accounts.contains_key(&10), "read again at t2");
        assert!(!mirror.accounts.contains_key(&11));
        assert_eq!(mirror.reads, VecDeque::from([(t2, 10)]));
    }
}
