//! Sparse quad (arity-4) Merkle tree paths over Poseidon (protocol.md section 10).
//!
//! A node is `Poseidon(c0, c1, c2, c3)`; the child of node `i` at position `p` has index `4i + p`,
//! so the base-4 digits of a leaf index, least significant first, are the positions on the path
//! from the leaf up. At each level the caller supplies the three siblings in increasing position
//! order (skipping the path's own position).

use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;

use crate::{BoolVar, FrVar, SynthesisError, poseidon};

/// Depth of the account tree (2^24 leaves).
pub const ACCOUNT_TREE_DEPTH: usize = 12;
/// Depth of the balance and order trees (2^22 leaves).
pub const BALANCE_TREE_DEPTH: usize = 11;

/// One level of a quad-tree path: the position digit (two index bits, low first) and the siblings.
#[derive(Clone)]
pub struct QuadLevel {
    /// `position = b0 + 2 * b1`.
    pub position: [BoolVar; 2],
    /// The three other children, in increasing position order.
    pub siblings: [FrVar; 3],
}

/// A leaf's path: `levels[0]` is the leaf's own level (its siblings are leaves).
#[derive(Clone)]
pub struct QuadPath {
    pub levels: Vec<QuadLevel>,
}

impl QuadPath {
    /// Builds a path from little-endian index bits (`2 * depth` of them) and the siblings per level.
    pub fn new(index_bits_le: &[BoolVar], siblings: Vec<[FrVar; 3]>) -> Result<Self, SynthesisError> {
        if index_bits_le.len() != 2 * siblings.len() {
            return Err(SynthesisError::Unsatisfiable);
        }
        let levels = siblings
            .into_iter()
            .zip(index_bits_le.chunks(2))
            .map(|(siblings, b)| QuadLevel { position: [b[0].clone(), b[1].clone()], siblings })
            .collect();
        Ok(Self { levels })
    }

    pub fn depth(&self) -> usize {
        self.levels.len()
    }

    /// A path whose siblings are new witnesses of `cs` (from `siblings`, per level, in increasing
    /// position order) and whose positions are `index_bits_le`.
    pub fn witness(
        cs: &crate::ConstraintSystemRef<crate::Fr>,
        index_bits_le: &[BoolVar],
        siblings: &[[crate::Fr; 3]],
    ) -> Result<Self, SynthesisError> {
        use ark_r1cs_std::alloc::AllocVar;
        let s = siblings
            .iter()
            .map(|s| -> Result<[FrVar; 3], SynthesisError> {
                Ok([
                    FrVar::new_witness(cs.clone(), || Ok(s[0]))?,
                    FrVar::new_witness(cs.clone(), || Ok(s[1]))?,
                    FrVar::new_witness(cs.clone(), || Ok(s[2]))?,
                ])
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(index_bits_le, s)
    }
}

/// The four children of a node with `cur` at `position` (7 constraints, 1 of which can be shared).
fn children(cur: &FrVar, level: &QuadLevel, both: &BoolVar) -> Result<[FrVar; 4], SynthesisError> {
    let [b0, b1] = &level.position;
    let [s0, s1, s2] = &level.siblings;
    // p == 0 <=> !b0 && !b1; the indicator is linear given both = b0 && b1.
    let is0 = is_position_zero(b0, b1, both);
    let c0 = s0 + is0 * (cur - s0);
    // p = 0: s0, p = 1: cur, p >= 2: s1
    let low = b0.select(cur, s0)?;
    let c1 = b1.select(s1, &low)?;
    // p <= 1: s1, p = 2: cur, p = 3: s2
    let high = b0.select(s2, cur)?;
    let c2 = b1.select(&high, s1)?;
    // p = 3: cur, else s2
    let c3 = s2 + FrVar::from(both.clone()) * (cur - s2);
    Ok([c0, c1, c2, c3])
}

/// `(1 - b0)(1 - b1) = 1 - b0 - b1 + b0 b1`, linear given `both = b0 b1`.
fn is_position_zero(b0: &BoolVar, b1: &BoolVar, both: &BoolVar) -> FrVar {
    FrVar::one() - FrVar::from(b0.clone()) - FrVar::from(b1.clone()) + FrVar::from(both.clone())
}

/// The root of the tree holding `leaf` on `path`.
pub fn root(leaf: &FrVar, path: &QuadPath) -> Result<FrVar, SynthesisError> {
    let mut cur = leaf.clone();
    for level in &path.levels {
        let both = level.position[0].clone() & &level.position[1];
        cur = poseidon::hash(&children(&cur, level, &both)?)?;
    }
    Ok(cur)
}

/// A path update: enforces that `old_leaf` on `path` gives `old_root` and returns the root with
/// `new_leaf` in its place (same siblings).
pub fn update(old_root: &FrVar, old_leaf: &FrVar, new_leaf: &FrVar, path: &QuadPath) -> Result<FrVar, SynthesisError> {
    let (computed_old, new_root) = roots(old_leaf, new_leaf, path)?;
    computed_old.enforce_equal(old_root)?;
    Ok(new_root)
}

/// The roots before and after replacing `old_leaf` by `new_leaf` on `path`.
pub fn roots(old_leaf: &FrVar, new_leaf: &FrVar, path: &QuadPath) -> Result<(FrVar, FrVar), SynthesisError> {
    let mut old = old_leaf.clone();
    let mut new = new_leaf.clone();
    for level in &path.levels {
        let both = level.position[0].clone() & &level.position[1];
        old = poseidon::hash(&children(&old, level, &both)?)?;
        new = poseidon::hash(&children(&new, level, &both)?)?;
    }
    Ok((old, new))
}

/// A path update in a tree of depth `path.depth()`, or `path.depth() - 1` when `short` is true:
/// the block circuit's generic path slot, which serves the account tree (depth 12) and the
/// balance and order trees (depth 11) with one gadget. For a short tree the top level is still
/// hashed but its result is discarded, so its position bits and siblings are free (pass zeros).
/// Costs the full-depth update plus two selections.
pub fn update_short_or_full(
    old_root: &FrVar,
    old_leaf: &FrVar,
    new_leaf: &FrVar,
    path: &QuadPath,
    short: &BoolVar,
) -> Result<FrVar, SynthesisError> {
    let (old, new) = roots_short_or_full(old_leaf, new_leaf, path, short)?;
    old.enforce_equal(old_root)?;
    Ok(new)
}

/// The roots before and after replacing `old_leaf` by `new_leaf` on `path` in a tree of depth
/// `path.depth()`, or `path.depth() - 1` when `short` is true (see [`update_short_or_full`]).
pub fn roots_short_or_full(
    old_leaf: &FrVar,
    new_leaf: &FrVar,
    path: &QuadPath,
    short: &BoolVar,
) -> Result<(FrVar, FrVar), SynthesisError> {
    let Some((top, lower)) = path.levels.split_last() else {
        return Err(SynthesisError::Unsatisfiable);
    };
    let (old_short, new_short) = roots(old_leaf, new_leaf, &QuadPath { levels: lower.to_vec() })?;
    let both = top.position[0].clone() & &top.position[1];
    let old_full = poseidon::hash(&children(&old_short, top, &both)?)?;
    let new_full = poseidon::hash(&children(&new_short, top, &both)?)?;
    Ok((short.select(&old_short, &old_full)?, short.select(&new_short, &new_full)?))
}
