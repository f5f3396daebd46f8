//! The exodus exit circuit: a user's claim of their balance at the exodus state root, paid pro
//! rata from the liquidity of the token's pool (the rule is `zkl_state::exodus`).
//!
//! # Public inputs (five, in this order; the contract builds the same numbers)
//!
//! | input | value |
//! | --- | --- |
//! | `x0` | the state root |
//! | `x1` | `chain << 112 \| account << 88 \| sub << 80 \| l2_token << 64 \| m0 << 48 \| m1 << 32 \| m2 << 16 \| m3` (8 + 24 + 8 + 5 · 16 = 120 bits) |
//! | `x2` | the owner's address as an integer, `owner_hi · 2^128 + owner_lo` (an EVM address: below 2^160) |
//! | `x3` | `a0 << 128 \| a1` |
//! | `x4` | `a2 << 128 \| a3` |
//!
//! # Constraints
//!
//! - `x1` decomposes into exactly 120 bits, read as the fields above; the sub-account's bits
//!   5..8 are zero (sub < 32); the chain is one of 1..=4 (four equality flags, exactly one set,
//!   which select the chain's liquidity row).
//! - The account leaf `Poseidon(nonce << 160 | pubkey_hash, owner_hi, owner_lo, balance_root,
//!   order_root)` opens at index `account` against `x0` (12 levels); `owner_hi < 2^32` and
//!   `owner_lo < 2^128` (an EVM owner, so `x2` names one address) and
//!   `x2 = owner_hi · 2^128 + owner_lo ≠ 0` (the global account 1, which has no owner, cannot
//!   claim).
//! - The balance `b < 2^128` opens at `sub << 16 | l2_token` against the leaf's balance root
//!   (11 levels).
//! - Account 1's leaf opens at index 1 against `x0`; its sixteen balances
//!   `L(c, m_i) < 2^112` open at `c << 16 | m_i` against its balance root. The leaves of one
//!   chain `c` share the subtree at level 8 (node `c`): each leaf's eight lower levels must give
//!   the same node, and that node's three upper levels (at the constant position `c`) are
//!   hashed once per chain.
//! - Every path's index bits are bits of `x1` (or constants): no index is a free witness.
//! - `P = Σ L(c, m_i)`; each `a_i < 2^112`, `x3 = a0 · 2^128 + a1`, `x4 = a2 · 2^128 + a3`,
//!   and with `L_i = L(chain, m_i)`: `a_i · P + r_i = b · L_i` with `0 ≤ r_i < P`
//!   (`r_i < 2^116` and `P − 1 − r_i < 2^116`), i.e. `a_i = floor(b · L_i / P)`. The last
//!   check also rules out `P = 0` (then `P − 1 − r_i` is negative).
//!
//! # Bounds (nothing wraps in the field, `p > 2^253`)
//!
//! `b < 2^128`, `L < 2^112` (each leaf range-checked; the state tree keeps them so: balances
//! are 128-bit, liquidity is capped at `MAX_LIQUIDITY = 2^112 − 1`), so `P < 16 · 2^112 =
//! 2^116` and `b · L_i < 2^240`; `a_i · P + r_i < 2^112 · 2^116 + 2^116 < 2^229`. Both sides are
//! integers below the modulus, so the field equation is the integer one. `x1 < 2^120`,
//! `x2 < 2^160`, `x3, x4 < 2^240` are below the modulus, so each decodes uniquely.

use ark_ff::AdditiveGroup;
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use zkl_state::exodus::{POOL_CHAINS, POOL_MEMBERS};
use zkl_state::{ExodusClaim, ExodusError, State, exodus_amounts};
use zkl_types::{
    AccountId, Address, ChainId, GLOBAL_ACCOUNT, MAX_ACCOUNT_ID, MAX_LIQUIDITY, SubAccountId, TokenId, balance_index,
};

