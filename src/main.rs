//! The `fanout` command line: the binary's edge, where errors become exit
//! statuses and messages for a person.

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
    /// Run the HTTP server alone (images, action links, /healthz).
    Serve {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SignalArg {
    Acknowledge,
    Resolve,
    Silence,
    Unsilence,
}

#[derive(Subcommand)]
enum DeadAction {
    /// Show dead letters (oldest first) with their stage and reason; all stay.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back to the queue they failed in, with a fresh
    /// attempt budget (default: every one there now).
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Drop every dead letter.
    Purge {
        #[command(flatten)]
        config: ConfigArg,
        /// Required: purging cannot be undone.
        #[arg(long)]
        yes: bool,
    },
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
        Command::Render {
            config,
            chart,
            output,
        } => render(config.config.as_deref(), chart, &output).await,
        Command::Serve { config } => serve(config.config.as_deref()).await,
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

async fn send(job: &str, config_path: Option<&Path>, outbox: Option<PathBuf>) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let outbox = default_outbox(outbox, config_path);
    let bytes = match read_job(job) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            return BAD_INPUT;
        }
    };
    let outbox_used = outbox.is_some();
    let destinations = match Destinations::build(&config, outbox.map(Outbox::new)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fanout: config {}: {e}", config.source);
            return BAD_INPUT;
        }
    };
    let charts = match Charts::new(
        &config.render,
        config.storage.as_ref(),
        config.http.public_url.as_ref(),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fanout: config {}: storage: {e}", config.source);
            return BAD_INPUT;
        }
    };
    // The outbox is a dry run: it must not mark anything as sent.
    let store = match (&config.store, &outbox_used) {
        (Some(store), false) => match Store::open(&store.url).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("fanout: config {}: {e}", config.source);
                return BAD_INPUT;
            }
        },
        _ => None,
    };
    // The same links the worker puts in every notification.
    let actions = fanout::actions::ActionLinks::from_config(&config);
    let sending = fanout::send::Sending {
        destinations: &destinations,
        charts: &charts,
        store: store.as_ref(),
        actions: actions.as_ref(),
    };
    match fanout::send::send(&config, &sending, &bytes).await {
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

async fn worker(config_path: Option<&Path>, pool: Option<&Path>, prefetch: Option<u16>) -> u8 {
    let mut pool = match pool.map(fanout::worker::pool::Pool::load) {
        None => fanout::worker::pool::Pool::default(),
        Some(Ok(pool)) => pool,
        Some(Err(e)) => {
            eprintln!("fanout: {e}");
            return BAD_INPUT;
        }
    };
    if let Some(n) = prefetch {
        pool.prefetch = n.max(1);
    }
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let Some(broker) = required_broker(&config, "for the worker") else {
        return BAD_INPUT;
    };
    let listener = match tokio::net::TcpListener::bind(config.http.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fanout: cannot listen on {}: {e}", config.http.listen);
            return SOME_FAILED;
        }
    };
    let images = match &config.storage {
        Some(s) if matches!(s.kind, StorageKind::Internal) => {
            InternalStore::new(s, config.http.public_url.as_ref())
                .ok()
                .map(std::sync::Arc::new)
        }
        _ => None,
    };
    let metrics = std::sync::Arc::new(fanout::metrics::Metrics::default());
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The HTTP server comes first: while the worker waits for its broker
    // or store, /healthz answers and /readyz says 503.
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState {
        images,
        ready: Some(ready.clone()),
        metrics: Some(metrics.clone()),
        actions: action_endpoint(&config),
    };
    let http = tokio::spawn(fanout::server::serve(listener, state, async move {
        let _ = http_stopped.await;
    }));
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown_signal()));
    let result = match fanout::worker::Context::build(config, pool, metrics, shutdown.clone()).await
    {
        Ok(ctx) => fanout::worker::run(ctx, &broker, ready, shutdown).await,
        Err(e) => Err(e),
    };
    let _ = stop_http.send(());
    let _ = http.await;
    match result {
        Ok(()) | Err(fanout::worker::WorkerError::Stopped) => DELIVERED,
        Err(e @ fanout::worker::WorkerError::Setup(_)) => {
            eprintln!("fanout: worker: {e}");
            BAD_INPUT
        }
        Err(e) => {
            eprintln!("fanout: worker: {e}");
            SOME_FAILED
        }
    }
}

