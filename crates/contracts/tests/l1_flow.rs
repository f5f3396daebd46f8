//! The ZkLink contract on two anvil chains at once: every function's happy path and the attacks
//! that must fail. Pubdata is built by hand with `zkl_contracts::ops` (protocol.md §11).

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::signers::SignerSync;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::bindings::ZkLink::ZkLinkErrors;
use zkl_contracts::bindings::{ReentrantToken, RejectingReceiver, TestERC20};
use zkl_contracts::deploy::{Chain, ETH_TOKEN_ID, L2Block, TEST_PROOF_CAPACITY, send, signer};

use crate::assert_revert;
use crate::common;
use common::*;

#[tokio::test]
async fn two_chain_happy_path() {
    let (a, b) = two_chains().await;
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let recipient = Address::repeat_byte(0x42);
    let forced_target = Address::repeat_byte(0x43);
    let cpk_owner = signer(DEV_KEYS[2]).unwrap();

    // ERC-20 with 6 decimals and a 1% transfer fee on chain B, in merge group 10.
    let usdt = TestERC20::deploy(b.provider.clone(), 6, 100).await.unwrap();
    send(b.zklink.registerToken(2, *usdt.address(), 6, 10)).await.unwrap();
    let usdt_user = TestERC20::new(*usdt.address(), zkl_contracts::deploy::provider(&b.anvil, DEV_KEYS[1]).unwrap());
    send(usdt_user.mint(user(), U256::from(1_000_000_000u64))).await.unwrap();
    send(usdt_user.approve(*b.zklink.address(), U256::from(1_000_000_000u64))).await.unwrap();

    // Priority requests: A: deposit 5 ETH; B: deposit 3 ETH, deposit 1000 USDT into group 10, full exit.
    deposit_eth(&a, 5 * ETH, ETH_TOKEN_ID).await;
    deposit_eth(&b, 3 * ETH, ETH_TOKEN_ID).await;
    let zb_user = b.zklink_as(DEV_KEYS[1]).unwrap();
    send(zb_user.depositERC20(
        *usdt.address(),
        alloy::primitives::Uint::from(1_000_000_000u64),
        owner32(user()).into(),
        1,
        10,
    ))
    .await
    .unwrap();
    send(zb_user.requestFullExit(7, 0, ETH_TOKEN_ID, ETH_TOKEN_ID)).await.unwrap();

    // The recorded request hashes are those of the §11 layouts (account / amount zero).
    let dep_a = deposit(1, 0, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 5 * ETH, owner32(user()));
    assert_eq!(a.zklink.priorityRequest(0).call().await.unwrap().hashedPubdata, keccak256(dep_a.pubdata().unwrap()));
    // Fee-on-transfer: 990 USDT arrived, credited as 990e6 · 10^12 L2 units.
    let usdt_l2 = 990_000_000u128 * 1_000_000_000_000;
    let dep_usdt = deposit(2, 0, 1, 2, 10, usdt_l2, owner32(user()));
    assert_eq!(b.zklink.priorityRequest(1).call().await.unwrap().hashedPubdata, keccak256(dep_usdt.pubdata().unwrap()));
    assert_eq!(b.zklink.getToken(2).call().await.unwrap().liquidity, usdt_l2);

    // ChangePubKey authorisations: ECDSA witness on A, on-chain pre-authorisation on B.
    let pkh_a = [0x11u8; 20];
    let pkh_b = [0x22u8; 20];
    let sig = cpk_owner.sign_message_sync(&change_pubkey_message(pkh_a, 0, 9, 1)).unwrap();
    let zb_owner = b.zklink_as(DEV_KEYS[2]).unwrap();
    send(zb_owner.setAuthPubkeyHash(pkh_b.into(), 1)).await.unwrap();

    let receiver = RejectingReceiver::deploy(a.provider.clone()).await.unwrap();
    let fee = fee(1, 0);
    let block_ops = vec![
        deposit(1, 5, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 5 * ETH, owner32(user())),
        transfer(5, 6, 0, 0, ETH_TOKEN_ID, amount(1, 17), fee),
        deposit(2, 5, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 3 * ETH, owner32(user())),
        deposit(2, 5, 1, 2, 10, usdt_l2, owner32(user())),
        Op::OrderMatching(OrderMatchingOp {
            maker: 5,
            taker: 6,
            maker_sub: 0,
            taker_sub: 0,
            maker_is_sell: true,
            maker_slot: 1,
            taker_slot: 2,
            base: 1,
            quote: 10,
            base_fill: amount(1, 18),
            quote_fill: amount(3, 21),
            maker_fee_bps: 5,
            taker_fee_bps: 10,
            maker_order_amount: amount(2, 18),
            taker_order_amount: amount(1, 18),
        }),
        withdraw(1, 5, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, fee, owner32(recipient)),
        withdraw(1, 5, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH / 2, fee, owner32(*receiver.address())),
        forced_exit(2, 5, 0, 6, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH_TOKEN_ID, fee, ETH / 2, owner32(forced_target)),
        change_pubkey(1, 9, 0, pkh_a, cpk_owner.address(), 0, ETH_TOKEN_ID, fee),
        change_pubkey(2, 9, 0, pkh_b, cpk_owner.address(), 1, ETH_TOKEN_ID, fee),
        full_exit(2, 7, 0, owner32(user()), ETH_TOKEN_ID, ETH_TOKEN_ID, ETH / 4, 18),
        transfer_to_new(5, 0, 10, 0, ETH_TOKEN_ID, amount(1, 16), fee, owner32(recipient)),
    ];
    let mut block = L2Block::new(1, 1, root(0xbb), block_ops.to_vec(), CAPACITY);
    block.cpk_witnesses[0] = vec![Bytes::from(sig.as_bytes().to_vec())];
    block.cpk_witnesses[1] = vec![Bytes::new()];

    // Commit on both chains; both compute the same commitment and sync hash.
    let (stored_a, _) = a.commit(&a.genesis(), std::slice::from_ref(&block)).await.unwrap();
    let (stored_b, _) = b.commit(&b.genesis(), std::slice::from_ref(&block)).await.unwrap();
    let (sa, sb) = (&stored_a[0], &stored_b[0]);
    assert_eq!(
        a.zklink.storedBlockHash(1).call().await.unwrap(),
        a.zklink.hashStoredBlockInfo(sa.clone()).call().await.unwrap()
    );
    assert_eq!(
        b.zklink.storedBlockHash(1).call().await.unwrap(),
        b.zklink.hashStoredBlockInfo(sb.clone()).call().await.unwrap()
    );
    assert_eq!(sa.commitment, sb.commitment);
    assert_eq!(sa.syncHash, sb.syncHash);
    assert_eq!((sa.priorityOperations, sb.priorityOperations), (1, 3));
    assert_eq!(b.zklink.priorityQueue().call().await.unwrap().committed, 3);

    // Prove on both.
    a.prove(&pk, std::slice::from_ref(sa)).await.unwrap();
    b.prove(&pk, std::slice::from_ref(sb)).await.unwrap();

    // Executing a final block before the other chain's sync hash arrived fails.
    let wa = block.packed_withdrawals(1).to_vec();
    let wb = block.packed_withdrawals(2).to_vec();
    assert_revert!(a.zklink.executeBlocks(a.execute_infos(&[(sa.clone(), wa.clone())])), "BlockNotFinal");
    a.finalize(sa).await.unwrap();
    assert_revert!(a.zklink.executeBlocks(a.execute_infos(&[(sa.clone(), wa.clone())])), "SyncHashMissing");

    // The oracle relays each chain's sync hash to the other (EIP-712 digest matches the contract's).
    assert_eq!(a.zklink.syncHashDigest(2, 1, sb.syncHash).call().await.unwrap(), a.sync_hash_digest(2, 1, sb.syncHash));
    relay_sync_hash(&a, &b, sb).await;
    relay_sync_hash(&b, &a, sa).await;

    let before_recipient = balance(&a, recipient).await;
    let before_user_b = balance(&b, user()).await;
    a.execute(&[(sa.clone(), wa)]).await.unwrap();
    b.execute(&[(sb.clone(), wb)]).await.unwrap();
    assert_eq!(balance(&a, recipient).await - before_recipient, U256::from(ETH));
    assert_eq!(balance(&b, forced_target).await, U256::from(ETH / 2));
    assert_eq!(balance(&b, user()).await - before_user_b, U256::from(ETH / 4));
    assert_eq!(b.zklink.priorityQueue().call().await.unwrap().first, 3);
    assert_eq!(a.zklink.blockCounters().call().await.unwrap().executed, 1);
    assert_eq!(a.zklink.getToken(ETH_TOKEN_ID).call().await.unwrap().liquidity, 5 * ETH - ETH - ETH / 2);

    // The rejecting receiver's withdrawal became a pending balance; it can be claimed once.
    let who = *receiver.address();
    assert_eq!(a.zklink.pendingBalance(who, ETH_TOKEN_ID).call().await.unwrap(), ETH / 2);
    assert_revert!(a.zklink.withdrawPendingBalance(who, ETH_TOKEN_ID, ETH / 2), "TransferFailed");
    send(receiver.setOpen(true)).await.unwrap();
    send(a.zklink.withdrawPendingBalance(who, ETH_TOKEN_ID, ETH / 2)).await.unwrap();
    assert_eq!(balance(&a, who).await, U256::from(ETH / 2));
    assert_revert!(a.zklink.withdrawPendingBalance(who, ETH_TOKEN_ID, ETH / 2), "InsufficientPendingBalance");
}

