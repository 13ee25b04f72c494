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
/// from `info`, the libraries' from `warn`. chromiumoxide warns about
/// each DevTools message it cannot parse (newer Chromiums send events its
/// protocol does not know); fanout answers what it needs, so those are
/// for `RUST_LOG=chromiumoxide=debug`, not for an operator.
const DEFAULT_FILTER: &str = "info,chromiumoxide=error,tungstenite=warn";

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
