//! Charts on real Chromium against the fake Grafana: the panel is drawn
//! before the screenshot, the token goes to Grafana only, foreign origins
//! are blocked, certificate errors are forgiven on loopback only, and a
//! killed browser is replaced.

use std::rc::Rc;
use std::time::Duration;

use fanout::config::Config;
use fanout::render::browser::LaunchSettings;
use fanout::render::origin::OriginPolicy;
use fanout::render::{ChartRenderer, RenderError, RenderTarget};
use fanout::secret::Secret;

use crate::support::grafana::{FakeGrafana, Options};

/// The fake panel's series colour: present only once the data has arrived
/// and been drawn. A screenshot taken before the data (the loading bar on
/// a dark background) has none of it, so the pixel count below fails.
const CHART_COLOUR: [u8; 3] = [0xff, 0x57, 0x22];

pub fn count_colour(png: &[u8], rgb: [u8; 3]) -> (u32, u32, usize) {
    let img = image::load_from_memory(png).expect("a PNG").to_rgb8();
    let n = img.pixels().filter(|p| p.0 == rgb).count();
    (img.width(), img.height(), n)
}

fn config(grafana: &FakeGrafana, extra: &str) -> Config {
    config_timeout(grafana, "20s", extra)
}

fn config_timeout(grafana: &FakeGrafana, timeout: &str, extra: &str) -> Config {
    let text = format!(
        "[render]\ntimeout = \"{timeout}\"\ntabs = 2\n{extra}\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{}\"\n",
        grafana.url, grafana.token
    );
    Config::parse(&text, "test", Rc::new(|_| None)).expect("test config")
}

fn panel(width: u32, height: u32) -> fanout::job::Chart {
    serde_json::from_value(serde_json::json!({
        "grafana": {"dashboard_uid": "abc", "panel_id": 7, "vars": {"instance": "a"}},
        "width": width, "height": height
    }))
    .unwrap()
}

fn target(config: &Config, chart: &fanout::job::Chart) -> RenderTarget {
    fanout::render::render_target(chart, config.render.grafana.as_ref()).unwrap()
}

/// Render the fake panel at a size with a fresh renderer for `config`.
async fn render_panel(config: &Config, width: u32, height: u32) -> Result<Vec<u8>, RenderError> {
    let renderer = ChartRenderer::new(&config.render).unwrap();
    renderer
        .render(&target(config, &panel(width, height)))
        .await
}

#[tokio::test]
async fn a_grafana_panel_is_captured_after_its_data_is_drawn() {
    let grafana = FakeGrafana::start(Options::default());
    // The field case: Grafana on https://127.0.0.1 with a certificate for
    // another name; ignored because the origin is loopback.
    let config = config(&grafana, "ignore_https_errors = true");
    let renderer = ChartRenderer::new(&config.render).unwrap();
    let png = renderer
        .render(&target(&config, &panel(640, 320)))
        .await
        .expect("render");
    let (w, h, n) = count_colour(&png, CHART_COLOUR);
    assert_eq!((w, h), (640, 320));
    assert!(
        n > 5_000,
        "only {n} pixels of the series colour: captured before the data?"
    );

    let requests = grafana.requests();
    let paths: Vec<_> = requests.iter().map(|(p, _)| p.as_str()).collect();
    assert!(paths.contains(&"/d-solo/abc/"), "{paths:?}");
    assert!(paths.contains(&"/api/ds/query"), "{paths:?}");
    let bearer = format!("Bearer {}", grafana.token);
    assert!(
        requests
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some(bearer.as_str())),
        "{requests:?}"
    );

    // Warm: the second render reuses the browser.
    let scaled = serde_json::from_value(serde_json::json!({
        "grafana": {"dashboard_uid": "abc", "panel_id": 7}, "width": 300, "height": 200, "scale": 2.0
    }))
    .unwrap();
    let png = renderer
        .render(&target(&config, &scaled))
        .await
        .expect("second render");
    let (w, h, n) = count_colour(&png, CHART_COLOUR);
    assert_eq!(
        (w, h),
        (600, 400),
        "device scale factor 2 doubles the pixels"
    );
    assert!(n > 1_000);
    assert_eq!(renderer.launches().await, 1);
}

