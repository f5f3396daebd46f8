//! `zkl bench …`: benchmarks whose logic lives in the library crates.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use zkl_crypto::fr_to_hex;
use zkl_state::benchmark::{BenchConfig, Phases, run};

use crate::Failure;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Commit / prove / execute gas per op type on anvil (needs contracts/node_modules: scripts/setup-l1.sh)
    Gas(crate::bench_gas::GasArgs),
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
    /// Node throughput and inclusion latency: signed transfers through JSON-RPC from many accounts
    Node {
        /// Print one JSON line instead of a table
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..=100_000))]
        accounts: u32,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        txs_per_account: u32,
        /// Concurrent JSON-RPC senders
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
        senders: u32,
        /// Block capacity in chunks
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        block_capacity: u64,
        /// Longest time a non-empty block waits before it is sealed
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        block_time_ms: u64,
    },
    /// Exchange throughput and latency: signed orders through the exchange's API into a node
    Exchange {
        /// Print one JSON line instead of a table
        #[arg(long)]
        json: bool,
        /// Traders (half sell, half buy, around one price: about three quarters of the orders
        /// trade)
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..=10_000))]
        traders: u32,
        /// Instead: this percentage of the orders is priced to cross the book, the others rest
        /// on their own side of it (a market with resting liquidity)
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
        crossing: Option<u32>,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=65_536))]
        orders_per_trader: u32,
        /// Concurrent API clients
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
        senders: u32,
        /// Block capacity in chunks
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        block_capacity: u64,
        /// Longest time a non-empty block waits before it is sealed
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        block_time_ms: u64,
    },
    /// Recovery: rebuild the state from synthetic L1 commit calldata, then prove one exit
    Exodus {
        /// Print one JSON line instead of a table
        #[arg(long)]
        json: bool,
        /// Txs in the synthetic history (two deposits per account, then transfers and order matchings)
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(4..=20_000_000))]
        txs: u32,
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(2..=5_000_000))]
        accounts: u32,
        /// Chunks per block
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(4..=65_536))]
        block_chunks: u64,
    },
    /// Block circuit: constraints per op type, and per block capacity the prove and verify time and peak memory
    Prove {
        /// Print one JSON line instead of a table
        #[arg(long)]
        json: bool,
        /// Block circuits to prove: a capacity `C` (a block of C transfers), or `CxW`, the
        /// circuit of C chunks and W < C work slots (a block of deposits); keys are generated the
        /// first time, with progress
        #[arg(long, value_delimiter = ',', default_value = "4,8", value_parser = parse_circuit)]
        capacities: Vec<(usize, Option<usize>)>,
    },
}

