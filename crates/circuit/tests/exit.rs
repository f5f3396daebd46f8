//! The exodus exit circuit against the native rule (`zkl_state::exodus`): claims from a real
//! state (two chains, the USD merge group with USDC on both and USDT on chain 2) satisfy the
//! circuit with the native claim's public inputs; tampered claims do not; one Groth16 round
//! trip with the cached development keys.
//!
//! Each check synthesises the whole circuit (57k constraints): about 2 s per check in the test
//! profile.

use crate::common;

use ark_ff::{AdditiveGroup, Field};
use num_bigint::BigUint;
use zkl_circuit::Fr;
use zkl_circuit::exit::{
    ExitCircuit, ExitClaim, ExitError, ExitWitness, PUBLIC_INPUTS, amount_inputs, claim_key, exit_keys, owner_input,
    public_inputs,
};
use zkl_circuit::groth16::{KeyCache, check_satisfied, constraint_report};
use zkl_state::account::empty_account_tree;
use zkl_state::testkit::{ETH, ONE, USD, USDC, USDT, User, demo_registry, deposit};
use zkl_state::tree::empty_sub_tree;
use zkl_state::{ExodusError, QuadTree, State};
use zkl_types::op::{Op, TransferToNewOp};
use zkl_types::{Address, GLOBAL_ACCOUNT, TokenId, balance_index};

/// One USDC or USDT (6 decimals) in L2 units.
const UNIT6: u128 = 1_000_000_000_000;
/// The USD pool: USDC and USDT on every chain.
const POOL: [TokenId; 4] = [USDC, USDT, 0, 0];
/// An unregistered token: no liquidity anywhere.
const NO_TOKEN: TokenId = 7;

/// Users 1..=3 as accounts 2..=4: A holds USD from USDC on chain 1 and USDT on chain 2 (and
/// withdrew some USDC on chain 1), B USD from USDC on chain 2 and ETH on chain 1, C USDC as
/// itself on chain 1. Committed, after one sealed block.
fn scenario() -> (State, Vec<User>) {
    let users: Vec<User> = (1..=3).map(User::new).collect();
    let (a, b, c) = (&users[0], &users[1], &users[2]);
    let mut s = State::new(demo_registry(), User::new(999).address);
    let requests = [
        deposit(1, 0, a.address, USDC, USD, 1_000_000_007),
        deposit(2, 1, a.address, USDT, USD, 500_123_456),
        deposit(2, 2, b.address, USDC, USD, 300_000_001),
        deposit(1, 3, b.address, ETH, ETH, 3 * ONE),
        deposit(1, 4, c.address, USDC, USDC, 42_000_000),
    ];
    for r in &requests {
        s.execute_priority(r).unwrap();
    }
    s.genesis_set_key(2, a.pubkey).unwrap();
    s.execute_tx(&a.withdraw(2, 1, USD, USDC, 100 * UNIT6, UNIT6 / 10, 0)).unwrap();
    s.seal_block(1_700_000_000);
    s.commit();
    (s, users)
}

fn check(w: &ExitWitness) -> Result<(), String> {
    check_satisfied(ExitCircuit { witness: w.clone() }).unwrap()
}

/// Asserts the circuit rejects `w`; prints the first unsatisfied constraint (`--nocapture`).
fn rejected(w: &ExitWitness, what: &str) {
    match check(w) {
        Ok(()) => panic!("{what} accepted"),
        Err(e) => println!("{what}: first unsatisfied constraint {e}"),
    }
}

fn floor_div(b: u128, l: u128, p: u128) -> u128 {
    let q = BigUint::from(b) * BigUint::from(l) / BigUint::from(p);
    u128::try_from(q).unwrap()
}

/// The honest claim of account 2's USD on `chain`, built and checked.
fn honest(s: &State, chain: u8) -> (ExitCircuit, ExitClaim) {
    let (circuit, claim) = ExitCircuit::build(s, chain, 2, 0, USD, POOL).unwrap();
    assert_eq!(check(&circuit.witness), Ok(()), "honest claim on chain {chain}");
    (circuit, claim)
}

#[test]
fn constraint_count() {
    let r = constraint_report(ExitCircuit::blank()).unwrap();
    println!("exit circuit: {r}");
    assert_eq!(r.public_inputs, PUBLIC_INPUTS);
    assert!(r.constraints < 80_000, "{r}");
}

