//! Escalation chains on the machine's RabbitMQ with both stores (embedded
//! SQLite and Redis): waits that live in the broker across a worker kill,
//! acknowledge / silence / resolve signals sent with `fanout signal`, one
//! chain per alert group, signed action links, suppression shared by two
//! workers, `if_time` against the real clock, and `fanout status`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::rabbit::Declared;
use crate::support::receiver::{Received, Receiver};
use crate::support::worker::{hook, worker_config, WorkerProcess};
use crate::support::{fanout_in, free_port, wait_for, Run};

const SQLITE: &str = "[store]\nurl = \"sqlite://state.db\"\n";
const REDIS: &str = "[store]\nurl = \"redis://127.0.0.1:6379/\"\n";

/// One test's broker prefix, receiver, directory, config and store.
struct Bench {
    declared: Declared,
    receiver: Receiver,
    dir: tempfile::TempDir,
    cfg: String,
    _redis: Option<crate::support::redis::RedisKeys>,
}

impl Bench {
    /// `store` is [`SQLITE`] or [`REDIS`]; `extra` adds sections and
    /// destinations (`hook` is always there).
    fn new(store: &str, extra: &str) -> Self {
        let declared = Declared::new();
        let redis =
            (store == REDIS).then(|| crate::support::redis::RedisKeys::new(&declared.prefix));
        let receiver = Receiver::start(&[]);
        let dir = tempfile::tempdir().unwrap();
        let extra = format!("{store}{extra}{}", hook("hook2", &receiver, ""));
        let cfg = worker_config(dir.path(), &declared, &receiver, &extra);
        Self {
            declared,
            receiver,
            dir,
            cfg,
            _redis: redis,
        }
    }

    fn worker(&self, name: &str) -> WorkerProcess {
        WorkerProcess::start_as(self.dir.path(), &self.cfg, name, &[])
    }

    fn enqueue(&self, jobs: &[String]) {
        self.declared
            .publish_jobs(jobs.iter().map(|j| j.clone().into_bytes()).collect());
    }

    fn fanout(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--config", &self.cfg]);
        fanout_in(self.dir.path(), &all, None, &[])
    }

    /// The webhook bodies received for `group`, in arrival order.
    fn received(&self, group: &str) -> Vec<(Received, Value)> {
        self.receiver
            .received()
            .into_iter()
            .filter_map(|r| {
                let body: Value = serde_json::from_slice(&r.body).ok()?;
                (body["alert"]["group_id"] == group).then_some((r, body))
            })
            .collect()
    }

    fn wait_received(&self, group: &str, n: usize, limit: Duration) -> Vec<(Received, Value)> {
        wait_for(&format!("{n} deliveries for {group}"), limit, || {
            let got = self.received(group);
            (got.len() >= n).then_some(got)
        })
    }
}

fn chain_job(id: &str, group: &str, targets: &[&str], escalation: &str) -> String {
    let targets: Vec<String> = targets
        .iter()
        .map(|t| format!(r#"{{"destination":"{t}"}}"#))
        .collect();
    format!(
        r#"{{"version":1,"id":"{id}","alert":{{"group_id":"{group}","title":"disk full"}},
            "targets":[{}],"escalation":{escalation}}}"#,
        targets.join(",")
    )
}

fn secs(a: &Received, b: &Received) -> f64 {
    b.at.duration_since(a.at).as_secs_f64()
}

