//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ark_r1cs_std::alloc::AllocVar;
use ark_relations::gr1cs::{ConstraintSystem, ConstraintSystemRef, OptimizationGoal};
use rand::SeedableRng;
use rand::rngs::StdRng;
use zkl_circuit::{Fr, FrVar};

pub fn new_cs() -> ConstraintSystemRef<Fr> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs
}

/// Finalises and checks the constraint system.
pub fn satisfied(cs: &ConstraintSystemRef<Fr>) -> bool {
    cs.finalize();
    cs.is_satisfied().expect("assignments present")
}

pub fn witness(cs: &ConstraintSystemRef<Fr>, v: Fr) -> FrVar {
    FrVar::new_witness(cs.clone(), || Ok(v)).expect("witness")
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Dangling-witness check: after a satisfied synthesis, changes each sampled witness variable
/// created from index `from` on, one at a time (flips a 0/1 value, adds 1 to any other), and
/// asserts that some R1CS row that uses it is then violated. This catches witnesses that no
/// constraint pins down on their own (unused or only loosely constrained values); it does not
/// prove the absence of coordinated multi-variable changes. Rows are evaluated from the finalised matrices (not from cached
/// linear-combination values).
pub fn assert_witnesses_determined(cs: &ConstraintSystemRef<Fr>, from: usize, samples: usize, seed: u64) {
    use ark_ff::{AdditiveGroup, Field};
    use rand::Rng;
    assert!(satisfied(cs), "the honest assignment must satisfy the system");
    let matrices = cs.to_matrices().unwrap();
    let r1cs = &matrices[ark_relations::gr1cs::R1CS_PREDICATE_LABEL];
    let (a, b, c) = (&r1cs[0], &r1cs[1], &r1cs[2]);
    let mut z: Vec<Fr> = cs.instance_assignment().unwrap();
    let n_instance = z.len();
    z.extend(cs.witness_assignment().unwrap());
    let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); z.len()];
    for m in [a, b, c] {
        for (row, entries) in m.iter().enumerate() {
            for (_, col) in entries {
                rows_of[*col].push(row);
            }
        }
    }
    let eval = |z: &[Fr], row: &[(Fr, usize)]| row.iter().map(|(coeff, col)| *coeff * z[*col]).sum::<Fr>();
    let holds = |z: &[Fr], row: usize| eval(z, &a[row]) * eval(z, &b[row]) == eval(z, &c[row]);
    let total = cs.num_witness_variables();
    assert!(total > from, "no witness variables to perturb");
    let mut r = rng(seed);
    let indices: Vec<usize> = if total - from <= samples {
        (from..total).collect()
    } else {
        (0..samples).map(|_| r.gen_range(from..total)).collect()
    };
    for i in indices {
        let col = n_instance + i;
        assert!(rows_of[col].iter().all(|row| holds(&z, *row)));
        let old = z[col];
        z[col] = if old == Fr::ZERO {
            Fr::ONE
        } else if old == Fr::ONE {
            Fr::ZERO
        } else {
            old + Fr::ONE
        };
        let violated = rows_of[col].iter().any(|row| !holds(&z, *row));
        z[col] = old;
        assert!(violated, "witness {i} (of {from}..{total}, value {old}) can change without violating a constraint");
    }
}
