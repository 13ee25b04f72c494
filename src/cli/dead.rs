//! `fanout dead list|replay|purge`: the dead-letter queue.

use super::*;

#[derive(Subcommand)]
pub(super) enum DeadAction {
    /// Show dead letters (oldest first) with their stage and reason; all stay.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back to the queue they failed in, with a fresh
    /// attempt budget (default: every one there now).
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Drop every dead letter.
    Purge {
        #[command(flatten)]
        config: ConfigArg,
        /// Required: purging cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

pub(super) async fn dead(action: DeadAction) -> u8 {
    let config_path = match &action {
        DeadAction::List { config, .. }
        | DeadAction::Replay { config, .. }
        | DeadAction::Purge { config, .. } => config.config.clone(),
    };
    if let DeadAction::Purge { yes: false, .. } = action {
        eprintln!("fanout: purging drops every dead letter for good; add --yes to do it");
        return BAD_INPUT;
    }
    let Some((config, _demo)) = load_config(config_path.as_deref()).await else {
        return BAD_INPUT;
    };
    let Some(broker_config) = required_broker(&config, "for dead letters") else {
        return BAD_INPUT;
    };
    let Some(broker) = connect(&broker_config).await else {
        return SOME_FAILED;
    };
    let queue = broker.topology.dead.clone();
    let done = match action {
        DeadAction::List { limit, json, .. } => broker.dead_list(limit).await.map(|letters| {
            if json {
                for l in &letters {
                    println!("{}", serde_json::to_string(l).unwrap_or_default());
                }
            } else {
                println!("{:<9} {:<16} {:>8}  REASON", "STAGE", "FROM", "BYTES");
                for l in &letters {
                    println!(
                        "{:<9} {:<16} {:>8}  {}",
                        l.stage, l.route, l.bytes, l.reason
                    );
                }
                eprintln!("{} shown from {queue}", letters.len());
            }
        }),
        DeadAction::Replay { limit, .. } => {
            let limit = match limit {
                Some(n) => Ok(n),
                None => broker.dead_count().await.map(|n| n as usize),
            };
            match limit {
                Ok(limit) => broker.dead_replay(limit).await.map(|(sent, stuck)| {
                    println!("replayed {sent} from {queue}");
                    if stuck > 0 {
                        println!("{stuck} left: their queue is unknown to this version");
                    }
                }),
                Err(e) => Err(e),
            }
        }
        DeadAction::Purge { .. } => broker
            .dead_purge()
            .await
            .map(|n| println!("purged {n} from {queue}")),
    };
    broker.close().await;
    match done {
        Ok(()) => DELIVERED,
        Err(e) => {
            eprintln!("fanout: {e}");
            SOME_FAILED
        }
    }
}
