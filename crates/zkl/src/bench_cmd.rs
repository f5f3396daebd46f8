//! `zkl bench …`: benchmarks whose logic lives in the library crates.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use zkl_crypto::fr_to_hex;
use zkl_state::benchmark::{BenchConfig, Phases, run};

use crate::Failure;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// State-machine throughput: signed transfers and order matchings in blocks over a pre-funded state
    State {
        /// Print one JSON line instead of a table
        #[arg(long)]
        json: bool,
        /// Pre-funded accounts
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(4..=1_000_000))]
        accounts: u32,
        /// Blocks of each kind (transfers, then order matchings)
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        blocks: u32,
        /// Transactions per block
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=30_000))]
        block_size: u32,
    },
}

fn phases(p: &Phases) -> String {
    format!(
        "signatures {:.2} s, apply {:.2} s, root {:.2} s",
        p.verify.as_secs_f64(),
        p.apply.as_secs_f64(),
        p.root.as_secs_f64()
    )
}

pub fn run_bench(cmd: BenchCommand) -> Result<ExitCode, Failure> {
    match cmd {
        BenchCommand::State { json, accounts, blocks, block_size } => {
            let config = BenchConfig { accounts, blocks, block_size, ..BenchConfig::default() };
            let quiet = json;
            let report = run(&config, &|stage| {
                if !quiet {
                    eprintln!("bench state: {stage}…");
                }
            });
            if json {
                let line = json!({
                    "transfers_per_s": report.transfers_per_s.round(),
                    "orders_per_s": report.orders_per_s.round(),
                    "accounts": report.accounts,
                    "blocks": report.blocks,
                    "final_root": fr_to_hex(&report.final_root),
                });
                println!("{line}");
            } else {
                println!("accounts            {}", report.accounts);
                println!("set-up              {:.1} s", report.setup.as_secs_f64());
                println!("transfers/s         {:.0}  ({})", report.transfers_per_s, phases(&report.transfer_phases));
                println!("order matchings/s   {:.0}  ({})", report.orders_per_s, phases(&report.order_phases));
                println!("blocks              {}", report.blocks);
                println!("final root          {}", fr_to_hex(&report.final_root));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
