//! Attacks on the ZkLink contract by a validator (mint, halt) and by users (halt settlement for
//! the price of a fee): each must fail. Pubdata is built by hand with `zkl_contracts::ops`.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::signers::SignerSync;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::bindings::ZkLink::{self, ZkLinkErrors};
use zkl_contracts::bindings::{MisbehavingToken, PoseidonT6, ReentrantReceiver, ReturnBomb, TestERC20, TestVerifier};
use zkl_contracts::deploy::{Chain, ETH_TOKEN_ID, L2Block, send, signer};

use crate::assert_revert;
use crate::common;
use common::*;

fn no_fee() -> u128 {
    0
}

/// Asserts that committing `block` after `prev` on `c` reverts with `name`.
async fn assert_commit_refused(c: &Chain, block: &L2Block, name: &str) {
    let (infos, _) = c.prepare_commit(&c.genesis(), std::slice::from_ref(block)).unwrap();
    let err = c.zklink.commitBlocks(c.genesis(), infos).call().await.expect_err(name);
    let text = format!("{:?}", err.as_decoded_interface_error::<ZkLinkErrors>());
    assert!(text.starts_with(&format!("Some({name}")), "expected {name}, got {text} ({err})");
}

/// A validator cannot put on-chain ops of a chain that has no contract into a block: nobody
/// would check a deposit against a queue (minting) or a ChangePubKey's authorisation (taking
/// over any account). Both contracts refuse the commit; a block without them commits.
#[tokio::test]
async fn on_chain_ops_of_unconnected_chains_are_refused() {
    let (a, b) = two_chains().await;
    let victim = Address::repeat_byte(0x55);
    let attacker = Address::repeat_byte(0x66);
    for phantom in [3u8, 4] {
        for op in [
            // 1,000 ETH credited to the attacker's account 5 "from chain 3".
            deposit(phantom, 5, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 1_000 * ETH, owner32(attacker)),
            // The victim's account 6 gets the attacker's key "authorised on chain 3".
            change_pubkey(phantom, 6, 0, [0x66; 20], victim, 0, ETH_TOKEN_ID, no_fee()),
        ] {
            let block = L2Block::new(1, 1, root(1), [op].to_vec(), CAPACITY);
            let name = format!("OnchainOpsOfUnknownChain({phantom})");
            let (infos, _) = a.prepare_commit(&a.genesis(), std::slice::from_ref(&block)).unwrap();
            for (c, infos) in
                [(&a, infos), (&b, b.prepare_commit(&b.genesis(), std::slice::from_ref(&block)).unwrap().0)]
            {
                let err = c.zklink.commitBlocks(c.genesis(), infos).call().await.expect_err("phantom chain");
                let decoded = err.as_decoded_interface_error::<ZkLinkErrors>();
                assert_eq!(
                    format!("{decoded:?}"),
                    format!("Some({}(OnchainOpsOfUnknownChain {{ chain: {phantom} }}))", "OnchainOpsOfUnknownChain"),
                    "{name} on chain {}",
                    c.config.l2_chain
                );
            }
        }
    }
    // The same ops for the connected chains are checked as usual (here: no such deposit queued,
    // no authorisation) and an empty block commits.
    let queued = deposit(2, 5, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, owner32(attacker));
    let block = L2Block::new(1, 1, root(1), [queued].to_vec(), CAPACITY);
    assert_commit_refused(&b, &block, "PriorityQueueExhausted").await;
    let empty = L2Block::new(1, 1, root(1), vec![], CAPACITY);
    a.commit(&a.genesis(), std::slice::from_ref(&empty)).await.unwrap();
    b.commit(&b.genesis(), &[empty]).await.unwrap();
}

