//! Every transaction's happy path and every rejection (each leaves the state unchanged).

use crate::assert_rejected;
use crate::common;

use common::World;
use zkl_state::testkit::*;
use zkl_state::{BlockParams, TxError};
use zkl_types::op::*;
use zkl_types::*;

#[test]
fn deposit_converts_decimals_and_tracks_liquidity() {
    let mut w = World::new(2);
    let a = w.deposit(0, 1, USDC, USDC, 1_000_000_000).unwrap();
    assert_eq!(a, 2, "first user account after the fee and global accounts");
    assert_eq!(w.state.balance(a, 0, USDC), 1_000 * ONE);
    assert_eq!(w.state.liquidity(1, USDC), 1_000 * ONE);
    // The same USDC on chain 2 is the same L2 balance.
    w.deposit(0, 2, USDC, USDC, 500_000_000).unwrap();
    assert_eq!(w.state.balance(a, 0, USDC), 1_500 * ONE);
    assert_eq!(w.state.liquidity(2, USDC), 500 * ONE);
    // USDT can fund the USD group, as can USDC.
    w.deposit(0, 2, USDT, USD, 7_000_000).unwrap();
    w.deposit(0, 1, USDC, USD, 3_000_000).unwrap();
    assert_eq!(w.state.balance(a, 0, USD), 10 * ONE);
    assert_eq!(w.state.liquidity(2, USDT), 7 * ONE);
    assert_eq!(w.state.liquidity(1, USDC), 1_003 * ONE);
    assert_eq!(w.state.account_count(), 3);
}

#[test]
fn deposit_rejections() {
    let mut w = World::new(2);
    assert_rejected!(w, w.deposit(0, 3, ETH, ETH, 1), TxError::Token(TokenError::UnknownChain(3)));
    assert_rejected!(w, w.deposit(0, 1, 9, 9, 1), TxError::Token(TokenError::UnknownToken(9)));
    assert_rejected!(w, w.deposit(0, 1, USDT, USDT, 1), TxError::Token(TokenError::TokenNotOnChain { .. }));
    assert_rejected!(w, w.deposit(0, 1, USDC, ETH, 1), TxError::Token(TokenError::NotFunding { .. }));
    w.deposit(0, 1, ETH, ETH, MAX_LIQUIDITY - 5).unwrap();
    assert_rejected!(w, w.deposit(1, 1, ETH, ETH, 6), TxError::LiquidityCap { chain: 1, token: ETH });
    let bad = deposit(1, 99, Address::ZERO, ETH, ETH, 1);
    assert_rejected!(w, w.state.execute_priority(&bad), TxError::ZeroAddress);
    let mut bad_sub = deposit(1, 99, w.users[1].address, ETH, ETH, 1);
    if let PriorityRequest::Deposit { sub, .. } = &mut bad_sub {
        *sub = 32;
    }
    assert_rejected!(w, w.state.execute_priority(&bad_sub), TxError::InvalidSubAccount(32));
    // An op naming the wrong new account id (as a forged block would).
    let op = Op::Deposit(DepositOp {
        chain: 1,
        account: 7,
        sub: 0,
        l1_token: ETH,
        l2_token: ETH,
        amount: 1,
        owner: w.users[1].address,
    });
    assert_rejected!(w, w.state.apply_op(&op), TxError::WrongNewAccountId { expected: 3, got: 7 });
}

#[test]
fn transfer_to_existing_and_new_accounts() {
    let mut w = World::funded(2);
    let (a, b) = (w.id(0), w.id(1));
    let tx = w.users[0].transfer(a, w.users[1].address, ETH, ONE, 1_000, 1);
    let op = w.state.execute_tx(&tx).unwrap();
    assert!(matches!(op, Op::Transfer(TransferOp { from, to, .. }) if from == a && to == b));
    assert_eq!(w.state.balance(a, 0, ETH), 9 * ONE - 1_000);
    assert_eq!(w.state.balance(b, 0, ETH), 11 * ONE);
    assert_eq!(w.state.pending_fees().get(&ETH), Some(&1_000));
    // A fresh address gets a new account.
    let fresh = User::new(77);
    let tx = w.users[0].transfer(a, fresh.address, ETH, ONE, 0, 2);
    let op = w.state.execute_tx(&tx).unwrap();
    let Op::TransferToNew(t) = op else { panic!("TransferToNew expected") };
    assert_eq!(w.state.account_by_owner(&fresh.address), Some(t.to));
    assert_eq!(w.state.balance(t.to, 0, ETH), ONE);
    // Fees reach the fee account when the block is sealed.
    let block = w.state.seal_block(1);
    assert_eq!(block.ops.len(), 2 * 3 + 2);
    assert_eq!(w.state.balance(FEE_ACCOUNT, 0, ETH), 1_000);
    assert!(w.state.pending_fees().is_empty());
}

