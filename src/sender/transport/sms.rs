//! SMS: a JSON POST to a configurable HTTP provider, or a log file for development.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Sms, config_error};
use crate::Result;
use crate::sender::queue::Outcome;

/// Settings of an HTTP SMS provider (a provider's `config` JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSmsConfig {
    /// Receives `{"to","from","text","message_id"}` as JSON.
    pub url: String,
    /// Sent as `Authorization: Bearer …` when set.
    #[serde(default)]
    pub token: Option<String>,
    /// Sender id used when the message names none.
    #[serde(default)]
    pub from: String,
}

pub struct HttpSms {
    client: reqwest::Client,
    config: HttpSmsConfig,
}

impl HttpSms {
    pub fn new(config: HttpSmsConfig) -> Result<HttpSms> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| config_error("HTTP client", e))?;
        Ok(HttpSms { client, config })
    }

    pub async fn send(&self, sms: &Sms) -> Outcome {
        let mut body = sms.clone();
        if body.from.is_empty() {
            body.from = self.config.from.clone();
        }
        let mut request = self.client.post(&self.config.url).json(&body);
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let reply = format!(
                    "{} {}",
                    status.as_u16(),
                    text.chars().take(200).collect::<String>()
                );
                if status.is_success() {
                    Outcome::Sent(reply)
                } else if status.as_u16() == 429 || status.is_server_error() {
                    Outcome::Deferred(reply)
                } else {
                    Outcome::Bounced(reply)
                }
            }
            // Refused before the request went out: nothing was sent.
            Err(e) if e.is_connect() => Outcome::Deferred(e.to_string()),
            Err(e) => Outcome::Unknown(e.to_string()),
        }
    }
}

/// Appends each SMS as a JSON line to a file.
pub struct SmsLog {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl SmsLog {
    pub fn new(path: PathBuf) -> Result<SmsLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| config_error(&dir.display().to_string(), e))?;
        }
        Ok(SmsLog {
            path,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    pub async fn send(&self, sms: &Sms) -> Outcome {
        let _guard = self.lock.lock().await;
        let line = match serde_json::to_string(sms) {
            Ok(line) => line,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(file, "{line}")
        })
        .await;
        match written {
            Ok(Ok(())) => Outcome::Sent(format!("logged to {}", self.path.display())),
            Ok(Err(e)) => Outcome::Deferred(e.to_string()),
            Err(e) => Outcome::Deferred(e.to_string()),
        }
    }
}
