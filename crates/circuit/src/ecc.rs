//! BabyJubJub in circomlib's coordinates (`168700 x^2 + y^2 = 1 + 168696 x^2 y^2`).
//!
//! The addition law is complete on the curve (`a` is a square and `d` is not), so the identity,
//! doubling and low-order points need no special cases. Costs: addition 6 constraints (3 when one
//! operand is constant), doubling 5 (valid for points on the curve), on-curve check 4,
//! fixed-base multiplication about 3.3 per scalar bit (3-bit windows of constant tables),
//! variable-base multiplication 11 per scalar bit (2-bit windows).

use ark_ff::{AdditiveGroup, Field};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::gr1cs::Namespace;
use zkl_crypto::babyjubjub::{COEFF_A, COEFF_D, Point};

use crate::{BoolVar, Fr, FrVar, SynthesisError};

/// A point in circomlib's coordinates. Nothing about it is checked at construction: callers
/// that take points from witnesses enforce what they need ([`PointVar::enforce_on_curve`]).
#[derive(Clone, Debug)]
pub struct PointVar {
    pub x: FrVar,
    pub y: FrVar,
}

/// `num / den` as a new witness with one constraint (`result * den == num`); a zero
/// denominator yields an unsatisfiable assignment, not an error.
fn div(num: &FrVar, den: &FrVar) -> Result<FrVar, SynthesisError> {
    if let (FrVar::Constant(n), FrVar::Constant(d)) = (num, den) {
        return d.inverse().map(|i| FrVar::Constant(*n * i)).ok_or(SynthesisError::Unsatisfiable);
    }
    let cs = num.cs().or(den.cs());
    let q = FrVar::new_witness(cs, || Ok(num.value()? * den.value()?.inverse().unwrap_or(Fr::ZERO)))?;
    q.mul_equals(den, num)?;
    Ok(q)
}

impl PointVar {
    pub fn constant(p: &Point) -> Self {
        Self { x: FrVar::constant(p.x()), y: FrVar::constant(p.y()) }
    }

    pub fn identity() -> Self {
        Self::constant(&Point::IDENTITY)
    }

    /// Allocates a witness point (coordinates only, no check).
    pub fn new_witness(
        cs: impl Into<Namespace<Fr>>,
        f: impl FnOnce() -> Result<(Fr, Fr), SynthesisError>,
    ) -> Result<Self, SynthesisError> {
        let ns = cs.into();
        let cs = ns.cs();
        let value = f();
        let x = FrVar::new_witness(cs.clone(), || value.as_ref().map(|v| v.0).map_err(|e| *e))?;
        let y = FrVar::new_witness(cs, || value.as_ref().map(|v| v.1).map_err(|e| *e))?;
        Ok(Self { x, y })
    }

    /// The coordinates' values, when assigned.
    pub fn value(&self) -> Result<(Fr, Fr), SynthesisError> {
        Ok((self.x.value()?, self.y.value()?))
    }

    /// Enforces `a x^2 + y^2 = 1 + d x^2 y^2` (4 constraints).
    pub fn enforce_on_curve(&self) -> Result<(), SynthesisError> {
        let xx = self.x.square()?;
        let yy = self.y.square()?;
        let xxyy = &xx * &yy;
        (xx * COEFF_A + yy).enforce_equal(&(xxyy * COEFF_D + Fr::ONE))
    }

    /// The sum (circomlib `BabyAdd`, 6 constraints).
    pub fn add(&self, other: &Self) -> Result<Self, SynthesisError> {
        let (x1, y1, x2, y2) = (&self.x, &self.y, &other.x, &other.y);
        let beta = x1 * y2;
        let gamma = y1 * x2;
        let delta = (y1 - x1 * COEFF_A) * (x2 + y2);
        let tau = &beta * &gamma;
        let dtau = tau * COEFF_D;
        let x3 = div(&(&beta + &gamma), &(FrVar::one() + &dtau))?;
        let y3 = div(&(delta + beta * COEFF_A - gamma), &(FrVar::one() - dtau))?;
        Ok(Self { x: x3, y: y3 })
    }