#[test]
fn transfer_rejections() {
    let mut w = World::funded(3);
    let (a, b) = (w.id(0), w.id(1));
    let to = w.users[1].address;
    let u0 = w.users[0].clone();
    let too_much = u0.transfer(a, to, ETH, 11 * ONE, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&too_much), TxError::InsufficientBalance { .. });
    let fee_too_much = u0.transfer(a, to, ETH, 10 * ONE, 1, 1);
    assert_rejected!(w, w.state.execute_tx(&fee_too_much), TxError::InsufficientBalance { .. });
    let bad_nonce = u0.transfer(a, to, ETH, ONE, 0, 5);
    assert_rejected!(w, w.state.execute_tx(&bad_nonce), TxError::BadNonce { expected: 1, got: 5, .. });
    let mut forged = u0.transfer(a, to, ETH, ONE, 0, 1);
    forged.signature = w.users[1].transfer(a, to, ETH, ONE, 0, 1).signature;
    assert_rejected!(w, w.state.execute_tx(&forged), TxError::BadSignature(_));
    let mut tampered = u0.transfer(a, to, ETH, ONE, 0, 1);
    if let Tx::Transfer(t) = &mut tampered.tx {
        t.amount = 2 * ONE;
    }
    assert_rejected!(w, w.state.execute_tx(&tampered), TxError::BadSignature(_));
    let unknown_token = u0.transfer(a, to, 9, 1, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&unknown_token), TxError::Token(TokenError::UnknownToken(9)));
    let unpackable = u0.transfer(a, to, ETH, (1 << 35) + 1, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&unpackable), TxError::Amount(AmountError::AmountNotPackable(_)));
    let bad_fee = u0.transfer(a, to, ETH, 1, 2049, 1);
    assert_rejected!(w, w.state.execute_tx(&bad_fee), TxError::Amount(AmountError::FeeNotPackable(2049)));
    let to_self = u0.transfer(a, w.users[0].address, ETH, 1, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&to_self), TxError::SelfTransfer);
    let to_zero = u0.transfer(a, Address::ZERO, ETH, 1, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&to_zero), TxError::ZeroAddress);
    // Addresses that are not EVM addresses: no contract could pay them or let them authorise
    // a key, so no account may be created for them.
    let mut non_evm = [0u8; 32];
    non_evm[0] = 1;
    non_evm[31] = 7;
    let to_non_evm = u0.transfer(a, Address(non_evm), ETH, 1, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&to_non_evm), TxError::NotEvmAddress(_));
    let mut bad_sub = u0.transfer(a, to, ETH, 1, 0, 1);
    if let Tx::Transfer(t) = &mut bad_sub.tx {
        t.to_sub = 40;
    }
    let bad_sub = bad_sub.tx.sign(&u0.l2);
    assert_rejected!(w, w.state.execute_tx(&bad_sub), TxError::InvalidSubAccount(40));
    // The global asset account can neither sign nor be named.
    let from_global = u0.transfer(GLOBAL_ACCOUNT, to, ETH, 1, 0, 0);
    assert_rejected!(w, w.state.execute_tx(&from_global), TxError::GlobalAccount(1));
    let op =
        Op::Transfer(TransferOp { from: a, to: GLOBAL_ACCOUNT, from_sub: 0, to_sub: 0, token: ETH, amount: 1, fee: 0 });
    assert_rejected!(w, w.state.apply_op(&op), TxError::GlobalAccount(1));
    let op = Op::Transfer(TransferOp { from: a, to: 999, from_sub: 0, to_sub: 0, token: ETH, amount: 1, fee: 0 });
    assert_rejected!(w, w.state.apply_op(&op), TxError::UnknownAccount(999));
    let unknown_signer = u0.transfer(999, to, ETH, 1, 0, 0);
    assert_rejected!(w, w.state.execute_tx(&unknown_signer), TxError::UnknownAccount(999));
    // An account without a key cannot sign.
    let c = w.deposit(2, 1, ETH, ETH, ONE).unwrap();
    let _ = c;
    let keyless = User::new(500);
    w.deposit_for(&keyless, ETH, ONE);
    let id = w.state.account_by_owner(&keyless.address).unwrap();
    let no_key = keyless.transfer(id, to, ETH, 1, 0, 0);
    assert_rejected!(w, w.state.execute_tx(&no_key), TxError::NoSigningKey(_));
    // A replayed transfer is rejected (nonce moved on).
    let ok = u0.transfer(a, to, ETH, 1, 0, 1);
    w.state.execute_tx(&ok).unwrap();
    assert_rejected!(w, w.state.execute_tx(&ok), TxError::BadNonce { .. });
    assert_eq!(w.state.balance(b, 0, ETH), 10 * ONE + 1);
}

