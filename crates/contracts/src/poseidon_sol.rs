//! Generator of `contracts/src/PoseidonT6.sol`: Poseidon with 5 inputs (width 6) and circomlib's
//! parameters, taken from `zkl_crypto::poseidon::params(6)`, so the Solidity constants cannot drift
//! from the Rust hash. The test `poseidon_sol_is_fresh` compares the committed file with this output.

use std::fmt::Write as _;

use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, Zero};
use zkl_crypto::poseidon::params;

use crate::Fr;

/// Width of the generated permutation (5 inputs).
pub const POSEIDON_T6_WIDTH: usize = 6;

fn hex_word(x: &Fr) -> String {
    hex::encode(x.into_bigint().to_bytes_be())
}

/// Constants of the optimised permutation (the Poseidon paper's appendix B, as derived in
/// `zkl_crypto::poseidon::optimized`, whose fields are private: the derivation is repeated here and
/// checked against `zkl_crypto::poseidon::hash` by the tests, on anvil).
struct Optimized {
    first_constants: Vec<Vec<Fr>>,
    last_constants: Vec<Vec<Fr>>,
    mds: Vec<Vec<Fr>>,
    pre_sparse: Vec<Vec<Fr>>,
    /// Per partial round: constant of element 0, sparse row (without its leading 1), sparse column.
    partial: Vec<(Fr, Vec<Fr>, Vec<Fr>)>,
    final_scale: Fr,
}

type Matrix = Vec<Vec<Fr>>;

fn mat_vec(m: &Matrix, v: &[Fr]) -> Vec<Fr> {
    m.iter().map(|row| row.iter().zip(v).map(|(a, b)| *a * b).sum()).collect()
}

fn mat_mul(a: &Matrix, b: &Matrix) -> Matrix {
    let n = a.len();
    (0..n).map(|i| (0..n).map(|j| (0..n).map(|k| a[i][k] * b[k][j]).sum()).collect()).collect()
}

fn block_diag_one(d: &Matrix) -> Matrix {
    let n = d.len() + 1;
    let mut out = vec![vec![Fr::ZERO; n]; n];
    out[0][0] = Fr::ONE;
    for (i, row) in d.iter().enumerate() {
        out[i + 1][1..].copy_from_slice(row);
    }
    out
}

/// Gauss-Jordan inversion; submatrices of the Cauchy MDS matrix are invertible (fixed parameters,
/// so a failure here is a bug, not bad input).
fn invert(m: &Matrix) -> Matrix {
    let n = m.len();
    let mut a: Matrix = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { Fr::ONE } else { Fr::ZERO }));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| !a[r][col].is_zero()).expect("Cauchy submatrices are invertible");
        a.swap(col, pivot);
        let inv = a[col][col].inverse().expect("non-zero pivot");
        a[col].iter_mut().for_each(|x| *x *= inv);
        for r in 0..n {
            if r != col && !a[r][col].is_zero() {
                let f = a[r][col];
                let pivot_row = a[col].clone();
                a[r].iter_mut().zip(&pivot_row).for_each(|(x, p)| *x -= f * p);
            }
        }
    }
    a.into_iter().map(|row| row[n..].to_vec()).collect()
}

fn factor(a: &Matrix) -> (Vec<Fr>, Vec<Fr>, Matrix) {
    let d: Matrix = a[1..].iter().map(|row| row[1..].to_vec()).collect();
    let d_inv = invert(&d);
    let b = &a[0][1..];
    let mut row = vec![a[0][0]];
    row.extend((0..d.len()).map(|j| (0..d.len()).map(|k| b[k] * d_inv[k][j]).sum::<Fr>()));
    let col = a[1..].iter().map(|r| r[0]).collect();
    (row, col, d)
}

fn pow5(x: Fr) -> Fr {
    let x2 = x * x;
    x2 * x2 * x
}

