//! What the node records when a chain refuses a block, and the operator's way out.
//!
//! The node checks every rule the contracts check before it accepts a tx, so a sealed block is
//! always committable. If a chain refuses one anyway (a rule the node does not know, an L1
//! reorganisation deeper than the configured confirmations, a misconfigured contract), the
//! committer records a [`Halt`]: the sequencer stops sealing and refuses new work, and nothing is
//! sent to any chain for that block or later ones. The operator then calls `zkl_revertBlocks`
//! (`zkl admin revert-blocks`): the sequencer rewinds to the block before, drops the refused
//! operation and re-sequences every other tx and priority request of the reverted blocks, and
//! each chain's committer reverts the blocks its contract had committed ([`RevertPlan`]). No
//! acknowledged tx is lost: each one is either in a new block or marked rejected with the reason.

use serde::{Deserialize, Serialize};
use zkl_types::ChainId;

use crate::storage::BlockRecord;

/// `L1` table key of the current halt.
pub const HALT_KEY: &str = "halt";

/// `L1` table key of chain `chain`'s pending [`RevertPlan`].
pub fn revert_key(chain: ChainId) -> String {
    format!("revert/{chain}")
}

pub use zkl_rpc_api::{Halt, RefusedOp, RevertRequest, RewindReport};

/// Blocks a chain's committer must revert on its contract: every block from `from_block` on that
/// the contract has committed, described by the records the node sealed before the rewind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertPlan {
    pub from_block: u32,
    /// The old records of blocks `from_block`, `from_block + 1`, …
    pub blocks: Vec<BlockRecord>,
}
