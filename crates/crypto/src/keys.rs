//! Ethereum keys and the derivation of the Layer-2 key from them.
//!
//! The user's Ethereum key signs [`L2_KEY_MESSAGE`] with `personal_sign` (EIP-191). The 65-byte
//! signature `r || s || v` (low `s`, `v` in {27, 28}) seeds the L2 key:
//! `l2_private_key = keccak256(r || s || v)`. ECDSA signing is deterministic (RFC 6979), so the
//! same wallet yields the same L2 key every time, on every chain. The message names no chain.

use alloy_primitives::{Address, B256, Signature as EthSignature, eip191_hash_message, keccak256};
use k256::ecdsa::SigningKey;

use crate::eddsa::{PrivateKey, PubKeyHash, PublicKey};

/// The exact message an Ethereum wallet signs (personal_sign) to derive its L2 key.
pub const L2_KEY_MESSAGE: &str = "Access zkLink-rs Layer-2 account.\n\nOnly sign this message for a trusted client!";

/// Why an Ethereum key or signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a valid secp256k1 private key (zero or not below the curve order)")]
    InvalidEthKey,
    #[error("malformed Ethereum signature: {0}")]
    BadEthSignature(String),
}

/// An Ethereum (secp256k1) private key.
#[derive(Clone)]
pub struct EthKey(SigningKey);

impl std::fmt::Debug for EthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EthKey({})", self.address())
    }
}

impl EthKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        SigningKey::from_bytes(bytes.into()).map(Self).map_err(|_| KeyError::InvalidEthKey)
    }

    pub fn address(&self) -> Address {
        Address::from_private_key(&self.0)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// Signs a 32-byte digest; the signature has low `s`.
    pub fn sign_prehash(&self, digest: &B256) -> EthSignature {
        let (sig, recid) = self.0.sign_prehash_recoverable(digest.as_slice()).expect("32-byte digest");
        EthSignature::from_signature_and_parity(sig, recid.is_y_odd())
    }

    /// `personal_sign` (EIP-191) of `message`.
    pub fn personal_sign(&self, message: &[u8]) -> EthSignature {
        self.sign_prehash(&eip191_hash_message(message))
    }
}

/// The 65-byte encoding `r || s || v` with `v` in {27, 28}.
pub fn eth_signature_bytes(sig: &EthSignature) -> [u8; 65] {
    sig.as_bytes()
}

/// Half the secp256k1 group order: a canonical signature's `s` is at most this.
const SECP256K1_HALF_ORDER: alloy_primitives::U256 =
    alloy_primitives::uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// Parses a signature in the canonical form every contract accepts (protocol.md section 12):
/// exactly 65 bytes `r || s || v`, `s` at most half the group order, `v` in {27, 28}.
pub fn parse_canonical_eth_signature(bytes: &[u8]) -> Result<EthSignature, KeyError> {
    if bytes.len() != 65 {
        return Err(KeyError::BadEthSignature(format!("{} bytes, expected 65", bytes.len())));
    }
    if bytes[64] != 27 && bytes[64] != 28 {
        return Err(KeyError::BadEthSignature(format!("v = {}, expected 27 or 28", bytes[64])));
    }
    let sig = EthSignature::from_raw(bytes).map_err(|e| KeyError::BadEthSignature(e.to_string()))?;
    if sig.s() > SECP256K1_HALF_ORDER {
        return Err(KeyError::BadEthSignature("high s (not canonical)".into()));
    }
    Ok(sig)
}

/// Parses `r || s || v` (`v` in {0, 1, 27, 28}); a high `s` is normalised.
pub fn parse_eth_signature(bytes: &[u8]) -> Result<EthSignature, KeyError> {
    let sig = EthSignature::from_raw(bytes).map_err(|e| KeyError::BadEthSignature(e.to_string()))?;
    Ok(sig.normalized_s())
}

