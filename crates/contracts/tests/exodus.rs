//! Finality and exodus on the ZkLink contract (protocol.md section 18): execution needs the
//! oracle's finality attestation, a block every chain may execute is never reverted, in exodus
//! anyone can bring every chain to what any chain executed before claims open, and unexecuted
//! deposits go back to whoever paid for them.

use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::bindings::ZkLink::StoredBlockInfo;
use zkl_contracts::block::final_digest;
use zkl_contracts::deploy::{Chain, ETH_TOKEN_ID, L2Block, send, signer};

use crate::assert_revert;
use crate::common;
use common::*;

/// Commits, proves and relays both ways one block on both chains; returns the stored infos.
async fn committed_and_synced(a: &Chain, b: &Chain, block: &L2Block) -> (StoredBlockInfo, StoredBlockInfo) {
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let (sa, _) = a.commit(&a.genesis(), std::slice::from_ref(block)).await.unwrap();
    let (sb, _) = b.commit(&b.genesis(), std::slice::from_ref(block)).await.unwrap();
    a.prove(&pk, &sa).await.unwrap();
    b.prove(&pk, &sb).await.unwrap();
    relay_sync_hash(a, b, &sb[0]).await;
    relay_sync_hash(b, a, &sa[0]).await;
    (sa[0].clone(), sb[0].clone())
}

async fn advance(c: &Chain, seconds: u64) {
    c.provider.anvil_increase_time(seconds).await.unwrap();
    c.provider.evm_mine(None).await.unwrap();
}

#[tokio::test]
async fn execution_needs_the_final_attestation_which_serves_every_chain() {
    let (a, b) = two_chains().await;
    let block = L2Block::new(1, 1, root(1), vec![], CAPACITY);
    let (sa, sb) = committed_and_synced(&a, &b, &block).await;
    // Every sync hash is there, but nobody attested that the other chain holds them too.
    assert_revert!(a.zklink.executeBlocks(a.execute_infos(&[(sa.clone(), vec![])])), "BlockNotFinal");

    assert_eq!(a.zklink.finalDigest(1, sa.syncHash).call().await.unwrap(), final_digest(1, sa.syncHash));
    let sigs = a.sign_final(&sa).unwrap();
    assert_revert!(a.zklink.receiveFinalBlock(sa.clone(), sigs[..1].to_vec()), "NotEnoughSignatures");
    // Signatures over another block's attestation recover to other addresses.
    let other = sign_sorted_final(2, sa.syncHash);
    assert_revert!(a.zklink.receiveFinalBlock(sa.clone(), other), "InvalidSignature");
    let mut forged = sa.clone();
    forged.syncHash = keccak256("another history");
    assert_revert!(a.zklink.receiveFinalBlock(forged, sigs.clone()), "StoredBlockMismatch");

    // Anyone may carry the attestation: a user brings the same signatures to both chains.
    let za = a.zklink_as(DEV_KEYS[3]).unwrap();
    let zb = b.zklink_as(DEV_KEYS[3]).unwrap();
    send(za.receiveFinalBlock(sa.clone(), sigs.clone())).await.unwrap();
    send(zb.receiveFinalBlock(sb.clone(), sigs.clone())).await.unwrap();
    assert_revert!(za.receiveFinalBlock(sa.clone(), sigs), "AlreadyFinal");
    // Outside exodus only validators execute.
    assert_revert!(za.executeBlocks(a.execute_infos(&[(sa.clone(), vec![])])), "NotValidator");
    a.execute(&[(sa, vec![])]).await.unwrap();
    b.execute(&[(sb, vec![])]).await.unwrap();
    assert_eq!(a.zklink.blockCounters().call().await.unwrap().executed, 1);
    assert_eq!(b.zklink.blockCounters().call().await.unwrap().executed, 1);
}

