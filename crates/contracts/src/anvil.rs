//! Runs anvil (from `contracts/node_modules/.bin/anvil`, installed by `scripts/setup-l1.sh`, or
//! `$ZKL_ANVIL`) on a free port of 127.0.0.1 with a given chain id; the process is killed when the
//! [`Anvil`] is dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ContractsError;

/// anvil's well-known development keys (mnemonic "test test … junk"), each funded with 10,000 ETH.
pub const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// The anvil binary: `$ZKL_ANVIL`, else `contracts/node_modules/.bin/anvil` of this repository.
pub fn anvil_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ZKL_ANVIL") {
        return PathBuf::from(p);
    }
    crate::artifacts::contracts_dir().join("node_modules").join(".bin").join("anvil")
}

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    port: u16,
    chain_id: u64,
}

fn free_port() -> Result<u16, ContractsError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| ContractsError::AnvilSpawn(e.to_string()))?;
    l.local_addr().map(|a| a.port()).map_err(|e| ContractsError::AnvilSpawn(e.to_string()))
}

impl Anvil {
    /// Starts anvil with `chain_id` (and its default hardfork) and waits until it accepts
    /// connections.
    pub fn spawn(chain_id: u64) -> Result<Self, ContractsError> {
        Self::spawn_with_args(chain_id, &[])
    }

    /// As [`Anvil::spawn`], with extra command-line arguments (e.g. `--hardfork cancun`).
    pub fn spawn_with_args(chain_id: u64, extra: &[&str]) -> Result<Self, ContractsError> {
        let path = anvil_path();
        if !path.exists() {
            return Err(ContractsError::AnvilNotFound(path.display().to_string()));
        }
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let mut child = Command::new(&path)
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--chain-id", &chain_id.to_string()])
                .args(["--gas-limit", "100000000", "--code-size-limit", "100000"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| ContractsError::AnvilSpawn(e.to_string()))?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("anvil exited with {status}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // The port was free when we picked it, but another anvil may have taken it
                    // first (ours then exits): only ours answers with our chain id.
                    match served_chain_id(port) {
                        Some(id) if id == chain_id && matches!(child.try_wait(), Ok(None)) => {
                            return Ok(Self { child, port, chain_id });
                        }
                        Some(_) => {
                            last_err = format!("port {port} is served by another process");
                            break;
                        }
                        None => {}
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last_err.is_empty() {
                return Err(ContractsError::AnvilTimeout(port));
            }
        }
        Err(ContractsError::AnvilSpawn(last_err))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The anvil process id (fault tests stop and continue it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// `eth_chainId` of the JSON-RPC server on `port`, if it answers one (a plain HTTP/1.1 request).
fn served_chain_id(port: u16) -> Option<u64> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let hex = response.split("\"result\":\"0x").nth(1)?.split('"').next()?;
    u64::from_str_radix(hex, 16).ok()
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
