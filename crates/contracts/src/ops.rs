//! Interim encoders of the protocol.md §11 op layouts and the §13 commitment, for tests and the
//! gas benchmark. They follow the spec byte for byte and are deliberately kept apart from the
//! contract code so they can be replaced by the types crate once it lands.

use alloy::primitives::{Address, B256, keccak256};
use sha2::{Digest, Sha256};
use zkl_crypto::field::{fr_from_be_bytes_small, fr_to_be_bytes};
use zkl_crypto::poseidon;

use crate::{ContractsError, Fr};

pub const CHUNK_BYTES: usize = 20;
pub const MAX_CHAINS: usize = 4;

pub const OP_NOOP: u8 = 0;
pub const OP_DEPOSIT: u8 = 1;
pub const OP_TRANSFER_TO_NEW: u8 = 2;
pub const OP_WITHDRAW: u8 = 3;
pub const OP_TRANSFER: u8 = 4;
pub const OP_FULL_EXIT: u8 = 5;
pub const OP_CHANGE_PUBKEY: u8 = 6;
pub const OP_FORCED_EXIT: u8 = 7;
pub const OP_ORDER_MATCHING: u8 = 8;

/// Chunks per op code (§11).
pub fn op_chunks(op: u8) -> Option<usize> {
    [1, 3, 3, 3, 1, 3, 3, 4, 2].get(op as usize).copied()
}

/// Deposit, Withdraw, FullExit, ChangePubKey, ForcedExit.
pub fn is_onchain(op: u8) -> bool {
    matches!(op, OP_DEPOSIT | OP_WITHDRAW | OP_FULL_EXIT | OP_CHANGE_PUBKEY | OP_FORCED_EXIT)
}

/// Pads `bytes` with zeros to `chunks` chunks.
fn finish(mut bytes: Vec<u8>, chunks: usize) -> Vec<u8> {
    bytes.resize(chunks * CHUNK_BYTES, 0);
    bytes
}

fn u24(x: u32) -> [u8; 3] {
    let b = x.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// An EVM address as the 32-byte owner field (left-padded).
pub fn owner32(a: Address) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[12..].copy_from_slice(a.as_slice());
    out
}

/// Packed amount (5 bytes): `mantissa (35 bits) << 5 | exponent (5 bits)`.
pub fn pack_amount(mantissa: u64, exponent: u8) -> [u8; 5] {
    let v = ((mantissa & ((1 << 35) - 1)) << 5) | u64::from(exponent & 31);
    let b = v.to_be_bytes();
    [b[3], b[4], b[5], b[6], b[7]]
}

/// Packed fee (2 bytes): `mantissa (11 bits) << 5 | exponent (5 bits)`.
pub fn pack_fee(mantissa: u16, exponent: u8) -> [u8; 2] {
    (((mantissa & 0x7ff) << 5) | u16::from(exponent & 31)).to_be_bytes()
}

#[allow(clippy::too_many_arguments)]
pub fn deposit(
    chain: u8,
    account: u32,
    sub: u8,
    l1_token: u16,
    l2_token: u16,
    amount: u128,
    owner: [u8; 32],
) -> Vec<u8> {
    let mut b = vec![OP_DEPOSIT, chain];
    b.extend(u24(account));
    b.push(sub);
    b.extend(l1_token.to_be_bytes());
    b.extend(l2_token.to_be_bytes());
    b.extend(amount.to_be_bytes());
    b.extend(owner);
    finish(b, 3)
}

#[allow(clippy::too_many_arguments)]
pub fn withdraw(
    chain: u8,
    account: u32,
    sub: u8,
    l2_token: u16,
    l1_token: u16,
    amount: u128,
    fee: [u8; 2],
    to: [u8; 32],
) -> Vec<u8> {
    let mut b = vec![OP_WITHDRAW, chain];
    b.extend(u24(account));
    b.push(sub);
    b.extend(l2_token.to_be_bytes());
    b.extend(l1_token.to_be_bytes());
    b.extend(amount.to_be_bytes());
    b.extend(fee);
    b.extend(to);
    finish(b, 3)
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
) -> Vec<u8> {
    full_exit_with_decimals(chain, account, sub, owner, l1_token, l2_token, amount, 0)
}

/// A FullExit with its `l1_decimals` byte (the contract's request carries the L1 token's
/// registered decimals there; [`full_exit`] leaves it 0).
#[allow(clippy::too_many_arguments)]
pub fn full_exit_with_decimals(
    chain: u8,
    account: u32,
    sub: u8,
    owner: [u8; 32],
    l1_token: u16,
    l2_token: u16,
    amount: u128,
    l1_decimals: u8,
) -> Vec<u8> {
    let mut b = vec![OP_FULL_EXIT, chain];
    b.extend(u24(account));
    b.push(sub);
    b.extend(owner);
    b.extend(l1_token.to_be_bytes());
    b.extend(l2_token.to_be_bytes());
    b.extend(amount.to_be_bytes());
    b.push(l1_decimals);
    finish(b, 3)
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
    fee: [u8; 2],
) -> Vec<u8> {
    let mut b = vec![OP_CHANGE_PUBKEY, chain];
    b.extend(u24(account));
    b.push(sub);
    b.extend(new_pubkey_hash);
    b.extend(owner.as_slice());
    b.extend(nonce.to_be_bytes());
    b.extend(fee_token.to_be_bytes());
    b.extend(fee);
    finish(b, 3)
}

