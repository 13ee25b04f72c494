//! Small facts about hosts and URLs that every stage asks: is a host this
//! machine, and how to quote a URL without its password.

use std::borrow::Cow;

/// `localhost`, 127.0.0.0/8 or ::1 (brackets allowed: `[::1]`). Only these
/// may use plain SMTP, and only for these are certificate errors forgiven.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://user:pass@host` → `scheme://***@host`, so a URL quoted in an
/// error or a log never carries its password. Text without userinfo is
/// returned as it is.
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.into();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    match text[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &text[start + at..]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_localhost_127_8_and_ipv6_one() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["localhost.example.com", "10.0.0.1", "grafana", "::2", ""] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn userinfo_is_redacted_before_quoting() {
        assert_eq!(
            redact_userinfo("amqp://u:pw@h:5672/v"),
            "amqp://***@h:5672/v"
        );
        assert_eq!(redact_userinfo("https://h/p@x"), "https://h/p@x");
        assert_eq!(redact_userinfo("no scheme"), "no scheme");
    }
}
