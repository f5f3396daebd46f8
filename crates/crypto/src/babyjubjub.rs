//! BabyJubJub in circomlib's coordinates: the twisted Edwards curve
//! `168700 x^2 + y^2 = 1 + 168696 x^2 y^2` over the BN254 scalar field.
//!
//! Arithmetic runs on arkworks' `ark-ed-on-bn254`, which models the same curve with `a = 1`
//! (`X^2 + Y^2 = 1 + (168696/168700) X^2 Y^2`). The isomorphism is `X = sqrt(168700) * x`,
//! `Y = y`; points cross it only at the API boundary.

use std::sync::OnceLock;

use ark_ec::scalar_mul::wnaf::WnafContext;
use ark_ec::twisted_edwards::{Affine, Projective};
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ed_on_bn254::{EdwardsAffine, EdwardsConfig, EdwardsProjective};
use ark_ff::{BigInteger, Field, MontFp, PrimeField, Zero};
use num_bigint::BigUint;

use crate::field::{Fr, fr_from_be_bytes};

/// The order of the prime-order subgroup (circomlib's `subOrder`).
pub type Scalar = ark_ed_on_bn254::Fr;

/// Curve coefficient `a` in circomlib's form.
pub const COEFF_A: Fr = MontFp!("168700");
/// Curve coefficient `d` in circomlib's form.
pub const COEFF_D: Fr = MontFp!("168696");

/// Why bytes or coordinates are not an acceptable curve point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    #[error("point is not on BabyJubJub")]
    NotOnCurve,
    #[error("point is not in the prime-order subgroup")]
    NotInSubgroup,
    #[error("packed point does not decode to a curve point")]
    BadEncoding,
}

/// A BabyJubJub point in circomlib's coordinates. Construction through [`Point::new`] checks
/// that it lies on the curve; [`Point::new_in_subgroup`] also checks the subgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Point {
    x: Fr,
    y: Fr,
}

fn sqrt_a() -> &'static (Fr, Fr) {
    static S: OnceLock<(Fr, Fr)> = OnceLock::new();
    S.get_or_init(|| {
        let s = COEFF_A.sqrt().expect("168700 is a square mod r");
        (s, s.inverse().expect("non-zero"))
    })
}

impl Point {
    /// The neutral element `(0, 1)`.
    pub const IDENTITY: Point = Point { x: MontFp!("0"), y: MontFp!("1") };

    /// A point from coordinates, rejected if not on the curve.
    pub fn new(x: Fr, y: Fr) -> Result<Self, PointError> {
        let p = Point { x, y };
        if p.is_on_curve() { Ok(p) } else { Err(PointError::NotOnCurve) }
    }

    /// A point from coordinates, rejected if not on the curve or not in the prime-order subgroup.
    pub fn new_in_subgroup(x: Fr, y: Fr) -> Result<Self, PointError> {
        let p = Self::new(x, y)?;
        if p.is_in_subgroup() { Ok(p) } else { Err(PointError::NotInSubgroup) }
    }

    pub fn x(&self) -> Fr {
        self.x
    }

    pub fn y(&self) -> Fr {
        self.y
    }

    pub fn is_on_curve(&self) -> bool {
        let (x2, y2) = (self.x.square(), self.y.square());
        COEFF_A * x2 + y2 == Fr::ONE + COEFF_D * x2 * y2
    }

    /// `[l] P == O`, with `l` the subgroup order, computed as `[l - 1] P == -P`.
    pub fn is_in_subgroup(&self) -> bool {
        let p = self.to_ark().into_group();
        wnaf_mul(p, &-Scalar::ONE) == -p
    }

    pub(crate) fn to_ark(self) -> EdwardsAffine {
        Affine::new_unchecked(self.x * sqrt_a().0, self.y)
    }

    pub(crate) fn from_ark(p: EdwardsProjective) -> Self {
        let a = p.into_affine();
        if a.is_zero() {
            return Self::IDENTITY;
        }
        Point { x: a.x * sqrt_a().1, y: a.y }
    }

    /// `[k] P` for a scalar given as a big integer (reduced by nothing: the full integer is used).
    pub fn mul_biguint(&self, k: &BigUint) -> Self {
        let limbs = k.to_u64_digits();
        Self::from_ark(self.to_ark().into_group().mul_bigint(limbs))
    }

    pub fn mul(&self, k: &Scalar) -> Self {
        Self::from_ark(wnaf_mul(self.to_ark().into_group(), k))
    }

    pub fn add(&self, other: &Self) -> Self {
        Self::from_ark(self.to_ark() + other.to_ark())
    }

    /// circomlibjs `packPoint`: `y` little-endian, the top bit of the last byte set when
    /// `x > (r - 1) / 2`.
    pub fn pack(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.y.into_bigint().to_bytes_le());
        if self.x.into_bigint() > Fr::MODULUS_MINUS_ONE_DIV_TWO {
            out[31] |= 0x80;
        }
        out
    }

    /// circomlibjs `unpackPoint`, strict: `y` must be canonical and `x` must exist.
    pub fn unpack(bytes: &[u8; 32]) -> Result<Self, PointError> {
        let sign = bytes[31] & 0x80 != 0;
        let mut y_le = *bytes;
        y_le[31] &= 0x7f;
        y_le.reverse();
        let y = fr_from_be_bytes(&y_le).map_err(|_| PointError::BadEncoding)?;
        // x^2 = (1 - y^2) / (a - d y^2)
        let y2 = y.square();
        let den = (COEFF_A - COEFF_D * y2).inverse().ok_or(PointError::BadEncoding)?;
        let mut x = ((Fr::ONE - y2) * den).sqrt().ok_or(PointError::BadEncoding)?;
        if x.is_zero() && sign {
            return Err(PointError::BadEncoding);
        }
        if (x.into_bigint() > Fr::MODULUS_MINUS_ONE_DIV_TWO) != sign {
            x = -x;
        }
        Point::new(x, y).map_err(|_| PointError::BadEncoding)
    }
}

