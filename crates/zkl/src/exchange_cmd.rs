//! `zkl exchange --config FILE`: runs the exchange (matching engine, order books, market data)
//! against a node until Ctrl-C or SIGTERM (`zkl_exchange::service`, docs/exchange.md).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Failure;

pub fn run_exchange(config: PathBuf) -> Result<ExitCode, Failure> {
    let config = zkl_exchange::service::ExchangeConfig::load(&config).map_err(|e| Failure::Usage(e.to_string()))?;
    crate::node_cmd::init_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let mut exchange =
            zkl_exchange::service::start(config).await.map_err(|e| Failure::Failed(e.to_string()))?;
        // First line on stdout: where to reach the exchange (scripts and tests read it).
        println!(
            "{}",
            serde_json::json!({
                "rpc": format!("http://{}", exchange.addr),
                "ws": format!("ws://{}", exchange.addr),
            })
        );
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| Failure::Failed(e.to_string()))?;
        let outcome = tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| Failure::Failed(e.to_string())).map(|_| ExitCode::SUCCESS),
            _ = term.recv() => Ok(ExitCode::SUCCESS),
            _ = exchange.engine_ended() => Err(Failure::Failed("the exchange's engine stopped (see the log); restart it to replay its store".into())),
        };
        exchange.stop().await;
        outcome
    })
}
