//! The golden scenario of docs/protocol.md section 14: fixed keys, fixed transactions, and the
//! resulting roots and commitments, which other implementations check themselves against.
//! `ZKL_PRINT_GOLDEN=1 cargo test -p zkl-state --test state golden:: -- --nocapture` prints the lines.

use zkl_crypto::field::fr_to_hex;
use zkl_state::testkit::*;
use zkl_state::{BlockParams, SealedBlock, State};
use zkl_types::*;

/// Runs the scenario and returns its two sealed blocks.
fn scenario() -> Vec<SealedBlock> {
    let (a, b, m) = (User::new(1), User::new(2), User::new(3));
    let mut s = State::new(demo_registry(), User::new(999).address);
    s.set_block_params(BlockParams::for_capacity(64));
    let ok = |s: &mut State, tx: &SignedTx| s.execute_tx(tx).expect("golden tx is valid");
    // Block 1: deposits on both chains, keys, a transfer.
    for req in [
        deposit(1, 0, a.address, USDC, USDC, 1_000_000_000), // 1,000 USDC on chain 1
        deposit(2, 0, b.address, ETH, ETH, ONE),             // 1 ETH on chain 2
        deposit(1, 1, m.address, ETH, ETH, ONE / 10),        // 0.1 ETH on chain 1
    ] {
        s.execute_priority(&req).expect("golden deposit is valid");
    }
    let (ia, ib, im) = (2, 3, 4);
    ok(&mut s, &a.change_pubkey(ia, 0, 1, USDC, 0));
    ok(&mut s, &b.change_pubkey(ib, 0, 2, ETH, 0));
    ok(&mut s, &m.change_pubkey(im, 0, 1, ETH, 0));
    s.set_matcher(im, true);
    ok(&mut s, &a.transfer(ia, b.address, USDC, 10 * ONE, ONE / 100, 1));
    let block1 = s.seal_block(1_700_000_000);
    // Block 2: B sells 1 ETH at 1,000 USDC, A buys 0.5 in two fills, then both withdraw
    // on the other chain.
    let price = 1_000 * ONE;
    let sell = b.order(ib, 1, 0, ETH, USDC, ONE, price, true);
    let buy = a.order(ia, 1, 0, ETH, USDC, ONE / 2, price, false);
    ok(&mut s, &matching(&m, im, sell.clone(), buy.clone(), ONE / 5, (0, 0)));
    ok(&mut s, &matching(&m, im, sell, buy, 3 * ONE / 10, (4 * ONE / 5, 3 * ONE / 10)));
    ok(&mut s, &a.withdraw(ia, 2, ETH, ETH, 4 * ONE / 10, 0, 2));
    ok(&mut s, &b.withdraw(ib, 1, USDC, USDC, 400 * ONE, ONE / 10, 1));
    let block2 = s.seal_block(1_700_000_060);
    vec![block1, block2]
}

fn lines(blocks: &[SealedBlock]) -> Vec<String> {
    let mut out = Vec::new();
    for b in blocks {
        let n = b.number;
        out.push(format!("golden old_root {n} = {}", fr_to_hex(&b.commitment.old_root)));
        out.push(format!("golden new_root {n} = {}", fr_to_hex(&b.commitment.new_root)));
        out.push(format!("golden pubdata_hash {n} = 0x{}", hex::encode(b.commitment.pubdata_hash)));
        for (c, h) in b.commitment.onchain_hashes.iter().enumerate() {
            out.push(format!("golden onchain_hash {n} {} = {}", c + 1, fr_to_hex(h)));
        }
        out.push(format!("golden commitment {n} = 0x{}", hex::encode(b.commitment_hash)));
        out.push(format!("golden public_input {n} = {}", fr_to_hex(&b.public_input)));
        for (i, op) in b.ops.iter().enumerate() {
            out.push(format!("golden op {n} {i} {} = 0x{}", op.name(), hex::encode(op.pubdata().unwrap())));
        }
    }
    out
}

fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md")).unwrap();
    doc.lines().map(str::trim).filter(|l| l.starts_with("golden ")).map(String::from).collect()
}

#[test]
fn golden_scenario_matches_protocol_doc() {
    let blocks = scenario();
    let actual = lines(&blocks);
    if std::env::var("ZKL_PRINT_GOLDEN").is_ok() {
        println!("{}", actual.join("\n"));
    }
    let expected = documented();
    assert!(!expected.is_empty(), "docs/protocol.md has no golden lines");
    assert_eq!(actual, expected, "golden scenario differs from docs/protocol.md");
}

#[test]
fn golden_pubdata_decodes_to_its_ops() {
    for b in scenario() {
        assert_eq!(Op::decode_block(&b.pubdata).unwrap(), b.ops);
        assert_eq!(b.pubdata.len(), 64 * op::CHUNK_BYTES);
    }
}