use crate::bits::{from_bits_le, to_bits_le};
use crate::block::{AccountLeaf, pow2};
use crate::groth16::{Groth16Error, KeyCache, Keys};
use crate::merkle::{self, ACCOUNT_TREE_DEPTH, BALANCE_TREE_DEPTH, QuadPath};
use crate::{BoolVar, ConstraintSynthesizer, ConstraintSystemRef, Fr, FrVar, SynthesisError, poseidon};

/// The key cache name of the exit circuit.
pub const EXIT_KEY_NAME: &str = "exit";
/// Number of public inputs.
pub const PUBLIC_INPUTS: usize = 5;
/// Width of `x1`.
pub const CLAIM_KEY_BITS: usize = 120;
/// Width of an amount (`a_i ≤ MAX_LIQUIDITY`).
pub const AMOUNT_BITS: usize = 112;
/// Width of a liquidity leaf.
pub const LIQUIDITY_BITS: usize = 112;
/// Width of a balance.
pub const BALANCE_BITS: usize = 128;
/// Width of the pool total and of a remainder (`P < 16 · 2^112`).
pub const POOL_BITS: usize = 116;
/// Levels of a balance path below the node shared by one chain's liquidity leaves (the token's
/// 16 bits).
const TOKEN_LEVELS: usize = 8;
const _: () = assert!(MAX_LIQUIDITY < 1 << AMOUNT_BITS && MAX_LIQUIDITY < 1 << LIQUIDITY_BITS);

// Bit offsets of the fields of `x1` (little-endian).
const M3_AT: usize = 0;
const L2_TOKEN_AT: usize = 64;
const SUB_AT: usize = 80;
const ACCOUNT_AT: usize = 88;
const CHAIN_AT: usize = 112;

/// `x1`: `chain << 112 | account << 88 | sub << 80 | l2_token << 64 | m0 << 48 | m1 << 32 |
/// m2 << 16 | m3`. `account` must be below 2^24 (else it spills into the chain's bits).
pub fn claim_key(
    chain: ChainId,
    account: AccountId,
    sub: SubAccountId,
    l2_token: TokenId,
    members: [TokenId; POOL_MEMBERS],
) -> u128 {
    let [m0, m1, m2, m3] = members.map(u128::from);
    (u128::from(chain) << CHAIN_AT)
        | (u128::from(account) << ACCOUNT_AT)
        | (u128::from(sub) << SUB_AT)
        | (u128::from(l2_token) << L2_TOKEN_AT)
        | (m0 << 48)
        | (m1 << 32)
        | (m2 << 16)
        | m3
}

/// `x2`: the owner as an integer, `owner_hi · 2^128 + owner_lo` (for an EVM address, the
/// 160-bit address).
pub fn owner_input(owner: &Address) -> Fr {
    owner.hi() * pow2(128) + owner.lo()
}

/// `x3, x4`: `a0 << 128 | a1` and `a2 << 128 | a3`.
pub fn amount_inputs(amounts: &[u128; POOL_MEMBERS]) -> [Fr; 2] {
    let pair = |hi: u128, lo: u128| Fr::from(hi) * pow2(128) + Fr::from(lo);
    [pair(amounts[0], amounts[1]), pair(amounts[2], amounts[3])]
}

/// The five public inputs of a claim at state root `root`.
pub fn public_inputs(root: Fr, claim: &ExodusClaim) -> [Fr; PUBLIC_INPUTS] {
    let key = claim_key(claim.chain, claim.account, claim.sub, claim.l2_token, claim.members);
    let [x3, x4] = amount_inputs(&claim.amounts);
    [root, Fr::from(key), owner_input(&claim.owner), x3, x4]
}

