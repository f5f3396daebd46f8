//! The block circuit against the state machine: blocks applied natively with `zkl-state` and in
//! the circuit (constraint system satisfied, same public input as the sealed block's), and
//! blocks breaking a rule unsatisfied.
//!
//! Each satisfaction check synthesises the whole circuit (about 338k constraints at capacity 4):
//! 10-25 s per check in the test profile.

use ark_ff::Field;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zkl_circuit::Fr;
use zkl_circuit::block::{BlockCircuit, BlockWitness, BlockWitnessError};
use zkl_circuit::commitment::BlockHeader;
use zkl_circuit::groth16::{check_satisfied, constraint_report};
use zkl_state::testkit::{ETH, ONE, USDC, User, demo_registry, deposit};
use zkl_state::{BlockParams, SealedBlock, State};
use zkl_types::op::{DepositOp, ForcedExitOp, TransferOp, WithdrawOp};
use zkl_types::{ForcedExit, Op, PriorityRequest, SignedTx, Transfer, Tx, Withdraw};

const CAPACITY: usize = 4;
const FEE_SLOTS: usize = 2;
/// One USDC (6 decimals) in L2 units.
const USDC_UNIT: u128 = 1_000_000_000_000;

/// Users 1..=3 as accounts 2..=4 with 10 ETH and 10,000 USDC on chain 1 and keys set; the next
/// block has capacity 4 and 2 fee slots.
fn genesis() -> (State, Vec<User>) {
    let users: Vec<User> = (1..=3).map(User::new).collect();
    let mut s = State::new(demo_registry(), User::new(999).address);
    s.set_block_params(BlockParams::for_capacity(64));
    for (i, u) in users.iter().enumerate() {
        s.execute_priority(&deposit(1, 2 * i as u64, u.address, ETH, ETH, 10 * ONE)).unwrap();
        s.execute_priority(&deposit(1, 2 * i as u64 + 1, u.address, USDC, USDC, 10_000_000_000)).unwrap();
        s.genesis_set_key(2 + i as u32, u.pubkey).unwrap();
    }
    s.seal_block(1_700_000_000);
    s.set_block_params(BlockParams { capacity: CAPACITY, max_fee_tokens: FEE_SLOTS });
    s.commit();
    (s, users)
}

#[derive(Clone)]
enum Item {
    Tx(SignedTx),
    Priority(PriorityRequest),
}

/// Executes `items` in a new block on `s` and seals it; returns the pre-block state, the block
/// and the txs aligned with its ops.
fn run_block(s: &mut State, items: &[Item]) -> (State, SealedBlock, Vec<Option<SignedTx>>) {
    s.commit();
    let pre = s.clone();
    let mut txs = Vec::new();
    for item in items {
        match item {
            Item::Tx(t) => {
                s.execute_tx(t).unwrap();
                txs.push(Some(t.clone()));
            }
            Item::Priority(p) => {
                s.execute_priority(p).unwrap();
                txs.push(None);
            }
        }
    }
    let block = s.seal_block(1_700_000_100 + u64::from(s.last_block()));
    (pre, block, txs)
}

fn check(w: &BlockWitness) -> Result<(), String> {
    check_satisfied(BlockCircuit { witness: w.clone() }).unwrap()
}

/// Runs a block natively, builds its witness and checks the circuit accepts it.
fn block_matches(s: &mut State, items: &[Item]) -> BlockWitness {
    let (pre, block, txs) = run_block(s, items);
    let w = BlockWitness::build(&pre, &block, &txs, FEE_SLOTS).unwrap();
    assert_eq!(w.public_input, block.public_input);
    assert_eq!(w.new_root, block.commitment.new_root);
    assert_eq!(check(&w), Ok(()), "block {:?}", block.ops);
    w
}

#[allow(clippy::too_many_arguments)]
fn transfer(u: &User, account: u32, to: &User, to_sub: u8, token: u16, amount: u128, fee: u128, nonce: u32) -> Item {
    let tx = Transfer { account, from_sub: 0, to: to.address, to_sub, token, amount, fee, nonce };
    Item::Tx(Tx::Transfer(tx).sign(&u.l2))
}

