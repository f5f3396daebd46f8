//! The exchange's JSON-RPC API (`zkl exchange`, docs/exchange.md "API"): order entry, cancels,
//! books, trades and open orders, and the market-data subscriptions, with their typed requests
//! and responses. Namespace `exchange_`.

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};
use zkl_crypto::{Fr, PublicKey, Signature};
use zkl_types::serde_impls::{pubkey_hex, signature_hex, u128_str};
use zkl_types::{AccountId, Nonce, SignedOrder, SlotId, SubAccountId, TokenId};

/// The engine's id of an order (unique per exchange, assigned in arrival order).
pub type OrderId = u64;

/// Every method's name (see [`crate::method`]).
pub mod method {
    pub const PAIRS: &str = "exchange_pairs";
    pub const PLACE_ORDER: &str = "exchange_placeOrder";
    pub const CANCEL_ORDER: &str = "exchange_cancelOrder";
    pub const ORDERS: &str = "exchange_orders";
    pub const BOOK: &str = "exchange_book";
    pub const TRADES: &str = "exchange_trades";
    pub const SUBSCRIBE_DEPTH: &str = "exchange_subscribeDepth";
    pub const UNSUBSCRIBE_DEPTH: &str = "exchange_unsubscribeDepth";
    pub const SUBSCRIBE_TRADES: &str = "exchange_subscribeTrades";
    pub const UNSUBSCRIBE_TRADES: &str = "exchange_unsubscribeTrades";
    pub const SUBSCRIBE_ACCOUNT: &str = "exchange_subscribeAccount";
    pub const UNSUBSCRIBE_ACCOUNT: &str = "exchange_unsubscribeAccount";

    /// All of them.
    pub const ALL: [&str; 12] = [
        PAIRS,
        PLACE_ORDER,
        CANCEL_ORDER,
        ORDERS,
        BOOK,
        TRADES,
        SUBSCRIBE_DEPTH,
        UNSUBSCRIBE_DEPTH,
        SUBSCRIBE_TRADES,
        UNSUBSCRIBE_TRADES,
        SUBSCRIBE_ACCOUNT,
        UNSUBSCRIBE_ACCOUNT,
    ];
}

/// Error codes (`error.code`).
pub mod codes {
    /// Malformed parameters.
    pub const INVALID_PARAMS: i32 = jsonrpsee::types::error::INVALID_PARAMS_CODE;
    /// The exchange refused the order or cancel (the message says why); nothing changed.
    pub const REJECTED: i32 = 1;
    /// Unknown pair or order.
    pub const NOT_FOUND: i32 = 2;
    /// The exchange cannot serve the request now (the node cannot be read, its store failed, a
    /// subscriber fell behind); nothing changed.
    pub const UNAVAILABLE: i32 = 3;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// The side of a signed order.
    pub fn of(is_sell: bool) -> Side {
        if is_sell { Side::Sell } else { Side::Buy }
    }
}

/// What happens to the part of an order that does not trade at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till cancelled: the rest rests.
    #[default]
    Gtc,
    /// Immediate or cancel: the rest expires.
    Ioc,
    /// Post-only: refused if any of it would trade at once; otherwise rests whole.
    PostOnly,
}

/// A signed order with the key that signed it (the node publishes key hashes only) and the
/// exchange-side time in force (`exchange_placeOrder`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub order: SignedOrder,
    #[serde(with = "pubkey_hex")]
    pub pubkey: PublicKey,
    #[serde(default)]
    pub tif: TimeInForce,
}

impl OrderRequest {
    /// Whether `pubkey` signed the order (whose key it is, is checked against the node).
    pub fn signature_ok(&self) -> bool {
        self.signed_message().is_some()
    }

    /// The order's message (`Order::message`) if `pubkey` signed it.
    pub fn signed_message(&self) -> Option<Fr> {
        let message = self.order.order.message();
        self.pubkey.verify(&message, &self.order.signature).is_ok().then_some(message)
    }
}

/// A cancel signed by the order's owner (`exchange_cancelOrder`): the signature over
/// `Order::cancel_message(id)` by the account's current L2 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    pub id: OrderId,
    #[serde(with = "pubkey_hex")]
    pub pubkey: PublicKey,
    #[serde(with = "signature_hex")]
    pub signature: Signature,
}

/// A pair the exchange trades: prices are multiples of `tick`, amounts of `lot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairInfo {
    pub base: TokenId,
    pub quote: TokenId,
    #[serde(with = "u128_str")]
    pub tick: u128,
    #[serde(with = "u128_str")]
    pub lot: u128,
}

/// A price level: base units resting at `price` in `orders` orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    #[serde(with = "u128_str")]
    pub price: u128,
    #[serde(with = "u128_str")]
    pub amount: u128,
    pub orders: u32,
}

/// A book's price levels: bids best (highest) first, asks best (lowest) first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// A book (`exchange_book`) or a change of it (`exchange_subscribeDepth`). Every change of a
/// pair's book has the next `seq`; a snapshot has the `seq` of the last change it includes, so
/// a client applies the updates after it in order (a level of amount 0 is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepthUpdate {
    pub base: TokenId,
    pub quote: TokenId,
    pub seq: u64,
    /// The whole book (the first notification of a subscription), or only the changed levels.
    pub snapshot: bool,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Resting in the book with `left` base units to fill.
    Open,
    /// Completely filled.
    Filled,
    /// An immediate-or-cancel order's rest (`left`) expired.
    Expired,
    /// Cancelled by its owner, or by a newer order of the same trader that met it (self-trade
    /// prevention).
    Cancelled,
    /// Removed by the exchange: the node's state no longer backs it (funds moved, slot used
    /// elsewhere) or the node refused a fill of it. Its slot on the node holds what is really
    /// left: the same signed order placed again fills that.
    Removed,
}

