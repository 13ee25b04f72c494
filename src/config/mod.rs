//! The config: one TOML file, validated in full before anything starts.
//!
//! Every bad key is reported at once with its path and a hint, and fanout
//! refuses to start. The checks are the failures seen in the field: URLs
//! that are empty or `"null"`, a `public_url` missing where a URL must be
//! built, short signing keys, certificate checks turned off for more than
//! loopback. The key names are a contract; docs/configuration.md documents
//! them all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use url::Url;

use crate::channels::{ChannelConfig, ChannelKind};
use crate::rate::RateLimit;
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::section::{self as reader, Errors, Section};
pub use crate::section::{ConfigError, ConfigErrors};

/// The config used when none is given: no server needed, everything to
/// the outbox, so `fanout send examples/jobs/firing.json` works at once.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

use crate::images::config::read_storage;
pub use crate::images::config::{S3Config, StorageConfig, StorageKind, MIN_SIGNING_KEY_BYTES};
use crate::render::config::read_render;
pub use crate::render::config::{GrafanaConfig, RenderConfig};

#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from, for messages: a path or "embedded default".
    pub source: String,
    pub http: HttpConfig,
    pub broker: Option<BrokerConfig>,
    pub store: Option<StoreConfig>,
    pub storage: Option<StorageConfig>,
    /// Signed action links in notifications (`[actions]`).
    pub actions: Option<ActionsConfig>,
    pub render: RenderConfig,
    pub templates: TemplatesConfig,
    pub destinations: BTreeMap<String, Destination>,
    /// `[[routes]]` and `[escalations.NAME]`: how alerts taken from the
    /// monitors become jobs.
    pub routes: crate::route::Routes,
    /// `[ingest.<source>]`: the monitors that may post to `/ingest/<source>`.
    pub ingest: crate::ingest::config::IngestConfig,
    /// `[spool]`: where ingested jobs wait while the broker is away.
    pub spool: SpoolConfig,
}

/// `[spool]`: the local file that keeps ingested jobs while the broker is
/// down or slow ([`crate::broker::spool`]).
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// Default `fanout-spool.sqlite` in the working directory.
    pub path: PathBuf,
    /// The most jobs it keeps (default 100,000); 0 turns it off, and
    /// `/ingest` answers 503 while the broker is away.
    pub max_jobs: u64,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The base of every URL fanout hands out (images, action links).
    pub public_url: Option<Url>,
}

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// `amqp://user:pass@host:5672/vhost`; may hold a password.
    pub url: Secret,
    /// Prepended to every exchange and queue name.
    pub prefix: String,
}

#[derive(Clone, Debug)]
pub struct ActionsConfig {
    pub signing_key: Secret,
    /// How long a link in a notification keeps working.
    pub ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `redis://host:6379/0`.
    pub url: Secret,
}

#[derive(Clone, Debug)]
pub struct TemplatesConfig {
    /// The zone `datetimeformat` uses when a template names none.
    pub timezone: chrono_tz::Tz,
}

/// One `[destinations.NAME]`.
#[derive(Clone, Debug)]
pub struct Destination {
    pub name: String,
    pub channel: ChannelConfig,
    pub retry: RetryPolicy,
    /// Sends allowed per period, kept by fanout (`rate = "20/min"`).
    pub rate: Option<RateLimit>,
    /// A folder whose files override the channel's default templates.
    pub template: Option<PathBuf>,
    /// Repeat suppression for jobs that set none (`suppress = { key, window }`).
    pub suppress: Option<crate::job::Suppress>,
    /// A long backlog: queued, or folded into a digest.
    pub backlog: crate::rate::Backlog,
}

impl Destination {
    pub fn kind(&self) -> ChannelKind {
        self.channel.kind()
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("config {path}: {errors}")]
    Invalid { path: String, errors: ConfigErrors },
}

