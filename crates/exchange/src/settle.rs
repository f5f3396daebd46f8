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

/// One side of a fill: a signed order, the base units it has left before the fill, and whether
/// its slot held no residue when the order came in (`fresh`).
#[derive(Debug, Clone, Copy)]
pub struct Party<'a> {
    pub order: &'a SignedOrder,
    pub left: u128,
    pub fresh: bool,
}

impl Party<'_> {
    /// The residue the node's slot holds for the order now: 0 while a fresh order is untouched,
    /// else what it has left (an order that came in on a slot with a residue, e.g. the rest of
    /// an immediate-or-cancel order signed again at another price, fills that residue).
    pub fn residue(&self) -> u128 {
        if self.fresh && self.left == self.order.order.amount { 0 } else { self.left }
    }
}

/// The `OrderMatching` of `fill` between `maker` and `taker` (each as it was before the fill).
pub fn matching(matcher: AccountId, maker: Party<'_>, taker: Party<'_>, fill: &Fill) -> OrderMatching {
    OrderMatching {
        matcher,
        maker: maker.order.clone(),
        taker: taker.order.clone(),
        base_fill: fill.base,
        quote_fill: fill.quote,
        maker_residue_before: maker.residue(),
        taker_residue_before: taker.residue(),
    }
}
