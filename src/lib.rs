//! fanout: a notification fan-out worker for on-call teams.
//!
//! An alerting engine puts notification jobs on RabbitMQ; fanout runs the
//! escalation steps, renders the Grafana panels an alert points at, and
//! delivers the alert to email, WeCom, DingTalk, Feishu/Lark, Slack,
//! Telegram, Teams, Discord and PrometheusAlert with the chart inline. It
//! also takes alerts straight from the monitors (`/ingest/<source>`). `fanout send` runs one job in-process with no broker.
//!
//! # Layout
//!
//! Data flows one way: decode → validate → plan → render → store →
//! deliver → record. Read as imports, each module below uses only modules
//! listed above it (the integration test `modules` fails on an import
//! circle between top-level modules, and on a module this map leaves out).
//!
//! | layer | module | what it is |
//! |---|---|---|
//! | words | [`secret`], [`span`], [`net`], [`check`], [`metrics`], [`logging`], [`demo`] | values that never print, `10m`-style durations, loopback and URL redaction, `fanout check` rows, Prometheus metrics, log setup, the built-in demo panel |
//! | | [`clock`], [`section`] | zones and times as monitors write them; a config section read key by key, every mistake named |
//! | decode | [`job`] | bytes → [`job::Job`] or [`job::Signal`] (native, Celery), times settled |
//! | | [`rate`] | rate-limit slots (a destination's `20/min`) |
//! | | [`delivery`], [`plan`] | the words every later stage shares: one [`delivery::Delivery`] to one target, its chart images, a send's outcome and its typed error; one planned delivery per target |
//! | | [`retry`], [`template`], [`outbox`], [`store`] | retry policy; minijinja, bounded and fitted to vendor limits; what would be sent, on disk; the notification log and group state |
//! | | [`ingest`] | a monitor's own webhook body (Alertmanager, …) → the alerts it carries |
//! | plan, deliver | [`chain`], [`channels`], [`images`], [`suppress`] | escalation steps of an alert group; one folder per channel (email, webhook, WeCom, DingTalk, Feishu, Slack, Telegram, Teams, Discord, PrometheusAlert); PNGs behind signed or presigned URLs; repeats held back in a window |
//! | render | [`render`] | charts, once per job, in a warm Chromium pool behind an origin gate |
//! | | [`route`] | `[[routes]]` and `[escalations.NAME]`: the targets, policy and suppression an alert from a monitor gets, and the job it becomes |
//! | | [`config`] | one TOML file, every bad key reported at once; each section's reader beside its module |
//! | validate | [`validate`], [`destinations`], [`broker`] | a job against the configured destinations; the configured destinations with their senders, retry and rate; RabbitMQ topology and delay tiers |
//! | | [`actions`] | signed acknowledge/resolve/silence links |
//! | | [`digest`] | a long rate-limit backlog folded into one summary per destination |
//! | deliver | [`pipeline`] | one delivery to one target, the same for `send` and the worker: notification log → gate → rate → send → record |
//! | entry points | [`send`], [`worker`], [`server`] | `fanout send` in process; the RabbitMQ worker's stages; the HTTP server (health, metrics, images, action links) |

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
pub mod digest;
pub mod images;
pub mod ingest;
pub mod job;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outbox;
pub mod pipeline;
pub mod plan;
pub mod rate;
pub mod render;
pub mod retry;
pub mod route;
pub mod secret;
pub mod section;
pub mod send;
pub mod server;
pub mod span;
pub mod store;
pub mod suppress;
pub mod template;
pub mod validate;
pub mod worker;
