//! The fake's own tests: each check can fail, and the happy paths pass.

use super::*;

const TOKEN: &str = "xoxb-fake-test-token";
const ALERTS: &str = "C0ALERTS01";
const OUTSIDE: &str = "C0OUTSIDE1";

fn start_fake() -> FakeSlack {
    FakeSlack::start(
        TOKEN,
        &[
            FakeChannel {
                id: ALERTS,
                name: "alerts",
                member: true,
            },
            FakeChannel {
                id: OUTSIDE,
                name: "outside",
                member: false,
            },
        ],
    )
}

/// What the fake answered, the body parsed as JSON when it is JSON.
struct Got {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

impl Got {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert_eq!(
            (self.status, &self.body["ok"]),
            (200, &json!(true)),
            "{}",
            self.body
        );
        self
    }
}

fn send(request: reqwest::blocking::RequestBuilder) -> Got {
    let response = request.send().expect("the fake answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Got {
        status,
        retry_after,
        body,
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn post_json(fake: &FakeSlack, method: &str, body: Value) -> Got {
    let url = format!("{}{method}", fake.api_url());
    send(http().post(url).bearer_auth(TOKEN).json(&body))
}

fn post_form(fake: &FakeSlack, method: &str, form: &[(&str, &str)]) -> Got {
    let url = format!("{}{method}", fake.api_url());
    send(http().post(url).bearer_auth(TOKEN).form(form))
}

/// files.getUploadURLExternal as a form: (upload_url, file_id).
fn ticket(fake: &FakeSlack, filename: &str, length: usize) -> (String, String) {
    let length = length.to_string();
    let got = post_form(
        fake,
        "files.getUploadURLExternal",
        &[("filename", filename), ("length", &length)],
    );
    got.assert_ok();
    let url = got.body["upload_url"].as_str().unwrap().to_string();
    let id = got.body["file_id"].as_str().unwrap().to_string();
    (url, id)
}

#[test]
fn slack_fake_wants_the_bearer_token() {
    let fake = start_fake();
    let url = format!("{}auth.test", fake.api_url());
    // A token in the body is not enough: the header is what counts.
    let no_header = send(http().post(&url).form(&[("token", TOKEN)]));
    assert_eq!((no_header.status, no_header.error()), (200, "not_authed"));
    let wrong = send(http().post(&url).bearer_auth("xoxb-someone-else"));
    assert_eq!(wrong.error(), "invalid_auth");
    let right = send(http().get(&url).bearer_auth(TOKEN));
    right.assert_ok();
    assert_eq!(right.body["user_id"], "U0FAKE");
    assert_eq!(right.body["bot_id"], "B0FAKE");

    let calls = fake.calls_of("auth.test");
    let summary: Vec<_> = calls.iter().map(|c| (c.ok, c.error.clone())).collect();
    assert_eq!(
        summary,
        [
            (false, Some("not_authed".to_string())),
            (false, Some("invalid_auth".to_string())),
            (true, None)
        ]
    );
    assert_eq!(calls[0].params["token"], TOKEN);
    assert_eq!(
        calls[2].headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert!(calls[0].at <= calls[1].at && calls[1].at <= calls[2].at);

    let unknown = post_json(&fake, "chat.postMessages", json!({ "channel": ALERTS }));
    assert_eq!((unknown.status, unknown.error()), (404, "unknown_method"));
    let last = fake.calls().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.status),
        ("chat.postMessages", 404)
    );
}

#[test]
fn slack_fake_checks_the_channel() {
    let fake = start_fake();
    let unknown = post_json(
        &fake,
        "chat.postMessage",
        json!({ "channel": "C0NOSUCH01", "text": "hi" }),
    );
    assert_eq!(
        (unknown.status, unknown.error()),
        (200, "channel_not_found")
    );
    let outside = post_json(
        &fake,
        "chat.postMessage",
        json!({ "channel": OUTSIDE, "text": "hi" }),
    );
    assert_eq!(outside.error(), "not_in_channel");
    let missing = post_json(&fake, "chat.postMessage", json!({ "text": "hi" }));
    assert_eq!(missing.error(), "channel_not_found");
    // Slack takes a channel name for chat.postMessage and answers the id.
    let by_name = post_json(
        &fake,
        "chat.postMessage",
        json!({ "channel": "#alerts", "text": "hi" }),
    );
    by_name.assert_ok();
    assert_eq!(by_name.body["channel"], ALERTS);
    assert_eq!(fake.messages("alerts").len(), 1);
    assert!(fake.messages(OUTSIDE).is_empty());

    let info = send(
        http()
            .get(format!(
                "{}conversations.info?channel={OUTSIDE}",
                fake.api_url()
            ))
            .bearer_auth(TOKEN),
    );
    info.assert_ok();
    assert_eq!(
        info.body["channel"],
        json!({ "id": OUTSIDE, "name": "outside", "is_member": false })
    );
    let no_such = post_form(&fake, "conversations.info", &[("channel", "C0NOSUCH01")]);
    assert_eq!(no_such.error(), "channel_not_found");
}

#[test]
fn slack_fake_checks_message_content() {
    let fake = start_fake();
    let post = |body: Value| post_json(&fake, "chat.postMessage", body);
    assert_eq!(post(json!({ "channel": ALERTS })).error(), "no_text");
    assert_eq!(
        post(json!({ "channel": ALERTS, "text": "", "blocks": [] })).error(),
        "no_text"
    );
    let long = "x".repeat(MAX_TEXT + 1);
    assert_eq!(
        post(json!({ "channel": ALERTS, "text": long })).error(),
        "msg_too_long"
    );

    let header = |text: String| {
        let text = json!({ "type": "plain_text", "text": text });
        json!([{ "type": "header", "text": text }])
    };
    let section =
        |text: String| json!([{ "type": "section", "text": { "type": "mrkdwn", "text": text } }]);
    let divider = json!({ "type": "divider" });
    for blocks in [
        json!({ "type": "divider" }),
        json!([{ "text": "no type" }]),
        json!(vec![divider.clone(); MAX_BLOCKS + 1]),
        header("h".repeat(MAX_HEADER_TEXT + 1)),
        json!([{ "type": "header", "text": { "type": "mrkdwn", "text": "*bold*" } }]),
        section("s".repeat(MAX_SECTION_TEXT + 1)),
        json!([{ "type": "section" }]),
    ] {
        let got = post(json!({ "channel": ALERTS, "text": "fallback", "blocks": blocks }));
        assert_eq!(got.error(), "invalid_blocks", "{blocks}");
    }
    let bad_inside = json!([{ "color": "#d00", "blocks": header("h".repeat(151)) }]);
    let got = post(json!({ "channel": ALERTS, "attachments": bad_inside }));
    assert_eq!(got.error(), "invalid_attachments");
    assert!(fake.messages(ALERTS).is_empty());

    // At the limits, as JSON with a charset, and as a form with JSON strings.
    let json_utf8 = http()
        .post(format!("{}chat.postMessage", fake.api_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json; charset=utf-8");
    let top = send(
        json_utf8.body(
            json!({
                "channel": ALERTS,
                "text": "fallback",
                "blocks": [
                    header("h".repeat(MAX_HEADER_TEXT))[0],
                    section("s".repeat(MAX_SECTION_TEXT))[0],
                ],
            })
            .to_string(),
        ),
    );
    top.assert_ok();
    let ts = top.body["ts"].as_str().unwrap().to_string();
    assert_eq!(top.body["message"]["ts"], ts.as_str());
    let (secs, micros) = ts.split_once('.').unwrap();
    assert!(
        secs.len() >= 10 && secs.bytes().all(|b| b.is_ascii_digit()),
        "{ts}"
    );
    assert!(
        micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit()),
        "{ts}"
    );

    let attachments = json!([{ "color": "#d00", "text": "details" }]).to_string();
    let reply = post_form(
        &fake,
        "chat.postMessage",
        &[
            ("channel", ALERTS),
            ("thread_ts", &ts),
            ("reply_broadcast", "true"),
            ("attachments", &attachments),
        ],
    );
    reply.assert_ok();
    assert_eq!(reply.body["message"]["thread_ts"], ts.as_str());
    let reply_ts = reply.body["ts"].as_str().unwrap().to_string();
    assert!(reply_ts > ts, "{reply_ts} after {ts}");

    // Threads hang off earlier top-level messages only.
    let orphan = post(json!({ "channel": ALERTS, "text": "r", "thread_ts": "1700000000.000001" }));
    assert_eq!(orphan.error(), "thread_not_found");
    let nested = post(json!({ "channel": ALERTS, "text": "r", "thread_ts": reply_ts }));
    assert_eq!(nested.error(), "thread_not_found");
    let flag =
        post(json!({ "channel": ALERTS, "text": "r", "thread_ts": ts, "reply_broadcast": "yes" }));
    assert_eq!(flag.error(), "invalid_arguments");

    let plain = send(
        http()
            .post(format!("{}chat.postMessage", fake.api_url()))
            .bearer_auth(TOKEN)
            .header("content-type", "text/plain")
            .body("channel=C0ALERTS01&text=hi"),
    );
    assert_eq!(plain.error(), "invalid_form_data");
    let broken = send(
        http()
            .post(format!("{}chat.postMessage", fake.api_url()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{\"channel\":"),
    );
    assert_eq!(broken.error(), "invalid_json");

    let messages = fake.messages(ALERTS);
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (messages[0].ts.as_str(), messages[0].thread_ts.as_deref()),
        (ts.as_str(), None)
    );
    assert_eq!(messages[0].text.as_deref(), Some("fallback"));
    assert_eq!(messages[0].blocks[0]["type"], "header");
    assert_eq!(messages[0].attachments, Value::Null);
    assert!(!messages[0].reply_broadcast);
    assert_eq!(messages[1].thread_ts.as_deref(), Some(ts.as_str()));
    assert_eq!(
        (messages[1].text.as_deref(), messages[1].reply_broadcast),
        (None, true)
    );
    assert_eq!(messages[1].attachments[0]["text"], "details");
    assert!(messages[0].at <= messages[1].at);
    // What a form sent is recorded as strings.
    let calls = fake.calls_of("chat.postMessage");
    let form = calls
        .iter()
        .find(|c| c.ok && c.params["thread_ts"] == ts.as_str());
    assert_eq!(form.unwrap().params["reply_broadcast"], "true");
}

#[test]
fn slack_fake_upload_flow_shares_into_a_thread() {
    let fake = start_fake();
    let parent = post_json(
        &fake,
        "chat.postMessage",
        json!({ "channel": ALERTS, "text": "CPU high" }),
    );
    let parent = parent.assert_ok().body["ts"].as_str().unwrap().to_string();

    let png = b"\x89PNG\r\n\x1a\n not really a chart".to_vec();
    let got = post_json(
        &fake,
        "files.getUploadURLExternal",
        json!({ "filename": "cpu.png", "length": png.len(), "alt_txt": "CPU over 24 hours" }),
    );
    got.assert_ok();
    let url = got.body["upload_url"].as_str().unwrap().to_string();
    let id = got.body["file_id"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/upload/v1/", fake.base)),
        "{url}"
    );
    assert!(
        id.starts_with('F') && id.bytes().all(|b| UPPER_ALNUM.contains(&b)),
        "{id}"
    );

    // The upload URL needs no Slack token.
    let up = send(http().post(&url).body(png.clone()));
    assert_eq!(
        (up.status, up.body.clone()),
        (200, json!(format!("OK - {}", png.len())))
    );
    assert_eq!(
        fake.calls_of("upload")[0].params,
        json!({ "length": png.len() })
    );

    let done = post_json(
        &fake,
        "files.completeUploadExternal",
        json!({
            "files": [{ "id": id, "title": "CPU" }],
            "channel_id": ALERTS,
            "thread_ts": parent,
            "initial_comment": "Chart for the alert",
        }),
    );
    done.assert_ok();
    assert_eq!(done.body["files"], json!([{ "id": id, "title": "CPU" }]));

    let files = fake.files(ALERTS);
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(
        (file.id.as_str(), file.filename.as_str()),
        (id.as_str(), "cpu.png")
    );
    assert_eq!(file.title.as_deref(), Some("CPU"));
    assert_eq!(file.alt_txt.as_deref(), Some("CPU over 24 hours"));
    assert_eq!(file.bytes, png);
    assert_eq!(
        (file.channel.as_str(), file.thread_ts.as_deref()),
        (ALERTS, Some(parent.as_str()))
    );
    assert_eq!(file.initial_comment.as_deref(), Some("Chart for the alert"));
    assert!(file.at >= fake.messages(ALERTS)[0].at);

    // Multipart works too, and a share without a channel stays private.
    let (url, id) = ticket(&fake, "mem.png", 5);
    let body =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"mem.png\"\r\n\
Content-Type: image/png\r\n\r\nbytes\r\n--XyZ--\r\n"
            .to_vec();
    let up = send(
        http()
            .post(&url)
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(body),
    );
    assert_eq!(up.status, 200, "{}", up.body);
    let files_arg = json!([{ "id": id }]).to_string();
    let done = post_form(
        &fake,
        "files.completeUploadExternal",
        &[("files", &files_arg)],
    );
    done.assert_ok();
    assert_eq!(done.body["files"][0]["title"], "mem.png");
    let private = fake.files("");
    assert_eq!(
        (private.len(), private[0].bytes.as_slice()),
        (1, b"bytes".as_slice())
    );
    assert_eq!(private[0].title, None);
    assert_eq!(fake.files(ALERTS).len(), 1);
}

#[test]
fn slack_fake_refuses_broken_uploads() {
    let fake = start_fake();
    let parent = post_json(
        &fake,
        "chat.postMessage",
        json!({ "channel": ALERTS, "text": "alert" }),
    );
    let parent = parent.assert_ok().body["ts"].as_str().unwrap().to_string();
    let complete = |files: Value, extra: Value| {
        let mut body = json!({ "files": files, "channel_id": ALERTS });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        post_json(&fake, "files.completeUploadExternal", body)
    };

    // Wrong length: refused, and the file cannot be completed.
    let (url, short) = ticket(&fake, "a.png", 10);
    let up = send(http().post(&url).body(vec![0u8; 9]));
    assert_eq!(
        (up.status, up.body.clone()),
        (400, json!("length mismatch: declared 10, got 9"))
    );
    let call = fake.calls_of("upload").pop().unwrap();
    assert_eq!(
        call.error.as_deref(),
        Some("length mismatch: declared 10, got 9")
    );
    assert_eq!((call.ok, call.status), (false, 400));
    let got = complete(json!([{ "id": short }]), json!({}));
    assert_eq!(got.error(), "file_not_found");

    // An upload URL works once; unknown URLs are not found.
    let (url, id) = ticket(&fake, "b.png", 3);
    assert_eq!(send(http().post(&url).body("abc")).status, 200);
    let again = send(http().post(&url).body("abc"));
    assert_eq!(
        (again.status, again.body),
        (410, json!("upload url already used"))
    );
    let nowhere = send(
        http()
            .post(format!("{}/upload/v1/nope", fake.base))
            .body("abc"),
    );
    assert_eq!(nowhere.status, 404);

    // Unknown ids and threads; thread_ts needs channel_id.
    let got = complete(json!([{ "id": "F0NOSUCHID" }]), json!({}));
    assert_eq!(got.error(), "file_not_found");
    let got = complete(
        json!([{ "id": id }]),
        json!({ "thread_ts": "1700000000.000001" }),
    );
    assert_eq!(got.error(), "thread_not_found");
    let got = post_json(
        &fake,
        "files.completeUploadExternal",
        json!({ "files": [{ "id": id }], "thread_ts": parent }),
    );
    assert_eq!(got.error(), "invalid_arguments");
    let got = complete(json!([{ "id": id }]), json!({ "channel_id": OUTSIDE }));
    assert_eq!(got.error(), "not_in_channel");
    let got = complete(json!([]), json!({}));
    assert_eq!(got.error(), "invalid_arguments");
    assert!(fake.files(ALERTS).is_empty());
    // The refusals left the file for a correct call, which works once.
    complete(json!([{ "id": id }]), json!({ "thread_ts": parent })).assert_ok();
    let twice = complete(json!([{ "id": id }]), json!({}));
    assert_eq!(twice.error(), "invalid_arguments");
    assert_eq!(fake.files(ALERTS).len(), 1);

    // files.getUploadURLExternal's own arguments.
    let url_for = |form: &[(&str, &str)]| post_form(&fake, "files.getUploadURLExternal", form);
    assert_eq!(
        url_for(&[("filename", "c.png"), ("length", "0")]).error(),
        "missing_argument"
    );
    assert_eq!(
        url_for(&[("filename", "c.png"), ("length", "-3")]).error(),
        "invalid_arguments"
    );
    assert_eq!(url_for(&[("length", "3")]).error(), "invalid_arguments");
    let alt = "a".repeat(MAX_ALT_TXT + 1);
    let got = url_for(&[("filename", "c.png"), ("length", "3"), ("alt_txt", &alt)]);
    assert_eq!(got.error(), "alt_txt_too_large");

    let old = post_form(
        &fake,
        "files.upload",
        &[("channels", ALERTS), ("content", "x")],
    );
    assert_eq!(old.error(), "method_deprecated");
    assert_eq!(fake.calls_of("files.upload").len(), 1);
}

#[test]
fn slack_fake_fail_next_answers_as_scripted() {
    let fake = start_fake();
    fake.fail_next(
        "chat.postMessage",
        &[
            SlackAnswer {
                status: 429,
                retry_after: Some(30),
                error: "ratelimited",
            },
            SlackAnswer {
                status: 200,
                retry_after: None,
                error: "internal_error",
            },
        ],
    );
    let body = json!({ "channel": ALERTS, "text": "hi" });
    // A bad token is answered first and does not use up the script.
    let url = format!("{}chat.postMessage", fake.api_url());
    let bad = send(http().post(url).bearer_auth("xoxb-wrong").json(&body));
    assert_eq!(bad.error(), "invalid_auth");

    let first = post_json(&fake, "chat.postMessage", body.clone());
    assert_eq!(
        (first.status, first.retry_after.as_deref(), first.error()),
        (429, Some("30"), "ratelimited")
    );
    let second = post_json(&fake, "chat.postMessage", body.clone());
    assert_eq!(
        (second.status, second.retry_after.as_deref(), second.error()),
        (200, None, "internal_error")
    );
    post_json(&fake, "chat.postMessage", body).assert_ok();
    assert_eq!(fake.messages(ALERTS).len(), 1);
    let statuses: Vec<_> = fake
        .calls_of("chat.postMessage")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [200, 429, 200, 200]);

    // Uploads can be scripted too; the URL still works afterwards.
    let (url, _) = ticket(&fake, "d.png", 2);
    fake.fail_next(
        "upload",
        &[SlackAnswer {
            status: 503,
            retry_after: Some(2),
            error: "service_unavailable",
        }],
    );
    let failed = send(http().post(&url).body("ok"));
    assert_eq!(
        (failed.status, failed.retry_after.as_deref()),
        (503, Some("2"))
    );
    assert_eq!(send(http().post(&url).body("ok")).status, 200);
}

#[test]
fn slack_fake_enforces_the_channel_limit() {
    let per = Duration::from_millis(600);
    let fake = start_fake().with_channel_limit(2, per);
    let post = || {
        post_json(
            &fake,
            "chat.postMessage",
            json!({ "channel": ALERTS, "text": "hi" }),
        )
    };
    post().assert_ok();
    post().assert_ok();
    let third = post();
    assert_eq!(
        (third.status, third.retry_after.as_deref(), third.error()),
        (429, Some("1"), "ratelimited")
    );
    // A file share is a message too.
    let (url, id) = ticket(&fake, "e.png", 1);
    assert_eq!(send(http().post(&url).body("e")).status, 200);
    let share = json!({ "files": [{ "id": id }], "channel_id": ALERTS });
    let refused = post_json(&fake, "files.completeUploadExternal", share.clone());
    assert_eq!((refused.status, refused.error()), (429, "ratelimited"));
    assert_eq!(fake.max_in_window(ALERTS, per), 2);

    std::thread::sleep(per + Duration::from_millis(50));
    post().assert_ok();
    post_json(&fake, "files.completeUploadExternal", share).assert_ok();
    assert_eq!(post().status, 429);
    assert_eq!(fake.max_in_window(ALERTS, per), 2);
    assert_eq!(fake.max_in_window("alerts", Duration::from_secs(60)), 4);
    assert_eq!(fake.max_in_window(ALERTS, Duration::ZERO), 0);
    assert_eq!(fake.messages(ALERTS).len(), 3);
    assert_eq!(fake.files(ALERTS).len(), 1);
}
