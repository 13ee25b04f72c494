//! `[storage] kind = "s3"` against a real S3 server (s3s-fs, which checks
//! SigV4 signatures, presigned URLs included): what is put comes back
//! through the presigned URL; a tampered or expired URL, a wrong key and a
//! missing bucket are refused, with messages that hold no secret.

use std::rc::Rc;
use std::time::Duration;

use fanout::config::Config;
use fanout::images::{content_key, Storage};

use crate::support::fixture_png;
use crate::support::s3::S3Server;

/// The `[storage]` section for `server`, with the bucket, secret and URL
/// lifetime given.
fn storage_toml(server: &S3Server, bucket: &str, secret: &str, url_ttl: &str) -> String {
    format!(
        r#"
[storage]
kind = "s3"
url_ttl = "{url_ttl}"

[storage.s3]
bucket = "{bucket}"
prefix = "charts/"
region = "us-east-1"
endpoint = "{endpoint}"
path_style = true
access_key_id = "{access_key}"
secret_access_key = "{secret}"
"#,
        endpoint = server.endpoint,
        access_key = server.access_key,
    )
}

/// The store the config names, built the way the worker builds it.
async fn store_from(toml: &str) -> Storage {
    let config = Config::parse(toml, "test config", Rc::new(|_: &str| None::<String>))
        .unwrap_or_else(|e| panic!("the test config is invalid: {e}"));
    Storage::new(config.storage.as_ref(), config.http.public_url.as_ref())
        .await
        .expect("build the S3 store")
        .expect("[storage] is configured")
}

/// A store on `server`'s bucket with its real keys.
async fn store(server: &S3Server, url_ttl: &str) -> Storage {
    store_from(&storage_toml(
        server,
        &server.bucket,
        &server.secret_key,
        url_ttl,
    ))
    .await
}

/// GET `url` with no credentials, as a mail or chat client would.
async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
        .get(url)
        .send()
        .await
        .expect("GET the presigned URL")
}

/// `url` with one character of its `X-Amz-Signature` changed.
fn with_signature_changed(url: &str) -> String {
    let start = url.find("X-Amz-Signature=").expect("a presigned URL") + "X-Amz-Signature=".len();
    let mut bytes = url.as_bytes().to_vec();
    bytes[start] = if bytes[start] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).expect("ascii")
}

/// `text` holds none of the values that must never be shown.
#[track_caller]
fn assert_no_secrets(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
    }
    for marker in ["X-Amz-Signature", "X-Amz-Credential", "Signature="] {
        assert!(!text.contains(marker), "{marker} leaked into: {text}");
    }
}

#[tokio::test]
async fn a_put_png_comes_back_through_its_presigned_url() {
    let server = S3Server::start();
    let store = store(&server, "1h").await;
    let png = fixture_png();

    let stored = store.put(&png).await.expect("put");

    assert_eq!(stored.key, content_key(&png));
    let path = format!("/{}/charts/{}.png", server.bucket, stored.key);
    assert!(
        stored
            .url
            .starts_with(&format!("{}{path}?", server.endpoint)),
        "unexpected URL {}",
        stored.url
    );
    let response = get(&stored.url).await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(
        header("cache-control").as_deref(),
        Some("private, max-age=3600")
    );
    assert_eq!(response.bytes().await.expect("body").as_ref(), &png[..]);
}

