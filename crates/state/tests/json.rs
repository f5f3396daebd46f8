//! JSON round trips of signed txs, orders, priority requests and ops (the node API's format).

use zkl_state::testkit::*;
use zkl_types::*;

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) -> String {
    let text = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, v, "{text}");
    text
}

#[test]
fn signed_txs_roundtrip() {
    let (a, b, m) = (User::new(1), User::new(2), User::new(3));
    let transfer = roundtrip(&a.transfer(2, b.address, USDC, 10 * ONE, ONE / 100, 1));
    assert!(
        transfer.contains(r#""type":"transfer""#) && transfer.contains(r#""amount":"10000000000000000000""#),
        "{transfer}"
    );
    roundtrip(&a.withdraw(2, 2, ETH, ETH, ONE, 0, 3));
    let cpk = roundtrip(&a.change_pubkey(2, 0, 1, ETH, 0));
    assert!(cpk.contains(r#""auth":{"eth_signature":"0x"#), "{cpk}");
    let sell = b.order(3, 1, 0, ETH, USDC, ONE, 1_000 * ONE, true);
    let buy = a.order(2, 1, 0, ETH, USDC, ONE, 1_000 * ONE, false);
    roundtrip(&sell);
    roundtrip(&matching(&m, 4, sell, buy, ONE / 2, (0, 0)));
    let req = roundtrip(&deposit(1, 7, a.address, USDC, USD, 5_000_000));
    assert!(req.contains(r#""type":"deposit""#), "{req}");
}

#[test]
fn ops_roundtrip_and_bad_json_is_rejected() {
    let op = Op::Transfer(op::TransferOp { from: 2, to: 3, from_sub: 0, to_sub: 1, token: 2, amount: 5, fee: 0 });
    roundtrip(&op);
    let bad = r#"{"type":"transfer","account":2,"from_sub":0,"to":"0x12","to_sub":0,"token":2,"amount":"1","fee":"0","nonce":0}"#;
    assert!(serde_json::from_str::<Tx>(bad).unwrap_err().to_string().contains("address"));
    let bad_amount = r#"{"type":"transfer","account":2,"from_sub":0,"to":"0x0000000000000000000000000000000000000001","to_sub":0,"token":2,"amount":"-1","fee":"0","nonce":0}"#;
    assert!(serde_json::from_str::<Tx>(bad_amount).is_err());
}
