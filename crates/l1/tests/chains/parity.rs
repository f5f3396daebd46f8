//! Rule parity between the node and the contracts: random sequences of valid and invalid txs and
//! L1 requests of every kind go through a node settling on two anvil chains, and every block the
//! node seals must be accepted by both contracts. The settler simulates every commit before it
//! sends it and halts settlement on a refusal, so the property checked is: no halt, and every
//! sealed block committed and executed on both chains.
//!
//! Covered: deposits (to the depositor, to other and fresh addresses, to non-EVM addresses),
//! full exits of own, foreign and missing accounts, on-chain authorisations (the own key, another
//! key, another nonce), ChangePubKey with canonical, high-s, v ∈ {0, 1} and foreign ECDSA
//! signatures and with on-chain authorisation (with and without the fact) for every chain byte
//! 0..=4, transfers and withdrawals to existing, fresh, non-EVM and zero addresses on every chain
//! byte 1..=3 with every token pair, and forced exits of keyed, keyless and missing accounts.
//! Every new op type joins this test.
//!
//! `ZKL_PARITY_CASES` (default 3) sets the number of random sequences (each continues the same
//! chains and node, so later ones meet a richer state); `ZKL_PARITY_ACTIONS` (default 24) their
//! length.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use zkl_contracts::anvil::DEV_KEYS;
use zkl_contracts::deploy::{Chain, send};
use zkl_crypto::keys::eth_signature_bytes;
use zkl_devkit::devnet::{DEVNET_PRIORITY_FEE, DevnetOptions};
use zkl_node::settlement::{HALT_KEY, Halt};
use zkl_node::{Node, NodeConfig};
use zkl_rpc_api::AdminApiClient;
use zkl_types::*;
use zkl_wallet::Wallet;

use crate::common::{ADMIN, executed_everywhere, start_on_devnet, wait_for};

const ETH: TokenId = 1;
const USDC: TokenId = 2;

/// Who an address names.
#[derive(Debug, Clone)]
enum Target {
    User(usize),
    /// A fresh EVM address (a new account).
    Fresh(u8),
    NonEvm,
    Zero,
}

#[derive(Debug, Clone)]
enum Auth {
    Canonical,
    HighS,
    LowV,
    /// Signed by another user's Ethereum key.
    OtherSigner,
    Onchain,
}

#[derive(Debug, Clone)]
enum Action {
    Deposit { user: usize, chain: ChainId, usdc: bool, units: u64, to: Target },
    FullExit { user: usize, chain: ChainId, account: AccountId, token: TokenId },
    SetFact { user: usize, chain: ChainId, key_of: usize, nonce_ahead: u32 },
    ChangePubKey { user: usize, chain: ChainId, key_of: usize, auth: Auth },
    Transfer { user: usize, to: Target, token: TokenId, amount: u64 },
    Withdraw { user: usize, chain: ChainId, l2_token: TokenId, l1_token: TokenId, to: Target, amount: u64 },
    ForcedExit { user: usize, target: AccountId, chain: ChainId, token: TokenId },
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => (0..3usize).prop_map(Target::User),
        2 => (0..4u8).prop_map(Target::Fresh),
        1 => Just(Target::NonEvm),
        1 => Just(Target::Zero),
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        3 => Just(Auth::Canonical),
        1 => Just(Auth::HighS),
        1 => Just(Auth::LowV),
        1 => Just(Auth::OtherSigner),
        3 => Just(Auth::Onchain),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let user = 0..3usize;
    prop_oneof![
        2 => (user.clone(), 1..=2u8, any::<bool>(), 1..50u64, target())
            .prop_map(|(user, chain, usdc, units, to)| Action::Deposit { user, chain, usdc, units, to }),
        1 => (user.clone(), 1..=2u8, 0..8u32, prop_oneof![Just(ETH), Just(USDC)])
            .prop_map(|(user, chain, account, token)| Action::FullExit { user, chain, account, token }),
        2 => (user.clone(), 1..=2u8, 0..3usize, 0..2u32)
            .prop_map(|(user, chain, key_of, nonce_ahead)| Action::SetFact { user, chain, key_of, nonce_ahead }),
        3 => (user.clone(), 0..=4u8, 0..3usize, auth())
            .prop_map(|(user, chain, key_of, auth)| Action::ChangePubKey { user, chain, key_of, auth }),
        3 => (user.clone(), target(), prop_oneof![Just(ETH), Just(USDC)], 1..20u64)
            .prop_map(|(user, to, token, amount)| Action::Transfer { user, to, token, amount }),
        3 => (user.clone(), 1..=3u8, prop_oneof![Just(ETH), Just(USDC), Just(100)], 1..=3u16, target(), 1..20u64)
            .prop_map(|(user, chain, l2_token, l1_token, to, amount)| Action::Withdraw {
                user, chain, l2_token, l1_token, to, amount
            }),
        1 => (user, 0..10u32, 1..=3u8, prop_oneof![Just(ETH), Just(USDC)])
            .prop_map(|(user, target, chain, token)| Action::ForcedExit { user, target, chain, token }),
    ]
}

