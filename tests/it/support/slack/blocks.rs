//! Block Kit and message rules, as Slack's block reference and
//! `chat.postMessage` page give them: what the fake refuses before it
//! stores a message.

use super::*;

// Limits from Slack's docs.
pub(super) const MAX_TEXT: usize = 40_000;
pub(super) const MAX_BLOCKS: usize = 50;
pub(super) const MAX_HEADER_TEXT: usize = 150;
pub(super) const MAX_SECTION_TEXT: usize = 3_000;
pub(super) const MAX_FIELDS: usize = 10;
pub(super) const MAX_FIELD_TEXT: usize = 2_000;
pub(super) const MAX_ATTACHMENTS: usize = 100;
pub(super) const MAX_ALT_TXT: usize = 1_000;
pub(super) const MAX_FILES: usize = 10;

/// Block Kit limits for messages: at most 50 blocks, each an object with a
/// string `type`; a header's text is `plain_text` of 1 to 150 characters; a
/// section has `text` (1 to 3000 characters) or `fields` (at most 10, each
/// 1 to 2000). Other block types are only checked for their `type`.
pub(super) fn check_blocks(blocks: &Value, at: &str) -> Result<(), String> {
    let list = blocks
        .as_array()
        .ok_or_else(|| format!("must be an array [json-pointer:{at}]"))?;
    if list.len() > MAX_BLOCKS {
        return Err(format!(
            "{} blocks, at most {MAX_BLOCKS} [json-pointer:{at}]",
            list.len()
        ));
    }
    for (i, block) in list.iter().enumerate() {
        let at = format!("{at}/{i}");
        let kind = block.get("type").and_then(Value::as_str).ok_or_else(|| {
            format!("a block must be an object with a string type [json-pointer:{at}]")
        })?;
        match kind {
            "header" => check_text(
                block.get("text"),
                &format!("{at}/text"),
                MAX_HEADER_TEXT,
                true,
            )?,
            "section" => {
                let (text, fields) = (block.get("text"), block.get("fields"));
                if text.is_none() && fields.is_none() {
                    return Err(format!(
                        "a section needs text or fields [json-pointer:{at}]"
                    ));
                }
                if text.is_some() {
                    check_text(text, &format!("{at}/text"), MAX_SECTION_TEXT, false)?;
                }
                if let Some(fields) = fields {
                    let list = fields
                        .as_array()
                        .filter(|l| l.len() <= MAX_FIELDS)
                        .ok_or_else(|| {
                            format!("at most {MAX_FIELDS} fields [json-pointer:{at}/fields]")
                        })?;
                    for (j, field) in list.iter().enumerate() {
                        check_text(
                            Some(field),
                            &format!("{at}/fields/{j}"),
                            MAX_FIELD_TEXT,
                            false,
                        )?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A text object: `plain_text` (or `mrkdwn` where allowed) with 1 to `max`
/// characters.
pub(super) fn check_text(
    text: Option<&Value>,
    at: &str,
    max: usize,
    plain_only: bool,
) -> Result<(), String> {
    let text = text.ok_or_else(|| format!("missing required field: text [json-pointer:{at}]"))?;
    match text.get("type").and_then(Value::as_str) {
        Some("plain_text") => {}
        Some("mrkdwn") if !plain_only => {}
        _ if plain_only => return Err(format!("must be a plain_text object [json-pointer:{at}]")),
        _ => {
            return Err(format!(
                "must be a plain_text or mrkdwn object [json-pointer:{at}]"
            ))
        }
    }
    let content = text
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing required field: text [json-pointer:{at}/text]"))?;
    let length = content.chars().count();
    if length == 0 || length > max {
        return Err(format!(
            "{length} characters, must be 1 to {max} [json-pointer:{at}/text]"
        ));
    }
    Ok(())
}

/// Attachments: an array of at most 100 objects whose `blocks`, if any,
/// pass [`check_blocks`]. Slack answers `invalid_attachments` (not
/// `invalid_blocks`) for bad blocks inside an attachment, with a pointer
/// into `/attachments` (seen in soxtoby/SlackNet#241).
pub(super) fn check_attachments(attachments: &Value) -> Result<(), Refusal> {
    let list = attachments
        .as_array()
        .ok_or_else(|| refuse("invalid_attachments").because("`attachments` must be an array"))?;
    if list.len() > MAX_ATTACHMENTS {
        return Err(refuse("too_many_attachments"));
    }
    for (i, attachment) in list.iter().enumerate() {
        if !attachment.is_object() {
            let why = format!("must be an object [json-pointer:/attachments/{i}]");
            return Err(refuse("invalid_attachments").because(why));
        }
        if let Some(blocks) = attachment.get("blocks") {
            check_blocks(blocks, &format!("/attachments/{i}/blocks"))
                .map_err(|why| refuse("invalid_attachments").because(why))?;
        }
    }
    Ok(())
}
