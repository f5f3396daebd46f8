//! Wallet: an Ethereum key, the L2 key derived from it, decimal amounts, and signed txs and
//! orders sent to a node over JSON-RPC.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address as EvmAddress, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use zkl_contracts::bindings::{TestERC20, ZkLink};
use zkl_crypto::keys::eth_signature_bytes;
use zkl_crypto::{EthKey, PrivateKey, PublicKey, derive_l2_key};
use zkl_rpc_api::exchange::{CancelRequest, ExchangeApiClient, OrderInfo, OrderRequest, PlaceResult, TimeInForce};
use zkl_rpc_api::{AccountInfo, AdminApiClient, L1ChainStatus, RevertRequest, RewindReport, TxLookup, ZklApiClient};
use zkl_types::*;

/// A wallet failure, one line.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("{0}")]
    Input(String),
    #[error("node: {0}")]
    Node(String),
}

/// Parses a decimal amount of a token with `decimals` decimals (`"1.5"` → 1.5·10^decimals).
/// More fractional digits than `decimals` is an error, never rounded.
pub fn parse_amount(text: &str, decimals: u32) -> Result<u128, WalletError> {
    let bad = || WalletError::Input(format!("'{text}' is not an amount with at most {decimals} decimals"));
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > decimals as usize {
        return Err(bad());
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let mut frac_digits = frac.to_string();
    while frac_digits.len() < decimals as usize {
        frac_digits.push('0');
    }
    let frac: u128 = if frac_digits.is_empty() { 0 } else { frac_digits.parse().map_err(|_| bad())? };
    int.checked_mul(10u128.pow(decimals)).and_then(|v| v.checked_add(frac)).ok_or_else(bad)
}

/// Formats an L2 amount (18 decimals) as a decimal string.
pub fn format_amount(v: u128) -> String {
    let int = v / 10u128.pow(18);
    let frac = v % 10u128.pow(18);
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{frac:018}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

fn l1_err(chain: ChainId, e: &dyn std::fmt::Display) -> WalletError {
    WalletError::Node(format!("chain {chain}: {e}"))
}

/// Sends an L1 call and waits for it to be mined; returns the tx hash, or why it failed.
async fn mined<D: alloy::contract::CallDecoder>(
    chain: ChainId,
    call: alloy::contract::CallBuilder<&DynProvider, D>,
) -> Result<String, WalletError> {
    let pending = call.send().await.map_err(|e| l1_err(chain, &e))?;
    let receipt = pending.get_receipt().await.map_err(|e| l1_err(chain, &e))?;
    if !receipt.status() {
        return Err(l1_err(chain, &format!("tx {:?} reverted", receipt.transaction_hash)));
    }
    Ok(format!("{:?}", receipt.transaction_hash))
}

/// An exchange's API (`zkl exchange`).
pub struct Exchange(HttpClient);

impl Exchange {
    pub fn new(url: &str) -> Result<Self, WalletError> {
        HttpClientBuilder::default().build(url).map(Self).map_err(|e| WalletError::Input(format!("--exchange: {e}")))
    }
}

fn exchange_err(e: jsonrpsee::core::ClientError) -> WalletError {
    match e {
        jsonrpsee::core::ClientError::Call(obj) => WalletError::Node(format!("exchange: {}", obj.message())),
        other => WalletError::Node(format!("exchange: {other}")),
    }
}

/// A wallet bound to one Ethereum key and one node.
pub struct Wallet {
    pub eth: EthKey,
    pub l2: PrivateKey,
    pub pubkey: PublicKey,
    pub address: Address,
    client: HttpClient,
}

fn node_err(e: jsonrpsee::core::ClientError) -> WalletError {
    match e {
        // The node's own one-line reason (e.g. the state machine's rejection).
        jsonrpsee::core::ClientError::Call(obj) => WalletError::Node(obj.message().to_string()),
        other => WalletError::Node(other.to_string()),
    }
}

impl Wallet {
    pub fn new(eth_private_key: &[u8; 32], node_url: &str) -> Result<Self, WalletError> {
        let eth =
            EthKey::from_bytes(eth_private_key).map_err(|e| WalletError::Input(format!("--eth-private-key: {e}")))?;
        let d = derive_l2_key(&eth);
        let client =
            HttpClientBuilder::default().build(node_url).map_err(|e| WalletError::Input(format!("--node: {e}")))?;
        Ok(Wallet {
            address: Address::from_evm(eth.address().0.0),
            eth,
            l2: d.l2_private_key,
            pubkey: d.public_key,
            client,
        })
    }

    /// The node's view of this wallet's account.
    pub async fn account(&self) -> Result<AccountInfo, WalletError> {
        self.client.account(self.address.to_string()).await.map_err(node_err)
    }

    pub async fn id_and_nonce(&self) -> Result<(AccountId, Nonce), WalletError> {
        let a = self.account().await?;
        Ok((a.id, a.nonce))
    }

    /// Sends a signed tx; returns its hash.
    pub async fn send(&self, tx: &SignedTx) -> Result<String, WalletError> {
        self.client.send_tx(tx.clone()).await.map_err(node_err)
    }

    pub async fn tx_status(&self, hash: &str) -> Result<TxLookup, WalletError> {
        self.client.tx_status(hash.to_string()).await.map_err(node_err)
    }

    /// Chain `chain`'s ZkLink contract (as the node reports it in `zkl_l1Contracts`), signing
    /// with this wallet's Ethereum key.
    async fn zklink(&self, chain: ChainId) -> Result<ZkLink::ZkLinkInstance<DynProvider>, WalletError> {
        let l1 = self.client.l1_contracts().await.map_err(node_err)?;
        let entry = l1
            .into_iter()
            .find(|c| c.chain == chain)
            .ok_or_else(|| WalletError::Input(format!("the node settles on no L1 chain {chain}")))?;
        let (url, contract) = (entry.rpc_url.as_str(), entry.contract.as_str());
        let signer =
            PrivateKeySigner::from_slice(&self.eth.to_bytes()).map_err(|e| WalletError::Input(e.to_string()))?;
        let url = url.parse().map_err(|e| WalletError::Node(format!("bad rpc_url {url}: {e}")))?;
        let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased();
        let contract: EvmAddress =
            contract.parse().map_err(|e| WalletError::Node(format!("bad contract address {contract}: {e}")))?;
        Ok(ZkLink::new(contract, provider))
    }

    /// L1 token `l1_token` as registered on chain `chain`.
    async fn l1_token(
        &self,
        zklink: &ZkLink::ZkLinkInstance<DynProvider>,
        chain: ChainId,
        l1_token: TokenId,
    ) -> Result<ZkLink::Token, WalletError> {
        let token = zklink.getToken(l1_token).call().await.map_err(|e| l1_err(chain, &e))?;
        if !token.registered {
            return Err(WalletError::Input(format!("L1 token {l1_token} is not registered on chain {chain}")));
        }
        Ok(token)
    }

    /// This wallet's Ethereum balance of L1 token `l1_token` on chain `chain`: (units, decimals).
    pub async fn l1_balance(&self, chain: ChainId, l1_token: TokenId) -> Result<(U256, u8), WalletError> {
        let zklink = self.zklink(chain).await?;
        let token = self.l1_token(&zklink, chain, l1_token).await?;
        let me = self.eth.address();
        let units = if token.addr == EvmAddress::ZERO {
            zklink.provider().get_balance(me).await.map_err(|e| l1_err(chain, &e))?
        } else {
            TestERC20::new(token.addr, zklink.provider().clone())
                .balanceOf(me)
                .call()
                .await
                .map_err(|e| l1_err(chain, &e))?
        };
        Ok((units, token.decimals))
    }

    /// Deposits on Layer-1 chain `chain`: `amount` (a decimal in the L1 token's units) of L1
    /// token `l1_token`, credited to this wallet's sub-account `sub` in L2 token `l2_token`.
    /// ERC-20s are approved first. The contract's priority fee (`priorityFee()`, wei) is paid on
    /// top. Returns the deposit's L1 tx hash; the node credits it after its confirmations.
    pub async fn deposit(
        &self,
        chain: ChainId,
        l1_token: TokenId,
        l2_token: TokenId,
        amount: &str,
        sub: SubAccountId,
    ) -> Result<String, WalletError> {
        let zklink = self.zklink(chain).await?;
        let token = self.l1_token(&zklink, chain, l1_token).await?;
        let units = parse_amount(amount, u32::from(token.decimals))?;
        if units == 0 {
            return Err(WalletError::Input("the amount must be positive".into()));
        }
        let to = B256::from(self.address.0);
        let fee = U256::from(zklink.priorityFee().call().await.map_err(|e| l1_err(chain, &e))?);
        if token.addr == EvmAddress::ZERO {
            mined(chain, zklink.depositETH(to, sub, l2_token).value(U256::from(units) + fee)).await
        } else {
            let amount = alloy::primitives::Uint::<104, 2>::try_from(units)
                .map_err(|_| WalletError::Input("the amount does not fit 104 bits".into()))?;
            let erc20 = TestERC20::new(token.addr, zklink.provider().clone());
            mined(chain, erc20.approve(*zklink.address(), U256::from(units))).await?;
            mined(chain, zklink.depositERC20(token.addr, amount, to, sub, l2_token).value(fee)).await
        }
    }

    /// Authorises this wallet's L2 key on Layer 1 (`setAuthPubkeyHash` on chain `chain` for the
    /// account's current nonce), for a ChangePubKey with on-chain authorisation. Returns the L1 tx
    /// hash; the node accepts the ChangePubKey once it has read the fact (after the chain's
    /// confirmations).
    pub async fn authorize_pubkey_onchain(&self, chain: ChainId) -> Result<String, WalletError> {
        let (_, nonce) = self.id_and_nonce().await?;
        let zklink = self.zklink(chain).await?;
        let pkh = alloy::primitives::FixedBytes::<20>(self.pubkey.pubkey_hash().0);
        mined(chain, zklink.setAuthPubkeyHash(pkh, nonce)).await
    }

    /// Sets this wallet's L2 key, authorised by an Ethereum signature.
    pub async fn change_pubkey(&self, chain: ChainId, fee_token: TokenId, fee: u128) -> Result<String, WalletError> {
        self.change_pubkey_with(chain, fee_token, fee, false).await
    }

    /// Sets this wallet's L2 key, authorised by an Ethereum signature or, with `onchain`, by a
    /// fact set with [`Wallet::authorize_pubkey_onchain`].
    pub async fn change_pubkey_with(
        &self,
        chain: ChainId,
        fee_token: TokenId,
        fee: u128,
        onchain: bool,
    ) -> Result<String, WalletError> {
        let (account, nonce) = self.id_and_nonce().await?;
        let auth = if onchain {
            ChangePubKeyAuth::Onchain
        } else {
            let msg = change_pubkey_eth_message(&self.pubkey.pubkey_hash(), nonce, account, chain);
            ChangePubKeyAuth::EthSignature(eth_signature_bytes(&self.eth.personal_sign(&msg)))
        };
        let tx = ChangePubKey { account, sub: 0, chain, new_pubkey: self.pubkey, fee_token, fee, nonce, auth };
        self.send(&Tx::ChangePubKey(tx).sign(&self.l2)).await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn transfer(
        &self,
        from_sub: SubAccountId,
        to: Address,
        to_sub: SubAccountId,
        token: TokenId,
        amount: u128,
        fee: u128,
    ) -> Result<String, WalletError> {
        let (account, nonce) = self.id_and_nonce().await?;
        let tx = Transfer { account, from_sub, to, to_sub, token, amount, fee, nonce };
        self.send(&Tx::Transfer(tx).sign(&self.l2)).await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn withdraw(
        &self,
        sub: SubAccountId,
        chain: ChainId,
        l2_token: TokenId,
        l1_token: TokenId,
        amount: u128,
        fee: u128,
        to: Address,
    ) -> Result<String, WalletError> {
        let (account, nonce) = self.id_and_nonce().await?;
        let tx = Withdraw { account, sub, chain, l2_token, l1_token, amount, fee, to, nonce };
        self.send(&Tx::Withdraw(tx).sign(&self.l2)).await
    }

    /// Signs an order (the account id is looked up on the node).
    #[allow(clippy::too_many_arguments)]
    pub async fn sign_order(
        &self,
        sub: SubAccountId,
        slot: SlotId,
        nonce: Option<Nonce>,
        base: TokenId,
        quote: TokenId,
        amount: u128,
        price: u128,
        is_sell: bool,
        fees_bps: (u8, u8),
    ) -> Result<SignedOrder, WalletError> {
        let a = self.account().await?;
        Ok(self.order_of(&a, sub, slot, nonce, base, quote, amount, price, is_sell, fees_bps))
    }

    /// An order of account `a` signed with the L2 key (nonce: the slot's, unless given).
    #[allow(clippy::too_many_arguments)]
    fn order_of(
        &self,
        a: &AccountInfo,
        sub: SubAccountId,
        slot: SlotId,
        nonce: Option<Nonce>,
        base: TokenId,
        quote: TokenId,
        amount: u128,
        price: u128,
        is_sell: bool,
        fees_bps: (u8, u8),
    ) -> SignedOrder {
        let nonce = nonce.unwrap_or_else(|| a.order_slot(sub, slot).nonce);
        let order = Order {
            account: a.id,
            sub,
            slot,
            nonce,
            base,
            quote,
            amount,
            price,
            is_sell,
            maker_fee_bps: fees_bps.0,
            taker_fee_bps: fees_bps.1,
        };
        order.sign(&self.l2)
    }

    /// Signs an order and places it on the exchange `exchange` (`zkl exchange`). With no
    /// `slot`, the lowest order slot of `sub` that neither rests on the exchange nor holds a
    /// residue on the node (an order signed for a slot with a residue fills that residue).
    #[allow(clippy::too_many_arguments)]
    pub async fn place_order(
        &self,
        exchange: &Exchange,
        sub: SubAccountId,
        slot: Option<SlotId>,
        base: TokenId,
        quote: TokenId,
        amount: u128,
        price: u128,
        is_sell: bool,
        fees_bps: (u8, u8),
        tif: TimeInForce,
    ) -> Result<PlaceResult, WalletError> {
        let a = self.account().await?;
        let slot = match slot {
            Some(s) => s,
            None => {
                let resting = exchange.0.orders(a.id).await.map_err(exchange_err)?;
                (0..=SlotId::MAX)
                    .find(|&s| {
                        a.order_slot(sub, s).residue == 0 && !resting.iter().any(|o| o.sub == sub && o.slot == s)
                    })
                    .ok_or_else(|| WalletError::Input("every order slot is in use".into()))?
            }
        };
        let order = self.order_of(&a, sub, slot, None, base, quote, amount, price, is_sell, fees_bps);
        let request = OrderRequest { order, pubkey: self.pubkey, tif };
        exchange.0.place_order(request, Some(true)).await.map_err(exchange_err)
    }

    /// This account's open orders on `exchange`.
    pub async fn orders(&self, exchange: &Exchange) -> Result<Vec<OrderInfo>, WalletError> {
        let (id, _) = self.id_and_nonce().await?;
        exchange.0.orders(id).await.map_err(exchange_err)
    }

    /// Cancels this account's open order `id` on `exchange` (signed with the L2 key).
    pub async fn cancel_order(&self, exchange: &Exchange, id: u64) -> Result<OrderInfo, WalletError> {
        let open = self.orders(exchange).await?;
        let info = open
            .iter()
            .find(|o| o.id == id)
            .ok_or_else(|| WalletError::Input(format!("no open order {id} of this account on the exchange")))?;
        let signature = self.l2.sign(&info.order().cancel_message(id));
        exchange.0.cancel_order(CancelRequest { id, pubkey: self.pubkey, signature }).await.map_err(exchange_err)
    }

    /// Submits a matching of two signed orders as this wallet's (whitelisted) matcher account.
    pub async fn submit_matching(
        &self,
        maker: SignedOrder,
        taker: SignedOrder,
        base_fill: u128,
    ) -> Result<String, WalletError> {
        let (matcher, _) = self.id_and_nonce().await?;
        let residue = |o: &Order, acc: &AccountInfo| acc.order_slot(o.sub, o.slot).residue;
        let maker_acc = self.client.account(maker.order.account.to_string()).await.map_err(node_err)?;
        let taker_acc = self.client.account(taker.order.account.to_string()).await.map_err(node_err)?;
        let (hi, lo) = mul_div_wide(base_fill, maker.order.price);
        if hi != 0 || lo.is_none() {
            return Err(WalletError::Input("fill times price is not a whole quote amount".into()));
        }
        let quote_fill = lo.expect("checked");
        let tx = OrderMatching {
            matcher,
            maker_residue_before: residue(&maker.order, &maker_acc),
            taker_residue_before: residue(&taker.order, &taker_acc),
            maker,
            taker,
            base_fill,
            quote_fill,
        };
        self.send(&Tx::OrderMatching(Box::new(tx)).sign(&self.l2)).await
    }
}

/// `base · price / 10^18` if exact and below 2^128: returns (overflow flag, value).
fn mul_div_wide(base: u128, price: u128) -> (u8, Option<u128>) {
    // Split price = p1·10^18 + p0 so that base·price/10^18 = base·p1 + base·p0/10^18.
    let scale = PRICE_SCALE;
    let (p1, p0) = (price / scale, price % scale);
    let Some(whole) = base.checked_mul(p1) else { return (1, None) };
    // base·p0 may overflow u128: split base too.
    let (b1, b0) = (base / scale, base % scale);
    let part = b1.checked_mul(p0); // b1·scale·p0/scale = b1·p0, exact
    let frac = b0.checked_mul(p0); // < 10^36: fits
    match (part, frac) {
        (Some(part), Some(frac)) if frac % scale == 0 => {
            match whole.checked_add(part).and_then(|v| v.checked_add(frac / scale)) {
                Some(v) => (0, Some(v)),
                None => (1, None),
            }
        }
        (Some(_), Some(_)) => (0, None),
        _ => (1, None),
    }
}

/// The node's operator methods (`admin.tokens` of the node's configuration), and its settlement
/// status.
pub struct Admin {
    token: String,
    client: HttpClient,
}

impl Admin {
    pub fn new(node_url: &str, token: &str) -> Result<Self, WalletError> {
        let client =
            HttpClientBuilder::default().build(node_url).map_err(|e| WalletError::Input(format!("--node: {e}")))?;
        Ok(Admin { token: token.to_string(), client })
    }

    /// Each settlement chain's counters, last error and halt (`zkl_l1Status`).
    pub async fn l1_status(&self) -> Result<Vec<L1ChainStatus>, WalletError> {
        self.client.l1_status().await.map_err(node_err)
    }

    /// Seals the block being built; its number, or None if it was empty.
    pub async fn seal(&self) -> Result<Option<u32>, WalletError> {
        self.client.seal_block(self.token.clone()).await.map_err(node_err)
    }

    /// Reverts the halted block (or `from_block` and later) on every chain and re-sequences
    /// every tx of the reverted blocks except the refused op (or the `drop` hashes).
    pub async fn revert_blocks(
        &self,
        from_block: Option<u32>,
        drop: Option<Vec<String>>,
    ) -> Result<RewindReport, WalletError> {
        let request = RevertRequest { from_block, drop };
        self.client.revert_blocks(self.token.clone(), Some(request)).await.map_err(node_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("1.5", 18).unwrap(), 15 * 10u128.pow(17));
        assert_eq!(parse_amount("1000", 6).unwrap(), 1_000_000_000);
        assert_eq!(parse_amount(".25", 2).unwrap(), 25);
        assert!(parse_amount("1.1234567", 6).is_err());
        assert!(parse_amount("-1", 18).is_err());
        assert!(parse_amount("", 18).is_err());
        assert!(parse_amount("1e5", 18).is_err());
        assert!(parse_amount("340282366920938463463374607431768211456", 0).is_err());
        assert_eq!(format_amount(15 * 10u128.pow(17)), "1.5");
        assert_eq!(format_amount(7 * 10u128.pow(18)), "7");
    }

    #[test]
    fn quote_of_fill() {
        assert_eq!(mul_div_wide(ONE_TEST / 2, 1000 * ONE_TEST), (0, Some(500 * ONE_TEST)));
        assert_eq!(mul_div_wide(1, 1), (0, None));
    }
    const ONE_TEST: u128 = 1_000_000_000_000_000_000;

    proptest! {
        #[test]
        fn format_parse_roundtrip(v in any::<u128>()) {
            prop_assert_eq!(parse_amount(&format_amount(v), 18).unwrap(), v);
        }
    }
}
