//! Groth16 infrastructure: deterministic setup, key cache, prove/verify on a tiny circuit made
//! of the crate's gadgets.

use std::path::PathBuf;

use ark_ff::Field;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use ark_serialize::CanonicalSerialize;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zkl_circuit::groth16::{Groth16Error, KeyCache, constraint_report, shape_hash};
use zkl_circuit::{Fr, FrVar, bits, poseidon};

/// Public `out = Poseidon(a, b, unpack_fee(packed_fee))`.
#[derive(Clone, Default)]
struct Tiny {
    a: Option<Fr>,
    b: Option<Fr>,
    packed_fee: Option<u64>,
    out: Option<Fr>,
}

impl ConstraintSynthesizer<Fr> for Tiny {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let missing = SynthesisError::AssignmentMissing;
        let out = FrVar::new_input(cs.clone(), || self.out.ok_or(missing))?;
        let a = FrVar::new_witness(cs.clone(), || self.a.ok_or(missing))?;
        let b = FrVar::new_witness(cs.clone(), || self.b.ok_or(missing))?;
        let packed = FrVar::new_witness(cs.clone(), || self.packed_fee.map(Fr::from).ok_or(missing))?;
        let fee = bits::unpack_fee(&packed)?;
        poseidon::hash(&[a, b, fee])?.enforce_equal(&out)
    }
}

fn instance() -> Tiny {
    let (a, b) = (Fr::from(3u64), Fr::from(4u64));
    let packed = (1234u64 << 5) | 2; // 123400
    let out = zkl_crypto::poseidon::hash(&[a, b, Fr::from(123_400u64)]).unwrap();
    Tiny { a: Some(a), b: Some(b), packed_fee: Some(packed), out: Some(out) }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zkl-keys-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vk_bytes(keys: &zkl_circuit::groth16::Keys) -> Vec<u8> {
    let mut v = Vec::new();
    keys.vk.serialize_compressed(&mut v).unwrap();
    v
}

#[test]
fn prove_verify_and_reject_wrong_public_input() {
    let dir = TempDir::new("prove");
    let keys = KeyCache::new(&dir.0, false).load_or_setup("tiny", Tiny::default()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let circuit = instance();
    let out = circuit.out.unwrap();
    let proof = keys.prove(circuit, &mut rng).unwrap();
    assert!(keys.verify(&[out], &proof).unwrap());
    assert!(!keys.verify(&[out + Fr::ONE], &proof).unwrap());
}

#[test]
fn unsatisfied_witness_is_reported_not_proven() {
    let dir = TempDir::new("unsat");
    let keys = KeyCache::new(&dir.0, false).load_or_setup("tiny", Tiny::default()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    // 10 * 10^1 is not canonical (100 * 10^0 is).
    let bad = Tiny { packed_fee: Some((10 << 5) | 1), ..instance() };
    let e = keys.prove(bad, &mut rng).unwrap_err();
    assert!(matches!(&e, Groth16Error::Unsatisfied(row) if row.starts_with("R1CS row ")), "{e}");
    // Proving reuses the matrices built when the keys were loaded: a circuit of another shape is
    // refused, not proven against the wrong constraints.
    let e = keys.prove(FeeOnly, &mut rng).unwrap_err();
    assert!(e.to_string().contains("the keys of tiny"), "{e}");
}

#[test]
fn keys_are_deterministic_cached_and_checked() {
    let dir1 = TempDir::new("cache1");
    let dir2 = TempDir::new("cache2");
    let cache = KeyCache::new(&dir1.0, false);
    let first = cache.load_or_setup("tiny", Tiny::default()).unwrap();
    let stem = cache.stem("tiny", &first.shape);
    for ext in ["pk", "vk", "sha256"] {
        assert!(stem.with_extension(ext).exists(), "{ext} written");
    }
    // Loaded from disk: same keys.
    let again = cache.load_or_setup("tiny", Tiny::default()).unwrap();
    assert_eq!(vk_bytes(&first), vk_bytes(&again));
    // Same seed elsewhere: same keys (deterministic development setup).
    let elsewhere = KeyCache::new(&dir2.0, false).load_or_setup("tiny", Tiny::default()).unwrap();
    assert_eq!(vk_bytes(&first), vk_bytes(&elsewhere));
    // Another name: another seed, other keys.
    let other = KeyCache::new(&dir2.0, false).load_or_setup("tiny2", Tiny::default()).unwrap();
    assert_ne!(vk_bytes(&first), vk_bytes(&other));
    // A corrupted key file is refused.
    let pk_path = stem.with_extension("pk");
    let mut bytes = std::fs::read(&pk_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&pk_path, bytes).unwrap();
    assert!(matches!(cache.load_or_setup("tiny", Tiny::default()), Err(Groth16Error::DigestMismatch { .. })));
}

#[test]
fn shape_hash_and_report_follow_the_circuit() {
    let report = constraint_report(Tiny::default()).unwrap();
    println!("tiny circuit: {report}");
    assert_eq!(report.public_inputs, 1);
    assert_eq!(
        report.constraints,
        poseidon::constraints_for(3).unwrap() + constraint_report(FeeOnly).unwrap().constraints + 1
    );
    assert_eq!(shape_hash(Tiny::default()).unwrap(), shape_hash(instance()).unwrap());
    assert_ne!(shape_hash(Tiny::default()).unwrap(), shape_hash(FeeOnly).unwrap());
}

/// Only the fee unpacking of [`Tiny`], to count its constraints.
#[derive(Clone)]
struct FeeOnly;

impl ConstraintSynthesizer<Fr> for FeeOnly {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let packed = FrVar::new_witness(cs, || Ok(Fr::from(0u64)))?;
        bits::unpack_fee(&packed).map(|_| ())
    }
}
