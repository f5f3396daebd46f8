//! Cryptography of zkLink-rs, compatible with the circom ecosystem (circomlib, circomlibjs,
//! @zk-kit/eddsa-poseidon), and Ethereum key handling for deriving Layer-2 keys.
//!
//! This crate knows nothing of transactions, accounts or blocks.

pub mod babyjubjub;
pub mod eddsa;
pub mod field;
pub mod keys;
pub mod poseidon;
pub mod remembered;

pub use eddsa::{PrivateKey, PubKeyHash, PublicKey, Signature, SignatureError};
pub use field::{FieldParseError, Fr, fr_to_hex, parse_fr};
pub use keys::{DerivedKey, EthKey, KeyError, L2_KEY_MESSAGE, derive_l2_key};
