//! Signed transactions and priority requests: signature, nonce and policy checks, then the
//! operation they become (applied through [`State::apply_op`]).

use std::sync::Arc;

use rayon::prelude::*;
use zkl_crypto::PublicKey;
use zkl_crypto::keys::{parse_canonical_eth_signature, recover_personal_signer};
use zkl_crypto::remembered::Remembered;
use zkl_types::op::*;
use zkl_types::*;

use crate::error::TxError;
use crate::state::{State, fee_of};

/// The keys a transaction's signatures were checked against, and its hash (computed from the
/// signed message the check needed anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKeys {
    keys: Vec<(AccountId, PublicKey)>,
    hash: [u8; 32],
}

impl VerifiedKeys {
    /// The tx hash (`SignedTx::hash`) of the tx these keys were checked for.
    pub fn tx_hash(&self) -> [u8; 32] {
        self.hash
    }
}

/// Order signatures found valid: (key, message, signature) packed. A maker order is signed once
/// and checked in each of its fills; a fact about three values, true forever, so clones of the
/// state share it. At most [`ORDERS_CHECKED`] are kept (then it starts afresh).
#[derive(Debug, Clone)]
pub(crate) struct OrdersChecked(Arc<Remembered<[u8; 128], ()>>);

/// How many checked order signatures the state remembers at most.
pub const ORDERS_CHECKED: usize = 1 << 16;

impl Default for OrdersChecked {
    fn default() -> Self {
        Self(Arc::new(Remembered::new(ORDERS_CHECKED)))
    }
}

impl OrdersChecked {
    fn verify(&self, key: &PublicKey, msg: &zkl_crypto::Fr, sig: &zkl_crypto::Signature) -> Result<(), TxError> {
        let mut fact = [0u8; 128];
        fact[..32].copy_from_slice(&key.pack());
        fact[32..64].copy_from_slice(&zkl_crypto::field::fr_to_le_bytes(msg));
        fact[64..].copy_from_slice(&sig.pack());
        if self.0.get(&fact).is_none() {
            key.verify(msg, sig)?;
            self.0.insert(fact, ());
        }
        Ok(())
    }
}

/// `a · b` as a 256-bit (hi, lo) pair.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & u128::from(u64::MAX)) + (p10 & u128::from(u64::MAX));
    let lo = (p00 & u128::from(u64::MAX)) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

impl State {
    fn signing_key(&self, account: AccountId) -> Result<PublicKey, TxError> {
        if account == GLOBAL_ACCOUNT {
            return Err(TxError::GlobalAccount(account));
        }
        let a = self.account(account).ok_or(TxError::UnknownAccount(account))?;
        a.pubkey.ok_or(TxError::NoSigningKey(account))
    }

    /// Checks every EdDSA signature of `stx` against the current keys (read-only, so batches
    /// can be checked in parallel).
    pub fn verify_signatures(&self, stx: &SignedTx) -> Result<VerifiedKeys, TxError> {
        // An order matching's message covers both orders' messages: each is hashed once.
        let order_messages = match &stx.tx {
            Tx::OrderMatching(t) => [t.maker.order.message(), t.taker.order.message()],
            _ => Default::default(),
        };
        let msg = match &stx.tx {
            Tx::OrderMatching(t) => t.message_with(&order_messages[0], &order_messages[1]),
            tx => tx.message(),
        };
        let mut keys = Vec::with_capacity(3);
        match &stx.tx {
            Tx::ChangePubKey(t) => {
                t.new_pubkey.verify(&msg, &stx.signature)?;
                keys.push((t.account, t.new_pubkey));
            }
            Tx::OrderMatching(t) => {
                if !self.is_matcher(t.matcher) {
                    return Err(TxError::MatcherNotAllowed(t.matcher));
                }
                let key = self.signing_key(t.matcher)?;
                key.verify(&msg, &stx.signature)?;
                keys.push((t.matcher, key));
                for (order, message) in [&t.maker, &t.taker].into_iter().zip(&order_messages) {
                    let key = self.signing_key(order.order.account)?;
                    self.orders_checked.verify(&key, message, &order.signature)?;
                    keys.push((order.order.account, key));
                }
            }
            other => {
                let account = other.signer();
                let key = self.signing_key(account)?;
                key.verify(&msg, &stx.signature)?;
                keys.push((account, key));
            }
        }
        Ok(VerifiedKeys { keys, hash: tx_hash(&msg) })
    }

