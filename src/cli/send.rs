//! `fanout send`: one job in this process, no broker.

use super::*;

pub(super) async fn send(job: &str, config_path: Option<&Path>, outbox: Option<PathBuf>) -> u8 {
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
