//! The explorer API server: every query reads the database (its own connection, re-opened when
//! it drops), nothing is cached.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::server::{Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::sync::Mutex;
use tokio_postgres::Client;
use zkl_rpc_api::explorer::*;

use crate::{IndexerError, db};

/// The API's state: the database's URL and its connection.
pub struct Api {
    url: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl Api {
    pub fn new(url: String) -> Self {
        Api { url, client: Mutex::new(None) }
    }

    async fn db(&self) -> RpcResult<Arc<Client>> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(db::connect(&self.url).await.map_err(unavailable)?);
        *slot = Some(c.clone());
        Ok(c)
    }
}

fn err(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

fn unavailable(e: IndexerError) -> ErrorObjectOwned {
    err(codes::UNAVAILABLE, e.to_string())
}

/// The page size asked for: 100 by default, 1..=1,000.
fn limit(limit: Option<u32>) -> RpcResult<u32> {
    match limit.unwrap_or(100) {
        0 => Err(err(codes::INVALID_PARAMS, "limit must be at least 1")),
        l if l > MAX_LIMIT => Err(err(codes::INVALID_PARAMS, format!("limit {l} is above {MAX_LIMIT}"))),
        l => Ok(l),
    }
}

#[async_trait]
impl ExplorerApiServer for Api {
    async fn status(&self) -> RpcResult<IndexerStatus> {
        let db = self.db().await?;
        let block = db::last_block(&db).await.map_err(unavailable)?.map_or(0, |(n, _)| n);
        Ok(IndexerStatus {
            block,
            node_block: db::node_tip(&db).await.map_err(unavailable)?,
            chains: db::chains(&db).await.map_err(unavailable)?,
        })
    }

    async fn blocks(&self, before: Option<u32>, n: Option<u32>) -> RpcResult<Vec<BlockSummary>> {
        let n = limit(n)?;
        db::blocks(&*self.db().await?, before, n).await.map_err(unavailable)
    }

    async fn block(&self, number: u32) -> RpcResult<BlockDetail> {
        let db = self.db().await?;
        let block = db::block(&db, number)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| err(codes::NOT_FOUND, format!("block {number} is not indexed")))?;
        let ops = db::block_ops(&db, number).await.map_err(unavailable)?;
        Ok(BlockDetail { block, ops })
    }

    async fn op(&self, hash: String) -> RpcResult<OpEntry> {
        db::op_by_hash(&*self.db().await?, &hash)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| err(codes::NOT_FOUND, format!("no indexed op has hash {hash}")))
    }

    async fn account_ops(&self, q: HistoryQuery) -> RpcResult<Page<OpEntry>> {
        let n = limit(q.limit)?;
        db::ops(&*self.db().await?, &[], &q, n).await.map_err(unavailable)
    }

    async fn transfers(&self, q: HistoryQuery) -> RpcResult<Page<OpEntry>> {
        let n = limit(q.limit)?;
        db::ops(&*self.db().await?, &["transfer", "transfer_to_new"], &q, n).await.map_err(unavailable)
    }

    async fn deposits(&self, q: HistoryQuery) -> RpcResult<Page<OpEntry>> {
        let n = limit(q.limit)?;
        db::ops(&*self.db().await?, &["deposit"], &q, n).await.map_err(unavailable)
    }

    async fn withdrawals(&self, q: HistoryQuery) -> RpcResult<Page<OpEntry>> {
        let n = limit(q.limit)?;
        db::ops(&*self.db().await?, &["withdraw", "full_exit", "forced_exit"], &q, n).await.map_err(unavailable)
    }

    async fn trades(&self, q: TradeQuery) -> RpcResult<Page<TradeEntry>> {
        let n = limit(q.limit)?;
        db::trades(&*self.db().await?, &q, n).await.map_err(unavailable)
    }

    async fn candles(&self, q: CandleQuery) -> RpcResult<Vec<Candle>> {
        let n = limit(q.limit)?;
        if !CANDLE_INTERVALS.contains(&q.interval) {
            return Err(err(
                codes::INVALID_PARAMS,
                format!("interval {} s is not one of {CANDLE_INTERVALS:?}", q.interval),
            ));
        }
        db::candles(&*self.db().await?, &q, n).await.map_err(unavailable)
    }
}

/// Serves the API on `listen` (HTTP and WebSocket).
pub async fn serve(listen: SocketAddr, api: Api) -> Result<(SocketAddr, ServerHandle), IndexerError> {
    let server = Server::builder().build(listen).await.map_err(|e| IndexerError::Listen(format!("{listen}: {e}")))?;
    let addr = server.local_addr().map_err(|e| IndexerError::Listen(e.to_string()))?;
    Ok((addr, server.start(api.into_rpc())))
}
