//! The block circuit (protocol.md sections 10-14): a block of `C` pubdata chunks turns `old_root`
//! into `new_root` exactly as `zkl-state` does; the single public input is the block
//! commitment's low 253 bits.
//!
//! Layout (one universal chunk gadget per chunk position, see DESIGN.md):
//!
//! - The pubdata (`C · 20` bytes) is a witness, hashed with SHA-256 into the commitment.
//! - A counter of the chunks left in the current op tells which chunks start an op. A start
//!   chunk reads the op code and sets exactly one op flag; the op's fields are decoded from a
//!   window of four chunks starting there (bytes past the block are constant zeros and the
//!   counter must be zero after the last chunk, so an op cannot run past the block).
//! - Every chunk carries one EdDSA verification and two *account updates* (AU). An AU changes
//!   one account leaf: one balance (a balance-tree path update of depth 11), the nonce, the
//!   pubkey hash, and the owner when it creates the account (account-tree path update of
//!   depth 12). Each part is driven by the op flags; a disabled part leaves the root unchanged
//!   and checks nothing. A multi-chunk op does its work in its first chunk (ForcedExit: and
//!   its second; OrderMatching: the maker's side in its first chunk, the taker's in its second).
//! - OrderMatching: each chunk verifies one order's signature against its trader's key hash and
//!   fuses the chunk's two updates into one update of the trader's account: AU0's balance path
//!   debits what the trader gives, AU1's balance path (on the same balance tree) credits what it
//!   receives minus its fee, and AU1's account path serves as a depth-11 path of the trader's
//!   order tree (the slot's nonce must be the order's; fill ≤ available; a full fill moves the
//!   slot to the next nonce). The maker's chunk checks the price (`quote_fill · 10^18 =
//!   base_fill · maker_price` exactly), the taker's its limit against the maker's price.
//! - Fees: every op's fee is added to one of `F` per-block fee slots (token, amount) chosen by
//!   the prover; a non-zero fee must match its slot's token. After the last chunk every slot is
//!   credited to account 0, sub-account 0 (as `State::seal_block` does; the order of credits
//!   does not change the root, and a repeated token only splits a credit in two).
//! - On-chain ops update `onchain_hash[chain] = Poseidon(h, w1, w2, w3, w4)`.
//!
//! - FullExit: AU0 debits the account, AU1 the liquidity, by the pubdata amount, which must be
//!   `min(balance, liquidity)` rounded down to `10^(18 − l1_decimals)` (the decimals are a
//!   pubdata field the contract checks against its registry) when the account's owner is the
//!   requester, else 0.
//!
//! Every op kind has a flag (Noop, Deposit, TransferToNew, Withdraw, Transfer, FullExit,
//! ChangePubKey, ForcedExit, OrderMatching).

use std::collections::{BTreeMap, HashMap};

use ark_ff::{AdditiveGroup, Field};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::uint8::UInt8;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef};
use zkl_crypto::PublicKey;
use zkl_state::{MerkleProof, OrderSlot, SealedBlock, State};
use zkl_types::block::{
    BlockCommitment, BlockError, commitment as commitment_hash, onchain_hashes, pubdata_for_block, pubdata_hash,
    public_input,
};
use zkl_types::layout::{self, Field as PubdataField, OpLayout};
use zkl_types::op::{Op, code};
use zkl_types::{Address, SignedTx, Tx, balance_index};

use crate::bits::{bytes_be_to_bits_le, fr_to_biguint, from_bits_le, to_bits_le, unpack_amount, unpack_fee};
use crate::commitment::{BlockHeaderVar, MAX_CHAINS};
use crate::ecc::PointVar;
use crate::eddsa::{self, SignatureVar};
use crate::merkle::{self, ACCOUNT_TREE_DEPTH, BALANCE_TREE_DEPTH, QuadPath};
use crate::transfer::{AccountLeaf, CHUNK_BYTES, siblings_after};
use crate::{BoolVar, Fr, FrVar, SynthesisError, poseidon, sha256};

/// Chunks an op's fields may span (ForcedExit has 4).
const WINDOW_CHUNKS: usize = 4;
/// Op codes with a flag in the chunk gadget, with their chunk counts.
pub const SUPPORTED_OPS: [(u8, usize); 9] = {
    use zkl_types::layout::*;
    const fn entry(l: OpLayout) -> (u8, usize) {
        (l.code, l.chunks)
    }
    [
        entry(NOOP),
        entry(deposit::LAYOUT),
        entry(transfer_to_new::LAYOUT),
        entry(withdraw::LAYOUT),
        entry(transfer::LAYOUT),
        entry(change_pubkey::LAYOUT),
        entry(forced_exit::LAYOUT),
        entry(order_matching::LAYOUT),
        entry(full_exit::LAYOUT),
    ]
};

// The on-chain ops the gadget reads with one set of chain / account / sub-account reads.
const _: () = {
    use zkl_types::layout::*;
    assert!(withdraw::ACCOUNT.offset == deposit::ACCOUNT.offset && withdraw::SUB.offset == deposit::SUB.offset);
    assert!(
        change_pubkey::ACCOUNT.offset == deposit::ACCOUNT.offset && change_pubkey::SUB.offset == deposit::SUB.offset
    );
    assert!(full_exit::ACCOUNT.offset == deposit::ACCOUNT.offset && full_exit::SUB.offset == deposit::SUB.offset);
    assert!(forced_exit::CHAIN.offset == CHAIN.offset);
};

fn pow2(k: u64) -> Fr {
    Fr::from(2u64).pow([k])
}

// ---------------------------------------------------------------------------------------------
// Witness
// ---------------------------------------------------------------------------------------------

/// One account update's witness: the leaf and balance before it, with their paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuWitness {
    pub leaf: AccountLeaf,
    pub balance: u128,
    pub balance_path: Vec<[Fr; 3]>,
    pub account_path: Vec<[Fr; 3]>,
}

impl AuWitness {
    /// A disabled update (any values do; zeros of the right shape).
    pub fn blank() -> Self {
        Self {
            leaf: AccountLeaf::default(),
            balance: 0,
            balance_path: vec![[Fr::ZERO; 3]; BALANCE_TREE_DEPTH],
            account_path: vec![[Fr::ZERO; 3]; ACCOUNT_TREE_DEPTH],
        }
    }
}

/// The order values of an OrderMatching chunk that the pubdata does not carry (zero in other
/// chunks): the order's price and the fee byte of the order the op drops (the maker order's
/// taker fee, the taker order's maker fee); both are signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderWitness {
    pub price: u128,
    pub other_fee_bps: u8,
}

/// The witness of one chunk position (only an op's first chunk uses its parts, but for
/// ForcedExit's second chunk and OrderMatching's two chunks, one per order).
///
/// In an OrderMatching chunk `au[0]` is the trader's account with the balance it gives and
/// `au[1]` is not an account: its balance and balance path are the balance the trader receives
/// (in the same balance tree, after the first update), its `account_path` is the order slot's
/// path (11 levels and a 12th of zeros), and its leaf carries the order slot: `nonce` = the
/// slot's nonce, `pubkey_hash` = the slot's residue (the other fields are unused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkWitness {
    pub pubkey: (Fr, Fr),
    pub signature: (Fr, Fr, Fr),
    pub au: [AuWitness; 2],
    /// The fee slot this chunk's fee goes to.
    pub fee_slot: usize,
    pub order: OrderWitness,
}

impl ChunkWitness {
    pub fn blank() -> Self {
        Self {
            pubkey: (Fr::ZERO, Fr::ONE),
            signature: (Fr::ZERO, Fr::ONE, Fr::ZERO),
            au: [AuWitness::blank(), AuWitness::blank()],
            fee_slot: 0,
            order: OrderWitness::default(),
        }
    }
}

/// A fee slot: its token and total, and the credit to account 0 at the end of the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeSlotWitness {
    pub token: u16,
    pub amount: u128,
    pub au: AuWitness,
}

/// Everything the block circuit needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockWitness {
    pub block_number: u32,
    pub timestamp: u64,
    pub old_root: Fr,
    pub new_root: Fr,
    pub pubdata: Vec<u8>,
    pub chunks: Vec<ChunkWitness>,
    pub fees: Vec<FeeSlotWitness>,
    /// The commitment's low 253 bits (the public input).
    pub public_input: Fr,
}

/// Why a block witness could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockWitnessError {
    /// (Every op kind is supported now; kept for callers that match on it.)
    #[error("op {0} ({1}) is not supported by the block circuit yet")]
    UnsupportedOp(usize, &'static str),
    #[error("the block has {got} chunks, the circuit {capacity}")]
    Capacity { capacity: usize, got: usize },
    #[error("op {0} needs its signed tx")]
    MissingTx(usize),
    #[error("op {0}: the signed tx does not match the op")]
    TxMismatch(usize),
    #[error("op {0}: the signature does not verify")]
    BadSignature(usize),
    #[error("op {0}: account {1} has no known public key")]
    NoPublicKey(usize, u32),
    #[error("the block collects fees in {got} tokens, the circuit has {slots} fee slots")]
    TooManyFeeTokens { slots: usize, got: usize },
    #[error("the pre-block state has uncredited fees or does not match the block's old root")]
    PreState,
    #[error("op {0} rejected by the state machine: {1}")]
    State(usize, zkl_state::TxError),
    #[error("op {0}: the circuit's update order gives root {1}, the state machine {2}")]
    RootMismatch(usize, String, String),
    #[error("the replayed block ends at a root other than the sealed block's")]
    NewRoot,
    #[error("amount not packable: {0}")]
    Encode(#[from] zkl_types::OpEncodeError),
}

/// A public key and a signature `(R8x, R8y, S)`.
type KeyAndSig = ((Fr, Fr), (Fr, Fr, Fr));

/// What one account update does (native, used to derive the second update's witness).
#[derive(Clone, Copy, Debug)]
struct AuSpec {
    account: u32,
    index: u32,
    credit: u128,
    debit: u128,
    nonce_inc: bool,
    new_pkh: Option<Fr>,
    create_owner: Option<Address>,
}

fn fields_of(st: &State, account: u32) -> AccountLeaf {
    match st.account(account) {
        Some(a) => AccountLeaf {
            nonce: a.nonce,
            pubkey_hash: a.pubkey_hash.to_fr(),
            owner_hi: a.owner.hi(),
            owner_lo: a.owner.lo(),
            balance_root: a.balance_root(),
            order_root: a.order_root(),
        },
        None => {
            let e = zkl_state::tree::empty_sub_tree();
            AccountLeaf {
                balance_root: e[BALANCE_TREE_DEPTH],
                order_root: e[BALANCE_TREE_DEPTH],
                ..AccountLeaf::default()
            }
        }
    }
}

fn balance_proof_of(st: &State, account: u32, index: u32) -> (u128, MerkleProof) {
    match st.account(account) {
        Some(a) => (a.balance_at(index), a.balance_proof(index)),
        None => {
            let e = zkl_state::tree::empty_sub_tree();
            (0, MerkleProof { index: u64::from(index), siblings: (0..BALANCE_TREE_DEPTH).map(|k| [e[k]; 3]).collect() })
        }
    }
}

fn order_proof_of(st: &State, account: u32, index: u32) -> (OrderSlot, MerkleProof) {
    match st.account(account) {
        Some(a) => (a.slot_at(index), a.order_proof(index)),
        None => {
            let e = zkl_state::tree::empty_sub_tree();
            (
                OrderSlot::default(),
                MerkleProof { index: u64::from(index), siblings: (0..BALANCE_TREE_DEPTH).map(|k| [e[k]; 3]).collect() },
            )
        }
    }
}

/// One side of an OrderMatching as the circuit applies it (one chunk): the trader gives
/// `debit` at `debit_index`, receives `credit` at `credit_index` and fills `fill` of its order
/// (of `order_amount`) in the slot at `order_index`.
#[derive(Clone, Copy, Debug)]
struct OmSide {
    account: u32,
    debit_index: u32,
    debit: u128,
    credit_index: u32,
    credit: u128,
    order_index: u32,
    fill: u128,
    order_amount: u128,
    fee: (u16, u128),
    sig: KeyAndSig,
    order: OrderWitness,
}

/// The slot after filling `fill` of an order of `amount` (wrapping: the circuit's range checks
/// reject an overfill).
fn fill_slot(slot: OrderSlot, amount: u128, fill: u128) -> OrderSlot {
    let available = if slot.residue == 0 { amount } else { slot.residue };
    let left = available.wrapping_sub(fill);
    if left == 0 {
        OrderSlot { nonce: slot.nonce.wrapping_add(1), residue: 0 }
    } else {
        OrderSlot { nonce: slot.nonce, residue: left }
    }
}

/// `floor(received · bps / 10000)` (as `zkl_state`'s `fee_of`).
fn fee_of(received: u128, bps: u8) -> u128 {
    let bps = u128::from(bps);
    (received / 10_000) * bps + (received % 10_000) * bps / 10_000
}

/// The circuit's view of the state while a block is replayed in circuit order: the state
/// before the replay plus the account updates applied since, each with its proof at the time
/// it was made, so any later proof is the earlier one with its siblings brought up to date.
struct Model<'a> {
    base: &'a State,
    leaves: HashMap<u32, AccountLeaf>,
    balances: HashMap<(u32, u32), u128>,
    slots: HashMap<(u32, u32), OrderSlot>,
    account_updates: Vec<(MerkleProof, Fr)>,
    balance_updates: HashMap<u32, Vec<(MerkleProof, Fr)>>,
    order_updates: HashMap<u32, Vec<(MerkleProof, Fr)>>,
    root: Fr,
}

