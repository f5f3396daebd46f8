//! A development network: anvils with the ZkLink contracts deployed for a node configuration
//! (the node's genesis root, ETH registered, the committer as validator, 2-of-3 oracle signers),
//! and the configuration's `l1` section pointing at them. Used by `zkl devnet` and the tests.
//! With [`DevnetOptions::verifiers`] ZkLink verifies the block circuit's proofs (the `zkl devnet`
//! command passes the verifiers compiled from the block circuit's keys, one per capacity);
//! without them, the contracts' test verifier. [`DevnetOptions::test_tokens`] deploys a `TestERC20` for every configured L1
//! token other than ETH, registered with the configuration's id, decimals and merge group, and
//! mints to the funded dev keys.

use alloy::primitives::{Address, B256, U256};
use zkl_contracts::anvil::{Anvil, DEV_KEYS};
use zkl_contracts::deploy::{Chain, ChainConfig, ETH_TOKEN_ID, send, signer};
use zkl_types::{ChainId, TokenId};

use zkl_node::NodeConfig;
use zkl_node::config::{L1ChainConfig, L1Config, OracleConfig};

/// Why a devnet could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("devnet: {0}")]
    Contracts(#[from] zkl_contracts::ContractsError),
    #[error("devnet: {0}")]
    Node(#[from] zkl_node::NodeError),
    #[error("devnet: {0} chains (at most 255)")]
    TooManyChains(usize),
    #[error("devnet: the fee owner is not an EVM address")]
    FeeOwner,
}

fn fee_owner_evm(config: &NodeConfig) -> Result<Address, DevnetError> {
    config.fee_owner.to_evm().map(Address::from).ok_or(DevnetError::FeeOwner)
}

/// Development oracle signer keys (never use them elsewhere).
pub const ORACLE_KEYS: [&str; 3] = [
    "0x1111111111111111111111111111111111111111111111111111111111111111",
    "0x2222222222222222222222222222222222222222222222222222222222222222",
    "0x3333333333333333333333333333333333333333333333333333333333333333",
];
pub const ORACLE_THRESHOLD: usize = 2;

/// The devnet contracts' priority fee: 0.0001 ETH per deposit or full-exit request (about what
/// the operator pays to commit one on-chain op at 1 gwei).
pub const DEVNET_PRIORITY_FEE: u128 = 100_000_000_000_000;

/// Whole tokens of every test ERC-20 minted to each funded dev key.
pub const TEST_TOKEN_MINT: u128 = 1_000_000;

/// Running anvils (stopped on drop) and the configuration that uses them.
pub struct Devnet {
    pub chains: Vec<Chain>,
    pub config: NodeConfig,
    /// The test ERC-20s: (L2 chain, L1 token id, contract address).
    pub tokens: Vec<(ChainId, TokenId, Address)>,
}

/// How to deploy a devnet.
#[derive(Clone, Debug, Default)]
pub struct DevnetOptions {
    /// EVM chain id of L2 chain `c` is `evm_base + c`.
    pub evm_base: u64,
    /// Confirmations the node's watchers and settlers wait for.
    pub confirmations: u64,
    /// Creation bytecode of the block circuit's verifier of each capacity the prover proves
    /// blocks at; empty = the test verifier.
    pub verifiers: Vec<(u32, Vec<u8>)>,
    /// Creation bytecode of the exit-proof verifier (exodus claims); `None` = the test verifier,
    /// which refuses every claim.
    pub exit_verifier: Option<Vec<u8>>,
    /// Deploy and register a test ERC-20 for every configured non-ETH L1 token.
    pub test_tokens: bool,
    /// Wei every deposit and full-exit request pays (the contracts' `priorityFee`).
    pub priority_fee: u128,
    /// Seconds until a priority request expires (and exodus claims open after activation);
    /// `None` = three days.
    pub priority_expiration: Option<u64>,
}

/// Deploys one anvil per chain of `config.chains` (EVM chain id `evm_base + l2 chain id`), the
/// first with data availability, with the test verifier and no ERC-20s, and sets `config.l1`.
pub async fn deploy(config: NodeConfig, evm_base: u64, confirmations: u64) -> Result<Devnet, DevnetError> {
    deploy_with(config, DevnetOptions { evm_base, confirmations, ..DevnetOptions::default() }).await
}

/// [`deploy`] with options.
pub async fn deploy_with(mut config: NodeConfig, opts: DevnetOptions) -> Result<Devnet, DevnetError> {
    let (evm_base, confirmations) = (opts.evm_base, opts.confirmations);
    let root = B256::from(zkl_node::genesis_root(&config)?);
    let fee_owner = fee_owner_evm(&config)?;
    let count = u8::try_from(config.chains.len()).map_err(|_| DevnetError::TooManyChains(config.chains.len()))?;
    let oracles = ORACLE_KEYS.iter().map(|k| signer(k).map(|s| s.address())).collect::<Result<Vec<_>, _>>()?;
    let holders = DEV_KEYS[1..].iter().map(|k| signer(k).map(|s| s.address())).collect::<Result<Vec<_>, _>>()?;
    let mut chains = Vec::new();
    let mut tokens = Vec::new();
    let mut l1 = Vec::new();
    let da_chain = config.chains.first().map(|c| c.id).unwrap_or(1);
    for c in &config.chains {
        let chain_config = ChainConfig {
            evm_chain_id: evm_base + u64::from(c.id),
            l2_chain: c.id,
            chain_count: count,
            data_availability_chain: da_chain,
            priority_expiration: opts.priority_expiration.unwrap_or(3 * 24 * 3600),
            priority_fee: opts.priority_fee,
            genesis_root: root,
            fee_owner,
        };
        let anvil = Anvil::spawn(chain_config.evm_chain_id)?;
        let chain =
            Chain::deploy_with_verifiers(anvil, chain_config, &opts.verifiers, opts.exit_verifier.as_deref()).await?;
        send(chain.zklink.setOracleSigners(oracles.clone(), ORACLE_THRESHOLD as u8)).await?;
        if opts.test_tokens {
            for t in &config.tokens {
                let Some(l1_token) = t.l1.iter().find(|l| l.chain == c.id) else { continue };
                if t.id == ETH_TOKEN_ID {
                    continue;
                }
                let mint = U256::from(TEST_TOKEN_MINT) * U256::from(10u64).pow(U256::from(l1_token.decimals));
                let address =
                    chain.add_test_token(t.id, l1_token.decimals, t.group.unwrap_or(0), &holders, mint).await?;
                tokens.push((c.id, t.id, address));
            }
            // Every chain lists every member of a merge group (exodus pools, protocol.md section 18).
            for t in &config.tokens {
                if let Some(group) = t.group
                    && !t.l1.iter().any(|l| l.chain == c.id)
                {
                    send(chain.zklink.declarePoolMember(t.id, group)).await?;
                }
            }
        }
        l1.push(L1ChainConfig {
            l2_chain: c.id,
            evm_chain_id: chain.anvil.chain_id(),
            rpc_url: chain.anvil.endpoint(),
            contract: chain.zklink.address().to_string(),
            confirmations,
            data_availability: c.id == da_chain,
            committer_key: DEV_KEYS[0].into(),
            start_block: 0,
            poll_ms: 200,
            tx_timeout_ms: 10_000,
            batch_wait_ms: 0,
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
    Ok(Devnet { chains, config, tokens })
}