/// A recipient that answers a payout with 190 KB of return data: the old payout copied it into
/// memory, whose cost grows quadratically, so about 20 such 1-wei withdrawals made a block
/// impossible to execute. Now a block of 20 executes well under 5M gas and pays each of them.
#[tokio::test]
async fn a_return_bomb_cannot_block_execution() {
    let a = Chain::deploy(single(4001)).await.unwrap();
    deposit_eth(&a, ETH, ETH_TOKEN_ID).await;
    let bomb = ReturnBomb::deploy(a.provider.clone(), U256::from(190_000u64)).await.unwrap();
    let to = owner32(*bomb.address());
    let mut block_ops = vec![deposit(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, owner32(user()))];
    block_ops.extend((0..20).map(|_| withdraw(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 1, no_fee(), to)));
    let block = L2Block::new(1, 1, root(1), block_ops.to_vec(), CAPACITY);
    let (_, gas) = settle_single(&a, &a.genesis(), &[block]).await;
    assert!(gas < 5_000_000, "execute used {gas} gas");
    assert_eq!(balance(&a, *bomb.address()).await, U256::from(20u64));
    assert_eq!(a.zklink.pendingBalance(*bomb.address(), ETH_TOKEN_ID).call().await.unwrap(), 0);
}

/// ERC-20 payouts: a token that returns false, a non-boolean word, nothing, reverts, returns
/// 190 KB, or has no code at all can make a payout fail (it becomes a pending balance) but can
/// never make `executeBlocks` revert.
#[tokio::test]
async fn misbehaving_tokens_fail_payouts_but_never_execution() {
    let a = Chain::deploy(single(4002)).await.unwrap();
    let token = MisbehavingToken::deploy(a.provider.clone()).await.unwrap();
    send(a.zklink.registerToken(7, *token.address(), 18, 0)).await.unwrap();
    let z = a.zklink_as(DEV_KEYS[1]).unwrap();
    let as_user =
        MisbehavingToken::new(*token.address(), zkl_contracts::deploy::provider(&a.anvil, DEV_KEYS[1]).unwrap());
    send(as_user.mint(user(), U256::from(100u64))).await.unwrap();
    send(as_user.approve(*a.zklink.address(), U256::from(100u64))).await.unwrap();
    send(z.depositERC20(*token.address(), alloy::primitives::Uint::from(100u64), owner32(user()).into(), 0, 7))
        .await
        .unwrap();
    let recipient = Address::repeat_byte(0x77);
    let mut prev = a.genesis();
    let mut block_number = 0;
    let mut paid_expected = 0u64;
    let mut pending_expected = 0u128;
    // (mode, paid): 0 true, 1 false, 2 the word 2, 3 no return data, 4 revert, 5 true and 190 KB,
    // 6 no code.
    for (mode, paid) in [(0u8, true), (1, false), (2, false), (3, true), (4, false), (5, true), (6, false)] {
        if mode == 6 {
            a.provider.anvil_set_code(*token.address(), Bytes::new()).await.unwrap();
        } else {
            send(token.setMode(mode)).await.unwrap();
        }
        block_number += 1;
        let mut block_ops = vec![];
        if block_number == 1 {
            block_ops.push(deposit(1, 3, 0, 7, 7, 100, owner32(user())));
        }
        block_ops.push(withdraw(1, 3, 0, 7, 7, 1, no_fee(), owner32(recipient)));
        let block = L2Block::new(block_number, 1, root(block_number as u8), block_ops.to_vec(), CAPACITY);
        let (stored, _) = settle_single(&a, &prev, &[block]).await;
        prev = stored[0].clone();
        if paid {
            paid_expected += 1;
        } else {
            pending_expected += 1;
        }
        if mode != 6 {
            assert_eq!(token.balanceOf(recipient).call().await.unwrap(), U256::from(paid_expected), "mode {mode}");
        }
        assert_eq!(a.zklink.pendingBalance(recipient, 7).call().await.unwrap(), pending_expected, "mode {mode}");
    }
    assert_eq!(a.zklink.blockCounters().call().await.unwrap().executed, 7);
}

