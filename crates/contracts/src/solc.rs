//! Compiling generated Solidity (the block circuit's verifier) at run time with the pinned solc-js
//! of `contracts/node_modules` (the settings of `contracts/build.mjs`, without the IR pipeline).
//! Needs `node`; `ZKL_SOLC` may name another directory of the `solc` npm package.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::ContractsError;
use crate::artifacts::contracts_dir;

/// The solc-js package directory: `ZKL_SOLC`, or `contracts/node_modules/solc`.
pub fn solc_dir() -> PathBuf {
    std::env::var_os("ZKL_SOLC").map(PathBuf::from).unwrap_or_else(|| contracts_dir().join("node_modules").join("solc"))
}

const SCRIPT: &str = r#"
const solc = require(process.env.SOLC_PATH);
const content = require('fs').readFileSync(0, 'utf8');
const input = { language: 'Solidity', sources: { 'V.sol': { content } }, settings: {
    optimizer: { enabled: true, runs: 200 }, evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['evm.bytecode.object'] } } } };
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) { console.error(errors.map((e) => e.formattedMessage).join('\n')); process.exit(1); }
const c = (out.contracts['V.sol'] || {})[process.env.CONTRACT];
if (!c) { console.error('no contract ' + process.env.CONTRACT + ' in the source'); process.exit(1); }
process.stdout.write(c.evm.bytecode.object);
"#;

/// Compiles `source` and returns the creation bytecode of contract `name`.
pub fn compile(source: &str, name: &str) -> Result<Vec<u8>, ContractsError> {
    let fail = |m: String| ContractsError::Artifact(format!("solc-js: {m}"));
    let solc = solc_dir();
    if !solc.exists() {
        return Err(fail(format!("not found at {} (npm ci in contracts/, or set ZKL_SOLC)", solc.display())));
    }
    let mut child = Command::new("node")
        .arg("-e")
        .arg(SCRIPT)
        .env("SOLC_PATH", &solc)
        .env("CONTRACT", name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run node: {e}")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
    stdin.write_all(source.as_bytes()).map_err(|e| fail(e.to_string()))?;
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let text = String::from_utf8(out.stdout).map_err(|e| fail(e.to_string()))?;
    hex::decode(text.trim()).map_err(|e| fail(format!("bytecode is not hex: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_reports_errors() {
        let code = compile(
            "pragma solidity ^0.8.0; contract A { function f() external pure returns (uint) { return 7; } }",
            "A",
        )
        .unwrap();
        assert!(!code.is_empty());
        let err = compile("contract A { function f( }", "A").unwrap_err().to_string();
        assert!(err.contains("solc-js"), "{err}");
        let err = compile("pragma solidity ^0.8.0; contract A {}", "B").unwrap_err().to_string();
        assert!(err.contains("no contract B"), "{err}");
    }
}
