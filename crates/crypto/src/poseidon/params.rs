//! circomlib's Poseidon parameters, generated exactly as the Poseidon reference script
//! `generate_parameters_grain.sage` generates them (`sage generate_parameters_grain.sage
//! 1 0 254 t 8 R_P 0x30644e…01`): a Grain LFSR in self-shrinking mode seeded with the
//! parameters yields the round constants, then the Cauchy MDS matrix.
//!
//! The generated values are checked against light-poseidon's tables (widths 2 to 13) and against
//! circomlibjs outputs (widths 2 to 17) by the tests.

use ark_ff::{BigInteger, Field, PrimeField};

use crate::field::Fr;

/// Full rounds, for every width.
pub const FULL_ROUNDS: usize = 8;

/// Partial rounds per width `t = 2..=17` (index `t - 2`), as in circomlib's `poseidon.circom`.
pub const PARTIAL_ROUNDS: [usize; 16] = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];

/// Parameters of the Poseidon permutation of width `t` in the reference (unoptimised) form:
/// round `r` adds `ark[r*t..(r+1)*t]`, applies `x^5` (to every element in full rounds, to element 0
/// in partial rounds), then multiplies by `mds` (`new[i] = sum_j mds[i][j] * old[j]`).
#[derive(Clone, Debug)]
pub struct PoseidonParams {
    pub width: usize,
    pub full_rounds: usize,
    pub partial_rounds: usize,
    pub ark: Vec<Fr>,
    pub mds: Vec<Vec<Fr>>,
}

impl PoseidonParams {
    /// Generates the parameters for width `t` (`2..=17`).
    pub fn generate(t: usize) -> Self {
        assert!((2..=17).contains(&t), "Poseidon width {t} outside 2..=17");
        let partial_rounds = PARTIAL_ROUNDS[t - 2];
        let mut grain = Grain::new(t, FULL_ROUNDS, partial_rounds);
        let n_constants = (FULL_ROUNDS + partial_rounds) * t;
        let ark = (0..n_constants).map(|_| grain.field_element_rejecting()).collect();
        let mds = loop {
            // Sample 2t distinct elements (reduced, not rejected, as the reference script does).
            let xy: Vec<Fr> = loop {
                let candidate: Vec<Fr> = (0..2 * t).map(|_| grain.field_element_reduced()).collect();
                let mut sorted = candidate.clone();
                sorted.sort();
                sorted.dedup();
                if sorted.len() == candidate.len() {
                    break candidate;
                }
            };
            let (xs, ys) = xy.split_at(t);
            let entries: Option<Vec<Vec<Fr>>> =
                xs.iter().map(|x| ys.iter().map(|y| (*x + y).inverse()).collect::<Option<Vec<Fr>>>()).collect();
            if let Some(m) = entries {
                break m;
            }
        };
        Self { width: t, full_rounds: FULL_ROUNDS, partial_rounds, ark, mds }
    }

    /// The reference permutation, a direct transcription of the specification. The optimised
    /// permutation is tested equal to it; the circuit's gadget follows this form.
    pub fn permute_reference(&self, state: &mut [Fr]) {
        let t = self.width;
        assert_eq!(state.len(), t);
        let half = self.full_rounds / 2;
        for r in 0..self.full_rounds + self.partial_rounds {
            for (s, c) in state.iter_mut().zip(&self.ark[r * t..(r + 1) * t]) {
                *s += c;
            }
            if r < half || r >= half + self.partial_rounds {
                state.iter_mut().for_each(|s| *s = pow5(*s));
            } else {
                state[0] = pow5(state[0]);
            }
            let old = state.to_vec();
            for (i, s) in state.iter_mut().enumerate() {
                *s = self.mds[i].iter().zip(&old).map(|(m, x)| *m * x).sum();
            }
        }
    }
}

#[inline(always)]
pub(crate) fn pow5(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

/// The Grain LFSR of the Poseidon reference script, in self-shrinking mode.
struct Grain {
    /// Bit `i` is the reference script's `bit_sequence[i]` (bit 0 is the oldest).
    state: u128,
}

impl Grain {
    fn new(t: usize, full_rounds: usize, partial_rounds: usize) -> Self {
        // field = 1 (GF(p)), sbox = 0 (x^alpha), field size = 254 bits.
        let fields: [(u64, u32); 6] =
            [(1, 2), (0, 4), (254, 12), (t as u64, 12), (full_rounds as u64, 10), (partial_rounds as u64, 10)];
        let mut bits = Vec::with_capacity(80);
        for (value, width) in fields {
            for i in (0..width).rev() {
                bits.push((value >> i) & 1 == 1);
            }
        }
        bits.extend(std::iter::repeat_n(true, 30));
        let state = bits.iter().enumerate().fold(0u128, |acc, (i, b)| acc | (u128::from(*b) << i));
        let mut grain = Self { state };
        for _ in 0..160 {
            grain.step();
        }
        grain
    }

    fn step(&mut self) -> bool {
        let s = self.state;
        let bit = ((s >> 62) ^ (s >> 51) ^ (s >> 38) ^ (s >> 23) ^ (s >> 13) ^ s) & 1;
        self.state = (s >> 1) | (bit << 79);
        bit == 1
    }

    /// Self-shrinking: of each pair of bits, the second is output when the first is 1.
    fn next_bit(&mut self) -> bool {
        loop {
            let keep = self.step();
            let bit = self.step();
            if keep {
                return bit;
            }
        }
    }

    /// 254 bits, most significant first.
    fn next_bits(&mut self) -> ark_ff::BigInt<4> {
        let mut bits = [false; 256];
        for b in bits.iter_mut().skip(2) {
            *b = self.next_bit();
        }
        ark_ff::BigInt::<4>::from_bits_be(&bits)
    }

    fn field_element_rejecting(&mut self) -> Fr {
        loop {
            if let Some(x) = Fr::from_bigint(self.next_bits()) {
                return x;
            }
        }
    }

    fn field_element_reduced(&mut self) -> Fr {
        Fr::from_le_bytes_mod_order(&self.next_bits().to_bytes_le())
    }
}