#[tokio::test]
async fn commit_attacks_fail() {
    let a = Chain::deploy(single(2001)).await.unwrap();
    deposit_eth(&a, 2 * ETH, ETH_TOKEN_ID).await;
    let good = [deposit(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 2 * ETH, owner32(user()))];
    let block = L2Block::new(1, 1, root(1), good.to_vec(), CAPACITY);
    let (infos, _) = a.prepare_commit(&a.genesis(), std::slice::from_ref(&block)).unwrap();

    // Not a validator.
    let attacker = a.zklink_as(DEV_KEYS[3]).unwrap();
    assert_revert!(attacker.commitBlocks(a.genesis(), infos.clone()), "NotValidator");

    // Deposit that does not match the queue (amount, owner, token, sub changed).
    for bad_op in [
        deposit(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 3 * ETH, owner32(user())),
        deposit(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 2 * ETH, owner32(Address::repeat_byte(9))),
        deposit(1, 3, 1, ETH_TOKEN_ID, ETH_TOKEN_ID, 2 * ETH, owner32(user())),
    ] {
        let bad = L2Block::new(1, 1, root(1), [bad_op].to_vec(), CAPACITY);
        let (bad_infos, _) = a.prepare_commit(&a.genesis(), &[bad]).unwrap();
        assert_revert!(a.zklink.commitBlocks(a.genesis(), bad_infos), "PriorityOpMismatch");
    }
    // More deposits than requested.
    let two = [good[0], good[0]];
    let bad = L2Block::new(1, 1, root(1), two.to_vec(), CAPACITY);
    let (bad_infos, _) = a.prepare_commit(&a.genesis(), &[bad]).unwrap();
    assert_revert!(a.zklink.commitBlocks(a.genesis(), bad_infos), "PriorityQueueExhausted");
    // Wrong previous block.
    let mut wrong_prev = a.genesis();
    wrong_prev.stateRoot = root(9);
    assert_revert!(a.zklink.commitBlocks(wrong_prev, infos.clone()), "StoredBlockMismatch");
    // ChangePubKey with a signature by someone else, and without any authorisation.
    let owner = signer(DEV_KEYS[2]).unwrap();
    let pkh = [7u8; 20];
    let forged = signer(DEV_KEYS[3]).unwrap().sign_message_sync(&change_pubkey_message(pkh, 0, 4, 1)).unwrap();
    let cpk = change_pubkey(1, 4, 0, pkh, owner.address(), 0, ETH_TOKEN_ID, fee(0, 0));
    for witness in [Bytes::from(forged.as_bytes().to_vec()), Bytes::new()] {
        let mut bad = L2Block::new(1, 1, root(1), [good[0], cpk].to_vec(), CAPACITY);
        bad.cpk_witnesses[0] = vec![witness];
        let (bad_infos, _) = a.prepare_commit(&a.genesis(), &[bad]).unwrap();
        assert_revert!(a.zklink.commitBlocks(a.genesis(), bad_infos), "ChangePubKeyAuth");
    }
    // Unknown op code in the pubdata.
    let mut junk = block.pubdata().unwrap();
    junk[60] = 9;
    let mut bad_infos = infos.clone();
    bad_infos[0].pubdata = junk.into();
    assert_revert!(a.zklink.commitBlocks(a.genesis(), bad_infos), "UnknownOp");
    // A 3-chunk op starting in the last chunk runs past the end of the pubdata.
    let mut overrun = block.pubdata().unwrap();
    overrun[(CAPACITY - 1) * CHUNK_BYTES] = code::TRANSFER_TO_NEW;
    let mut bad_infos = infos.clone();
    bad_infos[0].pubdata = overrun.into();
    assert_revert!(a.zklink.commitBlocks(a.genesis(), bad_infos), "InvalidPubdata");

    // Payouts the token registry forbids (protocol.md section 16): an unregistered L1 token,
    // an L1 token that does not fund the L2 token, an amount finer than the L1 token's
    // precision (token 5 has 6 decimals), a non-EVM recipient.
    send(a.zklink.registerToken(5, Address::repeat_byte(5), 6, 0)).await.unwrap();
    let to = owner32(user());
    let mut wide = to;
    wide[0] = 1;
    for (bad_op, error) in [
        (withdraw(1, 3, 0, 9, 9, ETH, fee(0, 0), to), "TokenNotRegistered"),
        (withdraw(1, 3, 0, 100, ETH_TOKEN_ID, ETH, fee(0, 0), to), "InvalidTokenPair"),
        (withdraw(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, fee(0, 0), wide), "InvalidRecipient"),
        (withdraw(1, 3, 0, 5, 5, ETH + 1, fee(0, 0), to), "InvalidPubdata"),
        (forced_exit(1, 3, 0, 4, 0, 100, ETH_TOKEN_ID, ETH_TOKEN_ID, fee(0, 0), ETH, to), "InvalidTokenPair"),
    ] {
        let bad = L2Block::new(1, 1, root(1), [good[0], bad_op].to_vec(), CAPACITY);
        let (bad_infos, _) = a.prepare_commit(&a.genesis(), &[bad]).unwrap();
        let err = a.zklink.commitBlocks(a.genesis(), bad_infos).call().await.expect_err(error);
        let text = format!("{:?}", err.as_decoded_interface_error::<ZkLinkErrors>());
        assert!(text.starts_with(&format!("Some({error}")), "expected {error}, got {text} ({err})");
    }

    // The honest commit goes through; it can be reverted and committed again.
    let (stored, _) = a.commit(&a.genesis(), std::slice::from_ref(&block)).await.unwrap();
    assert_revert!(attacker.revertBlocks(stored.clone()), "NotValidator");
    send(a.zklink.revertBlocks(stored.clone())).await.unwrap();
    assert_eq!(a.zklink.blockCounters().call().await.unwrap().committed, 0);
    assert_eq!(a.zklink.priorityQueue().call().await.unwrap().committed, 0);
    let (stored, _) = a.commit(&a.genesis(), std::slice::from_ref(&block)).await.unwrap();
    assert_eq!(a.zklink.blockCounters().call().await.unwrap().committed, 1);

    // Execute before prove.
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    assert_revert!(a.zklink.executeBlocks(a.execute_infos(&[(stored[0].clone(), vec![])])), "BlockNotProven");
    // Invalid proof: a proof of another commitment (tampered public input), and a tampered proof.
    let mut other = stored[0].clone();
    other.commitment = B256::repeat_byte(5);
    let wrong_input = zkl_contracts::deploy::test_proof(&pk, &other).unwrap();
    assert_revert!(a.zklink.proveBlocks(stored.clone(), vec![wrong_input], TEST_PROOF_CAPACITY), "InvalidProof");
    let mut tampered = zkl_contracts::deploy::test_proof(&pk, &stored[0]).unwrap();
    tampered[7] += U256::from(1u64);
    assert_revert!(a.zklink.proveBlocks(stored.clone(), vec![tampered], TEST_PROOF_CAPACITY), "InvalidProof");
    // A stored block whose commitment was swapped for the one a proof exists for.
    assert_revert!(
        a.zklink.proveBlocks(vec![other.clone()], vec![wrong_input], TEST_PROOF_CAPACITY),
        "StoredBlockMismatch"
    );
    a.prove(&pk, &stored).await.unwrap();
    assert_revert!(a.zklink.executeBlocks(a.execute_infos(&[(stored[0].clone(), vec![])])), "BlockNotFinal");
    a.finalize(&stored[0]).await.unwrap();
    // Withdrawals that were not recorded.
    let fake =
        zkl_types::block::Withdrawal { to: user().into_array(), l1_token: ETH_TOKEN_ID, amount: ETH }.packed().to_vec();
    assert_revert!(a.zklink.executeBlocks(a.execute_infos(&[(stored[0].clone(), fake)])), "WithdrawalsMismatch");
    a.execute(&[(stored[0].clone(), vec![])]).await.unwrap();
    // Executed blocks cannot be reverted.
    assert_revert!(a.zklink.revertBlocks(stored.clone()), "TooManyBlocksToRevert");
}

