//! Poseidon and quad Merkle gadgets against `zkl_crypto` and a native sparse quad tree.

use crate::common;

use std::collections::HashMap;

use ark_ff::{Field, UniformRand};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use common::{new_cs, rng, satisfied, witness};
use rand::Rng;
use zkl_circuit::merkle::{self, QuadPath};
use zkl_circuit::{BoolVar, Fr, FrVar, poseidon};
use zkl_crypto::poseidon::hash as native_hash;

#[test]
fn poseidon_equals_native_for_every_width() {
    let mut r = rng(1);
    for n in 1..=16 {
        for _ in 0..2 {
            let cs = new_cs();
            let inputs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut r)).collect();
            let vars: Vec<FrVar> = inputs.iter().map(|x| witness(&cs, *x)).collect();
            let before = cs.num_constraints();
            let out = poseidon::hash(&vars).unwrap();
            let cost = cs.num_constraints() - before;
            assert_eq!(out.value().unwrap(), native_hash(&inputs).unwrap(), "n = {n}");
            assert_eq!(Some(cost), poseidon::constraints_for(n), "n = {n}");
            assert!(satisfied(&cs));
        }
    }
}

#[test]
fn poseidon_wrong_output_is_unsatisfied() {
    let cs = new_cs();
    let a = Fr::from(1u64);
    let b = Fr::from(2u64);
    let out = poseidon::hash(&[witness(&cs, a), witness(&cs, b)]).unwrap();
    let claimed = FrVar::new_input(cs.clone(), || Ok(native_hash(&[a, b]).unwrap() + Fr::ONE)).unwrap();
    out.enforce_equal(&claimed).unwrap();
    assert!(!satisfied(&cs));
}

#[test]
fn poseidon_rejects_bad_arity_without_panicking() {
    assert!(poseidon::hash(&[]).is_err());
    assert!(poseidon::hash(&vec![FrVar::Constant(Fr::ONE); 17]).is_err());
    assert_eq!(poseidon::constraints_for(0), None);
}

#[test]
fn poseidon_of_constants_costs_nothing_and_matches() {
    let inputs = [Fr::from(1u64), Fr::from(2u64), Fr::from(3u64), Fr::from(4u64)];
    let out = poseidon::hash(&inputs.map(FrVar::Constant)).unwrap();
    assert!(matches!(out, FrVar::Constant(_)));
    assert_eq!(out.value().unwrap(), native_hash(&inputs).unwrap());
}

/// A native sparse quad tree (protocol.md section 10), straight from the definition.
struct QuadTree {
    depth: usize,
    leaves: HashMap<u64, Fr>,
    /// empty[level]: the root of an empty subtree of height `level`.
    empty: Vec<Fr>,
}

impl QuadTree {
    fn new(depth: usize, empty_leaf: Fr) -> Self {
        let mut empty = vec![empty_leaf];
        for i in 0..depth {
            let e = empty[i];
            empty.push(native_hash(&[e, e, e, e]).unwrap());
        }
        Self { depth, leaves: HashMap::new(), empty }
    }

    fn node(&self, level: usize, index: u64) -> Fr {
        if level == 0 {
            return *self.leaves.get(&index).unwrap_or(&self.empty[0]);
        }
        if !self.leaves.keys().any(|k| k >> (2 * level) == index) {
            return self.empty[level];
        }
        let c: Vec<Fr> = (0..4).map(|p| self.node(level - 1, 4 * index + p)).collect();
        native_hash(&c).unwrap()
    }

    fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    fn leaf(&self, index: u64) -> Fr {
        self.node(0, index)
    }

    /// Siblings from the leaf level up, in increasing position order.
    fn siblings(&self, index: u64) -> Vec<[Fr; 3]> {
        (0..self.depth)
            .map(|level| {
                let node = index >> (2 * level);
                let parent = node >> 2;
                let others: Vec<Fr> =
                    (0..4).filter(|p| *p != node & 3).map(|p| self.node(level, 4 * parent + p)).collect();
                [others[0], others[1], others[2]]
            })
            .collect()
    }
}

struct PathCase {
    tree: QuadTree,
    index: u64,
    new_leaf: Fr,
}

fn case(seed: u64, depth: usize) -> PathCase {
    let mut r = rng(seed);
    let mut tree = QuadTree::new(depth, Fr::from(0u64));
    let capacity = 1u64 << (2 * depth);
    for _ in 0..12 {
        tree.leaves.insert(r.gen_range(0..capacity), Fr::rand(&mut r));
    }
    // Half the cases update an existing leaf, half an empty one.
    let index = if seed.is_multiple_of(2) { *tree.leaves.keys().min().unwrap() } else { r.gen_range(0..capacity) };
    PathCase { tree, index, new_leaf: Fr::rand(&mut r) }
}

