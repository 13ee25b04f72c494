//! A generic webhook: POST the alert as JSON (rendered by a template) to a
//! URL, optionally signed, for engines that want raw events.
//!
//! Each request carries `X-Fanout-Delivery` (job/step/destination), stable
//! across retries, so a receiver can drop a duplicate; with `secret`, also
//! `X-Fanout-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

pub mod config;
#[cfg(test)]
mod tests;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use sha2::Sha256;

pub use config::WebhookConfig;

use super::http::{classify, transport_error, SenderParts};
use super::{BuildContext, NoOverrides, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::clock::unix_now;
use crate::delivery::{Delivery, Reason, SendError, Sent};
use crate::secret::REDACTED;

pub const DELIVERY_HEADER: &str = "x-fanout-delivery";
pub const SIGNATURE_HEADER: &str = "x-fanout-signature";

pub struct WebhookSender {
    config: WebhookConfig,
    parts: SenderParts,
}

/// One request, ready to send or to write to the outbox.
pub struct Request {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl WebhookSender {
    pub fn new(
        destination: &str,
        config: &WebhookConfig,
        ctx: &BuildContext,
    ) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    fn what(&self) -> String {
        format!("webhook {}", self.config.url)
    }

    /// Render the body (it must be JSON) and build the headers, signed at
    /// `now` (unix seconds).
    pub fn compose_at(&self, delivery: &Delivery, now: u64) -> Result<Request, SendError> {
        let body = self
            .parts
            .templates
            .render(
                &self.parts.destination,
                "webhook/body.json.j2",
                &self.parts.templates.context(delivery),
            )
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?;
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
            return Err(SendError::permanent(
                Reason::Template,
                format!("template webhook/body.json.j2 did not produce JSON: {e}"),
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &self.config.headers {
            if let Ok(v) = HeaderValue::from_str(value.expose()) {
                headers.insert(name.clone(), v);
            }
        }
        let id = format!(
            "{}/{}/{}",
            delivery.job.id,
            delivery.log_step(),
            delivery.destination()
        );
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert(HeaderName::from_static(DELIVERY_HEADER), v);
        }
        if let Some(secret) = &self.config.secret {
            let signature = format!("t={now},v1={}", sign(secret.expose(), now, body.as_bytes()));
            if let Ok(v) = HeaderValue::from_str(&signature) {
                headers.insert(HeaderName::from_static(SIGNATURE_HEADER), v);
            }
        }
        Ok(Request {
            headers,
            body: body.into_bytes(),
        })
    }

    /// The outbox form: method, redacted URL, headers (configured values
    /// and the signature redacted), and the body as JSON.
    fn outbox_json(&self, request: &Request) -> Vec<u8> {
        let configured: Vec<&HeaderName> = self.config.headers.iter().map(|(n, _)| n).collect();
        let headers: serde_json::Map<String, serde_json::Value> = request
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if configured.contains(&name) || name.as_str() == SIGNATURE_HEADER {
                    REDACTED.to_string()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name.to_string(), shown.into())
            })
            .collect();
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let doc = serde_json::json!({
            "method": "POST",
            "url": self.config.url.to_string(),
            "headers": headers,
            "body": body,
        });
        serde_json::to_vec_pretty(&doc).unwrap_or_default()
    }
}

/// Hex HMAC-SHA256 of `"<t>.<body>"`, the receiver's check.
pub fn sign(secret: &str, t: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl Sender for WebhookSender {
    type Target = NoOverrides;
    type Request = Request;

    fn compose(&self, delivery: &Delivery, _: &NoOverrides) -> Result<Request, SendError> {
        self.compose_at(delivery, unix_now())
    }

    async fn transmit(&self, _: &Delivery, request: Request) -> Result<Sent, SendError> {
        let response = self
            .parts
            .client
            .post(self.config.url.expose().clone())
            .headers(request.headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        let status = response.status();
        classify(status, response.headers(), &self.what())?;
        Ok(Sent::new(format!("{status}")))
    }

    fn outbox_file(&self, _: &Delivery, request: &Request) -> OutboxFile {
        OutboxFile {
            suffix: ".json",
            bytes: self.outbox_json(request),
            charts: true,
        }
    }

    /// Reachability only: a probe must not post a fake alert.
    async fn check(&self) -> CheckRow {
        super::http::probe_connect(
            format!("webhook {}", self.parts.destination),
            self.config.url.expose(),
            self.config.timeout,
            "",
            "is the receiver running, and the URL right?",
        )
        .await
    }
}
