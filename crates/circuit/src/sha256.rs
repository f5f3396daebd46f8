//! SHA-256 over a byte string, using arkworks' gadget (`ark-crypto-primitives`, checked against
//! the `sha2` crate in the tests).

use ark_crypto_primitives::crh::sha256::constraints::Sha256Gadget;
use ark_r1cs_std::uint8::UInt8;

use crate::{Fr, SynthesisError};

/// `sha256(bytes)` as 32 byte variables.
pub fn sha256(bytes: &[UInt8<Fr>]) -> Result<Vec<UInt8<Fr>>, SynthesisError> {
    Ok(Sha256Gadget::digest(bytes)?.0)
}

/// Number of 64-byte compression blocks SHA-256 runs on a message of `len` bytes.
pub const fn blocks_for(len: usize) -> usize {
    (len + 9).div_ceil(64)
}
