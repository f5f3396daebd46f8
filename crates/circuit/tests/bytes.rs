//! Bit/byte decompositions, packed amounts and fees, SHA-256 and the block commitment.

use crate::common;

use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, UniformRand};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::uint8::UInt8;
use common::{new_cs, rng, satisfied, witness};
use num_bigint::BigUint;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use zkl_circuit::bits::{self, AMOUNT_MANTISSA_BITS, FEE_MANTISSA_BITS};
use zkl_circuit::commitment::{self, BlockHeader, BlockHeaderVar, HEADER_BYTES};
use zkl_circuit::{BoolVar, Fr, FrVar, sha256};

fn fr_big(x: &Fr) -> BigUint {
    BigUint::from_bytes_be(&x.into_bigint().to_bytes_be())
}

#[test]
fn to_bits_le_range_checks() {
    let mut r = rng(1);
    for n in [1usize, 8, 35, 64, 128, 253] {
        let max = (BigUint::from(1u32) << n) - 1u32;
        let inside = Fr::from(max.clone()) - Fr::from(r.gen_range(0..2u64));
        let cs = new_cs();
        let b = bits::to_bits_le(&witness(&cs, inside), n).unwrap();
        let back: BigUint =
            b.iter().enumerate().filter(|(_, b)| b.value().unwrap()).map(|(i, _)| BigUint::from(1u32) << i).sum();
        assert_eq!(back, fr_big(&inside));
        assert!(satisfied(&cs), "n = {n}");
        let cs = new_cs();
        let outside = Fr::from(max) + Fr::ONE;
        bits::to_bits_le(&witness(&cs, outside), n).unwrap();
        assert!(!satisfied(&cs), "2^{n} accepted as {n} bits");
    }
    assert!(bits::to_bits_le(&FrVar::Constant(Fr::from(256u64)), 8).is_err());
    assert!(bits::to_bits_le(&FrVar::Constant(Fr::ONE), 254).is_err());
}

#[test]
fn strict_decomposition_is_canonical_and_bytes_round_trip() {
    let mut r = rng(2);
    for x in [Fr::ZERO, -Fr::ONE, Fr::rand(&mut r), Fr::rand(&mut r)] {
        let cs = new_cs();
        let bytes = bits::to_bytes_be_strict(&witness(&cs, x)).unwrap();
        let got: Vec<u8> = bytes.iter().map(|b| b.value().unwrap()).collect();
        assert_eq!(got, x.into_bigint().to_bytes_be());
        assert!(satisfied(&cs));
    }
}

#[test]
fn le_constant_comparison_matches_integers() {
    let mut r = rng(3);
    for _ in 0..60 {
        let width = r.gen_range(1..=20usize);
        // Constants narrower and wider than the bits.
        let c_width = r.gen_range(1..=width + 3);
        let c = BigUint::from(r.gen_range(0..(1u64 << c_width)));
        let v: u64 = r.gen_range(0..(1u64 << width));
        let cs = new_cs();
        let b: Vec<BoolVar> =
            (0..width).map(|i| BoolVar::new_witness(cs.clone(), || Ok((v >> i) & 1 == 1)).unwrap()).collect();
        bits::enforce_le_constant(&b, &c).unwrap();
        assert_eq!(satisfied(&cs), BigUint::from(v) <= c, "{v} <= {c}");
    }
}

// Native packing, protocol.md section 8 (the rule zkl-types implements).
fn native_pack(value: u128, mb: u32) -> Option<u64> {
    let limit = 1u128 << mb;
    let (mut m, mut e) = (value, 0u32);
    loop {
        if m < limit {
            return Some(((m as u64) << 5) | u64::from(e));
        }
        if e == 31 || !m.is_multiple_of(10) {
            return None;
        }
        m /= 10;
        e += 1;
    }
}

