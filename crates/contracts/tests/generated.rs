//! Generated and compiled artifacts are in sync with their sources, and the generated
//! Poseidon / Groth16 verifier agree with the Rust implementations on anvil.

use alloy::primitives::U256;
use ark_ff::{BigInteger, PrimeField, UniformRand};
use rand::SeedableRng;
use zkl_contracts::anvil::{Anvil, DEV_KEYS};
use zkl_contracts::bindings::{PoseidonT6, TestVerifier};
use zkl_contracts::deploy::provider;
use zkl_contracts::{Fr, artifacts, poseidon_sol, verifier};

fn fr_u256(x: &Fr) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

#[test]
fn artifacts_are_fresh() {
    artifacts::check_fresh().unwrap();
}

#[test]
fn generated_solidity_is_committed() {
    let src = artifacts::contracts_dir().join("src");
    let poseidon = std::fs::read_to_string(src.join("PoseidonT6.sol")).unwrap();
    assert!(
        poseidon == poseidon_sol::poseidon_t6_solidity(),
        "PoseidonT6.sol is stale: cargo run -p zkl-contracts --example gen_sol"
    );
    let layout = std::fs::read_to_string(src.join("Layout.sol")).unwrap();
    assert!(
        layout == zkl_contracts::layout_sol::layout_solidity(),
        "Layout.sol is stale: cargo run -p zkl-contracts --example gen_sol"
    );
    let tv = std::fs::read_to_string(src.join("test/TestVerifier.sol")).unwrap();
    assert!(
        tv == verifier::test_verifier_solidity().unwrap(),
        "TestVerifier.sol is stale: cargo run -p zkl-contracts --example gen_sol"
    );
}

#[tokio::test]
async fn poseidon_t6_matches_rust() {
    let anvil = Anvil::spawn(31337).unwrap();
    let p = provider(&anvil, DEV_KEYS[0]).unwrap();
    let poseidon = PoseidonT6::deploy(p).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut cases: Vec<[Fr; 5]> =
        vec![[Fr::from(0u64); 5], [Fr::from(1u64), Fr::from(2u64), Fr::from(3u64), Fr::from(4u64), Fr::from(5u64)]];
    cases.push([-Fr::from(1u64); 5]);
    for _ in 0..12 {
        cases.push(std::array::from_fn(|_| Fr::rand(&mut rng)));
    }
    for inputs in cases {
        let want = zkl_crypto::poseidon::hash(&inputs).unwrap();
        let got = poseidon.hash(inputs.map(|x| fr_u256(&x))).call().await.unwrap();
        assert_eq!(got, fr_u256(&want));
    }
    // circomlibjs poseidon([1,2,3,4,5]), cross-checked by the crypto crate's vectors.
    let modulus = U256::from_be_slice(&Fr::MODULUS.to_bytes_be());
    let err = poseidon.hash([modulus, U256::ZERO, U256::ZERO, U256::ZERO, U256::ZERO]).call().await;
    assert!(err.is_err(), "an input at or above the modulus must revert");
}

#[tokio::test]
async fn groth16_verifier_accepts_real_proofs_only() {
    let anvil = Anvil::spawn(31337).unwrap();
    let p = provider(&anvil, DEV_KEYS[0]).unwrap();
    let v = TestVerifier::deploy(p).await.unwrap();
    let pk = verifier::test_circuit::proving_key().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for seed in 0..3u64 {
        let x = Fr::rand(&mut rng);
        let proof = verifier::test_circuit::prove(&pk, x, seed).unwrap();
        let words = verifier::encode_proof(&proof);
        assert!(v.verifyProof(words, fr_u256(&x)).call().await.unwrap(), "valid proof rejected");
        // Tampered public input.
        assert!(!v.verifyProof(words, fr_u256(&(x + Fr::from(1u64)))).call().await.unwrap());
        // Tampered proof: every word changed in turn.
        for i in 0..8 {
            let mut bad = words;
            bad[i] += U256::from(1u64);
            assert!(!v.verifyProof(bad, fr_u256(&x)).call().await.unwrap_or(false), "tampered word {i} accepted");
        }
        // The input plus the field modulus (same value mod r) is rejected, not reduced.
        let r = U256::from_be_slice(&Fr::MODULUS.to_bytes_be());
        assert!(!v.verifyProof(words, fr_u256(&x) + r).call().await.unwrap_or(false));
    }
    // A proof for x does not verify for the zero input, and the all-zero proof never verifies.
    assert!(!v.verifyProof([U256::ZERO; 8], U256::ZERO).call().await.unwrap_or(false));
}