    /// Every address a tx names must be a (non-zero) EVM address: the contracts pay only EVM
    /// addresses and only an EVM owner can authorise a key or claim in exodus.
    fn check_evm_address(address: &Address) -> Result<(), TxError> {
        if *address == Address::ZERO {
            return Err(TxError::ZeroAddress);
        }
        address.to_evm().map(|_| ()).ok_or(TxError::NotEvmAddress(*address))
    }

    fn check_nonce(&self, account: AccountId, nonce: Nonce) -> Result<(), TxError> {
        let a = self.account(account).ok_or(TxError::UnknownAccount(account))?;
        if a.nonce != nonce {
            return Err(TxError::BadNonce { account, expected: a.nonce, got: nonce });
        }
        Ok(())
    }

    /// The operation a signed tx becomes, given keys already verified (read-only).
    pub fn tx_to_op(&self, stx: &SignedTx, keys: &VerifiedKeys) -> Result<Op, TxError> {
        // Keys may have changed since the signatures were checked (a ChangePubKey earlier in
        // the same batch): then the signatures are checked again.
        let current = |(account, key): &(AccountId, PublicKey)| match &stx.tx {
            Tx::ChangePubKey(t) if t.account == *account => true,
            _ => self.account(*account).and_then(|a| a.pubkey) == Some(*key),
        };
        if !keys.keys.iter().all(current) {
            let fresh = self.verify_signatures(stx)?;
            return self.tx_to_op(stx, &fresh);
        }
        Ok(match &stx.tx {
            Tx::Transfer(t) => {
                self.check_nonce(t.account, t.nonce)?;
                Self::check_evm_address(&t.to)?;
                match self.account_by_owner(&t.to) {
                    Some(to) => Op::Transfer(TransferOp {
                        from: t.account,
                        to,
                        from_sub: t.from_sub,
                        to_sub: t.to_sub,
                        token: t.token,
                        amount: t.amount,
                        fee: t.fee,
                    }),
                    None => Op::TransferToNew(TransferToNewOp {
                        from: t.account,
                        from_sub: t.from_sub,
                        to: self.account_count(),
                        to_sub: t.to_sub,
                        token: t.token,
                        amount: t.amount,
                        fee: t.fee,
                        to_owner: t.to,
                    }),
                }
            }
            Tx::Withdraw(t) => {
                self.check_nonce(t.account, t.nonce)?;
                Self::check_evm_address(&t.to)?;
                Op::Withdraw(WithdrawOp {
                    chain: t.chain,
                    account: t.account,
                    sub: t.sub,
                    l2_token: t.l2_token,
                    l1_token: t.l1_token,
                    amount: t.amount,
                    fee: t.fee,
                    to: t.to,
                })
            }
            Tx::ChangePubKey(t) => {
                self.check_nonce(t.account, t.nonce)?;
                let a = self.account(t.account).ok_or(TxError::UnknownAccount(t.account))?;
                let owner = a.owner.to_evm().ok_or(TxError::BadEthAuth)?;
                let pkh = t.new_pubkey.pubkey_hash();
                // Exactly what chain `t.chain`'s contract checks at commit.
                self.registry.check_chain(t.chain)?;
                match &t.auth {
                    ChangePubKeyAuth::EthSignature(sig) => {
                        let msg = change_pubkey_eth_message(&pkh, t.nonce, t.account, t.chain);
                        let sig =
                            parse_canonical_eth_signature(sig).map_err(|e| TxError::EthSignatureForm(e.to_string()))?;
                        let signer = recover_personal_signer(&msg, &sig).map_err(|_| TxError::BadEthAuth)?;
                        if signer.0.0 != owner {
                            return Err(TxError::BadEthAuth);
                        }
                    }
                    ChangePubKeyAuth::Onchain => {
                        let fact = AuthFact { chain: t.chain, owner: a.owner, nonce: t.nonce, pubkey_hash: pkh };
                        if !self.has_auth_fact(&fact) {
                            return Err(TxError::NoAuthFact { chain: t.chain, nonce: t.nonce });
                        }
                    }
                }
                Op::ChangePubKey(ChangePubKeyOp {
                    chain: t.chain,
                    account: t.account,
                    sub: t.sub,
                    new_pubkey_hash: pkh,
                    owner,
                    nonce: t.nonce,
                    fee_token: t.fee_token,
                    fee: t.fee,
                })
            }
            Tx::ForcedExit(t) => {
                self.check_nonce(t.initiator, t.nonce)?;
                let target = self.account(t.target).ok_or(TxError::UnknownAccount(t.target))?;
                Self::check_evm_address(&target.owner)?;
                Op::ForcedExit(ForcedExitOp {
                    chain: t.chain,
                    initiator: t.initiator,
                    initiator_sub: t.initiator_sub,
                    target: t.target,
                    target_sub: t.target_sub,
                    l2_token: t.l2_token,
                    l1_token: t.l1_token,
                    fee_token: t.fee_token,
                    fee: t.fee,
                    amount: target.balance_at(balance_index(t.target_sub, t.l2_token)),
                    target_owner: target.owner,
                })
            }
            Tx::OrderMatching(t) => self.matching_to_op(t)?,
        })
    }