struct Env {
    chains: Vec<Chain>,
    node: Node,
    users: Vec<Wallet>,
    http: HttpClient,
    _dir: tempfile::TempDir,
}

impl Env {
    fn address(&self, t: &Target) -> Address {
        match t {
            Target::User(i) => self.users[*i].address,
            Target::Fresh(k) => Address::from_evm([0xa0 + k; 20]),
            Target::NonEvm => Address([0x11; 32]),
            Target::Zero => Address::ZERO,
        }
    }

    fn chain(&self, c: ChainId) -> &Chain {
        &self.chains[usize::from(c) - 1]
    }
}

async fn setup() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::demo(dir.path().join("db"));
    config.block_capacity = 16;
    config.block_time_ms = 300;
    let opts = DevnetOptions {
        evm_base: 33_000,
        confirmations: 1,
        test_tokens: true,
        priority_fee: DEVNET_PRIORITY_FEE,
        ..DevnetOptions::default()
    };
    let (node, chains) = start_on_devnet(config, opts, 2_000).await;
    let url = format!("http://{}", node.rpc_addr);
    let users = DEV_KEYS[1..]
        .iter()
        .map(|k| Wallet::new(&hex::decode(&k[2..]).unwrap().try_into().unwrap(), &url).unwrap())
        .collect::<Vec<_>>();
    let http = HttpClientBuilder::default().build(&url).unwrap();
    let env = Env { chains, node, users, http, _dir: dir };
    // Everyone has ETH on chain 1 and USDC on chain 2; users 0 and 1 set their keys.
    for u in &env.users {
        u.deposit(1, ETH, ETH, "0.5", 0).await.unwrap();
        u.deposit(2, USDC, USDC, "500", 0).await.unwrap();
    }
    wait_for("the deposits credited", TIMEOUT, async || {
        let mut all = true;
        for u in &env.users {
            all &= u.account().await.is_ok_and(|a| a.balances.len() == 2);
        }
        all
    })
    .await;
    env.users[0].change_pubkey(1, ETH, 0).await.unwrap();
    env.users[1].change_pubkey(2, ETH, 0).await.unwrap();
    env
}

const TIMEOUT: Duration = Duration::from_secs(120);

/// `sig` with s replaced by n − s (and v flipped): the same signer, not canonical.
fn high_s(mut sig: [u8; 65]) -> [u8; 65] {
    let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
    let s = U256::from_be_slice(&sig[32..64]);
    sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    sig[64] = if sig[64] == 27 { 28 } else { 27 };
    sig
}

/// Runs one action; returns whether the node or the chain accepted it.
async fn run(env: &Env, a: &Action) -> bool {
    let fee = U256::from(DEVNET_PRIORITY_FEE);
    match a {
        Action::Deposit { user, chain, usdc, units, to } => {
            let u = &env.users[*user];
            if matches!(to, Target::User(i) if i == user) {
                let (token, amount) = if *usdc { (USDC, format!("{units}")) } else { (ETH, format!("0.00{units}")) };
                return u.deposit(*chain, token, token, &amount, 0).await.is_ok();
            }
            // ETH to someone else (or to an address the contract refuses).
            let z = env.chain(*chain).zklink_as(DEV_KEYS[1 + user]).unwrap();
            let to = B256::from(env.address(to).0);
            let value = U256::from(*units) * U256::from(10u64).pow(U256::from(15)) + fee;
            send(z.depositETH(to, 0, ETH).value(value)).await.is_ok()
        }
        Action::FullExit { user, chain, account, token } => {
            let z = env.chain(*chain).zklink_as(DEV_KEYS[1 + user]).unwrap();
            send(z.requestFullExit(*account, 0, *token, *token).value(fee)).await.is_ok()
        }
        Action::SetFact { user, chain, key_of, nonce_ahead } => {
            let Ok((_, nonce)) = env.users[*user].id_and_nonce().await else { return false };
            let pkh = env.users[*key_of].pubkey.pubkey_hash().0;
            let z = env.chain(*chain).zklink_as(DEV_KEYS[1 + user]).unwrap();
            send(z.setAuthPubkeyHash(pkh.into(), nonce + nonce_ahead)).await.is_ok()
        }
        Action::ChangePubKey { user, chain, key_of, auth } => {
            let u = &env.users[*user];
            let Ok((account, nonce)) = u.id_and_nonce().await else { return false };
            let key = &env.users[*key_of];
            let msg = change_pubkey_eth_message(&key.pubkey.pubkey_hash(), nonce, account, *chain);
            let signer = if matches!(auth, Auth::OtherSigner) { &env.users[(user + 1) % 3] } else { u };
            let sig = eth_signature_bytes(&signer.eth.personal_sign(&msg));
            let auth = match auth {
                Auth::Canonical | Auth::OtherSigner => ChangePubKeyAuth::EthSignature(sig),
                Auth::HighS => ChangePubKeyAuth::EthSignature(high_s(sig)),
                Auth::LowV => {
                    let mut low = sig;
                    low[64] -= 27;
                    ChangePubKeyAuth::EthSignature(low)
                }
                Auth::Onchain => ChangePubKeyAuth::Onchain,
            };
            let tx = ChangePubKey {
                account,
                sub: 0,
                chain: *chain,
                new_pubkey: key.pubkey,
                fee_token: ETH,
                fee: 0,
                nonce,
                auth,
            };
            u.send(&Tx::ChangePubKey(tx).sign(&key.l2)).await.is_ok()
        }
        Action::Transfer { user, to, token, amount } => {
            let u = &env.users[*user];
            let Ok((account, nonce)) = u.id_and_nonce().await else { return false };
            let amount = u128::from(*amount) * 10u128.pow(14);
            let tx =
                Transfer { account, from_sub: 0, to: env.address(to), to_sub: 0, token: *token, amount, fee: 0, nonce };
            u.send(&Tx::Transfer(tx).sign(&u.l2)).await.is_ok()
        }
        Action::Withdraw { user, chain, l2_token, l1_token, to, amount } => {
            let u = &env.users[*user];
            let Ok((account, nonce)) = u.id_and_nonce().await else { return false };
            let amount = u128::from(*amount) * 10u128.pow(15);
            let tx = Withdraw {
                account,
                sub: 0,
                chain: *chain,
                l2_token: *l2_token,
                l1_token: *l1_token,
                amount,
                fee: 0,
                to: env.address(to),
                nonce,
            };
            u.send(&Tx::Withdraw(tx).sign(&u.l2)).await.is_ok()
        }
        Action::ForcedExit { user, target, chain, token } => {
            let u = &env.users[*user];
            let Ok((initiator, nonce)) = u.id_and_nonce().await else { return false };
            let tx = ForcedExit {
                initiator,
                initiator_sub: 0,
                target: *target,
                target_sub: 0,
                chain: *chain,
                l2_token: *token,
                l1_token: *token,
                fee_token: ETH,
                fee: 0,
                nonce,
            };
            u.send(&Tx::ForcedExit(tx).sign(&u.l2)).await.is_ok()
        }
    }
}

