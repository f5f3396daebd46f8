//! The exchange process (`zkl exchange --config FILE`, docs/exchange.md "Service"): the engine
//! on one thread ([`core`]) with its redb store, the node through its public API as the
//! whitelisted matcher ([`node`]), and the exchange's JSON-RPC/WebSocket API ([`api`]).

pub mod api;
pub mod core;
pub mod feed;
pub mod node;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonrpsee::server::{Server, ServerHandle};
use serde::{Deserialize, Serialize};
use zkl_crypto::{EthKey, derive_l2_key};
use zkl_rpc_api::exchange::ExchangeApiServer;
use zkl_types::AccountId;

use self::core::{Command, Core, CoreHandle};
use self::feed::Feed;
use self::node::{HttpNode, NodeClient};
use crate::engine::{Engine, EngineConfig, PairConfig};
use crate::store::Store;

/// The exchange's configuration file (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// The node's JSON-RPC endpoint (`http://…`).
    pub node: String,
    /// Where the exchange's JSON-RPC/WebSocket API listens (port 0: any free port).
    pub listen: SocketAddr,
    /// The store's directory (`exchange.redb` in it).
    pub data_dir: PathBuf,
    pub matcher: MatcherConfig,
    pub pairs: Vec<PairConfig>,
    /// Requests waiting for the engine beyond which new ones are refused ("busy").
    #[serde(default = "default_queue")]
    pub max_queue: usize,
}

fn default_queue() -> usize {
    10_000
}

/// The matcher account the node whitelists and the Ethereum key its L2 key derives from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherConfig {
    pub account: AccountId,
    /// `0x` + 64 hex.
    pub eth_private_key: String,
}

impl ExchangeConfig {
    pub fn load(path: &Path) -> Result<Self, ServiceError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ServiceError::Config(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| ServiceError::Config(format!("{}: {e}", path.display())))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("exchange config: {0}")]
    Config(String),
    #[error("{0}")]
    Start(String),
    #[error("exchange api: {0}")]
    Rpc(String),
}

/// A running exchange. Dropped without [`Exchange::stop`], its engine thread still stops (after
/// the requests it is serving).
pub struct Exchange {
    pub addr: SocketAddr,
    handle: ServerHandle,
    core: Option<std::thread::JoinHandle<()>>,
    /// The engine thread's queue, for [`Command::Stop`].
    commands: std::sync::mpsc::SyncSender<Command>,
    ended: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Dropped with the exchange: the account feed's thread ends.
    _feed: tokio::sync::watch::Sender<()>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        let _ = self.commands.try_send(Command::Stop);
    }
}

impl Exchange {
    /// Stops the API, then the engine thread (after the requests it is serving and the node's
    /// answers to the matches in flight, waited for at most 10 s: those not back are looked up
    /// on the node at the next start, and their placements answered "the exchange stopped").
    pub async fn stop(mut self) {
        let _ = self.handle.stop();
        let (commands, core) = (self.commands.clone(), self.core.take());
        let _ = tokio::task::spawn_blocking(move || {
            let _ = commands.send(Command::Stop);
            core.map(std::thread::JoinHandle::join)
        })
        .await;
        self.handle.clone().stopped().await;
    }

    /// Resolves when the engine thread has ended on its own (its store failed): the process
    /// should exit (a restart replays the store).
    pub async fn engine_ended(&mut self) {
        match self.ended.take() {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    }
}

/// Starts the exchange against the node at `config.node`.
pub async fn start(config: ExchangeConfig) -> Result<Exchange, ServiceError> {
    let node = HttpNode::new(&config.node).map_err(ServiceError::Config)?;
    start_with(config, node).await
}

/// Starts the exchange with `node` as its node: checks the matcher's key against the node,
/// replays the store (resolving matches that were in flight), then serves.
pub async fn start_with<N: NodeClient>(config: ExchangeConfig, node: N) -> Result<Exchange, ServiceError> {
    let key_bytes: [u8; 32] = hex::decode(config.matcher.eth_private_key.trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ServiceError::Config("matcher.eth_private_key: expected 0x + 64 hex".into()))?;
    let eth =
        EthKey::from_bytes(&key_bytes).map_err(|e| ServiceError::Config(format!("matcher.eth_private_key: {e}")))?;
    let derived = derive_l2_key(&eth);
    let matcher = config.matcher.account;
    let account = node
        .account(matcher)
        .await
        .map_err(|e| ServiceError::Start(e.to_string()))?
        .ok_or_else(|| ServiceError::Start(format!("the node has no account {matcher} (the matcher)")))?;
    let expected = derived.public_key.pubkey_hash().to_string();
    if account.pubkey_hash != expected {
        return Err(ServiceError::Start(format!(
            "account {matcher}'s L2 key hash is {}, the matcher key's is {expected}",
            account.pubkey_hash
        )));
    }
    let engine = Engine::new(EngineConfig { matcher, pairs: config.pairs.clone() })
        .map_err(|e| ServiceError::Config(format!("pairs: {e}")))?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| ServiceError::Start(format!("{}: {e}", config.data_dir.display())))?;
    let store = Store::open(&config.data_dir.join("exchange.redb")).map_err(|e| ServiceError::Start(e.to_string()))?;

    // The node's account feed, followed on a thread of its own (until it has subscribed, the
    // engine keeps no account it read from one batch to the next).
    let rt = tokio::runtime::Handle::current();
    let node = Arc::new(node);
    let feed = Arc::new(Feed::default());
    let (feed_stop, stopped) = tokio::sync::watch::channel(());
    {
        let (node, feed, rt) = (node.clone(), feed.clone(), rt.clone());
        std::thread::Builder::new()
            .name("exchange-feed".into())
            .spawn(move || rt.block_on(feed::follow(node, matcher, feed, stopped)))
            .map_err(|e| ServiceError::Start(e.to_string()))?;
    }

    // The engine thread replays the store (it may call the node) before it serves.
    let (commands, receiver) = std::sync::mpsc::sync_channel(config.max_queue);
    let own = commands.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let key = derived.l2_private_key;
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    let core = std::thread::Builder::new()
        .name("exchange-engine".into())
        .spawn(move || {
            match Core::open(engine, store, node, feed, rt, key) {
                Ok(core) => {
                    let _ = ready_tx.send(Ok(core.market()));
                    core.run(receiver, own);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
            let _ = ended_tx.send(());
        })
        .map_err(|e| ServiceError::Start(e.to_string()))?;
    let market = ready_rx
        .await
        .map_err(|_| ServiceError::Start("the engine thread ended".into()))?
        .map_err(ServiceError::Start)?;

    let server = Server::builder().build(config.listen).await.map_err(|e| ServiceError::Rpc(e.to_string()))?;
    let addr = server.local_addr().map_err(|e| ServiceError::Rpc(e.to_string()))?;
    let api = api::Api::new(CoreHandle { commands: commands.clone(), market }, &config.pairs);
    let handle = server.start(api.into_rpc());
    tracing::info!(%addr, "exchange api listening");
    Ok(Exchange { addr, handle, core: Some(core), commands, ended: Some(ended), _feed: feed_stop })
}
