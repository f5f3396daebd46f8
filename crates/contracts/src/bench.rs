//! Gas benchmark of the ZkLink contract on anvil (`zkl bench gas`).
//!
//! One data-availability deployment (chain 1 of 1, full pubdata in calldata) and one non-DA
//! deployment (chain 1 of 2, pubdata hash and its own on-chain ops only) on two anvils. For every
//! op type and block capacity it settles a batch of blocks filled with that op type the way the
//! settler does: one `commitBlocks` for the batch, one `proveBlocks` (the proofs verified in one
//! batched pairing check), one `receiveFinalBlock` for the last block, one `executeBlocks`; and one
//! `receiveSyncHash` of the last block on the non-DA deployment (with two chains, each chain
//! receives the other's sync hash of the last block of each batch: a run of blocks executes on its
//! last block's). Per op type it reports, at the largest capacity: the pubdata bytes of one
//! op, the commit gas per op (21,000 base included), the commit gas per op on a non-DA chain, and
//! the total gas per op on the DA chain (commit + prove + finalize + execute + relay). It also
//! reports whether the commit transaction paid EIP-7623's calldata floor.
//!
//! Proofs come from the contracts' test circuit (`TestVerifier`): a verifier generated for one
//! public input runs the same code whatever the circuit (only its constants differ), so the
//! block circuit's verifier costs the same gas (`block_verifier_anvil` measures it).

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync;
use serde::Serialize;

use crate::ContractsError;
use crate::anvil::{Anvil, DEV_KEYS};
use crate::bindings::ZkLink::StoredBlockInfo;
use zkl_types::op::{code, *};
use zkl_types::{Address as L2Address, change_pubkey_eth_message};

use crate::deploy::{Chain, ChainConfig, DEV_ORACLE_KEYS, DEV_ORACLE_THRESHOLD, ETH_TOKEN_ID, L2Block, send, signer};

/// Op types the benchmark measures (every op but Noop), with their op codes.
pub fn op_types() -> impl Iterator<Item = (&'static str, u8)> {
    zkl_types::layout::OPS.iter().filter(|l| l.code != code::NOOP).map(|l| (l.name, l.code))
}

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct GasBenchConfig {
    /// Block capacities in chunks; the per-op figures come from the largest.
    pub capacities: Vec<usize>,
    /// Blocks settled per transaction (the settler's batch: 8).
    pub batch: usize,
    /// Op types to measure (names of [`op_types`]); empty = all.
    pub only: Vec<String>,
    /// Extra anvil arguments (e.g. `--hardfork cancun`).
    pub anvil_args: Vec<String>,
}

impl Default for GasBenchConfig {
    fn default() -> Self {
        Self { capacities: vec![8, 32, 64, 256], batch: 8, only: Vec::new(), anvil_args: Vec::new() }
    }
}

/// Figures of one op type at one capacity: one batch of `blocks` blocks of `ops` ops each; the
/// gas figures are whole transactions (`relay_gas`: one `receiveSyncHash`, one per batch).
#[derive(Clone, Debug, Serialize)]
pub struct BlockGas {
    pub capacity: usize,
    pub blocks: usize,
    pub ops: usize,
    pub commit_gas: u64,
    pub commit_gas_non_da: u64,
    pub prove_gas: u64,
    pub finalize_gas: u64,
    pub execute_gas: u64,
    pub relay_gas: u64,
    pub commit_calldata_bytes: usize,
    /// The commit transaction paid the EIP-7623 calldata floor (10/40 gas per zero/non-zero byte).
    pub commit_at_calldata_floor: bool,
}

impl BlockGas {
    /// Ops in the batch.
    pub fn batch_ops(&self) -> u64 {
        (self.blocks * self.ops).max(1) as u64
    }

    /// Everything the DA chain pays for the batch with one other chain: commit, prove,
    /// finalize, execute and the other chain's sync hash of the last block.
    pub fn total_gas(&self) -> u64 {
        self.commit_gas + self.prove_gas + self.finalize_gas + self.execute_gas + self.relay_gas
    }
}

