//! JSON representations (the node's API, storage and the wallet): u128 amounts as decimal
//! strings, addresses, keys and signatures as `0x` hex (keys and signatures in circomlibjs'
//! packed form).

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};
use zkl_crypto::{PubKeyHash, PublicKey, Signature};

use crate::ids::Address;

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let h = s.strip_prefix("0x").ok_or_else(|| format!("'{s}' must start with 0x"))?;
    let v = hex::decode(h).map_err(|_| format!("'{s}' is not hex"))?;
    v.try_into().map_err(|_| format!("expected {N} bytes"))
}

/// u128 as a decimal string (numbers are accepted on input too).
pub mod u128_str {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(u64),
        }
        match Either::deserialize(d)? {
            Either::S(s) => s.parse().map_err(|_| D::Error::custom(format!("'{s}' is not a u128 decimal"))),
            Either::N(n) => Ok(u128::from(n)),
        }
    }
}

/// A public key as its 32-byte packed form.
pub mod pubkey_hex {
    use super::*;

    pub fn serialize<S: Serializer>(v: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v.pack())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let s = String::deserialize(d)?;
        let bytes: [u8; 32] = parse_hex(&s).map_err(D::Error::custom)?;
        PublicKey::from_packed(&bytes).map_err(|e| D::Error::custom(format!("public key: {e}")))
    }
}

/// A signature as its 64-byte packed form (packed R8 ‖ S little-endian, as circomlibjs).
pub mod signature_hex {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Signature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v.pack())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        let s = String::deserialize(d)?;
        let bytes: [u8; 64] = parse_hex(&s).map_err(D::Error::custom)?;
        Signature::unpack(&bytes).map_err(|e| D::Error::custom(format!("signature: {e}")))
    }
}

/// A pubkey hash as `0x` + 40 hex digits.
pub mod pkh_hex {
    use super::*;

    pub fn serialize<S: Serializer>(v: &PubKeyHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PubKeyHash, D::Error> {
        let s = String::deserialize(d)?;
        Ok(PubKeyHash(parse_hex(&s).map_err(D::Error::custom)?))
    }
}

/// Fixed-size bytes as `0x` hex.
pub mod bytes_hex {
    use super::*;

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s).map_err(D::Error::custom)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Address::parse(&s).ok_or_else(|| D::Error::custom(format!("'{s}' is not a 20- or 32-byte 0x address")))
    }
}