impl<'a> Model<'a> {
    /// `base` must be committed; `root` is its root.
    fn new(base: &'a State, root: Fr) -> Self {
        Self {
            base,
            leaves: HashMap::new(),
            balances: HashMap::new(),
            slots: HashMap::new(),
            account_updates: Vec::new(),
            balance_updates: HashMap::new(),
            order_updates: HashMap::new(),
            root,
        }
    }

    fn leaf(&self, account: u32) -> AccountLeaf {
        self.leaves.get(&account).cloned().unwrap_or_else(|| fields_of(self.base, account))
    }

    fn balance(&self, account: u32, index: u32) -> (u128, MerkleProof) {
        let (base_balance, mut bp) = balance_proof_of(self.base, account, index);
        for (p, v) in self.balance_updates.get(&account).map(Vec::as_slice).unwrap_or_default() {
            bp.siblings = siblings_after(p, *v, &bp);
        }
        (self.balances.get(&(account, index)).copied().unwrap_or(base_balance), bp)
    }

    fn slot(&self, account: u32, index: u32) -> (OrderSlot, MerkleProof) {
        let (base_slot, mut op) = order_proof_of(self.base, account, index);
        for (p, v) in self.order_updates.get(&account).map(Vec::as_slice).unwrap_or_default() {
            op.siblings = siblings_after(p, *v, &op);
        }
        (self.slots.get(&(account, index)).copied().unwrap_or(base_slot), op)
    }

    fn account_proof(&self, account: u32) -> MerkleProof {
        let mut ap = self.base.account_proof(account);
        for (p, v) in &self.account_updates {
            ap.siblings = siblings_after(p, *v, &ap);
        }
        ap
    }

    /// The witness of an update of (`account`, `index`) now.
    fn read(&self, account: u32, index: u32) -> AuWitness {
        let (balance, bp) = self.balance(account, index);
        AuWitness {
            leaf: self.leaf(account),
            balance,
            balance_path: bp.siblings,
            account_path: self.account_proof(account).siblings,
        }
    }

    /// Sets a balance (its proof taken before) and returns the new balance root.
    fn set_balance(&mut self, account: u32, bp: MerkleProof, value: u128) -> Fr {
        let root = bp.root(Fr::from(value));
        self.balances.insert((account, bp.index as u32), value);
        self.balance_updates.entry(account).or_default().push((bp, Fr::from(value)));
        root
    }

    /// Replaces `account`'s leaf (its proof taken before).
    fn set_leaf(&mut self, account: u32, ap: MerkleProof, leaf: AccountLeaf) {
        self.root = ap.root(leaf.hash());
        self.account_updates.push((ap, leaf.hash()));
        self.leaves.insert(account, leaf);
    }

    /// Applies `spec` as the circuit does (wrapping arithmetic: the circuit's range checks are
    /// what reject an overspend) and returns the update's witness.
    fn apply(&mut self, spec: &AuSpec) -> AuWitness {
        let w = self.read(spec.account, spec.index);
        let new_balance = w.balance.wrapping_add(spec.credit).wrapping_sub(spec.debit);
        let bp = MerkleProof { index: u64::from(spec.index), siblings: w.balance_path.clone() };
        let mut leaf = w.leaf.clone();
        leaf.balance_root = self.set_balance(spec.account, bp, new_balance);
        if spec.nonce_inc {
            leaf.nonce = leaf.nonce.wrapping_add(1);
        }
        if let Some(pkh) = spec.new_pkh {
            leaf.pubkey_hash = pkh;
        }
        if let Some(owner) = spec.create_owner {
            leaf.owner_hi = owner.hi();
            leaf.owner_lo = owner.lo();
        }
        let ap = MerkleProof { index: u64::from(spec.account), siblings: w.account_path.clone() };
        self.set_leaf(spec.account, ap, leaf);
        w
    }

    /// Applies one side of an OrderMatching (one chunk: debit, credit and order slot of one
    /// account, one account-leaf update) and returns the chunk's two update witnesses.
    fn apply_om(&mut self, side: &OmSide) -> [AuWitness; 2] {
        let a = side.account;
        let w0 = self.read(a, side.debit_index);
        let bp = MerkleProof { index: u64::from(side.debit_index), siblings: w0.balance_path.clone() };
        self.set_balance(a, bp, w0.balance.wrapping_sub(side.debit));
        let (credit_balance, cp) = self.balance(a, side.credit_index);
        let balance_path = cp.siblings.clone();
        let balance_root = self.set_balance(a, cp, credit_balance.wrapping_add(side.credit));
        let (slot, op) = self.slot(a, side.order_index);
        let new_slot = fill_slot(slot, side.order_amount, side.fill);
        let mut order_path = op.siblings.clone();
        order_path.push([Fr::ZERO; 3]);
        let order_root = op.root(new_slot.leaf());
        self.slots.insert((a, side.order_index), new_slot);
        self.order_updates.entry(a).or_default().push((op, new_slot.leaf()));
        let leaf = AccountLeaf { balance_root, order_root, ..w0.leaf.clone() };
        let ap = MerkleProof { index: u64::from(a), siblings: w0.account_path.clone() };
        self.set_leaf(a, ap, leaf);
        let w1 = AuWitness {
            leaf: AccountLeaf { nonce: slot.nonce, pubkey_hash: Fr::from(slot.residue), ..AccountLeaf::default() },
            balance: credit_balance,
            balance_path,
            account_path: order_path,
        };
        [w0, w1]
    }
}

/// How the witness builder treats the state machine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every op is applied by `zkl-state` and the roots are cross-checked.
    Checked,
    /// No state-machine rule is applied (for soundness tests).
    Unchecked,
}

/// An op's account updates, fee and signer, as the circuit sees them (for OrderMatching: its
/// two sides, one per chunk, instead).
struct OpParts {
    specs: Vec<AuSpec>,
    fee: Option<(u16, u128)>,
    sig: Option<KeyAndSig>,
    om: Option<[OmSide; 2]>,
}

