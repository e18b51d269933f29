//! Where messages go: SMTP (our own pooled client), a file outbox for
//! development (the default without an SMTP URL), SMS over an HTTP JSON API, and
//! an SMS log for development. Each answers with an [`Outcome`].

pub mod file;
pub mod sms;
pub mod smtp;

use std::path::Path;

use super::compose::Email;
use super::queue::Outcome;
use crate::{Error, Result};

/// An e-mail transport.
pub enum EmailTransport {
    Smtp(smtp::Smtp),
    File(file::FileOutbox),
}

impl EmailTransport {
    /// SMTP when a URL is given (`smtp://host:port`, `smtps://…`; lettre's URL
    /// format), else `.eml` files under `<data dir>/outbox`. `connections` bounds
    /// the SMTP connections kept open.
    pub fn new(
        smtp_url: Option<&str>,
        data_dir: &Path,
        connections: u32,
    ) -> Result<EmailTransport> {
        match smtp_url {
            Some(url) => Ok(EmailTransport::Smtp(smtp::Smtp::new(url, connections)?)),
            None => Ok(EmailTransport::File(file::FileOutbox::new(
                data_dir.join("outbox"),
            )?)),
        }
    }

    pub async fn send(&self, email: &Email) -> Outcome {
        match self {
            EmailTransport::Smtp(smtp) => smtp.send(email).await,
            EmailTransport::File(outbox) => outbox.send(email).await,
        }
    }
}

/// An SMS to send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sms {
    pub to: String,
    pub from: String,
    pub text: String,
    /// Our id for it, so a provider can deduplicate retries.
    pub message_id: String,
}

pub enum SmsTransport {
    Http(sms::HttpSms),
    Log(sms::SmsLog),
}

impl SmsTransport {
    pub async fn send(&self, sms: &Sms) -> Outcome {
        match self {
            SmsTransport::Http(http) => http.send(sms).await,
            SmsTransport::Log(log) => log.send(sms).await,
        }
    }
}

fn config_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid("transport", format!("{what}: {e}"))
}
