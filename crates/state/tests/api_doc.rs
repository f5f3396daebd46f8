//! The signed-tx examples of docs/api.md (fenced as `json tx`) are what an integrator copies: each
//! must parse as a `SignedTx`, serialise back to the same JSON, and carry a valid signature of
//! the golden scenario's users (protocol.md §15: account 2 = user 1, 3 = user 2, 4 = user 3).

use zkl_state::testkit::User;
use zkl_types::{SignedTx, Tx};

fn examples() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim()) {
            (None, "```json tx") => current = Some(String::new()),
            (Some(block), "```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_tx_example_parses_and_is_signed() {
    let examples = examples();
    assert_eq!(examples.len(), 5, "one example per tx type");
    let key_of = |account: u32| User::new(u64::from(account) - 1).pubkey;
    let mut kinds = Vec::new();
    for text in examples {
        let stx: SignedTx = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_value(&stx).unwrap(), value, "the example is in canonical form");
        let key = match &stx.tx {
            Tx::ChangePubKey(t) => t.new_pubkey,
            Tx::OrderMatching(m) => {
                for o in [&m.maker, &m.taker] {
                    key_of(o.order.account).verify(&o.order.message(), &o.signature).unwrap();
                }
                key_of(m.matcher)
            }
            other => key_of(other.signer()),
        };
        key.verify(&stx.tx.message(), &stx.signature).unwrap_or_else(|e| panic!("{e}: {text}"));
        kinds.push(value["tx"]["type"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds, ["transfer", "withdraw", "change_pub_key", "forced_exit", "order_matching"]);
}
