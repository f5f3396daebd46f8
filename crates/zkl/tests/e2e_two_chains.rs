//! The project's end-to-end scenario on `zkl devnet --capacity 7 --capacities 4` (two anvil
//! chains, the block circuit's verifiers of both capacities on both, real Groth16 proofs from the
//! devnet's `zkl prover` worker, blocks sealed at the smallest capacity that fits):
//!
//! A deposits 1,000 USDC on chain 1; B deposits 1 ETH on chain 2; B's sell order for 1 ETH at
//! 1,000 USDC rests on the devnet's exchange and is filled by two buy orders of A (0.4 and 0.6
//! ETH), each fill an OrderMatching the exchange hands to the node as its matcher; A withdraws its ETH on chain 2 and B its USDC on chain 1; a USDC withdrawal on chain 2
//! (which holds no USDC) is rejected with the liquidity error. Every block is committed, proven
//! and executed on both chains, and the L1 balances of A, B and the contracts are checked to the
//! wei, fees included (maker 5 bps in USDC, taker 10 bps in ETH, kept by the rollup's fee account).
//! The devnet's indexer then has the deposits, withdrawals and trades, executed on both chains.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address as EvmAddress, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};

use jsonrpsee::http_client::HttpClientBuilder;

use serde_json::Value;
use std::collections::BTreeMap;
use zkl_contracts::bindings::{TestERC20, ZkLink};

use zkl_rpc_api::exchange::{OrderStatus, TimeInForce};
use zkl_rpc_api::explorer::{CandleQuery, ExplorerApiClient, HistoryQuery, TradeQuery};
use zkl_rpc_api::{L1Stage, ZklApiClient};
use zkl_types::Op;
use zkl_wallet::{Exchange, Wallet};

const ETH: u128 = 1_000_000_000_000_000_000;
const USDC_L1: u128 = 1_000_000; // 6 decimals
const ETH_ID: u16 = 1;
const USDC_ID: u16 = 2;

