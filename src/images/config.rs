//! `[storage]`: where chart PNGs are kept, read key by key with every
//! mistake named ([`crate::section`]).

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::secret::Secret;
use crate::section::Section;

/// Signing keys shorter than this are refused (HMAC-SHA256 wants 32 bytes).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

#[derive(Clone, Debug)]
pub enum StorageKind {
    Internal,
    S3(Box<S3Config>),
}

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub kind: StorageKind,
    pub dir: PathBuf,
    pub signing_key: Option<Secret>,
    pub url_ttl: Duration,
    pub retention: Duration,
}

#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// Prepended to every object key, e.g. `charts/`.
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<Url>,
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
}

/// Read `[storage]`; `public_url_missing` says `[http] public_url` is
/// unset, which `kind = "internal"` needs to build image URLs.
pub fn read_storage(s: &Section, public_url_missing: bool) -> Option<StorageConfig> {
    let kind_name = s.required_string("kind", "internal (files served by fanout) or s3");
    let dir = s
        .string("dir")
        .map_or_else(|| PathBuf::from("./images"), PathBuf::from);
    let signing_key = s.secret("signing_key");
    let url_ttl = s
        .span("url_ttl")
        .map_or(Duration::from_secs(7 * 86_400), |t| t.0);
    let retention = s
        .span("retention")
        .map_or(Duration::from_secs(30 * 86_400), |t| t.0);
    let s3 = s.table("s3");
    let kind = match kind_name.as_deref() {
        Some("internal") => {
            match &signing_key {
                None => s.error(
                    "signing_key",
                    "is required for kind = \"internal\"",
                    Some("at least 32 random bytes, e.g. `openssl rand -hex 32`"),
                ),
                Some(key) => s.key_length("signing_key", key, MIN_SIGNING_KEY_BYTES),
            }
            if public_url_missing {
                s.error(
                    "kind",
                    "kind = \"internal\" builds image URLs from http.public_url, which is not set",
                    Some("set [http] public_url to the address people's mail and chat clients reach fanout at"),
                );
            }
            if let Some(s3) = &s3 {
                s.error(
                    "s3",
                    "is only read when kind = \"s3\"",
                    Some("remove [storage.s3] or set kind = \"s3\""),
                );
                s3.known(&s3.keys().iter().map(String::as_str).collect::<Vec<_>>());
            }
            Some(StorageKind::Internal)
        }
        Some("s3") => match &s3 {
            Some(s3) => read_s3(s3).map(|c| StorageKind::S3(Box::new(c))),
            None => {
                s.error(
                    "s3",
                    "is required for kind = \"s3\"",
                    Some("add [storage.s3] with bucket and region"),
                );
                None
            }
        },
        Some(other) => {
            s.error(
                "kind",
                format!("{other:?} is not a storage kind"),
                Some("internal or s3"),
            );
            None
        }
        None => None,
    };
    if let Some(s3) = s3 {
        s3.finish();
    }
    s.finish();
    Some(StorageConfig {
        kind: kind?,
        dir,
        signing_key,
        url_ttl,
        retention,
    })
}

fn read_s3(s: &Section) -> Option<S3Config> {
    let bucket = s.required_string("bucket", "the bucket chart PNGs are put in");
    let prefix = s.string("prefix").unwrap_or_default();
    let region = s.string("region").unwrap_or_else(|| "us-east-1".into());
    let endpoint = s.url("endpoint", &["http", "https"]);
    let path_style = s.bool("path_style").unwrap_or(false);
    let access_key_id = s.string("access_key_id");
    let secret_access_key = s.secret("secret_access_key");
    // Judged on the keys written: an unset ${VAR} was reported already.
    if s.has("access_key_id") != s.has("secret_access_key") {
        s.error(
            if s.has("access_key_id") {
                "secret_access_key"
            } else {
                "access_key_id"
            },
            "access_key_id and secret_access_key go together",
            Some("give both, or neither to use the default credential chain"),
        );
        return None;
    }
    Some(S3Config {
        bucket: bucket?,
        prefix,
        region,
        endpoint,
        path_style,
        access_key_id,
        secret_access_key,
    })
}
