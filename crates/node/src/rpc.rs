//! JSON-RPC over HTTP and WebSocket (jsonrpsee). Methods are documented in docs/api.md.

use std::sync::{Arc, RwLock};

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use zkl_crypto::fr_to_hex;
use zkl_state::State;
use zkl_types::{Address, PriorityRequest, SignedTx};

use crate::config::NodeConfig;
use crate::sequencer::{Event, SequencerHandle};
use crate::storage::Storage;

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

pub fn module(ctx: Ctx) -> Result<RpcModule<Ctx>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(ctx);
    m.register_method("zkl_chains", |_, ctx, _| -> Result<Value, ErrorObjectOwned> { Ok(json!(ctx.config.chains)) })?;
    m.register_method("zkl_tokens", |_, ctx, _| -> Result<Value, ErrorObjectOwned> { Ok(json!(ctx.config.tokens)) })?;
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
        match ctx.storage.tx(&h).map_err(|e| err(codes::UNAVAILABLE, e.to_string()))? {
            Some(r) => Ok(json!(r)),
            None => Err(err(codes::NOT_FOUND, format!("unknown tx {hash}"))),
        }
    })?;
    m.register_method("zkl_block", |params: Params, ctx, _| -> Result<Value, ErrorObjectOwned> {
        let (number,): (u32,) = params.parse()?;
        match ctx.storage.block(number).map_err(|e| err(codes::UNAVAILABLE, e.to_string()))? {
            Some(b) => Ok(json!(b)),
            None => Err(err(codes::NOT_FOUND, format!("no block {number}"))),
        }
    })?;
    m.register_async_method("zkl_sealBlock", |_, ctx, _| async move {
        Ok::<Value, ErrorObjectOwned>(json!(ctx.sequencer.seal().await))
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
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(()),
                }
            }
        },
    )?;
    Ok(m)
}