impl Config {
    /// Load `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, LoadError> {
        Self::load_with(path, &[])
    }

    /// Like [`Config::load`], with `extra` variables visible to `${NAME}`
    /// before the process environment (the embedded default's demo panel).
    pub fn load_with(path: Option<&Path>, extra: &[(&str, String)]) -> Result<Config, LoadError> {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        let env: reader::EnvLookup = Rc::new(move |name| {
            extra
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok())
        });
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                Self::parse(&text, &path.display().to_string(), env)
            }
            None => Self::parse(EMBEDDED_DEFAULT, "embedded default", env),
        }
    }

    /// The embedded default, with its demo panel server at `grafana_url`.
    pub fn embedded(grafana_url: &str, token: &str) -> Result<Config, LoadError> {
        let (url, token) = (grafana_url.to_string(), token.to_string());
        let env: reader::EnvLookup = Rc::new(move |name| match name {
            "FANOUT_DEMO_GRAFANA_URL" => Some(url.clone()),
            "FANOUT_DEMO_GRAFANA_TOKEN" => Some(token.clone()),
            _ => None,
        });
        Self::parse(EMBEDDED_DEFAULT, "embedded default", env)
    }

    /// Parse and validate `text`; `env` resolves `${NAME}`.
    pub fn parse(text: &str, source: &str, env: reader::EnvLookup) -> Result<Config, LoadError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| LoadError::Toml {
            path: source.to_string(),
            message: e.to_string(),
        })?;
        let errors: Errors = Rc::default();
        let root = Section::root(table, errors.clone(), env);
        let config = read_config(&root, source);
        root.finish();
        let errors = errors.take();
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(LoadError::Invalid {
                path: source.to_string(),
                errors: ConfigErrors(errors),
            }),
        }
    }
}

fn read_config(root: &Section, source: &str) -> Option<Config> {
    let http = read_http(root.table("http"));
    let broker = root.table("broker").and_then(|s| {
        // Kept as written (not re-serialised): `%2f` in the vhost must stay.
        let url = s
            .url("url", &["amqp", "amqps"])
            .and_then(|_| s.string("url"))
            .map(Secret::new);
        let prefix = s.string("prefix").unwrap_or_default();
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            s.error("prefix", "use letters, digits and `._-` only", None);
        }
        s.finish();
        url.map(|url| BrokerConfig { url, prefix })
    });
    let store = root.table("store").and_then(|s| {
        let url = s.string("url").and_then(|u| check_store_url(&s, &u));
        s.finish();
        url.map(|url| StoreConfig { url })
    });
    // Only a public_url that is absent is reported here; a bad one already was.
    let public_url_written = root.table("http").is_some_and(|h| h.has("public_url"));
    let storage = root
        .table("storage")
        .and_then(|s| read_storage(&s, http.is_some() && !public_url_written));
    let actions = root
        .table("actions")
        .and_then(|s| read_actions(&s, http.is_some() && !public_url_written));
    let render = read_render(root.table("render"));
    let templates = read_templates(root.table("templates"));
    let destinations = read_destinations(root.table("destinations"), root.has("storage"));
    let routes = destinations.as_ref().and_then(|d| {
        let channels = d
            .iter()
            .map(|(name, dest)| (name.clone(), dest.channel.clone()))
            .collect();
        crate::route::config::read_routes(root, &channels)
    });
    if destinations.is_none() {
        // Their targets cannot be checked, but their keys are known.
        root.known(&["routes", "escalations"]);
    }
    let ingest = match root.table("ingest") {
        None => Some(Default::default()),
        Some(s) => {
            let read = crate::ingest::config::read_ingest(&s, broker.is_some());
            s.finish();
            read
        }
    };
    // No alert from a monitor is dropped: the last route takes what the
    // others do not.
    if let (true, Some(routes)) = (root.has("ingest"), &routes) {
        let catch_all = routes
            .routes
            .last()
            .is_some_and(crate::route::Route::matches_everything);
        if !catch_all {
            root.error(
                "routes",
                "with [ingest], the last route must match every alert (no source, no matchers, no when), so none is dropped",
                Some("end with [[routes]] targets = [{ destination = \"…\" }]"),
            );
        }
    }
    let spool = match root.table("spool") {
        None => SpoolConfig {
            path: PathBuf::from("fanout-spool.sqlite"),
            max_jobs: 100_000,
        },
        Some(s) => {
            let spool = SpoolConfig {
                path: s
                    .string("path")
                    .map_or_else(|| PathBuf::from("fanout-spool.sqlite"), PathBuf::from),
                max_jobs: s
                    .integer("max_jobs", 0, 100_000_000)
                    .map_or(100_000, |n| n as u64),
            };
            s.finish();
            spool
        }
    };
    Some(Config {
        source: source.to_string(),
        http: http?,
        broker,
        store,
        storage,
        actions,
        render: render?,
        templates: templates?,
        destinations: destinations?,
        routes: routes?,
        ingest: ingest?,
        spool,
    })
}