fn native_unpack(packed: u64, mb: u32) -> Option<u128> {
    if packed >> (mb + 5) != 0 {
        return None;
    }
    let (e, m) = ((packed & 31) as u32, u128::from(packed >> 5));
    let value = m.checked_mul(10u128.checked_pow(e)?)?;
    (native_pack(value, mb) == Some(packed)).then_some(value)
}

fn circuit_unpack(packed: u64, mb: usize) -> (bool, Fr) {
    let cs = new_cs();
    let v = bits::unpack(&witness(&cs, Fr::from(packed)), mb).unwrap();
    let value = v.value().unwrap();
    (satisfied(&cs), value)
}

#[test]
fn unpack_accepts_exactly_canonical_encodings() {
    let mut r = rng(4);
    for mb in [AMOUNT_MANTISSA_BITS, FEE_MANTISSA_BITS] {
        let lower = (1u64 << mb).div_ceil(10);
        let mut cases: Vec<(u64, u64)> = vec![
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (10, 0),
            (lower, 1),
            (lower - 1, 1),
            ((1 << mb) - 1, 0),
            ((1 << mb) - 1, 31),
            ((1 << mb) - 1, 28),
            ((1 << mb) - 1, 27),
            (lower, 31),
        ];
        for _ in 0..40 {
            cases.push((r.gen_range(0..1u64 << mb), r.gen_range(0..32)));
            cases.push((r.gen_range(lower..1u64 << mb), r.gen_range(0..32)));
        }
        let mut accepted = 0;
        for (m, e) in cases {
            let packed = (m << 5) | e;
            let native = native_unpack(packed, mb as u32);
            let (ok, value) = circuit_unpack(packed, mb);
            assert_eq!(ok, native.is_some(), "mb {mb} m {m} e {e}");
            if let Some(v) = native {
                assert_eq!(value, Fr::from(v), "mb {mb} m {m} e {e}");
                accepted += 1;
            }
        }
        assert!(accepted > 20, "too few canonical cases ({accepted})");
        // Wider than the encoding.
        assert!(!circuit_unpack(1 << (mb + 5), mb).0);
    }
}

#[test]
fn unpack_round_trips_native_packing() {
    let mut r = rng(5);
    for _ in 0..40 {
        let value = u128::from(r.next_u64() >> r.gen_range(0..40)) * 10u128.pow(r.gen_range(0..20));
        if let Some(p) = native_pack(value, AMOUNT_MANTISSA_BITS as u32) {
            assert_eq!(circuit_unpack(p, AMOUNT_MANTISSA_BITS), (true, Fr::from(value)));
        }
    }
}

fn sha_circuit(data: &[u8]) -> (Vec<u8>, usize, bool) {
    sha_with(data, sha256::sha256)
}

fn sha_arkworks(bytes: &[UInt8<Fr>]) -> Result<Vec<UInt8<Fr>>, ark_relations::gr1cs::SynthesisError> {
    Ok(ark_crypto_primitives::crh::sha256::constraints::Sha256Gadget::digest(bytes)?.0)
}

fn sha_with(
    data: &[u8],
    f: impl Fn(&[UInt8<Fr>]) -> Result<Vec<UInt8<Fr>>, ark_relations::gr1cs::SynthesisError>,
) -> (Vec<u8>, usize, bool) {
    let cs = new_cs();
    let vars = UInt8::new_witness_vec(cs.clone(), data).unwrap();
    let before = cs.num_constraints();
    let out = f(&vars).unwrap();
    let cost = cs.num_constraints() - before;
    let bytes = out.iter().map(|b| b.value().unwrap()).collect();
    (bytes, cost, satisfied(&cs))
}

#[test]
fn sha256_matches_sha2() {
    let mut r = rng(6);
    for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 128, 236] {
        let mut data = vec![0u8; len];
        r.fill_bytes(&mut data);
        let (got, _, ok) = sha_circuit(&data);
        assert!(ok, "len {len}");
        assert_eq!(got, Sha256::digest(&data).to_vec(), "len {len}");
    }
}