#[test]
fn native_claims_satisfy_the_circuit() {
    let (mut s, u) = scenario();
    let root = s.root();
    let (l1_usdc, l2_usdc, l2_usdt) = (s.liquidity(1, USDC), s.liquidity(2, USDC), s.liquidity(2, USDT));
    assert_eq!(l1_usdc, (1_000_000_007 + 42_000_000) * UNIT6 - 100 * UNIT6);
    let p = l1_usdc + l2_usdc + l2_usdt;
    let b = s.balance(2, 0, USD);
    assert_eq!(b, 1_000_000_007 * UNIT6 + 500_123_456 * UNIT6 - 100 * UNIT6 - UNIT6 / 10);
    let mut paid = 0;
    for chain in 1..=4u8 {
        let (circuit, exit) = honest(&s, chain);
        let claim = &exit.claim;
        assert_eq!(exit.root, root);
        assert_eq!((claim.owner, claim.balance, claim.liquidity), (u[0].address, b, s.pool_liquidity(POOL)));
        let expected = match chain {
            1 => [floor_div(b, l1_usdc, p), 0, 0, 0],
            2 => [floor_div(b, l2_usdc, p), floor_div(b, l2_usdt, p), 0, 0],
            _ => [0; 4],
        };
        assert_eq!(claim.amounts, expected, "chain {chain}");
        assert_eq!(exit.public_inputs, public_inputs(root, claim));
        assert_eq!(exit.public_inputs, circuit.witness.public_inputs());
        // The encodings, as the contract builds them.
        let key = (u128::from(chain) << 112) | (2 << 88) | (u128::from(USD) << 64) | (u128::from(USDC) << 48);
        assert_eq!(claim_key(chain, 2, 0, USD, POOL), key | (u128::from(USDT) << 32));
        assert_eq!(exit.public_inputs[1], Fr::from(key | (u128::from(USDT) << 32)));
        let address = BigUint::from_bytes_be(&u[0].address.0);
        assert!(address.bits() <= 160);
        assert_eq!(exit.public_inputs[2], Fr::from(address));
        let two128 = BigUint::from(1u8) << 128;
        let x3 = BigUint::from(expected[0]) * &two128 + BigUint::from(expected[1]);
        assert_eq!(exit.public_inputs[3], Fr::from(x3));
        assert_eq!(exit.public_inputs[4], Fr::ZERO);
        paid += claim.amounts.iter().sum::<u128>();
    }
    assert!(paid <= b && b - paid < 4, "pays b up to rounding: {paid} of {b}");

    // Other claimants: B's USD (only USDC on chain 2 is its own, it is paid from the pool),
    // C's USDC in the same pool, the fee account's USD fee, B's ETH alone.
    for (chain, account, token, members) in
        [(2, 3, USD, POOL), (1, 4, USDC, POOL), (1, 0, USD, POOL), (1, 3, ETH, [ETH, 0, 0, 0])]
    {
        let (circuit, exit) = ExitCircuit::build(&s, chain, account, 0, token, members).unwrap();
        assert!(exit.claim.amounts.iter().any(|a| *a > 0));
        assert_eq!(exit.public_inputs, public_inputs(root, &exit.claim));
        assert_eq!(check(&circuit.witness), Ok(()), "account {account} token {token}");
    }
    // A zero balance is a valid claim of nothing.
    let (circuit, exit) = ExitCircuit::build(&s, 2, 4, 5, USDT, POOL).unwrap();
    assert_eq!(exit.claim.amounts, [0; 4]);
    assert_eq!(check(&circuit.witness), Ok(()));
}

#[test]
fn witnesses_are_determined() {
    use ark_relations::gr1cs::ConstraintSynthesizer;
    let (s, _) = scenario();
    let (circuit, _) = ExitCircuit::build(&s, 2, 2, 0, USD, POOL).unwrap();
    let cs = common::new_cs();
    circuit.generate_constraints(cs.clone()).unwrap();
    common::assert_witnesses_determined(&cs, 0, 400, 7);
}

