//! fanout: a notification fan-out worker for on-call teams.
//!
//! An alerting engine puts notification jobs on RabbitMQ; fanout runs the
//! escalation steps, renders the Grafana panels an alert points at, and
//! delivers the alert to email, WeCom, PrometheusAlert and Slack with the
//! chart inline. `fanout send` runs one job in-process with no broker.
//!
//! # Layout
//!
//! Data flows one way; no stage reaches back into an earlier one.
//!
//! | stage    | module                 | what it does                                   |
//! |----------|------------------------|------------------------------------------------|
//! | decode   | [`job::decode`]        | bytes → [`job::Job`] or [`job::Signal`]        |
//! | validate | [`job::validate`]      | limits, destinations exist, overrides fit      |
//! | plan     | [`chain`], [`plan`]    | the escalation step to run, one [`plan::Planned`] delivery per target |
//! | render   | [`render`]             | charts, once per job, in a warm Chromium       |
//! | store    | [`storage`]            | PNGs behind signed or presigned URLs           |
//! | deliver  | [`deliver`], [`channels`] | one send per target, classified errors      |
//! | record   | [`store`]              | the notification log: each delivery sent once  |
//!
//! Around them: [`suppress`] (repeats held back within a window),
//! [`actions`] (signed acknowledge/resolve/silence links),
//! [`config`] (one TOML file, every bad key reported at once),
//! [`clock`] (time zones and times as monitors write them),
//! [`template`] (minijinja, bounded), [`outbox`] (what would be sent, on
//! disk), [`check`] (`fanout check`), [`secret`] (values that never print).

pub mod actions;
pub mod broker;
pub mod chain;
pub mod channels;
pub mod check;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod destinations;
pub mod http;
pub mod job;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outbox;
pub mod plan;
pub mod rate;
pub mod render;
pub mod retry;
pub mod secret;
pub mod section;
pub mod send;
pub mod span;
pub mod storage;
pub mod store;
pub mod suppress;
pub mod template;
pub mod validate;
pub mod worker;
