//! The order book against a reference model (a flat list scanned for the best price and the
//! earliest arrival), on random orders and cancels from a few traders; and each rule and
//! rejection on its own.

use proptest::prelude::*;
use zkl_exchange::book::{
    Book, BookError, Fill, Level, NewOrder, OrderId, PairRules, Placement, Resting, Side, TimeInForce, Trader,
};
use zkl_types::PRICE_SCALE;

/// 0.01 quote per base unit; 100 base units per lot: every fill exact.
const TICK: u128 = PRICE_SCALE / 100;
const LOT: u128 = 100;

fn trader(n: u32) -> Trader {
    Trader { account: 10 + n, sub: 0 }
}

fn order(id: OrderId, who: u32, side: Side, ticks: u128, lots: u128, tif: TimeInForce) -> NewOrder {
    NewOrder { id, trader: trader(who), side, price: ticks * TICK, amount: lots * LOT, tif }
}

fn book() -> Book {
    Book::new(PairRules::new(TICK, LOT).unwrap())
}

/// The reference: resting orders in arrival order; the best maker is found by scanning.
#[derive(Default)]
struct Model {
    resting: Vec<Resting>,
}

impl Model {
    fn best_maker(&self, side: Side, limit: u128) -> Option<usize> {
        let eligible = self.resting.iter().enumerate().filter(|(_, r)| r.side != side);
        let crossing = eligible.filter(|(_, r)| match side {
            Side::Buy => r.price <= limit,
            Side::Sell => r.price >= limit,
        });
        // Best price; among equals the earliest (min_by_key / max_by_key keep the first / last).
        match side {
            Side::Buy => crossing.min_by_key(|(i, r)| (r.price, *i)).map(|(i, _)| i),
            Side::Sell => crossing.min_by_key(|(i, r)| (std::cmp::Reverse(r.price), *i)).map(|(i, _)| i),
        }
    }

    fn place(&mut self, o: NewOrder) -> Result<Placement, BookError> {
        if o.amount == 0 {
            return Err(BookError::ZeroAmount);
        }
        if o.price == 0 || !o.price.is_multiple_of(TICK) {
            return Err(BookError::Tick { price: o.price, tick: TICK });
        }
        if !o.amount.is_multiple_of(LOT) {
            return Err(BookError::Lot { amount: o.amount, lot: LOT });
        }
        if self.resting.iter().any(|r| r.id == o.id) {
            return Err(BookError::DuplicateId(o.id));
        }
        if o.tif == TimeInForce::PostOnly
            && let Some(i) = self.best_maker(o.side, o.price)
        {
            return Err(BookError::WouldTake { best: self.resting[i].price });
        }
        let mut p = Placement::default();
        let mut left = o.amount;
        while left > 0 {
            let Some(i) = self.best_maker(o.side, o.price) else { break };
            let maker = &mut self.resting[i];
            if maker.trader == o.trader {
                p.self_trade_cancelled.push(maker.id);
                self.resting.remove(i);
                continue;
            }
            let base = left.min(maker.remaining);
            let quote = base * maker.price / PRICE_SCALE;
            p.fills.push(Fill {
                maker: maker.id,
                taker: o.id,
                maker_side: maker.side,
                price: maker.price,
                base,
                quote,
            });
            left -= base;
            maker.remaining -= base;
            if maker.remaining == 0 {
                self.resting.remove(i);
            }
        }
        if left > 0 {
            if o.tif == TimeInForce::Ioc {
                p.expired = left;
            } else {
                self.resting.push(Resting {
                    id: o.id,
                    trader: o.trader,
                    side: o.side,
                    price: o.price,
                    remaining: left,
                });
                p.rested = left;
            }
        }
        Ok(p)
    }

    fn cancel(&mut self, id: OrderId) -> Result<Resting, BookError> {
        let i = self.resting.iter().position(|r| r.id == id).ok_or(BookError::UnknownOrder(id))?;
        Ok(self.resting.remove(i))
    }

    /// Priority order of one side.
    fn queue(&self, side: Side) -> Vec<Resting> {
        let mut q: Vec<(usize, Resting)> =
            self.resting.iter().copied().enumerate().filter(|(_, r)| r.side == side).collect();
        match side {
            Side::Buy => q.sort_by_key(|(i, r)| (std::cmp::Reverse(r.price), *i)),
            Side::Sell => q.sort_by_key(|(i, r)| (r.price, *i)),
        }
        q.into_iter().map(|(_, r)| r).collect()
    }
}