#[test]
fn uncommitted_state_refused() {
    let (mut s, u) = scenario();
    s.execute_priority(&deposit(1, 5, u[0].address, USDC, USD, 1_000_000)).unwrap();
    assert_eq!(ExitCircuit::build(&s, 1, 2, 0, USD, POOL).err(), Some(ExitError::Uncommitted));
    s.commit();
    assert!(ExitCircuit::build(&s, 1, 2, 0, USD, POOL).is_ok());
}

#[test]
fn wrong_root_or_owner_rejected() {
    let (s, u) = scenario();
    let (circuit, _) = honest(&s, 1);
    let mut w = circuit.witness.clone();
    w.root += Fr::ONE;
    rejected(&w, "wrong root");
    // A foreign claim: B names A's account and itself as the payee.
    let mut w = circuit.witness.clone();
    w.owner = u[1].address;
    rejected(&w, "foreign claim (x2)");
    // ... and with a leaf that says so.
    w.leaf.owner_hi = u[1].address.hi();
    w.leaf.owner_lo = u[1].address.lo();
    rejected(&w, "foreign claim (leaf owner)");
}

#[test]
fn wrong_amounts_rejected() {
    let (s, _) = scenario();
    let (circuit, exit) = honest(&s, 2);
    assert!(exit.claim.amounts[0] > 0 && exit.claim.amounts[1] > 0);
    for slot in [0, 1] {
        let mut w = circuit.witness.clone();
        w.amounts[slot] += 1;
        rejected(&w, &format!("inflated amount {slot}"));
        let mut w = circuit.witness.clone();
        w.amounts[slot] -= 1;
        rejected(&w, &format!("deflated amount {slot}"));
    }
    // An unused slot pays nothing.
    let mut w = circuit.witness.clone();
    w.amounts[3] = 1;
    rejected(&w, "amount in an unused slot");
}

#[test]
fn values_not_in_the_tree_rejected() {
    let (s, _) = scenario();
    let (circuit, _) = honest(&s, 2);
    // An inflated balance, with the amounts it would give.
    let mut w = circuit.witness.clone();
    w.balance += ONE;
    w.amounts = w.rule_amounts().unwrap();
    assert_ne!(w.amounts, circuit.witness.amounts);
    rejected(&w, "inflated balance");
    // A liquidity leaf changed (member 0, whose path carries the chain's upper levels, and
    // member 1, which shares them), with the amounts it would give.
    for (chain, slot) in [(2, 0), (2, 1), (1, 0)] {
        let mut w = circuit.witness.clone();
        w.liquidity[chain - 1][slot] += 1;
        w.amounts = w.rule_amounts().unwrap();
        rejected(&w, &format!("liquidity of chain {chain} slot {slot} changed"));
    }
    // Liquidity read from another account's balance tree.
    let mut w = circuit.witness.clone();
    w.global_leaf = w.leaf.clone();
    w.global_path = w.account_path.clone();
    rejected(&w, "liquidity of another account");
    // A made-up account 1 whose balance tree is consistent with more liquidity on chain 2:
    // only its opening against x0 stops it.
    let mut w = circuit.witness.clone();
    w.liquidity[1][0] *= 10;
    let mut fake = QuadTree::new(11, empty_sub_tree());
    for (c, row) in (1..=4u8).zip(&w.liquidity) {
        for (m, l) in w.members.iter().zip(row) {
            fake.set(u64::from(balance_index(c, *m)), Fr::from(*l));
        }
    }
    w.global_leaf.balance_root = fake.commit();
    w.liquidity_paths = std::array::from_fn(|c| {
        std::array::from_fn(|i| fake.proof(u64::from(balance_index(c as u8 + 1, w.members[i]))).siblings)
    });
    w.amounts = w.rule_amounts().unwrap();
    assert!(w.amounts[0] > circuit.witness.amounts[0]);
    rejected(&w, "made-up liquidity");
}

