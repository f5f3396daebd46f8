//! Exchange services on top of the rollup (issue 16): one pair's order book ([`book::Book`]),
//! the matching engine's core without I/O ([`engine::Engine`]: admission against the node's
//! state, reservations, makers checked before they trade), the `OrderMatching` tx of each fill
//! ([`settle`]), the engine's durable log ([`store`]) and the exchange process ([`service`]:
//! the node as the whitelisted matcher, the API and market data).

pub mod book;
pub mod engine;
pub mod service;
pub mod settle;
pub mod store;

pub use book::{Book, BookError, Fill, NewOrder, OrderId, PairRules, Placement, Resting, Side, TimeInForce};