fn optimized(t: usize) -> Optimized {
    let params = params(t);
    let half = params.full_rounds / 2;
    let rp = params.partial_rounds;
    let m = &params.mds;
    let mut constants: Vec<Vec<Fr>> = params.ark.chunks(t).map(<[Fr]>::to_vec).collect();
    let mut partial_constants = Vec::with_capacity(rp);
    for r in half..half + rp {
        let mut rest = constants[r].clone();
        partial_constants.push(rest[0]);
        rest[0] = Fr::ZERO;
        let pushed = mat_vec(m, &rest);
        for (c, p) in constants[r + 1].iter_mut().zip(pushed) {
            *c += p;
        }
    }
    let mut factors = Vec::with_capacity(rp);
    let mut acc = m.clone();
    for _ in 0..rp {
        let (row, col, d) = factor(&acc);
        factors.push((row, col));
        acc = mat_mul(&block_diag_one(&d), m);
    }
    factors.reverse();
    let mut sigma = Fr::ONE;
    let mut partial = Vec::with_capacity(rp);
    for ((row, col), k) in factors.iter().zip(partial_constants) {
        let sigma5 = pow5(sigma);
        let k = k * sigma.inverse().expect("non-zero scale");
        let next = row[0] * sigma5;
        let next_inv = next.inverse().expect("non-zero leading coefficient");
        let row: Vec<Fr> = row[1..].iter().map(|x| *x * next_inv).collect();
        let col: Vec<Fr> = col.iter().map(|x| *x * sigma5).collect();
        partial.push((k, row, col));
        sigma = next;
    }
    Optimized {
        first_constants: constants[..half].to_vec(),
        last_constants: constants[half + rp..].to_vec(),
        mds: m.clone(),
        pre_sparse: acc,
        partial,
        final_scale: sigma,
    }
}

/// Yul of a dense mix: writes `m · (a0..a5)` to memory at `dst`.
fn mix_function(name: &str, m: &Matrix, q: &str) -> String {
    let t = m.len();
    let args: Vec<String> = (0..t).map(|j| format!("a{j}")).collect();
    let mut out = format!("            function {name}({}, dst) {{\n", args.join(", "));
    for (i, row) in m.iter().enumerate() {
        let terms: Vec<String> = (0..t).map(|j| format!("mulmod(a{j}, 0x{}, {q})", hex_word(&row[j]))).collect();
        // Every term is below q < 2^254: four of them sum below 2^256.
        let _ = writeln!(
            out,
            "                mstore(add(dst, {}), addmod(add(add({}, {}), add({}, {})), add({}, {}), {q}))",
            32 * i,
            terms[0],
            terms[1],
            terms[2],
            terms[3],
            terms[4],
            terms[5]
        );
    }
    out.push_str("            }\n");
    out
}