#[derive(Debug, Clone)]
enum Action {
    Place { who: u32, sell: bool, ticks: u128, lots: u128, tif: u8 },
    Cancel(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..4u32, any::<bool>(), 95..106u128, 0..6u128, 0..6u8)
            .prop_map(|(who, sell, ticks, lots, tif)| Action::Place { who, sell, ticks, lots, tif }),
        1 => any::<usize>().prop_map(Action::Cancel),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Same fills, same results and errors, same book (priority order and remaining amounts) as
    /// the reference, after every action; the book is never crossed; every order's amount is
    /// traded, resting, expired or cancelled, never more.
    #[test]
    fn the_book_follows_price_time_priority(actions in prop::collection::vec(action(), 1..120)) {
        let (mut b, mut m) = (book(), Model::default());
        let mut next_id = 0;
        let mut placed: Vec<NewOrder> = Vec::new();
        for a in actions {
            match a {
                Action::Place { who, sell, ticks, lots, tif } => {
                    let side = if sell { Side::Sell } else { Side::Buy };
                    let tif = match tif { 0 => TimeInForce::Ioc, 1 => TimeInForce::PostOnly, _ => TimeInForce::Gtc };
                    // Now and then an id that may still rest (refused as a duplicate).
                    let id = if lots == 5 && next_id > 0 { next_id - 1 } else { next_id };
                    let o = order(id, who, side, ticks, lots, tif);
                    let got = b.place(o);
                    prop_assert_eq!(&got, &m.place(o));
                    if got.is_ok() {
                        next_id += 1;
                        placed.push(o);
                    }
                }
                Action::Cancel(k) if !placed.is_empty() => {
                    let id = placed[k % placed.len()].id;
                    prop_assert_eq!(b.cancel(id), m.cancel(id));
                }
                Action::Cancel(_) => {}
            }
            for side in [Side::Buy, Side::Sell] {
                prop_assert_eq!(b.queue(side), m.queue(side));
            }
            if let (Some(bid), Some(ask)) = (b.best_bid(), b.best_ask()) {
                prop_assert!(bid < ask, "crossed book: bid {} ask {}", bid, ask);
            }
            prop_assert_eq!(b.len(), m.resting.len());
        }
    }
}

#[test]
fn a_taker_walks_the_book_through_partial_fills_at_each_makers_price() {
    let mut b = book();
    // Asks: 3 lots at 1.00 (first), 2 lots at 1.00 (second), 4 lots at 1.02.
    for (id, ticks, lots) in [(1, 100, 3), (2, 100, 2), (3, 102, 4)] {
        assert_eq!(b.place(order(id, 1, Side::Sell, ticks, lots, TimeInForce::Gtc)).unwrap().rested, lots * LOT);
    }
    b.place(order(4, 2, Side::Sell, 101, 1, TimeInForce::Gtc)).unwrap();
    // A buy of 8 lots up to 1.02: 3 + 2 at 1.00, 1 at 1.01, 2 of the 4 at 1.02.
    let p = b.place(order(5, 3, Side::Buy, 102, 8, TimeInForce::Gtc)).unwrap();
    let fills: Vec<(OrderId, u128, u128, u128)> = p.fills.iter().map(|f| (f.maker, f.price, f.base, f.quote)).collect();
    assert_eq!(
        fills,
        vec![
            (1, 100 * TICK, 300, 300),
            (2, 100 * TICK, 200, 200),
            (4, 101 * TICK, 100, 101),
            (3, 102 * TICK, 200, 204),
        ]
    );
    assert!(p.fills.iter().all(|f| f.taker == 5 && f.maker_side == Side::Sell));
    assert_eq!((p.rested, p.expired), (0, 0));
    assert_eq!(b.order(3).unwrap().remaining, 200);
    assert_eq!(b.depth(5).asks, vec![Level { price: 102 * TICK, amount: 200, orders: 1 }]);
    assert!(b.depth(5).bids.is_empty());
}

