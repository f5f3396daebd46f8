//! EdDSA-Poseidon gadget against `zkl_crypto::eddsa`: the circuit accepts exactly what the
//! native strict verifier accepts.

use crate::common;

use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, UniformRand};
use ark_r1cs_std::alloc::AllocVar;
use common::{new_cs, rng, satisfied, witness};
use rand::RngCore;
use zkl_circuit::ecc::{PointVar, mul_fixed_base, mul_var_base};
use zkl_circuit::eddsa::{SignatureVar, verify};
use zkl_circuit::{BoolVar, Fr};
use zkl_crypto::babyjubjub::{Point, Scalar, base8};
use zkl_crypto::eddsa::{PrivateKey, PublicKey, Signature};

#[derive(Clone, Copy, Debug)]
struct Inputs {
    a: (Fr, Fr),
    r8: (Fr, Fr),
    s: Fr,
    msg: Fr,
}

fn native_accepts(i: &Inputs) -> bool {
    let Ok(pk) = PublicKey::from_coords(i.a.0, i.a.1) else { return false };
    let Ok(sig) = Signature::new(i.r8.0, i.r8.1, i.s) else { return false };
    pk.verify(&i.msg, &sig).is_ok()
}

/// (satisfied, constraints spent by the gadget)
fn circuit_accepts(i: &Inputs, enabled: bool) -> (bool, usize) {
    let cs = new_cs();
    let en = BoolVar::new_witness(cs.clone(), || Ok(enabled)).unwrap();
    let a = PointVar { x: witness(&cs, i.a.0), y: witness(&cs, i.a.1) };
    let sig = SignatureVar { r8: PointVar { x: witness(&cs, i.r8.0), y: witness(&cs, i.r8.1) }, s: witness(&cs, i.s) };
    let msg = witness(&cs, i.msg);
    let before = cs.num_constraints();
    verify(&en, &a, &msg, &sig).unwrap();
    let cost = cs.num_constraints() - before;
    (satisfied(&cs), cost)
}

fn signed(seed: u64) -> (Inputs, PrivateKey) {
    let mut r = rng(seed);
    let mut key = [0u8; 32];
    r.fill_bytes(&mut key);
    let key = PrivateKey::from_bytes(key);
    let msg = Fr::rand(&mut r);
    let sig = key.sign(&msg);
    let pk = key.public_key();
    (Inputs { a: (pk.x(), pk.y()), r8: (sig.r8().x(), sig.r8().y()), s: sig.s(), msg }, key)
}

fn order_l() -> Fr {
    Fr::from_le_bytes_mod_order(&Scalar::MODULUS.to_bytes_le())
}

/// The order-2 point (0, -1): adding it gives a point outside the prime-order subgroup.
fn torsion(p: (Fr, Fr)) -> (Fr, Fr) {
    let q = Point::new(p.0, p.1).unwrap().add(&Point::new(Fr::ZERO, -Fr::ONE).unwrap());
    (q.x(), q.y())
}

fn check(name: &str, i: &Inputs, expect: bool) {
    let native = native_accepts(i);
    assert_eq!(native, expect, "{name}: native verifier");
    let (circuit, _) = circuit_accepts(i, true);
    assert_eq!(circuit, native, "{name}: circuit disagrees with the native verifier");
}

#[test]
fn valid_signatures_are_accepted() {
    for seed in 0..3 {
        let (i, _) = signed(seed);
        check("valid", &i, true);
    }
}

#[test]
fn tampered_signatures_are_rejected_like_native() {
    let (i, _) = signed(10);
    let b8 = base8();
    let other_r8 = Point::new(i.r8.0, i.r8.1).unwrap().add(&b8);
    let (other, _) = signed(11);
    let cases: Vec<(&str, Inputs)> = vec![
        ("S + 1", Inputs { s: i.s + Fr::ONE, ..i }),
        ("S + l (same point, S >= l)", Inputs { s: i.s + order_l(), ..i }),
        ("R8 another subgroup point", Inputs { r8: (other_r8.x(), other_r8.y()), ..i }),
        ("R8 off the curve", Inputs { r8: (i.r8.0 + Fr::ONE, i.r8.1), ..i }),
        ("R8 with a torsion component", Inputs { r8: torsion(i.r8), ..i }),
        ("A another key", Inputs { a: other.a, ..i }),
        ("A off the curve", Inputs { a: (i.a.0, i.a.1 + Fr::ONE), ..i }),
        ("A outside the subgroup", Inputs { a: torsion(i.a), ..i }),
        ("message", Inputs { msg: i.msg + Fr::ONE, ..i }),
        ("another signature", Inputs { r8: other.r8, s: other.s, ..i }),
    ];
    for (name, c) in &cases {
        check(name, c, false);
    }
}

