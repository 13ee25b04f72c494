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

fn job(id: &str) -> String {
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"g","title":"t"}},"targets":[{{"destination":"hook"}}]}}"#
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
