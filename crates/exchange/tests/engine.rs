//! The engine against the node's rules (the state machine): it never hands the node a fill the
//! node refuses, even when traders move their funds away or use a slot behind its back; each
//! admission refusal, cancels and reservations; and an engine restored from its store is the
//! engine it was.

use crate::common;

use common::{LOT, TICK, View, World};
use proptest::prelude::*;
use zkl_exchange::book::{BookError, Side, TimeInForce, quote_of};
use zkl_exchange::engine::{Engine, EngineConfig, EngineError, Event, OrderRequest, PairConfig};
use zkl_exchange::store::{Store, restore};
use zkl_state::testkit::{ETH, ONE, USDC, User};
use zkl_types::{SignedOrder, SlotId, Tx};

fn engine(w: &World) -> Engine {
    let pairs = vec![PairConfig { base: ETH, quote: USDC, tick: TICK, lot: LOT }];
    Engine::new(EngineConfig { matcher: w.ids[0], pairs }).unwrap()
}

fn order(w: &World, who: usize, slot: SlotId, sell: bool, ticks: u128, lots: u128) -> SignedOrder {
    w.users[who].order(w.ids[who], slot, 0, ETH, USDC, lots * LOT, ticks * TICK, sell)
}

fn req(w: &World, who: usize, order: SignedOrder, tif: TimeInForce) -> OrderRequest {
    OrderRequest { order, pubkey: w.users[who].pubkey, tif }
}

/// Submits trader `who`'s order, then executes every match on the state; panics if the node
/// refuses one.
fn submit(
    e: &mut Engine,
    w: &mut World,
    who: usize,
    order: SignedOrder,
    tif: TimeInForce,
) -> Result<zkl_exchange::engine::Accepted, EngineError> {
    let accepted = e.submit(req(w, who, order, tif), &View(&w.state))?;
    for m in &accepted.matches {
        let tx = Tx::OrderMatching(Box::new(m.clone())).sign(&w.users[0].l2);
        if let Err(err) = w.state.execute_tx(&tx) {
            panic!("the node refuses {m:?}: {err}");
        }
    }
    Ok(accepted)
}

/// [`submit`] of a fresh order of trader `who` in `slot`.
#[allow(clippy::too_many_arguments)]
fn place(
    e: &mut Engine,
    w: &mut World,
    who: usize,
    slot: SlotId,
    sell: bool,
    ticks: u128,
    lots: u128,
    tif: TimeInForce,
) -> Result<zkl_exchange::engine::Accepted, EngineError> {
    let o = order(w, who, slot, sell, ticks, lots);
    submit(e, w, who, o, tif)
}

