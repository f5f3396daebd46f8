//! Checks the crypto vectors written in docs/protocol.md (`vectors` blocks, kinds `poseidon`,
//! `pubkey`, `sign`, `derive`). Other kinds belong to other crates' tests.

use zkl_crypto::keys::{EthKey, derive_l2_key};
use zkl_crypto::{PrivateKey, fr_to_hex, parse_fr, poseidon};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// `(kind, arguments, expected results)` of every line of every `vectors` block.
fn vectors() -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in DOC.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            inside = t == "```vectors";
            continue;
        }
        if inside && !t.is_empty() {
            let (lhs, rhs) = t.split_once(" = ").expect("vector line has ' = '");
            let mut words = lhs.split_whitespace().map(String::from);
            let kind = words.next().expect("kind");
            out.push((kind, words.collect(), rhs.split_whitespace().map(String::from).collect()));
        }
    }
    out
}

fn key32(s: &str) -> [u8; 32] {
    hex::decode(s.trim_start_matches("0x")).unwrap().try_into().unwrap()
}

#[test]
fn crypto_vectors_in_protocol_doc_hold() {
    let mut checked = 0;
    for (kind, args, expected) in vectors() {
        let actual: Vec<String> = match kind.as_str() {
            "poseidon" => {
                let inputs: Vec<_> = args.iter().map(|a| parse_fr(a).unwrap()).collect();
                vec![fr_to_hex(&poseidon::hash(&inputs).unwrap())]
            }
            "pubkey" => {
                let pk = PrivateKey::from_bytes(key32(&args[0])).public_key();
                vec![fr_to_hex(&pk.x()), fr_to_hex(&pk.y()), pk.pubkey_hash().to_string()]
            }
            "sign" => {
                let sig = PrivateKey::from_bytes(key32(&args[0])).sign(&parse_fr(&args[1]).unwrap());
                vec![fr_to_hex(&sig.r8().x()), fr_to_hex(&sig.r8().y()), fr_to_hex(&sig.s())]
            }
            "derive" => {
                let d = derive_l2_key(&EthKey::from_bytes(&key32(&args[0])).unwrap());
                vec![
                    d.eth_address.to_string(),
                    format!("0x{}", hex::encode(d.l2_private_key.as_bytes())),
                    d.pubkey_hash.to_string(),
                ]
            }
            _ => continue,
        };
        assert_eq!(actual, expected, "{kind} {args:?}");
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} crypto vectors found in docs/protocol.md");
}

#[test]
fn key_message_in_doc_is_the_one_signed() {
    let indented: String = zkl_crypto::L2_KEY_MESSAGE
        .lines()
        .map(|l| if l.is_empty() { String::new() } else { format!("   {l}") })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        DOC.contains(&format!("   ```\n{indented}\n   ```")),
        "docs/protocol.md section 6 must quote L2_KEY_MESSAGE exactly"
    );
}