/// The contract takes exactly the canonical ECDSA form the node accepts (protocol.md section 12):
/// the owner's own signature with v in {0, 1}, or with a high s, is refused.
#[tokio::test]
async fn change_pubkey_signatures_must_be_canonical() {
    let a = Chain::deploy(single(4003)).await.unwrap();
    let owner = signer(DEV_KEYS[2]).unwrap();
    let pkh = [7u8; 20];
    let sig = owner.sign_message_sync(&change_pubkey_message(pkh, 0, 4, 1)).unwrap();
    let good = sig.as_bytes();
    let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
    let mut high_s = good;
    high_s[32..64].copy_from_slice(&(n - sig.s()).to_be_bytes::<32>());
    high_s[64] = if good[64] == 27 { 28 } else { 27 };
    let mut low_v = good;
    low_v[64] -= 27;
    let cpk = change_pubkey(1, 4, 0, pkh, owner.address(), 0, ETH_TOKEN_ID, no_fee());
    for bad in [high_s, low_v] {
        let mut block = L2Block::new(1, 1, root(1), (std::slice::from_ref(&cpk)).to_vec(), CAPACITY);
        block.cpk_witnesses[0] = vec![Bytes::from(bad.to_vec())];
        assert_commit_refused(&a, &block, "ChangePubKeyAuth").await;
    }
    let mut block = L2Block::new(1, 1, root(1), [cpk].to_vec(), CAPACITY);
    block.cpk_witnesses[0] = vec![Bytes::from(good.to_vec())];
    a.commit(&a.genesis(), &[block]).await.unwrap();
}

/// On-chain authorisations are set-only: once the node has seen a fact it stays valid, so the
/// owner cannot break a block the node sealed by replacing it (a new fact for the same nonce is
/// an alternative, not a replacement). Every fact is announced by an event the node follows.
#[tokio::test]
async fn auth_facts_cannot_be_withdrawn() {
    let a = Chain::deploy(single(4004)).await.unwrap();
    let owner = signer(DEV_KEYS[2]).unwrap();
    let z = a.zklink_as(DEV_KEYS[2]).unwrap();
    let (pkh1, pkh2) = ([1u8; 20], [2u8; 20]);
    let receipt = send(z.setAuthPubkeyHash(pkh1.into(), 0)).await.unwrap();
    let log = receipt.inner.logs()[0].log_decode::<ZkLink::AuthPubkeyHashSet>().unwrap().inner.data;
    assert_eq!((log.owner, log.nonce, log.pubkeyHash.0), (owner.address(), 0, pkh1));
    // The owner "changes its mind" after the node accepted the ChangePubKey for pkh1.
    send(z.setAuthPubkeyHash(pkh2.into(), 0)).await.unwrap();
    assert!(a.zklink.authFact(owner.address(), 0, pkh1.into()).call().await.unwrap());
    assert!(a.zklink.authFact(owner.address(), 0, pkh2.into()).call().await.unwrap());
    assert!(!a.zklink.authFact(owner.address(), 1, pkh1.into()).call().await.unwrap());
    assert_revert!(z.setAuthPubkeyHash([0u8; 20].into(), 0), "InvalidConfig");
    // Another owner's fact, or another nonce's, authorises nothing.
    for other in [
        change_pubkey(1, 5, 0, pkh1, user(), 0, ETH_TOKEN_ID, no_fee()),
        change_pubkey(1, 4, 0, pkh1, owner.address(), 1, ETH_TOKEN_ID, no_fee()),
    ] {
        let mut block = L2Block::new(1, 1, root(1), [other].to_vec(), CAPACITY);
        block.cpk_witnesses[0] = vec![Bytes::new()];
        assert_commit_refused(&a, &block, "ChangePubKeyAuth").await;
    }
    let cpk = change_pubkey(1, 4, 0, pkh1, owner.address(), 0, ETH_TOKEN_ID, no_fee());
    let mut block = L2Block::new(1, 1, root(1), [cpk].to_vec(), CAPACITY);
    block.cpk_witnesses[0] = vec![Bytes::new()];
    a.commit(&a.genesis(), &[block]).await.unwrap();
}

