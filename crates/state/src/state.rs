//! The Layer-2 state and the semantics of every operation (protocol.md sections 9–11).
//!
//! [`State::apply_op`] is normative: the node, the circuit's witness generator and the exodus
//! tool all apply operations through it. Every check happens through a journal: when an op is
//! rejected, every write it made is undone, so a rejected op changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;
use zkl_crypto::{Fr, PubKeyHash, PublicKey};
use zkl_types::op::*;
use zkl_types::*;

use crate::account::{Account, AccountPlan, OrderSlot, empty_account_tree};
use crate::error::TxError;
use crate::tree::{MerkleProof, QuadTree, TreePlan};

/// What committing the state writes ([`State::plan_commit`]).
#[derive(Debug, Clone)]
pub struct CommitPlan {
    accounts: Vec<(usize, AccountPlan)>,
    tree: TreePlan,
}

/// One write to the state, with the value before and after. The journal of an op is its list
/// of writes: rolled back (old values) when the op is rejected; [`State::apply_op_journaled`]
/// returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Balance {
        account: AccountId,
        index: u32,
        old: u128,
        new: u128,
    },
    Slot {
        account: AccountId,
        index: u32,
        old: OrderSlot,
        new: OrderSlot,
    },
    Nonce {
        account: AccountId,
        old: Nonce,
        new: Nonce,
    },
    Key {
        account: AccountId,
        old_hash: PubKeyHash,
        new_hash: PubKeyHash,
        old_key: Option<PublicKey>,
        new_key: Option<PublicKey>,
    },
    NewAccount {
        account: AccountId,
        owner: Address,
    },
    /// A fee added to the block's slot for `token` (not in the tree until the block is sealed).
    Fee {
        token: TokenId,
        old: Option<u128>,
        new: u128,
    },
}

impl Write {
    /// The account whose leaf this write changes (None for fees).
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Write::Balance { account, .. }
            | Write::Slot { account, .. }
            | Write::Nonce { account, .. }
            | Write::Key { account, .. }
            | Write::NewAccount { account, .. } => Some(*account),
            Write::Fee { .. } => None,
        }
    }
}

/// The whole Layer-2 state.
#[derive(Debug, Clone)]
pub struct State {
    pub(crate) registry: TokenRegistry,
    pub(crate) accounts: Vec<Account>,
    pub(crate) by_owner: HashMap<Address, AccountId>,
    tree: QuadTree,
    /// Fees collected in the current block, credited to account 0 when it is sealed.
    pub(crate) pending_fees: BTreeMap<TokenId, u128>,
    pub(crate) matchers: BTreeSet<AccountId>,
    /// On-chain ChangePubKey authorisations the node has read from the chains (not part of the
    /// state tree: each contract checks its own at commit).
    pub(crate) auth_facts: BTreeSet<AuthFact>,
    journal: Vec<Write>,
    pub(crate) block: Option<crate::block::PendingBlock>,
    pub(crate) block_params: crate::block::BlockParams,
    pub(crate) last_block: u32,
    /// Order signatures already found valid (a resting order is in every fill it makes).
    pub(crate) orders_checked: crate::exec::OrdersChecked,
}

impl State {
    /// The genesis state: account 0 (fee account, owned by `fee_owner`) and account 1 (global
    /// asset account, no owner).
    pub fn new(registry: TokenRegistry, fee_owner: Address) -> Self {
        let mut s = State {
            registry,
            accounts: Vec::new(),
            by_owner: HashMap::new(),
            tree: QuadTree::new(ACCOUNT_TREE_DEPTH, empty_account_tree()),
            pending_fees: BTreeMap::new(),
            matchers: BTreeSet::new(),
            auth_facts: BTreeSet::new(),
            journal: Vec::new(),
            block: None,
            block_params: crate::block::BlockParams::for_capacity(64),
            last_block: 0,
            orders_checked: Default::default(),
        };
        s.accounts.push(Account::new(fee_owner));
        if fee_owner != Address::ZERO {
            s.by_owner.insert(fee_owner, FEE_ACCOUNT);
        }
        s.accounts.push(Account::new(Address::ZERO));
        s.commit();
        s
    }