trait DepositFor {
    fn deposit_for(&mut self, user: &User, token: TokenId, amount: u128);
}

impl DepositFor for World {
    fn deposit_for(&mut self, user: &User, token: TokenId, amount: u128) {
        self.serial += 1;
        self.state.execute_priority(&deposit(1, self.serial, user.address, token, token, amount)).unwrap();
    }
}

#[test]
fn withdraw_any_chain_any_merged_token_capped_by_liquidity() {
    let mut w = World::funded(2);
    let a = w.id(0);
    let u0 = w.users[0].clone();
    // User 0 deposited USDC on chain 2 only; withdrawing on chain 1 needs chain-1 liquidity.
    let tx = u0.withdraw(a, 1, USDC, USDC, ONE, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::InsufficientLiquidity { chain: 1, token: USDC, .. });
    w.deposit(1, 1, USDC, USDC, 5_000_000).unwrap();
    let op = w.state.execute_tx(&tx).unwrap();
    assert!(matches!(op, Op::Withdraw(WithdrawOp { chain: 1, amount, .. }) if amount == ONE));
    assert_eq!(w.state.liquidity(1, USDC), 4 * ONE);
    assert_eq!(w.state.balance(a, 0, USDC), 9_999 * ONE);
    // ETH deposited on chain 1 can leave on chain 2 only if chain 2 holds ETH.
    let tx = u0.withdraw(a, 2, ETH, ETH, ONE, 0, 2);
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::InsufficientLiquidity { chain: 2, token: ETH, .. });
    // USD (group) can leave as USDT on chain 2 when chain 2 holds USDT.
    w.deposit(0, 2, USDT, USD, 2_000_000).unwrap();
    let tx = u0.withdraw(a, 2, USD, USDT, 2 * ONE, 0, 2);
    w.state.execute_tx(&tx).unwrap();
    assert_eq!(w.state.liquidity(2, USDT), 0);
    assert_eq!(w.state.balance(a, 0, USD), 0);
    // Rejections.
    let rej = |w: &mut World, tx: SignedTx| w.state.execute_tx(&tx);
    let t = u0.withdraw(a, 3, ETH, ETH, 1, 0, 3);
    assert_rejected!(w, rej(&mut w, t), TxError::Token(TokenError::UnknownChain(3)));
    let t = u0.withdraw(a, 1, USDT, USDT, 1, 0, 3);
    assert_rejected!(w, rej(&mut w, t), TxError::Token(TokenError::TokenNotOnChain { .. }));
    let t = u0.withdraw(a, 2, ETH, USDC, 1, 0, 3);
    assert_rejected!(w, rej(&mut w, t), TxError::Token(TokenError::NotFunding { l1: USDC, l2: ETH }));
    let t = u0.withdraw(a, 2, USDC, USDC, ONE + 1, 0, 3);
    assert_rejected!(w, rej(&mut w, t), TxError::Token(TokenError::NotExact { .. }));
    let t = u0.withdraw(a, 2, USDC, USDC, 20_000 * ONE, 0, 3);
    assert_rejected!(w, rej(&mut w, t), TxError::InsufficientBalance { .. });
    let t = u0.withdraw(a, 2, USDC, USDC, ONE, 0, 9);
    assert_rejected!(w, rej(&mut w, t), TxError::BadNonce { .. });
    // The recipient must be a non-zero EVM address (the contract refuses anything else at commit).
    let to = |w: &mut World, to: Address| {
        let tx = Withdraw {
            account: a,
            sub: 0,
            chain: 2,
            l2_token: USDC,
            l1_token: USDC,
            amount: ONE,
            fee: 0,
            to,
            nonce: 3,
        };
        let tx = Tx::Withdraw(tx).sign(&u0.l2);
        w.state.execute_tx(&tx)
    };
    let mut non_evm = [0u8; 32];
    non_evm[11] = 1;
    assert_rejected!(w, to(&mut w, Address(non_evm)), TxError::NotEvmAddress(_));
    assert_rejected!(w, to(&mut w, Address::ZERO), TxError::ZeroAddress);
}