/// Per-op figures of one op type, at the largest capacity.
#[derive(Clone, Debug, Serialize)]
pub struct OpGas {
    pub pubdata_bytes: usize,
    pub commit_gas_per_op: u64,
    pub commit_gas_per_op_non_da: u64,
    pub total_gas_per_op: u64,
    pub blocks: Vec<BlockGas>,
}

/// The benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct GasReport {
    pub hardfork: String,
    pub ops: BTreeMap<String, OpGas>,
}

/// EIP-7623 floor of a transaction's calldata: 21,000 + 10 per token, token = zero byte or 4 per
/// non-zero byte.
pub fn calldata_floor(input: &[u8]) -> u64 {
    let tokens: u64 = input.iter().map(|b| if *b == 0 { 1 } else { 4 }).sum();
    21_000 + 10 * tokens
}

struct Env {
    da: Chain,
    non_da: Chain,
    pk: ark_groth16::ProvingKey<ark_bn254::Bn254>,
    last_da: StoredBlockInfo,
    last_non_da: StoredBlockInfo,
    next_block: u32,
    serial: u32,
}

/// Chain 1, alone (data availability), or as the hash-only chain of two (chain 2 has the data).
fn config(evm_chain_id: u64, da: bool) -> ChainConfig {
    ChainConfig {
        evm_chain_id,
        l2_chain: 1,
        chain_count: if da { 1 } else { 2 },
        data_availability_chain: if da { 1 } else { 2 },
        priority_expiration: 30 * 24 * 3600,
        priority_fee: 0,
        genesis_root: B256::repeat_byte(0xaa),
        fee_owner: alloy::primitives::Address::ZERO,
    }
}

fn user_key() -> &'static str {
    DEV_KEYS[1]
}

const DEPOSIT_WEI: u128 = 1_000_000_000_000_000; // 0.001 ETH per deposit
const WITHDRAW_WEI: u128 = 1_000_000_000_000; // 0.000001 ETH per withdrawal

