//! Poseidon over the BN254 scalar field with circomlib's parameters, for 1 to 16 inputs.
//!
//! `hash(inputs)` equals circomlibjs' `poseidon(inputs)` and circomlib's `Poseidon(n)` template:
//! the state is `[0, inputs...]` of width `t = n + 1`, the permutation runs 8 full rounds and
//! `PARTIAL_ROUNDS[t - 2]` partial rounds with the `x^5` S-box, and the output is element 0.

mod optimized;
mod params;

use std::sync::OnceLock;

pub use optimized::OptimizedPoseidon;
pub use params::{FULL_ROUNDS, PARTIAL_ROUNDS, PoseidonParams};

use crate::field::Fr;

/// Largest number of inputs (circomlib supports widths up to 17).
pub const MAX_INPUTS: usize = 16;

/// Why a Poseidon hash could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoseidonError {
    #[error("Poseidon takes 1 to {MAX_INPUTS} inputs, got {0}")]
    InputCount(usize),
}

/// The reference-form parameters of width `t` (2..=17), generated once.
pub fn params(t: usize) -> &'static PoseidonParams {
    static PARAMS: [OnceLock<PoseidonParams>; 16] = [const { OnceLock::new() }; 16];
    assert!((2..=17).contains(&t), "Poseidon width {t} outside 2..=17");
    PARAMS[t - 2].get_or_init(|| PoseidonParams::generate(t))
}

macro_rules! widths {
    ($($t:literal, $k:literal => $name:ident),*) => {
        $(
            fn $name() -> &'static OptimizedPoseidon<$t, $k> {
                static P: OnceLock<OptimizedPoseidon<$t, $k>> = OnceLock::new();
                P.get_or_init(|| OptimizedPoseidon::new(params($t)))
            }
        )*

        /// Hashes 1 to 16 field elements (circomlibjs `poseidon(inputs)`).
        pub fn hash(inputs: &[Fr]) -> Result<Fr, PoseidonError> {
            match inputs.len() + 1 {
                $(
                    $t => {
                        let mut state = [Fr::from(0u64); $t];
                        state[1..].copy_from_slice(inputs);
                        $name().permute(&mut state);
                        Ok(state[0])
                    }
                )*
                _ => Err(PoseidonError::InputCount(inputs.len())),
            }
        }
    };
}

widths!(2, 1 => w2, 3, 2 => w3, 4, 3 => w4, 5, 4 => w5, 6, 5 => w6, 7, 6 => w7, 8, 7 => w8,
        9, 8 => w9, 10, 9 => w10, 11, 10 => w11, 12, 11 => w12, 13, 12 => w13, 14, 13 => w14,
        15, 14 => w15, 16, 15 => w16, 17, 16 => w17);

/// Hashes a fixed number of inputs; `N` must be 1..=16 (checked at compile time by callers'
/// types, at run time here).
#[inline]
pub fn hash_array<const N: usize>(inputs: [Fr; N]) -> Fr {
    hash(&inputs).expect("1..=16 inputs")
}

/// Poseidon of two elements, the Merkle-tree and commitment workhorse.
#[inline]
pub fn hash2(a: Fr, b: Fr) -> Fr {
    let mut state = [Fr::from(0u64), a, b];
    w3().permute(&mut state);
    state[0]
}

/// The reference (unoptimised) hash, for tests and for other implementations to compare with.
pub fn hash_reference(inputs: &[Fr]) -> Result<Fr, PoseidonError> {
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(PoseidonError::InputCount(inputs.len()));
    }
    let mut state = vec![Fr::from(0u64)];
    state.extend_from_slice(inputs);
    params(inputs.len() + 1).permute_reference(&mut state);
    Ok(state[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{BigInteger, PrimeField};
    use light_poseidon::{Poseidon, PoseidonHasher};
    use proptest::prelude::*;

    fn arb_fr() -> impl Strategy<Value = Fr> {
        any::<[u8; 32]>().prop_map(|b| Fr::from_le_bytes_mod_order(&b))
    }

    #[test]
    fn parameters_equal_light_poseidon_tables() {
        for t in 2..=13usize {
            let theirs = light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<Fr>(t as u8).unwrap();
            let ours = params(t);
            assert_eq!(ours.partial_rounds, theirs.partial_rounds, "t={t}");
            assert_eq!(ours.ark, theirs.ark, "round constants, t={t}");
            assert_eq!(ours.mds, theirs.mds, "MDS, t={t}");
        }
    }

    #[test]
    fn rejects_bad_input_counts() {
        assert_eq!(hash(&[]), Err(PoseidonError::InputCount(0)));
        assert_eq!(hash(&[Fr::from(1u64); 17]), Err(PoseidonError::InputCount(17)));
        assert_eq!(hash_reference(&[Fr::from(1u64); 17]), Err(PoseidonError::InputCount(17)));
    }

    #[test]
    fn known_circomlib_value() {
        // circomlibjs: poseidon([1, 2])
        let h = hash2(Fr::from(1u64), Fr::from(2u64));
        assert_eq!(
            crate::field::fr_to_decimal(&h),
            "7853200120776062878684798364095072458815029376092732009249414926327459813530"
        );
        let _ = h.into_bigint().to_bytes_be();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn optimized_equals_reference(inputs in prop::collection::vec(arb_fr(), 1..=16)) {
            prop_assert_eq!(hash(&inputs).unwrap(), hash_reference(&inputs).unwrap());
        }

        #[test]
        fn equals_light_poseidon(inputs in prop::collection::vec(arb_fr(), 1..=12)) {
            let mut theirs = Poseidon::<Fr>::new_circom(inputs.len()).unwrap();
            prop_assert_eq!(hash(&inputs).unwrap(), theirs.hash(&inputs).unwrap());
        }

        #[test]
        fn hash2_equals_hash(a in arb_fr(), b in arb_fr()) {
            prop_assert_eq!(hash2(a, b), hash(&[a, b]).unwrap());
        }
    }
}
