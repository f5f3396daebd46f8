//! Skeleton of the block circuit's Transfer chunk (op 4, protocol.md sections 10-12), standalone:
//! public inputs `old_root`, `new_root` and the op's 20-byte pubdata chunk (as a 160-bit integer).
//!
//! What one Transfer chunk proves:
//! 1. the chunk decodes as `op 1 = 4, from 3, to 3, from_sub 1, to_sub 1, token 2, amount p5,
//!    fee p2` with two zero padding bytes, sub-accounts below 32, canonical packed amount and fee;
//! 2. the sender's account leaf (at `from`, against `old_root`) holds a pubkey hash equal to
//!    `Poseidon(Ax, Ay) mod 2^160` of a key `A` that signed (EdDSA-Poseidon)
//!    `Poseidon(header, to_hi, to_lo, amount, fee)`, where `header` is
//!    `0x04 ‖ from 4 ‖ from_sub 1 ‖ to_sub 1 ‖ token 2 ‖ nonce 4` and `to_hi/to_lo` are the owner
//!    halves of the recipient's leaf, which must not be zero;
//! 3. the sender's balance `(from_sub, token)` decreases by `amount + fee` without going negative
//!    and its nonce increases by one (staying below 2^32): the balance-tree and account-tree path
//!    updates give the intermediate root;
//! 4. the recipient (never the global account 1) gains `amount` (staying below 2^128), and its
//!    path updates against the intermediate root give `new_root`; sender and recipient may be
//!    one account with two sub-accounts, never the same sub-account (`SelfTransfer`).
//!
//! Not checked here (known gaps of the skeleton): that `token` is registered (the state rejects
//! unknown tokens; their balances are all zero, so only a zero-amount, zero-fee transfer could
//! differ) and the per-block fee accumulator's overflow (block level).
//!
//! The fee is returned to the caller ([`TransferOutput`]): the block circuit accumulates fees per
//! token and credits account 0 at the end of the block, as the state machine does.

use ark_ff::{AdditiveGroup, Field};
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef};
use zkl_crypto::PublicKey;
use zkl_crypto::Signature;
use zkl_state::state::Write;
use zkl_state::witness::{AccountFields, OpWitness, WriteWitness};
use zkl_state::{MerkleProof, State};
use zkl_types::{Op, SignedTx, Tx, balance_index};

use crate::bits::{from_bits_le, to_bits_le, unpack_bits};
use crate::ecc::PointVar;
use crate::eddsa::{self, SignatureVar};
use crate::merkle::{self, ACCOUNT_TREE_DEPTH, BALANCE_TREE_DEPTH, QuadPath};
use crate::{BoolVar, Fr, FrVar, SynthesisError, poseidon};

pub use zkl_types::layout::CHUNK_BYTES;
/// Op code of Transfer.
pub const TRANSFER_CODE: u8 = zkl_types::op::code::TRANSFER;

/// An account leaf's fields (protocol.md section 10).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountLeaf {
    pub nonce: u32,
    pub pubkey_hash: Fr,
    pub owner_hi: Fr,
    pub owner_lo: Fr,
    pub balance_root: Fr,
    pub order_root: Fr,
}

impl AccountLeaf {
    fn of(a: &zkl_state::Account) -> Self {
        Self {
            nonce: a.nonce,
            pubkey_hash: a.pubkey_hash.to_fr(),
            owner_hi: a.owner.hi(),
            owner_lo: a.owner.lo(),
            balance_root: a.balance_root(),
            order_root: a.order_root(),
        }
    }

    pub fn hash(&self) -> Fr {
        let two160 = Fr::from(2u64).pow([160]);
        zkl_crypto::poseidon::hash_array([
            Fr::from(self.nonce) * two160 + self.pubkey_hash,
            self.owner_hi,
            self.owner_lo,
            self.balance_root,
            self.order_root,
        ])
    }
}