fn op_parts(
    i: usize,
    op: &Op,
    tx: Option<&SignedTx>,
    model: &Model<'_>,
    verify: bool,
) -> Result<OpParts, BlockWitnessError> {
    let sig_of = |account: u32, stx: &SignedTx| -> Result<KeyAndSig, BlockWitnessError> {
        let key: PublicKey = match &stx.tx {
            Tx::ChangePubKey(t) => t.new_pubkey,
            _ => {
                model.base.account(account).and_then(|a| a.pubkey).ok_or(BlockWitnessError::NoPublicKey(i, account))?
            }
        };
        if verify {
            key.verify(&stx.tx.message(), &stx.signature).map_err(|_| BlockWitnessError::BadSignature(i))?;
        }
        let s = &stx.signature;
        Ok(((key.x(), key.y()), (s.r8().x(), s.r8().y(), s.s())))
    };
    let spec = |account, index, credit, debit| AuSpec {
        account,
        index,
        credit,
        debit,
        nonce_inc: false,
        new_pkh: None,
        create_owner: None,
    };
    let signed = |account: u32, index: u32, debit: u128| AuSpec { nonce_inc: true, ..spec(account, index, 0, debit) };
    let tx = || tx.ok_or(BlockWitnessError::MissingTx(i));
    let mismatch = BlockWitnessError::TxMismatch(i);
    Ok(match op {
        Op::Noop => OpParts { specs: vec![], fee: None, sig: None, om: None },
        Op::Transfer(o) => {
            let stx = tx()?;
            let Tx::Transfer(t) = &stx.tx else { return Err(mismatch) };
            if t.account != o.from || t.amount != o.amount || t.fee != o.fee || t.token != o.token {
                return Err(mismatch);
            }
            OpParts {
                specs: vec![
                    signed(o.from, balance_index(o.from_sub, o.token), o.amount.wrapping_add(o.fee)),
                    spec(o.to, balance_index(o.to_sub, o.token), o.amount, 0),
                ],
                fee: Some((o.token, o.fee)),
                sig: Some(sig_of(o.from, stx)?),
                om: None,
            }
        }
        Op::TransferToNew(o) => {
            let stx = tx()?;
            let Tx::Transfer(t) = &stx.tx else { return Err(mismatch) };
            if t.account != o.from || t.to != o.to_owner || t.amount != o.amount || t.fee != o.fee {
                return Err(mismatch);
            }
            let credit =
                AuSpec { create_owner: Some(o.to_owner), ..spec(o.to, balance_index(o.to_sub, o.token), o.amount, 0) };
            OpParts {
                specs: vec![signed(o.from, balance_index(o.from_sub, o.token), o.amount.wrapping_add(o.fee)), credit],
                fee: Some((o.token, o.fee)),
                sig: Some(sig_of(o.from, stx)?),
                om: None,
            }
        }
        Op::Withdraw(o) => {
            let stx = tx()?;
            let Tx::Withdraw(t) = &stx.tx else { return Err(mismatch) };
            if t.account != o.account || t.amount != o.amount || t.fee != o.fee || t.to != o.to {
                return Err(mismatch);
            }
            OpParts {
                specs: vec![
                    signed(o.account, balance_index(o.sub, o.l2_token), o.amount.wrapping_add(o.fee)),
                    spec(zkl_types::GLOBAL_ACCOUNT, balance_index(o.chain, o.l1_token), 0, o.amount),
                ],
                fee: Some((o.l2_token, o.fee)),
                sig: Some(sig_of(o.account, stx)?),
                om: None,
            }
        }
        Op::ChangePubKey(o) => {
            let stx = tx()?;
            let Tx::ChangePubKey(t) = &stx.tx else { return Err(mismatch) };
            if t.account != o.account || t.new_pubkey.pubkey_hash() != o.new_pubkey_hash {
                return Err(mismatch);
            }
            let s0 = AuSpec {
                new_pkh: Some(o.new_pubkey_hash.to_fr()),
                ..signed(o.account, balance_index(o.sub, o.fee_token), o.fee)
            };
            OpParts { specs: vec![s0], fee: Some((o.fee_token, o.fee)), sig: Some(sig_of(o.account, stx)?), om: None }
        }
        Op::Deposit(o) => {
            let liquidity = spec(zkl_types::GLOBAL_ACCOUNT, balance_index(o.chain, o.l1_token), o.amount, 0);
            let mut credit = spec(o.account, balance_index(o.sub, o.l2_token), o.amount, 0);
            let leaf = model.leaf(o.account);
            if leaf.owner_hi == Fr::ZERO && leaf.owner_lo == Fr::ZERO {
                credit.create_owner = Some(o.owner);
            }
            OpParts { specs: vec![liquidity, credit], fee: None, sig: None, om: None }
        }
        Op::ForcedExit(o) => {
            let stx = tx()?;
            let Tx::ForcedExit(t) = &stx.tx else { return Err(mismatch) };
            if t.initiator != o.initiator || t.target != o.target || t.fee != o.fee || t.l2_token != o.l2_token {
                return Err(mismatch);
            }
            OpParts {
                specs: vec![
                    signed(o.initiator, balance_index(o.initiator_sub, o.fee_token), o.fee),
                    spec(o.target, balance_index(o.target_sub, o.l2_token), 0, o.amount),
                    spec(zkl_types::GLOBAL_ACCOUNT, balance_index(o.chain, o.l1_token), 0, o.amount),
                ],
                fee: Some((o.fee_token, o.fee)),
                sig: Some(sig_of(o.initiator, stx)?),
                om: None,
            }
        }
        Op::OrderMatching(o) => {
            let stx = tx()?;
            let Tx::OrderMatching(t) = &stx.tx else { return Err(mismatch) };
            let (m, k) = (&t.maker.order, &t.taker.order);
            // (The rule-free builder takes the op's fields as they are, whatever the orders say.)
            if verify
                && (m.account != o.maker
                    || k.account != o.taker
                    || m.sub != o.maker_sub
                    || k.sub != o.taker_sub
                    || m.slot != o.maker_slot
                    || k.slot != o.taker_slot
                    || m.is_sell != o.maker_is_sell
                    || k.is_sell == o.maker_is_sell
                    || (m.base, m.quote, k.base, k.quote) != (o.base, o.quote, o.base, o.quote)
                    || (m.amount, k.amount) != (o.maker_order_amount, o.taker_order_amount)
                    || (m.maker_fee_bps, k.taker_fee_bps) != (o.maker_fee_bps, o.taker_fee_bps)
                    || (t.base_fill, t.quote_fill) != (o.base_fill, o.quote_fill))
            {
                return Err(mismatch);
            }
            let order_sig = |so: &zkl_types::SignedOrder| -> Result<KeyAndSig, BlockWitnessError> {
                let account = so.order.account;
                let key = model
                    .base
                    .account(account)
                    .and_then(|a| a.pubkey)
                    .ok_or(BlockWitnessError::NoPublicKey(i, account))?;
                if verify {
                    key.verify(&so.order.message(), &so.signature).map_err(|_| BlockWitnessError::BadSignature(i))?;
                }
                let s = &so.signature;
                Ok(((key.x(), key.y()), (s.r8().x(), s.r8().y(), s.s())))
            };
            // One side from the op's fields (trader, sub-account, slot, sells, order amount, fee
            // bps) and its order (price, the other fee byte, signature).
            type Trader = (u32, u8, u16, bool, u128, u8);
            let side =
                |so: &zkl_types::SignedOrder, tr: Trader, other_fee_bps: u8| -> Result<OmSide, BlockWitnessError> {
                    let (account, sub, slot, is_sell, amount, bps) = tr;
                    let (give_token, give, get_token, get) = if is_sell {
                        (o.base, o.base_fill, o.quote, o.quote_fill)
                    } else {
                        (o.quote, o.quote_fill, o.base, o.base_fill)
                    };
                    let fee = fee_of(get, bps);
                    Ok(OmSide {
                        account,
                        debit_index: balance_index(sub, give_token),
                        debit: give,
                        credit_index: balance_index(sub, get_token),
                        credit: get.wrapping_sub(fee),
                        order_index: zkl_types::order_index(sub, slot),
                        fill: o.base_fill,
                        order_amount: amount,
                        fee: (get_token, fee),
                        sig: order_sig(so)?,
                        order: OrderWitness { price: so.order.price, other_fee_bps },
                    })
                };
            let maker = (o.maker, o.maker_sub, o.maker_slot, o.maker_is_sell, o.maker_order_amount, o.maker_fee_bps);
            let taker = (o.taker, o.taker_sub, o.taker_slot, !o.maker_is_sell, o.taker_order_amount, o.taker_fee_bps);
            OpParts {
                specs: vec![],
                fee: None,
                sig: None,
                om: Some([side(&t.maker, maker, m.taker_fee_bps)?, side(&t.taker, taker, k.maker_fee_bps)?]),
            }
        }
        Op::FullExit(o) => OpParts {
            specs: vec![
                spec(o.account, balance_index(o.sub, o.l2_token), 0, o.amount),
                spec(zkl_types::GLOBAL_ACCOUNT, balance_index(o.chain, o.l1_token), 0, o.amount),
            ],
            fee: None,
            sig: None,
            om: None,
        },
    })
}

impl BlockWitness {
    /// Builds the witness of `block`, sealed by `zkl-state` from the state `pre` (committed at
    /// the start of the block, no fees pending). `txs[i]` is the signed tx op `i` came from
    /// (`None` for priority ops). `fee_slots` is the circuit's `F`.
    ///
    /// Every op is replayed with `State::apply_op_witnessed` (the state machine's rules); the
    /// circuit applies an op's writes merged into at most two account updates, whose witnesses
    /// are read from the state before the op, and the root after them must equal the state
    /// machine's after the op. The fee credits must reach the root of
    /// `State::credit_fees_witnessed`, and the result the sealed block's commitment.
    pub fn build(
        pre: &State,
        block: &SealedBlock,
        txs: &[Option<SignedTx>],
        fee_slots: usize,
    ) -> Result<Self, BlockWitnessError> {
        let w = Self::assemble(
            pre,
            &block.ops,
            txs,
            block.capacity,
            fee_slots,
            (block.number, block.timestamp),
            Mode::Checked,
        )?;
        if w.pubdata != block.pubdata
            || w.old_root != block.commitment.old_root
            || w.new_root != block.commitment.new_root
            || w.public_input != block.public_input
        {
            return Err(BlockWitnessError::NewRoot);
        }
        Ok(w)
    }

    /// Builds a witness for `ops` applied to `pre` *without* the state machine's rules (amounts
    /// wrap, nothing is refused but unsupported ops and signed ops without their tx; signatures
    /// are not checked). For soundness tests: the circuit must reject what the state machine
    /// would. The public input is the commitment of the resulting block.
    pub fn build_unchecked(
        pre: &State,
        ops: &[Op],
        txs: &[Option<SignedTx>],
        capacity: usize,
        fee_slots: usize,
        number_and_timestamp: (u32, u64),
    ) -> Result<Self, BlockWitnessError> {
        Self::assemble(pre, ops, txs, capacity, fee_slots, number_and_timestamp, Mode::Unchecked)
    }

    fn assemble(
        pre: &State,
        ops: &[Op],
        txs: &[Option<SignedTx>],
        capacity: usize,
        fee_slots: usize,
        (block_number, timestamp): (u32, u64),
        mode: Mode,
    ) -> Result<Self, BlockWitnessError> {
        let pubdata = pubdata_for_block(ops, capacity).map_err(|e| match e {
            BlockError::Capacity { needed, capacity } => BlockWitnessError::Capacity { capacity, got: needed },
            BlockError::Encode(e) => BlockWitnessError::Encode(e),
        })?;
        let mut st = pre.clone();
        if !st.pending_fees().is_empty() {
            return Err(BlockWitnessError::PreState);
        }
        let old_root = st.root();
        let mut chunks: Vec<ChunkWitness> = Vec::with_capacity(capacity);
        let mut fee_tokens_per_chunk: Vec<Option<u16>> = Vec::new();
        let mut unchecked_fees: BTreeMap<u16, u128> = BTreeMap::new();
        let mut unchecked_model = Model::new(pre, old_root);
        for (i, op) in ops.iter().enumerate() {
            let tx = txs.get(i).and_then(Option::as_ref);
            let mut cws = vec![ChunkWitness::blank(); op.chunks()];
            let apply = |model: &mut Model<'_>, parts: &OpParts, cws: &mut [ChunkWitness]| {
                for (k, spec) in parts.specs.iter().enumerate() {
                    cws[k / 2].au[k % 2] = model.apply(spec);
                }
                for (cw, side) in cws.iter_mut().zip(parts.om.iter().flatten()) {
                    cw.au = model.apply_om(side);
                    (cw.pubkey, cw.signature) = side.sig;
                    cw.order = side.order;
                }
            };
            let (parts, circuit_root) = if mode == Mode::Checked {
                let root = st.root();
                let mut model = Model::new(&st, root);
                let parts = op_parts(i, op, tx, &model, true)?;
                apply(&mut model, &parts, &mut cws);
                let root = model.root;
                (parts, root)
            } else {
                let parts = op_parts(i, op, tx, &unchecked_model, false)?;
                apply(&mut unchecked_model, &parts, &mut cws);
                (parts, unchecked_model.root)
            };
            if let Some((key, sig)) = parts.sig {
                (cws[0].pubkey, cws[0].signature) = (key, sig);
            }
            // The fee of each chunk (an op's fee is its first chunk's; OrderMatching has one per side).
            let mut chunk_fees = vec![None; cws.len()];
            chunk_fees[0] = parts.fee;
            for (f, side) in chunk_fees.iter_mut().zip(parts.om.iter().flatten()) {
                *f = Some(side.fee);
            }
            if mode == Mode::Checked {
                let ow = st.apply_op_witnessed(op).map_err(|e| BlockWitnessError::State(i, e))?;
                let state_root = st.root();
                if circuit_root != state_root || (ow.writes.is_empty() && !matches!(op, Op::Noop | Op::FullExit(_))) {
                    return Err(BlockWitnessError::RootMismatch(i, circuit_root.to_string(), state_root.to_string()));
                }
                if let (Op::ChangePubKey(o), Some(stx)) = (op, tx)
                    && let Tx::ChangePubKey(t) = &stx.tx
                {
                    st.remember_pubkey(o.account, t.new_pubkey).map_err(|e| BlockWitnessError::State(i, e))?;
                }
            } else {
                for (token, fee) in chunk_fees.iter().flatten().filter(|(_, f)| *f > 0) {
                    let acc = unchecked_fees.entry(*token).or_default();
                    *acc = acc.wrapping_add(*fee);
                }
            }
            fee_tokens_per_chunk.extend(chunk_fees.iter().map(|f| f.filter(|(_, f)| *f > 0).map(|(t, _)| t)));
            chunks.extend(cws);
        }
        chunks.resize(capacity, ChunkWitness::blank());

