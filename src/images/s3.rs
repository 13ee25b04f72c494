//! `kind = "s3"`: chart PNGs in any S3-compatible bucket, shared as presigned GET URLs.
//!
//! The bucket never has to be public: each URL carries its own SigV4
//! signature and expiry. Errors and check rows are built from S3 error
//! codes and messages, or transport errors with URL queries removed: never a
//! key, a signature or a presigned query string.

use std::sync::LazyLock;
use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use url::Url;

use super::config::S3Config;
use super::{content_key, ImageStore, StorageError, Stored};
use crate::check::CheckRow;

/// The longest a SigV4 presigned URL can live: S3 refuses URLs signed for
/// more than 7 days, so a longer `url_ttl` is clamped to this.
pub const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The component name in `fanout check`.
const COMPONENT: &str = "storage s3";

/// The object `check` round-trips: a valid 1×1 grey PNG.
const PROBE_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x01, 0xe5, 0x27, 0xde, 0xfc, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// How long the probe's presigned GET may take, end to end.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

/// An S3 bucket (AWS or any S3-compatible endpoint) holding chart PNGs.
///
/// URLs are SigV4 presigned GETs valid for `url_ttl`, at most
/// [`MAX_URL_TTL`] (7 days): a longer `url_ttl` is clamped, with one
/// warning when the store is built. A URL signed with temporary credentials
/// (instance role, web identity) dies with them, whatever `url_ttl` says;
/// static keys give the full lifetime.
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    /// `url_ttl`, clamped to [`MAX_URL_TTL`].
    url_ttl: Duration,
    /// Presigns for `url_ttl` from the moment of signing.
    presigning: PresigningConfig,
    /// What is probed, for check rows: `s3://bucket/prefix @ endpoint`.
    target: String,
}

impl S3Store {
    /// Build the client: static keys when both are configured, else the
    /// default AWS credential chain (environment, profile, web identity,
    /// instance role). Nothing is contacted until the first call.
    pub async fn new(config: &S3Config, url_ttl: Duration) -> Result<Self, StorageError> {
        let target = target(config);
        let url_ttl = clamp_ttl(url_ttl, &target);
        // A TTL S3 cannot sign (zero) fails here, not at the first chart.
        let presigning = PresigningConfig::expires_in(url_ttl)
            .map_err(|e| StorageError::new(format!("{target}: url_ttl {url_ttl:?}: {e}")))?;
        Ok(Self {
            client: Client::from_conf(client_config(config).await),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            url_ttl,
            presigning,
            target,
        })
    }

    /// The object key for a content key: `{prefix}{key}.png`.
    fn object_key(&self, key: &str) -> String {
        format!("{}{key}.png", self.prefix)
    }

