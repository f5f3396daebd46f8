//! A `zkl node` process for the tests that kill it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;

/// A running `zkl node --config …`; dropping it kills it with SIGKILL.
pub struct NodeProc {
    pub child: Child,
    /// The node's JSON-RPC URL (from its first stdout line).
    pub rpc: String,
    pub client: HttpClient,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `zkl node --config config_path` and waits for its endpoints.
pub fn start(config_path: &std::path::Path) -> NodeProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkl"))
        .args(["node", "--config", config_path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn zkl node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("node prints its address");
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad first line {line:?}: {e}"));
    let rpc = v["rpc"].as_str().unwrap().to_string();
    let client = HttpClientBuilder::default().build(&rpc).unwrap();
    NodeProc { child, rpc, client }
}
