//! The committed solc-js artifacts in `contracts/out/` (built by `contracts/build.mjs`).
//!
//! Each artifact records `sourcesHash` = sha256 over every `contracts/src/**/*.sol`, sorted by
//! path relative to `contracts/src` (with `/` separators): `path \0 content \0`. If a source
//! changed without rebuilding, [`check_fresh`] fails.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ContractsError;

/// `contracts/` of this repository.
pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("contracts")
}

fn list_sol(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<(), ContractsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ContractsError::Artifact(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| ContractsError::Artifact(e.to_string()))?;
        let path = entry.path();
        if path.is_dir() {
            list_sol(&path, base, out)?;
        } else if path.extension().is_some_and(|e| e == "sol") {
            let rel = path.strip_prefix(base).map_err(|e| ContractsError::Artifact(e.to_string()))?;
            let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// sha256 of the Solidity sources, as build.mjs computes it (`0x` + hex).
pub fn sources_hash() -> Result<String, ContractsError> {
    let src = contracts_dir().join("src");
    let mut files = Vec::new();
    list_sol(&src, &src, &mut files)?;
    // JavaScript's default sort compares UTF-16 code units; paths here are ASCII, so byte order agrees.
    files.sort();
    let mut h = Sha256::new();
    for f in &files {
        let content = std::fs::read(src.join(f)).map_err(|e| ContractsError::Artifact(format!("{f}: {e}")))?;
        h.update(f.as_bytes());
        h.update([0u8]);
        h.update(&content);
        h.update([0u8]);
    }
    Ok(format!("0x{}", hex::encode(h.finalize())))
}

/// The artifact names the crate binds to.
pub const ARTIFACTS: [&str; 9] = [
    "ZkLink",
    "PoseidonT6",
    "TestVerifier",
    "TestERC20",
    "RejectingReceiver",
    "ReentrantToken",
    "ReturnBomb",
    "ReentrantReceiver",
    "MisbehavingToken",
];

/// Fails unless every artifact exists and records the current sources' hash.
pub fn check_fresh() -> Result<(), ContractsError> {
    let want = sources_hash()?;
    for name in ARTIFACTS {
        let path = contracts_dir().join("out").join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| ContractsError::Artifact(format!("{}: {e}", path.display())))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ContractsError::Artifact(e.to_string()))?;
        let got = json.get("sourcesHash").and_then(|v| v.as_str()).unwrap_or_default();
        if got != want {
            return Err(ContractsError::Artifact(format!(
                "contracts/out/{name}.json is stale (sources {want}, artifact {got}): run `node contracts/build.mjs`"
            )));
        }
    }
    Ok(())
}