/// Why an exit witness could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExitError {
    #[error(transparent)]
    Rule(#[from] ExodusError),
    #[error("the state has uncommitted changes: commit it before building an exit witness")]
    Uncommitted,
    #[error("account {0} is beyond the account tree")]
    AccountRange(AccountId),
    #[error("sub-account {0} is beyond the balance tree's index")]
    SubRange(SubAccountId),
    #[error("the state's Merkle proofs disagree on the root")]
    Inconsistent,
}

/// Everything the exit circuit needs. The public inputs are computed from the claim's fields
/// ([`ExitWitness::public_inputs`]); the rest is private.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitWitness {
    /// `x0`.
    pub root: Fr,
    /// The fields of `x1`.
    pub chain: ChainId,
    pub account: AccountId,
    pub sub: SubAccountId,
    pub l2_token: TokenId,
    pub members: [TokenId; POOL_MEMBERS],
    /// `x2`.
    pub owner: Address,
    /// `x3`, `x4`.
    pub amounts: [u128; POOL_MEMBERS],
    /// The claimant's account leaf and its path (12 levels of siblings).
    pub leaf: AccountLeaf,
    pub account_path: Vec<[Fr; 3]>,
    /// The claimed balance and its path in the leaf's balance tree (11 levels).
    pub balance: u128,
    pub balance_path: Vec<[Fr; 3]>,
    /// Account 1's leaf and path.
    pub global_leaf: AccountLeaf,
    pub global_path: Vec<[Fr; 3]>,
    /// `liquidity[c - 1][i] = L(c, members[i])` and its path in account 1's balance tree. Of
    /// each chain's four paths only member 0's uses its three upper levels (the others share
    /// them).
    pub liquidity: [[u128; POOL_MEMBERS]; POOL_CHAINS],
    pub liquidity_paths: [[Vec<[Fr; 3]>; POOL_MEMBERS]; POOL_CHAINS],
}

impl ExitWitness {
    /// A witness of the right shape with zero values (for key setup and constraint counts).
    pub fn blank() -> Self {
        let path = |depth: usize| vec![[Fr::ZERO; 3]; depth];
        Self {
            root: Fr::ZERO,
            chain: 0,
            account: 0,
            sub: 0,
            l2_token: 0,
            members: [0; POOL_MEMBERS],
            owner: Address::ZERO,
            amounts: [0; POOL_MEMBERS],
            leaf: AccountLeaf::default(),
            account_path: path(ACCOUNT_TREE_DEPTH),
            balance: 0,
            balance_path: path(BALANCE_TREE_DEPTH),
            global_leaf: AccountLeaf::default(),
            global_path: path(ACCOUNT_TREE_DEPTH),
            liquidity: [[0; POOL_MEMBERS]; POOL_CHAINS],
            liquidity_paths: std::array::from_fn(|_| std::array::from_fn(|_| path(BALANCE_TREE_DEPTH))),
        }
    }

