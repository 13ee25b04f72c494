//! Integration tests on real parts: the real `fanout` binary, a real SMTP
//! server (aiosmtpd), real TLS. One binary, so one link step.

mod broker;
mod celery;
mod chains;
mod chat;
mod config;
mod conformance;
mod delivery;
mod digest;
mod email;
mod examples;
mod ingest;
mod jobs;
mod limits;
mod modules;
mod monitors;
mod outage;
mod render;
mod resilience;
mod secrets;
mod storage_internal;
mod storage_s3;
mod store;
mod support;
mod templates;
mod times;
mod webhook;
mod worker;