#[test]
fn sha256_constraints_per_block() {
    let (_, one, _) = sha_circuit(&[7u8; 55]);
    let (_, two, _) = sha_circuit(&[7u8; 119]);
    let (_, header, _) = sha_circuit(&[7u8; HEADER_BYTES]);
    let (ark_digest, ark_one, ark_ok) = sha_with(&[7u8; 55], sha_arkworks);
    let (_, ark_two, _) = sha_with(&[7u8; 119], sha_arkworks);
    assert!(ark_ok);
    assert_eq!(ark_digest, Sha256::digest([7u8; 55]).to_vec());
    println!(
        "sha256: 1 block {one}, 2 blocks {two}, per block {}, 236-byte header ({} blocks) {header}; arkworks gadget: 1 block {ark_one}, per block {}",
        two - one,
        sha256::blocks_for(HEADER_BYTES),
        ark_two - ark_one
    );
    assert!(two - one < ark_two - ark_one, "no cheaper than arkworks' gadget");
    assert_eq!(sha256::blocks_for(55), 1);
    assert_eq!(sha256::blocks_for(56), 2);
    assert_eq!(sha256::blocks_for(HEADER_BYTES), 4);
}

fn random_header(seed: u64) -> BlockHeader {
    let mut r = rng(seed);
    let mut pubdata = vec![0u8; 20 * 8];
    r.fill_bytes(&mut pubdata);
    BlockHeader {
        block_number: r.next_u32(),
        timestamp: r.next_u64(),
        old_root: Fr::rand(&mut r),
        new_root: Fr::rand(&mut r),
        pubdata_hash: commitment::pubdata_hash(&pubdata),
        onchain_hashes: [Fr::rand(&mut r), Fr::ZERO, Fr::rand(&mut r), -Fr::ONE],
    }
}

fn header_var(cs: &ark_relations::gr1cs::ConstraintSystemRef<Fr>, h: &BlockHeader) -> BlockHeaderVar {
    BlockHeaderVar {
        block_number: witness(cs, Fr::from(h.block_number)),
        timestamp: witness(cs, Fr::from(h.timestamp)),
        old_root: witness(cs, h.old_root),
        new_root: witness(cs, h.new_root),
        pubdata_hash: UInt8::new_witness_vec(cs.clone(), &h.pubdata_hash).unwrap(),
        onchain_hashes: h.onchain_hashes.map(|x| witness(cs, x)),
    }
}

#[test]
fn native_commitment_layout() {
    let h = random_header(7);
    let bytes = h.bytes();
    assert_eq!(bytes.len(), HEADER_BYTES);
    assert_eq!(&bytes[..4], &h.block_number.to_be_bytes());
    assert_eq!(&bytes[4..12], &h.timestamp.to_be_bytes());
    assert_eq!(&bytes[76..108], &h.pubdata_hash);
    assert_eq!(&bytes[204..236], &(-Fr::ONE).into_bigint().to_bytes_be()[..]);
    // public input = commitment mod 2^253, computed independently with big integers.
    let c = h.commitment();
    let expect = BigUint::from_bytes_be(&c) % (BigUint::from(1u32) << 253);
    assert_eq!(fr_big(&h.public_input()), expect);
}

#[test]
fn commitment_gadget_matches_native() {
    for seed in 8..10 {
        let h = random_header(seed);
        let cs = new_cs();
        let var = header_var(&cs, &h);
        let before = cs.num_constraints();
        let c = var.commitment().unwrap();
        let pi = commitment::public_input_var(&c).unwrap();
        let cost = cs.num_constraints() - before;
        let got: Vec<u8> = c.iter().map(|b| b.value().unwrap()).collect();
        assert_eq!(got, h.commitment().to_vec());
        assert_eq!(pi.value().unwrap(), h.public_input());
        assert!(satisfied(&cs));
        println!("block commitment (header decomposition + sha256 of 236 bytes): {cost}");
    }
}

