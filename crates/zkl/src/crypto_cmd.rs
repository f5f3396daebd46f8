//! `zkl crypto …` and `zkl key …`.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use zkl_crypto::keys::{EthKey, derive_l2_key};
use zkl_crypto::poseidon::{self, MAX_INPUTS};
use zkl_crypto::{Fr, PrivateKey, PublicKey, Signature, fr_to_hex};

use crate::Failure;
use crate::args::{bytes32, field_element};

#[derive(Subcommand)]
pub enum CryptoCommand {
    /// Poseidon hash (circomlib parameters) of 1 to 16 field elements; prints 0x + 64 hex digits
    Poseidon {
        /// Field elements, decimal or 0x-hex
        #[arg(required = true, value_parser = field_element, value_name = "X")]
        inputs: Vec<Fr>,
    },
    /// BabyJubJub public key and pubkey hash of an EdDSA-Poseidon private key
    Pubkey {
        /// 32-byte private key, 0x + 64 hex digits
        #[arg(long, value_parser = bytes32)]
        private_key: [u8; 32],
    },
    /// EdDSA-Poseidon signature of a field element (circomlibjs signPoseidon)
    Sign {
        #[arg(long, value_parser = bytes32)]
        private_key: [u8; 32],
        /// Field element, decimal or 0x-hex
        #[arg(long, value_parser = field_element)]
        message: Fr,
    },
    /// Verifies an EdDSA-Poseidon signature: prints `valid` (exit 0) or `invalid` (exit 1)
    Verify {
        #[arg(long, value_parser = field_element)]
        pubkey_x: Fr,
        #[arg(long, value_parser = field_element)]
        pubkey_y: Fr,
        #[arg(long, value_parser = field_element)]
        message: Fr,
        #[arg(long = "r8-x", value_parser = field_element)]
        r8_x: Fr,
        #[arg(long = "r8-y", value_parser = field_element)]
        r8_y: Fr,
        #[arg(long, value_parser = field_element)]
        s: Fr,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Derives the L2 key from an Ethereum key (personal_sign of the documented message)
    Derive {
        /// Ethereum private key, 0x + 64 hex digits
        #[arg(long, value_parser = bytes32)]
        eth_private_key: [u8; 32],
    },
}

pub fn run_crypto(cmd: CryptoCommand) -> Result<ExitCode, Failure> {
    match cmd {
        CryptoCommand::Poseidon { inputs } => {
            if inputs.len() > MAX_INPUTS {
                return Err(Failure::Usage(format!(
                    "too many values for '<X>...': Poseidon takes 1 to {MAX_INPUTS} inputs, got {}",
                    inputs.len()
                )));
            }
            let h = poseidon::hash(&inputs).map_err(|e| Failure::Usage(e.to_string()))?;
            println!("{}", fr_to_hex(&h));
        }
        CryptoCommand::Pubkey { private_key } => {
            let pk = PrivateKey::from_bytes(private_key).public_key();
            println!(
                "{}",
                json!({"x": fr_to_hex(&pk.x()), "y": fr_to_hex(&pk.y()), "pubkey_hash": pk.pubkey_hash().to_string()})
            );
        }
        CryptoCommand::Sign { private_key, message } => {
            let sig = PrivateKey::from_bytes(private_key).sign(&message);
            println!(
                "{}",
                json!({"r8_x": fr_to_hex(&sig.r8().x()), "r8_y": fr_to_hex(&sig.r8().y()), "s": fr_to_hex(&sig.s())})
            );
        }
        CryptoCommand::Verify { pubkey_x, pubkey_y, message, r8_x, r8_y, s } => {
            let verdict = PublicKey::from_coords(pubkey_x, pubkey_y)
                .and_then(|pk| Signature::new(r8_x, r8_y, s).and_then(|sig| pk.verify(&message, &sig)));
            return Ok(match verdict {
                Ok(()) => {
                    println!("valid");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("invalid");
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_key(cmd: KeyCommand) -> Result<ExitCode, Failure> {
    match cmd {
        KeyCommand::Derive { eth_private_key } => {
            let eth = EthKey::from_bytes(&eth_private_key)
                .map_err(|e| Failure::Usage(format!("invalid value for '--eth-private-key': {e}")))?;
            let d = derive_l2_key(&eth);
            println!(
                "{}",
                json!({
                    "eth_address": d.eth_address.to_string(),
                    "l2_private_key": format!("0x{}", hex::encode(d.l2_private_key.as_bytes())),
                    "pubkey_x": fr_to_hex(&d.public_key.x()),
                    "pubkey_y": fr_to_hex(&d.public_key.y()),
                    "pubkey_hash": d.pubkey_hash.to_string(),
                })
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