    pub fn registry(&self) -> &TokenRegistry {
        &self.registry
    }

    /// Allows or disallows `account` to submit order matchings.
    pub fn set_matcher(&mut self, account: AccountId, allowed: bool) {
        if allowed {
            self.matchers.insert(account);
        } else {
            self.matchers.remove(&account);
        }
    }

    pub fn is_matcher(&self, account: AccountId) -> bool {
        self.matchers.contains(&account)
    }

    /// Records an on-chain ChangePubKey authorisation; false if it was already known.
    pub fn add_auth_fact(&mut self, fact: AuthFact) -> bool {
        self.auth_facts.insert(fact)
    }

    pub fn has_auth_fact(&self, fact: &AuthFact) -> bool {
        self.auth_facts.contains(fact)
    }

    /// Number of accounts (the next new account gets this id).
    pub fn account_count(&self) -> u32 {
        self.accounts.len() as u32
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(id as usize)
    }

    pub fn account_by_owner(&self, owner: &Address) -> Option<AccountId> {
        self.by_owner.get(owner).copied()
    }

    /// Balance of (account, sub, token); 0 for unknown accounts.
    pub fn balance(&self, account: AccountId, sub: SubAccountId, token: TokenId) -> u128 {
        self.account(account).map(|a| a.balance_at(balance_index(sub, token))).unwrap_or(0)
    }

    /// Liquidity of L1 token `token` on `chain` (held by the global asset account).
    pub fn liquidity(&self, chain: ChainId, token: TokenId) -> u128 {
        self.balance(GLOBAL_ACCOUNT, chain, token)
    }

    /// The order slot of (account, sub, slot).
    pub fn slot(&self, account: AccountId, sub: SubAccountId, slot: SlotId) -> OrderSlot {
        self.account(account).map(|a| a.slot_at(order_index(sub, slot))).unwrap_or_default()
    }

    /// Fees collected in the current block so far, per token.
    pub fn pending_fees(&self) -> &BTreeMap<TokenId, u128> {
        &self.pending_fees
    }

    /// Recomputes every dirty path (balance and order trees of changed accounts in parallel,
    /// then the account tree) and returns the state root.
    pub fn commit(&mut self) -> Fr {
        let plan = self.plan_commit();
        self.apply_commit(plan)
    }

    /// What [`Self::commit`] writes, computed without changing the state, so that a caller
    /// holding it behind a lock can hash under a shared lock while others read;
    /// [`Self::apply_commit`] writes it. Nothing may change the state in between.
    pub fn plan_commit(&self) -> CommitPlan {
        let accounts: Vec<(usize, AccountPlan)> =
            self.accounts.par_iter().enumerate().filter(|(_, a)| a.dirty).map(|(i, a)| (i, a.plan())).collect();
        let leaves: Vec<(u64, Fr)> = accounts.iter().map(|(i, p)| (*i as u64, p.hash)).collect();
        let tree = self.tree.plan(&leaves);
        CommitPlan { accounts, tree }
    }

    /// Writes a [`Self::plan_commit`] of this state; returns the state root.
    pub fn apply_commit(&mut self, plan: CommitPlan) -> Fr {
        for (i, p) in plan.accounts {
            self.accounts[i].apply(p);
        }
        self.tree.apply(plan.tree)
    }

    /// The state root (commits pending changes).
    pub fn root(&mut self) -> Fr {
        self.commit()
    }

    /// Proof of an account leaf against the committed root.
    pub fn account_proof(&self, account: AccountId) -> MerkleProof {
        self.tree.proof(u64::from(account))
    }

