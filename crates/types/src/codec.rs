//! The big-endian header writer of signed messages (protocol.md section 12), and small field
//! helpers. Pubdata is written and read through the layout table (`crate::layout`).

use ark_ff::PrimeField;
use zkl_crypto::Fr;

/// A field element from a u128.
pub fn fr_from_u128(x: u128) -> Fr {
    Fr::from(x)
}

/// A field element from up to 31 big-endian bytes.
pub fn fr_from_be(bytes: &[u8]) -> Fr {
    debug_assert!(bytes.len() <= 31);
    Fr::from_be_bytes_mod_order(bytes)
}

/// Appends fixed-width big-endian fields.
#[derive(Default, Debug, Clone)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }
    /// The header integer of a signed message (at most 31 bytes).
    pub fn to_fr(&self) -> Fr {
        fr_from_be(&self.bytes)
    }
}

/// Input ended before a field could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pubdata ended early")]
pub struct Truncated;