#[test]
fn immediate_or_cancel_never_rests_and_post_only_never_takes() {
    let mut b = book();
    b.place(order(1, 1, Side::Buy, 99, 2, TimeInForce::Gtc)).unwrap();
    let p = b.place(order(2, 2, Side::Sell, 99, 5, TimeInForce::Ioc)).unwrap();
    assert_eq!((p.fills.len(), p.rested, p.expired), (1, 0, 300));
    assert!(b.is_empty());
    // Not crossing: rests whole. Crossing: refused whole, nothing changes.
    b.place(order(3, 1, Side::Buy, 99, 2, TimeInForce::PostOnly)).unwrap();
    let refused = b.place(order(4, 2, Side::Sell, 98, 1, TimeInForce::PostOnly)).unwrap_err();
    assert_eq!(refused, BookError::WouldTake { best: 99 * TICK });
    assert_eq!(
        b.queue(Side::Buy),
        vec![Resting { id: 3, trader: trader(1), side: Side::Buy, price: 99 * TICK, remaining: 200 }]
    );
    assert!(b.queue(Side::Sell).is_empty());
    let p = b.place(order(5, 2, Side::Sell, 100, 1, TimeInForce::PostOnly)).unwrap();
    assert_eq!((p.fills.len(), p.rested), (0, 100));
}

#[test]
fn a_trader_never_trades_with_itself() {
    let mut b = book();
    b.place(order(1, 1, Side::Sell, 100, 1, TimeInForce::Gtc)).unwrap();
    b.place(order(2, 2, Side::Sell, 100, 1, TimeInForce::Gtc)).unwrap();
    // Trader 1 buys: its own ask (first in line) is cancelled, trader 2's fills it.
    let p = b.place(order(3, 1, Side::Buy, 100, 2, TimeInForce::Gtc)).unwrap();
    assert_eq!(p.self_trade_cancelled, vec![1]);
    assert_eq!(p.fills.iter().map(|f| f.maker).collect::<Vec<_>>(), vec![2]);
    assert_eq!(p.rested, 100);
    assert_eq!(b.order(1), None);
    // Another sub-account of the same account is another trader.
    let other_sub = NewOrder {
        trader: Trader { account: trader(1).account, sub: 1 },
        ..order(4, 1, Side::Sell, 100, 1, TimeInForce::Gtc)
    };
    assert_eq!(b.place(other_sub).unwrap().fills.len(), 1);
}

#[test]
fn each_bad_order_is_refused_with_why_and_changes_nothing() {
    let mut b = book();
    b.place(order(1, 1, Side::Buy, 100, 1, TimeInForce::Gtc)).unwrap();
    let before = (b.queue(Side::Buy), b.queue(Side::Sell));
    let cases = [
        (NewOrder { amount: 0, ..order(2, 2, Side::Sell, 100, 1, TimeInForce::Gtc) }, BookError::ZeroAmount),
        (
            NewOrder { price: 0, ..order(2, 2, Side::Sell, 100, 1, TimeInForce::Gtc) },
            BookError::Tick { price: 0, tick: TICK },
        ),
        (
            NewOrder { price: TICK + 1, ..order(2, 2, Side::Sell, 100, 1, TimeInForce::Gtc) },
            BookError::Tick { price: TICK + 1, tick: TICK },
        ),
        (
            NewOrder { amount: LOT + 1, ..order(2, 2, Side::Sell, 100, 1, TimeInForce::Gtc) },
            BookError::Lot { amount: LOT + 1, lot: LOT },
        ),
        (order(1, 2, Side::Sell, 100, 1, TimeInForce::Gtc), BookError::DuplicateId(1)),
        (
            NewOrder { amount: u128::MAX / LOT * LOT, ..order(2, 2, Side::Sell, 200, 1, TimeInForce::Gtc) },
            BookError::TooLarge { amount: u128::MAX / LOT * LOT, price: 200 * TICK },
        ),
    ];
    for (o, want) in cases {
        let err = b.place(o).unwrap_err();
        assert_eq!(err, want);
        assert!(!err.to_string().is_empty() && !err.to_string().contains('\n'));
        assert_eq!((b.queue(Side::Buy), b.queue(Side::Sell)), before);
    }
    assert_eq!(b.cancel(9).unwrap_err(), BookError::UnknownOrder(9));
    assert_eq!(b.cancel(1).unwrap().remaining, 100);
    assert!(b.is_empty() && b.depth(10) == Default::default());
}

