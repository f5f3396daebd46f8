//! Layer-2 transactions, their signed messages and hashes (protocol.md section 12), and the
//! priority requests that arrive from Layer 1.

use alloy_primitives::keccak256;
use zkl_crypto::{Fr, PrivateKey, PublicKey, Signature, field::fr_to_be_bytes, poseidon};

use crate::codec::{Writer, fr_from_u128};
use crate::ids::*;

/// Transfer `amount` of `token` from (account, from_sub) to the account owned by `to`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transfer {
    pub account: AccountId,
    pub from_sub: SubAccountId,
    pub to: Address,
    pub to_sub: SubAccountId,
    pub token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
    pub nonce: Nonce,
}

/// Withdraw `amount` of L2 token `l2_token` as L1 token `l1_token` on `chain` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Withdraw {
    pub account: AccountId,
    pub sub: SubAccountId,
    pub chain: ChainId,
    pub l2_token: TokenId,
    pub l1_token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
    pub to: Address,
    pub nonce: Nonce,
}

/// How the owner authorised a ChangePubKey.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangePubKeyAuth {
    /// `personal_sign` by the owner's Ethereum key over [`change_pubkey_eth_message`] (r ‖ s ‖ v).
    EthSignature(#[serde(with = "crate::serde_impls::bytes_hex")] [u8; 65]),
    /// Pre-authorised on chain `chain` by the owner (checked by that chain's contract).
    Onchain,
}

/// Set the account's signing key; signed by the new key, authorised by the owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangePubKey {
    pub account: AccountId,
    pub sub: SubAccountId,
    pub chain: ChainId,
    #[serde(with = "crate::serde_impls::pubkey_hex")]
    pub new_pubkey: PublicKey,
    pub fee_token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
    pub nonce: Nonce,
    pub auth: ChangePubKeyAuth,
}

/// Withdraw the whole balance of a key-less target account to its owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ForcedExit {
    pub initiator: AccountId,
    pub initiator_sub: SubAccountId,
    pub target: AccountId,
    pub target_sub: SubAccountId,
    pub chain: ChainId,
    pub l2_token: TokenId,
    pub l1_token: TokenId,
    pub fee_token: TokenId,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub fee: u128,
    pub nonce: Nonce,
}

/// A limit order, signed by its trader.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub account: AccountId,
    pub sub: SubAccountId,
    pub slot: SlotId,
    pub nonce: Nonce,
    pub base: TokenId,
    pub quote: TokenId,
    /// Base amount (must pack).
    #[serde(with = "crate::serde_impls::u128_str")]
    pub amount: u128,
    /// Quote units per base unit, times 10^18.
    #[serde(with = "crate::serde_impls::u128_str")]
    pub price: u128,
    pub is_sell: bool,
    pub maker_fee_bps: u8,
    pub taker_fee_bps: u8,
}

/// An order with its trader's signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedOrder {
    pub order: Order,
    #[serde(with = "crate::serde_impls::signature_hex")]
    pub signature: Signature,
}

/// A match of a resting maker order and an incoming taker order, submitted by a matcher.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderMatching {
    pub matcher: AccountId,
    pub maker: SignedOrder,
    pub taker: SignedOrder,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub base_fill: u128,
    #[serde(with = "crate::serde_impls::u128_str")]
    pub quote_fill: u128,
    /// The maker slot's residue before this fill (0 = fresh order).
    #[serde(with = "crate::serde_impls::u128_str")]
    pub maker_residue_before: u128,
    /// The taker slot's residue before this fill.
    #[serde(with = "crate::serde_impls::u128_str")]
    pub taker_residue_before: u128,
}

/// An unsigned Layer-2 transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tx {
    Transfer(Transfer),
    Withdraw(Withdraw),
    ChangePubKey(ChangePubKey),
    ForcedExit(ForcedExit),
    OrderMatching(Box<OrderMatching>),
}

/// The kinds of signed transactions, and the op each becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxKind {
    Transfer,
    Withdraw,
    ChangePubKey,
    ForcedExit,
    OrderMatching,
}

impl TxKind {
    pub const ALL: [TxKind; 5] =
        [TxKind::Transfer, TxKind::Withdraw, TxKind::ChangePubKey, TxKind::ForcedExit, TxKind::OrderMatching];