/// One side of the transfer: the account leaf and balance before this side's update, with paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideWitness {
    pub leaf: AccountLeaf,
    pub account_path: Vec<[Fr; 3]>,
    pub balance: u128,
    pub balance_path: Vec<[Fr; 3]>,
}

/// Everything the Transfer chunk needs, read from the state before the op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferWitness {
    pub old_root: Fr,
    pub new_root: Fr,
    pub chunk: [u8; CHUNK_BYTES],
    pub pubkey: (Fr, Fr),
    pub signature: (Fr, Fr, Fr),
    pub from: SideWitness,
    /// The recipient as it is after the sender's update (relevant when both are one account).
    pub to: SideWitness,
}

/// Why a witness could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WitnessError {
    #[error("the op is not a Transfer")]
    NotATransfer,
    #[error("the signed tx is not a Transfer")]
    NotATransferTx,
    #[error("account {0} does not exist")]
    UnknownAccount(u32),
    #[error("the sender has no public key")]
    NoPublicKey,
    #[error("the op witness does not have the writes of a Transfer")]
    UnexpectedWrites,
    #[error("amount or fee is not packable: {0}")]
    Encode(#[from] zkl_types::OpEncodeError),
}

/// `b`'s siblings after the leaf of `a` was replaced by `a_new_leaf` (same tree).
pub(crate) fn siblings_after(a: &MerkleProof, a_new_leaf: Fr, b: &MerkleProof) -> Vec<[Fr; 3]> {
    let mut out = b.siblings.clone();
    let (mut ia, mut ib, mut cur) = (a.index, b.index, a_new_leaf);
    for (k, sib) in a.siblings.iter().enumerate() {
        if ia != ib && ia >> 2 == ib >> 2 {
            let (pa, pb) = ((ia & 3) as usize, (ib & 3) as usize);
            out[k][if pa < pb { pa } else { pa - 1 }] = cur;
        }
        let pos = (ia & 3) as usize;
        let mut it = sib.iter();
        let children: Vec<Fr> = (0..4).map(|i| if i == pos { cur } else { *it.next().unwrap_or(&Fr::ZERO) }).collect();
        cur = zkl_crypto::poseidon::hash(&children).unwrap_or(Fr::ZERO);
        ia >>= 2;
        ib >>= 2;
    }
    out
}

