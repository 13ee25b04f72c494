//! The message a delivery queue carries: one target of one job, with the
//! job's charts by reference.
//!
//! Charts travel as storage keys when `[storage]` is set (the delivery
//! worker fetches the PNG), and as base64 only when there is no store to
//! put them in. Attempt counts and rate-limit slots travel in headers, so
//! the body a dead letter keeps is the body that was planned.

use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::delivery::{ChartImage, Delivery};
use crate::images::Storage;
use crate::job::{Job, Target};
use crate::pipeline::Pending;
use crate::plan::Planned;
use crate::store::DeliveryKey;
use crate::suppress::Summary;

/// Version of the delivery message body.
pub const DELIVERY_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryOrder {
    pub version: u32,
    pub job: Job,
    pub step: usize,
    /// The chain's repeat round (0 before any `repeat`).
    #[serde(default)]
    pub round: u32,
    pub seq: usize,
    pub target: Target,
    #[serde(default)]
    pub charts: Vec<ChartRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Summary>,
}

/// A rendered (or failed) chart, as a delivery message refers to it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartRef {
    pub title: String,
    pub width: u32,
    pub height: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub png_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ChartRef {
    pub fn of(image: &ChartImage) -> Self {
        let inline = image.key.is_none();
        Self {
            title: image.title.clone(),
            width: image.width,
            height: image.height,
            key: image.key.clone(),
            png_base64: image
                .png
                .as_ref()
                .filter(|_| inline)
                .map(|png| base64::engine::general_purpose::STANDARD.encode(png.as_slice())),
            url: image.url.clone(),
            link: image.link.clone(),
            error: image.error.clone(),
        }
    }

    /// Whether the message or the store holds its PNG.
    pub fn has_image(&self) -> bool {
        self.key.is_some() || self.png_base64.is_some()
    }

    /// Back to a chart with its PNG: from the store, or from the message.
    /// A PNG that cannot be fetched leaves the chart as a link, with why.
    pub async fn load(self, storage: Option<&Storage>) -> ChartImage {
        let mut image = ChartImage {
            title: self.title,
            width: self.width,
            height: self.height,
            png: None,
            url: self.url,
            key: self.key.clone(),
            link: self.link,
            error: self.error,
        };
        let png = match (&self.key, self.png_base64, storage) {
            (_, Some(b64), _) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("chart in the message is not base64: {e}")),
            (Some(key), None, Some(storage)) => storage.get(key).await.map_err(|e| e.to_string()),
            (Some(_), None, None) => {
                Err("the chart was stored, but this worker has no [storage]".into())
            }
            (None, None, _) => return image,
        };
        match png {
            Ok(png) => image.png = Some(Arc::new(png)),
            Err(reason) => {
                tracing::warn!(message = "Chart PNG unavailable; sending the link.", error = %reason);
                image.error.get_or_insert(reason);
            }
        }
        image
    }
}

impl DeliveryOrder {
    pub fn new(job: &Job, planned: Planned, charts: &[ChartImage]) -> Self {
        Self {
            version: DELIVERY_VERSION,
            job: job.clone(),
            step: planned.step,
            round: 0,
            seq: planned.seq,
            target: planned.target,
            charts: charts.iter().map(ChartRef::of).collect(),
            suppressed: None,
        }
    }

    /// The same order in a repeat round, saying what was suppressed.
    pub fn in_round(self, round: u32, suppressed: Option<Summary>) -> Self {
        Self {
            round,
            suppressed,
            ..self
        }
    }

    /// The notification-log key of this delivery.
    pub fn key(&self) -> DeliveryKey {
        DeliveryKey {
            job_id: self.job.id.clone(),
            step: crate::chain::log_step(self.step, self.round),
            destination: self.target.destination.clone(),
        }
    }

    /// A "resolved" notice is not a chain step: no gate stops it.
    pub fn is_resolved_notice(&self) -> bool {
        self.step == crate::chain::RESOLVED_STEP
    }

    pub fn decode(body: &[u8]) -> Result<Self, String> {
        let order: DeliveryOrder =
            serde_json::from_slice(body).map_err(|e| format!("not a delivery message: {e}"))?;
        if order.version != DELIVERY_VERSION {
            return Err(format!(
                "delivery message version {} (this worker reads {DELIVERY_VERSION})",
                order.version
            ));
        }
        Ok(order)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Plain data (strings, numbers, maps): serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The delivery a channel sends, its charts loaded from `storage`
    /// (or from the message).
    pub async fn load(self, storage: Option<&Storage>) -> Delivery {
        let charts =
            futures::future::join_all(self.charts.into_iter().map(|c| c.load(storage))).await;
        Delivery::new(Arc::new(self.job), self.target)
            .at_step(self.step, self.seq, self.round)
            .with_charts(charts)
            .with_suppressed(self.suppressed)
    }
}

/// A delivery order and where its stored charts are: what the
/// [`crate::pipeline`] attempts, loading the charts only when it sends.
pub struct Stored<'a> {
    pub order: DeliveryOrder,
    pub storage: Option<&'a Storage>,
}

impl Pending for Stored<'_> {
    fn job(&self) -> &Job {
        &self.order.job
    }
    fn target(&self) -> &Target {
        &self.order.target
    }
    fn step(&self) -> usize {
        self.order.step
    }
    fn round(&self) -> u32 {
        self.order.round
    }
    fn images(&self) -> usize {
        self.order.charts.iter().filter(|c| c.has_image()).count()
    }
    async fn into_delivery(self) -> Delivery {
        self.order.load(self.storage).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_order_round_trips_with_its_chart_inline_when_nothing_stores_it() {
        let job: Job = serde_json::from_str(
            r#"{"version":1,"id":"j1","alert":{"group_id":"g","title":"t"},
                "targets":[{"destination":"ops"}]}"#,
        )
        .unwrap();
        let chart = ChartImage {
            title: "CPU".into(),
            png: Some(Arc::new(vec![0x89, b'P', b'N', b'G'])),
            ..ChartImage::default()
        };
        let planned = crate::plan::plan(&job, 0).remove(0);
        let body = DeliveryOrder::new(&job, planned, &[chart]).encode();
        let delivery = DeliveryOrder::decode(&body).unwrap().load(None).await;
        assert_eq!(delivery.job.id, "j1");
        assert_eq!(delivery.destination(), "ops");
        assert_eq!(delivery.attempt, 1);
        assert_eq!(
            delivery.charts[0].png.as_deref().map(Vec::as_slice),
            Some(&[0x89, b'P', b'N', b'G'][..])
        );
    }

    #[test]
    fn a_foreign_body_is_refused_with_why() {
        assert!(DeliveryOrder::decode(b"{}")
            .unwrap_err()
            .contains("not a delivery"));
    }
}