#[test]
fn full_exit_always_produces_its_op() {
    let mut w = World::funded(2);
    let (a, b) = (w.id(0), w.id(1));
    let owner = w.users[0].address;
    let req = |account, owner, l1, l2| PriorityRequest::FullExit {
        chain: 1,
        serial_id: 1000,
        account,
        sub: 0,
        owner,
        l1_token: l1,
        l2_token: l2,
    };
    // Whole ETH balance (10) but chain 1 holds 20 ETH: exits 10.
    let op = w.state.execute_priority(&req(a, owner, ETH, ETH)).unwrap();
    assert!(matches!(op, Op::FullExit(FullExitOp { amount, l1_decimals: 18, .. }) if amount == 10 * ONE));
    assert_eq!(w.state.balance(a, 0, ETH), 0);
    // Someone else's account, a missing account, a token pair that does not fund: amount 0.
    for r in [req(b, owner, ETH, ETH), req(4242, owner, ETH, ETH), req(a, owner, USDC, ETH)] {
        let op = w.state.execute_priority(&r).unwrap();
        assert!(matches!(op, Op::FullExit(FullExitOp { amount: 0, .. })));
    }
    // Capped by liquidity: user 1's USDC (10,000) sits on chain 2; chain 1 holds none.
    let owner1 = w.users[1].address;
    let op = w.state.execute_priority(&req(b, owner1, USDC, USDC)).unwrap();
    assert!(matches!(op, Op::FullExit(FullExitOp { amount: 0, .. })));
    // A forged op claiming more than the rule gives is rejected.
    let op = Op::FullExit(FullExitOp {
        chain: 1,
        account: b,
        sub: 0,
        owner: owner1,
        l1_token: ETH,
        l2_token: ETH,
        amount: 11 * ONE,
        l1_decimals: 18,
    });
    assert_rejected!(w, w.state.apply_op(&op), TxError::FullExitAmount { .. });
    // An op carrying other decimals than the registry's for the L1 token.
    let Op::FullExit(fe) = op else { unreachable!() };
    let op = Op::FullExit(FullExitOp { amount: 0, l1_decimals: 6, ..fe });
    assert_rejected!(w, w.state.apply_op(&op), TxError::FullExitDecimals { claimed: 6, registered: 18 });
}

