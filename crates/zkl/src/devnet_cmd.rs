//! `zkl devnet`: anvil chains with the ZkLink contracts verifying the block circuit's proofs, test
//! ERC-20s, the node settling on every chain, a `zkl prover` worker process and a whitelisted
//! matcher account, until Ctrl-C.
//!
//! Steps: the block circuit's keys for `--capacity` and each of `--capacities` (generated once
//! with a progress bar, then loaded from the key cache), their Solidity verifiers compiled with
//! solc-js, the chains deployed
//! (`zkl_devkit::devnet`), the node started with the prover queue (its log in `DATA_DIR/node.log`),
//! the worker spawned (its log in `DATA_DIR/prover.log`), and the matcher (the last funded key) given an account (a 0.1 ETH
//! deposit on chain 1, so account 2) and its L2 key, and the exchange (`zkl exchange`, a separate
//! process, as that matcher; its log in `DATA_DIR/exchange.log`), and the indexer (`zkl indexer`,
//! a separate process, on a PostgreSQL server of the devnet's own or `--database`; its log in
//! `DATA_DIR/indexer.log`). Then the endpoints go to stdout as one JSON line.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zkl_contracts::anvil::DEV_KEYS;
use zkl_devkit::devnet::{DevnetOptions, TEST_TOKEN_MINT};

use crate::Failure;

/// The matcher's account id: the first deposit of a fresh devnet creates it.
pub const MATCHER_ACCOUNT: u32 = 2;

pub struct DevnetArgs {
    pub data_dir: PathBuf,
    pub confirmations: u64,
    pub capacity: usize,
    /// Smaller capacities blocks are sealed at when they fit.
    pub capacities: Vec<usize>,
    pub test_verifier: bool,
    pub priority_expiration: Option<u64>,
    pub indexer: IndexerChoice,
}

fn failed<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> Failure + '_ {
    move |e| Failure::Failed(format!("{what}: {e}"))
}

/// Creation bytecode of the Solidity verifier of `keys`, compiled with solc-js.
fn verifier_code(keys: &zkl_prover::Keys, name: &str) -> Result<Vec<u8>, Failure> {
    let what = format!("{name} verifier");
    let sol = zkl_contracts::verifier::groth16_verifier_solidity(&keys.vk, name).map_err(failed(&what))?;
    zkl_contracts::solc::compile(&sol, name).map_err(failed(&what))
}

fn key_bytes(hex_key: &str) -> Result<[u8; 32], Failure> {
    crate::args::bytes32(hex_key).map_err(Failure::Failed)
}

/// `zkl devnet halt-operator --data-dir D`: asks the devnet running in `D` to stop its node,
/// prover worker and oracle signers and keep the chains (SIGUSR1 to the pid in `D/devnet.pid`).
pub fn halt_operator(data_dir: &std::path::Path) -> Result<ExitCode, Failure> {
    let path = data_dir.join("devnet.pid");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::Usage(format!("{}: {e} (is a devnet running with this --data-dir?)", path.display())))?;
    let pid: u32 = text.trim().parse().map_err(|_| Failure::Usage(format!("{}: not a pid", path.display())))?;
    let status = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .map_err(|e| Failure::Failed(format!("kill: {e}")))?;
    if !status.success() {
        return Err(Failure::Failed(format!("no devnet process {pid} (it has stopped)")));
    }
    println!("{}", serde_json::json!({ "halted": pid }));
    Ok(ExitCode::SUCCESS)
}

/// The devnet's pairs: ETH against USDC and against the merged USD token, prices in steps of
/// 0.01, amounts in steps of 0.0001 ETH.
fn devnet_pairs() -> Vec<zkl_exchange::engine::PairConfig> {
    let (tick, lot) = (10u128.pow(16), 10u128.pow(14));
    [2, 100].into_iter().map(|quote| zkl_exchange::engine::PairConfig { base: 1, quote, tick, lot }).collect()
}

/// Starts `zkl exchange` as the devnet's matcher (config in `DATA_DIR/exchange.json`, store in
/// `DATA_DIR/exchange`, log in `DATA_DIR/exchange.log`); the process and its endpoints line.
async fn start_exchange(
    data_dir: &std::path::Path,
    rpc: &str,
) -> Result<(tokio::process::Child, serde_json::Value), Failure> {
    let config = zkl_exchange::service::ExchangeConfig {
        node: rpc.to_string(),
        listen: "127.0.0.1:0".parse().expect("an address"),
        data_dir: data_dir.join("exchange"),
        matcher: zkl_exchange::service::MatcherConfig {
            account: MATCHER_ACCOUNT,
            eth_private_key: DEV_KEYS[3].to_string(),
        },
        pairs: devnet_pairs(),
        max_queue: 10_000,
    };
    let path = data_dir.join("exchange.json");
    let text = serde_json::to_string_pretty(&config).map_err(failed("exchange config"))?;
    std::fs::write(&path, text).map_err(failed("exchange config"))?;
    let path = path.to_string_lossy().into_owned();
    spawn_service(data_dir, "exchange", &["exchange", "--config", &path]).await
}

