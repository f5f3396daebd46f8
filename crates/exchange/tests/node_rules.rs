//! Every fill the book makes is a trade the node accepts: random signed orders from four traders
//! go through the book, and each fill becomes an `OrderMatching` signed by the matcher that the
//! state machine (`zkl-state`, the node's rules) executes without error; afterwards every slot
//! holds what the book says is left of its order, and no token was created or lost.

use std::collections::HashMap;

use proptest::prelude::*;
use zkl_exchange::book::{Book, OrderId, PairRules, Side, TimeInForce};
use zkl_exchange::settle::{book_order, matching, residue};
use zkl_state::State;
use zkl_state::testkit::{ETH, ONE, USDC, User, demo_registry, deposit};
use zkl_types::{AccountId, SignedOrder, Tx};

/// ETH/USDC (both 18 decimals on L2): ticks of 0.01 USDC, lots of 0.0001 ETH.
const TICK: u128 = ONE / 100;
const LOT: u128 = ONE / 10_000;

struct Market {
    state: State,
    users: Vec<User>,
    ids: Vec<AccountId>,
    book: Book,
    /// Live orders: the signed order and the base units it has left.
    live: HashMap<OrderId, (SignedOrder, u128)>,
    next_slot: Vec<u16>,
}

impl Market {
    /// User 0 is the matcher; users 1..=4 trade with 1,000 ETH and 10,000,000 USDC each.
    fn new() -> Self {
        let mut state = State::new(demo_registry(), User::new(999).address);
        state.set_block_params(zkl_state::BlockParams {
            capacity: 1 << 16,
            max_fee_tokens: 16,
            max_onchain_ops: 1 << 16,
        });
        let users: Vec<User> = (0..5).map(User::new).collect();
        let mut ids = Vec::new();
        let mut serial = 0;
        for u in &users {
            let mut id = 0;
            for (chain, token, amount) in [(1, ETH, 1_000 * ONE), (2, USDC, 10_000_000_000_000)] {
                serial += 1;
                let zkl_types::Op::Deposit(d) =
                    state.execute_priority(&deposit(chain, serial, u.address, token, token, amount)).unwrap()
                else {
                    panic!("a deposit")
                };
                id = d.account;
            }
            state.execute_tx(&u.change_pubkey(id, 0, 1, ETH, 0)).unwrap();
            ids.push(id);
        }
        state.set_matcher(ids[0], true);
        Market {
            state,
            users,
            ids,
            book: Book::new(PairRules::new(TICK, LOT).unwrap()),
            live: HashMap::new(),
            next_slot: vec![0; 5],
        }
    }

    fn total(&self, token: u16) -> u128 {
        let traders: u128 = self.ids.iter().map(|&id| self.state.balance(id, 0, token)).sum();
        traders + self.state.pending_fees().get(&token).copied().unwrap_or(0)
    }

    /// Places a fresh order of trader `who` (1..=4) and settles every fill on the state.
    fn place(&mut self, id: OrderId, who: usize, sell: bool, ticks: u128, lots: u128, tif: TimeInForce) {
        let slot = self.next_slot[who];
        self.next_slot[who] += 1;
        let (account, user) = (self.ids[who], &self.users[who]);
        let order = user.order(account, slot, 0, ETH, USDC, lots * LOT, ticks * TICK, sell);
        let p = self.book.place(book_order(id, &order, lots * LOT, tif)).expect("valid orders");
        let mut taker_left = lots * LOT;
        for cancelled in &p.self_trade_cancelled {
            self.live.remove(cancelled);
        }
        for fill in &p.fills {
            let (maker, maker_left) = self.live.get(&fill.maker).cloned().expect("the maker is live");
            let tx = matching(self.ids[0], &maker, maker_left, &order, taker_left, fill);
            let signed = Tx::OrderMatching(Box::new(tx)).sign(&self.users[0].l2);
            if let Err(e) = self.state.execute_tx(&signed) {
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
        let (eth, usdc) = (m.total(ETH), m.total(USDC));
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
            let slot = m.state.slot(o.account, o.sub, o.slot);
            prop_assert_eq!((slot.nonce, slot.residue), (0, residue(order, *left)));
        }
        prop_assert_eq!(m.book.queue(Side::Buy).len() + m.book.queue(Side::Sell).len(), m.live.len());
        prop_assert_eq!((m.total(ETH), m.total(USDC)), (eth, usdc));
    }
}