async fn dead(action: DeadAction) -> u8 {
    let config_path = match &action {
        DeadAction::List { config, .. }
        | DeadAction::Replay { config, .. }
        | DeadAction::Purge { config, .. } => config.config.clone(),
    };
    if let DeadAction::Purge { yes: false, .. } = action {
        eprintln!("fanout: purging drops every dead letter for good; add --yes to do it");
        return BAD_INPUT;
    }
    let Some((config, _demo)) = load_config(config_path.as_deref()).await else {
        return BAD_INPUT;
    };
    let Some(broker_config) = required_broker(&config, "for dead letters") else {
        return BAD_INPUT;
    };
    let broker = match Broker::connect(&broker_config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fanout: {e}");
            return SOME_FAILED;
        }
    };
    let queue = broker.topology.dead.clone();
    let done = match action {
        DeadAction::List { limit, json, .. } => broker.dead_list(limit).await.map(|letters| {
            if json {
                for l in &letters {
                    println!("{}", serde_json::to_string(l).unwrap_or_default());
                }
            } else {
                println!("{:<9} {:<16} {:>8}  REASON", "STAGE", "FROM", "BYTES");
                for l in &letters {
                    println!(
                        "{:<9} {:<16} {:>8}  {}",
                        l.stage, l.route, l.bytes, l.reason
                    );
                }
                eprintln!("{} shown from {queue}", letters.len());
            }
        }),
        DeadAction::Replay { limit, .. } => {
            let limit = match limit {
                Some(n) => Ok(n),
                None => broker.dead_count().await.map(|n| n as usize),
            };
            match limit {
                Ok(limit) => broker.dead_replay(limit).await.map(|(sent, stuck)| {
                    println!("replayed {sent} from {queue}");
                    if stuck > 0 {
                        println!("{stuck} left: their queue is unknown to this version");
                    }
                }),
                Err(e) => Err(e),
            }
        }
        DeadAction::Purge { .. } => broker
            .dead_purge()
            .await
            .map(|n| println!("purged {n} from {queue}")),
    };
    broker.close().await;
    match done {
        Ok(()) => DELIVERED,
        Err(e) => {
            eprintln!("fanout: {e}");
            SOME_FAILED
        }
    }
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

async fn send_signal(
    group: &str,
    signal: SignalArg,
    until: Option<String>,
    by: Option<String>,
    config_path: Option<&Path>,
) -> u8 {
    use fanout::job::SignalKind;
    let kind = match signal {
        SignalArg::Acknowledge => SignalKind::Acknowledge,
        SignalArg::Resolve => SignalKind::Resolve,
        SignalArg::Silence => SignalKind::Silence,
        SignalArg::Unsilence => SignalKind::Unsilence,
    };
    if kind != SignalKind::Silence && until.is_some() {
        eprintln!("fanout: --until goes with silence only");
        return BAD_INPUT;
    }
    let by = by.or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()));
    let signal = fanout::job::Signal {
        version: fanout::job::V1,
        signal: kind,
        group_id: group.to_string(),
        until,
        by,
    };
    // The worker's own check, so what is refused here is what it would
    // dead-letter.
    if let Err(e) = signal.check(chrono::Utc::now()) {
        let e = match e.field {
            "until" if signal.until.is_none() => "silence needs --until (e.g. --until 1h)".into(),
            "until" => format!("--until: {}", e.message),
            _ => format!("group {group:?}: {}", e.message),
        };
        eprintln!("fanout: {e}");
        return BAD_INPUT;
    }
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let Some(broker_config) = required_broker(&config, "to send a signal") else {
        return BAD_INPUT;
    };
    let sender = fanout::actions::SignalSender::new(broker_config);
    match sender.send(&signal).await {
        Ok(()) => {
            println!(
                "sent {} for group {group} (key {})",
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                fanout::broker::SIGNAL_KEY
            );
            DELIVERED
        }
        Err(e) => {
            eprintln!("fanout: {e}");
            SOME_FAILED
        }
    }
}

async fn status(group: &str, config_path: Option<&Path>, json: bool) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let url = config.store.as_ref().map_or_else(
        || fanout::secret::Secret::new(fanout::worker::DEFAULT_STORE.to_string()),
        |s| s.url.clone(),
    );
    let namespace = config.broker.as_ref().map_or("", |b| b.prefix.as_str());
    let store = match Store::open_in(&url, namespace).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("fanout: {e}");
            return SOME_FAILED;
        }
    };
    let state: Option<fanout::chain::GroupState> =
        match store.get(fanout::chain::group::KIND, group).await {
            Ok(state) => state,
            Err(e) => {
                eprintln!("fanout: {e}");
                return SOME_FAILED;
            }
        };
    let Some(state) = state else {
        eprintln!(
            "fanout: no alert group {group:?} in the store (it never fired here, or was forgotten)"
        );
        return SOME_FAILED;
    };
    if json {
        match serde_json::to_string_pretty(&state) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("fanout: {e}");
                return SOME_FAILED;
            }
        }
    } else {
        print!(
            "{}",
            fanout::chain::status::report(&state, chrono::Utc::now(), config.templates.timezone)
        );
    }
    DELIVERED
}

