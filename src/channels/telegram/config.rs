//! Telegram bot settings: `bot_token` (secret), `chat_id`,
//! `message_thread_id` (a forum topic), `api_url`, `timeout`.

use std::time::Duration;

use url::Url;

use crate::channels::{BuildContext, ChannelSpec};
use crate::secret::Secret;
use crate::section::Section;
use crate::template::DefaultTemplate;

pub const DEFAULT_API: &str = "https://api.telegram.org";

#[derive(Clone, Debug)]
pub struct TelegramConfig {
    /// `123456789:AA…` from @BotFather.
    pub bot_token: Secret,
    /// A chat's id (`-100…` for supergroups and channels) or `@username`.
    pub chat_id: String,
    /// A forum topic to post in.
    pub message_thread_id: Option<i64>,
    /// The Bot API server (a self-hosted `telegram-bot-api`, or tests).
    pub api_url: Url,
    pub timeout: Duration,
}

/// What a job's target may change for a Telegram destination.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramTarget {
    /// Telegram: another chat (`-100…` or `@username`) for this target.
    pub chat_id: Option<String>,
    /// Telegram: a forum topic in the chat.
    pub message_thread_id: Option<i64>,
}

impl TelegramConfig {
    pub fn chat<'a>(&'a self, target: &'a TelegramTarget) -> &'a str {
        target.chat_id.as_deref().unwrap_or(&self.chat_id)
    }

    pub fn topic(&self, target: &TelegramTarget) -> Option<i64> {
        target.message_thread_id.or(self.message_thread_id)
    }

    /// The URL of a Bot API method (it holds the token: never shown).
    pub fn method_url(&self, method: &str) -> Url {
        let mut url = self.api_url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/bot{}/{method}", self.bot_token.expose()));
        url
    }
}

/// A chat id: an integer, or `@` and a public username.
fn valid_chat(id: &str) -> bool {
    match id.strip_prefix('@') {
        Some(name) => (4..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        None => id.parse::<i64>().is_ok(),
    }
}

impl ChannelSpec for TelegramConfig {
    const NAME: &'static str = "telegram";
    const TEMPLATES: &'static [DefaultTemplate] = &[DefaultTemplate {
        name: "telegram/message.html.j2",
        source: include_str!("../../../templates/telegram/message.html.j2"),
    }];
    /// The Bot API's limit in a group: 20 messages a minute.
    const DEFAULT_RATE: Option<&'static str> = Some("20/min");
    const DIGEST_BY_DEFAULT: bool = true;

    type Target = TelegramTarget;
    type Sender = super::TelegramSender;

    fn read(s: &Section) -> Option<Self> {
        let bot_token = s.secret("bot_token");
        let token_ok = match &bot_token {
            None => {
                s.error("bot_token", "is required", Some("the token @BotFather gave, as bot_token = \"${TELEGRAM_BOT_TOKEN}\""));
                false
            }
            Some(t) => {
                let well_formed = t.expose().split_once(':').is_some_and(|(id, rest)| {
                    id.parse::<u64>().is_ok() && rest.len() >= 20 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
                if !well_formed {
                    s.error("bot_token", "is not a bot token (digits, `:`, then 20 or more letters, digits, `_` or `-`; not shown)", Some("copy it again from @BotFather"));
                }
                well_formed
            }
        };
        let chat_id = s.required_string("chat_id", "the chat's id, e.g. \"-1001234567890\", or \"@channelname\"");
        if let Some(id) = &chat_id {
            if !valid_chat(id) {
                s.error("chat_id", format!("{id:?} is not a chat id (an integer, or @username)"), None);
                return None;
            }
        }
        let message_thread_id = s.integer("message_thread_id", 1, i64::MAX);
        let api_url = match s.string("api_url") {
            None => Url::parse(DEFAULT_API).ok(),
            Some(text) => crate::section::check_url(&text, &["http", "https"])
                .map_err(|(m, h)| s.error("api_url", m, h))
                .ok(),
        };
        let timeout = s.span("timeout").map_or(Duration::from_secs(15), |t| t.0);
        if !token_ok {
            return None;
        }
        Some(Self {
            bot_token: bot_token?,
            chat_id: chat_id?,
            message_thread_id,
            api_url: api_url?,
            timeout,
        })
    }

    fn check_target(&self, _destination: &str, target: &TelegramTarget) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(id) = &target.chat_id {
            if !valid_chat(id) {
                problems.push(("chat_id".into(), "is not a chat id (an integer, or @username)".into()));
            }
        }
        if target.message_thread_id.is_some_and(|t| t < 1) {
            problems.push(("message_thread_id".into(), "is a positive topic id".into()));
        }
        problems
    }

    fn rate_scope(&self, _destination: &str, target: &TelegramTarget) -> String {
        format!("telegram:{}", self.chat(target))
    }

    /// A target in a chat of its own replies to its own first message there.
    fn thread_key(&self, destination: &str, target: &TelegramTarget) -> String {
        match &target.chat_id {
            Some(chat) => format!("{destination}#{chat}"),
            None => destination.to_string(),
        }
    }

    /// A photo (or an album) and, when the text is longer than a
    /// caption, the text after it.
    fn messages(&self, images: usize, _target: &TelegramTarget) -> u32 {
        if images == 0 { 1 } else { 2 }
    }

    fn build(&self, destination: &str, ctx: &BuildContext) -> Result<Self::Sender, String> {
        super::TelegramSender::new(destination, self, ctx)
    }
}
