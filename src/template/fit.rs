//! Fitting a notification into a vendor's length limit by cutting only
//! its free text.
//!
//! A WeCom markdown message holds 4,096 bytes, a Slack section 3,000
//! characters, a subject line a few hundred. Cutting the rendered text at
//! the limit drops whatever the template put last — labels, the source
//! link, the acknowledge/resolve/silence links — which are the parts a
//! person acts on. Instead the template is rendered again with the free
//! text shortened, in this order, each only as far as needed:
//!
//! 1. the alert's `message`, which ends with [`MESSAGE_CUT`] where it was cut;
//! 2. long label values (all capped at one length, never below
//!    [`LABEL_FLOOR`]), each ending with `…`;
//! 3. the title, never below [`TITLE_FLOOR`].
//!
//! Each step finds, by bisection, the longest text that adds nothing to
//! the overflow, so the heading, labels, links and mentions stay whole.
//! Templates are the team's own (overridable), so nothing here knows
//! where a template puts a field: a field the template does not show
//! changes nothing when cut, and is left alone. What still does not fit
//! after all three (a template with fixed text over the limit) is left to
//! the channel's last resort.

use crate::job::Alert;

/// Ends a message that was cut, where it was cut.
pub const MESSAGE_CUT: &str = "…(truncated)";
/// Ends a label value or a title that was cut.
pub const SHORT_CUT: &str = "…";
/// A label value is never cut shorter than this (in the limit's unit).
pub const LABEL_FLOOR: usize = 32;
/// A title is never cut shorter than this.
pub const TITLE_FLOOR: usize = 40;

/// What a vendor counts: bytes of UTF-8 (WeCom) or characters (Slack,
/// email subjects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Chars,
}

impl Unit {
    pub fn len(self, text: &str) -> usize {
        match self {
            Unit::Bytes => text.len(),
            Unit::Chars => text.chars().count(),
        }
    }

    /// The first `n` units of `text`, never splitting a character.
    pub fn prefix(self, text: &str, n: usize) -> &str {
        let end = match self {
            Unit::Bytes => {
                let mut end = n.min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                end
            }
            Unit::Chars => text.char_indices().nth(n).map_or(text.len(), |(i, _)| i),
        };
        &text[..end]
    }
}

/// `text` cut to `n` units plus `mark` (which counts toward `n`), or
/// whole when it fits.
pub fn cut(text: &str, n: usize, unit: Unit, mark: &str) -> String {
    if unit.len(text) <= n {
        return text.to_string();
    }
    let room = n.saturating_sub(unit.len(mark));
    format!("{}{mark}", unit.prefix(text, room))
}

/// A rendered text that fits, or is as close as cutting free text gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub text: String,
    /// What was cut, in order: `message`, `labels`, `title`.
    pub cut: Vec<&'static str>,
    /// What is still over the limit (0 when it fits).
    pub over: usize,
}

/// Render `alert` with `render`; while `excess` says the result is over
/// its limit, render again with the free text cut (see the module doc).
/// `unit` is what `excess` counts.
pub fn fit<E>(
    alert: &Alert,
    unit: Unit,
    mut render: impl FnMut(&Alert) -> Result<String, E>,
    excess: impl Fn(&str) -> usize,
) -> Result<Fitted, E> {
    let text = render(alert)?;
    let over = excess(&text);
    let mut best = Fitted {
        text,
        cut: Vec::new(),
        over,
    };
    if over == 0 {
        return Ok(best);
    }
    let mut work = alert.clone();

    let message = alert.message.clone();
    let found = shrink(unit.len(&message), 0, &mut best, |n| {
        work.message = cut(&message, n, unit, MESSAGE_CUT);
        let out = render(&work)?;
        Ok((excess(&out), out))
    })?;
    match found {
        Some(n) => {
            work.message = cut(&message, n, unit, MESSAGE_CUT);
            best.cut.push("message");
        }
        None => work.message = message,
    }
    if best.over == 0 {
        return Ok(best);
    }

    let labels = work.labels.clone();
    let longest = labels.values().map(|v| unit.len(v)).max().unwrap_or(0);
    let capped = |cap: usize| {
        labels
            .iter()
            .map(|(k, v)| (k.clone(), cut(v, cap, unit, SHORT_CUT)))
            .collect()
    };
    let found = shrink(longest, LABEL_FLOOR, &mut best, |cap| {
        work.labels = capped(cap);
        let out = render(&work)?;
        Ok((excess(&out), out))
    })?;
    match found {
        Some(cap) => {
            work.labels = capped(cap);
            best.cut.push("labels");
        }
        None => work.labels = labels,
    }
    if best.over == 0 {
        return Ok(best);
    }

    let title = work.title.clone();
    let found = shrink(unit.len(&title), TITLE_FLOOR, &mut best, |n| {
        work.title = cut(&title, n, unit, SHORT_CUT);
        let out = render(&work)?;
        Ok((excess(&out), out))
    })?;
    if found.is_some() {
        best.cut.push("title");
    }
    Ok(best)
}

