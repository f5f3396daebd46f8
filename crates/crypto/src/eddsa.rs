//! EdDSA-Poseidon over BabyJubJub, compatible with circomlibjs (`prv2pub`, `signPoseidon`,
//! `verifyPoseidon`, `packSignature`) and @zk-kit/eddsa-poseidon.
//!
//! - Private key: 32 arbitrary bytes. `h = BLAKE-512(key)`; the secret scalar `s` is `h[0..32]`
//!   pruned (`h[0] &= 0xf8; h[31] &= 0x7f; h[31] |= 0x40`) read little-endian.
//! - Public key: `A = Base8 * (s >> 3)`.
//! - Sign(msg): `r = LE(BLAKE-512(h[32..64] || LE32(msg))) mod l`, `R8 = Base8 * r`,
//!   `hm = Poseidon(R8.x, R8.y, A.x, A.y, msg)`, `S = (r + hm * s) mod l`.
//! - Verify: `Base8 * S == R8 + A * (8 * hm)`. This implementation is stricter than circomlibjs:
//!   it also rejects `A` outside the prime-order subgroup (a key with a torsion component would
//!   let two different keys verify the same signatures). `R8` in the subgroup then follows from the
//!   equation, since both other terms are in it.

use ark_ff::{BigInteger, PrimeField};
use blake_hash::{Blake512, Digest};
use num_bigint::BigUint;
use std::sync::{Arc, LazyLock};

use ark_ec::AffineRepr;

use crate::babyjubjub::{Point, PointError, Scalar, WindowTable, mul_base8, mul_base8_projective, wnaf_mul};
use crate::field::{Fr, fr_low_bytes, fr_to_le_bytes};
use crate::poseidon;
use crate::remembered::Remembered;

/// Why a signature, public key or encoding was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key: {0}")]
    PublicKey(PointError),
    #[error("signature point R8: {0}")]
    R8(PointError),
    #[error("signature scalar S is not below the subgroup order")]
    SOutOfRange,
    #[error("signature does not match the message and public key")]
    Mismatch,
}

/// An EdDSA-Poseidon private key: 32 bytes, used as circomlibjs uses its `prv` buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(…)")
    }
}

impl PrivateKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn expanded(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(&Blake512::digest(&self.0));
        out
    }

    /// The pruned secret scalar `s` (a multiple of 8 below 2^255), as an integer.
    fn secret_scalar(h: &[u8; 64]) -> BigUint {
        let mut s = [0u8; 32];
        s.copy_from_slice(&h[..32]);
        s[0] &= 0xf8;
        s[31] &= 0x7f;
        s[31] |= 0x40;
        BigUint::from_bytes_le(&s)
    }

    /// circomlibjs `prv2pub`.
    pub fn public_key(&self) -> PublicKey {
        let s = Self::secret_scalar(&self.expanded());
        PublicKey(mul_base8(&scalar_mod_l(&(s >> 3u32))))
    }

    /// circomlibjs `signPoseidon(prv, msg)`.
    pub fn sign(&self, msg: &Fr) -> Signature {
        let h = self.expanded();
        let s = Self::secret_scalar(&h);
        let a = mul_base8(&scalar_mod_l(&(&s >> 3u32)));
        let mut nonce_input = [0u8; 64];
        nonce_input[..32].copy_from_slice(&h[32..]);
        nonce_input[32..].copy_from_slice(&fr_to_le_bytes(msg));
        let r_hash = Blake512::digest(&nonce_input);
        let r = Scalar::from_le_bytes_mod_order(&r_hash);
        let r8 = mul_base8(&r);
        let hm = challenge(&r8, &a, msg);
        let s_sig = r + hm * scalar_mod_l(&s);
        Signature { r8, s: s_sig }
    }
}

fn scalar_mod_l(k: &BigUint) -> Scalar {
    Scalar::from_le_bytes_mod_order(&k.to_bytes_le())
}

