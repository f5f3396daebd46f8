//! Operations and their pubdata (protocol.md section 11), written and read through the one
//! layout table, [`crate::layout`].
//!
//! An operation is what a block records: everything needed to apply it to the state is in its
//! pubdata, so the exodus tool can rebuild the state from Layer-1 data alone.

use zkl_crypto::PubKeyHash;

use crate::amount::{AmountError, pack_amount, pack_fee, unpack_amount, unpack_fee};
use crate::codec::Truncated;
use crate::ids::*;
use crate::layout::{self, Field, OpLayout};

pub use crate::layout::CHUNK_BYTES;

/// Operation codes (from [`crate::layout`]).
pub mod code {
    use crate::layout::*;
    pub const NOOP: u8 = super::layout::NOOP.code;
    pub const DEPOSIT: u8 = deposit::LAYOUT.code;
    pub const TRANSFER_TO_NEW: u8 = transfer_to_new::LAYOUT.code;
    pub const WITHDRAW: u8 = withdraw::LAYOUT.code;
    pub const TRANSFER: u8 = transfer::LAYOUT.code;
    pub const FULL_EXIT: u8 = full_exit::LAYOUT.code;
    pub const CHANGE_PUBKEY: u8 = change_pubkey::LAYOUT.code;
    pub const FORCED_EXIT: u8 = forced_exit::LAYOUT.code;
    pub const ORDER_MATCHING: u8 = order_matching::LAYOUT.code;
}

/// Chunks used by an op code, or None for an unknown code.
pub fn chunks_of(op_code: u8) -> Option<usize> {
    layout::of(op_code).map(|l| l.chunks)
}

/// An op's pubdata being written field by field; the first value too wide for its field is
/// remembered and returned by [`Out::finish`].
struct Out {
    bytes: Vec<u8>,
    error: Option<OpEncodeError>,
}

impl Out {
    fn new(l: &OpLayout) -> Self {
        let mut bytes = vec![0u8; l.bytes()];
        bytes[0] = l.code;
        Out { bytes, error: None }
    }
    /// `v` big-endian in the field's width.
    fn uint(&mut self, f: Field, v: impl Into<u128>) -> &mut Self {
        let v: u128 = v.into();
        if f.len < 16 && v >> (8 * f.len) != 0 {
            self.error.get_or_insert(OpEncodeError::FieldWidth { field: f.name, value: v, bytes: f.len });
        } else {
            self.bytes[f.range()].copy_from_slice(&v.to_be_bytes()[16 - f.len..]);
        }
        self
    }
    fn bytes(&mut self, f: Field, v: &[u8]) -> &mut Self {
        self.bytes[f.range()].copy_from_slice(v);
        self
    }
    fn finish(self) -> Result<Vec<u8>, OpEncodeError> {
        self.error.map_or(Ok(self.bytes), Err)
    }
}

