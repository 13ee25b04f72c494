//! Length limits cut the free text and keep what people act on, through
//! the real binary into an outbox (the WeCom bot's 4,096 bytes against its
//! fake are in `chat.rs`; Slack's blocks and PrometheusAlert's text limit
//! are unit tests in their channel folders).

#[test]
fn a_long_title_is_cut_in_the_subject_and_the_status_and_service_stay() {
    let config = "[destinations.mail]\nchannel = \"email\"\nsmtp_url = \"smtp://127.0.0.1:25\"\n\
         from = \"fanout <fanout@localhost>\"\nto = [\"oncall@example.com\"]\n";
    let title = "订单服务数据库主节点连接池耗尽导致支付回调大量超时 ".repeat(12);
    let job = serde_json::json!({
        "version": 1, "id": "long-title",
        "alert": {"group_id": "g", "title": title, "severity": "critical",
                  "labels": {"service": "payments"}},
        "targets": [{"destination": "mail"}]
    });
    let (dir, run) = crate::support::send_to_outbox(config, &job.to_string());
    run.assert_code(0);
    let eml = std::fs::read(dir.path().join("outbox/long-title/1-mail.eml")).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let subject = msg.subject().unwrap();
    assert!(
        subject.chars().count() <= 250,
        "{} chars",
        subject.chars().count()
    );
    assert!(
        subject.starts_with("[FIRING CRITICAL] 订单服务"),
        "{subject}"
    );
    assert!(subject.ends_with("… (payments)"), "{subject}");
}