/// Which database the devnet's indexer writes to.
pub enum IndexerChoice {
    /// Not started.
    Off,
    /// A PostgreSQL server of the devnet's own (Debian's binaries), deleted when it stops.
    Local,
    /// This database URL.
    Database(String),
}

/// The indexer's choice when nothing was asked: its own server when PostgreSQL's binaries are
/// installed, none otherwise.
pub fn default_indexer() -> IndexerChoice {
    if zkl_indexer::local_pg::bin_dir().is_some() { IndexerChoice::Local } else { IndexerChoice::Off }
}

/// Starts `zkl indexer` (log in `DATA_DIR/indexer.log`) against the node, on a local PostgreSQL
/// server of its own or on a given database: the process, the server (held until the devnet
/// stops) and the endpoints line (`database` added).
async fn start_indexer(
    data_dir: &std::path::Path,
    rpc: &str,
    choice: IndexerChoice,
) -> Result<Option<(tokio::process::Child, Option<zkl_indexer::local_pg::LocalPostgres>, serde_json::Value)>, Failure> {
    let (server, url) = match choice {
        IndexerChoice::Off => return Ok(None),
        IndexerChoice::Database(url) => (None, url),
        IndexerChoice::Local => {
            let pg = tokio::task::spawn_blocking(zkl_indexer::local_pg::LocalPostgres::start)
                .await
                .map_err(failed("PostgreSQL"))?
                .map_err(failed("the indexer's database"))?;
            let url = pg.url.clone();
            (Some(pg), url)
        }
    };
    let args = ["indexer", "--node", rpc, "--database", &url, "--listen", "127.0.0.1:0"];
    let (child, mut line) = spawn_service(data_dir, "indexer", &args).await?;
    line["database"] = serde_json::json!(url);
    Ok(Some((child, server, line)))
}

