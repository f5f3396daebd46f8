//! Cross-implementation vectors produced by circomlibjs, @zk-kit/eddsa-poseidon and ethers
//! (`scripts/vectors/gen-crypto-vectors.mjs`).

use serde::Deserialize;
use zkl_crypto::babyjubjub::Point;
use zkl_crypto::field::fr_to_decimal;
use zkl_crypto::keys::{EthKey, derive_l2_key, parse_eth_signature};
use zkl_crypto::{Fr, PrivateKey, PublicKey, Signature, SignatureError, parse_fr, poseidon};

#[derive(Deserialize)]
struct Vectors {
    l2_key_message: String,
    poseidon: Vec<PoseidonVector>,
    eddsa: Vec<KeyVector>,
    key_derivation: Vec<DerivationVector>,
}

#[derive(Deserialize)]
struct PoseidonVector {
    inputs: Vec<String>,
    output: String,
}

#[derive(Deserialize)]
struct KeyVector {
    private_key: String,
    pubkey_x: String,
    pubkey_y: String,
    packed_pubkey: String,
    zk_kit_packed_pubkey: String,
    pubkey_hash_input: String,
    signatures: Vec<SignatureVector>,
}

#[derive(Deserialize)]
struct SignatureVector {
    message: String,
    r8_x: String,
    r8_y: String,
    s: String,
    packed: String,
    zk_kit_packed: String,
}

#[derive(Deserialize)]
struct DerivationVector {
    eth_private_key: String,
    eth_address: String,
    signature: String,
    l2_private_key: String,
    pubkey_x: String,
    pubkey_y: String,
    pubkey_hash: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("vectors/circom.json")).expect("vectors parse")
}

fn fr(s: &str) -> Fr {
    parse_fr(s).expect("field element")
}

fn bytes<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s.trim_start_matches("0x")).unwrap().try_into().unwrap()
}

#[test]
fn poseidon_matches_circomlibjs_for_1_to_16_inputs() {
    let v = vectors();
    let mut widths = std::collections::BTreeSet::new();
    for case in &v.poseidon {
        let inputs: Vec<Fr> = case.inputs.iter().map(|s| fr(s)).collect();
        widths.insert(inputs.len());
        assert_eq!(fr_to_decimal(&poseidon::hash(&inputs).unwrap()), case.output, "inputs {:?}", case.inputs);
        assert_eq!(fr_to_decimal(&poseidon::hash_reference(&inputs).unwrap()), case.output);
    }
    assert_eq!(widths, (1..=16).collect());
}

#[test]
fn public_keys_match_prv2pub_and_zk_kit() {
    for k in vectors().eddsa {
        let pk = PrivateKey::from_bytes(bytes(&k.private_key)).public_key();
        assert_eq!(fr_to_decimal(&pk.x()), k.pubkey_x);
        assert_eq!(fr_to_decimal(&pk.y()), k.pubkey_y);
        assert_eq!(pk.pack(), bytes::<32>(&k.packed_pubkey));
        let mut le = pk.pack();
        le.reverse();
        assert_eq!(num_bigint::BigUint::from_bytes_be(&le).to_string(), k.zk_kit_packed_pubkey);
        assert_eq!(fr_to_decimal(&poseidon::hash2(pk.x(), pk.y())), k.pubkey_hash_input);
        assert_eq!(PublicKey::from_coords(fr(&k.pubkey_x), fr(&k.pubkey_y)).unwrap(), pk);
    }
}

#[test]
fn signatures_match_sign_poseidon_byte_for_byte() {
    for k in vectors().eddsa {
        let key = PrivateKey::from_bytes(bytes(&k.private_key));
        let pk = key.public_key();
        for s in &k.signatures {
            let msg = fr(&s.message);
            let sig = key.sign(&msg);
            assert_eq!(fr_to_decimal(&sig.r8().x()), s.r8_x);
            assert_eq!(fr_to_decimal(&sig.r8().y()), s.r8_y);
            assert_eq!(fr_to_decimal(&sig.s()), s.s);
            assert_eq!(sig.pack(), bytes::<64>(&s.packed));
            assert_eq!(sig.pack(), bytes::<64>(&s.zk_kit_packed));
            let theirs = Signature::new(fr(&s.r8_x), fr(&s.r8_y), fr(&s.s)).unwrap();
            assert_eq!(pk.verify(&msg, &theirs), Ok(()));
        }
    }
}

#[test]
fn tampered_vectors_are_rejected() {
    for k in vectors().eddsa {
        let pk = PublicKey::from_coords(fr(&k.pubkey_x), fr(&k.pubkey_y)).unwrap();
        for s in &k.signatures {
            let msg = fr(&s.message);
            let (r8x, r8y, sv) = (fr(&s.r8_x), fr(&s.r8_y), fr(&s.s));
            // Another message.
            let sig = Signature::new(r8x, r8y, sv).unwrap();
            assert_eq!(pk.verify(&(msg + Fr::from(1u64)), &sig), Err(SignatureError::Mismatch));
            // Another S (still in range).
            let other_s = if sv == Fr::from(0u64) { Fr::from(1u64) } else { sv - Fr::from(1u64) };
            assert_eq!(pk.verify(&msg, &Signature::new(r8x, r8y, other_s).unwrap()), Err(SignatureError::Mismatch));
            // Another R8 (the negated point is still on the curve).
            let neg = Signature::new(-r8x, r8y, sv).unwrap();
            assert_eq!(pk.verify(&msg, &neg), Err(SignatureError::Mismatch));
            // R8 off the curve.
            assert!(Signature::new(r8x, r8y + Fr::from(1u64), sv).is_err());
        }
    }
}

#[test]
fn l2_key_derivation_matches_ethers() {
    let v = vectors();
    assert_eq!(v.l2_key_message, zkl_crypto::L2_KEY_MESSAGE);
    for d in v.key_derivation {
        let eth = EthKey::from_bytes(&bytes(&d.eth_private_key)).unwrap();
        assert_eq!(eth.address().to_string(), d.eth_address);
        let sig = eth.personal_sign(v.l2_key_message.as_bytes());
        assert_eq!(format!("0x{}", hex::encode(sig.as_bytes())), d.signature);
        assert_eq!(parse_eth_signature(&hex::decode(&d.signature[2..]).unwrap()).unwrap(), sig);
        let derived = derive_l2_key(&eth);
        assert_eq!(derived.l2_private_key.as_bytes(), &bytes::<32>(&d.l2_private_key));
        assert_eq!(fr_to_decimal(&derived.public_key.x()), d.pubkey_x);
        assert_eq!(fr_to_decimal(&derived.public_key.y()), d.pubkey_y);
        assert_eq!(derived.pubkey_hash.to_string(), d.pubkey_hash);
    }
}

#[test]
fn packed_points_unpack_to_the_same_keys() {
    for k in vectors().eddsa {
        let p = Point::unpack(&bytes(&k.packed_pubkey)).unwrap();
        assert_eq!(fr_to_decimal(&p.x()), k.pubkey_x);
        assert_eq!(PublicKey::from_packed(&bytes(&k.packed_pubkey)).unwrap().point(), p);
    }
}
