//! `fanout signal`: acknowledge, resolve, silence or unsilence an alert group.

use super::*;

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum SignalArg {
    Acknowledge,
    Resolve,
    Silence,
    Unsilence,
}

pub(super) async fn send_signal(
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