#[test]
fn deposit_and_transfer_block() {
    let (mut s, u) = genesis();
    // A deposit creating account 5, then a transfer with a fee.
    block_matches(
        &mut s,
        &[
            Item::Priority(deposit(1, 100, User::new(7).address, ETH, ETH, ONE)),
            transfer(&u[0], 2, &u[1], 0, ETH, ONE / 10, ONE / 1000, 0),
        ],
    );
}

#[test]
fn change_pubkey_and_self_transfer_block() {
    let (mut s, u) = genesis();
    let carol = User::new(7);
    s.set_block_params(BlockParams::for_capacity(64));
    s.execute_priority(&deposit(2, 100, carol.address, ETH, ETH, ONE)).unwrap();
    s.seal_block(1_700_000_050);
    s.set_block_params(BlockParams { capacity: CAPACITY, max_fee_tokens: FEE_SLOTS });
    // ChangePubKey with a fee on chain 2, then a transfer to the sender's own sub-account 1.
    block_matches(
        &mut s,
        &[
            Item::Tx(carol.change_pubkey(5, 0, 2, ETH, ONE / 100)),
            transfer(&u[0], 2, &u[0], 1, USDC, 5 * USDC_UNIT, 0, 0),
        ],
    );
}

#[test]
fn withdraw_and_transfer_to_new_blocks() {
    let (mut s, u) = genesis();
    // A withdrawal (USDC, fee in USDC) and a transfer in a second fee token.
    block_matches(
        &mut s,
        &[
            Item::Tx(u[1].withdraw(3, 1, USDC, USDC, 400 * USDC_UNIT, USDC_UNIT / 10, 0)),
            transfer(&u[2], 4, &u[0], 0, ETH, ONE, ONE / 100, 0),
        ],
    );
    // A transfer creating account 5, then a Noop.
    block_matches(&mut s, &[transfer(&u[0], 2, &User::new(8), 3, ETH, ONE / 2, ONE / 1000, 0)]);
}

/// Random blocks of supported ops, applied by the state machine and checked in the circuit.
#[test]
fn random_blocks_match_state_machine() {
    let (mut s, u) = genesis();
    let mut rng = StdRng::seed_from_u64(5);
    let mut nonces = [0u32; 3];
    let mut next_user = 20;
    for _ in 0..2 {
        let mut items = Vec::new();
        let mut chunks = 0;
        while chunks < CAPACITY {
            let i = rng.gen_range(0..3usize);
            let token = if rng.gen_bool(0.5) { ETH } else { USDC };
            let unit = if token == ETH { ONE / 1000 } else { USDC_UNIT };
            let amount = unit * rng.gen_range(1..100u128);
            let fee = if rng.gen_bool(0.5) { 0 } else { unit / 10 };
            let (item, n) = match rng.gen_range(0..4) {
                0 => {
                    let j = (i + rng.gen_range(1..3usize)) % 3;
                    (transfer(&u[i], 2 + i as u32, &u[j], rng.gen_range(0..2u8), token, amount, fee, nonces[i]), 1)
                }
                1 if chunks + 3 <= CAPACITY => {
                    next_user += 1;
                    (transfer(&u[i], 2 + i as u32, &User::new(next_user), 0, token, amount, fee, nonces[i]), 3)
                }
                2 if chunks + 3 <= CAPACITY => {
                    (Item::Tx(u[i].withdraw(2 + i as u32, 1, token, token, amount, fee, nonces[i])), 3)
                }
                3 if chunks + 3 <= CAPACITY => {
                    let owner = if rng.gen_bool(0.5) { u[i].address } else { User::new(next_user + 1).address };
                    (Item::Priority(deposit(1, 1000 + next_user, owner, ETH, ETH, ONE)), 3)
                }
                _ => continue,
            };
            if let Item::Tx(t) = &item
                && t.tx.signer() == 2 + i as u32
            {
                nonces[i] += 1;
            }
            if let Item::Priority(PriorityRequest::Deposit { owner, .. }) = &item
                && *owner != u[i].address
            {
                next_user += 1;
            }
            items.push(item);
            chunks += n;
        }
        block_matches(&mut s, &items);
    }
}