        // Fee slots: the block's fees per token, in token order (as the state credits them).
        let pending: Vec<(u16, u128)> = match mode {
            Mode::Checked => st.pending_fees().iter().map(|(t, a)| (*t, *a)).collect(),
            Mode::Unchecked => unchecked_fees.into_iter().collect(),
        };
        if pending.len() > fee_slots {
            return Err(BlockWitnessError::TooManyFeeTokens { slots: fee_slots, got: pending.len() });
        }
        for (chunk, fee_token) in chunks.iter_mut().zip(&fee_tokens_per_chunk) {
            if let Some(t) = fee_token {
                chunk.fee_slot = pending.iter().position(|(p, _)| p == t).unwrap_or(0);
            }
        }
        let slots: Vec<(u16, u128)> =
            pending.iter().copied().chain(std::iter::repeat((0, 0))).take(fee_slots).collect();
        let credit = |model: &mut Model<'_>| -> Vec<FeeSlotWitness> {
            slots
                .iter()
                .map(|(token, amount)| {
                    let spec = AuSpec {
                        account: zkl_types::FEE_ACCOUNT,
                        index: balance_index(0, *token),
                        credit: *amount,
                        debit: 0,
                        nonce_inc: false,
                        new_pkh: None,
                        create_owner: None,
                    };
                    FeeSlotWitness { token: *token, amount: *amount, au: model.apply(&spec) }
                })
                .collect()
        };
        let (fees, new_root) = if mode == Mode::Checked {
            let root = st.root();
            let (fees, model_root) = {
                let mut model = Model::new(&st, root);
                let fees = credit(&mut model);
                (fees, model.root)
            };
            st.credit_fees_witnessed();
            let new_root = st.root();
            if model_root != new_root {
                return Err(BlockWitnessError::NewRoot);
            }
            (fees, new_root)
        } else {
            let fees = credit(&mut unchecked_model);
            (fees, unchecked_model.root)
        };
        let commitment = BlockCommitment {
            block_number,
            timestamp,
            old_root,
            new_root,
            pubdata_hash: pubdata_hash(&pubdata),
            onchain_hashes: onchain_hashes(ops)?,
        };
        Ok(Self {
            block_number,
            timestamp,
            old_root,
            new_root,
            pubdata,
            chunks,
            fees,
            public_input: public_input(&commitment_hash(&commitment)),
        })
    }

    /// The per-chain on-chain-operation hashes of the witness's pubdata (protocol.md section 13).
    /// Read from the raw chunks (op code, chunk count, chain byte), as the circuit does, so it
    /// also works for pubdata that does not decode.
    pub fn onchain_hashes(&self) -> [Fr; MAX_CHAINS] {
        let mut out = [Fr::ZERO; MAX_CHAINS];
        let mut i = 0;
        while i * CHUNK_BYTES < self.pubdata.len() {
            let at = i * CHUNK_BYTES;
            let l = layout::of(self.pubdata[at]);
            let n = l.map_or(1, |l| l.chunks);
            let onchain = l.is_some_and(|l| l.onchain);
            let chain = usize::from(self.pubdata.get(at + layout::CHAIN.offset).copied().unwrap_or(0));
            if onchain && (1..=MAX_CHAINS).contains(&chain) {
                let end = (at + n * CHUNK_BYTES).min(self.pubdata.len());
                out[chain - 1] = zkl_types::block::onchain_hash_step(out[chain - 1], &self.pubdata[at..end]);
            }
            i += n;
        }
        out
    }

    /// A witness of the right shape (all Noop, zero values) for key generation and counts.
    pub fn blank(capacity: usize, fee_slots: usize) -> Self {
        Self {
            block_number: 0,
            timestamp: 0,
            old_root: Fr::ZERO,
            new_root: Fr::ZERO,
            pubdata: vec![0; capacity * CHUNK_BYTES],
            chunks: vec![ChunkWitness::blank(); capacity],
            fees: vec![FeeSlotWitness { token: 0, amount: 0, au: AuWitness::blank() }; fee_slots],
            public_input: Fr::ZERO,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Circuit
// ---------------------------------------------------------------------------------------------

/// The block circuit of capacity `witness.chunks.len()` chunks and `witness.fees.len()` fee
/// slots; one public input (the commitment's low 253 bits).
#[derive(Clone)]
pub struct BlockCircuit {
    pub witness: BlockWitness,
}

/// What an account update does, as circuit values. Flags are 0/1 linear combinations of the
/// (mutually exclusive) op flags.
struct AuParams {
    en: FrVar,
    account: FrVar,
    index: FrVar,
    /// Credit minus debit.
    delta: FrVar,
    nonce_inc: FrVar,
    set_key: FrVar,
    new_pkh: FrVar,
    /// Create the account (the old leaf must be empty) with owner `owner_hi/lo`.
    create: FrVar,
    /// Create only if the old leaf has no owner (Deposit), else the owner must equal `owner`.
    create_if_unowned: FrVar,
    owner_hi: FrVar,
    owner_lo: FrVar,
    /// The owner after the update must equal `owner_hi/lo`.
    owner_check: FrVar,
    /// The owner after the update must not be zero.
    owner_nonzero: FrVar,
    /// The account must not be the global asset account 1.
    not_global: FrVar,
    /// The new balance must stay within `MAX_LIQUIDITY` (below 2^112).
    cap112: FrVar,
    /// The new balance must be zero.
    zero_after: FrVar,
}

impl AuParams {
    fn disabled() -> Self {
        let z = FrVar::zero;
        Self {
            en: z(),
            account: z(),
            index: z(),
            delta: z(),
            nonce_inc: z(),
            set_key: z(),
            new_pkh: z(),
            create: z(),
            create_if_unowned: z(),
            owner_hi: z(),
            owner_lo: z(),
            owner_check: z(),
            owner_nonzero: z(),
            not_global: z(),
            cap112: z(),
            zero_after: z(),
        }
    }
}

struct LeafVars {
    nonce: FrVar,
    pkh: FrVar,
    owner_hi: FrVar,
    owner_lo: FrVar,
    balance_root: FrVar,
    order_root: FrVar,
}

fn leaf_hash(
    nonce: &FrVar,
    pkh: &FrVar,
    hi: &FrVar,
    lo: &FrVar,
    br: &FrVar,
    or: &FrVar,
) -> Result<FrVar, SynthesisError> {
    poseidon::hash(&[nonce * pow2(160) + pkh, hi.clone(), lo.clone(), br.clone(), or.clone()])
}

fn witness_path(cs: &ConstraintSystemRef<Fr>, bits: &[BoolVar], sib: &[[Fr; 3]]) -> Result<QuadPath, SynthesisError> {
    let s = sib
        .iter()
        .map(|s| -> Result<[FrVar; 3], SynthesisError> {
            Ok([
                FrVar::new_witness(cs.clone(), || Ok(s[0]))?,
                FrVar::new_witness(cs.clone(), || Ok(s[1]))?,
                FrVar::new_witness(cs.clone(), || Ok(s[2]))?,
            ])
        })
        .collect::<Result<Vec<_>, _>>()?;
    QuadPath::new(bits, s)
}

/// `cond → a == b` (one constraint).
fn cond_eq(cond: &FrVar, a: &FrVar, b: &FrVar) -> Result<(), SynthesisError> {
    (a - b).mul_equals(cond, &FrVar::zero())
}

/// `cond → x == 0`.
fn cond_zero(cond: &FrVar, x: &FrVar) -> Result<(), SynthesisError> {
    x.mul_equals(cond, &FrVar::zero())
}

fn is_zero2(a: &FrVar, b: &FrVar) -> Result<FrVar, SynthesisError> {
    Ok(FrVar::from(a.is_eq(&FrVar::zero())? & b.is_eq(&FrVar::zero())?))
}

/// An account update's leaf and balance before it, allocated.
struct AuVars {
    l: LeafVars,
    balance: FrVar,
    /// The bits of `en · pubkey_hash` (160).
    pkh_bits: Vec<BoolVar>,
}

/// Allocates an update's leaf and balance. When `en` is set, the old nonce and key hash are
/// range-checked so that their packing `nonce · 2^160 + pkh` in the leaf hash decomposes
/// uniquely.
fn alloc_au(cs: &ConstraintSystemRef<Fr>, w: &AuWitness, en: &FrVar) -> Result<AuVars, SynthesisError> {
    if w.balance_path.len() != BALANCE_TREE_DEPTH || w.account_path.len() != ACCOUNT_TREE_DEPTH {
        return Err(SynthesisError::Unsatisfiable);
    }
    let wit = |v: Fr| FrVar::new_witness(cs.clone(), || Ok(v));
    let l = LeafVars {
        nonce: wit(Fr::from(w.leaf.nonce))?,
        pkh: wit(w.leaf.pubkey_hash)?,
        owner_hi: wit(w.leaf.owner_hi)?,
        owner_lo: wit(w.leaf.owner_lo)?,
        balance_root: wit(w.leaf.balance_root)?,
        order_root: wit(w.leaf.order_root)?,
    };
    let balance = wit(Fr::from(w.balance))?;
    to_bits_le(&(en * &l.nonce), 32)?;
    let pkh_bits = to_bits_le(&(en * &l.pkh), eddsa::PUBKEY_HASH_BITS)?;
    Ok(AuVars { l, balance, pkh_bits })
}

/// An update's balance-tree part: returns the balance roots before and after.
fn balance_update(
    cs: &ConstraintSystemRef<Fr>,
    p: &AuParams,
    v: &AuVars,
    w: &AuWitness,
) -> Result<(FrVar, FrVar), SynthesisError> {
    let index_bits = to_bits_le(&p.index, 2 * BALANCE_TREE_DEPTH)?;
    let new_balance = &v.balance + &p.delta;
    to_bits_le(&(&p.en * &new_balance), 128)?;
    to_bits_le(&(&p.cap112 * &new_balance), 112)?;
    cond_zero(&p.zero_after, &new_balance)?;
    let bpath = witness_path(cs, &index_bits, &w.balance_path)?;
    merkle::roots(&v.balance, &new_balance, &bpath)
}

/// An update's leaf part (nonce, key, owner; `en` gates the new nonce's range check): returns
/// the leaf hashes before and after, with the new balance and order roots given.
fn leaf_hashes(
    p: &AuParams,
    en: &FrVar,
    l: &LeafVars,
    new_broot: &FrVar,
    new_oroot: &FrVar,
) -> Result<(FrVar, FrVar), SynthesisError> {
    let new_nonce = &l.nonce + &p.nonce_inc;
    to_bits_le(&(en * &new_nonce), 32)?;
    let new_pkh = &l.pkh + &p.set_key * (&p.new_pkh - &l.pkh);
    let old_unowned = is_zero2(&l.owner_hi, &l.owner_lo)?;
    let create = &p.create + &p.create_if_unowned * &old_unowned;
    let e = zkl_state::tree::empty_sub_tree()[BALANCE_TREE_DEPTH];
    for x in [&l.nonce, &l.pkh, &l.owner_hi, &l.owner_lo] {
        cond_zero(&create, x)?;
    }
    cond_eq(&create, &l.balance_root, &FrVar::constant(e))?;
    cond_eq(&create, &l.order_root, &FrVar::constant(e))?;
    let new_hi = &l.owner_hi + &create * (&p.owner_hi - &l.owner_hi);
    let new_lo = &l.owner_lo + &create * (&p.owner_lo - &l.owner_lo);
    cond_eq(&p.owner_check, &new_hi, &p.owner_hi)?;
    cond_eq(&p.owner_check, &new_lo, &p.owner_lo)?;
    cond_zero(&p.owner_nonzero, &is_zero2(&new_hi, &new_lo)?)?;
    let is_global = FrVar::from(p.account.is_eq(&FrVar::constant(Fr::from(zkl_types::GLOBAL_ACCOUNT)))?);
    cond_zero(&p.not_global, &is_global)?;
    let old_hash = leaf_hash(&l.nonce, &l.pkh, &l.owner_hi, &l.owner_lo, &l.balance_root, &l.order_root)?;
    let new_hash = leaf_hash(&new_nonce, &new_pkh, &new_hi, &new_lo, new_broot, new_oroot)?;
    Ok((old_hash, new_hash))
}

/// One account update on `root` (a fee slot's credit); returns the new root.
fn account_update(
    cs: &ConstraintSystemRef<Fr>,
    root: &FrVar,
    p: &AuParams,
    w: &AuWitness,
) -> Result<FrVar, SynthesisError> {
    let v = alloc_au(cs, w, &p.en)?;
    let account_bits = to_bits_le(&p.account, 2 * ACCOUNT_TREE_DEPTH)?;
    let (old_broot, new_broot) = balance_update(cs, p, &v, w)?;
    cond_eq(&p.en, &old_broot, &v.l.balance_root)?;
    let (old_hash, new_hash) = leaf_hashes(p, &p.en, &v.l, &new_broot, &v.l.order_root)?;
    let apath = witness_path(cs, &account_bits, &w.account_path)?;
    let (old_root, new_root) = merkle::roots(&old_hash, &new_hash, &apath)?;
    cond_eq(&p.en, &old_root, root)?;
    Ok(root + &p.en * (&new_root - root))
}

/// A chunk's two account updates on `root`, in order; returns the new root.
///
/// When `om` is set (an OrderMatching chunk) they are fused into one update of AU0's account:
/// AU1's balance update continues AU0's balance tree (its old root is AU0's new one), AU1's
/// account path is a depth-11 path of AU0's order tree replacing `order_old` by `order_new`,
/// and AU0's new leaf takes both new sub-tree roots; AU1 changes no account leaf itself.
#[allow(clippy::too_many_arguments)]
fn chunk_updates(
    cs: &ConstraintSystemRef<Fr>,
    root: &FrVar,
    p: [&AuParams; 2],
    v: [&AuVars; 2],
    w: &[AuWitness; 2],
    om: (&FrVar, &BoolVar),
    order_old: &FrVar,
    order_new: &FrVar,
) -> Result<FrVar, SynthesisError> {
    let ([p0, p1], [v0, v1], (om, om_b)) = (p, v, om);
    let account_bits0 = to_bits_le(&p0.account, 2 * ACCOUNT_TREE_DEPTH)?;
    let account_bits1 = to_bits_le(&p1.account, 2 * ACCOUNT_TREE_DEPTH)?;
    // Balances.
    let (old_b0, new_b0) = balance_update(cs, p0, v0, &w[0])?;
    let (old_b1, new_b1) = balance_update(cs, p1, v1, &w[1])?;
    cond_eq(&p0.en, &old_b0, &v0.l.balance_root)?;
    let expected_b1 = &v1.l.balance_root + om * (&new_b0 - &v1.l.balance_root);
    cond_eq(&p1.en, &old_b1, &expected_b1)?;
    // AU1's account leaf (or, fused, the order slot) on its depth-12 (or 11) path.
    let en_leaf1 = &p1.en - om;
    let (old_h1, new_h1) = leaf_hashes(p1, &p1.en, &v1.l, &new_b1, &v1.l.order_root)?;
    let old_leaf1 = &old_h1 + om * (order_old - &old_h1);
    let new_leaf1 = &new_h1 + om * (order_new - &new_h1);
    let path1 = witness_path(cs, &account_bits1, &w[1].account_path)?;
    let (old_r1, new_r1) = merkle::roots_short_or_full(&old_leaf1, &new_leaf1, &path1, om_b)?;
    // AU0's account leaf, with the fused sub-tree roots.
    let new_broot0 = &new_b0 + om * (&new_b1 - &new_b0);
    let new_oroot0 = &v0.l.order_root + om * (&new_r1 - &v0.l.order_root);
    let (old_h0, new_h0) = leaf_hashes(p0, &p0.en, &v0.l, &new_broot0, &new_oroot0)?;
    let path0 = witness_path(cs, &account_bits0, &w[0].account_path)?;
    let (old_r0, new_r0) = merkle::roots(&old_h0, &new_h0, &path0)?;
    cond_eq(&p0.en, &old_r0, root)?;
    let root = root + &p0.en * (&new_r0 - root);
    // AU1's old root: the state root after AU0, or (fused) AU0's order root.
    let expected_r1 = &root + om * (&v0.l.order_root - &root);
    cond_eq(&p1.en, &old_r1, &expected_r1)?;
    Ok(&root + &en_leaf1 * (&new_r1 - &root))
}

/// Per-block values threaded through the chunks.
struct BlockState {
    root: FrVar,
    /// The previous chunk started a ForcedExit (this chunk makes its liquidity debit).
    prev_fe: FrVar,
    /// The previous chunk started an OrderMatching (this chunk is its taker side).
    prev_om: FrVar,
    /// The previous chunk's order price (the maker's, for the taker's limit).
    prev_price: FrVar,
    remaining: FrVar,
    onchain: [FrVar; MAX_CHAINS],
    fee_tokens: Vec<FrVar>,
    fee_acc: Vec<FrVar>,
}

/// Byte-field accessor over an op's window (big-endian fields).
struct Window<'a> {
    bytes: &'a [UInt8<Fr>],
    /// Where the op starts in `bytes`.
    base: usize,
}

impl Window<'_> {
    fn bits(&self, start: usize, len: usize) -> Result<Vec<BoolVar>, SynthesisError> {
        let at = self.base + start;
        bytes_be_to_bits_le(&self.bytes[at..at + len])
    }
    fn num(&self, start: usize, len: usize) -> Result<FrVar, SynthesisError> {
        Ok(from_bits_le(&self.bits(start, len)?))
    }
    /// A field of the layout table.
    fn field(&self, f: PubdataField) -> Result<FrVar, SynthesisError> {
        self.num(f.offset, f.len)
    }
    /// The high and low 16 bytes of a 32-byte address field.
    fn address(&self, f: PubdataField) -> Result<(FrVar, FrVar), SynthesisError> {
        debug_assert_eq!(f.len, 32);
        Ok((self.num(f.offset, 16)?, self.num(f.offset + 16, 16)?))
    }
    /// The number of set bits in bytes `[start, start + len)` (zero iff all are zero).
    fn popcount(&self, start: usize, len: usize) -> Result<FrVar, SynthesisError> {
        Ok(self.bits(start, len)?.into_iter().fold(FrVar::zero(), |acc, b| acc + FrVar::from(b)))
    }
    /// Bits 5..8 of a sub-account byte (zero iff the sub-account is below 32).
    fn sub_high(&self, at: usize) -> Result<FrVar, SynthesisError> {
        Ok(self.bits(at, 1)?[5..].iter().fold(FrVar::zero(), |acc, b| acc + FrVar::from(b.clone())))
    }
}

