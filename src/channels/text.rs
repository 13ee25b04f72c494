//! Vendors cap text in bytes (WeCom) or characters (Slack). A cut text
//! says so with a marker, and is never cut inside a character.

use std::borrow::Cow;

/// Marks where a text was cut.
pub const CUT: &str = "\n…(truncated)";

/// `text` within `max` bytes of UTF-8: whole, or cut at a character
/// boundary with `marker` appended (the marker counts toward `max`).
pub fn fit_bytes<'a>(text: &'a str, max: usize, marker: &str) -> Cow<'a, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let room = max.saturating_sub(marker.len());
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let marker = if marker.len() <= max { marker } else { "" };
    Cow::Owned(format!("{}{marker}", &text[..end]))
}

/// `text` within `max` characters, cut with `marker` when longer.
pub fn fit_chars<'a>(text: &'a str, max: usize, marker: &str) -> Cow<'a, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    let room = max.saturating_sub(marker.chars().count());
    let kept: String = text.chars().take(room).collect();
    Cow::Owned(kept + marker)
}

/// The bytes `text` takes as a JSON string (quotes and escapes counted):
/// what a card embedding it grows by. Escaping can double a text.
pub fn json_len(text: &str) -> usize {
    serde_json::Value::from(text).to_string().len()
}

/// `text` cut (with [`CUT`], on a character boundary) until it takes at
/// most `max` bytes as a JSON string: the last resort after the template's
/// own fitting, for a text whose escapes outgrew the estimate.
pub fn fit_json(text: &str, max: usize) -> String {
    let mut text = text.to_string();
    while json_len(&text) > max && !text.is_empty() {
        let keep = text.len() * 9 / 10;
        text = fit_bytes(&text, keep, CUT).into_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_never_splits_a_character_and_stays_within_the_limit() {
        // 3-byte characters, 4-byte emoji and ASCII, cut at every length.
        let text = "告警 CPU 🔥🔥 使用率过高 on api-1 ".repeat(40);
        for max in 0..text.len() + 2 {
            let out = fit_bytes(&text, max, CUT);
            assert!(out.len() <= max, "{max}: {} bytes", out.len());
            if max >= text.len() {
                assert_eq!(out, text);
            } else if max >= CUT.len() {
                assert!(out.ends_with(CUT), "{max}");
                assert!(text.starts_with(out.trim_end_matches(CUT)));
            }
        }
    }

    #[test]
    fn exactly_at_the_limit_is_not_cut() {
        let text = "é".repeat(2048); // 4096 bytes
        assert_eq!(fit_bytes(&text, 4096, CUT), text);
        let longer = format!("{text}x");
        let cut = fit_bytes(&longer, 4096, CUT);
        assert!(cut.len() <= 4096 && cut.ends_with(CUT));
        // 4096 - 15 bytes of marker leaves an odd count: one byte unused.
        assert_eq!(cut.len(), 4095);
    }

    #[test]
    fn characters_are_counted_for_slack() {
        assert_eq!(fit_chars("héllo", 5, "…"), "héllo");
        assert_eq!(fit_chars("héllo wörld", 6, "…"), "héllo…");
        assert_eq!(fit_chars("🔥🔥🔥", 2, "…").chars().count(), 2);
    }
}