#[test]
fn unsupported_ops_are_refused() {
    let (mut s, _) = genesis();
    let req = PriorityRequest::FullExit {
        chain: 1,
        serial_id: 100,
        account: 2,
        sub: 0,
        owner: User::new(1).address,
        l1_token: ETH,
        l2_token: ETH,
    };
    let (pre, block, txs) = run_block(&mut s, &[Item::Priority(req)]);
    assert_eq!(
        BlockWitness::build(&pre, &block, &txs, FEE_SLOTS),
        Err(BlockWitnessError::UnsupportedOp(0, "full_exit"))
    );
    let (pre, block, txs) = run_block(&mut s, &[]);
    // An empty block (all Noop) needs no tx.
    assert!(BlockWitness::build(&pre, &block, &txs, 1).is_ok());
}

// ---- soundness ------------------------------------------------------------------------------

/// The witness of `ops` on `s` built without the state machine's rules.
fn unchecked(s: &State, ops: &[Op], txs: &[Option<SignedTx>]) -> BlockWitness {
    BlockWitness::build_unchecked(s, ops, txs, CAPACITY, FEE_SLOTS, (2, 1_700_000_200)).unwrap()
}

/// Recomputes the public input after the header fields of `w` were changed.
fn recommit(w: &mut BlockWitness) {
    let header = BlockHeader {
        block_number: w.block_number,
        timestamp: w.timestamp,
        old_root: w.old_root,
        new_root: w.new_root,
        pubdata_hash: zkl_circuit::commitment::pubdata_hash(&w.pubdata),
        onchain_hashes: w.onchain_hashes(),
    };
    w.public_input = header.public_input();
}

fn transfer_op(from: u32, to: u32, amount: u128, fee: u128) -> Op {
    Op::Transfer(TransferOp { from, to, from_sub: 0, to_sub: 0, token: ETH, amount, fee })
}

#[test]
fn unchecked_builder_agrees_on_valid_blocks_and_tampering_is_caught() {
    let (mut s, u) = genesis();
    let items = [transfer(&u[0], 2, &u[1], 0, ETH, ONE / 10, ONE / 1000, 0)];
    let pre = s.clone();
    let (_, block, txs) = run_block(&mut s, &items);
    // The rule-free builder gives the same witness for a valid block (so a rejection below
    // comes from the rule broken, not from the builder).
    let w = BlockWitness::build_unchecked(&pre, &block.ops, &txs, CAPACITY, FEE_SLOTS, (block.number, block.timestamp))
        .unwrap();
    assert_eq!(w, BlockWitness::build(&pre, &block, &txs, FEE_SLOTS).unwrap());

    // Wrong signature (S + 1; the commitment is unchanged).
    let mut bad = w.clone();
    bad.chunks[0].signature.2 += Fr::ONE;
    assert!(check(&bad).is_err(), "tampered S accepted");
    // Pubdata not matching the op: the transfer's amount byte changed, commitment recomputed.
    let mut bad = w.clone();
    bad.pubdata[15] ^= 0x40;
    recommit(&mut bad);
    assert!(check(&bad).is_err(), "pubdata not matching the op accepted");
    // Wrong old root (commitment recomputed for it).
    let mut bad = w.clone();
    bad.old_root += Fr::ONE;
    recommit(&mut bad);
    assert!(check(&bad).is_err(), "wrong old root accepted");
    // A public input other than the commitment's.
    let mut bad = w;
    bad.public_input += Fr::ONE;
    assert!(check(&bad).is_err(), "wrong public input accepted");
}

