//! The indexer's explorer API (`zkl indexer`, docs/indexer.md "API"): blocks with their Layer-1
//! stage per chain, ops by hash and by account, transfers, trades, candles, deposits and
//! withdrawals, from the indexer's PostgreSQL database. Namespace `explorer_`.
//!
//! Lists are newest first and paginated by position: every entry has a `pos` (its block number
//! times 2^20 plus its index in the block), a page's `next` is the `pos` to pass as `before` for
//! the following page, absent on the last page.

use std::collections::BTreeMap;

use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};
use zkl_types::serde_impls::u128_str;
use zkl_types::{AccountId, ChainId, Op, SubAccountId, TokenId};

use crate::{L1Counters, L1Stage};

/// Every method's name (see [`crate::method`]).
pub mod method {
    pub const STATUS: &str = "explorer_status";
    pub const BLOCKS: &str = "explorer_blocks";
    pub const BLOCK: &str = "explorer_block";
    pub const OP: &str = "explorer_op";
    pub const ACCOUNT_OPS: &str = "explorer_accountOps";
    pub const TRANSFERS: &str = "explorer_transfers";
    pub const DEPOSITS: &str = "explorer_deposits";
    pub const WITHDRAWALS: &str = "explorer_withdrawals";
    pub const TRADES: &str = "explorer_trades";
    pub const CANDLES: &str = "explorer_candles";

    /// All of them.
    pub const ALL: [&str; 10] =
        [STATUS, BLOCKS, BLOCK, OP, ACCOUNT_OPS, TRANSFERS, DEPOSITS, WITHDRAWALS, TRADES, CANDLES];
}

/// Error codes (`error.code`).
pub mod codes {
    /// Malformed parameters (a limit of 0, an unknown candle interval, …).
    pub const INVALID_PARAMS: i32 = jsonrpsee::types::error::INVALID_PARAMS_CODE;
    /// No such block or op (not indexed yet, or never).
    pub const NOT_FOUND: i32 = 2;
    /// The database cannot be reached.
    pub const UNAVAILABLE: i32 = 3;
}

/// Bits of `pos` below the block number.
pub const POS_INDEX_BITS: u32 = 20;

/// The position of op `index` of block `block`.
pub fn pos(block: u32, index: u32) -> u64 {
    (u64::from(block) << POS_INDEX_BITS) | u64::from(index)
}

/// The largest page (`limit`); the default is 100.
pub const MAX_LIMIT: u32 = 1_000;

/// The candle intervals served, in seconds (1 min, 5 min, 15 min, 1 h, 4 h, 1 day).
pub const CANDLE_INTERVALS: [u32; 6] = [60, 300, 900, 3_600, 14_400, 86_400];

/// Stage of a block on each settlement chain (keys are chain ids, as in `zkl_txStatus`).
pub type Stages = BTreeMap<String, L1Stage>;

/// `explorer_status`: how far the indexer got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexerStatus {
    /// The last indexed block (0: none).
    pub block: u32,
    /// The node's last sealed block when the indexer last asked.
    pub node_block: u32,
    /// Each settlement chain's counters as the node last reported them.
    pub chains: Vec<ChainCounters>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCounters {
    pub chain: ChainId,
    #[serde(flatten)]
    pub counters: L1Counters,
}

/// A block without its ops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    pub number: u32,
    /// Unix time (s) of sealing.
    pub timestamp: u64,
    pub capacity: u32,
    pub old_root: String,
    pub new_root: String,
    pub commitment: String,
    /// Ops, no-ops included.
    pub ops: u32,
    /// L2 txs (the other ops are priority requests).
    pub txs: u32,
    pub l1: Stages,
}

/// `explorer_block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDetail {
    pub block: BlockSummary,
    /// Its ops, no-ops left out.
    pub ops: Vec<OpEntry>,
}

/// One op of a block: an L2 tx or a priority request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpEntry {
    pub pos: u64,
    pub block: u32,
    pub index: u32,
    /// The tx's hash, or the priority request's (`keccak256(chain ‖ serial)`).
    pub hash: String,
    /// Its block's timestamp.
    pub timestamp: u64,
    pub op: Op,
    /// Its block's stage per chain.
    pub l1: Stages,
}

