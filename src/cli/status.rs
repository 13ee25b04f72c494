//! `fanout status`: an alert group as the store holds it.

use super::*;

pub(super) async fn status(group: &str, config_path: Option<&Path>, json: bool) -> u8 {
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
        return print_json(&state);
    }
    print!(
        "{}",
        fanout::chain::status::report(&state, chrono::Utc::now(), config.templates.timezone)
    );
    DELIVERED
}
