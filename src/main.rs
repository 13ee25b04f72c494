//! The `fanout` command line: the binary's edge, where errors become exit
//! statuses and messages for a person.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use fanout::check::{CheckRow, Table};
use fanout::config::{Config, LoadError, StorageKind};
use fanout::deliver::destinations::Destinations;
use fanout::logging::{self, LogFormat};
use fanout::outbox::Outbox;

/// Exit statuses: the contract scripts and CI rely on.
const DELIVERED: u8 = 0;
const SOME_FAILED: u8 = 1;
const BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "fanout",
    version,
    about = "Notification fan-out worker for on-call teams"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "FANOUT_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ConfigArg {
    /// Config file (TOML). Without it, the embedded default is used.
    #[arg(long, short, env = "FANOUT_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one job in this process, with no broker.
    ///
    /// Exit status: 0 all delivered, 1 some delivery failed, 2 bad job or config.
    Send {
        /// The job: a JSON file, or `-` for standard input.
        job: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Write what would be sent into DIR instead of sending
        /// (default without --config: ./outbox).
        #[arg(long)]
        outbox: Option<PathBuf>,
    },
    /// Validate the config and probe every connection it names.
    ///
    /// Exit status: 0 all ok, 1 a probe failed, 2 bad config.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Validate only; open no connection.
        #[arg(long)]
        offline: bool,
        /// Probe writing to this outbox instead of the real servers.
        #[arg(long)]
        outbox: Option<PathBuf>,
    },
    /// Print the JSON Schema of the job contract.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fanout: cannot start the async runtime: {e}");
            return ExitCode::from(SOME_FAILED);
        }
    };
    let status = runtime.block_on(run(cli.command));
    ExitCode::from(status)
}

async fn run(command: Command) -> u8 {
    match command {
        Command::Send {
            job,
            config,
            outbox,
        } => send(&job, config.config.as_deref(), outbox).await,
        Command::Check {
            config,
            offline,
            outbox,
        } => check(config.config.as_deref(), offline, outbox).await,
        Command::Schema => match serde_json::to_string_pretty(&fanout::job::schema()) {
            Ok(text) => {
                println!("{text}");
                DELIVERED
            }
            Err(e) => {
                eprintln!("fanout: {e}");
                SOME_FAILED
            }
        },
    }
}

/// Load the config, or print every problem and say why not.
fn load_config(path: Option<&Path>) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(LoadError::Invalid { path, errors }) => {
            eprint!("fanout: config {path}: {errors}");
            None
        }
        Err(e) => {
            eprintln!("fanout: {e}");
            None
        }
    }
}

async fn send(job: &str, config_path: Option<&Path>, outbox: Option<PathBuf>) -> u8 {
    let Some(config) = load_config(config_path) else {
        return BAD_INPUT;
    };
    // The embedded default has no real servers: it always writes the outbox.
    let outbox = outbox.or_else(|| config_path.is_none().then(|| PathBuf::from("outbox")));
    let bytes = match read_job(job) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            return BAD_INPUT;
        }
    };
    let destinations = match Destinations::build(&config, outbox.map(Outbox::new)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fanout: config {}: {e}", config.source);
            return BAD_INPUT;
        }
    };
    match fanout::send::send(&config, &destinations, &bytes).await {
        Err(refused) => {
            eprintln!("fanout: {refused}");
            BAD_INPUT
        }
        Ok(outcomes) => {
            for outcome in &outcomes {
                println!("{outcome}");
            }
            if outcomes.iter().all(|o| o.delivered()) {
                DELIVERED
            } else {
                SOME_FAILED
            }
        }
    }
}

fn read_job(job: &str) -> anyhow::Result<Vec<u8>> {
    let limit = fanout::job::MAX_MESSAGE_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if job == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("cannot read the job from standard input")?;
    } else {
        std::fs::File::open(job)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read job file {job}"))?;
    }
    Ok(bytes)
}

async fn check(config_path: Option<&Path>, offline: bool, outbox: Option<PathBuf>) -> u8 {
    let Some(config) = load_config(config_path) else {
        return BAD_INPUT;
    };
    let mut rows = vec![CheckRow::ok(
        "config",
        config.source.clone(),
        format!("{} destinations", config.destinations.len()),
    )];
    if !offline {
        if let Some(storage) = &config.storage {
            if matches!(storage.kind, StorageKind::Internal) {
                let dir = storage.dir.display().to_string();
                rows.push(match fanout::check::probe_dir(&storage.dir) {
                    Ok(()) => CheckRow::ok("storage internal", dir, "writable"),
                    Err(e) => CheckRow::fail(
                        "storage internal",
                        dir,
                        e.to_string(),
                        "create [storage] dir and let fanout's user write it",
                    ),
                });
            }
        }
        match Destinations::build(&config, outbox.map(Outbox::new)) {
            Ok(destinations) => rows.extend(destinations.check().await),
            Err(e) => rows.push(CheckRow::fail(
                "config",
                config.source.clone(),
                e,
                "fix the key named",
            )),
        }
    }
    print!("{}", Table(&rows));
    if rows.iter().all(CheckRow::passed) {
        DELIVERED
    } else {
        SOME_FAILED
    }
}
