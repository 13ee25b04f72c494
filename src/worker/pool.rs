//! A worker pool: which stages and channels one `fanout worker` runs.
//!
//! `fanout worker` alone runs everything; `--pool workers/NAME.toml` runs a
//! subset, so render workers (Chromium, memory) scale apart from delivery
//! workers (light, many).

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use crate::channels::ChannelKind;
use crate::section::{ConfigErrors, Section};

/// A stage of the pipeline, named as pool files name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `fanout.jobs`: decode, validate, plan (and signals, later).
    Escalate,
    /// `fanout.render`: draw and store a job's charts once.
    Render,
    /// `fanout.deliver.<channel>`: send, retry, record.
    Deliver,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Escalate, Stage::Render, Stage::Deliver];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Escalate => "escalate",
            Stage::Render => "render",
            Stage::Deliver => "deliver",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub stages: Vec<Stage>,
    /// The channels whose delivery queues this pool consumes.
    pub channels: Vec<ChannelKind>,
    /// Unacknowledged messages per consumer (one consumer per queue).
    pub prefetch: u16,
    /// Messages worked on at once, over all queues.
    pub concurrency: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            stages: Stage::ALL.to_vec(),
            channels: ChannelKind::ALL.to_vec(),
            prefetch: 32,
            concurrency: 64,
        }
    }
}

impl Pool {
    /// Read a pool file; every bad key is named.
    pub fn load(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read pool {shown}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("pool {shown}: {e}"))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let errors = Rc::new(RefCell::new(Vec::new()));
        let root = Section::root(table, errors.clone(), Rc::new(|_| None));
        let default = Pool::default();
        let stage_names = Stage::ALL.map(Stage::name).join(", ");
        let stages = root.string_list("stages").map(|names| {
            names
                .iter()
                .filter_map(|n| {
                    let stage = Stage::ALL.into_iter().find(|s| s.name() == n);
                    if stage.is_none() {
                        root.error(
                            "stages",
                            format!("{n:?} is not a stage"),
                            Some(&format!("one of: {stage_names}")),
                        );
                    }
                    stage
                })
                .collect::<Vec<_>>()
        });
        let channel_names = ChannelKind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ");
        let channels = root.string_list("channels").map(|names| {
            names
                .iter()
                .filter_map(|n| {
                    let kind = ChannelKind::parse(n);
                    if kind.is_none() {
                        root.error(
                            "channels",
                            format!("{n:?} is not a channel of this build"),
                            Some(&format!("one of: {channel_names}")),
                        );
                    }
                    kind
                })
                .collect::<Vec<_>>()
        });
        let prefetch = root.integer("prefetch", 1, 1000);
        let concurrency = root.integer("concurrency", 1, 10_000);
        if stages.as_ref().is_some_and(Vec::is_empty) {
            root.error(
                "stages",
                "a pool runs at least one stage",
                Some(&stage_names),
            );
        }
        root.finish();
        let errors = errors.take();
        if !errors.is_empty() {
            return Err(ConfigErrors(errors).to_string());
        }
        Ok(Pool {
            stages: stages.unwrap_or(default.stages),
            channels: channels
                .filter(|c| !c.is_empty())
                .unwrap_or(default.channels),
            prefetch: prefetch.map_or(default.prefetch, |n| n as u16),
            concurrency: concurrency.map_or(default.concurrency, |n| n as usize),
        })
    }

    pub fn runs(&self, stage: Stage) -> bool {
        self.stages.contains(&stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_file_names_its_stages_and_channels() {
        let pool =
            Pool::parse("stages = [\"deliver\"]\nchannels = [\"email\"]\nprefetch = 8\n").unwrap();
        assert_eq!(pool.stages, [Stage::Deliver]);
        assert_eq!(pool.channels, [ChannelKind::Email]);
        assert_eq!((pool.prefetch, pool.concurrency), (8, 64));
    }

    #[test]
    fn every_bad_key_is_named() {
        let err = Pool::parse(
            "stages = [\"paint\"]\nchannels = [\"fax\"]\nprefetch = 0\nconcurency = 3\n",
        )
        .unwrap_err();
        for key in ["stages", "channels", "prefetch", "concurency"] {
            assert!(err.contains(key), "{key} not named in {err}");
        }
    }

    /// The compose file runs `render.toml` and `deliver.toml`: together
    /// they must consume every stage and every channel's queue (a channel
    /// added to the registry is consumed without editing them).
    #[test]
    fn the_composed_pools_consume_every_stage_and_channel() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/workers"));
        let pools: Vec<Pool> = ["render.toml", "deliver.toml"]
            .iter()
            .map(|name| Pool::load(&dir.join(name)).unwrap())
            .collect();
        for stage in Stage::ALL {
            assert!(pools.iter().any(|p| p.stages.contains(&stage)), "{stage:?}");
        }
        for channel in ChannelKind::ALL {
            assert!(
                pools
                    .iter()
                    .any(|p| p.stages.contains(&Stage::Deliver) && p.channels.contains(channel)),
                "no pool delivers {}",
                channel.name()
            );
        }
    }

    #[test]
    fn the_example_pools_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/workers");
        for name in ["all.toml", "render.toml", "deliver.toml"] {
            Pool::load(&Path::new(dir).join(name)).unwrap();
        }
    }
}
