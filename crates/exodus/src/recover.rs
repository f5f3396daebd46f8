//! The state from Layer-1 data alone, and the claims against it (protocol.md section 18).
//!
//! The genesis (root and fee-account owner) comes from the data-availability chain's
//! `Initialized` event, the token registry from every chain's `TokenRegistered` events, and the
//! blocks from the data-availability chain's `commitBlocks` calldata (the newest commit of each
//! block number, so reverted blocks drop out). Every block is replayed through `zkl-state` and
//! its root checked against the committed one; every chain's stored block is recomputed and
//! checked against the contract's hash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zkl_circuit::exit::ExitCircuit;
use zkl_circuit::groth16::Keys;
use zkl_contracts::bindings::ZkLink::StoredBlockInfo;
use zkl_contracts::block::{L2Block, genesis_info};
use zkl_state::State;
use zkl_types::op::Op;
use zkl_types::{Address as L2Address, ChainId, TokenRegistry};

use crate::blocks::{BlockCache, committed_blocks};
use crate::{ChainsFile, Connection, ExodusError, chain_status, data_availability};
use zkl_crypto::field::fr_to_be_bytes;

/// One committed block as the data-availability chain holds it.
#[derive(Clone, Debug)]
pub struct CommittedBlock {
    pub number: u32,
    pub timestamp: u64,
    pub new_root: B256,
    pub ops: Vec<Op>,
    pub capacity: usize,
}

impl CommittedBlock {
    /// The block as the contracts take it (its stored info and withdrawals per chain).
    pub fn l2_block(&self) -> L2Block {
        L2Block::new(self.number, self.timestamp, self.new_root, self.ops.clone(), self.capacity)
    }
}

/// The token registry of the deployment, from every chain's `TokenRegistered` events.
pub async fn registry(conns: &[Connection]) -> Result<TokenRegistry, ExodusError> {
    let mut r = TokenRegistry::new();
    let mut l1: Vec<(u16, ChainId, u8)> = Vec::new();
    let mut groups: BTreeMap<u16, u16> = BTreeMap::new();
    for c in conns {
        r.add_chain(c.entry.l2_chain).map_err(|e| c.rpc(e))?;
        let logs = c.zklink.TokenRegistered_filter().from_block(0).query().await.map_err(|e| c.rpc(e))?;
        for (ev, _) in logs {
            l1.push((ev.tokenId, c.entry.l2_chain, ev.decimals));
            if ev.group != 0 && *groups.entry(ev.tokenId).or_insert(ev.group) != ev.group {
                return Err(c.rpc(format!("token {} is in group {} here and another elsewhere", ev.tokenId, ev.group)));
            }
        }
    }
    let tokens: BTreeSet<u16> = l1.iter().map(|t| t.0).collect();
    let group_ids: BTreeSet<u16> = groups.values().copied().collect();
    let fail = |e: zkl_types::TokenError| ExodusError::rebuild(0, format!("token registry: {e}"));
    for t in &tokens {
        r.add_token(*t, &format!("T{t}")).map_err(fail)?;
    }
    for g in &group_ids {
        r.add_group(*g, &format!("G{g}")).map_err(fail)?;
    }
    for (t, g) in &groups {
        r.set_group(*t, *g).map_err(fail)?;
    }
    for (t, chain, decimals) in l1 {
        r.add_l1(t, chain, decimals).map_err(fail)?;
    }
    Ok(r)
}

/// What the data-availability chain's `Initialized` event announced.
#[derive(Clone, Copy, Debug)]
pub struct Genesis {
    pub root: B256,
    pub fee_owner: Address,
    /// The hash of the L1 block that holds the event (names the deployment in caches).
    pub l1_block: B256,
}

impl Genesis {
    /// The name of the deployment whose data-availability contract is `zklink` (block caches
    /// are kept per deployment).
    pub fn deployment(&self, zklink: Address) -> String {
        format!("zkLink {zklink} initialised in L1 block {}", self.l1_block)
    }
}

/// The genesis root and fee-account owner announced by the contract's `Initialized` event.
pub async fn genesis(c: &Connection) -> Result<Genesis, ExodusError> {
    let logs = c.zklink.Initialized_filter().from_block(0).query().await.map_err(|e| c.rpc(e))?;
    let (ev, log) = logs.into_iter().next().ok_or_else(|| c.rpc("no Initialized event"))?;
    let l1_block = log.block_hash.ok_or_else(|| c.rpc("the Initialized event has no block"))?;
    Ok(Genesis { root: ev.genesisRoot, fee_owner: ev.feeOwner, l1_block })
}

