//! Deterministic fixtures for tests, benchmarks and the golden scenario: a demo token registry,
//! users with fixed keys, and builders for signed transactions.

use alloy_primitives::keccak256;
use zkl_crypto::{EthKey, PrivateKey, PublicKey, derive_l2_key, keys::eth_signature_bytes};
use zkl_types::*;

/// Token ids of the demo registry.
pub const ETH: TokenId = 1;
pub const USDC: TokenId = 2;
pub const USDT: TokenId = 3;
/// The USD merge group (USDC and USDT).
pub const USD: TokenId = 100;
/// One unit with 18 decimals.
pub const ONE: u128 = 1_000_000_000_000_000_000;

/// Chains 1 and 2; ETH (18 decimals) and USDC (6) on both, USDT (6) on chain 2; USDC and USDT
/// merge into USD.
pub fn demo_registry() -> TokenRegistry {
    let mut r = TokenRegistry::new();
    let build = |r: &mut TokenRegistry| -> Result<(), TokenError> {
        r.add_chain(1)?;
        r.add_chain(2)?;
        r.add_token(ETH, "ETH")?;
        r.add_token(USDC, "USDC")?;
        r.add_token(USDT, "USDT")?;
        r.add_group(USD, "USD")?;
        r.set_group(USDC, USD)?;
        r.set_group(USDT, USD)?;
        for chain in [1, 2] {
            r.add_l1(ETH, chain, 18)?;
            r.add_l1(USDC, chain, 6)?;
        }
        r.add_l1(USDT, 2, 6)
    };
    build(&mut r).expect("demo registry is valid");
    r
}

/// A user with a fixed Ethereum key and the L2 key derived from it.
#[derive(Debug, Clone)]
pub struct User {
    pub eth: EthKey,
    pub l2: PrivateKey,
    pub pubkey: PublicKey,
    pub address: Address,
}

impl User {
    /// The user whose Ethereum private key is `keccak256("zkl-user" ‖ seed)`.
    pub fn new(seed: u64) -> Self {
        let mut preimage = b"zkl-user".to_vec();
        preimage.extend_from_slice(&seed.to_be_bytes());
        let eth = EthKey::from_bytes(&keccak256(&preimage).0).expect("valid secp256k1 key");
        let derived = derive_l2_key(&eth);
        let address = Address::from_evm(eth.address().0.0);
        User { l2: derived.l2_private_key, pubkey: derived.public_key, address, eth }
    }

    /// A ChangePubKey tx setting this user's L2 key, authorised by an Ethereum signature.
    pub fn change_pubkey(
        &self,
        account: AccountId,
        nonce: Nonce,
        chain: ChainId,
        fee_token: TokenId,
        fee: u128,
    ) -> SignedTx {
        let pkh = self.pubkey.pubkey_hash();
        let msg = change_pubkey_eth_message(&pkh, nonce, account, chain);
        let auth = ChangePubKeyAuth::EthSignature(eth_signature_bytes(&self.eth.personal_sign(&msg)));
        let tx = ChangePubKey { account, sub: 0, chain, new_pubkey: self.pubkey, fee_token, fee, nonce, auth };
        Tx::ChangePubKey(tx).sign(&self.l2)
    }

    /// A signed transfer from sub-account 0 to `to`'s sub-account 0.
    pub fn transfer(
        &self,
        account: AccountId,
        to: Address,
        token: TokenId,
        amount: u128,
        fee: u128,
        nonce: Nonce,
    ) -> SignedTx {
        let tx = Transfer { account, from_sub: 0, to, to_sub: 0, token, amount, fee, nonce };
        Tx::Transfer(tx).sign(&self.l2)
    }

    /// A signed withdrawal from sub-account 0 to the user's own address.
    #[allow(clippy::too_many_arguments)]
    pub fn withdraw(
        &self,
        account: AccountId,
        chain: ChainId,
        l2_token: TokenId,
        l1_token: TokenId,
        amount: u128,
        fee: u128,
        nonce: Nonce,
    ) -> SignedTx {
        let tx = Withdraw { account, sub: 0, chain, l2_token, l1_token, amount, fee, to: self.address, nonce };
        Tx::Withdraw(tx).sign(&self.l2)
    }

    /// A signed order in sub-account 0 (fees: maker 5 bps, taker 10 bps).
    #[allow(clippy::too_many_arguments)]
    pub fn order(
        &self,
        account: AccountId,
        slot: SlotId,
        nonce: Nonce,
        base: TokenId,
        quote: TokenId,
        amount: u128,
        price: u128,
        is_sell: bool,
    ) -> SignedOrder {
        let order = Order {
            account,
            sub: 0,
            slot,
            nonce,
            base,
            quote,
            amount,
            price,
            is_sell,
            maker_fee_bps: 5,
            taker_fee_bps: 10,
        };
        order.sign(&self.l2)
    }
}

/// A deposit request of `l1_amount` (L1 units) to sub-account 0.
pub fn deposit(
    chain: ChainId,
    serial_id: u64,
    owner: Address,
    l1_token: TokenId,
    l2_token: TokenId,
    l1_amount: u128,
) -> PriorityRequest {
    PriorityRequest::Deposit { chain, serial_id, sub: 0, l1_token, l2_token, l1_amount, owner }
}

/// An order matching signed by `matcher` (account `matcher_id`); fills at the maker's price.
pub fn matching(
    matcher: &User,
    matcher_id: AccountId,
    maker: SignedOrder,
    taker: SignedOrder,
    base_fill: u128,
    residues: (u128, u128),
) -> SignedTx {
    let quote_fill = price_quote(base_fill, maker.order.price);
    let tx = OrderMatching {
        matcher: matcher_id,
        maker,
        taker,
        base_fill,
        quote_fill,
        maker_residue_before: residues.0,
        taker_residue_before: residues.1,
    };
    Tx::OrderMatching(Box::new(tx)).sign(&matcher.l2)
}

/// `base · price / 10^18` (exact when the inputs are round; tests choose them so).
pub fn price_quote(base: u128, price: u128) -> u128 {
    (base / 1_000_000) * (price / 1_000_000) / 1_000_000
}
