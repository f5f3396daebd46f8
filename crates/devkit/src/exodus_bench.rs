//! `zkl bench exodus`: the recovery tool's work when the operator is gone, on synthetic Layer-1
//! data: the state rebuilt from `commitBlocks` calldata of many txs, then one exit proof.
//!
//! The synthetic history: every account deposits ETH and USDC (merged into USD) on one of two
//! chains, then transfers and order matchings (ETH/USD, both orders filled) between random
//! accounts, packed into blocks of `block_chunks` chunks and carried as data-availability
//! `commitBlocks` calls of [`BLOCKS_PER_COMMIT`] blocks. The generator computes the real root of
//! the last block only (intermediate roots are left zero), because the rebuild checks that one
//! root: it binds the whole state.
//!
//! The timed rebuild does what `zkl exodus claim` does with the calldata in hand: ABI-decodes every
//! call, decodes the pubdata through the one layout table, replays every op through `zkl-state`,
//! checks the last root, and recomputes each chain's stored block of every block (commitments,
//! sync hashes, withdrawal hashes).

use std::time::Instant;

use alloy::primitives::{B256, Bytes};
use alloy::sol_types::SolCall;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zkl_circuit::exit::ExitCircuit;
use zkl_circuit::groth16::Keys;
use zkl_contracts::bindings::ZkLink::{StoredBlockInfo, commitBlocksCall};
use zkl_contracts::block::{L2Block, genesis_info};
use zkl_exodus::blocks::blocks_of_commit;
use zkl_exodus::recover::{CommittedBlock, replay, state_root, stored_blocks};
use zkl_state::State;
use zkl_state::testkit::{ETH, ONE, USD, USDC, USDT, demo_registry};
use zkl_types::op::{DepositOp, Op, OrderMatchingOp, TransferOp};
use zkl_types::{AccountId, Address, TokenRegistry};

use crate::prove_bench::{peak_rss_mb, reset_peak_rss};

/// Blocks per synthetic `commitBlocks` call.
pub const BLOCKS_PER_COMMIT: usize = 16;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct ExodusBenchConfig {
    /// Txs in the history, deposits included (two per account).
    pub txs: u32,
    pub accounts: u32,
    /// Chunks per block.
    pub block_chunks: usize,
}

impl Default for ExodusBenchConfig {
    fn default() -> Self {
        ExodusBenchConfig { txs: 1_000_000, accounts: 100_000, block_chunks: 256 }
    }
}

/// The synthetic Layer-1 data and what the rebuild must find.
pub struct SyntheticL1 {
    pub registry: TokenRegistry,
    pub fee_owner: alloy::primitives::Address,
    pub genesis_root: B256,
    /// ABI-encoded `commitBlocks` calls, in order.
    pub commits: Vec<Bytes>,
    pub blocks: u32,
    pub txs: u64,
    /// The root after the last block (also in the last block's calldata).
    pub final_root: B256,
}

/// Results of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExodusBenchReport {
    pub txs: u64,
    pub blocks: u32,
    pub accounts: u32,
    pub calldata_mb: f64,
    pub setup_s: f64,
    pub rebuild_s: f64,
    pub phases: RebuildPhases,
    pub rebuild_txs_per_s: f64,
    pub exit_proof_s: f64,
    /// Peak RSS while rebuilding and proving (the synthetic calldata included).
    pub peak_rss_mb: Option<u64>,
}

fn owner(i: u32) -> Address {
    let mut a = [0u8; 20];
    a[0] = 0xee;
    a[16..].copy_from_slice(&i.to_be_bytes());
    Address::from_evm(a)
}

/// Generates the synthetic history of `config` (deterministic) and its calldata.
pub fn synthetic_l1(config: &ExodusBenchConfig, progress: &dyn Fn(&str)) -> Result<SyntheticL1, String> {
    let (registry, fee_owner, genesis_root, blocks) = synthetic_blocks(config, progress)?;
    SyntheticL1::encode(registry, fee_owner, genesis_root, &blocks, progress)
}

type Blocks = (TokenRegistry, alloy::primitives::Address, B256, Vec<L2Block>);

