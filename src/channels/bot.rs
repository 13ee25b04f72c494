//! What the group bots (WeCom, DingTalk) share: their answer, HTTP 200
//! with `{"errcode":N,"errmsg":"…"}` whatever happened, and their `@`
//! lists of user ids and mobile numbers.

use crate::delivery::{Reason, SendError};
use crate::secret::REDACTED;

/// A bot's refusal: its errcode, and a message naming `what` and the
/// bot's own words (at most 200 characters, the bot's `secret` — its key
/// or token — replaced, whatever the bot echoed).
pub struct Refusal {
    pub errcode: i64,
    pub message: String,
}

/// Read a bot's answer. `Ok(None)`: errcode 0, delivered; `Ok(Some)`: a
/// refusal for the channel to classify; `Err`: not the bot's JSON (worth
/// another try: a proxy's page, a cut connection).
pub fn answer(body: &[u8], what: &str, secret: &str) -> Result<Option<Refusal>, SendError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| {
        SendError::retry(
            Reason::Server,
            format!(
                "{what} answered something that is not its JSON ({} bytes)",
                body.len()
            ),
        )
    })?;
    if answer.errcode == 0 {
        return Ok(None);
    }
    let mut errmsg: String = answer.errmsg.chars().take(200).collect();
    if !secret.is_empty() {
        errmsg = errmsg.replace(secret, REDACTED);
    }
    Ok(Some(Refusal {
        errcode: answer.errcode,
        message: format!("{what} answered errcode {}: {errmsg}", answer.errcode),
    }))
}

/// Problems with a target's `@` lists, as (field, message) pairs: each
/// entry a user id or mobile number of 1 to 64 bytes.
pub fn check_mentions(lists: &[(&str, &Option<Vec<String>>)]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (field, list) in lists {
        for (i, item) in list.iter().flatten().enumerate() {
            if item.trim().is_empty() || item.len() > 64 {
                problems.push((
                    format!("{field}[{i}]"),
                    "must be a user id or mobile number (1 to 64 bytes)".into(),
                ));
            }
        }
    }
    problems
}