#[test]
fn change_pubkey_needs_owner_authorisation() {
    let mut w = World::new(2);
    let a = w.deposit(0, 1, ETH, ETH, ONE).unwrap();
    let u0 = w.users[0].clone();
    let u1 = w.users[1].clone();
    // Signed by another Ethereum key.
    let mut tx = u0.change_pubkey(a, 0, 1, ETH, 0);
    if let Tx::ChangePubKey(t) = &mut tx.tx {
        t.auth = match u1.change_pubkey(a, 0, 1, ETH, 0).tx {
            Tx::ChangePubKey(other) => {
                // u1's eth signature is over u1's key: recovers to u1, not the owner.
                other.auth
            }
            _ => unreachable!(),
        };
    }
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::BadEthAuth);
    // Bound to the chain: an authorisation for chain 2 does not work for chain 1.
    let mut tx = u0.change_pubkey(a, 0, 2, ETH, 0);
    if let Tx::ChangePubKey(t) = &mut tx.tx {
        t.chain = 1;
    }
    let tx = tx.tx.sign(&u0.l2);
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::BadEthAuth);
    // EdDSA signature must come from the new key.
    let mut tx = u0.change_pubkey(a, 0, 1, ETH, 0);
    tx.signature = u1.change_pubkey(a, 0, 1, ETH, 0).signature;
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::BadSignature(_));
    let tx = u0.change_pubkey(a, 3, 1, ETH, 0);
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::BadNonce { .. });
    let tx = u0.change_pubkey(a, 0, 1, ETH, 2 * ONE);
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::InsufficientBalance { .. });
    // Only the canonical signature form the contracts accept: the same owner signature with a
    // high s, or with v in {0, 1}, recovers to the owner but is refused.
    let with_auth = |f: &dyn Fn(&mut [u8; 65])| {
        let mut tx = u0.change_pubkey(a, 0, 1, ETH, 0);
        if let Tx::ChangePubKey(t) = &mut tx.tx
            && let ChangePubKeyAuth::EthSignature(sig) = &mut t.auth
        {
            f(sig);
        }
        tx.tx.sign(&u0.l2)
    };
    let low_v = with_auth(&|sig| sig[64] -= 27);
    assert_rejected!(w, w.state.execute_tx(&low_v), TxError::EthSignatureForm(_));
    let high_s = with_auth(&|sig| {
        let n = alloy_primitives::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let s = alloy_primitives::U256::from_be_slice(&sig[32..64]);
        sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        sig[64] ^= 1; // 27 <-> 28
    });
    assert_rejected!(w, w.state.execute_tx(&high_s), TxError::EthSignatureForm(_));
    // A chain the node does not know.
    let mut tx = u0.change_pubkey(a, 0, 3, ETH, 0);
    if let Tx::ChangePubKey(t) = &mut tx.tx {
        t.chain = 3;
    }
    let tx = tx.tx.sign(&u0.l2);
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::Token(TokenError::UnknownChain(3)));
    // The valid one, with a fee.
    let tx = u0.change_pubkey(a, 0, 1, ETH, 1_000);
    w.state.execute_tx(&tx).unwrap();
    let acc = w.state.account(a).unwrap();
    assert_eq!(acc.pubkey_hash, u0.pubkey.pubkey_hash());
    assert_eq!(acc.nonce, 1);
    // On-chain authorisation: refused until the node has read the owner's fact for exactly
    // this chain, owner, nonce and key.
    let mut onchain = u1.change_pubkey(a, 1, 1, ETH, 0);
    if let Tx::ChangePubKey(t) = &mut onchain.tx {
        t.auth = ChangePubKeyAuth::Onchain;
    }
    let onchain = onchain.tx.sign(&u1.l2);
    assert_rejected!(w, w.state.execute_tx(&onchain), TxError::NoAuthFact { chain: 1, nonce: 1 });
    let owner = u0.address;
    let fact = AuthFact { chain: 1, owner, nonce: 1, pubkey_hash: u1.pubkey.pubkey_hash() };
    for wrong in [
        AuthFact { chain: 2, ..fact },
        AuthFact { nonce: 2, ..fact },
        AuthFact { owner: u1.address, ..fact },
        AuthFact { pubkey_hash: u0.pubkey.pubkey_hash(), ..fact },
    ] {
        assert!(w.state.add_auth_fact(wrong));
        assert_rejected!(w, w.state.execute_tx(&onchain), TxError::NoAuthFact { .. });
    }
    assert!(w.state.add_auth_fact(fact));
    assert!(!w.state.add_auth_fact(fact), "a fact is recorded once");
    w.state.execute_tx(&onchain).unwrap();
    assert_eq!(w.state.account(a).unwrap().pubkey_hash, u1.pubkey.pubkey_hash());
}

#[test]
fn forced_exit_only_for_keyless_targets() {
    let mut w = World::funded(2);
    let a = w.id(0);
    let target_user = User::new(300);
    w.serial += 1;
    w.state.execute_priority(&deposit(1, w.serial, target_user.address, ETH, ETH, 3 * ONE)).unwrap();
    let t = w.state.account_by_owner(&target_user.address).unwrap();
    let fe = |w: &World, target: AccountId, nonce: Nonce, chain: ChainId| {
        let tx = ForcedExit {
            initiator: a,
            initiator_sub: 0,
            target,
            target_sub: 0,
            chain,
            l2_token: ETH,
            l1_token: ETH,
            fee_token: USDC,
            fee: 1_000,
            nonce,
        };
        Tx::ForcedExit(tx).sign(&w.users[0].l2)
    };
    let keyed = fe(&w, w.id(1), 1, 1);
    assert_rejected!(w, w.state.execute_tx(&keyed), TxError::TargetHasKey(_));
    let no_liquidity = fe(&w, t, 1, 2);
    assert_rejected!(w, w.state.execute_tx(&no_liquidity), TxError::InsufficientLiquidity { .. });
    // A target owned by a non-EVM address (only an old contract could have credited it): the
    // contract would refuse to pay it, so the node refuses the forced exit.
    let mut non_evm = [0u8; 32];
    non_evm[3] = 9;
    w.serial += 1;
    w.state.execute_priority(&deposit(1, w.serial, Address(non_evm), ETH, ETH, ONE)).unwrap();
    let foreign = w.state.account_by_owner(&Address(non_evm)).unwrap();
    let to_foreign = fe(&w, foreign, 1, 1);
    assert_rejected!(w, w.state.execute_tx(&to_foreign), TxError::NotEvmAddress(_));
    let ok = fe(&w, t, 1, 1);
    let op = w.state.execute_tx(&ok).unwrap();
    assert!(matches!(op, Op::ForcedExit(ForcedExitOp { amount, .. }) if amount == 3 * ONE));
    assert_eq!(w.state.balance(t, 0, ETH), 0);
    assert_eq!(w.state.pending_fees().get(&USDC), Some(&1_000));
    let again = fe(&w, t, 2, 1);
    assert_rejected!(w, w.state.execute_tx(&again), TxError::NothingToWithdraw);
}

