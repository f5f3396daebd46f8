//! Argument parsers shared by the commands. Each returns a one-line message on failure, which
//! clap prefixes with the argument's name.

use zkl_crypto::{Fr, parse_fr};

/// A BN254 scalar field element, decimal or 0x-hex.
pub fn field_element(s: &str) -> Result<Fr, String> {
    parse_fr(s).map_err(|e| e.to_string())
}

/// Exactly 32 bytes as `0x` + 64 hex digits.
pub fn bytes32(s: &str) -> Result<[u8; 32], String> {
    let hex = s.strip_prefix("0x").ok_or_else(|| format!("'{s}' must start with 0x"))?;
    if hex.len() != 64 {
        return Err(format!("expected 0x followed by 64 hex digits, got {} digits", hex.len()));
    }
    let bytes = hex::decode(hex).map_err(|_| format!("'{s}' is not hex"))?;
    Ok(bytes.try_into().expect("64 hex digits are 32 bytes"))
}
