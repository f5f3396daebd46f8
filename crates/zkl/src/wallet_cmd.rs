//! `zkl wallet …` and `zkl matcher submit …`: thin wrappers over `zkl-wallet`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use zkl_rpc_api::exchange::TimeInForce;
use zkl_types::{Address, SignedOrder};
use zkl_wallet::{Exchange, Wallet, WalletError, format_amount, parse_amount};

use crate::Failure;
use crate::args::bytes32;

#[derive(Args)]
pub struct WalletArgs {
    /// Node JSON-RPC URL
    #[arg(long, default_value = "http://127.0.0.1:3030")]
    pub node: String,
    /// The Ethereum private key the L2 key is derived from (0x + 64 hex digits)
    #[arg(long, value_parser = bytes32)]
    pub eth_private_key: [u8; 32],
    #[command(subcommand)]
    pub command: WalletCommand,
}

fn amount(s: &str) -> Result<u128, String> {
    parse_amount(s, 18).map_err(|e| e.to_string())
}

fn address(s: &str) -> Result<Address, String> {
    Address::parse(s).ok_or_else(|| format!("'{s}' is not a 0x address of 20 or 32 bytes"))
}

#[derive(Subcommand)]
pub enum WalletCommand {
    /// Account id, nonce, pubkey hash, balances and order slots
    Account,
    /// This wallet's balance of an L1 token on a Layer-1 chain (its Ethereum address)
    L1Balance {
        #[arg(long)]
        chain: u8,
        #[arg(long)]
        l1_token: u16,
    },
    /// Deposit from Layer 1 (approves ERC-20s first); the node credits it after its confirmations
    Deposit {
        /// L2 chain id of the Layer-1 chain to deposit on
        #[arg(long)]
        chain: u8,
        /// L1 token id (as registered on that chain)
        #[arg(long)]
        l1_token: u16,
        /// L2 token to credit (default: the L1 token's id; may be its merge group)
        #[arg(long)]
        l2_token: Option<u16>,
        /// Decimal amount in the L1 token's units (e.g. 1000 USDC, 0.5 ETH)
        #[arg(long)]
        amount: String,
        #[arg(long, default_value_t = 0)]
        sub: u8,
    },
    /// Set the account's L2 key (authorised by an Ethereum signature, or with --onchain by a
    /// fact set with authorize-pubkey)
    ChangePubkey {
        #[arg(long, default_value_t = 1)]
        chain: u8,
        #[arg(long, default_value_t = 1)]
        fee_token: u16,
        #[arg(long, default_value = "0", value_parser = amount)]
        fee: u128,
        /// Use the on-chain authorisation (setAuthPubkeyHash on --chain) instead of a signature
        #[arg(long)]
        onchain: bool,
    },
    /// Authorise the wallet's L2 key on Layer 1 (setAuthPubkeyHash for the account's nonce)
    AuthorizePubkey {
        #[arg(long, default_value_t = 1)]
        chain: u8,
    },
    /// Transfer to an address (creates its account if needed)
    Transfer {
        #[arg(long, value_parser = address)]
        to: Address,
        #[arg(long)]
        token: u16,
        /// Decimal amount in token units (18 decimals on L2)
        #[arg(long, value_parser = amount)]
        amount: u128,
        #[arg(long, default_value = "0", value_parser = amount)]
        fee: u128,
        #[arg(long, default_value_t = 0)]
        from_sub: u8,
        #[arg(long, default_value_t = 0)]
        to_sub: u8,
    },
    /// Withdraw to a chain in one of the L1 tokens that fund the L2 token
    Withdraw {
        #[arg(long)]
        chain: u8,
        #[arg(long)]
        l2_token: u16,
        #[arg(long)]
        l1_token: u16,
        #[arg(long, value_parser = amount)]
        amount: u128,
        #[arg(long, default_value = "0", value_parser = amount)]
        fee: u128,
        /// Recipient on L1 (default: this wallet's address)
        #[arg(long, value_parser = address)]
        to: Option<Address>,
        #[arg(long, default_value_t = 0)]
        sub: u8,
    },
    /// Status of a tx
    TxStatus { hash: String },
    /// Sign an order and place it on an exchange (`zkl exchange`); prints its fills and status
    PlaceOrder {
        /// The exchange's JSON-RPC URL ("exchange" in the devnet's line)
        #[arg(long)]
        exchange: String,
        #[arg(long)]
        base: u16,
        #[arg(long)]
        quote: u16,
        /// buy or sell
        #[arg(long, value_parser = ["buy", "sell"])]
        side: String,
        /// Base amount
        #[arg(long, value_parser = amount)]
        amount: u128,
        /// Quote units per base unit
        #[arg(long, value_parser = amount)]
        price: u128,
        /// gtc (rests), ioc (the rest expires) or post_only (refused if it would trade)
        #[arg(long, default_value = "gtc", value_parser = ["gtc", "ioc", "post_only"])]
        tif: String,
        /// Order slot (default: the lowest free one)
        #[arg(long)]
        slot: Option<u16>,
        #[arg(long, default_value_t = 0)]
        sub: u8,
        #[arg(long, default_value_t = 5)]
        maker_fee_bps: u8,
        #[arg(long, default_value_t = 10)]
        taker_fee_bps: u8,
    },
    /// Cancel one of this account's open orders on an exchange (signed with the L2 key)
    CancelOrder {
        #[arg(long)]
        exchange: String,
        /// The exchange's order id
        #[arg(long)]
        id: u64,
    },
    /// This account's open orders on an exchange
    Orders {
        #[arg(long)]
        exchange: String,
    },
    /// Sign an order and print it as JSON (for `zkl matcher submit`)
    SignOrder {
        #[arg(long)]
        base: u16,
        #[arg(long)]
        quote: u16,
        /// buy or sell
        #[arg(long, value_parser = ["buy", "sell"])]
        side: String,
        /// Base amount
        #[arg(long, value_parser = amount)]
        amount: u128,
        /// Quote units per base unit
        #[arg(long, value_parser = amount)]
        price: u128,
        #[arg(long, default_value_t = 0)]
        slot: u16,
        /// Order nonce (default: the slot's current nonce)
        #[arg(long)]
        nonce: Option<u32>,
        #[arg(long, default_value_t = 0)]
        sub: u8,
        #[arg(long, default_value_t = 5)]
        maker_fee_bps: u8,
        #[arg(long, default_value_t = 10)]
        taker_fee_bps: u8,
    },
}