/// The 29-byte message an owner `personal_sign`s to authorise a ChangePubKey.
pub fn change_pubkey_message(new_pubkey_hash: [u8; 20], nonce: u32, account: u32, chain: u8) -> Vec<u8> {
    let mut m = new_pubkey_hash.to_vec();
    m.extend(nonce.to_be_bytes());
    m.extend(account.to_be_bytes());
    m.push(chain);
    m
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
    fee: [u8; 2],
    amount: u128,
    target_owner: [u8; 32],
) -> Vec<u8> {
    let mut b = vec![OP_FORCED_EXIT, chain];
    b.extend(u24(initiator));
    b.push(initiator_sub);
    b.extend(u24(target));
    b.push(target_sub);
    b.extend(l2_token.to_be_bytes());
    b.extend(l1_token.to_be_bytes());
    b.extend(fee_token.to_be_bytes());
    b.extend(fee);
    b.extend(amount.to_be_bytes());
    b.extend(target_owner);
    finish(b, 4)
}

#[allow(clippy::too_many_arguments)]
pub fn transfer(from: u32, to: u32, from_sub: u8, to_sub: u8, token: u16, amount: [u8; 5], fee: [u8; 2]) -> Vec<u8> {
    let mut b = vec![OP_TRANSFER];
    b.extend(u24(from));
    b.extend(u24(to));
    b.push(from_sub);
    b.push(to_sub);
    b.extend(token.to_be_bytes());
    b.extend(amount);
    b.extend(fee);
    finish(b, 1)
}

#[allow(clippy::too_many_arguments)]
pub fn transfer_to_new(
    from: u32,
    from_sub: u8,
    to: u32,
    to_sub: u8,
    token: u16,
    amount: [u8; 5],
    fee: [u8; 2],
    to_owner: [u8; 32],
) -> Vec<u8> {
    let mut b = vec![OP_TRANSFER_TO_NEW];
    b.extend(u24(from));
    b.push(from_sub);
    b.extend(u24(to));
    b.push(to_sub);
    b.extend(token.to_be_bytes());
    b.extend(amount);
    b.extend(fee);
    b.extend(to_owner);
    finish(b, 3)
}

/// An OrderMatching op (§11); `taker_sub_sell` = `taker_sub·2 + maker_is_sell`.
#[allow(clippy::too_many_arguments)]
pub fn order_matching(
    maker: u32,
    taker: u32,
    maker_sub: u8,
    taker_sub_sell: u8,
    maker_slot: u16,
    taker_slot: u16,
    base: u16,
    quote: u16,
    base_fill: [u8; 5],
    quote_fill: [u8; 5],
    maker_fee_bps: u8,
    taker_fee_bps: u8,
    maker_order_amount: [u8; 5],
    taker_order_amount: [u8; 5],
) -> Vec<u8> {
    let mut b = vec![OP_ORDER_MATCHING];
    b.extend(u24(maker));
    b.extend(u24(taker));
    b.push(maker_sub);
    b.push(taker_sub_sell);
    b.extend(maker_slot.to_be_bytes());
    b.extend(taker_slot.to_be_bytes());
    b.extend(base.to_be_bytes());
    b.extend(quote.to_be_bytes());
    b.extend(base_fill);
    b.extend(quote_fill);
    b.push(maker_fee_bps);
    b.push(taker_fee_bps);
    b.extend(maker_order_amount);
    b.extend(taker_order_amount);
    finish(b, 2)
}

/// Splits pubdata into ops by their op codes (Noop chunks included as single-chunk ops).
pub fn split_ops(pubdata: &[u8]) -> Result<Vec<&[u8]>, ContractsError> {
    if !pubdata.len().is_multiple_of(CHUNK_BYTES) {
        return Err(ContractsError::Encoding(format!("pubdata length {} is not a multiple of 20", pubdata.len())));
    }
    let mut ops = Vec::new();
    let mut off = 0;
    while off < pubdata.len() {
        let op = pubdata[off];
        let size = op_chunks(op).ok_or_else(|| ContractsError::Encoding(format!("unknown op code {op} at {off}")))?
            * CHUNK_BYTES;
        if off + size > pubdata.len() {
            return Err(ContractsError::Encoding(format!("op {op} at {off} runs past the end")));
        }
        ops.push(&pubdata[off..off + size]);
        off += size;
    }
    Ok(ops)
}