fn sum(terms: impl IntoIterator<Item = FrVar>) -> FrVar {
    terms.into_iter().fold(FrVar::zero(), |acc, t| acc + t)
}

fn chunk_gadget(
    cs: &ConstraintSystemRef<Fr>,
    bs: &mut BlockState,
    window: &Window<'_>,
    w: &ChunkWitness,
) -> Result<(), SynthesisError> {
    let one = FrVar::one();
    let c = |v: u64| FrVar::constant(Fr::from(v));

    // Op start and flags.
    let is_start = bs.remaining.is_eq(&FrVar::zero())?;
    let start = FrVar::from(is_start.clone());
    let opcode = window.field(PubdataField::OP)?;
    let opcode_value = opcode.value().ok();
    let start_value = is_start.value().ok();
    let flags: Vec<FrVar> = SUPPORTED_OPS
        .iter()
        .map(|(code, _)| {
            BoolVar::new_witness(cs.clone(), || {
                let (s, o) = (start_value.ok_or(SynthesisError::AssignmentMissing)?, opcode_value);
                Ok(s && o == Some(Fr::from(*code)))
            })
            .map(FrVar::from)
        })
        .collect::<Result<_, _>>()?;
    sum(flags.iter().cloned()).enforce_equal(&start)?;
    sum(SUPPORTED_OPS.iter().zip(&flags).map(|((code, _), f)| f * Fr::from(*code)))
        .enforce_equal(&(&start * &opcode))?;
    let not_start_rem = (&one - &start) * (&bs.remaining - &one);
    bs.remaining = sum(SUPPORTED_OPS.iter().zip(&flags).map(|((_, n), f)| f * Fr::from(*n as u64 - 1))) + not_start_rem;
    let [f_noop, f_dep, f_ttn, f_wd, f_tr, f_cpk, f_fe, f_om, f_fx] =
        [0, 1, 2, 3, 4, 5, 6, 7, 8].map(|k| flags[k].clone());
    // This chunk is the second of a ForcedExit or OrderMatching: the op's fields relative to
    // the previous chunk.
    let g_fe = std::mem::replace(&mut bs.prev_fe, f_fe.clone());
    let g_om = std::mem::replace(&mut bs.prev_om, f_om.clone());
    let prev = Window { bytes: window.bytes, base: 0 };
    // An OrderMatching chunk: the maker's side (its first chunk) or the taker's (its second).
    let om = &f_om + &g_om;
    let om_b = BoolVar::new_witness(cs.clone(), || om.value().map(|v| v == Fr::ONE))?;
    FrVar::from(om_b.clone()).enforce_equal(&om)?;

    // Padding (the bytes after an op's last field) and sub-account ranges per op.
    let pad = |f: &FrVar, l: OpLayout| {
        let used = l.fields.last().map_or(PubdataField::OP.end(), |f| f.end());
        cond_zero(f, &window.popcount(used, l.bytes() - used)?)
    };
    pad(&f_noop, layout::NOOP)?;
    pad(&f_tr, layout::transfer::LAYOUT)?;
    pad(&f_ttn, layout::transfer_to_new::LAYOUT)?;
    pad(&f_dep, layout::deposit::LAYOUT)?;
    pad(&f_cpk, layout::change_pubkey::LAYOUT)?;
    pad(&f_fe, layout::forced_exit::LAYOUT)?;
    pad(&f_om, layout::order_matching::LAYOUT)?;
    pad(&f_fx, layout::full_exit::LAYOUT)?;
    use layout::{change_pubkey as cpk_l, deposit as dep_l, forced_exit as fe_l, full_exit as fx_l};
    use layout::{order_matching as om_l, transfer as tr_l, transfer_to_new as ttn_l, withdraw as wd_l};
    // OrderMatching: taker_sub · 2 + maker_is_sell in one byte.
    let om_b8 = window.bits(om_l::TAKER_SUB_SELL.offset, 1)?;
    let prev_b8 = prev.bits(om_l::TAKER_SUB_SELL.offset, 1)?;
    let om_flags_high = FrVar::from(om_b8[6].clone()) + FrVar::from(om_b8[7].clone());
    cond_zero(&f_om, &(window.sub_high(om_l::MAKER_SUB.offset)? + om_flags_high))?;
    cond_zero(&f_fe, &(window.sub_high(fe_l::INITIATOR_SUB.offset)? + window.sub_high(fe_l::TARGET_SUB.offset)?))?;
    cond_zero(&f_tr, &(window.sub_high(tr_l::FROM_SUB.offset)? + window.sub_high(tr_l::TO_SUB.offset)?))?;
    cond_zero(&f_ttn, &(window.sub_high(ttn_l::FROM_SUB.offset)? + window.sub_high(ttn_l::TO_SUB.offset)?))?;
    // Deposit, Withdraw, ChangePubKey and FullExit share chain, account and sub (checked above).
    let sub_high = window.sub_high(dep_l::SUB.offset)?;
    for f in [&f_dep, &f_wd, &f_cpk, &f_fx] {
        cond_zero(f, &sub_high)?;
    }

    // Fields, from the layout table.
    let tr = (
        window.field(tr_l::FROM)?,
        window.field(tr_l::TO)?,
        window.field(tr_l::FROM_SUB)?,
        window.field(tr_l::TO_SUB)?,
        window.field(tr_l::TOKEN)?,
    );
    let ttn = (
        window.field(ttn_l::FROM)?,
        window.field(ttn_l::FROM_SUB)?,
        window.field(ttn_l::TO)?,
        window.field(ttn_l::TO_SUB)?,
        window.field(ttn_l::TOKEN)?,
    );
    let ttn_owner = window.address(ttn_l::TO_OWNER)?;
    let (chain, account, sub) = (window.field(dep_l::CHAIN)?, window.field(dep_l::ACCOUNT)?, window.field(dep_l::SUB)?);
    let dep_owner = window.address(dep_l::OWNER)?;
    let dep = (
        window.field(dep_l::L1_TOKEN)?,
        window.field(dep_l::L2_TOKEN)?,
        window.field(dep_l::AMOUNT)?,
        dep_owner.0,
        dep_owner.1,
    );
    let wd_to = window.address(wd_l::TO)?;
    let wd =
        (window.field(wd_l::L2_TOKEN)?, window.field(wd_l::L1_TOKEN)?, window.field(wd_l::AMOUNT)?, wd_to.0, wd_to.1);
    let cpk_pkh = window.field(cpk_l::NEW_PUBKEY_HASH)?;
    // The 20-byte owner as the high (its first 4 bytes) and low 16 bytes of a padded address.
    let cpk_owner = (window.num(cpk_l::OWNER.offset, 4)?, window.num(cpk_l::OWNER.offset + 4, 16)?);
    let cpk_nonce = window.field(cpk_l::NONCE)?;
    let cpk_fee_token = window.field(cpk_l::FEE_TOKEN)?;
    let fe = (
        window.field(fe_l::INITIATOR)?,
        window.field(fe_l::INITIATOR_SUB)?,
        window.field(fe_l::TARGET)?,
        window.field(fe_l::TARGET_SUB)?,
        window.field(fe_l::L2_TOKEN)?,
    );
    let (fe_l1, fe_fee_token, fe_amount) =
        (window.field(fe_l::L1_TOKEN)?, window.field(fe_l::FEE_TOKEN)?, window.field(fe_l::AMOUNT)?);
    let fe_owner = window.address(fe_l::TARGET_OWNER)?;
    // OrderMatching, for this chunk's trader: the maker's fields from this chunk, the taker's from
    // the previous one (the op's first chunk).
    let sel = |a: FrVar, b: FrVar| -> FrVar { &f_om * a + &g_om * b };
    let om_account = sel(window.field(om_l::MAKER)?, prev.field(om_l::TAKER)?);
    let om_sub = sel(window.field(om_l::MAKER_SUB)?, from_bits_le(&prev_b8[1..]));
    let om_slot = sel(window.field(om_l::MAKER_SLOT)?, prev.field(om_l::TAKER_SLOT)?);
    let om_base = sel(window.field(om_l::BASE)?, prev.field(om_l::BASE)?);
    let om_quote = sel(window.field(om_l::QUOTE)?, prev.field(om_l::QUOTE)?);
    let om_bps = sel(window.field(om_l::MAKER_FEE_BPS)?, prev.field(om_l::TAKER_FEE_BPS)?);
    // This trader sells (the taker is on the maker's other side).
    let om_sell = sel(FrVar::from(om_b8[0].clone()), FrVar::one() - FrVar::from(prev_b8[0].clone()));
    let other_bps = FrVar::new_witness(cs.clone(), || Ok(Fr::from(w.order.other_fee_bps)))?;
    to_bits_le(&other_bps, 8)?;
    let price = FrVar::new_witness(cs.clone(), || Ok(Fr::from(w.order.price)))?;
    let price_bits = to_bits_le(&price, 128)?;
    // FullExit (chain, account, sub as Deposit).
    let fx_owner = window.address(fx_l::OWNER)?;
    let (fx_l1, fx_l2, fx_dec) =
        (window.field(fx_l::L1_TOKEN)?, window.field(fx_l::L2_TOKEN)?, window.field(fx_l::L1_DECIMALS)?);
    let fx_amount = &f_fx * window.field(fx_l::AMOUNT)?;
    // The liquidity debit of a ForcedExit that started in the previous chunk.
    let (g_chain, g_l1, g_amount) = (prev.field(fe_l::CHAIN)?, prev.field(fe_l::L1_TOKEN)?, prev.field(fe_l::AMOUNT)?);

    // Amounts and fees (packed values selected, then unpacked once).
    let packed_amount = &f_tr * window.field(tr_l::AMOUNT)?
        + &f_ttn * window.field(ttn_l::AMOUNT)?
        + sel(window.field(om_l::BASE_FILL)?, prev.field(om_l::BASE_FILL)?);
    let amount_packed = unpack_amount(&packed_amount)?;
    let base_fill = &om * &amount_packed;
    let quote_fill = unpack_amount(&sel(window.field(om_l::QUOTE_FILL)?, prev.field(om_l::QUOTE_FILL)?))?;
    let order_amount =
        unpack_amount(&sel(window.field(om_l::MAKER_ORDER_AMOUNT)?, prev.field(om_l::TAKER_ORDER_AMOUNT)?))?;
    let packed_fee = &f_tr * window.field(tr_l::FEE)?
        + &f_ttn * window.field(ttn_l::FEE)?
        + &f_wd * window.field(wd_l::FEE)?
        + &f_cpk * window.field(cpk_l::FEE)?
        + &f_fe * window.field(fe_l::FEE)?;
    let fee = unpack_fee(&packed_fee)?;
    let amount = &amount_packed + &f_dep * &dep.2 + &f_wd * &wd.2;
    let fee_token = &f_tr * &tr.4 + &f_ttn * &ttn.4 + &f_wd * &wd.0 + &f_cpk * &cpk_fee_token + &f_fe * &fe_fee_token;

    let idx = |sub: &FrVar, token: &FrVar| sub * pow2(16) + token;
    let global = FrVar::constant(Fr::from(zkl_types::GLOBAL_ACCOUNT));
    let user = &f_tr + &f_ttn + &f_wd + &f_cpk + &f_fe; // signed ops: AU0 is the signer

    // OrderMatching: this trader gives `om_give` of one token and receives `om_received` of the
    // other, minus the fee `floor(received · bps / 10000)` (quotient and remainder checked).
    let sbq = &om_sell * (&om_base - &om_quote);
    let om_recv_token = &om_base - &sbq;
    let sd = &om_sell * (&base_fill - &quote_fill);
    let om_give = &quote_fill + &sd;
    let om_received = &base_fill - &sd;
    let (rv, bv) = (om_received.value().ok(), om_bps.value().ok());
    let fee_parts = move || -> Result<(Fr, Fr), SynthesisError> {
        let (r, b) = (rv.ok_or(SynthesisError::AssignmentMissing)?, bv.ok_or(SynthesisError::AssignmentMissing)?);
        let product = fr_to_biguint(&r) * fr_to_biguint(&b);
        let q = &product / 10_000u32;
        let rem = &product % 10_000u32;
        Ok((Fr::from(q), Fr::from(rem)))
    };
    let om_fee = FrVar::new_witness(cs.clone(), || fee_parts().map(|x| x.0))?;
    let om_fee_rem = FrVar::new_witness(cs.clone(), || fee_parts().map(|x| x.1))?;
    om_received.mul_equals(&om_bps, &(&om_fee * Fr::from(10_000u64) + &om_fee_rem))?;
    to_bits_le(&om_fee, 128)?;
    to_bits_le(&om_fee_rem, 14)?;
    to_bits_le(&(FrVar::constant(Fr::from(9_999u64)) - &om_fee_rem), 14)?;
    to_bits_le(&(&om * Fr::from(u64::from(zkl_types::MAX_FEE_BPS)) - &om_bps), 7)?;
    // Non-zero fills, order amount and price; different tokens.
    let is_zero = |x: &FrVar| -> Result<FrVar, SynthesisError> { Ok(FrVar::from(x.is_eq(&FrVar::zero())?)) };
    cond_zero(&f_om, &is_zero(&base_fill)?)?;
    cond_zero(&f_om, &is_zero(&quote_fill)?)?;
    cond_zero(&om, &is_zero(&order_amount)?)?;
    cond_zero(&om, &is_zero(&price)?)?;
    cond_zero(&f_om, &FrVar::from(om_base.is_eq(&om_quote)?))?;
    // Execution at the maker's price: quote_fill · 10^18 = base_fill · price as integers. With
    // price = ph · 2^64 + pl, A = base_fill · ph < 2^124 bounds both sides below the modulus.
    let (pl, ph) = (from_bits_le(&price_bits[..64]), from_bits_le(&price_bits[64..]));
    let prod_hi = &base_fill * &ph;
    let prod_lo = &base_fill * &pl;
    cond_zero(&f_om, &(&prod_hi * pow2(64) + &prod_lo - &quote_fill * Fr::from(zkl_types::PRICE_SCALE)))?;
    // The taker's limit: a selling taker gets at least its price, a buying one pays at most it.
    let d = &price - &bs.prev_price;
    let limit = &d - &om_sell * (&d + &d);
    to_bits_le(&(&f_om * (&prod_hi * Fr::from(16u64)) + &g_om * &limit), 128)?;
    bs.prev_price = price.clone();

    // AU0: the signer's debit (and nonce, key), or the Deposit's liquidity credit; for an
    // OrderMatching side the trader's account and the balance it gives.
    let mut p0 = AuParams::disabled();
    // (In a ForcedExit's second chunk: the liquidity debit.)
    p0.en = &user + &f_dep + &g_fe + &om + &f_fx;
    p0.account = &f_tr * &tr.0
        + &f_ttn * &ttn.0
        + (&f_wd + &f_cpk + &f_fx) * &account
        + &f_fe * &fe.0
        + (&f_dep + &g_fe) * &global
        + &om_account;
    p0.index = &f_tr * idx(&tr.2, &tr.4)
        + &f_ttn * idx(&ttn.1, &ttn.4)
        + &f_wd * idx(&sub, &wd.0)
        + &f_cpk * idx(&sub, &cpk_fee_token)
        + &f_fe * idx(&fe.1, &fe_fee_token)
        + &f_dep * idx(&chain, &dep.0)
        + &g_fe * idx(&g_chain, &g_l1)
        + idx(&om_sub, &(&om_quote + &sbq))
        + &f_fx * idx(&sub, &fx_l2);
    p0.delta = &f_dep * &amount - (&user * (&amount + &fee)) - &g_fe * &g_amount - &om_give - &fx_amount;
    p0.nonce_inc = user.clone();
    p0.set_key = f_cpk.clone();
    p0.new_pkh = cpk_pkh.clone();
    p0.owner_hi = cpk_owner.0.clone();
    p0.owner_lo = cpk_owner.1.clone();
    p0.owner_check = f_cpk.clone();
    p0.owner_nonzero = f_cpk.clone();
    p0.not_global = &user + &om;
    p0.cap112 = f_dep.clone();

    // AU1: the recipient's credit (Transfer, TransferToNew, Deposit) or the liquidity debit;
    // for an OrderMatching side the balance the trader receives and its order slot (fused).
    let mut p1 = AuParams::disabled();
    // (ForcedExit: the target, without a key, gives its whole non-zero balance.)
    p1.en = &f_tr + &f_ttn + &f_dep + &f_wd + &f_fe + &om + &f_fx;
    p1.account = &f_tr * &tr.1
        + &f_ttn * &ttn.2
        + &f_dep * &account
        + (&f_wd + &f_fx) * &global
        + &f_fe * &fe.2
        + idx(&om_sub, &om_slot);
    p1.index = &f_tr * idx(&tr.3, &tr.4)
        + &f_ttn * idx(&ttn.3, &ttn.4)
        + &f_dep * idx(&sub, &dep.1)
        + &f_wd * idx(&chain, &wd.1)
        + &f_fe * idx(&fe.3, &fe.4)
        + idx(&om_sub, &om_recv_token)
        + &f_fx * idx(&chain, &fx_l1);
    p1.delta = (&f_tr + &f_ttn + &f_dep) * &amount - &f_wd * &amount - &f_fe * &fe_amount + &om_received
        - &om_fee
        - &fx_amount;
    p1.create = f_ttn.clone();
    p1.create_if_unowned = f_dep.clone();
    p1.owner_hi = &f_ttn * &ttn_owner.0 + &f_dep * &dep.3 + &f_fe * &fe_owner.0;
    p1.owner_lo = &f_ttn * &ttn_owner.1 + &f_dep * &dep.4 + &f_fe * &fe_owner.1;
    p1.owner_check = &f_ttn + &f_dep + &f_fe;
    p1.owner_nonzero = &f_tr + &f_ttn + &f_dep + &f_fe;
    p1.not_global = &f_tr + &f_ttn + &f_dep + &f_fe;
    p1.zero_after = f_fe.clone();

    let v0 = alloc_au(cs, &w.au[0], &p0.en)?;
    let v1 = alloc_au(cs, &w.au[1], &p1.en)?;
    let (l0, l1) = (&v0.l, &v1.l);
    // The order slot (OrderMatching: AU1's leaf carries it): nonce n = the order's nonce,
    // residue r < 2^128; available = r, or the order amount when r = 0; the fill must not
    // exceed it; a completely filled slot moves to (n + 1, 0). AU1 range-checks n and n + full
    // below 2^32 and r below 2^160.
    cond_zero(&om, &sum(v1.pkh_bits[128..].iter().map(|b| FrVar::from(b.clone()))))?;
    let (slot_nonce, residue) = (&l1.nonce, &l1.pkh);
    let available = residue + is_zero(residue)? * (&order_amount - residue);
    let left = &om * (&available - &base_fill);
    // FullExit: the amount is min(balance, liquidity) (AU 0's and AU 1's old balances) rounded
    // down to 10^(18 − l1_decimals), if the account's owner is the (non-zero) requester and the
    // account is not account 1, else 0. `le` = balance ≤ liquidity, checked by the range check
    // shared with the slot's `left` (liquidity − balance, or balance − liquidity − 1).
    let (bal, liq) = (&v0.balance, &v1.balance);
    let (bv, lv) = (bal.value().ok(), liq.value().ok());
    let le = BoolVar::new_witness(cs.clone(), || match (bv, lv) {
        (Some(b), Some(l)) => Ok(fr_to_biguint(&b) <= fr_to_biguint(&l)),
        _ => Err(SynthesisError::AssignmentMissing),
    })?;
    let diff = bal - liq;
    let cmp = &diff - FrVar::one() + FrVar::from(le.clone()) * (FrVar::one() - &diff - &diff);
    to_bits_le(&(&left + &f_fx * &cmp), 128)?;
    let capped = liq + FrVar::from(le) * &diff;
    // The unit 10^(18 − d) for d = l1_decimals ≤ 18 (d is replaced by 31 outside a FullExit).
    let dsel = &f_fx * (&fx_dec - c(31)) + c(31);
    let ind = (0..=18u64).map(|k| Ok(FrVar::from(dsel.is_eq(&c(k))?))).collect::<Result<Vec<_>, SynthesisError>>()?;
    sum(ind.iter().cloned()).enforce_equal(&f_fx)?;
    let unit = sum(ind.iter().zip(0..=18u32).map(|(i, k)| i * Fr::from(10u64.pow(18 - k))));
    let (cv, uv) = (capped.value().ok(), unit.value().ok());
    let div = move || -> Result<(Fr, Fr), SynthesisError> {
        let (x, u) = (cv.ok_or(SynthesisError::AssignmentMissing)?, uv.ok_or(SynthesisError::AssignmentMissing)?);
        let (x, u) = (fr_to_biguint(&x), fr_to_biguint(&u));
        if u.bits() == 0 { Ok((Fr::ZERO, Fr::ZERO)) } else { Ok((Fr::from(&x / &u), Fr::from(&x % &u))) }
    };
    let fx_q = FrVar::new_witness(cs.clone(), || div().map(|x| x.0))?;
    let fx_r = FrVar::new_witness(cs.clone(), || div().map(|x| x.1))?;
    to_bits_le(&fx_q, 128)?;
    to_bits_le(&fx_r, 60)?;
    to_bits_le(&(&f_fx * (&unit - FrVar::one() - &fx_r)), 60)?;
    cond_zero(&f_fx, &(&capped - &fx_q * &unit - &fx_r))?;
    let owner_is = l0.owner_hi.is_eq(&fx_owner.0)? & l0.owner_lo.is_eq(&fx_owner.1)?;
    let owned = !(l0.owner_hi.is_eq(&FrVar::zero())? & l0.owner_lo.is_eq(&FrVar::zero())?);
    let eligible = owner_is & owned & !account.is_eq(&global)?;
    cond_eq(&f_fx, &fx_amount, &(FrVar::from(eligible) * (&capped - &fx_r)))?;
    let full = is_zero(&left)? - (FrVar::one() - &om);
    p1.nonce_inc = full.clone();
    let order_old = slot_nonce * pow2(128) + residue;
    let order_new = (slot_nonce + &full) * pow2(128) + &left;
    bs.root = chunk_updates(cs, &bs.root, [&p0, &p1], [&v0, &v1], &w.au, (&om, &om_b), &order_old, &order_new)?;
    cond_eq(&f_cpk, &cpk_nonce, &l0.nonce)?;
    cond_zero(&f_fe, &l1.pkh)?;
    cond_zero(&f_fe, &FrVar::from(fe_amount.is_eq(&FrVar::zero())?))?;
    // No transfer to the same (account, sub-account); no matching within one sub-account.
    let om_taker_sub = from_bits_le(&om_b8[1..]);
    let same = tr.0.is_eq(&tr.1)? & tr.2.is_eq(&(&tr.3 + &f_om * (&om_taker_sub - &tr.3)))?;
    cond_zero(&(&f_tr + &f_om), &FrVar::from(same))?;

    // Signature: header per op, the signer's nonce; key hash = AU0's (or the new key for CPK).
    let header = &f_tr
        * (FrVar::constant(Fr::from(code::TRANSFER) * pow2(96))
            + &tr.0 * pow2(64)
            + &tr.2 * pow2(56)
            + &tr.3 * pow2(48)
            + &tr.4 * pow2(32))
        + &f_ttn
            * (FrVar::constant(Fr::from(code::TRANSFER) * pow2(96))
                + &ttn.0 * pow2(64)
                + &ttn.1 * pow2(56)
                + &ttn.3 * pow2(48)
                + &ttn.4 * pow2(32))
        + &f_wd
            * (FrVar::constant(Fr::from(code::WITHDRAW) * pow2(112))
                + &account * pow2(80)
                + &sub * pow2(72)
                + &chain * pow2(64)
                + &wd.0 * pow2(48)
                + &wd.1 * pow2(32))
        + &f_cpk
            * (FrVar::constant(Fr::from(code::CHANGE_PUBKEY) * pow2(96))
                + &account * pow2(64)
                + &sub * pow2(56)
                + &chain * pow2(48)
                + &cpk_fee_token * pow2(32))
        + &f_fe
            * (FrVar::constant(Fr::from(code::FORCED_EXIT) * pow2(168))
                + &fe.0 * pow2(136)
                + &fe.1 * pow2(128)
                + &fe.2 * pow2(96)
                + &fe.3 * pow2(88)
                + &chain * pow2(80)
                + &fe.4 * pow2(64)
                + &fe_l1 * pow2(48)
                + &fe_fee_token * pow2(32))
        + &om * (FrVar::constant(Fr::from(code::ORDER_MATCHING) * pow2(144)) + &l1.nonce * pow2(56))
        + &om_account * pow2(112)
        + &om_sub * pow2(104)
        + &om_slot * pow2(88)
        + &om_base * pow2(40)
        + &om_quote * pow2(24)
        + &om_sell * pow2(16)
        + (&f_om * &om_bps + &g_om * &other_bps) * pow2(8)
        + (&f_om * &other_bps + &g_om * &om_bps)
        + &user * &l0.nonce;
    let to_hi = &f_tr * &l1.owner_hi + &f_ttn * &ttn_owner.0 + &f_wd * &wd.3;
    let to_lo = &f_tr * &l1.owner_lo + &f_ttn * &ttn_owner.1 + &f_wd * &wd.4;
    let msg5 = poseidon::hash(&[header.clone(), to_hi, to_lo, amount.clone(), fee.clone()])?;
    // (ChangePubKey: header, new key hash, fee; an order: header, amount, price.)
    let e1 = &cpk_pkh + &om * (&order_amount - &cpk_pkh);
    let e2 = &fee + &om * &price;
    let msg3 = poseidon::hash(&[header.clone(), e1, e2])?;
    let msg2 = poseidon::hash(&[header, fee.clone()])?;
    let msg = &msg5 + (&f_cpk + &om) * (&msg3 - &msg5) + &f_fe * (&msg2 - &msg5);
    let signed = &user + &om;
    let sig_en = BoolVar::new_witness(cs.clone(), || signed.value().map(|v| v == Fr::ONE))?;
    FrVar::from(sig_en.clone()).enforce_equal(&signed)?;
    let a = PointVar::new_witness(cs.clone(), || Ok(w.pubkey))?;
    let expected_pkh = (&f_tr + &f_ttn + &f_wd + &f_fe + &om) * &l0.pkh + &f_cpk * &cpk_pkh;
    cond_eq(&signed, &eddsa::pubkey_hash(&a)?, &expected_pkh)?;
    let (rx, ry, s) = w.signature;
    let sig = SignatureVar {
        r8: PointVar::new_witness(cs.clone(), || Ok((rx, ry)))?,
        s: FrVar::new_witness(cs.clone(), || Ok(s))?,
    };
    eddsa::verify(&sig_en, &a, &msg, &sig)?;

    // Fee into its slot.
    let fee = &fee + &om_fee;
    let fee_token = &fee_token + &om_recv_token;
    let slots = bs.fee_tokens.len();
    let sel: Vec<FrVar> = (0..slots)
        .map(|j| BoolVar::new_witness(cs.clone(), || Ok(w.fee_slot == j)).map(FrVar::from))
        .collect::<Result<_, _>>()?;
    sum(sel.iter().cloned()).enforce_equal(&one)?;
    let mut slot_token = FrVar::zero();
    for (j, s) in sel.iter().enumerate() {
        bs.fee_acc[j] += s * &fee;
        slot_token += s * &bs.fee_tokens[j];
    }
    cond_eq(&fee, &slot_token, &fee_token)?;

    // On-chain hash of the op's chain (1..=4).
    let onchain = &f_dep + &f_wd + &f_cpk + &f_fe + &f_fx;
    let chain_sel: Vec<FrVar> = (1..=MAX_CHAINS as u64)
        .map(|k| Ok(&onchain * FrVar::from(chain.is_eq(&c(k))?)))
        .collect::<Result<_, SynthesisError>>()?;
    sum(chain_sel.iter().cloned()).enforce_equal(&onchain)?;
    let h = sum(chain_sel.iter().zip(&bs.onchain).map(|(s, h)| s * h));
    let word = |i: usize| window.num(i * CHUNK_BYTES, CHUNK_BYTES);
    let words = [word(0)?, word(1)?, word(2)?, &f_fe * word(3)?];
    let next = poseidon::hash(&[h, words[0].clone(), words[1].clone(), words[2].clone(), words[3].clone()])?;
    for (s, hk) in chain_sel.iter().zip(bs.onchain.iter_mut()) {
        *hk = &*hk + s * (&next - &*hk);
    }
    Ok(())
}