#[test]
fn s_at_or_above_l_is_rejected_even_if_the_equation_holds() {
    // [S + l] B8 == [S] B8: only the range check can reject this.
    let (i, _) = signed(20);
    let big = Inputs { s: i.s + order_l(), ..i };
    let s_plus_l = Scalar::from_le_bytes_mod_order(&big.s.into_bigint().to_bytes_le());
    let s = Scalar::from_le_bytes_mod_order(&i.s.into_bigint().to_bytes_le());
    assert_eq!(s_plus_l, s);
    assert!(!circuit_accepts(&big, true).0);
}

#[test]
fn disabled_accepts_anything() {
    let mut r = rng(30);
    let garbage = Inputs {
        a: (Fr::rand(&mut r), Fr::rand(&mut r)),
        r8: (Fr::rand(&mut r), Fr::rand(&mut r)),
        s: Fr::rand(&mut r),
        msg: Fr::rand(&mut r),
    };
    assert!(!native_accepts(&garbage));
    assert!(circuit_accepts(&garbage, false).0);
    assert!(!circuit_accepts(&garbage, true).0);
    let (valid, _) = signed(31);
    assert!(circuit_accepts(&valid, false).0);
}

#[test]
fn scalar_multiplications_match_native() {
    let mut r = rng(40);
    for _ in 0..3 {
        let k = Scalar::rand(&mut r);
        let k_fr = Fr::from_le_bytes_mod_order(&k.into_bigint().to_bytes_le());
        let cs = new_cs();
        let bits: Vec<BoolVar> =
            (0..251).map(|j| BoolVar::new_witness(cs.clone(), || Ok(k_fr.into_bigint().get_bit(j))).unwrap()).collect();
        let fixed = mul_fixed_base(&base8(), &bits).unwrap();
        let expect = base8().mul(&k);
        assert_eq!(fixed.value().unwrap(), (expect.x(), expect.y()));
        let p = base8().mul(&Scalar::rand(&mut r));
        let pv = PointVar::new_witness(cs.clone(), || Ok((p.x(), p.y()))).unwrap();
        let var = mul_var_base(&pv, &bits).unwrap();
        let expect = p.mul(&k);
        assert_eq!(var.value().unwrap(), (expect.x(), expect.y()));
        assert!(satisfied(&cs));
    }
}

#[test]
fn constraint_count() {
    let (i, _) = signed(50);
    let (ok, cost) = circuit_accepts(&i, true);
    assert!(ok);
    println!("eddsa verify: {cost} constraints");
    assert!(cost <= 6000, "EdDSA verification costs {cost} constraints");
}

#[test]
fn pubkey_hash_matches_native() {
    for seed in 60..63 {
        let (_, key) = signed(seed);
        let pk = key.public_key();
        let cs = new_cs();
        let a = PointVar { x: witness(&cs, pk.x()), y: witness(&cs, pk.y()) };
        let h = zkl_circuit::eddsa::pubkey_hash(&a).unwrap();
        assert_eq!(ark_r1cs_std::GR1CSVar::value(&h).unwrap(), pk.pubkey_hash().to_fr());
        assert!(satisfied(&cs));
    }
}

#[test]
fn eddsa_witnesses_are_determined() {
    let (i, _) = signed(70);
    let cs = new_cs();
    let en = BoolVar::new_witness(cs.clone(), || Ok(true)).unwrap();
    let a = PointVar { x: witness(&cs, i.a.0), y: witness(&cs, i.a.1) };
    let sig = SignatureVar { r8: PointVar { x: witness(&cs, i.r8.0), y: witness(&cs, i.r8.1) }, s: witness(&cs, i.s) };
    let msg = witness(&cs, i.msg);
    let from = cs.num_witness_variables();
    verify(&en, &a, &msg, &sig).unwrap();
    common::assert_witnesses_determined(&cs, from, 400, 5);
}
