//! Whether Chromium can draw what a team's panels show: a title in
//! Chinese, a legend with emoji. Without the fonts, those come out as
//! boxes ("tofu") in every chart, and nobody finds out until a page.
//! `fanout check` draws one sample per script ([`SCRIPTS`]) and names the
//! Debian package for each that is missing.

/// A writing system fanout checks, with a sample a panel might show and
/// the Debian package whose fonts draw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Script {
    pub name: &'static str,
    pub sample: &'static str,
    /// The glyphs must be in colour (emoji: monochrome ones read poorly).
    pub colour: bool,
    pub package: &'static str,
}

/// Every script the probe draws, in the order the check reports them.
pub const SCRIPTS: &[Script] = &[
    Script {
        name: "latin",
        sample: "Aé",
        colour: false,
        package: "fonts-dejavu-core",
    },
    Script {
        name: "greek",
        sample: "λΩ",
        colour: false,
        package: "fonts-dejavu-core",
    },
    Script {
        name: "cyrillic",
        sample: "Жд",
        colour: false,
        package: "fonts-dejavu-core",
    },
    Script {
        name: "cjk",
        sample: "告警中文",
        colour: false,
        package: "fonts-noto-cjk",
    },
    Script {
        name: "japanese",
        sample: "かナ",
        colour: false,
        package: "fonts-noto-cjk",
    },
    Script {
        name: "korean",
        sample: "한글",
        colour: false,
        package: "fonts-noto-cjk",
    },
    Script {
        name: "arabic",
        sample: "عر",
        colour: false,
        package: "fonts-noto-core",
    },
    Script {
        name: "hebrew",
        sample: "שע",
        colour: false,
        package: "fonts-noto-core",
    },
    Script {
        name: "devanagari",
        sample: "हि",
        colour: false,
        package: "fonts-noto-core",
    },
    Script {
        name: "thai",
        sample: "กข",
        colour: false,
        package: "fonts-noto-core",
    },
    Script {
        name: "emoji",
        sample: "🔥✅📈",
        colour: true,
        package: "fonts-noto-color-emoji",
    },
];

/// The scripts `[render] scripts` asks for when it is not set: Latin
/// with its neighbours, CJK and emoji, which on-call teams write in.
pub const DEFAULT_REQUIRED: &[&str] = &["latin", "greek", "cyrillic", "cjk", "emoji"];

pub fn script(name: &str) -> Option<&'static Script> {
    SCRIPTS.iter().find(|s| s.name == name)
}

/// The probe to evaluate in a blank page; it answers a JSON object of
/// script name → drawn.
pub fn probe_script() -> String {
    let samples: Vec<(&str, &str, bool)> = SCRIPTS
        .iter()
        .map(|s| (s.name, s.sample, s.colour))
        .collect();
    include_str!("fonts/probe.js").replace(
        "__SAMPLES__",
        &serde_json::to_string(&samples).unwrap_or_else(|_| "[]".into()),
    )
}

/// What the probe found, against what the config requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub drawn: Vec<&'static str>,
    /// Required and missing: the check fails.
    pub missing: Vec<&'static Script>,
    /// Missing, but not required: said, not failed.
    pub also_missing: Vec<&'static str>,
}

impl Coverage {
    /// Read the probe's answer against the `required` script names.
    pub fn read(answer: &str, required: &[String]) -> Result<Self, String> {
        let found: std::collections::BTreeMap<String, bool> = serde_json::from_str(answer)
            .map_err(|e| format!("the glyph probe answered something else: {e}"))?;
        let mut coverage = Coverage {
            drawn: Vec::new(),
            missing: Vec::new(),
            also_missing: Vec::new(),
        };
        for s in SCRIPTS {
            match (
                found.get(s.name).copied().unwrap_or(false),
                required.iter().any(|r| r == s.name),
            ) {
                (true, _) => coverage.drawn.push(s.name),
                (false, true) => coverage.missing.push(s),
                (false, false) => coverage.also_missing.push(s.name),
            }
        }
        Ok(coverage)
    }

    /// The packages that would draw what is missing, for the hint.
    pub fn packages(&self) -> Vec<&'static str> {
        let mut packages: Vec<&str> = self.missing.iter().map(|s| s.package).collect();
        packages.dedup();
        packages
    }
}

/// The `fanout check` row: which scripts Chromium draws, failing (with
/// the packages to install) when one the config requires comes out as
/// boxes.
pub async fn check(renderer: &super::ChartRenderer, required: &[String]) -> crate::check::CheckRow {
    use crate::check::CheckRow;
    let target = format!("[render] scripts = {}", required.join(", "));
    let answer = match renderer.evaluate_blank(probe_script()).await {
        Ok(answer) => answer,
        Err(e) => return CheckRow::fail("fonts", target, e.to_string(), "see the error"),
    };
    match Coverage::read(&answer, required) {
        Err(e) => CheckRow::fail("fonts", target, e, "see the error"),
        Ok(c) if c.missing.is_empty() => {
            let mut detail = format!("draws {}", c.drawn.join(", "));
            if !c.also_missing.is_empty() {
                detail.push_str(&format!(
                    "; not {} (not required)",
                    c.also_missing.join(", ")
                ));
            }
            CheckRow::ok("fonts", target, detail)
        }
        Ok(c) => {
            let missing: Vec<&str> = c.missing.iter().map(|s| s.name).collect();
            CheckRow::fail(
                "fonts",
                target,
                format!(
                    "charts would show boxes for {} (no font draws them{})",
                    missing.join(", "),
                    if c.missing.iter().any(|s| s.colour) {
                        ", or not in colour"
                    } else {
                        ""
                    }
                ),
                format!("apt-get install {}", c.packages().join(" ")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_carries_every_sample() {
        let script = probe_script();
        for s in SCRIPTS {
            assert!(script.contains(s.sample), "{}", s.name);
        }
        assert!(!script.contains("__SAMPLES__"));
    }

    #[test]
    fn coverage_fails_only_for_what_is_required() {
        let answer = r#"{"latin":true,"greek":true,"cyrillic":true,"cjk":false,"japanese":false,
            "korean":false,"arabic":false,"hebrew":true,"devanagari":false,"thai":false,"emoji":false}"#;
        let required: Vec<String> = DEFAULT_REQUIRED.iter().map(|s| s.to_string()).collect();
        let c = Coverage::read(answer, &required).unwrap();
        let missing: Vec<&str> = c.missing.iter().map(|s| s.name).collect();
        assert_eq!(missing, ["cjk", "emoji"]);
        assert_eq!(c.packages(), ["fonts-noto-cjk", "fonts-noto-color-emoji"]);
        assert!(c.also_missing.contains(&"arabic"));
        assert!(c.drawn.contains(&"hebrew"));
        assert!(Coverage::read("nope", &required).is_err());
    }
}
