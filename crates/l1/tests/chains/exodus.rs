//! Dunkirk, end to end (issue 14): A and B deposit USDC on both chains (one L2 balance), B
//! deposits ETH, they trade (A buys ETH from B's order), A withdraws part on chain 2 and it is
//! paid; the operator (node, settler,
//! oracle) stops; C deposits afterwards; both chains enter exodus through the recovery tool, which
//! then, from the chains alone, claims for A and B and refunds C. To the unit: each user's claims
//! over both chains equal its L2 balance at the exodus root (pro rata to each chain's share of the
//! pool), C gets its deposit back, a second run pays nothing, and each chain pays out exactly the
//! liquidity it holds.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::providers::ext::AnvilApi;
use zkl_circuit::exit::exit_keys;
use zkl_circuit::groth16::KeyCache;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::bindings::TestERC20;
use zkl_contracts::deploy::{provider, send, signer};
use zkl_devkit::devnet::{DEVNET_PRIORITY_FEE, DevnetOptions};
use zkl_exodus::Activation;
use zkl_exodus::recover::{ClaimReport, claim};
use zkl_node::NodeConfig;

use crate::common::{executed_everywhere, start_on_devnet, wait_for, wallet};

const ETH: u16 = 1;
const USDC: u16 = 2;
/// B's account id (after the fee and global accounts and A): B also matches the orders.
const B_ID: u32 = 3;
const PERIOD: u64 = 600;
const TIMEOUT: Duration = Duration::from_secs(90);