/// The state's root as the contracts store it (big-endian).
pub fn state_root(state: &mut State) -> B256 {
    B256::from(fr_to_be_bytes(&state.root()))
}

/// Replays `blocks` on the genesis state. The root is checked after the last block, which
/// binds the whole state (a wrong op anywhere gives another root), and after every
/// `check_every`-th block (0: the last only) to tell where a divergence starts; `progress`
/// counts blocks and shows txs per second.
pub fn replay(
    registry: TokenRegistry,
    fee_owner: Address,
    genesis_root: B256,
    blocks: &[CommittedBlock],
    check_every: u32,
    progress: &ProgressBar,
) -> Result<State, ExodusError> {
    let mut state = State::new(registry, L2Address::from_evm(fee_owner.0.0));
    let root = state_root(&mut state);
    if root != genesis_root {
        return Err(ExodusError::rebuild(
            0,
            format!("genesis root {root} from the announced fee owner, the contract has {genesis_root}"),
        ));
    }
    progress.set_length(blocks.len() as u64);
    let started = std::time::Instant::now();
    let mut txs = 0u64;
    for (i, b) in blocks.iter().enumerate() {
        for op in &b.ops {
            state.apply_op(op).map_err(|e| ExodusError::rebuild(b.number, format!("{op:?}: {e}")))?;
        }
        txs += b.ops.iter().filter(|op| !matches!(op, Op::Noop)).count() as u64;
        state.credit_fees();
        let last = i + 1 == blocks.len();
        if last || (check_every > 0 && b.number % check_every == 0) {
            let root = state_root(&mut state);
            if root != b.new_root {
                let since = if last && check_every == 0 { "blocks 1.." } else { "block " };
                return Err(ExodusError::rebuild(
                    b.number,
                    format!("rebuilt root {root} after {since}{}, committed {}", b.number, b.new_root),
                ));
            }
        }
        if (i % 64 == 0 || last) && !progress.is_hidden() {
            progress.set_position(i as u64 + 1);
            progress.set_message(format!("{txs} txs, {:.0} txs/s", txs as f64 / started.elapsed().as_secs_f64()));
        }
    }
    progress.finish();
    Ok(state)
}

/// Every chain's stored block of every replayed block, from genesis (index = block number).
/// The commitments, the same on every chain, are computed once, in parallel.
pub fn stored_blocks(
    genesis_root: B256,
    blocks: &[CommittedBlock],
    chains: impl IntoIterator<Item = ChainId>,
) -> Result<BTreeMap<ChainId, Vec<StoredBlockInfo>>, ExodusError> {
    let l2: Vec<L2Block> = blocks.par_iter().map(CommittedBlock::l2_block).collect();
    let commitments = l2
        .par_iter()
        .enumerate()
        .map(|(i, b)| {
            let old_root = if i == 0 { genesis_root } else { blocks[i - 1].new_root };
            b.commitment(old_root).map_err(|e| ExodusError::rebuild(b.number, e))
        })
        .collect::<Result<Vec<B256>, ExodusError>>()?;
    let mut out = BTreeMap::new();
    for chain in chains {
        let mut prev = genesis_info(genesis_root);
        let mut stored = Vec::with_capacity(blocks.len() + 1);
        stored.push(prev.clone());
        for (b, commitment) in l2.iter().zip(&commitments) {
            prev = b.stored_info_with(&prev, chain, *commitment);
            stored.push(prev.clone());
        }
        out.insert(chain, stored);
    }
    Ok(out)
}

/// How a rebuild runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RebuildOptions<'a> {
    /// Where fetched blocks are kept between runs (`l1-blocks.redb`); None fetches every time.
    pub data_dir: Option<&'a Path>,
    /// Also check the root after every `check_every`-th block (0: after the last one only).
    pub check_every: u32,
    /// Progress bars on stderr (drawn only on a terminal).
    pub progress: bool,
}

/// The state after block `upto`, rebuilt from the chains of `file` alone (the root checked),
/// with the blocks and the genesis root.
pub async fn rebuild(file: &ChainsFile, upto: u32, options: RebuildOptions<'_>) -> Result<Rebuilt, ExodusError> {
    let conns = file.connect(None)?;
    rebuild_on(&conns, upto, options).await
}