fn read_http(section: Option<Section>) -> Option<HttpConfig> {
    let Some(s) = section else {
        return Some(HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
        });
    };
    let listen =
        s.string("listen")
            .map_or(Some(SocketAddr::from(([127, 0, 0, 1], 8080))), |text| {
                text.parse()
                    .map_err(|_| {
                        s.error(
                            "listen",
                            format!("{text:?} is not an address"),
                            Some("write it as 0.0.0.0:8080 or 127.0.0.1:8080"),
                        );
                    })
                    .ok()
            });
    let public_url = s.url("public_url", &["http", "https"]);
    s.finish();
    Some(HttpConfig {
        listen: listen?,
        public_url,
    })
}

fn check_store_url(s: &Section, text: &str) -> Option<Secret> {
    if let Some(path) = text.strip_prefix("sqlite://") {
        if path.is_empty() {
            s.error(
                "url",
                "sqlite:// needs a path, e.g. sqlite:///var/lib/fanout/state.db",
                None,
            );
            return None;
        }
        return Some(Secret::new(text));
    }
    reader::check_url(text, &["redis", "rediss"])
        .map(|_| Secret::new(text))
        .map_err(|(message, hint)| {
            s.error(
                "url",
                message,
                hint.or(Some(
                    "sqlite:///var/lib/fanout/state.db or redis://127.0.0.1:6379/0",
                )),
            );
        })
        .ok()
}

fn read_actions(s: &Section, public_url_missing: bool) -> Option<ActionsConfig> {
    let signing_key = s.secret("signing_key");
    let ttl = s
        .span("ttl")
        .map_or(Duration::from_secs(7 * 86_400), |t| t.0);
    match &signing_key {
        None if !s.has("signing_key") => s.error(
            "signing_key",
            "is required: action links are signed with it",
            Some("at least 32 random bytes, e.g. `openssl rand -hex 32`"),
        ),
        Some(key) => s.key_length("signing_key", key, MIN_SIGNING_KEY_BYTES),
        None => {}
    }
    if public_url_missing {
        s.error(
            "signing_key",
            "action links are built from http.public_url, which is not set",
            Some("set [http] public_url to the address people's mail and chat clients reach fanout at"),
        );
    }
    s.finish();
    Some(ActionsConfig {
        signing_key: signing_key.filter(|k| k.expose().len() >= MIN_SIGNING_KEY_BYTES)?,
        ttl,
    })
}

fn read_templates(section: Option<Section>) -> Option<TemplatesConfig> {
    let Some(s) = section else {
        return Some(TemplatesConfig {
            timezone: chrono_tz::UTC,
        });
    };
    let timezone = match s.string("timezone") {
        None => Some(chrono_tz::UTC),
        Some(name) => crate::clock::zone::parse(&name)
            .map_err(|e| s.error("timezone", e.to_string(), None))
            .ok(),
    };
    s.finish();
    Some(TemplatesConfig {
        timezone: timezone?,
    })
}