/// Relayed sync hashes are keyed by their value: after a revert and a different re-commit of the
/// same block number, the new sync hash is relayed and the block executes. (A chain holding every
/// other chain's sync hash of a block refuses to revert it, see `exodus.rs`: with two chains, both
/// revert a block only before any sync hash of it was relayed.)
#[tokio::test]
async fn sync_hashes_survive_revert_and_recommit() {
    let (a, b) = two_chains().await;
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let first = L2Block::new(1, 1, root(1), vec![], CAPACITY);
    let (sa, _) = a.commit(&a.genesis(), std::slice::from_ref(&first)).await.unwrap();
    let (sb, _) = b.commit(&b.genesis(), std::slice::from_ref(&first)).await.unwrap();
    send(a.zklink.revertBlocks(sa.clone())).await.unwrap();
    send(b.zklink.revertBlocks(sb.clone())).await.unwrap();
    let second = L2Block::new(1, 2, root(2), vec![], CAPACITY);
    let (sa2, _) = a.commit(&a.genesis(), std::slice::from_ref(&second)).await.unwrap();
    let (sb2, _) = b.commit(&b.genesis(), std::slice::from_ref(&second)).await.unwrap();
    assert_ne!(sa2[0].syncHash, sa[0].syncHash);
    // Without the new sync hashes the block does not execute.
    a.prove(&pk, &sa2).await.unwrap();
    b.prove(&pk, &sb2).await.unwrap();
    a.finalize(&sa2[0]).await.unwrap();
    assert_revert!(a.zklink.executeBlocks(a.execute_infos(&[(sa2[0].clone(), vec![])])), "SyncHashMissing");
    relay_sync_hash(&a, &b, &sb2[0]).await;
    relay_sync_hash(&b, &a, &sa2[0]).await;
    a.execute(&[(sa2[0].clone(), vec![])]).await.unwrap();
    b.execute(&[(sb2[0].clone(), vec![])]).await.unwrap();
}

/// A sync hash chains every commitment before it, so executing a run of blocks needs the other
/// chains' sync hash of its last block only; a run ending at a block without it is refused.
#[tokio::test]
async fn a_run_of_blocks_executes_on_its_last_sync_hash() {
    let (a, b) = two_chains().await;
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let blocks: Vec<L2Block> =
        (1..=3).map(|n| L2Block::new(n, u64::from(n), root(n as u8), vec![], CAPACITY)).collect();
    let (sa, _) = a.commit(&a.genesis(), &blocks).await.unwrap();
    let (sb, _) = b.commit(&b.genesis(), &blocks).await.unwrap();
    a.prove(&pk, &sa).await.unwrap();
    relay_sync_hash(&a, &b, &sb[2]).await;
    let run = |n: usize| a.execute_infos(&sa[..n].iter().map(|s| (s.clone(), vec![])).collect::<Vec<_>>());
    a.finalize(&sa[2]).await.unwrap();
    assert_revert!(a.zklink.executeBlocks(run(1)), "SyncHashMissing");
    assert_revert!(a.zklink.executeBlocks(run(2)), "SyncHashMissing");
    send(a.zklink.executeBlocks(run(3))).await.unwrap();
    assert_eq!(a.zklink.blockCounters().call().await.unwrap().executed, 3);
}

/// Proofs name the capacity whose verifier checks them; a capacity without one is refused, and
/// the verifiers are fixed at deployment (each capacity once, none empty).
#[tokio::test]
async fn proofs_need_a_registered_capacity() {
    let a = Chain::deploy(single(4011)).await.unwrap();
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let block = L2Block::new(1, 1, root(1), vec![], CAPACITY);
    let (stored, _) = a.commit(&a.genesis(), std::slice::from_ref(&block)).await.unwrap();
    let proof = zkl_contracts::deploy::test_proof(&pk, &stored[0]).unwrap();
    assert_eq!(a.zklink.blockVerifier(129).call().await.unwrap(), Address::ZERO);
    assert_revert!(a.zklink.proveBlocks(stored.clone(), vec![proof], 129), "UnknownCapacity");
    send(a.zklink.proveBlocks(stored.clone(), vec![proof], 128)).await.unwrap();
    // The data-availability chain refuses to commit a block of a capacity it has no verifier for.
    let odd = L2Block::new(2, 2, root(2), vec![], 129);
    let (infos, _) = a.prepare_commit(&stored[0], &[odd]).unwrap();
    assert_revert!(a.zklink.commitBlocks(stored[0].clone(), infos), "UnknownCapacity");
    let verifier = *TestVerifier::deploy(a.provider.clone()).await.unwrap().address();
    let poseidon = *PoseidonT6::deploy(a.provider.clone()).await.unwrap().address();
    for (capacities, verifiers) in [
        (vec![], vec![]),
        (vec![4, 8], vec![verifier]),
        (vec![0], vec![verifier]),
        (vec![4, 4], vec![verifier, verifier]),
        (vec![4], vec![Address::repeat_byte(1)]),
    ] {
        let params = ZkLink::InitParams {
            governor: a.governor,
            capacities: capacities.clone(),
            verifiers,
            exitVerifier: verifier,
            poseidon,
            chainId: 1,
            chainCount: 1,
            dataAvailabilityChain: 1,
            priorityExpirationPeriod: EXPIRATION,
            priorityFee: 0,
            genesisRoot: root(1),
            feeOwner: Address::ZERO,
        };
        let simulated = ZkLink::deploy_builder(a.provider.clone(), params).call().await;
        assert!(simulated.is_err(), "deployed with capacities {capacities:?}");
    }
}

