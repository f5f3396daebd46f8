//! Regenerates the generated Solidity sources: `contracts/src/Layout.sol` (the op layout table),
//! `contracts/src/PoseidonT6.sol` and `contracts/src/test/TestVerifier.sol` (from the deterministic
//! test-circuit key). Rebuild the artifacts afterwards with `node contracts/build.mjs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = zkl_contracts::artifacts::contracts_dir().join("src");
    std::fs::write(dir.join("Layout.sol"), zkl_contracts::layout_sol::layout_solidity())?;
    std::fs::write(dir.join("PoseidonT6.sol"), zkl_contracts::poseidon_sol::poseidon_t6_solidity())?;
    std::fs::write(dir.join("test").join("TestVerifier.sol"), zkl_contracts::verifier::test_verifier_solidity()?)?;
    println!("wrote Layout.sol, PoseidonT6.sol and test/TestVerifier.sol");
    Ok(())
}
