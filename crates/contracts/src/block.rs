//! A Layer-2 block as the contracts see it: the calldata of `commitBlocks` and `executeBlocks`,
//! and the `StoredBlockInfo` a chain records. Built from the block's typed ops with the protocol
//! crate's one encoding (`zkl_types::layout`, section 11) and commitment (section 13); nothing
//! here knows a byte offset. Also the light oracle's EIP-712 digest.

use alloy::primitives::{Address, B256, Bytes, U256};
use sha2::{Digest, Sha256};
use zkl_types::block::{Withdrawal, commitment_preimage, onchain_hashes, pubdata_for_block, pubdata_hash};
use zkl_types::{ChainId, MAX_CHAINS, Op};

use crate::ContractsError;
use crate::bindings::ZkLink::{CommitBlockInfo, StoredBlockInfo};

const CHAINS: usize = MAX_CHAINS as usize;

/// A Layer-2 block as every chain sees it: its ops (padded to `capacity` chunks with Noops),
/// plus the ChangePubKey witnesses each chain needs.
#[derive(Clone, Debug)]
pub struct L2Block {
    pub number: u32,
    pub timestamp: u64,
    pub new_root: B256,
    pub ops: Vec<Op>,
    /// Chunks of the block (its circuit's capacity).
    pub capacity: usize,
    /// `cpk_witnesses[c - 1]`: witnesses of chain `c`'s ChangePubKey ops, in order (65-byte ECDSA
    /// signatures, or empty for an on-chain authorisation).
    pub cpk_witnesses: [Vec<Bytes>; CHAINS],
}

fn b256(fr: &zkl_crypto::Fr) -> B256 {
    B256::from(zkl_crypto::field::fr_to_be_bytes(fr))
}

fn encoding<E: std::fmt::Display>(e: E) -> ContractsError {
    ContractsError::Encoding(e.to_string())
}

impl L2Block {
    pub fn new(number: u32, timestamp: u64, new_root: B256, ops: Vec<Op>, capacity: usize) -> Self {
        Self { number, timestamp, new_root, ops, capacity, cpk_witnesses: Default::default() }
    }

    /// The full pubdata (`capacity · 20` bytes).
    pub fn pubdata(&self) -> Result<Vec<u8>, ContractsError> {
        pubdata_for_block(&self.ops, self.capacity).map_err(encoding)
    }

    /// `onchain_hash_1..4` (section 13).
    pub fn onchain_hashes(&self) -> Result<[B256; CHAINS], ContractsError> {
        Ok(onchain_hashes(&self.ops).map_err(encoding)?.map(|h| b256(&h)))
    }

    /// The section-13 commitment of this block after a block whose state root is `old_root`.
    pub fn commitment(&self, old_root: B256) -> Result<B256, ContractsError> {
        let preimage = commitment_preimage(
            self.number,
            self.timestamp,
            &old_root.0,
            &self.new_root.0,
            &pubdata_hash(&self.pubdata()?),
            &self.onchain_hashes()?.map(|h| h.0),
        );
        Ok(B256::from_slice(&Sha256::digest(preimage)))
    }