#[derive(Debug, Clone)]
enum Action {
    Order {
        who: usize,
        sell: bool,
        ticks: u128,
        lots: u128,
        tif: u8,
    },
    /// The trader sends all but `keep` lots' worth of its ETH or USDC to user 0 through the node.
    Drain {
        who: usize,
        eth: bool,
    },
    Cancel {
        who: usize,
        k: usize,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (1..5usize, any::<bool>(), 99_995..100_005u128, 1..2_000u128, 0..4u8)
            .prop_map(|(who, sell, ticks, lots, tif)| Action::Order { who, sell, ticks, lots, tif }),
        1 => (1..5usize, any::<bool>()).prop_map(|(who, eth)| Action::Drain { who, eth }),
        1 => (1..5usize, any::<usize>()).prop_map(|(who, k)| Action::Cancel { who, k }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Random orders, cancels and traders emptying their accounts behind the engine's back:
    /// every match the engine returns is executed by the node's rules; an order is refused only
    /// with a typed reason; live orders are always backed by their slots; nothing is created.
    /// Every event goes to a store; the engine restored from it is the engine it was.
    #[test]
    fn the_engine_never_hands_the_node_a_fill_it_refuses(actions in prop::collection::vec(action(), 1..40)) {
        let mut w = World::new();
        let mut e = engine(&w);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exchange.redb");
        let store = Store::open(&path).unwrap();
        let (eth, usdc) = (w.total(ETH), w.total(USDC));
        let mut next_slot = [0u16; 5];
        let mut nonces = [1u32; 5];
        for a in actions {
            match a {
                Action::Order { who, sell, ticks, lots, tif } => {
                    let tif = match tif { 0 => TimeInForce::Ioc, 1 => TimeInForce::PostOnly, _ => TimeInForce::Gtc };
                    let o = order(&w, who, next_slot[who], sell, ticks, lots);
                    next_slot[who] += 1;
                    match submit(&mut e, &mut w, who, o, tif) {
                        Ok(accepted) => {
                            store.append(&accepted.event()).unwrap();
                        }
                        Err(EngineError::Insufficient { .. } | EngineError::Book(BookError::WouldTake { .. })) => {}
                        Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
                    }
                }
                Action::Drain { who, eth: drain_eth } => {
                    let (id, token) = (w.ids[who], if drain_eth { ETH } else { USDC });
                    let amount = w.state.balance(id, 0, token) / ONE * ONE;
                    if amount > 0 {
                        let t = w.users[who].transfer(id, w.users[0].address, token, amount, 0, nonces[who]);
                        w.state.execute_tx(&t).unwrap();
                        nonces[who] += 1;
                    }
                }
                Action::Cancel { who, k } => {
                    let mine = e.orders_of(w.ids[who]);
                    if !mine.is_empty() {
                        let id = mine[k % mine.len()].0;
                        prop_assert!(e.cancel(w.ids[who], id).is_ok());
                        store.append(&Event::Cancelled { id }).unwrap();
                    }
                }
            }
            // Every live order's slot is where the engine expects it.
            for who in 1..5 {
                for (_, live) in e.orders_of(w.ids[who]) {
                    let o = &live.order.order;
                    let slot = w.state.slot(o.account, o.sub, o.slot);
                    let residue = live.party().residue();
                    prop_assert_eq!((slot.nonce, slot.residue), (0, residue));
                }
                // Reservations are what the live orders may still give.
                for token in [ETH, USDC] {
                    let owed: u128 = e
                        .orders_of(w.ids[who])
                        .iter()
                        .filter(|(_, l)| (if l.order.order.is_sell { ETH } else { USDC }) == token)
                        .map(|(_, l)| if l.order.order.is_sell { l.left } else { quote_of(l.left, l.order.order.price).unwrap() })
                        .sum();
                    prop_assert_eq!(e.reserved(w.ids[who], 0, token), owed, "trader {} token {}", who, token);
                }
            }
        }
        prop_assert_eq!((w.total(ETH), w.total(USDC)), (eth, usdc));

        // Restarted from the store: the same orders, reservations and books, and the next
        // order gets the same id and the same matches.
        drop(store);
        let mut again = restore(e.config().clone(), &Store::open(&path).unwrap()).unwrap();
        for who in 1..5 {
            let id = w.ids[who];
            prop_assert_eq!(again.orders_of(id), e.orders_of(id));
            for token in [ETH, USDC] {
                prop_assert_eq!(again.reserved(id, 0, token), e.reserved(id, 0, token));
            }
        }
        let (b1, b2) = (e.book(ETH, USDC).unwrap(), again.book(ETH, USDC).unwrap());
        for side in [Side::Buy, Side::Sell] {
            prop_assert_eq!(b1.queue(side), b2.queue(side));
        }
        let next = OrderRequest { order: order(&w, 1, 999, false, 100_005, 50), pubkey: w.users[1].pubkey, tif: TimeInForce::Gtc };
        let view = View(&w.state);
        prop_assert_eq!(again.submit(next.clone(), &view), e.submit(next, &view));
    }
}

#[test]
fn a_maker_whose_funds_left_is_removed_instead_of_matched() {
    let mut w = World::new();
    let mut e = engine(&w);
    let ask = place(&mut e, &mut w, 1, 0, true, 100_000, 10, TimeInForce::Gtc).unwrap();
    let second = place(&mut e, &mut w, 2, 0, true, 100_000, 10, TimeInForce::Gtc).unwrap();
    // Trader 1 sends its ETH away through the node.
    let all = w.state.balance(w.ids[1], 0, ETH);
    let t = w.users[1].transfer(w.ids[1], w.users[0].address, ETH, all, 0, 1);
    w.state.execute_tx(&t).unwrap();
    let bid = place(&mut e, &mut w, 3, 0, false, 100_000, 10, TimeInForce::Gtc).unwrap();
    assert_eq!(bid.removed.len(), 1, "{bid:?}");
    assert_eq!(bid.removed[0].0, ask.id);
    assert!(bid.removed[0].1.contains("has 0 of token 1"), "{}", bid.removed[0].1);
    assert_eq!(bid.placement.fills.iter().map(|f| f.maker).collect::<Vec<_>>(), vec![second.id]);
    assert!(e.order(ask.id).is_none() && e.reserved(w.ids[1], 0, ETH) == 0);
}

#[test]
fn each_bad_request_is_refused_with_why_and_changes_nothing() {
    let mut w = World::new();
    let mut e = engine(&w);
    let resting = place(&mut e, &mut w, 1, 0, true, 100_000, 10, TimeInForce::Gtc).unwrap();
    let reserved = e.reserved(w.ids[1], 0, ETH);
    assert_eq!(reserved, 10 * LOT);
    let good = order(&w, 2, 0, false, 99_000, 10);
    let mut tampered = good.clone();
    tampered.order.amount += LOT;
    let other_pair = w.users[2].order(w.ids[2], 0, 0, ETH, zkl_state::testkit::USDT, LOT, TICK, false);
    let mut high_fee = good.order.clone();
    high_fee.taker_fee_bps = 101;
    let stale = w.users[2].order(w.ids[2], 0, 1, ETH, USDC, LOT, TICK, false);
    let unpackable = w.users[2].order(w.ids[2], 0, 0, ETH, USDC, 123_456_789_012_345 * LOT, TICK, false);
    let huge = w.users[2].order(w.ids[2], 0, 0, ETH, USDC, 10_000_000 * ONE, 100_000 * TICK, false);
    let keyless = User::new(77).order(99, 0, 0, ETH, USDC, LOT, TICK, false);
    let cases: Vec<(OrderRequest, &str)> = vec![
        (req(&w, 2, other_pair, TimeInForce::Gtc), "does not trade 1/3"),
        (req(&w, 2, high_fee.sign(&w.users[2].l2), TimeInForce::Gtc), "fee rate 101"),
        (req(&w, 2, unpackable, TimeInForce::Gtc), "not a packed amount"),
        (
            OrderRequest { order: keyless, pubkey: User::new(77).pubkey, tif: TimeInForce::Gtc },
            "account 99 has no L2 key",
        ),
        (req(&w, 3, good.clone(), TimeInForce::Gtc), "not signed by account"),
        (req(&w, 2, tampered, TimeInForce::Gtc), "bad order signature"),
        (req(&w, 2, stale, TimeInForce::Gtc), "at nonce 0, the order has 1"),
        (req(&w, 1, order(&w, 1, 0, true, 100_000, 1), TimeInForce::Gtc), "already serves a resting order"),
        (req(&w, 2, huge, TimeInForce::Gtc), "the order needs"),
        (req(&w, 2, order(&w, 2, 1, false, 100_000, 1), TimeInForce::PostOnly), "post-only order would trade"),
    ];
    for (r, why) in cases {
        let err = e.submit(r, &View(&w.state)).unwrap_err().to_string();
        assert!(err.contains(why), "{err} (expected: {why})");
        assert!(!err.contains('\n'));
        assert_eq!(e.reserved(w.ids[1], 0, ETH), reserved);
        assert_eq!(e.book(ETH, USDC).unwrap().len(), 1);
    }
    // Reservations: trader 1 cannot sell more ETH than it has beyond what its ask reserves.
    let all = w.state.balance(w.ids[1], 0, ETH);
    let rest = all - reserved;
    let over = w.users[1].order(w.ids[1], 1, 0, ETH, USDC, rest + LOT, 200_000 * TICK, true);
    let err = e.submit(req(&w, 1, over, TimeInForce::Gtc), &View(&w.state)).unwrap_err();
    assert!(
        matches!(err, EngineError::Insufficient { needed, available, .. } if needed == rest + LOT && available == rest)
    );
    // Cancel: only the owner; it releases the reservation.
    assert!(matches!(e.cancel(w.ids[2], resting.id), Err(EngineError::NotOwner { .. })));
    assert!(matches!(e.cancel(w.ids[1], 999), Err(EngineError::UnknownOrder(999))));
    assert_eq!(e.cancel(w.ids[1], resting.id).unwrap().left, 10 * LOT);
    assert_eq!(e.reserved(w.ids[1], 0, ETH), 0);
    assert!(e.book(ETH, USDC).unwrap().is_empty());
    // The slot is free again.
    place(&mut e, &mut w, 1, 0, true, 100_000, 1, TimeInForce::Gtc).unwrap();
}

#[test]
fn an_order_filled_in_part_before_rests_with_its_slots_residue() {
    let mut w = World::new();
    let mut e = engine(&w);
    // A buy of 10 lots meets an ask of 4 as an IOC: 6 lots stay in the slot's residue.
    place(&mut e, &mut w, 1, 0, true, 100_000, 4, TimeInForce::Gtc).unwrap();
    let buy = order(&w, 2, 0, false, 100_000, 10);
    let first = submit(&mut e, &mut w, 2, buy.clone(), TimeInForce::Ioc).unwrap();
    assert_eq!((first.placement.expired, first.matches.len()), (6 * LOT, 1));
    assert_eq!(w.state.slot(w.ids[2], 0, 0).residue, 6 * LOT);
    // The same signed order again: it rests with the 6 lots, and a seller fills them.
    let again = submit(&mut e, &mut w, 2, buy, TimeInForce::Gtc).unwrap();
    assert_eq!(again.placement.rested, 6 * LOT);
    assert_eq!(e.reserved(w.ids[2], 0, USDC), 6 * LOT * 1_000);
    let sell = place(&mut e, &mut w, 3, 0, true, 100_000, 6, TimeInForce::Gtc).unwrap();
    assert_eq!(sell.matches[0].maker_residue_before, 6 * LOT);
    assert_eq!(w.state.slot(w.ids[2], 0, 0).nonce, 1, "the order is complete");
    assert!(e.order(again.id).is_none() && e.reserved(w.ids[2], 0, USDC) == 0);
    assert_eq!(e.book(ETH, USDC).unwrap().queue(Side::Buy), vec![]);
}

/// The rest of an immediate-or-cancel order signed again at another price for exactly what its
/// slot holds: the slot is not fresh although the new order is untouched, so its fills claim the
/// slot's residue, and the node accepts them.
#[test]
fn an_order_signed_again_for_its_slots_residue_claims_the_residue() {
    let mut w = World::new();
    let mut e = engine(&w);
    place(&mut e, &mut w, 1, 0, true, 100_000, 100, TimeInForce::Gtc).unwrap();
    let first = place(&mut e, &mut w, 2, 0, false, 100_000, 200, TimeInForce::Ioc).unwrap();
    assert_eq!(first.placement.expired, 100 * LOT);
    assert_eq!(w.state.slot(w.ids[2], 0, 0).residue, 100 * LOT);
    // The same slot and nonce, 100 lots at a lower price: it rests those 100 lots, not fresh.
    let again = place(&mut e, &mut w, 2, 0, false, 99_000, 100, TimeInForce::Gtc).unwrap();
    assert!(!again.fresh && again.left == 100 * LOT);
    let sell = place(&mut e, &mut w, 3, 0, true, 99_000, 40, TimeInForce::Gtc).unwrap();
    assert_eq!(sell.matches[0].maker_residue_before, 100 * LOT);
    assert_eq!(w.state.slot(w.ids[2], 0, 0).residue, 60 * LOT);
    // Still backed as a maker: the next seller trades with it instead of removing it.
    let more = place(&mut e, &mut w, 4, 0, true, 99_000, 60, TimeInForce::Gtc).unwrap();
    assert!(more.removed.is_empty(), "{:?}", more.removed);
    assert_eq!(w.state.slot(w.ids[2], 0, 0).nonce, 1);
}