/// The ops of one benchmark block, and the L1 requests they need first.
async fn make_ops(env: &mut Env, op: u8, n: usize) -> Result<(Vec<Op>, Vec<Bytes>), ContractsError> {
    let user = signer(user_key())?;
    let owner = L2Address::from_evm(user.address().into_array());
    let fee = 1_230; // packed as 123 · 10^1
    let mut out = Vec::with_capacity(n);
    let mut witnesses = Vec::new();
    for _ in 0..n {
        env.serial += 1;
        let s = env.serial;
        let a = 1000 + s;
        let recipient = Address::from_word(alloy::primitives::keccak256(s.to_be_bytes()));
        let to = L2Address::from_evm(recipient.into_array());
        let o = match op {
            code::TRANSFER => Op::Transfer(TransferOp {
                from: a,
                to: a + 1,
                from_sub: 1,
                to_sub: 2,
                token: 17,
                amount: u128::from(123_456_789 + s) * 10u128.pow(9),
                fee,
            }),
            code::TRANSFER_TO_NEW => Op::TransferToNew(TransferToNewOp {
                from: a,
                from_sub: 1,
                to: a + 7,
                to_sub: 2,
                token: 17,
                amount: u128::from(987_654 + s) * 10u128.pow(11),
                fee,
                to_owner: to,
            }),
            code::ORDER_MATCHING => Op::OrderMatching(OrderMatchingOp {
                maker: a,
                taker: a + 1,
                maker_sub: 1,
                taker_sub: 1,
                maker_is_sell: true,
                maker_slot: (s % 60000) as u16 + 1,
                taker_slot: (s % 50000) as u16 + 2,
                base: 17,
                quote: 18,
                base_fill: u128::from(1_234_567 + s) * 10u128.pow(12),
                quote_fill: u128::from(7_654_321 + s) * 10u128.pow(13),
                maker_fee_bps: 5,
                taker_fee_bps: 10,
                maker_order_amount: 2_234_567 * 10u128.pow(14),
                taker_order_amount: 3_234_567 * 10u128.pow(14),
            }),
            code::WITHDRAW => Op::Withdraw(WithdrawOp {
                chain: 1,
                account: a,
                sub: 1,
                l2_token: ETH_TOKEN_ID,
                l1_token: ETH_TOKEN_ID,
                amount: WITHDRAW_WEI,
                fee,
                to,
            }),
            code::FORCED_EXIT => Op::ForcedExit(ForcedExitOp {
                chain: 1,
                initiator: a,
                initiator_sub: 1,
                target: a + 3,
                target_sub: 2,
                l2_token: ETH_TOKEN_ID,
                l1_token: ETH_TOKEN_ID,
                fee_token: ETH_TOKEN_ID,
                fee,
                amount: WITHDRAW_WEI,
                target_owner: to,
            }),
            code::CHANGE_PUBKEY => {
                let pkh = zkl_crypto::PubKeyHash(recipient.into_array());
                let msg = change_pubkey_eth_message(&pkh, s, a, 1);
                let sig = user.sign_message_sync(&msg).map_err(|e| ContractsError::Rpc(e.to_string()))?;
                witnesses.push(Bytes::from(sig.as_bytes().to_vec()));
                Op::ChangePubKey(ChangePubKeyOp {
                    chain: 1,
                    account: a,
                    sub: 1,
                    new_pubkey_hash: pkh,
                    owner: user.address().into_array(),
                    nonce: s,
                    fee_token: ETH_TOKEN_ID,
                    fee,
                })
            }
            code::DEPOSIT => {
                for c in [&env.da, &env.non_da] {
                    let z = c.zklink_as(user_key())?;
                    send(z.depositETH(owner.0.into(), 1, ETH_TOKEN_ID).value(U256::from(DEPOSIT_WEI))).await?;
                }
                Op::Deposit(DepositOp {
                    chain: 1,
                    account: a,
                    sub: 1,
                    l1_token: ETH_TOKEN_ID,
                    l2_token: ETH_TOKEN_ID,
                    amount: DEPOSIT_WEI,
                    owner,
                })
            }
            code::FULL_EXIT => {
                for c in [&env.da, &env.non_da] {
                    let z = c.zklink_as(user_key())?;
                    send(z.requestFullExit(a, 1, ETH_TOKEN_ID, ETH_TOKEN_ID)).await?;
                }
                Op::FullExit(FullExitOp {
                    chain: 1,
                    account: a,
                    sub: 1,
                    owner,
                    l1_token: ETH_TOKEN_ID,
                    l2_token: ETH_TOKEN_ID,
                    amount: WITHDRAW_WEI,
                    l1_decimals: 18,
                })
            }
            other => return Err(ContractsError::Encoding(format!("op {other} not benchmarked"))),
        };
        out.push(o);
    }
    Ok((out, witnesses))
}

async fn calldata_of(chain: &Chain, receipt: &TransactionReceipt) -> Result<Vec<u8>, ContractsError> {
    let tx = chain
        .provider
        .get_transaction_by_hash(receipt.transaction_hash)
        .await?
        .ok_or_else(|| ContractsError::Rpc("commit transaction not found".into()))?;
    use alloy::consensus::Transaction as _;
    Ok(tx.input().to_vec())
}

