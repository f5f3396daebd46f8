//! JSON-RPC over HTTP and WebSocket (jsonrpsee). Methods are documented in docs/api.md.

use std::sync::{Arc, RwLock};

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use zkl_crypto::fr_to_hex;
use zkl_state::State;
use zkl_types::op::chunks_of;
use zkl_types::{Address, ChainId, PriorityRequest, SignedTx, TokenId, TxKind};

use crate::config::NodeConfig;
use crate::provers::{ProverError, ProverQueue};
use crate::sequencer::{Event, Policy, Rewind, SequencerHandle};
use crate::settlement::{HALT_KEY, Halt, RevertPlan, RevertRequest, RewindReport};
use crate::storage::{Storage, TxRecord, TxStatus};

/// Error codes of the API.
pub mod codes {
    /// The request's parameters are malformed.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The state machine rejected the tx (the message says why).
    pub const REJECTED: i32 = 1;
    /// Not found.
    pub const NOT_FOUND: i32 = 2;
    /// The node cannot serve the request (storage, disabled feature).
    pub const UNAVAILABLE: i32 = 3;
    /// A prover or operator method was called without a valid token.
    pub const UNAUTHORIZED: i32 = 4;
}

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

pub struct Ctx {
    pub config: NodeConfig,
    pub state: Arc<RwLock<State>>,
    pub storage: Arc<Storage>,
    pub sequencer: SequencerHandle,
    pub events: tokio::sync::broadcast::Sender<Event>,
    pub policy: Policy,
    pub provers: Option<Arc<ProverQueue>>,
    /// The settlement chains' contracts (empty without an `l1` section).
    pub l1_clients: Vec<crate::l1::ChainClient>,
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
    let unavailable = |e: &dyn std::fmt::Display| err(codes::UNAVAILABLE, e.to_string());
    let halt: Option<Halt> = ctx.storage.l1_get(HALT_KEY).map_err(|e| unavailable(&e))?;
    let from_block = req.from_block.or(halt.as_ref().map(|h| h.block)).ok_or_else(|| {
        err(codes::INVALID_PARAMS, "settlement is not halted: name the first block to revert (from_block)")
    })?;
    let drop = match (&req.drop, &halt) {
        (Some(hashes), _) => hashes.clone(),
        (None, Some(h)) if h.block == from_block => h.op.iter().map(|op| op.hash.clone()).collect(),
        (None, _) => vec![],
    };
    let drop = drop.iter().map(|h| parse_hash(h)).collect::<Result<_, _>>()?;
    for c in &ctx.l1_clients {
        let counters = c.zklink.blockCounters().call().await.map_err(|e| unavailable(&e))?;
        if counters.executed >= from_block {
            return Err(err(
                codes::REJECTED,
                format!("block {from_block} is executed on chain {}: executed blocks are final", c.chain()),
            ));
        }
    }
    let last = ctx.storage.last_block().map_err(|e| unavailable(&e))?.unwrap_or(0);
    let mut blocks = Vec::new();
    for n in from_block..=last {
        blocks.extend(ctx.storage.block(n).map_err(|e| unavailable(&e))?);
    }
    let plan = RevertPlan { from_block, blocks };
    let reason = match &halt {
        Some(h) if h.block == from_block => {
            format!("refused by chain {}'s contract ({}); dropped by the operator", h.chain, h.error)
        }
        _ => "dropped by the operator".to_string(),
    };
    let rewind =
        Rewind { from_block, drop, reason, plans: ctx.l1_clients.iter().map(|c| (c.chain(), plan.clone())).collect() };
    ctx.sequencer.rewind(rewind).await.map_err(|e| err(codes::REJECTED, e))
}

/// What `zkl_estimateFee` is asked about.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeQuery {
    /// transfer, withdraw, change_pubkey or forced_exit.
    pub kind: String,
    /// The fee token.
    pub token: TokenId,
    /// For a transfer: the recipient (a new address costs three chunks instead of one).
    #[serde(default)]
    pub to: Option<Address>,
}

fn estimate_fee(ctx: &Ctx, q: &FeeQuery) -> Result<Value, ErrorObjectOwned> {
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
    Ok(json!({"kind": q.kind, "token": q.token, "chunks": chunks, "fee": fee.to_string()}))
}

