//! What the node records when a chain refuses a block, and the operator's way out.
//!
//! The node checks every rule the contracts check before it accepts a tx, so a sealed block is
//! always committable. If a chain refuses one anyway (a rule the node does not know, an L1
//! reorganisation deeper than the configured confirmations, a misconfigured contract), the
//! chain's settler (`zkl-l1`) records a [`Halt`]: the sequencer stops sealing and refuses new work, and nothing is
//! sent to any chain for that block or later ones. The operator then calls `zkl_revertBlocks`
//! (`zkl admin revert-blocks`): the sequencer rewinds to the block before, drops the refused
//! operation and re-sequences every other tx and priority request of the reverted blocks, and
//! each chain's settler reverts the blocks its contract had committed ([`RevertPlan`]). No
//! acknowledged tx is lost: each one is either in a new block or marked rejected with the reason.

use std::sync::Arc;

use jsonrpsee::core::async_trait;
use serde::{Deserialize, Serialize};
use zkl_types::ChainId;

use crate::NodeConfig;
use crate::sequencer::SequencerHandle;
use crate::storage::{BlockRecord, Storage};

/// `L1` table key of the current halt.
pub const HALT_KEY: &str = "halt";

pub use zkl_rpc_api::{Halt, RefusedOp, RevertRequest, RewindReport};

/// Blocks a chain's settler must revert on its contract: every block from `from_block` on that
/// the contract has committed, described by the records the node sealed before the rewind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertPlan {
    pub from_block: u32,
    /// The old records of blocks `from_block`, `from_block + 1`, …
    pub blocks: Vec<BlockRecord>,
}

/// The `L1` table key of chain `chain`'s [`RevertPlan`] (pending until its settler reverted).
pub fn revert_key(chain: ChainId) -> String {
    format!("revert/{chain}")
}

/// A chain's settlement counters as its contract last reported them (`blockCounters`), published
/// by the chain's settler under [`counters_key`] for `zkl_l1Status`.
pub use zkl_rpc_api::L1Counters;

/// The `L1` table key of chain `chain`'s [`L1Counters`].
pub fn counters_key(chain: ChainId) -> String {
    format!("counters/{chain}")
}

/// The last error of a chain's settler, published under [`error_key`] for `zkl_l1Status`.
pub use zkl_rpc_api::CommitterError;

/// The `L1` table key of chain `chain`'s [`CommitterError`] (absent after a success).
pub fn error_key(chain: ChainId) -> String {
    format!("error/{chain}")
}

/// The `L1` table key of chain `chain`'s watcher progress (removed to rescan from the start).
pub fn progress_key(chain: ChainId) -> String {
    format!("watcher/{chain}")
}

/// Why the settlement layer could not start or answer (its own error, boxed: the node does not
/// depend on the Layer-1 crate).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SettlementError(pub Box<dyn std::error::Error + Send + Sync>);

/// What the node needs of its settlement layer (implemented by `zkl-l1`: watchers, settlers and
/// the oracle relayer of every configured chain), which reaches the node only through
/// [`SettlementContext`].
#[async_trait]
pub trait SettlementLayer: Send + Sync {
    /// The settlement chains.
    fn chains(&self) -> Vec<ChainId>;
    /// The highest block `chain`'s contract refuses to revert, read from the chain now: executed,
    /// attested final, or (with several chains) one it holds every other chain's sync hash of
    /// (protocol.md section 18).
    async fn irreversible(&self, chain: ChainId) -> Result<u32, SettlementError>;
    /// Asks every task to stop and waits until they have.
    async fn stop(&self);
}

/// What a settlement layer is started with: the node's configuration (its `l1` section), its
/// storage (sealed blocks, proofs, the `L1` table) and its sequencer.
#[derive(Clone)]
pub struct SettlementContext {
    pub config: NodeConfig,
    pub storage: Arc<Storage>,
    pub sequencer: SequencerHandle,
}

/// Starts the settlement layer once the sequencer runs, before the API serves.
#[async_trait]
pub trait SettlementStarter: Send + Sync {
    async fn start(&self, ctx: SettlementContext) -> Result<Arc<dyn SettlementLayer>, SettlementError>;
}