    /// Credits the block's collected fees to account 0, sub-account 0, in token order.
    pub fn credit_fees(&mut self) {
        let fees = std::mem::take(&mut self.pending_fees);
        for (token, amount) in fees {
            let index = balance_index(0, token);
            let fee_account = &mut self.accounts[FEE_ACCOUNT as usize];
            // Cannot overflow: collecting the fee checked `balance + pending <= u128::MAX`.
            let new = fee_account.balance_at(index).saturating_add(amount);
            fee_account.set_balance(index, new);
        }
    }

    // ---- journaled writes -------------------------------------------------------------------

    fn begin(&mut self) {
        self.journal.clear();
    }

    fn rollback(&mut self) {
        while let Some(w) = self.journal.pop() {
            self.undo(&w);
        }
    }

    fn undo(&mut self, w: &Write) {
        match w {
            Write::Balance { account, index, old, .. } => self.accounts[*account as usize].set_balance(*index, *old),
            Write::Slot { account, index, old, .. } => self.accounts[*account as usize].set_slot(*index, *old),
            Write::Nonce { account, old, .. } => {
                let a = &mut self.accounts[*account as usize];
                a.nonce = *old;
                a.dirty = true;
            }
            Write::Key { account, old_hash, old_key, .. } => {
                let a = &mut self.accounts[*account as usize];
                a.pubkey_hash = *old_hash;
                a.pubkey = *old_key;
                a.dirty = true;
            }
            Write::NewAccount { .. } => {
                if let Some(a) = self.accounts.pop() {
                    self.by_owner.remove(&a.owner);
                }
            }
            Write::Fee { token, old, .. } => match old {
                Some(v) => {
                    self.pending_fees.insert(*token, *v);
                }
                None => {
                    self.pending_fees.remove(token);
                }
            },
        }
    }

    /// Applies an op and returns its writes in order (the op's journal).
    pub fn apply_op_journaled(&mut self, op: &Op) -> Result<Vec<Write>, TxError> {
        self.begin();
        let result = self.apply_op_inner(op);
        if let Err(e) = result {
            self.rollback();
            self.journal.clear();
            return Err(e);
        }
        Ok(std::mem::take(&mut self.journal))
    }

    fn acc(&self, id: AccountId) -> Result<&Account, TxError> {
        if id == GLOBAL_ACCOUNT {
            return Err(TxError::GlobalAccount(id));
        }
        self.accounts.get(id as usize).ok_or(TxError::UnknownAccount(id))
    }

    fn check_sub(sub: SubAccountId) -> Result<(), TxError> {
        if sub > MAX_SUB_ACCOUNT_ID { Err(TxError::InvalidSubAccount(sub)) } else { Ok(()) }
    }

    fn write_balance(&mut self, account: AccountId, index: u32, value: u128) {
        let a = &mut self.accounts[account as usize];
        self.journal.push(Write::Balance { account, index, old: a.balance_at(index), new: value });
        a.set_balance(index, value);
    }

    fn debit(&mut self, account: AccountId, sub: SubAccountId, token: TokenId, amount: u128) -> Result<(), TxError> {
        let index = balance_index(sub, token);
        let available = self.accounts[account as usize].balance_at(index);
        let new = available.checked_sub(amount).ok_or(TxError::InsufficientBalance {
            account,
            sub,
            token,
            available,
            needed: amount,
        })?;
        self.write_balance(account, index, new);
        Ok(())
    }

    fn credit(&mut self, account: AccountId, sub: SubAccountId, token: TokenId, amount: u128) -> Result<(), TxError> {
        let index = balance_index(sub, token);
        let old = self.accounts[account as usize].balance_at(index);
        let new = old.checked_add(amount).ok_or(TxError::BalanceOverflow { account, token })?;
        self.write_balance(account, index, new);
        Ok(())
    }

    fn add_liquidity(&mut self, chain: ChainId, token: TokenId, amount: u128) -> Result<(), TxError> {
        let new = self.liquidity(chain, token).checked_add(amount).filter(|v| *v <= MAX_LIQUIDITY);
        let new = new.ok_or(TxError::LiquidityCap { chain, token })?;
        self.write_balance(GLOBAL_ACCOUNT, balance_index(chain, token), new);
        Ok(())
    }