#[test]
fn claim_fields_rejected() {
    let (s, _) = scenario();
    let (circuit, _) = honest(&s, 2);
    // A member token changed in x1, with its liquidity and the amounts it would give (the
    // paths, whose index bits are x1's, are the old member's).
    let mut w = circuit.witness.clone();
    w.members[1] = ETH;
    w.liquidity = s.pool_liquidity(w.members);
    w.amounts = w.rule_amounts().unwrap();
    rejected(&w, "member changed");
    // Another claimed token with A's balance (the balance path's index bits are x1's).
    let mut w = circuit.witness.clone();
    w.l2_token = USDT;
    rejected(&w, "l2 token changed");
    // Chains 0 and 5 (no liquidity row: the amounts are zero).
    for chain in [0, 5] {
        let w = ExitWitness::from_state(&s, chain, 2, 0, USD, POOL).unwrap();
        assert_eq!(s.exodus_claim(chain, 2, 0, USD, POOL).err(), Some(ExodusError::InvalidChain(chain)));
        rejected(&w, &format!("chain {chain}"));
    }
    // Sub-account 32 (an empty leaf), and sub-account 64, whose low six bits alias
    // sub-account 0's balance.
    let w = ExitWitness::from_state(&s, 2, 2, 32, USD, POOL).unwrap();
    assert_eq!(s.exodus_claim(2, 2, 32, USD, POOL).err(), Some(ExodusError::InvalidSubAccount(32)));
    rejected(&w, "sub-account 32");
    let mut w = circuit.witness.clone();
    w.sub = 64;
    rejected(&w, "sub-account 64 (aliasing 0)");
    assert_eq!(ExitWitness::from_state(&s, 2, 2, 64, USD, POOL).err(), Some(ExitError::SubRange(64)));
}

#[test]
fn unpayable_claims_rejected() {
    let (mut s, _) = scenario();
    // P = 0: B's ETH claimed from a pool with no liquidity anywhere.
    assert!(s.balance(3, 0, ETH) > 0);
    let members = [NO_TOKEN, 0, 0, 0];
    assert_eq!(s.exodus_claim(1, 3, 0, ETH, members).err(), Some(ExodusError::EmptyPool));
    let w = ExitWitness::from_state(&s, 1, 3, 0, ETH, members).unwrap();
    assert_eq!(w.amounts, [0; 4]);
    rejected(&w, "empty pool");
    // The global account (no owner) claiming its own liquidity.
    assert_eq!(s.exodus_claim(1, GLOBAL_ACCOUNT, 1, USDC, POOL).err(), Some(ExodusError::NoOwner(GLOBAL_ACCOUNT)));
    let w = ExitWitness::from_state(&s, 1, GLOBAL_ACCOUNT, 1, USDC, POOL).unwrap();
    assert!(w.balance > 0 && w.amounts[0] > 0);
    rejected(&w, "global account");
    // An account whose owner is not an EVM address (the state machine's ops accept one; the
    // node refuses it): x2 would not name one address.
    let odd = Address([0x11; 32]);
    let to = s.account_count();
    let op = TransferToNewOp { from: 3, from_sub: 0, to, to_sub: 0, token: ETH, amount: ONE, fee: 0, to_owner: odd };
    s.apply_op(&Op::TransferToNew(op)).unwrap();
    s.commit();
    assert_eq!(s.exodus_claim(1, to, 0, ETH, [ETH, 0, 0, 0]).err(), Some(ExodusError::NotEvmOwner(to, odd)));
    let w = ExitWitness::from_state(&s, 1, to, 0, ETH, [ETH, 0, 0, 0]).unwrap();
    assert!(w.amounts[0] > 0);
    assert_eq!(w.public_inputs()[2], owner_input(&odd));
    rejected(&w, "non-EVM owner");
    // Unknown accounts have no witness.
    assert_eq!(
        ExitWitness::from_state(&s, 1, 99, 0, ETH, [ETH, 0, 0, 0]).err(),
        Some(ExitError::Rule(ExodusError::UnknownAccount(99)))
    );
}

