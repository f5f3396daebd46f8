//! Sparse quad Merkle tree over Poseidon with deferred, dirty-only root computation
//! (protocol.md section 10).

use std::collections::HashMap;
use std::sync::OnceLock;

use rayon::prelude::*;
use zkl_crypto::{Fr, poseidon};

/// `Poseidon(c0, c1, c2, c3)`.
pub fn hash_node(c: &[Fr; 4]) -> Fr {
    poseidon::hash_array(*c)
}

/// Empty-subtree hashes: `e[0] = empty leaf`, `e[k+1] = H(e[k], e[k], e[k], e[k])`.
pub fn empty_hashes(empty_leaf: Fr, depth: usize) -> Vec<Fr> {
    let mut out = vec![empty_leaf];
    for k in 0..depth {
        let e = out[k];
        out.push(hash_node(&[e, e, e, e]));
    }
    out
}

/// Empty hashes of balance and order trees (depth 11, empty leaf 0).
pub fn empty_sub_tree() -> &'static [Fr] {
    static E: OnceLock<Vec<Fr>> = OnceLock::new();
    E.get_or_init(|| empty_hashes(Fr::from(0u64), zkl_types::BALANCE_TREE_DEPTH))
}

/// Sibling hashes of a leaf, from the leaf's level upward: `siblings[k]` holds the three other
/// children of the level-`k+1` node on the path, in position order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleProof {
    pub index: u64,
    pub siblings: Vec<[Fr; 3]>,
}

impl MerkleProof {
    /// The root this proof gives for `leaf`.
    pub fn root(&self, leaf: Fr) -> Fr {
        let mut cur = leaf;
        let mut idx = self.index;
        for sib in &self.siblings {
            let pos = (idx & 3) as usize;
            let mut children = [Fr::from(0u64); 4];
            let mut s = sib.iter();
            for (i, c) in children.iter_mut().enumerate() {
                *c = if i == pos { cur } else { *s.next().expect("three siblings") };
            }
            cur = hash_node(&children);
            idx >>= 2;
        }
        cur
    }
}

/// Number of parent nodes at one level above which hashing runs in parallel.
const PARALLEL_THRESHOLD: usize = 32;

/// The nodes a commit of a [`QuadTree`] writes (leaves set with the plan included), and the
/// root they give.
#[derive(Debug, Clone, Default)]
pub struct TreePlan {
    nodes: Vec<((u8, u64), Fr)>,
    root: Fr,
    /// The tree's dirty leaves when planned (checked when applied).
    dirty: usize,
}

impl TreePlan {
    pub fn root(&self) -> Fr {
        self.root
    }
}

/// A sparse quad tree of fixed depth. Leaves are set immediately; inner nodes are recomputed
/// only for dirty paths, when [`QuadTree::root`] or [`QuadTree::commit`] is called.
#[derive(Debug, Clone)]
pub struct QuadTree {
    depth: usize,
    empty: &'static [Fr],
    /// Non-empty nodes, keyed by (level, index at that level); level 0 holds the leaves.
    nodes: HashMap<(u8, u64), Fr>,
    dirty: Vec<u64>,
    root: Fr,
}

