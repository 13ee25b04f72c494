//! Malformed jobs: every one is refused with exit status 2 and a message
//! that names what is wrong, and nothing panics.

use crate::support::fanout;

const GOOD: &str = r#"{"version":1,"id":"j-1","alert":{"group_id":"g-1","title":"t"},
  "targets":[{"destination":"ops-mail"},{"destination":"dba-mail"}]}"#;

fn refused(bytes: &[u8], expect: &str) {
    let run = fanout(&["send", "-"], Some(bytes));
    run.assert_code(2);
    assert!(
        run.stderr.contains(expect),
        "expected {expect:?} for input {:?}\n{run}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
}

#[test]
fn the_good_job_is_accepted() {
    // The corpus below is a mutation of this job: prove the base is good.
    let run = fanout(&["send", "-"], Some(GOOD.as_bytes()));
    run.assert_code(0);
}

#[test]
fn malformed_jobs_are_refused_with_their_json_path() {
    let cases: Vec<(String, &str)> = vec![
        (GOOD[..40].to_string(), "bad job: not JSON: EOF while parsing"),
        (String::new(), "not JSON"),
        ("[1,2,3]".into(), "expected a JSON object"),
        (GOOD.replace("\"version\":1", "\"version\":\"1\""), "version: invalid type: string \"1\""),
        (GOOD.replace("\"version\":1", "\"version\":2"), "version: unsupported version 2"),
        (GOOD.replace("\"version\":1,", ""), "missing field `version`"),
        (GOOD.replace("\"title\":\"t\"", "\"title\":42"), "alert.title: invalid type: integer `42`"),
        (GOOD.replace("{\"destination\":\"dba-mail\"}", "{\"destinaton\":\"dba-mail\"}"), "targets[1]: missing field `destination` (`destinaton` is not a field: a misspelling?)"),
        (GOOD.replace("dba-mail", "ops-mal"), "targets[1].destination: unknown destination \"ops-mal\""),
        (GOOD.replace("\"alert\"", "\"priority\":1,\"alert\""), "priority: unknown field `priority`"),
        (GOOD.replace("\"severity\"", "x").replace("\"title\":\"t\"", "\"title\":\"t\",\"severity\":\"urgent\""), "alert.severity: unknown variant `urgent`"),
        (GOOD.replace("\"targets\"", "\"escalation\":[{\"notify\":[\"ops-mail\"]},{\"wait\":\"5 fortnights\"}],\"targets\""), "escalation[1].wait"),
        (GOOD.replace("\"targets\"", "\"escalation\":[{\"wait\":\"25h\"},{\"repeat\":9}],\"targets\""), "escalation[0].wait: 1day 1h is outside 1s..=24h"),
        (GOOD.replace("\"targets\"", "\"escalation\":[{\"wait\":\"25h\"},{\"repeat\":9}],\"targets\""), "escalation[1].repeat: 9 is outside 1..=5"),
        (GOOD.replace("\"targets\"", "\"escalation\":[{\"notify\":[\"sre-mail\"]}],\"targets\""), "escalation[0].notify[0]: \"sre-mail\" is not one of this job's targets"),
        (GOOD.replace("{\"destination\":\"ops-mail\"}", "{\"destination\":\"ops-mail\",\"to\":[\"oncall@\"]}"), "targets[0].to[0]: \"oncall@\" is not an email address"),
        (GOOD.replace("{\"destination\":\"ops-mail\"}", "{\"destination\":\"ops-mail\",\"channel_id\":\"C1\"}"), "targets[0].channel_id: is not an override for email destination \"ops-mail\""),
        (GOOD.replace("\"id\":\"j-1\"", "\"id\":\"../../etc/passwd\""), "id: use 1 to 128 of letters"),
        (GOOD.replace("\"targets\"", "\"charts\":[{\"width\":50}],\"targets\""), "charts[0]: a chart has exactly one of grafana or url"),
        (GOOD.replace("\"targets\"", "\"charts\":[{\"width\":50}],\"targets\""), "charts[0].width: 50 is outside 100..=4000"),
        (r#"{"version":1,"signal":"acknowledge","group_id":"g"}"#.into(), "signal: this is a signal, not a job"),
        (GOOD.replace("\"targets\"", "\"escalation\":[{\"notify\":[\"ops-mail\"]},{\"resolve\":true}],\"targets\""), "escalation[1].resolve: comes right after a notify; put a wait between"),
        (GOOD.replace("\"targets\"", "\"escalation\":[{\"resolve\":true},{\"wait\":\"1s\"}],\"targets\""), "escalation[0].resolve: resolve must be the last step"),
    ];
    for (input, expect) in cases {
        refused(input.as_bytes(), expect);
    }
}

#[test]
fn invalid_utf8_and_huge_jobs_are_refused() {
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes[30] = 0xff;
    refused(&bytes, "not JSON");

    // Its alert itself is the bulk: refused, with its real size.
    let mut huge: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    huge["alert"]["message"] = "x".repeat(10 * 1024 * 1024).into();
    let huge = serde_json::to_vec(&huge).unwrap();
    refused(
        &huge,
        &format!("job is {} bytes, over the 1048576-byte limit", huge.len()),
    );
    refused(&huge, "its alert itself is too big");
    // Past what fanout reads at all, the size is still the real one.
    let mut beyond = GOOD.as_bytes().to_vec();
    beyond.resize(fanout::job::MAX_READ_BYTES + 12_345, b' ');
    refused(&beyond, &format!("message is {} bytes", beyond.len()));
}

#[test]
fn a_missing_job_file_is_a_clear_error() {
    let run = fanout(&["send", "/nonexistent/job.json"], None);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains("cannot read job file /nonexistent/job.json"),
        "{run}"
    );
}

mod fuzz {
    use proptest::prelude::*;

    use fanout::config::Config;
    use fanout::job::{decode, Inbound};
    use fanout::validate::validate;

    fn config() -> Config {
        Config::embedded("https://localhost:1", "demo-token").expect("embedded default")
    }

    fn check(bytes: &[u8], config: &Config) {
        // Must return, Ok or Err, never panic.
        if let Ok(Inbound::Job(job)) = decode(bytes) {
            let _ = validate(&job, config);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check(&bytes, &config());
        }

        #[test]
        fn mutated_jobs_never_panic(
            at in 0usize..2000,
            byte in any::<u8>(),
            cut in 0usize..2000,
        ) {
            let mut bytes = std::fs::read(crate::support::repo().join("examples/jobs/firing.json")).unwrap();
            let at = at % bytes.len();
            bytes[at] = byte;
            bytes.truncate(bytes.len() - cut % bytes.len() / 4);
            check(&bytes, &config());
        }
    }
}