impl TransferWitness {
    /// Builds the witness of `op` (produced by `pre.execute_tx(stx)`) from the committed state
    /// before it.
    pub fn build(pre: &State, op: &Op, stx: &SignedTx) -> Result<Self, WitnessError> {
        let Op::Transfer(t) = op else { return Err(WitnessError::NotATransfer) };
        let Tx::Transfer(_) = &stx.tx else { return Err(WitnessError::NotATransferTx) };
        let from_acc = pre.account(t.from).ok_or(WitnessError::UnknownAccount(t.from))?;
        let to_acc = pre.account(t.to).ok_or(WitnessError::UnknownAccount(t.to))?;
        let pubkey = from_acc.pubkey.ok_or(WitnessError::NoPublicKey)?;
        let sig: &Signature = &stx.signature;

        // Sender.
        let from_index = balance_index(t.from_sub, t.token);
        let from_leaf = AccountLeaf::of(from_acc);
        let from_balance = from_acc.balance_at(from_index);
        let from_balance_proof = from_acc.balance_proof(from_index);
        let from_new_balance = from_balance.saturating_sub(t.amount.saturating_add(t.fee));
        let from_new_balance_root = from_balance_proof.root(Fr::from(from_new_balance));
        let from_new_leaf = AccountLeaf {
            nonce: from_leaf.nonce.wrapping_add(1),
            balance_root: from_new_balance_root,
            ..from_leaf.clone()
        };
        let from_account_proof = pre.account_proof(t.from);

        // Recipient, seen after the sender's update.
        let to_index = balance_index(t.to_sub, t.token);
        let to_account_proof = pre.account_proof(t.to);
        let to_account_path = siblings_after(&from_account_proof, from_new_leaf.hash(), &to_account_proof);
        let (to_leaf, to_balance, to_balance_path) = if t.to == t.from {
            let bp = from_acc.balance_proof(to_index);
            let balance = if to_index == from_index { from_new_balance } else { to_acc.balance_at(to_index) };
            (from_new_leaf.clone(), balance, siblings_after(&from_balance_proof, Fr::from(from_new_balance), &bp))
        } else {
            (AccountLeaf::of(to_acc), to_acc.balance_at(to_index), to_acc.balance_proof(to_index).siblings)
        };
        let to_new_balance = to_balance.saturating_add(t.amount);
        let to_balance_proof = MerkleProof { index: u64::from(to_index), siblings: to_balance_path.clone() };
        let to_new_leaf =
            AccountLeaf { balance_root: to_balance_proof.root(Fr::from(to_new_balance)), ..to_leaf.clone() };
        let new_root =
            MerkleProof { index: u64::from(t.to), siblings: to_account_path.clone() }.root(to_new_leaf.hash());

        let mut chunk = [0u8; CHUNK_BYTES];
        let data = op.pubdata()?;
        let n = data.len().min(CHUNK_BYTES);
        chunk[..n].copy_from_slice(&data[..n]);
        Ok(Self {
            old_root: from_account_proof.root(from_leaf.hash()),
            new_root,
            chunk,
            pubkey: (pubkey.x(), pubkey.y()),
            signature: (sig.r8().x(), sig.r8().y(), sig.s()),
            from: SideWitness {
                leaf: from_leaf,
                account_path: from_account_proof.siblings,
                balance: from_balance,
                balance_path: from_balance_proof.siblings,
            },
            to: SideWitness {
                leaf: to_leaf,
                account_path: to_account_path,
                balance: to_balance,
                balance_path: to_balance_path,
            },
        })
    }

    /// Builds the witness from the state machine's write-by-write witness
    /// (`State::apply_op_witnessed`: debit of the sender, credit of the recipient, fee, nonce of
    /// the sender). The circuit applies the sender's debit and nonce in one account update, so
    /// the recipient's account path is recomputed for that order. `pubkey` is the sender's key.
    pub fn from_op_witness(ow: &OpWitness, stx: &SignedTx, pubkey: &PublicKey) -> Result<Self, WitnessError> {
        let Op::Transfer(t) = &ow.op else { return Err(WitnessError::NotATransfer) };
        let Tx::Transfer(_) = &stx.tx else { return Err(WitnessError::NotATransferTx) };
        let balance_writes: Vec<&WriteWitness> =
            ow.writes.iter().filter(|w| matches!(w.write, Write::Balance { .. })).collect();
        let (debit, credit) = match balance_writes.as_slice() {
            [d, c] => (*d, *c),
            _ => return Err(WitnessError::UnexpectedWrites),
        };
        let parts = |w: &WriteWitness| -> Result<(AccountFields, MerkleProof, MerkleProof, u128, u128), WitnessError> {
            match (&w.write, w.account_before, &w.account_proof, &w.leaf_proof) {
                (Write::Balance { old, new, .. }, Some(fields), Some(ap), Some(lp)) => {
                    Ok((fields, ap.clone(), lp.clone(), *old, *new))
                }
                _ => Err(WitnessError::UnexpectedWrites),
            }
        };
        let (from_fields, from_account_proof, from_balance_proof, from_balance, from_new_balance) = parts(debit)?;
        let (to_fields, to_account_proof, to_balance_proof, to_balance, _) = parts(credit)?;
        let leaf = |f: &AccountFields| AccountLeaf {
            nonce: f.nonce,
            pubkey_hash: f.pubkey_hash.to_fr(),
            owner_hi: f.owner.hi(),
            owner_lo: f.owner.lo(),
            balance_root: f.balance_root,
            order_root: f.order_root,
        };
        let from_leaf = leaf(&from_fields);
        let from_new_leaf = AccountLeaf {
            nonce: from_leaf.nonce.wrapping_add(1),
            balance_root: from_balance_proof.root(Fr::from(from_new_balance)),
            ..from_leaf.clone()
        };
        let mut to_leaf = leaf(&to_fields);
        if t.to == t.from {
            // The state bumps the nonce after the credit; the circuit before it.
            to_leaf.nonce = from_new_leaf.nonce;
        }
        let to_account_path = siblings_after(&from_account_proof, from_new_leaf.hash(), &to_account_proof);
        let sig: &Signature = &stx.signature;
        let mut chunk = [0u8; CHUNK_BYTES];
        let data = ow.op.pubdata()?;
        let n = data.len().min(CHUNK_BYTES);
        chunk[..n].copy_from_slice(&data[..n]);
        Ok(Self {
            old_root: debit.root_before,
            new_root: ow.writes.last().map_or(debit.root_after, |w| w.root_after),
            chunk,
            pubkey: (pubkey.x(), pubkey.y()),
            signature: (sig.r8().x(), sig.r8().y(), sig.s()),
            from: SideWitness {
                leaf: from_leaf,
                account_path: from_account_proof.siblings,
                balance: from_balance,
                balance_path: from_balance_proof.siblings,
            },
            to: SideWitness {
                leaf: to_leaf,
                account_path: to_account_path,
                balance: to_balance,
                balance_path: to_balance_proof.siblings,
            },
        })
    }

