//! Fuzzing the state machine's inputs on the stable toolchain (proptest): tx JSON as a client
//! sends it and priority requests as a watcher hands them over. Arbitrary bytes and mutations
//! of valid txs of every kind never panic; whatever parses is either applied or rejected with a
//! typed error that leaves the state unchanged.
//!
//! CI runs proptest's default 256 cases per property; a long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p zkl-state --test state fuzz::`.

use crate::common;

use common::World;
use proptest::prelude::*;
use zkl_state::testkit::*;
use zkl_types::*;

/// One valid signed tx of every kind, as JSON, against [`World::funded`]`(3)`.
fn valid_txs(w: &World) -> Vec<Vec<u8>> {
    let (a, b) = (w.id(0), w.id(1));
    let (u0, u1) = (&w.users[0], &w.users[1]);
    let forced = ForcedExit {
        initiator: a,
        initiator_sub: 0,
        target: b,
        target_sub: 0,
        chain: 1,
        l2_token: ETH,
        l1_token: ETH,
        fee_token: ETH,
        fee: 0,
        nonce: 1,
    };
    let sell = u1.order(b, 1, 0, ETH, USDC, ONE, 1000 * ONE, true);
    let buy = u0.order(a, 1, 0, ETH, USDC, ONE, 1000 * ONE, false);
    let matching = OrderMatching {
        matcher: a,
        maker: sell,
        taker: buy,
        base_fill: ONE / 2,
        quote_fill: 500 * ONE,
        maker_residue_before: 0,
        taker_residue_before: 0,
    };
    let txs = [
        u0.transfer(a, u1.address, ETH, ONE, 0, 1),
        u0.withdraw(a, 1, ETH, ETH, ONE, 0, 1),
        w.users[2].change_pubkey(w.id(2), 1, 1, ETH, 0),
        Tx::ForcedExit(forced).sign(&u0.l2),
        Tx::OrderMatching(Box::new(matching)).sign(&u0.l2),
    ];
    txs.iter().map(|t| serde_json::to_vec(t).unwrap()).collect()
}

/// The funded world every case starts from (built once; each case works on a clone).
static FUNDED: std::sync::LazyLock<World> = std::sync::LazyLock::new(|| World::funded(3));

/// Parses `bytes` as a signed tx and, if it parses, executes it on a fresh funded world: `Ok`,
/// or a rejection that changed nothing.
fn execute(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(tx) = serde_json::from_slice::<SignedTx>(bytes) else { return Ok(()) };
    let mut w = FUNDED.clone();
    let before = w.snapshot();
    if w.state.execute_tx(&tx).is_err() {
        prop_assert_eq!(w.snapshot(), before, "a rejected tx changed the state");
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_as_a_tx(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        execute(&bytes)?;
    }

    #[test]
    fn mutated_txs_of_every_kind(
        kind in 0..5usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = valid_txs(&FUNDED)[kind].clone();
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        execute(&bytes)?;
    }

    #[test]
    fn arbitrary_priority_requests(
        deposit in any::<bool>(),
        chain in any::<u8>(),
        serial in any::<u64>(),
        account in any::<u32>(),
        sub in any::<u8>(),
        l1_token in 0..120u16,
        l2_token in 0..120u16,
        l1_amount in any::<u128>(),
        owner in any::<[u8; 32]>(),
    ) {
        let mut w = FUNDED.clone();
        let owner = Address(owner);
        let request = if deposit {
            PriorityRequest::Deposit { chain, serial_id: serial, sub, l1_token, l2_token, l1_amount, owner }
        } else {
            PriorityRequest::FullExit { chain, serial_id: serial, account, sub, owner, l1_token, l2_token }
        };
        let before = w.snapshot();
        if w.state.execute_priority(&request).is_err() {
            prop_assert_eq!(w.snapshot(), before, "a rejected request changed the state");
        }
    }
}