/// circomlib's `Base8`, generator of the prime-order subgroup.
pub fn base8() -> Point {
    Point {
        x: MontFp!("5299619240641551281634865583518297030282874472190772894086521144482721001553"),
        y: MontFp!("16950150798460657717958625567821834550301663161624707787222815936182638968203"),
    }
}

/// Variable-base multiplication with a width-5 NAF.
pub(crate) fn wnaf_mul(p: EdwardsProjective, k: &Scalar) -> EdwardsProjective {
    WnafContext::new(5).mul(p, k)
}

/// Fixed-base multiplication by `Base8`.
pub fn mul_base8(k: &Scalar) -> Point {
    Point::from_ark(mul_base8_projective(k))
}

/// Fixed-base multiplication by `Base8` with a precomputed table, left in projective
/// coordinates.
pub(crate) fn mul_base8_projective(k: &Scalar) -> EdwardsProjective {
    static TABLE: OnceLock<WindowTable> = OnceLock::new();
    TABLE.get_or_init(|| WindowTable::new(base8().to_ark().into_group())).mul(k)
}

/// The multiples of a point in 4-bit windows: row `w` holds `j · 16^w · P` for `j` in 0..16
/// (affine, 64 KiB). `k · P` is then at most 64 mixed additions and no doubling, against about
/// 250 doublings and 50 additions without it; building it costs about 1,000 additions.
pub(crate) struct WindowTable(Vec<[EdwardsAffine; 16]>);

impl WindowTable {
    /// Windows of 4 bits covering a scalar (below 2^251).
    const WINDOWS: usize = 64;

    pub(crate) fn new(p: EdwardsProjective) -> Self {
        let mut all = Vec::with_capacity(Self::WINDOWS * 16);
        let mut base = p;
        for _ in 0..Self::WINDOWS {
            let mut multiple = EdwardsProjective::zero();
            for _ in 0..16 {
                all.push(multiple);
                multiple += base;
            }
            base = multiple;
        }
        let affine = EdwardsProjective::normalize_batch(&all);
        Self(affine.chunks_exact(16).map(|row| row.try_into().expect("rows of 16")).collect())
    }

    pub(crate) fn mul(&self, k: &Scalar) -> EdwardsProjective {
        let bytes = k.into_bigint().to_bytes_le();
        let mut acc = Projective::<EdwardsConfig>::zero();
        for (w, row) in self.0.iter().enumerate() {
            let nibble = (bytes[w / 2] >> ((w % 2) * 4)) & 0x0f;
            if nibble != 0 {
                acc += &row[nibble as usize];
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::AdditiveGroup;
    use proptest::prelude::*;

    #[test]
    fn base8_is_a_subgroup_generator_in_both_models() {
        let b = base8();
        assert!(b.is_on_curve());
        assert!(b.to_ark().is_on_curve());
        assert!(b.is_in_subgroup());
        assert_ne!(b, Point::IDENTITY);
    }

    #[test]
    fn low_order_points_are_not_in_subgroup() {
        // (0, -1) has order 2; circomlib's Generator has order 8l.
        let p = Point::new(Fr::ZERO, -Fr::ONE).unwrap();
        assert!(!p.is_in_subgroup());
        assert_eq!(Point::new_in_subgroup(Fr::ZERO, -Fr::ONE), Err(PointError::NotInSubgroup));
        let generator = Point::new(
            MontFp!("995203441582195749578291179787384436505546430278305826713579947235728471134"),
            MontFp!("5472060717959818805561601436314318772137091100104008585924551046643952123905"),
        )
        .unwrap();
        assert!(!generator.is_in_subgroup());
        assert_eq!(generator.mul_biguint(&BigUint::from(8u32)), base8());
        assert_eq!(Point::new(Fr::ONE, Fr::ONE), Err(PointError::NotOnCurve));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn fixed_base_equals_variable_base(bytes in any::<[u8; 32]>()) {
            let k = Scalar::from_le_bytes_mod_order(&bytes);
            prop_assert_eq!(mul_base8(&k), base8().mul(&k));
        }

        #[test]
        fn a_window_table_multiplies_like_the_variable_base_method(p in any::<[u8; 32]>(), k in any::<[u8; 32]>()) {
            let p = mul_base8(&Scalar::from_le_bytes_mod_order(&p)).to_ark().into_group();
            let k = Scalar::from_le_bytes_mod_order(&k);
            prop_assert_eq!(WindowTable::new(p).mul(&k), wnaf_mul(p, &k));
            prop_assert_eq!(WindowTable::new(p).mul(&-Scalar::ONE), -p);
        }

        #[test]
        fn pack_round_trips(bytes in any::<[u8; 32]>()) {
            let p = mul_base8(&Scalar::from_le_bytes_mod_order(&bytes));
            prop_assert_eq!(Point::unpack(&p.pack()).unwrap(), p);
        }

        #[test]
        fn unpack_never_panics(bytes in any::<[u8; 32]>()) {
            if let Ok(p) = Point::unpack(&bytes) {
                prop_assert!(p.is_on_curve());
                prop_assert_eq!(p.pack(), bytes);
            }
        }
    }
}