    /// Chain `chain`'s on-chain ops, in block order.
    pub fn onchain_ops(&self, chain: ChainId) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(move |op| op.onchain_chain() == Some(chain))
    }

    /// The `CommitBlockInfo` for chain `chain` (full pubdata if it is the DA chain).
    pub fn commit_info(&self, chain: ChainId, data_availability: bool) -> Result<CommitBlockInfo, ContractsError> {
        let pubdata = self.pubdata()?;
        let mut own = Vec::new();
        for op in self.onchain_ops(chain) {
            own.extend(op.pubdata().map_err(encoding)?);
        }
        Ok(CommitBlockInfo {
            blockNumber: self.number,
            timestamp: self.timestamp,
            newStateRoot: self.new_root,
            pubdataHash: if data_availability { B256::ZERO } else { B256::from(pubdata_hash(&pubdata)) },
            pubdata: if data_availability { Bytes::from(pubdata) } else { Bytes::new() },
            onchainOps: if data_availability { Bytes::new() } else { Bytes::from(own) },
            changePubKeyWitnesses: self
                .cpk_witnesses
                .get(usize::from(chain).wrapping_sub(1))
                .cloned()
                .unwrap_or_default(),
            onchainHashes: self.onchain_hashes()?,
        })
    }

    /// The payouts chain `chain` records for this block.
    pub fn withdrawals(&self, chain: ChainId) -> Vec<Withdrawal> {
        zkl_types::block::withdrawals_of(&self.ops, chain)
    }

    /// The packed payouts of chain `chain`, as `executeBlocks` takes them.
    pub fn packed_withdrawals(&self, chain: ChainId) -> Bytes {
        Bytes::from(zkl_types::block::pack_withdrawals(&self.withdrawals(chain)))
    }

    /// The stored block info chain `chain` records when this block is committed after `prev`.
    pub fn stored_info(&self, prev: &StoredBlockInfo, chain: ChainId) -> Result<StoredBlockInfo, ContractsError> {
        Ok(self.stored_info_with(prev, chain, self.commitment(prev.stateRoot)?))
    }

    /// [`Self::stored_info`] with this block's commitment already computed (it is the same on
    /// every chain).
    pub fn stored_info_with(&self, prev: &StoredBlockInfo, chain: ChainId, commitment: B256) -> StoredBlockInfo {
        let priority = self.onchain_ops(chain).filter(|op| op.is_priority()).count();
        StoredBlockInfo {
            blockNumber: self.number,
            priorityOperations: priority as u64,
            timestamp: self.timestamp,
            stateRoot: self.new_root,
            commitment,
            syncHash: B256::from(zkl_types::block::next_sync_hash(&prev.syncHash.0, &commitment.0)),
            withdrawalsHash: B256::from(zkl_types::block::withdrawals_hash(&self.withdrawals(chain))),
        }
    }
}

/// The stored info of block 0 (genesis) for a genesis root.
pub fn genesis_info(genesis_root: B256) -> StoredBlockInfo {
    StoredBlockInfo {
        blockNumber: 0,
        priorityOperations: 0,
        timestamp: 0,
        stateRoot: genesis_root,
        commitment: B256::ZERO,
        syncHash: B256::ZERO,
        withdrawalsHash: B256::ZERO,
    }
}

/// The proof's public input of a commitment (its low 253 bits).
pub fn public_input(commitment: B256) -> zkl_crypto::Fr {
    zkl_types::public_input(&commitment.0)
}

/// EIP-712 digest of `FinalBlock(uint32 blockNumber,bytes32 syncHash)` in the domain
/// `{name: "ZkLink", version: "1"}` (no chain, no contract): what the light oracle signs once every
/// chain holds every other chain's sync hash of the block; one signature serves every chain.
pub fn final_digest(block_number: u32, sync_hash: B256) -> B256 {
    use alloy::primitives::keccak256;
    use alloy::sol_types::SolValue;
    let domain = keccak256(
        (keccak256("EIP712Domain(string name,string version)"), keccak256("ZkLink"), keccak256("1")).abi_encode(),
    );
    let type_hash = keccak256("FinalBlock(uint32 blockNumber,bytes32 syncHash)");
    let s = keccak256((type_hash, U256::from(block_number), sync_hash).abi_encode());
    keccak256([&[0x19u8, 0x01][..], domain.as_slice(), s.as_slice()].concat())
}

/// EIP-712 digest of `SyncHash(uint8 srcChain,uint32 blockNumber,bytes32 syncHash)` in the domain
/// `{name: "ZkLink", version: "1", chainId, verifyingContract}`: what the light oracle signs.
pub fn sync_hash_digest(
    evm_chain_id: u64,
    contract: Address,
    src_chain: u8,
    block_number: u32,
    sync_hash: B256,
) -> B256 {
    use alloy::primitives::keccak256;
    use alloy::sol_types::SolValue;
    let domain_type = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    let domain =
        keccak256((domain_type, keccak256("ZkLink"), keccak256("1"), U256::from(evm_chain_id), contract).abi_encode());
    let type_hash = keccak256("SyncHash(uint8 srcChain,uint32 blockNumber,bytes32 syncHash)");
    let struct_hash = keccak256((type_hash, U256::from(src_chain), U256::from(block_number), sync_hash).abi_encode());
    let mut buf = vec![0x19, 0x01];
    buf.extend(domain.as_slice());
    buf.extend(struct_hash.as_slice());
    keccak256(&buf)
}

/// A signer from a hex private key.
pub fn signer(key: &str) -> Result<alloy::signers::local::PrivateKeySigner, ContractsError> {
    key.parse().map_err(|e| ContractsError::Rpc(format!("bad key: {e}")))
}
