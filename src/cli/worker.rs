//! `fanout worker`: the pipeline on RabbitMQ, with the HTTP server.

use super::*;

pub(super) async fn worker(
    config_path: Option<&Path>,
    pool: Option<&Path>,
    prefetch: Option<u16>,
) -> u8 {
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
    let Some(ingest) = ingest_or_say(&config) else {
        return BAD_INPUT;
    };
    let state = HttpState {
        images,
        ready: Some(ready.clone()),
        metrics: Some(metrics.clone()),
        actions: action_endpoint(&config),
        ingest,
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