async fn run_batch(env: &mut Env, op: u8, capacity: usize, batch: usize) -> Result<BlockGas, ContractsError> {
    let chunks = chunks_of(op).ok_or_else(|| ContractsError::Encoding(format!("op {op}")))?;
    let n = capacity / chunks;
    let mut blocks = Vec::with_capacity(batch);
    for _ in 0..batch {
        let (block_ops, witnesses) = make_ops(env, op, n).await?;
        let mut block = L2Block::new(env.next_block, 1, B256::from(U256::from(env.next_block)), block_ops, capacity);
        block.cpk_witnesses[0] = witnesses;
        env.next_block += 1;
        blocks.push(block);
    }
    let (stored, commit) = env.da.commit(&env.last_da, &blocks).await?;
    let input = calldata_of(&env.da, &commit).await?;
    let (stored_non_da, commit_non_da) = env.non_da.commit(&env.last_non_da, &blocks).await?;
    let prove = env.da.prove(&env.pk, &stored).await?;
    let last = stored.last().ok_or_else(|| ContractsError::Encoding("empty batch".into()))?;
    let finalize = env.da.finalize(last).await?;
    let executed: Vec<_> =
        stored.iter().zip(&blocks).map(|(s, b)| (s.clone(), b.packed_withdrawals(1).to_vec())).collect();
    let execute = env.da.execute(&executed).await?;
    // Chain 2's sync hash of the last block, relayed to the non-DA deployment (chain 1 of 2).
    let last_non_da = stored_non_da.last().ok_or_else(|| ContractsError::Encoding("empty batch".into()))?;
    let sigs = env.non_da.sign_sync_hash(
        &DEV_ORACLE_KEYS[..DEV_ORACLE_THRESHOLD as usize],
        2,
        last_non_da.blockNumber,
        last_non_da.syncHash,
    )?;
    let relay = send(env.non_da.zklink.receiveSyncHash(2, last_non_da.blockNumber, last_non_da.syncHash, sigs)).await?;
    env.last_da = last.clone();
    env.last_non_da = last_non_da.clone();
    Ok(BlockGas {
        capacity,
        blocks: batch,
        ops: n,
        commit_gas: commit.gas_used,
        commit_gas_non_da: commit_non_da.gas_used,
        prove_gas: prove.gas_used,
        finalize_gas: finalize.gas_used,
        execute_gas: execute.gas_used,
        relay_gas: relay.gas_used,
        commit_calldata_bytes: input.len(),
        commit_at_calldata_floor: commit.gas_used == calldata_floor(&input),
    })
}

/// Runs the benchmark.
pub async fn run_gas_bench(cfg: &GasBenchConfig) -> Result<GasReport, ContractsError> {
    let args: Vec<&str> = cfg.anvil_args.iter().map(String::as_str).collect();
    let da = Chain::deploy_on(Anvil::spawn_with_args(31337, &args)?, config(31337, true)).await?;
    let non_da = Chain::deploy_on(Anvil::spawn_with_args(31338, &args)?, config(31338, false)).await?;
    let hardfork = cfg
        .anvil_args
        .iter()
        .position(|a| a == "--hardfork")
        .and_then(|i| cfg.anvil_args.get(i + 1).cloned())
        .unwrap_or_else(|| "anvil default".to_string());
    let mut env = Env {
        last_da: da.genesis(),
        last_non_da: non_da.genesis(),
        da,
        non_da,
        pk: crate::verifier::test_circuit::proving_key()?,
        next_block: 1,
        serial: 0,
    };
    // Deposits first: they also fund the liquidity the withdrawals draw on.
    let mut order: Vec<(&str, u8)> = op_types().collect();
    order.sort_by_key(|(_, op)| *op != code::DEPOSIT);
    let mut report = BTreeMap::new();
    let mut capacities = cfg.capacities.clone();
    capacities.sort_unstable();
    for (name, op) in order {
        if !cfg.only.is_empty() && !cfg.only.iter().any(|o| o == name) {
            continue;
        }
        if matches!(op, code::WITHDRAW | code::FORCED_EXIT | code::FULL_EXIT) {
            // Withdrawals need liquidity: fund it with a deposit consumed by a one-op block.
            fund(&mut env).await?;
        }
        let mut blocks = Vec::new();
        for &cap in &capacities {
            blocks.push(run_batch(&mut env, op, cap, cfg.batch.max(1)).await?);
        }
        let Some(last) = blocks.last() else { continue };
        let n = last.batch_ops();
        let chunks = chunks_of(op).unwrap_or(1);
        report.insert(
            name.to_string(),
            OpGas {
                pubdata_bytes: chunks * CHUNK_BYTES,
                commit_gas_per_op: last.commit_gas / n,
                commit_gas_per_op_non_da: last.commit_gas_non_da / n,
                total_gas_per_op: last.total_gas() / n,
                blocks,
            },
        );
    }
    Ok(GasReport { hardfork, ops: report })
}

