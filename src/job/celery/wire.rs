//! A Celery message body as kombu puts it on the wire: compressed or not
//! (the `compression` header), serialized by `task_serializer`, with
//! kombu's own wrappers for Python types inside. Everything here turns
//! those bytes back into plain JSON, or says which producer setting to
//! change.
//!
//! What Celery 5's worker accepts and this reads: JSON (the default,
//! `application/json`) and msgpack (`application/x-msgpack`), each
//! compressed with any codec kombu ships (zlib under its `gzip` name,
//! bzip2, xz/lzma, brotli, zstd), JSON with Python's `NaN`/`Infinity`,
//! and kombu ≥ 5.3's `{"__type__": "datetime", "__value__": …}` wrappers.
//! What it refuses on purpose: pickle (code, not data) and YAML.

use std::borrow::Cow;
use std::io::{Read, Write};

use serde_json::Value;

use super::super::decode::{DecodeError, MAX_READ_BYTES};

/// The setting a producer changes to send what fanout reads.
pub const SERIALIZER_HINT: &str =
    "set task_serializer = \"json\" in the producer's Celery config (or serializer=\"json\" on send_task/apply_async)";

fn field(path: &str, message: impl Into<String>) -> DecodeError {
    DecodeError::Field {
        path: path.to_string(),
        message: message.into(),
    }
}

/// The body as sent before kombu compressed it. `compression` is the
/// header's value: kombu writes the codec's MIME type, and reads its
/// aliases too. A body that would inflate past [`MAX_READ_BYTES`] is
/// refused rather than inflated.
pub fn decompress<'a>(
    compression: Option<&str>,
    body: &'a [u8],
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let Some(name) = compression else {
        return Ok(Cow::Borrowed(body));
    };
    let broken = |e: std::io::Error| {
        field(
            "headers.compression",
            format!("the body is not valid {name} data ({e})"),
        )
    };
    let out = match name {
        // kombu's "gzip" is zlib's format (RFC 1950); a real gzip stream
        // (RFC 1952, magic 1f 8b) is read too.
        "application/x-gzip" | "gzip" | "zlib" => {
            if body.starts_with(&[0x1f, 0x8b]) {
                capped(flate2::read::GzDecoder::new(body))
            } else {
                capped(flate2::read::ZlibDecoder::new(body))
            }
        }
        "application/x-bz2" | "bzip2" | "bzip" => capped(bzip2::read::BzDecoder::new(body)),
        "application/x-brotli" | "brotli" => {
            capped(brotli_decompressor::Decompressor::new(body, 64 * 1024))
        }
        "application/zstd" | "zstd" | "zstandard" => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(body).map_err(|e| {
                field(
                    "headers.compression",
                    format!("the body is not valid zstd data ({e})"),
                )
            })?;
            capped(decoder)
        }
        // Python's lzma.compress writes the .xz container; the older
        // .lzma ("alone") format is read too.
        "application/x-lzma" | "lzma" | "xz" => {
            let mut out = CappedWriter::default();
            let mut input = body;
            let read = if body.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
                lzma_rs::xz_decompress(&mut input, &mut out)
            } else {
                lzma_rs::lzma_decompress(&mut input, &mut out)
            };
            match read {
                Ok(()) => Ok(out.buf),
                Err(_) if out.over => Err(std::io::Error::other(TOO_BIG)),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            }
        }
        other => {
            return Err(field(
                "headers.compression",
                format!(
                    "{other:?} is not a codec kombu ships; compress with \"zlib\", \"bzip2\", \"lzma\", \"brotli\" or \"zstd\", or not at all"
                ),
            ))
        }
    };
    match out {
        Ok(bytes) => Ok(Cow::Owned(bytes)),
        Err(e) if e.to_string() == TOO_BIG => Err(field(
            "headers.compression",
            format!(
                "the {body_len}-byte body inflates past the {MAX_READ_BYTES} bytes fanout reads",
                body_len = body.len()
            ),
        )),
        Err(e) => Err(broken(e)),
    }
}

const TOO_BIG: &str = "inflates past the read limit";

/// Read all of `reader`, refusing to hold more than [`MAX_READ_BYTES`].
fn capped(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(MAX_READ_BYTES as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > MAX_READ_BYTES {
        return Err(std::io::Error::other(TOO_BIG));
    }
    Ok(out)
}

/// A sink that refuses to grow past [`MAX_READ_BYTES`].
#[derive(Default)]
struct CappedWriter {
    buf: Vec<u8>,
    over: bool,
}

impl Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_READ_BYTES {
            self.over = true;
            return Err(std::io::Error::other(TOO_BIG));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The body as JSON, by its content type. Celery's own worker picks the
/// decoder by content type alone (the encoding is not read), so this does
/// too. No content type: Celery's worker would not decode it; fanout
/// reads it as JSON, the only thing a stock producer sends untyped by
/// mistake.
pub fn deserialize(content_type: Option<&str>, body: &[u8]) -> Result<Value, DecodeError> {
    let essence = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_ascii_lowercase())
        .unwrap_or_else(|| "application/json".to_string());
    let value = match essence.as_str() {
        "application/json" => json(body)?,
        "application/x-msgpack" | "application/msgpack" => rmp_serde::from_slice::<Value>(body)
            .map_err(|e| DecodeError::Syntax(format!("not msgpack: {e}")))?,
        "application/x-python-serialize" => {
            return Err(field(
                "content_type",
                format!("application/x-python-serialize (pickle) is refused: a pickled body is code, not data; {SERIALIZER_HINT}"),
            ))
        }
        "application/x-yaml" => {
            return Err(field(
                "content_type",
                format!("application/x-yaml is not read by fanout; {SERIALIZER_HINT}"),
            ))
        }
        other => {
            return Err(field(
                "content_type",
                format!("{other} is not accepted; {SERIALIZER_HINT}"),
            ))
        }
    };
    Ok(unwrap_kombu_types(value))
}

/// JSON as Python's `json.dumps` writes it: with `NaN`, `Infinity` and
/// `-Infinity` where a float was not finite (read here as `null`).
fn json(body: &[u8]) -> Result<Value, DecodeError> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(first) => {
            let repaired = non_finite_to_null(body);
            match &repaired {
                Cow::Owned(bytes) => serde_json::from_slice(bytes),
                Cow::Borrowed(_) => Err(first),
            }
            .map_err(|e| DecodeError::Syntax(e.to_string()))
        }
    }
}

