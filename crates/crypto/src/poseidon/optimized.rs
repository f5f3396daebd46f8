//! The Poseidon permutation with the optimisations of the Poseidon paper (appendix B): in the
//! partial rounds only element 0 receives a round constant, and the dense MDS multiplication is
//! replaced by a sparse one (first row and first column dense, identity elsewhere), which costs
//! `2t - 1` multiplications instead of `t^2`. The result is bit-for-bit the reference permutation
//! (tested); only the constants are rearranged.
//!
//! Derivation, for a partial round `s <- A (S0(s + c))` where `S0` raises element 0 to the fifth:
//! 1. Constants: `S0(s + c) = S0(s + c_0 e_0) + (0, c_1..)`, so the part of `c` outside element 0
//!    is pushed through `A` into the next round's constants.
//! 2. Matrices: write `A = A'' A'` with `A' = diag(1, D)` and `A''` sparse. `A'` commutes with
//!    `S0` and with adding `c_0 e_0`, so it moves into the previous round's matrix. Working
//!    backwards from the last partial round leaves one dense matrix `P = A'_0 M` for the last full
//!    round of the first half, and one sparse matrix per partial round.
//! 3. Scaling: element 0 is carried scaled by a per-round factor `σ`, chosen so that the
//!    sparse row's leading coefficient becomes 1: with `x = σ u`, `(x + k)^5 = σ^5 (u + k/σ)^5`,
//!    and the next `x' = a σ^5 ŷ + v·s` is `σ' (ŷ + (v/σ')·s)` for `σ' = a σ^5`. The factors
//!    fold into the constants; one multiplication by `σ` restores `x` after the last partial round.

use ark_ff::{AdditiveGroup, Field, Zero};

use super::params::{PoseidonParams, pow5};
use crate::field::Fr;

type Matrix = Vec<Vec<Fr>>;

/// Precomputed constants of the optimised permutation of width `T` (public so that other
/// implementations, such as the generated Solidity contract, use exactly these).
pub struct OptimizedPoseidon<const T: usize, const K: usize> {
    /// Round constants of the 4 full rounds of each half.
    pub first_constants: [[Fr; T]; 4],
    pub last_constants: [[Fr; T]; 4],
    /// Dense matrices, row-major: `new[i] = sum_j m[i][j] * old[j]`.
    pub mds: [[Fr; T]; T],
    pub pre_sparse: [[Fr; T]; T],
    /// Per partial round (in scaled form): the constant added to element 0, the sparse
    /// matrix's first row without its leading 1, and its first column below the diagonal.
    pub partial_constants: Vec<Fr>,
    pub sparse_rows: Vec<[Fr; K]>,
    pub sparse_cols: Vec<[Fr; K]>,
    /// `σ` after the last partial round.
    pub final_scale: Fr,
}

impl<const T: usize, const K: usize> OptimizedPoseidon<T, K> {
    pub fn new(params: &PoseidonParams) -> Self {
        assert_eq!(params.width, T);
        assert_eq!(K + 1, T);
        assert_eq!(params.full_rounds, 8);
        let half = params.full_rounds / 2;
        let rp = params.partial_rounds;
        let m = &params.mds;
        let mut constants: Vec<Vec<Fr>> = params.ark.chunks(T).map(<[Fr]>::to_vec).collect();

        // Step 1: push the partial rounds' constants (except element 0) forward.
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

        // Step 2: factor the partial rounds' matrices, last round first.
        let mut factors = Vec::with_capacity(rp);
        let mut acc = m.clone();
        for _ in 0..rp {
            let (row, col, d) = factor(&acc);
            factors.push((row, col));
            acc = mat_mul(&block_diag_one(&d), m);
        }
        factors.reverse();
        let pre_sparse = acc;

        // Step 3: scale element 0 so that every sparse row starts with 1.
        let mut sigma = Fr::ONE;
        let mut sparse_rows = Vec::with_capacity(rp);
        let mut sparse_cols = Vec::with_capacity(rp);
        for ((row, col), k) in factors.iter().zip(partial_constants.iter_mut()) {
            let sigma_inv = sigma.inverse().expect("non-zero scale");
            let sigma5 = pow5(sigma);
            *k *= sigma_inv;
            let next = row[0] * sigma5;
            let next_inv = next.inverse().expect("sparse row with a zero leading coefficient");
            sparse_rows.push(std::array::from_fn(|i| row[i + 1] * next_inv));
            sparse_cols.push(std::array::from_fn(|i| col[i] * sigma5));
            sigma = next;
        }

        let to_array = |v: &[Fr]| -> [Fr; T] { v.try_into().expect("width") };
        Self {
            first_constants: std::array::from_fn(|r| to_array(&constants[r])),
            last_constants: std::array::from_fn(|r| to_array(&constants[half + rp + r])),
            mds: std::array::from_fn(|i| to_array(&m[i])),
            pre_sparse: std::array::from_fn(|i| to_array(&pre_sparse[i])),
            partial_constants,
            sparse_rows,
            sparse_cols,
            final_scale: sigma,
        }
    }

    #[inline]
    pub fn permute(&self, state: &mut [Fr; T]) {
        for (r, constants) in self.first_constants.iter().enumerate() {
            full_sbox(state, constants);
            let matrix = if r == 3 { &self.pre_sparse } else { &self.mds };
            *state = dense(matrix, state);
        }
        let (mut u, mut rest): (Fr, [Fr; K]) = (state[0], std::array::from_fn(|i| state[i + 1]));
        for ((k, row), col) in self.partial_constants.iter().zip(&self.sparse_rows).zip(&self.sparse_cols) {
            let y = pow5(u + k);
            u = y + Fr::sum_of_products(row, &rest);
            for (s, c) in rest.iter_mut().zip(col) {
                *s += *c * y;
            }
        }
        state[0] = u * self.final_scale;
        state[1..].copy_from_slice(&rest);
        for constants in &self.last_constants {
            full_sbox(state, constants);
            *state = dense(&self.mds, state);
        }
    }
}

#[inline(always)]
fn full_sbox<const T: usize>(state: &mut [Fr; T], constants: &[Fr; T]) {
    for (s, c) in state.iter_mut().zip(constants) {
        *s = pow5(*s + c);
    }
}

#[inline(always)]
fn dense<const T: usize>(m: &[[Fr; T]; T], state: &[Fr; T]) -> [Fr; T] {
    std::array::from_fn(|i| Fr::sum_of_products(&m[i], state))
}

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

/// Factors `a = [[a00, b^T], [c, D]]` as `A'' A'` with `A' = diag(1, D)` and
/// `A'' = [[a00, b^T D^-1], [c, I]]`. Returns `A''`'s first row, its first column below the
/// diagonal, and `D`.
fn factor(a: &Matrix) -> (Vec<Fr>, Vec<Fr>, Matrix) {
    let d: Matrix = a[1..].iter().map(|row| row[1..].to_vec()).collect();
    let d_inv = invert(&d);
    let b = &a[0][1..];
    let mut row = vec![a[0][0]];
    row.extend((0..d.len()).map(|j| (0..d.len()).map(|k| b[k] * d_inv[k][j]).sum::<Fr>()));
    let col = a[1..].iter().map(|r| r[0]).collect();
    (row, col, d)
}

/// Gauss-Jordan inversion. The submatrices of a Cauchy matrix are Cauchy matrices, hence
/// invertible, so a zero pivot column is a bug in the parameters.
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
        let pivot = (col..n).find(|&r| !a[r][col].is_zero()).expect("singular Poseidon submatrix");
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
