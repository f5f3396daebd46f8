//! The node as the exchange sees it: its public JSON-RPC API (`zkl-rpc-api`), read for accounts
//! and written with `OrderMatching` txs. A trait so that tests can step between the exchange
//! and the node.

use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use zkl_rpc_api::{AccountInfo, BatchResult, TxStatus, ZklApiClient, codes};
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
}

fn unavailable(e: ClientError) -> Unavailable {
    Unavailable(match e {
        ClientError::Call(obj) => obj.message().to_string(),
        other => other.to_string(),
    })
}

fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Call(obj) if obj.code() == codes::NOT_FOUND)
}

/// The node over HTTP.
pub struct HttpNode(HttpClient);

impl HttpNode {
    pub fn new(url: &str) -> Result<Self, String> {
        HttpClientBuilder::default()
            .request_timeout(std::time::Duration::from_secs(30))
            .build(url)
            .map(Self)
            .map_err(|e| format!("node url {url}: {e}"))
    }
}

impl NodeClient for HttpNode {
    async fn account(&self, id: AccountId) -> Result<Option<AccountInfo>, Unavailable> {
        match self.0.account(id.to_string()).await {
            Ok(a) => Ok(Some(a)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn send_batch(&self, txs: Vec<SignedTx>) -> Result<Vec<BatchResult>, Unavailable> {
        self.0.send_batch(txs).await.map_err(unavailable)
    }

    async fn status(&self, hash: &str) -> Result<Option<TxStatus>, Unavailable> {
        match self.0.tx_status(hash.to_string()).await {
            Ok(lookup) => Ok(Some(lookup.status().clone())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }
}
