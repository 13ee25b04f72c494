//! The notification log on real stores (an SQLite file, the machine's
//! Redis): a delivery is sent once, across separate processes.

use crate::support::receiver::Receiver;
use crate::support::{fanout_in, write_file};

fn config(receiver: &Receiver, store_url: &str) -> String {
    format!(
        "[store]\nurl = \"{store_url}\"\n\n[destinations.hook]\nchannel = \"webhook\"\nurl = \"{}\"\n",
        receiver.url
    )
}

/// A job in an alert group of its own (a second job of one firing group
/// would join the group and not be sent, as in the worker).
fn job(id: &str) -> String {
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"g-{id}","title":"t"}},"targets":[{{"destination":"hook"}}]}}"#
    )
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Two runs of the same job, then one of another: the receiver sees two.
fn sent_once(store_url: &str, id: &str) {
    let receiver = Receiver::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "fanout.toml", &config(&receiver, store_url));
    let first = write_file(dir.path(), "a.json", &job(id));
    let other = write_file(dir.path(), "b.json", &job(&format!("{id}-b")));

    // A dry run to the outbox marks nothing as sent.
    fanout_in(
        dir.path(),
        &["send", &first, "--config", &cfg, "--outbox", "outbox"],
        None,
        &[],
    )
    .assert_code(0);
    let run = fanout_in(dir.path(), &["send", &first, "--config", &cfg], None, &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("delivered"), "{run}");
    let again = fanout_in(dir.path(), &["send", &first, "--config", &cfg], None, &[]);
    again.assert_code(0);
    assert!(again.stdout.contains("already sent"), "{again}");
    fanout_in(dir.path(), &["send", &other, "--config", &cfg], None, &[]).assert_code(0);

    let got = receiver.received();
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["x-fanout-delivery"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [format!("{id}/0/hook"), format!("{id}-b/0/hook")]);

    let check = fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
    let row = check
        .stdout
        .lines()
        .find(|l| l.starts_with("store"))
        .unwrap_or_default();
    assert!(row.contains("read and write ok"), "{check}");
}

#[test]
fn sqlite_sends_each_delivery_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state/fanout.db").display());
    sent_once(&url, &unique("once"));
    assert!(dir.path().join("state/fanout.db").is_file());
}

#[test]
fn redis_sends_each_delivery_once() {
    if std::net::TcpStream::connect("127.0.0.1:6379").is_err() {
        panic!(
            "Redis is not running on 127.0.0.1:6379: start it with \
             `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\"` (.ci/run does)"
        );
    }
    // Keys are per job id, unique per run; the guard removes them even
    // when an assertion fails.
    let id = unique("once");
    let guard = RedisKeys(format!("fanout:sent:{id}*"));
    sent_once("redis://127.0.0.1:6379/0", &id);
    assert_eq!(guard.keys().len(), 2, "{:?}", guard.keys());
    assert!(
        RedisKeys("fanout:sent:fanout-check-*".into())
            .keys()
            .is_empty(),
        "check left its probe behind"
    );
}

/// Redis keys matching a pattern, deleted on drop.
struct RedisKeys(String);

impl RedisKeys {
    fn conn() -> redis::Connection {
        redis::Client::open("redis://127.0.0.1:6379/0")
            .and_then(|c| c.get_connection())
            .expect("Redis on 127.0.0.1:6379")
    }

    fn keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(&self.0)
            .query(&mut Self::conn())
            .unwrap_or_default()
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let keys = self.keys();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut Self::conn());
        }
    }
}

