//! The follower: one loop that brings the database up to the node's last sealed block.

use std::time::Duration;

use jsonrpsee::http_client::HttpClient;
use tokio::sync::watch;
use tokio_postgres::Client;
use zkl_rpc_api::explorer::ChainCounters;
use zkl_rpc_api::{BlockRecord, ZklApiClient};

use crate::{IndexerConfig, IndexerError, db};

/// Blocks written per step at most, so that the status and the chains' counters stay fresh
/// while catching up on a long chain.
const BLOCKS_PER_STEP: u32 = 256;

/// Longest wait after a failure (node or database unreachable).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) async fn run(config: IndexerConfig, mut writer: Client, node: HttpClient, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(config.poll_ms);
    let mut backoff = poll;
    while !*stop.borrow() {
        let wait = match step(&mut writer, &node).await {
            Ok(true) => {
                backoff = poll;
                poll
            }
            Ok(false) => Duration::ZERO,
            Err(e) => {
                tracing::warn!("indexer: {e}; retrying in {} ms", backoff.as_millis());
                if writer.is_closed() {
                    match db::connect(&config.database).await {
                        Ok(c) => writer = c,
                        Err(e) => tracing::warn!("indexer: reconnecting: {e}"),
                    }
                }
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, stop.changed()).await;
        }
    }
}

/// The node's block `number`, or `None` if it has none (not sealed, or reverted).
async fn node_block(node: &HttpClient, number: u32) -> Result<Option<BlockRecord>, IndexerError> {
    match node.block(number).await {
        Ok(b) => Ok(Some(b)),
        Err(jsonrpsee::core::client::Error::Call(e)) if e.code() == zkl_rpc_api::codes::NOT_FOUND => Ok(None),
        Err(e) => Err(IndexerError::node(e)),
    }
}

/// One look at the node: record its tip and the chains' counters, forget blocks it no longer
/// has, write the next blocks. True when caught up.
async fn step(db: &mut Client, node: &HttpClient) -> Result<bool, IndexerError> {
    let tip = node.state_root().await.map_err(IndexerError::node)?.block;
    let chains: Vec<ChainCounters> = node
        .l1_status()
        .await
        .map_err(IndexerError::node)?
        .into_iter()
        .filter_map(|s| s.counters.map(|counters| ChainCounters { chain: s.chain, counters }))
        .collect();
    db::set_status(db, tip, &chains).await?;

    // Walk back from the last indexed block to the last one the node still has unchanged.
    let mut last = 0;
    let mut root = String::new();
    if let Some((number, stored)) = db::last_block(db).await? {
        let (mut keep, mut ours) = (number, Some(stored));
        while keep > 0 {
            let theirs = node_block(node, keep).await?.map(|b| b.new_root);
            if ours.is_some() && ours == theirs {
                break;
            }
            keep -= 1;
            ours = db::root_of(db, keep).await?;
        }
        if keep < number {
            let gone = db::rewind(db, keep).await?;
            tracing::warn!("indexer: the node no longer has blocks {}..={number}: forgot {gone}", keep + 1);
        }
        last = keep;
        root = ours.unwrap_or_default();
    }

    let end = tip.min(last.saturating_add(BLOCKS_PER_STEP));
    for number in last + 1..=end {
        let Some(block) = node_block(node, number).await? else {
            return Ok(false);
        };
        // The node reverted between two reads: the next step walks back.
        if number > 1 && block.old_root != root {
            return Ok(false);
        }
        db::insert_block(db, &block).await?;
        tracing::debug!("indexer: block {number}");
        root = block.new_root;
    }
    Ok(end >= tip)
}
