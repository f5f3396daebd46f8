//! Prometheus metrics, served as OpenMetrics text on `GET /metrics` when `metrics_addr` is set.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The node's metrics. Cloning a metric shares it, so the sequencer and the API update the same
/// values the endpoint renders.
pub struct Metrics {
    pub txs_accepted: Counter,
    pub txs_rejected: Counter,
    pub txs_queued: Counter,
    pub priority_ops: Counter,
    pub blocks_sealed: Counter,
    pub last_block: Gauge,
    pub queue_len: Gauge,
    pub accounts: Gauge,
    /// 1 while settlement is halted (a chain refused a block; see docs/node-l1.md).
    pub halted: Gauge,
    /// Seconds one durable group commit of the log takes.
    pub commit_seconds: Histogram,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("zkl");
        let m = Metrics {
            txs_accepted: Counter::default(),
            txs_rejected: Counter::default(),
            txs_queued: Counter::default(),
            priority_ops: Counter::default(),
            blocks_sealed: Counter::default(),
            last_block: Gauge::default(),
            queue_len: Gauge::default(),
            accounts: Gauge::default(),
            halted: Gauge::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register("txs_accepted", "Txs accepted into a block", m.txs_accepted.clone());
        registry.register(
            "txs_rejected",
            "Txs rejected on entry or when their queued turn came",
            m.txs_rejected.clone(),
        );
        registry.register("txs_queued", "Txs accepted with a future nonce into the queue", m.txs_queued.clone());
        registry.register("priority_ops", "Priority operations executed", m.priority_ops.clone());
        registry.register("blocks_sealed", "Blocks sealed", m.blocks_sealed.clone());
        registry.register("last_block", "Number of the last sealed block", m.last_block.clone());
        registry.register("queue_len", "Txs waiting in the future-nonce queue", m.queue_len.clone());
        registry.register("accounts", "Accounts in the state", m.accounts.clone());
        registry.register("settlement_halted", "1 while a chain refuses a sealed block", m.halted.clone());
        registry.register("log_commit_seconds", "Durable group commit of the log", m.commit_seconds.clone());
        Arc::new(Metrics { registry, ..m })
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body, content_type) = if req.method() == Method::GET && req.uri().path() == "/metrics" {
        (StatusCode::OK, metrics.render(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
    } else {
        (StatusCode::NOT_FOUND, "only GET /metrics is served here\n".to_string(), "text/plain")
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    resp
}

/// Serves `GET /metrics` on `addr` (port 0 picks a free one) until the task is aborted.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let resp = respond(&metrics, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                if let Err(err) =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
                {
                    tracing::debug!(%err, "metrics connection");
                }
            });
        }
    });
    Ok((local, task))
}