    /// The witness of a claim as `state` holds it, whether or not the rule accepts the claim
    /// (the amounts are the rule's when it gives them, else zero): for tests of what the
    /// circuit rejects. [`ExitCircuit::build`] is the checked builder.
    pub fn from_state(
        state: &State,
        chain: ChainId,
        account: AccountId,
        sub: SubAccountId,
        l2_token: TokenId,
        members: [TokenId; POOL_MEMBERS],
    ) -> Result<Self, ExitError> {
        if !state.is_committed() {
            return Err(ExitError::Uncommitted);
        }
        if account > MAX_ACCOUNT_ID {
            return Err(ExitError::AccountRange(account));
        }
        // The balance tree's index has 22 bits: sub-accounts up to 63 have a leaf.
        if u32::from(sub) >= 1 << (2 * BALANCE_TREE_DEPTH - 16) {
            return Err(ExitError::SubRange(sub));
        }
        let user = state.account(account).ok_or(ExodusError::UnknownAccount(account))?;
        let leaf = AccountLeaf::of(state, account).ok_or(ExodusError::UnknownAccount(account))?;
        let global = state.account(GLOBAL_ACCOUNT).ok_or(ExodusError::UnknownAccount(GLOBAL_ACCOUNT))?;
        let global_leaf = AccountLeaf::of(state, GLOBAL_ACCOUNT).ok_or(ExodusError::UnknownAccount(GLOBAL_ACCOUNT))?;
        let account_proof = state.account_proof(account);
        let global_proof = state.account_proof(GLOBAL_ACCOUNT);
        let root = account_proof.root(leaf.hash());
        if global_proof.root(global_leaf.hash()) != root {
            return Err(ExitError::Inconsistent);
        }
        let index = balance_index(sub, l2_token);
        let balance = user.balance_at(index);
        let balance_path = user.balance_proof(index).siblings;
        let liquidity = state.pool_liquidity(members);
        let liquidity_paths = std::array::from_fn(|c| {
            std::array::from_fn(|i| global.balance_proof(balance_index(c as u8 + 1, members[i])).siblings)
        });
        let amounts = exodus_amounts(balance, &liquidity, chain).unwrap_or([0; POOL_MEMBERS]);
        Ok(Self {
            root,
            chain,
            account,
            sub,
            l2_token,
            members,
            owner: user.owner,
            amounts,
            leaf,
            account_path: account_proof.siblings,
            balance,
            balance_path,
            global_leaf,
            global_path: global_proof.siblings,
            liquidity,
            liquidity_paths,
        })
    }

    /// The amounts the rule gives for this witness's balance, liquidity and chain.
    pub fn rule_amounts(&self) -> Result<[u128; POOL_MEMBERS], ExodusError> {
        exodus_amounts(self.balance, &self.liquidity, self.chain)
    }

    /// `[x0, x1, x2, x3, x4]` from the witness's fields.
    pub fn public_inputs(&self) -> [Fr; PUBLIC_INPUTS] {
        let key = Fr::from(u128::from(self.chain)) * pow2(CHAIN_AT as u64)
            + Fr::from(u128::from(self.account)) * pow2(ACCOUNT_AT as u64)
            + Fr::from(claim_key(0, 0, self.sub, self.l2_token, self.members));
        let [x3, x4] = amount_inputs(&self.amounts);
        [self.root, key, owner_input(&self.owner), x3, x4]
    }
}

/// A claim the rule accepts, with the root it is proven against and the public inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitClaim {
    pub claim: ExodusClaim,
    pub root: Fr,
    pub public_inputs: [Fr; PUBLIC_INPUTS],
}

/// The exit circuit (five public inputs, see the module documentation).
#[derive(Clone, Debug)]
pub struct ExitCircuit {
    pub witness: ExitWitness,
}

impl ExitCircuit {
    /// The circuit with a blank witness (key setup).
    pub fn blank() -> Self {
        Self { witness: ExitWitness::blank() }
    }

    /// The circuit proving the claim of (`account`, `sub`, `l2_token`) on `chain` with the pool
    /// `members` at `state`'s (committed) root; fails when the rule refuses the claim.
    pub fn build(
        state: &State,
        chain: ChainId,
        account: AccountId,
        sub: SubAccountId,
        l2_token: TokenId,
        members: [TokenId; POOL_MEMBERS],
    ) -> Result<(Self, ExitClaim), ExitError> {
        let claim = state.exodus_claim(chain, account, sub, l2_token, members)?;
        let witness = ExitWitness::from_state(state, chain, account, sub, l2_token, members)?;
        let exit = ExitClaim { claim, root: witness.root, public_inputs: witness.public_inputs() };
        Ok((Self { witness }, exit))
    }
}

impl ConstraintSynthesizer<Fr> for ExitCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        synthesize(&cs, &self.witness)
    }
}

/// Loads (or, the first time, generates and caches) the exit circuit's development keys.
pub fn exit_keys(cache: &KeyCache) -> Result<Keys, Groth16Error> {
    cache.load_or_setup(EXIT_KEY_NAME, ExitCircuit::blank())
}