/// `Poseidon(R8.x, R8.y, A.x, A.y, msg)` reduced modulo the subgroup order.
fn challenge(r8: &Point, a: &Point, msg: &Fr) -> Scalar {
    let hm = poseidon::hash_array([r8.x(), r8.y(), a.x(), a.y(), *msg]);
    Scalar::from_le_bytes_mod_order(&hm.into_bigint().to_bytes_le())
}

/// Packed public keys [`PublicKey::from_packed`] remembers at most (then it starts afresh).
pub const KEY_CACHE: usize = 1 << 16;

/// Keys whose window tables a process keeps at most (64 KiB each; then it starts afresh).
const TABLE_KEYS: usize = 256;

/// A key's window table is built after its `TABLE_AFTER`-th successful verification without
/// one (a table costs about as much as four multiplications without it; a key that verifies a
/// few times only never pays for one). Only verified uses count, and a key starts counting
/// again after each table: whoever forces builds (signing with many keys of its own so that the
/// tables of others are forgotten) pays `TABLE_AFTER` valid signatures per build, at most about
/// twice the work of verifying them, and a key whose table was forgotten is verified as fast as
/// without tables.
const TABLE_AFTER: u32 = 4;

static TABLES: LazyLock<Remembered<Point, Arc<WindowTable>>> = LazyLock::new(|| Remembered::new(TABLE_KEYS));

/// `a` verified a signature without its window table: counted, and its table is built at the
/// [`TABLE_AFTER`]-th such verification.
fn verified_without_table(a: &Point) {
    static USES: LazyLock<Remembered<Point, u32>> = LazyLock::new(|| Remembered::new(KEY_CACHE));
    let uses = USES.get(a).unwrap_or(0) + 1;
    if uses < TABLE_AFTER {
        USES.insert(*a, uses);
        return;
    }
    USES.insert(*a, 0);
    TABLES.insert(*a, Arc::new(WindowTable::new(a.to_ark().into_group())));
}

/// A public key: a point of the prime-order subgroup (checked at construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey(Point);

impl PublicKey {
    /// From coordinates; rejects points off the curve or outside the prime-order subgroup.
    pub fn from_coords(x: Fr, y: Fr) -> Result<Self, SignatureError> {
        Point::new_in_subgroup(x, y).map(Self).map_err(SignatureError::PublicKey)
    }

    /// From circomlibjs' packed form (`packPoint`). Decompression and the subgroup check cost
    /// about 90 µs, and every order and tx a process reads names its signer's key again: keys
    /// that passed are remembered (at most [`KEY_CACHE`] of them, per process), rejected
    /// encodings are checked again each time.
    pub fn from_packed(bytes: &[u8; 32]) -> Result<Self, SignatureError> {
        static KEYS: LazyLock<Remembered<[u8; 32], PublicKey>> = LazyLock::new(|| Remembered::new(KEY_CACHE));
        if let Some(key) = KEYS.get(bytes) {
            return Ok(key);
        }
        let p = Point::unpack(bytes).map_err(SignatureError::PublicKey)?;
        if !p.is_in_subgroup() {
            return Err(SignatureError::PublicKey(PointError::NotInSubgroup));
        }
        KEYS.insert(*bytes, Self(p));
        Ok(Self(p))
    }

    pub fn pack(&self) -> [u8; 32] {
        self.0.pack()
    }

    pub fn point(&self) -> Point {
        self.0
    }

    pub fn x(&self) -> Fr {
        self.0.x()
    }

    pub fn y(&self) -> Fr {
        self.0.y()
    }

    /// The pubkey hash stored in account leaves: `Poseidon(Ax, Ay)`, keeping the 20 low-order
    /// bytes of its 32-byte big-endian encoding (that is, the hash modulo 2^160).
    pub fn pubkey_hash(&self) -> PubKeyHash {
        PubKeyHash(fr_low_bytes::<20>(&poseidon::hash2(self.x(), self.y())))
    }

