//! `fanout check`: one row per dependency, with a hint for each failure.
//!
//! Misconfiguration should fail here, before the first alert needs the
//! connection, not at 3 a.m. Rows never show secrets: targets are printed
//! from redacted forms only.

use std::fmt;

/// One line of the check table.
#[derive(Clone, Debug)]
pub struct CheckRow {
    pub component: String,
    /// What was probed, secrets redacted (`smtps://alice:***@mail:465`).
    pub target: String,
    pub outcome: Result<String, Failure>,
}

/// A failed probe: what happened and what to try.
#[derive(Clone, Debug)]
pub struct Failure {
    pub error: String,
    pub hint: String,
}

impl CheckRow {
    pub fn ok(
        component: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            component: component.into(),
            target: target.into(),
            outcome: Ok(detail.into()),
        }
    }

    pub fn fail(
        component: impl Into<String>,
        target: impl Into<String>,
        error: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            component: component.into(),
            target: target.into(),
            outcome: Err(Failure {
                error: error.into(),
                hint: hint.into(),
            }),
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The rows as an aligned table.
pub struct Table<'a>(pub &'a [CheckRow]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |pick: fn(&CheckRow) -> usize, title: &str| {
            self.0.iter().map(pick).max().unwrap_or(0).max(title.len())
        };
        let wc = width(|r| r.component.len(), "COMPONENT");
        let wt = width(|r| r.target.len(), "TARGET");
        writeln!(
            f,
            "{:<wc$}  {:<wt$}  {:<6}  DETAIL / HINT",
            "COMPONENT", "TARGET", "STATUS"
        )?;
        for row in self.0 {
            match &row.outcome {
                Ok(detail) => writeln!(
                    f,
                    "{:<wc$}  {:<wt$}  {:<6}  {detail}",
                    row.component, row.target, "ok"
                )?,
                Err(fail) => writeln!(
                    f,
                    "{:<wc$}  {:<wt$}  {:<6}  {} (hint: {})",
                    row.component, row.target, "FAIL", fail.error, fail.hint
                )?,
            }
        }
        Ok(())
    }
}
