//! Microsoft Teams through a Workflows webhook: one message whose
//! attachment is an Adaptive Card (schema 1.5): the title in the
//! severity's colour, the times and labels as facts, the alert's words,
//! each chart as an `Image` by its signed URL (a card cannot carry files,
//! so a Teams destination needs `[storage]`), and `Action.OpenUrl`
//! buttons for the panel, the source and the action links.
//!
//! The workflow answers 202 when it takes the message; 429 and 5xx are
//! retried (with `Retry-After`), other 4xx are permanent. A Teams message
//! holds about 28 KB: the card is fitted under that before it is sent.

pub mod config;
#[cfg(test)]
mod tests;

use serde_json::{json, Value};

pub use config::TeamsConfig;

use super::http::{classify, transport_error, SenderParts};
use super::text::{fit_json, json_len};
use super::{BuildContext, NoOverrides, OutboxFile, Sender};
use crate::check::CheckRow;
use crate::delivery::{Delivery, Reason, SendError, Sent};
use crate::job::{Severity, Status};
use crate::template::fit::Unit;

/// The most bytes a message (the card with its envelope) may be.
pub const MESSAGE_MAX_BYTES: usize = 28_000;
pub const CARD_VERSION: &str = "1.5";

pub struct TeamsSender {
    config: TeamsConfig,
    parts: SenderParts,
}

impl TeamsSender {
    pub fn new(destination: &str, config: &TeamsConfig, ctx: &BuildContext) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            parts: SenderParts::new(destination, config.timeout, ctx)?,
        })
    }

    fn what(&self) -> String {
        format!("teams workflow {}", self.config.webhook_url)
    }

    /// The message: its card, with the alert's words cut so the whole
    /// stays under [`MESSAGE_MAX_BYTES`].
    pub fn message(&self, delivery: &Delivery) -> Result<Value, SendError> {
        let context = self.parts.templates.context(delivery);
        let times = [
            ("Started", context.alert.started_at_local.clone()),
            ("Ended", context.alert.ended_at_local.clone()),
        ];
        let card = |words: &str| card(delivery, &times, words);
        let without = envelope(card(""));
        let room = MESSAGE_MAX_BYTES.saturating_sub(without.to_string().len() + 64);
        let fitted = self
            .parts
            .templates
            .render_fitted(&self.parts.destination, "teams/message.md.j2", delivery, Unit::Bytes, |t| {
                json_len(t.trim()).saturating_sub(room)
            })
            .map_err(|e| SendError::permanent(Reason::Template, e.to_string()))?;
        Ok(envelope(card(&fit_json(fitted.text.trim(), room))))
    }
}

fn envelope(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// The Adaptive Card for `delivery`, its local `times` and `words`.
fn card(delivery: &Delivery, times: &[(&str, Option<String>)], words: &str) -> Value {
    let alert = &delivery.job.alert;
    let (state, colour) = match (alert.status, alert.severity) {
        (Status::Resolved, _) => ("RESOLVED".to_string(), "Good"),
        (_, s @ (Severity::Critical | Severity::Error)) => (format!("{s:?}").to_uppercase(), "Attention"),
        (_, Severity::Warning) => ("WARNING".to_string(), "Warning"),
        (_, Severity::Info) => ("INFO".to_string(), "Default"),
    };
    let mut facts = Vec::new();
    for (label, at) in times {
        if let Some(at) = at {
            facts.push(json!({"title": label, "value": at}));
        }
    }
    facts.push(json!({"title": "Group", "value": alert.group_id}));
    for (name, value) in &alert.labels {
        facts.push(json!({"title": name, "value": value}));
    }
    let mut body = vec![
        json!({"type": "TextBlock", "text": format!("[{state}] {}", alert.title), "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if !words.is_empty() {
        body.push(json!({"type": "TextBlock", "text": words, "wrap": true}));
    }
    let mut actions = Vec::new();
    for chart in delivery.charts.iter() {
        if let Some(url) = chart.url.as_deref() {
            body.push(json!({"type": "Image", "url": url, "altText": chart.title, "size": "Stretch"}));
        }
        if let Some(link) = chart.link.as_deref().or(chart.url.as_deref()) {
            actions.push(json!({"type": "Action.OpenUrl", "title": format!("Panel: {}", chart.title), "url": link}));
        }
    }
    if let Some(source) = alert.source_url.as_deref() {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Source", "url": source}));
    }
    if let Some(a) = &delivery.actions {
        for (title, url) in [("Acknowledge", &a.acknowledge), ("Resolve", &a.resolve), ("Silence 1h", &a.silence_1h)] {
            actions.push(json!({"type": "Action.OpenUrl", "title": title, "url": url}));
        }
    }
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
        "actions": actions,
    })
}

impl Sender for TeamsSender {
    type Target = NoOverrides;
    type Request = Value;

    fn compose(&self, delivery: &Delivery, _: &NoOverrides) -> Result<Value, SendError> {
        self.message(delivery)
    }

    /// Method, the URL redacted, and the message. Charts are in it as
    /// their URLs, so no PNG is written beside it.
    fn outbox_file(&self, _: &Delivery, message: &Value) -> OutboxFile {
        let doc = json!({"method": "POST", "url": self.config.webhook_url.to_string(), "message": message});
        OutboxFile {
            suffix: ".teams.json",
            bytes: serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            charts: false,
        }
    }

    async fn transmit(&self, _: &Delivery, message: Value) -> Result<Sent, SendError> {
        let response = self
            .parts
            .client
            .post(self.config.webhook_url.expose().clone())
            .json(&message)
            .send()
            .await
            .map_err(|e| transport_error(e, &self.what()))?;
        let status = response.status();
        classify(status, response.headers(), &self.what())?;
        Ok(Sent::new(format!("{status}")))
    }

    /// The URL's shape was checked at load; this checks the host answers.
    /// Nothing is posted: a workflow run would post to the channel.
    async fn check(&self) -> CheckRow {
        super::http::probe_connect(
            format!("teams {}", self.parts.destination),
            self.config.webhook_url.expose(),
            self.config.timeout,
            "workflow URL well-formed (sig set); nothing posted; ",
            "can this host reach the workflow's host (proxy, firewall)?",
        )
        .await
    }
}