/// Deposits 10 ETH on both chains and commits/proves/executes the one-deposit block consuming it.
async fn fund(env: &mut Env) -> Result<(), ContractsError> {
    let user = signer(user_key())?;
    let owner = L2Address::from_evm(user.address().into_array());
    let amount: u128 = 10_000_000_000_000_000_000;
    for c in [&env.da, &env.non_da] {
        let z = c.zklink_as(user_key())?;
        send(z.depositETH(owner.0.into(), 0, ETH_TOKEN_ID).value(U256::from(amount))).await?;
    }
    let op = Op::Deposit(DepositOp {
        chain: 1,
        account: 2,
        sub: 0,
        l1_token: ETH_TOKEN_ID,
        l2_token: ETH_TOKEN_ID,
        amount,
        owner,
    });
    let block = L2Block::new(env.next_block, 1, B256::from(U256::from(env.next_block)), vec![op], 4);
    env.next_block += 1;
    let (stored, _) = env.da.commit(&env.last_da, std::slice::from_ref(&block)).await?;
    let (stored_non_da, _) = env.non_da.commit(&env.last_non_da, std::slice::from_ref(&block)).await?;
    env.da.prove(&env.pk, &stored).await?;
    env.da.execute(&[(stored[0].clone(), Vec::new())]).await?;
    env.last_da = stored[0].clone();
    env.last_non_da = stored_non_da[0].clone();
    Ok(())
}

/// The one-line JSON form: `{"hardfork":…,"ops":{"transfer":{"pubdata_bytes":…,"commit_gas_per_op":…,
/// "total_gas_per_op":…,"capacity":…,"blocks_per_tx":…,"total_gas_per_op_by_capacity":{"8":…},…},…}}`.
pub fn report_json(report: &GasReport) -> String {
    let mut ops = serde_json::Map::new();
    for (name, g) in &report.ops {
        ops.insert(
            name.clone(),
            serde_json::json!({
                "pubdata_bytes": g.pubdata_bytes,
                "commit_gas_per_op": g.commit_gas_per_op,
                "commit_gas_per_op_non_da": g.commit_gas_per_op_non_da,
                "total_gas_per_op": g.total_gas_per_op,
                "capacity": g.blocks.last().map(|b| b.capacity),
                "blocks_per_tx": g.blocks.last().map(|b| b.blocks),
                "total_gas_per_op_by_capacity": g.blocks.iter().map(|b| (b.capacity.to_string(), b.total_gas() / b.batch_ops())).collect::<BTreeMap<_, _>>(),
                "commit_at_calldata_floor": g.blocks.last().is_some_and(|b| b.commit_at_calldata_floor),
            }),
        );
    }
    serde_json::json!({ "hardfork": report.hardfork, "ops": ops }).to_string()
}

/// A human-readable table: one row per op type and capacity, gas per op over the batch.
pub fn report_table(report: &GasReport) -> String {
    let mut s = format!(
        "hardfork: {}\n{:<16} {:>6} {:>9} {:>6} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7}\n",
        report.hardfork,
        "op",
        "bytes",
        "capacity",
        "blocks",
        "ops",
        "commit/op",
        "commit/op*",
        "prove/op",
        "final/op",
        "exec/op",
        "relay/op",
        "total/op",
        "floor?"
    );
    for (name, g) in &report.ops {
        for b in &g.blocks {
            let n = b.batch_ops();
            s.push_str(&format!(
                "{:<16} {:>6} {:>9} {:>6} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7}\n",
                name,
                g.pubdata_bytes,
                b.capacity,
                b.blocks,
                b.ops,
                b.commit_gas / n,
                b.commit_gas_non_da / n,
                b.prove_gas / n,
                b.finalize_gas / n,
                b.execute_gas / n,
                b.relay_gas / n,
                b.total_gas() / n,
                if b.commit_at_calldata_floor { "yes" } else { "no" }
            ));
        }
    }
    s.push_str("ops = per block; every column is gas per op over the batch (blocks × ops)\n");
    s.push_str("commit/op* = on a chain without data availability (pubdata hash and own on-chain ops)\n");
    s.push_str("total/op = commit + prove + final + exec + relay on the DA chain\n");
    s
}