/// Maker B sells 1 ETH at 1,000 USDC; taker A buys in two partial fills.
#[test]
fn order_matching_partial_fills_fees_and_slot_reuse() {
    let mut w = World::funded(3);
    let (m, a, b) = (w.id(0), w.id(1), w.id(2));
    let price = 1_000 * ONE;
    let maker = w.users[2].order(b, 7, 0, ETH, USDC, ONE, price, true);
    let taker = w.users[1].order(a, 3, 0, ETH, USDC, ONE, price, false);
    let half = ONE / 2;
    let fill1 = matching(&w.users[0], m, maker.clone(), taker.clone(), half, (0, 0));
    w.state.execute_tx(&fill1).unwrap();
    assert_eq!(w.state.slot(b, 0, 7), zkl_state::OrderSlot { nonce: 0, residue: half });
    // Maker (seller) receives 500 USDC minus 5 bps; taker receives 0.5 ETH minus 10 bps.
    assert_eq!(w.state.balance(b, 0, USDC), 10_000 * ONE + 500 * ONE - 500 * ONE * 5 / 10_000);
    assert_eq!(w.state.balance(a, 0, ETH), 10 * ONE + half - half * 10 / 10_000);
    assert_eq!(w.state.balance(a, 0, USDC), 9_500 * ONE);
    // Replaying the same matching is rejected: the residue changed.
    assert_rejected!(w, w.state.execute_tx(&fill1), TxError::ResidueMismatch { .. });
    // Overfill.
    let over = matching(&w.users[0], m, maker.clone(), taker.clone(), ONE, (half, half));
    assert_rejected!(w, w.state.execute_tx(&over), TxError::OrderOverfilled { .. });
    let fill2 = matching(&w.users[0], m, maker.clone(), taker.clone(), half, (half, half));
    w.state.execute_tx(&fill2).unwrap();
    // Both orders are filled: the slots move to the next nonce and the orders are dead.
    assert_eq!(w.state.slot(b, 0, 7), zkl_state::OrderSlot { nonce: 1, residue: 0 });
    let again = matching(&w.users[0], m, maker.clone(), taker.clone(), half, (0, 0));
    assert_rejected!(w, w.state.execute_tx(&again), TxError::OrderNonce { expected: 1, got: 0 });
    // The next order in the same slot uses nonce 1.
    let maker2 = w.users[2].order(b, 7, 1, ETH, USDC, ONE, price, true);
    let taker2 = w.users[1].order(a, 3, 1, ETH, USDC, ONE, 2 * price, false);
    let ok = matching(&w.users[0], m, maker2.clone(), taker2.clone(), ONE / 4, (0, 0));
    w.state.execute_tx(&ok).unwrap();
}

