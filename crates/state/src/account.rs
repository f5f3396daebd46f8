//! Accounts: nonce, pubkey hash, owner, balance tree and order tree (protocol.md section 10).

use std::collections::HashMap;
use std::sync::OnceLock;

use zkl_crypto::{Fr, PubKeyHash, PublicKey, poseidon};
use zkl_types::{ACCOUNT_TREE_DEPTH, Address, BALANCE_TREE_DEPTH, Nonce, ORDER_TREE_DEPTH};

use crate::tree::{QuadTree, TreePlan, empty_hashes, empty_sub_tree};

/// What committing one account writes: its subtrees' nodes and its new hash.
#[derive(Debug, Clone)]
pub(crate) struct AccountPlan {
    balances: TreePlan,
    orders: TreePlan,
    pub(crate) hash: Fr,
}

/// An order slot: the nonce of the order it accepts and the unfilled base amount of that order
/// (0 = no fill yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderSlot {
    pub nonce: Nonce,
    pub residue: u128,
}

impl OrderSlot {
    /// The leaf value `nonce << 128 | residue`.
    pub fn leaf(&self) -> Fr {
        let two128 = Fr::from(u128::MAX) + Fr::from(1u64);
        Fr::from(self.nonce) * two128 + Fr::from(self.residue)
    }
}

/// Account hash of section 10.
pub fn account_hash(nonce: Nonce, pubkey_hash: &PubKeyHash, owner: &Address, balance_root: Fr, order_root: Fr) -> Fr {
    let two160 = Fr::from(1u64 << 32) * Fr::from(u128::MAX) + Fr::from(1u64 << 32);
    let nonce_pkh = Fr::from(nonce) * two160 + pubkey_hash.to_fr();
    poseidon::hash_array([nonce_pkh, owner.hi(), owner.lo(), balance_root, order_root])
}

/// Hash of the empty account (the account tree's empty leaf).
pub fn empty_account_hash() -> Fr {
    let e = empty_sub_tree();
    account_hash(0, &PubKeyHash::default(), &Address::ZERO, e[BALANCE_TREE_DEPTH], e[ORDER_TREE_DEPTH])
}

/// Empty hashes of the account tree.
pub fn empty_account_tree() -> &'static [Fr] {
    static E: OnceLock<Vec<Fr>> = OnceLock::new();
    E.get_or_init(|| empty_hashes(empty_account_hash(), ACCOUNT_TREE_DEPTH))
}

/// One account.
#[derive(Debug, Clone)]
pub struct Account {
    pub nonce: Nonce,
    pub pubkey_hash: PubKeyHash,
    pub owner: Address,
    /// The full public key behind `pubkey_hash`, when this node has seen it (not part of the
    /// state hash; needed to check signatures).
    pub pubkey: Option<PublicKey>,
    pub(crate) balances: HashMap<u32, u128>,
    pub(crate) orders: HashMap<u32, OrderSlot>,
    pub(crate) balance_tree: QuadTree,
    pub(crate) order_tree: QuadTree,
    pub(crate) dirty: bool,
}

impl Account {
    pub(crate) fn new(owner: Address) -> Self {
        Account {
            nonce: 0,
            pubkey_hash: PubKeyHash::default(),
            owner,
            pubkey: None,
            balances: HashMap::new(),
            orders: HashMap::new(),
            balance_tree: QuadTree::new(BALANCE_TREE_DEPTH, empty_sub_tree()),
            order_tree: QuadTree::new(ORDER_TREE_DEPTH, empty_sub_tree()),
            dirty: true,
        }
    }

    /// Balance at a balance-tree index.
    pub fn balance_at(&self, index: u32) -> u128 {
        self.balances.get(&index).copied().unwrap_or(0)
    }

    /// Order slot at an order-tree index.
    pub fn slot_at(&self, index: u32) -> OrderSlot {
        self.orders.get(&index).copied().unwrap_or_default()
    }

    /// Every non-zero balance as (index, amount).
    pub fn balances(&self) -> impl Iterator<Item = (u32, u128)> + '_ {
        self.balances.iter().map(|(k, v)| (*k, *v))
    }

    /// Every used order slot as (index, slot).
    pub fn order_slots(&self) -> impl Iterator<Item = (u32, OrderSlot)> + '_ {
        self.orders.iter().map(|(k, v)| (*k, *v))
    }

    pub(crate) fn set_balance(&mut self, index: u32, value: u128) {
        if value == 0 {
            self.balances.remove(&index);
        } else {
            self.balances.insert(index, value);
        }
        self.balance_tree.set(u64::from(index), Fr::from(value));
        self.dirty = true;
    }

    pub(crate) fn set_slot(&mut self, index: u32, slot: OrderSlot) {
        if slot == OrderSlot::default() {
            self.orders.remove(&index);
        } else {
            self.orders.insert(index, slot);
        }
        self.order_tree.set(u64::from(index), slot.leaf());
        self.dirty = true;
    }

    /// What committing both subtrees writes, and the account hash they give, computed without
    /// changing the account.
    pub(crate) fn plan(&self) -> AccountPlan {
        let (balances, orders) = (self.balance_tree.plan(&[]), self.order_tree.plan(&[]));
        let hash = account_hash(self.nonce, &self.pubkey_hash, &self.owner, balances.root(), orders.root());
        AccountPlan { balances, orders, hash }
    }

    /// Writes a [`Self::plan`] of this account; returns the account hash.
    pub(crate) fn apply(&mut self, plan: AccountPlan) -> Fr {
        self.balance_tree.apply(plan.balances);
        self.order_tree.apply(plan.orders);
        self.dirty = false;
        plan.hash
    }

    /// The account hash from committed subtrees (call after a state commit).
    pub fn hash(&self) -> Fr {
        account_hash(
            self.nonce,
            &self.pubkey_hash,
            &self.owner,
            self.balance_tree.committed_root(),
            self.order_tree.committed_root(),
        )
    }

    /// Committed balance-tree root.
    pub fn balance_root(&self) -> Fr {
        self.balance_tree.committed_root()
    }

    /// Committed order-tree root.
    pub fn order_root(&self) -> Fr {
        self.order_tree.committed_root()
    }

    /// Proof of a balance leaf (after a state commit).
    pub fn balance_proof(&self, index: u32) -> crate::tree::MerkleProof {
        self.balance_tree.proof(u64::from(index))
    }

    /// Proof of an order leaf (after a state commit).
    pub fn order_proof(&self, index: u32) -> crate::tree::MerkleProof {
        self.order_tree.proof(u64::from(index))
    }
}