#[tokio::test]
async fn the_legacy_ready_signal_is_honoured_too() {
    let grafana = FakeGrafana::start(Options {
        legacy: true,
        delay_ms: 800,
        ..Options::default()
    });
    let config = config(&grafana, "ignore_https_errors = true");
    let png = render_panel(&config, 400, 200).await.expect("render");
    assert!(count_colour(&png, CHART_COLOUR).2 > 2_000);
}

#[tokio::test]
async fn a_ready_signal_that_is_briefly_true_before_the_panel_starts_is_not_trusted() {
    // Scenes as a real Grafana runs them: a variable query ends (no query
    // running, nothing drawn) before the panel has loaded its plugin
    // chunk and started its own query.
    let grafana = FakeGrafana::start(Options {
        staged: true,
        delay_ms: 300,
        ..Options::default()
    });
    let config = config(&grafana, "ignore_https_errors = true");
    for _ in 0..3 {
        let png = render_panel(&config, 400, 200).await.expect("render");
        let (_, _, drawn) = count_colour(&png, CHART_COLOUR);
        assert!(
            drawn > 40_000,
            "the panel was captured before it drew ({drawn} pixels)"
        );
    }
}

#[tokio::test]
async fn a_page_that_never_settles_fails_within_the_timeout_saying_what_it_waited_for() {
    // The panel query never answers within the render timeout.
    let grafana = FakeGrafana::start(Options {
        delay_ms: 20_000,
        ..Options::default()
    });
    let config = config_timeout(&grafana, "3s", "ignore_https_errors = true");
    let started = std::time::Instant::now();
    let err = render_panel(&config, 400, 200).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(text.contains("not ready within 3s"), "{text}");
    assert!(text.contains("1 query running"), "{text}");
}

#[tokio::test]
async fn a_bad_certificate_fails_unless_ignored_for_loopback() {
    let grafana = FakeGrafana::start(Options::default());
    let config = config(&grafana, "ignore_https_errors = false");
    let err = render_panel(&config, 400, 200).await.unwrap_err();
    assert!(
        matches!(err, RenderError::Browser(_) | RenderError::Blocked(_)),
        "{err:?}"
    );
    assert!(
        grafana.requests().is_empty(),
        "no request got past the TLS handshake"
    );
}

#[tokio::test]
async fn a_non_loopback_origin_with_a_bad_certificate_fails_even_when_ignoring() {
    // `grafana.test` resolves to 127.0.0.1 inside Chromium only, so it is a
    // non-loopback *name*: the renderer must not forgive its certificate,
    // whatever the policy says (the config refuses this combination too).
    let grafana = FakeGrafana::start(Options {
        cert_name: "other.invalid",
        ..Options::default()
    });
    let url = format!("https://grafana.test:{}", grafana.port);
    let policy = OriginPolicy::new(
        &[],
        Some(&url::Url::parse(&url).unwrap()),
        Some(Secret::new(grafana.token.clone())),
        true,
    );
    let launch = LaunchSettings {
        chrome: "/usr/bin/chromium".into(),
        sandbox: false,
        extra_args: vec!["--host-resolver-rules=MAP grafana.test 127.0.0.1".into()],
    };
    let renderer =
        ChartRenderer::with_settings(launch, policy, Duration::from_secs(15), 1).unwrap();
    let target = RenderTarget {
        url: format!("{url}/d-solo/abc/?orgId=1&panelId=7"),
        width: 400,
        height: 200,
        scale: 1.0,
        grafana: true,
    };
    let err = renderer.render(&target).await.unwrap_err();
    assert!(
        !matches!(err, RenderError::Timeout(_) | RenderError::NotReady { .. }),
        "it must fail on the certificate, not time out: {err:?}"
    );
    assert!(
        grafana.requests().is_empty(),
        "the TLS handshake must have failed: {:?}",
        grafana.requests()
    );
}