/// Priority operations from `chain` executed into the block being built (not yet sealed).
fn pending_priority_ops(ctx: &Ctx, chain: ChainId) -> Value {
    let state = ctx.state.read().unwrap_or_else(|p| p.into_inner());
    json!(
        state
            .pending_ops()
            .iter()
            .filter(|op| op.is_priority() && op.onchain_chain() == Some(chain))
            .collect::<Vec<_>>()
    )
}

fn parse_hash(s: &str) -> Result<[u8; 32], ErrorObjectOwned> {
    let h = s.strip_prefix("0x").ok_or_else(|| err(codes::INVALID_PARAMS, "hash must start with 0x"))?;
    let v = hex::decode(h).map_err(|_| err(codes::INVALID_PARAMS, "hash is not hex"))?;
    v.try_into().map_err(|_| err(codes::INVALID_PARAMS, "hash must be 32 bytes"))
}

fn account_json(state: &State, id: u32) -> Option<Value> {
    let a = state.account(id)?;
    let mut balances: Vec<(u32, u128)> = a.balances().collect();
    balances.sort();
    let mut slots: Vec<_> = a.order_slots().collect();
    slots.sort_by_key(|(i, _)| *i);
    Some(json!({
        "id": id,
        "owner": a.owner,
        "nonce": a.nonce,
        "pubkey_hash": a.pubkey_hash.to_string(),
        "balances": balances.iter().map(|(i, v)| json!({"sub": i >> 16, "token": i & 0xffff, "amount": v.to_string()})).collect::<Vec<_>>(),
        "order_slots": slots.iter().map(|(i, s)| json!({"sub": i >> 16, "slot": i & 0xffff, "nonce": s.nonce, "residue": s.residue.to_string()})).collect::<Vec<_>>(),
    }))
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

fn queue(ctx: &Ctx) -> Result<&ProverQueue, ErrorObjectOwned> {
    ctx.provers.as_deref().ok_or_else(|| err(codes::UNAVAILABLE, "this node serves no prover jobs"))
}

/// The methods `zkl prover` workers call (docs/api.md, "Prover workers").
fn prover_methods(m: &mut RpcModule<Ctx>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    m.register_blocking_method("zkl_proverTakeJob", |params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (token, worker): (String, String) = params.parse()?;
        Ok(json!(queue(&ctx)?.take(&token, &worker).map_err(prover_err)?))
    })?;
    m.register_method("zkl_proverHeartbeat", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (token, job): (String, u64) = params.parse()?;
        Ok(json!({"block": queue(ctx)?.heartbeat(&token, job).map_err(prover_err)?}))
    })?;
    m.register_blocking_method("zkl_proverSubmitProof", |params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (token, job, proof): (String, u64, String) = params.parse()?;
        let bytes = proof
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| err(codes::INVALID_PARAMS, "proof must be 0x-prefixed hex"))?;
        Ok(json!({"block": queue(&ctx)?.submit(&token, job, &bytes).map_err(prover_err)?}))
    })?;
    m.register_method("zkl_proof", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (block,): (u32,) = params.parse()?;
        match ctx.storage.proof(block).map_err(|e| err(codes::UNAVAILABLE, e.to_string()))? {
            Some(p) => Ok(json!({"block": block, "proof": format!("0x{}", hex::encode(p))})),
            None => Err(err(codes::NOT_FOUND, format!("no proof of block {block} yet"))),
        }
    })?;
    Ok(())
}

/// Each settlement chain's counters as its committer last read them (`null` before the first
/// read), its committer's last error, and the halt if this chain refused a block.
fn l1_status(ctx: &Ctx) -> Value {
    let chains = ctx.config.l1.as_ref().map(|l1| l1.chains.as_slice()).unwrap_or_default();
    let halt: Option<Halt> = ctx.storage.l1_get(HALT_KEY).ok().flatten();
    json!(
        chains
            .iter()
            .map(|c| {
                let chain = c.l2_chain;
                let last_error: Option<crate::committer::CommitterError> =
                    ctx.storage.l1_get(&crate::committer::error_key(chain)).ok().flatten();
                let reverting: Option<RevertPlan> =
                    ctx.storage.l1_get(&crate::settlement::revert_key(chain)).ok().flatten();
                json!({
                    "chain": chain,
                    "counters": counters_of(ctx, chain),
                    "halt": halt.as_ref().filter(|h| h.chain == chain),
                    "reverting_from": reverting.map(|p| p.from_block),
                    "last_error": last_error,
                })
            })
            .collect::<Vec<_>>()
    )
}

