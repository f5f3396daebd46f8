//! Deployments and helpers shared by the contract tests.
#![allow(dead_code)]

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::bindings::ZkLink::StoredBlockInfo;
use zkl_contracts::deploy::{Chain, ChainConfig, send, signer};

pub use zkl_contracts::deploy::DEV_ORACLE_KEYS as ORACLE_KEYS;
pub const ETH: u128 = 1_000_000_000_000_000_000;
pub const EXPIRATION: u64 = 3 * 24 * 3600;
pub const CAPACITY: usize = 64;

pub fn root(n: u8) -> B256 {
    B256::repeat_byte(n)
}

pub fn config(evm_chain_id: u64, l2_chain: u8, da: bool) -> ChainConfig {
    ChainConfig {
        evm_chain_id,
        l2_chain,
        chain_count: 2,
        data_availability_chain: if da { l2_chain } else { 3 - l2_chain },
        priority_expiration: EXPIRATION,
        priority_fee: 0,
        genesis_root: root(0xaa),
        fee_owner: alloy::primitives::Address::ZERO,
    }
}

pub async fn two_chains() -> (Chain, Chain) {
    let a = Chain::deploy(config(1001, 1, true)).await.unwrap();
    let b = Chain::deploy(config(1002, 2, false)).await.unwrap();
    let oracles: Vec<Address> = ORACLE_KEYS.iter().map(|k| signer(k).unwrap().address()).collect();
    for c in [&a, &b] {
        send(c.zklink.setOracleSigners(oracles.clone(), 2)).await.unwrap();
    }
    (a, b)
}

/// Asserts that `call` reverts with the ZkLink error named `name`.
#[macro_export]
macro_rules! assert_revert {
    ($call:expr, $name:expr) => {{
        let err = $call.call().await.expect_err(concat!("expected revert ", $name));
        let decoded = err.as_decoded_interface_error::<zkl_contracts::bindings::ZkLink::ZkLinkErrors>();
        let text = format!("{decoded:?}");
        assert!(text.starts_with(concat!("Some(", $name)), "expected {}, got {text} ({err})", $name);
    }};
}

pub fn user() -> Address {
    signer(DEV_KEYS[1]).unwrap().address()
}

pub async fn deposit_eth(c: &Chain, amount: u128, l2_token: u16) {
    let z = c.zklink_as(DEV_KEYS[1]).unwrap();
    send(z.depositETH(owner32(user()).into(), 0, l2_token).value(U256::from(amount))).await.unwrap();
}

pub async fn balance(c: &Chain, a: Address) -> U256 {
    c.provider.get_balance(a).await.unwrap()
}

pub async fn relay_sync_hash(to: &Chain, from: &Chain, block: &StoredBlockInfo) {
    let sigs = to.sign_sync_hash(&ORACLE_KEYS[..2], from.config.l2_chain, block.blockNumber, block.syncHash).unwrap();
    send(to.zklink.receiveSyncHash(from.config.l2_chain, block.blockNumber, block.syncHash, sigs)).await.unwrap();
}

/// One chain alone (chain 1 of 1, data availability).
pub fn single(evm: u64) -> ChainConfig {
    ChainConfig { chain_count: 1, ..config(evm, 1, true) }
}

/// Commits, proves (test verifier) and executes `blocks` on a single-chain deployment `c`, after
/// `prev`; returns the stored infos and the execute receipt's gas.
pub async fn settle_single(
    c: &Chain,
    prev: &StoredBlockInfo,
    blocks: &[zkl_contracts::deploy::L2Block],
) -> (Vec<StoredBlockInfo>, u64) {
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let (stored, _) = c.commit(prev, blocks).await.unwrap();
    c.prove(&pk, &stored).await.unwrap();
    let mut infos = Vec::new();
    for (b, s) in blocks.iter().zip(&stored) {
        infos.push((s.clone(), b.packed_withdrawals(c.config.l2_chain).to_vec()));
    }
    let receipt = c.execute(&infos).await.unwrap();
    (stored, receipt.gas_used)
}