#[tokio::test]
async fn wrong_token_and_wrong_org_say_which() {
    let grafana = FakeGrafana::start(Options {
        org: 2,
        ..Options::default()
    });
    let text = format!(
        "[render]\nignore_https_errors = true\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"wrong\"\norg_id = 2\n",
        grafana.url
    );
    let config = Config::parse(&text, "test", Rc::new(|_| None)).unwrap();
    let err = render_panel(&config, 400, 200).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("HTTP 401 (check [render.grafana] token)"),
        "{err}"
    );

    let config = self::config(&grafana, "ignore_https_errors = true"); // org 1, real token
    let err = render_panel(&config, 400, 200).await.unwrap_err();
    assert!(
        err.to_string().contains("HTTP 403 (check the org id"),
        "{err}"
    );
}

#[tokio::test]
async fn redirects_and_sub_requests_to_other_origins_are_blocked() {
    let grafana = FakeGrafana::start(Options::default());
    let other = FakeGrafana::start(Options {
        plain: true,
        ..Options::default()
    });
    let config = config(&grafana, "ignore_https_errors = true");
    let renderer = ChartRenderer::new(&config.render).unwrap();
    let page = |path: &str| RenderTarget {
        url: format!("{}{path}", grafana.url),
        width: 300,
        height: 150,
        scale: 1.0,
        grafana: false,
    };

    let to = format!("{}/plain", other.url);
    let err = renderer
        .render(&page(&format!("/redirect?to={to}")))
        .await
        .unwrap_err();
    assert!(matches!(err, RenderError::Blocked(_)), "{err:?}");

    // The page itself is allowed and renders; its fetch and <img> to the
    // other origin are stopped in the browser.
    let png = renderer
        .render(&page(&format!("/leak?to={to}")))
        .await
        .expect("leak page renders");
    assert!(count_colour(&png, CHART_COLOUR).2 > 10_000);
    assert!(
        other.requests().is_empty(),
        "the other origin was reached: {:?}",
        other.requests()
    );

    // A job cannot name a foreign origin directly either.
    let direct = RenderTarget {
        url: to,
        ..page("/")
    };
    assert!(matches!(
        renderer.render(&direct).await.unwrap_err(),
        RenderError::Blocked(_)
    ));
}