/// Find the longest length in `floor..len` of one free-text field whose
/// render is no further over the limit than the field at `floor` is:
/// the field then adds nothing to the overflow. `render_at(n)` renders
/// with the field at `n` units and answers (excess, text). Updates `best`
/// and answers the length chosen, or `None` when cutting the field does
/// not help (the template does not show it, or it is short already).
fn shrink<E>(
    len: usize,
    floor: usize,
    best: &mut Fitted,
    mut render_at: impl FnMut(usize) -> Result<(usize, String), E>,
) -> Result<Option<usize>, E> {
    if len <= floor {
        return Ok(None);
    }
    let (least, text) = render_at(floor)?;
    if least >= best.over {
        return Ok(None);
    }
    // Invariant: at `lo` the field adds nothing; at `hi` it does.
    let (mut lo, mut hi) = (floor, len);
    let mut kept = text;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let (over, text) = render_at(mid)?;
        if over <= least {
            lo = mid;
            kept = text;
        } else {
            hi = mid;
        }
    }
    best.text = kept;
    best.over = least;
    Ok(Some(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(message: &str, labels: &[(&str, &str)]) -> Alert {
        let mut a: Alert =
            serde_json::from_value(serde_json::json!({"group_id": "g", "title": "磁盘使用率过高"}))
                .unwrap();
        a.message = message.to_string();
        a.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        a
    }

    /// A template shaped like the chat ones: heading, message, labels, links.
    fn render(a: &Alert) -> Result<String, ()> {
        let labels: String = a
            .labels
            .iter()
            .map(|(k, v)| format!("> {k}: {v}\n"))
            .collect();
        Ok(format!(
            "## [CRITICAL] {}\n{}\n{labels}[Source](https://grafana.example/d/abc)\n[Acknowledge](https://f.example/a/ack?sig=1) · [Resolve](https://f.example/a/res?sig=2)",
            a.title, a.message
        ))
    }

    fn over_bytes(max: usize) -> impl Fn(&str) -> usize {
        move |t: &str| t.len().saturating_sub(max)
    }

    #[test]
    fn a_text_that_fits_is_rendered_once_and_untouched() {
        let a = alert("short", &[("host", "db-1")]);
        let fitted = fit(&a, Unit::Bytes, render, over_bytes(4096)).unwrap();
        assert_eq!(fitted.text, render(&a).unwrap());
        assert!(fitted.cut.is_empty());
        assert_eq!(fitted.over, 0);
    }

    #[test]
    fn a_long_message_is_cut_and_the_links_and_labels_stay() {
        let message =
            "数据库主节点磁盘使用率超过阈值，请立即检查归档日志与临时表空间。\n".repeat(60);
        let a = alert(&message, &[("host", "db-1"), ("service", "orders")]);
        let fitted = fit(&a, Unit::Bytes, render, over_bytes(4096)).unwrap();
        assert_eq!(fitted.over, 0);
        assert_eq!(fitted.cut, vec!["message"]);
        assert!(fitted.text.len() <= 4096);
        // The cut takes no more than it must: within a character of the limit.
        assert!(fitted.text.len() > 4096 - 4, "{}", fitted.text.len());
        for kept in [
            "## [CRITICAL]",
            "> host: db-1",
            "> service: orders",
            "[Source](",
            "[Acknowledge](",
            "[Resolve](",
        ] {
            assert!(fitted.text.contains(kept), "{kept} lost");
        }
        assert!(
            fitted.text.contains(&format!("{MESSAGE_CUT}\n> host")),
            "says where it cut"
        );
    }

    #[test]
    fn long_label_values_are_cut_after_the_message() {
        let long = "x".repeat(3000);
        let a = alert("m", &[("a", &long), ("b", &long), ("host", "db-1")]);
        let fitted = fit(&a, Unit::Bytes, render, over_bytes(2048)).unwrap();
        assert_eq!(fitted.over, 0);
        // A one-letter message is shorter than its cut mark: left whole.
        assert_eq!(fitted.cut, vec!["labels"]);
        assert!(fitted.text.contains("> host: db-1\n"));
        assert!(fitted.text.contains("> a: xxx") && fitted.text.contains("…\n> b: xxx"));
        assert!(fitted.text.contains("[Resolve]("));
    }

    #[test]
    fn characters_are_counted_when_the_vendor_counts_characters() {
        let a = alert(&"告".repeat(500), &[]);
        let over = |t: &str| t.chars().count().saturating_sub(300);
        let fitted = fit(&a, Unit::Chars, render, over).unwrap();
        assert_eq!(fitted.over, 0);
        assert_eq!(fitted.text.chars().count(), 300);
    }

    #[test]
    fn a_field_the_template_does_not_show_is_left_alone() {
        let a = alert(&"m".repeat(100), &[]);
        // Only the title is shown.
        let title_only = |a: &Alert| Ok::<_, ()>(format!("[FIRING] {} (orders)", a.title));
        let mut long = a.clone();
        long.title = "T".repeat(300);
        let over = |t: &str| t.chars().count().saturating_sub(100);
        let fitted = fit(&long, Unit::Chars, title_only, over).unwrap();
        assert_eq!(fitted.cut, vec!["title"]);
        assert_eq!(fitted.over, 0);
        assert!(fitted.text.starts_with("[FIRING] TTT") && fitted.text.ends_with("… (orders)"));
    }

    #[test]
    fn what_cannot_fit_says_how_far_over_it_stays() {
        let a = alert("m", &[]);
        let fixed = |_: &Alert| Ok::<_, ()>("x".repeat(500));
        let fitted = fit(&a, Unit::Bytes, fixed, over_bytes(100)).unwrap();
        assert_eq!(fitted.over, 400);
        assert!(fitted.cut.is_empty());
    }

    #[test]
    fn cuts_stay_within_their_length_and_say_so() {
        let text = "告警🔥abc告警";
        for n in SHORT_CUT.len()..text.len() {
            let c = cut(text, n, Unit::Bytes, SHORT_CUT);
            assert!(c.len() <= n && c.ends_with(SHORT_CUT), "{n}: {c:?}");
        }
        for n in 1..text.chars().count() {
            let c = cut(text, n, Unit::Chars, SHORT_CUT);
            assert!(
                c.chars().count() <= n && c.ends_with(SHORT_CUT),
                "{n}: {c:?}"
            );
        }
        assert_eq!(cut(text, 100, Unit::Bytes, SHORT_CUT), text);
    }
}
