//! The node against two anvil chains with the ZkLink contracts: deposits are credited after
//! their confirmations (and never if reorganised away before), blocks are committed, proven
//! (test-circuit proofs), relayed by 2-of-3 oracle signers and executed on both chains, and the
//! settler resumes after a restart without sending a second commit.

use std::time::Duration;
use zkl_rpc_api::{L1Stage, ZklApiClient};

use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::deploy::{Chain, ETH_TOKEN_ID, send, signer};
use zkl_l1 as l1;
use zkl_l1::settler::PendingTx;
use zkl_node::NodeConfig;
use zkl_node::sequencer::SequencerError;
use zkl_node::settlement::SettlementLayer;
use zkl_wallet::Wallet;

use crate::common::{proofs, wait_for, wallet};

const ETH: u128 = 1_000_000_000_000_000_000;

struct Env {
    a: Chain,
    b: Chain,
    config: NodeConfig,
    _dir: tempfile::TempDir,
}

/// Two chains (chain 1 with data availability) deployed with the node's genesis root, 2-of-3
/// oracle signers registered on both, and a node configuration pointing at them.
async fn setup(confirmations: u64, block_time_ms: u64) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.block_time_ms = block_time_ms;
    let devnet = zkl_devkit::devnet::deploy(config, 31_000, confirmations).await.unwrap();
    let mut config = devnet.config;
    for c in &mut config.l1.as_mut().unwrap().chains {
        c.poll_ms = 100;
        c.tx_timeout_ms = 600;
    }
    let mut chains = devnet.chains.into_iter();
    let (a, b) = (chains.next().unwrap(), chains.next().unwrap());
    Env { a, b, config, _dir: dir }
}

/// The wallet's L2 balance of ETH in sub-account 0 (0 if it has no account).
async fn l2_eth(w: &Wallet) -> u128 {
    w.account().await.map_or(0, |a| a.balance(0, 1))
}

async fn deposit(c: &Chain, key: &str, amount: u128) {
    let owner = signer(key).unwrap().address();
    let z = c.zklink_as(key).unwrap();
    send(
        z.depositETH(alloy::primitives::B256::left_padding_from(owner.as_slice()), 0, ETH_TOKEN_ID)
            .value(U256::from(amount)),
    )
    .await
    .unwrap();
}

async fn mine(p: &DynProvider, blocks: u64) {
    for _ in 0..blocks {
        p.evm_mine(None).await.unwrap();
    }
}

