//! The block commitment and the circuit's single public input (protocol.md section 13):
//!
//! ```text
//! commitment   = sha256(block_number u32 ‖ timestamp u64 ‖ old_root 32 ‖ new_root 32 ‖
//!                       pubdata_hash 32 ‖ onchain_hash_1 32 ‖ … ‖ onchain_hash_4 32)   # 236 bytes
//! public_input = commitment mod 2^253
//! ```
//!
//! Natively ([`BlockHeader`]) and in the circuit ([`BlockHeaderVar`]).

use ark_ff::PrimeField;
use ark_r1cs_std::uint8::UInt8;
use sha2::{Digest, Sha256};
use zkl_crypto::field::fr_to_be_bytes;

use crate::bits::{bytes_be_to_bits_le, from_bits_le, to_bytes_be, to_bytes_be_strict};
use crate::{Fr, FrVar, SynthesisError, sha256};

/// Chains a block can have on-chain operations for (`MAX_CHAINS`).
pub const MAX_CHAINS: usize = 4;
/// Bytes hashed into the commitment.
pub const HEADER_BYTES: usize = 4 + 8 + 32 * (3 + MAX_CHAINS);
/// Bits of the commitment kept in the public input.
pub const PUBLIC_INPUT_BITS: usize = 253;

/// The fields the commitment binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub block_number: u32,
    pub timestamp: u64,
    pub old_root: Fr,
    pub new_root: Fr,
    pub pubdata_hash: [u8; 32],
    pub onchain_hashes: [Fr; MAX_CHAINS],
}

impl BlockHeader {
    /// The 236 bytes hashed into the commitment.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES);
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

    pub fn commitment(&self) -> [u8; 32] {
        Sha256::digest(self.bytes()).into()
    }

    pub fn public_input(&self) -> Fr {
        public_input(&self.commitment())
    }
}

/// `sha256(pubdata)`.
pub fn pubdata_hash(pubdata: &[u8]) -> [u8; 32] {
    Sha256::digest(pubdata).into()
}

/// The low 253 bits of a 32-byte big-endian commitment, as a field element.
pub fn public_input(commitment: &[u8; 32]) -> Fr {
    let mut bytes = *commitment;
    bytes[0] &= 0x1f;
    Fr::from_be_bytes_mod_order(&bytes)
}

/// The header as circuit variables. Construction checks nothing; [`BlockHeaderVar::bytes`]
/// range-checks the integers (`block_number < 2^32`, `timestamp < 2^64`) and decomposes the
/// field elements canonically.
#[derive(Clone)]
pub struct BlockHeaderVar {
    pub block_number: FrVar,
    pub timestamp: FrVar,
    pub old_root: FrVar,
    pub new_root: FrVar,
    /// 32 bytes, normally the output of [`crate::sha256::sha256`] over the pubdata.
    pub pubdata_hash: Vec<UInt8<Fr>>,
    pub onchain_hashes: [FrVar; MAX_CHAINS],
}

impl BlockHeaderVar {
    pub fn bytes(&self) -> Result<Vec<UInt8<Fr>>, SynthesisError> {
        if self.pubdata_hash.len() != 32 {
            return Err(SynthesisError::Unsatisfiable);
        }
        let mut out = Vec::with_capacity(HEADER_BYTES);
        out.extend(to_bytes_be(&self.block_number, 4)?);
        out.extend(to_bytes_be(&self.timestamp, 8)?);
        out.extend(to_bytes_be_strict(&self.old_root)?);
        out.extend(to_bytes_be_strict(&self.new_root)?);
        out.extend(self.pubdata_hash.iter().cloned());
        for h in &self.onchain_hashes {
            out.extend(to_bytes_be_strict(h)?);
        }
        Ok(out)
    }

    pub fn commitment(&self) -> Result<Vec<UInt8<Fr>>, SynthesisError> {
        sha256::sha256(&self.bytes()?)
    }

    /// The public input: the commitment's low 253 bits.
    pub fn public_input(&self) -> Result<FrVar, SynthesisError> {
        public_input_var(&self.commitment()?)
    }
}

/// The low 253 bits of 32 big-endian commitment bytes (no constraint).
pub fn public_input_var(commitment: &[UInt8<Fr>]) -> Result<FrVar, SynthesisError> {
    if commitment.len() != 32 {
        return Err(SynthesisError::Unsatisfiable);
    }
    let bits = bytes_be_to_bits_le(commitment)?;
    Ok(from_bits_le(&bits[..PUBLIC_INPUT_BITS]))
}