    fn matching_to_op(&self, t: &OrderMatching) -> Result<Op, TxError> {
        let (maker, taker) = (&t.maker.order, &t.taker.order);
        if maker.base != taker.base || maker.quote != taker.quote {
            return Err(TxError::OrderMismatch("orders trade different token pairs"));
        }
        if maker.is_sell == taker.is_sell {
            return Err(TxError::OrderMismatch("both orders are on the same side"));
        }
        if maker.amount == 0 || taker.amount == 0 || maker.price == 0 || taker.price == 0 {
            return Err(TxError::OrderMismatch("order amount and price must be positive"));
        }
        for (order, claimed) in [(maker, t.maker_residue_before), (taker, t.taker_residue_before)] {
            let slot = self.slot(order.account, order.sub, order.slot);
            if slot.nonce != order.nonce {
                return Err(TxError::OrderNonce { expected: slot.nonce, got: order.nonce });
            }
            if slot.residue != claimed {
                return Err(TxError::ResidueMismatch { actual: slot.residue, claimed });
            }
        }
        if t.base_fill == 0 || t.quote_fill == 0 {
            return Err(TxError::ZeroFill);
        }
        // Execution at the maker's price, exactly.
        if mul_wide(t.quote_fill, PRICE_SCALE) != mul_wide(t.base_fill, maker.price) {
            return Err(TxError::PriceMismatch);
        }
        // The taker's limit: a buyer pays at most its price, a seller receives at least its price.
        let within_limit = if taker.is_sell { maker.price >= taker.price } else { maker.price <= taker.price };
        if !within_limit {
            return Err(TxError::PriceLimit);
        }
        Ok(Op::OrderMatching(OrderMatchingOp {
            maker: maker.account,
            taker: taker.account,
            maker_sub: maker.sub,
            taker_sub: taker.sub,
            maker_is_sell: maker.is_sell,
            maker_slot: maker.slot,
            taker_slot: taker.slot,
            base: maker.base,
            quote: maker.quote,
            base_fill: t.base_fill,
            quote_fill: t.quote_fill,
            maker_fee_bps: maker.maker_fee_bps,
            taker_fee_bps: taker.taker_fee_bps,
            maker_order_amount: maker.amount,
            taker_order_amount: taker.amount,
        }))
    }

    /// Verifies, converts and applies one signed tx. On error nothing changes.
    pub fn execute_tx(&mut self, stx: &SignedTx) -> Result<Op, TxError> {
        let keys = self.verify_signatures(stx)?;
        self.execute_verified(stx, &keys)
    }

