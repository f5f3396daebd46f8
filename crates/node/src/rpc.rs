//! JSON-RPC over HTTP and WebSocket: the node's implementation of the API traits of
//! `zkl-rpc-api` (methods documented in docs/api.md).

use std::sync::{Arc, RwLock};

use jsonrpsee::RpcModule;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::PendingSubscriptionSink;
use jsonrpsee::types::ErrorObjectOwned;
use zkl_crypto::fr_to_hex;
use zkl_rpc_api::*;
use zkl_state::State;
use zkl_types::op::chunks_of;
use zkl_types::{Address, ChainId, Op, PriorityRequest, SignedTx, TxKind};

use crate::config::NodeConfig;
use crate::provers::{ProverError, ProverQueue};
use crate::sequencer::{Event, Policy, Rewind, SequencerError, SequencerHandle};
use crate::settlement::{HALT_KEY, RevertPlan, SettlementLayer, counters_key, error_key, revert_key};
use crate::storage::Storage;

pub use zkl_rpc_api::codes;

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    zkl_rpc_api::error(code, msg)
}

/// A refusal of the sequencer: code 1 (rejected), or 3 (unavailable) when it is gone.
fn sequencer_err(e: SequencerError) -> ErrorObjectOwned {
    let code = if e == SequencerError::Stopped { codes::UNAVAILABLE } else { codes::REJECTED };
    err(code, e.to_string())
}

fn unavailable(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(codes::UNAVAILABLE, e.to_string())
}

pub struct Ctx {
    pub config: NodeConfig,
    pub state: Arc<RwLock<State>>,
    pub storage: Arc<Storage>,
    pub sequencer: SequencerHandle,
    pub events: tokio::sync::broadcast::Sender<Event>,
    pub policy: Policy,
    pub provers: Option<Arc<ProverQueue>>,
    /// The settlement layer (none without an `l1` section).
    pub settlement: Option<Arc<dyn SettlementLayer>>,
}

/// Checks an operator method's bearer token (`admin.tokens` in the configuration).
fn admin(ctx: &Ctx, token: &str) -> Result<(), ErrorObjectOwned> {
    match &ctx.config.admin {
        None => Err(err(codes::UNAVAILABLE, "operator methods are disabled (the configuration has no admin section)")),
        Some(a) if a.allows(token) => Ok(()),
        Some(_) => Err(err(codes::UNAUTHORIZED, "unknown admin token")),
    }
}

/// `zkl_revertBlocks`: rewinds the node to before the halted (or given) block, dropping the
/// refused op (or the given hashes), and has every chain revert what it committed from there.
async fn revert_blocks(ctx: &Ctx, req: RevertRequest) -> Result<RewindReport, ErrorObjectOwned> {
    let halt: Option<Halt> = ctx.storage.l1_get(HALT_KEY).map_err(unavailable)?;
    let from_block = req.from_block.or(halt.as_ref().map(|h| h.block)).ok_or_else(|| {
        err(codes::INVALID_PARAMS, "settlement is not halted: name the first block to revert (from_block)")
    })?;
    let drop = match (&req.drop, &halt) {
        (Some(hashes), _) => hashes.clone(),
        (None, Some(h)) if h.block == from_block => h.op.iter().map(|op| op.hash.clone()).collect(),
        (None, _) => vec![],
    };
    let drop = drop.iter().map(|h| parse_hash(h)).collect::<Result<_, _>>()?;
    // Every configured chain gets a revert plan; each must say it can still revert the block.
    let chains: Vec<ChainId> = settlement_chains(ctx).iter().map(|c| c.l2_chain).collect();
    for &chain in &chains {
        let irreversible = match &ctx.settlement {
            Some(s) => s.irreversible(chain).await.map_err(unavailable)?,
            None => return Err(err(codes::UNAVAILABLE, "the settlement layer is not running")),
        };
        if irreversible >= from_block {
            return Err(err(
                codes::REJECTED,
                format!(
                    "block {irreversible} is final on chain {chain} (executed, attested final, or holding every \
                     chain's sync hash): blocks from {from_block} cannot be reverted"
                ),
            ));
        }
    }
    let last = ctx.storage.last_block().map_err(unavailable)?.unwrap_or(0);
    let mut blocks = Vec::new();
    for n in from_block..=last {
        blocks.extend(ctx.storage.block(n).map_err(unavailable)?);
    }
    let plan = RevertPlan { from_block, blocks };
    let reason = match &halt {
        Some(h) if h.block == from_block => {
            format!("refused by chain {}'s contract ({}); dropped by the operator", h.chain, h.error)
        }
        _ => "dropped by the operator".to_string(),
    };
    let rewind = Rewind { from_block, drop, reason, plans: chains.iter().map(|c| (*c, plan.clone())).collect() };
    ctx.sequencer.rewind(rewind).await.map_err(sequencer_err)
}

