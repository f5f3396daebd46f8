//! Property tests over random sequences of valid and invalid transactions:
//! - per L1 token, liquidity over all chains equals deposits minus withdrawals, and per token
//!   family the L2 balances (plus uncredited fees) equal that liquidity;
//! - liquidity never goes negative and no balance overflows (the state is u128 and checked);
//! - nonces never decrease; a rejected tx changes nothing; any replayed tx is rejected;
//! - the state rebuilt from the blocks' pubdata alone, committing after every op, has the same
//!   root after every block as the deferred, batched computation.

use crate::common;

use std::collections::{BTreeMap, HashMap};

use common::World;
use proptest::prelude::*;
use zkl_state::State;
use zkl_state::testkit::*;
use zkl_types::op::Op;
use zkl_types::*;

const USERS: usize = 4;

#[derive(Debug, Clone)]
enum Action {
    Deposit { user: usize, chain: u8, pair: usize, mantissa: u64 },
    FullExit { user: usize, owner: usize, chain: u8, pair: usize },
    Transfer { from: usize, to: usize, token: usize, amount: u128, fee: u128, nonce_skew: u8 },
    Withdraw { user: usize, chain: u8, pair: usize, amount: u128, nonce_skew: u8 },
    Match { maker: usize, taker: usize, slot: u16, order_units: u64, fill_units: u64, price_units: u64, skew: u8 },
    Replay { index: usize },
    Seal,
}

/// (l1 token, l2 token) pairs that users deposit and withdraw.
const PAIRS: [(TokenId, TokenId); 5] = [(ETH, ETH), (USDC, USDC), (USDT, USDT), (USDC, USD), (USDT, USD)];
const TOKENS: [TokenId; 4] = [ETH, USDC, USDT, USD];

