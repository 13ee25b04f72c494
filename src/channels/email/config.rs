//! Email destination settings: `smtp_url`, `from`, `to`, `tls_ca_file`, `timeout`.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use url::Url;

use crate::channels::{BuildContext, ChannelSpec};
use crate::net::is_loopback;
use crate::secret::{Secret, REDACTED};
use crate::template::DefaultTemplate;
use crate::section::{check_url, Section};

#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub smtp: SmtpEndpoint,
    pub from: Mailbox,
    /// Default recipients; a job target's `to` replaces them.
    pub to: Vec<Mailbox>,
    /// Extra trust root (PEM) for an SMTP server with a private CA.
    pub tls_ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// What a job's target may change for an email destination.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct EmailTarget {
    /// Email: recipients instead of the destination's `to`.
    pub to: Option<Vec<String>>,
}

/// How the connection is protected, as the URL says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://…?tls=starttls`: upgrade required, never falls back to plain.
    StartTls,
    /// `smtp://` to a loopback address only (a local relay or test server).
    Plain,
}

/// Where and how to reach the SMTP server. `Display` hides the password.
#[derive(Clone, Debug)]
pub struct SmtpEndpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl fmt::Display for SmtpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            Security::Implicit => "smtps",
            _ => "smtp",
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}")?;
            if self.password.is_some() {
                write!(f, ":{REDACTED}")?;
            }
            write!(f, "@")?;
        }
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{host}:{}", self.port)?;
        if self.security == Security::StartTls {
            write!(f, "?tls=starttls")?;
        }
        Ok(())
    }
}

const URL_HINT: &str = "smtps://user:pass@host:465, smtp://host:587?tls=starttls, or smtp://127.0.0.1:2525 for a local relay";

impl SmtpEndpoint {
    /// Parse `smtp_url`. Errors never quote the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<Self, (String, &'static str)> {
        let url: Url =
            check_url(text, &["smtp", "smtps"]).map_err(|(message, _)| (message, URL_HINT))?;
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err(("has no host".into(), URL_HINT)),
        };
        let mut starttls = false;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "starttls") => starttls = true,
                ("tls", other) => {
                    return Err((
                        format!("tls={other} is not supported; only tls=starttls (or smtps:// for implicit TLS)"),
                        URL_HINT,
                    ))
                }
                (other, _) => {
                    return Err((format!("unknown query parameter `{other}`"), URL_HINT))
                }
            }
        }
        let security = match (url.scheme(), starttls) {
            ("smtps", false) => Security::Implicit,
            ("smtps", true) => {
                return Err((
                    "smtps:// is already TLS; drop ?tls=starttls".into(),
                    URL_HINT,
                ))
            }
            (_, true) => Security::StartTls,
            _ if is_loopback(&host) => Security::Plain,
            _ => {
                return Err((
                    format!("plain SMTP to {host} would send credentials and alerts in clear text; it is allowed only for loopback"),
                    URL_HINT,
                ))
            }
        };
        let port = url.port().unwrap_or(match security {
            Security::Implicit => 465,
            Security::StartTls => 587,
            Security::Plain => 25,
        });
        let decode = |s: &str| {
            percent_decode(s).ok_or((
                "user or password is not valid percent-encoded UTF-8".to_string(),
                URL_HINT,
            ))
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = match url.password() {
            Some(p) => Some(Secret::new(decode(p)?)),
            None => None,
        };
        if password.is_some() && user.is_none() {
            return Err(("a password needs a user".into(), URL_HINT));
        }
        Ok(Self {
            host,
            port,
            security,
            user,
            password,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

impl ChannelSpec for EmailConfig {
    const NAME: &'static str = "email";
    const TEMPLATES: &'static [DefaultTemplate] = &[
        DefaultTemplate {
            name: "email/subject.j2",
            source: include_str!("../../../templates/email/subject.j2"),
        },
        DefaultTemplate {
            name: "email/text.j2",
            source: include_str!("../../../templates/email/text.j2"),
        },
        DefaultTemplate {
            name: "email/html.j2",
            source: include_str!("../../../templates/email/html.j2"),
        },
    ];

    type Target = EmailTarget;
    type Sender = super::EmailSender;

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::EmailSender::new(destination, self, ctx)
    }

    /// A target's `to` must be addresses; without one, the destination
    /// must have default recipients.
    fn check_target(&self, destination: &str, target: &EmailTarget) -> Vec<(String, String)> {
        match &target.to {
            None if self.to.is_empty() => vec![(
                "to".into(),
                format!("destination {destination:?} has no default `to`; give recipients here"),
            )],
            None => Vec::new(),
            Some(list) if list.is_empty() => vec![("to".into(), "is empty".into())],
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    a.parse::<Mailbox>().err().map(|e| {
                        (
                            format!("to[{i}]"),
                            format!("{a:?} is not an email address ({e})"),
                        )
                    })
                })
                .collect(),
        }
    }

    fn read(s: &Section) -> Option<Self> {
        let smtp =
            s.required_string("smtp_url", URL_HINT).and_then(|text| {
                match SmtpEndpoint::parse(&text) {
                    Ok(endpoint) => Some(endpoint),
                    Err((message, hint)) => {
                        s.error("smtp_url", message, Some(hint));
                        None
                    }
                }
            });
        let mailbox = |key: &str, text: &str| match text.parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(e) => {
                s.error(
                    key,
                    format!("{text:?} is not an email address ({e})"),
                    Some("write it as addr@example.com or \"Name <addr@example.com>\""),
                );
                None
            }
        };
        let from = s
            .required_string("from", "the sender, e.g. \"fanout <alerts@example.com>\"")
            .and_then(|t| mailbox("from", &t));
        let mut to = Vec::new();
        let mut to_ok = true;
        for (i, t) in s.string_list("to").unwrap_or_default().iter().enumerate() {
            match mailbox(&format!("to[{i}]"), t) {
                Some(m) => to.push(m),
                None => to_ok = false,
            }
        }
        let tls_ca_pem = s
            .string("tls_ca_file")
            .and_then(|path| match std::fs::read(&path) {
                Ok(pem) if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_ok() => {
                    Some(pem)
                }
                Ok(_) => {
                    s.error(
                        "tls_ca_file",
                        format!("{path} holds no PEM certificate"),
                        None,
                    );
                    None
                }
                Err(e) => {
                    s.error("tls_ca_file", format!("cannot read {path}: {e}"), None);
                    None
                }
            });
        let timeout = s.span("timeout").map_or(Duration::from_secs(30), |t| t.0);
        Some(Self {
            smtp: smtp?,
            from: from?,
            to: if to_ok { to } else { return None },
            tls_ca_pem,
            timeout,
        })
    }
}
