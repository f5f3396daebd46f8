//! The node as the exchange sees it: its public JSON-RPC API (`zkl-rpc-api`), read for accounts
//! and written with `OrderMatching` txs. A trait so that tests can step between the exchange
//! and the node.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{PingConfig, WsClientBuilder};
use zkl_rpc_api::{AccountChanges, AccountInfo, BatchResult, EventsApiClient, TxStatus, ZklApiClient, codes};
use zkl_types::{AccountId, SignedTx};

use crate::engine::Unavailable;

/// What the exchange asks the node.
#[allow(async_fn_in_trait)]
pub trait NodeClient: Send + Sync + 'static {
    /// Account `id` as the node holds it after every tx it accepted; `None` if there is none.
    async fn account(&self, id: AccountId) -> Result<Option<AccountInfo>, Unavailable>;
    /// Hands txs to the node in order; the node's answer to each.
    async fn send_batch(&self, txs: Vec<SignedTx>) -> Result<Vec<BatchResult>, Unavailable>;
    /// The status of tx `hash` (`0x` + 64 hex); `None` if the node never accepted it.
    async fn status(&self, hash: &str) -> Result<Option<TxStatus>, Unavailable>;
    /// The node's account changes from now on (`zkl_subscribeAccountChanges`), until the
    /// connection ends; `None` if this node offers no such feed (the exchange then reads the
    /// accounts of every batch).
    async fn account_changes(&self) -> Result<Option<ChangeStream>, Unavailable> {
        Ok(None)
    }
}

/// The notifications of the node's account feed.
pub type ChangeStream = BoxStream<'static, AccountChanges>;

fn unavailable(e: ClientError) -> Unavailable {
    Unavailable(match e {
        ClientError::Call(obj) => obj.message().to_string(),
        other => other.to_string(),
    })
}

fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Call(obj) if obj.code() == codes::NOT_FOUND)
}

/// The node over HTTP (its account feed over WebSocket, on the same address).
pub struct HttpNode {
    http: HttpClient,
    ws_url: String,
}

impl HttpNode {
    pub fn new(url: &str) -> Result<Self, String> {
        let http = HttpClientBuilder::default()
            .request_timeout(std::time::Duration::from_secs(30))
            .build(url)
            .map_err(|e| format!("node url {url}: {e}"))?;
        let ws_url = match url.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => format!("ws://{url}"),
        };
        Ok(Self { http, ws_url })
    }
}

impl NodeClient for HttpNode {
    async fn account(&self, id: AccountId) -> Result<Option<AccountInfo>, Unavailable> {
        match self.http.account(id.to_string()).await {
            Ok(a) => Ok(Some(a)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn send_batch(&self, txs: Vec<SignedTx>) -> Result<Vec<BatchResult>, Unavailable> {
        self.http.send_batch(txs).await.map_err(unavailable)
    }

    async fn status(&self, hash: &str) -> Result<Option<TxStatus>, Unavailable> {
        match self.http.tx_status(hash.to_string()).await {
            Ok(lookup) => Ok(Some(lookup.status().clone())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn account_changes(&self) -> Result<Option<ChangeStream>, Unavailable> {
        // Pings end a connection that died without closing, so the feed is never taken for
        // live while it is not.
        let ping = PingConfig::new()
            .ping_interval(std::time::Duration::from_secs(1))
            .inactive_limit(std::time::Duration::from_secs(2))
            .max_failures(1);
        let ws = WsClientBuilder::default()
            .enable_ws_ping(ping)
            .max_buffer_capacity_per_subscription(65_536)
            .build(&self.ws_url)
            .await
            .map_err(unavailable)?;
        let sub = ws.subscribe_account_changes().await.map_err(unavailable)?;
        // The client lives as long as the stream.
        let stream = futures_util::stream::unfold((ws, sub), |(ws, mut sub)| async move {
            match sub.next().await {
                Some(Ok(note)) => Some((note, (ws, sub))),
                _ => None,
            }
        });
        Ok(Some(stream.boxed()))
    }
}