/// What [`rebuild`] returns.
pub struct Rebuilt {
    pub state: State,
    pub blocks: Vec<CommittedBlock>,
    pub genesis_root: B256,
}

async fn rebuild_on(conns: &[Connection], upto: u32, options: RebuildOptions<'_>) -> Result<Rebuilt, ExodusError> {
    let da = data_availability(conns)?;
    let g = genesis(da).await?;
    let cache = match options.data_dir {
        Some(dir) => {
            Some(BlockCache::open(dir, &format!("zkLink {} initialised in L1 block {}", da.entry.zklink, g.l1_block))?)
        }
        None => None,
    };
    let fetch = crate::progress::bar(options.progress, "fetching");
    let blocks = committed_blocks(da, upto, cache.as_ref(), &fetch).await?;
    fetch.finish();
    let registry = registry(conns).await?;
    let replaying = crate::progress::bar(options.progress, "replaying");
    let state = replay(registry, g.fee_owner, g.root, &blocks, options.check_every, &replaying)?;
    Ok(Rebuilt { state, blocks, genesis_root: g.root })
}

/// One paid claim, refund or pending balance (L1 amounts as decimal strings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub chain: ChainId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l2_token: Option<u16>,
    pub l1_token: u16,
    pub amount: String,
    pub tx: String,
}

/// What [`claim`] paid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimReport {
    pub claims: Vec<Payout>,
    pub refunds: Vec<Payout>,
    pub pending: Vec<Payout>,
}

/// Claims, on every chain, every (account, sub-account, L2 token) balance `key` owns at the
/// exodus root, refunds its unexecuted deposits and withdraws its pending balances. Needs every
/// chain in exodus mode with claims open and at the same executed block. A second run pays
/// nothing new.
pub async fn claim(
    file: &ChainsFile,
    key: &PrivateKeySigner,
    keys: &Keys,
    options: RebuildOptions<'_>,
) -> Result<ClaimReport, ExodusError> {
    let conns = file.connect(Some(key))?;
    let mut executed = BTreeSet::new();
    for c in &conns {
        let s = chain_status(c).await?;
        match s.claims_open_at {
            Some(t) if s.now >= t => {}
            Some(t) => return Err(c.rpc(format!("claims open at {t} (chain time now {})", s.now))),
            None => return Err(c.rpc("not in exodus mode")),
        }
        executed.insert(s.executed);
    }
    if executed.len() != 1 {
        return Err(ExodusError::Rebuild {
            block: *executed.iter().next_back().unwrap_or(&0),
            msg: format!(
                "the chains executed different numbers of blocks {executed:?}: carry the final attestations and execute first"
            ),
        });
    }
    let upto = *executed.iter().next().unwrap_or(&0);
    let Rebuilt { state, blocks, genesis_root } = rebuild_on(&conns, upto, options).await?;
    let owner = L2Address::from_evm(key.address().0.0);
    let mut report = ClaimReport::default();
    let mut rng = rand::rngs::OsRng;
    let stored = stored_blocks(genesis_root, &blocks, conns.iter().map(|c| c.entry.l2_chain))?;
    for c in &conns {
        let chain = c.entry.l2_chain;
        let last = stored[&chain][upto as usize].clone();
        let on_chain = c.zklink.storedBlockHash(upto).call().await.map_err(|e| c.rpc(e))?;
        let mine = c.zklink.hashStoredBlockInfo(last.clone()).call().await.map_err(|e| c.rpc(e))?;
        if on_chain != mine {
            return Err(ExodusError::rebuild(upto, format!("chain {chain} stores another block {upto}")));
        }
        for (account, sub, l2_token, members) in open_claims(c, &state, owner).await? {
            let (circuit, exit) = ExitCircuit::build(&state, chain, account, sub, l2_token, members)
                .map_err(|e| ExodusError::rebuild(upto, format!("claim of account {account}: {e}")))?;
            let amounts = exit.claim.amounts;
            if amounts.iter().all(|a| *a == 0) {
                continue;
            }
            let proof =
                keys.prove(circuit, &mut rng).map_err(|e| ExodusError::rebuild(upto, format!("exit proof: {e}")))?;
            let words = zkl_contracts::verifier::encode_proof(&proof);
            let call = c.zklink.performExodus(last.clone(), account, sub, l2_token, amounts, words);
            let tx = c.send(call, "performExodus").await?;
            for (i, amount) in amounts.iter().enumerate().filter(|(_, a)| **a > 0) {
                let l1 = members[i];
                report.claims.push(Payout {
                    chain,
                    account: Some(account),
                    sub: Some(sub),
                    l2_token: Some(l2_token),
                    l1_token: l1,
                    amount: l1_units(c, l1, *amount).await?.to_string(),
                    tx: tx.clone(),
                });
            }
        }
        refunds(c, key.address(), &mut report).await?;
        pending(c, key.address(), &mut report).await?;
    }
    Ok(report)
}