/// An order as the exchange holds it (with the signed order's fields, so its owner can sign a
/// cancel from it: [`OrderInfo::order`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInfo {
    pub id: OrderId,
    pub account: AccountId,
    pub sub: SubAccountId,
    pub slot: SlotId,
    pub nonce: Nonce,
    pub base: TokenId,
    pub quote: TokenId,
    pub side: Side,
    #[serde(with = "u128_str")]
    pub price: u128,
    /// The signed amount.
    #[serde(with = "u128_str")]
    pub amount: u128,
    /// Base units still to fill on the exchange.
    #[serde(with = "u128_str")]
    pub left: u128,
    pub maker_fee_bps: u8,
    pub taker_fee_bps: u8,
    pub tif: TimeInForce,
    pub status: OrderStatus,
    /// Why, for `removed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl OrderInfo {
    /// The signed order's fields.
    pub fn order(&self) -> zkl_types::Order {
        zkl_types::Order {
            account: self.account,
            sub: self.sub,
            slot: self.slot,
            nonce: self.nonce,
            base: self.base,
            quote: self.quote,
            amount: self.amount,
            price: self.price,
            is_sell: self.side == Side::Sell,
            maker_fee_bps: self.maker_fee_bps,
            taker_fee_bps: self.taker_fee_bps,
        }
    }
}

/// One fill: the maker's and the taker's orders at the maker's price, settled on Layer 2 by the
/// `OrderMatching` tx `tx_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Per exchange, in order.
    pub seq: u64,
    pub base: TokenId,
    pub quote: TokenId,
    #[serde(with = "u128_str")]
    pub price: u128,
    #[serde(with = "u128_str")]
    pub base_amount: u128,
    #[serde(with = "u128_str")]
    pub quote_amount: u128,
    /// The taker's side (a buy takes asks).
    pub taker_side: Side,
    pub maker_order: OrderId,
    pub taker_order: OrderId,
    pub maker_account: AccountId,
    pub taker_account: AccountId,
    /// ms since the Unix epoch (the taker's admission).
    pub at_ms: u64,
    pub tx_hash: String,
}

/// One fill of a placement: made by the exchange, and judged by the node or not yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillResult {
    pub maker_order: OrderId,
    #[serde(with = "u128_str")]
    pub price: u128,
    #[serde(with = "u128_str")]
    pub base_amount: u128,
    #[serde(with = "u128_str")]
    pub quote_amount: u128,
    pub tx_hash: String,
    /// The node's reason when it refused the fill (then it did not happen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The node has not judged the fill yet (the placement was answered at its match, see
    /// `exchange_placeOrder`): it follows on the account feed, a `fill` update when the node
    /// accepts it, the orders it broke `removed` when the node refuses it; or ask the node
    /// (`zkl_txStatus` of `tx_hash`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// `exchange_placeOrder`: the order as it stands after its match (or, when the caller waited
/// for the node, after the node judged its fills), the fills, and the resting orders the
/// exchange removed or cancelled on the way (with why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceResult {
    pub order: OrderInfo,
    pub fills: Vec<FillResult>,
    /// Resting orders removed or cancelled while placing this one.
    pub affected: Vec<OrderInfo>,
}

/// A change of one account's orders or a fill of one (`exchange_subscribeAccount`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountUpdate {
    Order(OrderInfo),
    Fill(Trade),
}

#[rpc(server, client, namespace = "exchange")]
pub trait ExchangeApi {
    /// The traded pairs.
    #[method(name = "pairs")]
    async fn pairs(&self) -> RpcResult<Vec<PairInfo>>;

    /// Admits a signed order, matches it and hands its fills to the node; answers at the match
    /// (fills `pending`), or with `wait_for_node` once the node has judged every fill.
    #[method(name = "placeOrder")]
    async fn place_order(&self, request: OrderRequest, wait_for_node: Option<bool>) -> RpcResult<PlaceResult>;

    /// Cancels a resting order (signed by its owner).
    #[method(name = "cancelOrder")]
    async fn cancel_order(&self, request: CancelRequest) -> RpcResult<OrderInfo>;

    /// An account's open orders, by id.
    #[method(name = "orders")]
    async fn orders(&self, account: AccountId) -> RpcResult<Vec<OrderInfo>>;

    /// A pair's book, the best `levels` (default 50) of each side.
    #[method(name = "book")]
    async fn book(&self, base: TokenId, quote: TokenId, levels: Option<u32>) -> RpcResult<DepthUpdate>;

    /// A pair's trades, newest first: at most `limit` (default 100, at most 1,000) with `seq`
    /// below `before` (pagination).
    #[method(name = "trades")]
    async fn trades(
        &self,
        base: TokenId,
        quote: TokenId,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> RpcResult<Vec<Trade>>;

    /// A pair's book: a snapshot, then every change.
    #[subscription(name = "subscribeDepth" => "depth", unsubscribe = "unsubscribeDepth", item = DepthUpdate)]
    async fn subscribe_depth(&self, base: TokenId, quote: TokenId) -> SubscriptionResult;

    /// A pair's trades as they settle on Layer 2 (accepted by the node).
    #[subscription(name = "subscribeTrades" => "trade", unsubscribe = "unsubscribeTrades", item = Trade)]
    async fn subscribe_trades(&self, base: TokenId, quote: TokenId) -> SubscriptionResult;

    /// An account's order changes and fills.
    #[subscription(name = "subscribeAccount" => "account", unsubscribe = "unsubscribeAccount", item = AccountUpdate)]
    async fn subscribe_account(&self, account: AccountId) -> SubscriptionResult;
}