/// The address that `personal_sign`ed `message`.
pub fn recover_personal_signer(message: &[u8], sig: &EthSignature) -> Result<Address, KeyError> {
    sig.recover_address_from_msg(message).map_err(|e| KeyError::BadEthSignature(e.to_string()))
}

/// The L2 private key seeded by a `personal_sign` signature of [`L2_KEY_MESSAGE`].
pub fn l2_key_from_signature(sig: &EthSignature) -> PrivateKey {
    PrivateKey::from_bytes(keccak256(sig.normalized_s().as_bytes()).0)
}

/// Everything derived from an Ethereum key.
#[derive(Clone, Debug)]
pub struct DerivedKey {
    pub eth_address: Address,
    pub l2_private_key: PrivateKey,
    pub public_key: PublicKey,
    pub pubkey_hash: PubKeyHash,
}

/// Derives the L2 key of an Ethereum key.
pub fn derive_l2_key(eth_key: &EthKey) -> DerivedKey {
    let sig = eth_key.personal_sign(L2_KEY_MESSAGE.as_bytes());
    let l2_private_key = l2_key_from_signature(&sig);
    let public_key = l2_private_key.public_key();
    DerivedKey { eth_address: eth_key.address(), pubkey_hash: public_key.pubkey_hash(), l2_private_key, public_key }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// anvil's first default account.
    const ANVIL_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn anvil_key() -> EthKey {
        EthKey::from_bytes(&hex::decode(ANVIL_KEY).unwrap().try_into().unwrap()).unwrap()
    }

    #[test]
    fn address_of_known_key() {
        assert_eq!(anvil_key().address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    }

    #[test]
    fn rejects_invalid_eth_keys() {
        assert_eq!(EthKey::from_bytes(&[0; 32]).unwrap_err(), KeyError::InvalidEthKey);
        assert_eq!(EthKey::from_bytes(&[0xff; 32]).unwrap_err(), KeyError::InvalidEthKey);
    }

    #[test]
    fn derivation_is_deterministic_and_recoverable() {
        let k = anvil_key();
        let a = derive_l2_key(&k);
        let b = derive_l2_key(&k);
        assert_eq!(a.l2_private_key, b.l2_private_key);
        let sig = k.personal_sign(L2_KEY_MESSAGE.as_bytes());
        assert_eq!(recover_personal_signer(L2_KEY_MESSAGE.as_bytes(), &sig).unwrap(), k.address());
        assert_eq!(l2_key_from_signature(&sig), a.l2_private_key);
    }

    #[test]
    fn high_s_signature_derives_the_same_key() {
        let k = anvil_key();
        let sig = k.personal_sign(L2_KEY_MESSAGE.as_bytes());
        let n = alloy_primitives::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let high = EthSignature::new(sig.r(), n - sig.s(), !sig.v());
        assert_eq!(l2_key_from_signature(&high), l2_key_from_signature(&sig));
        let parsed = parse_eth_signature(&high.as_bytes()).unwrap();
        assert_eq!(parsed, sig);
        assert!(parse_eth_signature(&[0u8; 10]).is_err());
    }

    #[test]
    fn canonical_form_is_strict() {
        let k = anvil_key();
        let sig = k.personal_sign(b"m");
        let good = sig.as_bytes();
        assert_eq!(parse_canonical_eth_signature(&good).unwrap(), sig);
        let n = alloy_primitives::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        // The same signature with high s (and flipped v), and with v in {0, 1}: both recover the
        // same signer, both are refused, as the contract refuses them.
        let high = EthSignature::new(sig.r(), n - sig.s(), !sig.v()).as_bytes();
        assert!(recover_personal_signer(b"m", &parse_eth_signature(&high).unwrap()).is_ok());
        assert!(parse_canonical_eth_signature(&high).unwrap_err().to_string().contains("high s"));
        let mut low_v = good;
        low_v[64] -= 27;
        assert!(parse_canonical_eth_signature(&low_v).unwrap_err().to_string().contains("v = "));
        assert!(parse_canonical_eth_signature(&good[..64]).is_err());
    }
}