fn estimate_fee(ctx: &Ctx, q: &FeeQuery) -> RpcResult<FeeEstimate> {
    let state = ctx.state.read().unwrap_or_else(|p| p.into_inner());
    let kind = match TxKind::from_name(&q.kind) {
        Some(TxKind::OrderMatching) => {
            return Err(err(codes::INVALID_PARAMS, "an order matching pays the fee ratios its orders carry"));
        }
        Some(kind) => kind,
        None => {
            return Err(err(
                codes::INVALID_PARAMS,
                format!("unknown kind {:?} (transfer, withdraw, change_pubkey, forced_exit)", q.kind),
            ));
        }
    };
    let op = state.op_code_of(kind, q.to.as_ref());
    let chunks = chunks_of(op).expect("known op code");
    let fee = ctx.policy.fees.min_fee(q.token, chunks).map_err(|e| err(codes::INVALID_PARAMS, e))?.unwrap_or(0);
    Ok(FeeEstimate { kind: q.kind.clone(), token: q.token, chunks, fee })
}

fn parse_hash(s: &str) -> Result<[u8; 32], ErrorObjectOwned> {
    let h = s.strip_prefix("0x").ok_or_else(|| err(codes::INVALID_PARAMS, "hash must start with 0x"))?;
    let v = hex::decode(h).map_err(|_| err(codes::INVALID_PARAMS, "hash is not hex"))?;
    v.try_into().map_err(|_| err(codes::INVALID_PARAMS, "hash must be 32 bytes"))
}

fn account_info(state: &State, id: u32) -> Option<AccountInfo> {
    let a = state.account(id)?;
    let mut balances: Vec<Balance> =
        a.balances().map(|(i, amount)| Balance { sub: (i >> 16) as u8, token: (i & 0xffff) as u16, amount }).collect();
    balances.sort_by_key(|b| (b.sub, b.token));
    let mut order_slots: Vec<OrderSlotInfo> = a
        .order_slots()
        .map(|(i, s)| OrderSlotInfo {
            sub: (i >> 16) as u8,
            slot: (i & 0xffff) as u16,
            nonce: s.nonce,
            residue: s.residue,
        })
        .collect();
    order_slots.sort_by_key(|s| (s.sub, s.slot));
    Some(AccountInfo {
        id,
        owner: a.owner,
        nonce: a.nonce,
        pubkey_hash: a.pubkey_hash.to_string(),
        balances,
        order_slots,
    })
}

fn prover_err(e: ProverError) -> ErrorObjectOwned {
    let code = match e {
        ProverError::Unauthorized => codes::UNAUTHORIZED,
        ProverError::UnknownJob(_) => codes::NOT_FOUND,
        ProverError::Unavailable(_) => codes::UNAVAILABLE,
        _ => codes::REJECTED,
    };
    err(code, e.to_string())
}

fn counters_of(ctx: &Ctx, chain: ChainId) -> Option<L1Counters> {
    ctx.storage.l1_get(&counters_key(chain)).ok().flatten()
}

