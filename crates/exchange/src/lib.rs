//! Exchange services on top of the rollup (issue 16). So far: one pair's order book
//! ([`book::Book`]), the matching engine's core without I/O ([`engine::Engine`]: admission
//! against the node's state, reservations, makers checked before they trade), the
//! `OrderMatching` tx of each fill ([`settle`]) and the engine's durable log ([`store`]).

pub mod book;
pub mod engine;
pub mod settle;
pub mod store;

pub use book::{Book, BookError, Fill, NewOrder, OrderId, PairRules, Placement, Resting, Side, TimeInForce};