/// The big-endian integer of a field (at most 16 bytes) of a complete op.
fn uint(data: &[u8], f: Field) -> u128 {
    data[f.range()].iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

fn bytes<const N: usize>(data: &[u8], f: Field) -> [u8; N] {
    data[f.range()].try_into().expect("field width")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DepositOp {
    pub chain: ChainId,
    pub account: AccountId,
    pub sub: SubAccountId,
    pub l1_token: TokenId,
    pub l2_token: TokenId,
    /// L2 units (18 decimals).
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    pub owner: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferOp {
    pub from: AccountId,
    pub to: AccountId,
    pub from_sub: SubAccountId,
    pub to_sub: SubAccountId,
    pub token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferToNewOp {
    pub from: AccountId,
    pub from_sub: SubAccountId,
    pub to: AccountId,
    pub to_sub: SubAccountId,
    pub token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
    pub to_owner: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WithdrawOp {
    pub chain: ChainId,
    pub account: AccountId,
    pub sub: SubAccountId,
    pub l2_token: TokenId,
    pub l1_token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
    pub to: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FullExitOp {
    pub chain: ChainId,
    pub account: AccountId,
    pub sub: SubAccountId,
    pub owner: Address,
    pub l1_token: TokenId,
    pub l2_token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    /// The decimals of `l1_token` on `chain` (the amount is rounded down to that precision);
    /// the contract checks them against its registry, so the circuit can round.
    pub l1_decimals: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangePubKeyOp {
    pub chain: ChainId,
    pub account: AccountId,
    pub sub: SubAccountId,
    #[serde(with = "crate::serde_impls::pkh_hex")]
    pub new_pubkey_hash: PubKeyHash,
    #[serde(with = "crate::serde_impls::bytes_hex")]
    pub owner: [u8; 20],
    pub nonce: Nonce,
    pub fee_token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ForcedExitOp {
    pub chain: ChainId,
    pub initiator: AccountId,
    pub initiator_sub: SubAccountId,
    pub target: AccountId,
    pub target_sub: SubAccountId,
    pub l2_token: TokenId,
    pub l1_token: TokenId,
    pub fee_token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    pub target_owner: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderMatchingOp {
    pub maker: AccountId,
    pub taker: AccountId,
    pub maker_sub: SubAccountId,
    pub taker_sub: SubAccountId,
    pub maker_is_sell: bool,
    pub maker_slot: SlotId,
    pub taker_slot: SlotId,
    pub base: TokenId,
    pub quote: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub base_fill: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub quote_fill: u128,
    pub maker_fee_bps: u8,
    pub taker_fee_bps: u8,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub maker_order_amount: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub taker_order_amount: u128,
}

/// A block operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    Noop,
    Deposit(DepositOp),
    TransferToNew(TransferToNewOp),
    Withdraw(WithdrawOp),
    Transfer(TransferOp),
    FullExit(FullExitOp),
    ChangePubKey(ChangePubKeyOp),
    ForcedExit(ForcedExitOp),
    OrderMatching(OrderMatchingOp),
}

/// An op that cannot be written as pubdata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpEncodeError {
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("{field} = {value} does not fit its {bytes}-byte pubdata field")]
    FieldWidth { field: &'static str, value: u128, bytes: usize },
}

/// Malformed pubdata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpDecodeError {
    #[error("unknown op code {0} at byte {1}")]
    UnknownCode(u8, usize),
    #[error(transparent)]
    Truncated(#[from] Truncated),
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("non-zero padding in op at byte {0}")]
    Padding(usize),
    #[error("invalid field in op at byte {0}: {1}")]
    Field(usize, &'static str),
    #[error("pubdata length {0} is not a multiple of {CHUNK_BYTES}")]
    Length(usize),
}

impl Op {
    pub fn code(&self) -> u8 {
        match self {
            Op::Noop => code::NOOP,
            Op::Deposit(_) => code::DEPOSIT,
            Op::TransferToNew(_) => code::TRANSFER_TO_NEW,
            Op::Withdraw(_) => code::WITHDRAW,
            Op::Transfer(_) => code::TRANSFER,
            Op::FullExit(_) => code::FULL_EXIT,
            Op::ChangePubKey(_) => code::CHANGE_PUBKEY,
            Op::ForcedExit(_) => code::FORCED_EXIT,
            Op::OrderMatching(_) => code::ORDER_MATCHING,
        }
    }

    /// A short name (used in benchmarks and logs).
    pub fn name(&self) -> &'static str {
        self.layout().name
    }

    pub fn chunks(&self) -> usize {
        self.layout().chunks
    }

    /// The chain whose contract must see this op (section 11), if it is an on-chain op.
    pub fn onchain_chain(&self) -> Option<ChainId> {
        match self {
            Op::Deposit(o) => Some(o.chain),
            Op::Withdraw(o) => Some(o.chain),
            Op::FullExit(o) => Some(o.chain),
            Op::ChangePubKey(o) => Some(o.chain),
            Op::ForcedExit(o) => Some(o.chain),
            _ => None,
        }
    }

    /// The accounts whose balances or keys the op changes, fee account aside (each once).
    pub fn accounts(&self) -> Vec<AccountId> {
        let mut accounts = match self {
            Op::Noop => vec![],
            Op::Deposit(o) => vec![o.account],
            Op::TransferToNew(o) => vec![o.from, o.to],
            Op::Withdraw(o) => vec![o.account],
            Op::Transfer(o) => vec![o.from, o.to],
            Op::FullExit(o) => vec![o.account],
            Op::ChangePubKey(o) => vec![o.account],
            Op::ForcedExit(o) => vec![o.initiator, o.target],
            Op::OrderMatching(o) => vec![o.maker, o.taker],
        };
        accounts.dedup();
        accounts
    }

    /// Whether this op is a priority operation (consumes an L1 request).
    pub fn is_priority(&self) -> bool {
        matches!(self, Op::Deposit(_) | Op::FullExit(_))
    }

    /// The op's layout.
    pub fn layout(&self) -> &'static OpLayout {
        layout::of(self.code()).expect("every variant has a layout")
    }

    /// The op's pubdata: `chunks() * 20` bytes. Fails only if an amount or fee is not packable.
    pub fn pubdata(&self) -> Result<Vec<u8>, OpEncodeError> {
        use layout::*;
        let mut w = Out::new(self.layout());
        match self {
            Op::Noop => {}
            Op::Deposit(o) => {
                use deposit::*;
                w.uint(CHAIN, o.chain).uint(ACCOUNT, o.account).uint(SUB, o.sub).uint(L1_TOKEN, o.l1_token);
                w.uint(L2_TOKEN, o.l2_token).uint(AMOUNT, o.amount).bytes(OWNER, &o.owner.0);
            }
            Op::TransferToNew(o) => {
                use transfer_to_new::*;
                w.uint(FROM, o.from).uint(FROM_SUB, o.from_sub).uint(TO, o.to).uint(TO_SUB, o.to_sub);
                w.uint(TOKEN, o.token).uint(AMOUNT, pack_amount(o.amount)?).uint(FEE, pack_fee(o.fee)?);
                w.bytes(TO_OWNER, &o.to_owner.0);
            }
            Op::Withdraw(o) => {
                use withdraw::*;
                w.uint(CHAIN, o.chain).uint(ACCOUNT, o.account).uint(SUB, o.sub).uint(L2_TOKEN, o.l2_token);
                w.uint(L1_TOKEN, o.l1_token).uint(AMOUNT, o.amount).uint(FEE, pack_fee(o.fee)?).bytes(TO, &o.to.0);
            }
            Op::Transfer(o) => {
                use transfer::*;
                w.uint(FROM, o.from).uint(TO, o.to).uint(FROM_SUB, o.from_sub).uint(TO_SUB, o.to_sub);
                w.uint(TOKEN, o.token).uint(AMOUNT, pack_amount(o.amount)?).uint(FEE, pack_fee(o.fee)?);
            }
            Op::FullExit(o) => {
                use full_exit::*;
                w.uint(CHAIN, o.chain).uint(ACCOUNT, o.account).uint(SUB, o.sub).bytes(OWNER, &o.owner.0);
                w.uint(L1_TOKEN, o.l1_token).uint(L2_TOKEN, o.l2_token).uint(AMOUNT, o.amount);
                w.uint(L1_DECIMALS, o.l1_decimals);
            }
            Op::ChangePubKey(o) => {
                use change_pubkey::*;
                w.uint(CHAIN, o.chain).uint(ACCOUNT, o.account).uint(SUB, o.sub);
                w.bytes(NEW_PUBKEY_HASH, &o.new_pubkey_hash.0).bytes(OWNER, &o.owner).uint(NONCE, o.nonce);
                w.uint(FEE_TOKEN, o.fee_token).uint(FEE, pack_fee(o.fee)?);
            }
            Op::ForcedExit(o) => {
                use forced_exit::*;
                w.uint(CHAIN, o.chain).uint(INITIATOR, o.initiator).uint(INITIATOR_SUB, o.initiator_sub);
                w.uint(TARGET, o.target).uint(TARGET_SUB, o.target_sub).uint(L2_TOKEN, o.l2_token);
                w.uint(L1_TOKEN, o.l1_token).uint(FEE_TOKEN, o.fee_token).uint(FEE, pack_fee(o.fee)?);
                w.uint(AMOUNT, o.amount).bytes(TARGET_OWNER, &o.target_owner.0);
            }
            Op::OrderMatching(o) => {
                use order_matching::*;
                w.uint(MAKER, o.maker).uint(TAKER, o.taker).uint(MAKER_SUB, o.maker_sub);
                w.uint(TAKER_SUB_SELL, (o.taker_sub << 1) | u8::from(o.maker_is_sell));
                w.uint(MAKER_SLOT, o.maker_slot).uint(TAKER_SLOT, o.taker_slot).uint(BASE, o.base);
                w.uint(QUOTE, o.quote).uint(BASE_FILL, pack_amount(o.base_fill)?);
                w.uint(QUOTE_FILL, pack_amount(o.quote_fill)?).uint(MAKER_FEE_BPS, o.maker_fee_bps);
                w.uint(TAKER_FEE_BPS, o.taker_fee_bps).uint(MAKER_ORDER_AMOUNT, pack_amount(o.maker_order_amount)?);
                w.uint(TAKER_ORDER_AMOUNT, pack_amount(o.taker_order_amount)?);
            }
        }
        w.finish()
    }

    /// Decodes one op at the start of `bytes`; returns it and the number of bytes it used.
    pub fn decode(bytes: &[u8]) -> Result<(Op, usize), OpDecodeError> {
        Self::decode_at(bytes, 0)
    }

    fn decode_at(all: &[u8], at: usize) -> Result<(Op, usize), OpDecodeError> {
        use layout::*;
        let rest = &all[at..];
        let op_code = *rest.first().ok_or(Truncated)?;
        let l = layout::of(op_code).ok_or(OpDecodeError::UnknownCode(op_code, at))?;
        let d = rest.get(..l.bytes()).ok_or(Truncated)?;
        let sub = |f: Field| {
            let v = uint(d, f) as u8;
            if v <= MAX_SUB_ACCOUNT_ID { Ok(v) } else { Err(OpDecodeError::Field(at, "sub-account")) }
        };
        let (u8_, u16_, u32_) = (|f| uint(d, f) as u8, |f| uint(d, f) as u16, |f| uint(d, f) as u32);
        let amount = |f| unpack_amount(uint(d, f) as u64);
        let fee = |f| unpack_fee(uint(d, f) as u16);
        let op = match op_code {
            code::NOOP => Op::Noop,
            code::DEPOSIT => {
                use deposit::*;
                Op::Deposit(DepositOp {
                    chain: u8_(CHAIN),
                    account: u32_(ACCOUNT),
                    sub: sub(SUB)?,
                    l1_token: u16_(L1_TOKEN),
                    l2_token: u16_(L2_TOKEN),
                    amount: uint(d, AMOUNT),
                    owner: Address(bytes(d, OWNER)),
                })
            }
            code::TRANSFER_TO_NEW => {
                use transfer_to_new::*;
                Op::TransferToNew(TransferToNewOp {
                    from: u32_(FROM),
                    from_sub: sub(FROM_SUB)?,
                    to: u32_(TO),
                    to_sub: sub(TO_SUB)?,
                    token: u16_(TOKEN),
                    amount: amount(AMOUNT)?,
                    fee: fee(FEE)?,
                    to_owner: Address(bytes(d, TO_OWNER)),
                })
            }
            code::WITHDRAW => {
                use withdraw::*;
                Op::Withdraw(WithdrawOp {
                    chain: u8_(CHAIN),
                    account: u32_(ACCOUNT),
                    sub: sub(SUB)?,
                    l2_token: u16_(L2_TOKEN),
                    l1_token: u16_(L1_TOKEN),
                    amount: uint(d, AMOUNT),
                    fee: fee(FEE)?,
                    to: Address(bytes(d, TO)),
                })
            }
            code::TRANSFER => {
                use transfer::*;
                Op::Transfer(TransferOp {
                    from: u32_(FROM),
                    to: u32_(TO),
                    from_sub: sub(FROM_SUB)?,
                    to_sub: sub(TO_SUB)?,
                    token: u16_(TOKEN),
                    amount: amount(AMOUNT)?,
                    fee: fee(FEE)?,
                })
            }
            code::FULL_EXIT => {
                use full_exit::*;
                Op::FullExit(FullExitOp {
                    chain: u8_(CHAIN),
                    account: u32_(ACCOUNT),
                    sub: sub(SUB)?,
                    owner: Address(bytes(d, OWNER)),
                    l1_token: u16_(L1_TOKEN),
                    l2_token: u16_(L2_TOKEN),
                    amount: uint(d, AMOUNT),
                    l1_decimals: u8_(L1_DECIMALS),
                })
            }
            code::CHANGE_PUBKEY => {
                use change_pubkey::*;
                Op::ChangePubKey(ChangePubKeyOp {
                    chain: u8_(CHAIN),
                    account: u32_(ACCOUNT),
                    sub: sub(SUB)?,
                    new_pubkey_hash: PubKeyHash(bytes(d, NEW_PUBKEY_HASH)),
                    owner: bytes(d, OWNER),
                    nonce: u32_(NONCE),
                    fee_token: u16_(FEE_TOKEN),
                    fee: fee(FEE)?,
                })
            }
            code::FORCED_EXIT => {
                use forced_exit::*;
                Op::ForcedExit(ForcedExitOp {
                    chain: u8_(CHAIN),
                    initiator: u32_(INITIATOR),
                    initiator_sub: sub(INITIATOR_SUB)?,
                    target: u32_(TARGET),
                    target_sub: sub(TARGET_SUB)?,
                    l2_token: u16_(L2_TOKEN),
                    l1_token: u16_(L1_TOKEN),
                    fee_token: u16_(FEE_TOKEN),
                    fee: fee(FEE)?,
                    amount: uint(d, AMOUNT),
                    target_owner: Address(bytes(d, TARGET_OWNER)),
                })
            }
            code::ORDER_MATCHING => {
                use order_matching::*;
                let flags = u8_(TAKER_SUB_SELL);
                let taker_sub = flags >> 1;
                if taker_sub > MAX_SUB_ACCOUNT_ID {
                    return Err(OpDecodeError::Field(at, "sub-account"));
                }
                Op::OrderMatching(OrderMatchingOp {
                    maker: u32_(MAKER),
                    taker: u32_(TAKER),
                    maker_sub: sub(MAKER_SUB)?,
                    taker_sub,
                    maker_is_sell: flags & 1 == 1,
                    maker_slot: u16_(MAKER_SLOT),
                    taker_slot: u16_(TAKER_SLOT),
                    base: u16_(BASE),
                    quote: u16_(QUOTE),
                    base_fill: amount(BASE_FILL)?,
                    quote_fill: amount(QUOTE_FILL)?,
                    maker_fee_bps: u8_(MAKER_FEE_BPS),
                    taker_fee_bps: u8_(TAKER_FEE_BPS),
                    maker_order_amount: amount(MAKER_ORDER_AMOUNT)?,
                    taker_order_amount: amount(TAKER_ORDER_AMOUNT)?,
                })
            }
            other => return Err(OpDecodeError::UnknownCode(other, at)),
        };
        let used = l.fields.last().map_or(1, |f| f.end());
        if d[used..].iter().any(|b| *b != 0) {
            return Err(OpDecodeError::Padding(at));
        }
        Ok((op, l.bytes()))
    }

    /// Decodes a block's pubdata into its ops, dropping Noop padding.
    pub fn decode_block(pubdata: &[u8]) -> Result<Vec<Op>, OpDecodeError> {
        if !pubdata.len().is_multiple_of(CHUNK_BYTES) {
            return Err(OpDecodeError::Length(pubdata.len()));
        }
        let mut ops = Vec::new();
        let mut at = 0;
        while at < pubdata.len() {
            let (op, len) = Self::decode_at(pubdata, at)?;
            if op != Op::Noop {
                ops.push(op);
            }
            at += len;
        }
        Ok(ops)
    }
}