    /// circomlibjs `verifyPoseidon(msg, sig, A)`, with the stricter checks described above.
    pub fn verify(&self, msg: &Fr, sig: &Signature) -> Result<(), SignatureError> {
        let hm = challenge(&sig.r8, &self.0, msg);
        let left = mul_base8_projective(&sig.s);
        let k = hm * Scalar::from(8u64);
        // With the key's window table once it has verified often (the matcher's key signs
        // every order matching, a trader's each of its orders).
        let table = TABLES.get(&self.0);
        let ka = match &table {
            Some(table) => table.mul(&k),
            None => wnaf_mul(self.0.to_ark().into_group(), &k),
        };
        if left != ka + sig.r8.to_ark() {
            return Err(SignatureError::Mismatch);
        }
        if table.is_none() {
            verified_without_table(&self.0);
        }
        Ok(())
    }
}

/// The 20-byte pubkey hash of an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PubKeyHash(pub [u8; 20]);

impl PubKeyHash {
    /// As a field element (big-endian integer of the 20 bytes).
    pub fn to_fr(&self) -> Fr {
        Fr::from_be_bytes_mod_order(&self.0)
    }
}

impl std::fmt::Display for PubKeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

/// A signature `(R8, S)`. Construction checks that `R8` is on the curve and `S < l`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    r8: Point,
    s: Scalar,
}

impl Signature {
    /// From `R8`'s coordinates and `S` given as a field element (as circomlibjs prints it).
    pub fn new(r8_x: Fr, r8_y: Fr, s: Fr) -> Result<Self, SignatureError> {
        let r8 = Point::new(r8_x, r8_y).map_err(SignatureError::R8)?;
        let s = Scalar::from_bigint(s.into_bigint()).ok_or(SignatureError::SOutOfRange)?;
        Ok(Self { r8, s })
    }

    pub fn r8(&self) -> Point {
        self.r8
    }

    /// `S` as a field element of the BN254 scalar field (it is below `l < r`).
    pub fn s(&self) -> Fr {
        Fr::from_le_bytes_mod_order(&self.s.into_bigint().to_bytes_le())
    }