/// A witness over a hand-made tree (account 1's liquidity and account 2's balance only), for
/// values the state machine never produces.
fn raw_witness(balance: u128, liquidity: [[u128; 4]; 4], chain: u8, amounts: [u128; 4]) -> ExitWitness {
    let owner = User::new(1).address;
    let (token, members) = (USD, POOL);
    let mut user_balances = QuadTree::new(11, empty_sub_tree());
    user_balances.set(u64::from(balance_index(0, token)), Fr::from(balance));
    let mut global_balances = QuadTree::new(11, empty_sub_tree());
    for (c, row) in (1..=4u8).zip(&liquidity) {
        for (m, l) in members.iter().zip(row) {
            if *m != 0 {
                global_balances.set(u64::from(balance_index(c, *m)), Fr::from(*l));
            }
        }
    }
    let e = empty_sub_tree()[11];
    let leaf = zkl_circuit::block::AccountLeaf {
        owner_hi: owner.hi(),
        owner_lo: owner.lo(),
        balance_root: user_balances.commit(),
        order_root: e,
        ..Default::default()
    };
    let global_leaf =
        zkl_circuit::block::AccountLeaf { balance_root: global_balances.commit(), order_root: e, ..Default::default() };
    let mut accounts = QuadTree::new(12, empty_account_tree());
    accounts.set(1, global_leaf.hash());
    accounts.set(2, leaf.hash());
    let root = accounts.commit();
    ExitWitness {
        root,
        chain,
        account: 2,
        sub: 0,
        l2_token: token,
        members,
        owner,
        amounts,
        leaf,
        account_path: accounts.proof(2).siblings,
        balance,
        balance_path: user_balances.proof(u64::from(balance_index(0, token))).siblings,
        global_leaf,
        global_path: accounts.proof(1).siblings,
        liquidity,
        liquidity_paths: std::array::from_fn(|c| {
            std::array::from_fn(|i| global_balances.proof(u64::from(balance_index(c as u8 + 1, members[i]))).siblings)
        }),
    }
}

#[test]
fn out_of_range_values_rejected() {
    const CAP: u128 = zkl_types::MAX_LIQUIDITY;
    // The hand-made tree with in-range values is accepted (the helper is sound).
    let mut l = [[0u128; 4]; 4];
    l[0][0] = CAP;
    l[1][1] = 3;
    let w = raw_witness(CAP, l, 1, zkl_state::exodus_amounts(CAP, &l, 1).unwrap());
    assert_eq!(check(&w), Ok(()));
    // A liquidity leaf of 2^112 (above the cap).
    l[0][0] = CAP + 1;
    let amounts = [floor_div(CAP, CAP + 1, CAP + 4), 0, 0, 0];
    assert!(matches!(zkl_state::exodus_amounts(CAP, &l, 1), Err(ExodusError::LiquidityTooLarge { .. })));
    rejected(&raw_witness(CAP, l, 1, amounts), "liquidity 2^112");
    // A balance beyond the pool: the claim would exceed 2^112 - 1.
    let l = [[1, 0, 0, 0], [0; 4], [0; 4], [0; 4]];
    let b = 1 << 120;
    assert!(matches!(zkl_state::exodus_amounts(b, &l, 1), Err(ExodusError::AmountTooLarge { .. })));
    rejected(&raw_witness(b, l, 1, [b, 0, 0, 0]), "amount 2^120");
    let w = raw_witness(CAP, l, 1, [CAP, 0, 0, 0]);
    assert_eq!(check(&w), Ok(()), "an amount of 2^112 - 1 is accepted");
}

/// Groth16 with the cached development keys: one proof verifies with its public inputs and
/// fails with any one of them changed.
#[test]
fn exit_proves_and_verifies() {
    use rand::SeedableRng;
    let (s, _) = scenario();
    let (circuit, exit) = ExitCircuit::build(&s, 2, 2, 0, USD, POOL).unwrap();
    let t0 = std::time::Instant::now();
    let keys = exit_keys(&KeyCache::new(KeyCache::default_dir(), false)).unwrap();
    let setup_time = t0.elapsed();
    let t1 = std::time::Instant::now();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let proof = keys.prove(circuit, &mut rng).unwrap();
    let prove_time = t1.elapsed();
    assert!(keys.verify(&exit.public_inputs, &proof).unwrap());
    let inflated = {
        let mut a = exit.claim.amounts;
        a[1] += 1;
        amount_inputs(&a)[0]
    };
    for (k, changed) in [exit.root + Fr::ONE, exit.public_inputs[1] + Fr::ONE, Fr::from(7u64), inflated, Fr::ONE]
        .into_iter()
        .enumerate()
    {
        let mut inputs = exit.public_inputs;
        inputs[k] = changed;
        assert!(!keys.verify(&inputs, &proof).unwrap(), "x{k} changed");
    }
    println!("exit circuit: keys (setup or cache) {setup_time:?}, prove {prove_time:?}");
}