fn claimed(r: &ClaimReport) -> Vec<(u8, u16, String)> {
    r.claims.iter().map(|p| (p.chain, p.l1_token, p.amount.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_gone_every_user_recovers_from_layer_one_alone() {
    let keys = exit_keys(&KeyCache::new(KeyCache::default_dir(), false)).unwrap();
    let sol = zkl_contracts::verifier::groth16_verifier_solidity(&keys.vk, "ExitVerifier").unwrap();
    let exit_verifier = zkl_contracts::solc::compile(&sol, "ExitVerifier").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.block_time_ms = 200;
    config.matchers = vec![B_ID];
    let opts = DevnetOptions {
        evm_base: 36_000,
        confirmations: 1,
        test_tokens: true,
        priority_fee: DEVNET_PRIORITY_FEE,
        exit_verifier: Some(exit_verifier),
        priority_expiration: Some(PERIOD),
        ..DevnetOptions::default()
    };
    let (mut node, chains) = start_on_devnet(config, opts, 2_000).await;
    let (a, b) = (wallet(&node, DEV_KEYS[1]), wallet(&node, DEV_KEYS[2]));

    // A: 300 USDC on chain 1 and 100 on chain 2; B: 200 USDC and 1 ETH on chain 2 (one L2
    // USDC balance each).
    a.deposit(1, USDC, USDC, "300", 0).await.unwrap();
    a.deposit(2, USDC, USDC, "100", 0).await.unwrap();
    b.deposit(2, USDC, USDC, "200", 0).await.unwrap();
    b.deposit(2, ETH, ETH, "1", 0).await.unwrap();
    let usdc = |x: u128| x * 1_000_000_000_000_000_000;
    let eth = usdc(1);
    wait_for("deposits credited", TIMEOUT, async || {
        a.account().await.is_ok_and(|x| x.balance(0, USDC) == usdc(400))
            && b.account().await.is_ok_and(|x| x.balance(0, USDC) == usdc(200) && x.balance(0, ETH) == eth)
    })
    .await;
    let b_id = b.account().await.unwrap().id;
    assert_eq!(b_id, B_ID);
    // B (maker) sells 1 ETH at 100 USDC, A (taker) buys 0.5 of it: A pays 50 USDC and gets 0.5 ETH
    // less its 10 bps fee. Then A withdraws 100 USDC on chain 2, which is paid there.
    a.change_pubkey(1, USDC, 0).await.unwrap();
    b.change_pubkey(2, USDC, 0).await.unwrap();
    let sell = b.sign_order(0, 1, None, ETH, USDC, eth, usdc(100), true, (0, 10)).await.unwrap();
    let buy = a.sign_order(0, 1, None, ETH, USDC, eth / 2, usdc(100), false, (0, 10)).await.unwrap();
    b.submit_matching(sell, buy, eth / 2).await.unwrap();
    let a_eth = eth / 2 - eth / 2000;
    assert_eq!(a.account().await.unwrap().balance(0, ETH), a_eth);
    let a_evm = signer(DEV_KEYS[1]).unwrap().address();
    let to = zkl_types::Address::from_evm(a_evm.0.0);
    let usdc2 = TestERC20::new(chains[1].zklink.getToken(USDC).call().await.unwrap().addr, chains[1].provider.clone());
    let a_before = usdc2.balanceOf(a_evm).call().await.unwrap();
    a.withdraw(0, 2, USDC, USDC, usdc(100), 0, to).await.unwrap();
    wait_for("the withdrawal paid on chain 2", TIMEOUT, async || {
        usdc2.balanceOf(a_evm).call().await.unwrap() - a_before == U256::from(100_000_000u64)
    })
    .await;
    let last = node.storage.last_block().unwrap().unwrap_or(0);
    wait_for("every block executed on both chains", TIMEOUT, async || executed_everywhere(&chains, last).await).await;
    let executed = chains[0].zklink.blockCounters().call().await.unwrap().executed;

    // The operator is gone: no node, no settler, no oracle. C deposits 7 USDC on chain 1.
    node.l1.take().unwrap().stop().await;
    let _ = node.handle.stop();
    let usdc1 = chains[0].zklink.getToken(USDC).call().await.unwrap().addr;
    let c_key = DEV_KEYS[3];
    let c_evm = signer(c_key).unwrap().address();
    let c_usdc = TestERC20::new(usdc1, provider(&chains[0].anvil, c_key).unwrap());
    send(c_usdc.approve(*chains[0].zklink.address(), U256::MAX)).await.unwrap();
    let zc = chains[0].zklink_as(c_key).unwrap();
    let fee = U256::from(DEVNET_PRIORITY_FEE);
    let c_l2 = B256::from(zkl_types::Address::from_evm(c_evm.0.0).0);
    send(zc.depositERC20(usdc1, alloy::primitives::Uint::from(7_000_000u64), c_l2, 0, USDC).value(fee)).await.unwrap();
    let c_before = c_usdc.balanceOf(c_evm).call().await.unwrap();

    // The tool: activation waits for the expiry of the oldest request on each chain. Chain 2
    // has none pending, so B asks for a full exit there, which nobody serves.
    let file = zkl_exodus::test_utils::chains_file(&chains);
    // The account id comes from the chains too (the node is down).
    let b_key = signer(DEV_KEYS[2]).unwrap();
    let (b_account, l1, _) = zkl_exodus::recover::request_exit(&file, &b_key, 2, USDC, 0).await.unwrap();
    assert_eq!((b_account, l1), (b_id, USDC));
    let b_request = chains[1].zklink.priorityQueue().call().await.unwrap().total - 1;
    assert_eq!(chains[1].zklink.priorityRequest(b_request).call().await.unwrap().sender, b_key.address());
    let bad = zkl_exodus::recover::request_exit(&file, &signer(c_key).unwrap(), 2, USDC, 0).await.unwrap_err();
    assert!(bad.to_string().contains("owns no account"), "{bad}");
    let key = signer(DEV_KEYS[1]).unwrap();
    let first = zkl_exodus::activate(&file, &key).await.unwrap();
    assert!(first.iter().all(|x| matches!(x, Activation::NotBefore { .. })), "{first:?}");
    for c in &chains {
        c.provider.anvil_increase_time(PERIOD + 1).await.unwrap();
        c.provider.evm_mine(None).await.unwrap();
    }
    let second = zkl_exodus::activate(&file, &key).await.unwrap();
    assert!(second.iter().all(|x| matches!(x, Activation::Activated { .. })), "{second:?}");
    // Claims wait out the sync period.
    assert!(claim(&file, &key, &keys, Default::default()).await.unwrap_err().to_string().contains("claims open at"));
    for c in &chains {
        c.provider.anvil_increase_time(PERIOD).await.unwrap();
        c.provider.evm_mine(None).await.unwrap();
    }

    // USDC: L(1) = 300, L(2) = 300 − 100 = 200 of P = 500; A and B hold 250 each: 150 + 100
    // each. ETH: all its liquidity is on chain 2, which pays A's 0.4995 and B's 0.5 there.
    let rebuilt = zkl_exodus::recover::rebuild(
        &file,
        executed,
        zkl_exodus::recover::RebuildOptions { check_every: 1, ..Default::default() },
    )
    .await
    .unwrap();
    let a_id = (0..rebuilt.state.account_count())
        .find(|i| rebuilt.state.account(*i).is_some_and(|x| x.owner == a.address))
        .unwrap();
    assert_eq!(rebuilt.state.balance(a_id, 0, USDC), usdc(250));
    assert_eq!(rebuilt.state.balance(a_id, 0, ETH), a_eth);
    let payouts = |eth: u128| {
        vec![(1, USDC, "150000000".to_string()), (2, ETH, eth.to_string()), (2, USDC, "100000000".to_string())]
    };
    let want = payouts(a_eth);
    let preview = zkl_exodus::recover::would_pay(&file, a_evm).await.unwrap();
    assert_eq!(preview.iter().map(|p| (p.chain, p.l1_token, p.amount.clone())).collect::<Vec<_>>(), want);
    let a_usdc_1 = TestERC20::new(usdc1, chains[0].provider.clone());
    let before = a_usdc_1.balanceOf(a_evm).call().await.unwrap();
    assert_eq!(claimed(&claim(&file, &key, &keys, Default::default()).await.unwrap()), want);
    assert_eq!(a_usdc_1.balanceOf(a_evm).call().await.unwrap() - before, U256::from(150_000_000u64));
    assert_eq!(
        claim(&file, &key, &keys, Default::default()).await.unwrap(),
        ClaimReport::default(),
        "a second run pays nothing"
    );
    let b_claims = claim(&file, &signer(DEV_KEYS[2]).unwrap(), &keys, Default::default()).await.unwrap();
    assert_eq!(claimed(&b_claims), payouts(eth / 2));
    // C has no L2 balance: its deposit comes back, to the unit.
    let report = claim(&file, &signer(c_key).unwrap(), &keys, Default::default()).await.unwrap();
    assert!(report.claims.is_empty());
    assert_eq!(report.refunds.iter().map(|p| (p.chain, p.amount.as_str())).collect::<Vec<_>>(), vec![(1, "7000000")]);
    assert_eq!(c_usdc.balanceOf(c_evm).call().await.unwrap() - c_before, U256::from(7_000_000u64));
    // Every chain paid out exactly the USDC liquidity it held; of the ETH, what is left on chain 2
    // is the trade's fee, the fee account's to claim.
    for c in &chains {
        assert_eq!(c.zklink.getToken(USDC).call().await.unwrap().liquidity, 0, "chain {}", c.config.l2_chain);
        let t = TestERC20::new(c.zklink.getToken(USDC).call().await.unwrap().addr, c.provider.clone());
        assert_eq!(t.balanceOf(*c.zklink.address()).call().await.unwrap(), U256::ZERO);
    }
    assert_eq!(chains[1].zklink.getToken(ETH).call().await.unwrap().liquidity, eth / 2000);
    assert_eq!(rebuilt.state.balance(0, 0, ETH), eth / 2000);
    drop(chains);
}
