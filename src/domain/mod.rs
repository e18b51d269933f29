//! Business objects and rules shared by every protocol. Nothing here knows about
//! XML or HTTP; every function takes the account it acts for and every query
//! filters by it.

pub mod access_keys;
pub mod accounts;
pub mod bounces;
pub mod callers;
pub mod confirmations;
pub mod credentials;
pub mod credits;
pub mod events;
pub mod exports;
pub mod fields;
pub mod file_imports;
pub mod groups;
pub mod history;
pub mod image_library;
pub mod imports;
pub mod links;
pub mod list_blocklist;
pub mod list_decorations;
pub mod list_properties;
pub mod lists;
pub mod message_stats;
pub mod messages;
pub mod notices;
pub mod optout;
pub mod providers;
pub mod recipients;
pub mod secrets;
pub mod send_queue;
pub mod sends;
pub mod sessions;
pub mod subscriptions;
pub mod tracking;
pub mod triggered_sends;
pub mod users;
pub mod variables;

use chrono::NaiveDateTime;

/// The current time as stored in the database: UTC without offset.
pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// At most the first `max` characters of `text` (for text from outside, such
/// as user agents and SMTP replies, stored in columns of bounded use).
pub fn first_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Who asked for a change, recorded in the subscription history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The interface the request came through.
    pub channel: Channel,
    /// The user, credential or address acting (free text, never a secret).
    pub actor: String,
}

impl Origin {
    pub fn new(channel: Channel, actor: impl Into<String>) -> Origin {
        Origin {
            channel,
            actor: actor.into(),
        }
    }
}

/// The interfaces through which data changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    MailupFrontend,
    MailupImport,
    MailupSoap,
    ExactTarget,
    Ecircle,
    Rest,
    Brevo,
    /// Links in messages: confirmation, unsubscribe.
    Web,
    Console,
    Cli,
    /// The server itself: bounces, complaints, scheduled jobs.
    System,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::MailupFrontend => "mailup-frontend",
            Channel::MailupImport => "mailup-import",
            Channel::MailupSoap => "mailup-soap",
            Channel::ExactTarget => "exacttarget",
            Channel::Ecircle => "ecircle",
            Channel::Rest => "rest",
            Channel::Brevo => "brevo",
            Channel::Web => "web",
            Channel::Console => "console",
            Channel::Cli => "cli",
            Channel::System => "system",
        }
    }
}
