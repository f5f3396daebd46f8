//! From the book to the node: a signed order as the book sees it, and the `OrderMatching` tx of a
//! fill (signed by the matcher), with the slot residues the node expects before it.
//!
//! An order's slot holds the part not yet filled of the order it serves (protocol.md, order
//! slots): residue 0 while the order is untouched (the node then takes the order's amount), the
//! base units left after a partial fill, and back to 0 with the next nonce once it is filled.

use zkl_types::{AccountId, OrderMatching, SignedOrder};

use crate::book::{Fill, NewOrder, OrderId, Side, TimeInForce, Trader};

/// The book's view of a signed order with `left` base units still to fill (its amount for a new
/// order, the slot's residue for one partly filled before).
pub fn book_order(id: OrderId, order: &SignedOrder, left: u128, tif: TimeInForce) -> NewOrder {
    let o = &order.order;
    NewOrder {
        id,
        trader: Trader { account: o.account, sub: o.sub },
        side: if o.is_sell { Side::Sell } else { Side::Buy },
        price: o.price,
        amount: left,
        tif,
    }
}

/// The residue the node's slot holds for `order` while `left` base units remain.
pub fn residue(order: &SignedOrder, left: u128) -> u128 {
    if left == order.order.amount { 0 } else { left }
}

/// The `OrderMatching` of `fill`, given what each order had left before it.
pub fn matching(
    matcher: AccountId,
    maker: &SignedOrder,
    maker_left: u128,
    taker: &SignedOrder,
    taker_left: u128,
    fill: &Fill,
) -> OrderMatching {
    OrderMatching {
        matcher,
        maker: maker.clone(),
        taker: taker.clone(),
        base_fill: fill.base,
        quote_fill: fill.quote,
        maker_residue_before: residue(maker, maker_left),
        taker_residue_before: residue(taker, taker_left),
    }
}
