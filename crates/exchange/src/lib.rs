//! Exchange services on top of the rollup (issue 16). So far: one pair's order book
//! ([`book::Book`]), the matching rules the engine will run as the node's whitelisted matcher,
//! and the `OrderMatching` tx of each fill ([`settle`]).

pub mod book;
pub mod engine;
pub mod settle;
pub mod store;

pub use book::{Book, BookError, Fill, NewOrder, OrderId, PairRules, Placement, Resting, Side, TimeInForce};
