//! `fanout serve`: the HTTP server alone.

use super::*;

pub(super) async fn serve(config_path: Option<&Path>) -> u8 {
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
    let Some(ingest) = ingest_or_say(&config) else {
        return BAD_INPUT;
    };
    // The ingest counters and latency; the worker-only series stay at 0.
    let state = HttpState {
        images,
        actions: action_endpoint(&config),
        ingest,
        metrics: Some(std::sync::Arc::new(fanout::metrics::Metrics::default())),
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