#[test]
fn pair_rules_must_make_every_fill_exact() {
    assert!(PairRules::new(TICK, LOT).is_ok());
    assert!(PairRules::new(1, PRICE_SCALE).is_ok());
    assert!(PairRules::new(3 * PRICE_SCALE, 1).is_ok());
    for (tick, lot) in [(0, LOT), (TICK, 0), (TICK, LOT - 1), (PRICE_SCALE / 3, 3)] {
        assert_eq!(PairRules::new(tick, lot), Err(BookError::Rules { tick, lot }), "{tick} {lot}");
    }
}

proptest! {
    /// Realistic sizes (an 18-decimal base in lots of 10^14, a 6-decimal quote, a tick of 10^4):
    /// a maker and a taker of any packed sizes trade exactly the smaller one, in fills whose base
    /// and quote all pack (the node refuses others), the largest first.
    #[test]
    fn fills_always_pack_and_add_up(
        maker_m in 1..(1u128 << 25), maker_e in 0..6u32,
        taker_m in 1..(1u128 << 25), taker_e in 0..6u32,
        ticks in 1..(1u128 << 24),
    ) {
        use zkl_types::amount::is_packable_amount;
        let (tick, lot) = (10_000, 100_000_000_000_000);
        let mut b = Book::new(PairRules::new(tick, lot).unwrap());
        let (maker, taker) = (maker_m * 10u128.pow(maker_e) * lot, taker_m * 10u128.pow(taker_e) * lot);
        let price = ticks * tick;
        let sell = NewOrder { id: 1, trader: trader(1), side: Side::Sell, price, amount: maker, tif: TimeInForce::Gtc };
        let placed = b.place(sell);
        if matches!(placed, Err(BookError::Unpackable { .. })) {
            // One lot's quote at this price does not pack: refused, and so is the buy.
            let buy = NewOrder { id: 2, side: Side::Buy, amount: taker, trader: trader(2), ..sell };
            let refused = matches!(b.place(buy), Err(BookError::Unpackable { .. }));
            prop_assert!(refused, "the buy at the same price is refused too");
            return Ok(());
        }
        placed.unwrap();
        let buy = NewOrder { id: 2, trader: trader(2), side: Side::Buy, price, amount: taker, tif: TimeInForce::Ioc };
        let p = b.place(buy).unwrap();
        prop_assert_eq!(p.fills.iter().map(|f| f.base).sum::<u128>(), maker.min(taker));
        for f in &p.fills {
            prop_assert!(is_packable_amount(f.base) && is_packable_amount(f.quote), "{:?}", f);
            prop_assert_eq!(f.quote * PRICE_SCALE, f.base * price);
        }
        prop_assert!(p.fills.windows(2).all(|w| w[0].base >= w[1].base));
    }
}

/// One lot's quote with a large mantissa (20,000,000,001 packs, twice it does not): rounding to
/// 10^d lots never packs, so fills take one significant digit of lots each, not one lot each.
#[test]
fn an_awkward_price_still_fills_in_few_fills() {
    use zkl_types::amount::is_packable_amount;
    let (tick, lot) = (PRICE_SCALE / 100, 100);
    let mut b = Book::new(PairRules::new(tick, lot).unwrap());
    let price = 20_000_000_001 * tick;
    let lots = 999_999;
    let sell =
        NewOrder { id: 1, trader: trader(1), side: Side::Sell, price, amount: lots * lot, tif: TimeInForce::Gtc };
    b.place(sell).unwrap();
    let buy = NewOrder { id: 2, trader: trader(2), side: Side::Buy, price, amount: lots * lot, tif: TimeInForce::Gtc };
    let p = b.place(buy).unwrap();
    assert_eq!(p.fills.iter().map(|f| f.base).sum::<u128>(), lots * lot);
    assert!(p.fills.iter().all(|f| is_packable_amount(f.base) && is_packable_amount(f.quote)));
    assert!(p.fills.len() <= 9 * 6, "{} fills", p.fills.len());
    assert!(b.is_empty());
}
