//! Deploys the contracts on an anvil and wraps one chain's deployment for the tests and the gas
//! benchmark (commit, prove with the test verifier, execute, oracle signatures).

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;

use crate::ContractsError;
use crate::anvil::{Anvil, DEV_KEYS};
use crate::bindings::ZkLink::{self, CommitBlockInfo, StoredBlockInfo, ZkLinkInstance};
use crate::bindings::{PoseidonT6, TestVerifier};
pub use crate::block::{L2Block, signer};
use crate::block::{final_digest, genesis_info, public_input, sync_hash_digest};

/// The oracle signers every harness deployment registers (threshold [`DEV_ORACLE_THRESHOLD`]).
pub const DEV_ORACLE_KEYS: [&str; 3] = [
    "0x1111111111111111111111111111111111111111111111111111111111111111",
    "0x2222222222222222222222222222222222222222222222222222222222222222",
    "0x3333333333333333333333333333333333333333333333333333333333333333",
];
pub const DEV_ORACLE_THRESHOLD: u8 = 2;

/// Token id under which every test deployment registers ETH (18 decimals).
pub const ETH_TOKEN_ID: u16 = 1;

/// An HTTP provider for `anvil` that signs with `key`.
pub fn provider(anvil: &Anvil, key: &str) -> Result<DynProvider, ContractsError> {
    let wallet = EthereumWallet::from(signer(key)?);
    let url = anvil.endpoint().parse().map_err(|e| ContractsError::Rpc(format!("bad url: {e}")))?;
    Ok(ProviderBuilder::new().wallet(wallet).connect_http(url).erased())
}

/// Sends a prepared call, waits for the receipt and fails on revert.
pub async fn send<P: Provider, D: alloy::contract::CallDecoder>(
    call: alloy::contract::CallBuilder<P, D>,
) -> Result<TransactionReceipt, ContractsError> {
    let receipt = call.send().await?.get_receipt().await?;
    if !receipt.status() {
        return Err(ContractsError::Reverted(format!("{:?}", receipt.transaction_hash)));
    }
    Ok(receipt)
}

/// Deploys a contract from its creation bytecode (no constructor arguments).
pub async fn deploy_code(provider: &DynProvider, code: &[u8]) -> Result<Address, ContractsError> {
    use alloy::network::TransactionBuilder;
    let tx = alloy::rpc::types::TransactionRequest::default().with_deploy_code(Bytes::copy_from_slice(code));
    let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
    if !receipt.status() {
        return Err(ContractsError::Reverted(format!("deployment {:?}", receipt.transaction_hash)));
    }
    receipt.contract_address.ok_or_else(|| ContractsError::Reverted("the deployment created no contract".into()))
}

/// Static configuration of one chain's deployment.
#[derive(Clone, Copy, Debug)]
pub struct ChainConfig {
    pub evm_chain_id: u64,
    pub l2_chain: u8,
    pub chain_count: u8,
    /// The L2 chain that receives the full pubdata.
    pub data_availability_chain: u8,
    pub priority_expiration: u64,
    /// Wei paid with every deposit and full-exit request.
    pub priority_fee: u128,
    pub genesis_root: B256,
    /// The genesis state's fee-account owner (announced by the contract for recovery tools).
    pub fee_owner: Address,
}

impl ChainConfig {
    /// This chain receives the full pubdata.
    pub fn data_availability(&self) -> bool {
        self.l2_chain == self.data_availability_chain
    }
}

/// One chain: its anvil, a provider signing as the governor (who is also a validator), and the
/// deployed contracts.
pub struct Chain {
    pub anvil: Anvil,
    pub provider: DynProvider,
    pub governor: Address,
    pub zklink: ZkLinkInstance<DynProvider>,
    /// The block verifier of each capacity.
    pub verifiers: Vec<(u32, Address)>,
    pub exit_verifier: Address,
    pub poseidon: Address,
    pub config: ChainConfig,
}

impl Chain {
    /// Starts anvil and deploys PoseidonT6, the test verifier and ZkLink; registers ETH as
    /// [`ETH_TOKEN_ID`] and the governor as a validator.
    pub async fn deploy(config: ChainConfig) -> Result<Self, ContractsError> {
        Self::deploy_on(Anvil::spawn(config.evm_chain_id)?, config).await
    }

    /// As [`Chain::deploy`], on an anvil already running.
    pub async fn deploy_on(anvil: Anvil, config: ChainConfig) -> Result<Self, ContractsError> {
        Self::deploy_with_verifiers(anvil, config, &[], None).await
    }

