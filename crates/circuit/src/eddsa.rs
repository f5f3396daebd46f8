//! EdDSA-Poseidon verification gadget, making exactly the checks of `zkl_crypto::eddsa`
//! (protocol.md section 5):
//!
//! 1. `A` on the curve and in the prime-order subgroup: the prover supplies `A'` with
//!    `8 A' = A` (computed natively as `[8^-1 mod l] A`) and the circuit checks `A'` on the
//!    curve and the three doublings; the points `8 A'` are exactly the subgroup (the group is
//!    `Z/8 x Z/l`), at 4 + 15 + 2 constraints instead of a 251-bit multiplication for `[l] A = O`;
//! 2. `R8` on the curve;
//! 3. `S < l` (251-bit decomposition and a comparison with `l - 1`);
//! 4. `[S] Base8 == R8 + [8 h] A` with `h = Poseidon(R8x, R8y, Ax, Ay, M)` decomposed canonically.
//!
//! Check 4 is made without multiplying both sides by the cofactor, as the native verifier does:
//! circomlib's `[8 S] B8 == [8] R8 + [8 h] A` would also accept `R8` with a torsion component.
//!
//! With `enabled = false` every check holds whatever the inputs: the gadget substitutes the
//! identity for `A'` and `R8` and zero for `S`, and only the link `A == 8 A'` is conditional.

use ark_ff::{BigInteger, Field, PrimeField};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::select::CondSelectGadget;
use num_bigint::BigUint;
use zkl_crypto::babyjubjub::{Point, Scalar, base8};

use crate::bits::{enforce_lt_constant, from_bits_le, to_bits_le, to_bits_le_strict};
use crate::ecc::{PointVar, mul_fixed_base, mul_var_base};
use crate::{BoolVar, FrVar, SynthesisError, poseidon};

/// Bits of the subgroup order `l` (and of `S`).
pub const SCALAR_BITS: usize = 251;

/// A signature `(R8, S)` as circuit variables (unchecked until [`verify`]).
#[derive(Clone, Debug)]
pub struct SignatureVar {
    pub r8: PointVar,
    pub s: FrVar,
}

fn subgroup_order() -> BigUint {
    BigUint::from_bytes_le(&Scalar::MODULUS.to_bytes_le())
}

/// Enforces, when `enabled`, that `sig` is a valid signature of `msg` by the public key `a`.
pub fn verify(enabled: &BoolVar, a: &PointVar, msg: &FrVar, sig: &SignatureVar) -> Result<(), SynthesisError> {
    let identity = PointVar::identity();
    let cs = a.x.cs().or(a.y.cs()).or(enabled.cs());

    // 1. A = 8 A' with A' on the curve.
    let a_value = a.value();
    let a_prime = PointVar::new_witness(cs, || {
        let (x, y) = a_value?;
        let inv8 = Scalar::from(8u64).inverse().ok_or(SynthesisError::Unsatisfiable)?;
        let p = Point::new(x, y).map(|p| p.mul(&inv8)).unwrap_or(Point::IDENTITY);
        Ok((p.x(), p.y()))
    })?;
    let a_prime = PointVar::select(enabled, &a_prime, &identity)?;
    a_prime.enforce_on_curve()?;
    let a_eff = a_prime.double()?.double()?.double()?;
    a.conditional_enforce_equal(&a_eff, enabled)?;

    // 2. R8 on the curve.
    let r8 = PointVar::select(enabled, &sig.r8, &identity)?;
    r8.enforce_on_curve()?;

    // 3. S < l.
    let s = FrVar::conditionally_select(enabled, &sig.s, &FrVar::zero())?;
    let s_bits = to_bits_le(&s, SCALAR_BITS)?;
    enforce_lt_constant(&s_bits, &subgroup_order())?;

    // 4. [S] B8 == R8 + [8 h] A.
    let h = poseidon::hash(&[r8.x.clone(), r8.y.clone(), a_eff.x.clone(), a_eff.y.clone(), msg.clone()])?;
    let h_bits = to_bits_le_strict(&h)?;
    let left = mul_fixed_base(&base8(), &s_bits)?;
    let ha8 = mul_var_base(&a_eff, &h_bits)?.double()?.double()?.double()?;
    let right = r8.add(&ha8)?;
    left.enforce_equal(&right)
}

/// The pubkey hash of protocol.md section 7: `Poseidon(Ax, Ay) mod 2^160`, as a field element
/// (about 750 constraints: the hash and its canonical decomposition).
pub fn pubkey_hash(a: &PointVar) -> Result<FrVar, SynthesisError> {
    let h = poseidon::hash(&[a.x.clone(), a.y.clone()])?;
    let bits = to_bits_le_strict(&h)?;
    Ok(from_bits_le(&bits[..PUBKEY_HASH_BITS]))
}

/// Bits of a pubkey hash.
pub const PUBKEY_HASH_BITS: usize = 160;