#[tokio::test]
async fn oracle_and_deposit_attacks_fail() {
    let (a, b) = two_chains().await;
    let sync = B256::repeat_byte(0x77);
    // Too few signatures.
    let one = a.sign_sync_hash(&ORACLE_KEYS[..1], 2, 1, sync).unwrap();
    assert_revert!(a.zklink.receiveSyncHash(2, 1, sync, one), "NotEnoughSignatures");
    // A forged signature (not a registered signer).
    let forged = a.sign_sync_hash(&[ORACLE_KEYS[0], DEV_KEYS[3]], 2, 1, sync).unwrap();
    assert_revert!(a.zklink.receiveSyncHash(2, 1, sync, forged), "InvalidSignature");
    // The same signer twice, and the right signers out of order.
    let dup = a.sign_sync_hash(&[ORACLE_KEYS[0], ORACLE_KEYS[0]], 2, 1, sync).unwrap();
    assert_revert!(a.zklink.receiveSyncHash(2, 1, sync, dup), "SignersNotSorted");
    let mut reversed = a.sign_sync_hash(&ORACLE_KEYS[..2], 2, 1, sync).unwrap();
    reversed.reverse();
    assert_revert!(a.zklink.receiveSyncHash(2, 1, sync, reversed), "SignersNotSorted");
    // Signatures made for chain B's contract (other domain), or for another hash / block / chain.
    let for_b = b.sign_sync_hash(&ORACLE_KEYS[..2], 2, 1, sync).unwrap();
    assert_revert!(a.zklink.receiveSyncHash(2, 1, sync, for_b), "InvalidSignature");
    let good = a.sign_sync_hash(&ORACLE_KEYS[..2], 2, 1, sync).unwrap();
    assert_revert!(a.zklink.receiveSyncHash(2, 1, B256::repeat_byte(0x78), good.clone()), "InvalidSignature");
    assert_revert!(a.zklink.receiveSyncHash(2, 2, sync, good.clone()), "InvalidSignature");
    assert_revert!(a.zklink.receiveSyncHash(1, 1, sync, good.clone()), "InvalidChain");
    // Accepted once, then a replay fails.
    send(a.zklink.receiveSyncHash(2, 1, sync, good.clone())).await.unwrap();
    assert!(a.zklink.isSyncHashReceived(2, sync).call().await.unwrap());
    assert_revert!(a.zklink.receiveSyncHash(2, 1, sync, good), "SyncHashAlreadyReceived");

    // Deposits: unregistered token, wrong L2 token, paused token, bad sub-account, zero amount.
    let z = a.zklink_as(DEV_KEYS[1]).unwrap();
    let to: B256 = owner32(user()).into();
    let token = TestERC20::deploy(a.provider.clone(), 18, 0).await.unwrap();
    assert_revert!(
        z.depositERC20(*token.address(), alloy::primitives::Uint::from(1u64), to, 0, 5),
        "TokenNotRegistered"
    );
    assert_revert!(z.depositETH(to, 0, 5).value(U256::from(1u64)), "InvalidTokenPair");
    assert_revert!(z.depositETH(to, 32, ETH_TOKEN_ID).value(U256::from(1u64)), "InvalidSubAccount");
    assert_revert!(z.depositETH(to, 0, ETH_TOKEN_ID), "ZeroAmount");
    assert_revert!(z.depositETH(B256::ZERO, 0, ETH_TOKEN_ID).value(U256::from(1u64)), "InvalidRecipient");
    assert_revert!(z.requestFullExit(1 << 24, 0, ETH_TOKEN_ID, ETH_TOKEN_ID), "InvalidAccount");
    assert_revert!(z.requestFullExit(1, 0, 3, 3), "TokenNotRegistered");
    send(a.zklink.setTokenPaused(ETH_TOKEN_ID, true)).await.unwrap();
    assert_revert!(z.depositETH(to, 0, ETH_TOKEN_ID).value(U256::from(1u64)), "TokenPaused");
    // Governance is the governor's only.
    assert_revert!(z.setTokenPaused(ETH_TOKEN_ID, false), "NotGovernor");
    assert_revert!(z.registerToken(9, Address::repeat_byte(1), 18, 0), "NotGovernor");
    assert_revert!(z.setValidator(user(), true), "NotGovernor");
    assert_revert!(z.setOracleSigners(vec![user()], 1), "NotGovernor");
    // Liquidity cap: 2^112 − 1 L2 units per token.
    send(a.zklink.setTokenPaused(ETH_TOKEN_ID, false)).await.unwrap();
    let big = TestERC20::deploy(a.provider.clone(), 0, 0).await.unwrap();
    send(a.zklink.registerToken(3, *big.address(), 0, 0)).await.unwrap();
    send(big.mint(a.governor, U256::from(u128::MAX))).await.unwrap();
    send(big.approve(*a.zklink.address(), U256::from(u128::MAX))).await.unwrap();
    // 2^112 / 10^18 ≈ 5.19e15 whole tokens: 6e15 exceeds the cap.
    assert_revert!(
        a.zklink.depositERC20(*big.address(), alloy::primitives::Uint::from(6_000_000_000_000_000u64), to, 0, 3),
        "LiquidityCapExceeded"
    );
    send(a.zklink.depositERC20(*big.address(), alloy::primitives::Uint::from(5_000_000_000_000_000u64), to, 0, 3))
        .await
        .unwrap();

    // A token that re-enters depositERC20 from transferFrom is stopped by the guard.
    let evil = ReentrantToken::deploy(a.provider.clone()).await.unwrap();
    send(a.zklink.registerToken(4, *evil.address(), 18, 0)).await.unwrap();
    send(evil.mint(a.governor, U256::from(ETH))).await.unwrap();
    send(evil.mint(*evil.address(), U256::from(ETH))).await.unwrap();
    let inner =
        a.zklink.depositERC20(*evil.address(), alloy::primitives::Uint::from(1u64), to, 0, 4).calldata().clone();
    // Unarmed, the deposit goes through; armed, the inner call hits the guard (`Reentrancy`), which
    // the outer call reports as a failed token transfer.
    send(a.zklink.depositERC20(*evil.address(), alloy::primitives::Uint::from(1u64), to, 0, 4)).await.unwrap();
    send(evil.arm(*a.zklink.address(), inner)).await.unwrap();
    assert_revert!(
        a.zklink.depositERC20(*evil.address(), alloy::primitives::Uint::from(1u64), to, 0, 4),
        "TransferFailed"
    );
    assert_eq!(a.zklink.getToken(4).call().await.unwrap().liquidity, 1);
}