/// Every deposit and full-exit request pays the priority fee (flooding the queue costs the
/// attacker what it costs the operator); the governor collects it.
#[tokio::test]
async fn priority_requests_pay_the_priority_fee() {
    let fee = 1_000_000_000_000u128;
    let a = Chain::deploy(ChainConfigFee::with(single(4005), fee)).await.unwrap();
    assert_eq!(a.zklink.priorityFee().call().await.unwrap(), fee);
    let z = a.zklink_as(DEV_KEYS[1]).unwrap();
    let to: B256 = owner32(user()).into();
    assert_revert!(z.depositETH(to, 0, ETH_TOKEN_ID).value(U256::from(fee - 1)), "WrongPriorityFee");
    assert_revert!(z.depositETH(to, 0, ETH_TOKEN_ID).value(U256::from(fee)), "ZeroAmount");
    assert_revert!(z.requestFullExit(3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID), "WrongPriorityFee");
    assert_revert!(z.requestFullExit(3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID).value(U256::from(fee + 1)), "WrongPriorityFee");
    let token = TestERC20::deploy(a.provider.clone(), 18, 0).await.unwrap();
    send(a.zklink.registerToken(2, *token.address(), 18, 0)).await.unwrap();
    assert_revert!(z.depositERC20(*token.address(), alloy::primitives::Uint::from(1u64), to, 0, 2), "WrongPriorityFee");
    // Paid: the deposit credits what is left after the fee.
    send(z.depositETH(to, 0, ETH_TOKEN_ID).value(U256::from(fee + 5))).await.unwrap();
    let dep = deposit(1, 0, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, 5, owner32(user()));
    assert_eq!(a.zklink.priorityRequest(0).call().await.unwrap().hashedPubdata, keccak256(dep.pubdata().unwrap()));
    send(z.requestFullExit(3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID).value(U256::from(fee))).await.unwrap();
    assert_eq!(a.zklink.collectedFees().call().await.unwrap(), U256::from(2 * fee));
    assert_revert!(z.withdrawCollectedFees(user()), "NotGovernor");
    assert_revert!(z.setPriorityFee(0), "NotGovernor");
    let sink = Address::repeat_byte(0x99);
    send(a.zklink.withdrawCollectedFees(sink)).await.unwrap();
    assert_eq!(balance(&a, sink).await, U256::from(2 * fee));
    assert_eq!(a.zklink.collectedFees().call().await.unwrap(), U256::ZERO);
    send(a.zklink.setPriorityFee(0)).await.unwrap();
    send(z.depositETH(to, 0, ETH_TOKEN_ID).value(U256::from(5u64))).await.unwrap();
}

/// `ChainConfig` with a priority fee.
struct ChainConfigFee;
impl ChainConfigFee {
    fn with(c: zkl_contracts::deploy::ChainConfig, fee: u128) -> zkl_contracts::deploy::ChainConfig {
        zkl_contracts::deploy::ChainConfig { priority_fee: fee, ..c }
    }
}