    fn remove_liquidity(&mut self, chain: ChainId, token: TokenId, amount: u128) -> Result<(), TxError> {
        let available = self.liquidity(chain, token);
        let new = available.checked_sub(amount).ok_or(TxError::InsufficientLiquidity {
            chain,
            token,
            available,
            needed: amount,
        })?;
        self.write_balance(GLOBAL_ACCOUNT, balance_index(chain, token), new);
        Ok(())
    }

    fn collect_fee(&mut self, token: TokenId, fee: u128) -> Result<(), TxError> {
        if fee == 0 {
            return Ok(());
        }
        let old = self.pending_fees.get(&token).copied();
        let fee_balance = self.accounts[FEE_ACCOUNT as usize].balance_at(balance_index(0, token));
        let new = old.unwrap_or(0).checked_add(fee).filter(|v| v.checked_add(fee_balance).is_some());
        let new = new.ok_or(TxError::BalanceOverflow { account: FEE_ACCOUNT, token })?;
        self.journal.push(Write::Fee { token, old, new });
        self.pending_fees.insert(token, new);
        Ok(())
    }

    fn bump_nonce(&mut self, account: AccountId) -> Result<(), TxError> {
        let a = &mut self.accounts[account as usize];
        let old = a.nonce;
        a.nonce = old.checked_add(1).ok_or(TxError::NonceOverflow(account))?;
        a.dirty = true;
        self.journal.push(Write::Nonce { account, old, new: a.nonce });
        Ok(())
    }

    fn write_slot(&mut self, account: AccountId, index: u32, slot: OrderSlot) {
        let a = &mut self.accounts[account as usize];
        self.journal.push(Write::Slot { account, index, old: a.slot_at(index), new: slot });
        a.set_slot(index, slot);
    }

    fn set_key(&mut self, account: AccountId, hash: PubKeyHash, key: Option<PublicKey>) {
        let a = &mut self.accounts[account as usize];
        self.journal.push(Write::Key {
            account,
            old_hash: a.pubkey_hash,
            new_hash: hash,
            old_key: a.pubkey,
            new_key: key,
        });
        a.pubkey_hash = hash;
        a.pubkey = key;
        a.dirty = true;
    }

    /// Creates account `id` (which must be the next id) owned by `owner`.
    fn create_account(&mut self, id: AccountId, owner: Address) -> Result<(), TxError> {
        if owner == Address::ZERO {
            return Err(TxError::ZeroAddress);
        }
        if let Some(existing) = self.account_by_owner(&owner) {
            return Err(TxError::AddressTaken(existing));
        }
        let expected = self.account_count();
        if expected > MAX_ACCOUNT_ID {
            return Err(TxError::AccountTreeFull);
        }
        if id != expected {
            return Err(TxError::WrongNewAccountId { expected, got: id });
        }
        self.accounts.push(Account::new(owner));
        self.by_owner.insert(owner, id);
        self.journal.push(Write::NewAccount { account: id, owner });
        Ok(())
    }

    /// Records a public key for `account` whose hash is already in the state (used after
    /// restoring a state from storage or pubdata). Fails if the hash differs.
    pub fn remember_pubkey(&mut self, account: AccountId, key: PublicKey) -> Result<(), TxError> {
        let a = self.accounts.get_mut(account as usize).ok_or(TxError::UnknownAccount(account))?;
        if a.pubkey_hash != key.pubkey_hash() {
            return Err(TxError::OwnerMismatch(account));
        }
        a.pubkey = Some(key);
        Ok(())
    }

    /// Sets an account's key directly, bypassing ChangePubKey. For genesis set-ups and
    /// benchmarks only; a live node changes keys through transactions.
    pub fn genesis_set_key(&mut self, account: AccountId, key: PublicKey) -> Result<(), TxError> {
        self.acc(account)?;
        self.begin();
        self.set_key(account, key.pubkey_hash(), Some(key));
        Ok(())
    }