fn counters_of(ctx: &Ctx, chain: ChainId) -> Option<crate::committer::L1Counters> {
    ctx.storage.l1_get(&crate::committer::counters_key(chain)).ok().flatten()
}

/// Where block `block` stands on each settlement chain: `executed`, `proven`, `committed` or
/// `pending`.
fn settlement_of(ctx: &Ctx, block: u64) -> Value {
    let chains = ctx.config.l1.as_ref().map(|l1| l1.chains.as_slice()).unwrap_or_default();
    let mut out = serde_json::Map::new();
    for c in chains {
        let k = counters_of(ctx, c.l2_chain).unwrap_or_default();
        let stage = if u64::from(k.executed) >= block {
            "executed"
        } else if u64::from(k.proven) >= block {
            "proven"
        } else if u64::from(k.committed) >= block {
            "committed"
        } else {
            "pending"
        };
        out.insert(c.l2_chain.to_string(), json!(stage));
    }
    Value::Object(out)
}

pub fn module(ctx: Ctx) -> Result<RpcModule<Ctx>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(ctx);
    prover_methods(&mut m)?;
    m.register_method("zkl_chains", |_, ctx, _| -> Result<Value, ErrorObjectOwned> { Ok(json!(ctx.config.chains)) })?;
    m.register_method("zkl_tokens", |_, ctx, _| -> Result<Value, ErrorObjectOwned> { Ok(json!(ctx.config.tokens)) })?;
    m.register_method("zkl_l1Contracts", |_, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let chains = ctx.config.l1.as_ref().map(|l1| l1.chains.as_slice()).unwrap_or_default();
        Ok(json!(
            chains
                .iter()
                .map(|c| json!({
                    "chain": c.l2_chain,
                    "evm_chain_id": c.evm_chain_id,
                    "contract": c.contract,
                    "rpc_url": c.rpc_url,
                }))
                .collect::<Vec<_>>()
        ))
    })?;
    m.register_method("zkl_stateRoot", |_, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let state = ctx.state.read().unwrap_or_else(|p| p.into_inner());
        let last = state.last_block();
        let root = ctx
            .storage
            .block(last)
            .map_err(|e| err(codes::UNAVAILABLE, e.to_string()))?
            .map(|b| b.new_root)
            .unwrap_or_else(|| fr_to_hex(&zkl_crypto::Fr::from(0u64)));
        Ok(json!({"block": last, "root": root, "pending_ops": state.pending_ops().len()}))
    })?;
    m.register_method("zkl_account", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (who,): (String,) = params.parse()?;
        let state = ctx.state.read().unwrap_or_else(|p| p.into_inner());
        let id = match who.parse::<u32>() {
            Ok(id) => Some(id),
            Err(_) => {
                let addr = Address::parse(&who)
                    .ok_or_else(|| err(codes::INVALID_PARAMS, "expected an account id or a 0x address"))?;
                state.account_by_owner(&addr)
            }
        };
        id.and_then(|id| account_json(&state, id)).ok_or_else(|| err(codes::NOT_FOUND, format!("no account {who}")))
    })?;
    m.register_async_method("zkl_sendTx", |params, ctx, _| async move {
        let (tx,): (SignedTx,) = params.parse()?;
        let mut results = ctx.sequencer.send_txs(vec![tx]).await;
        match results.pop() {
            Some(Ok(hash)) => Ok::<Value, ErrorObjectOwned>(json!(format!("0x{}", hex::encode(hash)))),
            Some(Err(e)) => Err(err(codes::REJECTED, e)),
            None => Err(err(codes::UNAVAILABLE, "no result")),
        }
    })?;
    m.register_async_method("zkl_sendBatch", |params, ctx, _| async move {
        let (txs,): (Vec<SignedTx>,) = params.parse()?;
        if txs.is_empty() || txs.len() > 1000 {
            return Err(err(codes::INVALID_PARAMS, "a batch holds 1 to 1000 txs"));
        }
        let results = ctx.sequencer.send_txs(txs).await;
        Ok::<Value, ErrorObjectOwned>(json!(
            results
                .into_iter()
                .map(|r| match r {
                    Ok(h) => json!({"hash": format!("0x{}", hex::encode(h))}),
                    Err(e) => json!({"error": e}),
                })
                .collect::<Vec<_>>()
        ))
    })?;
    m.register_method("zkl_txStatus", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (hash,): (String,) = params.parse()?;
        let h = parse_hash(&hash)?;
        let unavailable = |e: crate::storage::StorageError| err(codes::UNAVAILABLE, e.to_string());
        // An L2 tx, or else a priority request (by `keccak256(chain ‖ serial)`).
        let mut v = match ctx.storage.tx(&h).map_err(unavailable)? {
            Some(r) => json!(r),
            None => match ctx.storage.priority(&h).map_err(unavailable)? {
                Some(r) => json!(r),
                None => return Err(err(codes::NOT_FOUND, format!("unknown tx or priority request {hash}"))),
            },
        };
        if let Some(block) = v["block"].as_u64() {
            v["l1"] = settlement_of(ctx, block);
        }
        Ok(v)
    })?;
    m.register_method("zkl_l1Status", |_, ctx, _| -> Result<Value, ErrorObjectOwned> { Ok(l1_status(ctx)) })?;
    m.register_method("zkl_estimateFee", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (q,): (FeeQuery,) = params.parse()?;
        estimate_fee(ctx, &q)
    })?;
    m.register_method("zkl_pendingPriorityOps", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (chain,): (ChainId,) = params.parse()?;
        if !ctx.config.chains.iter().any(|c| c.id == chain) {
            return Err(err(codes::NOT_FOUND, format!("no chain {chain}")));
        }
        Ok(pending_priority_ops(ctx, chain))
    })?;
    m.register_method("zkl_block", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (number,): (u32,) = params.parse()?;
        match ctx.storage.block(number).map_err(|e| err(codes::UNAVAILABLE, e.to_string()))? {
            Some(b) => Ok(json!(b)),
            None => Err(err(codes::NOT_FOUND, format!("no block {number}"))),
        }
    })?;
    m.register_async_method("zkl_sealBlock", |params, ctx, _| async move {
        let (token,): (String,) = params.parse()?;
        admin(&ctx, &token)?;
        Ok::<Value, ErrorObjectOwned>(json!(ctx.sequencer.seal().await))
    })?;
    m.register_async_method("zkl_revertBlocks", |params, ctx, _| async move {
        let mut seq = params.sequence();
        let token: String = seq.next()?;
        let req: Option<RevertRequest> = seq.optional_next()?;
        admin(&ctx, &token)?;
        Ok::<Value, ErrorObjectOwned>(json!(revert_blocks(&ctx, req.unwrap_or_default()).await?))
    })?;
    m.register_async_method("zkl_devPriorityOp", |params, ctx, _| async move {
        if !ctx.config.dev_priority_ops {
            return Err(err(
                codes::UNAVAILABLE,
                "priority operations come from chain watchers (dev_priority_ops is off)",
            ));
        }
        let (request,): (PriorityRequest,) = params.parse()?;
        ctx.sequencer.priority(request).await.map(|op| json!(op)).map_err(|e| err(codes::REJECTED, e))
    })?;
    m.register_subscription(
        "zkl_subscribeBlocks",
        "zkl_block",
        "zkl_unsubscribeBlocks",
        |_, pending, ctx, _| async move {
            let mut rx = ctx.events.subscribe();
            let sink = pending.accept().await?;
            loop {
                match rx.recv().await {
                    Ok(Event::Block(b)) => {
                        let msg = serde_json::value::to_raw_value(&*b)?;
                        if sink.send(msg).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(Event::Tx(_) | Event::Rewind(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(()),
                }
            }
        },
    )?;
    m.register_subscription(
        "zkl_subscribeTxStatus",
        "zkl_txStatus",
        "zkl_unsubscribeTxStatus",
        |params, pending, ctx, _| async move {
            let Ok((hash,)) = params.parse::<(String,)>() else {
                pending.reject(err(codes::INVALID_PARAMS, "expected [tx hash]")).await;
                return Ok(());
            };
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
                    pending.reject(err(codes::UNAVAILABLE, e.to_string())).await;
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
        },
    )?;
    Ok(m)
}
