//! Faults around Layer 1, with the real `zkl node` process: `kill -9` while a commit is in
//! flight (the restarted node replaces it with the same nonce: committed once, nothing lost), and
//! a chain that stops answering (SIGSTOP on its anvil) and comes back (caught up with).

use std::process::Command;
use std::time::{Duration, Instant};
use zkl_rpc_api::AdminApiClient;

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::deploy::Chain;
use zkl_node::NodeConfig;
use zkl_wallet::Wallet;

use crate::common;
use common::{NodeProc, start};

const ADMIN: &str = "operator";
const ETH: u16 = 1;

fn wallet(node: &NodeProc, key: &str) -> Wallet {
    Wallet::new(&hex::decode(&key[2..]).unwrap().try_into().unwrap(), &node.rpc).unwrap()
}

async fn wait_for<F: AsyncFn() -> bool>(what: &str, f: F) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn executed_everywhere(chains: &[Chain], block: u32) -> bool {
    for c in chains {
        if c.zklink.blockCounters().call().await.unwrap().executed < block {
            return false;
        }
    }
    true
}

async fn seal(node: &NodeProc) -> u32 {
    node.client.seal_block(ADMIN.into()).await.unwrap().expect("a block")
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_commit_and_a_frozen_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.block_time_ms = 60_000; // blocks are sealed by the test
    config.admin = Some(zkl_node::config::AdminConfig { tokens: vec![ADMIN.into()] });
    let devnet = zkl_devkit::devnet::deploy(config, 36_000, 1).await.unwrap();
    let mut config = devnet.config;
    for c in &mut config.l1.as_mut().unwrap().chains {
        c.poll_ms = 100;
        c.tx_timeout_ms = 1_000;
    }
    let chains = devnet.chains;
    let config_path = dir.path().join("node.json");
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();

    let node = start(&config_path);
    let (a, b) = (wallet(&node, DEV_KEYS[1]), wallet(&node, DEV_KEYS[2]));
    a.deposit(1, ETH, ETH, "2", 0).await.unwrap();
    wait_for("the deposit credited", async || a.account().await.is_ok()).await;
    a.change_pubkey(1, ETH, 0).await.unwrap();
    let transfer = a.transfer(0, b.address, 0, ETH, 500_000_000_000_000_000, 0).await.unwrap();

    // Chain 1 stops mining; the commit of block 1 waits in its mempool when the node is killed.
    let p1 = &chains[0].provider;
    let validator = chains[0].governor;
    let nonce_before = p1.get_transaction_count(validator).await.unwrap();
    p1.anvil_set_auto_mine(false).await.unwrap();
    assert_eq!(seal(&node).await, 1);
    wait_for("the commit in chain 1's mempool", async || {
        p1.get_transaction_count(validator).pending().await.unwrap() > nonce_before
    })
    .await;
    drop(node); // SIGKILL

    // Restarted: the acknowledged txs are there, the commit is replaced (same nonce), not doubled.
    let node = start(&config_path);
    let (a, b) = (wallet(&node, DEV_KEYS[1]), wallet(&node, DEV_KEYS[2]));
    assert_eq!(a.tx_status(&transfer).await.unwrap().status().block(), Some(1));
    tokio::time::sleep(Duration::from_millis(1_500)).await; // past tx_timeout_ms: replaced
    p1.anvil_set_auto_mine(true).await.unwrap();
    p1.evm_mine(None).await.unwrap();
    wait_for("block 1 executed on both chains", async || executed_everywhere(&chains, 1).await).await;
    let commits = chains[0].zklink.BlockCommit_filter().topic1(U256::from(1)).from_block(0).query().await.unwrap();
    assert_eq!(commits.len(), 1, "block 1 committed once on chain 1");
    // Chain 1's validator sent exactly: commit, receiveSyncHash, prove, receiveFinalBlock, execute.
    assert_eq!(p1.get_transaction_count(validator).await.unwrap() - nonce_before, 5);
    assert_eq!(b.account().await.unwrap().balances[0].amount, 500_000_000_000_000_000);

    // Chain 2 stops answering (SIGSTOP) while blocks keep coming, then comes back: every block
    // settles on both chains.
    let frozen = chains[1].anvil.pid();
    signal(frozen, "-STOP");
    a.transfer(0, b.address, 0, ETH, 1, 0).await.unwrap();
    let two = seal(&node).await;
    a.transfer(0, b.address, 0, ETH, 2, 0).await.unwrap();
    let three = seal(&node).await;
    assert_eq!((two, three), (2, 3));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!executed_everywhere(&chains[..1], 2).await, "chain 1 cannot execute without chain 2's sync hash");
    signal(frozen, "-CONT");
    wait_for("blocks 2 and 3 executed on both chains", async || executed_everywhere(&chains, 3).await).await;
    drop(node);
}