/// Synthesises a path update; `tamper` may alter the witness first. Returns (satisfied, new root).
fn run_update(c: &PathCase, tamper: impl FnOnce(&mut u64, &mut Vec<[Fr; 3]>, &mut Fr)) -> (bool, Fr, usize) {
    let cs = new_cs();
    let mut index = c.index;
    let mut siblings = c.tree.siblings(c.index);
    let mut old_root = c.tree.root();
    let old_leaf = c.tree.leaf(c.index);
    tamper(&mut index, &mut siblings, &mut old_root);
    let bits: Vec<BoolVar> = (0..2 * c.tree.depth)
        .map(|i| BoolVar::new_witness(cs.clone(), || Ok((index >> i) & 1 == 1)).unwrap())
        .collect();
    let sib_vars = siblings.iter().map(|s| s.map(|x| witness(&cs, x))).collect();
    let path = QuadPath::new(&bits, sib_vars).unwrap();
    let old_root_var = FrVar::new_input(cs.clone(), || Ok(old_root)).unwrap();
    let old_leaf_var = witness(&cs, old_leaf);
    let new_leaf_var = witness(&cs, c.new_leaf);
    let before = cs.num_constraints();
    let new_root = merkle::update(&old_root_var, &old_leaf_var, &new_leaf_var, &path).unwrap();
    let cost = cs.num_constraints() - before;
    let value = new_root.value().unwrap();
    (satisfied(&cs), value, cost)
}

#[test]
fn path_update_matches_native_tree() {
    for seed in 0..6 {
        let mut c = case(seed, 3);
        let (ok, new_root, _) = run_update(&c, |_, _, _| {});
        assert!(ok, "seed {seed}");
        c.tree.leaves.insert(c.index, c.new_leaf);
        assert_eq!(new_root, c.tree.root(), "seed {seed}");
    }
}

#[test]
fn path_update_rejects_wrong_sibling() {
    for seed in 0..4 {
        let c = case(seed, 3);
        let level = (seed as usize) % 3;
        let (ok, _, _) = run_update(&c, |_, s, _| s[level][(seed as usize) % 3] += Fr::ONE);
        assert!(!ok, "seed {seed}");
    }
}

#[test]
fn path_update_rejects_wrong_index() {
    // Even seeds update an existing (random, non-zero) leaf, so moving it to another position
    // changes the root (an empty leaf swapped with an empty sibling would not).
    for seed in [0u64, 2, 4, 6, 8, 10] {
        let c = case(seed, 3);
        let bit = seed as usize % 6;
        let (ok, _, _) = run_update(&c, |i, _, _| *i ^= 1 << bit);
        assert!(!ok, "seed {seed}");
    }
}

#[test]
fn path_update_rejects_wrong_old_root() {
    let c = case(3, 3);
    let (ok, _, _) = run_update(&c, |_, _, r| *r += Fr::ONE);
    assert!(!ok);
}

#[test]
fn path_rejects_mismatched_lengths() {
    let bits = vec![BoolVar::FALSE; 3];
    assert!(
        QuadPath::new(&bits, vec![[FrVar::Constant(Fr::ONE), FrVar::Constant(Fr::ONE), FrVar::Constant(Fr::ONE)]])
            .is_err()
    );
}

#[test]
fn constraint_counts() {
    let cost = |n: usize| {
        let cs = new_cs();
        let vars: Vec<FrVar> = (0..n).map(|i| witness(&cs, Fr::from(i as u64 + 1))).collect();
        let _ = poseidon::hash(&vars).unwrap();
        cs.num_constraints()
    };
    let (p2, p4, p5) = (cost(2), cost(4), cost(5));
    println!("poseidon: 2 inputs {p2}, 4 inputs {p4}, 5 inputs {p5}");
    // One S-box = 3 constraints: t=3: 8*3+57 S-boxes; t=5: 8*5+60; t=6: 8*6+60; minus the constant one.
    assert_eq!((p2, p4, p5), (3 * 81 - 3, 3 * 100 - 3, 3 * 108 - 3));

    let (_, _, account) = run_update(&case(0, merkle::ACCOUNT_TREE_DEPTH), |_, _, _| {});
    let (_, _, balance) = run_update(&case(1, merkle::BALANCE_TREE_DEPTH), |_, _, _| {});
    println!("quad path update: depth 12 {account}, depth 11 {balance}");
    assert!(account <= 12 * (2 * p4 + 13) + 2, "account path update {account}");
    assert!(balance <= 11 * (2 * p4 + 13) + 2, "balance path update {balance}");
}