    /// A witness of the right shape with zero values, for key generation and constraint counts.
    pub fn blank() -> Self {
        let side = || SideWitness {
            leaf: AccountLeaf::default(),
            account_path: vec![[Fr::ZERO; 3]; ACCOUNT_TREE_DEPTH],
            balance: 0,
            balance_path: vec![[Fr::ZERO; 3]; BALANCE_TREE_DEPTH],
        };
        Self {
            old_root: Fr::ZERO,
            new_root: Fr::ZERO,
            chunk: [0; CHUNK_BYTES],
            pubkey: (Fr::ZERO, Fr::ONE),
            signature: (Fr::ZERO, Fr::ONE, Fr::ZERO),
            from: side(),
            to: side(),
        }
    }

    /// The chunk as the public input (big-endian integer of its 20 bytes).
    pub fn chunk_fr(&self) -> Fr {
        zkl_crypto::field::fr_from_be_bytes_small(&self.chunk)
    }

    /// The circuit's public inputs: `[old_root, new_root, chunk]`.
    pub fn public_inputs(&self) -> Vec<Fr> {
        vec![self.old_root, self.new_root, self.chunk_fr()]
    }
}

/// What a Transfer chunk hands to the block-level logic.
pub struct TransferOutput {
    pub new_root: FrVar,
    pub fee_token: FrVar,
    pub fee: FrVar,
}

struct LeafVar {
    nonce: FrVar,
    pubkey_hash: FrVar,
    owner_hi: FrVar,
    owner_lo: FrVar,
    balance_root: FrVar,
    order_root: FrVar,
}

impl LeafVar {
    fn new(cs: &ConstraintSystemRef<Fr>, l: &AccountLeaf) -> Result<Self, SynthesisError> {
        let w = |v: Fr| FrVar::new_witness(cs.clone(), || Ok(v));
        Ok(Self {
            nonce: w(Fr::from(l.nonce))?,
            pubkey_hash: w(l.pubkey_hash)?,
            owner_hi: w(l.owner_hi)?,
            owner_lo: w(l.owner_lo)?,
            balance_root: w(l.balance_root)?,
            order_root: w(l.order_root)?,
        })
    }

