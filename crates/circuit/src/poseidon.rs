//! circomlib-compatible Poseidon gadget (`Poseidon(n)` of circomlib, `zkl_crypto::poseidon::hash`).
//!
//! The permutation is written in the reference form of `zkl_crypto::poseidon::params`: round
//! constants and the MDS matrix are folded into linear combinations (no constraints); every
//! S-box `x^5` costs three constraints (`x^2`, `x^4`, `x^5`), and an S-box whose input is a
//! constant (element 0 of the first round) costs none. A width-`t` hash therefore costs
//! `3 * (8 * t + R_P) - 3` constraints.
//!
//! arkworks' own Poseidon sponge is *not* compatible (other parameters, output `state[1]`).

use ark_r1cs_std::fields::FieldVar;

use crate::{FrVar, SynthesisError};
use zkl_crypto::poseidon::{MAX_INPUTS, params};

/// `x^5` with three constraints (none if `x` is constant).
fn sbox(x: &FrVar) -> Result<FrVar, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

/// Poseidon of 1..=16 inputs; equals `zkl_crypto::poseidon::hash(inputs)`.
///
/// Returns `SynthesisError::Unsatisfiable` for 0 or more than 16 inputs (a circuit-construction
/// error, not a panic).
pub fn hash(inputs: &[FrVar]) -> Result<FrVar, SynthesisError> {
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(SynthesisError::Unsatisfiable);
    }
    let t = inputs.len() + 1;
    let p = params(t);
    let mut state: Vec<FrVar> = Vec::with_capacity(t);
    state.push(FrVar::zero());
    state.extend_from_slice(inputs);
    let half = p.full_rounds / 2;
    for r in 0..p.full_rounds + p.partial_rounds {
        for (s, c) in state.iter_mut().zip(&p.ark[r * t..(r + 1) * t]) {
            *s += *c;
        }
        if r < half || r >= half + p.partial_rounds {
            for s in state.iter_mut() {
                *s = sbox(s)?;
            }
        } else {
            state[0] = sbox(&state[0])?;
        }
        state =
            p.mds.iter().map(|row| row.iter().zip(&state).fold(FrVar::zero(), |acc, (m, x)| acc + x * *m)).collect();
    }
    Ok(state.swap_remove(0))
}

/// Poseidon of a fixed number of inputs.
pub fn hash_array<const N: usize>(inputs: [FrVar; N]) -> Result<FrVar, SynthesisError> {
    hash(&inputs)
}

/// The number of constraints [`hash`] spends on `n` non-constant inputs (`n` in 1..=16).
pub fn constraints_for(n: usize) -> Option<usize> {
    if n == 0 || n > MAX_INPUTS {
        return None;
    }
    let t = n + 1;
    let p = params(t);
    Some(3 * (p.full_rounds * t + p.partial_rounds) - 3)
}