#[test]
fn signature_by_another_key_and_wrong_nonce_are_unsatisfied() {
    let (s, u) = genesis();
    let op = transfer_op(2, 3, ONE / 10, 0);
    let signed = |key: &User, nonce: u32| {
        let tx = Transfer {
            account: 2,
            from_sub: 0,
            to: u[1].address,
            to_sub: 0,
            token: ETH,
            amount: ONE / 10,
            fee: 0,
            nonce,
        };
        Tx::Transfer(tx).sign(&key.l2)
    };
    // Signed by Bob's key for Alice's account (the witness carries Bob's key and signature).
    let mut w = unchecked(&s, &[op], &[Some(signed(&u[1], 0))]);
    w.chunks[0].pubkey = (u[1].pubkey.x(), u[1].pubkey.y());
    assert!(check(&w).is_err(), "signature by another key accepted");
    // Signed by Alice with nonce 1 while her nonce is 0 (replay of a future / past tx).
    assert!(s.clone().execute_tx(&signed(&u[0], 1)).is_err());
    let w = unchecked(&s, &[op], &[Some(signed(&u[0], 1))]);
    assert!(check(&w).is_err(), "wrong nonce accepted");
}

#[test]
fn overspend_is_unsatisfied() {
    let (s, u) = genesis();
    // Alice has 10 ETH: sending 10 ETH with a fee overspends by the fee.
    let tx = Transfer {
        account: 2,
        from_sub: 0,
        to: u[1].address,
        to_sub: 0,
        token: ETH,
        amount: 10 * ONE,
        fee: ONE / 1000,
        nonce: 0,
    };
    let stx = Tx::Transfer(tx).sign(&u[0].l2);
    assert!(s.clone().execute_tx(&stx).is_err());
    let w = unchecked(&s, &[transfer_op(2, 3, 10 * ONE, ONE / 1000)], &[Some(stx)]);
    assert!(check(&w).is_err(), "overspend accepted");
}

#[test]
fn liquidity_limits_are_unsatisfied() {
    let (mut s, u) = genesis();
    // Alice also deposits 30 ETH on chain 2: she holds 40 ETH, chain 1 holds 30 ETH.
    s.set_block_params(BlockParams::for_capacity(64));
    s.execute_priority(&deposit(2, 100, u[0].address, ETH, ETH, 30 * ONE)).unwrap();
    s.seal_block(1_700_000_050);
    s.commit();
    let tx = Withdraw {
        account: 2,
        sub: 0,
        chain: 1,
        l2_token: ETH,
        l1_token: ETH,
        amount: 35 * ONE,
        fee: 0,
        to: u[0].address,
        nonce: 0,
    };
    let stx = Tx::Withdraw(tx).sign(&u[0].l2);
    assert!(matches!(s.clone().execute_tx(&stx), Err(zkl_state::TxError::InsufficientLiquidity { .. })));
    let op = Op::Withdraw(WithdrawOp {
        chain: 1,
        account: 2,
        sub: 0,
        l2_token: ETH,
        l1_token: ETH,
        amount: 35 * ONE,
        fee: 0,
        to: u[0].address,
    });
    let w = unchecked(&s, &[op], &[Some(stx)]);
    assert!(check(&w).is_err(), "withdrawal beyond liquidity accepted");
    // A deposit taking chain 1's ETH liquidity past MAX_LIQUIDITY.
    let amount = zkl_types::MAX_LIQUIDITY - 30 * ONE + 1;
    let op = Op::Deposit(DepositOp {
        chain: 1,
        account: 2,
        sub: 0,
        l1_token: ETH,
        l2_token: ETH,
        amount,
        owner: u[0].address,
    });
    assert!(s.clone().apply_op(&op).is_err());
    let w = unchecked(&s, &[op], &[None]);
    assert!(check(&w).is_err(), "liquidity above the cap accepted");
}

/// Dave (account 5, no key) holds 2 ETH from a deposit on chain 1.
fn with_keyless_target() -> (State, Vec<User>) {
    let (mut s, u) = genesis();
    s.set_block_params(BlockParams::for_capacity(64));
    s.execute_priority(&deposit(1, 100, User::new(9).address, ETH, ETH, 2 * ONE)).unwrap();
    s.seal_block(1_700_000_050);
    s.set_block_params(BlockParams { capacity: CAPACITY, max_fee_tokens: FEE_SLOTS });
    s.commit();
    (s, u)
}