    fn hash_with(&self, nonce: &FrVar, balance_root: &FrVar) -> Result<FrVar, SynthesisError> {
        let two160 = Fr::from(2u64).pow([160]);
        poseidon::hash(&[
            nonce * two160 + &self.pubkey_hash,
            self.owner_hi.clone(),
            self.owner_lo.clone(),
            balance_root.clone(),
            self.order_root.clone(),
        ])
    }
}

fn path(cs: &ConstraintSystemRef<Fr>, bits: &[BoolVar], siblings: &[[Fr; 3]]) -> Result<QuadPath, SynthesisError> {
    let sib = siblings
        .iter()
        .map(|s| -> Result<[FrVar; 3], SynthesisError> {
            Ok([
                FrVar::new_witness(cs.clone(), || Ok(s[0]))?,
                FrVar::new_witness(cs.clone(), || Ok(s[1]))?,
                FrVar::new_witness(cs.clone(), || Ok(s[2]))?,
            ])
        })
        .collect::<Result<Vec<_>, _>>()?;
    QuadPath::new(bits, sib)
}

/// Synthesises one Transfer chunk on top of `old_root`; `chunk_bits` are the chunk's 160
/// little-endian bits (the integer of its 20 big-endian bytes).
pub fn synthesize_transfer(
    cs: &ConstraintSystemRef<Fr>,
    old_root: &FrVar,
    chunk_bits: &[BoolVar],
    w: &TransferWitness,
) -> Result<TransferOutput, SynthesisError> {
    if chunk_bits.len() != 8 * CHUNK_BYTES {
        return Err(SynthesisError::Unsatisfiable);
    }
    // Bits of a field of the chunk (zkl_types::layout), little-endian.
    let field = |f: zkl_types::layout::Field| &chunk_bits[(CHUNK_BYTES - f.end()) * 8..(CHUNK_BYTES - f.offset) * 8];
    use zkl_types::layout::{Field, transfer as tr};
    let zero_bits = |bits: &[BoolVar]| -> Result<(), SynthesisError> {
        bits.iter().fold(FrVar::zero(), |acc, b| acc + FrVar::from(b.clone())).enforce_equal(&FrVar::zero())
    };
    // 1. Decode.
    from_bits_le(field(Field::OP)).enforce_equal(&FrVar::constant(Fr::from(TRANSFER_CODE)))?;
    let (from_bits, to_bits) = (field(tr::FROM), field(tr::TO));
    let (from_sub_bits, to_sub_bits) = (field(tr::FROM_SUB), field(tr::TO_SUB));
    zero_bits(&from_sub_bits[5..])?;
    zero_bits(&to_sub_bits[5..])?;
    let token_bits = field(tr::TOKEN);
    let amount = unpack_bits(field(tr::AMOUNT))?;
    let fee = unpack_bits(field(tr::FEE))?;
    let padding = Field { name: "padding", offset: tr::FEE.end(), len: CHUNK_BYTES - tr::FEE.end() };
    zero_bits(field(padding))?;
    let (from, to) = (from_bits_le(from_bits), from_bits_le(to_bits));
    let (from_sub, to_sub, token) = (from_bits_le(from_sub_bits), from_bits_le(to_sub_bits), from_bits_le(token_bits));
    to.enforce_not_equal(&FrVar::constant(Fr::from(zkl_types::GLOBAL_ACCOUNT)))?;
    // No transfer to the same account and sub-account (the state's SelfTransfer).
    let same = from.is_eq(&to)? & from_sub.is_eq(&to_sub)?;
    same.enforce_equal(&BoolVar::FALSE)?;
    let balance_bits =
        |sub_bits: &[BoolVar]| -> Vec<BoolVar> { token_bits.iter().chain(&sub_bits[..6]).cloned().collect() };

    // 2. Signature by the sender's key.
    let f = LeafVar::new(cs, &w.from.leaf)?;
    let t = LeafVar::new(cs, &w.to.leaf)?;
    let a = PointVar::new_witness(cs.clone(), || Ok(w.pubkey))?;
    eddsa::pubkey_hash(&a)?.enforce_equal(&f.pubkey_hash)?;
    to_bits_le(&f.nonce, 32)?;
    let new_nonce = &f.nonce + Fr::ONE;
    to_bits_le(&new_nonce, 32)?;
    let pow = |k: u64| Fr::from(2u64).pow([k]);
    let header = FrVar::constant(Fr::from(TRANSFER_CODE) * pow(96))
        + &from * pow(64)
        + &from_sub * pow(56)
        + &to_sub * pow(48)
        + &token * pow(32)
        + &f.nonce;
    let msg = poseidon::hash(&[header, t.owner_hi.clone(), t.owner_lo.clone(), amount.clone(), fee.clone()])?;
    let (rx, ry, s) = w.signature;
    let sig = SignatureVar {
        r8: PointVar::new_witness(cs.clone(), || Ok((rx, ry)))?,
        s: FrVar::new_witness(cs.clone(), || Ok(s))?,
    };
    eddsa::verify(&BoolVar::TRUE, &a, &msg, &sig)?;
    // The recipient has an owner.
    let owner_is_zero = t.owner_hi.is_eq(&FrVar::zero())? & t.owner_lo.is_eq(&FrVar::zero())?;
    owner_is_zero.enforce_equal(&BoolVar::FALSE)?;

    // 3. Sender update.
    let from_balance = FrVar::new_witness(cs.clone(), || Ok(Fr::from(w.from.balance)))?;
    let from_new_balance = &from_balance - &amount - &fee;
    to_bits_le(&from_new_balance, 128)?;
    let from_balance_path = path(cs, &balance_bits(from_sub_bits), &w.from.balance_path)?;
    let from_new_balance_root = merkle::update(&f.balance_root, &from_balance, &from_new_balance, &from_balance_path)?;
    let from_account_path = path(cs, from_bits, &w.from.account_path)?;
    let mid_root = merkle::update(
        old_root,
        &f.hash_with(&f.nonce, &f.balance_root)?,
        &f.hash_with(&new_nonce, &from_new_balance_root)?,
        &from_account_path,
    )?;

    // 4. Recipient update.
    let to_balance = FrVar::new_witness(cs.clone(), || Ok(Fr::from(w.to.balance)))?;
    let to_new_balance = &to_balance + &amount;
    to_bits_le(&to_new_balance, 128)?;
    let to_balance_path = path(cs, &balance_bits(to_sub_bits), &w.to.balance_path)?;
    let to_new_balance_root = merkle::update(&t.balance_root, &to_balance, &to_new_balance, &to_balance_path)?;
    let to_account_path = path(cs, to_bits, &w.to.account_path)?;
    let new_root = merkle::update(
        &mid_root,
        &t.hash_with(&t.nonce, &t.balance_root)?,
        &t.hash_with(&t.nonce, &to_new_balance_root)?,
        &to_account_path,
    )?;
    Ok(TransferOutput { new_root, fee_token: token, fee })
}

/// The standalone Transfer circuit: public `old_root`, `new_root`, `chunk`.
#[derive(Clone)]
pub struct TransferCircuit {
    pub witness: TransferWitness,
}

impl ConstraintSynthesizer<Fr> for TransferCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let w = &self.witness;
        let old_root = FrVar::new_input(cs.clone(), || Ok(w.old_root))?;
        let new_root = FrVar::new_input(cs.clone(), || Ok(w.new_root))?;
        let chunk = FrVar::new_input(cs.clone(), || Ok(w.chunk_fr()))?;
        let chunk_bits = to_bits_le(&chunk, 8 * CHUNK_BYTES)?;
        let out = synthesize_transfer(&cs, &old_root, &chunk_bits, w)?;
        out.new_root.enforce_equal(&new_root)
    }
}
