//! `fanout check`: the config validated and every connection it names probed.

use super::*;

/// Chromium starts, Grafana takes the token, the store round-trips.
pub(super) async fn check_charts(config: &Config) -> Vec<CheckRow> {
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

pub(super) async fn check(
    config_path: Option<&Path>,
    offline: bool,
    outbox: Option<PathBuf>,
) -> u8 {
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
