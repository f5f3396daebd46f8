//! Every op's pubdata has its documented length, decodes back to the same op, and malformed
//! pubdata is rejected with a typed error.

use proptest::prelude::*;
use zkl_crypto::PubKeyHash;
use zkl_types::op::*;
use zkl_types::*;

fn packable() -> impl Strategy<Value = u128> {
    (0u128..(1 << 35), 0u32..20).prop_map(|(m, e)| m * 10u128.pow(e))
}
fn fee() -> impl Strategy<Value = u128> {
    (0u128..(1 << 11), 0u32..20).prop_map(|(m, e)| m * 10u128.pow(e))
}
fn acc() -> impl Strategy<Value = u32> {
    0u32..(1 << 24)
}
fn sub() -> impl Strategy<Value = u8> {
    0u8..32
}
fn addr() -> impl Strategy<Value = Address> {
    any::<[u8; 32]>().prop_map(Address)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Noop),
        (any::<u8>(), acc(), sub(), any::<u16>(), any::<u16>(), any::<u128>(), addr()).prop_map(
            |(chain, account, sub, l1_token, l2_token, amount, owner)| Op::Deposit(DepositOp {
                chain,
                account,
                sub,
                l1_token,
                l2_token,
                amount,
                owner
            })
        ),
        (acc(), sub(), acc(), sub(), any::<u16>(), packable(), fee(), addr()).prop_map(
            |(from, from_sub, to, to_sub, token, amount, fee, to_owner)| Op::TransferToNew(TransferToNewOp {
                from,
                from_sub,
                to,
                to_sub,
                token,
                amount,
                fee,
                to_owner
            })
        ),
        (any::<u8>(), acc(), sub(), any::<u16>(), any::<u16>(), any::<u128>(), fee(), addr()).prop_map(
            |(chain, account, sub, l2_token, l1_token, amount, fee, to)| Op::Withdraw(WithdrawOp {
                chain,
                account,
                sub,
                l2_token,
                l1_token,
                amount,
                fee,
                to
            })
        ),
        (acc(), acc(), sub(), sub(), any::<u16>(), packable(), fee()).prop_map(
            |(from, to, from_sub, to_sub, token, amount, fee)| Op::Transfer(TransferOp {
                from,
                to,
                from_sub,
                to_sub,
                token,
                amount,
                fee
            })
        ),
        (any::<u8>(), acc(), sub(), addr(), any::<u16>(), any::<u16>(), any::<u128>(), 0u8..=18).prop_map(
            |(chain, account, sub, owner, l1_token, l2_token, amount, l1_decimals)| Op::FullExit(FullExitOp {
                chain,
                account,
                sub,
                owner,
                l1_token,
                l2_token,
                amount,
                l1_decimals
            })
        ),
        (any::<u8>(), acc(), sub(), any::<[u8; 20]>(), any::<[u8; 20]>(), any::<u32>(), any::<u16>(), fee()).prop_map(
            |(chain, account, sub, pkh, owner, nonce, fee_token, fee)| Op::ChangePubKey(ChangePubKeyOp {
                chain,
                account,
                sub,
                new_pubkey_hash: PubKeyHash(pkh),
                owner,
                nonce,
                fee_token,
                fee
            })
        ),
        (
            any::<u8>(),
            acc(),
            sub(),
            acc(),
            sub(),
            (any::<u16>(), any::<u16>(), any::<u16>()),
            fee(),
            any::<u128>(),
            addr()
        )
            .prop_map(
                |(
                    chain,
                    initiator,
                    initiator_sub,
                    target,
                    target_sub,
                    (l2_token, l1_token, fee_token),
                    fee,
                    amount,
                    target_owner,
                )| Op::ForcedExit(ForcedExitOp {
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
                    target_owner
                })
            ),
        (
            (acc(), acc(), sub(), sub(), any::<bool>()),
            (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>()),
            (packable(), packable(), packable(), packable()),
            (any::<u8>(), any::<u8>())
        )
            .prop_map(
                |(
                    (maker, taker, maker_sub, taker_sub, maker_is_sell),
                    (maker_slot, taker_slot, base, quote),
                    (base_fill, quote_fill, maker_order_amount, taker_order_amount),
                    (maker_fee_bps, taker_fee_bps),
                )| Op::OrderMatching(OrderMatchingOp {
                    maker,
                    taker,
                    maker_sub,
                    taker_sub,
                    maker_is_sell,
                    maker_slot,
                    taker_slot,
                    base,
                    quote,
                    base_fill,
                    quote_fill,
                    maker_fee_bps,
                    taker_fee_bps,
                    maker_order_amount,
                    taker_order_amount
                })
            ),
    ]
}

