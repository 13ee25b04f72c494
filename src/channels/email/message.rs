//! Building the RFC 5322 message: pure, no I/O, so it is tested byte by byte.
//!
//! Layout, which every mail client shows with the chart inline and no
//! network access:
//! ```text
//! multipart/alternative
//! ├── text/plain
//! └── multipart/related
//!     ├── text/html            <img src="cid:chart0.…@fanout">
//!     └── image/png            Content-ID: <chart0.…@fanout>, inline
//! ```

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::delivery::{short_hash, Delivery};

/// The three rendered templates of one email.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Longest subject we send; longer ones are cut on a character boundary.
const MAX_SUBJECT_CHARS: usize = 250;

/// The thread every notification of an alert group replies to. It is
/// derived from the group alone, so any worker computes the same one with
/// no shared state; mail clients group by `References`.
pub fn thread_root(group_id: &str, domain: &str) -> String {
    format!("<group.{}@{domain}>", short_hash(group_id))
}

/// This message's id: stable for (job, step, destination), so a retry of a
/// send whose `250` was lost carries the same id and mailboxes that
/// de-duplicate by Message-ID drop the copy.
pub fn message_id(delivery: &Delivery, domain: &str) -> String {
    let key = format!(
        "{}\u{0}{}\u{0}{}",
        delivery.job.id,
        delivery.log_step(),
        delivery.destination()
    );
    format!("<{}.{}@{domain}>", short_hash(&key), delivery.log_step())
}

pub fn build(
    from: &Mailbox,
    to: &[Mailbox],
    delivery: &Delivery,
    rendered: Rendered,
) -> Result<Message, String> {
    let domain = from.email.domain().to_string();
    let root = thread_root(&delivery.job.alert.group_id, &domain);
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(one_line(&rendered.subject))
        .message_id(Some(message_id(delivery, &domain)))
        .in_reply_to(root.clone())
        .references(root);
    for mailbox in to {
        builder = builder.to(mailbox.clone());
    }

    let png_type = ContentType::parse("image/png").map_err(|e| e.to_string())?;
    let mut related = MultiPart::related().singlepart(SinglePart::html(rendered.html));
    for (index, chart) in delivery.charts.iter().enumerate() {
        if let Some(png) = &chart.png {
            let filename = format!("chart-{index}.png");
            related = related.singlepart(
                Attachment::new_inline_with_name(delivery.content_id(index), filename)
                    .body(png.to_vec(), png_type.clone()),
            );
        }
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(rendered.text))
        .multipart(related);
    let mut message = builder.multipart(body).map_err(|e| e.to_string())?;

    let headers = message.headers_mut();
    // RFC 3834: no vacation replies to an alert.
    headers.insert_raw(raw_header("Auto-Submitted", "auto-generated"));
    headers.insert_raw(raw_header("X-Fanout-Job", &delivery.job.id));
    headers.insert_raw(raw_header("X-Fanout-Group", &delivery.job.alert.group_id));
    Ok(message)
}

fn raw_header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), one_line(value))
}

/// How many characters a rendered subject is over [`MAX_SUBJECT_CHARS`]
/// once folded to one line.
pub fn over_subject_limit(subject: &str) -> usize {
    subject
        .split_whitespace()
        .map(|w| w.chars().count() + 1)
        .sum::<usize>()
        .saturating_sub(1)
        .saturating_sub(MAX_SUBJECT_CHARS)
}

/// Subjects and header values are one line, and not endless.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_SUBJECT_CHARS) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_whitespace_and_cuts_on_a_char_boundary() {
        assert_eq!(one_line("  a\r\n b\tc "), "a b c");
        let long = "é".repeat(300);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), MAX_SUBJECT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn the_subject_limit_counts_the_folded_line() {
        assert_eq!(over_subject_limit("a  b\n c"), 0);
        let long = format!("[FIRING] {} (orders)", "é".repeat(300));
        assert_eq!(over_subject_limit(&long), 318 - MAX_SUBJECT_CHARS);
    }

    #[test]
    fn thread_root_depends_on_the_group_only() {
        assert_eq!(thread_root("ag-1", "x.org"), thread_root("ag-1", "x.org"));
        assert_ne!(thread_root("ag-1", "x.org"), thread_root("ag-2", "x.org"));
    }
}