/// The Solidity source of `PoseidonT6`.
pub fn poseidon_t6_solidity() -> String {
    let t = POSEIDON_T6_WIDTH;
    let p = params(t);
    let o = optimized(t);
    let q = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
    let half = p.full_rounds / 2;
    // Data layout (words): first full rounds' constants (half·t), then per partial round
    // (k, row[t-1], col[t-1]), then the last full rounds' constants (half·t).
    let mut data = String::new();
    for r in &o.first_constants {
        r.iter().for_each(|c| data.push_str(&hex_word(c)));
    }
    for (k, row, col) in &o.partial {
        data.push_str(&hex_word(k));
        row.iter().chain(col).for_each(|c| data.push_str(&hex_word(c)));
    }
    for r in &o.last_constants {
        r.iter().for_each(|c| data.push_str(&hex_word(c)));
    }
    let data_bytes = data.len() / 2;
    let partial_words = 1 + 2 * (t - 1);
    let partial_base = half * t * 32;
    let last_base = partial_base + o.partial.len() * partial_words * 32;
    let state_list: Vec<String> = (0..t).map(|i| format!("s{i}")).collect();
    let states = state_list.join(", ");

    let mut out = String::new();
    let _ = writeln!(out, "// SPDX-License-Identifier: MIT OR Apache-2.0");
    let _ = writeln!(
        out,
        "// GENERATED by zkl_contracts::poseidon_sol::poseidon_t6_solidity (crates/contracts). Do not edit:"
    );
    let _ =
        writeln!(out, "// regenerate with `cargo run -p zkl-contracts --example gen_sol` and rebuild the artifacts.");
    let _ = writeln!(out, "pragma solidity ^0.8.28;");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "/// Poseidon over the BN254 scalar field with circomlib's parameters for 5 inputs (width {t},\n\
         /// {} full and {} partial rounds, S-box x^5); `hash(x)` equals circomlibjs `poseidon(x)`.\n\
         /// Inputs must be below the field modulus. The partial rounds use the Poseidon paper's sparse\n\
         /// matrices (appendix B); their {} constants live in the code of a data contract created by the\n\
         /// constructor (too large for this contract's code) and are loaded with one EXTCODECOPY.",
        p.full_rounds,
        p.partial_rounds,
        data_bytes / 32
    );
    let _ = writeln!(out, "contract PoseidonT6 {{");
    let _ = writeln!(out, "    error InputNotInField();");
    let _ = writeln!(out);
    let _ = writeln!(out, "    /// Holds the constants after a leading STOP byte.");
    let _ = writeln!(out, "    address public immutable constantsContract;");
    let _ = writeln!(out);
    let _ = writeln!(out, "    bytes internal constant CONSTANTS =\n        hex\"{data}\";");
    let _ = writeln!(out);
    let _ = writeln!(out, "    constructor() {{");
    let _ = writeln!(out, "        bytes memory runtime = abi.encodePacked(hex\"00\", CONSTANTS);");
    let _ = writeln!(
        out,
        "        // PUSH2 len, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN, followed by the runtime."
    );
    let _ = writeln!(
        out,
        "        bytes memory init = abi.encodePacked(hex\"61\", uint16(runtime.length), hex\"80600c6000396000f3\", runtime);"
    );
    let _ = writeln!(out, "        address data;");
    let _ = writeln!(out, "        assembly {{");
    let _ = writeln!(out, "            data := create(0, add(init, 32), mload(init))");
    let _ = writeln!(out, "        }}");
    let _ = writeln!(out, "        require(data != address(0) && data.code.length == runtime.length);");
    let _ = writeln!(out, "        constantsContract = data;");
    let _ = writeln!(out, "    }}");
    let _ = writeln!(out);
    let _ = writeln!(out, "    function hash(uint256[5] calldata) external view returns (uint256) {{");
    let _ = writeln!(out, "        address data = constantsContract;");
    let _ = writeln!(out, "        assembly {{");
    let _ = writeln!(out, "            function pow5(x) -> y {{");
    let _ = writeln!(out, "                let x2 := mulmod(x, x, {q})");
    let _ = writeln!(out, "                y := mulmod(mulmod(x2, x2, {q}), x, {q})");
    let _ = writeln!(out, "            }}");
    out.push_str(&mix_function("mixMds", &o.mds, q));
    out.push_str(&mix_function("mixPre", &o.pre_sparse, q));
    let _ = writeln!(out, "            let c := mload(0x40)");
    let _ = writeln!(out, "            extcodecopy(data, c, 1, {data_bytes})");
    let _ = writeln!(out, "            let st := add(c, {data_bytes})");
    let _ = writeln!(out, "            let s0 := 0");
    for i in 1..t {
        let _ = writeln!(out, "            let s{i} := calldataload({})", 4 + 32 * (i - 1));
    }
    let checks: Vec<String> = (1..t).map(|i| format!("lt(s{i}, {q})")).collect();
    let cond = checks[1..].iter().fold(checks[0].clone(), |acc, c| format!("and({acc}, {c})"));
    let _ = writeln!(out, "            if iszero({cond}) {{");
    let _ = writeln!(
        out,
        "                mstore(0, shl(224, 0x{})) // InputNotInField()",
        selector_hex("InputNotInField()")
    );
    let _ = writeln!(out, "                revert(0, 4)");
    let _ = writeln!(out, "            }}");
    let full_round = |out: &mut String, mix: &str| {
        for i in 0..t {
            let _ = writeln!(out, "                s{i} := pow5(add(s{i}, mload(add(cp, {}))))", 32 * i);
        }
        let _ = writeln!(out, "                {mix}({states}, st)");
        for i in 0..t {
            let _ = writeln!(out, "                s{i} := mload(add(st, {}))", 32 * i);
        }
    };
    let _ =
        writeln!(out, "            // First {half} full rounds; the last of them multiplies by the pre-sparse matrix.");
    let _ = writeln!(out, "            for {{ let r := 0 }} lt(r, {half}) {{ r := add(r, 1) }} {{");
    let _ = writeln!(out, "                let cp := add(c, mul(r, {}))", 32 * t);
    let _ = writeln!(out, "                switch eq(r, {})", half - 1);
    let _ = writeln!(out, "                case 0 {{");
    {
        let mut inner = String::new();
        full_round(&mut inner, "mixMds");
        out.push_str(&inner.replace("\n                ", "\n                    ").replacen(
            "                s",
            "                    s",
            1,
        ));
    }
    let _ = writeln!(out, "                }}");
    let _ = writeln!(out, "                default {{");
    {
        let mut inner = String::new();
        full_round(&mut inner, "mixPre");
        out.push_str(&inner.replace("\n                ", "\n                    ").replacen(
            "                s",
            "                    s",
            1,
        ));
    }
    let _ = writeln!(out, "                }}");
    let _ = writeln!(out, "            }}");
    let _ = writeln!(out, "            // Partial rounds with sparse matrices; element 0 is carried scaled.");
    let _ = writeln!(out, "            let pp := add(c, {partial_base})");
    let _ = writeln!(out, "            for {{ let r := 0 }} lt(r, {}) {{ r := add(r, 1) }} {{", o.partial.len());
    let _ = writeln!(out, "                let y := pow5(add(s0, mload(pp)))");
    let row_terms: Vec<String> = (1..t).map(|j| format!("mulmod(s{j}, mload(add(pp, {})), {q})", 32 * j)).collect();
    let _ = writeln!(
        out,
        "                s0 := addmod(add(add(y, {}), add({}, {})), add({}, {}), {q})",
        row_terms[0], row_terms[1], row_terms[2], row_terms[3], row_terms[4]
    );
    for j in 1..t {
        let _ = writeln!(
            out,
            "                s{j} := addmod(s{j}, mulmod(mload(add(pp, {})), y, {q}), {q})",
            32 * (t - 1 + j)
        );
    }
    let _ = writeln!(out, "                pp := add(pp, {})", 32 * partial_words);
    let _ = writeln!(out, "            }}");
    let _ = writeln!(out, "            s0 := mulmod(s0, 0x{}, {q})", hex_word(&o.final_scale));
    let _ = writeln!(out, "            // Last {half} full rounds.");
    let _ = writeln!(out, "            for {{ let r := 0 }} lt(r, {half}) {{ r := add(r, 1) }} {{");
    let _ = writeln!(out, "                let cp := add(c, add({last_base}, mul(r, {})))", 32 * t);
    full_round(&mut out, "mixMds");
    let _ = writeln!(out, "            }}");
    let _ = writeln!(out, "            mstore(0, s0)");
    let _ = writeln!(out, "            return(0, 32)");
    let _ = writeln!(out, "        }}");
    let _ = writeln!(out, "    }}");
    let _ = writeln!(out, "}}");
    out
}

/// The 4-byte selector of a Solidity signature, as hex.
pub(crate) fn selector_hex(signature: &str) -> String {
    hex::encode(&alloy::primitives::keccak256(signature.as_bytes())[..4])
}