fn sign_sorted_final(block: u32, sync_hash: alloy::primitives::B256) -> Vec<Bytes> {
    zkl_contracts::deploy::sign_sorted(&ORACLE_KEYS[..2], final_digest(block, sync_hash)).unwrap()
}

/// A chain that holds every other chain's sync hash of a block may see it executed elsewhere, so
/// it refuses to revert it; a chain missing one still can (that is the path of a refused commit).
#[tokio::test]
async fn synced_and_final_blocks_are_never_reverted() {
    let (a, b) = two_chains().await;
    let block = L2Block::new(1, 1, root(1), vec![], CAPACITY);
    let (sa, _) = a.commit(&a.genesis(), std::slice::from_ref(&block)).await.unwrap();
    let (sb, _) = b.commit(&b.genesis(), std::slice::from_ref(&block)).await.unwrap();
    // The oracle carried B's sync hash to A, then stopped: A is synced, B is not.
    relay_sync_hash(&a, &b, &sb[0]).await;
    assert_revert!(a.zklink.revertBlocks(sa.clone()), "BlockSynced");
    send(b.zklink.revertBlocks(sb.clone())).await.unwrap();
    assert_eq!(b.zklink.blockCounters().call().await.unwrap().committed, 0);

    // One chain alone: a block attested final is never reverted.
    let c = Chain::deploy(single(5003)).await.unwrap();
    let (sc, _) = c.commit(&c.genesis(), std::slice::from_ref(&block)).await.unwrap();
    let second = L2Block::new(2, 2, root(2), vec![], CAPACITY);
    let (sc2, _) = c.commit(&sc[0], std::slice::from_ref(&second)).await.unwrap();
    c.finalize(&sc[0]).await.unwrap();
    // Block 2 is not final and goes; block 1 stays.
    send(c.zklink.revertBlocks(sc2.clone())).await.unwrap();
    assert_revert!(c.zklink.revertBlocks(sc.clone()), "BlockSynced");
}

/// The adversarial timing of issue 14: the operator and the oracle stop after chain A executed a
/// block but before chain B did (B never got the finality attestation). B must not be left
/// behind: its operator cannot revert the block, and in exodus anyone carries A's attestation to
/// B, proves with the public proof and executes, so both chains' claims use the same root.
#[tokio::test]
async fn in_exodus_anyone_brings_a_chain_to_what_another_executed() {
    let (a, b) = two_chains().await;
    let recipient = Address::repeat_byte(0x51);
    deposit_eth(&b, 2 * ETH, ETH_TOKEN_ID).await;
    let ops = vec![
        deposit(2, 2, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 2 * ETH, owner32(user())),
        withdraw(2, 2, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH / 2, 0, owner32(recipient)),
    ];
    let block = L2Block::new(1, 1, root(1), ops, CAPACITY);
    let (sa, sb) = committed_and_synced(&a, &b, &block).await;
    let final_sigs = a.sign_final(&sa).unwrap();
    send(a.zklink.receiveFinalBlock(sa.clone(), final_sigs.clone())).await.unwrap();
    a.execute(&[(sa.clone(), block.packed_withdrawals(1).to_vec())]).await.unwrap();
    // The operator would like B to forget block 1.
    assert_revert!(b.zklink.revertBlocks(vec![sb.clone()]), "BlockSynced");

    // The deposit's request on B expires unexecuted: anyone activates exodus there.
    advance(&b, EXPIRATION + 1).await;
    let user_b = b.zklink_as(DEV_KEYS[3]).unwrap();
    send(user_b.activateExodusMode()).await.unwrap();
    let status = b.zklink.exodusStatus().call().await.unwrap();
    assert!(status.active);
    assert_eq!(status.claimsOpenAt, status.activatedAt + EXPIRATION);
    assert_eq!(status.totalBlocksFinal, 0);
    let infos = b.execute_infos(&[(sb.clone(), block.packed_withdrawals(2).to_vec())]);
    assert_revert!(user_b.executeBlocks(infos.clone()), "BlockNotFinal");
    // A user carries A's attestation over and executes: B pays block 1's withdrawal too.
    send(user_b.receiveFinalBlock(sb.clone(), final_sigs)).await.unwrap();
    send(user_b.executeBlocks(infos.clone())).await.unwrap();
    assert_eq!(b.provider.get_balance(recipient).await.unwrap(), U256::from(ETH / 2));
    assert_eq!(b.zklink.blockCounters().call().await.unwrap().executed, 1);
    assert_eq!(b.zklink.priorityQueue().call().await.unwrap().first, 1);
    // Commits stay closed; claims wait for the end of the period, execution stops with it.
    let (commit, _) = b.prepare_commit(&sb, &[L2Block::new(2, 2, root(2), vec![], CAPACITY)]).unwrap();
    assert_revert!(b.zklink.commitBlocks(sb.clone(), commit), "ExodusMode");
    let none = [0u128; 4];
    let proof = [U256::ZERO; 8];
    assert_revert!(user_b.performExodus(sb.clone(), 2, 0, ETH_TOKEN_ID, none, proof), "ExodusSyncPeriod");
    advance(&b, EXPIRATION).await;
    assert_revert!(user_b.executeBlocks(infos), "ExodusClaimsOpen");
    assert_revert!(user_b.performExodus(b.genesis(), 2, 0, ETH_TOKEN_ID, none, proof), "StoredBlockMismatch");
    assert_revert!(user_b.performExodus(sb.clone(), 1 << 24, 0, ETH_TOKEN_ID, none, proof), "InvalidAccount");
    // The harness's exit verifier placeholder answers no five-input call: nothing is paid.
    assert!(user_b.performExodus(sb, 2, 0, ETH_TOKEN_ID, none, proof).call().await.is_err());
}