/// notify → wait 2s → notify → repeat 1: four deliveries in order, the
/// waits honoured, and a worker killed during the first wait while
/// another carries the chain on.
fn waits_live_in_the_broker(store: &str) {
    let bench = Bench::new(store, "");
    let first = bench.worker("first");
    bench.enqueue(&[chain_job(
        "w-1",
        "w",
        &["hook", "hook2"],
        r#"[{"notify":["hook"]},{"wait":"2s"},{"notify":["hook2"]},{"repeat":1}]"#,
    )]);
    bench.wait_received("w", 1, Duration::from_secs(15));
    // Kill it once the send is logged: a kill between the receiver's 200
    // and that write is the one window where a send may repeat (see
    // `store`), and not what this test is about.
    wait_for("the first send logged", Duration::from_secs(10), || {
        let status = bench.fanout(&["status", "w"]);
        status.stdout.contains("notified  hook").then_some(())
    });
    drop(first);
    let _second = bench.worker("second");
    let got = bench.wait_received("w", 4, Duration::from_secs(20));
    let seen = |(_, b): &(Received, Value)| {
        (
            b["destination"].as_str().unwrap().to_string(),
            b["step"].as_u64().unwrap(),
            b["round"].as_u64().unwrap(),
        )
    };
    // Steps with no wait between them (the last notify and the repeated
    // first one) go out together, in either order.
    let mut middle = vec![seen(&got[1]), seen(&got[2])];
    middle.sort();
    assert_eq!(seen(&got[0]), ("hook".into(), 0, 0));
    assert_eq!(middle, [("hook".into(), 0, 1), ("hook2".into(), 2, 0)]);
    assert_eq!(seen(&got[3]), ("hook2".into(), 2, 1));
    let (w1, w2) = (secs(&got[0].0, &got[1].0), secs(&got[2].0, &got[3].0));
    assert!((1.0..=3.0).contains(&w1), "first wait took {w1:.2}s");
    assert!((1.0..=3.0).contains(&w2), "second wait took {w2:.2}s");
    assert!(secs(&got[1].0, &got[2].0) < 1.0, "repeat sent at once");
    // Nothing more: the chain is over.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(bench.received("w").len(), 4);
    let status = bench.fanout(&["status", "w"]);
    status.assert_code(0);
    assert!(
        status.stdout.contains("finished: every step ran"),
        "{}",
        status.stdout
    );
}

#[test]
fn waits_live_in_the_broker_with_the_embedded_store() {
    waits_live_in_the_broker(SQLITE);
}

#[test]
fn waits_live_in_the_broker_with_redis() {
    waits_live_in_the_broker(REDIS);
}

/// Acknowledge, silence and resolve during waits, and a second firing job
/// for a running chain, all on one worker.
fn signals_steer_chains(store: &str) {
    let bench = Bench::new(store, "");
    let _worker = bench.worker("worker");
    let two_steps = r#"[{"notify":["hook"]},{"wait":"2s"},{"notify":["hook"]}]"#;
    bench.enqueue(&[
        chain_job("ack-1", "ack", &["hook"], two_steps),
        chain_job("sil-1", "sil", &["hook"], two_steps),
        chain_job(
            "res-1",
            "res",
            &["hook", "hook2"],
            r#"[{"notify":["hook","hook2"]},{"wait":"30s"},{"notify":["hook"]}]"#,
        ),
        chain_job("two-1", "two", &["hook"], two_steps),
    ]);
    for group in ["ack", "sil", "two"] {
        bench.wait_received(group, 1, Duration::from_secs(15));
    }
    bench.wait_received("res", 2, Duration::from_secs(15));
    bench
        .fanout(&["signal", "ack", "acknowledge", "--by", "ann"])
        .assert_code(0);
    let silenced_at = Instant::now();
    bench
        .fanout(&["signal", "sil", "silence", "--until", "4s"])
        .assert_code(0);
    bench.enqueue(&[chain_job("two-2", "two", &["hook"], two_steps)]);
    bench.fanout(&["signal", "res", "resolve"]).assert_code(0);

    // Silence: the second step waits for the end of the silence.
    let sil = bench.wait_received("sil", 2, Duration::from_secs(15));
    let after = sil[1].0.at.duration_since(silenced_at).as_secs_f64();
    assert!(
        (3.5..=6.0).contains(&after),
        "the silenced step ran {after:.2}s after the silence began"
    );
    // Resolve: one resolved notice per notified destination.
    let res = bench.wait_received("res", 4, Duration::from_secs(15));
    let mut resolved: Vec<&str> = res[2..]
        .iter()
        .map(|(_, b)| {
            assert_eq!(b["alert"]["status"], "resolved", "{b}");
            b["destination"].as_str().unwrap()
        })
        .collect();
    resolved.sort();
    assert_eq!(resolved, ["hook", "hook2"]);
    // Two firing jobs, one chain: both steps come from the first job.
    let two = bench.wait_received("two", 2, Duration::from_secs(15));
    assert!(two.iter().all(|(_, b)| b["job_id"] == "two-1"));

    // A second resolve changes nothing; acknowledged sends no more.
    bench.fanout(&["signal", "res", "resolve"]).assert_code(0);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(bench.received("ack").len(), 1, "acknowledged, yet sent");
    assert_eq!(bench.received("res").len(), 4);
    assert_eq!(bench.received("two").len(), 2);

    let ack = bench.fanout(&["status", "ack"]);
    ack.assert_code(0);
    assert!(
        ack.stdout.contains("status    acknowledged (by ann)"),
        "{}",
        ack.stdout
    );
    let two = bench.fanout(&["status", "two"]);
    assert!(
        two.stdout.contains("attached  1 more firing job"),
        "{}",
        two.stdout
    );
    let res = bench.fanout(&["status", "res"]);
    assert!(res.stdout.contains("status    resolved"), "{}", res.stdout);
    bench.fanout(&["status", "nobody"]).assert_code(1);
}