// Typed ops for the tests' blocks (the contracts see their `zkl_types` encoding). Amounts and
// fees are plain L2 units; `amount(m, e)` / `fee(m, e)` = m · 10^e.

use zkl_types::Address as L2Address;
pub use zkl_types::op::*;

pub fn amount(m: u128, e: u32) -> u128 {
    m * 10u128.pow(e)
}

pub fn fee(m: u128, e: u32) -> u128 {
    m * 10u128.pow(e)
}

/// An EVM address as the 32-byte owner field (left-padded).
pub fn owner32(a: Address) -> [u8; 32] {
    L2Address::from_evm(a.into_array()).0
}

pub fn deposit(chain: u8, account: u32, sub: u8, l1_token: u16, l2_token: u16, amount: u128, owner: [u8; 32]) -> Op {
    Op::Deposit(DepositOp { chain, account, sub, l1_token, l2_token, amount, owner: L2Address(owner) })
}

#[allow(clippy::too_many_arguments)]
pub fn withdraw(
    chain: u8,
    account: u32,
    sub: u8,
    l2_token: u16,
    l1_token: u16,
    amount: u128,
    fee: u128,
    to: [u8; 32],
) -> Op {
    Op::Withdraw(WithdrawOp { chain, account, sub, l2_token, l1_token, amount, fee, to: L2Address(to) })
}

#[allow(clippy::too_many_arguments)]
pub fn full_exit(
    chain: u8,
    account: u32,
    sub: u8,
    owner: [u8; 32],
    l1_token: u16,
    l2_token: u16,
    amount: u128,
    l1_decimals: u8,
) -> Op {
    Op::FullExit(FullExitOp { chain, account, sub, owner: L2Address(owner), l1_token, l2_token, amount, l1_decimals })
}

#[allow(clippy::too_many_arguments)]
pub fn change_pubkey(
    chain: u8,
    account: u32,
    sub: u8,
    new_pubkey_hash: [u8; 20],
    owner: Address,
    nonce: u32,
    fee_token: u16,
    fee: u128,
) -> Op {
    Op::ChangePubKey(ChangePubKeyOp {
        chain,
        account,
        sub,
        new_pubkey_hash: zkl_crypto::PubKeyHash(new_pubkey_hash),
        owner: owner.into_array(),
        nonce,
        fee_token,
        fee,
    })
}

/// The 29 bytes the owner `personal_sign`s to authorise a ChangePubKey (protocol.md section 11).
pub fn change_pubkey_message(new_pubkey_hash: [u8; 20], nonce: u32, account: u32, chain: u8) -> [u8; 29] {
    zkl_types::change_pubkey_eth_message(&zkl_crypto::PubKeyHash(new_pubkey_hash), nonce, account, chain)
}

#[allow(clippy::too_many_arguments)]
pub fn forced_exit(
    chain: u8,
    initiator: u32,
    initiator_sub: u8,
    target: u32,
    target_sub: u8,
    l2_token: u16,
    l1_token: u16,
    fee_token: u16,
    fee: u128,
    amount: u128,
    target_owner: [u8; 32],
) -> Op {
    Op::ForcedExit(ForcedExitOp {
        chain,
        initiator,
        initiator_sub,
        target,
        target_sub,
        l2_token,
        l1_token,
        fee_token,
        fee,
        amount,
        target_owner: L2Address(target_owner),
    })
}

pub fn transfer(from: u32, to: u32, from_sub: u8, to_sub: u8, token: u16, amount: u128, fee: u128) -> Op {
    Op::Transfer(TransferOp { from, to, from_sub, to_sub, token, amount, fee })
}

#[allow(clippy::too_many_arguments)]
pub fn transfer_to_new(
    from: u32,
    from_sub: u8,
    to: u32,
    to_sub: u8,
    token: u16,
    amount: u128,
    fee: u128,
    to_owner: [u8; 32],
) -> Op {
    Op::TransferToNew(TransferToNewOp { from, from_sub, to, to_sub, token, amount, fee, to_owner: L2Address(to_owner) })
}
