//! The block witness: every chunk's account updates, signatures and orders, built by replaying
//! the block through the state machine (`State::apply_op`) and checked against its roots.

use super::*;

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
    /// The leaf fields of `account` in `state`, `None` if it does not exist.
    pub fn of(state: &State, account: u32) -> Option<Self> {
        state.account(account).map(|a| AccountLeaf {
            nonce: a.nonce,
            pubkey_hash: a.pubkey_hash.to_fr(),
            owner_hi: a.owner.hi(),
            owner_lo: a.owner.lo(),
            balance_root: a.balance_root(),
            order_root: a.order_root(),
        })
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
    /// One per chunk position, or (when `routing` is set) one per work slot.
    pub chunks: Vec<ChunkWitness>,
    /// `None`: every chunk position runs the chunk gadget (`chunks[i]` is position `i`'s).
    /// `Some(positions)`: a circuit of `W = chunks.len()` work slots, fewer than the chunks;
    /// slot `k` works on chunk position `positions[k]` (`None`: unused). See [`Self::route`].
    pub routing: Option<Vec<Option<usize>>>,
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
    #[error("the witness cannot be routed to work slots: {0}")]
    Routing(&'static str),
    #[error("the block's ops need {got} work slots, the circuit has {slots}")]
    TooMuchWork { slots: usize, got: usize },
    #[error("amount not packable: {0}")]
    Encode(#[from] zkl_types::OpEncodeError),
}

/// A public key and a signature `(R8x, R8y, S)`.
type KeyAndSig = ((Fr, Fr), (Fr, Fr, Fr));

/// What one account update does (native, used to derive the second update's witness).
#[derive(Clone, Copy, Debug)]
struct AuSpec {
    pub(crate) account: u32,
    pub(crate) index: u32,
    pub(crate) credit: u128,
    pub(crate) debit: u128,
    pub(crate) nonce_inc: bool,
    pub(crate) new_pkh: Option<Fr>,
    pub(crate) create_owner: Option<Address>,
}

fn fields_of(st: &State, account: u32) -> AccountLeaf {
    AccountLeaf::of(st, account).unwrap_or_else(|| {
        let e = zkl_state::tree::empty_sub_tree();
        AccountLeaf { balance_root: e[BALANCE_TREE_DEPTH], order_root: e[BALANCE_TREE_DEPTH], ..AccountLeaf::default() }
    })
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
    pub(crate) account: u32,
    pub(crate) debit_index: u32,
    pub(crate) debit: u128,
    pub(crate) credit_index: u32,
    pub(crate) credit: u128,
    pub(crate) order_index: u32,
    pub(crate) fill: u128,
    pub(crate) order_amount: u128,
    pub(crate) fee: (u16, u128),
    pub(crate) sig: KeyAndSig,
    pub(crate) order: OrderWitness,
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
    pub(crate) base: &'a State,
    pub(crate) leaves: HashMap<u32, AccountLeaf>,
    pub(crate) balances: HashMap<(u32, u32), u128>,
    pub(crate) slots: HashMap<(u32, u32), OrderSlot>,
    pub(crate) account_updates: Vec<(MerkleProof, Fr)>,
    pub(crate) balance_updates: HashMap<u32, Vec<(MerkleProof, Fr)>>,
    pub(crate) order_updates: HashMap<u32, Vec<(MerkleProof, Fr)>>,
    pub(crate) root: Fr,
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
    pub(crate) specs: Vec<AuSpec>,
    pub(crate) fee: Option<(u16, u128)>,
    pub(crate) sig: Option<KeyAndSig>,
    pub(crate) om: Option<[OmSide; 2]>,
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
    /// Every op is replayed with `State::apply_op_journaled` (the state machine's rules); the
    /// circuit applies an op's writes merged into at most two account updates, whose witnesses
    /// are read from the state before the op, and the root after them must equal the state
    /// machine's after the op. The fee credits must reach the root of
    /// `State::credit_fees`, and the result the sealed block's commitment.
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
                let writes = st.apply_op_journaled(op).map_err(|e| BlockWitnessError::State(i, e))?;
                let state_root = st.root();
                if circuit_root != state_root || (writes.is_empty() && !matches!(op, Op::Noop | Op::FullExit(_))) {
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
            st.credit_fees();
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
            routing: None,
            fees,
            public_input: public_input(&commitment_hash(&commitment)),
        })
    }

    /// The block's capacity in chunks.
    pub fn capacity(&self) -> usize {
        self.pubdata.len() / CHUNK_BYTES
    }

    /// The chunk positions that need a work slot, in order (as the circuit decides them): each
    /// op's first `work_chunks` chunks (the layout table: none for a Noop, two for a ForcedExit
    /// or an OrderMatching, one otherwise). An unknown op code counts as a one-chunk op that
    /// needs work (the circuit refuses it anyway).
    ///
    /// Positions are below the capacity (an op running past the block, which the circuit
    /// refuses, loses its second chunk's position).
    pub fn work_positions(pubdata: &[u8]) -> Vec<usize> {
        let capacity = pubdata.len() / CHUNK_BYTES;
        let mut out = Vec::new();
        let mut at = 0;
        while at < capacity {
            let l = layout::of(pubdata[at * CHUNK_BYTES]);
            let work = l.map_or(1, |l| l.work_chunks);
            out.extend((at..at + work).filter(|p| *p < capacity));
            at += l.map_or(1, |l| l.chunks);
        }
        out
    }

    /// The same witness for the circuit of `work_slots` work slots (fewer than the capacity; the
    /// capacity itself keeps one gadget per position): slot `k` takes the `k`-th chunk that needs
    /// work ([`Self::work_positions`]), unused slots are blank.
    ///
    /// Only a witness with one chunk witness per position can be routed (`Routing` otherwise).
    pub fn route(mut self, work_slots: usize) -> Result<Self, BlockWitnessError> {
        if self.routing.is_some() {
            return Err(BlockWitnessError::Routing("it is routed already"));
        }
        if self.chunks.len() != self.capacity() || !self.pubdata.len().is_multiple_of(CHUNK_BYTES) {
            return Err(BlockWitnessError::Routing("its chunk witnesses do not match its pubdata"));
        }
        if work_slots >= self.capacity() {
            return Ok(self);
        }
        let positions = Self::work_positions(&self.pubdata);
        if positions.len() > work_slots {
            return Err(BlockWitnessError::TooMuchWork { slots: work_slots, got: positions.len() });
        }
        let mut slots: Vec<ChunkWitness> = positions.iter().map(|p| self.chunks[*p].clone()).collect();
        slots.resize(work_slots, ChunkWitness::blank());
        let mut routing: Vec<Option<usize>> = positions.into_iter().map(Some).collect();
        routing.resize(work_slots, None);
        self.chunks = slots;
        self.routing = Some(routing);
        Ok(self)
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
            routing: None,
            fees: vec![FeeSlotWitness { token: 0, amount: 0, au: AuWitness::blank() }; fee_slots],
            public_input: Fr::ZERO,
        }
    }

    /// A blank witness of `capacity` chunks and `work_slots` work slots (`work_slots ≥
    /// capacity`: one gadget per position, as [`Self::blank`]).
    pub fn blank_routed(capacity: usize, work_slots: usize, fee_slots: usize) -> Self {
        let mut w = Self::blank(capacity, fee_slots);
        if work_slots < capacity {
            w.chunks.truncate(work_slots);
            w.routing = Some(vec![None; work_slots]);
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OrderMatching (two chunks) whose first chunk is the block's last: its second position
    /// would be past the block (the circuit refuses the block; routing must not index past it).
    #[test]
    fn work_positions_stay_within_the_block() {
        let mut pubdata = vec![0u8; 3 * CHUNK_BYTES];
        pubdata[0] = code::TRANSFER;
        pubdata[CHUNK_BYTES] = code::DEPOSIT;
        assert_eq!(BlockWitness::work_positions(&pubdata), vec![0, 1]);
        pubdata[CHUNK_BYTES] = code::TRANSFER;
        pubdata[2 * CHUNK_BYTES] = code::ORDER_MATCHING;
        assert_eq!(BlockWitness::work_positions(&pubdata), vec![0, 1, 2]);
        let mut w = BlockWitness::blank(3, 2);
        w.pubdata = pubdata;
        assert_eq!(w.clone().route(2), Err(BlockWitnessError::TooMuchWork { slots: 2, got: 3 }));
        let universal = w.route(3).expect("three slots for three chunks: one gadget per chunk");
        assert_eq!((universal.routing, universal.chunks.len()), (None, 3));
    }

    #[test]
    fn only_unrouted_witnesses_of_their_capacity_can_be_routed() {
        let routed = BlockWitness::blank(4, 2).route(2).expect("a blank block needs no work");
        assert_eq!(routed.routing, Some(vec![None, None]));
        assert_eq!(routed.chunks.len(), 2);
        assert!(matches!(routed.route(2), Err(BlockWitnessError::Routing(_))));
        let mut short = BlockWitness::blank(4, 2);
        short.chunks.truncate(3);
        assert!(matches!(short.route(2), Err(BlockWitnessError::Routing(_))));
    }
}
