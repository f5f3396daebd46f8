//! The API's names and docs/api.md agree: `method::ALL` is exactly what the four traits serve,
//! every method is documented, every request example names a real method, and every complete
//! response example deserialises into the method's typed response.

use std::collections::BTreeSet;

use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::PendingSubscriptionSink;
use serde::de::DeserializeOwned;
use serde_json::Value;
use zkl_rpc_api::*;
use zkl_types::{ChainId, Op, PriorityRequest, SignedTx};

/// Serves nothing: it exists so that the traits' modules can list their method names.
struct Names;

fn none<T>() -> RpcResult<T> {
    Err(error(codes::UNAVAILABLE, "listing names only"))
}

#[async_trait]
impl ZklApiServer for Names {
    fn chains(&self) -> RpcResult<Vec<ChainConfig>> {
        none()
    }
    fn tokens(&self) -> RpcResult<Vec<TokenConfig>> {
        none()
    }
    fn l1_contracts(&self) -> RpcResult<Vec<L1Contract>> {
        none()
    }
    fn l1_status(&self) -> RpcResult<Vec<L1ChainStatus>> {
        none()
    }
    fn account(&self, _: String) -> RpcResult<AccountInfo> {
        none()
    }
    async fn send_tx(&self, _: SignedTx) -> RpcResult<String> {
        none()
    }
    async fn send_batch(&self, _: Vec<SignedTx>) -> RpcResult<Vec<BatchResult>> {
        none()
    }
    fn tx_status(&self, _: String) -> RpcResult<TxLookup> {
        none()
    }
    fn estimate_fee(&self, _: FeeQuery) -> RpcResult<FeeEstimate> {
        none()
    }
    fn pending_priority_ops(&self, _: ChainId) -> RpcResult<Vec<Op>> {
        none()
    }
    fn block(&self, _: u32) -> RpcResult<BlockRecord> {
        none()
    }
    fn state_root(&self) -> RpcResult<StateRoot> {
        none()
    }
    fn proof(&self, _: u32) -> RpcResult<BlockProof> {
        none()
    }
}

#[async_trait]
impl EventsApiServer for Names {
    async fn subscribe_blocks(&self, _: PendingSubscriptionSink) -> SubscriptionResult {
        Ok(())
    }
    async fn subscribe_tx_status(&self, _: PendingSubscriptionSink, _: String) -> SubscriptionResult {
        Ok(())
    }
    async fn subscribe_account_changes(&self, _: PendingSubscriptionSink) -> SubscriptionResult {
        Ok(())
    }
}

#[async_trait]
impl AdminApiServer for Names {
    async fn seal_block(&self, _: String) -> RpcResult<Option<u32>> {
        none()
    }
    async fn revert_blocks(&self, _: String, _: Option<RevertRequest>) -> RpcResult<RewindReport> {
        none()
    }
    async fn dev_priority_op(&self, _: PriorityRequest) -> RpcResult<Op> {
        none()
    }
}

impl ProverApiServer for Names {
    fn prover_take_job(&self, _: String, _: String) -> RpcResult<Option<Job>> {
        none()
    }
    fn prover_heartbeat(&self, _: String, _: u64) -> RpcResult<JobBlock> {
        none()
    }
    fn prover_submit_proof(&self, _: String, _: u64, _: String) -> RpcResult<JobBlock> {
        none()
    }
}

fn served() -> BTreeSet<String> {
    let mut m = ZklApiServer::into_rpc(Names);
    m.merge(EventsApiServer::into_rpc(Names)).unwrap();
    m.merge(AdminApiServer::into_rpc(Names)).unwrap();
    m.merge(ProverApiServer::into_rpc(Names)).unwrap();
    m.method_names().map(String::from).collect()
}

#[test]
fn the_name_constants_are_what_the_traits_serve() {
    let constants: BTreeSet<String> = method::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(constants.len(), method::ALL.len(), "no name twice");
    assert_eq!(constants, served());
}

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap()
}