    /// Converts and applies a tx whose signatures were checked by [`State::verify_signatures`].
    pub fn execute_verified(&mut self, stx: &SignedTx, keys: &VerifiedKeys) -> Result<Op, TxError> {
        let op = self.tx_to_op(stx, keys)?;
        self.check_block_room(&op)?;
        self.apply_op(&op)?;
        if let Tx::ChangePubKey(t) = &stx.tx {
            self.accounts[t.account as usize].pubkey = Some(t.new_pubkey);
        }
        self.record_op(op);
        Ok(op)
    }

    /// Executes a batch: signatures are checked in parallel, then the txs apply in order.
    pub fn execute_batch(&mut self, txs: &[SignedTx]) -> Vec<Result<Op, TxError>> {
        let verified: Vec<Result<VerifiedKeys, TxError>> = txs.par_iter().map(|t| self.verify_signatures(t)).collect();
        txs.iter().zip(verified).map(|(tx, keys)| self.execute_verified(tx, &keys?)).collect()
    }

    /// The operation a priority request becomes.
    pub fn priority_to_op(&self, req: &PriorityRequest) -> Result<Op, TxError> {
        Ok(match req {
            PriorityRequest::Deposit { chain, sub, l1_token, l2_token, l1_amount, owner, .. } => {
                let amount = self.registry.to_l2(*chain, *l1_token, *l1_amount)?;
                Op::Deposit(DepositOp {
                    chain: *chain,
                    account: self.account_by_owner(owner).unwrap_or(self.account_count()),
                    sub: *sub,
                    l1_token: *l1_token,
                    l2_token: *l2_token,
                    amount,
                    owner: *owner,
                })
            }
            PriorityRequest::FullExit { chain, account, sub, owner, l1_token, l2_token, .. } => {
                Op::FullExit(FullExitOp {
                    chain: *chain,
                    account: *account,
                    sub: *sub,
                    owner: *owner,
                    l1_token: *l1_token,
                    l2_token: *l2_token,
                    amount: self.full_exit_amount(*chain, *account, *sub, owner, *l1_token, *l2_token),
                    l1_decimals: self.full_exit_decimals(*chain, *l1_token),
                })
            }
        })
    }

    /// The op code a tx of `kind` paying to `recipient` becomes in this state.
    pub fn op_code_of(&self, kind: TxKind, recipient: Option<&Address>) -> u8 {
        kind.op_code(recipient.is_none_or(|to| self.account_by_owner(to).is_some()))
    }

    /// Converts and applies a priority request. On error nothing changes.
    pub fn execute_priority(&mut self, req: &PriorityRequest) -> Result<Op, TxError> {
        let op = self.priority_to_op(req)?;
        self.check_block_room(&op)?;
        self.apply_op(&op)?;
        self.record_op(op);
        Ok(op)
    }
}

/// Tokens in which an op collects a non-zero fee.
pub fn fee_tokens(op: &Op) -> Vec<TokenId> {
    let mut out = match op {
        Op::Transfer(o) if o.fee > 0 => vec![o.token],
        Op::TransferToNew(o) if o.fee > 0 => vec![o.token],
        Op::Withdraw(o) if o.fee > 0 => vec![o.l2_token],
        Op::ChangePubKey(o) if o.fee > 0 => vec![o.fee_token],
        Op::ForcedExit(o) if o.fee > 0 => vec![o.fee_token],
        Op::OrderMatching(o) => {
            let (seller_bps, buyer_bps) =
                if o.maker_is_sell { (o.maker_fee_bps, o.taker_fee_bps) } else { (o.taker_fee_bps, o.maker_fee_bps) };
            let mut v = Vec::new();
            if fee_of(o.quote_fill, seller_bps) > 0 {
                v.push(o.quote);
            }
            if fee_of(o.base_fill, buyer_bps) > 0 {
                v.push(o.base);
            }
            v
        }
        _ => vec![],
    };
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::mul_wide;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn mul_wide_matches_u64_parts(a in any::<u64>(), b in any::<u64>(), c in any::<u128>()) {
            prop_assert_eq!(mul_wide(u128::from(a), u128::from(b)), (0, u128::from(a) * u128::from(b)));
            prop_assert_eq!(mul_wide(c, 1), (0, c));
            prop_assert_eq!(mul_wide(c, 1 << 64), (c >> 64, c << 64));
        }
    }
}
