//! Email over SMTP (lettre): text + HTML, charts inline by Content-ID,
//! one thread per alert group, a pooled transport.

pub mod config;
pub mod message;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use config::{EmailConfig, EmailTarget, Security, SmtpEndpoint};
pub use message::Rendered;

use super::{BuildContext, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Delivery, Reason, SendError, Sent};
use crate::template::fit::Unit;
use crate::template::Templates;

/// Sends one destination's emails.
pub struct EmailSender {
    destination: String,
    config: EmailConfig,
    templates: Arc<Templates>,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
}

impl EmailSender {
    pub fn new(
        destination: &str,
        config: &EmailConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            destination: destination.to_string(),
            config: config.clone(),
            templates: ctx.templates.clone(),
            smtp: smtp_transport(config)?,
        })
    }

    /// Render the templates and build the message, ready to send or write.
    pub fn message(
        &self,
        delivery: &Delivery,
        target: &EmailTarget,
    ) -> Result<(lettre::Message, Vec<Mailbox>), SendError> {
        let to = recipients(&self.config, target)?;
        let context = self.templates.context(delivery);
        let render = |name: &str| {
            self.templates
                .render(&self.destination, name, &context)
                .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))
        };
        // A subject is one line of limited length: the title (and any
        // other free text in it) is cut, the status and labels stay.
        let subject = self
            .templates
            .render_fitted(
                &self.destination,
                "email/subject.j2",
                delivery,
                Unit::Chars,
                message::over_subject_limit,
            )
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?
            .text;
        let rendered = Rendered {
            subject,
            text: render("email/text.j2")?,
            html: render("email/html.j2")?,
        };
        let message = message::build(&self.config.from, &to, delivery, rendered).map_err(|e| {
            SendError::permanent(Reason::Client, format!("cannot build the email: {e}"))
        })?;
        Ok((message, to))
    }
}

impl Sender for EmailSender {
    type Target = EmailTarget;
    type Request = lettre::Message;

    fn compose(
        &self,
        delivery: &Delivery,
        target: &EmailTarget,
    ) -> Result<lettre::Message, SendError> {
        self.message(delivery, target).map(|(message, _)| message)
    }

    // lettre's timeout bounds the connect only; a server that stalls
    // mid-conversation must not hold a delivery forever.
    async fn transmit(&self, _: &Delivery, message: lettre::Message) -> Result<Sent, SendError> {
        match within(self.config.timeout, self.smtp.send(message)).await {
            Ok(response) => Ok(Sent::new(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            ))),
            Err(Stalled::Timeout) => Err(self.stalled()),
            Err(Stalled::Smtp(e)) => Err(classify(&e, &self.config.smtp)),
        }
    }

    /// The message as it would go over the wire (RFC 5322).
    fn outbox_file(&self, _: &Delivery, message: &lettre::Message) -> OutboxFile {
        OutboxFile {
            suffix: ".eml",
            bytes: message.formatted(),
            charts: true,
        }
    }

    async fn check(&self) -> CheckRow {
        let component = format!("email {}", self.destination);
        let target = self.config.smtp.to_string();
        match within(self.config.timeout, self.smtp.test_connection()).await {
            Ok(true) => {
                let what = match (self.config.smtp.security, self.config.smtp.user.is_some()) {
                    (Security::Plain, false) => "connected, EHLO",
                    (Security::Plain, true) => "connected, EHLO, AUTH",
                    (_, false) => "connected, TLS, EHLO",
                    (_, true) => "connected, TLS, EHLO, AUTH",
                };
                CheckRow::ok(component, target, what)
            }
            Ok(false) => CheckRow::fail(
                component,
                target,
                "server did not answer NOOP",
                "is this an SMTP server?",
            ),
            Err(stalled) => {
                let error = match stalled {
                    Stalled::Timeout => self.stalled(),
                    Stalled::Smtp(e) => classify(&e, &self.config.smtp),
                };
                let hint = hint(&error);
                CheckRow::fail(component, target, error.message, hint)
            }
        }
    }
}

impl EmailSender {
    fn stalled(&self) -> SendError {
        SendError::retry(
            Reason::Timeout,
            format!(
                "SMTP {}: no answer within {}",
                self.config.smtp,
                humantime::format_duration(self.config.timeout)
            ),
        )
    }
}

/// An SMTP conversation that failed, or never finished.
enum Stalled {
    Timeout,
    Smtp(lettre::transport::smtp::Error),
}

/// Run one SMTP conversation with an overall deadline.
async fn within<T>(
    limit: std::time::Duration,
    conversation: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Stalled> {
    match tokio::time::timeout(limit, conversation).await {
        Ok(result) => result.map_err(Stalled::Smtp),
        Err(_) => Err(Stalled::Timeout),
    }
}

/// The target's `to`, else the destination's.
fn recipients(config: &EmailConfig, target: &EmailTarget) -> Result<Vec<Mailbox>, SendError> {
    let Some(list) = &target.to else {
        if config.to.is_empty() {
            return Err(SendError::permanent(
                Reason::Client,
                "no recipients: the target has no `to` and the destination no default `to`",
            ));
        }
        return Ok(config.to.clone());
    };
    list.iter()
        .map(|a| {
            a.parse::<Mailbox>().map_err(|e| {
                SendError::permanent(
                    Reason::Client,
                    format!("{a:?} is not an email address ({e})"),
                )
            })
        })
        .collect()
}

fn smtp_transport(config: &EmailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let endpoint = &config.smtp;
    let tls = match endpoint.security {
        Security::Plain => Tls::None,
        security => {
            let mut params = TlsParameters::builder(endpoint.host.clone());
            if let Some(pem) = &config.tls_ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| format!("tls_ca_file: {e}"))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("TLS setup for {endpoint}: {e}"))?;
            if security == Security::Implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(endpoint.host.as_str())
            .port(endpoint.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(4));
    if let (Some(user), Some(password)) = (&endpoint.user, &endpoint.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

/// SMTP 4xx, timeouts and lost connections may pass; 5xx will not.
/// The message names the server by its redacted form only.
pub fn classify(error: &lettre::transport::smtp::Error, endpoint: &SmtpEndpoint) -> SendError {
    let text = format!("SMTP {endpoint}: {error}");
    if error.is_transient() {
        SendError::retry(Reason::Server, text)
    } else if error.is_permanent() {
        let auth = error
            .status()
            .is_some_and(|code| matches!(code.to_string().as_str(), "530" | "534" | "535" | "538"));
        SendError::permanent(if auth { Reason::Auth } else { Reason::Client }, text)
    } else if error.is_timeout() {
        SendError::retry(Reason::Timeout, text)
    } else if error.is_tls() {
        // A bad certificate or protocol mismatch is configuration: retrying
        // sends the same handshake to the same server.
        SendError::permanent(Reason::Client, text)
    } else {
        SendError::retry(Reason::Other, text)
    }
}

fn hint(error: &SendError) -> &'static str {
    match error.reason {
        Reason::Auth => "check the user and password in smtp_url",
        Reason::Client if error.message.contains("tls") => {
            "check smtps:// vs ?tls=starttls and the server's certificate (tls_ca_file for a private CA)"
        }
        Reason::Timeout => "is the host reachable on that port? a firewall dropping packets looks like this",
        _ => "is the server running and listening on that host and port?",
    }
}
