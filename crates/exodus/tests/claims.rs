//! The recovery tool's claims on two EVM chains with real exit proofs: the exit circuit's verifier
//! (five public inputs, generated from its verifying key and compiled with solc-js) is deployed as
//! ZkLink's exit verifier on both chains; a block with real state roots (USDC deposited on chain
//! 1 and USDT on chain 2, both into the merged L2 token USD) is settled, both chains enter exodus.
//! The tool rebuilds the state from the chains alone and claims for A; B claims by hand, so the
//! contract's refusals can be checked: another user's or inflated amounts' proof, a second claim.
//! Each user gets its pro-rata share of the pool on each chain (the sum is its balance), each chain
//! pays exactly its liquidity, a second run of the tool pays nothing, and the deposit made after
//! the last block is refunded to its sender by the tool.
//!
//! Needs `node` with solc-js and anvil (`npm ci` in `contracts/`).

use alloy::primitives::{Address as EvmAddress, B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use ark_ff::{BigInteger, PrimeField};
use rand::SeedableRng;
use zkl_circuit::Fr;
use zkl_circuit::exit::{ExitCircuit, exit_keys};
use zkl_circuit::groth16::KeyCache;
use zkl_contracts::anvil::{Anvil, DEV_KEYS};
use zkl_contracts::bindings::TestERC20;
use zkl_contracts::bindings::ZkLink::StoredBlockInfo;
use zkl_contracts::deploy::{Chain, ChainConfig, L2Block, provider, send, signer};
use zkl_contracts::verifier;
use zkl_exodus::blocks::BlockCache;
use zkl_exodus::recover::{ClaimReport, RebuildOptions, claim, rebuild};
use zkl_state::testkit::{USD, USDC, USDT, User, demo_registry, deposit};
use zkl_state::{BlockParams, State};
use zkl_types::Address;

const CAPACITY: usize = 8;
const PERIOD: u64 = 3600;
const E12: u128 = 1_000_000_000_000;

fn b256(x: &Fr) -> B256 {
    B256::from_slice(&x.into_bigint().to_bytes_be())
}

fn config(evm: u64, l2_chain: u8, genesis: B256) -> ChainConfig {
    ChainConfig {
        evm_chain_id: evm,
        l2_chain,
        chain_count: 2,
        data_availability_chain: 1,
        priority_expiration: PERIOD,
        priority_fee: 0,
        genesis_root: genesis,
        fee_owner: fee_owner(),
    }
}

/// Registers a 6-decimal test token `id` in group USD, mints to `holder` and approves ZkLink.
async fn token(c: &Chain, id: u16, holder_key: &str) -> EvmAddress {
    let holder = signer(holder_key).unwrap().address();
    let addr = c.add_test_token(id, 6, USD, &[holder], U256::from(1_000_000_000_000u64)).await.unwrap();
    let t = TestERC20::new(addr, provider(&c.anvil, holder_key).unwrap());
    send(t.approve(*c.zklink.address(), U256::MAX)).await.unwrap();
    addr
}

async fn erc20_balance(c: &Chain, token: EvmAddress, who: EvmAddress) -> U256 {
    TestERC20::new(token, c.provider.clone()).balanceOf(who).call().await.unwrap()
}

/// The ZkLink error a call reverted with.
fn error_name(e: &alloy::contract::Error) -> String {
    let decoded = e.as_decoded_interface_error::<zkl_contracts::bindings::ZkLink::ZkLinkErrors>();
    let text = format!("{decoded:?}");
    text.trim_start_matches("Some(").split(['(', ' ']).next().unwrap_or_default().to_string()
}

fn fee_owner() -> EvmAddress {
    EvmAddress::from(User::new(999).address.to_evm().unwrap())
}

fn owner(key: &str) -> (EvmAddress, Address) {
    let a = signer(key).unwrap().address();
    (a, Address::from_evm(a.0.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_claims_each_users_pool_share_on_every_chain_from_the_chains_alone() {
    let keys = exit_keys(&KeyCache::new(KeyCache::default_dir(), false)).unwrap();
    let solidity = verifier::groth16_verifier_solidity(&keys.vk, "ExitVerifier").unwrap();
    let exit_verifier = zkl_contracts::solc::compile(&solidity, "ExitVerifier").unwrap();

    let mut state = State::new(demo_registry(), Address::from_evm(fee_owner().0.0));
    state.set_block_params(BlockParams { capacity: CAPACITY, max_fee_tokens: 2, max_onchain_ops: CAPACITY });
    let genesis = b256(&state.root());
    let deploy = |evm: u64, l2: u8| {
        let code = exit_verifier.clone();
        async move {
            let anvil = Anvil::spawn(evm).unwrap();
            Chain::deploy_with_verifiers(anvil, config(evm, l2, genesis), &[], Some(&code)).await.unwrap()
        }
    };
    let (c1, c2) = (deploy(7301, 1).await, deploy(7302, 2).await);
    // USDC on chain 1 (USDT declared), USDC and USDT on chain 2: pools [USDC, USDT] on both.
    let (a_evm, a) = owner(DEV_KEYS[1]);
    let (b_evm, b) = owner(DEV_KEYS[2]);
    let (late_evm, _) = owner(DEV_KEYS[3]);
    let usdc1 = token(&c1, USDC, DEV_KEYS[1]).await;
    send(c1.zklink.declarePoolMember(USDT, USD)).await.unwrap();
    let usdc2 = token(&c2, USDC, DEV_KEYS[3]).await;
    let usdt2 = token(&c2, USDT, DEV_KEYS[2]).await;
    for c in [&c1, &c2] {
        assert_eq!(c.zklink.exodusPool(USD).call().await.unwrap(), [USDC, USDT, 0, 0]);
    }

    // A deposits 3,000 USDC on chain 1, B 1,000 USDT on chain 2, both into L2 USD.
    let as_a = c1.zklink_as(DEV_KEYS[1]).unwrap();
    let as_b = c2.zklink_as(DEV_KEYS[2]).unwrap();
    let usd = |x: u64| alloy::primitives::Uint::from(x * 1_000_000);
    send(as_a.depositERC20(usdc1, usd(3000), B256::from(a.0), 0, USD)).await.unwrap();
    send(as_b.depositERC20(usdt2, usd(1000), B256::from(b.0), 0, USD)).await.unwrap();
    state.execute_priority(&deposit(1, 0, a, USDC, USD, 3000 * 1_000_000)).unwrap();
    state.execute_priority(&deposit(2, 0, b, USDT, USD, 1000 * 1_000_000)).unwrap();
    let now = c1.provider.get_block(alloy::eips::BlockNumberOrTag::Latest.into()).await.unwrap().unwrap();
    let block = state.seal_block(now.header.timestamp);
    let l2 = L2Block::new(block.number, block.timestamp, b256(&block.commitment.new_root), block.ops.clone(), CAPACITY);

    // Settle it on both chains (test verifier for blocks), with the harness oracle.
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let mut stored: Vec<StoredBlockInfo> = Vec::new();
    for c in [&c1, &c2] {
        let (s, _) = c.commit(&c.genesis(), std::slice::from_ref(&l2)).await.unwrap();
        c.prove(&pk, &s).await.unwrap();
        stored.push(s[0].clone());
    }
    for (to, from, s) in [(&c1, 2u8, &stored[1]), (&c2, 1u8, &stored[0])] {
        let sigs = to.sign_sync_hash(&zkl_contracts::deploy::DEV_ORACLE_KEYS[..2], from, 1, s.syncHash).unwrap();
        send(to.zklink.receiveSyncHash(from, 1, s.syncHash, sigs)).await.unwrap();
    }
    for (c, s, chain) in [(&c1, &stored[0], 1u8), (&c2, &stored[1], 2u8)] {
        c.execute(&[(s.clone(), l2.packed_withdrawals(chain).to_vec())]).await.unwrap();
    }

    // A late deposit on each chain is never executed: both chains enter exodus.
    let late_1 = c1.zklink_as(DEV_KEYS[3]).unwrap();
    let late_2 = c2.zklink_as(DEV_KEYS[3]).unwrap();
    send(late_1.depositETH(B256::from(Address::from_evm(late_evm.0.0).0), 0, 1).value(U256::from(E12))).await.unwrap();
    send(late_2.depositERC20(usdc2, usd(5), B256::from(Address::from_evm(late_evm.0.0).0), 0, USDC)).await.unwrap();
    for (c, z) in [(&c1, &late_1), (&c2, &late_2)] {
        c.provider.anvil_increase_time(PERIOD + 1).await.unwrap();
        c.provider.evm_mine(None).await.unwrap();
        send(z.activateExodusMode()).await.unwrap();
        c.provider.anvil_increase_time(PERIOD).await.unwrap();
        c.provider.evm_mine(None).await.unwrap();
    }

    let file = zkl_exodus::test_utils::chains_file([&c1, &c2]);
    let mut paid = [[0u128; 2]; 2]; // [user][chain], L2 units

    // The tool claims for A from the chains alone: USDC on chain 1, USDT on chain 2.
    let (a_usdc, a_usdt) = (erc20_balance(&c1, usdc1, a_evm).await, erc20_balance(&c2, usdt2, a_evm).await);
    // It keeps the blocks it fetched in its data directory.
    let dir = std::env::temp_dir().join(format!("zkl-exodus-claims-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cached = RebuildOptions { data_dir: Some(&dir), ..Default::default() };
    let report = claim(&file, &signer(DEV_KEYS[1]).unwrap(), &keys, cached).await.unwrap();
    let got: Vec<(u8, u16, &str)> = report.claims.iter().map(|p| (p.chain, p.l1_token, p.amount.as_str())).collect();
    assert_eq!(got, vec![(1, USDC, "2250000000"), (2, USDT, "750000000")]);
    assert!(report.refunds.is_empty() && report.pending.is_empty());
    paid[0][0] = (erc20_balance(&c1, usdc1, a_evm).await - a_usdc).to::<u128>() * E12;
    paid[0][1] = (erc20_balance(&c2, usdt2, a_evm).await - a_usdt).to::<u128>() * E12;
    // A second run pays nothing new.
    assert_eq!(claim(&file, &signer(DEV_KEYS[1]).unwrap(), &keys, cached).await.unwrap(), ClaimReport::default());
    cache_is_read(&file, &dir).await;
    std::fs::remove_dir_all(&dir).unwrap();

    // B claims by hand: the contract refuses another user's proof, inflated amounts, a second claim.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let mut gas = Vec::new();
    let account = state.account_by_owner(&b).unwrap();
    for (i, (c, s)) in [(&c1, &stored[0]), (&c2, &stored[1])].into_iter().enumerate() {
        let chain = c.config.l2_chain;
        let (circuit, claim) = ExitCircuit::build(&state, chain, account, 0, USD, [USDC, USDT, 0, 0]).unwrap();
        let proof = keys.prove(circuit, &mut rng).unwrap();
        let words = verifier::encode_proof(&proof);
        let amounts = claim.claim.amounts;
        let z = c.zklink_as(DEV_KEYS[2]).unwrap();
        let other = c.zklink_as(DEV_KEYS[3]).unwrap();
        let e = other.performExodus(s.clone(), account, 0, USD, amounts, words).call().await.unwrap_err();
        assert_eq!(error_name(&e), "InvalidProof");
        let mut more = amounts;
        more[i] += E12;
        let e = z.performExodus(s.clone(), account, 0, USD, more, words).call().await.unwrap_err();
        assert_eq!(error_name(&e), "InvalidProof");
        let paid_token = if i == 0 { usdc1 } else { usdt2 };
        let before = erc20_balance(c, paid_token, b_evm).await;
        let receipt = send(z.performExodus(s.clone(), account, 0, USD, amounts, words)).await.unwrap();
        gas.push(receipt.gas_used);
        paid[1][i] = (erc20_balance(c, paid_token, b_evm).await - before).to::<u128>() * E12;
        assert_eq!(paid[1][i], amounts[i], "chain {chain}: amounts {amounts:?}");
        assert_eq!(amounts[1 - i], 0, "no liquidity of the other token on chain {chain}");
        assert!(c.zklink.isExodusClaimed(account, 0, USD).call().await.unwrap());
        let e = z.performExodus(s.clone(), account, 0, USD, amounts, words).call().await.unwrap_err();
        assert_eq!(error_name(&e), "AlreadyClaimed");
    }
    // A: 3,000 of 4,000 → 2,250 USDC on chain 1 + 750 USDT on chain 2; B: 750 + 250.
    assert_eq!(paid, [[2250 * 1_000_000 * E12, 750 * 1_000_000 * E12], [750 * 1_000_000 * E12, 250 * 1_000_000 * E12]]);
    assert_eq!(state.balance(state.account_by_owner(&a).unwrap(), 0, USD), paid[0][0] + paid[0][1]);
    // Each chain paid out exactly its pool liquidity; what is left is the late deposits.
    assert_eq!(c1.zklink.getToken(USDC).call().await.unwrap().liquidity, 0);
    assert_eq!(c2.zklink.getToken(USDT).call().await.unwrap().liquidity, 0);
    assert_eq!(c2.zklink.getToken(USDC).call().await.unwrap().liquidity, 5 * 1_000_000 * E12);
    // The late depositor has no L2 balance; the tool refunds both its deposits.
    let before = erc20_balance(&c2, usdc2, late_evm).await;
    let report = claim(&file, &signer(DEV_KEYS[3]).unwrap(), &keys, Default::default()).await.unwrap();
    assert!(report.claims.is_empty());
    let got: Vec<(u8, u16, &str)> = report.refunds.iter().map(|p| (p.chain, p.l1_token, p.amount.as_str())).collect();
    assert_eq!(got, vec![(1, 1, "1000000000000"), (2, USDC, "5000000")]);
    assert_eq!(erc20_balance(&c2, usdc2, late_evm).await - before, U256::from(5_000_000u64));
    assert_eq!(c2.zklink.getToken(USDC).call().await.unwrap().liquidity, 0);
    eprintln!("performExodus gas: {gas:?}");
}

/// The adversarial timing of issue 14, healed by the tool: chain 1 executed block 1 (its
/// withdrawal on chain 2 is due), then the operator and the oracle stopped before chain 2 got the
/// finality attestation or even a proof. After both chains entered exodus, `sync` carries chain
/// 1's attestation and proof to chain 2 and executes there: chain 2 pays the withdrawal and both
/// chains claim against block 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_brings_a_lagging_chain_to_what_another_executed() {
    use zkl_types::op::{DepositOp, Op, WithdrawOp};
    let (c1, c2) = {
        let deploy = |evm: u64, l2: u8| async move {
            Chain::deploy_with_verifiers(Anvil::spawn(evm).unwrap(), config(evm, l2, B256::repeat_byte(9)), &[], None)
                .await
                .unwrap()
        };
        (deploy(7311, 1).await, deploy(7312, 2).await)
    };
    let user = signer(DEV_KEYS[1]).unwrap().address();
    let recipient = EvmAddress::repeat_byte(0x77);
    let eth = 1_000_000_000_000_000_000u128;
    let z2 = c2.zklink_as(DEV_KEYS[1]).unwrap();
    send(z2.depositETH(B256::from(Address::from_evm(user.0.0).0), 0, 1).value(U256::from(2 * eth))).await.unwrap();
    let ops = vec![
        Op::Deposit(DepositOp {
            chain: 2,
            account: 2,
            sub: 0,
            l1_token: 1,
            l2_token: 1,
            amount: 2 * eth,
            owner: Address::from_evm(user.0.0),
        }),
        Op::Withdraw(WithdrawOp {
            chain: 2,
            account: 2,
            sub: 0,
            l2_token: 1,
            l1_token: 1,
            amount: eth / 2,
            fee: 0,
            to: Address::from_evm(recipient.0.0),
        }),
    ];
    let now = c1.provider.get_block(alloy::eips::BlockNumberOrTag::Latest.into()).await.unwrap().unwrap();
    let block = L2Block::new(1, now.header.timestamp, B256::repeat_byte(1), ops, CAPACITY);
    let pk = zkl_contracts::verifier::test_circuit::proving_key().unwrap();
    let (s1, _) = c1.commit(&c1.genesis(), std::slice::from_ref(&block)).await.unwrap();
    let (s2, _) = c2.commit(&c2.genesis(), std::slice::from_ref(&block)).await.unwrap();
    c1.prove(&pk, &s1).await.unwrap();
    for (to, from, s) in [(&c1, 2u8, &s2[0]), (&c2, 1u8, &s1[0])] {
        let sigs = to.sign_sync_hash(&zkl_contracts::deploy::DEV_ORACLE_KEYS[..2], from, 1, s.syncHash).unwrap();
        send(to.zklink.receiveSyncHash(from, 1, s.syncHash, sigs)).await.unwrap();
    }
    c1.execute(&[(s1[0].clone(), block.packed_withdrawals(1).to_vec())]).await.unwrap();
    // Operator and oracle gone. A full exit on chain 1 nobody serves; chain 2's deposit request
    // is unexecuted there. Both chains enter exodus.
    send(c1.zklink_as(DEV_KEYS[1]).unwrap().requestFullExit(2, 0, 1, 1)).await.unwrap();
    for c in [&c1, &c2] {
        c.provider.anvil_increase_time(PERIOD + 1).await.unwrap();
        c.provider.evm_mine(None).await.unwrap();
        send(c.zklink_as(DEV_KEYS[2]).unwrap().activateExodusMode()).await.unwrap();
    }
    let file = zkl_exodus::test_utils::chains_file([&c1, &c2]);
    let key = signer(DEV_KEYS[3]).unwrap();
    let report = zkl_exodus::sync::sync(&file, &key).await.unwrap();
    assert_eq!((report[0].final_block, report[0].txs.len()), (1, 0), "chain 1 had everything");
    assert_eq!((report[1].final_block, &report[1].proven, &report[1].executed), (1, &vec![1], &vec![1]));
    assert_eq!(c2.provider.get_balance(recipient).await.unwrap(), U256::from(eth / 2));
    assert_eq!(c2.zklink.blockCounters().call().await.unwrap().executed, 1);
    // Nothing left to carry.
    let again = zkl_exodus::sync::sync(&file, &key).await.unwrap();
    assert!(again.iter().all(|r| r.txs.is_empty()), "{again:?}");
}

/// A rerun takes the blocks from the cache (a tampered cached block is caught by the root
/// check; without the cache the rebuild is fine), and a cache of another deployment is refused.
async fn cache_is_read(file: &zkl_exodus::ChainsFile, dir: &std::path::Path) {
    let cache = BlockCache::open(dir, "another deployment").map(|_| ()).unwrap_err();
    assert!(cache.to_string().contains("holds the blocks of another deployment"), "{cache}");
    let cached = RebuildOptions { data_dir: Some(dir), ..Default::default() };
    let blocks = rebuild(file, 1, cached).await.unwrap().blocks;
    assert_eq!(blocks.len(), 1);
    let entry = file.chains.iter().find(|c| c.data_availability).unwrap();
    let g = zkl_exodus::recover::genesis(&zkl_exodus::Connection::open(entry, None).unwrap()).await.unwrap();
    let name = g.deployment(entry.zklink);
    let mut tampered = blocks[0].clone();
    tampered.new_root = B256::repeat_byte(7);
    let (scanned, _) = BlockCache::open(dir, &name).unwrap().load().unwrap();
    BlockCache::open(dir, &name).unwrap().store(&[&tampered], scanned).unwrap();
    let cached = RebuildOptions { data_dir: Some(dir), ..Default::default() };
    let e = rebuild(file, 1, cached).await.map(|_| ()).unwrap_err().to_string();
    assert!(e.starts_with("block 1: rebuilt root") && e.contains("0x0707"), "{e}");
    rebuild(file, 1, RebuildOptions::default()).await.unwrap();
}