#[tokio::test]
async fn the_same_png_twice_is_one_object() {
    let server = S3Server::start();
    let store = store(&server, "1h").await;
    let png = fixture_png();

    let first = store.put(&png).await.expect("first put");
    let second = store.put(&png).await.expect("second put");

    assert_eq!(first.key, second.key);
    let path = |url: &str| url.split('?').next().unwrap_or_default().to_string();
    assert_eq!(path(&first.url), path(&second.url));
    let objects: Vec<_> = std::fs::read_dir(server.bucket_dir().join("charts"))
        .expect("the prefix dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(objects, [format!("{}.png", first.key)]);
}

#[tokio::test]
async fn a_url_with_a_changed_signature_is_refused() {
    let server = S3Server::start();
    let store = store(&server, "1h").await;
    let stored = store.put(&fixture_png()).await.expect("put");
    assert_eq!(get(&stored.url).await.status(), 200, "the real URL works");

    let tampered = with_signature_changed(&stored.url);

    assert_ne!(tampered, stored.url);
    assert_eq!(get(&tampered).await.status(), 403);
}

#[tokio::test]
async fn a_url_pointed_at_another_object_is_refused() {
    let server = S3Server::start();
    let store = store(&server, "1h").await;
    let chart = store.put(&fixture_png()).await.expect("put chart");
    // Another object that exists, so a refusal is the signature's doing,
    // not a 404. S3 does not care that these bytes are no valid PNG.
    let mut other_png = fixture_png();
    other_png.extend_from_slice(b"another object");
    let other = store.put(&other_png).await.expect("put the other");
    assert_eq!(get(&other.url).await.status(), 200);

    let moved = chart.url.replacen(&chart.key, &other.key, 1);

    assert_ne!(moved, chart.url);
    assert_eq!(get(&moved).await.status(), 403);
}

#[tokio::test]
async fn a_url_past_its_lifetime_is_refused() {
    let server = S3Server::start();
    let store = store(&server, "2s").await;
    let stored = store.put(&fixture_png()).await.expect("put");
    assert!(
        stored.url.contains("X-Amz-Expires=2&"),
        "url_ttl reaches the URL: {}",
        stored.url
    );
    assert_eq!(get(&stored.url).await.status(), 200, "fresh, it works");

    tokio::time::sleep(Duration::from_secs(3)).await;

    let response = get(&stored.url).await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap_or_default();
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn a_wrong_secret_key_fails_the_put_without_showing_it() {
    let server = S3Server::start();
    let wrong = format!("wrong-secret-{:016x}", fastrand::u64(..));
    let store = store_from(&storage_toml(&server, &server.bucket, &wrong, "1h")).await;

    let error = store
        .put(&fixture_png())
        .await
        .expect_err("the server refuses a bad signature");

    let message = error.to_string();
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert_no_secrets(&message, &[&wrong, &server.secret_key]);
    assert_no_secrets(&format!("{error:?}"), &[&wrong, &server.secret_key]);
}

#[tokio::test]
async fn check_round_trips_a_probe_and_cleans_up() {
    let server = S3Server::start();
    let store = store(&server, "1h").await;

    let row = store.check().await;

    assert!(row.passed(), "{row:?}");
    assert_eq!(row.component, "storage s3");
    assert_eq!(
        row.target,
        format!("s3://{}/charts/ @ {}", server.bucket, server.endpoint)
    );
    assert_no_secrets(&format!("{row:?}"), &[&server.secret_key]);
    let left: Vec<_> = std::fs::read_dir(server.bucket_dir().join("charts"))
        .map(|dir| dir.map(|e| e.expect("dir entry").file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the probe was left behind: {left:?}");
}

#[tokio::test]
async fn check_names_a_missing_bucket() {
    let server = S3Server::start();
    let missing = format!("no-such-bucket-{:08x}", fastrand::u32(..));
    let store = store_from(&storage_toml(&server, &missing, &server.secret_key, "1h")).await;

    let row = store.check().await;

    let failure = row.outcome.as_ref().expect_err("the bucket does not exist");
    assert!(failure.error.contains("does not exist"), "{row:?}");
    assert!(failure.hint.contains("create the bucket"), "{row:?}");
    assert!(
        !server.root().join(&missing).exists(),
        "check must not create the bucket"
    );
    assert_no_secrets(&format!("{row:?}"), &[&server.secret_key]);
}

#[tokio::test]
async fn check_blames_the_keys_for_a_bad_signature() {
    let server = S3Server::start();
    let wrong = format!("wrong-secret-{:016x}", fastrand::u64(..));
    let store = store_from(&storage_toml(&server, &server.bucket, &wrong, "1h")).await;

    let row = store.check().await;

    let failure = row.outcome.as_ref().expect_err("a bad signature");
    assert!(failure.error.contains("SignatureDoesNotMatch"), "{row:?}");
    assert!(failure.hint.contains("secret_access_key"), "{row:?}");
    assert!(failure.hint.contains("region"), "{row:?}");
    assert_no_secrets(&format!("{row:?}"), &[&wrong, &server.secret_key]);
}

#[tokio::test]
async fn check_blames_the_endpoint_when_nothing_listens() {
    let server = S3Server::start();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let toml = storage_toml(&server, &server.bucket, &server.secret_key, "1h")
        .replace(&server.endpoint, &format!("http://127.0.0.1:{closed}"));
    let store = store_from(&toml).await;

    let row = store.check().await;

    let failure = row.outcome.as_ref().expect_err("nothing listens");
    assert!(failure.hint.contains("endpoint"), "{row:?}");
    assert!(row
        .target
        .ends_with(&format!("@ http://127.0.0.1:{closed}")));
    assert_no_secrets(&format!("{row:?}"), &[&server.secret_key]);
}
