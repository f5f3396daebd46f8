//! A development network: anvils with the ZkLink contracts deployed for a node configuration
//! (the node's genesis root, ETH registered, the committer as validator, 2-of-3 oracle signers),
//! and the configuration's `l1` section pointing at them. Used by `zkl devnet` and the tests.
//! Blocks are proven by the contracts' test circuit (`TestVerifier`) until the block circuit
//! exists.

use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::deploy::{Chain, ChainConfig, send, signer};

use crate::NodeConfig;
use crate::committer::genesis_root;
use crate::config::{L1ChainConfig, L1Config, OracleConfig};
use crate::l1::L1Error;

/// Development oracle signer keys (never use them elsewhere).
pub const ORACLE_KEYS: [&str; 3] = [
    "0x1111111111111111111111111111111111111111111111111111111111111111",
    "0x2222222222222222222222222222222222222222222222222222222222222222",
    "0x3333333333333333333333333333333333333333333333333333333333333333",
];
pub const ORACLE_THRESHOLD: usize = 2;

/// Running anvils (stopped on drop) and the configuration that uses them.
pub struct Devnet {
    pub chains: Vec<Chain>,
    pub config: NodeConfig,
}

/// Deploys one anvil per chain of `config.chains` (EVM chain id `evm_base + l2 chain id`), the
/// first with data availability, and sets `config.l1`.
pub async fn deploy(mut config: NodeConfig, evm_base: u64, confirmations: u64) -> Result<Devnet, L1Error> {
    let err = |e: zkl_contracts::ContractsError| L1Error::Config(format!("devnet: {e}"));
    let root = genesis_root(&config).map_err(|e| L1Error::Config(e.to_string()))?;
    let count = u8::try_from(config.chains.len()).map_err(|_| L1Error::Config("too many chains".into()))?;
    let oracles = ORACLE_KEYS.iter().map(|k| signer(k).map(|s| s.address())).collect::<Result<Vec<_>, _>>();
    let oracles = oracles.map_err(err)?;
    let mut chains = Vec::new();
    let mut l1 = Vec::new();
    for (i, c) in config.chains.iter().enumerate() {
        let chain = Chain::deploy(ChainConfig {
            evm_chain_id: evm_base + u64::from(c.id),
            l2_chain: c.id,
            chain_count: count,
            data_availability: i == 0,
            priority_expiration: 3 * 24 * 3600,
            genesis_root: root,
        })
        .await
        .map_err(err)?;
        send(chain.zklink.setOracleSigners(oracles.clone(), ORACLE_THRESHOLD as u8)).await.map_err(err)?;
        l1.push(L1ChainConfig {
            l2_chain: c.id,
            evm_chain_id: chain.anvil.chain_id(),
            rpc_url: chain.anvil.endpoint(),
            contract: chain.zklink.address().to_string(),
            confirmations,
            data_availability: i == 0,
            committer_key: DEV_KEYS[0].into(),
            start_block: 0,
            poll_ms: 200,
            tx_timeout_ms: 10_000,
        });
        chains.push(chain);
    }
    config.l1 = Some(L1Config {
        chains: l1,
        oracle: OracleConfig {
            signer_keys: ORACLE_KEYS.iter().map(|k| k.to_string()).collect(),
            threshold: ORACLE_THRESHOLD,
        },
    });
    Ok(Devnet { chains, config })
}
