//! `fanout enqueue`: validate a job and publish it to RabbitMQ.

use super::*;

pub(super) async fn enqueue(job: &str, config_path: Option<&Path>) -> u8 {
    let Some((config, _demo)) = load_config(config_path).await else {
        return BAD_INPUT;
    };
    let Some(broker_config) = required_broker(&config, "to enqueue") else {
        return BAD_INPUT;
    };
    let bytes = match read_job(job) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("fanout: {e:#}");
            return BAD_INPUT;
        }
    };
    // A bad job is refused here, not discovered by a worker later.
    let parsed = match fanout::job::decode::decode_job(&bytes) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("fanout: bad job: {e}");
            return BAD_INPUT;
        }
    };
    if let Err(e) = fanout::validate::validate(&parsed, &config) {
        eprintln!("fanout: bad job: {e}");
        return BAD_INPUT;
    }
    let Some(broker) = connect(&broker_config).await else {
        return SOME_FAILED;
    };
    // A job trimmed to fit travels trimmed: what the broker holds is
    // what the worker may take.
    let bytes = match parsed.alert.payload_trimmed {
        Some(_) => serde_json::to_vec(&parsed).unwrap_or(bytes),
        None => bytes,
    };
    match broker
        .publish(fanout::broker::JOB_KEY, &parsed.id, &bytes)
        .await
    {
        Ok(()) => {
            println!(
                "enqueued {} to {} (key {})",
                parsed.id,
                broker.topology.exchange,
                fanout::broker::JOB_KEY
            );
            DELIVERED
        }
        Err(e) => {
            eprintln!("fanout: {e}");
            SOME_FAILED
        }
    }
}