async fn enqueue(job: &str, config_path: Option<&Path>) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let Some(broker_config) = required_broker(&config, "to enqueue") else {
        return BAD_INPUT;
    };
    let bytes = match read_job(job) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            return BAD_INPUT;
        }
    };
    // A bad job is refused here, not discovered by a worker later.
    let parsed = match fanout::job::decode::decode_job(&bytes) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("fanout: bad job: {e}");
            return BAD_INPUT;
        }
    };
    if let Err(e) = fanout::validate::validate(&parsed, &config) {
        eprintln!("fanout: bad job: {e}");
        return BAD_INPUT;
    }
    let broker = match Broker::connect(&broker_config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fanout: {e}");
            return SOME_FAILED;
        }
    };
    // A job trimmed to fit travels trimmed: what the broker holds is
    // what the worker may take.
    let bytes = match parsed.alert.payload_trimmed {
        Some(_) => serde_json::to_vec(&parsed).unwrap_or(bytes),
        None => bytes,
    };
    match broker
        .publish(fanout::broker::JOB_KEY, &parsed.id, &bytes)
        .await
    {
        Ok(()) => {
            println!(
                "enqueued {} to {} (key {})",
                parsed.id,
                broker.topology.exchange,
                fanout::broker::JOB_KEY
            );
            DELIVERED
        }
        Err(e) => {
            eprintln!("fanout: {e}");
            SOME_FAILED
        }
    }
}

/// Chromium starts, Grafana takes the token, the store round-trips.
async fn check_charts(config: &Config) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    let chrome = config.render.chrome.display().to_string();
    match ChartRenderer::new(&config.render) {
        Ok(renderer) => {
            let started = std::time::Instant::now();
            let up = renderer.warm_up().await;
            rows.push(match &up {
                Ok(()) => CheckRow::ok(
                    "chromium",
                    chrome,
                    format!("started in {} ms", started.elapsed().as_millis()),
                ),
                Err(e) => CheckRow::fail(
                    "chromium",
                    chrome,
                    e.to_string(),
                    "install Debian's chromium (apt-get install chromium) or set [render] chrome",
                ),
            });
            if up.is_ok() {
                rows.push(fanout::render::fonts::check(&renderer, &config.render.scripts).await);
            }
        }
        Err(e) => rows.push(CheckRow::fail(
            "chromium",
            chrome,
            e.to_string(),
            "see the error",
        )),
    }
    rows.extend(fanout::render::grafana::check(&config.render).await);
    if let Some(broker) = &config.broker {
        let shown = fanout::net::redact_userinfo(broker.url.expose()).into_owned();
        rows.push(match Broker::connect(broker).await {
            Ok(b) => CheckRow::ok("broker", shown, format!("connected, topology declared ({})", b.topology.exchange)),
            Err(e) => CheckRow::fail(
                "broker",
                shown,
                e.message,
                "is RabbitMQ running there, with that user, password and vhost (`%2f` is the default vhost)?",
            ),
        });
    }
    if let Some(store) = &config.store {
        rows.push(match Store::open(&store.url).await {
            Ok(store) => store.check().await,
            Err(e) => CheckRow::fail(
                "store",
                "[store] url",
                e.0,
                "check [store] url and that the store is up",
            ),
        });
    }
    match Storage::new(config.storage.as_ref(), config.http.public_url.as_ref()).await {
        Ok(Some(storage)) => rows.push(storage.check().await),
        Ok(None) => {}
        Err(e) => rows.push(CheckRow::fail(
            "storage",
            config.source.clone(),
            e.message,
            "fix [storage]",
        )),
    }
    rows
}