async fn l1_units(c: &Connection, l1: u16, amount_l2: u128) -> Result<u128, ExodusError> {
    let t = c.zklink.getToken(l1).call().await.map_err(|e| c.rpc(e))?;
    Ok(amount_l2 / 10u128.pow(18 - u32::from(t.decimals)))
}

/// Every (account, sub-account, L2 token) with a balance `owner` holds in `state` and has not
/// claimed on `c` yet, with the token's exodus pool there, in (account, sub-account, token) order.
async fn open_claims(
    c: &Connection,
    state: &State,
    owner: L2Address,
) -> Result<Vec<(u32, u8, u16, [u16; 4])>, ExodusError> {
    let mut out = Vec::new();
    for account in 0..state.account_count() {
        let Some(a) = state.account(account) else { continue };
        if a.owner != owner {
            continue;
        }
        let mut balances: Vec<(u32, u128)> = a.balances().collect();
        balances.sort_unstable();
        for (index, balance) in balances {
            let (sub, l2_token) = ((index >> 16) as u8, (index & 0xffff) as u16);
            if balance == 0 || c.zklink.isExodusClaimed(account, sub, l2_token).call().await.map_err(|e| c.rpc(e))? {
                continue;
            }
            out.push((account, sub, l2_token, c.zklink.exodusPool(l2_token).call().await.map_err(|e| c.rpc(e))?));
        }
    }
    Ok(out)
}

/// Refunds the deposits `sender` made that were never executed.
async fn refunds(c: &Connection, sender: Address, report: &mut ClaimReport) -> Result<(), ExodusError> {
    let queue = c.zklink.priorityQueue().call().await.map_err(|e| c.rpc(e))?;
    let logs = c.zklink.NewPriorityRequest_filter().from_block(0).query().await.map_err(|e| c.rpc(e))?;
    for (ev, _) in logs {
        if ev.serialId < queue.first || ev.opType != zkl_types::op::code::DEPOSIT {
            continue;
        }
        let r = c.zklink.priorityRequest(ev.serialId).call().await.map_err(|e| c.rpc(e))?;
        if r.sender != sender || r.hashedPubdata == B256::ZERO {
            continue;
        }
        let op = Op::decode(&ev.pubdata).map_err(|e| c.rpc(format!("request {}: {e}", ev.serialId)))?.0;
        let Op::Deposit(d) = op else { continue };
        let tx = c
            .send(
                c.zklink.cancelOutstandingDeposit(ev.serialId, Bytes::from(ev.pubdata.to_vec())),
                "cancelOutstandingDeposit",
            )
            .await?;
        report.refunds.push(Payout {
            chain: c.entry.l2_chain,
            account: None,
            sub: None,
            l2_token: None,
            l1_token: d.l1_token,
            amount: l1_units(c, d.l1_token, d.amount).await?.to_string(),
            tx,
        });
    }
    Ok(())
}

/// Withdraws `owner`'s pending balances (payouts that failed) of every registered token.
async fn pending(c: &Connection, owner: Address, report: &mut ClaimReport) -> Result<(), ExodusError> {
    let logs = c.zklink.TokenRegistered_filter().from_block(0).query().await.map_err(|e| c.rpc(e))?;
    for (ev, _) in logs {
        let amount = c.zklink.pendingBalance(owner, ev.tokenId).call().await.map_err(|e| c.rpc(e))?;
        if amount == 0 {
            continue;
        }
        let tx = c.send(c.zklink.withdrawPendingBalance(owner, ev.tokenId, amount), "withdrawPendingBalance").await?;
        report.pending.push(Payout {
            chain: c.entry.l2_chain,
            account: None,
            sub: None,
            l2_token: None,
            l1_token: ev.tokenId,
            amount: U256::from(amount).to_string(),
            tx,
        });
    }
    Ok(())
}