#[test]
fn signals_steer_chains_with_the_embedded_store() {
    signals_steer_chains(SQLITE);
}

#[test]
fn signals_steer_chains_with_redis() {
    signals_steer_chains(REDIS);
}

#[test]
fn a_resolved_group_starts_a_new_chain_for_its_next_firing_job() {
    let bench = Bench::new(SQLITE, "");
    let _worker = bench.worker("worker");
    bench.enqueue(&[chain_job("again-1", "again", &["hook"], "[]")]);
    bench.wait_received("again", 1, Duration::from_secs(15));
    bench.fanout(&["signal", "again", "resolve"]).assert_code(0);
    bench.wait_received("again", 2, Duration::from_secs(15));
    bench.enqueue(&[chain_job("again-2", "again", &["hook"], "[]")]);
    let got = bench.wait_received("again", 3, Duration::from_secs(15));
    assert_eq!(got[2].1["job_id"], "again-2");
    assert_eq!(got[2].1["alert"]["status"], "firing");
}

#[test]
fn action_links_act_on_post_only_and_refuse_forgeries() {
    let port = free_port();
    let key = "k".repeat(40);
    let extra = format!("[actions]\nsigning_key = \"{key}\"\nttl = \"1h\"\n");
    let bench = Bench::new(SQLITE, &extra);
    // The worker's HTTP server on a known port, as public_url says.
    let text = std::fs::read_to_string(&bench.cfg).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}/\""),
    );
    std::fs::write(&bench.cfg, text).unwrap();
    let worker = bench.worker("worker");
    bench.enqueue(&[chain_job(
        "act-1",
        "act",
        &["hook"],
        r#"[{"notify":["hook"]},{"wait":"3s"},{"notify":["hook"]}]"#,
    )]);
    let got = bench.wait_received("act", 1, Duration::from_secs(15));
    let ack = got[0].1["actions"]["acknowledge"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ack.starts_with(&format!(
            "http://127.0.0.1:{port}/actions/acknowledge/act?exp="
        )),
        "{ack}"
    );
    let http = reqwest::blocking::Client::new();

    // GET shows a page and changes nothing.
    let page = http.get(&ack).send().unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let page = page.text().unwrap();
    assert!(page.contains("<form method=\"post\">"), "{page}");
    let status = bench.fanout(&["status", "act"]);
    assert!(
        status.stdout.contains("status    firing"),
        "{}",
        status.stdout
    );

    // Forged and expired links are refused, GET or POST.
    let forged = format!("{}0", &ack[..ack.len() - 1]);
    let forged = if forged == ack {
        format!("{}1", &ack[..ack.len() - 1])
    } else {
        forged
    };
    let other_group = ack.replace("/act?", "/other?");
    let links = fanout::actions::ActionLinks::new(
        fanout::images::signing::Signer::new(fanout::secret::Secret::new(key)),
        &url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
        Duration::from_secs(3600),
    );
    let expired = links.url(fanout::actions::Action::Acknowledge, "act", 1_000_000);
    for bad in [&forged, &other_group, &expired] {
        assert_eq!(http.get(bad).send().unwrap().status(), 403, "{bad}");
        assert_eq!(http.post(bad).send().unwrap().status(), 403, "{bad}");
    }
    // A link the server made with the same key for the same action works.
    let fresh = links.url(
        fanout::actions::Action::Acknowledge,
        "act",
        fanout::clock::unix_now() + 60,
    );
    assert_eq!(http.get(&fresh).send().unwrap().status(), 200);

    // POST acts: the second step is never sent.
    let done = http.post(&ack).send().unwrap();
    assert_eq!(done.status(), 200);
    wait_for("the acknowledge to land", Duration::from_secs(10), || {
        let s = bench.fanout(&["status", "act"]);
        s.stdout
            .contains("acknowledged (by action link)")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(bench.received("act").len(), 1);
    // The signing key never shows in the log, nor does a link's signature.
    let log = worker.log_text();
    let sig = ack.rsplit("sig=").next().unwrap();
    assert!(
        !log.contains(&"k".repeat(40)) && !log.contains(sig),
        "{log}"
    );
}

#[test]
fn fifty_repeats_send_one_and_the_next_after_the_window_counts_them() {
    let bench = Bench::new(REDIS, "");
    // Two workers share the Redis window; both consume the jobs.
    let a = bench.worker("a");
    let b = bench.worker("b");
    let job = |i: usize| {
        format!(
            r#"{{"version":1,"id":"rep-{i}","alert":{{"group_id":"rep-{i}","title":"NPE",
                "labels":{{"app":"billing","where":"Invoice.java:42"}}}},
                "targets":[{{"destination":"hook"}}],
                "suppress":{{"key":"{{{{ alert.labels.app }}}}:{{{{ alert.labels.where }}}}","window":"5s"}}}}"#
        )
    };
    bench.enqueue(&(0..50).map(job).collect::<Vec<_>>());
    let first = wait_for("the first one", Duration::from_secs(20), || {
        bench.receiver.received().first().map(|r| r.at)
    });
    let held = |w: &WorkerProcess| w.log_text().matches("Suppressed a repeat.").count();
    wait_for("49 jobs suppressed", Duration::from_secs(20), || {
        (held(&a) + held(&b) >= 49).then_some(())
    });
    assert!(held(&a) > 0 && held(&b) > 0, "both workers judged jobs");
    let sent: Vec<String> = bench
        .receiver
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["job_id"].to_string())
        .collect();
    assert_eq!(sent.len(), 1, "sent: {sent:?}");
    // After the window, the next one goes out and says how many were held.
    let window_end =
        (first + Duration::from_millis(5500)).saturating_duration_since(Instant::now());
    std::thread::sleep(window_end);
    bench.enqueue(&[job(50)]);
    let got = wait_for(
        "the next one after the window",
        Duration::from_secs(15),
        || {
            let r = bench.receiver.received();
            (r.len() >= 2).then_some(r)
        },
    );
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["job_id"], "rep-50");
    assert_eq!(body["suppressed"]["count"], 49, "{body}");
    assert_eq!(body["suppressed"]["window"], "5s");
    assert_eq!(
        body["suppressed"]["text"],
        "…and 49 more like this in the last 5s"
    );
}

