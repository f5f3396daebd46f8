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
//!   its second).
//! - Fees: every op's fee is added to one of `F` per-block fee slots (token, amount) chosen by
//!   the prover; a non-zero fee must match its slot's token. After the last chunk every slot is
//!   credited to account 0, sub-account 0 (as `State::seal_block` does; the order of credits
//!   does not change the root, and a repeated token only splits a credit in two).
//! - On-chain ops update `onchain_hash[chain] = Poseidon(h, w1, w2, w3, w4)`.
//!
//! Supported ops: Noop, Deposit, TransferToNew, Withdraw, Transfer, ChangePubKey, ForcedExit
//! (whose third update, the liquidity debit, is made by its second chunk). FullExit and
//! OrderMatching have no flag: a block containing them is unsatisfiable and the
//! witness builder refuses them with [`BlockWitnessError::UnsupportedOp`].

use std::collections::{BTreeMap, HashMap};

use ark_ff::{AdditiveGroup, Field};
use ark_r1cs_std::GR1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::uint8::UInt8;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef};
use zkl_crypto::PublicKey;
use zkl_state::{MerkleProof, SealedBlock, State};
use zkl_types::block::{
    BlockCommitment, BlockError, commitment as commitment_hash, onchain_hashes, pubdata_for_block, pubdata_hash,
    public_input,
};
use zkl_types::op::{Op, code};
use zkl_types::{Address, SignedTx, Tx, balance_index};

use crate::bits::{bytes_be_to_bits_le, from_bits_le, to_bits_le, unpack_amount, unpack_fee};
use crate::commitment::{BlockHeaderVar, MAX_CHAINS};
use crate::ecc::PointVar;
use crate::eddsa::{self, SignatureVar};
use crate::merkle::{self, ACCOUNT_TREE_DEPTH, BALANCE_TREE_DEPTH, QuadPath};
use crate::transfer::{AccountLeaf, CHUNK_BYTES, siblings_after};
use crate::{BoolVar, Fr, FrVar, SynthesisError, poseidon, sha256};

/// Chunks an op's fields may span (ForcedExit has 4).
const WINDOW_CHUNKS: usize = 4;
/// Op codes with a flag in the chunk gadget, with their chunk counts.
pub const SUPPORTED_OPS: [(u8, usize); 7] = [
    (code::NOOP, 1),
    (code::DEPOSIT, 3),
    (code::TRANSFER_TO_NEW, 3),
    (code::WITHDRAW, 3),
    (code::TRANSFER, 1),
    (code::CHANGE_PUBKEY, 3),
    (code::FORCED_EXIT, 4),
];

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

/// The witness of one chunk position (only an op's first chunk uses its parts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkWitness {
    pub pubkey: (Fr, Fr),
    pub signature: (Fr, Fr, Fr),
    pub au: [AuWitness; 2],
    /// The fee slot this chunk's fee goes to.
    pub fee_slot: usize,
}