fn settlement_chains(ctx: &Ctx) -> &[crate::config::L1ChainConfig] {
    ctx.config.l1.as_ref().map(|l1| l1.chains.as_slice()).unwrap_or_default()
}

/// The node's API: every trait of `zkl-rpc-api` over one context.
#[derive(Clone)]
struct Api(Arc<Ctx>);

impl Api {
    fn queue(&self) -> Result<&ProverQueue, ErrorObjectOwned> {
        self.0.provers.as_deref().ok_or_else(|| err(codes::UNAVAILABLE, "this node serves no prover jobs"))
    }
}

#[async_trait]
impl ZklApiServer for Api {
    fn chains(&self) -> RpcResult<Vec<ChainConfig>> {
        Ok(self.0.config.chains.clone())
    }

    fn tokens(&self) -> RpcResult<Vec<TokenConfig>> {
        Ok(self.0.config.tokens.clone())
    }

    fn l1_contracts(&self) -> RpcResult<Vec<L1Contract>> {
        Ok(settlement_chains(&self.0)
            .iter()
            .map(|c| L1Contract {
                chain: c.l2_chain,
                evm_chain_id: c.evm_chain_id,
                contract: c.contract.clone(),
                rpc_url: c.rpc_url.clone(),
            })
            .collect())
    }

    /// Each settlement chain's counters as its settler last read them, its settler's last
    /// error, and the halt if this chain refused a block.
    fn l1_status(&self) -> RpcResult<Vec<L1ChainStatus>> {
        let ctx = &self.0;
        let halt: Option<Halt> = ctx.storage.l1_get(HALT_KEY).ok().flatten();
        Ok(settlement_chains(ctx)
            .iter()
            .map(|c| {
                let chain = c.l2_chain;
                let reverting: Option<RevertPlan> = ctx.storage.l1_get(&revert_key(chain)).ok().flatten();
                L1ChainStatus {
                    chain,
                    counters: counters_of(ctx, chain),
                    halt: halt.clone().filter(|h| h.chain == chain),
                    reverting_from: reverting.map(|p| p.from_block),
                    last_error: ctx.storage.l1_get(&error_key(chain)).ok().flatten(),
                }
            })
            .collect())
    }

    fn account(&self, who: String) -> RpcResult<AccountInfo> {
        let state = self.0.state.read().unwrap_or_else(|p| p.into_inner());
        let id = match who.parse::<u32>() {
            Ok(id) => Some(id),
            Err(_) => {
                let addr = Address::parse(&who)
                    .ok_or_else(|| err(codes::INVALID_PARAMS, "expected an account id or a 0x address"))?;
                state.account_by_owner(&addr)
            }
        };
        id.and_then(|id| account_info(&state, id)).ok_or_else(|| err(codes::NOT_FOUND, format!("no account {who}")))
    }

    async fn send_tx(&self, tx: SignedTx) -> RpcResult<String> {
        match self.0.sequencer.send_txs(vec![tx]).await.pop() {
            Some(Ok(hash)) => Ok(format!("0x{}", hex::encode(hash))),
            Some(Err(e)) => Err(sequencer_err(e)),
            None => Err(err(codes::UNAVAILABLE, "no result")),
        }
    }

