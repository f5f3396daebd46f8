//! One pair's order book: limit orders with partial fills, price-time priority, immediate-or-cancel
//! and post-only, cancel, self-trade prevention.
//!
//! Prices are the protocol's (quote units per base unit, times [`PRICE_SCALE`]), amounts are base
//! units. Every fill is exact, as the node requires (`quote_fill · 10^18 = base_fill · price`):
//! a pair's prices are multiples of its `tick` and amounts of its `lot`, and `tick · lot` is a
//! multiple of 10^18, so `quote = base · price / 10^18` is an integer for every fill. And every
//! fill's base and quote are packed amounts (the op carries them packed): a fill is the largest
//! of the two orders' remainders that packs, else that rounded down to 10, 100, … lots, else one
//! lot (an order is refused at a price where one lot's quote does not pack); a maker and a taker
//! may so trade in several fills.
//!
//! Rules (the exchange's, on top of what the node checks; docs/exchange.md):
//! - an incoming order trades with the best opposite price first, and within a price with the
//!   order that rested first, at the resting (maker) order's price, while the prices cross;
//! - a good-till-cancelled order rests with what is left; an immediate-or-cancel order never
//!   rests (what is left expires); a post-only order that would trade is refused whole;
//! - an incoming order never trades with a resting order of the same trader (account and
//!   sub-account, which the node refuses): that resting order is cancelled instead (the newer
//!   order wins) and reported in [`Placement::self_trade_cancelled`];
//! - a refused order changes nothing.
//!
//! The book is deterministic: placing the same orders in the same order gives the same fills and
//! the same book, which is how the engine rebuilds it from its store after a restart.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use zkl_types::amount::is_packable_amount;
use zkl_types::{AccountId, PRICE_SCALE, SubAccountId};

pub use zkl_rpc_api::exchange::{Depth, Level, OrderId, Side, TimeInForce};

/// The trader an order belongs to (an L2 account's sub-account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Trader {
    pub account: AccountId,
    pub sub: SubAccountId,
}

/// A pair's price and amount granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRules {
    /// Prices are multiples of this.
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub tick: u128,
    /// Amounts (base units) are multiples of this.
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub lot: u128,
}

impl PairRules {
    /// Refused unless both are positive, `tick · lot` is a multiple of 10^18 (every fill exact)
    /// and the lot is a packed amount (a fill of one lot can travel).
    pub fn new(tick: u128, lot: u128) -> Result<Self, BookError> {
        // (a · b) mod m from a mod m and b mod m: both below 10^18, the product below 2^120.
        let inexact = !((tick % PRICE_SCALE) * (lot % PRICE_SCALE)).is_multiple_of(PRICE_SCALE);
        if tick == 0 || lot == 0 || inexact || !is_packable_amount(lot) {
            return Err(BookError::Rules { tick, lot });
        }
        Ok(Self { tick, lot })
    }
}

/// An order as the book sees it (the engine keeps the signed order beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub id: OrderId,
    pub trader: Trader,
    pub side: Side,
    /// Limit price: a buyer pays at most this, a seller receives at least this.
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub price: u128,
    /// Base units.
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub amount: u128,
    pub tif: TimeInForce,
}

/// A resting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resting {
    pub id: OrderId,
    pub trader: Trader,
    pub side: Side,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub price: u128,
    /// Base units left.
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub remaining: u128,
}

/// One trade: `base` units at the maker's `price`, `quote = base · price / 10^18` exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub maker: OrderId,
    pub taker: OrderId,
    /// The maker's side (the taker is on the other).
    pub maker_side: Side,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub price: u128,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub base: u128,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub quote: u128,
}

/// What placing an order did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// In execution order.
    pub fills: Vec<Fill>,
    /// Base units now resting (0 if the order does not rest).
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub rested: u128,
    /// Base units of an immediate-or-cancel order that expired untraded.
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub expired: u128,
    /// Resting orders of the same trader cancelled instead of trading with it.
    pub self_trade_cancelled: Vec<OrderId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error(
        "a pair's tick ({tick}) and lot ({lot}) must be positive, their product a multiple of 10^18 and the lot a packed amount"
    )]
    Rules { tick: u128, lot: u128 },
    #[error("the amount must be positive")]
    ZeroAmount,
    #[error("price {price} is not a positive multiple of the pair's tick {tick}")]
    Tick { price: u128, tick: u128 },
    #[error("amount {amount} is not a multiple of the pair's lot {lot}")]
    Lot { amount: u128, lot: u128 },
    #[error("amount {amount} at price {price} is worth more than 2^128 quote units")]
    TooLarge { amount: u128, price: u128 },
    #[error("{what} ({value}) is not a packed amount (35-bit mantissa times a power of ten)")]
    Unpackable { what: &'static str, value: u128 },
    #[error("order {0} is already in the book")]
    DuplicateId(OrderId),
    #[error("order {0} is not in the book")]
    UnknownOrder(OrderId),
    #[error("post-only order would trade at once (best opposite price {best})")]
    WouldTake { best: u128 },
}