/// Spawns `zkl ARGS` (stderr to `DATA_DIR/NAME.log`) and reads its first stdout line: the
/// service's endpoints as JSON.
async fn spawn_service(
    data_dir: &std::path::Path,
    name: &str,
    args: &[&str],
) -> Result<(tokio::process::Child, serde_json::Value), Failure> {
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe().map_err(failed("cannot find the zkl binary"))?;
    let log = std::fs::File::create(data_dir.join(format!("{name}.log"))).map_err(failed("log"))?;
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::Failed(format!("cannot start the {name}: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .map_err(|_| Failure::Failed(format!("the {name} did not start within 60 s (DATA_DIR/{name}.log)")))?
        .map_err(|e| Failure::Failed(format!("{name}: {e}")))?
        .ok_or_else(|| Failure::Failed(format!("the {name} exited at start (DATA_DIR/{name}.log)")))?;
    let endpoints =
        serde_json::from_str(&line).map_err(|e| Failure::Failed(format!("the {name}'s first line: {e}")))?;
    Ok((child, endpoints))
}

/// Gives the matcher key an account (deposit) and its L2 key, waiting for each step.
async fn setup_matcher(rpc: &str) -> Result<(), Failure> {
    let fail = |e: String| Failure::Failed(format!("matcher setup: {e}"));
    let w = zkl_wallet::Wallet::new(&key_bytes(DEV_KEYS[3])?, rpc).map_err(|e| fail(e.to_string()))?;
    w.deposit(1, zkl_contracts::deploy::ETH_TOKEN_ID, zkl_contracts::deploy::ETH_TOKEN_ID, "0.1", 0)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(acc) = w.account().await {
            if acc.id != MATCHER_ACCOUNT {
                return Err(fail(format!("the matcher got account {} (was the devnet fresh?)", acc.id)));
            }
            break;
        }
        if Instant::now() > deadline {
            return Err(fail("the matcher's deposit was not credited within 60 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.change_pubkey(1, zkl_contracts::deploy::ETH_TOKEN_ID, 0).await.map_err(|e| fail(e.to_string()))?;
    Ok(())
}

pub fn run_devnet(a: DevnetArgs) -> Result<ExitCode, Failure> {
    if a.confirmations == 0 {
        return Err(Failure::Usage("--confirmations must be at least 1".into()));
    }
    if a.priority_expiration == Some(0) {
        return Err(Failure::Usage("--priority-expiration must be at least 1 second".into()));
    }
    if a.capacity == 0 {
        return Err(Failure::Usage("--capacity must be positive".into()));
    }
    if let Some(c) = a.capacities.iter().find(|&&c| c == 0 || c >= a.capacity) {
        return Err(Failure::Usage(format!("--capacities: {c} is not within 1..{} (below --capacity)", a.capacity)));
    }
    if std::fs::read_dir(&a.data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Failure::Usage(format!(
            "--data-dir {} is not empty: a devnet starts from fresh chains, so it needs a fresh directory",
            a.data_dir.display()
        )));
    }
    std::fs::create_dir_all(&a.data_dir).map_err(failed("cannot create the data dir"))?;
    let log = std::fs::File::create(a.data_dir.join("node.log")).map_err(failed("node log"))?;
    crate::node_cmd::init_logs_to(log);
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(failed("cannot start the runtime"))?;
    rt.block_on(async {
        let mut config = zkl_node::NodeConfig::demo(a.data_dir.join("db"));
        config.block_capacity = a.capacity;
        config.block_capacities = a.capacities.clone();
        config.matchers = vec![MATCHER_ACCOUNT];
        let (verifiers, services, token) = if a.test_verifier {
            (Vec::new(), zkl_node::Services::default(), None)
        } else {
            let ring = Arc::new(zkl_prover::KeyRing::new(true));
            let mut verifiers = Vec::new();
            let mut all = a.capacities.clone();
            all.push(a.capacity);
            all.sort_unstable();
            all.dedup();
            for capacity in all {
                eprintln!("==> block circuit keys, capacity {capacity} (generated once, then cached)");
                let keys = tokio::task::spawn_blocking(move || zkl_prover::load_keys(capacity, true))
                    .await
                    .map_err(failed("key setup"))?
                    .map_err(failed("keys"))?;
                verifiers.push((capacity as u32, verifier_code(&keys, "BlockVerifier")?));
                ring.insert(capacity, keys);
            }
            let token = hex::encode(rand::random::<[u8; 16]>());
            config.provers =
                Some(zkl_node::provers::ProverConfig { tokens: vec![token.clone()], heartbeat_timeout_ms: 60_000 });
            zkl_node::genesis(&config).map_err(failed("genesis"))?;
            let services = zkl_node::Services {
                proof_check: Some(Arc::new(zkl_prover::CircuitCheck { keys: ring })),
                job_payload: Some(Arc::new(zkl_prover::WitnessPayload)),
                ..Default::default()
            };
            (verifiers, services, Some(token))
        };
        // Exodus claims are verified by the exit circuit's verifier in every mode.
        eprintln!("==> exit circuit keys (generated once, then cached)");
        let exit_keys = tokio::task::spawn_blocking(|| zkl_prover::load_exit_keys(true))
            .await
            .map_err(failed("key setup"))?
            .map_err(failed("keys"))?;
        let exit_verifier = verifier_code(&exit_keys, "ExitVerifier")?;
        eprintln!("==> {} anvil chains with the contracts", config.chains.len());
        let admin_token = hex::encode(rand::random::<[u8; 16]>());
        config.admin = Some(zkl_node::config::AdminConfig { tokens: vec![admin_token.clone()] });
        let opts = DevnetOptions {
            evm_base: 31_000,
            confirmations: a.confirmations,
            verifiers,
            exit_verifier: Some(exit_verifier),
            test_tokens: true,
            priority_fee: zkl_devkit::devnet::DEVNET_PRIORITY_FEE,
            priority_expiration: a.priority_expiration,
        };
        let devnet = zkl_devkit::devnet::deploy_with(config, opts).await.map_err(failed("devnet"))?;
        let mut node = zkl_l1::start_node(devnet.config.clone(), services, None).await.map_err(failed("node"))?;
        let rpc = format!("http://{}", node.rpc_addr);
        // The prover worker, a separate process like any other worker.
        let mut worker = match &token {
            Some(token) => {
                let exe = std::env::current_exe().map_err(failed("cannot find the zkl binary"))?;
                let log = std::fs::File::create(a.data_dir.join("prover.log")).map_err(failed("prover log"))?;
                let child = tokio::process::Command::new(exe)
                    .args(["prover", "--node", &rpc, "--name", "devnet-prover"])
                    .env("ZKL_PROVER_TOKEN", token)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(failed("cannot start the prover worker"))?;
                Some(child)
            }
            None => None,
        };
        eprintln!("==> matcher account {MATCHER_ACCOUNT} (deposit and L2 key)");
        setup_matcher(&rpc).await?;
        eprintln!("==> exchange (zkl exchange, its log in DATA_DIR/exchange.log)");
        let (mut exchange, exchange_line) = start_exchange(&a.data_dir, &rpc).await?;
        let indexer = start_indexer(&a.data_dir, &rpc, a.indexer).await?;
        if indexer.is_some() {
            eprintln!("==> indexer (zkl indexer, its log in DATA_DIR/indexer.log)");
        }
        let (mut indexer, _database, indexer_line) = match indexer {
            Some((child, db, line)) => (Some(child), db, line),
            None => (None, None, serde_json::Value::Null),
        };
        let chains: Vec<_> = devnet
            .chains
            .iter()
            .map(|c| {
                let tokens: serde_json::Map<String, serde_json::Value> = devnet
                    .tokens
                    .iter()
                    .filter(|t| t.0 == c.config.l2_chain)
                    .map(|t| (t.1.to_string(), serde_json::json!(t.2.to_string())))
                    .collect();
                serde_json::json!({
                    "l2_chain": c.config.l2_chain,
                    "evm_chain_id": c.anvil.chain_id(),
                    "rpc": c.anvil.endpoint(),
                    "zklink": c.zklink.address().to_string(),
                    "data_availability": c.config.data_availability(),
                    "erc20": tokens,
                })
            })
            .collect();
        // One line on stdout: the node's endpoints, the chains, the funded dev keys (anvil's; key
        // 0 is the governor, validator and committer; the last one is the matcher's).
        let line = serde_json::json!({
                "rpc": rpc,
                "ws": format!("ws://{}", node.rpc_addr),
                "chains": chains,
                "funded_keys": &DEV_KEYS[1..],
                "erc20_minted_per_key": TEST_TOKEN_MINT,
                "matcher": { "key": DEV_KEYS[3], "account": MATCHER_ACCOUNT },
                "exchange": exchange_line,
                "indexer": indexer_line,
                "eth_token": zkl_contracts::deploy::ETH_TOKEN_ID,
                "priority_fee_wei": zkl_devkit::devnet::DEVNET_PRIORITY_FEE.to_string(),
                "admin_token": admin_token,
                "proofs": if token.is_some() { "block circuit (zkl prover worker)" } else { "test verifier" },
        });
        // The same line in DATA_DIR/devnet.json: `zkl exodus --chains` reads its `chains`.
        std::fs::write(a.data_dir.join("devnet.json"), format!("{line}\n")).map_err(failed("devnet.json"))?;
        // `zkl devnet halt-operator` signals this process (SIGUSR1) through DATA_DIR/devnet.pid.
        std::fs::write(a.data_dir.join("devnet.pid"), format!("{}\n", std::process::id()))
            .map_err(failed("devnet.pid"))?;
        use tokio::signal::unix::{SignalKind, signal};
        let mut halt = signal(SignalKind::user_defined1()).map_err(failed("signal"))?;
        // SIGTERM (kill, a supervisor) ends the devnet like Ctrl-C: the anvils are stopped too.
        let mut term = signal(SignalKind::terminate()).map_err(failed("signal"))?;
        println!("{line}");
        let stopped = async {
            match worker.as_mut() {
                Some(w) => w.wait().await.map(|s| format!("the prover worker exited ({s})")),
                None => std::future::pending().await,
            }
        };
        let exchange_stopped = async { exchange.wait().await.map(|s| format!("the exchange exited ({s})")) };
        let indexer_stopped = async {
            match indexer.as_mut() {
                Some(i) => i.wait().await.map(|s| format!("the indexer exited ({s})")),
                None => std::future::pending().await,
            }
        };
        let (outcome, halted) = tokio::select! {
            r = tokio::signal::ctrl_c() => (r.map_err(failed("signal")).map(|_| ExitCode::SUCCESS), false),
            _ = term.recv() => (Ok(ExitCode::SUCCESS), false),
            r = stopped => (Err(Failure::Failed(r.unwrap_or_else(|e| e.to_string()))), false),
            r = exchange_stopped => (Err(Failure::Failed(r.unwrap_or_else(|e| e.to_string()))), false),
            r = indexer_stopped => (Err(Failure::Failed(r.unwrap_or_else(|e| e.to_string()))), false),
            reason = node.failure() => (Err(Failure::Failed(reason)), false),
            _ = halt.recv() => (Ok(ExitCode::SUCCESS), true),
        };
        if let Some(mut w) = worker {
            let _ = w.kill().await;
        }
        let _ = exchange.kill().await;
        if let Some(mut i) = indexer {
            let _ = i.kill().await;
        }
        if let Some(l1) = node.l1.take() {
            l1.stop().await;
        }
        let _ = node.handle.stop();
        if halted {
            // The operator is gone (node, prover worker, oracle signers); the chains stay up for
            // the exodus drill until Ctrl-C.
            eprintln!("==> operator halted: node, prover and oracle stopped; the chains keep running (Ctrl-C ends)");
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.map_err(failed("signal"))?,
                _ = term.recv() => {}
            }
        }
        drop(devnet);
        outcome
    })
}