/// The method a `###` heading documents (`zkl_sealBlock(token)` → `zkl_sealBlock`).
fn heading_method(line: &str) -> Option<String> {
    let rest = line.strip_prefix("### ")?;
    let start = rest.find("`zkl_")? + 1;
    let name: String = rest[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    Some(name)
}

fn typed<T: DeserializeOwned>(v: Value) -> Result<(), String> {
    serde_json::from_value::<T>(v).map(|_| ()).map_err(|e| e.to_string())
}

/// Deserialises `result` as the response of `method` (a notification's of `notification`).
fn check_result(method: &str, notification: bool, result: Value) -> Result<(), String> {
    use method::*;
    match method {
        _ if notification && method == TX_STATUS => typed::<TxRecord>(result),
        _ if notification && method == BLOCK => typed::<BlockRecord>(result),
        "zkl_accountChanges" if notification => typed::<AccountChanges>(result),
        CHAINS => typed::<Vec<ChainConfig>>(result),
        TOKENS => typed::<Vec<TokenConfig>>(result),
        L1_CONTRACTS => typed::<Vec<L1Contract>>(result),
        L1_STATUS => typed::<Vec<L1ChainStatus>>(result),
        ACCOUNT => typed::<AccountInfo>(result),
        SEND_TX => typed::<String>(result),
        SEND_BATCH => typed::<Vec<BatchResult>>(result),
        TX_STATUS => typed::<TxLookup>(result),
        ESTIMATE_FEE => typed::<FeeEstimate>(result),
        PENDING_PRIORITY_OPS => typed::<Vec<Op>>(result),
        BLOCK => typed::<BlockRecord>(result),
        STATE_ROOT => typed::<StateRoot>(result),
        PROOF => typed::<BlockProof>(result),
        SEAL_BLOCK => typed::<Option<u32>>(result),
        REVERT_BLOCKS => typed::<RewindReport>(result),
        DEV_PRIORITY_OP => typed::<Op>(result),
        PROVER_TAKE_JOB => typed::<Option<Job>>(result),
        PROVER_HEARTBEAT | PROVER_SUBMIT_PROOF => typed::<JobBlock>(result),
        other => Err(format!("no response type for {other}")),
    }
}

/// The examples: each `→` / `←` line of a bare ``` block with its continuation lines (indented
/// by three spaces), under the method of the heading above it.
fn examples(doc: &str) -> Vec<(String, char, String)> {
    let mut out: Vec<(String, char, String)> = Vec::new();
    let (mut method, mut fence, mut continuing) = (String::new(), None::<bool>, false);
    for line in doc.lines() {
        let in_block = fence == Some(true);
        if line.starts_with("```") {
            // Opens a fence (bare or not), or closes the open one.
            fence = if fence.is_some() { None } else { Some(line == "```") };
            continuing = false;
        } else if let Some(m) = heading_method(line) {
            method = m;
        } else if !in_block {
            continue;
        } else if let Some(rest) = line.strip_prefix("→ ").or_else(|| line.strip_prefix("← ")) {
            out.push((method.clone(), line.chars().next().unwrap(), rest.to_string()));
            continuing = true;
        } else if let (true, Some(cont), Some(last)) = (continuing, line.strip_prefix("   "), out.last_mut()) {
            last.2.push_str(cont);
        } else {
            continuing = false;
        }
    }
    out
}

#[test]
fn docs_document_every_method_and_their_examples_match_the_types() {
    let doc = doc();
    let documented: BTreeSet<String> = doc.lines().filter_map(heading_method).collect();
    let expected: BTreeSet<String> =
        method::ALL.iter().filter(|m| !m.starts_with("zkl_unsubscribe")).map(|s| s.to_string()).collect();
    assert_eq!(documented, expected, "a `###` heading per method");
    for m in method::ALL.iter().filter(|m| m.starts_with("zkl_unsubscribe")) {
        assert!(doc.contains(&format!("`{m}`")), "{m} is mentioned");
    }

    let mut checked = 0;
    for (heading, arrow, text) in examples(&doc) {
        // Examples may elide parts with `…`; those that are complete JSON are checked.
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            assert!(text.contains('…'), "an example that is not JSON must say what it elides: {text}");
            continue;
        };
        if arrow == '→' {
            let m = v["method"].as_str().unwrap_or_default();
            assert!(method::ALL.contains(&m), "request example of unknown method {m}: {text}");
            assert_eq!(m, heading, "a request example under another method's heading");
            continue;
        }
        let (method, notification, result) = match (v.get("result"), v["method"].as_str()) {
            (Some(r), _) => (heading.clone(), false, r.clone()),
            (None, Some(notif)) => (notif.to_string(), true, v["params"]["result"].clone()),
            (None, None) => {
                assert!(v["error"]["code"].is_i64(), "an error example has a code: {text}");
                continue;
            }
        };
        check_result(&method, notification, result).unwrap_or_else(|e| panic!("{method} example: {e}: {text}"));
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} complete response examples");
}