    async fn send_batch(&self, txs: Vec<SignedTx>) -> RpcResult<Vec<BatchResult>> {
        if txs.is_empty() || txs.len() > 1000 {
            return Err(err(codes::INVALID_PARAMS, "a batch holds 1 to 1000 txs"));
        }
        Ok(self
            .0
            .sequencer
            .send_txs(txs)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(h) => BatchResult::Accepted { hash: format!("0x{}", hex::encode(h)) },
                Err(e) => {
                    let retry = matches!(e, SequencerError::Halted(_) | SequencerError::Stopped);
                    BatchResult::Rejected { error: e.to_string(), retry }
                }
            })
            .collect())
    }

    fn tx_status(&self, hash: String) -> RpcResult<TxLookup> {
        let ctx = &self.0;
        let h = parse_hash(&hash)?;
        // An L2 tx, or else a priority request (by `keccak256(chain ‖ serial)`).
        let record = match ctx.storage.tx(&h).map_err(unavailable)? {
            Some(r) => Record::Tx(r),
            None => match ctx.storage.priority(&h).map_err(unavailable)? {
                Some(r) => Record::Priority(r),
                None => return Err(err(codes::NOT_FOUND, format!("unknown tx or priority request {hash}"))),
            },
        };
        // Where its block stands on each settlement chain.
        let l1 = record.status().block().map(|block| {
            settlement_chains(ctx)
                .iter()
                .map(|c| {
                    let stage = counters_of(ctx, c.l2_chain).unwrap_or_default().stage_of(u64::from(block));
                    (c.l2_chain.to_string(), stage)
                })
                .collect()
        });
        Ok(TxLookup { record, l1 })
    }

    fn estimate_fee(&self, query: FeeQuery) -> RpcResult<FeeEstimate> {
        estimate_fee(&self.0, &query)
    }

    /// Priority operations from `chain` executed into the block being built (not yet sealed).
    fn pending_priority_ops(&self, chain: ChainId) -> RpcResult<Vec<Op>> {
        if !self.0.config.chains.iter().any(|c| c.id == chain) {
            return Err(err(codes::NOT_FOUND, format!("no chain {chain}")));
        }
        let state = self.0.state.read().unwrap_or_else(|p| p.into_inner());
        Ok(state
            .pending_ops()
            .iter()
            .filter(|op| op.is_priority() && op.onchain_chain() == Some(chain))
            .copied()
            .collect())
    }

    fn block(&self, number: u32) -> RpcResult<BlockRecord> {
        self.0
            .storage
            .block(number)
            .map_err(unavailable)?
            .ok_or_else(|| err(codes::NOT_FOUND, format!("no block {number}")))
    }

    fn state_root(&self) -> RpcResult<StateRoot> {
        let state = self.0.state.read().unwrap_or_else(|p| p.into_inner());
        let block = state.last_block();
        let root = self
            .0
            .storage
            .block(block)
            .map_err(unavailable)?
            .map(|b| b.new_root)
            .unwrap_or_else(|| fr_to_hex(&zkl_crypto::Fr::from(0u64)));
        Ok(StateRoot { block, root, pending_ops: state.pending_ops().len() })
    }

    fn proof(&self, block: u32) -> RpcResult<BlockProof> {
        match self.0.storage.proof(block).map_err(unavailable)? {
            Some(p) => Ok(BlockProof { block, proof: format!("0x{}", hex::encode(p)) }),
            None => Err(err(codes::NOT_FOUND, format!("no proof of block {block} yet"))),
        }
    }
}