/// The on-chain ops of `chain` (byte 1 of an on-chain op), in block order.
pub fn onchain_ops_of(pubdata: &[u8], chain: u8) -> Result<Vec<&[u8]>, ContractsError> {
    Ok(split_ops(pubdata)?.into_iter().filter(|op| is_onchain(op[0]) && op[1] == chain).collect())
}

/// `onchain_hash_c` of §13 over the given ops.
pub fn onchain_hash<'a>(ops: impl IntoIterator<Item = &'a [u8]>) -> B256 {
    let mut h = Fr::from(0u64);
    for op in ops {
        let mut inputs = [h, Fr::from(0u64), Fr::from(0u64), Fr::from(0u64), Fr::from(0u64)];
        for (i, chunk) in op.chunks(CHUNK_BYTES).take(4).enumerate() {
            inputs[i + 1] = fr_from_be_bytes_small(chunk);
        }
        h = poseidon::hash_array(inputs);
    }
    B256::from(fr_to_be_bytes(&h))
}

/// The §13 commitment.
pub fn commitment(
    block_number: u32,
    timestamp: u64,
    old_root: B256,
    new_root: B256,
    pubdata_hash: B256,
    onchain_hashes: &[B256; MAX_CHAINS],
) -> B256 {
    let mut h = Sha256::new();
    h.update(block_number.to_be_bytes());
    h.update(timestamp.to_be_bytes());
    h.update(old_root);
    h.update(new_root);
    h.update(pubdata_hash);
    for oh in onchain_hashes {
        h.update(oh);
    }
    B256::from_slice(&h.finalize())
}

/// `public_input = commitment mod 2^253`.
pub fn public_input(commitment: B256) -> Fr {
    let mut bytes = commitment.0;
    bytes[0] &= 0x1f;
    // Below 2^253 < r, so the reduction never changes the value.
    <Fr as ark_ff::PrimeField>::from_be_bytes_mod_order(&bytes)
}

pub fn sha256(data: &[u8]) -> B256 {
    B256::from_slice(&Sha256::digest(data))
}

/// One withdrawal as recorded by the contract: recipient, L1 token, amount in L2 units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    pub to: Address,
    pub l1_token: u16,
    pub amount: u128,
}

/// The withdrawals a chain's contract pays for these ops (Withdraw, ForcedExit, FullExit with a
/// non-zero amount), in order.
pub fn withdrawals_of<'a>(ops: impl IntoIterator<Item = &'a [u8]>) -> Vec<Withdrawal> {
    let addr = |b: &[u8]| Address::from_slice(&b[12..32]);
    let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let u128_at = |b: &[u8], i: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[i..i + 16]);
        u128::from_be_bytes(a)
    };
    let mut out = Vec::new();
    for op in ops {
        let w = match op[0] {
            OP_WITHDRAW => Withdrawal { to: addr(&op[28..60]), l1_token: u16_at(op, 8), amount: u128_at(op, 10) },
            OP_FORCED_EXIT => Withdrawal { to: addr(&op[34..66]), l1_token: u16_at(op, 12), amount: u128_at(op, 18) },
            OP_FULL_EXIT => Withdrawal { to: addr(&op[6..38]), l1_token: u16_at(op, 38), amount: u128_at(op, 42) },
            _ => continue,
        };
        if w.amount != 0 {
            out.push(w);
        }
    }
    out
}

/// Packed withdrawals (`to 20 ‖ l1_token 2 ‖ amount 16` each), as `executeBlocks` takes them.
pub fn pack_withdrawals(ws: &[Withdrawal]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ws.len() * 38);
    for w in ws {
        out.extend(w.to.as_slice());
        out.extend(w.l1_token.to_be_bytes());
        out.extend(w.amount.to_be_bytes());
    }
    out
}

/// The chained withdrawals hash stored by the contract: `h = keccak256(h ‖ entry)`, `h0 = 0`.
pub fn withdrawals_hash(ws: &[Withdrawal]) -> B256 {
    let mut h = B256::ZERO;
    for w in ws {
        let mut buf = h.to_vec();
        buf.extend(pack_withdrawals(std::slice::from_ref(w)));
        h = keccak256(&buf);
    }
    h
}

/// `sync(n) = keccak256(sync(n−1) ‖ commitment(n))`.
pub fn next_sync_hash(prev: B256, commitment: B256) -> B256 {
    let mut buf = prev.to_vec();
    buf.extend(commitment.as_slice());
    keccak256(&buf)
}

/// Pads ops to a block of `capacity` chunks with Noop chunks.
pub fn pad_block(ops: &[Vec<u8>], capacity: usize) -> Result<Vec<u8>, ContractsError> {
    let mut pubdata: Vec<u8> = ops.concat();
    if pubdata.len() > capacity * CHUNK_BYTES {
        return Err(ContractsError::Encoding(format!(
            "{} chunks do not fit a block of {capacity}",
            pubdata.len() / CHUNK_BYTES
        )));
    }
    pubdata.resize(capacity * CHUNK_BYTES, 0);
    Ok(pubdata)
}