#[tokio::test]
async fn exodus_mode_after_expired_request() {
    let a = Chain::deploy(single(3001)).await.unwrap();
    let z = a.zklink_as(DEV_KEYS[1]).unwrap();
    // Nothing pending: no exodus.
    assert_revert!(z.activateExodusMode(), "NoExpiredRequest");
    send(z.requestFullExit(3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID)).await.unwrap();
    assert_revert!(z.activateExodusMode(), "NoExpiredRequest");
    a.provider.anvil_increase_time(EXPIRATION + 1).await.unwrap();
    a.provider.evm_mine(None).await.unwrap();
    send(z.activateExodusMode()).await.unwrap();
    assert!(a.zklink.exodusMode().call().await.unwrap());
    // Commits, deposits and new requests are refused from now on.
    let block = L2Block::new(1, 1, root(1), vec![], CAPACITY);
    let (infos, _) = a.prepare_commit(&a.genesis(), &[block]).unwrap();
    assert_revert!(a.zklink.commitBlocks(a.genesis(), infos), "ExodusMode");
    assert_revert!(z.depositETH(owner32(user()).into(), 0, ETH_TOKEN_ID).value(U256::from(1u64)), "ExodusMode");
    assert_revert!(z.activateExodusMode(), "ExodusMode");
}