#[derive(Subcommand)]
pub enum MatcherCommand {
    /// Submit an order matching (as a whitelisted matcher account)
    Submit {
        maker: PathBuf,
        taker: PathBuf,
        /// Base amount to fill
        #[arg(long, value_parser = amount)]
        fill: u128,
        #[arg(long, default_value = "http://127.0.0.1:3030")]
        node: String,
        #[arg(long, value_parser = bytes32)]
        eth_private_key: [u8; 32],
    },
}

fn fail(e: WalletError) -> Failure {
    match e {
        WalletError::Input(m) => Failure::Usage(m),
        WalletError::Node(m) => Failure::Failed(m),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Failure::Failed(e.to_string()))
}

fn print_hash(h: String) -> Result<ExitCode, Failure> {
    println!("{}", json!({ "tx_hash": h }));
    Ok(ExitCode::SUCCESS)
}

pub fn run_wallet(a: WalletArgs) -> Result<ExitCode, Failure> {
    let w = Wallet::new(&a.eth_private_key, &a.node).map_err(fail)?;
    runtime()?.block_on(async move {
        match a.command {
            WalletCommand::Account => {
                let mut acc = json!(w.account().await.map_err(fail)?);
                if let Some(bals) = acc["balances"].as_array_mut() {
                    for b in bals {
                        let v: u128 = b["amount"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                        b["display"] = json!(format_amount(v));
                    }
                }
                println!("{acc}");
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::L1Balance { chain, l1_token } => {
                let (units, decimals) = w.l1_balance(chain, l1_token).await.map_err(fail)?;
                let text = units.to_string();
                let d = usize::from(decimals);
                let padded = format!("{text:0>width$}", width = d + 1);
                let (int, frac) = padded.split_at(padded.len() - d);
                let frac = frac.trim_end_matches('0');
                let display = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
                println!("{}", json!({ "chain": chain, "l1_token": l1_token, "units": text, "display": display }));
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::Deposit { chain, l1_token, l2_token, amount, sub } => {
                let hash =
                    w.deposit(chain, l1_token, l2_token.unwrap_or(l1_token), &amount, sub).await.map_err(fail)?;
                println!("{}", json!({ "l1_tx_hash": hash }));
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::ChangePubkey { chain, fee_token, fee, onchain } => {
                print_hash(w.change_pubkey_with(chain, fee_token, fee, onchain).await.map_err(fail)?)
            }
            WalletCommand::AuthorizePubkey { chain } => {
                let hash = w.authorize_pubkey_onchain(chain).await.map_err(fail)?;
                println!("{}", json!({ "l1_tx_hash": hash }));
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::Transfer { to, token, amount, fee, from_sub, to_sub } => {
                print_hash(w.transfer(from_sub, to, to_sub, token, amount, fee).await.map_err(fail)?)
            }
            WalletCommand::Withdraw { chain, l2_token, l1_token, amount, fee, to, sub } => {
                let to = to.unwrap_or(w.address);
                print_hash(w.withdraw(sub, chain, l2_token, l1_token, amount, fee, to).await.map_err(fail)?)
            }
            WalletCommand::TxStatus { hash } => {
                println!("{}", json!(w.tx_status(&hash).await.map_err(fail)?));
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::PlaceOrder {
                exchange,
                base,
                quote,
                side,
                amount,
                price,
                tif,
                slot,
                sub,
                maker_fee_bps,
                taker_fee_bps,
            } => {
                let ex = Exchange::new(&exchange).map_err(fail)?;
                let tif = match tif.as_str() {
                    "ioc" => TimeInForce::Ioc,
                    "post_only" => TimeInForce::PostOnly,
                    _ => TimeInForce::Gtc,
                };
                let fees = (maker_fee_bps, taker_fee_bps);
                let placed = w
                    .place_order(&ex, sub, slot, base, quote, amount, price, side == "sell", fees, tif)
                    .await
                    .map_err(fail)?;
                println!("{}", json!(placed));
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::CancelOrder { exchange, id } => {
                let ex = Exchange::new(&exchange).map_err(fail)?;
                println!("{}", json!(w.cancel_order(&ex, id).await.map_err(fail)?));
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::Orders { exchange } => {
                let ex = Exchange::new(&exchange).map_err(fail)?;
                println!("{}", json!(w.orders(&ex).await.map_err(fail)?));
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::SignOrder {
                base,
                quote,
                side,
                amount,
                price,
                slot,
                nonce,
                sub,
                maker_fee_bps,
                taker_fee_bps,
            } => {
                let order = w
                    .sign_order(
                        sub,
                        slot,
                        nonce,
                        base,
                        quote,
                        amount,
                        price,
                        side == "sell",
                        (maker_fee_bps, taker_fee_bps),
                    )
                    .await
                    .map_err(fail)?;
                println!("{}", serde_json::to_string(&order).map_err(|e| Failure::Failed(e.to_string()))?);
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn read_order(path: &PathBuf) -> Result<SignedOrder, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("{}: not a signed order: {e}", path.display())))
}

pub fn run_matcher(cmd: MatcherCommand) -> Result<ExitCode, Failure> {
    match cmd {
        MatcherCommand::Submit { maker, taker, fill, node, eth_private_key } => {
            let (maker, taker) = (read_order(&maker)?, read_order(&taker)?);
            let w = Wallet::new(&eth_private_key, &node).map_err(fail)?;
            runtime()?.block_on(async move { print_hash(w.submit_matching(maker, taker, fill).await.map_err(fail)?) })
        }
    }
}
