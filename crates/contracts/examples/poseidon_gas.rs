//! Prints the gas of one `PoseidonT6.hash` call on anvil (eth_estimateGas, 21,000 base included).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use alloy::primitives::U256;
    let anvil = zkl_contracts::anvil::Anvil::spawn(31337)?;
    let p = zkl_contracts::deploy::provider(&anvil, zkl_contracts::anvil::DEV_KEYS[0])?;
    let poseidon = zkl_contracts::bindings::PoseidonT6::deploy(p).await?;
    let gas = poseidon.hash([U256::from(1u64); 5]).estimate_gas().await?;
    println!("PoseidonT6.hash: {gas} gas (incl. 21000 base)");
    Ok(())
}