/// What a claim would pay now: per chain, every (account, sub-account, L2 token) balance `owner`
/// holds at that chain's last executed block, split as the exit proof would (L1 units; nothing
/// is sent). Claims already paid are left out.
pub async fn would_pay(file: &ChainsFile, owner: Address) -> Result<Vec<Payout>, ExodusError> {
    let conns = file.connect(None)?;
    let mut rebuilt: BTreeMap<u32, Rebuilt> = BTreeMap::new();
    let l2_owner = L2Address::from_evm(owner.0.0);
    let mut out = Vec::new();
    for c in &conns {
        let executed = c.zklink.blockCounters().call().await.map_err(|e| c.rpc(e))?.executed;
        if let std::collections::btree_map::Entry::Vacant(slot) = rebuilt.entry(executed) {
            slot.insert(rebuild_on(&conns, executed, RebuildOptions::default()).await?);
        }
        let state = &rebuilt[&executed].state;
        for (account, sub, l2_token, members) in open_claims(c, state, l2_owner).await? {
            let claim = state
                .exodus_claim(c.entry.l2_chain, account, sub, l2_token, members)
                .map_err(|e| ExodusError::rebuild(executed, format!("account {account}: {e}")))?;
            for (i, amount) in claim.amounts.iter().enumerate().filter(|(_, a)| **a > 0) {
                out.push(Payout {
                    chain: c.entry.l2_chain,
                    account: Some(account),
                    sub: Some(sub),
                    l2_token: Some(l2_token),
                    l1_token: members[i],
                    amount: l1_units(c, members[i], *amount).await?.to_string(),
                    tx: String::new(),
                });
            }
        }
    }
    Ok(out)
}

/// Requests the full exit of `owner`'s balance of (`sub`, `l2_token`) on `chain` (the L1 request
/// that starts the priority clock), from Layer-1 data alone: the account id comes from the
/// rebuilt state (every block the data-availability chain committed), the L1 token is `l2_token`
/// if `chain` registered it, else the first member of its pool registered there. Returns
/// (account, L1 token, transaction).
pub async fn request_exit(
    file: &ChainsFile,
    key: &PrivateKeySigner,
    chain: ChainId,
    l2_token: u16,
    sub: u8,
) -> Result<(u32, u16, String), ExodusError> {
    let entry = file
        .chains
        .iter()
        .find(|e| e.l2_chain == chain)
        .ok_or_else(|| ExodusError::Usage(format!("--chain {chain} is not in the chains file")))?;
    let conns = file.connect(None)?;
    let da = data_availability(&conns)?;
    let committed = da.zklink.blockCounters().call().await.map_err(|e| da.rpc(e))?.committed;
    let rebuilt = rebuild_on(&conns, committed, RebuildOptions::default()).await?;
    let l2_owner = L2Address::from_evm(key.address().0.0);
    let account = (0..rebuilt.state.account_count())
        .find(|i| rebuilt.state.account(*i).is_some_and(|a| a.owner == l2_owner))
        .ok_or_else(|| ExodusError::Usage(format!("{} owns no account in the committed blocks", key.address())))?;
    let c = Connection::open(entry, Some(key))?;
    let mut l1 = None;
    let own = c.zklink.getToken(l2_token).call().await.map_err(|e| c.rpc(e))?;
    if own.registered {
        l1 = Some(l2_token);
    } else {
        for m in c.zklink.exodusPool(l2_token).call().await.map_err(|e| c.rpc(e))? {
            if m != 0 && c.zklink.getToken(m).call().await.map_err(|e| c.rpc(e))?.registered {
                l1 = Some(m);
                break;
            }
        }
    }
    let l1 =
        l1.ok_or_else(|| ExodusError::Usage(format!("chain {chain} registers no L1 token of L2 token {l2_token}")))?;
    let fee = c.zklink.priorityFee().call().await.map_err(|e| c.rpc(e))?;
    let call = c.zklink.requestFullExit(account, sub, l1, l2_token).value(U256::from(fee));
    let tx = c.send(call, "requestFullExit").await?;
    Ok((account, l1, tx))
}
