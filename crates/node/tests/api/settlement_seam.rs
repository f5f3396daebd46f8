//! The node's seam to its settlement layer (`zkl_node::settlement`): an `l1` section without a
//! layer is refused before anything is opened; the layer is started with the node's context and
//! must serve exactly the configured chains; the operator's revert asks it whether the blocks are
//! executed anywhere, and is refused if they are or if a chain cannot answer; a halt only stops
//! the node while its block still has the commitment the settler saw; stopping the node's layer
//! reaches it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use jsonrpsee::core::async_trait;
use jsonrpsee::core::client::Error as ClientError;
use jsonrpsee::http_client::HttpClientBuilder;
use zkl_node::config::{AdminConfig, L1ChainConfig, L1Config, OracleConfig};
use zkl_node::sequencer::SequencerHandle;
use zkl_node::settlement::{HALT_KEY, Halt, SettlementContext, SettlementError, SettlementLayer, SettlementStarter};
use zkl_node::{NodeConfig, NodeError, Services};
use zkl_rpc_api::{AdminApiClient, RevertRequest, codes};
use zkl_types::ChainId;

const ADMIN: &str = "operator";

/// Serves `chains`; chain 1 has executed `executed` blocks, chain 2 cannot be reached.
struct Fake {
    chains: Vec<ChainId>,
    executed: u32,
    started_with: Mutex<Option<NodeConfig>>,
    sequencer: Mutex<Option<SequencerHandle>>,
    stopped: AtomicBool,
}

#[async_trait]
impl SettlementLayer for Fake {
    fn chains(&self) -> Vec<ChainId> {
        self.chains.clone()
    }
    async fn irreversible(&self, chain: ChainId) -> Result<u32, SettlementError> {
        match chain {
            1 => Ok(self.executed),
            _ => Err(SettlementError(format!("chain {chain}: connection refused").into())),
        }
    }
    async fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

struct Starter(Arc<Fake>);

#[async_trait]
impl SettlementStarter for Starter {
    async fn start(&self, ctx: SettlementContext) -> Result<Arc<dyn SettlementLayer>, SettlementError> {
        *self.0.started_with.lock().unwrap() = Some(ctx.config);
        *self.0.sequencer.lock().unwrap() = Some(ctx.sequencer);
        Ok(self.0.clone())
    }
}

fn config(dir: &std::path::Path) -> NodeConfig {
    let mut c = NodeConfig::demo(dir.join("db"));
    c.admin = Some(AdminConfig { tokens: vec![ADMIN.into()] });
    let chain = |l2_chain: ChainId| L1ChainConfig {
        l2_chain,
        evm_chain_id: 31_000 + u64::from(l2_chain),
        rpc_url: "http://127.0.0.1:9".into(),
        contract: "0x0000000000000000000000000000000000000001".into(),
        confirmations: 1,
        data_availability: l2_chain == 1,
        committer_key: "0x01".into(),
        start_block: 0,
        poll_ms: 100,
        tx_timeout_ms: 1_000,
        batch_wait_ms: 0,
    };
    c.l1 =
        Some(L1Config { chains: vec![chain(1), chain(2)], oracle: OracleConfig { signer_keys: vec![], threshold: 0 } });
    c
}

#[tokio::test]
async fn an_l1_section_without_a_settlement_layer_is_refused_before_anything_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let err = zkl_node::start(config(dir.path())).await.err().expect("refused");
    assert!(matches!(err, NodeError::NoSettlement), "{err}");
    assert!(!dir.path().join("db").exists(), "the database was opened");
}

fn fake(chains: Vec<ChainId>, executed: u32) -> Arc<Fake> {
    Arc::new(Fake {
        chains,
        executed,
        started_with: Mutex::new(None),
        sequencer: Mutex::new(None),
        stopped: AtomicBool::new(false),
    })
}

#[tokio::test]
async fn a_settlement_layer_serving_other_chains_than_configured_is_stopped_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(vec![1], 0);
    let services = Services { settlement: Some(Arc::new(Starter(fake.clone()))), ..Default::default() };
    let err = zkl_node::start_with(config(dir.path()), services).await.err().expect("refused");
    assert!(
        matches!(&err, NodeError::SettlementChains { configured, served } if configured == &[1, 2] && served == &[1]),
        "{err}"
    );
    assert!(fake.stopped.load(Ordering::SeqCst), "the layer was left running");
}