/// Deposits the operator never executed are refunded, once claims are open, to the account that
/// paid for them (not to the L2 recipient); executed deposits, other requests and a second refund
/// are refused.
#[tokio::test]
async fn unexecuted_deposits_are_refunded_to_their_sender() {
    let c = Chain::deploy(single(5004)).await.unwrap();
    let payer = signer(DEV_KEYS[2]).unwrap().address();
    let zc_payer = c.zklink_as(DEV_KEYS[2]).unwrap();
    let zc_user = c.zklink_as(DEV_KEYS[3]).unwrap();
    // Request 0 is executed in block 1; requests 1 (a deposit by `payer` to `user`) and 2 (a full
    // exit) never are.
    deposit_eth(&c, ETH, ETH_TOKEN_ID).await;
    let block =
        L2Block::new(1, 1, root(1), vec![deposit(1, 2, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, owner32(user()))], CAPACITY);
    let (stored, _) = settle_single(&c, &c.genesis(), &[block]).await;
    send(zc_payer.depositETH(owner32(user()).into(), 0, ETH_TOKEN_ID).value(U256::from(3 * ETH))).await.unwrap();
    send(zc_user.requestFullExit(2, 0, ETH_TOKEN_ID, ETH_TOKEN_ID)).await.unwrap();
    let executed = deposit(1, 0, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, owner32(user())).pubdata().unwrap();
    let pending = deposit(1, 0, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 3 * ETH, owner32(user())).pubdata().unwrap();
    let exit = full_exit(1, 2, 0, owner32(signer(DEV_KEYS[3]).unwrap().address()), ETH_TOKEN_ID, ETH_TOKEN_ID, 0, 18);
    let exit = exit.pubdata().unwrap();
    assert_eq!(c.zklink.priorityRequest(1).call().await.unwrap().sender, payer);

    assert_revert!(zc_user.cancelOutstandingDeposit(1, pending.clone().into()), "NotExodusMode");
    advance(&c, EXPIRATION + 1).await;
    send(zc_user.activateExodusMode()).await.unwrap();
    assert_revert!(zc_user.cancelOutstandingDeposit(1, pending.clone().into()), "ExodusSyncPeriod");
    advance(&c, EXPIRATION).await;
    assert_revert!(zc_user.cancelOutstandingDeposit(0, executed.into()), "PriorityOpMismatch");
    assert_revert!(zc_user.cancelOutstandingDeposit(1, exit.clone().into()), "PriorityOpMismatch");
    assert_revert!(zc_user.cancelOutstandingDeposit(2, exit.into()), "NotADeposit");
    assert_revert!(zc_user.cancelOutstandingDeposit(3, pending.clone().into()), "PriorityOpMismatch");

    let before = c.provider.get_balance(payer).await.unwrap();
    let liquidity = c.zklink.getToken(ETH_TOKEN_ID).call().await.unwrap().liquidity;
    // Anyone may trigger it; the payer is paid, exactly.
    send(zc_user.cancelOutstandingDeposit(1, pending.clone().into())).await.unwrap();
    assert_eq!(c.provider.get_balance(payer).await.unwrap() - before, U256::from(3 * ETH));
    assert_eq!(c.zklink.getToken(ETH_TOKEN_ID).call().await.unwrap().liquidity, liquidity - 3 * ETH);
    assert_revert!(zc_user.cancelOutstandingDeposit(1, pending.into()), "PriorityOpMismatch");
    assert_eq!(stored.len(), 1);
}