    /// The op code a tx of this kind becomes. A transfer to an address that owns no account
    /// creates one: it becomes a TransferToNew.
    pub fn op_code(self, recipient_has_account: bool) -> u8 {
        use crate::op::code;
        match self {
            TxKind::Transfer if recipient_has_account => code::TRANSFER,
            TxKind::Transfer => code::TRANSFER_TO_NEW,
            TxKind::Withdraw => code::WITHDRAW,
            TxKind::ChangePubKey => code::CHANGE_PUBKEY,
            TxKind::ForcedExit => code::FORCED_EXIT,
            TxKind::OrderMatching => code::ORDER_MATCHING,
        }
    }

    /// Its name: the name of the op it becomes (a transfer: "transfer").
    pub fn name(self) -> &'static str {
        crate::layout::of(self.op_code(true)).expect("tx kinds become known ops").name
    }

    /// The kind named `name` ([`TxKind::name`]).
    pub fn from_name(name: &str) -> Option<TxKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A transaction with the EdDSA signature of its signer (the new key for ChangePubKey, the
/// matcher for OrderMatching).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTx {
    pub tx: Tx,
    #[serde(with = "crate::serde_impls::signature_hex")]
    pub signature: Signature,
}

fn u(x: u128) -> Fr {
    fr_from_u128(x)
}

impl Order {
    /// The order's signed message.
    pub fn message(&self) -> Fr {
        let mut h = Writer::new();
        h.u8(0x08).u32(self.account).u8(self.sub).u16(self.slot).u32(self.nonce).u16(self.base).u16(self.quote);
        h.u8(u8::from(self.is_sell)).u8(self.maker_fee_bps).u8(self.taker_fee_bps);
        poseidon::hash_array([h.to_fr(), u(self.amount), u(self.price)])
    }

    /// What the order's owner signs to cancel it while it rests on an exchange as the
    /// exchange's order `order_id` (docs/exchange.md; never a Layer-2 tx):
    /// `Poseidon(header(0x0a, account 4, order_id 8), order_msg)`.
    pub fn cancel_message(&self, order_id: u64) -> Fr {
        let mut h = Writer::new();
        h.u8(0x0a).u32(self.account).u64(order_id);
        poseidon::hash_array([h.to_fr(), self.message()])
    }

    /// Signs the order.
    pub fn sign(self, key: &PrivateKey) -> SignedOrder {
        let signature = key.sign(&self.message());
        SignedOrder { order: self, signature }
    }
}

impl OrderMatching {
    /// The matcher's signed message (`Tx::message` of this matching).
    pub fn message(&self) -> Fr {
        self.message_with(&self.maker.order.message(), &self.taker.order.message())
    }

    /// The matcher's signed message given both orders' messages (`Order::message`), for a
    /// caller that needs those too and hashes each once.
    pub fn message_with(&self, maker: &Fr, taker: &Fr) -> Fr {
        let mut h = Writer::new();
        h.u8(0x09).u32(self.matcher);
        poseidon::hash_array([
            h.to_fr(),
            *maker,
            *taker,
            u(self.base_fill),
            u(self.quote_fill),
            u(self.maker_residue_before),
            u(self.taker_residue_before),
        ])
    }
}

impl Tx {
    /// The signed message `m` of section 12.
    pub fn message(&self) -> Fr {
        let mut h = Writer::new();
        match self {
            Tx::Transfer(t) => {
                h.u8(0x04).u32(t.account).u8(t.from_sub).u8(t.to_sub).u16(t.token).u32(t.nonce);
                poseidon::hash_array([h.to_fr(), t.to.hi(), t.to.lo(), u(t.amount), u(t.fee)])
            }
            Tx::Withdraw(t) => {
                h.u8(0x03).u32(t.account).u8(t.sub).u8(t.chain).u16(t.l2_token).u16(t.l1_token).u32(t.nonce);
                poseidon::hash_array([h.to_fr(), t.to.hi(), t.to.lo(), u(t.amount), u(t.fee)])
            }
            Tx::ChangePubKey(t) => {
                h.u8(0x06).u32(t.account).u8(t.sub).u8(t.chain).u16(t.fee_token).u32(t.nonce);
                poseidon::hash_array([h.to_fr(), t.new_pubkey.pubkey_hash().to_fr(), u(t.fee)])
            }
            Tx::ForcedExit(t) => {
                h.u8(0x07).u32(t.initiator).u8(t.initiator_sub).u32(t.target).u8(t.target_sub).u8(t.chain);
                h.u16(t.l2_token).u16(t.l1_token).u16(t.fee_token).u32(t.nonce);
                poseidon::hash_array([h.to_fr(), u(t.fee)])
            }
            Tx::OrderMatching(t) => t.message(),
        }
    }