    /// `2 P` for `P` on the curve (5 constraints): `x' = 2xy / (a x^2 + y^2)`,
    /// `y' = (y^2 - a x^2) / (2 - a x^2 - y^2)`.
    pub fn double(&self) -> Result<Self, SynthesisError> {
        let xx = self.x.square()?;
        let yy = self.y.square()?;
        let xy = &self.x * &self.y;
        let axx = xx * COEFF_A;
        let sum = &axx + &yy;
        let x3 = div(&xy.double()?, &sum)?;
        let y3 = div(&(yy - axx), &(FrVar::constant(Fr::from(2u64)) - sum))?;
        Ok(Self { x: x3, y: y3 })
    }

    /// `cond ? t : f` (2 constraints).
    pub fn select(cond: &BoolVar, t: &Self, f: &Self) -> Result<Self, SynthesisError> {
        Ok(Self {
            x: FrVar::conditionally_select(cond, &t.x, &f.x)?,
            y: FrVar::conditionally_select(cond, &t.y, &f.y)?,
        })
    }

    pub fn enforce_equal(&self, other: &Self) -> Result<(), SynthesisError> {
        self.x.enforce_equal(&other.x)?;
        self.y.enforce_equal(&other.y)
    }

    pub fn conditional_enforce_equal(&self, other: &Self, cond: &BoolVar) -> Result<(), SynthesisError> {
        self.x.conditional_enforce_equal(&other.x, cond)?;
        self.y.conditional_enforce_equal(&other.y, cond)
    }
}

/// `[k] base` for a constant `base` and the little-endian bits of `k`: 3-bit windows, each a
/// multilinear lookup in a constant table (4 constraints for the bit products) and one addition.
pub fn mul_fixed_base(base: &Point, bits_le: &[BoolVar]) -> Result<PointVar, SynthesisError> {
    let mut acc: Option<PointVar> = None;
    let mut window_base = *base;
    for chunk in bits_le.chunks(3) {
        let bit = |i: usize| chunk.get(i).map_or(FrVar::zero(), |b| FrVar::from(b.clone()));
        let (b0, b1, b2) = (bit(0), bit(1), bit(2));
        // table[v] = [v] window_base, v = b0 + 2 b1 + 4 b2
        let mut table = [Point::IDENTITY; 8];
        for v in 1..8 {
            table[v] = table[v - 1].add(&window_base);
        }
        window_base = table[7].add(&window_base);
        let b01 = &b0 * &b1;
        // Monomials indexed by the subset mask of {b0, b1, b2}.
        let monomials =
            [FrVar::one(), b0.clone(), b1.clone(), b01.clone(), b2.clone(), &b0 * &b2, &b1 * &b2, &b01 * &b2];
        let lookup = |coord: fn(&Point) -> Fr| {
            // Möbius transform: coefficient of subset S = sum over T subset of S of (-1)^{|S|-|T|} table[T].
            let mut coeffs: [Fr; 8] = std::array::from_fn(|v| coord(&table[v]));
            for bit in 0..3 {
                for s in 0..8 {
                    if s & (1 << bit) != 0 {
                        coeffs[s] -= coeffs[s ^ (1 << bit)];
                    }
                }
            }
            monomials.iter().zip(coeffs).fold(FrVar::zero(), |acc, (m, c)| acc + m * c)
        };
        let point = PointVar { x: lookup(Point::x), y: lookup(Point::y) };
        acc = Some(match acc {
            None => point,
            Some(a) => a.add(&point)?,
        });
    }
    Ok(acc.unwrap_or_else(PointVar::identity))
}

/// `[k] P` for a point `P` on the curve (the caller enforces it) and the little-endian bits of
/// `k`: 2-bit windows from the most significant, 22 constraints per window.
pub fn mul_var_base(p: &PointVar, bits_le: &[BoolVar]) -> Result<PointVar, SynthesisError> {
    let identity = PointVar::identity();
    let p2 = p.double()?;
    let p3 = p2.add(p)?;
    let mut acc: Option<PointVar> = None;
    for pair in bits_le.chunks(2).rev() {
        let b0 = &pair[0];
        let lo = PointVar::select(b0, p, &identity)?;
        let t = match pair.get(1) {
            Some(b1) => {
                let hi = PointVar::select(b0, &p3, &p2)?;
                PointVar::select(b1, &hi, &lo)?
            }
            None => lo,
        };
        acc = Some(match acc {
            None => t,
            Some(a) => a.double()?.double()?.add(&t)?,
        });
    }
    Ok(acc.unwrap_or(identity))
}