    /// Put a PNG. `Cache-Control` ends with the URL's lifetime and is
    /// `private`, so no shared cache keeps a chart longer than its URL.
    async fn put_object(&self, key: &str, png: &[u8]) -> Result<(), Failure> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(png.to_vec()))
            .content_type("image/png")
            .cache_control(format!("private, max-age={}", self.url_ttl.as_secs()))
            .send()
            .await
            .map(drop)
            .map_err(|e| Failure::from_sdk(&format!("put {}", self.s3_url(key)), e))
    }

    /// A presigned GET for `key`, valid for `url_ttl` from now.
    async fn presign(&self, key: &str) -> Result<String, Failure> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(self.presigning.clone())
            .await
            .map(|request| request.uri().to_string())
            .map_err(|e| Failure::from_sdk(&format!("presign {}", self.s3_url(key)), e))
    }

    async fn delete_object(&self, key: &str) -> Result<(), Failure> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(drop)
            .map_err(|e| Failure::from_sdk(&format!("delete {}", self.s3_url(key)), e))
    }

    /// Whether the store says the bucket does not exist. Asked before the
    /// probe because some S3-compatible stores create a bucket on the first
    /// put; any other answer (e.g. 403 for a put-only policy without
    /// `s3:ListBucket`) is left for the put to judge.
    async fn bucket_missing(&self) -> bool {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Err(SdkError::ServiceError(e)) => e.err().is_not_found(),
            _ => false,
        }
    }

    /// The whole probe: bucket there, put, presign, fetch, delete. The probe
    /// is deleted even when the fetch fails.
    async fn round_trip(&self) -> Result<(), Failure> {
        if self.bucket_missing().await {
            return Err(Failure {
                error: format!("bucket {:?} does not exist", self.bucket),
                cause: Cause::NoSuchBucket,
            });
        }
        let key = format!("{}fanout-check-{:016x}.png", self.prefix, fastrand::u64(..));
        self.put_object(&key, PROBE_PNG).await?;
        let fetched = match self.presign(&key).await {
            Ok(url) => fetch(&url, PROBE_PNG).await,
            Err(e) => Err(e),
        };
        let deleted = self.delete_object(&key).await;
        fetched.and(deleted)
    }

    /// `s3://bucket/key`, for messages.
    fn s3_url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl ImageStore for S3Store {
    /// Put the PNG under its content key and presign a GET. The object is
    /// put again even when it exists: that restarts its age, so a bucket
    /// lifecycle rule (the retention) never removes an image a fresh URL
    /// points at.
    async fn put(&self, png: &[u8]) -> Result<Stored, StorageError> {
        let key = content_key(png);
        let object = self.object_key(&key);
        self.put_object(&object, png)
            .await
            .map_err(Failure::into_storage_error)?;
        let url = self
            .presign(&object)
            .await
            .map_err(Failure::into_storage_error)?;
        Ok(Stored { key, url })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let object = self.object_key(key);
        let what = format!("get {}", self.s3_url(&object));
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
            .map_err(|e| Failure::from_sdk(&what, e).into_storage_error())?;
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| StorageError::new(format!("{what}: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn check(&self) -> CheckRow {
        match self.round_trip().await {
            Ok(()) => CheckRow::ok(
                COMPONENT,
                &self.target,
                format!(
                    "put, presigned GET and delete of a probe worked; URLs live {}",
                    humantime::format_duration(self.url_ttl)
                ),
            ),
            Err(failure) => {
                CheckRow::fail(COMPONENT, &self.target, failure.error, failure.cause.hint())
            }
        }
    }
}

/// GET `url` as a mail or chat client would (no credentials) and
/// compare the bytes with `expected`.
async fn fetch(url: &str, expected: &[u8]) -> Result<(), Failure> {
    let what = "GET of the presigned URL";
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| Failure::from_reqwest(what, e))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Failure::from_reqwest(what, e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::from_reqwest(what, e))?;
    if !status.is_success() {
        return Err(Failure::from_xml(what, status.as_u16(), &body));
    }
    if body != expected {
        return Err(Failure {
            error: format!(
                "{what} returned {} bytes that differ from the {} put",
                body.len(),
                expected.len()
            ),
            cause: Cause::Altered,
        });
    }
    Ok(())
}

/// The SDK config. Region and credentials go through `aws_config`, so the
/// default chain works when no keys are configured; endpoint and path style
/// make it work with S3-compatible stores.
async fn client_config(config: &S3Config) -> aws_sdk_s3::Config {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .timeout_config(timeouts());
    if let Some(credentials) = static_credentials(config) {
        loader = loader.credentials_provider(credentials);
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(config.path_style)
        // Checksums only where S3 demands them: several S3-compatible
        // stores reject the SDK's newer default CRC headers.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    builder.build()
}

/// The configured key pair, when both halves are set (the config refuses
/// one without the other).
fn static_credentials(config: &S3Config) -> Option<Credentials> {
    let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) else {
        return None;
    };
    Some(Credentials::new(
        id,
        secret.expose(),
        None,
        None,
        "fanout config",
    ))
}

/// Bounded waits: a store that hangs costs a delivery its chart, not the
/// worker its progress.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// `url_ttl` capped at what SigV4 can sign, with a warning when capped.
fn clamp_ttl(url_ttl: Duration, target: &str) -> Duration {
    if url_ttl > MAX_URL_TTL {
        tracing::warn!(
            target = target,
            url_ttl = %humantime::format_duration(url_ttl),
            "storage.url_ttl is longer than S3 presigned URLs can live; using 7 days"
        );
        return MAX_URL_TTL;
    }
    url_ttl
}

/// `s3://bucket/prefix`, plus ` @ endpoint` for a non-AWS store, without
/// any user, password or query the endpoint URL might carry.
fn target(config: &S3Config) -> String {
    let mut target = format!("s3://{}/{}", config.bucket, config.prefix);
    if let Some(endpoint) = &config.endpoint {
        target.push_str(" @ ");
        target.push_str(&bare_url(endpoint));
    }
    target
}

fn bare_url(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().trim_end_matches('/').to_string()
}

/// Drop the query of every URL in `text`: a presigned query holds a
/// signature (and is percent-encoded, so it has no space, quote or
/// parenthesis). Applied to messages that did not come from an error code.
fn strip_url_queries(text: &str) -> String {
    static QUERY: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"(https?://[^\s?#"'<>()]*)[?#][^\s"'<>()]*"#).unwrap()
    });
    QUERY.replace_all(text, "$1").into_owned()
}

/// An error and its sources as one line, URL queries removed.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    strip_url_queries(&text)
}

/// What kind of trouble a failure is, for the hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    NoSuchBucket,
    Denied,
    Refused,
    Altered,
    Other,
}