#[test]
fn a_destination_default_suppresses_jobs_that_set_none() {
    let extra = "[destinations.quiet]\nchannel = \"webhook\"\nurl = \"URL\"\ntimeout = \"5s\"\n\
                 suppress = { key = \"{{ alert.title }}\", window = \"1h\" }\n";
    let bench = Bench::new(SQLITE, "");
    let text =
        std::fs::read_to_string(&bench.cfg).unwrap() + &extra.replace("URL", &bench.receiver.url);
    std::fs::write(&bench.cfg, text).unwrap();
    let _worker = bench.worker("worker");
    let jobs: Vec<String> = (0..5)
        .map(|i| {
            chain_job(
                &format!("q-{i}"),
                &format!("q-{i}"),
                &["quiet", "hook"],
                "[]",
            )
        })
        .collect();
    bench.enqueue(&jobs);
    wait_for("5 to hook, 1 to quiet", Duration::from_secs(20), || {
        let r = bench.receiver.received();
        (r.len() >= 6).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let to = |d: &str| {
        bench
            .receiver
            .received()
            .iter()
            .filter(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["destination"] == d)
            .count()
    };
    assert_eq!((to("hook"), to("quiet")), (5, 1));
}

#[test]
fn if_time_runs_the_next_step_only_inside_its_window_on_the_real_clock() {
    let bench = Bench::new(SQLITE, "");
    let _worker = bench.worker("worker");
    let now = chrono::Utc::now();
    let hm = |h: i64| {
        (now + chrono::Duration::hours(h))
            .format("%H:%M")
            .to_string()
    };
    let escalation = format!(
        r#"[{{"if_time":{{"from":"{}","to":"{}","tz":"UTC"}}}},{{"notify":["hook"]}},
            {{"if_time":{{"from":"{}","to":"{}","tz":"UTC"}}}},{{"notify":["hook2"]}},
            {{"notify":["hook"]}}]"#,
        hm(-1),
        hm(1),
        hm(2),
        hm(3)
    );
    bench.enqueue(&[chain_job("t-1", "t", &["hook", "hook2"], &escalation)]);
    let got = bench.wait_received("t", 2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    let mut steps: Vec<(String, u64)> = bench
        .received("t")
        .iter()
        .map(|(_, b)| {
            (
                b["destination"].as_str().unwrap().to_string(),
                b["step"].as_u64().unwrap(),
            )
        })
        .collect();
    // Steps 1 and 4 run together (no wait between): either order.
    steps.sort();
    assert_eq!(
        steps,
        [("hook".to_string(), 1), ("hook".to_string(), 4)],
        "{got:?}"
    );
}

#[test]
fn bad_signals_are_dead_lettered_with_why_and_the_worker_goes_on() {
    let bench = Bench::new(SQLITE, "");
    let _worker = bench.worker("worker");
    bench.enqueue(&[
        r#"{"version":1,"signal":"silence","group_id":"g"}"#.to_string(),
        r#"{"version":1,"signal":"silence","group_id":"g","until":"whenever"}"#.to_string(),
        r#"{"version":1,"signal":"acknowledge","group_id":"no spaces"}"#.to_string(),
        r#"{"version":1,"signal":"snooze","group_id":"g"}"#.to_string(),
        r#"{"version":1,"signal":"acknowledge","group_id":"never-fired"}"#.to_string(),
        chain_job("after-1", "after", &["hook"], "[]"),
    ]);
    bench.wait_received("after", 1, Duration::from_secs(15));
    let mut reasons = Vec::new();
    wait_for("four dead letters", Duration::from_secs(10), || {
        while let Some((_, props)) = bench.declared.get_dead() {
            reasons.push(crate::support::worker::header(&props, "x-fanout-reason"));
        }
        (reasons.len() >= 4).then_some(())
    });
    reasons.sort();
    let joined = reasons.join("\n");
    for needle in [
        "until: a silence needs an end",
        "until: \"whenever\" is neither an RFC 3339 time nor a duration",
        "group_id: use 1 to 200",
        "signal: unknown variant `snooze`",
    ] {
        assert!(joined.contains(needle), "{needle:?} not in:\n{joined}");
    }
    // A signal for a group that never fired is harmless: acked, not dead.
    std::thread::sleep(Duration::from_millis(500));
    assert!(bench.declared.get_dead().is_none());
}

#[test]
fn a_resolve_step_resolves_the_group_and_tells_whoever_was_notified() {
    let bench = Bench::new(SQLITE, "");
    let _worker = bench.worker("worker");
    bench.enqueue(&[chain_job(
        "end-1",
        "end",
        &["hook", "hook2"],
        r#"[{"notify":["hook"]},{"wait":"1s"},{"resolve":true}]"#,
    )]);
    let got = bench.wait_received("end", 2, Duration::from_secs(15));
    assert_eq!(got[0].1["alert"]["status"], "firing");
    assert_eq!(got[1].1["alert"]["status"], "resolved");
    assert_eq!(got[1].1["destination"], "hook", "only hook was notified");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(bench.received("end").len(), 2);
    let status = bench.fanout(&["status", "end"]);
    assert!(
        status.stdout.contains("status    resolved (by escalation)"),
        "{}",
        status.stdout
    );
}
