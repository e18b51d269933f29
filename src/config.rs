//! One settings struct: defaults in code, an optional TOML file, then environment
//! variables and command-line flags (clap reads both) on top.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// Server settings. Field names are also the keys of the TOML file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`. When not set, the
    /// SQLite file `espbridge.db` in the data directory.
    pub database_url: Option<String>,
    /// Address the HTTP server binds to.
    pub listen: String,
    /// Directory for the SQLite database, the file outbox and other local files.
    pub data_dir: PathBuf,
    /// The URL clients reach us at, used in links and WSDL addresses. When not set,
    /// the URL each request arrived at.
    pub public_url: Option<String>,
    /// SMTP relay (`smtp://host:port`); without it mail goes to the file outbox.
    pub smtp_url: Option<String>,
    /// Largest request body accepted by any endpoint, in bytes.
    pub max_body_bytes: usize,
    /// Database connections per process; default 8 for SQLite, 16 for PostgreSQL.
    pub pool_size: Option<u32>,
    /// HTTP worker threads; default one per core.
    pub http_workers: Option<usize>,
    /// Reverse proxies whose `X-Forwarded-For` is believed: a request from one
    /// of these is treated as coming from the last address that header names.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Largest XML document (SOAP envelope) accepted, in bytes.
    pub max_xml_bytes: usize,
    /// Largest WSMailUpImport request, in bytes: its `xmlDoc` carries whole
    /// recipient files, so it gets more room than other SOAP calls.
    pub max_import_bytes: usize,
    /// The queued sender (`[sender]` in the TOML file).
    pub sender: SenderSettings,
}

/// How the sender works through the outbox.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SenderSettings {
    /// Run sender workers inside `espbridge serve`.
    pub in_server: bool,
    /// Deliveries of campaigns in progress at once (and SMTP connections for them).
    pub bulk_concurrency: usize,
    /// Deliveries of the priority lane (transactional, OTP, system) in progress at
    /// once, kept apart so they never wait behind a campaign.
    pub priority_concurrency: usize,
    /// Most deliveries taken from the outbox per claim.
    pub claim_batch: usize,
    /// How long a claimed delivery stays reserved for its worker. A worker that
    /// dies leaves its deliveries `unknown` when this runs out; they are re-sent.
    pub lease_seconds: u64,
    /// First retry delay after a temporary failure; doubles per attempt (max 6 h).
    pub retry_base_seconds: u64,
    /// Attempts before a delivery is given up.
    pub max_attempts: i32,
    /// How often an idle worker looks for new deliveries, in milliseconds.
    pub poll_milliseconds: u64,
    /// Recipients enqueued per campaign expansion step.
    pub expansion_batch: i64,
    /// From address for messages that name none (nor does their list).
    pub default_from: String,
    /// A Maildir (`new/`, `cur/`) the local MTA delivers bounce and
    /// complaint reports to; polled by the workers.
    pub bounce_maildir: Option<PathBuf>,
    /// An IMAP mailbox of bounce reports,
    /// `imap[s]://user:password@host[:port]/MAILBOX`; polled by the workers.
    pub bounce_imap_url: Option<String>,
    /// Seconds between polls of the bounce Maildir and mailbox.
    pub bounce_poll_seconds: u64,
    /// Domain of the VERP return paths (`b<delivery>-<tag>@<domain>`) whose
    /// bounces the local MTA delivers to the bounce Maildir. Without it the
    /// envelope sender is the From address.
    pub bounce_domain: Option<String>,
    /// Messages per second allowed per recipient domain (token bucket, burst of
    /// one second's worth), e.g. `{ "gmail.com" = 20.0 }`.
    pub domain_rates: std::collections::BTreeMap<String, f64>,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            in_server: true,
            bulk_concurrency: 16,
            priority_concurrency: 4,
            claim_batch: 256,
            lease_seconds: 120,
            retry_base_seconds: 60,
            max_attempts: 8,
            poll_milliseconds: 200,
            expansion_batch: 1000,
            default_from: "espbridge@localhost".into(),
            bounce_domain: None,
            bounce_maildir: None,
            bounce_imap_url: None,
            bounce_poll_seconds: 60,
            domain_rates: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: None,
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            public_url: None,
            smtp_url: None,
            max_body_bytes: 32 * 1024 * 1024,
            pool_size: None,
            http_workers: None,
            trusted_proxies: Vec::new(),
            max_xml_bytes: 4 * 1024 * 1024,
            max_import_bytes: 64 * 1024 * 1024,
            sender: SenderSettings::default(),
        }
    }
}

/// Values given on the command line or in `ESPBRIDGE_*` variables; each one that
/// is present overrides the file and the defaults.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
    pub smtp_url: Option<String>,
}

impl Settings {
    /// Defaults, then the TOML file (if given), then the overrides.
    pub fn load(config_file: Option<&Path>, overrides: Overrides) -> Result<Settings> {
        let mut settings = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid("config file", format!("{}: {e}", path.display()))
                })?;
                toml::from_str(&text).map_err(|e| {
                    Error::invalid("config file", format!("{}: {e}", path.display()))
                })?
            }
            None => Settings::default(),
        };
        let Overrides {
            database_url,
            listen,
            data_dir,
            public_url,
            smtp_url,
        } = overrides;
        if database_url.is_some() {
            settings.database_url = database_url;
        }
        if let Some(listen) = listen {
            settings.listen = listen;
        }
        if let Some(data_dir) = data_dir {
            settings.data_dir = data_dir;
        }
        if public_url.is_some() {
            settings.public_url = public_url;
        }
        if smtp_url.is_some() {
            settings.smtp_url = smtp_url;
        }
        Ok(settings)
    }

    /// The database URL in effect: the configured one, or SQLite in the data dir
    /// (which with the default data dir is `sqlite://data/espbridge.db`).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("espbridge.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_database_is_sqlite_in_the_data_dir() {
        let settings = Settings::load(None, Overrides::default()).unwrap();
        assert_eq!(settings.database_url(), "sqlite://data/espbridge.db");
        assert_eq!(settings.listen, "127.0.0.1:8080");
    }

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("espbridge.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/esp\"\npool_size = 4\n",
        )
        .unwrap();
        let settings = Settings::load(
            Some(&path),
            Overrides {
                listen: Some("127.0.0.1:9001".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(settings.listen, "127.0.0.1:9001");
        assert_eq!(settings.pool_size, Some(4));
        assert_eq!(settings.database_url(), "sqlite:///srv/esp/espbridge.db");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        let err = Settings::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }
}