#[test]
fn order_matching_rejections() {
    let mut w = World::funded(4);
    let (m, a, b, c) = (w.id(0), w.id(1), w.id(2), w.id(3));
    let price = 1_000 * ONE;
    let maker = w.users[2].order(b, 1, 0, ETH, USDC, ONE, price, true);
    let taker = w.users[1].order(a, 1, 0, ETH, USDC, ONE, price, false);
    let u0 = w.users[0].clone();
    let run = |w: &mut World, tx: SignedTx| w.state.execute_tx(&tx);

    // Not a matcher.
    let tx = matching(&w.users[3], c, maker.clone(), taker.clone(), ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::MatcherNotAllowed(_));
    // Price: quote fill not equal to base fill times the maker price.
    let mut tx = matching(&u0, m, maker.clone(), taker.clone(), ONE, (0, 0));
    if let Tx::OrderMatching(t) = &mut tx.tx {
        t.quote_fill += 1;
    }
    let tx = tx.tx.sign(&u0.l2);
    assert_rejected!(w, run(&mut w, tx), TxError::PriceMismatch);
    // Taker limit: a buyer at 900 cannot take a seller at 1,000.
    let cheap_taker = w.users[1].order(a, 1, 0, ETH, USDC, ONE, 900 * ONE, false);
    let tx = matching(&u0, m, maker.clone(), cheap_taker, ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::PriceLimit);
    // Same side.
    let seller_taker = w.users[1].order(a, 1, 0, ETH, USDC, ONE, price, true);
    let tx = matching(&u0, m, maker.clone(), seller_taker, ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::OrderMismatch(_));
    // Different pairs.
    let other_pair = w.users[1].order(a, 1, 0, USDC, ETH, ONE, price, false);
    let tx = matching(&u0, m, maker.clone(), other_pair, ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::OrderMismatch(_));
    // A forged maker signature.
    let mut forged = maker.clone();
    forged.signature = taker.signature;
    let tx = matching(&u0, m, forged, taker.clone(), ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::BadSignature(_));
    // Wrong order nonce.
    let future = w.users[2].order(b, 1, 5, ETH, USDC, ONE, price, true);
    let tx = matching(&u0, m, future, taker.clone(), ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::OrderNonce { expected: 0, got: 5 });
    // Zero fill.
    let tx = matching(&u0, m, maker.clone(), taker.clone(), 0, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::ZeroFill);
    // The buyer cannot pay: 20 ETH at 1,000 is 20,000 USDC > 10,000.
    let big_maker = w.users[2].order(b, 2, 0, ETH, USDC, 20 * ONE, price, true);
    let big_taker = w.users[1].order(a, 2, 0, ETH, USDC, 20 * ONE, price, false);
    let tx = matching(&u0, m, big_maker, big_taker, 20 * ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::InsufficientBalance { .. });
    // Fee ratio above the maximum.
    let mut greedy = w.users[2].order(b, 3, 0, ETH, USDC, ONE, price, true).order;
    greedy.maker_fee_bps = 200;
    let greedy = greedy.sign(&w.users[2].l2);
    let tx = matching(&u0, m, greedy, taker.clone(), ONE, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::FeeRatio(200));
    // Non-packable order amount.
    let odd = w.users[2].order(b, 4, 0, ETH, USDC, (1 << 35) + 1, price, true);
    let odd_taker = w.users[1].order(a, 4, 0, ETH, USDC, (1 << 35) + 1, price, false);
    let tx = matching(&u0, m, odd, odd_taker, 1_000_000, (0, 0));
    assert_rejected!(w, run(&mut w, tx), TxError::Amount(_));
}

#[test]
fn an_order_checked_once_is_refused_after_its_signer_changes_key() {
    let mut w = World::funded(3);
    let (m, a, b) = (w.id(0), w.id(1), w.id(2));
    let price = 1_000 * ONE;
    let maker = w.users[2].order(b, 1, 0, ETH, USDC, ONE, price, true);
    let taker = w.users[1].order(a, 1, 0, ETH, USDC, ONE, price, false);
    let u0 = w.users[0].clone();
    let half = ONE / 2;
    // The maker's signature is checked (and remembered) in its first fill.
    w.state.execute_tx(&matching(&u0, m, maker.clone(), taker.clone(), half, (0, 0))).unwrap();
    // Its owner moves the account to another L2 key.
    let mut moved = w.users[2].clone();
    let other = User::new(77);
    (moved.l2, moved.pubkey) = (other.l2, other.pubkey);
    let nonce = w.nonce(2);
    w.state.execute_tx(&moved.change_pubkey(b, nonce, 1, ETH, 0)).unwrap();
    // The order signed by the old key no longer fills.
    let tx = matching(&u0, m, maker.clone(), taker.clone(), half, (half, half));
    assert_rejected!(w, w.state.execute_tx(&tx), TxError::BadSignature(_));
}

#[test]
fn blocks_respect_capacity_and_fee_token_limit() {
    let mut w = World::funded(2);
    let (a, _b) = (w.id(0), w.id(1));
    let u0 = w.users[0].clone();
    let to = w.users[1].address;
    w.state.seal_block(1);
    w.state.set_block_params(BlockParams { capacity: 2, max_fee_tokens: 1, max_onchain_ops: 2 });
    w.state.execute_tx(&u0.transfer(a, to, ETH, 1, 10, 1)).unwrap();
    // A second fee token does not fit the block's fee slots.
    let usdc = u0.transfer(a, to, USDC, 1, 10, 2);
    assert_rejected!(w, w.state.execute_tx(&usdc), TxError::TooManyFeeTokens(1));
    // Fee 0 collects nothing and fits.
    w.state.execute_tx(&u0.transfer(a, to, USDC, 1, 0, 2)).unwrap();
    let third = u0.transfer(a, to, ETH, 1, 0, 3);
    assert_rejected!(w, w.state.execute_tx(&third), TxError::BlockFull { needed: 1, free: 0 });
    let block = w.state.seal_block(2);
    assert_eq!(block.pubdata.len(), 2 * CHUNK_BYTES);
    assert_eq!(Op::decode_block(&block.pubdata).unwrap(), block.ops);
    w.state.execute_tx(&third).unwrap();
}

