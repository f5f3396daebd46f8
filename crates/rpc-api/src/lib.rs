//! The node's JSON-RPC API (docs/api.md): every method as a jsonrpsee trait, implemented by the
//! node (`…Server`) and called by the wallet, the prover workers and `zkl` (`…Client`), with
//! the typed requests and responses both sides share. Method names are written here and nowhere
//! else.
//!
//! Four traits, one namespace (`zkl_`): [`ZklApi`] for everyone, [`EventsApi`] its subscriptions,
//! [`AdminApi`] for the operator (an admin token first), [`ProverApi`] for prover workers (a
//! prover token first).

pub mod exchange;
pub mod explorer;
pub mod types;

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use zkl_types::{ChainId, Op, PriorityRequest, SignedTx};

pub use types::*;

/// Every method's name, for what the typed clients cannot send (malformed parameters in tests,
/// raw JSON from other languages). A test checks them against the traits.
pub mod method {
    pub const CHAINS: &str = "zkl_chains";
    pub const TOKENS: &str = "zkl_tokens";
    pub const L1_CONTRACTS: &str = "zkl_l1Contracts";
    pub const L1_STATUS: &str = "zkl_l1Status";
    pub const ACCOUNT: &str = "zkl_account";
    pub const SEND_TX: &str = "zkl_sendTx";
    pub const SEND_BATCH: &str = "zkl_sendBatch";
    pub const TX_STATUS: &str = "zkl_txStatus";
    pub const ESTIMATE_FEE: &str = "zkl_estimateFee";
    pub const PENDING_PRIORITY_OPS: &str = "zkl_pendingPriorityOps";
    pub const BLOCK: &str = "zkl_block";
    pub const STATE_ROOT: &str = "zkl_stateRoot";
    pub const PROOF: &str = "zkl_proof";
    pub const SUBSCRIBE_BLOCKS: &str = "zkl_subscribeBlocks";
    pub const UNSUBSCRIBE_BLOCKS: &str = "zkl_unsubscribeBlocks";
    pub const SUBSCRIBE_TX_STATUS: &str = "zkl_subscribeTxStatus";
    pub const UNSUBSCRIBE_TX_STATUS: &str = "zkl_unsubscribeTxStatus";
    pub const SUBSCRIBE_ACCOUNT_CHANGES: &str = "zkl_subscribeAccountChanges";
    pub const UNSUBSCRIBE_ACCOUNT_CHANGES: &str = "zkl_unsubscribeAccountChanges";
    pub const SEAL_BLOCK: &str = "zkl_sealBlock";
    pub const REVERT_BLOCKS: &str = "zkl_revertBlocks";
    pub const DEV_PRIORITY_OP: &str = "zkl_devPriorityOp";
    pub const PROVER_TAKE_JOB: &str = "zkl_proverTakeJob";
    pub const PROVER_HEARTBEAT: &str = "zkl_proverHeartbeat";
    pub const PROVER_SUBMIT_PROOF: &str = "zkl_proverSubmitProof";

    /// All of them.
    pub const ALL: [&str; 25] = [
        CHAINS,
        TOKENS,
        L1_CONTRACTS,
        L1_STATUS,
        ACCOUNT,
        SEND_TX,
        SEND_BATCH,
        TX_STATUS,
        ESTIMATE_FEE,
        PENDING_PRIORITY_OPS,
        BLOCK,
        STATE_ROOT,
        PROOF,
        SUBSCRIBE_BLOCKS,
        UNSUBSCRIBE_BLOCKS,
        SUBSCRIBE_TX_STATUS,
        UNSUBSCRIBE_TX_STATUS,
        SUBSCRIBE_ACCOUNT_CHANGES,
        UNSUBSCRIBE_ACCOUNT_CHANGES,
        SEAL_BLOCK,
        REVERT_BLOCKS,
        DEV_PRIORITY_OP,
        PROVER_TAKE_JOB,
        PROVER_HEARTBEAT,
        PROVER_SUBMIT_PROOF,
    ];
}

/// Error codes of the API (`error.code`).
pub mod codes {
    /// The request's parameters are malformed.
    pub const INVALID_PARAMS: i32 = jsonrpsee::types::error::INVALID_PARAMS_CODE;
    /// The state machine, the node's policy or a prover / operator request refused (the message
    /// says why).
    pub const REJECTED: i32 = 1;
    /// Not found.
    pub const NOT_FOUND: i32 = 2;
    /// The node cannot serve the request (storage, disabled feature).
    pub const UNAVAILABLE: i32 = 3;
    /// A prover or operator method was called without a valid token.
    pub const UNAUTHORIZED: i32 = 4;
}

