//! Liveness when a chain refuses a sealed block anyway: the settler halts settlement and says
//! which block, op and error; the operator's `zkl_revertBlocks` reverts the block on every chain,
//! drops the refused op and re-sequences the other txs, and settlement resumes with no valid tx
//! lost.
//!
//! The refusal is produced the way it happens in practice: the node read an on-chain
//! ChangePubKey authorisation one block deep (confirmations = 1), then the chain reorganised it
//! away (anvil snapshot / revert), so the contract no longer holds the fact when the block comes.
//!
//! And the settler's batching when blocks trickle in: with `batch_wait_ms`, blocks sealed one at a
//! time are committed and proven together.

use std::time::{Duration, Instant};

use alloy::providers::ext::AnvilApi;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use serde_json::Value;
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::deploy::Chain;
use zkl_devkit::devnet::DevnetOptions;
use zkl_node::settlement::{HALT_KEY, Halt};
use zkl_node::{Node, NodeConfig};
use zkl_rpc_api::{AdminApiClient, L1Stage, Record, TxStatus, method};
use zkl_types::PriorityRequest;
use zkl_wallet::Admin;

use crate::common::{ADMIN, executed_everywhere, start_on_devnet_with, wait_for, wallet};

const ETH: u16 = 1;
const TIMEOUT: Duration = Duration::from_secs(60);

struct Env {
    node: Node,
    chains: Vec<Chain>,
    admin: Admin,
    url: String,
    _dir: tempfile::TempDir,
}

/// Two chains (confirmations 1, test verifier) and a node whose blocks the test seals, at the
/// smallest of 4, 16 or 64 chunks that fits them.
async fn setup(evm_base: u64) -> Env {
    setup_with(evm_base, 0).await
}

/// [`setup`] with the settlers' `batch_wait_ms`.
async fn setup_with(evm_base: u64, batch_wait_ms: u64) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.block_time_ms = 60_000; // blocks are sealed by the test
    config.block_capacities = vec![4, 16];
    let opts = DevnetOptions { evm_base, confirmations: 1, ..DevnetOptions::default() };
    let (node, chains) = start_on_devnet_with(config, opts, |c| {
        c.tx_timeout_ms = 2_000;
        c.batch_wait_ms = batch_wait_ms;
    })
    .await;
    let url = format!("http://{}", node.rpc_addr);
    let admin = Admin::new(&url, ADMIN).unwrap();
    Env { node, chains, admin, url, _dir: dir }
}

impl Env {
    async fn stop(mut self) {
        if let Some(l1) = self.node.l1.take() {
            l1.stop().await;
        }
        let _ = self.node.handle.stop();
    }

    async fn halt(&self) -> Halt {
        wait_for("the halt", TIMEOUT, async || self.node.storage.l1_get::<Halt>(HALT_KEY).unwrap().is_some()).await;
        self.node.storage.l1_get(HALT_KEY).unwrap().unwrap()
    }