/// The deliver stage's two store calls, on a real backend: one read of
/// the log entry with the group's record, one write of both — also when
/// many workers note sends in the same group at once.
async fn logged_with_the_group(store: &fanout::store::Store, id: &str) {
    use fanout::store::DeliveryKey;
    use serde_json::{json, Value};
    let key = |n: usize| DeliveryKey {
        job_id: id.to_string(),
        step: n,
        destination: "hook".into(),
    };
    let empty: (Option<String>, Option<Value>) = store.lookup(&key(0), "group", id).await.unwrap();
    assert_eq!(empty, (None, None));

    // Twenty sends noted in one group at once: the swap retries, and every
    // log entry and every increment lands.
    let writes = (0..20).map(|n| async move {
        store
            .record_sent_and_update(
                &key(n),
                &format!("sent {n}"),
                "group",
                id,
                |g: Option<Value>| {
                    let count = g.as_ref().and_then(|g| g["count"].as_u64()).unwrap_or(0);
                    (Some(json!({ "count": count + 1 })), ())
                },
            )
            .await
    });
    for result in futures::future::join_all(writes).await {
        result.unwrap();
    }
    for n in 0..20 {
        let (sent, group): (Option<String>, Option<Value>) =
            store.lookup(&key(n), "group", id).await.unwrap();
        assert_eq!(sent.as_deref(), Some(format!("sent {n}").as_str()));
        assert_eq!(group, Some(json!({ "count": 20 })));
    }
    // A change that leaves the record alone still logs the send.
    store
        .record_sent_and_update(&key(20), "sent 20", "group", id, |_: Option<Value>| {
            (None, ())
        })
        .await
        .unwrap();
    assert_eq!(
        store.was_sent(&key(20)).await.unwrap().as_deref(),
        Some("sent 20")
    );
    // A record this build cannot read is read as none, not as an error.
    store
        .update("group", id, |_: Option<Value>| (Some(json!([1, 2])), ()))
        .await
        .unwrap();
    let odd: (
        Option<String>,
        Option<std::collections::BTreeMap<String, u64>>,
    ) = store.lookup(&key(0), "group", id).await.unwrap();
    assert_eq!(odd, (Some("sent 0".to_string()), None));
}

#[tokio::test]
async fn sqlite_logs_a_send_and_notes_it_in_its_group_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fanout.db").display());
    let store = fanout::store::Store::open(&fanout::secret::Secret::new(url))
        .await
        .unwrap();
    logged_with_the_group(&store, &unique("group")).await;
}

#[tokio::test]
async fn redis_logs_a_send_and_notes_it_in_its_group_in_one_write() {
    let namespace = format!("{}:", unique("it"));
    let _guard = RedisKeys(format!("{namespace}*"));
    let store = fanout::store::Store::open_in(
        &fanout::secret::Secret::new("redis://127.0.0.1:6379/0"),
        &namespace,
    )
    .await
    .unwrap_or_else(|e| {
        panic!("Redis on 127.0.0.1:6379 ({e}): start it with `redis-server --daemonize yes` (.ci/run does)")
    });
    logged_with_the_group(&store, &unique("group")).await;
}

/// A slot within a bound is reserved; one past it is not, and reserves
/// nothing (the digest's question: how long would this wait?).
async fn slots_within_a_bound(store: &fanout::store::Store, scope: &str) {
    let limit = fanout::rate::RateLimit::parse("2/10s").unwrap();
    // Slots are spaced a little wider than the period (see `rate`).
    let period = limit.period_ms();
    let now = 1_000_000;
    let first = store
        .reserve_slot_within(scope, limit, 1, now, 2_000)
        .await
        .unwrap();
    let second = store
        .reserve_slot_within(scope, limit, 1, now, 2_000)
        .await
        .unwrap();
    assert_eq!((first, second), (Some(now), Some(now)));
    // The third would wait 10 s: refused within 2 s, and nothing taken…
    assert_eq!(
        store
            .reserve_slot_within(scope, limit, 1, now, 2_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .reserve_slot_within(scope, limit, 1, now + 9_000, 2_000)
            .await
            .unwrap(),
        Some(now + period)
    );
    // …so the unbounded reservation after it is the next one along.
    assert_eq!(
        store.reserve_slot(scope, limit, 1, now).await.unwrap(),
        now + period
    );
}

#[tokio::test]
async fn sqlite_reserves_a_slot_only_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = fanout::store::Store::open(&fanout::secret::Secret::new(url))
        .await
        .unwrap();
    slots_within_a_bound(&store, "bounded").await;
}

#[tokio::test]
async fn redis_reserves_a_slot_only_within_its_bound() {
    let namespace = unique("test-slots-");
    let _guard = RedisKeys(format!("{namespace}*"));
    let store = fanout::store::Store::open_in(
        &fanout::secret::Secret::new("redis://127.0.0.1:6379/0"),
        &namespace,
    )
    .await
    .unwrap_or_else(|e| {
        panic!("Redis on 127.0.0.1:6379 ({e}): start it with `redis-server --daemonize yes` (.ci/run does)")
    });
    slots_within_a_bound(&store, "bounded").await;
}