#[test]
fn poseidon_and_path_witnesses_are_determined() {
    let cs = new_cs();
    let vars: Vec<FrVar> = (0..5).map(|i| witness(&cs, Fr::from(i as u64 + 7))).collect();
    let from = cs.num_witness_variables();
    let _ = poseidon::hash(&vars).unwrap();
    common::assert_witnesses_determined(&cs, from, 400, 3);

    let c = case(2, 2);
    let cs = new_cs();
    let bits: Vec<BoolVar> =
        (0..4).map(|i| BoolVar::new_witness(cs.clone(), || Ok((c.index >> i) & 1 == 1)).unwrap()).collect();
    let sib = c.tree.siblings(c.index).iter().map(|s| s.map(|x| witness(&cs, x))).collect();
    let path = QuadPath::new(&bits, sib).unwrap();
    let old_root = witness(&cs, c.tree.root());
    let (old_leaf, new_leaf) = (witness(&cs, c.tree.leaf(c.index)), witness(&cs, c.new_leaf));
    let from = cs.num_witness_variables();
    let _ = merkle::update(&old_root, &old_leaf, &new_leaf, &path).unwrap();
    common::assert_witnesses_determined(&cs, from, 300, 4);
}

#[test]
fn membership_root_matches_native_tree() {
    for seed in 20..23 {
        let c = case(seed, 3);
        let cs = new_cs();
        let bits: Vec<BoolVar> =
            (0..6).map(|i| BoolVar::new_witness(cs.clone(), || Ok((c.index >> i) & 1 == 1)).unwrap()).collect();
        let sib = c.tree.siblings(c.index).iter().map(|s| s.map(|x| witness(&cs, x))).collect();
        let path = QuadPath::new(&bits, sib).unwrap();
        let root = merkle::root(&witness(&cs, c.tree.leaf(c.index)), &path).unwrap();
        assert_eq!(root.value().unwrap(), c.tree.root(), "seed {seed}");
        assert!(satisfied(&cs));
    }
}

/// Runs the generic slot of depth 3 on a tree of depth 3 (full) or 2 (short).
fn run_slot(c: &PathCase, short: bool, tamper_root: bool) -> (bool, Fr) {
    let cs = new_cs();
    let depth = c.tree.depth;
    let mut siblings = c.tree.siblings(c.index);
    let mut index = c.index;
    if short {
        // The free top level: arbitrary siblings and position.
        siblings.push([Fr::from(5u64), Fr::from(6u64), Fr::from(7u64)]);
        index |= 3 << (2 * depth);
    }
    let bits: Vec<BoolVar> = (0..2 * siblings.len())
        .map(|i| BoolVar::new_witness(cs.clone(), || Ok((index >> i) & 1 == 1)).unwrap())
        .collect();
    let sib = siblings.iter().map(|s| s.map(|x| witness(&cs, x))).collect();
    let path = QuadPath::new(&bits, sib).unwrap();
    let old_root = c.tree.root() + if tamper_root { Fr::ONE } else { Fr::from(0u64) };
    let old_root = witness(&cs, old_root);
    let short_var = BoolVar::new_witness(cs.clone(), || Ok(short)).unwrap();
    let new_root = merkle::update_short_or_full(
        &old_root,
        &witness(&cs, c.tree.leaf(c.index)),
        &witness(&cs, c.new_leaf),
        &path,
        &short_var,
    )
    .unwrap();
    let v = new_root.value().unwrap();
    (satisfied(&cs), v)
}

#[test]
fn generic_slot_serves_short_and_full_trees() {
    for (seed, depth, short) in [(40u64, 3usize, false), (41, 2, true), (42, 2, true), (43, 3, false)] {
        let mut c = case(seed, depth);
        let (ok, new_root) = run_slot(&c, short, false);
        assert!(ok, "seed {seed}");
        assert!(!run_slot(&c, short, true).0, "seed {seed}: wrong old root accepted");
        c.tree.leaves.insert(c.index, c.new_leaf);
        assert_eq!(new_root, c.tree.root(), "seed {seed}");
    }
    // A short tree's root claimed as a full one (and vice versa) is rejected.
    let c = case(44, 2);
    let cs_short = run_slot(&c, true, false);
    assert!(cs_short.0);
    let wrong = {
        let cs = new_cs();
        let mut siblings = c.tree.siblings(c.index);
        siblings.push([Fr::from(5u64), Fr::from(6u64), Fr::from(7u64)]);
        let bits: Vec<BoolVar> =
            (0..6).map(|i| BoolVar::new_witness(cs.clone(), || Ok((c.index >> i) & 1 == 1)).unwrap()).collect();
        let sib = siblings.iter().map(|s| s.map(|x| witness(&cs, x))).collect();
        let path = QuadPath::new(&bits, sib).unwrap();
        let full = BoolVar::new_witness(cs.clone(), || Ok(false)).unwrap();
        let _ = merkle::update_short_or_full(
            &witness(&cs, c.tree.root()),
            &witness(&cs, c.tree.leaf(c.index)),
            &witness(&cs, c.new_leaf),
            &path,
            &full,
        )
        .unwrap();
        satisfied(&cs)
    };
    assert!(!wrong);
    let cs = new_cs();
    let path = QuadPath::new(&[], vec![]).unwrap();
    assert!(
        merkle::update_short_or_full(
            &witness(&cs, Fr::ONE),
            &witness(&cs, Fr::ONE),
            &witness(&cs, Fr::ONE),
            &path,
            &BoolVar::TRUE
        )
        .is_err()
    );
}