    async fn seal(&self) -> u32 {
        self.admin.seal().await.unwrap().expect("a block")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_block_halts_settlement_until_the_operator_reverts_it() {
    let env = setup(34_000).await;
    let (node, chains, admin, url) = (&env.node, &env.chains, &env.admin, &env.url);
    let (a, b) = (wallet(node, DEV_KEYS[1]), wallet(node, DEV_KEYS[2]));

    // Both have ETH; A has its key. Everything so far is settled on both chains.
    a.deposit(1, ETH, ETH, "1", 0).await.unwrap();
    b.deposit(1, ETH, ETH, "1", 0).await.unwrap();
    wait_for("the deposits credited", TIMEOUT, async || a.account().await.is_ok() && b.account().await.is_ok()).await;
    a.change_pubkey(1, ETH, 0).await.unwrap();
    admin.seal().await.unwrap();
    let settled = node.storage.last_block().unwrap().unwrap();
    // Two deposits and a ChangePubKey (9 chunks): sealed at 16.
    assert_eq!(node.storage.block(settled).unwrap().unwrap().capacity, 16);
    wait_for("block 1 executed on both chains", TIMEOUT, async || executed_everywhere(chains, settled).await).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the settlers' last txs confirmed

    // B authorises its key on chain 1; the node reads the fact (one block deep) and accepts B's
    // ChangePubKey; A sends a valid transfer. Then chain 1 drops the fact in a reorganisation.
    let snapshot = chains[0].provider.anvil_snapshot().await.unwrap();
    b.authorize_pubkey_onchain(1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let cpk = loop {
        match b.change_pubkey_with(1, ETH, 0, true).await {
            Ok(hash) => break hash,
            Err(e) if Instant::now() < deadline && e.to_string().contains("no on-chain authorisation") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("ChangePubKey refused: {e}"),
        }
    };
    let transfer = a.transfer(0, b.address, 0, ETH, 100_000_000_000_000_000, 0).await.unwrap();
    assert!(chains[0].provider.anvil_revert(snapshot).await.unwrap());
    let refused_block = env.seal().await;

    // Chain 1 refuses it: settlement halts, naming the block, the op and the contract's error.
    let halt = env.halt().await;
    assert_eq!((halt.chain, halt.block), (1, refused_block));
    assert!(halt.error.contains("ChangePubKeyAuth"), "{}", halt.error);
    let op = halt.op.clone().expect("the refused op is located");
    assert_eq!((op.kind.as_str(), op.hash.as_str()), ("change_pub_key", cpk.as_str()));
    let status = admin.l1_status().await.unwrap();
    let halt0 = status[0].halt.as_ref().expect("chain 1 halted");
    assert_eq!(halt0.block, refused_block);
    assert_eq!(halt0.op.as_ref().map(|o| o.hash.as_str()), Some(cpk.as_str()));
    assert!(status[1].halt.is_none());
    // Nothing new is accepted meanwhile, with the reason.
    let refused = a.transfer(0, b.address, 0, ETH, 1, 0).await.unwrap_err().to_string();
    assert!(refused.contains("settlement is halted") && refused.contains("ChangePubKeyAuth"), "{refused}");
    assert_eq!(admin.seal().await.unwrap(), None);
    // Operator methods need the admin token.
    let http = HttpClientBuilder::default().build(url).unwrap();
    let denied = http.revert_blocks("guess".into(), None).await.unwrap_err();
    assert!(denied.to_string().contains("unknown admin token"), "{denied}");
    let denied = http.request::<Value, _>(method::SEAL_BLOCK, rpc_params![]).await.unwrap_err();
    assert!(denied.to_string().contains("nvalid params"), "{denied}");

    // Chain 2 took the block (its contract has nothing to refuse in it) unless the halt came
    // first; either way it must end up with the re-sequenced block.
    let chain2_took_it = chains[1].zklink.blockCounters().call().await.unwrap().committed >= refused_block;
    eprintln!("chain 2 committed the refused block before the halt: {chain2_took_it}");

    // The operator reverts: B's ChangePubKey is dropped, A's transfer re-sequenced.
    let report = admin.revert_blocks(None, None).await.unwrap();
    assert_eq!(report.from_block, refused_block);
    assert_eq!(report.dropped, std::slice::from_ref(&cpk));
    assert_eq!(report.requeued, 1);
    assert!(node.storage.l1_get::<Halt>(HALT_KEY).unwrap().is_none());
    let resealed = env.seal().await;
    assert_eq!(resealed, refused_block);
    // One transfer: sealed at 4, and proven and executed at that capacity on both chains.
    assert_eq!(node.storage.block(resealed).unwrap().unwrap().capacity, 4);
    wait_for("the new block executed on both chains", TIMEOUT, async || executed_everywhere(chains, resealed).await)
        .await;

    let reverts = chains[1].zklink.BlocksRevert_filter().from_block(0).query().await.unwrap();
    if chain2_took_it {
        assert_eq!(reverts.len(), 1, "chain 2 reverts what it had committed");
    }

    // Nothing acknowledged is lost: the transfer settled, the ChangePubKey is rejected with why.
    let t = a.tx_status(&transfer).await.unwrap();
    assert_eq!(t.status(), &TxStatus::Included { block: resealed });
    let c = b.tx_status(&cpk).await.unwrap();
    assert!(matches!(c.status(), TxStatus::Rejected { reason } if reason.contains("refused by chain 1")), "{c:?}");
    let acc = b.account().await.unwrap();
    assert_eq!(acc.pubkey_hash, format!("0x{}", "00".repeat(20)));
    assert_eq!(acc.balances[0].amount, 1_100_000_000_000_000_000);
    let status = admin.l1_status().await.unwrap();
    assert!(status[0].halt.is_none() && status[0].reverting_from.is_none(), "{status:?}");
    // Settlement goes on.
    a.transfer(0, b.address, 0, ETH, 1, 0).await.unwrap();
    let next = env.seal().await;
    wait_for("the next block executed on both chains", TIMEOUT, async || executed_everywhere(chains, next).await).await;
    env.stop().await;
}

/// A deposit the node credited one block deep, then reorganised away: chain 1's queue no longer
/// has it, so the block is refused. The operator's revert drops the deposit (and its chain's
/// later requests), the watcher reads the chain's queue again, and what the chain really holds
/// is credited; a transfer to the depositor that depended on the lost deposit is re-sequenced
/// into what is valid now (it creates the account instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganised_deposit_is_dropped_and_the_chain_read_again() {
    let env = setup(35_000).await;
    let (node, chains, admin) = (&env.node, &env.chains, &env.admin);
    let (a, b) = (wallet(node, DEV_KEYS[1]), wallet(node, DEV_KEYS[2]));
    a.deposit(1, ETH, ETH, "1", 0).await.unwrap();
    wait_for("A's deposit credited", TIMEOUT, async || a.account().await.is_ok()).await;
    a.change_pubkey(1, ETH, 0).await.unwrap();
    let settled = env.seal().await;
    wait_for("block 1 executed on both chains", TIMEOUT, async || executed_everywhere(chains, settled).await).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let snapshot = chains[0].provider.anvil_snapshot().await.unwrap();
    b.deposit(1, ETH, ETH, "2", 0).await.unwrap();
    wait_for("B's deposit credited", TIMEOUT, async || b.account().await.is_ok()).await;
    let transfer = a.transfer(0, b.address, 0, ETH, 100_000_000_000_000_000, 0).await.unwrap();
    assert!(chains[0].provider.anvil_revert(snapshot).await.unwrap());
    let refused_block = env.seal().await;
    let halt = env.halt().await;
    assert_eq!((halt.chain, halt.block), (1, refused_block));
    assert!(halt.error.contains("PriorityQueueExhausted"), "{}", halt.error);
    let op = halt.op.clone().expect("the refused op is located");
    let serial0 = zkl_types::PriorityRequest::FullExit {
        chain: 1,
        serial_id: 1,
        account: 0,
        sub: 0,
        owner: zkl_types::Address::ZERO,
        l1_token: 0,
        l2_token: 0,
    };
    assert_eq!(op.kind, "deposit");
    assert_eq!(op.hash, format!("0x{}", hex::encode(serial0.hash())), "chain 1's request 1");

    let report = admin.revert_blocks(None, None).await.unwrap();
    assert_eq!(report.dropped, std::slice::from_ref(&op.hash));
    assert_eq!(report.requeued, 1);
    // The request is looked up by its hash like a tx: rejected, with why.
    let dropped = b.tx_status(&op.hash).await.unwrap();
    assert!(matches!(dropped.status(), TxStatus::Rejected { reason } if reason.contains("read again")), "{dropped:?}");
    let Record::Priority(p) = &dropped.record else { panic!("a priority request: {dropped:?}") };
    assert!(matches!(p.request, PriorityRequest::Deposit { l1_amount: 2_000_000_000_000_000_000, .. }), "{p:?}");
    // The chain really holds a different request 1 now: a deposit of 3 ETH by B.
    b.deposit(1, ETH, ETH, "3", 0).await.unwrap();
    wait_for("B's new deposit credited", TIMEOUT, async || {
        b.account().await.is_ok_and(|acc| acc.balances[0].amount == 3_100_000_000_000_000_000)
    })
    .await;
    let last = env.seal().await;
    wait_for("every block executed on both chains", TIMEOUT, async || executed_everywhere(chains, last).await).await;
    assert!(matches!(a.tx_status(&transfer).await.unwrap().status(), TxStatus::Included { .. }));
    let request = b.tx_status(&op.hash).await.unwrap();
    assert!(matches!(request.status(), TxStatus::Included { .. }), "{request:?}");
    let Record::Priority(p) = &request.record else { panic!("a priority request: {request:?}") };
    assert!(matches!(p.request, PriorityRequest::Deposit { l1_amount: 3_000_000_000_000_000_000, .. }), "{p:?}");
    wait_for("the request reported executed on both chains", TIMEOUT, async || {
        let s = b.tx_status(&op.hash).await.unwrap();
        s.stage(1) == Some(L1Stage::Executed) && s.stage(2) == Some(L1Stage::Executed)
    })
    .await;
    env.stop().await;
}

/// Blocks sealed a second apart, each proof ready at once: with `batch_wait_ms` the settler waits
/// for more before committing and before proving, so three blocks sealed within the wait are
/// committed by one transaction and proven by one (batched verification) on each chain. With a
/// wait of 0 (the other tests) each block goes alone. Then a commit and a prove batch wait at
/// the same time, and both go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_that_trickle_in_are_committed_and_proven_together() {
    let env = setup_with(37_000, 6_000).await;
    let (node, chains) = (&env.node, &env.chains);
    let (a, b) = (wallet(node, DEV_KEYS[1]), wallet(node, DEV_KEYS[2]));
    a.deposit(1, ETH, ETH, "1", 0).await.unwrap();
    wait_for("the deposit credited", TIMEOUT, async || a.account().await.is_ok()).await;
    // A second apart: without the wait, each block is committed and proven before the next.
    let first = env.seal().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.change_pubkey(1, ETH, 0).await.unwrap();
    env.seal().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.transfer(0, b.address, 0, ETH, 1, 0).await.unwrap();
    let last = env.seal().await;
    assert_eq!(last, first + 2);
    wait_for("the blocks executed on both chains", TIMEOUT, async || executed_everywhere(chains, last).await).await;
    for chain in chains {
        let z = &chain.zklink;
        let tx_of = |logs: Vec<alloy::rpc::types::Log>| {
            logs.iter().map(|l| l.transaction_hash.expect("mined")).collect::<std::collections::BTreeSet<_>>()
        };
        let commits = z.BlockCommit_filter().from_block(0).query().await.unwrap();
        let proofs = z.BlockProven_filter().from_block(0).query().await.unwrap();
        assert_eq!((commits.len(), proofs.len()), (3, 3));
        assert_eq!(tx_of(commits.into_iter().map(|(_, l)| l).collect()).len(), 1, "one commit tx");
        assert_eq!(tx_of(proofs.into_iter().map(|(_, l)| l).collect()).len(), 1, "one prove tx");
    }
    // A commit batch and a prove batch waiting at the same time each keep their own clock: a
    // block sealed once the previous one is committed (so its proof waits) still settles.
    a.transfer(0, b.address, 0, ETH, 1, 0).await.unwrap();
    let fourth = env.seal().await;
    let committed = async || {
        let mut all = true;
        for c in chains {
            all &= c.zklink.blockCounters().call().await.unwrap().committed >= fourth;
        }
        all
    };
    wait_for("block 4 committed on both chains", TIMEOUT, committed).await;
    a.transfer(0, b.address, 0, ETH, 1, 0).await.unwrap();
    let fifth = env.seal().await;
    wait_for("block 5 executed on both chains", TIMEOUT, async || executed_everywhere(chains, fifth).await).await;
    env.stop().await;
}
