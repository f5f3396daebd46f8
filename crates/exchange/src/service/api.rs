//! The exchange's JSON-RPC/WebSocket API (`zkl_rpc_api::exchange::ExchangeApi`): every call
//! goes to the engine thread; subscriptions read its market feed.

use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::{PendingSubscriptionSink, SubscriptionSink};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::broadcast::{self, error::RecvError};
use zkl_rpc_api::exchange::{
    CancelRequest, DepthUpdate, ExchangeApiServer, OrderInfo, OrderRequest, PairInfo, PlaceResult, Trade, codes,
};
use zkl_types::{AccountId, TokenId};

use super::core::{ApiError, Command, CoreHandle, Market, Placement};
use crate::engine::PairConfig;

/// Trades per `exchange_trades` call at most.
pub const MAX_TRADES: u32 = 1_000;

pub struct Api {
    core: CoreHandle,
    pairs: Vec<PairInfo>,
}

impl Api {
    pub fn new(core: CoreHandle, pairs: &[PairConfig]) -> Self {
        let pairs = pairs.iter().map(|p| PairInfo { base: p.base, quote: p.quote, tick: p.tick, lot: p.lot }).collect();
        Self { core, pairs }
    }
}

fn rpc_err(e: ApiError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(e.code, e.message, None::<()>)
}

/// Forwards the market feed's items that `pick` selects until the client leaves; a subscriber
/// that fell behind is closed (it resubscribes for a fresh snapshot).
async fn forward<T: serde::Serialize>(
    sink: SubscriptionSink,
    mut rx: broadcast::Receiver<Market>,
    pick: impl Fn(Market) -> Option<T>,
) -> SubscriptionResult {
    loop {
        tokio::select! {
            _ = sink.closed() => return Ok(()),
            item = rx.recv() => match item {
                Ok(m) => {
                    if let Some(v) = pick(m) && sink.send(serde_json::value::to_raw_value(&v)?).await.is_err() {
                        return Ok(());
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    return Err(format!("the subscriber fell {n} updates behind; subscribe again").into());
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
}

#[async_trait]
impl ExchangeApiServer for Api {
    async fn pairs(&self) -> RpcResult<Vec<PairInfo>> {
        Ok(self.pairs.clone())
    }

    async fn place_order(&self, request: OrderRequest, wait_for_node: Option<bool>) -> RpcResult<PlaceResult> {
        // Checked here, on the API's threads, not on the engine's.
        let placement = Placement::checked(request, wait_for_node.unwrap_or(false)).map_err(rpc_err)?;
        self.core.call(|r| Command::Place(Box::new(placement), r)).await.map_err(rpc_err)
    }

    async fn cancel_order(&self, request: CancelRequest) -> RpcResult<OrderInfo> {
        self.core.call(|r| Command::Cancel(request, r)).await.map_err(rpc_err)
    }

    async fn orders(&self, account: AccountId) -> RpcResult<Vec<OrderInfo>> {
        self.core.call(|r| Command::Orders(account, r)).await.map_err(rpc_err)
    }

    async fn book(&self, base: TokenId, quote: TokenId, levels: Option<u32>) -> RpcResult<DepthUpdate> {
        let levels = levels.unwrap_or(50) as usize;
        self.core.call(|reply| Command::Book { base, quote, levels, reply }).await.map_err(rpc_err)
    }

    async fn trades(
        &self,
        base: TokenId,
        quote: TokenId,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> RpcResult<Vec<Trade>> {
        let limit = limit.unwrap_or(100);
        if limit > MAX_TRADES {
            return Err(rpc_err(ApiError {
                code: codes::INVALID_PARAMS,
                message: format!("limit is at most {MAX_TRADES}"),
            }));
        }
        let limit = limit as usize;
        self.core.call(|reply| Command::Trades { base, quote, limit, before, reply }).await.map_err(rpc_err)
    }

    async fn subscribe_depth(
        &self,
        pending: PendingSubscriptionSink,
        base: TokenId,
        quote: TokenId,
    ) -> SubscriptionResult {
        let (snapshot, rx) = match self.core.call(|reply| Command::SubscribeDepth { base, quote, reply }).await {
            Ok(v) => v,
            Err(e) => {
                pending.reject(rpc_err(e)).await;
                return Ok(());
            }
        };
        let sink = pending.accept().await?;
        if sink.send(serde_json::value::to_raw_value(&snapshot)?).await.is_err() {
            return Ok(());
        }
        forward(sink, rx, |m| match m {
            Market::Depth(d) if (d.base, d.quote) == (base, quote) => Some(d),
            _ => None,
        })
        .await
    }

    async fn subscribe_trades(
        &self,
        pending: PendingSubscriptionSink,
        base: TokenId,
        quote: TokenId,
    ) -> SubscriptionResult {
        if !self.pairs.iter().any(|p| (p.base, p.quote) == (base, quote)) {
            let e = ApiError { code: codes::NOT_FOUND, message: format!("the exchange does not trade {base}/{quote}") };
            pending.reject(rpc_err(e)).await;
            return Ok(());
        }
        let rx = self.core.market.subscribe();
        let sink = pending.accept().await?;
        forward(sink, rx, |m| match m {
            Market::Trade(t) if (t.base, t.quote) == (base, quote) => Some(t),
            _ => None,
        })
        .await
    }

    async fn subscribe_account(&self, pending: PendingSubscriptionSink, account: AccountId) -> SubscriptionResult {
        let rx = self.core.market.subscribe();
        let sink = pending.accept().await?;
        forward(sink, rx, |m| match m {
            Market::Account(a, u) if a == account => Some(u),
            _ => None,
        })
        .await
    }
}
