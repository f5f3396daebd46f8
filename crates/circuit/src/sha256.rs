//! SHA-256 over a byte string (FIPS 180-4), written for R1CS cost:
//!
//! - words are 32 little-endian bits; rotations and shifts are free;
//! - `Σ0, Σ1, σ0, σ1`: two constraints per three-way XOR bit (one where a shifted-in bit is 0);
//! - `Ch(e, f, g) = g + e (f − g)`: one constraint per bit; `Maj(a, b, c) = c + (a ⊕ c)(b − c)`:
//!   two per bit;
//! - additions modulo 2^32 add the operands as one linear combination (round constants are free)
//!   and decompose the sum into 32 bits plus carry bits.
//!
//! About 26.5k constraints per 64-byte block, against about 40.9k for arkworks' gadget
//! (`ark-crypto-primitives`, compared in the tests). The message length is fixed at synthesis
//! time, so the padding is constant.

use ark_r1cs_std::convert::ToBitsGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::uint8::UInt8;

use crate::bits::{bits_le_to_bytes_be, from_bits_le, to_bits_le};
use crate::{BoolVar, Fr, FrVar, SynthesisError};

type Word = Vec<BoolVar>;

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

const IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

fn constant_word(v: u32) -> Word {
    (0..32).map(|i| BoolVar::constant((v >> i) & 1 == 1)).collect()
}

fn rotr(w: &Word, n: usize) -> Word {
    (0..32).map(|i| w[(i + n) % 32].clone()).collect()
}

fn shr(w: &Word, n: usize) -> Word {
    (0..32).map(|i| if i + n < 32 { w[i + n].clone() } else { BoolVar::FALSE }).collect()
}

fn xor3(x: &Word, y: &Word, z: &Word) -> Word {
    x.iter().zip(y).zip(z).map(|((a, b), c)| a.clone() ^ b ^ c).collect()
}

/// The word's value as a linear combination of its bits.
fn value(bits: &[BoolVar]) -> FrVar {
    from_bits_le(bits)
}

fn value_of_fr_bits(bits: &[FrVar]) -> FrVar {
    let mut acc = FrVar::zero();
    let mut power = Fr::from(1u64);
    for b in bits {
        acc += b * power;
        power += power;
    }
    acc
}

/// `Ch(e, f, g)` per bit, as linear combinations of one product each.
fn ch(e: &Word, f: &Word, g: &Word) -> Vec<FrVar> {
    e.iter()
        .zip(f)
        .zip(g)
        .map(|((e, f), g)| {
            let (f, g) = (FrVar::from(f.clone()), FrVar::from(g.clone()));
            &g + FrVar::from(e.clone()) * (f - &g)
        })
        .collect()
}

/// `Maj(a, b, c)` per bit.
fn maj(a: &Word, b: &Word, c: &Word) -> Vec<FrVar> {
    a.iter()
        .zip(b)
        .zip(c)
        .map(|((a, b), c)| {
            let ac = FrVar::from(a.clone() ^ c);
            let (b, c) = (FrVar::from(b.clone()), FrVar::from(c.clone()));
            &c + ac * (b - &c)
        })
        .collect()
}

/// `(sum of terms + constant) mod 2^32`, for `terms` of at most `2^32 - 1` each.
fn add(terms: &[FrVar], constant: u32) -> Result<Word, SynthesisError> {
    let count = terms.len() as u64 + u64::from(constant != 0);
    let carry_bits = (64 - count.saturating_sub(1).leading_zeros()) as usize;
    let sum = terms.iter().fold(FrVar::constant(Fr::from(constant)), |acc, t| acc + t);
    let mut bits = to_bits_le(&sum, 32 + carry_bits)?;
    bits.truncate(32);
    Ok(bits)
}

fn compress(state: &[Word], block: &[Word]) -> Result<Vec<Word>, SynthesisError> {
    let mut w: Vec<Word> = block.to_vec();
    for t in 16..64 {
        let s0 = xor3(&rotr(&w[t - 15], 7), &rotr(&w[t - 15], 18), &shr(&w[t - 15], 3));
        let s1 = xor3(&rotr(&w[t - 2], 17), &rotr(&w[t - 2], 19), &shr(&w[t - 2], 10));
        w.push(add(&[value(&s1), value(&w[t - 7]), value(&s0), value(&w[t - 16])], 0)?);
    }
    let mut v: Vec<Word> = state.to_vec();
    for t in 0..64 {
        let (a, b, c, d, e, f, g, h) = (&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
        let big_s1 = xor3(&rotr(e, 6), &rotr(e, 11), &rotr(e, 25));
        let big_s0 = xor3(&rotr(a, 2), &rotr(a, 13), &rotr(a, 22));
        let t1 = [value(h), value(&big_s1), value_of_fr_bits(&ch(e, f, g)), value(&w[t])];
        let new_e = add(&[&t1[..], &[value(d)]].concat(), K[t])?;
        let new_a = add(&[&t1[..], &[value(&big_s0), value_of_fr_bits(&maj(a, b, c))]].concat(), K[t])?;
        v = vec![new_a, v[0].clone(), v[1].clone(), v[2].clone(), new_e, v[4].clone(), v[5].clone(), v[6].clone()];
    }
    state.iter().zip(&v).map(|(s, x)| add(&[value(s), value(x)], 0)).collect()
}

/// `sha256(bytes)` as 32 byte variables.
pub fn sha256(bytes: &[UInt8<Fr>]) -> Result<Vec<UInt8<Fr>>, SynthesisError> {
    let mut msg: Vec<UInt8<Fr>> = bytes.to_vec();
    let bit_len = (bytes.len() as u64) * 8;
    msg.push(UInt8::constant(0x80));
    while msg.len() % 64 != 56 {
        msg.push(UInt8::constant(0));
    }
    msg.extend(bit_len.to_be_bytes().map(UInt8::constant));
    let mut state: Vec<Word> = IV.iter().map(|v| constant_word(*v)).collect();
    for block in msg.chunks(64) {
        let words = block
            .chunks(4)
            .map(|be| -> Result<Word, SynthesisError> {
                let mut bits = Vec::with_capacity(32);
                for byte in be.iter().rev() {
                    bits.extend(byte.to_bits_le()?);
                }
                Ok(bits)
            })
            .collect::<Result<Vec<_>, _>>()?;
        state = compress(&state, &words)?;
    }
    let mut out = Vec::with_capacity(32);
    for word in &state {
        out.extend(bits_le_to_bytes_be(word));
    }
    Ok(out)
}

/// Number of 64-byte compression blocks SHA-256 runs on a message of `len` bytes.
pub const fn blocks_for(len: usize) -> usize {
    (len + 9).div_ceil(64)
}
