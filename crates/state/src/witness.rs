//! Witnesses for the block circuit: an op applied write by write, each write with the Merkle
//! proofs of the leaves it changes, taken against the state right before it. The semantics stay
//! in [`State::apply_op`]; this module only replays its journal with proofs.

use zkl_crypto::{Fr, PubKeyHash};
use zkl_types::op::Op;
use zkl_types::{AccountId, Address, Nonce};

use crate::error::TxError;
use crate::state::{State, Write};
use crate::tree::MerkleProof;

/// The fields of an account leaf (section 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFields {
    pub nonce: Nonce,
    pub pubkey_hash: PubKeyHash,
    pub owner: Address,
    pub balance_root: Fr,
    pub order_root: Fr,
}

impl AccountFields {
    /// The account hash.
    pub fn hash(&self) -> Fr {
        crate::account::account_hash(self.nonce, &self.pubkey_hash, &self.owner, self.balance_root, self.order_root)
    }
}

/// One write with its proofs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteWitness {
    pub write: Write,
    /// State root before the write.
    pub root_before: Fr,
    /// The changed account's leaf fields before the write (empty fields for a new account).
    pub account_before: Option<AccountFields>,
    /// Proof of the account leaf before the write.
    pub account_proof: Option<MerkleProof>,
    /// Proof of the balance or order leaf before the write.
    pub leaf_proof: Option<MerkleProof>,
    /// State root after the write (fees do not change it until the block is sealed).
    pub root_after: Fr,
}

/// An op and its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpWitness {
    pub op: Op,
    pub writes: Vec<WriteWitness>,
}

impl State {
    fn fields(&self, account: AccountId) -> AccountFields {
        match self.account(account) {
            Some(a) => AccountFields {
                nonce: a.nonce,
                pubkey_hash: a.pubkey_hash,
                owner: a.owner,
                balance_root: a.balance_root(),
                order_root: a.order_root(),
            },
            None => {
                let e = crate::tree::empty_sub_tree();
                AccountFields {
                    nonce: 0,
                    pubkey_hash: PubKeyHash::default(),
                    owner: Address::ZERO,
                    balance_root: e[zkl_types::BALANCE_TREE_DEPTH],
                    order_root: e[zkl_types::ORDER_TREE_DEPTH],
                }
            }
        }
    }

    /// Applies `op` (all rules of [`State::apply_op`]) and returns every write with proofs.
    /// Slower than `apply_op` (roots are recomputed after every write); used for proving.
    pub fn apply_op_witnessed(&mut self, op: &Op) -> Result<OpWitness, TxError> {
        let writes = self.apply_op_journaled(op)?;
        self.undo_all(&writes);
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let root_before = self.commit();
            let (account_before, account_proof, leaf_proof) = match w.account() {
                Some(id) => {
                    let leaf_proof = match &w {
                        Write::Balance { index, .. } => Some(self.accounts[id as usize].balance_proof(*index)),
                        Write::Slot { index, .. } => Some(self.accounts[id as usize].order_proof(*index)),
                        _ => None,
                    };
                    (Some(self.fields(id)), Some(self.account_proof(id)), leaf_proof)
                }
                None => (None, None, None),
            };
            self.redo(&w);
            let root_after = self.commit();
            out.push(WriteWitness { write: w, root_before, account_before, account_proof, leaf_proof, root_after });
        }
        Ok(OpWitness { op: *op, writes: out })
    }
}