    /// circomlibjs `packSignature`: packed `R8` followed by `S` little-endian.
    pub fn pack(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r8.pack());
        out[32..].copy_from_slice(&self.s.into_bigint().to_bytes_le());
        out
    }

    /// circomlibjs `unpackSignature`, strict: rejects a non-canonical `R8` or `S >= l`.
    pub fn unpack(bytes: &[u8; 64]) -> Result<Self, SignatureError> {
        let r8 = Point::unpack(bytes[..32].try_into().expect("32 bytes")).map_err(SignatureError::R8)?;
        let s = ark_ff::BigInt::<4>::try_from(BigUint::from_bytes_le(&bytes[32..]))
            .ok()
            .and_then(Scalar::from_bigint)
            .ok_or(SignatureError::SOutOfRange)?;
        Ok(Self { r8, s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{AdditiveGroup, Field};
    use proptest::prelude::*;

    fn key(b: u8) -> PrivateKey {
        PrivateKey::from_bytes([b; 32])
    }

    /// Only successful verifications count towards a key's window table: refused signatures
    /// never make a process build one.
    #[test]
    fn refused_signatures_build_no_window_table() {
        let k = key(91);
        let (msg, other) = (Fr::from(5u64), Fr::from(6u64));
        let sig = k.sign(&msg);
        let pk = k.public_key();
        for _ in 0..3 * TABLE_AFTER {
            assert!(pk.verify(&other, &sig).is_err());
        }
        assert!(TABLES.get(&pk.point()).is_none());
        for _ in 0..TABLE_AFTER {
            assert_eq!(pk.verify(&msg, &sig), Ok(()));
        }
        assert!(TABLES.get(&pk.point()).is_some());
        assert_eq!(pk.verify(&msg, &sig), Ok(()));
        assert!(pk.verify(&other, &sig).is_err());
    }

    #[test]
    fn sign_then_verify() {
        let k = key(7);
        let msg = Fr::from(1234u64);
        let sig = k.sign(&msg);
        let pk = k.public_key();
        assert_eq!(pk.verify(&msg, &sig), Ok(()));
        assert_eq!(pk.verify(&(msg + Fr::ONE), &sig), Err(SignatureError::Mismatch));
        assert_eq!(key(8).public_key().verify(&msg, &sig), Err(SignatureError::Mismatch));
    }

    #[test]
    fn rejects_s_at_or_above_order() {
        let l = Fr::from_le_bytes_mod_order(&Scalar::MODULUS.to_bytes_le());
        let sig = key(1).sign(&Fr::ONE);
        assert_eq!(Signature::new(sig.r8().x(), sig.r8().y(), l), Err(SignatureError::SOutOfRange));
        assert_eq!(Signature::new(sig.r8().x(), sig.r8().y(), l + Fr::ONE), Err(SignatureError::SOutOfRange));
        // S + l is what a malleability attack would submit.
        let mut packed = sig.pack();
        let s_plus_l = BigUint::from_bytes_le(&packed[32..]) + BigUint::from(Scalar::MODULUS);
        let mut bytes = s_plus_l.to_bytes_le();
        bytes.resize(32, 0);
        packed[32..].copy_from_slice(&bytes);
        assert_eq!(Signature::unpack(&packed), Err(SignatureError::SOutOfRange));
    }

    #[test]
    fn rejects_points_off_curve_and_torsion_keys() {
        let sig = key(2).sign(&Fr::ONE);
        assert_eq!(
            Signature::new(sig.r8().x() + Fr::ONE, sig.r8().y(), sig.s()),
            Err(SignatureError::R8(PointError::NotOnCurve))
        );
        assert_eq!(PublicKey::from_coords(Fr::ONE, Fr::ONE), Err(SignatureError::PublicKey(PointError::NotOnCurve)));
        // A + T, T of order 2: on the curve, outside the subgroup.
        let a = key(2).public_key().point();
        let t = Point::new(Fr::ZERO, -Fr::ONE).unwrap();
        let a_t = a.add(&t);
        assert_eq!(PublicKey::from_coords(a_t.x(), a_t.y()), Err(SignatureError::PublicKey(PointError::NotInSubgroup)));
        assert_eq!(PublicKey::from_packed(&a_t.pack()), Err(SignatureError::PublicKey(PointError::NotInSubgroup)));
        // Remembering accepted keys changes no verdict: asked again, after the valid key.
        assert_eq!(PublicKey::from_packed(&a.pack()), Ok(PublicKey(a)));
        assert_eq!(PublicKey::from_packed(&a.pack()), Ok(PublicKey(a)));
        assert_eq!(PublicKey::from_packed(&a_t.pack()), Err(SignatureError::PublicKey(PointError::NotInSubgroup)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn signatures_round_trip_and_tampering_fails(seed in any::<[u8; 32]>(), m in any::<u64>(), flip in 0usize..64) {
            let k = PrivateKey::from_bytes(seed);
            let msg = Fr::from(m);
            let sig = k.sign(&msg);
            let pk = k.public_key();
            prop_assert_eq!(pk.verify(&msg, &sig), Ok(()));
            // Again, past the verification that builds the key's window table.
            for _ in 0..TABLE_AFTER {
                prop_assert_eq!(pk.verify(&msg, &sig), Ok(()));
                prop_assert!(pk.verify(&(msg + Fr::from(1u64)), &sig).is_err());
            }
            prop_assert!(TABLES.get(&pk.point()).is_some(), "the key's table is built");
            let packed = sig.pack();
            prop_assert_eq!(Signature::unpack(&packed).unwrap(), sig);
            prop_assert_eq!(PublicKey::from_packed(&pk.pack()).unwrap(), pk);
            let mut tampered = packed;
            tampered[flip] ^= 1;
            if let Ok(t) = Signature::unpack(&tampered) {
                prop_assert!(pk.verify(&msg, &t).is_err());
            }
        }
    }
}