proptest! {
    #[test]
    fn pubdata_roundtrip(ops in proptest::collection::vec(op(), 0..6)) {
        let mut pubdata = Vec::new();
        for op in &ops {
            let bytes = op.pubdata().unwrap();
            prop_assert_eq!(bytes.len(), op.chunks() * CHUNK_BYTES);
            prop_assert_eq!(Op::decode(&bytes).unwrap(), (*op, bytes.len()));
            pubdata.extend(bytes);
        }
        let without_noops: Vec<Op> = ops.iter().copied().filter(|o| *o != Op::Noop).collect();
        prop_assert_eq!(Op::decode_block(&pubdata).unwrap(), without_noops);
    }

    /// `Op::accounts` is every account id field of the op (read from its JSON, so a field added
    /// to an op and forgotten there fails this), each once.
    #[test]
    fn accounts_are_the_account_fields(op in op()) {
        let json = serde_json::to_value(op).unwrap();
        let mut expected: Vec<u64> = ["account", "from", "to", "initiator", "target", "maker", "taker"]
            .iter()
            .filter_map(|k| json.get(*k)?.as_u64())
            .collect();
        expected.sort_unstable();
        expected.dedup();
        let mut got: Vec<u64> = op.accounts().into_iter().map(u64::from).collect();
        prop_assert_eq!(got.len(), expected.len(), "{:?}", op);
        got.sort_unstable();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Op::decode_block(&bytes);
        let _ = Op::decode(&bytes);
    }
}

#[test]
fn documented_chunk_counts() {
    let counts: Vec<Option<usize>> = (0..=9).map(chunks_of).collect();
    assert_eq!(counts, [Some(1), Some(3), Some(3), Some(3), Some(1), Some(3), Some(3), Some(4), Some(2), None]);
}

#[test]
fn malformed_pubdata_is_rejected() {
    let t = Op::Transfer(TransferOp { from: 2, to: 3, from_sub: 0, to_sub: 1, token: 1, amount: 10, fee: 1 });
    let good = t.pubdata().unwrap();
    assert_eq!(Op::decode_block(&good[..19]), Err(OpDecodeError::Length(19)));
    assert!(matches!(Op::decode(&good[..10]), Err(OpDecodeError::Truncated(_))));
    let mut unknown = good.clone();
    unknown[0] = 42;
    assert_eq!(Op::decode(&unknown), Err(OpDecodeError::UnknownCode(42, 0)));
    let mut padding = good.clone();
    padding[19] = 1;
    assert_eq!(Op::decode(&padding), Err(OpDecodeError::Padding(0)));
    let mut bad_sub = good.clone();
    bad_sub[8] = 32;
    assert_eq!(Op::decode(&bad_sub), Err(OpDecodeError::Field(0, "sub-account")));
    // Amount 10 encoded as mantissa 1, exponent 1: not canonical.
    let mut noncanonical = good.clone();
    noncanonical[11..16].copy_from_slice(&[0, 0, 0, 0, 0x21]);
    assert!(matches!(Op::decode(&noncanonical), Err(OpDecodeError::Amount(AmountError::NonCanonical(_)))));
    // Unpackable amounts cannot be encoded.
    let big =
        Op::Transfer(TransferOp { from: 2, to: 3, from_sub: 0, to_sub: 0, token: 1, amount: (1 << 35) + 1, fee: 0 });
    assert!(big.pubdata().is_err());
    // Values wider than their field cannot be encoded (no silent truncation to another account).
    let wide = Op::Transfer(TransferOp { from: 1 << 24, to: 3, from_sub: 0, to_sub: 0, token: 1, amount: 1, fee: 0 });
    assert_eq!(wide.pubdata(), Err(OpEncodeError::FieldWidth { field: "FROM", value: 1 << 24, bytes: 3 }));
}

#[test]
fn transfer_pubdata_layout() {
    let t = Op::Transfer(TransferOp {
        from: 0x010203,
        to: 0x040506,
        from_sub: 7,
        to_sub: 9,
        token: 0x0a0b,
        amount: 12_300,
        fee: 45,
    });
    let bytes = t.pubdata().unwrap();
    // op, from, to, from_sub, to_sub, token, packed amount (12300 << 5 | 0: the smallest exponent),
    // packed fee (45 << 5 | 0), padding.
    let mut expected = vec![4, 1, 2, 3, 4, 5, 6, 7, 9, 0x0a, 0x0b];
    expected.extend_from_slice(&(12_300u64 << 5).to_be_bytes()[3..]);
    expected.extend_from_slice(&(45u16 << 5).to_be_bytes());
    expected.extend_from_slice(&[0, 0]);
    assert_eq!(bytes, expected);
}

#[test]
fn tx_kinds_name_the_ops_they_become() {
    for kind in TxKind::ALL {
        assert_eq!(TxKind::from_name(kind.name()), Some(kind));
        let op = kind.op_code(true);
        assert_eq!(zkl_types::layout::of(op).map(|l| l.name), Some(kind.name()));
    }
    assert_eq!(TxKind::Transfer.op_code(false), code::TRANSFER_TO_NEW);
    assert_eq!(TxKind::Withdraw.op_code(false), code::WITHDRAW);
    assert_eq!(TxKind::from_name("deposit"), None);
    assert_eq!(TxKind::from_name("transfer_to_new"), None);
}
