//! Logs: one line per event on stderr, text or JSON.
//!
//! stderr is written line by line (Rust's stderr is unbuffered and the
//! formatter writes each event whole), so logs survive `nohup` and docker
//! where a block-buffered stdout lost them. Secrets never reach a log line:
//! they are [`crate::secret::Secret`]s, which print as `***`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What is logged unless `RUST_LOG` says otherwise: fanout's own events
/// from `info`, the libraries' from `warn`. headless_chrome's transport
/// is taken from `error`: when a browser shuts down in order, its reader
/// and event threads warn that the other side has already gone ("Couldn't
/// send message to transport loop", "Couldn't send browser an event"),
/// the normal end of every Chromium run and nothing for an operator to act
/// on. A render that really fails returns its error to fanout, which logs
/// it with the chart and the reason.
const DEFAULT_FILTER: &str =
    "info,headless_chrome=warn,headless_chrome::browser::transport=error,tungstenite=warn";

/// Install the global subscriber. `RUST_LOG` (e.g. `fanout=debug`) wins
/// over the default level `info`.
pub fn init(format: LogFormat) {
    // An empty RUST_LOG (a compose file's `RUST_LOG: ${RUST_LOG}` with the
    // variable unset) means the default, not "log nothing".
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (tests): keep the first one.
    let _ = result;
}