impl Cause {
    /// Classify by S3 error code, or by the transport error's text.
    fn of(code: Option<&str>, text: &str) -> Self {
        match code {
            Some("NoSuchBucket") => Cause::NoSuchBucket,
            Some(
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "AuthorizationHeaderMalformed"
                | "InvalidToken"
                | "ExpiredToken"
                | "RequestTimeTooSkewed",
            ) => Cause::Denied,
            _ if text.contains("Connection refused") || text.contains("connection refused") => {
                Cause::Refused
            }
            _ => Cause::Other,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Cause::NoSuchBucket => {
                "create the bucket, or fix storage.s3.bucket (and region/endpoint if it lives elsewhere)"
            }
            Cause::Denied => {
                "the store refused the credentials: check storage.s3.access_key_id and \
                 secret_access_key (or the default credential chain), storage.s3.region, \
                 and the machine's clock"
            }
            Cause::Refused => {
                "nothing accepts connections at storage.s3.endpoint: check its scheme, host \
                 and port, and that the store is running"
            }
            Cause::Altered => {
                "something between fanout and the store changes objects; check storage.s3.endpoint"
            }
            Cause::Other => "check storage.s3.bucket, region and endpoint",
        }
    }
}

/// A failed S3 step: a message safe to print, and its cause for the hint.
#[derive(Debug)]
struct Failure {
    error: String,
    cause: Cause,
}

impl Failure {
    /// From an SDK error: the S3 error code and message when the store
    /// answered, else the transport error chain with URL queries removed.
    fn from_sdk<E>(what: &str, error: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let chain = error_chain(&error);
        let cause = Cause::of(error.code(), &chain);
        let detail = match &error {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                match (error.code(), error.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                    (Some(code), None) => format!("{code} (HTTP {status})"),
                    _ => format!("HTTP {status}"),
                }
            }
            _ => chain,
        };
        Failure {
            error: format!("{what}: {detail}"),
            cause,
        }
    }

    /// From a reqwest error, told without its URL (it holds the signature).
    fn from_reqwest(what: &str, error: reqwest::Error) -> Self {
        let text = error_chain(&error.without_url());
        Failure {
            cause: Cause::of(None, &text),
            error: format!("{what}: {text}"),
        }
    }

    /// From an S3 XML error body: its `<Code>` and `<Message>` only (the
    /// body may also echo the string to sign and the signature).
    fn from_xml(what: &str, status: u16, body: &[u8]) -> Self {
        let body = String::from_utf8_lossy(body);
        let element = |name: &str| {
            let open = format!("<{name}>");
            let start = body.find(&open)? + open.len();
            let end = body[start..].find(&format!("</{name}>"))? + start;
            Some(body[start..end].to_string())
        };
        let code = element("Code");
        let detail = match (&code, element("Message")) {
            (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
            (Some(code), None) => format!("{code} (HTTP {status})"),
            _ => format!("HTTP {status}"),
        };
        Failure {
            cause: Cause::of(code.as_deref(), ""),
            error: format!("{what}: {detail}"),
        }
    }

    fn into_storage_error(self) -> StorageError {
        StorageError::new(self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_stripped_from_urls_in_text() {
        let text = "error sending request for url (http://127.0.0.1:9000/b/k.png?X-Amz-Signature=abc&X-Amz-Credential=AK): refused";
        assert_eq!(
            strip_url_queries(text),
            "error sending request for url (http://127.0.0.1:9000/b/k.png): refused"
        );
    }

    #[test]
    fn target_names_bucket_prefix_and_endpoint_without_credentials() {
        let config = S3Config {
            bucket: "charts".into(),
            prefix: "fanout/".into(),
            region: "us-east-1".into(),
            endpoint: Some(Url::parse("https://user:pw@minio.example:9000/?x=1").unwrap()),
            path_style: true,
            access_key_id: Some("AKID".into()),
            secret_access_key: Some(crate::secret::Secret::new("sekrit")),
        };
        assert_eq!(
            target(&config),
            "s3://charts/fanout/ @ https://minio.example:9000"
        );
    }

    #[test]
    fn a_ttl_past_seven_days_is_clamped() {
        assert_eq!(clamp_ttl(MAX_URL_TTL * 2, "t"), MAX_URL_TTL);
        assert_eq!(
            clamp_ttl(Duration::from_secs(60), "t"),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn xml_errors_keep_code_and_message_only() {
        let body = b"<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message>\
            <SignatureProvided>deadbeef</SignatureProvided></Error>";
        let failure = Failure::from_xml("GET", 403, body);
        assert_eq!(failure.error, "GET: SignatureDoesNotMatch: no (HTTP 403)");
        assert_eq!(failure.cause, Cause::Denied);
    }
}