fn code(e: ClientError) -> (i32, String) {
    match e {
        ClientError::Call(obj) => (obj.code(), obj.message().to_string()),
        other => panic!("not a call error: {other}"),
    }
}

#[tokio::test]
async fn the_revert_asks_the_settlement_layer_and_executed_blocks_stay_final() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(vec![1, 2], 3);
    let services = Services { settlement: Some(Arc::new(Starter(fake.clone()))), ..Default::default() };
    let mut node = zkl_node::start_with(config(dir.path()), services).await.unwrap();
    let started = fake.started_with.lock().unwrap().clone().expect("the layer was started");
    assert_eq!(started.l1, config(dir.path()).l1);
    let http = HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr)).unwrap();

    // Chain 1 will not revert block 3 (executed, final or synced there), so not block 2 either.
    let req = RevertRequest { from_block: Some(2), drop: None };
    let (c, msg) = code(http.revert_blocks(ADMIN.into(), Some(req)).await.unwrap_err());
    assert_eq!(c, codes::REJECTED, "{msg}");
    assert!(msg.contains("block 3 is final on chain 1"), "{msg}");

    // Block 4 is not executed on chain 1, but chain 2 cannot say: nothing is rewound.
    let req = RevertRequest { from_block: Some(4), drop: None };
    let (c, msg) = code(http.revert_blocks(ADMIN.into(), Some(req)).await.unwrap_err());
    assert_eq!(c, codes::UNAVAILABLE, "{msg}");
    assert!(msg.contains("chain 2: connection refused"), "{msg}");

    node.l1.take().expect("the node keeps its layer").stop().await;
    assert!(fake.stopped.load(Ordering::SeqCst));
    let _ = node.handle.stop();
}

/// A settler that found a refusal while the operator rewound the block (and sealed another one
/// under the same number) must not halt the node on the new block: the halt names the commitment
/// it simulated, and the sequencer ignores a halt whose block no longer has it.
#[tokio::test]
async fn a_halt_on_a_block_rewound_meanwhile_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake(vec![1, 2], 0);
    let services = Services { settlement: Some(Arc::new(Starter(fake.clone()))), ..Default::default() };
    let mut node = zkl_node::start_with(config(dir.path()), services).await.unwrap();
    let sequencer = fake.sequencer.lock().unwrap().clone().expect("the layer got the sequencer");
    let user = zkl_state::testkit::User::new(1);
    let deposit = |serial| zkl_state::testkit::deposit(1, serial, user.address, 1, 1, 1_000);
    sequencer.priority(deposit(0)).await.unwrap();
    let block = sequencer.seal().await.expect("block 1");
    let commitment = node.storage.block(block).unwrap().unwrap().commitment;
    let halt = |block| Halt { block, chain: 1, error: "Refused()".into(), op: None, since_ms: 0 };

    // A commitment block 1 does not have, and a block not sealed: both stale, nothing halts.
    sequencer.halt(halt(block), format!("0x{}", "00".repeat(32))).await.unwrap();
    sequencer.halt(halt(block + 1), commitment.clone()).await.unwrap();
    assert!(node.storage.l1_get::<Halt>(HALT_KEY).unwrap().is_none());
    sequencer.priority(deposit(1)).await.expect("not halted");
    assert_eq!(sequencer.seal().await, Some(block + 1));

    // The block as sealed: halted, nothing new is taken, until the halt is lifted.
    sequencer.halt(halt(block), commitment).await.unwrap();
    assert_eq!(node.storage.l1_get::<Halt>(HALT_KEY).unwrap().map(|h| h.block), Some(block));
    let refused = sequencer.priority(deposit(2)).await.unwrap_err();
    assert!(refused.to_string().contains("settlement is halted"), "{refused}");
    sequencer.lift_halt().await.unwrap();
    sequencer.priority(deposit(2)).await.expect("resumed");

    node.l1.take().expect("the node keeps its layer").stop().await;
    let _ = node.handle.stop();
}