#[test]
fn blocks_limit_onchain_ops() {
    let mut w = World::funded(2);
    let a = w.id(0);
    let u0 = w.users[0].clone();
    w.state.seal_block(1);
    w.state.set_block_params(BlockParams { capacity: 64, max_fee_tokens: 4, max_onchain_ops: 1 });
    w.deposit(1, 1, ETH, ETH, ONE).unwrap();
    w.serial += 1;
    let second = deposit(1, w.serial, w.users[1].address, ETH, ETH, ONE);
    assert_rejected!(w, w.state.execute_priority(&second), TxError::TooManyOnchainOps(1));
    let withdraw = u0.withdraw(a, 1, ETH, ETH, ONE, 0, 1);
    assert_rejected!(w, w.state.execute_tx(&withdraw), TxError::TooManyOnchainOps(1));
    // Ops that are not on-chain still fit.
    w.state.execute_tx(&u0.transfer(a, w.users[1].address, ETH, 1, 0, 1)).unwrap();
    w.state.seal_block(2);
    w.state.execute_priority(&second).unwrap();
}

#[test]
fn blocks_are_sealed_at_the_smallest_capacity_they_fit() {
    let mut w = World::funded(2);
    let (a, to) = (w.id(0), w.users[1].address);
    let u0 = w.users[0].clone();
    w.deposit(0, 2, USDT, USDT, 10_000_000_000).unwrap();
    w.state.seal_block(1);
    w.state.set_block_params(BlockParams::for_capacity(16));
    let ladder = [8, 4];
    assert_eq!(w.state.fitting_capacity(&ladder), 4, "an empty block");
    for nonce in 1..=4 {
        w.state.execute_tx(&u0.transfer(a, to, ETH, 1, 10, nonce)).unwrap();
    }
    assert_eq!(w.state.fitting_capacity(&ladder), 4);
    w.state.execute_tx(&u0.transfer(a, to, ETH, 1, 10, 5)).unwrap();
    assert_eq!(w.state.fitting_capacity(&ladder), 8);
    assert_eq!(w.state.fitting_capacity(&[]), 16);
    assert!(!w.state.can_seal_at(4) && w.state.can_seal_at(8) && w.state.can_seal_at(16) && !w.state.can_seal_at(32));
    // Sealed at 8: the same transition as at 16, with the pubdata cut to 8 chunks.
    let mut twin = w.state.clone();
    let block = w.state.seal_block_at(2, Some(8));
    let full = twin.seal_block(2);
    assert_eq!((block.capacity, block.pubdata.len(), full.capacity), (8, 8 * CHUNK_BYTES, 16));
    assert_eq!(block.commitment.new_root, full.commitment.new_root);
    assert_eq!(block.pubdata[..], full.pubdata[..8 * CHUNK_BYTES]);
    assert_ne!(block.commitment_hash, full.commitment_hash);
    // A capacity the block does not fit (or above its own) is ignored.
    for nonce in 6..=10 {
        w.state.execute_tx(&u0.transfer(a, to, ETH, 1, 10, nonce)).unwrap();
    }
    assert_eq!(w.state.seal_block_at(3, Some(4)).capacity, 16);
    assert_eq!(w.state.seal_block_at(4, Some(32)).capacity, 16);
    // Three fee tokens do not fit the two fee slots of capacities 4 and 8.
    w.state.execute_tx(&u0.transfer(a, to, ETH, 1, 10, 11)).unwrap();
    w.state.execute_tx(&u0.transfer(a, to, USDC, 1, 10, 12)).unwrap();
    assert_eq!(w.state.fitting_capacity(&ladder), 4);
    w.state.execute_tx(&u0.transfer(a, to, USDT, 1, 10, 13)).unwrap();
    assert_eq!(w.state.fitting_capacity(&ladder), 16);
}
