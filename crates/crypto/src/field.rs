//! The BN254 scalar field (the field of the state hash, of EdDSA-Poseidon messages, and of
//! BabyJubJub coordinates) and its text and byte encodings.
//!
//! Text: field elements are written `0x` + 64 lowercase hex digits, big-endian. They are read
//! from decimal or `0x`-hex; a value at or above the modulus is rejected, never reduced.

use ark_ff::{BigInteger, PrimeField};
use num_bigint::BigUint;

/// An element of the BN254 scalar field,
/// `r = 21888242871839275222246405745257275088548364400416034343698204186575808495617`.
pub type Fr = ark_bn254::Fr;

/// Why a text or byte string is not a field element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldParseError {
    #[error("empty value")]
    Empty,
    #[error("'{0}' is neither a decimal number nor 0x-prefixed hex")]
    NotANumber(String),
    #[error("'{0}' is not below the BN254 scalar field modulus")]
    OutOfRange(String),
    #[error("expected {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
}

/// Parses a field element from decimal (`123`) or hex (`0x7b`, at most 64 digits).
pub fn parse_fr(text: &str) -> Result<Fr, FieldParseError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(FieldParseError::Empty);
    }
    let value = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FieldParseError::NotANumber(t.to_string()));
        }
        if hex.trim_start_matches('0').len() > 64 {
            return Err(FieldParseError::OutOfRange(t.to_string()));
        }
        BigUint::parse_bytes(hex.as_bytes(), 16)
    } else {
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldParseError::NotANumber(t.to_string()));
        }
        BigUint::parse_bytes(t.as_bytes(), 10)
    }
    .ok_or_else(|| FieldParseError::NotANumber(t.to_string()))?;
    if value >= Fr::MODULUS.into() {
        return Err(FieldParseError::OutOfRange(t.to_string()));
    }
    Ok(Fr::from(value))
}

/// `0x` + 64 lowercase hex digits, big-endian.
pub fn fr_to_hex(x: &Fr) -> String {
    format!("0x{}", hex::encode(fr_to_be_bytes(x)))
}

/// Decimal representation (as circomlibjs prints field elements).
pub fn fr_to_decimal(x: &Fr) -> String {
    BigUint::from(x.into_bigint()).to_string()
}

/// 32-byte big-endian encoding.
pub fn fr_to_be_bytes(x: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&x.into_bigint().to_bytes_be());
    out
}

/// 32-byte little-endian encoding (circomlibjs' `F.toRprLE`).
pub fn fr_to_le_bytes(x: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&x.into_bigint().to_bytes_le());
    out
}

/// Reads a canonical 32-byte big-endian field element; values at or above the modulus are rejected.
pub fn fr_from_be_bytes(bytes: &[u8]) -> Result<Fr, FieldParseError> {
    if bytes.len() != 32 {
        return Err(FieldParseError::WrongLength { expected: 32, got: bytes.len() });
    }
    let value = BigUint::from_bytes_be(bytes);
    if value >= Fr::MODULUS.into() {
        return Err(FieldParseError::OutOfRange(format!("0x{}", hex::encode(bytes))));
    }
    Ok(Fr::from(value))
}

/// Interprets up to 31 bytes big-endian as a field element (always in range).
pub fn fr_from_be_bytes_small(bytes: &[u8]) -> Fr {
    assert!(bytes.len() <= 31, "at most 31 bytes fit below the modulus");
    Fr::from_be_bytes_mod_order(bytes)
}

/// The low `n_bytes` bytes of the big-endian encoding of `x`.
pub fn fr_low_bytes<const N: usize>(x: &Fr) -> [u8; N] {
    let be = fr_to_be_bytes(x);
    let mut out = [0u8; N];
    out.copy_from_slice(&be[32 - N..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_hex() {
        assert_eq!(parse_fr("0").unwrap(), Fr::from(0u64));
        assert_eq!(parse_fr("123").unwrap(), Fr::from(123u64));
        assert_eq!(parse_fr("0x7b").unwrap(), Fr::from(123u64));
        assert_eq!(parse_fr("0X7B").unwrap(), Fr::from(123u64));
        assert_eq!(parse_fr(&format!("0x{}", "0".repeat(70))).unwrap(), Fr::from(0u64));
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        let modulus = BigUint::from(Fr::MODULUS).to_string();
        assert!(matches!(parse_fr(&modulus), Err(FieldParseError::OutOfRange(_))));
        let below = (BigUint::from(Fr::MODULUS) - 1u32).to_string();
        assert_eq!(parse_fr(&below).unwrap(), -Fr::from(1u64));
        assert!(matches!(parse_fr(&format!("0x{}", "f".repeat(64))), Err(FieldParseError::OutOfRange(_))));
        assert!(matches!(parse_fr(&format!("0x1{}", "0".repeat(64))), Err(FieldParseError::OutOfRange(_))));
        for bad in ["", "0x", "12a", "-1", "0xg", "1.5", " "] {
            assert!(parse_fr(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hex_round_trip() {
        let x = -Fr::from(5u64);
        let h = fr_to_hex(&x);
        assert_eq!(h.len(), 66);
        assert_eq!(h, "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593effffffc");
        assert_eq!(parse_fr(&h).unwrap(), x);
        assert_eq!(fr_from_be_bytes(&fr_to_be_bytes(&x)).unwrap(), x);
        assert!(fr_from_be_bytes(&[0xff; 32]).is_err());
        assert!(fr_from_be_bytes(&[0; 31]).is_err());
    }
}
