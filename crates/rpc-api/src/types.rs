//! The API's requests and responses. The node stores some of them as they are (tx, priority and
//! block records, the settlement records), so what a client reads is what the node keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zkl_types::{AccountId, Address, ChainId, Op, PriorityRequest, SignedTx, TokenId};

// ---- configuration (served by zkl_chains, zkl_tokens) ------------------------------------------

/// One connected chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainConfig {
    /// L2 chain id (1..=4).
    pub id: ChainId,
    pub name: String,
}

/// An L1 deployment of a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct L1TokenConfig {
    pub chain: ChainId,
    pub decimals: u8,
}

/// A token id: an asset (with L1 deployments) or a merge group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenConfig {
    pub id: TokenId,
    pub symbol: String,
    #[serde(default)]
    pub is_group: bool,
    #[serde(default)]
    pub group: Option<TokenId>,
    #[serde(default)]
    pub l1: Vec<L1TokenConfig>,
}

/// A Layer-1 chain the node settles on (`zkl_l1Contracts`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct L1Contract {
    /// L2 chain id.
    pub chain: ChainId,
    pub evm_chain_id: u64,
    /// The ZkLink contract (`0x` + 40 hex).
    pub contract: String,
    /// The node's RPC endpoint of the chain.
    pub rpc_url: String,
}

// ---- accounts and fees -------------------------------------------------------------------------

/// An account (`zkl_account`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountInfo {
    pub id: AccountId,
    pub owner: Address,
    pub nonce: u32,
    /// `0x` + 40 hex (zero before the first ChangePubKey).
    pub pubkey_hash: String,
    /// Non-zero balances, by sub-account then token.
    pub balances: Vec<Balance>,
    /// Used order slots, by sub-account then slot.
    pub order_slots: Vec<OrderSlotInfo>,
}

impl AccountInfo {
    /// The balance of `token` in sub-account `sub` (0 when absent).
    pub fn balance(&self, sub: u8, token: TokenId) -> u128 {
        self.balances.iter().find(|b| b.sub == sub && b.token == token).map_or(0, |b| b.amount)
    }

    /// Order slot `slot` of sub-account `sub` (nonce 0, residue 0 when unused).
    pub fn order_slot(&self, sub: u8, slot: u16) -> OrderSlotInfo {
        self.order_slots.iter().find(|s| s.sub == sub && s.slot == slot).cloned().unwrap_or(OrderSlotInfo {
            sub,
            slot,
            nonce: 0,
            residue: 0,
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Balance {
    pub sub: u8,
    pub token: TokenId,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub amount: u128,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderSlotInfo {
    pub sub: u8,
    pub slot: u16,
    pub nonce: u32,
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub residue: u128,
}

/// What `zkl_estimateFee` is asked about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeeQuery {
    /// transfer, withdraw, change_pubkey or forced_exit.
    pub kind: String,
    /// The fee token.
    pub token: TokenId,
    /// For a transfer: the recipient (a new address costs three chunks instead of one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Address>,
}

/// The answer of `zkl_estimateFee`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeeEstimate {
    pub kind: String,
    pub token: TokenId,
    pub chunks: usize,
    /// The minimum fee (0 without a fee policy).
    #[serde(with = "zkl_types::serde_impls::u128_str")]
    pub fee: u128,
}

/// One tx's outcome in `zkl_sendBatch`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum BatchResult {
    Accepted {
        hash: String,
    },
    Rejected {
        error: String,
        /// The node is not taking work now (settlement halted, sequencer stopped): the tx was
        /// not judged, and the same tx may be sent again later. Absent (false) when a rule or
        /// the node's policy refused the tx.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retry: bool,
    },
}

/// `zkl_stateRoot`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StateRoot {
    /// The last sealed block.
    pub block: u32,
    /// Its new root (`0x` + 64 hex).
    pub root: String,
    /// Ops in the block being built.
    pub pending_ops: usize,
}

// ---- txs, priority requests and blocks ---------------------------------------------------------

/// Where a tx stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Accepted with a nonce ahead of the account's; executes when the earlier nonces have.
    Queued,
    /// Accepted into the block being built.
    Pending,
    /// Was queued, then failed when its turn came (the state machine's reason).
    Rejected { reason: String },
    /// Part of sealed block `block`.
    Included { block: u32 },
}

impl TxStatus {
    /// The block it is in, once included.
    pub fn block(&self) -> Option<u32> {
        match self {
            TxStatus::Included { block } => Some(*block),
            _ => None,
        }
    }
}