impl ConstraintSynthesizer<Fr> for BlockCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        synthesize(&cs, &self.witness, &mut Vec::new())
    }
}

/// Constraints spent by each part of a block circuit (setup-mode synthesis, no witness).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockCost {
    pub total: usize,
    /// Public input, pubdata bytes, fee-slot tokens.
    pub inputs: usize,
    /// Each chunk position's universal gadget (all equal: every op kind pays the same).
    pub chunks: Vec<usize>,
    /// Each fee slot's credit to account 0.
    pub fee_slots: Vec<usize>,
    /// Pubdata SHA-256 and the commitment (header SHA-256, decompositions, public input).
    pub commitment: usize,
}

impl BlockCost {
    pub fn measure(capacity: usize, fee_slots: usize) -> Result<Self, SynthesisError> {
        use ark_relations::gr1cs::{ConstraintSystem, OptimizationGoal, SynthesisMode};
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        let mut marks = Vec::new();
        synthesize(&cs, &BlockWitness::blank(capacity, fee_slots), &mut marks)?;
        let total = cs.num_constraints();
        let diff = |a: usize, b: usize| b.saturating_sub(a);
        let at = |k: usize| marks.get(k).copied().unwrap_or(total);
        Ok(Self {
            total,
            inputs: at(0),
            chunks: (0..capacity).map(|i| diff(at(i), at(i + 1))).collect(),
            fee_slots: (0..fee_slots).map(|j| diff(at(capacity + j), at(capacity + j + 1))).collect(),
            commitment: diff(at(capacity + fee_slots), total),
        })
    }
}