/// `body` with the bare tokens `NaN`, `Infinity` and `-Infinity` (outside
/// strings) replaced by `null`; borrowed when it has none.
fn non_finite_to_null(body: &[u8]) -> Cow<'_, [u8]> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if let Some(token) = TOKENS.iter().find(|t| body[i..].starts_with(t)) {
            let out = out.get_or_insert_with(|| body[..i].to_vec());
            out.extend_from_slice(b"null");
            i += token.len();
            continue;
        }
        if let Some(out) = out.as_mut() {
            out.push(b);
        }
        i += 1;
    }
    out.map_or(Cow::Borrowed(body), Cow::Owned)
}

/// kombu ≥ 5.3 writes Python values JSON has no type for (datetime, date,
/// time, Decimal, UUID, bytes) as `{"__type__": name, "__value__": text}`.
/// The text is what the job contract reads (an ISO time, a number as
/// text), so each wrapper becomes its `__value__`.
fn unwrap_kombu_types(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if map.len() == 2 && map.contains_key("__type__") && map.contains_key("__value__") {
                let inner = map.remove("__value__").unwrap_or(Value::Null);
                return match (map.get("__type__").and_then(Value::as_str), inner) {
                    (Some("decimal"), Value::String(text)) => text
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or(Value::String(text), Value::Number),
                    (_, inner) => unwrap_kombu_types(inner),
                };
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, unwrap_kombu_types(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(unwrap_kombu_types).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_non_finite_floats_read_as_null_and_strings_are_left_alone() {
        let body = br#"{"a": NaN, "b": [Infinity, -Infinity, 1.5], "c": "NaN and \"Infinity\""}"#;
        let value = json(body).unwrap();
        assert_eq!(value["a"], Value::Null);
        assert_eq!(value["b"], serde_json::json!([null, null, 1.5]));
        assert_eq!(value["c"], "NaN and \"Infinity\"");
        assert!(matches!(
            json(b"{\"a\": Nope}"),
            Err(DecodeError::Syntax(_))
        ));
    }

    #[test]
    fn kombu_wrappers_become_their_values() {
        let wrapped = serde_json::json!({"started_at": {"__type__": "datetime", "__value__": "2026-11-30T08:00:00"},
            "n": {"__type__": "decimal", "__value__": "1.5"}, "keep": {"__type__": "x", "other": 1}});
        let plain = unwrap_kombu_types(wrapped);
        assert_eq!(plain["started_at"], "2026-11-30T08:00:00");
        assert_eq!(plain["n"], 1.5);
        assert_eq!(plain["keep"]["other"], 1);
    }

    #[test]
    fn every_codec_kombu_ships_is_read_and_unknown_ones_named() {
        let body = br#"[[], {"job": {}}, {}]"#;
        let zlib = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        };
        let gzip = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        };
        let bz2 = {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut out = Vec::new();
            lzma_rs::xz_compress(&mut &body[..], &mut out).unwrap();
            out
        };
        for (name, data) in [
            ("application/x-gzip", &zlib),
            ("zlib", &zlib),
            ("gzip", &gzip),
            ("application/x-bz2", &bz2),
            ("xz", &xz),
            ("application/x-lzma", &xz),
        ] {
            assert_eq!(
                decompress(Some(name), data).unwrap().as_ref(),
                body,
                "{name}"
            );
        }
        let err = decompress(Some("snappy"), body).unwrap_err().to_string();
        assert!(
            err.contains("\"snappy\" is not a codec kombu ships"),
            "{err}"
        );
        let err = decompress(Some("zlib"), b"not zlib")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid zlib data"), "{err}");
    }

    #[test]
    fn a_bomb_is_refused_not_inflated() {
        let zeros = vec![0u8; MAX_READ_BYTES + 1024];
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&zeros).unwrap();
        let bomb = e.finish().unwrap();
        let err = decompress(Some("zlib"), &bomb).unwrap_err().to_string();
        assert!(err.contains("inflates past"), "{err}");
    }

    #[test]
    fn pickle_and_yaml_are_refused_naming_the_producer_setting() {
        for ct in [
            "application/x-python-serialize",
            "application/x-yaml",
            "text/plain",
        ] {
            let err = deserialize(Some(ct), b"x").unwrap_err().to_string();
            assert!(err.contains("task_serializer = \"json\""), "{ct}: {err}");
        }
        assert_eq!(
            deserialize(Some("application/json; charset=utf-8"), b"[1]").unwrap(),
            serde_json::json!([1])
        );
        let packed = rmp_serde::to_vec(&serde_json::json!([[], {"job": {"id": "x"}}, {}])).unwrap();
        assert_eq!(
            deserialize(Some("application/x-msgpack"), &packed).unwrap()[1]["job"]["id"],
            "x"
        );
    }
}