/// One chart from the command line.
#[derive(Args)]
struct ChartArgs {
    /// A Grafana panel, as DASHBOARD_UID:PANEL_ID.
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    grafana: Option<String>,
    /// Any page on an allowed origin.
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    org: Option<u64>,
    #[arg(long, default_value = "now-1h")]
    from: String,
    #[arg(long, default_value = "now")]
    to: String,
    /// Dashboard variable, as NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    #[arg(long, default_value_t = 1000)]
    width: u32,
    #[arg(long, default_value_t = 500)]
    height: u32,
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

impl ChartArgs {
    /// The same JSON a job would carry, so the same validation applies.
    fn to_chart_json(&self) -> anyhow::Result<serde_json::Value> {
        let mut chart =
            serde_json::json!({"width": self.width, "height": self.height, "scale": self.scale});
        if let Some(url) = &self.url {
            chart["url"] = url.clone().into();
        } else if let Some(panel) = &self.grafana {
            let (uid, id) = panel
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--grafana takes DASHBOARD_UID:PANEL_ID"))?;
            let id: u64 = id.parse().context("--grafana: the panel id is a number")?;
            let mut vars = serde_json::Map::new();
            for v in &self.vars {
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--var takes NAME=VALUE"))?;
                vars.insert(k.to_string(), val.into());
            }
            let mut g = serde_json::json!({"dashboard_uid": uid, "panel_id": id, "from": self.from, "to": self.to, "vars": vars});
            if let Some(org) = self.org {
                g["org_id"] = org.into();
            }
            chart["grafana"] = g;
        }
        Ok(chart)
    }
}

async fn render(config_path: Option<&Path>, args: ChartArgs, output: &Path) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let chart: fanout::job::Chart = match args
        .to_chart_json()
        .and_then(|v| Ok(serde_json::from_value(v)?))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            return BAD_INPUT;
        }
    };
    let target = match fanout::render::render_target(&chart, config.render.grafana.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fanout: {e}");
            return BAD_INPUT;
        }
    };
    let renderer = match ChartRenderer::new(&config.render) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fanout: {e}");
            return SOME_FAILED;
        }
    };
    let started = std::time::Instant::now();
    match renderer.render(&target).await {
        Ok(png) => match fanout::outbox::write_whole(output, &png) {
            Ok(()) => {
                println!(
                    "{} ({} bytes, {} ms)",
                    output.display(),
                    png.len(),
                    started.elapsed().as_millis()
                );
                DELIVERED
            }
            Err(e) => {
                eprintln!("fanout: cannot write {}: {e}", output.display());
                SOME_FAILED
            }
        },
        Err(e) => {
            eprintln!("fanout: render failed: {e}");
            SOME_FAILED
        }
    }
}

async fn serve(config_path: Option<&Path>) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let images = match &config.storage {
        Some(s) if matches!(s.kind, StorageKind::Internal) => {
            match InternalStore::new(s, config.http.public_url.as_ref()) {
                Ok(store) => Some(std::sync::Arc::new(store)),
                Err(e) => {
                    eprintln!("fanout: {e}");
                    return BAD_INPUT;
                }
            }
        }
        _ => None,
    };
    let listener = match tokio::net::TcpListener::bind(config.http.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fanout: cannot listen on {}: {e}", config.http.listen);
            return SOME_FAILED;
        }
    };
    let state = HttpState {
        images,
        actions: action_endpoint(&config),
        ..HttpState::default()
    };
    match fanout::server::serve(listener, state, shutdown_signal()).await {
        Ok(()) => DELIVERED,
        Err(e) => {
            eprintln!("fanout: HTTP server: {e}");
            SOME_FAILED
        }
    }
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
fn read_job(job: &str) -> anyhow::Result<Vec<u8>> {
    let limit = fanout::job::MAX_READ_BYTES as u64;
    let mut reader: Box<dyn Read> = if job == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(job).with_context(|| format!("cannot read job file {job}"))?)
    };
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| match job {
            "-" => "cannot read the job from standard input".to_string(),
            _ => format!("cannot read job file {job}"),
        })?;
    if bytes.len() as u64 > limit {
        let rest = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_or(0);
        let size = bytes.len() + rest as usize;
        anyhow::bail!("bad job: {}", fanout::job::DecodeError::TooLarge { size });
    }
    Ok(bytes)
}

async fn check(config_path: Option<&Path>, offline: bool, outbox: Option<PathBuf>) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let mut rows = vec![CheckRow::ok(
        "config",
        config.source.clone(),
        format!("{} destinations", config.destinations.len()),
    )];
    // As with `send`: the embedded default delivers to ./outbox, so that is
    // what there is to check.
    let outbox = default_outbox(outbox, config_path);
    if !offline {
        rows.extend(check_charts(&config).await);
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