/// One trade (an `order_matching` op), at the maker's price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeEntry {
    pub pos: u64,
    pub block: u32,
    pub hash: String,
    pub timestamp: u64,
    pub base: TokenId,
    pub quote: TokenId,
    /// Quote per base, times 10^18 (`quote_amount · 10^18 / base_amount`, exact).
    #[serde(with = "u128_str")]
    pub price: u128,
    #[serde(with = "u128_str")]
    pub base_amount: u128,
    #[serde(with = "u128_str")]
    pub quote_amount: u128,
    pub maker: AccountId,
    pub maker_sub: SubAccountId,
    pub taker: AccountId,
    pub taker_sub: SubAccountId,
    /// The maker sold base (so the taker bought).
    pub maker_is_sell: bool,
}

/// A page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `before` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// Which entries of a list (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only entries involving this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Only entries with `pos` below this (the previous page's `next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Page size: default 100, at most 1,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Which trades: a [`HistoryQuery`] and optionally one pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<TokenId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<TokenId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Which candles: a pair, an interval (one of [`CANDLE_INTERVALS`]) and a time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandleQuery {
    pub base: TokenId,
    pub quote: TokenId,
    /// Seconds.
    pub interval: u32,
    /// Unix time (s), inclusive; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// Unix time (s), exclusive; default: just after the pair's last trade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    /// How many intervals, the last of the range: default 100, at most 1,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One OHLCV candle of a pair: the trades of blocks sealed in `[start, start + interval)`, in
/// block order. Intervals without trades have no candle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub start: u64,
    #[serde(with = "u128_str")]
    pub open: u128,
    #[serde(with = "u128_str")]
    pub high: u128,
    #[serde(with = "u128_str")]
    pub low: u128,
    #[serde(with = "u128_str")]
    pub close: u128,
    /// Base traded.
    #[serde(with = "u128_str")]
    pub volume: u128,
    /// Quote traded.
    #[serde(with = "u128_str")]
    pub quote_volume: u128,
    pub trades: u32,
}

#[rpc(server, client, namespace = "explorer")]
pub trait ExplorerApi {
    /// The last indexed block, the node's, and every chain's counters.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<IndexerStatus>;

    /// Blocks, newest first: at most `limit` (default 100, at most 1,000) numbered below `before`.
    #[method(name = "blocks")]
    async fn blocks(&self, before: Option<u32>, limit: Option<u32>) -> RpcResult<Vec<BlockSummary>>;

    /// A block with its ops.
    #[method(name = "block")]
    async fn block(&self, number: u32) -> RpcResult<BlockDetail>;

    /// An op by the hash of its tx or priority request.
    #[method(name = "op")]
    async fn op(&self, hash: String) -> RpcResult<OpEntry>;

    /// Ops involving an account (every op, or one account's with `account`).
    #[method(name = "accountOps")]
    async fn account_ops(&self, query: HistoryQuery) -> RpcResult<Page<OpEntry>>;

    /// Transfers (`transfer`, `transfer_to_new`), sent or received.
    #[method(name = "transfers")]
    async fn transfers(&self, query: HistoryQuery) -> RpcResult<Page<OpEntry>>;

    /// Deposits, with their block's stage per chain.
    #[method(name = "deposits")]
    async fn deposits(&self, query: HistoryQuery) -> RpcResult<Page<OpEntry>>;

    /// Withdrawals (`withdraw`, `full_exit`, `forced_exit`), with their block's stage per chain:
    /// a withdrawal can be claimed on its chain once `executed` there.
    #[method(name = "withdrawals")]
    async fn withdrawals(&self, query: HistoryQuery) -> RpcResult<Page<OpEntry>>;

    /// Trades.
    #[method(name = "trades")]
    async fn trades(&self, query: TradeQuery) -> RpcResult<Page<TradeEntry>>;

    /// A pair's candles, oldest first.
    #[method(name = "candles")]
    async fn candles(&self, query: CandleQuery) -> RpcResult<Vec<Candle>>;
}
