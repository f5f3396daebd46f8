//! Range-checked bit and byte decompositions, and the packed amount / packed fee encodings of
//! protocol.md section 8.
//!
//! Bits are little-endian (`bits[0]` is the least significant) unless a name says `be`; bytes
//! are big-endian, as in pubdata.

use ark_ff::{BigInteger, PrimeField};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::convert::ToBitsGadget;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::uint8::UInt8;
use num_bigint::BigUint;

use crate::{BoolVar, Fr, FrVar, SynthesisError};

/// Bits of a field element (254).
pub const FIELD_BITS: usize = 254;
/// Largest width a field element can be range-checked to by [`to_bits_le`] (below the modulus).
pub const MAX_SAFE_BITS: usize = 253;

/// Exponent bits of packed amounts and fees.
pub const EXPONENT_BITS: usize = 5;
/// Mantissa bits of a packed amount (40-bit encoding).
pub const AMOUNT_MANTISSA_BITS: usize = 35;
/// Mantissa bits of a packed fee (16-bit encoding).
pub const FEE_MANTISSA_BITS: usize = 11;

pub(crate) fn fr_to_biguint(x: &Fr) -> BigUint {
    BigUint::from_bytes_le(&x.into_bigint().to_bytes_le())
}

/// Allocates `n` witness bits of `x`'s value (little-endian) without relating them to `x`.
fn witness_bits(x: &FrVar, n: usize) -> Result<Vec<BoolVar>, SynthesisError> {
    let cs = x.cs();
    let value = x.value().ok().map(|v| fr_to_biguint(&v));
    (0..n)
        .map(|i| {
            BoolVar::new_witness(cs.clone(), || {
                value.as_ref().map(|v| v.bit(i as u64)).ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect()
}

/// The field element `sum bits[i] * 2^i` (a linear combination, no constraint). Only injective for
/// at most [`MAX_SAFE_BITS`] bits; callers that pass 254 bits must also check them against the modulus.
pub fn from_bits_le(bits: &[BoolVar]) -> FrVar {
    let mut acc = FrVar::zero();
    let mut power = Fr::from(1u64);
    for b in bits {
        acc += FrVar::from(b.clone()) * power;
        power += power;
    }
    acc
}

/// Decomposes `x` into `n <= 253` little-endian bits, enforcing `x < 2^n` (`n + 1` constraints).
pub fn to_bits_le(x: &FrVar, n: usize) -> Result<Vec<BoolVar>, SynthesisError> {
    if n > MAX_SAFE_BITS {
        return Err(SynthesisError::Unsatisfiable);
    }
    if let FrVar::Constant(c) = x {
        let v = fr_to_biguint(c);
        if v.bits() > n as u64 {
            return Err(SynthesisError::Unsatisfiable);
        }
        return Ok((0..n).map(|i| BoolVar::constant(v.bit(i as u64))).collect());
    }
    let bits = witness_bits(x, n)?;
    from_bits_le(&bits).enforce_equal(x)?;
    Ok(bits)
}

/// The canonical 254-bit little-endian decomposition of `x` (the integer is enforced below the
/// field modulus), about 2 * 254 constraints.
pub fn to_bits_le_strict(x: &FrVar) -> Result<Vec<BoolVar>, SynthesisError> {
    if let FrVar::Constant(c) = x {
        let v = fr_to_biguint(c);
        return Ok((0..FIELD_BITS).map(|i| BoolVar::constant(v.bit(i as u64))).collect());
    }
    let bits = witness_bits(x, FIELD_BITS)?;
    from_bits_le(&bits).enforce_equal(x)?;
    let modulus_minus_one = BigUint::from_bytes_le(&Fr::MODULUS.to_bytes_le()) - 1u32;
    enforce_le_constant(&bits, &modulus_minus_one)?;
    Ok(bits)
}

/// Enforces `bits <= c` for little-endian `bits` and a constant `c`: one constraint per bit of
/// `c` below its most significant one (at most), plus one if `bits` is longer than `c`.
pub fn enforce_le_constant(bits: &[BoolVar], c: &BigUint) -> Result<(), SynthesisError> {
    let c_bits = c.bits() as usize;
    if bits.len() > c_bits {
        // The bits above c's width must all be zero: their (boolean) sum is zero.
        from_bits_le_unweighted(&bits[c_bits..]).enforce_equal(&FrVar::zero())?;
    }
    // `eq` = the bits seen so far (from c's top bit down) equal c's; bits beyond `bits` are 0.
    let mut eq = BoolVar::TRUE;
    for i in (0..c_bits).rev() {
        let a = bits.get(i).cloned().unwrap_or(BoolVar::FALSE);
        if c.bit(i as u64) {
            eq = eq.clone() & &a;
        } else if eq != BoolVar::FALSE {
            // While equal so far, a 0 bit of c forces a 0 bit here.
            FrVar::from(eq.clone()).mul_equals(&FrVar::from(a), &FrVar::zero())?;
        }
    }
    Ok(())
}

fn from_bits_le_unweighted(bits: &[BoolVar]) -> FrVar {
    bits.iter().fold(FrVar::zero(), |acc, b| acc + FrVar::from(b.clone()))
}

/// Enforces `bits < c` (little-endian bits, constant `c > 0`).
pub fn enforce_lt_constant(bits: &[BoolVar], c: &BigUint) -> Result<(), SynthesisError> {
    if c.bits() == 0 {
        return Err(SynthesisError::Unsatisfiable);
    }
    enforce_le_constant(bits, &(c - 1u32))
}

/// The `n_bytes <= 31` big-endian bytes of `x`, enforcing `x < 2^(8 n_bytes)`.
pub fn to_bytes_be(x: &FrVar, n_bytes: usize) -> Result<Vec<UInt8<Fr>>, SynthesisError> {
    let bits = to_bits_le(x, 8 * n_bytes)?;
    Ok(bits_le_to_bytes_be(&bits))
}

/// The canonical 32 big-endian bytes of `x`.
pub fn to_bytes_be_strict(x: &FrVar) -> Result<Vec<UInt8<Fr>>, SynthesisError> {
    let mut bits = to_bits_le_strict(x)?;
    bits.extend([BoolVar::FALSE, BoolVar::FALSE]);
    Ok(bits_le_to_bytes_be(&bits))
}

/// Groups little-endian bits (a multiple of 8) into big-endian bytes.
pub fn bits_le_to_bytes_be(bits: &[BoolVar]) -> Vec<UInt8<Fr>> {
    bits.chunks(8).rev().map(UInt8::from_bits_le).collect()
}

/// Little-endian bits of big-endian bytes.
pub fn bytes_be_to_bits_le(bytes: &[UInt8<Fr>]) -> Result<Vec<BoolVar>, SynthesisError> {
    let mut bits = Vec::with_capacity(bytes.len() * 8);
    for b in bytes.iter().rev() {
        bits.extend(b.to_bits_le()?);
    }
    Ok(bits)
}

/// The integer of at most 31 big-endian bytes, as a field element (no constraint).
pub fn from_bytes_be(bytes: &[UInt8<Fr>]) -> Result<FrVar, SynthesisError> {
    if bytes.len() * 8 > MAX_SAFE_BITS {
        return Err(SynthesisError::Unsatisfiable);
    }
    Ok(from_bits_le(&bytes_be_to_bits_le(bytes)?))
}

/// Unpacks a canonical packed value `mantissa << 5 | exponent` with `mantissa_bits` of mantissa:
/// returns `mantissa * 10^exponent`. Enforces the packed value's width, canonical form (exponent 0,
/// or `10 * mantissa >= 2^mantissa_bits`, so no smaller exponent fits) and `value < 2^128`, which
/// is exactly what the native `unpack_amount`/`unpack_fee` accept.
pub fn unpack(packed: &FrVar, mantissa_bits: usize) -> Result<FrVar, SynthesisError> {
    if mantissa_bits == 0 || mantissa_bits + EXPONENT_BITS > 64 {
        return Err(SynthesisError::Unsatisfiable);
    }
    let bits = to_bits_le(packed, mantissa_bits + EXPONENT_BITS)?;
    unpack_bits(&bits)
}

/// [`unpack`] from the packed value's little-endian bits (already boolean-constrained, e.g. taken
/// from pubdata); the mantissa width is `bits.len() - 5`.
pub fn unpack_bits(bits: &[BoolVar]) -> Result<FrVar, SynthesisError> {
    if bits.len() <= EXPONENT_BITS || bits.len() > 64 {
        return Err(SynthesisError::Unsatisfiable);
    }
    let mantissa_bits = bits.len() - EXPONENT_BITS;
    let (e_bits, m_bits) = bits.split_at(EXPONENT_BITS);
    let mantissa = from_bits_le(m_bits);
    // 10^e = prod_i (b_i ? 10^(2^i) : 1)
    let mut pow = FrVar::one();
    let mut base = Fr::from(10u64);
    for b in e_bits {
        let factor = FrVar::one() + FrVar::from(b.clone()) * (base - Fr::from(1u64));
        pow *= factor;
        base = base * base;
    }
    let value = &mantissa * &pow;
    // Canonical: e == 0, or mantissa >= ceil(2^mb / 10).
    let exponent = from_bits_le(e_bits);
    let e_is_zero = exponent.is_eq(&FrVar::zero())?;
    let lower = Fr::from((1u128 << mantissa_bits).div_ceil(10));
    let slack = &mantissa - (FrVar::one() - FrVar::from(e_is_zero)) * lower;
    to_bits_le(&slack, mantissa_bits)?;
    // value < 2^128 (needed only when the largest encodable value exceeds it).
    let max_value = (BigUint::from(1u32) << mantissa_bits) * BigUint::from(10u32).pow(31);
    if max_value.bits() > 128 {
        to_bits_le(&value, 128)?;
    }
    Ok(value)
}

/// Unpacks a 40-bit packed amount.
pub fn unpack_amount(packed: &FrVar) -> Result<FrVar, SynthesisError> {
    unpack(packed, AMOUNT_MANTISSA_BITS)
}

/// Unpacks a 16-bit packed fee.
pub fn unpack_fee(packed: &FrVar) -> Result<FrVar, SynthesisError> {
    unpack(packed, FEE_MANTISSA_BITS)
}