impl QuadTree {
    /// An empty tree; `empty` must hold `depth + 1` empty-subtree hashes.
    pub fn new(depth: usize, empty: &'static [Fr]) -> Self {
        assert_eq!(empty.len(), depth + 1, "empty hashes for every level");
        QuadTree { depth, empty, nodes: HashMap::new(), dirty: Vec::new(), root: empty[depth] }
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Number of leaves (4^depth).
    pub fn capacity(&self) -> u64 {
        1u64 << (2 * self.depth)
    }

    fn node(&self, level: usize, index: u64) -> Fr {
        self.nodes.get(&(level as u8, index)).copied().unwrap_or(self.empty[level])
    }

    fn put(&mut self, level: usize, index: u64, value: Fr) {
        if value == self.empty[level] {
            self.nodes.remove(&(level as u8, index));
        } else {
            self.nodes.insert((level as u8, index), value);
        }
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: u64) -> Fr {
        self.node(0, index)
    }

    /// Sets a leaf; the root is recomputed lazily. `index` must be below [`Self::capacity`].
    pub fn set(&mut self, index: u64, value: Fr) {
        debug_assert!(index < self.capacity());
        self.put(0, index, value);
        self.dirty.push(index);
    }

    /// Whether leaves changed since the last commit.
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Recomputes the inner nodes over dirty paths; returns the root.
    pub fn commit(&mut self) -> Fr {
        let plan = self.plan(&[]);
        self.apply(plan)
    }

    /// What [`Self::commit`] would write after also setting `leaves`, computed without changing
    /// the tree (so it can run while others read it); [`Self::apply`] writes it. Nothing may
    /// change the tree in between.
    pub fn plan(&self, leaves: &[(u64, Fr)]) -> TreePlan {
        let dirty = self.dirty.len();
        if dirty == 0 && leaves.is_empty() {
            return TreePlan { nodes: Vec::new(), root: self.root, dirty };
        }
        let mut fresh: HashMap<(u8, u64), Fr> = leaves.iter().map(|&(i, v)| ((0, i), v)).collect();
        let mut cur: Vec<u64> = self.dirty.iter().copied().chain(leaves.iter().map(|(i, _)| *i)).collect();
        cur.sort_unstable();
        cur.dedup();
        for level in 0..self.depth {
            let mut parents: Vec<u64> = cur.iter().map(|i| i >> 2).collect();
            parents.dedup();
            let node = |i: u64| fresh.get(&(level as u8, i)).copied().unwrap_or_else(|| self.node(level, i));
            let hash_parent = |p: &u64| {
                let base = p << 2;
                (*p, hash_node(&[node(base), node(base + 1), node(base + 2), node(base + 3)]))
            };
            let hashed: Vec<(u64, Fr)> = if parents.len() >= PARALLEL_THRESHOLD {
                parents.par_iter().map(hash_parent).collect()
            } else {
                parents.iter().map(hash_parent).collect()
            };
            fresh.extend(hashed.into_iter().map(|(p, h)| (((level + 1) as u8, p), h)));
            cur = parents;
        }
        let root = fresh[&(self.depth as u8, 0)];
        TreePlan { nodes: fresh.into_iter().collect(), root, dirty }
    }

    /// Writes a [`Self::plan`] of this tree; returns the root.
    pub fn apply(&mut self, plan: TreePlan) -> Fr {
        debug_assert_eq!(plan.dirty, self.dirty.len(), "the tree changed since it was planned");
        for ((level, index), value) in plan.nodes {
            self.put(usize::from(level), index, value);
        }
        self.dirty.clear();
        self.root = plan.root;
        self.root
    }

    /// The root (commits pending changes first).
    pub fn root(&mut self) -> Fr {
        self.commit()
    }

    /// The committed root (without committing).
    pub fn committed_root(&self) -> Fr {
        self.root
    }

    /// A proof for `index` against the committed root. Pending changes must be committed first.
    pub fn proof(&self, index: u64) -> MerkleProof {
        debug_assert!(self.dirty.is_empty(), "commit before taking proofs");
        let mut siblings = Vec::with_capacity(self.depth);
        let mut idx = index;
        for level in 0..self.depth {
            let base = idx & !3;
            let mut sib = [Fr::from(0u64); 3];
            let mut k = 0;
            for i in 0..4 {
                if base + i != idx {
                    sib[k] = self.node(level, base + i);
                    k += 1;
                }
            }
            siblings.push(sib);
            idx >>= 2;
        }
        MerkleProof { index, siblings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_empty() -> &'static [Fr] {
        static E: OnceLock<Vec<Fr>> = OnceLock::new();
        E.get_or_init(|| empty_hashes(Fr::from(0u64), 3))
    }

    /// The root computed from scratch over all 64 leaves.
    fn naive_root(leaves: &[Fr; 64]) -> Fr {
        let mut level: Vec<Fr> = leaves.to_vec();
        while level.len() > 1 {
            level = level.chunks(4).map(|c| hash_node(&[c[0], c[1], c[2], c[3]])).collect();
        }
        level[0]
    }

    #[test]
    fn empty_root_matches_naive() {
        let mut t = QuadTree::new(3, small_empty());
        assert_eq!(t.root(), naive_root(&[Fr::from(0u64); 64]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn deferred_root_equals_naive(writes in proptest::collection::vec((0u64..64, 0u64..4), 1..30), commit_every in 1usize..8) {
            let mut t = QuadTree::new(3, small_empty());
            let mut leaves = [Fr::from(0u64); 64];
            for (n, (i, v)) in writes.iter().enumerate() {
                t.set(*i, Fr::from(*v));
                leaves[*i as usize] = Fr::from(*v);
                if n % commit_every == 0 { t.commit(); }
            }
            let root = t.root();
            prop_assert_eq!(root, naive_root(&leaves));
            for i in 0..64u64 {
                let p = t.proof(i);
                prop_assert_eq!(p.root(leaves[i as usize]), root);
                prop_assert_ne!(p.root(leaves[i as usize] + Fr::from(1u64)), root);
            }
        }
    }
}