    // ---- operations --------------------------------------------------------------------------

    /// Applies one operation with every rule of section 11. On error nothing changes.
    pub fn apply_op(&mut self, op: &Op) -> Result<(), TxError> {
        self.begin();
        let result = self.apply_op_inner(op);
        if result.is_err() {
            self.rollback();
        }
        self.journal.clear();
        result
    }

    fn apply_op_inner(&mut self, op: &Op) -> Result<(), TxError> {
        // Amounts and fees that travel packed must pack.
        op.pubdata()?;
        match op {
            Op::Noop => Ok(()),
            Op::Deposit(o) => self.op_deposit(o),
            Op::Transfer(o) => self.op_transfer(o.from, o.from_sub, o.to, o.to_sub, o.token, o.amount, o.fee),
            Op::TransferToNew(o) => {
                self.acc(o.from)?;
                self.create_account(o.to, o.to_owner)?;
                self.op_transfer(o.from, o.from_sub, o.to, o.to_sub, o.token, o.amount, o.fee)
            }
            Op::Withdraw(o) => {
                self.acc(o.account)?;
                Self::check_sub(o.sub)?;
                self.check_payout(o.chain, o.l1_token, o.l2_token, o.amount)?;
                let total = o
                    .amount
                    .checked_add(o.fee)
                    .ok_or(TxError::BalanceOverflow { account: o.account, token: o.l2_token })?;
                self.debit(o.account, o.sub, o.l2_token, total)?;
                self.remove_liquidity(o.chain, o.l1_token, o.amount)?;
                self.collect_fee(o.l2_token, o.fee)?;
                self.bump_nonce(o.account)
            }
            Op::FullExit(o) => {
                Self::check_sub(o.sub)?;
                self.registry.check_chain(o.chain)?;
                let registered = self.full_exit_decimals(o.chain, o.l1_token);
                if o.l1_decimals != registered {
                    return Err(TxError::FullExitDecimals { claimed: o.l1_decimals, registered });
                }
                let computed = self.full_exit_amount(o.chain, o.account, o.sub, &o.owner, o.l1_token, o.l2_token);
                if computed != o.amount {
                    return Err(TxError::FullExitAmount { claimed: o.amount, computed });
                }
                if computed > 0 {
                    self.debit(o.account, o.sub, o.l2_token, computed)?;
                    self.remove_liquidity(o.chain, o.l1_token, computed)?;
                }
                Ok(())
            }
            Op::ChangePubKey(o) => {
                let a = self.acc(o.account)?;
                Self::check_sub(o.sub)?;
                self.registry.check_chain(o.chain)?;
                if a.owner.to_evm() != Some(o.owner) {
                    return Err(TxError::OwnerMismatch(o.account));
                }
                if a.nonce != o.nonce {
                    return Err(TxError::BadNonce { account: o.account, expected: a.nonce, got: o.nonce });
                }
                self.registry.token(o.fee_token)?;
                self.debit(o.account, o.sub, o.fee_token, o.fee)?;
                self.collect_fee(o.fee_token, o.fee)?;
                self.set_key(o.account, o.new_pubkey_hash, None);
                self.bump_nonce(o.account)
            }
            Op::ForcedExit(o) => self.op_forced_exit(o),
            Op::OrderMatching(o) => self.op_order_matching(o),
        }
    }

    fn op_deposit(&mut self, o: &DepositOp) -> Result<(), TxError> {
        Self::check_sub(o.sub)?;
        self.registry.l1_decimals(o.chain, o.l1_token)?;
        self.registry.check_funds(o.l1_token, o.l2_token)?;
        match self.account_by_owner(&o.owner) {
            Some(id) if id == o.account => {}
            Some(id) => return Err(TxError::AddressTaken(id)),
            None => self.create_account(o.account, o.owner)?,
        }
        if o.account == GLOBAL_ACCOUNT {
            return Err(TxError::GlobalAccount(o.account));
        }
        self.add_liquidity(o.chain, o.l1_token, o.amount)?;
        self.credit(o.account, o.sub, o.l2_token, o.amount)
    }

