//! The matching engine's core, without I/O: it admits signed orders against the node's state
//! (through [`NodeView`]), keeps one [`Book`] per pair and the funds each resting order needs,
//! checks every maker a new order would trade with against the node before it trades, and turns
//! the fills into the `OrderMatching` txs the node accepts (docs/exchange.md, "Engine").
//!
//! Everything it decides is a function of the requests and of what the node said, so a store
//! that logs both rebuilds the same engine after a restart.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use zkl_crypto::PubKeyHash;
use zkl_types::amount::is_packable_amount;
use zkl_types::{AccountId, MAX_FEE_BPS, Nonce, OrderMatching, SignedOrder, SlotId, SubAccountId, TokenId};

use crate::book::{Book, BookError, OrderId, PairRules, Placement, Side, TimeInForce, quote_of};
use crate::settle::{Party, book_order, matching};

/// What the engine reads from the node (its public API in the service; the state machine in
/// tests). A read that fails ([`Unavailable`]) refuses the request and changes nothing.
pub trait NodeView {
    /// The account's L2 key hash; `None` if the account does not exist or has no key.
    fn pubkey_hash(&self, account: AccountId) -> Result<Option<PubKeyHash>, Unavailable>;
    fn balance(&self, account: AccountId, sub: SubAccountId, token: TokenId) -> Result<u128, Unavailable>;
    /// The order slot's (nonce, residue).
    fn slot(&self, account: AccountId, sub: SubAccountId, slot: SlotId) -> Result<(Nonce, u128), Unavailable>;
}

/// The node could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the node cannot be read: {0}")]
pub struct Unavailable(pub String);

/// A pair the engine trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConfig {
    pub base: TokenId,
    pub quote: TokenId,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub tick: u128,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub lot: u128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// The engine's account, whitelisted as a matcher by the node.
    pub matcher: AccountId,
    pub pairs: Vec<PairConfig>,
}

pub use zkl_rpc_api::exchange::OrderRequest;

/// An order the engine holds: resting, with `left` base units to fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOrder {
    pub order: SignedOrder,
    /// Its slot held no residue when it came in (see [`Party::residue`]).
    pub fresh: bool,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub left: u128,
    #[serde(default)]
    pub tif: TimeInForce,
}

impl LiveOrder {
    /// This order as one side of its next fill.
    pub fn party(&self) -> Party<'_> {
        Party { order: &self.order, left: self.left, fresh: self.fresh }
    }
}

/// What admitting an order did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub id: OrderId,
    /// The request as admitted.
    pub request: OrderRequest,
    /// The base units it came in to fill (its amount, or its slot's residue).
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub left: u128,
    /// Its slot held no residue when it came in.
    pub fresh: bool,
    pub placement: Placement,
    /// One per fill, in order: what the engine submits to the node.
    pub matches: Vec<OrderMatching>,
    /// Resting orders removed before matching because the node's state no longer backs them
    /// (the trader moved the funds or used the slot elsewhere), with why.
    pub removed: Vec<(OrderId, String)>,
    /// The resting orders that left the book in this admission (removed, cancelled by
    /// self-trade prevention, or filled: `left` 0), as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed: Vec<(OrderId, LiveOrder)>,
    /// When the service admitted it (ms since the Unix epoch; 0 from the engine alone).
    #[serde(default)]
    pub at_ms: u64,
}

impl Accepted {
    /// The event that replays this admission ([`Engine::replay`]).
    pub fn event(&self) -> Event {
        Event::Submitted {
            request: Box::new(self.request.clone()),
            left: self.left,
            fresh: self.fresh,
            removed: self.removed.iter().map(|(id, _)| *id).collect(),
            at_ms: self.at_ms,
        }
    }
}

