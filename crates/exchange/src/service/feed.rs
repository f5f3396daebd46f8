//! The node's account feed (`zkl_subscribeAccountChanges`) as the engine thread uses it: the
//! accounts txs other than the exchange's own fills changed, which the engine's mirror of the
//! accounts it read must read again; and whether the feed is live (without it, or when it lost
//! track, the mirror keeps nothing from one batch to the next).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use zkl_rpc_api::AccountChanges;
use zkl_types::AccountId;

use super::node::NodeClient;

/// Changed accounts kept for the engine at most; beyond, it reads every account again.
const DIRTY_MAX: usize = 100_000;

/// What the feed reported and the engine thread has not taken yet.
#[derive(Debug, Default)]
pub struct Feed(Mutex<Changes>);

/// What changed since the engine last looked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The feed is subscribed and has not lost track since `reset` was last taken.
    pub live: bool,
    /// Every account may have changed (the feed started again or fell behind, or blocks were
    /// rewound).
    pub reset: bool,
    /// The accounts other txs changed.
    pub dirty: HashSet<AccountId>,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Changes> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What changed since the last call.
    pub fn take(&self) -> Changes {
        let mut s = self.lock();
        Changes { live: s.live, reset: std::mem::take(&mut s.reset), dirty: std::mem::take(&mut s.dirty) }
    }

    /// The feed is subscribed: what was read before may be older than anything it reports.
    fn started(&self) {
        let mut s = self.lock();
        (s.live, s.reset) = (true, true);
        s.dirty.clear();
    }

    fn lost(&self) {
        let mut s = self.lock();
        (s.live, s.reset) = (false, true);
    }

    /// Takes in one notification; the fills of `matcher` (the exchange's own: one exchange per
    /// matcher account) are left out.
    pub fn note(&self, note: AccountChanges, matcher: AccountId) {
        let mut s = self.lock();
        match note {
            AccountChanges::Changed { changes } => {
                for c in changes.into_iter().filter(|c| c.matcher != Some(matcher)) {
                    s.dirty.extend(c.accounts);
                }
                // An engine that has not looked for long reads everything again.
                if s.dirty.len() > DIRTY_MAX {
                    s.dirty.clear();
                    s.reset = true;
                }
            }
            AccountChanges::Reset { reason } => {
                tracing::debug!(%reason, "the node's account feed lost track; reading every account again");
                s.reset = true;
            }
        }
    }
}

/// Follows `node`'s account feed into `feed` until `stop`'s sender is gone, subscribing again
/// (with a growing pause) when the connection ends; returns at once if the node has no feed.
pub async fn follow<N: NodeClient>(node: Arc<N>, matcher: AccountId, feed: Arc<Feed>, mut stop: watch::Receiver<()>) {
    let mut wait = Duration::from_millis(100);
    let mut warned = false;
    loop {
        let subscribed = tokio::select! {
            s = node.account_changes() => s,
            _ = stop.changed() => return,
        };
        match subscribed {
            Ok(None) => return,
            Ok(Some(mut changes)) => {
                feed.started();
                wait = Duration::from_millis(100);
                loop {
                    let next = tokio::select! {
                        n = changes.next() => n,
                        _ = stop.changed() => return,
                    };
                    match next {
                        Some(note) => feed.note(note, matcher),
                        None => break,
                    }
                }
                feed.lost();
                tracing::warn!("the node's account feed ended; reading accounts for every batch until it is back");
            }
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "cannot subscribe to the node's account feed; reading accounts for every batch, retrying");
            }
            Err(e) => tracing::debug!(error = %e, "cannot subscribe to the node's account feed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