/// A notification of `zkl_subscribeAccountChanges`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountChanges {
    /// Txs and priority ops the node executed, in order.
    Changed { changes: Vec<AccountChange> },
    /// Changes may have been missed (the subscriber fell behind, or blocks were rewound): any
    /// account may differ from what the subscriber read before.
    Reset { reason: String },
}

/// The accounts one executed tx or priority op changed (balances, nonce, key, order slots; the
/// fee account, credited when a block is sealed, aside).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountChange {
    /// The matcher that submitted it, for an order matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<AccountId>,
    pub accounts: Vec<AccountId>,
}

/// A tx record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TxRecord {
    pub hash: String,
    /// Position in the log (absent while queued or once rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(flatten)]
    pub status: TxStatus,
    pub tx: SignedTx,
}

/// Where a priority request stands: `pending` (applied into the block being built), `included`
/// (in sealed block `block`) or `rejected` (the operator left it out after a refusal, e.g. a
/// deposit that a reorganisation removed from its chain; the chain's queue is read again).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PriorityRecord {
    pub hash: String,
    #[serde(flatten)]
    pub status: TxStatus,
    pub request: PriorityRequest,
    /// The op it became (a deposit's account id, a full exit's amount).
    pub op: Op,
}

/// A tx or a priority request, as `zkl_txStatus` finds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Record {
    Tx(TxRecord),
    Priority(PriorityRecord),
}

impl Record {
    pub fn status(&self) -> &TxStatus {
        match self {
            Record::Tx(r) => &r.status,
            Record::Priority(r) => &r.status,
        }
    }
}

/// How far a block got on one chain.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum L1Stage {
    Pending,
    Committed,
    Proven,
    Executed,
}

/// `zkl_txStatus`: the record and, once included on a node that settles, its block's stage per
/// chain (keys are chain ids).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TxLookup {
    #[serde(flatten)]
    pub record: Record,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1: Option<BTreeMap<String, L1Stage>>,
}

impl TxLookup {
    pub fn status(&self) -> &TxStatus {
        self.record.status()
    }

    /// The stage of its block on `chain`, if the node settles there.
    pub fn stage(&self, chain: ChainId) -> Option<L1Stage> {
        self.l1.as_ref()?.get(&chain.to_string()).copied()
    }
}

/// A sealed block as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockRecord {
    pub number: u32,
    pub timestamp: u64,
    pub capacity: usize,
    pub old_root: String,
    pub new_root: String,
    pub commitment: String,
    pub public_input: String,
    pub tx_hashes: Vec<String>,
    pub ops: Vec<Op>,
    /// Per op, the hash of the tx or the priority request (`keccak256(chain ‖ serial)`) it came
    /// from.
    #[serde(default)]
    pub op_hashes: Vec<String>,
    pub pubdata: String,
}

// ---- settlement --------------------------------------------------------------------------------

/// A chain's settlement counters as its contract last reported them (`blockCounters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1Counters {
    pub committed: u32,
    pub proven: u32,
    pub executed: u32,
}

impl L1Counters {
    /// How far block `block` got.
    pub fn stage_of(&self, block: u64) -> L1Stage {
        if u64::from(self.executed) >= block {
            L1Stage::Executed
        } else if u64::from(self.proven) >= block {
            L1Stage::Proven
        } else if u64::from(self.committed) >= block {
            L1Stage::Committed
        } else {
            L1Stage::Pending
        }
    }
}

/// The last error of a chain's settler (its committing account is the configuration's committer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitterError {
    pub action: String,
    pub error: String,
    pub at_ms: u64,
}

/// The operation a chain's contract refused, as located by the chain's settler.
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

/// One settlement chain in `zkl_l1Status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1ChainStatus {
    pub chain: ChainId,
    /// `None` before the settler's first read.
    pub counters: Option<L1Counters>,
    /// The halt, if this chain refused a block.
    pub halt: Option<Halt>,
    /// The first block this chain still has to revert after `zkl_revertBlocks`.
    pub reverting_from: Option<u32>,
    /// The settler's last failed step since its last sent tx.
    pub last_error: Option<CommitterError>,
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

// ---- provers -----------------------------------------------------------------------------------

/// A job as a worker sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// Unique per hand-out: a reassigned block gets a new id.
    pub job: u64,
    pub block: BlockRecord,
    /// The block's witness, in the format of the node's injected `JobPayload` (null without).
    pub payload: Value,
}

/// The block a prover request was about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobBlock {
    pub block: u32,
}

/// `zkl_proof`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockProof {
    pub block: u32,
    /// `0x` + the proof bytes.
    pub proof: String,
}