use crate::node_cmd::runtime;

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
        BenchCommand::Gas(a) => crate::bench_gas::run(a),
        BenchCommand::Prove { json, capacities } => run_prove(json, &capacities),
        BenchCommand::Exodus { json, txs, accounts, block_chunks } => {
            let config =
                zkl_devkit::exodus_bench::ExodusBenchConfig { txs, accounts, block_chunks: block_chunks as usize };
            run_exodus(json, &config)
        }
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
        BenchCommand::Exchange {
            json,
            traders,
            crossing,
            orders_per_trader,
            senders,
            block_capacity,
            block_time_ms,
        } => {
            let dir = std::env::temp_dir().join(format!("zkl-bench-exchange-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut config = zkl_node::NodeConfig::demo(dir.join("node"));
            config.block_capacity = block_capacity as usize;
            config.block_time_ms = block_time_ms;
            let bench =
                zkl_devkit::exchange_bench::ExchangeBenchConfig { traders, orders_per_trader, senders, crossing };
            let rt = runtime()?;
            let quiet = json;
            let report = rt
                .block_on(zkl_devkit::exchange_bench::run(config, &dir, bench, &|stage| {
                    if !quiet {
                        eprintln!("bench exchange: {stage}…");
                    }
                }))
                .map_err(Failure::Failed);
            let _ = std::fs::remove_dir_all(&dir);
            let r = report?;
            let ms = |v: f64| (v * 10.0).round() / 10.0;
            if json {
                let line = json!({
                    "orders_per_s": r.orders_per_s.round(),
                    "matches_per_s": r.matches_per_s.round(),
                    "p99_order_to_match_ms": ms(r.p99_order_to_match_ms),
                    "p99_match_to_inclusion_ms": ms(r.p99_match_to_inclusion_ms),
                });
                println!("{line}");
            } else {
                println!("orders accepted        {} ({} refused)", r.orders, r.refused_orders);
                println!(
                    "matches included       {} ({} made but not included: refused by the node)",
                    r.matches, r.refused_matches
                );
                println!("orders/s               {:.0}", r.orders_per_s);
                println!("matches/s              {:.0}", r.matches_per_s);
                println!(
                    "order → match          p50 {:.1} ms, p99 {:.1} ms",
                    r.p50_order_to_match_ms, r.p99_order_to_match_ms
                );
                println!(
                    "match → L2 inclusion   p50 {:.1} ms, p99 {:.1} ms",
                    r.p50_match_to_inclusion_ms, r.p99_match_to_inclusion_ms
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Node { json, accounts, txs_per_account, senders, block_capacity, block_time_ms } => {
            let dir = std::env::temp_dir().join(format!("zkl-bench-node-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut config = zkl_node::NodeConfig::demo(dir.clone());
            config.block_capacity = block_capacity as usize;
            config.block_time_ms = block_time_ms;
            let bench = zkl_devkit::node_bench::NodeBenchConfig { accounts, txs_per_account, senders };
            let rt = runtime()?;
            let quiet = json;
            let report = rt
                .block_on(zkl_devkit::node_bench::run(config, bench, &|stage| {
                    if !quiet {
                        eprintln!("bench node: {stage}…");
                    }
                }))
                .map_err(Failure::Failed);
            let _ = std::fs::remove_dir_all(&dir);
            let report = report?;
            if json {
                let line = json!({
                    "accepted_tx_per_s": report.accepted_tx_per_s.round(),
                    "p50_inclusion_ms": (report.p50_inclusion_ms * 10.0).round() / 10.0,
                    "p99_inclusion_ms": (report.p99_inclusion_ms * 10.0).round() / 10.0,
                });
                println!("{line}");
            } else {
                println!("accepted            {} ({} rejected)", report.accepted, report.rejected);
                println!("accepted tx/s       {:.0}", report.accepted_tx_per_s);
                println!("inclusion p50       {:.1} ms", report.p50_inclusion_ms);
                println!("inclusion p99       {:.1} ms", report.p99_inclusion_ms);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `C` or `CxW` (capacity 1..=1024 chunks, work slots 1..C).
fn parse_circuit(s: &str) -> Result<(usize, Option<usize>), String> {
    let number = |x: &str| x.trim().parse::<usize>().map_err(|_| format!("{x:?} is not a number"));
    let (c, w) = match s.split_once('x') {
        None => (number(s)?, None),
        Some((c, w)) => (number(c)?, Some(number(w)?)),
    };
    if !(1..=1024).contains(&c) {
        return Err(format!("capacity {c} is not within 1..=1024"));
    }
    match w {
        Some(w) if w == 0 || w >= c => Err(format!("work slots {w} must be within 1..{c} (fewer than the chunks)")),
        _ => Ok((c, w)),
    }
}

fn run_prove(json: bool, capacities: &[(usize, Option<usize>)]) -> Result<ExitCode, Failure> {
    let per_op = zkl_devkit::prove_bench::constraints_per_op().map_err(Failure::Failed)?;
    let per_op_routed = zkl_devkit::prove_bench::constraints_per_op_work_slots().map_err(Failure::Failed)?;
    let keys = zkl_prover::KeyRing::new(!json);
    let mut blocks = Vec::new();
    for &(c, w) in capacities {
        if !json {
            match w {
                None => eprintln!("bench prove: capacity {c}: keys, then one proof of a full block of transfers…"),
                Some(w) => eprintln!("bench prove: capacity {c}, {w} work slots: keys, then one proof of deposits…"),
            }
        }
        blocks.push(zkl_devkit::prove_bench::measure_block(&keys, c, w).map_err(Failure::Failed)?);
    }
    if json {
        let map = |per_op: &[(&str, usize)]| -> serde_json::Map<String, serde_json::Value> {
            per_op.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()
        };
        let (ops, routed) = (map(&per_op), map(&per_op_routed));
        println!("{}", json!({ "constraints_per_op": ops, "constraints_per_op_work_slots": routed, "blocks": blocks }));
    } else {
        println!(
            "constraints per op (chunks x (chunk gadget + pubdata SHA-256 share); with work slots: work slots x slot + chunks x (position + pubdata share))"
        );
        for ((op, n), (_, r)) in per_op.iter().zip(&per_op_routed) {
            println!("  {op:<16} {n:>9} {r:>9}");
        }
        println!(
            "chunks  work  fee slots  block              constraints  prove s  witness s  groth16 s  µs/constraint  transfers/s  ops/s  verify ms  peak RSS MB"
        );
        for b in &blocks {
            let rss = b.peak_rss_mb.map(|m| m.to_string()).unwrap_or_else(|| "n/a".into());
            let work = b.work_slots.map(|w| w.to_string()).unwrap_or_else(|| "all".into());
            println!(
                "{:>6}  {:>4}  {:>9}  {:<17}  {:>11}  {:>7.1}  {:>9.1}  {:>9.1}  {:>13.1}  {:>11.2}  {:>5.2}  {:>9.1}  {:>11}",
                b.chunks,
                work,
                b.fee_slots,
                format!("{} {}s", b.ops, b.op),
                b.constraints,
                b.prove_s,
                b.witness_s,
                b.groth16_s,
                b.us_per_constraint,
                b.transfers_per_s,
                b.ops_per_s,
                b.verify_ms,
                rss
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_exodus(json: bool, config: &zkl_devkit::exodus_bench::ExodusBenchConfig) -> Result<ExitCode, Failure> {
    let keys = zkl_prover::load_exit_keys(!json).map_err(|e| Failure::Failed(e.to_string()))?;
    let r = zkl_devkit::exodus_bench::run(config, &keys, &|stage| {
        if !json {
            eprintln!("bench exodus: {stage}…");
        }
    })
    .map_err(Failure::Failed)?;
    if json {
        let line = json!({
            "rebuild_txs_per_s": r.rebuild_txs_per_s.round(),
            "exit_proof_s": (r.exit_proof_s * 100.0).round() / 100.0,
            "peak_rss_mb": r.peak_rss_mb,
        });
        println!("{line}");
    } else {
        let rss = r.peak_rss_mb.map(|m| m.to_string()).unwrap_or_else(|| "n/a".into());
        println!(
            "history             {} txs in {} blocks, {} accounts, {:.1} MB of calldata",
            r.txs, r.blocks, r.accounts, r.calldata_mb
        );
        println!("set-up              {:.1} s", r.setup_s);
        println!(
            "rebuild             {:.1} s ({:.0} txs/s; decode {:.1} s, replay {:.1} s, stored blocks {:.1} s)",
            r.rebuild_s, r.rebuild_txs_per_s, r.phases.decode_s, r.phases.replay_s, r.phases.stored_s
        );
        println!("exit proof          {:.2} s", r.exit_proof_s);
        println!("peak RSS            {rss} MB");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_circuit;

    #[test]
    fn circuits_are_a_capacity_or_capacity_x_work_slots() {
        assert_eq!(parse_circuit("7"), Ok((7, None)));
        assert_eq!(parse_circuit("15x5"), Ok((15, Some(5))));
        for bad in ["0", "1025", "5x5", "5x0", "5x6", "x", "7x", "seven", "-3"] {
            let e = parse_circuit(bad).expect_err(bad);
            assert!(!e.is_empty() && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