#[async_trait]
impl EventsApiServer for Api {
    async fn subscribe_blocks(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut rx = self.0.events.subscribe();
        let sink = pending.accept().await?;
        loop {
            match rx.recv().await {
                Ok(Event::Block(b)) => {
                    if sink.send(serde_json::value::to_raw_value(&*b)?).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(Event::Tx(_) | Event::Rewind(_) | Event::Accounts(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Ok(()),
            }
        }
    }

    async fn subscribe_tx_status(&self, pending: PendingSubscriptionSink, hash: String) -> SubscriptionResult {
        let ctx = &self.0;
        let h = match parse_hash(&hash) {
            Ok(h) => h,
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        };
        // Subscribe before reading the current status so no change falls in between.
        let mut rx = ctx.events.subscribe();
        let current = match ctx.storage.tx(&h) {
            Ok(Some(r)) => r,
            Ok(None) => {
                pending.reject(err(codes::NOT_FOUND, format!("unknown tx {hash}"))).await;
                return Ok(());
            }
            Err(e) => {
                pending.reject(unavailable(e)).await;
                return Ok(());
            }
        };
        let sink = pending.accept().await?;
        let mut last = current.status.clone();
        if sink.send(serde_json::value::to_raw_value(&current)?).await.is_err() {
            return Ok(());
        }
        let mut record = current;
        loop {
            let status = match rx.recv().await {
                Ok(Event::Block(b)) if b.tx_hashes.contains(&record.hash) => TxStatus::Included { block: b.number },
                Ok(Event::Tx(r)) if r.hash == record.hash => {
                    record = TxRecord::clone(&r);
                    r.status.clone()
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => match ctx.storage.tx(&h) {
                    Ok(Some(r)) => {
                        record = r;
                        record.status.clone()
                    }
                    _ => continue,
                },
                Err(_) => return Ok(()),
            };
            if status == last {
                continue;
            }
            last = status.clone();
            record.status = status;
            if sink.send(serde_json::value::to_raw_value(&record)?).await.is_err() {
                return Ok(());
            }
        }
    }

    async fn subscribe_account_changes(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut rx = self.0.events.subscribe();
        let sink = pending.accept().await?;
        loop {
            let note = match rx.recv().await {
                Ok(Event::Accounts(changes)) => AccountChanges::Changed { changes: changes.to_vec() },
                Ok(Event::Rewind(from)) => {
                    AccountChanges::Reset { reason: format!("blocks from {from} on were rewound") }
                }
                Ok(Event::Block(_) | Event::Tx(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    AccountChanges::Reset { reason: format!("the subscriber fell {n} events behind") }
                }
                Err(_) => return Ok(()),
            };
            if sink.send(serde_json::value::to_raw_value(&note)?).await.is_err() {
                return Ok(());
            }
        }
    }
}

#[async_trait]
impl AdminApiServer for Api {
    async fn seal_block(&self, token: String) -> RpcResult<Option<u32>> {
        admin(&self.0, &token)?;
        Ok(self.0.sequencer.seal().await)
    }

    async fn revert_blocks(&self, token: String, request: Option<RevertRequest>) -> RpcResult<RewindReport> {
        admin(&self.0, &token)?;
        revert_blocks(&self.0, request.unwrap_or_default()).await
    }

    async fn dev_priority_op(&self, request: PriorityRequest) -> RpcResult<Op> {
        if !self.0.config.dev_priority_ops {
            return Err(err(
                codes::UNAVAILABLE,
                "priority operations come from chain watchers (dev_priority_ops is off)",
            ));
        }
        self.0.sequencer.priority(request).await.map_err(sequencer_err)
    }
}

impl ProverApiServer for Api {
    fn prover_take_job(&self, token: String, worker: String) -> RpcResult<Option<Job>> {
        self.queue()?.take(&token, &worker).map_err(prover_err)
    }

    fn prover_heartbeat(&self, token: String, job: u64) -> RpcResult<JobBlock> {
        Ok(JobBlock { block: self.queue()?.heartbeat(&token, job).map_err(prover_err)? })
    }

    fn prover_submit_proof(&self, token: String, job: u64, proof: String) -> RpcResult<JobBlock> {
        let bytes = proof
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| err(codes::INVALID_PARAMS, "proof must be 0x-prefixed hex"))?;
        Ok(JobBlock { block: self.queue()?.submit(&token, job, &bytes).map_err(prover_err)? })
    }
}

/// The node's JSON-RPC module: every method of the API.
pub fn module(ctx: Ctx) -> Result<RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let api = Api(Arc::new(ctx));
    let mut m = RpcModule::new(());
    m.merge(ZklApiServer::into_rpc(api.clone()))?;
    m.merge(EventsApiServer::into_rpc(api.clone()))?;
    m.merge(AdminApiServer::into_rpc(api.clone()))?;
    m.merge(ProverApiServer::into_rpc(api))?;
    Ok(m)
}
