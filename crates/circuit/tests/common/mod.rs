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