/// What changes the engine, as a store logs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An admitted order, what it came in to fill (and whether its slot was fresh), and the
    /// resting orders removed before it matched.
    Submitted {
        request: Box<OrderRequest>,
        #[serde(with = "zkl_types::serde_impls::u128_str")]
        left: u128,
        fresh: bool,
        removed: Vec<OrderId>,
        /// When it was admitted (ms since the Unix epoch).
        #[serde(default)]
        at_ms: u64,
    },
    /// A live order cancelled by its owner or removed after the node refused a fill of it.
    Cancelled { id: OrderId },
    /// The node answered the matches of the order `order`'s `submitted` event: the indices of
    /// those it refused (the others it accepted). A `submitted` event with matches and no
    /// `settled` event for it had its matches in flight when the service stopped.
    Settled { order: OrderId, refused: Vec<u32> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the exchange does not trade {base}/{quote}")]
    UnknownPair { base: TokenId, quote: TokenId },
    #[error("fee rate {0} bps is above the protocol's maximum ({MAX_FEE_BPS})")]
    FeeRate(u8),
    #[error("order amount {0} is not a packed amount")]
    Unpackable(u128),
    #[error("account {0} has no L2 key")]
    NoKey(AccountId),
    #[error("the order is not signed by account {0}'s L2 key")]
    WrongKey(AccountId),
    #[error("bad order signature")]
    BadSignature,
    #[error("order slot {slot} of account {account} is at nonce {expected}, the order has {got}")]
    StaleNonce { account: AccountId, slot: SlotId, expected: Nonce, got: Nonce },
    #[error("order slot {slot} of account {account} already serves a resting order ({id})")]
    SlotInUse { account: AccountId, slot: SlotId, id: OrderId },
    #[error("account {account} has {available} of token {token} not reserved by its orders; the order needs {needed}")]
    Insufficient { account: AccountId, token: TokenId, needed: u128, available: u128 },
    #[error("order {0} is not resting")]
    UnknownOrder(OrderId),
    #[error("order {id} belongs to account {owner}, not {account}")]
    NotOwner { id: OrderId, owner: AccountId, account: AccountId },
    #[error(transparent)]
    Book(#[from] BookError),
    #[error(transparent)]
    Node(#[from] Unavailable),
}

type Funds = (AccountId, SubAccountId, TokenId);

/// The engine.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    books: HashMap<(TokenId, TokenId), Book>,
    live: HashMap<OrderId, LiveOrder>,
    /// The slots serving live orders.
    slots: HashMap<(AccountId, SubAccountId, SlotId), OrderId>,
    /// Per trader and token, what its live orders may still give.
    reserved: HashMap<Funds, u128>,
    next_id: OrderId,
}

/// The token `order` gives and how much of it for `left` base units (at its own price: what a
/// resting order gives exactly, and the most an incoming order gives).
fn need(order: &SignedOrder, left: u128) -> (TokenId, u128) {
    let o = &order.order;
    (gives(order), if o.is_sell { left } else { quote_of(left, o.price).unwrap_or(u128::MAX) })
}

/// The token `order` gives.
fn gives(order: &SignedOrder) -> TokenId {
    if order.order.is_sell { order.order.base } else { order.order.quote }
}

fn funds(order: &SignedOrder, token: TokenId) -> Funds {
    (order.order.account, order.order.sub, token)
}

impl Engine {
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let mut books = HashMap::new();
        for p in &config.pairs {
            books.insert((p.base, p.quote), Book::new(PairRules::new(p.tick, p.lot)?));
        }
        Ok(Self { config, books, live: HashMap::new(), slots: HashMap::new(), reserved: HashMap::new(), next_id: 1 })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn book(&self, base: TokenId, quote: TokenId) -> Option<&Book> {
        self.books.get(&(base, quote))
    }

    pub fn order(&self, id: OrderId) -> Option<&LiveOrder> {
        self.live.get(&id)
    }

    /// The live orders of `account`, by id.
    pub fn orders_of(&self, account: AccountId) -> Vec<(OrderId, &LiveOrder)> {
        let mut out: Vec<_> =
            self.live.iter().filter(|(_, l)| l.order.order.account == account).map(|(&id, l)| (id, l)).collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// What `account`'s live orders reserve of `token` in `sub`.
    pub fn reserved(&self, account: AccountId, sub: SubAccountId, token: TokenId) -> u128 {
        self.reserved.get(&(account, sub, token)).copied().unwrap_or(0)
    }

    fn reserve(&mut self, order: &SignedOrder, left: u128, add: bool) {
        let (token, amount) = need(order, left);
        let r = self.reserved.entry(funds(order, token)).or_default();
        *r = if add { r.saturating_add(amount) } else { r.saturating_sub(amount) };
    }

    /// Checks a request against the node's state and the engine's own reservations; the order's
    /// base units to fill (the slot's residue for an order filled in part before).
    fn admit(&self, req: &OrderRequest, view: &impl NodeView, verify: bool) -> Result<(u128, bool), EngineError> {
        let o = &req.order.order;
        if !self.books.contains_key(&(o.base, o.quote)) {
            return Err(EngineError::UnknownPair { base: o.base, quote: o.quote });
        }
        for bps in [o.maker_fee_bps, o.taker_fee_bps] {
            if bps > MAX_FEE_BPS {
                return Err(EngineError::FeeRate(bps));
            }
        }
        if !is_packable_amount(o.amount) {
            return Err(EngineError::Unpackable(o.amount));
        }
        let pkh = view.pubkey_hash(o.account)?.ok_or(EngineError::NoKey(o.account))?;
        if req.pubkey.pubkey_hash() != pkh {
            return Err(EngineError::WrongKey(o.account));
        }
        if verify && !req.signature_ok() {
            return Err(EngineError::BadSignature);
        }
        if let Some(&id) = self.slots.get(&(o.account, o.sub, o.slot)) {
            return Err(EngineError::SlotInUse { account: o.account, slot: o.slot, id });
        }
        let (nonce, slot_residue) = view.slot(o.account, o.sub, o.slot)?;
        if nonce != o.nonce {
            return Err(EngineError::StaleNonce { account: o.account, slot: o.slot, expected: nonce, got: o.nonce });
        }
        let fresh = slot_residue == 0;
        let left = if fresh { o.amount } else { slot_residue };
        let (token, needed) = need(&req.order, left);
        let available = view.balance(o.account, o.sub, token)?.saturating_sub(self.reserved(o.account, o.sub, token));
        if needed > available {
            return Err(EngineError::Insufficient { account: o.account, token, needed, available });
        }
        Ok((left, fresh))
    }

    /// Why the node would refuse `maker` giving `give` (cumulative in this placement) of its
    /// token with `left` base units left before its first fill here; `None` if it would not.
    fn unbacked(maker: &LiveOrder, give: u128, view: &impl NodeView) -> Result<Option<String>, Unavailable> {
        let o = &maker.order.order;
        let token = gives(&maker.order);
        let balance = view.balance(o.account, o.sub, token)?;
        if balance < give {
            return Ok(Some(format!("account {} has {balance} of token {token}, the fill needs {give}", o.account)));
        }
        let slot = view.slot(o.account, o.sub, o.slot)?;
        let expected = (o.nonce, maker.party().residue());
        Ok((slot != expected).then(|| format!("order slot {} of account {} moved to {slot:?}", o.slot, o.account)))
    }

    /// Admits `req` and matches it: every resting order it would trade with is checked against
    /// the node first (one that fails is removed, reported, and the plan made again), then the
    /// book is updated and each fill becomes an `OrderMatching`. A refused request changes
    /// nothing.
    pub fn submit(&mut self, req: OrderRequest, view: &impl NodeView) -> Result<Accepted, EngineError> {
        self.submit_with(req, view, true)
    }

    /// The accounts of the resting orders `req` would trade with as the book stands (its whole
    /// amount, before any check), for a caller to read them from the node ahead of
    /// [`Self::submit`] (which reads what it needs anyway).
    pub fn makers_for(&self, req: &OrderRequest) -> BTreeSet<AccountId> {
        let o = &req.order.order;
        let Some(book) = self.books.get(&(o.base, o.quote)) else { return BTreeSet::new() };
        let plan = book.plan(&book_order(self.next_id, &req.order, o.amount, req.tif));
        plan.map(|p| p.fills.iter().filter_map(|f| self.live.get(&f.maker)).map(|m| m.order.order.account).collect())
            .unwrap_or_default()
    }

    /// [`Self::submit`] of a request whose signature the caller has checked with
    /// [`OrderRequest::signature_ok`] (the service checks signatures on its API threads).
    pub fn submit_checked(&mut self, req: OrderRequest, view: &impl NodeView) -> Result<Accepted, EngineError> {
        self.submit_with(req, view, false)
    }

    fn submit_with(&mut self, req: OrderRequest, view: &impl NodeView, verify: bool) -> Result<Accepted, EngineError> {
        let (left, fresh) = self.admit(&req, view, verify)?;
        let o = &req.order.order;
        let pair = (o.base, o.quote);
        let new = book_order(self.next_id, &req.order, left, req.tif);
        let mut removed: Vec<(OrderId, String)> = Vec::new();
        let mut skip = HashSet::new();
        let placement = loop {
            let plan = self.books[&pair].plan_without(&new, &skip)?;
            let mut given: HashMap<Funds, u128> = HashMap::new();
            let mut failing = None;
            for f in &plan.fills {
                let maker = &self.live[&f.maker];
                let give = if f.maker_side == Side::Sell { f.base } else { f.quote };
                let total = given.entry(funds(&maker.order, gives(&maker.order))).or_default();
                *total += give;
                if let Some(why) = Self::unbacked(maker, *total, view)? {
                    failing = Some((f.maker, why));
                    break;
                }
            }
            match failing {
                Some((maker, why)) => {
                    skip.insert(maker);
                    removed.push((maker, why));
                }
                None => break plan,
            }
        };
        // Every check passed: from here on nothing fails.
        let dropped: Vec<_> = removed.iter().filter_map(|&(id, _)| self.drop_order(id).map(|l| (id, l))).collect();
        let mut accepted = self.execute(req, left, fresh)?;
        debug_assert_eq!(accepted.placement, placement);
        accepted.removed = removed;
        accepted.closed.splice(0..0, dropped);
        Ok(accepted)
    }

    /// Places an admitted order filling `left` base units and turns its fills into matches
    /// (no checks against the node: they were made, or are being replayed).
    fn execute(&mut self, req: OrderRequest, left: u128, fresh: bool) -> Result<Accepted, EngineError> {
        let o = &req.order.order;
        let id = self.next_id;
        let book =
            self.books.get_mut(&(o.base, o.quote)).ok_or(EngineError::UnknownPair { base: o.base, quote: o.quote })?;
        let placed = book.place(book_order(id, &req.order, left, req.tif))?;
        self.next_id += 1;
        let mut closed = Vec::new();
        for &cancelled in &placed.self_trade_cancelled {
            closed.extend(self.drop_order(cancelled).map(|l| (cancelled, l)));
        }
        let mut matches = Vec::with_capacity(placed.fills.len());
        let mut taker_left = left;
        for fill in &placed.fills {
            let maker = self.live.get(&fill.maker).cloned().expect("fills are with live orders");
            let taker = Party { order: &req.order, left: taker_left, fresh };
            matches.push(matching(self.config.matcher, maker.party(), taker, fill));
            taker_left -= fill.base;
            let maker_left = maker.left - fill.base;
            if maker_left == 0 {
                // Releases what it reserved.
                closed.extend(self.drop_order(fill.maker).map(|l| (fill.maker, LiveOrder { left: 0, ..l })));
            } else {
                self.reserve(&maker.order, maker.left, false);
                self.reserve(&maker.order, maker_left, true);
                self.live.get_mut(&fill.maker).expect("live").left = maker_left;
            }
        }
        if placed.rested > 0 {
            self.reserve(&req.order, placed.rested, true);
            self.slots.insert((o.account, o.sub, o.slot), id);
            self.live.insert(id, LiveOrder { order: req.order.clone(), fresh, left: placed.rested, tif: req.tif });
        }
        Ok(Accepted {
            id,
            left,
            fresh,
            placement: placed,
            matches,
            removed: Vec::new(),
            closed,
            request: req,
            at_ms: 0,
        })
    }

    /// Applies a logged event again (after a restart): the engine ends where it was when the
    /// events were made, with the same ids, books, reservations and matches.
    pub fn replay(&mut self, event: &Event) -> Result<Option<Accepted>, EngineError> {
        match event {
            Event::Submitted { request, left, fresh, removed, at_ms } => {
                for &id in removed {
                    self.drop_order(id);
                }
                let mut accepted = self.execute((**request).clone(), *left, *fresh)?;
                accepted.at_ms = *at_ms;
                Ok(Some(accepted))
            }
            Event::Cancelled { id } => self.drop_order(*id).map(|_| None).ok_or(EngineError::UnknownOrder(*id)),
            Event::Settled { .. } => Ok(None),
        }
    }

    /// Removes a live order from its book and releases what it reserved.
    fn drop_order(&mut self, id: OrderId) -> Option<LiveOrder> {
        let live = self.live.remove(&id)?;
        let o = &live.order.order;
        let _ = self.books.get_mut(&(o.base, o.quote)).map(|b| b.cancel(id));
        self.slots.remove(&(o.account, o.sub, o.slot));
        self.reserve(&live.order, live.left, false);
        Some(live)
    }

    /// Cancels `account`'s live order `id` (the service authenticates the request).
    pub fn cancel(&mut self, account: AccountId, id: OrderId) -> Result<LiveOrder, EngineError> {
        let owner = self.live.get(&id).ok_or(EngineError::UnknownOrder(id))?.order.order.account;
        if owner != account {
            return Err(EngineError::NotOwner { id, owner, account });
        }
        Ok(self.drop_order(id).expect("live"))
    }

    /// Removes order `id` whatever its owner (the node refused a fill of it).
    pub fn remove(&mut self, id: OrderId) -> Option<LiveOrder> {
        self.drop_order(id)
    }
}