/// Kills the devnet (and, through it, its anvils and prover) when the test ends, even on failure.
struct Devnet(Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

struct Chain {
    provider: DynProvider,
    zklink: ZkLink::ZkLinkInstance<DynProvider>,
    usdc: TestERC20::TestERC20Instance<DynProvider>,
}

fn key(hex_key: &str) -> [u8; 32] {
    hex::decode(hex_key.trim_start_matches("0x")).unwrap().try_into().unwrap()
}

fn evm_address(hex_key: &str) -> EvmAddress {
    hex_key.parse::<alloy::signers::local::PrivateKeySigner>().unwrap().address()
}

async fn wait_for<F: AsyncFn() -> bool>(what: &str, timeout: Duration, f: F) {
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn l2_balance(w: &Wallet, token: u16) -> u128 {
    w.account().await.map_or(0, |a| a.balance(0, token))
}

/// Gas paid by the L1 tx `hash` (wei).
async fn gas_paid(p: &DynProvider, hash: &str) -> U256 {
    let r = p.get_transaction_receipt(hash.parse::<B256>().unwrap()).await.unwrap().unwrap();
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_trade_withdraw_across_two_chains_with_real_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args([
            "devnet",
            "--capacity",
            "7",
            "--capacities",
            "4",
            "--data-dir",
            dir.path().join("devnet").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn zkl devnet");
    let stdout = child.stdout.take().unwrap();
    let _devnet = Devnet(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad first line {line:?}: {e}"));
    assert_eq!(v["proofs"], "block circuit (zkl prover worker)");
    let rpc = v["rpc"].as_str().unwrap().to_string();
    // Every deposit pays the contracts' priority fee on top (wei).
    let fee = U256::from(v["priority_fee_wei"].as_str().unwrap().parse::<u128>().unwrap());
    assert!(fee > U256::ZERO);
    let node = HttpClientBuilder::default().build(&rpc).unwrap();
    let keys: Vec<String> = serde_json::from_value(v["funded_keys"].clone()).unwrap();
    let (key_a, key_b) = (keys[0].as_str(), keys[1].as_str());
    let chains: Vec<Chain> = v["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let provider = ProviderBuilder::new().connect_http(c["rpc"].as_str().unwrap().parse().unwrap()).erased();
            let zklink = ZkLink::new(c["zklink"].as_str().unwrap().parse().unwrap(), provider.clone());
            let usdc = TestERC20::new(c["erc20"]["2"].as_str().unwrap().parse().unwrap(), provider.clone());
            Chain { provider, zklink, usdc }
        })
        .collect();
    let (c1, c2) = (&chains[0], &chains[1]);
    let (a, b) = (Wallet::new(&key(key_a), &rpc).unwrap(), Wallet::new(&key(key_b), &rpc).unwrap());
    let (a_evm, b_evm) = (evm_address(key_a), evm_address(key_b));
    let eth_of = async |c: &Chain, who: EvmAddress| c.provider.get_balance(who).await.unwrap();
    let usdc_of = async |c: &Chain, who: EvmAddress| c.usdc.balanceOf(who).call().await.unwrap();
    let (a_usdc1, a_eth2) = (usdc_of(c1, a_evm).await, eth_of(c2, a_evm).await);
    let (b_usdc1, b_eth2) = (usdc_of(c1, b_evm).await, eth_of(c2, b_evm).await);

    // Deposits: A 1,000 USDC on chain 1, B 1 ETH on chain 2; credited after the confirmations.
    a.deposit(1, USDC_ID, USDC_ID, "1000", 0).await.unwrap();
    let b_deposit = b.deposit(2, ETH_ID, ETH_ID, "1", 0).await.unwrap();
    wait_for("both deposits credited", Duration::from_secs(60), async || {
        l2_balance(&a, USDC_ID).await == 1000 * ETH && l2_balance(&b, ETH_ID).await == ETH
    })
    .await;
    a.change_pubkey(1, USDC_ID, 0).await.unwrap();
    b.change_pubkey(2, ETH_ID, 0).await.unwrap();

    // Through the devnet's exchange: B's sell of 1 ETH at 1,000 USDC rests (maker); A buys 0.4,
    // then 0.6 (taker); each fill is an OrderMatching the exchange hands to the node.
    let ex = Exchange::new(v["exchange"]["rpc"].as_str().unwrap()).unwrap();
    let tif = TimeInForce::Gtc;
    let sell = b.place_order(&ex, 0, None, ETH_ID, USDC_ID, ETH, 1000 * ETH, true, (5, 10), tif).await.unwrap();
    assert_eq!(sell.order.status, OrderStatus::Open);
    for part in [4 * ETH / 10, 6 * ETH / 10] {
        let buy = a.place_order(&ex, 0, None, ETH_ID, USDC_ID, part, 1000 * ETH, false, (5, 10), tif).await.unwrap();
        assert_eq!(buy.order.status, OrderStatus::Filled, "{buy:?}");
        assert_eq!(
            buy.fills.iter().map(|f| (f.maker_order, f.base_amount)).collect::<Vec<_>>(),
            [(sell.order.id, part)]
        );
    }
    // Taker fee 10 bps of the ETH A receives; maker fee 5 bps of the USDC B receives.
    let (a_eth, b_usdc) = (ETH - ETH / 1000, 1000 * ETH - ETH / 2);
    assert_eq!(l2_balance(&a, ETH_ID).await, a_eth);
    assert_eq!(l2_balance(&b, USDC_ID).await, b_usdc);
    assert_eq!((l2_balance(&a, USDC_ID).await, l2_balance(&b, ETH_ID).await), (0, 0));
    // B's order is filled: nothing of it rests.
    assert!(b.orders(&ex).await.unwrap().is_empty());

    // Withdrawals on the other chain than the deposit; USDC cannot leave from chain 2.
    let err = b.withdraw(0, 2, USDC_ID, USDC_ID, ETH, 0, b.address).await.unwrap_err().to_string();
    assert!(err.contains("liquidity"), "{err}");
    a.withdraw(0, 2, ETH_ID, ETH_ID, a_eth, 0, a.address).await.unwrap();
    b.withdraw(0, 1, USDC_ID, USDC_ID, b_usdc, 0, b.address).await.unwrap();

    // Every block sealed so far committed, proven and executed on both chains.
    let last = async || {
        let root = node.state_root().await.unwrap();
        (u64::from(root.block), root.pending_ops)
    };
    wait_for("all ops sealed", Duration::from_secs(30), async || last().await.1 == 0).await;
    let (sealed, _) = last().await;
    wait_for("every block executed on both chains", Duration::from_secs(1500), async || {
        let mut done = true;
        for c in [c1, c2] {
            done &= u64::from(c.zklink.blockCounters().call().await.unwrap().executed) == sealed;
        }
        done
    })
    .await;

    // Blocks were sealed at the smallest capacity that fits them, 4 or 7 chunks, and proven with
    // that capacity's keys and verifier.
    let mut capacities = Vec::new();
    for n in 1..=sealed as u32 {
        capacities.push(ZklApiClient::block(&node, n).await.unwrap().capacity);
    }
    println!("block capacities: {capacities:?}");
    assert!(capacities.iter().all(|c| [4, 7].contains(c)), "{capacities:?}");

    // L1, to the wei. A: −1,000 USDC on chain 1, +0.999 ETH on chain 2 (A sent nothing there).
    assert_eq!(usdc_of(c1, a_evm).await, a_usdc1 - U256::from(1000 * USDC_L1));
    assert_eq!(eth_of(c2, a_evm).await, a_eth2 + U256::from(a_eth));
    // B: +999.5 USDC on chain 1; −1 ETH, the priority fee and the deposit's gas on chain 2.
    assert_eq!(usdc_of(c1, b_evm).await, b_usdc1 + U256::from(999_500_000u128));
    let b_paid = U256::from(ETH) + fee + gas_paid(&c2.provider, &b_deposit).await;
    assert_eq!(eth_of(c2, b_evm).await, b_eth2 - b_paid);
    // The contracts keep the fees (0.5 USDC on chain 1, 0.001 ETH on chain 2) as liquidity, with
    // the matcher's 0.1 ETH deposit on chain 1.
    let usdc1 = c1.zklink.getToken(USDC_ID).call().await.unwrap();
    assert_eq!(usdc1.liquidity, ETH / 2);
    assert_eq!(usdc_of(c1, *c1.zklink.address()).await, U256::from(USDC_L1 / 2));
    let eth2 = c2.zklink.getToken(ETH_ID).call().await.unwrap();
    assert_eq!(eth2.liquidity, ETH / 1000);
    // Chain 2's contract also holds B's priority fee, collected for the governor.
    assert_eq!(eth_of(c2, *c2.zklink.address()).await, U256::from(ETH / 1000) + fee);
    assert_eq!(c2.zklink.collectedFees().call().await.unwrap(), fee);
    assert_eq!(c1.zklink.collectedFees().call().await.unwrap(), fee * U256::from(2u64)); // A's and the matcher's
    assert_eq!(c1.zklink.getToken(ETH_ID).call().await.unwrap().liquidity, ETH / 10);
    assert_eq!(c2.zklink.getToken(USDC_ID).call().await.unwrap().liquidity, 0);
    // Nothing was left pending: the payouts went straight to A and B.
    assert_eq!(c2.zklink.pendingBalance(a_evm, ETH_ID).call().await.unwrap(), 0);
    assert_eq!(c1.zklink.pendingBalance(b_evm, USDC_ID).call().await.unwrap(), 0);
    // The fee account (0) holds the trading fees on L2.
    let fees = node.account("0".into()).await.unwrap();
    let fee_of = |t: u16| fees.balance(0, t);
    assert_eq!((fee_of(ETH_ID), fee_of(USDC_ID)), (ETH / 1000, ETH / 2));

    // The devnet's indexer (its own PostgreSQL server) has every block with its stage on both
    // chains, the deposits and withdrawals executed everywhere, and the two trades.
    let explorer = HttpClientBuilder::default().build(v["indexer"]["rpc"].as_str().expect("an indexer")).unwrap();
    wait_for("the indexer caught up with both chains", Duration::from_secs(30), async || {
        let s = explorer.status().await.unwrap();
        s.block == sealed as u32
            && s.chains.len() == 2
            && s.chains.iter().all(|c| u64::from(c.counters.executed) == sealed)
    })
    .await;
    let executed: BTreeMap<String, L1Stage> = [("1".into(), L1Stage::Executed), ("2".into(), L1Stage::Executed)].into();
    let all = HistoryQuery::default();
    let deposits = explorer.deposits(all.clone()).await.unwrap().items;
    assert_eq!(deposits.len(), 3, "the matcher's, A's and B's");
    assert!(deposits.iter().all(|d| d.l1 == executed));
    let a_id = a.account().await.unwrap().id;
    let mine = HistoryQuery { account: Some(a_id), ..Default::default() };
    let withdrawals = explorer.withdrawals(mine).await.unwrap().items;
    assert!(matches!(&withdrawals[..], [w] if matches!(w.op, Op::Withdraw(o) if o.chain == 2 && o.amount == a_eth)));
    assert_eq!(withdrawals[0].l1, executed);
    let trades = explorer.trades(TradeQuery { base: Some(ETH_ID), quote: Some(USDC_ID), ..Default::default() });
    let trades = trades.await.unwrap().items;
    let fills: Vec<_> = trades.iter().rev().map(|t| (t.price, t.base_amount, t.taker)).collect();
    assert_eq!(fills, [(1000 * ETH, 4 * ETH / 10, a_id), (1000 * ETH, 6 * ETH / 10, a_id)]);
    let candles = CandleQuery { base: ETH_ID, quote: USDC_ID, interval: 86_400, from: None, to: None, limit: None };
    let volume: u128 = explorer.candles(candles).await.unwrap().iter().map(|c| c.volume).sum();
    assert_eq!(volume, ETH);
}
