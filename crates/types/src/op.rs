//! Operations and their pubdata (protocol.md section 11).
//!
//! An operation is what a block records: everything needed to apply it to the state is in its
//! pubdata, so the exodus tool can rebuild the state from Layer-1 data alone.

use zkl_crypto::PubKeyHash;

use crate::amount::{AmountError, pack_amount, pack_fee, unpack_amount, unpack_fee};
use crate::codec::{Reader, Truncated, Writer};
use crate::ids::*;

/// Bytes per pubdata chunk.
pub const CHUNK_BYTES: usize = 20;

/// Operation codes.
pub mod code {
    pub const NOOP: u8 = 0;
    pub const DEPOSIT: u8 = 1;
    pub const TRANSFER_TO_NEW: u8 = 2;
    pub const WITHDRAW: u8 = 3;
    pub const TRANSFER: u8 = 4;
    pub const FULL_EXIT: u8 = 5;
    pub const CHANGE_PUBKEY: u8 = 6;
    pub const FORCED_EXIT: u8 = 7;
    pub const ORDER_MATCHING: u8 = 8;
}

/// Chunks used by an op code, or None for an unknown code.
pub fn chunks_of(op_code: u8) -> Option<usize> {
    Some(match op_code {
        code::NOOP | code::TRANSFER => 1,
        code::ORDER_MATCHING => 2,
        code::DEPOSIT | code::TRANSFER_TO_NEW | code::WITHDRAW | code::FULL_EXIT | code::CHANGE_PUBKEY => 3,
        code::FORCED_EXIT => 4,
        _ => return None,
    })
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
        match self {
            Op::Noop => "noop",
            Op::Deposit(_) => "deposit",
            Op::TransferToNew(_) => "transfer_to_new",
            Op::Withdraw(_) => "withdraw",
            Op::Transfer(_) => "transfer",
            Op::FullExit(_) => "full_exit",
            Op::ChangePubKey(_) => "change_pubkey",
            Op::ForcedExit(_) => "forced_exit",
            Op::OrderMatching(_) => "order_matching",
        }
    }

    pub fn chunks(&self) -> usize {
        chunks_of(self.code()).expect("every variant has a code")
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

    /// Whether this op is a priority operation (consumes an L1 request).
    pub fn is_priority(&self) -> bool {
        matches!(self, Op::Deposit(_) | Op::FullExit(_))
    }

    /// The op's pubdata: `chunks() * 20` bytes. Fails only if an amount or fee is not packable.
    pub fn pubdata(&self) -> Result<Vec<u8>, AmountError> {
        let mut w = Writer::new();
        w.u8(self.code());
        match self {
            Op::Noop => {}
            Op::Deposit(o) => {
                w.u8(o.chain).u24(o.account).u8(o.sub).u16(o.l1_token).u16(o.l2_token).u128(o.amount).raw(&o.owner.0);
            }
            Op::TransferToNew(o) => {
                w.u24(o.from).u8(o.from_sub).u24(o.to).u8(o.to_sub).u16(o.token);
                w.u40(pack_amount(o.amount)?).u16(pack_fee(o.fee)?).raw(&o.to_owner.0);
            }
            Op::Withdraw(o) => {
                w.u8(o.chain).u24(o.account).u8(o.sub).u16(o.l2_token).u16(o.l1_token).u128(o.amount);
                w.u16(pack_fee(o.fee)?).raw(&o.to.0);
            }
            Op::Transfer(o) => {
                w.u24(o.from).u24(o.to).u8(o.from_sub).u8(o.to_sub).u16(o.token);
                w.u40(pack_amount(o.amount)?).u16(pack_fee(o.fee)?);
            }
            Op::FullExit(o) => {
                w.u8(o.chain).u24(o.account).u8(o.sub).raw(&o.owner.0).u16(o.l1_token).u16(o.l2_token).u128(o.amount);
                w.u8(o.l1_decimals);
            }
            Op::ChangePubKey(o) => {
                w.u8(o.chain).u24(o.account).u8(o.sub).raw(&o.new_pubkey_hash.0).raw(&o.owner).u32(o.nonce);
                w.u16(o.fee_token).u16(pack_fee(o.fee)?);
            }
            Op::ForcedExit(o) => {
                w.u8(o.chain).u24(o.initiator).u8(o.initiator_sub).u24(o.target).u8(o.target_sub);
                w.u16(o.l2_token).u16(o.l1_token).u16(o.fee_token).u16(pack_fee(o.fee)?).u128(o.amount);
                w.raw(&o.target_owner.0);
            }
            Op::OrderMatching(o) => {
                w.u24(o.maker).u24(o.taker).u8(o.maker_sub).u8((o.taker_sub << 1) | u8::from(o.maker_is_sell));
                w.u16(o.maker_slot).u16(o.taker_slot).u16(o.base).u16(o.quote);
                w.u40(pack_amount(o.base_fill)?).u40(pack_amount(o.quote_fill)?);
                w.u8(o.maker_fee_bps).u8(o.taker_fee_bps);
                w.u40(pack_amount(o.maker_order_amount)?).u40(pack_amount(o.taker_order_amount)?);
            }
        }
        debug_assert!(w.bytes.len() <= self.chunks() * CHUNK_BYTES);
        let mut out = w.bytes;
        out.resize(self.chunks() * CHUNK_BYTES, 0);
        Ok(out)
    }

    /// Decodes one op at the start of `bytes`; returns it and the number of bytes it used.
    pub fn decode(bytes: &[u8]) -> Result<(Op, usize), OpDecodeError> {
        Self::decode_at(bytes, 0)
    }

    fn decode_at(all: &[u8], at: usize) -> Result<(Op, usize), OpDecodeError> {
        let bytes = &all[at..];
        let op_code = *bytes.first().ok_or(Truncated)?;
        let len = chunks_of(op_code).ok_or(OpDecodeError::UnknownCode(op_code, at))? * CHUNK_BYTES;
        let data = bytes.get(..len).ok_or(Truncated)?;
        let mut r = Reader::new(data);
        r.u8()?;
        let sub = |v: u8| if v <= MAX_SUB_ACCOUNT_ID { Ok(v) } else { Err(OpDecodeError::Field(at, "sub-account")) };
        let op = match op_code {
            code::NOOP => Op::Noop,
            code::DEPOSIT => Op::Deposit(DepositOp {
                chain: r.u8()?,
                account: r.u24()?,
                sub: sub(r.u8()?)?,
                l1_token: r.u16()?,
                l2_token: r.u16()?,
                amount: r.u128()?,
                owner: Address(r.array()?),
            }),
            code::TRANSFER_TO_NEW => Op::TransferToNew(TransferToNewOp {
                from: r.u24()?,
                from_sub: sub(r.u8()?)?,
                to: r.u24()?,
                to_sub: sub(r.u8()?)?,
                token: r.u16()?,
                amount: unpack_amount(r.u40()?)?,
                fee: unpack_fee(r.u16()?)?,
                to_owner: Address(r.array()?),
            }),
            code::WITHDRAW => Op::Withdraw(WithdrawOp {
                chain: r.u8()?,
                account: r.u24()?,
                sub: sub(r.u8()?)?,
                l2_token: r.u16()?,
                l1_token: r.u16()?,
                amount: r.u128()?,
                fee: unpack_fee(r.u16()?)?,
                to: Address(r.array()?),
            }),
            code::TRANSFER => Op::Transfer(TransferOp {
                from: r.u24()?,
                to: r.u24()?,
                from_sub: sub(r.u8()?)?,
                to_sub: sub(r.u8()?)?,
                token: r.u16()?,
                amount: unpack_amount(r.u40()?)?,
                fee: unpack_fee(r.u16()?)?,
            }),
            code::FULL_EXIT => Op::FullExit(FullExitOp {
                chain: r.u8()?,
                account: r.u24()?,
                sub: sub(r.u8()?)?,
                owner: Address(r.array()?),
                l1_token: r.u16()?,
                l2_token: r.u16()?,
                amount: r.u128()?,
                l1_decimals: r.u8()?,
            }),
            code::CHANGE_PUBKEY => Op::ChangePubKey(ChangePubKeyOp {
                chain: r.u8()?,
                account: r.u24()?,
                sub: sub(r.u8()?)?,
                new_pubkey_hash: PubKeyHash(r.array()?),
                owner: r.array()?,
                nonce: r.u32()?,
                fee_token: r.u16()?,
                fee: unpack_fee(r.u16()?)?,
            }),
            code::FORCED_EXIT => Op::ForcedExit(ForcedExitOp {
                chain: r.u8()?,
                initiator: r.u24()?,
                initiator_sub: sub(r.u8()?)?,
                target: r.u24()?,
                target_sub: sub(r.u8()?)?,
                l2_token: r.u16()?,
                l1_token: r.u16()?,
                fee_token: r.u16()?,
                fee: unpack_fee(r.u16()?)?,
                amount: r.u128()?,
                target_owner: Address(r.array()?),
            }),
            code::ORDER_MATCHING => {
                let maker = r.u24()?;
                let taker = r.u24()?;
                let maker_sub = sub(r.u8()?)?;
                let flags = r.u8()?;
                Op::OrderMatching(OrderMatchingOp {
                    maker,
                    taker,
                    maker_sub,
                    taker_sub: sub(flags >> 1)?,
                    maker_is_sell: flags & 1 == 1,
                    maker_slot: r.u16()?,
                    taker_slot: r.u16()?,
                    base: r.u16()?,
                    quote: r.u16()?,
                    base_fill: unpack_amount(r.u40()?)?,
                    quote_fill: unpack_amount(r.u40()?)?,
                    maker_fee_bps: r.u8()?,
                    taker_fee_bps: r.u8()?,
                    maker_order_amount: unpack_amount(r.u40()?)?,
                    taker_order_amount: unpack_amount(r.u40()?)?,
                })
            }
            other => return Err(OpDecodeError::UnknownCode(other, at)),
        };
        if data[r.position()..].iter().any(|b| *b != 0) {
            return Err(OpDecodeError::Padding(at));
        }
        Ok((op, len))
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
