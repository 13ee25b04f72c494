//! Internal storage on fanout's real HTTP server: signed URLs round-trip,
//! anything expired, forged, tampered or traversing is refused, and
//! retention removes old files.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fanout::clock::unix_now;
use fanout::config::Config;
use fanout::images::internal::{InternalStore, PURPOSE};
use fanout::images::signing::Signer;
use fanout::images::ImageStore;
use fanout::server::{serve, HttpState};

use crate::support::{fanout_in, fixture_png, wait_for};

const KEY: &str = "0123456789abcdef0123456789abcdef-signing";

struct Served {
    store: Arc<InternalStore>,
    base: String,
    dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start(url_ttl: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let text = format!(
        "[http]\npublic_url = \"{base}\"\n\n[storage]\nkind = \"internal\"\ndir = \"{}\"\nsigning_key = \"{KEY}\"\n\
         url_ttl = \"{url_ttl}\"\nretention = \"1h\"\n",
        dir.path().join("images").display()
    );
    let config = Config::parse(&text, "test", Rc::new(|_| None)).unwrap();
    let store = Arc::new(
        InternalStore::new(
            config.storage.as_ref().unwrap(),
            config.http.public_url.as_ref(),
        )
        .unwrap(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState {
        images: Some(store.clone()),
        ..HttpState::default()
    };
    tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));
    Served {
        store,
        base,
        dir,
        _shutdown: tx,
    }
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the server answers")
}

#[tokio::test]
async fn a_signed_url_serves_the_same_bytes() {
    let s = start("1h").await;
    let png = fixture_png();
    let stored = s.store.put(&png).await.unwrap();
    assert!(
        stored
            .url
            .starts_with(&format!("{}/images/{}.png?exp=", s.base, stored.key)),
        "{}",
        stored.url
    );
    assert_eq!(
        s.store.put(&png).await.unwrap().key,
        stored.key,
        "content-addressed"
    );
    let r = get(&stored.url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("private, max-age="));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());
    assert_eq!(get(&format!("{}/healthz", s.base)).await.status(), 200);
}

#[tokio::test]
async fn forged_tampered_expired_and_traversing_urls_are_refused() {
    let s = start("1h").await;
    let stored = s.store.put(&fixture_png()).await.unwrap();
    let other = s.store.put(b"another image").await.unwrap();
    let (path, query) = stored.url.split_once('?').unwrap();
    let sig = query.split("sig=").nth(1).unwrap();
    let exp: u64 = query
        .split("exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let mut flipped = sig.to_string();
    flipped.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
    let signer = Signer::new(fanout::secret::Secret::new(KEY));
    let expired = unix_now() - 10;
    let cases = [
        (
            format!("{path}?exp={exp}&sig={flipped}"),
            403,
            "forged signature",
        ),
        (
            format!("{path}?exp={}&sig={sig}", exp + 60),
            403,
            "extended expiry",
        ),
        (
            format!("{}/images/{}.png?{query}", s.base, other.key),
            403,
            "signature of another key",
        ),
        (
            format!(
                "{path}?exp={expired}&sig={}",
                signer.sign(PURPOSE, &stored.key, expired)
            ),
            403,
            "expired",
        ),
        (path.to_string(), 403, "unsigned"),
        (format!("{path}?exp=soon&sig={sig}"), 403, "garbage expiry"),
        (
            format!("{}/images/..%2F..%2Fetc%2Fpasswd.png?{query}", s.base),
            404,
            "traversal",
        ),
        (
            format!("{}/images/{}.PNG?{query}", s.base, stored.key),
            404,
            "other suffix",
        ),
        (
            format!("{}/images/{}.png?{query}", s.base, "a".repeat(64)),
            403,
            "unknown key",
        ),
    ];
    for (url, status, what) in cases {
        let r = get(&url).await;
        assert_eq!(r.status().as_u16(), status, "{what}: {url}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("signature") && body.len() < 16,
            "{what}: the body reveals nothing: {body:?}"
        );
    }
    // The real signature for a key that has no file: 404, not 403.
    let missing = "b".repeat(64);
    let url = format!(
        "{}/images/{missing}.png?exp={exp}&sig={}",
        s.base,
        signer.sign(PURPOSE, &missing, exp)
    );
    assert_eq!(get(&url).await.status(), 404);
}

#[tokio::test]
async fn urls_expire() {
    // Expiry has one-second granularity: a 2 s TTL is valid for at least a
    // second whenever the URL is made, and surely over 3.1 s later.
    let s = start("2s").await;
    let stored = s.store.put(&fixture_png()).await.unwrap();
    assert_eq!(get(&stored.url).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_eq!(get(&stored.url).await.status(), 403);
}

#[tokio::test]
async fn retention_removes_old_files_only() {
    let s = start("1h").await;
    let old = s.store.put(b"old chart").await.unwrap();
    let new = s.store.put(b"new chart").await.unwrap();
    let images = s.dir.path().join("images");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(images.join(format!("{}.png", old.key)))
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    std::fs::write(images.join("notes.txt"), "not ours").unwrap();
    assert_eq!(s.store.sweep().unwrap(), 1);
    assert!(!images.join(format!("{}.png", old.key)).exists());
    assert!(images.join(format!("{}.png", new.key)).exists());
    assert!(
        images.join("notes.txt").exists(),
        "files fanout did not write are left alone"
    );
}

#[test]
fn serve_and_check_round_trip_a_signed_url() {
    let port = crate::support::free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fanout.toml"),
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n[storage]\n\
             kind = \"internal\"\ndir = \"images\"\nsigning_key = \"{KEY}\"\n\n[render]\nchrome = \"/nonexistent/chromium\"\n"
        ),
    )
    .unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_fanout"))
        .args(["serve", "--config", "fanout.toml"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("fanout serve to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let run = fanout_in(dir.path(), &["check", "--config", "fanout.toml"], None, &[]);
    let _ = server.kill();
    let _ = server.wait();
    // Chromium is missing on purpose: that row fails with its hint, the
    // storage row passes.
    run.assert_code(1);
    let storage = run
        .stdout
        .lines()
        .find(|l| l.starts_with("storage internal"))
        .unwrap_or_default();
    assert!(storage.contains("signed URL round-trips"), "{run}");
    let chromium = run
        .stdout
        .lines()
        .find(|l| l.starts_with("chromium"))
        .unwrap_or_default();
    assert!(
        chromium.contains("FAIL") && chromium.contains("apt-get install chromium"),
        "{run}"
    );
}
