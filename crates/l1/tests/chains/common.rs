//! Helpers shared by the Layer-1 tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zkl_contracts::deploy::Chain;
use zkl_devkit::devnet::DevnetOptions;
use zkl_l1::proofs::{ProofSource, TestCircuitProofSource};
use zkl_node::config::L1ChainConfig;
use zkl_node::{Node, NodeConfig};
use zkl_wallet::Wallet;

/// The admin token of the tests' nodes.
pub const ADMIN: &str = "operator";

/// Proofs of the contracts' test circuit (the devnets here deploy the test verifier).
pub fn proofs() -> Arc<dyn ProofSource> {
    Arc::new(TestCircuitProofSource::new().unwrap())
}

/// A wallet of the Ethereum key `key` (`0x` + 64 hex digits) against `node`.
pub fn wallet(node: &Node, key: &str) -> Wallet {
    let bytes: [u8; 32] = hex::decode(key.trim_start_matches("0x")).unwrap().try_into().unwrap();
    Wallet::new(&bytes, &format!("http://{}", node.rpc_addr)).unwrap()
}

pub async fn wait_for<F: AsyncFn() -> bool>(what: &str, timeout: Duration, f: F) {
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether every chain has executed `block`.
pub async fn executed_everywhere(chains: &[Chain], block: u32) -> bool {
    for c in chains {
        if c.zklink.blockCounters().call().await.unwrap().executed < block {
            return false;
        }
    }
    true
}

/// Deploys the chains of `config` (`opts`), polls them every 100 ms, replaces stuck txs after
/// `tx_timeout_ms`, and starts the node on them with the admin token [`ADMIN`].
pub async fn start_on_devnet(config: NodeConfig, opts: DevnetOptions, tx_timeout_ms: u64) -> (Node, Vec<Chain>) {
    start_on_devnet_with(config, opts, |c| c.tx_timeout_ms = tx_timeout_ms).await
}

/// [`start_on_devnet`] with each chain's settlement configuration edited by `edit` (after the
/// 100 ms polling is set).
pub async fn start_on_devnet_with(
    mut config: NodeConfig,
    opts: DevnetOptions,
    edit: impl Fn(&mut L1ChainConfig),
) -> (Node, Vec<Chain>) {
    config.admin = Some(zkl_node::config::AdminConfig { tokens: vec![ADMIN.into()] });
    let devnet = zkl_devkit::devnet::deploy_with(config, opts).await.unwrap();
    let mut config = devnet.config;
    for c in &mut config.l1.as_mut().unwrap().chains {
        c.poll_ms = 100;
        edit(c);
    }
    let node = zkl_l1::start_node(config, Default::default(), Some(proofs())).await.unwrap();
    (node, devnet.chains)
}