/// `verifyProofs` accepts exactly the batches whose every proof verifies alone. The attack a
/// batch with fixed coefficients would let through: two valid proofs with their `C` points
/// swapped are each invalid, but `e(C_1, δ) · e(C_2, δ)` is unchanged, so a plain product of
/// the four-pairing equations (every `r_i = 1`) would accept them.
#[tokio::test]
async fn batched_verification_accepts_exactly_the_valid_batches() {
    let anvil = Anvil::spawn(31337).unwrap();
    let p = provider(&anvil, DEV_KEYS[0]).unwrap();
    let v = TestVerifier::deploy(p).await.unwrap();
    let pk = verifier::test_circuit::proving_key().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let xs: Vec<Fr> = (0..4).map(|_| Fr::rand(&mut rng)).collect();
    let proofs: Vec<[U256; 8]> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| verifier::encode_proof(&verifier::test_circuit::prove(&pk, *x, 100 + i as u64).unwrap()))
        .collect();
    let inputs: Vec<U256> = xs.iter().map(fr_u256).collect();
    let batch = |proofs: &[[U256; 8]], inputs: &[U256]| {
        let call = v.verifyProofs(proofs.to_vec(), inputs.to_vec());
        async move { call.call().await.unwrap_or(false) }
    };
    for k in 1..=4 {
        assert!(batch(&proofs[..k], &inputs[..k]).await, "a valid batch of {k} rejected");
    }
    // Swapped C points: each proof alone is invalid, the naive product would hold.
    let mut swapped = proofs.clone();
    swapped[0][6..8].copy_from_slice(&proofs[1][6..8]);
    swapped[1][6..8].copy_from_slice(&proofs[0][6..8]);
    assert!(!v.verifyProof(swapped[0], inputs[0]).call().await.unwrap_or(false));
    assert!(!batch(&swapped[..2], &inputs[..2]).await, "swapped C points accepted");
    assert!(!batch(&swapped, &inputs).await, "swapped C points accepted in a batch of 4");
    // Swapped inputs, one wrong input, one tampered word in any proof, an input not reduced.
    let mut inputs_swapped = inputs.clone();
    inputs_swapped.swap(2, 3);
    assert!(!batch(&proofs, &inputs_swapped).await, "swapped inputs accepted");
    for i in 0..4 {
        let mut wrong = inputs.clone();
        wrong[i] += U256::from(1u64);
        assert!(!batch(&proofs, &wrong).await, "wrong input {i} accepted");
        for w in [0, 3, 7] {
            let mut bad = proofs.clone();
            bad[i][w] += U256::from(1u64);
            assert!(!batch(&bad, &inputs).await, "tampered word {w} of proof {i} accepted");
        }
        let mut unreduced = inputs.clone();
        unreduced[i] += U256::from_be_slice(&Fr::MODULUS.to_bytes_be());
        assert!(!batch(&proofs, &unreduced).await, "unreduced input {i} accepted");
    }
    // A proof repeated for another input, an empty batch and mismatched lengths.
    assert!(!batch(&[proofs[0], proofs[0]], &inputs[..2]).await);
    assert!(!batch(&[], &[]).await);
    assert!(!batch(&proofs[..2], &inputs[..3]).await);
    assert!(!batch(&proofs[..3], &inputs[..2]).await);
}