    /// As [`Chain::deploy_on`], with ZkLink verifying the proofs of blocks of capacity `c` with
    /// the contract whose creation bytecode is paired with `c` in `verifiers` (the block circuit's
    /// of that capacity, see [`crate::solc`]); none deploys the test verifier for every capacity
    /// of [`TEST_VERIFIER_CAPACITIES`]. Exodus claims are verified by the contract whose creation
    /// bytecode is `exit_verifier` (the exit circuit's); `None` puts the test verifier there too:
    /// its one-input interface answers no five-input call, so every claim is refused.
    /// Registers [`DEV_ORACLE_KEYS`] as the oracle.
    pub async fn deploy_with_verifiers(
        anvil: Anvil,
        config: ChainConfig,
        verifiers: &[(u32, Vec<u8>)],
        exit_verifier: Option<&[u8]>,
    ) -> Result<Self, ContractsError> {
        let provider = provider(&anvil, DEV_KEYS[0])?;
        let governor = signer(DEV_KEYS[0])?.address();
        let poseidon = *PoseidonT6::deploy(provider.clone()).await?.address();
        let test_verifier = *TestVerifier::deploy(provider.clone()).await?.address();
        let mut block_verifiers = Vec::new();
        for (capacity, code) in verifiers {
            block_verifiers.push((*capacity, deploy_code(&provider, code).await?));
        }
        if verifiers.is_empty() {
            block_verifiers = TEST_VERIFIER_CAPACITIES.map(|c| (c, test_verifier)).to_vec();
        }
        let exit_verifier = match exit_verifier {
            Some(code) => deploy_code(&provider, code).await?,
            None => test_verifier,
        };
        let params = ZkLink::InitParams {
            governor,
            capacities: block_verifiers.iter().map(|(c, _)| *c).collect(),
            verifiers: block_verifiers.iter().map(|(_, v)| *v).collect(),
            exitVerifier: exit_verifier,
            poseidon,
            chainId: config.l2_chain,
            chainCount: config.chain_count,
            dataAvailabilityChain: config.data_availability_chain,
            priorityExpirationPeriod: config.priority_expiration,
            priorityFee: config.priority_fee,
            genesisRoot: config.genesis_root,
            feeOwner: config.fee_owner,
        };
        let zklink = ZkLink::deploy(provider.clone(), params).await?;
        send(zklink.setValidator(governor, true)).await?;
        send(zklink.registerToken(ETH_TOKEN_ID, Address::ZERO, 18, 0)).await?;
        let oracles =
            DEV_ORACLE_KEYS.iter().map(|k| Ok(signer(k)?.address())).collect::<Result<Vec<_>, ContractsError>>()?;
        send(zklink.setOracleSigners(oracles, DEV_ORACLE_THRESHOLD)).await?;
        Ok(Self { anvil, provider, governor, zklink, verifiers: block_verifiers, exit_verifier, poseidon, config })
    }

    /// Deploys a [`TestERC20`](crate::bindings::TestERC20) of `decimals`, registers it as L1
    /// token `token_id` in merge group `group` (0 = none) and mints `amount` to each holder.
    pub async fn add_test_token(
        &self,
        token_id: u16,
        decimals: u8,
        group: u16,
        holders: &[Address],
        amount: U256,
    ) -> Result<Address, ContractsError> {
        let token = crate::bindings::TestERC20::deploy(self.provider.clone(), decimals, 0).await?;
        send(self.zklink.registerToken(token_id, *token.address(), decimals, group)).await?;
        for h in holders {
            send(token.mint(*h, amount)).await?;
        }
        Ok(*token.address())
    }

    /// The ZkLink contract as seen by another signer.
    pub fn zklink_as(&self, key: &str) -> Result<ZkLinkInstance<DynProvider>, ContractsError> {
        Ok(ZkLink::new(*self.zklink.address(), provider(&self.anvil, key)?))
    }

    /// The genesis stored block.
    pub fn genesis(&self) -> StoredBlockInfo {
        genesis_info(self.config.genesis_root)
    }
}

/// The capacities a test-verifier deployment accepts proofs for: every capacity up to 128 chunks
/// and the powers of two up to 16,384 (what the tests and benchmarks seal blocks at).
pub const TEST_VERIFIER_CAPACITIES: [u32; 135] = {
    let mut out = [0u32; 135];
    let mut i = 0;
    while i < 128 {
        out[i] = i as u32 + 1;
        i += 1;
    }
    while i < 135 {
        out[i] = 1 << (i - 128 + 8);
        i += 1;
    }
    out
};

/// The capacity [`Chain::prove`] names: with the test verifier every registered capacity has
/// the same verifier, and the contract cannot tell which one a block was sealed at.
pub const TEST_PROOF_CAPACITY: u32 = 4;

/// A proof of the test verifier for a stored block (its commitment as the public input).
pub fn test_proof(
    pk: &ark_groth16::ProvingKey<ark_bn254::Bn254>,
    block: &StoredBlockInfo,
) -> Result<[U256; 8], ContractsError> {
    let proof = crate::verifier::test_circuit::prove(pk, public_input(block.commitment), u64::from(block.blockNumber))?;
    Ok(crate::verifier::encode_proof(&proof))
}

