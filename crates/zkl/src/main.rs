//! `zkl`: the zkLink-rs command line. Thin: every command parses its arguments, calls a library
//! crate, and prints the result. Bad input exits with code 2 and a one-line error naming the
//! argument; a failed check (an invalid signature) exits with code 1.

mod admin_cmd;
mod args;
mod bench_cmd;
mod bench_gas;
mod crypto_cmd;
mod devnet_cmd;
mod exchange_cmd;
mod exodus_cmd;
mod indexer_cmd;
mod node_cmd;
mod prover_cmd;
mod wallet_cmd;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "zkl", version, about = "zkLink-rs: a multi-chain ZK-rollup for order-book trading")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Poseidon hashing and EdDSA-Poseidon keys and signatures (circomlibjs-compatible)
    #[command(subcommand)]
    Crypto(crypto_cmd::CryptoCommand),
    /// Layer-2 key management
    #[command(subcommand)]
    Key(crypto_cmd::KeyCommand),
    /// Run the sequencer node (JSON-RPC over HTTP and WebSocket)
    Node {
        /// Node configuration (JSON)
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Run the exchange: order books and matching engine as the node's whitelisted matcher,
    /// market data (JSON-RPC over HTTP and WebSocket; docs/exchange.md)
    Exchange {
        /// Exchange configuration (JSON)
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Run the indexer: follows a node's blocks and the chains' settlement into PostgreSQL and
    /// serves the explorer API (JSON-RPC over HTTP and WebSocket; docs/indexer.md)
    Indexer {
        /// The node's JSON-RPC endpoint
        #[arg(long)]
        node: String,
        /// PostgreSQL connection URL (postgres://user:password@host:port/database)
        #[arg(long, env = "DATABASE_URL")]
        database: String,
        /// Where the explorer API listens
        #[arg(long, default_value = "127.0.0.1:8547")]
        listen: std::net::SocketAddr,
        /// Milliseconds between two looks at the node once caught up
        #[arg(long, default_value_t = 200)]
        poll_ms: u64,
    },
    /// Development network: two anvils with the contracts, and the node settling on both
    #[command(args_conflicts_with_subcommands = true)]
    Devnet {
        #[command(subcommand)]
        action: Option<DevnetAction>,
        /// Where the node's database lives
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Blocks before a deposit is credited or a node tx counts
        #[arg(long, default_value_t = 1)]
        confirmations: u64,
        /// Block capacity in chunks (the block circuit's keys are per capacity)
        #[arg(long, default_value_t = 4)]
        capacity: usize,
        /// Smaller capacities a block is sealed at when its ops fit (the smallest that fits),
        /// e.g. `--capacity 32 --capacities 4,8`; keys and a verifier for each
        #[arg(long, value_delimiter = ',')]
        capacities: Vec<usize>,
        /// Verify with the contracts' test verifier instead of the block circuit (no prover)
        #[arg(long)]
        test_verifier: bool,
        /// Seconds until a priority request expires, for exodus drills (default three days)
        #[arg(long)]
        priority_expiration: Option<u64>,
        /// Start the indexer (by default it starts when PostgreSQL's server binaries are
        /// installed), on a PostgreSQL server of the devnet's own unless --database is given
        #[arg(long, conflicts_with = "no_indexer")]
        indexer: bool,
        /// Do not start the indexer
        #[arg(long)]
        no_indexer: bool,
        /// The indexer's database (postgres://…) instead of a server of the devnet's own
        #[arg(long, conflicts_with = "no_indexer")]
        database: Option<String>,
    },
    /// Prover worker for a node (`--node URL --token T`), or `export-verifier`
    Prover(prover_cmd::ProverArgs),
    /// Wallet: keys, transfers, withdrawals, orders, against a node
    Wallet(wallet_cmd::WalletArgs),
    /// Order matching (whitelisted matcher accounts)
    #[command(subcommand)]
    Matcher(wallet_cmd::MatcherCommand),
    /// Benchmarks (`zkl bench state`, …)
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
    /// Operator methods of a node (`--token` or ZKL_ADMIN_TOKEN): status, seal, revert-blocks
    Admin(admin_cmd::AdminArgs),
    /// Recovery from Layer-1 data alone when the operator is gone: status, activate
    Exodus(exodus_cmd::ExodusArgs),
}

#[derive(Subcommand)]
enum DevnetAction {
    /// Stop the running devnet's node, prover worker and oracle signers and keep its chains (the
    /// exodus drill: the operator is gone)
    HaltOperator {
        /// The running devnet's --data-dir
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
}

/// How a command ended, besides success.
pub enum Failure {
    /// Bad input: exit code 2.
    Usage(String),
    /// A check that failed or an operation that could not complete: exit code 1.
    Failed(String),
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(e),
    };
    let result = match cli.command {
        Command::Crypto(c) => crypto_cmd::run_crypto(c),
        Command::Key(c) => crypto_cmd::run_key(c),
        Command::Bench(c) => bench_cmd::run_bench(c),
        Command::Node { config } => node_cmd::run_node(config),
        Command::Exchange { config } => exchange_cmd::run_exchange(config),
        Command::Indexer { node, database, listen, poll_ms } => {
            indexer_cmd::run_indexer(node, database, listen, poll_ms)
        }
        Command::Devnet { action: Some(DevnetAction::HaltOperator { data_dir }), .. } => {
            devnet_cmd::halt_operator(&data_dir)
        }
        Command::Devnet { action: None, data_dir: None, .. } => {
            Err(Failure::Usage("--data-dir is required (or: zkl devnet halt-operator --data-dir D)".into()))
        }
        Command::Devnet {
            action: None,
            data_dir: Some(data_dir),
            confirmations,
            capacity,
            capacities,
            test_verifier,
            priority_expiration,
            indexer,
            no_indexer,
            database,
        } => {
            use devnet_cmd::IndexerChoice;
            let indexer = match (database, indexer, no_indexer) {
                (Some(url), _, _) => IndexerChoice::Database(url),
                (None, true, _) => IndexerChoice::Local,
                (None, false, true) => IndexerChoice::Off,
                (None, false, false) => devnet_cmd::default_indexer(),
            };
            devnet_cmd::run_devnet(devnet_cmd::DevnetArgs {
                data_dir,
                confirmations,
                capacity,
                capacities,
                test_verifier,
                priority_expiration,
                indexer,
            })
        }
        Command::Wallet(a) => wallet_cmd::run_wallet(a),
        Command::Prover(a) => prover_cmd::run_prover(a),
        Command::Matcher(c) => wallet_cmd::run_matcher(c),
        Command::Admin(a) => admin_cmd::run_admin(a),
        Command::Exodus(a) => exodus_cmd::run_exodus(a),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Help and version print in full; every other clap error prints its first line only.
fn report_clap_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            // The first paragraph of clap's message, on one line (it names the argument).
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            eprintln!("{}", first.join(" "));
            ExitCode::from(2)
        }
    }
}

/// A panic is a bug; it still ends in one line on stderr, never a backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("internal error: {msg} (please report this)");
    }));
}