    #[allow(clippy::too_many_arguments)]
    fn op_transfer(
        &mut self,
        from: AccountId,
        from_sub: SubAccountId,
        to: AccountId,
        to_sub: SubAccountId,
        token: TokenId,
        amount: u128,
        fee: u128,
    ) -> Result<(), TxError> {
        self.acc(from)?;
        self.acc(to)?;
        Self::check_sub(from_sub)?;
        Self::check_sub(to_sub)?;
        self.registry.token(token)?;
        if from == to && from_sub == to_sub {
            return Err(TxError::SelfTransfer);
        }
        let total = amount.checked_add(fee).ok_or(TxError::BalanceOverflow { account: from, token })?;
        self.debit(from, from_sub, token, total)?;
        self.credit(to, to_sub, token, amount)?;
        self.collect_fee(token, fee)?;
        self.bump_nonce(from)
    }

    /// Checks that `amount` of L2 token `l2` may leave as L1 token `l1` on `chain`.
    fn check_payout(&self, chain: ChainId, l1: TokenId, l2: TokenId, amount: u128) -> Result<(), TxError> {
        self.registry.check_funds(l1, l2)?;
        self.registry.to_l1(chain, l1, amount)?;
        let available = self.liquidity(chain, l1);
        if amount > available {
            return Err(TxError::InsufficientLiquidity { chain, token: l1, available, needed: amount });
        }
        Ok(())
    }

    /// The amount a FullExit pays: the whole balance, capped by liquidity and rounded down to
    /// the L1 token's precision; 0 if the account does not exist, is the global account, its
    /// owner is not the requester, or the tokens are not a valid pair on that chain.
    pub fn full_exit_amount(
        &self,
        chain: ChainId,
        account: AccountId,
        sub: SubAccountId,
        owner: &Address,
        l1: TokenId,
        l2: TokenId,
    ) -> u128 {
        let Ok(a) = self.acc(account) else { return 0 };
        if a.owner != *owner || sub > MAX_SUB_ACCOUNT_ID || self.registry.check_funds(l1, l2).is_err() {
            return 0;
        }
        let capped = a.balance_at(balance_index(sub, l2)).min(self.liquidity(chain, l1));
        self.registry.round_to_l1_precision(chain, l1, capped).unwrap_or(0)
    }

    /// The `l1_decimals` of a FullExit: the L1 token's decimals on `chain`, 0 if it is not
    /// registered there (then the chain holds no liquidity of it and the amount is 0).
    pub fn full_exit_decimals(&self, chain: ChainId, l1: TokenId) -> u8 {
        self.registry.l1_decimals(chain, l1).unwrap_or(0)
    }

    fn op_forced_exit(&mut self, o: &ForcedExitOp) -> Result<(), TxError> {
        self.acc(o.initiator)?;
        let target = self.acc(o.target)?;
        Self::check_sub(o.initiator_sub)?;
        Self::check_sub(o.target_sub)?;
        if target.pubkey_hash != PubKeyHash::default() {
            return Err(TxError::TargetHasKey(o.target));
        }
        if target.owner != o.target_owner {
            return Err(TxError::OwnerMismatch(o.target));
        }
        let balance = target.balance_at(balance_index(o.target_sub, o.l2_token));
        if balance == 0 {
            return Err(TxError::NothingToWithdraw);
        }
        if o.amount != balance {
            return Err(TxError::ForcedExitAmount { claimed: o.amount, balance });
        }
        self.registry.token(o.fee_token)?;
        self.check_payout(o.chain, o.l1_token, o.l2_token, o.amount)?;
        self.debit(o.initiator, o.initiator_sub, o.fee_token, o.fee)?;
        self.collect_fee(o.fee_token, o.fee)?;
        self.debit(o.target, o.target_sub, o.l2_token, o.amount)?;
        self.remove_liquidity(o.chain, o.l1_token, o.amount)?;
        self.bump_nonce(o.initiator)
    }

