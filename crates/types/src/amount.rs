//! Packed amounts (5 bytes) and packed fees (2 bytes), protocol.md section 8.
//!
//! `packed = mantissa << 5 | exponent`, value = `mantissa · 10^exponent`. Packing never rounds:
//! an amount that is not exactly representable is an error. The canonical encoding uses the
//! smallest exponent that fits; unpacking accepts only canonical encodings.

/// Bits of the exponent in both encodings.
pub const EXPONENT_BITS: u32 = 5;
/// Mantissa bits of a packed amount (40-bit encoding).
pub const AMOUNT_MANTISSA_BITS: u32 = 35;
/// Mantissa bits of a packed fee (16-bit encoding).
pub const FEE_MANTISSA_BITS: u32 = 11;
const MAX_EXPONENT: u32 = (1 << EXPONENT_BITS) - 1;

/// Why an amount could not be packed or unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0} is not exactly representable as a packed amount (35-bit mantissa times a power of ten)")]
    AmountNotPackable(u128),
    #[error("fee {0} is not exactly representable as a packed fee (11-bit mantissa times a power of ten)")]
    FeeNotPackable(u128),
    #[error("packed value {0:#x} is not a canonical encoding")]
    NonCanonical(u64),
}

fn pack(value: u128, mantissa_bits: u32) -> Option<u64> {
    let limit = 1u128 << mantissa_bits;
    let mut m = value;
    let mut e = 0u32;
    loop {
        if m < limit {
            return Some(((m as u64) << EXPONENT_BITS) | u64::from(e));
        }
        if e == MAX_EXPONENT || !m.is_multiple_of(10) {
            return None;
        }
        m /= 10;
        e += 1;
    }
}

fn unpack(packed: u64, mantissa_bits: u32) -> Option<u128> {
    if packed >> (mantissa_bits + EXPONENT_BITS) != 0 {
        return None;
    }
    let e = (packed & u64::from(MAX_EXPONENT)) as u32;
    let m = u128::from(packed >> EXPONENT_BITS);
    let value = m.checked_mul(10u128.checked_pow(e)?)?;
    // Canonical: packing the value again yields the same encoding.
    (pack(value, mantissa_bits) == Some(packed)).then_some(value)
}

/// Packs an amount into 40 bits.
pub fn pack_amount(amount: u128) -> Result<u64, AmountError> {
    pack(amount, AMOUNT_MANTISSA_BITS).ok_or(AmountError::AmountNotPackable(amount))
}

/// Packs a fee into 16 bits.
pub fn pack_fee(fee: u128) -> Result<u16, AmountError> {
    pack(fee, FEE_MANTISSA_BITS).map(|p| p as u16).ok_or(AmountError::FeeNotPackable(fee))
}

/// Unpacks a canonical 40-bit packed amount.
pub fn unpack_amount(packed: u64) -> Result<u128, AmountError> {
    unpack(packed, AMOUNT_MANTISSA_BITS).ok_or(AmountError::NonCanonical(packed))
}

/// Unpacks a canonical 16-bit packed fee.
pub fn unpack_fee(packed: u16) -> Result<u128, AmountError> {
    unpack(u64::from(packed), FEE_MANTISSA_BITS).ok_or(AmountError::NonCanonical(u64::from(packed)))
}

/// Whether `amount` packs exactly.
pub fn is_packable_amount(amount: u128) -> bool {
    pack_amount(amount).is_ok()
}

/// Whether `fee` packs exactly.
pub fn is_packable_fee(fee: u128) -> bool {
    pack_fee(fee).is_ok()
}

/// The largest packable amount not above `amount` (for wallets choosing what to send).
pub fn round_down_amount(amount: u128) -> u128 {
    round_down(amount, AMOUNT_MANTISSA_BITS)
}

/// The largest packable fee not above `fee`.
pub fn round_down_fee(fee: u128) -> u128 {
    round_down(fee, FEE_MANTISSA_BITS)
}

