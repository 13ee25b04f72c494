//! The bytes of an external upload (the POST to the upload URL): raw or
//! multipart, as `files.getUploadURLExternal` documents.

use super::*;

/// The bytes of an upload: the raw body, or the file part of a
/// multipart/form-data body.
pub(super) fn file_bytes(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if media_type(content_type).0 == "multipart/form-data" {
        multipart_file(content_type, body)
    } else {
        Ok(body.to_vec())
    }
}

/// The file part of a multipart/form-data body (RFC 7578): the part whose
/// Content-Disposition has a filename, or the only part there is.
pub(super) fn multipart_file(content_type: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let malformed = || "malformed multipart body".to_string();
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or("multipart content type without a boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut at = find(body, &delimiter, 0).ok_or_else(malformed)?;
    loop {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            break;
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err(malformed());
        }
        let start = at + 2;
        let next = find(body, &delimiter, start).ok_or_else(malformed)?;
        // The CRLF before a delimiter belongs to the delimiter.
        let end = next
            .checked_sub(2)
            .filter(|&end| end >= start && &body[end..next] == b"\r\n")
            .ok_or_else(malformed)?;
        let part = &body[start..end];
        let split = find(part, b"\r\n\r\n", 0).ok_or_else(malformed)?;
        let head = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        parts.push((head, part[split + 4..].to_vec()));
        at = next;
    }
    let only = parts.len() == 1;
    parts
        .into_iter()
        .find(|(head, _)| only || head.contains("filename="))
        .map(|(_, bytes)| bytes)
        .ok_or_else(|| "no file part in the multipart body".to_string())
}

pub(super) fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}