/// A payout recipient that re-enters: here it is even a validator and tries to revert the block
/// being executed from its `receive`. The guard refuses it, and the counters were written before
/// the first payout anyway (checks-effects-interactions), so the contract stays consistent.
#[tokio::test]
async fn execute_cannot_be_reentered() {
    let a = Chain::deploy(single(4006)).await.unwrap();
    deposit_eth(&a, ETH, ETH_TOKEN_ID).await;
    let receiver = ReentrantReceiver::deploy(a.provider.clone()).await.unwrap();
    send(a.zklink.setValidator(*receiver.address(), true)).await.unwrap();
    let block_ops = [
        deposit(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, owner32(user())),
        withdraw(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH / 2, no_fee(), owner32(*receiver.address())),
    ];
    let block = L2Block::new(1, 1, root(1), block_ops.to_vec(), CAPACITY);
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let (stored, _) = a.commit(&a.genesis(), std::slice::from_ref(&block)).await.unwrap();
    a.prove(&pk, &stored).await.unwrap();
    let reenter = a.zklink.revertBlocks(stored.clone()).calldata().clone();
    send(receiver.arm(*a.zklink.address(), reenter)).await.unwrap();
    let w = block.packed_withdrawals(1).to_vec();
    a.execute(&[(stored[0].clone(), w)]).await.unwrap();
    assert!(receiver.entered().call().await.unwrap());
    assert!(!receiver.reentered().call().await.unwrap(), "revertBlocks succeeded inside executeBlocks");
    let c = a.zklink.blockCounters().call().await.unwrap();
    assert_eq!((c.committed, c.proven, c.executed), (1, 1, 1));
    assert_eq!(balance(&a, *receiver.address()).await, U256::from(ETH / 2));
}

/// Token registry: a merge group's id can never be an L1 token's id, in either order.
#[tokio::test]
async fn merge_group_ids_never_collide_with_token_ids() {
    let a = Chain::deploy(single(4007)).await.unwrap();
    send(a.zklink.registerToken(5, Address::repeat_byte(5), 6, 10)).await.unwrap();
    assert_revert!(a.zklink.registerToken(10, Address::repeat_byte(10), 6, 0), "InvalidConfig");
    assert_revert!(a.zklink.registerToken(6, Address::repeat_byte(6), 6, 5), "InvalidConfig");
    assert_revert!(a.zklink.registerToken(6, Address::repeat_byte(6), 6, ETH_TOKEN_ID), "InvalidConfig");
    send(a.zklink.registerToken(6, Address::repeat_byte(6), 6, 10)).await.unwrap();
}

/// A deployment must name its data-availability chain among the connected chains.
#[tokio::test]
async fn deployment_needs_a_data_availability_chain() {
    let a = Chain::deploy(single(4008)).await.unwrap();
    let verifier = *TestVerifier::deploy(a.provider.clone()).await.unwrap().address();
    let poseidon = *PoseidonT6::deploy(a.provider.clone()).await.unwrap().address();
    for (da, ok) in [(0u8, false), (3, false), (2, true)] {
        let params = ZkLink::InitParams {
            governor: a.governor,
            capacities: vec![4],
            verifiers: vec![verifier],
            exitVerifier: verifier,
            poseidon,
            chainId: 1,
            chainCount: 2,
            dataAvailabilityChain: da,
            priorityExpirationPeriod: EXPIRATION,
            priorityFee: 0,
            genesisRoot: root(1),
            feeOwner: Address::ZERO,
        };
        // The constructor, simulated: it refuses a chain outside 1..=chainCount.
        let simulated = ZkLink::deploy_builder(a.provider.clone(), params.clone()).call().await;
        assert_eq!(simulated.is_ok(), ok, "data-availability chain {da}");
        if ok {
            let z = ZkLink::deploy(a.provider.clone(), params).await.unwrap();
            let info = z.chainInfo().call().await.unwrap();
            assert_eq!((info.chainId, info.chainCount, info.dataAvailabilityChain), (1, 2, 2));
        }
    }
}

/// Owners and recipients are EVM addresses: a deposit to a 32-byte address with a non-zero top
/// (no EVM owner could ever use it), and a withdrawal to address 0, are refused.
#[tokio::test]
async fn owners_and_recipients_are_evm_addresses() {
    let a = Chain::deploy(single(4009)).await.unwrap();
    let z = a.zklink_as(DEV_KEYS[1]).unwrap();
    let mut wide = owner32(user());
    wide[0] = 1;
    assert_revert!(z.depositETH(wide.into(), 0, ETH_TOKEN_ID).value(U256::from(1u64)), "InvalidRecipient");
    deposit_eth(&a, ETH, ETH_TOKEN_ID).await;
    let block_ops = [
        deposit(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, owner32(user())),
        withdraw(1, 3, 0, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH, no_fee(), [0u8; 32]),
    ];
    let block = L2Block::new(1, 1, root(1), block_ops.to_vec(), CAPACITY);
    assert_commit_refused(&a, &block, "InvalidRecipient").await;
}