/// The smallest packable fee not below `fee` (what a node quotes as a minimum fee), or `None`
/// when no packable fee is that large.
pub fn round_up_fee(fee: u128) -> Option<u128> {
    let limit = 1u128 << FEE_MANTISSA_BITS;
    let mut scale = 1u128;
    for _ in 0..=MAX_EXPONENT {
        let m = fee.div_ceil(scale);
        if m < limit {
            return Some(m * scale);
        }
        scale = scale.checked_mul(10)?;
    }
    None
}

fn round_down(value: u128, mantissa_bits: u32) -> u128 {
    let limit = 1u128 << mantissa_bits;
    let mut scale = 1u128;
    let mut m = value;
    let mut e = 0;
    while m >= limit && e < MAX_EXPONENT {
        m /= 10;
        scale *= 10;
        e += 1;
    }
    m.min(limit - 1) * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_up_fee_known_values() {
        assert_eq!(round_up_fee(0), Some(0));
        assert_eq!(round_up_fee(2047), Some(2047));
        assert_eq!(round_up_fee(2048), Some(2050));
        assert_eq!(round_up_fee(20471), Some(20500));
        assert_eq!(round_up_fee(u128::MAX), None);
    }

    #[test]
    fn known_values() {
        assert_eq!(pack_amount(0), Ok(0));
        assert_eq!(pack_amount(1), Ok(1 << 5));
        assert_eq!(pack_amount((1 << 35) - 1), Ok(((1 << 35) - 1) << 5));
        // 2^35 is not divisible by 10 and too large for the mantissa.
        assert_eq!(pack_amount(1 << 35), Err(AmountError::AmountNotPackable(1 << 35)));
        // 10^18 (one token) packs as mantissa 10^18 / 10^8 ... smallest exponent with m < 2^35.
        let p = pack_amount(10u128.pow(18)).unwrap();
        assert_eq!(unpack_amount(p), Ok(10u128.pow(18)));
        assert_eq!(p & 31, 8);
        assert_eq!(pack_fee(2047), Ok(2047 << 5));
        assert_eq!(pack_fee(2048), Err(AmountError::FeeNotPackable(2048)));
        assert_eq!(pack_fee(20470), Ok((2047 << 5) | 1));
        assert_eq!(pack_fee(20480), Err(AmountError::FeeNotPackable(20480)));
    }

    #[test]
    fn non_canonical_rejected() {
        // 10 encoded as mantissa 1, exponent 1 is not canonical (mantissa 10, exponent 0 is).
        assert_eq!(unpack_amount((1 << 5) | 1), Err(AmountError::NonCanonical((1 << 5) | 1)));
        // Too wide.
        assert!(unpack_amount(1 << 40).is_err());
        // Overflow of u128: mantissa 2^35-1 times 10^31.
        assert!(unpack_amount((((1u64 << 35) - 1) << 5) | 31).is_err());
    }

    proptest! {
        #[test]
        fn round_up_fee_is_the_smallest_packable_above(f in 0u128..(1u128 << 100)) {
            let r = round_up_fee(f).expect("fees up to 2^100 round up");
            prop_assert!(r >= f && is_packable_fee(r));
            if r > f {
                prop_assert!(round_down_fee(r - 1) < f);
            }
        }

        #[test]
        fn pack_roundtrip(m in 0u128..(1 << 35), e in 0u32..20) {
            let v = m * 10u128.pow(e);
            let p = pack_amount(v).unwrap();
            prop_assert_eq!(unpack_amount(p), Ok(v));
        }

        #[test]
        fn fee_roundtrip(m in 0u128..(1 << 11), e in 0u32..25) {
            let v = m * 10u128.pow(e);
            let p = pack_fee(v).unwrap();
            prop_assert_eq!(unpack_fee(p), Ok(v));
        }

        #[test]
        fn never_rounds(v in any::<u128>()) {
            if let Ok(p) = pack_amount(v) { prop_assert_eq!(unpack_amount(p), Ok(v)); }
            if let Ok(p) = pack_fee(v) { prop_assert_eq!(unpack_fee(p), Ok(v)); }
            let r = round_down_amount(v);
            prop_assert!(r <= v && is_packable_amount(r));
        }

        #[test]
        fn unpack_any_is_canonical(p in 0u64..(1 << 40)) {
            if let Ok(v) = unpack_amount(p) { prop_assert_eq!(pack_amount(v), Ok(p)); }
        }
    }
}
