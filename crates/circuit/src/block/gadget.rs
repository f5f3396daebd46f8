//! The block circuit's constraints: account updates, the universal chunk gadget (every op kind,
//! selected by flags), the work slots that run it only where an op needs work (when the circuit
//! has fewer work slots than chunks) and the block around them.

use super::*;

/// What an account update does, as circuit values. Flags are 0/1 linear combinations of the
/// (mutually exclusive) op flags.
struct AuParams {
    pub(crate) en: FrVar,
    pub(crate) account: FrVar,
    pub(crate) index: FrVar,
    /// Credit minus debit.
    pub(crate) delta: FrVar,
    pub(crate) nonce_inc: FrVar,
    pub(crate) set_key: FrVar,
    pub(crate) new_pkh: FrVar,
    /// Create the account (the old leaf must be empty) with owner `owner_hi/lo`.
    pub(crate) create: FrVar,
    /// Create only if the old leaf has no owner (Deposit), else the owner must equal `owner`.
    pub(crate) create_if_unowned: FrVar,
    pub(crate) owner_hi: FrVar,
    pub(crate) owner_lo: FrVar,
    /// The owner after the update must equal `owner_hi/lo`.
    pub(crate) owner_check: FrVar,
    /// The owner after the update must not be zero.
    pub(crate) owner_nonzero: FrVar,
    /// The account must not be the global asset account 1.
    pub(crate) not_global: FrVar,
    /// The new balance must stay within `MAX_LIQUIDITY` (below 2^112).
    pub(crate) cap112: FrVar,
    /// The new balance must be zero.
    pub(crate) zero_after: FrVar,
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
    pub(crate) nonce: FrVar,
    pub(crate) pkh: FrVar,
    pub(crate) owner_hi: FrVar,
    pub(crate) owner_lo: FrVar,
    pub(crate) balance_root: FrVar,
    pub(crate) order_root: FrVar,
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
    pub(crate) l: LeafVars,
    pub(crate) balance: FrVar,
    /// The bits of `en · pubkey_hash` (160).
    pub(crate) pkh_bits: Vec<BoolVar>,
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
    let bpath = QuadPath::witness(cs, &index_bits, &w.balance_path)?;
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
    let apath = QuadPath::witness(cs, &account_bits, &w.account_path)?;
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
    let path1 = QuadPath::witness(cs, &account_bits1, &w[1].account_path)?;
    let (old_r1, new_r1) = merkle::roots_short_or_full(&old_leaf1, &new_leaf1, &path1, om_b)?;
    // AU0's account leaf, with the fused sub-tree roots.
    let new_broot0 = &new_b0 + om * (&new_b1 - &new_b0);
    let new_oroot0 = &v0.l.order_root + om * (&new_r1 - &v0.l.order_root);
    let (old_h0, new_h0) = leaf_hashes(p0, &p0.en, &v0.l, &new_broot0, &new_oroot0)?;
    let path0 = QuadPath::witness(cs, &account_bits0, &w[0].account_path)?;
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
    pub(crate) root: FrVar,
    /// The previous chunk started a ForcedExit (this chunk makes its liquidity debit).
    pub(crate) prev_fe: FrVar,
    /// The previous chunk started an OrderMatching (this chunk is its taker side).
    pub(crate) prev_om: FrVar,
    /// The previous chunk's order price (the maker's, for the taker's limit).
    pub(crate) prev_price: FrVar,
    pub(crate) remaining: FrVar,
    pub(crate) onchain: [FrVar; MAX_CHAINS],
    pub(crate) fee_tokens: Vec<FrVar>,
    pub(crate) fee_acc: Vec<FrVar>,
}

/// Byte-field accessor over an op's window (big-endian fields).
struct Window<'a> {
    pub(crate) bytes: &'a [UInt8<Fr>],
    /// Where the op starts in `bytes`.
    pub(crate) base: usize,
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

pub(crate) fn sum(terms: impl IntoIterator<Item = FrVar>) -> FrVar {
    terms.into_iter().fold(FrVar::zero(), |acc, t| acc + t)
}

