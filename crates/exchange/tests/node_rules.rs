//! Every fill the book makes is a trade the node accepts: random signed orders from four traders
//! go through the book, and each fill becomes an `OrderMatching` signed by the matcher that the
//! state machine (`zkl-state`, the node's rules) executes without error; afterwards every slot
//! holds what the book says is left of its order, and no token was created or lost.

use crate::common;

use std::collections::HashMap;

use common::{LOT, TICK, World};
use proptest::prelude::*;
use zkl_exchange::book::{Book, OrderId, PairRules, Side, TimeInForce};
use zkl_exchange::settle::{Party, book_order, matching};
use zkl_state::testkit::{ETH, USDC};
use zkl_types::{SignedOrder, Tx};

struct Market {
    world: World,
    book: Book,
    /// Live orders: the signed order and the base units it has left.
    live: HashMap<OrderId, (SignedOrder, u128)>,
    next_slot: Vec<u16>,
}

impl Market {
    fn new() -> Self {
        let book = Book::new(PairRules::new(TICK, LOT).unwrap());
        Market { world: World::new(), book, live: HashMap::new(), next_slot: vec![0; 5] }
    }

    /// Places a fresh order of trader `who` (1..=4) and settles every fill on the state.
    fn place(&mut self, id: OrderId, who: usize, sell: bool, ticks: u128, lots: u128, tif: TimeInForce) {
        let slot = self.next_slot[who];
        self.next_slot[who] += 1;
        let (account, user) = (self.world.ids[who], &self.world.users[who]);
        let order = user.order(account, slot, 0, ETH, USDC, lots * LOT, ticks * TICK, sell);
        let p = self.book.place(book_order(id, &order, lots * LOT, tif)).expect("valid orders");
        let mut taker_left = lots * LOT;
        for cancelled in &p.self_trade_cancelled {
            self.live.remove(cancelled);
        }
        for fill in &p.fills {
            let (maker, maker_left) = self.live.get(&fill.maker).cloned().expect("the maker is live");
            let maker_party = Party { order: &maker, left: maker_left, fresh: true };
            let taker = Party { order: &order, left: taker_left, fresh: true };
            let tx = matching(self.world.ids[0], maker_party, taker, fill);
            let signed = Tx::OrderMatching(Box::new(tx)).sign(&self.world.users[0].l2);
            if let Err(e) = self.world.state.execute_tx(&signed) {
                panic!("the node refuses fill {fill:?}: {e}");
            }
            taker_left -= fill.base;
            let left = maker_left - fill.base;
            if left == 0 {
                self.live.remove(&fill.maker);
            } else {
                self.live.insert(fill.maker, (maker, left));
            }
        }
        if p.rested > 0 {
            self.live.insert(id, (order, p.rested));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_fill_the_book_makes_is_accepted_by_the_node(
        orders in prop::collection::vec(
            (1..5usize, any::<bool>(), 99_990..100_010u128, 1..1_000u128, 0..10u32, 0..4u8),
            1..40,
        ),
    ) {
        let mut m = Market::new();
        let (eth, usdc) = (m.world.total(ETH), m.world.total(USDC));
        for (id, (who, sell, ticks, mantissa, e, tif)) in orders.into_iter().enumerate() {
            // Packed amounts: a mantissa times a power of ten, in lots.
            let lots = mantissa * 10u128.pow(e % 3);
            let tif = match tif { 0 => TimeInForce::Ioc, 1 => TimeInForce::PostOnly, _ => TimeInForce::Gtc };
            if tif == TimeInForce::PostOnly {
                let crosses = if sell { m.book.best_bid().is_some_and(|b| b >= ticks * TICK) } else { m.book.best_ask().is_some_and(|a| a <= ticks * TICK) };
                if crosses {
                    continue;
                }
            }
            m.place(id as OrderId, who, sell, ticks, lots, tif);
        }
        // Every live order's slot holds what the book has left of it.
        for (id, (order, left)) in &m.live {
            let o = &order.order;
            prop_assert_eq!(m.book.order(*id).map(|r| r.remaining), Some(*left));
            let slot = m.world.state.slot(o.account, o.sub, o.slot);
            prop_assert_eq!((slot.nonce, slot.residue), (0, Party { order, left: *left, fresh: true }.residue()));
        }
        prop_assert_eq!(m.book.queue(Side::Buy).len() + m.book.queue(Side::Sell).len(), m.live.len());
        prop_assert_eq!((m.world.total(ETH), m.world.total(USDC)), (eth, usdc));
    }
}