/// The blocks of the synthetic history of `config`, with the registry, the fee-account owner
/// and the genesis root.
pub fn synthetic_blocks(config: &ExodusBenchConfig, progress: &dyn Fn(&str)) -> Result<Blocks, String> {
    if config.accounts < 2 || u64::from(config.txs) < 2 * u64::from(config.accounts) {
        return Err(format!("{} txs cannot fund {} accounts (two deposits each)", config.txs, config.accounts));
    }
    let registry = demo_registry();
    let fee_owner = alloy::primitives::Address::repeat_byte(0xfe);
    let mut state = State::new(registry.clone(), Address::from_evm(fee_owner.0.0));
    let genesis_root = state_root(&mut state);
    let mut rng = StdRng::seed_from_u64(14);
    let first: AccountId = state.account_count();

    progress("generating txs");
    let mut ops = Vec::with_capacity(config.txs as usize);
    for i in 0..config.accounts {
        let chain = 1 + (i % 2) as u8;
        let usd_l1 = if chain == 2 && i % 4 == 1 { USDT } else { USDC };
        for (l1_token, l2_token, amount) in [(ETH, ETH, 100 * ONE), (usd_l1, USD, 10_000 * ONE)] {
            let owner = owner(i);
            let account = first + i;
            ops.push(Op::Deposit(DepositOp { chain, account, sub: 0, l1_token, l2_token, amount, owner }));
        }
    }
    let pick = |rng: &mut StdRng| first + rng.gen_range(0..config.accounts);
    while ops.len() < config.txs as usize {
        let (a, mut b) = (pick(&mut rng), pick(&mut rng));
        while b == a {
            b = pick(&mut rng);
        }
        if rng.gen_bool(0.6) {
            let (token, unit) = if rng.gen_bool(0.5) { (ETH, ONE / 1000) } else { (USD, ONE / 100) };
            let amount = unit * rng.gen_range(1..=50u128);
            ops.push(Op::Transfer(TransferOp {
                from: a,
                to: b,
                from_sub: 0,
                to_sub: 0,
                token,
                amount,
                fee: unit / 100,
            }));
        } else {
            // The maker sells or buys 0.001-0.05 ETH at 2,000 USD.
            let base_fill = ONE / 1000 * rng.gen_range(1..=50u128);
            ops.push(Op::OrderMatching(OrderMatchingOp {
                maker: a,
                taker: b,
                maker_sub: 0,
                taker_sub: 0,
                maker_is_sell: rng.gen_bool(0.5),
                maker_slot: rng.gen_range(0..64),
                taker_slot: rng.gen_range(0..64),
                base: ETH,
                quote: USD,
                base_fill,
                quote_fill: base_fill * 2000,
                maker_fee_bps: 5,
                taker_fee_bps: 10,
                maker_order_amount: base_fill,
                taker_order_amount: base_fill,
            }));
        }
    }

    progress("applying and packing blocks");
    let mut blocks: Vec<L2Block> = Vec::new();
    let mut current: Vec<Op> = Vec::new();
    let mut chunks = 0;
    let seal = |state: &mut State, blocks: &mut Vec<L2Block>, ops: Vec<Op>| {
        state.credit_fees();
        let number = blocks.len() as u32 + 1;
        blocks.push(L2Block::new(number, 1_700_000_000 + u64::from(number), B256::ZERO, ops, config.block_chunks));
    };
    for op in ops {
        if chunks + op.chunks() > config.block_chunks {
            seal(&mut state, &mut blocks, std::mem::take(&mut current));
            chunks = 0;
        }
        // A tx that would overdraw (random amounts) is left out, as the node would refuse it.
        if state.apply_op(&op).is_ok() {
            chunks += op.chunks();
            current.push(op);
        }
    }
    if !current.is_empty() {
        seal(&mut state, &mut blocks, current);
    }
    let final_root = state_root(&mut state);
    let last = blocks.last_mut().ok_or("no blocks")?;
    last.new_root = final_root;
    Ok((registry, fee_owner, genesis_root, blocks))
}

impl SyntheticL1 {
    /// The data-availability calldata of `blocks` ([`BLOCKS_PER_COMMIT`] per call).
    pub fn encode(
        registry: TokenRegistry,
        fee_owner: alloy::primitives::Address,
        genesis_root: B256,
        blocks: &[L2Block],
        progress: &dyn Fn(&str),
    ) -> Result<Self, String> {
        progress("encoding calldata");
        let mut commits = Vec::new();
        for group in blocks.chunks(BLOCKS_PER_COMMIT) {
            let new_blocks = group
                .iter()
                .map(|b| b.commit_info(1, true))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("synthetic history: {e}"))?;
            let call = commitBlocksCall { last: genesis_info(genesis_root), newBlocks: new_blocks };
            commits.push(Bytes::from(call.abi_encode()));
        }
        let last = blocks.last().ok_or("no blocks")?;
        Ok(SyntheticL1 {
            registry,
            fee_owner,
            genesis_root,
            commits,
            blocks: blocks.len() as u32,
            txs: blocks.iter().map(|b| b.ops.len() as u64).sum(),
            final_root: last.new_root,
        })
    }
}

/// Where the rebuild's time goes, in seconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RebuildPhases {
    /// ABI-decoding the calls and decoding their pubdata.
    pub decode_s: f64,
    /// Applying every op and computing the last root.
    pub replay_s: f64,
    /// Each chain's stored block of every block.
    pub stored_s: f64,
}

