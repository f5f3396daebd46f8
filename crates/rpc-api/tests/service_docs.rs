//! The services' API names and their docs agree: `exchange::method::ALL` is exactly what
//! `ExchangeApi` serves and `explorer::method::ALL` what `ExplorerApi` serves, and every method and
//! subscription has its `###` section in docs/exchange.md or docs/indexer.md.

use std::collections::BTreeSet;

use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::PendingSubscriptionSink;
use zkl_rpc_api::exchange::*;
use zkl_rpc_api::explorer::{self, ExplorerApiServer};
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
    async fn place_order(&self, _: OrderRequest, _: Option<bool>) -> RpcResult<PlaceResult> {
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

/// The `###` headings of a doc, up to their `(`.
fn documented(doc: &str) -> BTreeSet<String> {
    let doc = std::fs::read_to_string(format!("{}/../../docs/{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    doc.lines().filter_map(|l| l.strip_prefix("### ")).filter_map(|h| h.split('(').next()).map(str::to_string).collect()
}

/// `served` is exactly `constants`, and every one of them but unsubscriptions has its section in
/// `doc`, which has no section for another method of `prefix`.
fn check(constants: &[&str], served: BTreeSet<String>, doc: &str, prefix: &str) {
    let names: BTreeSet<String> = constants.iter().map(|s| s.to_string()).collect();
    assert_eq!(names.len(), constants.len(), "no name twice");
    assert_eq!(names, served);
    let documented = documented(doc);
    let wanted: BTreeSet<String> = names.into_iter().filter(|m| !m.contains("_unsubscribe")).collect();
    let missing: Vec<_> = wanted.difference(&documented).collect();
    assert!(missing.is_empty(), "methods without a ### section in docs/{doc}: {missing:?}");
    let unknown: Vec<_> = documented.iter().filter(|h| h.starts_with(prefix) && !wanted.contains(*h)).collect();
    assert!(unknown.is_empty(), "sections for unknown methods: {unknown:?}");
}

#[async_trait]
impl ExplorerApiServer for Names {
    async fn status(&self) -> RpcResult<explorer::IndexerStatus> {
        none()
    }
    async fn blocks(&self, _: Option<u32>, _: Option<u32>) -> RpcResult<Vec<explorer::BlockSummary>> {
        none()
    }
    async fn block(&self, _: u32) -> RpcResult<explorer::BlockDetail> {
        none()
    }
    async fn op(&self, _: String) -> RpcResult<explorer::OpEntry> {
        none()
    }
    async fn account_ops(&self, _: explorer::HistoryQuery) -> RpcResult<explorer::Page<explorer::OpEntry>> {
        none()
    }
    async fn transfers(&self, _: explorer::HistoryQuery) -> RpcResult<explorer::Page<explorer::OpEntry>> {
        none()
    }
    async fn deposits(&self, _: explorer::HistoryQuery) -> RpcResult<explorer::Page<explorer::OpEntry>> {
        none()
    }
    async fn withdrawals(&self, _: explorer::HistoryQuery) -> RpcResult<explorer::Page<explorer::OpEntry>> {
        none()
    }
    async fn trades(&self, _: explorer::TradeQuery) -> RpcResult<explorer::Page<explorer::TradeEntry>> {
        none()
    }
    async fn candles(&self, _: explorer::CandleQuery) -> RpcResult<Vec<explorer::Candle>> {
        none()
    }
}

#[test]
fn the_exchange_names_are_what_its_trait_serves_and_each_is_documented() {
    let served = ExchangeApiServer::into_rpc(Names).method_names().map(String::from).collect();
    check(&method::ALL, served, "exchange.md", "exchange_");
}

#[test]
fn the_explorer_names_are_what_its_trait_serves_and_each_is_documented() {
    let served = ExplorerApiServer::into_rpc(Names).method_names().map(String::from).collect();
    check(&explorer::method::ALL, served, "indexer.md", "explorer_");
}
