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

/// Install the global subscriber. `RUST_LOG` (e.g. `fanout=debug`) wins
/// over the default level `info`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,headless_chrome=warn,tungstenite=warn"));
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