/// An error response with `code` (one of [`codes`]) and a one-line message.
pub fn error(code: i32, message: impl Into<String>) -> jsonrpsee::types::ErrorObjectOwned {
    jsonrpsee::types::ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// The public methods.
#[rpc(server, client, namespace = "zkl")]
pub trait ZklApi {
    /// The connected chains.
    #[method(name = "chains")]
    fn chains(&self) -> RpcResult<Vec<ChainConfig>>;

    /// Tokens with their merge group and L1 deployments.
    #[method(name = "tokens")]
    fn tokens(&self) -> RpcResult<Vec<TokenConfig>>;

    /// The Layer-1 chains the node settles on.
    #[method(name = "l1Contracts")]
    fn l1_contracts(&self) -> RpcResult<Vec<L1Contract>>;

    /// Each settlement chain's counters, halt, pending revert and last error.
    #[method(name = "l1Status")]
    fn l1_status(&self) -> RpcResult<Vec<L1ChainStatus>>;

    /// An account by id (decimal string) or owner address.
    #[method(name = "account")]
    fn account(&self, id_or_address: String) -> RpcResult<AccountInfo>;

    /// Sends a signed tx; its hash once it is in the node's log.
    #[method(name = "sendTx")]
    async fn send_tx(&self, tx: SignedTx) -> RpcResult<String>;

    /// Sends up to 1,000 txs, executed in order; each gets a hash or an error.
    #[method(name = "sendBatch")]
    async fn send_batch(&self, txs: Vec<SignedTx>) -> RpcResult<Vec<BatchResult>>;

    /// A tx's or a priority request's record, with its block's stage on each chain.
    #[method(name = "txStatus")]
    fn tx_status(&self, hash: String) -> RpcResult<TxLookup>;

    /// The minimum fee of a tx kind in a token.
    #[method(name = "estimateFee")]
    fn estimate_fee(&self, query: FeeQuery) -> RpcResult<FeeEstimate>;

    /// Priority ops of `chain` executed into the block being built.
    #[method(name = "pendingPriorityOps")]
    fn pending_priority_ops(&self, chain: ChainId) -> RpcResult<Vec<Op>>;

    /// A sealed block.
    #[method(name = "block")]
    fn block(&self, number: u32) -> RpcResult<BlockRecord>;

    /// The last sealed block and its root.
    #[method(name = "stateRoot")]
    fn state_root(&self) -> RpcResult<StateRoot>;

    /// A block's proof, once a worker has submitted a valid one.
    #[method(name = "proof")]
    fn proof(&self, block: u32) -> RpcResult<BlockProof>;
}

/// The subscriptions (WebSocket). Their notifications carry the names of the methods whose
/// results they carry (`zkl_block`, `zkl_txStatus`), so they live in a trait of their own.
#[rpc(server, client, namespace = "zkl")]
pub trait EventsApi {
    /// Every sealed block.
    #[subscription(name = "subscribeBlocks" => "block", unsubscribe = "unsubscribeBlocks", item = BlockRecord)]
    async fn subscribe_blocks(&self) -> SubscriptionResult;

    /// A tx's record now and at every change.
    #[subscription(name = "subscribeTxStatus" => "txStatus", unsubscribe = "unsubscribeTxStatus", item = TxRecord)]
    async fn subscribe_tx_status(&self, hash: String) -> SubscriptionResult;

    /// Which accounts each executed tx and priority op changed, as soon as the node's state
    /// shows it (before the node's commit: a follower may read an account again for nothing;
    /// it never misses a change); `reset` when the subscriber may have missed some (it fell behind, or the
    /// operator rewound blocks). What a service that mirrors accounts (the exchange) follows.
    #[subscription(
        name = "subscribeAccountChanges" => "accountChanges",
        unsubscribe = "unsubscribeAccountChanges",
        item = AccountChanges
    )]
    async fn subscribe_account_changes(&self) -> SubscriptionResult;
}

/// The operator's methods (`admin.tokens`); the development-only priority op.
#[rpc(server, client, namespace = "zkl")]
pub trait AdminApi {
    /// Seals the block being built; its number, or `None` when there was nothing to seal.
    #[method(name = "sealBlock")]
    async fn seal_block(&self, token: String) -> RpcResult<Option<u32>>;

    /// After a halt: rewinds and re-sequences, and has every chain revert (docs/node-l1.md).
    #[method(name = "revertBlocks")]
    async fn revert_blocks(&self, token: String, request: Option<RevertRequest>) -> RpcResult<RewindReport>;

    /// A priority request without a chain (`dev_priority_ops` only).
    #[method(name = "devPriorityOp")]
    async fn dev_priority_op(&self, request: PriorityRequest) -> RpcResult<Op>;
}

/// The prover workers' methods (`provers.tokens`).
#[rpc(server, client, namespace = "zkl")]
pub trait ProverApi {
    /// The lowest block waiting for a proof, or `None`.
    #[method(name = "proverTakeJob", blocking)]
    fn prover_take_job(&self, token: String, worker: String) -> RpcResult<Option<Job>>;

    /// Keeps a job assigned to this worker.
    #[method(name = "proverHeartbeat")]
    fn prover_heartbeat(&self, token: String, job: u64) -> RpcResult<JobBlock>;

    /// A proof (`0x` + arkworks-compressed bytes) of a job's block.
    #[method(name = "proverSubmitProof", blocking)]
    fn prover_submit_proof(&self, token: String, job: u64, proof: String) -> RpcResult<JobBlock>;
}
