//! `zkl bench gas`: gas of the Layer-1 contract per op type, measured on anvil (logic in
//! `zkl_contracts::bench`).

use std::process::ExitCode;

use clap::Args;
use zkl_contracts::bench::{GasBenchConfig, op_types, report_json, report_table, run_gas_bench};

use crate::Failure;

/// Arguments of `zkl bench gas`.
#[derive(Args)]
pub struct GasArgs {
    /// Print one line of JSON: {"ops":{"transfer":{"pubdata_bytes":…,"commit_gas_per_op":…,…},…}}
    #[arg(long)]
    json: bool,
    /// Block capacities in chunks (each at least 4); per-op figures come from the largest
    #[arg(long, value_delimiter = ',', default_values_t = [8usize, 32, 64, 256])]
    capacities: Vec<usize>,
    /// Blocks settled per commit, prove and execute transaction (the settler's batch)
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Op types to measure (default: all): transfer, transfer_to_new, order_matching, withdraw,
    /// deposit, full_exit, change_pubkey, forced_exit
    #[arg(long, value_delimiter = ',')]
    ops: Vec<String>,
    /// anvil hardfork (default: anvil's own default)
    #[arg(long)]
    hardfork: Option<String>,
}

pub fn run(a: GasArgs) -> Result<ExitCode, Failure> {
    let GasArgs { json, capacities, batch, ops, hardfork } = a;
    if !(1..=64).contains(&batch) {
        return Err(Failure::Usage(format!("--batch: {batch} is outside 1..=64 blocks")));
    }
    if let Some(bad) = capacities.iter().find(|c| !(4..=16384).contains(*c)) {
        return Err(Failure::Usage(format!("--capacities: {bad} is outside 4..=16384 chunks")));
    }
    if let Some(bad) = ops.iter().find(|o| !op_types().any(|(n, _)| n == o.as_str())) {
        return Err(Failure::Usage(format!("--ops: unknown op type '{bad}'")));
    }
    let mut cfg = GasBenchConfig { capacities, batch, only: ops, anvil_args: Vec::new() };
    if let Some(h) = hardfork {
        cfg.anvil_args = vec!["--hardfork".into(), h];
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))?;
    let report = rt.block_on(run_gas_bench(&cfg)).map_err(|e| Failure::Failed(e.to_string()))?;
    if json {
        println!("{}", report_json(&report));
    } else {
        print!("{}", report_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}
