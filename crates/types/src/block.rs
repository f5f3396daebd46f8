//! Block pubdata, per-chain on-chain-operation hashes and the block commitment (section 13).

use ark_ff::{BigInteger, PrimeField};
use sha2::{Digest, Sha256};
use zkl_crypto::{Fr, field::fr_to_be_bytes, poseidon};

use crate::amount::AmountError;
use crate::codec::fr_from_be;
use crate::ids::MAX_CHAINS;
use crate::op::{CHUNK_BYTES, Op};

/// Why ops could not be laid out in a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("ops need {needed} chunks but the block holds {capacity}")]
    Capacity { needed: usize, capacity: usize },
    #[error(transparent)]
    Amount(#[from] AmountError),
}

/// The block's pubdata: the ops' pubdata then Noop chunks up to `capacity` chunks.
pub fn pubdata_for_block(ops: &[Op], capacity: usize) -> Result<Vec<u8>, BlockError> {
    let needed: usize = ops.iter().map(Op::chunks).sum();
    if needed > capacity {
        return Err(BlockError::Capacity { needed, capacity });
    }
    let mut out = Vec::with_capacity(capacity * CHUNK_BYTES);
    for op in ops {
        out.extend_from_slice(&op.pubdata()?);
    }
    out.resize(capacity * CHUNK_BYTES, 0);
    Ok(out)
}

/// The four 20-byte words of an on-chain op (zero past its end) as field elements.
pub fn onchain_words(op_pubdata: &[u8]) -> [Fr; 4] {
    std::array::from_fn(|i| op_pubdata.get(i * CHUNK_BYTES..(i + 1) * CHUNK_BYTES).map(fr_from_be).unwrap_or_default())
}

/// One step of a chain's on-chain hash: `Poseidon(h, w1, w2, w3, w4)`.
pub fn onchain_hash_step(h: Fr, op_pubdata: &[u8]) -> Fr {
    let [w1, w2, w3, w4] = onchain_words(op_pubdata);
    poseidon::hash_array([h, w1, w2, w3, w4])
}

/// The on-chain-operation hash of chains 1..=4 (index 0 is chain 1).
pub fn onchain_hashes(ops: &[Op]) -> Result<[Fr; MAX_CHAINS as usize], AmountError> {
    let mut hashes = [Fr::from(0u64); MAX_CHAINS as usize];
    for op in ops {
        if let Some(chain) = op.onchain_chain() {
            let slot = &mut hashes[usize::from(chain - 1)];
            *slot = onchain_hash_step(*slot, &op.pubdata()?);
        }
    }
    Ok(hashes)
}

/// Everything the commitment binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCommitment {
    pub block_number: u32,
    pub timestamp: u64,
    pub old_root: Fr,
    pub new_root: Fr,
    pub pubdata_hash: [u8; 32],
    pub onchain_hashes: [Fr; MAX_CHAINS as usize],
}

impl BlockCommitment {
    /// The 236 bytes hashed into the commitment.
    pub fn preimage(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(236);
        out.extend_from_slice(&self.block_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&fr_to_be_bytes(&self.old_root));
        out.extend_from_slice(&fr_to_be_bytes(&self.new_root));
        out.extend_from_slice(&self.pubdata_hash);
        for h in &self.onchain_hashes {
            out.extend_from_slice(&fr_to_be_bytes(h));
        }
        out
    }
}

/// `sha256(preimage)`.
pub fn commitment(c: &BlockCommitment) -> [u8; 32] {
    Sha256::digest(c.preimage()).into()
}

/// sha256 of a block's pubdata.
pub fn pubdata_hash(pubdata: &[u8]) -> [u8; 32] {
    Sha256::digest(pubdata).into()
}

/// The proof's single public input: the commitment's low 253 bits.
pub fn public_input(commitment: &[u8; 32]) -> Fr {
    let mut bytes = *commitment;
    bytes[0] &= 0x1f;
    let x = Fr::from_be_bytes_mod_order(&bytes);
    debug_assert_eq!(x.into_bigint().to_bytes_be(), bytes.to_vec());
    x
}