    /// The account whose key signs this tx.
    pub fn signer(&self) -> AccountId {
        match self {
            Tx::Transfer(t) => t.account,
            Tx::Withdraw(t) => t.account,
            Tx::ChangePubKey(t) => t.account,
            Tx::ForcedExit(t) => t.initiator,
            Tx::OrderMatching(t) => t.matcher,
        }
    }

    /// The fee this tx pays to the fee account as (token, amount); `None` for an order matching,
    /// whose fees are the ratios its orders carry.
    pub fn fee(&self) -> Option<(TokenId, u128)> {
        match self {
            Tx::Transfer(t) => Some((t.token, t.fee)),
            Tx::Withdraw(t) => Some((t.l2_token, t.fee)),
            Tx::ChangePubKey(t) => Some((t.fee_token, t.fee)),
            Tx::ForcedExit(t) => Some((t.fee_token, t.fee)),
            Tx::OrderMatching(_) => None,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> TxKind {
        match self {
            Tx::Transfer(_) => TxKind::Transfer,
            Tx::Withdraw(_) => TxKind::Withdraw,
            Tx::ChangePubKey(_) => TxKind::ChangePubKey,
            Tx::ForcedExit(_) => TxKind::ForcedExit,
            Tx::OrderMatching(_) => TxKind::OrderMatching,
        }
    }

    /// A short name ([`TxKind::name`]).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The address a transfer pays to (it decides whether the transfer creates an account).
    pub fn recipient(&self) -> Option<&Address> {
        match self {
            Tx::Transfer(t) => Some(&t.to),
            _ => None,
        }
    }

    /// Signs the tx.
    pub fn sign(self, key: &PrivateKey) -> SignedTx {
        let signature = key.sign(&self.message());
        SignedTx { tx: self, signature }
    }
}

impl SignedTx {
    /// `keccak256(be32(m))`.
    pub fn hash(&self) -> [u8; 32] {
        tx_hash(&self.tx.message())
    }
}

/// The tx hash of a signed message.
pub fn tx_hash(message: &Fr) -> [u8; 32] {
    keccak256(fr_to_be_bytes(message)).0
}

/// The 29 bytes the owner's Ethereum key `personal_sign`s to authorise a ChangePubKey.
pub fn change_pubkey_eth_message(
    new_pubkey_hash: &zkl_crypto::PubKeyHash,
    nonce: Nonce,
    account: AccountId,
    chain: ChainId,
) -> [u8; 29] {
    let mut w = Writer::new();
    w.raw(&new_pubkey_hash.0).u32(nonce).u32(account).u8(chain);
    w.bytes.try_into().expect("29 bytes")
}

/// An on-chain pre-authorisation of a ChangePubKey: `owner` called `setAuthPubkeyHash(pubkey_hash,
/// nonce)` on chain `chain`'s contract (read by the node once confirmed). It lets the account
/// owned by `owner` set a key with that hash at account nonce `nonce` with `auth: "onchain"`.
/// Contracts never remove a fact, so one the node has seen stays valid until it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AuthFact {
    pub chain: ChainId,
    pub owner: Address,
    pub nonce: Nonce,
    #[serde(with = "crate::serde_impls::pkh_hex")]
    pub pubkey_hash: zkl_crypto::PubKeyHash,
}

/// A priority request read from a chain's contract.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PriorityRequest {
    /// A deposit; `l1_amount` is in the L1 token's decimals.
    Deposit {
        chain: ChainId,
        serial_id: u64,
        sub: SubAccountId,
        l1_token: TokenId,
        l2_token: TokenId,
        #[serde(with = "crate::serde_impls::u128_str")]
        l1_amount: u128,
        owner: Address,
    },
    /// A request to withdraw a whole balance, made on L1 by `owner`.
    FullExit {
        chain: ChainId,
        serial_id: u64,
        account: AccountId,
        sub: SubAccountId,
        owner: Address,
        l1_token: TokenId,
        l2_token: TokenId,
    },
}

impl PriorityRequest {
    pub fn chain(&self) -> ChainId {
        match self {
            PriorityRequest::Deposit { chain, .. } | PriorityRequest::FullExit { chain, .. } => *chain,
        }
    }

    pub fn serial_id(&self) -> u64 {
        match self {
            PriorityRequest::Deposit { serial_id, .. } | PriorityRequest::FullExit { serial_id, .. } => *serial_id,
        }
    }

    /// `keccak256(chain ‖ serial_id)`.
    pub fn hash(&self) -> [u8; 32] {
        let mut w = Writer::new();
        w.u8(self.chain()).raw(&self.serial_id().to_be_bytes());
        keccak256(&w.bytes).0
    }
}