/// The name of an op code the circuit supports (`zkl_types::Op::name`).
pub fn op_name(op_code: u8) -> Option<&'static str> {
    SUPPORTED_OPS.iter().find(|(c, _)| *c == op_code).and_then(|(c, _)| zkl_types::layout::of(*c)).map(|l| l.name)
}

/// The constraints of the pubdata bytes and their SHA-256 for `bytes` bytes.
fn pubdata_cost(bytes: usize) -> Result<usize, SynthesisError> {
    use ark_relations::gr1cs::{ConstraintSystem, OptimizationGoal, SynthesisMode};
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    let data = UInt8::new_witness_vec(cs.clone(), &vec![0u8; bytes])?;
    sha256::sha256(&data)?;
    Ok(cs.num_constraints())
}

/// The constraints each supported op kind costs in the block circuit of `capacity` chunks and
/// `fee_slots` fee slots, measured (setup-mode synthesis): every chunk position runs the same
/// universal gadget, so an op costs its chunk count times the marginal cost of a chunk, which
/// is the chunk gadget ([`BlockCost::measure`]) plus one chunk's share of the pubdata bytes and
/// SHA-256 (measured as the cost of 16 more chunks, a whole number of SHA-256 blocks, over 16).
/// The block's fixed costs (fee slots, commitment header) are not included. Ops the circuit
/// does not support are left out.
pub fn constraints_per_op(capacity: usize, fee_slots: usize) -> Result<Vec<(&'static str, usize)>, SynthesisError> {
    const MORE: usize = 16;
    let cost = BlockCost::measure(capacity, fee_slots)?;
    let gadget = cost.chunks.iter().copied().max().unwrap_or(0);
    let bytes = capacity * CHUNK_BYTES;
    let share = pubdata_cost(bytes + MORE * CHUNK_BYTES)?.saturating_sub(pubdata_cost(bytes)?) / MORE;
    Ok(SUPPORTED_OPS.iter().filter_map(|(code, chunks)| Some((op_name(*code)?, chunks * (gadget + share)))).collect())
}

