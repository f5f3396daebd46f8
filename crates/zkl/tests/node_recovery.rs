//! `kill -9` the node at random moments while transfers are in flight; after every restart each
//! acknowledged tx is still there, nothing is applied twice, and balances equal a model built
//! from the txs the node holds.

use std::collections::HashMap;
use std::time::Duration;
use zkl_rpc_api::{AdminApiClient, Record, ZklApiClient};

use jsonrpsee::http_client::HttpClient;
use zkl_node::NodeConfig;
use zkl_state::testkit::{ETH, ONE, User, deposit};
use zkl_types::{SignedTx, Tx};

use crate::common;
use common::start;

async fn eth_balance(c: &HttpClient, who: &User) -> (u32, u128) {
    let acc = c.account(who.address.to_string()).await.unwrap();
    (acc.nonce, acc.balance(0, ETH))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_never_loses_an_acknowledged_tx() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.dev_priority_ops = true;
    config.block_capacity = 8;
    config.block_time_ms = 50;
    config.admin = Some(zkl_node::config::AdminConfig { tokens: vec!["operator".into()] });
    let config_path = dir.path().join("node.json");
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();

    let users: Vec<User> = (1..=4).map(User::new).collect();
    // Set-up: deposits and keys.
    {
        let node = start(&config_path);
        for (i, u) in users.iter().enumerate() {
            let req = deposit(1, i as u64, u.address, ETH, ETH, 100 * ONE);
            node.client.dev_priority_op(req).await.unwrap();
            let id = 2 + i as u32;
            node.client.send_tx(u.change_pubkey(id, 0, 1, ETH, 0)).await.unwrap();
        }
    }
    // Model: every tx the node holds (acknowledged or found after the crash).
    let mut expected: HashMap<u32, u128> = (2..6).map(|id| (id, 100 * ONE)).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..8 {
        let node = start(&config_path);
        // Balances and nonces after recovery equal the model.
        let mut nonces = Vec::new();
        for (i, u) in users.iter().enumerate() {
            let (nonce, bal) = eth_balance(&node.client, u).await;
            assert_eq!(bal, expected[&(2 + i as u32)], "round {round}: balance of user {i} after restart");
            nonces.push(nonce);
        }
        // Fire transfers concurrently, then kill -9 after a random delay.
        let mut sent: Vec<(SignedTx, tokio::task::JoinHandle<Result<String, String>>)> = Vec::new();
        for k in 0..40 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let from = (rng % 4) as usize;
            let to = (from + 1 + (rng >> 8) as usize % 3) % 4;
            let tx =
                users[from].transfer(2 + from as u32, users[to].address, ETH, ONE / 100 * (1 + k % 3), 0, nonces[from]);
            nonces[from] += 1;
            let client = node.client.clone();
            let t = tx.clone();
            let handle = tokio::spawn(async move { client.send_tx(t).await.map_err(|e| e.to_string()) });
            sent.push((tx, handle));
            if k % 8 == 7 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng % 40)).await;
        let mut node = node;
        node.child.kill().unwrap(); // SIGKILL
        node.child.wait().unwrap();
        let mut acknowledged = Vec::new();
        for (tx, h) in sent {
            if let Ok(Ok(hash)) = h.await {
                assert_eq!(hash, format!("0x{}", hex::encode(tx.hash())));
                acknowledged.push(tx.hash());
            }
        }
        // Restart: every acknowledged hash is still known.
        let node = start(&config_path);
        for h in &acknowledged {
            let status = node
                .client
                .tx_status(format!("0x{}", hex::encode(h)))
                .await
                .unwrap_or_else(|e| panic!("round {round}: acknowledged tx lost: {e}"));
            assert!(matches!(status.record, Record::Tx(_)), "{status:?}");
        }
        // The model from every tx the node holds (acknowledged, or persisted just before the kill).
        let txs = collect_known(&node.client).await;
        assert!(txs.len() >= acknowledged.len());
        eprintln!(
            "round {round}: 40 sent, {} acknowledged, {} transfers held in total",
            acknowledged.len(),
            txs.iter().filter(|t| matches!(t.tx, Tx::Transfer(_))).count()
        );
        expected = (2..6).map(|id| (id, 100 * ONE)).collect();
        for tx in txs {
            if let Tx::Transfer(t) = &tx.tx {
                let to = 2 + users.iter().position(|u| u.address == t.to).unwrap() as u32;
                *expected.get_mut(&t.account).unwrap() -= t.amount + t.fee;
                *expected.get_mut(&to).unwrap() += t.amount;
            }
        }
        for (i, u) in users.iter().enumerate() {
            let (_, bal) = eth_balance(&node.client, u).await;
            assert_eq!(bal, expected[&(2 + i as u32)], "round {round}: balance of user {i}");
        }
    }
}

/// Every tx the node holds: the pending block is sealed, then every block's txs are read back.
async fn collect_known(c: &HttpClient) -> Vec<SignedTx> {
    c.seal_block("operator".into()).await.unwrap();
    let last = c.state_root().await.unwrap().block;
    let mut out = Vec::new();
    for n in 1..=last {
        for h in c.block(n).await.unwrap().tx_hashes {
            let Record::Tx(r) = c.tx_status(h).await.unwrap().record else { panic!("a tx") };
            out.push(r.tx);
        }
    }
    out
}