fn forced_exit_tx(u: &User, target: u32) -> SignedTx {
    let fe = ForcedExit {
        initiator: 2,
        initiator_sub: 0,
        target,
        target_sub: 0,
        chain: 1,
        l2_token: ETH,
        l1_token: ETH,
        fee_token: USDC,
        fee: USDC_UNIT,
        nonce: 0,
    };
    Tx::ForcedExit(fe).sign(&u.l2)
}

#[test]
fn forced_exit_block() {
    let (mut s, u) = with_keyless_target();
    // Alice forces Dave's 2 ETH out to his address on chain 1, paying 1 USDC.
    block_matches(&mut s, &[Item::Tx(forced_exit_tx(&u[0], 5))]);
}

#[test]
fn forced_exit_of_a_keyed_account_or_part_of_a_balance_is_unsatisfied() {
    let (s, u) = with_keyless_target();
    let op = |target: u32, amount: u128, owner: &User| {
        Op::ForcedExit(ForcedExitOp {
            chain: 1,
            initiator: 2,
            initiator_sub: 0,
            target,
            target_sub: 0,
            l2_token: ETH,
            l1_token: ETH,
            fee_token: USDC,
            fee: USDC_UNIT,
            amount,
            target_owner: owner.address,
        })
    };
    // Bob (account 3) has a key: the state machine refuses, the circuit too.
    let stx = forced_exit_tx(&u[0], 3);
    assert!(matches!(s.clone().execute_tx(&stx), Err(zkl_state::TxError::TargetHasKey(3))));
    let w = unchecked(&s, &[op(3, 10 * ONE, &u[1])], &[Some(stx)]);
    assert!(check(&w).is_err(), "forced exit of an account with a key accepted");
    // Dave's forced exit claiming 1 of his 2 ETH.
    let w = unchecked(&s, &[op(5, ONE, &User::new(9))], &[Some(forced_exit_tx(&u[0], 5))]);
    assert!(check(&w).is_err(), "partial forced exit accepted");
}

#[test]
fn block_constraint_report() {
    let r = constraint_report(BlockCircuit::blank(CAPACITY, FEE_SLOTS)).unwrap();
    println!("block circuit, capacity {CAPACITY}, {FEE_SLOTS} fee slots: {r}");
    assert_eq!(r.public_inputs, 1);
}

/// Groth16 end to end on a capacity-4 block: development setup (cached under
/// `target/zkl-keys`), prove, verify, and a tampered public input rejected.
#[test]
fn block_proves_and_verifies() {
    use rand::SeedableRng;
    use zkl_circuit::groth16::KeyCache;
    let (mut s, u) = genesis();
    let (pre, block, txs) = run_block(
        &mut s,
        &[
            Item::Tx(u[1].withdraw(3, 1, USDC, USDC, 400 * USDC_UNIT, USDC_UNIT / 10, 0)),
            transfer(&u[2], 4, &u[0], 0, ETH, ONE, ONE / 100, 0),
        ],
    );
    let w = BlockWitness::build(&pre, &block, &txs, FEE_SLOTS).unwrap();
    let t0 = std::time::Instant::now();
    let keys = KeyCache::new(KeyCache::default_dir(), false)
        .load_or_setup("block-c4-f2", BlockCircuit::blank(CAPACITY, FEE_SLOTS))
        .unwrap();
    let setup_time = t0.elapsed();
    let t1 = std::time::Instant::now();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let proof = keys.prove(BlockCircuit { witness: w.clone() }, &mut rng).unwrap();
    let prove_time = t1.elapsed();
    assert!(keys.verify(&[block.public_input], &proof).unwrap());
    assert!(!keys.verify(&[block.public_input + Fr::ONE], &proof).unwrap());
    println!("block circuit (capacity {CAPACITY}): keys (setup or cache) {setup_time:?}, prove {prove_time:?}");
}