/// The block circuit; `marks` receives the constraint count before each chunk, before each fee
/// slot and before the commitment.
fn synthesize(cs: &ConstraintSystemRef<Fr>, w: &BlockWitness, marks: &mut Vec<usize>) -> Result<(), SynthesisError> {
    let cs = cs.clone();
    {
        let capacity = w.chunks.len();
        if w.pubdata.len() != capacity * CHUNK_BYTES || w.fees.is_empty() {
            return Err(SynthesisError::Unsatisfiable);
        }
        let public_input = FrVar::new_input(cs.clone(), || Ok(w.public_input))?;
        let old_root = FrVar::new_witness(cs.clone(), || Ok(w.old_root))?;
        let pubdata = UInt8::new_witness_vec(cs.clone(), &w.pubdata)?;
        // One chunk of zeros before the block (the previous chunk of chunk 0) and three after.
        let mut padded: Vec<UInt8<Fr>> = (0..CHUNK_BYTES).map(|_| UInt8::constant(0)).collect();
        padded.extend(pubdata.iter().cloned());
        padded.extend((0..(WINDOW_CHUNKS - 1) * CHUNK_BYTES).map(|_| UInt8::constant(0)));
        let fee_tokens = w
            .fees
            .iter()
            .map(|f| FrVar::new_witness(cs.clone(), || Ok(Fr::from(f.token))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut bs = BlockState {
            root: old_root.clone(),
            prev_fe: FrVar::zero(),
            prev_om: FrVar::zero(),
            prev_price: FrVar::zero(),
            remaining: FrVar::zero(),
            onchain: std::array::from_fn(|_| FrVar::zero()),
            fee_acc: vec![FrVar::zero(); fee_tokens.len()],
            fee_tokens,
        };
        for (i, cw) in w.chunks.iter().enumerate() {
            marks.push(cs.num_constraints());
            let window =
                Window { bytes: &padded[i * CHUNK_BYTES..(i + 1 + WINDOW_CHUNKS) * CHUNK_BYTES], base: CHUNK_BYTES };
            chunk_gadget(&cs, &mut bs, &window, cw)?;
        }
        bs.remaining.enforce_equal(&FrVar::zero())?;

        // Fees credited to account 0, sub-account 0.
        for ((f, token), acc) in w.fees.iter().zip(&bs.fee_tokens).zip(&bs.fee_acc) {
            marks.push(cs.num_constraints());
            to_bits_le(token, 16)?;
            let mut p = AuParams::disabled();
            p.en = FrVar::one();
            p.account = FrVar::constant(Fr::from(zkl_types::FEE_ACCOUNT));
            p.index = token.clone();
            p.delta = acc.clone();
            let root = account_update(&cs, &bs.root, &p, &f.au)?;
            bs.root = root;
        }

        marks.push(cs.num_constraints());
        let header = BlockHeaderVar {
            block_number: FrVar::new_witness(cs.clone(), || Ok(Fr::from(w.block_number)))?,
            timestamp: FrVar::new_witness(cs.clone(), || Ok(Fr::from(w.timestamp)))?,
            old_root,
            new_root: bs.root,
            pubdata_hash: sha256::sha256(&pubdata)?,
            onchain_hashes: bs.onchain,
        };
        header.public_input()?.enforce_equal(&public_input)
    }
}

impl BlockCircuit {
    /// The circuit of `capacity` chunks and `fee_slots` fee slots with a blank witness.
    pub fn blank(capacity: usize, fee_slots: usize) -> Self {
        Self { witness: BlockWitness::blank(capacity, fee_slots) }
    }
}
