//! Big-endian byte writer and reader for pubdata, and small field helpers.

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
    /// The low 3 bytes of `v` (account ids).
    pub fn u24(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes()[1..]);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// The low 5 bytes of `v` (packed amounts).
    pub fn u40(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes()[3..]);
        self
    }
    pub fn u128(&mut self, v: u128) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }
    /// Pads with zeros to a multiple of `n` bytes (at least `n`).
    pub fn pad_to(&mut self, n: usize) -> Vec<u8> {
        let len = self.bytes.len().div_ceil(n).max(1) * n;
        let mut out = std::mem::take(&mut self.bytes);
        out.resize(len, 0);
        out
    }
    /// The header integer of a signed message (at most 31 bytes).
    pub fn to_fr(&self) -> Fr {
        fr_from_be(&self.bytes)
    }
}

/// Reads fixed-width big-endian fields; every read is bounds-checked.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Input ended before a field could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pubdata ended early")]
pub struct Truncated;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn uint(&mut self, n: usize) -> Result<u128, Truncated> {
        Ok(self.take(n)?.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b)))
    }
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.uint(1)? as u8)
    }
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(self.uint(2)? as u16)
    }
    pub fn u24(&mut self) -> Result<u32, Truncated> {
        Ok(self.uint(3)? as u32)
    }
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(self.uint(4)? as u32)
    }
    pub fn u40(&mut self) -> Result<u64, Truncated> {
        Ok(self.uint(5)? as u64)
    }
    pub fn u128(&mut self) -> Result<u128, Truncated> {
        self.uint(16)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }
    pub fn position(&self) -> usize {
        self.pos
    }
}