/// One pair's book.
#[derive(Debug, Clone)]
pub struct Book {
    rules: PairRules,
    /// Per price, the resting order ids in arrival order.
    bids: BTreeMap<u128, VecDeque<OrderId>>,
    asks: BTreeMap<u128, VecDeque<OrderId>>,
    orders: HashMap<OrderId, Resting>,
}

/// Whether a `side` order at `limit` trades with a resting opposite order at `resting`.
fn crosses(side: Side, limit: u128, resting: u128) -> bool {
    match side {
        Side::Buy => resting <= limit,
        Side::Sell => resting >= limit,
    }
}

/// `base · price / 10^18` (rounded down), `None` above `u128::MAX`.
pub fn quote_of(base: u128, price: u128) -> Option<u128> {
    (U256::from(base) * U256::from(price) / U256::from(PRICE_SCALE)).try_into().ok()
}

impl Book {
    pub fn new(rules: PairRules) -> Self {
        Self { rules, bids: BTreeMap::new(), asks: BTreeMap::new(), orders: HashMap::new() }
    }

    pub fn rules(&self) -> PairRules {
        self.rules
    }

    pub fn order(&self, id: OrderId) -> Option<&Resting> {
        self.orders.get(&id)
    }

    /// The number of resting orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub fn best_bid(&self) -> Option<u128> {
        self.bids.keys().next_back().copied()
    }

    pub fn best_ask(&self) -> Option<u128> {
        self.asks.keys().next().copied()
    }

    /// The price levels of `side`, best first.
    fn priority(&self, side: Side) -> Box<dyn Iterator<Item = (&u128, &VecDeque<OrderId>)> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.iter().rev()),
            Side::Sell => Box::new(self.asks.iter()),
        }
    }

    fn levels(&mut self, side: Side) -> &mut BTreeMap<u128, VecDeque<OrderId>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// A fill of at most `max` base units (a multiple of the lot) at `price` whose base and quote
    /// both pack (the op carries them as packed amounts, docs/protocol.md §8): `max` itself, or
    /// `max` rounded down to a multiple of 10, 100, … lots, or else the largest `m · 10^d` lots
    /// (one digit `m` times a power of ten) that packs, at worst one lot. So a remainder of n
    /// lots takes at most about 9 fills per decimal digit of n. At least one lot:
    /// [`Self::check`] refuses prices where one lot's quote does not pack.
    fn fill_size(&self, max: u128, price: u128) -> u128 {
        let lot = self.rules.lot;
        let packs = |lots: u128| {
            let base = lots * lot;
            is_packable_amount(base) && quote_of(base, price).is_some_and(is_packable_amount)
        };
        let lots = max / lot;
        let mut unit = 1u128;
        let mut top = 1u128;
        while unit <= lots {
            let candidate = lots / unit * unit;
            if packs(candidate) {
                return candidate * lot;
            }
            top = unit;
            unit = unit.saturating_mul(10);
        }
        // One significant digit: the quote's mantissa is the digit times one lot's.
        let mut unit = top;
        while unit >= 1 {
            let digit = (lots / unit).min(9);
            for m in (1..=digit).rev() {
                if packs(m * unit) {
                    return m * unit * lot;
                }
            }
            unit /= 10;
        }
        lot
    }

    /// The checks of [`Self::place`] that need no book.
    fn check(&self, o: &NewOrder) -> Result<(), BookError> {
        let PairRules { tick, lot } = self.rules;
        if o.amount == 0 {
            return Err(BookError::ZeroAmount);
        }
        if o.price == 0 || !o.price.is_multiple_of(tick) {
            return Err(BookError::Tick { price: o.price, tick });
        }
        if !o.amount.is_multiple_of(lot) {
            return Err(BookError::Lot { amount: o.amount, lot });
        }
        // Bounds every fill's quote: a fill of this order as maker is at its price; as taker it
        // trades with makers whose own bound holds.
        if quote_of(o.amount, o.price).is_none() {
            return Err(BookError::TooLarge { amount: o.amount, price: o.price });
        }
        // Every fill travels packed, at least one lot. (The signed order's amount travels packed
        // too; the engine checks it: the book's amount may be what a partial fill left.)
        let lot_quote = quote_of(lot, o.price).unwrap_or(u128::MAX);
        if !is_packable_amount(lot_quote) {
            return Err(BookError::Unpackable { what: "one lot's quote at this price", value: lot_quote });
        }
        if self.orders.contains_key(&o.id) {
            return Err(BookError::DuplicateId(o.id));
        }
        Ok(())
    }

    /// What placing `o` would do, without doing it (the engine checks each maker against the
    /// node before it places): the fills, the resting orders of the same trader it would cancel,
    /// and the base units left. Refused exactly when [`Self::place`] refuses.
    pub fn plan(&self, o: &NewOrder) -> Result<Placement, BookError> {
        self.plan_without(o, &HashSet::new())
    }

    /// [`Self::plan`] as if the resting orders in `skip` were not there (the engine's makers
    /// that the node's state no longer backs, removed only once the whole placement checks out).
    pub fn plan_without(&self, o: &NewOrder, skip: &HashSet<OrderId>) -> Result<Placement, BookError> {
        self.check(o)?;
        let opposite = o.side.opposite();
        let crossing = || {
            self.priority(opposite)
                .take_while(|&(&price, _)| crosses(o.side, o.price, price))
                .flat_map(|(&price, queue)| queue.iter().filter(|id| !skip.contains(id)).map(move |&id| (price, id)))
        };
        if o.tif == TimeInForce::PostOnly
            && let Some((best, _)) = crossing().next()
        {
            return Err(BookError::WouldTake { best });
        }
        let mut placement = Placement::default();
        let mut remaining = o.amount;
        for (price, id) in crossing() {
            if remaining == 0 {
                break;
            }
            let maker = &self.orders[&id];
            if maker.trader == o.trader {
                placement.self_trade_cancelled.push(maker.id);
                continue;
            }
            let mut left = maker.remaining;
            while left > 0 && remaining > 0 {
                let base = self.fill_size(remaining.min(left), price);
                let quote = quote_of(base, price).expect("bounded by the maker's own amount and price");
                placement.fills.push(Fill { maker: maker.id, taker: o.id, maker_side: opposite, price, base, quote });
                remaining -= base;
                left -= base;
            }
        }
        match o.tif {
            _ if remaining == 0 => {}
            TimeInForce::Ioc => placement.expired = remaining,
            TimeInForce::Gtc | TimeInForce::PostOnly => placement.rested = remaining,
        }
        Ok(placement)
    }

    /// Places `o`: trades it against the book, then rests, expires or refuses what is left by
    /// its time in force ([`Self::plan`], applied). A refused order (`Err`) changes nothing.
    pub fn place(&mut self, o: NewOrder) -> Result<Placement, BookError> {
        let placement = self.plan(&o)?;
        for &id in &placement.self_trade_cancelled {
            self.cancel(id).expect("planned on resting orders");
        }
        for fill in &placement.fills {
            let maker = self.orders.get_mut(&fill.maker).expect("planned on resting orders");
            maker.remaining -= fill.base;
            if maker.remaining == 0 {
                self.cancel(fill.maker).expect("it rests");
            }
        }
        if placement.rested > 0 {
            let resting =
                Resting { id: o.id, trader: o.trader, side: o.side, price: o.price, remaining: placement.rested };
            self.orders.insert(o.id, resting);
            self.levels(o.side).entry(o.price).or_default().push_back(o.id);
        }
        Ok(placement)
    }

    /// Removes a resting order (its owner cancelled it, or the node refused a fill of it).
    pub fn cancel(&mut self, id: OrderId) -> Result<Resting, BookError> {
        let order = self.orders.remove(&id).ok_or(BookError::UnknownOrder(id))?;
        let levels = self.levels(order.side);
        let queue = levels.get_mut(&order.price).expect("a resting order has its level");
        queue.retain(|&queued| queued != id);
        if queue.is_empty() {
            levels.remove(&order.price);
        }
        Ok(order)
    }

    /// The best `n` price levels of each side.
    pub fn depth(&self, n: usize) -> Depth {
        let level = |(&price, queue): (&u128, &VecDeque<OrderId>)| Level {
            price,
            amount: queue.iter().map(|id| self.orders[id].remaining).sum(),
            orders: queue.len() as u32,
        };
        Depth {
            bids: self.bids.iter().rev().take(n).map(level).collect(),
            asks: self.asks.iter().take(n).map(level).collect(),
        }
    }

    /// The price level `price` of `side` (zero amount and no orders if nothing rests there).
    pub fn level(&self, side: Side, price: u128) -> Level {
        let queue = match side {
            Side::Buy => self.bids.get(&price),
            Side::Sell => self.asks.get(&price),
        };
        let (amount, orders) =
            queue.map_or((0, 0), |q| (q.iter().map(|id| self.orders[id].remaining).sum(), q.len() as u32));
        Level { price, amount, orders }
    }

    /// The resting orders of `side` in priority order (best price first, then arrival).
    pub fn queue(&self, side: Side) -> Vec<Resting> {
        self.priority(side).flat_map(|(_, ids)| ids).map(|id| self.orders[id]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_of_is_the_exact_wide_quotient() {
        assert_eq!(quote_of(3, 2 * PRICE_SCALE), Some(6));
        assert_eq!(quote_of(u128::MAX, PRICE_SCALE), Some(u128::MAX));
        assert_eq!(quote_of(u128::MAX, PRICE_SCALE + 1), None);
        // The product needs more than 128 bits; the quotient does not.
        assert_eq!(quote_of(PRICE_SCALE << 40, 1 << 80), Some(1 << 120));
        assert_eq!(quote_of(7 * PRICE_SCALE, 1 << 100), Some(7 << 100));
        assert_eq!(quote_of(1, PRICE_SCALE - 1), Some(0));
    }
}