impl State {
    /// Credits the block's fees (as [`State::credit_fees`]) and returns the writes with proofs.
    pub fn credit_fees_witnessed(&mut self) -> Vec<WriteWitness> {
        let fees = std::mem::take(&mut self.pending_fees);
        let mut out = Vec::new();
        for (token, amount) in fees {
            let index = zkl_types::balance_index(0, token);
            let old = self.accounts[zkl_types::FEE_ACCOUNT as usize].balance_at(index);
            let write = Write::Balance { account: zkl_types::FEE_ACCOUNT, index, old, new: old.saturating_add(amount) };
            let root_before = self.commit();
            let account_before = Some(self.fields(zkl_types::FEE_ACCOUNT));
            let account_proof = Some(self.account_proof(zkl_types::FEE_ACCOUNT));
            let leaf_proof = Some(self.accounts[zkl_types::FEE_ACCOUNT as usize].balance_proof(index));
            self.redo(&write);
            let root_after = self.commit();
            out.push(WriteWitness { write, root_before, account_before, account_proof, leaf_proof, root_after });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use zkl_types::*;

    /// Every proof in a witness opens to the root it claims, and the roots chain.
    fn check(w: &OpWitness, mut root: Fr) -> Fr {
        for ww in &w.writes {
            assert_eq!(ww.root_before, root);
            if let (Some(fields), Some(proof)) = (&ww.account_before, &ww.account_proof) {
                assert_eq!(proof.root(fields.hash()), ww.root_before, "account proof of {:?}", ww.write);
                match (&ww.write, &ww.leaf_proof) {
                    (Write::Balance { old, .. }, Some(p)) => assert_eq!(p.root(Fr::from(*old)), fields.balance_root),
                    (Write::Slot { old, .. }, Some(p)) => assert_eq!(p.root(old.leaf()), fields.order_root),
                    (_, None) => {}
                    (w, p) => panic!("unexpected leaf proof {p:?} for {w:?}"),
                }
            }
            root = ww.root_after;
        }
        root
    }

    #[test]
    fn witnessed_ops_match_plain_application() {
        let (a, b, m) = (User::new(1), User::new(2), User::new(3));
        let mut plain = crate::State::new(demo_registry(), User::new(999).address);
        let mut ops = Vec::new();
        for (i, req) in [
            deposit(1, 0, a.address, USDC, USDC, 1_000_000_000),
            deposit(2, 0, b.address, ETH, ETH, ONE),
            deposit(1, 1, m.address, ETH, ETH, ONE),
        ]
        .iter()
        .enumerate()
        {
            let _ = i;
            ops.push(plain.execute_priority(req).unwrap());
        }
        for tx in
            [a.change_pubkey(2, 0, 1, USDC, 0), b.change_pubkey(3, 0, 2, ETH, 1000), m.change_pubkey(4, 0, 1, ETH, 0)]
        {
            ops.push(plain.execute_tx(&tx).unwrap());
        }
        plain.set_matcher(4, true);
        let sell = b.order(3, 1, 0, ETH, USDC, ONE, 1_000 * ONE, true);
        let buy = a.order(2, 1, 0, ETH, USDC, ONE / 2, 1_000 * ONE, false);
        for tx in [
            a.transfer(2, User::new(50).address, USDC, 10 * ONE, ONE / 100, 1),
            matching(&m, 4, sell, buy, ONE / 5, (0, 0)),
            b.withdraw(3, 2, ETH, ETH, ONE / 10, 0, 1),
        ] {
            ops.push(plain.execute_tx(&tx).unwrap());
        }
        plain.credit_fees();
        let expected = plain.commit();

        let mut replica = crate::State::new(demo_registry(), User::new(999).address);
        let mut root = replica.commit();
        for op in &ops {
            let w = replica.apply_op_witnessed(op).unwrap();
            assert!(!w.writes.is_empty());
            root = check(&w, root);
        }
        let fee_writes = replica.credit_fees_witnessed();
        assert_eq!(fee_writes.len(), 2, "USDC and ETH fees");
        let root = check(&OpWitness { op: Op::Noop, writes: fee_writes }, root);
        assert_eq!(root, expected);
        // A rejected op yields no witness and changes nothing.
        let before = replica.commit();
        let bad = Op::Transfer(op::TransferOp {
            from: 2,
            to: 3,
            from_sub: 0,
            to_sub: 0,
            token: USDC,
            amount: 10_000 * ONE,
            fee: 0,
        });
        assert!(replica.apply_op_witnessed(&bad).is_err());
        assert_eq!(replica.commit(), before);
    }
}