fn constant_bits(value: u64, n: usize) -> Vec<BoolVar> {
    (0..n).map(|i| BoolVar::constant((value >> i) & 1 == 1)).collect()
}

/// The account leaf's hash, from its fields allocated as witnesses; returns (hash, owner_hi,
/// owner_lo, balance_root).
fn alloc_leaf(cs: &ConstraintSystemRef<Fr>, leaf: &AccountLeaf) -> Result<[FrVar; 4], SynthesisError> {
    let wit = |v: Fr| FrVar::new_witness(cs.clone(), || Ok(v));
    // The nonce and key hash enter the hash packed; the claim does not read them.
    let nonce_pkh = wit(Fr::from(leaf.nonce) * pow2(160) + leaf.pubkey_hash)?;
    let hi = wit(leaf.owner_hi)?;
    let lo = wit(leaf.owner_lo)?;
    let balance_root = wit(leaf.balance_root)?;
    let order_root = wit(leaf.order_root)?;
    let hash = poseidon::hash(&[nonce_pkh, hi.clone(), lo.clone(), balance_root.clone(), order_root])?;
    Ok([hash, hi, lo, balance_root])
}

fn sum(terms: impl IntoIterator<Item = FrVar>) -> FrVar {
    terms.into_iter().fold(FrVar::zero(), |acc, t| acc + t)
}