fn read_destinations(
    section: Option<Section>,
    storage: bool,
) -> Option<BTreeMap<String, Destination>> {
    let Some(s) = section else {
        return Some(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for name in s.keys() {
        let Some(d) = s.table(&name) else {
            ok = false;
            continue;
        };
        if !valid_name(&name) {
            s.error(
                &name,
                "destination names use letters, digits, `-` and `_` only",
                None,
            );
            ok = false;
        }
        match read_destination(&name, &d, storage) {
            Some(dest) => {
                out.insert(name, dest);
            }
            None => ok = false,
        }
        d.finish();
    }
    s.finish();
    ok.then_some(out)
}

fn read_destination(name: &str, d: &Section, storage: bool) -> Option<Destination> {
    let channels = ChannelKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ");
    let kind = d
        .required_string("channel", &format!("one of: {channels}"))
        .and_then(|c| match ChannelKind::parse(&c) {
            Some(kind) => Some(kind),
            None => {
                d.error(
                    "channel",
                    format!("{c:?} is not a channel of this build"),
                    Some(&format!("one of: {channels}")),
                );
                None
            }
        });
    let max_attempts = d.integer("max_attempts", 1, 100);
    let max_age = d.span("max_age");
    // Some(None): `rate = "off"`, the channel's default switched off.
    let rate = d.string("rate").and_then(|text| match text.as_str() {
        "off" => Some(None),
        _ => match RateLimit::parse(&text) {
            Ok(rate) => Some(Some(rate)),
            Err(message) => {
                d.error("rate", message, Some("e.g. rate = \"20/min\", or \"off\""));
                None
            }
        },
    });
    let on_backlog = d.string("on_backlog");
    let digest_after = d.span("digest_after");
    let template = d.string("template").map(PathBuf::from);
    let suppress = d.table("suppress").and_then(|t| {
        let key = t.required_string("key", "a template, e.g. \"{{ alert.labels.service }}\"");
        if !t.has("window") {
            t.error("window", "is required", Some("e.g. window = \"10m\""));
        }
        let window = t.span("window");
        if window.is_some_and(|w| w.0 < Duration::from_secs(1)) {
            t.error("window", "must be at least 1s", None);
        }
        t.finish();
        Some(crate::job::Suppress {
            key: key?,
            window: window.filter(|w| w.0 >= Duration::from_secs(1))?,
        })
    });
    let Some(kind) = kind else {
        // Without a channel its keys cannot be judged; don't report them all.
        d.known(&d.keys().iter().map(String::as_str).collect::<Vec<_>>());
        return None;
    };
    if let Some(dir) = &template {
        if let Err(message) = check_template_dir(kind, dir) {
            d.error(
                "template",
                message,
                Some("a folder holding any of the channel's template files"),
            );
        }
    }
    let channel = kind.read(d)?;
    if let (Some(key), false) = (channel.needs_chart_urls(), storage) {
        d.error(
            key,
            "this sends the chart as a link, and links need [storage] to serve the chart from",
            Some("add [storage] (kind = \"internal\" with [http] public_url, or kind = \"s3\"), or send the chart attached"),
        );
        return None;
    }
    let rate = rate.unwrap_or_else(|| {
        kind.default_rate()
            .and_then(|text| RateLimit::parse(text).ok())
    });
    let digest = match on_backlog.as_deref() {
        None => kind.digest_by_default() && rate.is_some(),
        Some("digest") => true,
        Some("queue") => false,
        Some(other) => {
            d.error(
                "on_backlog",
                format!("{other:?} is not a choice"),
                Some("\"digest\" (fold a long backlog into one summary) or \"queue\" (every notification waits its turn)"),
            );
            return None;
        }
    };
    if digest && rate.is_none() {
        d.error(
            "on_backlog",
            "a digest folds the backlog of a rate limit, and this destination has none",
            Some("set rate = \"20/min\", or on_backlog = \"queue\""),
        );
        return None;
    }
    if digest_after.is_some() && !digest {
        d.error(
            "digest_after",
            "has no effect unless on_backlog = \"digest\"",
            None,
        );
        return None;
    }
    let backlog = if digest {
        crate::rate::Backlog::Digest {
            after: digest_after.map_or(crate::rate::DEFAULT_DIGEST_AFTER, |s| s.0),
        }
    } else {
        crate::rate::Backlog::Queue
    };
    let retry = RetryPolicy {
        max_attempts: max_attempts.map_or(RetryPolicy::default().max_attempts, |n| n as u32),
        max_age: max_age.map_or(RetryPolicy::default().max_age, |s| s.0),
        ..RetryPolicy::default()
    };
    Some(Destination {
        name: name.to_string(),
        channel,
        retry,
        rate,
        template,
        suppress,
        backlog,
    })
}

/// Compile a destination's override templates now, not at the first alert.
fn check_template_dir(kind: ChannelKind, dir: &Path) -> Result<(), String> {
    let mut probe = crate::template::Templates::new(chrono_tz::UTC);
    probe.add_defaults(kind.templates());
    probe.add_overrides("probe", kind.name(), kind.templates(), dir)
}

/// Names that are safe in file names, metrics labels and queue names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