fn amount() -> impl Strategy<Value = u128> {
    prop_oneof![
        8 => (1u128..1000, 12u32..19).prop_map(|(m, e)| m * 10u128.pow(e)),
        1 => any::<u128>(),
        1 => Just(0u128),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let user = 0..USERS;
    prop_oneof![
        3 => (user.clone(), 1u8..=3, 0..PAIRS.len(), 1u64..5_000).prop_map(|(user, chain, pair, mantissa)| Action::Deposit { user, chain, pair, mantissa }),
        1 => (user.clone(), user.clone(), 1u8..=2, 0..PAIRS.len()).prop_map(|(user, owner, chain, pair)| Action::FullExit { user, owner, chain, pair }),
        4 => (user.clone(), user.clone(), 0..TOKENS.len(), amount(), prop_oneof![3 => Just(0u128), 1 => 1u128..2047], prop_oneof![9 => Just(0u8), 1 => 1u8..3])
            .prop_map(|(from, to, token, amount, fee, nonce_skew)| Action::Transfer { from, to, token, amount, fee, nonce_skew }),
        3 => (user.clone(), 1u8..=3, 0..PAIRS.len(), amount(), prop_oneof![9 => Just(0u8), 1 => 1u8..3])
            .prop_map(|(user, chain, pair, amount, nonce_skew)| Action::Withdraw { user, chain, pair, amount, nonce_skew }),
        3 => (1..USERS, 1..USERS, 0u16..3, 1u64..8, 1u64..8, 1u64..3000, prop_oneof![9 => Just(0u8), 1 => 1u8..4])
            .prop_map(|(maker, taker, slot, order_units, fill_units, price_units, skew)| Action::Match { maker, taker, slot, order_units, fill_units, price_units, skew }),
        2 => (0usize..64).prop_map(|index| Action::Replay { index }),
        1 => Just(Action::Seal),
    ]
}

struct Model {
    /// Deposited minus withdrawn, per L1 token, in L2 units.
    net: BTreeMap<TokenId, i128>,
    nonces: HashMap<AccountId, Nonce>,
    executed: Vec<SignedTx>,
    blocks: Vec<zkl_state::SealedBlock>,
}

fn check_invariants(w: &mut World, m: &mut Model) -> Result<(), TestCaseError> {
    let reg = w.state.registry().clone();
    // Liquidity per L1 token over all chains equals deposits minus withdrawals.
    let mut liquidity: BTreeMap<TokenId, u128> = BTreeMap::new();
    for (index, amount) in w.state.account(GLOBAL_ACCOUNT).unwrap().balances() {
        *liquidity.entry((index & 0xffff) as TokenId).or_default() += amount;
    }
    for (token, net) in &m.net {
        prop_assert!(*net >= 0, "net deposits of {token} negative");
        prop_assert_eq!(liquidity.get(token).copied().unwrap_or(0) as i128, *net, "liquidity of token {}", token);
    }
    // Per family, L2 balances plus pending fees equal liquidity.
    let mut held: BTreeMap<TokenId, u128> = BTreeMap::new();
    for id in 0..w.state.account_count() {
        if id == GLOBAL_ACCOUNT {
            continue;
        }
        for (index, amount) in w.state.account(id).unwrap().balances() {
            *held.entry(reg.family((index & 0xffff) as TokenId)).or_default() += amount;
        }
    }
    for (token, fee) in w.state.pending_fees() {
        *held.entry(reg.family(*token)).or_default() += fee;
    }
    let mut backing: BTreeMap<TokenId, u128> = BTreeMap::new();
    for (token, amount) in &liquidity {
        *backing.entry(reg.family(*token)).or_default() += amount;
    }
    held.retain(|_, v| *v > 0);
    backing.retain(|_, v| *v > 0);
    prop_assert_eq!(&held, &backing, "balances per family equal liquidity");
    // Nonces never decrease.
    for id in 0..w.state.account_count() {
        let n = w.state.account(id).unwrap().nonce;
        let old = m.nonces.insert(id, n).unwrap_or(0);
        prop_assert!(n >= old, "nonce of {id} went from {old} to {n}");
    }
    Ok(())
}

fn record_payout(m: &mut Model, op: &Op) {
    let (l1, amount) = match op {
        Op::Deposit(d) => {
            *m.net.entry(d.l1_token).or_default() += d.amount as i128;
            return;
        }
        Op::Withdraw(o) => (o.l1_token, o.amount),
        Op::FullExit(o) => (o.l1_token, o.amount),
        Op::ForcedExit(o) => (o.l1_token, o.amount),
        _ => return,
    };
    *m.net.entry(l1).or_default() -= amount as i128;
}

fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut w = World::funded(USERS);
    let mut m = Model { net: BTreeMap::new(), nonces: HashMap::new(), executed: Vec::new(), blocks: Vec::new() };
    for block in &w.state.pending_ops().to_vec() {
        record_payout(&mut m, block);
    }
    check_invariants(&mut w, &mut m)?;
    let mut serial = 1_000;
    for action in actions {
        let before = w.snapshot();
        let result = match &action {
            Action::Deposit { user, chain, pair, mantissa } => {
                let (l1, l2) = PAIRS[*pair];
                serial += 1;
                let l1_amount = u128::from(*mantissa) * if l1 == ETH { 10u128.pow(15) } else { 10_000 };
                w.state.execute_priority(&deposit(*chain, serial, w.users[*user].address, l1, l2, l1_amount))
            }
            Action::FullExit { user, owner, chain, pair } => {
                let (l1, l2) = PAIRS[*pair];
                serial += 1;
                let req = PriorityRequest::FullExit {
                    chain: *chain,
                    serial_id: serial,
                    account: w.id(*user),
                    sub: 0,
                    owner: w.users[*owner].address,
                    l1_token: l1,
                    l2_token: l2,
                };
                w.state.execute_priority(&req)
            }
            Action::Transfer { from, to, token, amount, fee, nonce_skew } => {
                let nonce = w.nonce(*from) + u32::from(*nonce_skew);
                let tx =
                    w.users[*from].transfer(w.id(*from), w.users[*to].address, TOKENS[*token], *amount, *fee, nonce);
                let r = w.state.execute_tx(&tx);
                if r.is_ok() {
                    m.executed.push(tx);
                }
                r
            }
            Action::Withdraw { user, chain, pair, amount, nonce_skew } => {
                let (l1, l2) = PAIRS[*pair];
                let nonce = w.nonce(*user) + u32::from(*nonce_skew);
                let tx = w.users[*user].withdraw(w.id(*user), *chain, l2, l1, *amount, 0, nonce);
                let r = w.state.execute_tx(&tx);
                if r.is_ok() {
                    m.executed.push(tx);
                }
                r
            }
            Action::Match { maker, taker, slot, order_units, fill_units, price_units, skew } => {
                let (mk, tk) = (w.id(*maker), w.id(*taker));
                let ms = w.state.slot(mk, 0, *slot);
                let ts = w.state.slot(tk, 0, *slot + 10);
                let unit = ONE / 10;
                let price = u128::from(*price_units) * ONE;
                let maker_order =
                    w.users[*maker].order(mk, *slot, ms.nonce, ETH, USDC, u128::from(*order_units) * unit, price, true);
                let taker_order = w.users[*taker].order(
                    tk,
                    *slot + 10,
                    ts.nonce + u32::from(*skew == 3),
                    ETH,
                    USDC,
                    8 * unit,
                    price,
                    false,
                );
                let residues = (ms.residue + u128::from(*skew == 1), ts.residue + u128::from(*skew == 2));
                let tx =
                    matching(&w.users[0], w.id(0), maker_order, taker_order, u128::from(*fill_units) * unit, residues);
                let r = w.state.execute_tx(&tx);
                if r.is_ok() {
                    m.executed.push(tx);
                }
                r
            }
            Action::Replay { index } => {
                if m.executed.is_empty() {
                    continue;
                }
                let tx = m.executed[index % m.executed.len()].clone();
                let r = w.state.execute_tx(&tx);
                prop_assert!(r.is_err(), "replayed tx accepted: {:?}", tx.tx);
                r
            }
            Action::Seal => {
                let b = w.state.seal_block(m.blocks.len() as u64);
                m.blocks.push(b);
                check_invariants(&mut w, &mut m)?;
                continue;
            }
        };
        if std::env::var("ZKL_TRACE").is_ok() {
            eprintln!(
                "{} {:?}",
                match &action {
                    Action::Deposit { .. } => "dep",
                    Action::FullExit { .. } => "fe",
                    Action::Transfer { .. } => "tr",
                    Action::Withdraw { .. } => "wd",
                    Action::Match { .. } => "om",
                    Action::Replay { .. } => "rp",
                    Action::Seal => "seal",
                },
                result.as_ref().map(|o| o.name())
            );
        }
        match result {
            Ok(op) => record_payout(&mut m, &op),
            Err(_) => prop_assert_eq!(w.snapshot(), before, "rejected {:?} changed the state", action),
        }
        check_invariants(&mut w, &mut m)?;
    }
    let last = w.state.seal_block(999);
    m.blocks.push(last);

    // Rebuild from pubdata alone, committing after every op.
    let mut replica = State::new(demo_registry(), User::new(999).address);
    for block in &m.blocks {
        for op in Op::decode_block(&block.pubdata).expect("pubdata decodes") {
            replica.apply_op(&op).map_err(|e| TestCaseError::fail(format!("replay of {op:?} failed: {e}")))?;
            replica.commit();
        }
        replica.credit_fees();
        prop_assert_eq!(replica.root(), block.commitment.new_root, "root after block {}", block.number);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_keep_every_invariant(actions in proptest::collection::vec(action(), 1..40)) {
        run(actions)?;
    }
}