/// Mines a block on every chain every 200 ms (confirmations for the node's txs).
fn miner(providers: Vec<DynProvider>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            for p in &providers {
                let _ = p.evm_mine(None).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

async fn commits_of(c: &Chain, block: u32) -> usize {
    c.zklink.BlockCommit_filter().topic1(U256::from(block)).from_block(0).query().await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_transfer_withdraw_settle_on_both_chains() {
    let env = setup(2, 100).await;
    let mut node = l1::start_node(env.config.clone(), Default::default(), Some(proofs())).await.unwrap();
    let mining = miner(vec![env.a.provider.clone(), env.b.provider.clone()]);
    let (u1, u2) = (wallet(&node, DEV_KEYS[1]), wallet(&node, DEV_KEYS[2]));

    // Deposits: 5 ETH on chain 1 (credited after 2 confirmations), 3 ETH on chain 2 (chain 2's
    // liquidity for the withdrawal).
    deposit(&env.a, DEV_KEYS[1], 5 * ETH).await;
    deposit(&env.b, DEV_KEYS[2], 3 * ETH).await;
    wait_for("deposits credited", Duration::from_secs(30), async || {
        l2_eth(&u1).await == 5 * ETH && l2_eth(&u2).await == 3 * ETH
    })
    .await;

    // L2: key (ECDSA-authorised on chain 1: the commit carries the witness), a transfer, and a
    // withdrawal to chain 2.
    let recipient = Address::repeat_byte(0x42);
    u1.change_pubkey(1, ETH_TOKEN_ID, 0).await.unwrap();
    u1.transfer(0, u2.address, 0, ETH_TOKEN_ID, ETH, 0).await.unwrap();
    let to = zkl_types::Address::from_evm(recipient.0.0);
    let withdraw = u1.withdraw(0, 2, ETH_TOKEN_ID, ETH_TOKEN_ID, ETH / 2 + 1, 0, to).await.unwrap();
    assert_eq!(l2_eth(&u1).await, 5 * ETH - ETH - ETH / 2 - 1);

    // Sealed, committed on both chains, proven, sync hashes relayed, executed: paid to the wei.
    wait_for("withdrawal paid on chain 2", Duration::from_secs(90), async || {
        env.b.provider.get_balance(recipient).await.unwrap() == U256::from(ETH / 2 + 1)
    })
    .await;
    let last = node.storage.last_block().unwrap().unwrap_or(0);
    assert!(last >= 1);
    wait_for("every block executed on both chains", Duration::from_secs(60), async || {
        let a = env.a.zklink.blockCounters().call().await.unwrap();
        let b = env.b.zklink.blockCounters().call().await.unwrap();
        a.executed == last && b.executed == last
    })
    .await;
    for n in 1..=last {
        assert_eq!(commits_of(&env.a, n).await, 1, "block {n} committed once on chain 1");
        assert_eq!(commits_of(&env.b, n).await, 1, "block {n} committed once on chain 2");
        // Both chains committed the same sync hash; each received the other's of the last block
        // from the oracle (a run of blocks executes on its last block's sync hash).
        let sync_of = async |c: &Chain| {
            c.zklink.BlockCommit_filter().topic1(U256::from(n)).from_block(0).query().await.unwrap()[0].0.syncHash
        };
        let (sa, sb) = (sync_of(&env.a).await, sync_of(&env.b).await);
        assert_eq!(sa, sb);
        if n == last {
            assert!(env.a.zklink.isSyncHashReceived(2, sb).call().await.unwrap());
            assert!(env.b.zklink.isSyncHashReceived(1, sa).call().await.unwrap());
        }
    }
    // The node reports the settlement: per chain in zkl_l1Status, per tx in zkl_txStatus.
    wait_for("the withdrawal reported executed on both chains", Duration::from_secs(10), async || {
        let s = u1.tx_status(&withdraw).await.unwrap();
        s.stage(1) == Some(L1Stage::Executed) && s.stage(2) == Some(L1Stage::Executed)
    })
    .await;
    let http = jsonrpsee::http_client::HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr)).unwrap();
    let status = http.l1_status().await.unwrap();
    for (i, chain) in [1, 2].into_iter().enumerate() {
        assert_eq!(status[i].chain, chain);
        assert_eq!(status[i].counters.map(|c| c.executed), Some(last));
    }

    // Chain 1's liquidity is untouched by the chain-2 payout.
    assert_eq!(env.a.zklink.getToken(ETH_TOKEN_ID).call().await.unwrap().liquidity, 5 * ETH);
    assert_eq!(env.b.zklink.getToken(ETH_TOKEN_ID).call().await.unwrap().liquidity, 3 * ETH - ETH / 2 - 1);

    mining.abort();
    node.l1.take().unwrap().stop().await;
    let _ = node.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_deposit_reorged_away_is_never_credited() {
    // No block is sealed here (so the settlers send nothing and add no L1 blocks).
    let env = setup(3, 3_600_000).await;
    let mut node = l1::start_node(env.config.clone(), Default::default(), Some(proofs())).await.unwrap();
    let (u1, u2) = (wallet(&node, DEV_KEYS[1]), wallet(&node, DEV_KEYS[2]));
    let a = &env.a.provider;

    // Serial 0, mined then 2 more blocks: 3 confirmations, credited.
    deposit(&env.a, DEV_KEYS[1], 5 * ETH).await;
    mine(a, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(l2_eth(&u1).await, 0, "credited with 2 confirmations of 3");
    mine(a, 1).await;
    wait_for("deposit credited", Duration::from_secs(20), async || l2_eth(&u1).await == 5 * ETH).await;

    // Serial 1 (7 ETH), 2 confirmations, then reorganised away.
    let snapshot = a.anvil_snapshot().await.unwrap();
    deposit(&env.a, DEV_KEYS[2], 7 * ETH).await;
    mine(a, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(l2_eth(&u2).await, 0);
    assert!(a.anvil_revert(snapshot).await.unwrap());
    mine(a, 5).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(l2_eth(&u2).await, 0, "a deposit reorganised away is never credited");
    assert_eq!(node.sequencer.next_serial(1).await.unwrap(), 1);

    // The new serial 1 (3 ETH) is credited once, also across a restart of the L1 tasks.
    deposit(&env.a, DEV_KEYS[2], 3 * ETH).await;
    mine(a, 2).await;
    wait_for("new deposit credited", Duration::from_secs(20), async || l2_eth(&u2).await == 3 * ETH).await;
    node.l1.take().unwrap().stop().await;
    let restarted = l1::start(&env.config, node.storage.clone(), node.sequencer.clone(), proofs()).await.unwrap();
    mine(a, 3).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!((l2_eth(&u1).await, l2_eth(&u2).await), (5 * ETH, 3 * ETH));

    // The sequencer refuses a serial id it already applied.
    let dup = zkl_types::PriorityRequest::Deposit {
        chain: 1,
        serial_id: 1,
        sub: 0,
        l1_token: ETH_TOKEN_ID,
        l2_token: ETH_TOKEN_ID,
        l1_amount: 3 * ETH,
        owner: u2.address,
    };
    let err = node.sequencer.priority(dup).await.unwrap_err();
    assert!(
        matches!(&err, SequencerError::DuplicatePriority(m) if m.contains("duplicate priority request: chain 1 serial 1")),
        "{err}"
    );
    assert_eq!(l2_eth(&u2).await, 3 * ETH);

    restarted.unwrap().stop().await;
    let _ = node.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settler_resumes_after_restart_without_double_commit() {
    // Blocks are sealed only on request.
    let env = setup(1, 3_600_000).await;
    let mut node = l1::start_node(env.config.clone(), Default::default(), Some(proofs())).await.unwrap();
    let u1 = wallet(&node, DEV_KEYS[1]);
    deposit(&env.a, DEV_KEYS[1], 2 * ETH).await;
    wait_for("deposit credited", Duration::from_secs(20), async || l2_eth(&u1).await == 2 * ETH).await;

    // Chain 1 stops mining: the commit of block 1 stays in its mempool.
    let a = &env.a.provider;
    a.anvil_set_auto_mine(false).await.unwrap();
    let nonce_before = a.get_transaction_count(env.a.governor).await.unwrap();
    assert_eq!(node.sequencer.seal().await, Some(1));
    let key = "committer/1/pending";
    wait_for("commit sent on chain 1", Duration::from_secs(20), async || {
        node.storage.l1_get::<PendingTx>(key).unwrap().is_some_and(|p| !p.hashes.is_empty())
    })
    .await;
    let first: PendingTx = node.storage.l1_get(key).unwrap().unwrap();
    assert!(first.action.starts_with("commit"), "{}", first.action);

    // Restart the L1 tasks while the commit is unmined; after the timeout the new settler
    // replaces it (same nonce, higher fees) instead of sending a second one.
    node.l1.take().unwrap().stop().await;
    let restarted = l1::start(&env.config, node.storage.clone(), node.sequencer.clone(), proofs()).await.unwrap();
    wait_for("stuck commit replaced", Duration::from_secs(20), async || {
        node.storage.l1_get::<PendingTx>(key).unwrap().is_some_and(|p| p.hashes.len() >= 2)
    })
    .await;
    let replaced: PendingTx = node.storage.l1_get(key).unwrap().unwrap();
    assert_eq!(replaced.nonce, first.nonce);
    assert!(replaced.max_fee > first.max_fee && replaced.priority_fee > first.priority_fee);

    a.anvil_set_auto_mine(true).await.unwrap();
    mine(a, 1).await;
    wait_for("block 1 executed on both chains", Duration::from_secs(60), async || {
        let ca = env.a.zklink.blockCounters().call().await.unwrap();
        let cb = env.b.zklink.blockCounters().call().await.unwrap();
        ca.executed == 1 && cb.executed == 1
    })
    .await;
    assert_eq!(commits_of(&env.a, 1).await, 1);
    assert_eq!(commits_of(&env.b, 1).await, 1);
    // Chain 1's validator sent exactly: commit, receiveSyncHash, prove, receiveFinalBlock, execute.
    let nonce_after = a.get_transaction_count(env.a.governor).await.unwrap();
    assert_eq!(nonce_after - nonce_before, 5);

    restarted.unwrap().stop().await;
    let _ = node.handle.stop();
}