/// Every chain knows every member of a merge group (the exodus pay-out divides by the group's
/// liquidity on all chains); the registry keeps the declarations consistent and frozen in exodus.
#[tokio::test]
async fn exodus_pools_list_every_member_of_a_group() {
    let c = Chain::deploy(single(5005)).await.unwrap();
    assert_eq!(c.zklink.exodusPool(ETH_TOKEN_ID).call().await.unwrap(), [ETH_TOKEN_ID, 0, 0, 0]);
    // USDT (7) is registered on another chain in group USD (20); USDC (6) here.
    send(c.zklink.declarePoolMember(7, 20)).await.unwrap();
    assert_eq!(c.zklink.exodusPool(20).call().await.unwrap(), [7, 0, 0, 0]);
    c.add_test_token(6, 6, 20, &[], U256::ZERO).await.unwrap();
    for t in [20, 6, 7] {
        assert_eq!(c.zklink.exodusPool(t).call().await.unwrap(), [7, 6, 0, 0], "pool of {t}");
    }
    // A declared member registered here must keep its group; a group is never a token.
    assert_revert!(c.zklink.registerToken(7, Address::repeat_byte(7), 6, 0), "InvalidConfig");
    assert_revert!(c.zklink.declarePoolMember(7, 21), "InvalidConfig");
    assert_revert!(c.zklink.declarePoolMember(ETH_TOKEN_ID, 20), "TokenAlreadyRegistered");
    assert_revert!(c.zklink.declarePoolMember(20, 21), "InvalidConfig");
    send(c.zklink.registerToken(7, Address::repeat_byte(7), 6, 20)).await.unwrap();
    send(c.zklink.declarePoolMember(8, 20)).await.unwrap();
    send(c.zklink.declarePoolMember(9, 20)).await.unwrap();
    assert_eq!(c.zklink.exodusPool(20).call().await.unwrap(), [7, 6, 8, 9]);
    assert_revert!(c.zklink.declarePoolMember(10, 20), "InvalidConfig");
    let z = c.zklink_as(DEV_KEYS[1]).unwrap();
    assert_revert!(z.declarePoolMember(11, 21), "NotGovernor");

    send(z.requestFullExit(3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID)).await.unwrap();
    advance(&c, EXPIRATION + 1).await;
    send(z.activateExodusMode()).await.unwrap();
    assert_revert!(c.zklink.declarePoolMember(11, 21), "ExodusMode");
    assert_revert!(c.zklink.registerToken(12, Address::repeat_byte(12), 6, 0), "ExodusMode");
}
