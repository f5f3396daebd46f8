//! `zkl devnet`: two anvils with the ZkLink contracts, and the node settling on both, until
//! Ctrl-C. Proofs come from the contracts' test circuit (TestVerifier) until the block circuit
//! exists.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Failure;

pub fn run_devnet(data_dir: PathBuf, confirmations: u64) -> Result<ExitCode, Failure> {
    if confirmations == 0 {
        return Err(Failure::Usage("--confirmations must be at least 1".into()));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let config = zkl_node::NodeConfig::demo(data_dir);
        let devnet = zkl_node::devnet::deploy(config, 31_000, confirmations)
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        let mut node = zkl_node::start(devnet.config.clone()).await.map_err(|e| Failure::Failed(e.to_string()))?;
        let chains: Vec<_> = devnet
            .chains
            .iter()
            .map(|c| {
                serde_json::json!({
                    "l2_chain": c.config.l2_chain,
                    "evm_chain_id": c.anvil.chain_id(),
                    "rpc": c.anvil.endpoint(),
                    "zklink": c.zklink.address().to_string(),
                    "data_availability": c.config.data_availability,
                })
            })
            .collect();
        // First line on stdout: the node's endpoints, then the chains and the funded dev keys
        // (anvil's; key 0 is the governor, validator and committer).
        println!(
            "{}",
            serde_json::json!({
                "rpc": format!("http://{}", node.rpc_addr),
                "ws": format!("ws://{}", node.rpc_addr),
                "chains": chains,
                "funded_keys": &zkl_contracts::anvil::DEV_KEYS[1..],
                "eth_token": zkl_contracts::deploy::ETH_TOKEN_ID,
            })
        );
        tokio::signal::ctrl_c().await.map_err(|e| Failure::Failed(e.to_string()))?;
        if let Some(l1) = node.l1.take() {
            l1.stop().await;
        }
        let _ = node.handle.stop();
        drop(devnet);
        Ok(ExitCode::SUCCESS)
    })
}