/// The timed rebuild: the state after the last block and each chain's last stored block.
pub fn rebuild(l1: &SyntheticL1) -> Result<(State, Vec<StoredBlockInfo>, RebuildPhases), String> {
    let mut phases = RebuildPhases::default();
    let t = Instant::now();
    let mut blocks: Vec<CommittedBlock> = Vec::with_capacity(l1.blocks as usize);
    for call in &l1.commits {
        blocks.extend(blocks_of_commit(call).map_err(|e| e.to_string())?);
    }
    phases.decode_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let hidden = indicatif::ProgressBar::hidden();
    let state =
        replay(l1.registry.clone(), l1.fee_owner, l1.genesis_root, &blocks, 0, &hidden).map_err(|e| e.to_string())?;
    phases.replay_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let stored = stored_blocks(l1.genesis_root, &blocks, l1.registry.chains()).map_err(|e| e.to_string())?;
    let last = stored.into_values().map(|s| s.last().cloned().ok_or("no stored blocks")).collect::<Result<_, _>>()?;
    phases.stored_s = t.elapsed().as_secs_f64();
    Ok((state, last, phases))
}

/// Generates the history, rebuilds it (timed) and proves one USD exit on chain 1 with `keys`.
pub fn run(config: &ExodusBenchConfig, keys: &Keys, progress: &dyn Fn(&str)) -> Result<ExodusBenchReport, String> {
    let t = Instant::now();
    let l1 = synthetic_l1(config, progress)?;
    let setup_s = t.elapsed().as_secs_f64();
    let calldata_mb = l1.commits.iter().map(|c| c.len()).sum::<usize>() as f64 / 1e6;

    progress("rebuilding");
    let tracked = reset_peak_rss();
    let t = Instant::now();
    let (state, _, phases) = rebuild(&l1)?;
    let rebuild_s = t.elapsed().as_secs_f64();

    progress("proving one exit");
    let account = state.account_by_owner(&owner(config.accounts / 2)).ok_or("the sampled account is missing")?;
    let (circuit, exit) =
        ExitCircuit::build(&state, 1, account, 0, USD, [USDC, USDT, 0, 0]).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let proof = keys.prove(circuit, &mut rand::rngs::OsRng).map_err(|e| e.to_string())?;
    let exit_proof_s = t.elapsed().as_secs_f64();
    let peak = if tracked { peak_rss_mb() } else { None };
    if !keys.verify(&exit.public_inputs, &proof).map_err(|e| e.to_string())? {
        return Err("the exit proof does not verify".into());
    }
    Ok(ExodusBenchReport {
        txs: l1.txs,
        blocks: l1.blocks,
        accounts: config.accounts,
        calldata_mb,
        setup_s,
        rebuild_s,
        phases,
        rebuild_txs_per_s: l1.txs as f64 / rebuild_s,
        exit_proof_s,
        peak_rss_mb: peak,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: ExodusBenchConfig = ExodusBenchConfig { txs: 3_000, accounts: 300, block_chunks: 32 };

    #[test]
    fn the_rebuild_reaches_the_generators_root_and_keeps_every_unit() {
        let l1 = synthetic_l1(&SMALL, &|_| {}).unwrap();
        assert!(l1.blocks > BLOCKS_PER_COMMIT as u32 && l1.commits.len() > 1, "several calls of several blocks");
        assert!(l1.txs > 2_500, "few txs were refused: {}", l1.txs);
        let (mut state, stored, _) = rebuild(&l1).unwrap();
        assert_eq!(state_root(&mut state), l1.final_root);
        assert_eq!(stored.len(), 2);
        assert!(stored.iter().all(|s| s.blockNumber == l1.blocks && s.stateRoot == l1.final_root));
        assert_eq!(stored[0].syncHash, stored[1].syncHash, "one commitment chain for every chain");
        // Deposits, transfers and matchings move value but never create it: every L2 balance of
        // ETH and of USD (fees included) sums to what the deposits brought.
        for (token, per_account) in [(ETH, 100 * ONE), (USD, 10_000 * ONE)] {
            let total: u128 = (0..state.account_count()).map(|a| state.balance(a, 0, token)).sum();
            assert_eq!(total, u128::from(SMALL.accounts) * per_account, "token {token}");
        }
    }

    #[test]
    fn a_changed_op_anywhere_fails_the_rebuild() {
        let (registry, fee_owner, genesis_root, mut blocks) = synthetic_blocks(&SMALL, &|_| {}).unwrap();
        let middle = blocks.len() / 2;
        let b = &mut blocks[middle];
        let i = b.ops.iter().position(|op| matches!(op, Op::Transfer(_))).expect("a transfer");
        let Op::Transfer(t) = &mut b.ops[i] else { unreachable!() };
        // Another recipient: every op still applies, only the root differs.
        t.to = if t.to == t.from + 1 { t.from + 2 } else { t.from + 1 };
        let l1 = SyntheticL1::encode(registry, fee_owner, genesis_root, &blocks, &|_| {}).unwrap();
        let e = rebuild(&l1).map(|_| ()).unwrap_err();
        assert!(e.contains("rebuilt root") && e.contains(&format!("committed {}", l1.final_root)), "{e}");
    }
}