impl ChunkWitness {
    pub fn blank() -> Self {
        Self {
            pubkey: (Fr::ZERO, Fr::ONE),
            signature: (Fr::ZERO, Fr::ONE, Fr::ZERO),
            au: [AuWitness::blank(), AuWitness::blank()],
            fee_slot: 0,
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
    Packing(#[from] zkl_types::AmountError),
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

/// The circuit's view of the state while a block is replayed in circuit order: the state
/// before the replay plus the account updates applied since, each with its proof at the time
/// it was made, so any later proof is the earlier one with its siblings brought up to date.
struct Model<'a> {
    base: &'a State,
    leaves: HashMap<u32, AccountLeaf>,
    balances: HashMap<(u32, u32), u128>,
    account_updates: Vec<(MerkleProof, Fr)>,
    balance_updates: HashMap<u32, Vec<(MerkleProof, Fr)>>,
    root: Fr,
}

impl<'a> Model<'a> {
    /// `base` must be committed; `root` is its root.
    fn new(base: &'a State, root: Fr) -> Self {
        Self {
            base,
            leaves: HashMap::new(),
            balances: HashMap::new(),
            account_updates: Vec::new(),
            balance_updates: HashMap::new(),
            root,
        }
    }

    fn leaf(&self, account: u32) -> AccountLeaf {
        self.leaves.get(&account).cloned().unwrap_or_else(|| fields_of(self.base, account))
    }

    /// The witness of an update of (`account`, `index`) now.
    fn read(&self, account: u32, index: u32) -> AuWitness {
        let (base_balance, mut bp) = balance_proof_of(self.base, account, index);
        for (p, v) in self.balance_updates.get(&account).map(Vec::as_slice).unwrap_or_default() {
            bp.siblings = siblings_after(p, *v, &bp);
        }
        let mut ap = self.base.account_proof(account);
        for (p, v) in &self.account_updates {
            ap.siblings = siblings_after(p, *v, &ap);
        }
        AuWitness {
            leaf: self.leaf(account),
            balance: self.balances.get(&(account, index)).copied().unwrap_or(base_balance),
            balance_path: bp.siblings,
            account_path: ap.siblings,
        }
    }

    /// Applies `spec` as the circuit does (wrapping arithmetic: the circuit's range checks are
    /// what reject an overspend) and returns the update's witness.
    fn apply(&mut self, spec: &AuSpec) -> AuWitness {
        let w = self.read(spec.account, spec.index);
        let new_balance = w.balance.wrapping_add(spec.credit).wrapping_sub(spec.debit);
        let bp = MerkleProof { index: u64::from(spec.index), siblings: w.balance_path.clone() };
        let mut leaf = w.leaf.clone();
        leaf.balance_root = bp.root(Fr::from(new_balance));
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
        self.root = ap.root(leaf.hash());
        self.balance_updates.entry(spec.account).or_default().push((bp, Fr::from(new_balance)));
        self.account_updates.push((ap, leaf.hash()));
        self.balances.insert((spec.account, spec.index), new_balance);
        self.leaves.insert(spec.account, leaf);
        w
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

/// An op's account updates, fee and signer, as the circuit sees them.
struct OpParts {
    specs: Vec<AuSpec>,
    fee: Option<(u16, u128)>,
    sig: Option<KeyAndSig>,
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
        Op::Noop => OpParts { specs: vec![], fee: None, sig: None },
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
            OpParts { specs: vec![s0], fee: Some((o.fee_token, o.fee)), sig: Some(sig_of(o.account, stx)?) }
        }
        Op::Deposit(o) => {
            let liquidity = spec(zkl_types::GLOBAL_ACCOUNT, balance_index(o.chain, o.l1_token), o.amount, 0);
            let mut credit = spec(o.account, balance_index(o.sub, o.l2_token), o.amount, 0);
            let leaf = model.leaf(o.account);
            if leaf.owner_hi == Fr::ZERO && leaf.owner_lo == Fr::ZERO {
                credit.create_owner = Some(o.owner);
            }
            OpParts { specs: vec![liquidity, credit], fee: None, sig: None }
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
            }
        }
        other => return Err(BlockWitnessError::UnsupportedOp(i, other.name())),
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
            BlockError::Amount(a) => BlockWitnessError::Packing(a),
        })?;
        let mut st = pre.clone();
        if !st.pending_fees().is_empty() {
            return Err(BlockWitnessError::PreState);
        }
        let old_root = st.root();
        let mut chunks: Vec<ChunkWitness> = Vec::with_capacity(capacity);
        let mut fee_tokens_per_op: Vec<Option<u16>> = Vec::new();
        let mut unchecked_fees: BTreeMap<u16, u128> = BTreeMap::new();
        let mut unchecked_model = Model::new(pre, old_root);
        for (i, op) in ops.iter().enumerate() {
            let tx = txs.get(i).and_then(Option::as_ref);
            let mut cws = vec![ChunkWitness::blank(); op.chunks()];
            let (parts, circuit_root) = if mode == Mode::Checked {
                let root = st.root();
                let mut model = Model::new(&st, root);
                let parts = op_parts(i, op, tx, &model, true)?;
                for (k, spec) in parts.specs.iter().enumerate() {
                    cws[k / 2].au[k % 2] = model.apply(spec);
                }
                let root = model.root;
                (parts, root)
            } else {
                let parts = op_parts(i, op, tx, &unchecked_model, false)?;
                for (k, spec) in parts.specs.iter().enumerate() {
                    cws[k / 2].au[k % 2] = unchecked_model.apply(spec);
                }
                (parts, unchecked_model.root)
            };
            if let Some((key, sig)) = parts.sig {
                (cws[0].pubkey, cws[0].signature) = (key, sig);
            }
            if mode == Mode::Checked {
                let ow = st.apply_op_witnessed(op).map_err(|e| BlockWitnessError::State(i, e))?;
                let state_root = st.root();
                if circuit_root != state_root || (ow.writes.is_empty() && !matches!(op, Op::Noop)) {
                    return Err(BlockWitnessError::RootMismatch(i, circuit_root.to_string(), state_root.to_string()));
                }
                if let (Op::ChangePubKey(o), Some(stx)) = (op, tx)
                    && let Tx::ChangePubKey(t) = &stx.tx
                {
                    st.remember_pubkey(o.account, t.new_pubkey).map_err(|e| BlockWitnessError::State(i, e))?;
                }
            } else if let Some((token, fee)) = parts.fee.filter(|(_, f)| *f > 0) {
                let acc = unchecked_fees.entry(token).or_default();
                *acc = acc.wrapping_add(fee);
            }
            fee_tokens_per_op.push(parts.fee.filter(|(_, f)| *f > 0).map(|(t, _)| t));
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
        let mut chunk_index = 0;
        for (op, fee_token) in ops.iter().zip(&fee_tokens_per_op) {
            if let Some(t) = fee_token {
                chunks[chunk_index].fee_slot = pending.iter().position(|(p, _)| p == t).unwrap_or(0);
            }
            chunk_index += op.chunks();
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
            let code = self.pubdata[at];
            let n = zkl_types::op::chunks_of(code).unwrap_or(1);
            let onchain = matches!(
                code,
                code::DEPOSIT | code::WITHDRAW | code::FULL_EXIT | code::CHANGE_PUBKEY | code::FORCED_EXIT
            );
            let chain = usize::from(self.pubdata.get(at + 1).copied().unwrap_or(0));
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

/// One account update on `root`; returns the old leaf and the new root.
fn account_update(
    cs: &ConstraintSystemRef<Fr>,
    root: &FrVar,
    p: &AuParams,
    w: &AuWitness,
) -> Result<(LeafVars, FrVar), SynthesisError> {
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
    let account_bits = to_bits_le(&p.account, 2 * ACCOUNT_TREE_DEPTH)?;
    let index_bits = to_bits_le(&p.index, 2 * BALANCE_TREE_DEPTH)?;

    // Balance.
    let balance = wit(Fr::from(w.balance))?;
    let new_balance = &balance + &p.delta;
    to_bits_le(&(&p.en * &new_balance), 128)?;
    to_bits_le(&(&p.cap112 * &new_balance), 112)?;
    cond_zero(&p.zero_after, &new_balance)?;
    let bpath = witness_path(cs, &index_bits, &w.balance_path)?;
    let (old_broot, new_broot) = merkle::roots(&balance, &new_balance, &bpath)?;
    cond_eq(&p.en, &old_broot, &l.balance_root)?;

    // Nonce, key, owner. The old nonce and key hash are range-checked so that their packing
    // `nonce · 2^160 + pkh` in the leaf hash decomposes uniquely.
    to_bits_le(&(&p.en * &l.nonce), 32)?;
    to_bits_le(&(&p.en * &l.pkh), eddsa::PUBKEY_HASH_BITS)?;
    let new_nonce = &l.nonce + &p.nonce_inc;
    to_bits_le(&(&p.en * &new_nonce), 32)?;
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

    // Account leaf.
    let old_hash = leaf_hash(&l.nonce, &l.pkh, &l.owner_hi, &l.owner_lo, &l.balance_root, &l.order_root)?;
    let new_hash = leaf_hash(&new_nonce, &new_pkh, &new_hi, &new_lo, &new_broot, &l.order_root)?;
    let apath = witness_path(cs, &account_bits, &w.account_path)?;
    let (old_root, new_root) = merkle::roots(&old_hash, &new_hash, &apath)?;
    cond_eq(&p.en, &old_root, root)?;
    let out = root + &p.en * (&new_root - root);
    Ok((l, out))
}

/// Per-block values threaded through the chunks.
struct BlockState {
    root: FrVar,
    /// The previous chunk started a ForcedExit (this chunk makes its liquidity debit).
    prev_fe: FrVar,
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
    let opcode = window.num(0, 1)?;
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
    let [f_noop, f_dep, f_ttn, f_wd, f_tr, f_cpk, f_fe] = [0, 1, 2, 3, 4, 5, 6].map(|k| flags[k].clone());
    // This chunk is the second of a ForcedExit: the op's fields relative to the previous chunk.
    let g_fe = std::mem::replace(&mut bs.prev_fe, f_fe.clone());
    let prev = Window { bytes: window.bytes, base: 0 };

    // Padding and sub-account ranges per op.
    let pad = |f: &FrVar, start: usize, end: usize| cond_zero(f, &window.popcount(start, end - start)?);
    pad(&f_noop, 1, 20)?;
    pad(&f_tr, 18, 20)?;
    pad(&f_ttn, 50, 60)?;
    pad(&f_dep, 58, 60)?;
    pad(&f_cpk, 54, 60)?;
    pad(&f_fe, 66, 80)?;
    cond_zero(&f_fe, &(window.sub_high(5)? + window.sub_high(9)?))?;
    cond_zero(&f_tr, &(window.sub_high(7)? + window.sub_high(8)?))?;
    cond_zero(&f_ttn, &(window.sub_high(4)? + window.sub_high(8)?))?;
    cond_zero(&f_dep, &window.sub_high(5)?)?;
    cond_zero(&f_wd, &window.sub_high(5)?)?;
    cond_zero(&f_cpk, &window.sub_high(5)?)?;

    // Fields.
    let tr = (window.num(1, 3)?, window.num(4, 3)?, window.num(7, 1)?, window.num(8, 1)?, window.num(9, 2)?);
    let ttn = (window.num(1, 3)?, window.num(4, 1)?, window.num(5, 3)?, window.num(8, 1)?, window.num(9, 2)?);
    let ttn_owner = (window.num(18, 16)?, window.num(34, 16)?);
    // Deposit, Withdraw and ChangePubKey share chain 1, account 2..5, sub 5.
    let (chain, account, sub) = (window.num(1, 1)?, window.num(2, 3)?, window.num(5, 1)?);
    let dep = (window.num(6, 2)?, window.num(8, 2)?, window.num(10, 16)?, window.num(26, 16)?, window.num(42, 16)?);
    let wd = (window.num(6, 2)?, window.num(8, 2)?, window.num(10, 16)?, window.num(28, 16)?, window.num(44, 16)?);
    let cpk_pkh = window.num(6, 20)?;
    let cpk_owner = (window.num(26, 4)?, window.num(30, 16)?);
    let cpk_nonce = window.num(46, 4)?;
    let cpk_fee_token = window.num(50, 2)?;
    // ForcedExit: initiator 2..5, initiator_sub 5, target 6..9, target_sub 9, l2_token 10..12,
    // l1_token 12..14, fee_token 14..16, fee 16..18, amount 18..34, target_owner 34..66.
    let fe = (window.num(2, 3)?, window.num(5, 1)?, window.num(6, 3)?, window.num(9, 1)?, window.num(10, 2)?);
    let (fe_l1, fe_fee_token, fe_amount) = (window.num(12, 2)?, window.num(14, 2)?, window.num(18, 16)?);
    let fe_owner = (window.num(34, 16)?, window.num(50, 16)?);
    // The liquidity debit of a ForcedExit that started in the previous chunk.
    let (g_chain, g_l1, g_amount) = (prev.num(1, 1)?, prev.num(12, 2)?, prev.num(18, 16)?);

    // Amounts and fees (packed values selected, then unpacked once).
    let packed_amount = &f_tr * window.num(11, 5)? + &f_ttn * window.num(11, 5)?;
    let amount_packed = unpack_amount(&packed_amount)?;
    let packed_fee = &f_tr * window.num(16, 2)?
        + &f_ttn * window.num(16, 2)?
        + &f_wd * window.num(26, 2)?
        + &f_cpk * window.num(52, 2)?
        + &f_fe * window.num(16, 2)?;
    let fee = unpack_fee(&packed_fee)?;
    let amount = &amount_packed + &f_dep * &dep.2 + &f_wd * &wd.2;
    let fee_token = &f_tr * &tr.4 + &f_ttn * &ttn.4 + &f_wd * &wd.0 + &f_cpk * &cpk_fee_token + &f_fe * &fe_fee_token;

    let idx = |sub: &FrVar, token: &FrVar| sub * pow2(16) + token;
    let global = FrVar::constant(Fr::from(zkl_types::GLOBAL_ACCOUNT));
    let user = &f_tr + &f_ttn + &f_wd + &f_cpk + &f_fe; // signed ops: AU0 is the signer

    // AU0: the signer's debit (and nonce, key), or the Deposit's liquidity credit.
    let mut p0 = AuParams::disabled();
    // (In a ForcedExit's second chunk: the liquidity debit.)
    p0.en = &user + &f_dep + &g_fe;
    p0.account =
        &f_tr * &tr.0 + &f_ttn * &ttn.0 + (&f_wd + &f_cpk) * &account + &f_fe * &fe.0 + (&f_dep + &g_fe) * &global;
    p0.index = &f_tr * idx(&tr.2, &tr.4)
        + &f_ttn * idx(&ttn.1, &ttn.4)
        + &f_wd * idx(&sub, &wd.0)
        + &f_cpk * idx(&sub, &cpk_fee_token)
        + &f_fe * idx(&fe.1, &fe_fee_token)
        + &f_dep * idx(&chain, &dep.0)
        + &g_fe * idx(&g_chain, &g_l1);
    p0.delta = &f_dep * &amount - (&user * (&amount + &fee)) - &g_fe * &g_amount;
    p0.nonce_inc = user.clone();
    p0.set_key = f_cpk.clone();
    p0.new_pkh = cpk_pkh.clone();
    p0.owner_hi = cpk_owner.0.clone();
    p0.owner_lo = cpk_owner.1.clone();
    p0.owner_check = f_cpk.clone();
    p0.owner_nonzero = f_cpk.clone();
    p0.not_global = user.clone();
    p0.cap112 = f_dep.clone();
    let (l0, root) = account_update(cs, &bs.root, &p0, &w.au[0])?;
    bs.root = root;
    cond_eq(&f_cpk, &cpk_nonce, &l0.nonce)?;

    // AU1: the recipient's credit (Transfer, TransferToNew, Deposit) or the liquidity debit.
    let mut p1 = AuParams::disabled();
    // (ForcedExit: the target, without a key, gives its whole non-zero balance.)
    p1.en = &f_tr + &f_ttn + &f_dep + &f_wd + &f_fe;
    p1.account = &f_tr * &tr.1 + &f_ttn * &ttn.2 + &f_dep * &account + &f_wd * &global + &f_fe * &fe.2;
    p1.index = &f_tr * idx(&tr.3, &tr.4)
        + &f_ttn * idx(&ttn.3, &ttn.4)
        + &f_dep * idx(&sub, &dep.1)
        + &f_wd * idx(&chain, &wd.1)
        + &f_fe * idx(&fe.3, &fe.4);
    p1.delta = (&f_tr + &f_ttn + &f_dep) * &amount - &f_wd * &amount - &f_fe * &fe_amount;
    p1.create = f_ttn.clone();
    p1.create_if_unowned = f_dep.clone();
    p1.owner_hi = &f_ttn * &ttn_owner.0 + &f_dep * &dep.3 + &f_fe * &fe_owner.0;
    p1.owner_lo = &f_ttn * &ttn_owner.1 + &f_dep * &dep.4 + &f_fe * &fe_owner.1;
    p1.owner_check = &f_ttn + &f_dep + &f_fe;
    p1.owner_nonzero = &f_tr + &f_ttn + &f_dep + &f_fe;
    p1.not_global = &f_tr + &f_ttn + &f_dep + &f_fe;
    p1.zero_after = f_fe.clone();
    let (l1, root) = account_update(cs, &bs.root, &p1, &w.au[1])?;
    bs.root = root;
    cond_zero(&f_fe, &l1.pkh)?;
    cond_zero(&f_fe, &FrVar::from(fe_amount.is_eq(&FrVar::zero())?))?;
    // No transfer to the same (account, sub-account).
    let same = tr.0.is_eq(&tr.1)? & tr.2.is_eq(&tr.3)?;
    cond_zero(&f_tr, &FrVar::from(same))?;

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
        + &user * &l0.nonce;
    let to_hi = &f_tr * &l1.owner_hi + &f_ttn * &ttn_owner.0 + &f_wd * &wd.3;
    let to_lo = &f_tr * &l1.owner_lo + &f_ttn * &ttn_owner.1 + &f_wd * &wd.4;
    let msg5 = poseidon::hash(&[header.clone(), to_hi, to_lo, amount.clone(), fee.clone()])?;
    let msg3 = poseidon::hash(&[header.clone(), cpk_pkh.clone(), fee.clone()])?;
    let msg2 = poseidon::hash(&[header, fee.clone()])?;
    let msg = &msg5 + &f_cpk * (&msg3 - &msg5) + &f_fe * (&msg2 - &msg5);
    let sig_en = BoolVar::new_witness(cs.clone(), || user.value().map(|v| v == Fr::ONE))?;
    FrVar::from(sig_en.clone()).enforce_equal(&user)?;
    let a = PointVar::new_witness(cs.clone(), || Ok(w.pubkey))?;
    let expected_pkh = (&f_tr + &f_ttn + &f_wd + &f_fe) * &l0.pkh + &f_cpk * &cpk_pkh;
    cond_eq(&user, &eddsa::pubkey_hash(&a)?, &expected_pkh)?;
    let (rx, ry, s) = w.signature;
    let sig = SignatureVar {
        r8: PointVar::new_witness(cs.clone(), || Ok((rx, ry)))?,
        s: FrVar::new_witness(cs.clone(), || Ok(s))?,
    };
    eddsa::verify(&sig_en, &a, &msg, &sig)?;

    // Fee into its slot.
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
    let onchain = &f_dep + &f_wd + &f_cpk + &f_fe;
    let chain_sel: Vec<FrVar> = (1..=MAX_CHAINS as u64)
        .map(|k| Ok(&onchain * FrVar::from(chain.is_eq(&c(k))?)))
        .collect::<Result<_, SynthesisError>>()?;
    sum(chain_sel.iter().cloned()).enforce_equal(&onchain)?;
    let h = sum(chain_sel.iter().zip(&bs.onchain).map(|(s, h)| s * h));
    let words = [window.num(0, 20)?, window.num(20, 20)?, window.num(40, 20)?, &f_fe * window.num(60, 20)?];
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
            let (_, root) = account_update(&cs, &bs.root, &p, &f.au)?;
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