impl Chain {
    /// Commits `blocks` after `prev`; returns the stored infos (computed locally, the contract
    /// checks them on the next call) and the receipt.
    pub async fn commit(
        &self,
        prev: &StoredBlockInfo,
        blocks: &[L2Block],
    ) -> Result<(Vec<StoredBlockInfo>, TransactionReceipt), ContractsError> {
        let (infos, stored) = self.prepare_commit(prev, blocks)?;
        let receipt = send(self.zklink.commitBlocks(prev.clone(), infos)).await?;
        Ok((stored, receipt))
    }

    /// The commit calldata and the resulting stored infos, without sending.
    pub fn prepare_commit(
        &self,
        prev: &StoredBlockInfo,
        blocks: &[L2Block],
    ) -> Result<(Vec<CommitBlockInfo>, Vec<StoredBlockInfo>), ContractsError> {
        let chain = self.config.l2_chain;
        let mut infos = Vec::new();
        let mut stored = Vec::new();
        let mut last = prev.clone();
        for b in blocks {
            infos.push(b.commit_info(chain, self.config.data_availability())?);
            last = b.stored_info(&last, chain)?;
            stored.push(last.clone());
        }
        Ok((infos, stored))
    }

    /// Proves `blocks` with the test verifier's key.
    pub async fn prove(
        &self,
        pk: &ark_groth16::ProvingKey<ark_bn254::Bn254>,
        blocks: &[StoredBlockInfo],
    ) -> Result<TransactionReceipt, ContractsError> {
        let proofs = blocks.iter().map(|b| test_proof(pk, b)).collect::<Result<Vec<_>, _>>()?;
        send(self.zklink.proveBlocks(blocks.to_vec(), proofs, TEST_PROOF_CAPACITY)).await
    }

    /// Executes `blocks` (with the packed withdrawals of each), after attesting the last one
    /// final with [`DEV_ORACLE_KEYS`] if the contract does not hold that yet.
    pub async fn execute(&self, blocks: &[(StoredBlockInfo, Vec<u8>)]) -> Result<TransactionReceipt, ContractsError> {
        if let Some((last, _)) = blocks.last()
            && self.zklink.exodusStatus().call().await?.totalBlocksFinal < last.blockNumber
        {
            self.finalize(last).await?;
        }
        send(self.zklink.executeBlocks(self.execute_infos(blocks))).await
    }

    /// Oracle signatures (the first [`DEV_ORACLE_THRESHOLD`] of [`DEV_ORACLE_KEYS`], ordered by
    /// signer address) attesting `block` final.
    pub fn sign_final(&self, block: &StoredBlockInfo) -> Result<Vec<Bytes>, ContractsError> {
        sign_sorted(&DEV_ORACLE_KEYS[..DEV_ORACLE_THRESHOLD as usize], final_digest(block.blockNumber, block.syncHash))
    }

    /// Attests `block` final on this chain (`receiveFinalBlock`).
    pub async fn finalize(&self, block: &StoredBlockInfo) -> Result<TransactionReceipt, ContractsError> {
        send(self.zklink.receiveFinalBlock(block.clone(), self.sign_final(block)?)).await
    }

    pub fn execute_infos(&self, blocks: &[(StoredBlockInfo, Vec<u8>)]) -> Vec<ZkLink::ExecuteBlockInfo> {
        blocks
            .iter()
            .map(|(b, w)| ZkLink::ExecuteBlockInfo { storedBlock: b.clone(), withdrawals: Bytes::from(w.clone()) })
            .collect()
    }

    /// The EIP-712 digest this chain's contract expects oracle signers to sign.
    pub fn sync_hash_digest(&self, src_chain: u8, block_number: u32, sync_hash: B256) -> B256 {
        sync_hash_digest(self.anvil.chain_id(), *self.zklink.address(), src_chain, block_number, sync_hash)
    }

    /// Signatures of `keys` over the sync-hash message, ordered by signer address (ascending).
    pub fn sign_sync_hash(
        &self,
        keys: &[&str],
        src_chain: u8,
        block_number: u32,
        sync_hash: B256,
    ) -> Result<Vec<Bytes>, ContractsError> {
        sign_sorted(keys, self.sync_hash_digest(src_chain, block_number, sync_hash))
    }
}

/// Signatures of `keys` over `digest`, ordered by signer address (ascending), as the contract's
/// oracle checks expect.
pub fn sign_sorted(keys: &[&str], digest: B256) -> Result<Vec<Bytes>, ContractsError> {
    use alloy::signers::SignerSync;
    let mut sigs = Vec::new();
    for k in keys {
        let s = signer(k)?;
        let sig = s.sign_hash_sync(&digest).map_err(|e| ContractsError::Rpc(e.to_string()))?;
        sigs.push((s.address(), Bytes::from(sig.as_bytes().to_vec())));
    }
    sigs.sort_by_key(|(a, _)| *a);
    Ok(sigs.into_iter().map(|(_, s)| s).collect())
}
