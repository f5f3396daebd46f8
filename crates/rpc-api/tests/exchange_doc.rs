//! The exchange API's names and docs/exchange.md agree: `exchange::method::ALL` is exactly what
//! `ExchangeApi` serves, and every method and subscription has its `###` section in the doc.

use std::collections::BTreeSet;

use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::PendingSubscriptionSink;
use zkl_rpc_api::exchange::*;
use zkl_types::{AccountId, TokenId};

/// Serves nothing: it exists so that the trait's module can list its method names.
struct Names;

fn none<T>() -> RpcResult<T> {
    Err(jsonrpsee::types::ErrorObjectOwned::owned(codes::UNAVAILABLE, "listing names only", None::<()>))
}

#[async_trait]
impl ExchangeApiServer for Names {
    async fn pairs(&self) -> RpcResult<Vec<PairInfo>> {
        none()
    }
    async fn place_order(&self, _: OrderRequest) -> RpcResult<PlaceResult> {
        none()
    }
    async fn cancel_order(&self, _: CancelRequest) -> RpcResult<OrderInfo> {
        none()
    }
    async fn orders(&self, _: AccountId) -> RpcResult<Vec<OrderInfo>> {
        none()
    }
    async fn book(&self, _: TokenId, _: TokenId, _: Option<u32>) -> RpcResult<DepthUpdate> {
        none()
    }
    async fn trades(&self, _: TokenId, _: TokenId, _: Option<u32>, _: Option<u64>) -> RpcResult<Vec<Trade>> {
        none()
    }
    async fn subscribe_depth(&self, _: PendingSubscriptionSink, _: TokenId, _: TokenId) -> SubscriptionResult {
        Ok(())
    }
    async fn subscribe_trades(&self, _: PendingSubscriptionSink, _: TokenId, _: TokenId) -> SubscriptionResult {
        Ok(())
    }
    async fn subscribe_account(&self, _: PendingSubscriptionSink, _: AccountId) -> SubscriptionResult {
        Ok(())
    }
}

#[test]
fn the_name_constants_are_what_the_trait_serves_and_each_is_documented() {
    let constants: BTreeSet<String> = method::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(constants.len(), method::ALL.len(), "no name twice");
    let served: BTreeSet<String> = ExchangeApiServer::into_rpc(Names).method_names().map(String::from).collect();
    assert_eq!(constants, served);

    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/exchange.md")).unwrap();
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|h| h.split('(').next())
        .map(str::to_string)
        .collect();
    let wanted: BTreeSet<String> =
        method::ALL.iter().filter(|m| !m.starts_with("exchange_unsubscribe")).map(|s| s.to_string()).collect();
    let missing: Vec<_> = wanted.difference(&documented).collect();
    assert!(missing.is_empty(), "methods without a ### section in docs/exchange.md: {missing:?}");
    let unknown: Vec<_> = documented.iter().filter(|h| h.starts_with("exchange_") && !wanted.contains(*h)).collect();
    assert!(unknown.is_empty(), "sections for unknown methods: {unknown:?}");
}
