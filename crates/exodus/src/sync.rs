//! Bringing every chain to the highest final block (protocol.md section 18): whatever one chain
//! executed was attested final with every chain synced at it, so the attestation (in that chain's
//! `receiveFinalBlock` calldata) and the block proofs (in any chain's `proveBlocks` calldata) are
//! public and valid everywhere. In exodus mode, before claims open, anyone may bring them to a
//! lagging chain and execute there; [`sync`] does it with the caller's key.

use std::collections::HashMap;

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use serde::{Deserialize, Serialize};
use zkl_contracts::bindings::ZkLink::{ExecuteBlockInfo, proveBlocksCall, receiveFinalBlockCall};
use zkl_types::ChainId;

use crate::blocks::committed_blocks;
use crate::recover::{genesis, stored_blocks};
use crate::{ChainsFile, Connection, ExodusError, chain_status, data_availability};

/// What [`sync`] did on one chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub l2_chain: ChainId,
    /// The final block this chain now knows (after a carried attestation, if any).
    pub final_block: u32,
    /// Blocks proven here with proofs carried from other chains.
    pub proven: Vec<u32>,
    /// Blocks executed here.
    pub executed: Vec<u32>,
    /// Transactions sent.
    pub txs: Vec<String>,
}

/// The highest finality attestation any chain received: (block, signatures).
async fn best_attestation(conns: &[Connection]) -> Result<Option<(u32, Vec<alloy::primitives::Bytes>)>, ExodusError> {
    let mut best: Option<(u32, Vec<alloy::primitives::Bytes>)> = None;
    for c in conns {
        let logs = c.zklink.BlockFinal_filter().from_block(0).query().await.map_err(|e| c.rpc(e))?;
        let Some((ev, log)) = logs.into_iter().max_by_key(|(ev, _)| ev.blockNumber) else { continue };
        if best.as_ref().is_some_and(|(n, _)| *n >= ev.blockNumber) {
            continue;
        }
        let call = receiveFinalBlockCall::abi_decode(&c.input_of(log.transaction_hash).await?)
            .map_err(|e| c.rpc(format!("receiveFinalBlock calldata: {e}")))?;
        best = Some((ev.blockNumber, call.signatures));
    }
    Ok(best)
}

/// Every block proof any chain accepted, by block number, with the capacity it was proven at.
async fn proofs(conns: &[Connection]) -> Result<HashMap<u32, ([U256; 8], u32)>, ExodusError> {
    let mut out = HashMap::new();
    for c in conns {
        let logs = c.zklink.BlockProven_filter().from_block(0).query().await.map_err(|e| c.rpc(e))?;
        let mut seen = std::collections::HashSet::new();
        for (_, log) in logs {
            if !seen.insert(log.transaction_hash) {
                continue;
            }
            let call = proveBlocksCall::abi_decode(&c.input_of(log.transaction_hash).await?)
                .map_err(|e| c.rpc(format!("proveBlocks calldata: {e}")))?;
            for (b, p) in call.blocks.iter().zip(call.proofs) {
                out.entry(b.blockNumber).or_insert((p, call.capacity));
            }
        }
    }
    Ok(out)
}

/// Brings every chain in exodus mode (claims not yet open) to the highest final block any chain
/// knows: carries the attestation, proves with the public proofs, executes. Chains outside
/// exodus, or whose claims are open, are left as they are.
pub async fn sync(file: &ChainsFile, key: &PrivateKeySigner) -> Result<Vec<SyncReport>, ExodusError> {
    let conns = file.connect(Some(key))?;
    let Some((target, sigs)) = best_attestation(&conns).await? else {
        return Ok(conns.iter().map(|c| SyncReport { l2_chain: c.entry.l2_chain, ..Default::default() }).collect());
    };
    let da = data_availability(&conns)?;
    let genesis_root = genesis(da).await?.root;
    let blocks = committed_blocks(da, target, None, &indicatif::ProgressBar::hidden()).await?;
    let all_proofs = proofs(&conns).await?;
    let mut out = Vec::new();
    let all_stored = stored_blocks(genesis_root, &blocks, conns.iter().map(|c| c.entry.l2_chain))?;
    for c in &conns {
        let chain = c.entry.l2_chain;
        let stored = &all_stored[&chain];
        let mut report = SyncReport { l2_chain: chain, ..Default::default() };
        let mut s = chain_status(c).await?;
        // A chain outside exodus is still its operator's (racing it would only fail); once
        // claims are open nothing more may execute.
        if !s.exodus || s.claims_open_at.is_some_and(|t| s.now >= t) {
            report.final_block = s.final_block;
            out.push(report);
            continue;
        }
        if s.final_block < target {
            let tx = c
                .send(c.zklink.receiveFinalBlock(stored[target as usize].clone(), sigs.clone()), "receiveFinalBlock")
                .await?;
            report.txs.push(tx);
            s = chain_status(c).await?;
        }
        report.final_block = s.final_block;
        if s.proven < target {
            let numbers: Vec<u32> = (s.proven + 1..=target).collect();
            // One proveBlocks per run of blocks proven at the same capacity (one verifier each).
            let mut runs: Vec<(u32, Vec<_>, Vec<[U256; 8]>)> = Vec::new();
            for n in &numbers {
                let (p, capacity) =
                    all_proofs.get(n).ok_or_else(|| c.rpc(format!("no chain holds a proof of block {n}")))?;
                if runs.last().is_none_or(|r| r.0 != *capacity) {
                    runs.push((*capacity, Vec::new(), Vec::new()));
                }
                if let Some(run) = runs.last_mut() {
                    run.1.push(stored[*n as usize].clone());
                    run.2.push(*p);
                }
            }
            for (capacity, infos, words) in runs {
                report.txs.push(c.send(c.zklink.proveBlocks(infos, words, capacity), "proveBlocks").await?);
            }
            report.proven = numbers;
        }
        if s.executed < target {
            let numbers: Vec<u32> = (s.executed + 1..=target).collect();
            let infos = numbers
                .iter()
                .map(|n| ExecuteBlockInfo {
                    storedBlock: stored[*n as usize].clone(),
                    withdrawals: blocks[*n as usize - 1].l2_block().packed_withdrawals(chain),
                })
                .collect();
            report.txs.push(c.send(c.zklink.executeBlocks(infos), "executeBlocks").await?);
            report.executed = numbers;
        }
        out.push(report);
    }
    Ok(out)
}