fn chunk_gadget(
    cs: &ConstraintSystemRef<Fr>,
    bs: &mut BlockState,
    window: &Window<'_>,
    w: &ChunkWitness,
    routed_start: Option<BoolVar>,
) -> Result<(), SynthesisError> {
    let one = FrVar::one();
    let c = |v: u64| FrVar::constant(Fr::from(v));

    // Op start and flags (a work slot is told whether its chunk starts an op; the chunk
    // positions keep the counter, `work_slots`).
    let is_start = match &routed_start {
        Some(s) => s.clone(),
        None => bs.remaining.is_eq(&FrVar::zero())?,
    };
    let opcode = window.field(PubdataField::OP)?;
    let counter = if routed_start.is_none() { Some(&bs.remaining) } else { None };
    let (flags, remaining) = op_flags(cs, &is_start, &opcode, counter)?;
    if let Some(r) = remaining {
        bs.remaining = r;
    }
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

/// The op flags of a chunk: at an op start exactly one flag per supported op kind is set, the
/// one whose code is `opcode`; elsewhere none. With the counter of chunks left in the current op
/// (`remaining`, zero at a start), also the counter after this chunk.
fn op_flags(
    cs: &ConstraintSystemRef<Fr>,
    is_start: &BoolVar,
    opcode: &FrVar,
    remaining: Option<&FrVar>,
) -> Result<(Vec<FrVar>, Option<FrVar>), SynthesisError> {
    let start = FrVar::from(is_start.clone());
    let (opcode_value, start_value) = (opcode.value().ok(), is_start.value().ok());
    let flags: Vec<FrVar> = SUPPORTED_OPS
        .iter()
        .map(|(code, _)| {
            BoolVar::new_witness(cs.clone(), || {
                let s = start_value.ok_or(SynthesisError::AssignmentMissing)?;
                Ok(s && opcode_value == Some(Fr::from(*code)))
            })
            .map(FrVar::from)
        })
        .collect::<Result<_, _>>()?;
    sum(flags.iter().cloned()).enforce_equal(&start)?;
    sum(SUPPORTED_OPS.iter().zip(&flags).map(|((code, _), f)| f * Fr::from(*code)))
        .enforce_equal(&(&start * opcode))?;
    let next = remaining.map(|r| {
        let not_start_rem = (FrVar::one() - &start) * (r - FrVar::one());
        sum(SUPPORTED_OPS.iter().zip(&flags).map(|((_, n), f)| f * Fr::from(*n as u64 - 1))) + not_start_rem
    });
    Ok((flags, next))
}

/// Index of the Noop in [`SUPPORTED_OPS`].
const NOOP_FLAG: usize = 0;
const _: () = assert!(SUPPORTED_OPS[NOOP_FLAG].0 == code::NOOP);

/// The sum of the flags of the ops with at least `k` work chunks (the layout table's
/// `work_chunks`: an op start needs work if k = 1, its next chunk if k = 2).
fn work_flags(flags: &[FrVar], k: usize) -> FrVar {
    sum(SUPPORTED_OPS
        .iter()
        .zip(flags)
        .filter(|((code, _), _)| layout::of(*code).is_some_and(|l| l.work_chunks >= k))
        .map(|(_, f)| f.clone()))
}

/// Work slots decoupled from chunk positions (DESIGN.md, "Work slots"): the `C` chunk positions
/// keep the op-start counter and say which chunks need work (an op's first `work_chunks`
/// chunks, from the layout table: none for a Noop, two for a ForcedExit or an OrderMatching);
/// each of the `W < C` work slots runs the chunk gadget on the window of the position the prover
/// names for it. The
/// enabled slots are a prefix, their positions strictly increase and every position is taken
/// by as many slots as it needs work (0 or 1), so slot `k` holds the `k`-th chunk needing work:
/// ops run in pubdata order, and a second chunk's slot follows its first chunk's slot.
fn work_slots(
    cs: &ConstraintSystemRef<Fr>,
    bs: &mut BlockState,
    padded: &[UInt8<Fr>],
    slots: &[ChunkWitness],
    routing: &[Option<usize>],
    marks: &mut Vec<usize>,
) -> Result<(), SynthesisError> {
    let capacity = padded.len() / CHUNK_BYTES - WINDOW_CHUNKS;
    let one = FrVar::one();
    marks.push(cs.num_constraints());
    // Per position: the chunk as a 160-bit integer, the same with its start bit at 2^160 (what
    // a slot routes as its own chunk), whether it needs work.
    let (mut packed, mut heads, mut work) = (Vec::new(), Vec::new(), Vec::new());
    let (mut remaining, mut second) = (FrVar::zero(), FrVar::zero());
    for j in 0..capacity {
        let bits = bytes_be_to_bits_le(&padded[(j + 1) * CHUNK_BYTES..(j + 2) * CHUNK_BYTES])?;
        let is_start = remaining.is_eq(&FrVar::zero())?;
        let start = FrVar::from(is_start.clone());
        let opcode = from_bits_le(&bits[8 * (CHUNK_BYTES - 1)..]);
        let (flags, next) = op_flags(cs, &is_start, &opcode, Some(&remaining))?;
        remaining = next.unwrap_or_else(FrVar::zero);
        // A Noop chunk is all zeros (no slot looks at it).
        let rest = bits[..8 * (CHUNK_BYTES - 1)].iter().fold(FrVar::zero(), |acc, b| acc + FrVar::from(b.clone()));
        cond_zero(&flags[NOOP_FLAG], &rest)?;
        work.push(work_flags(&flags, 1) + &second);
        second = work_flags(&flags, 2);
        let chunk = from_bits_le(&bits);
        heads.push(&chunk + start * pow2(160));
        packed.push(chunk);
    }
    remaining.enforce_equal(&FrVar::zero())?;

    // Per slot: a one-hot position, the window of chunks (position − 1 .. position + 3) routed
    // to it, and the chunk gadget on that window.
    let position_bits = (usize::BITS - capacity.leading_zeros()) as usize;
    let mut taken = vec![FrVar::zero(); capacity];
    let mut previous: Option<(FrVar, FrVar)> = None;
    for (cw, at) in slots.iter().zip(routing) {
        marks.push(cs.num_constraints());
        let sel: Vec<FrVar> = (0..capacity)
            .map(|j| BoolVar::new_witness(cs.clone(), || Ok(*at == Some(j))).map(FrVar::from))
            .collect::<Result<_, _>>()?;
        let en = sum(sel.iter().cloned());
        en.mul_equals(&(&one - &en), &FrVar::zero())?;
        let position = sum(sel.iter().enumerate().map(|(j, s)| s * Fr::from(j as u64)));
        if let Some((previous_en, previous_position)) = &previous {
            en.mul_equals(&(&one - previous_en), &FrVar::zero())?;
            to_bits_le(&(&en * (&position - previous_position - &one)), position_bits)?;
        }
        for (t, s) in taken.iter_mut().zip(&sel) {
            *t += s;
        }
        let mut bytes = Vec::with_capacity((WINDOW_CHUNKS + 1) * CHUNK_BYTES);
        let mut start = BoolVar::FALSE;
        for k in -1..WINDOW_CHUNKS as isize {
            let mut routed = FrVar::zero();
            for (j, s) in sel.iter().enumerate() {
                let Some(src) = j.checked_add_signed(k).filter(|src| *src < capacity) else { continue };
                routed += s * if k == 0 { &heads[src] } else { &packed[src] };
            }
            let bits = to_bits_le(&routed, if k == 0 { 161 } else { 160 })?;
            if k == 0 {
                start = bits[160].clone();
            }
            bytes.extend(bits_le_to_bytes_be(&bits[..160]));
        }
        chunk_gadget(cs, bs, &Window { bytes: &bytes, base: CHUNK_BYTES }, cw, Some(start))?;
        previous = Some((en, position));
    }
    marks.push(cs.num_constraints());
    for (t, needs) in taken.iter().zip(&work) {
        t.enforce_equal(needs)?;
    }
    Ok(())
}

/// The block circuit; `marks` receives the constraint count before each chunk, before each fee
/// slot and before the commitment.
pub(crate) fn synthesize(
    cs: &ConstraintSystemRef<Fr>,
    w: &BlockWitness,
    marks: &mut Vec<usize>,
) -> Result<(), SynthesisError> {
    let cs = cs.clone();
    {
        let capacity = w.capacity();
        let slots = w.chunks.len();
        let shape_ok = match &w.routing {
            None => slots == capacity,
            Some(r) => r.len() == slots && slots < capacity,
        };
        if !shape_ok || w.pubdata.len() != capacity * CHUNK_BYTES || capacity == 0 || w.fees.is_empty() {
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
        match &w.routing {
            None => {
                for (i, cw) in w.chunks.iter().enumerate() {
                    marks.push(cs.num_constraints());
                    let window = Window {
                        bytes: &padded[i * CHUNK_BYTES..(i + 1 + WINDOW_CHUNKS) * CHUNK_BYTES],
                        base: CHUNK_BYTES,
                    };
                    chunk_gadget(&cs, &mut bs, &window, cw, None)?;
                }
                bs.remaining.enforce_equal(&FrVar::zero())?;
            }
            Some(routing) => work_slots(&cs, &mut bs, &padded, &w.chunks, routing, marks)?,
        }

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
