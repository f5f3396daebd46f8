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

/// The operation a chain's contract refused, as located by the committer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedOp {
    /// Position of the op in the block's ops.
    pub index: usize,
    /// The op's type (`withdraw`, `change_pub_key`, …).
    pub kind: String,
    /// The hash of the L2 tx or priority request (`keccak256(chain ‖ serial)`) it came from.
    pub hash: String,
}

/// Settlement stopped: chain `chain` refused to commit block `block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub block: u32,
    pub chain: ChainId,
    /// The contract's decoded error (`ChangePubKeyAuth()`, `InvalidRecipient()`, …).
    pub error: String,
    /// The refused op, if the refusal is about one op (not about the block as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<RefusedOp>,
    /// Unix time (ms) it was first seen.
    pub since_ms: u64,
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "settlement is halted: chain {} refuses block {} ({})", self.chain, self.block, self.error)?;
        if let Some(op) = &self.op {
            write!(f, " at op {} ({}, {})", op.index, op.kind, op.hash)?;
        }
        write!(f, "; the operator reverts it with zkl admin revert-blocks")
    }
}

/// Blocks a chain's committer must revert on its contract: every block from `from_block` on that
/// the contract has committed, described by the records the node sealed before the rewind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertPlan {
    pub from_block: u32,
    /// The old records of blocks `from_block`, `from_block + 1`, …
    pub blocks: Vec<BlockRecord>,
}

/// What the operator asks `zkl_revertBlocks` to do (every field optional: by default, revert
/// the halted block and drop the op the chain refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertRequest {
    /// Rewind to the block before this one (default: the halted block).
    #[serde(default)]
    pub from_block: Option<u32>,
    /// Hashes of txs or priority requests to leave out (default: the refused op's).
    #[serde(default)]
    pub drop: Option<Vec<String>>,
}

/// What a rewind did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewindReport {
    pub from_block: u32,
    /// Txs executed again into new blocks.
    pub requeued: usize,
    /// Priority requests executed again.
    pub priority: usize,
    /// Left out as asked (hashes).
    pub dropped: Vec<String>,
    /// Txs that no longer apply without the dropped ones (hash and reason).
    pub rejected: Vec<(String, String)>,
}