#[tokio::test]
async fn an_allowed_origin_never_sees_the_grafana_token() {
    let grafana = FakeGrafana::start(Options::default());
    let other = FakeGrafana::start(Options {
        plain: true,
        ..Options::default()
    });
    let config = config(
        &grafana,
        &format!(
            "ignore_https_errors = true\nallowed_origins = [\"{}\"]",
            other.url
        ),
    );
    let renderer = ChartRenderer::new(&config.render).unwrap();
    let chart = serde_json::from_value(
        serde_json::json!({"url": format!("{}/plain", other.url), "width": 300, "height": 150}),
    )
    .unwrap();
    let png = renderer
        .render(&target(&config, &chart))
        .await
        .expect("render");
    assert!(count_colour(&png, [0x21, 0x96, 0xf3]).2 > 10_000);
    let requests = other.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|(_, auth)| auth.is_none()),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_killed_browser_is_replaced() {
    let grafana = FakeGrafana::start(Options {
        delay_ms: 3_000,
        ..Options::default()
    });
    let config = config(&grafana, "ignore_https_errors = true");
    let renderer = std::sync::Arc::new(ChartRenderer::new(&config.render).unwrap());
    renderer.warm_up().await.expect("chromium starts");
    let pid = renderer.browser_pid().await.expect("a browser runs");

    let slow = tokio::spawn({
        let renderer = renderer.clone();
        let target = target(&config, &panel(300, 150));
        async move { renderer.render(&target).await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let first = slow.await.unwrap();
    assert!(first.is_err(), "the render in the killed browser failed");

    let png = renderer
        .render(&target(&config, &panel(300, 150)))
        .await
        .expect("the next render succeeds");
    assert!(count_colour(&png, CHART_COLOUR).2 > 1_000);
    assert_eq!(renderer.launches().await, 2);
    assert_ne!(renderer.browser_pid().await, Some(pid));
}

fn grafana_config_file(
    dir: &std::path::Path,
    grafana: &FakeGrafana,
    token: &str,
    org: u64,
) -> String {
    crate::support::write_file(
        dir,
        "fanout.toml",
        &format!(
            "[render]\nignore_https_errors = true\ntimeout = \"20s\"\n\n[render.grafana]\nurl = \"{}\"\ntoken = \"{token}\"\norg_id = {org}\n",
            grafana.url
        ),
    )
}

#[test]
fn fanout_render_writes_one_chart_by_hand() {
    let grafana = FakeGrafana::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = grafana_config_file(dir.path(), &grafana, &grafana.token, 1);
    let run = crate::support::fanout_in(
        dir.path(),
        &[
            "render",
            "--config",
            &cfg,
            "--grafana",
            "abc:7",
            "--var",
            "instance=a",
            "--width",
            "500",
            "--height",
            "250",
            "-o",
            "panel.png",
        ],
        None,
        &[],
    );
    run.assert_code(0);
    let png = std::fs::read(dir.path().join("panel.png")).expect("panel.png");
    let (w, h, n) = count_colour(&png, CHART_COLOUR);
    assert_eq!((w, h), (500, 250));
    assert!(n > 1_000, "{run}");
    let requests = grafana.requests();
    assert!(
        requests.iter().any(|(p, _)| p == "/d-solo/abc/"),
        "{requests:?}"
    );
}

#[test]
fn check_says_whether_grafana_takes_the_token_and_org() {
    let grafana = FakeGrafana::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    for (token, org, code, expect) in [
        (grafana.token.as_str(), 1, 0, "token accepted"),
        ("wrong-token", 1, 1, "create a service-account token"),
        (
            grafana.token.as_str(),
            5,
            1,
            "check [render.grafana] org_id",
        ),
    ] {
        let cfg = grafana_config_file(dir.path(), &grafana, token, org);
        let run = crate::support::fanout_in(dir.path(), &["check", "--config", &cfg], None, &[]);
        run.assert_code(code);
        let row = run
            .stdout
            .lines()
            .find(|l| l.starts_with("grafana"))
            .unwrap_or_default();
        assert!(row.contains(expect), "{run}");
        assert!(
            !run.all_output().contains(&grafana.token),
            "the token leaked:\n{run}"
        );
        let chromium = run
            .stdout
            .lines()
            .find(|l| l.starts_with("chromium"))
            .unwrap_or_default();
        assert!(chromium.contains("started in"), "{run}");
    }
}

/// `fanout check`'s glyph probe, on the real Chromium: with the machine's
/// fonts it draws every script, and with only DejaVu (a fontconfig that
/// knows nothing else) it names what would come out as boxes and the
/// packages that draw them.
#[test]
fn check_says_which_scripts_charts_could_not_draw() {
    let dir = tempfile::tempdir().unwrap();
    let fonts = |run: &crate::support::Run| {
        run.stdout
            .lines()
            .find(|l| l.starts_with("fonts"))
            .unwrap_or_default()
            .to_string()
    };
    let run = crate::support::fanout_in(dir.path(), &["check"], None, &[]);
    let row = fonts(&run);
    assert!(
        row.contains(" ok "),
        "the machine's fonts draw every script (.ci/test installs them):\n{run}"
    );
    for script in ["cjk", "emoji", "arabic", "devanagari", "thai"] {
        assert!(row.contains(script), "{script}: {row}");
    }

    let conf = dir.path().join("fonts.conf");
    std::fs::write(
        &conf,
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig>\
             <dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{}</cachedir></fontconfig>\n",
            dir.path().join("fc-cache").display()
        ),
    )
    .unwrap();
    let run = crate::support::fanout_in(
        dir.path(),
        &["check"],
        None,
        &[("FONTCONFIG_FILE", &conf.display().to_string())],
    );
    run.assert_code(1);
    let row = fonts(&run);
    assert!(
        row.contains("FAIL") && row.contains("boxes for cjk, emoji"),
        "{run}"
    );
    assert!(
        row.contains("apt-get install fonts-noto-cjk fonts-noto-color-emoji"),
        "{row}"
    );
}
