//! `zkl exchange --config FILE`: runs the exchange (matching engine, order books, market data)
//! against a node until Ctrl-C or SIGTERM (`zkl_exchange::service`, docs/exchange.md).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Failure;

pub fn run_exchange(config: PathBuf) -> Result<ExitCode, Failure> {
    let config = zkl_exchange::service::ExchangeConfig::load(&config).map_err(|e| Failure::Usage(e.to_string()))?;
    crate::node_cmd::init_logs();
    crate::node_cmd::runtime()?.block_on(async {
        let mut exchange =
            zkl_exchange::service::start(config).await.map_err(|e| Failure::Failed(e.to_string()))?;
        crate::node_cmd::print_endpoints(exchange.addr);
        let outcome = tokio::select! {
            r = crate::node_cmd::terminated() => r.map(|_| ExitCode::SUCCESS),
            _ = exchange.engine_ended() => Err(Failure::Failed("the exchange's engine stopped (see the log); restart it to replay its store".into())),
        };
        exchange.stop().await;
        outcome
    })
}