#[test]
fn commitment_gadget_range_checks_header_integers() {
    let h = random_header(11);
    let cs = new_cs();
    let mut var = header_var(&cs, &h);
    var.block_number = witness(&cs, Fr::from(1u64 << 32));
    var.commitment().unwrap();
    assert!(!satisfied(&cs));
}

#[test]
fn sha256_and_unpack_witnesses_are_determined() {
    let cs = new_cs();
    let vars = UInt8::new_witness_vec(cs.clone(), &[42u8; 70]).unwrap();
    let from = cs.num_witness_variables();
    let _ = sha256::sha256(&vars).unwrap();
    common::assert_witnesses_determined(&cs, from, 150, 1);

    let cs = new_cs();
    let packed = witness(&cs, Fr::from((3_435_973_837u64 << 5) | 7));
    let from = cs.num_witness_variables();
    let _ = bits::unpack_amount(&packed).unwrap();
    common::assert_witnesses_determined(&cs, from, 400, 2);
}

#[test]
fn bytes_round_trip_through_field_elements() {
    let mut r = rng(12);
    for n in [1usize, 4, 20, 31] {
        let mut data = vec![0u8; n];
        r.fill_bytes(&mut data);
        let cs = new_cs();
        let bytes = UInt8::new_witness_vec(cs.clone(), &data).unwrap();
        let x = bits::from_bytes_be(&bytes).unwrap();
        assert_eq!(x.value().unwrap(), zkl_crypto::field::fr_from_be_bytes_small(&data));
        let back = bits::to_bytes_be(&x, n).unwrap();
        assert_eq!(back.iter().map(|b| b.value().unwrap()).collect::<Vec<_>>(), data);
        assert!(satisfied(&cs));
    }
    assert!(bits::from_bytes_be(&UInt8::constant_vec(&[0u8; 32])).is_err());
}

#[test]
fn native_helpers_agree_with_zkl_types() {
    // Commitment: this crate's native header equals the normative one in zkl-types.
    for seed in 30..33 {
        let h = random_header(seed);
        let theirs = zkl_types::BlockCommitment {
            block_number: h.block_number,
            timestamp: h.timestamp,
            old_root: h.old_root,
            new_root: h.new_root,
            pubdata_hash: h.pubdata_hash,
            onchain_hashes: h.onchain_hashes,
        };
        assert_eq!(h.bytes(), theirs.preimage());
        assert_eq!(h.commitment(), zkl_types::commitment(&theirs));
        assert_eq!(h.public_input(), zkl_types::public_input(&zkl_types::commitment(&theirs)));
    }
    // Packed amounts and fees: the gadget accepts exactly what zkl-types unpacks.
    let mut r = rng(34);
    for _ in 0..40 {
        let m: u64 = if r.gen_bool(0.5) { r.gen_range(0..1 << 35) } else { r.gen_range(3_435_973_830..3_435_973_845) };
        let e: u64 = r.gen_range(0..32);
        let packed = (m << 5) | e;
        let (ok, value) = circuit_unpack(packed, AMOUNT_MANTISSA_BITS);
        let theirs = zkl_types::unpack_amount(packed);
        assert_eq!(ok, theirs.is_ok(), "amount m {m} e {e}");
        if let Ok(v) = theirs {
            assert_eq!(value, Fr::from(v));
        }
        let packed_fee = ((m & 0x7ff) << 5) | e;
        let (ok, value) = circuit_unpack(packed_fee, FEE_MANTISSA_BITS);
        let theirs = zkl_types::unpack_fee(packed_fee as u16);
        assert_eq!(ok, theirs.is_ok(), "fee m {} e {e}", m & 0x7ff);
        if let Ok(v) = theirs {
            assert_eq!(value, Fr::from(v));
        }
    }
}