    /// Fills one side's slot: returns the new slot after filling `fill` of an order of
    /// `order_amount` (residue 0 = fresh).
    fn fill_slot(slot: OrderSlot, order_amount: u128, fill: u128) -> Result<OrderSlot, TxError> {
        let available = if slot.residue == 0 { order_amount } else { slot.residue };
        let left = available.checked_sub(fill).ok_or(TxError::OrderOverfilled { available, fill })?;
        if left == 0 {
            let nonce =
                slot.nonce.checked_add(1).ok_or(TxError::OrderNonce { expected: slot.nonce, got: slot.nonce })?;
            Ok(OrderSlot { nonce, residue: 0 })
        } else {
            Ok(OrderSlot { nonce: slot.nonce, residue: left })
        }
    }

    fn op_order_matching(&mut self, o: &OrderMatchingOp) -> Result<(), TxError> {
        self.acc(o.maker)?;
        self.acc(o.taker)?;
        Self::check_sub(o.maker_sub)?;
        Self::check_sub(o.taker_sub)?;
        self.registry.token(o.base)?;
        self.registry.token(o.quote)?;
        if o.base == o.quote {
            return Err(TxError::OrderMismatch("base and quote token are the same"));
        }
        if o.maker == o.taker && o.maker_sub == o.taker_sub {
            return Err(TxError::OrderMismatch("maker and taker are the same sub-account"));
        }
        if o.base_fill == 0 || o.quote_fill == 0 {
            return Err(TxError::ZeroFill);
        }
        for bps in [o.maker_fee_bps, o.taker_fee_bps] {
            if bps > MAX_FEE_BPS {
                return Err(TxError::FeeRatio(bps));
            }
        }
        let maker_index = order_index(o.maker_sub, o.maker_slot);
        let taker_index = order_index(o.taker_sub, o.taker_slot);
        let maker_slot =
            Self::fill_slot(self.slot(o.maker, o.maker_sub, o.maker_slot), o.maker_order_amount, o.base_fill)?;
        let taker_slot =
            Self::fill_slot(self.slot(o.taker, o.taker_sub, o.taker_slot), o.taker_order_amount, o.base_fill)?;
        self.write_slot(o.maker, maker_index, maker_slot);
        self.write_slot(o.taker, taker_index, taker_slot);

        // The seller gives base and receives quote; the buyer gives quote and receives base.
        let (seller, seller_sub, buyer, buyer_sub, seller_bps, buyer_bps) = if o.maker_is_sell {
            (o.maker, o.maker_sub, o.taker, o.taker_sub, o.maker_fee_bps, o.taker_fee_bps)
        } else {
            (o.taker, o.taker_sub, o.maker, o.maker_sub, o.taker_fee_bps, o.maker_fee_bps)
        };
        let seller_fee = fee_of(o.quote_fill, seller_bps);
        let buyer_fee = fee_of(o.base_fill, buyer_bps);
        self.debit(seller, seller_sub, o.base, o.base_fill)?;
        self.debit(buyer, buyer_sub, o.quote, o.quote_fill)?;
        self.credit(seller, seller_sub, o.quote, o.quote_fill - seller_fee)?;
        self.credit(buyer, buyer_sub, o.base, o.base_fill - buyer_fee)?;
        self.collect_fee(o.quote, seller_fee)?;
        self.collect_fee(o.base, buyer_fee)
    }
}

/// `floor(received · bps / 10000)`, without overflow.
pub fn fee_of(received: u128, bps: u8) -> u128 {
    let bps = u128::from(bps);
    (received / 10_000) * bps + (received % 10_000) * bps / 10_000
}