/// Seals what is pending and waits until every sealed block is executed on both chains; fails
/// at once if settlement halted.
async fn settle(env: &Env) {
    env.http.seal_block(ADMIN.into()).await.unwrap();
    let last = env.node.storage.last_block().unwrap().unwrap_or(0);
    wait_for(&format!("every block up to {last} executed on both chains"), TIMEOUT, async || {
        let halt: Option<Halt> = env.node.storage.l1_get(HALT_KEY).unwrap();
        assert!(halt.is_none(), "a contract refused a block the node sealed: {}", halt.unwrap());
        executed_everywhere(&env.chains, last).await
    })
    .await;
}

#[test]
fn every_block_the_node_seals_commits_on_every_chain() {
    let cases = std::env::var("ZKL_PARITY_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let len = std::env::var("ZKL_PARITY_ACTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let env = rt.block_on(setup());
    let mut runner =
        TestRunner::new(Config { cases, max_shrink_iters: 0, failure_persistence: None, ..Config::default() });
    let (accepted, refused) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    let result = runner.run(&proptest::collection::vec(action(), len), |actions| {
        rt.block_on(async {
            for a in &actions {
                let counter = if run(&env, a).await { &accepted } else { &refused };
                counter.set(counter.get() + 1);
            }
            settle(&env).await;
        });
        Ok(())
    });
    result.unwrap();
    let (accepted, refused) = (accepted.get(), refused.get());
    // Not vacuous: both accepted and refused actions happened, and blocks were settled.
    assert!(accepted > 0 && refused > 0, "accepted {accepted}, refused {refused}");
    let executed = rt.block_on(async { env.chains[0].zklink.blockCounters().call().await }).unwrap().executed;
    assert!(executed >= 2, "only {executed} blocks executed");
    eprintln!("parity: {accepted} actions accepted, {refused} refused, {executed} blocks settled on both chains");
    // The recovery tool rebuilds the same state from the chains alone: every block's root as
    // committed (the node's), with every op kind the actions produced.
    let file = zkl_exodus::test_utils::chains_file(&env.chains);
    let rebuilt = rt
        .block_on(zkl_exodus::recover::rebuild(
            &file,
            executed,
            zkl_exodus::recover::RebuildOptions { check_every: 1, ..Default::default() },
        ))
        .unwrap();
    assert_eq!(rebuilt.blocks.len(), executed as usize);
    assert!(rebuilt.state.account_count() >= 5, "the users' accounts were rebuilt");
    let Env { node, chains, .. } = env;
    rt.block_on(async {
        let mut node = node;
        if let Some(l1) = node.l1.take() {
            l1.stop().await;
        }
        let _ = node.handle.stop();
    });
    drop(chains);
}