fn synthesize(cs: &ConstraintSystemRef<Fr>, w: &ExitWitness) -> Result<(), SynthesisError> {
    let lengths_ok = w.account_path.len() == ACCOUNT_TREE_DEPTH
        && w.global_path.len() == ACCOUNT_TREE_DEPTH
        && w.balance_path.len() == BALANCE_TREE_DEPTH
        && w.liquidity_paths.iter().flatten().all(|p| p.len() == BALANCE_TREE_DEPTH);
    if !lengths_ok {
        return Err(SynthesisError::Unsatisfiable);
    }
    let [x0, x1, x2, x3, x4] = {
        let values = w.public_inputs();
        let mut vars = Vec::with_capacity(PUBLIC_INPUTS);
        for v in values {
            vars.push(FrVar::new_input(cs.clone(), || Ok(v))?);
        }
        <[FrVar; PUBLIC_INPUTS]>::try_from(vars).map_err(|_| SynthesisError::Unsatisfiable)?
    };

    // x1's fields.
    let bits = to_bits_le(&x1, CLAIM_KEY_BITS)?;
    let member_bits: [&[BoolVar]; POOL_MEMBERS] =
        std::array::from_fn(|i| &bits[M3_AT + 16 * (POOL_MEMBERS - 1 - i)..][..16]);
    let token_and_sub = &bits[L2_TOKEN_AT..SUB_AT + 6];
    let account_bits = &bits[ACCOUNT_AT..CHAIN_AT];
    // sub < 32: its bits 5, 6, 7 are zero.
    sum(bits[SUB_AT + 5..ACCOUNT_AT].iter().map(|b| FrVar::from(b.clone()))).enforce_equal(&FrVar::zero())?;
    // chain ∈ {1, 2, 3, 4}: exactly one equality flag.
    let chain = from_bits_le(&bits[CHAIN_AT..]);
    let mut flags = Vec::with_capacity(POOL_CHAINS);
    for c in 1..=POOL_CHAINS as u64 {
        flags.push(FrVar::from(chain.is_eq(&FrVar::constant(Fr::from(c)))?));
    }
    sum(flags.iter().cloned()).enforce_equal(&FrVar::one())?;

    // The claimant's leaf at `account`, owned by the EVM address x2 ≠ 0.
    let [leaf_hash, owner_hi, owner_lo, balance_root] = alloc_leaf(cs, &w.leaf)?;
    to_bits_le(&owner_hi, 32)?;
    to_bits_le(&owner_lo, 128)?;
    (&owner_hi * pow2(128) + &owner_lo).enforce_equal(&x2)?;
    x2.enforce_not_equal(&FrVar::zero())?;
    let path = QuadPath::witness(cs, account_bits, &w.account_path)?;
    merkle::root(&leaf_hash, &path)?.enforce_equal(&x0)?;
    // Its balance at sub << 16 | l2_token.
    let balance = FrVar::new_witness(cs.clone(), || Ok(Fr::from(w.balance)))?;
    to_bits_le(&balance, BALANCE_BITS)?;
    let path = QuadPath::witness(cs, token_and_sub, &w.balance_path)?;
    merkle::root(&balance, &path)?.enforce_equal(&balance_root)?;

    // Account 1's leaf and its liquidity leaves at c << 16 | m_i.
    let [global_hash, _, _, global_broot] = alloc_leaf(cs, &w.global_leaf)?;
    let path =
        QuadPath::witness(cs, &constant_bits(u64::from(GLOBAL_ACCOUNT), 2 * ACCOUNT_TREE_DEPTH), &w.global_path)?;
    merkle::root(&global_hash, &path)?.enforce_equal(&x0)?;
    let mut liquidity: Vec<[FrVar; POOL_MEMBERS]> = Vec::with_capacity(POOL_CHAINS);
    for (c, (values, paths)) in w.liquidity.iter().zip(&w.liquidity_paths).enumerate() {
        let mut row = Vec::with_capacity(POOL_MEMBERS);
        let mut shared: Option<FrVar> = None;
        for (i, (value, siblings)) in values.iter().zip(paths).enumerate() {
            let l = FrVar::new_witness(cs.clone(), || Ok(Fr::from(*value)))?;
            to_bits_le(&l, LIQUIDITY_BITS)?;
            let lower = QuadPath::witness(cs, member_bits[i], &siblings[..TOKEN_LEVELS])?;
            let node = merkle::root(&l, &lower)?;
            match &shared {
                Some(n) => node.enforce_equal(n)?,
                None => {
                    let chain_bits = constant_bits(c as u64 + 1, 2 * (BALANCE_TREE_DEPTH - TOKEN_LEVELS));
                    let upper = QuadPath::witness(cs, &chain_bits, &siblings[TOKEN_LEVELS..])?;
                    merkle::root(&node, &upper)?.enforce_equal(&global_broot)?;
                    shared = Some(node);
                }
            }
            row.push(l);
        }
        liquidity.push(row.try_into().map_err(|_| SynthesisError::Unsatisfiable)?);
    }
    let pool = sum(liquidity.iter().flatten().cloned());

    // The amounts: a_i = floor(b · L(chain, m_i) / P).
    let mut amounts = Vec::with_capacity(POOL_MEMBERS);
    for (i, a) in w.amounts.iter().enumerate() {
        let a = FrVar::new_witness(cs.clone(), || Ok(Fr::from(*a)))?;
        to_bits_le(&a, AMOUNT_BITS)?;
        let selected = sum(flags.iter().zip(&liquidity).map(|(f, row)| f * &row[i]));
        let values = (balance.value(), selected.value(), a.value(), pool.value());
        let r = FrVar::new_witness(cs.clone(), || match values {
            (Ok(b), Ok(l), Ok(a), Ok(p)) => Ok(b * l - a * p),
            _ => Err(SynthesisError::AssignmentMissing),
        })?;
        to_bits_le(&r, POOL_BITS)?;
        to_bits_le(&(&pool - FrVar::one() - &r), POOL_BITS)?;
        balance.mul_equals(&selected, &(&a * &pool + &r))?;
        amounts.push(a);
    }
    (&amounts[0] * pow2(128) + &amounts[1]).enforce_equal(&x3)?;
    (&amounts[2] * pow2(128) + &amounts[3]).enforce_equal(&x4)?;
    Ok(())
}
