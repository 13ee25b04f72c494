//! The `fanout` command line: the binary's edge, where errors become exit
//! statuses and messages for a person. One file per subcommand; the
//! helpers they share (loading the config, reading a job, the broker
//! section a subcommand needs, shutdown signals) are here.

mod check;
mod dead;
mod enqueue;
mod render;
mod route_test;
mod send;
mod serve;
mod signal;
mod status;
mod worker;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use fanout::broker::Broker;
use fanout::check::{CheckRow, Table};
use fanout::config::{Config, LoadError, StorageKind};
use fanout::destinations::Destinations;
use fanout::images::internal::InternalStore;
use fanout::images::Storage;
use fanout::logging::{self, LogFormat};
use fanout::outbox::Outbox;
use fanout::render::{ChartRenderer, Charts};
use fanout::server::HttpState;
use fanout::store::Store;

use check::check;
use dead::{dead, DeadAction};
use enqueue::enqueue;
use render::{render, ChartArgs};
use route_test::route_test;
use send::send;
use serve::serve;
use signal::{send_signal, SignalArg};
use status::status;
use worker::worker;

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
    /// Render one chart through the same pool, to check a setup by hand.
    Render {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        chart: ChartArgs,
        /// Where to write the PNG.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Inspect, replay or purge the dead-letter queue (`fanout.dead`).
    ///
    /// Exit status: 0 done, 1 broker failure, 2 bad config or arguments.
    Dead {
        #[command(subcommand)]
        action: DeadAction,
    },
    /// Validate a job and publish it to RabbitMQ (exchange `fanout`, key `job`).
    ///
    /// Exit status: 0 enqueued (confirmed by the broker), 1 broker failure, 2 bad job or config.
    Enqueue {
        /// The job: a JSON file, or `-` for standard input.
        job: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Run the pipeline on RabbitMQ (every stage, or a pool's), with the
    /// HTTP server (/healthz, /readyz, /metrics, images).
    ///
    /// A broker or store that does not answer yet is waited for (with
    /// backoff; /readyz answers 503 meanwhile), never a reason to exit.
    ///
    /// Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 bad config or pool file.
    Worker {
        #[command(flatten)]
        config: ConfigArg,
        /// A pool file (workers/NAME.toml): the stages and channels to run.
        #[arg(long)]
        pool: Option<PathBuf>,
        /// Unacknowledged messages per queue (overrides the pool's).
        #[arg(long)]
        prefetch: Option<u16>,
    },
    /// Acknowledge, resolve, silence or unsilence an alert group: publish
    /// the signal to RabbitMQ (exchange `fanout`, key `signal`).
    ///
    /// Exit status: 0 sent (confirmed by the broker), 1 broker failure, 2 bad arguments or config.
    Signal {
        /// The alert group (`alert.group_id` of its jobs).
        group: String,
        #[arg(value_enum)]
        signal: SignalArg,
        /// For silence: how long (`1h`) or until when (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Who sends it, for the group's history (default: $USER).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show an alert group: its state, its chain's position, what was sent
    /// when, and what is scheduled next (read from the store).
    ///
    /// Exit status: 0 shown, 1 no such group or store unreachable, 2 bad config.
    Status {
        group: String,
        #[command(flatten)]
        config: ConfigArg,
        /// The stored record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read a monitor's webhook body as fanout would (Alertmanager's,
    /// …) and show the alerts in it: status, severity, title, group key,
    /// labels, times and links. Sends nothing.
    ///
    /// Exit status: 0 read, 2 a body that cannot be read, an unknown source or a bad config.
    RouteTest {
        /// The monitor: alertmanager, grafana, graylog, skywalking or generic.
        source: String,
        /// The body: a JSON file, or `-` for standard input.
        file: String,
        #[command(flatten)]
        config: ConfigArg,
        /// What was read, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the HTTP server alone (images, action links, /healthz).
    Serve {
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub fn main() -> ExitCode {
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
        Command::Render {
            config,
            chart,
            output,
        } => render(config.config.as_deref(), chart, &output).await,
        Command::Serve { config } => serve(config.config.as_deref()).await,
        Command::RouteTest {
            source,
            file,
            config,
            json,
        } => route_test(&source, &file, config.config.as_deref(), json).await,
        Command::Enqueue { job, config } => enqueue(&job, config.config.as_deref()).await,
        Command::Dead { action } => dead(action).await,
        Command::Signal {
            group,
            signal,
            until,
            by,
            config,
        } => send_signal(&group, signal, until, by, config.config.as_deref()).await,
        Command::Status {
            group,
            config,
            json,
        } => status(&group, config.config.as_deref(), json).await,
        Command::Worker {
            config,
            pool,
            prefetch,
        } => worker(config.config.as_deref(), pool.as_deref(), prefetch).await,
        Command::Schema => print_json(&fanout::channels::job_schema()),
    }
}

/// Load the config, or print every problem and say why not. Without a
/// path, the embedded default is used and its demo panel server started
/// (kept alive by the returned guard).
async fn load_config(path: Option<&Path>) -> Option<(Config, Option<fanout::demo::DemoGrafana>)> {
    let demo = match path {
        Some(_) => None,
        None => match fanout::demo::start().await {
            Ok(demo) => Some(demo),
            Err(e) => {
                eprintln!("fanout: cannot start the demo panel server: {e}");
                return None;
            }
        },
    };
    let extra: Vec<(&str, String)> = demo
        .iter()
        .flat_map(|d| {
            [
                ("FANOUT_DEMO_GRAFANA_URL", d.url.clone()),
                ("FANOUT_DEMO_GRAFANA_TOKEN", d.token.clone()),
            ]
        })
        .collect();
    match Config::load_with(path, &extra) {
        Ok(config) => Some((config, demo)),
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

/// Connect to RabbitMQ, or say why not on stderr (the caller exits 1).
async fn connect(config: &fanout::config::BrokerConfig) -> Option<Broker> {
    Broker::connect(config)
        .await
        .map_err(|e| eprintln!("fanout: {e}"))
        .ok()
}

/// The config's `[broker]`, or `None` after saying it is needed `for_what`.
fn required_broker(config: &Config, for_what: &str) -> Option<fanout::config::BrokerConfig> {
    let broker = config.broker.clone();
    if broker.is_none() {
        eprintln!(
            "fanout: config {}: [broker] url is required {for_what}",
            config.source
        );
    }
    broker
}

/// Action links work where both `[actions]` and `[broker]` are set.
fn action_endpoint(config: &Config) -> Option<std::sync::Arc<fanout::server::ActionEndpoint>> {
    let links = fanout::actions::ActionLinks::from_config(config)?;
    let broker = config.broker.clone()?;
    Some(std::sync::Arc::new(fanout::server::ActionEndpoint {
        links,
        signals: fanout::actions::SignalSender::new(broker),
    }))
}

/// `/ingest/<source>` works where `[ingest]` (which needs `[broker]`) is
/// set; its spool is opened and drained from here on. Err: the spool
/// cannot be opened.
fn ingest_endpoint(
    config: &Config,
) -> anyhow::Result<Option<std::sync::Arc<fanout::server::IngestEndpoint>>> {
    use std::sync::Arc;
    if config.ingest.is_empty() {
        return Ok(None);
    }
    let Some(broker) = config.broker.clone() else {
        return Ok(None);
    };
    let publisher = Arc::new(fanout::broker::publisher::Publisher::new(broker));
    let spool = match config.spool.max_jobs {
        0 => None,
        max => {
            let spool = fanout::broker::spool::Spool::open(&config.spool.path, max)
                .with_context(|| "[spool] cannot be opened")?;
            let spool = Arc::new(spool);
            tokio::spawn(fanout::broker::spool::drain(
                spool.clone(),
                publisher.clone(),
                std::time::Duration::from_millis(500),
            ));
            Some(spool)
        }
    };
    Ok(Some(Arc::new(fanout::server::IngestEndpoint {
        config: Arc::new(config.clone()),
        publisher,
        spool,
    })))
}

/// [`ingest_endpoint`], its error said for a person: `None` when it
/// cannot be opened (the caller exits with [`BAD_INPUT`]).
fn ingest_or_say(
    config: &Config,
) -> Option<Option<std::sync::Arc<fanout::server::IngestEndpoint>>> {
    ingest_endpoint(config)
        .map_err(|e| eprintln!("fanout: config {}: {e:#}", config.source))
        .ok()
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The embedded default has no real servers: it always uses ./outbox.
fn default_outbox(outbox: Option<PathBuf>, config_path: Option<&Path>) -> Option<PathBuf> {
    outbox.or_else(|| config_path.is_none().then(|| PathBuf::from("outbox")))
}

/// The job's bytes from a file or standard input. Past what fanout reads
/// at all, the rest is counted (not kept) so the error gives the real size.
/// Print `value` as pretty JSON on stdout: [`DELIVERED`], or
/// [`SOME_FAILED`] with why on stderr.
fn print_json(value: &impl serde::Serialize) -> u8 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            DELIVERED
        }
        Err(e) => {
            eprintln!("fanout: {e}");
            SOME_FAILED
        }
    }
}

fn read_job(job: &str) -> anyhow::Result<Vec<u8>> {
    read_input(job, "job")
}

/// The bytes of `path` (`-`: standard input), at most the job read limit;
/// `what` names it in errors ("job", "body").
fn read_input(path: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let job = path;
    let limit = fanout::job::MAX_READ_BYTES as u64;
    let mut reader: Box<dyn Read> = if job == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(job).with_context(|| format!("cannot read {what} file {job}"))?,
        )
    };
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| match job {
            "-" => format!("cannot read the {what} from standard input"),
            _ => format!("cannot read {what} file {job}"),
        })?;
    if bytes.len() as u64 > limit {
        let rest = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_or(0);
        let size = bytes.len() + rest as usize;
        anyhow::bail!(
            "bad {what}: {}",
            fanout::job::DecodeError::TooLarge { size }
        );
    }
    Ok(bytes)
}
