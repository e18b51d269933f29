//! SMTP: lettre's SMTP client (`AsyncSmtpConnection`: EHLO, STARTTLS, AUTH,
//! the mail transaction) over connections we open and pool ourselves, so that
//! they can have TCP_NODELAY. lettre's own pooled transport cannot set it, and
//! it writes the message and its final `.` separately: Nagle's algorithm then
//! holds the `.` until the server's delayed ACK, 40 ms per message (measured:
//! 44 ms per send, 360 messages/s; see docs/decisions.md).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Semaphore;

use super::config_error;
use crate::Result;
use crate::sender::queue::Outcome;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Security {
    None,
    /// STARTTLS if the server offers it.
    Opportunistic,
    /// STARTTLS or fail.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// Where and how to connect, from `smtp://[user:pass@]host[:port][?tls=required|opportunistic]`
/// or `smtps://…` (lettre's URL conventions).
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
}

fn parse(url: &str) -> Result<Target> {
    let parsed = url::Url::parse(url).map_err(|e| config_error("SMTP URL", e))?;
    let tls = parsed
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let (security, default_port) = match (parsed.scheme(), tls.as_deref()) {
        ("smtp", None) => (Security::None, 25),
        ("smtp", Some("opportunistic")) => (Security::Opportunistic, 25),
        ("smtp", Some("required")) => (Security::StartTls, 587),
        ("smtps", None) => (Security::Implicit, 465),
        (scheme, tls) => {
            return Err(config_error(
                "SMTP URL",
                format!("unsupported scheme {scheme:?} with tls={tls:?}"),
            ));
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| config_error("SMTP URL", "no host"))?
        .to_string();
    let credentials = (!parsed.username().is_empty()).then(|| {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Credentials::new(
            decode(parsed.username()),
            decode(parsed.password().unwrap_or("")),
        )
    });
    Ok(Target {
        port: parsed.port().unwrap_or(default_port),
        host,
        security,
        credentials,
    })
}

/// Connections idle longer than this are checked with NOOP before reuse.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// How long a NOOP or QUIT may take before the connection is given up.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections idle longer than this are closed rather than reused.
const MAX_IDLE: Duration = Duration::from_secs(60);

pub struct Smtp {
    target: Target,
    hello: ClientId,
    /// Bounds the connections open at once.
    slots: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    timeout: Duration,
}

impl Smtp {
    pub fn new(url: &str, connections: u32) -> Result<Smtp> {
        Ok(Smtp {
            target: parse(url)?,
            hello: ClientId::default(),
            slots: Semaphore::new(connections.max(1) as usize),
            idle: Mutex::new(Vec::new()),
            timeout: Duration::from_secs(60),
        })
    }

    async fn connect(&self) -> std::result::Result<AsyncSmtpConnection, String> {
        let target = &self.target;
        let tls = || TlsParameters::new(target.host.clone()).map_err(|e| e.to_string());
        let mut conn = if target.security == Security::Implicit {
            AsyncSmtpConnection::connect_tokio1(
                (target.host.as_str(), target.port),
                Some(self.timeout),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| e.to_string())?
        } else {
            let stream = tokio::time::timeout(
                self.timeout,
                tokio::net::TcpStream::connect((target.host.as_str(), target.port)),
            )
            .await
            .map_err(|_| "connection timed out".to_string())?
            .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .map_err(|e| e.to_string())?
        };
        match target.security {
            Security::StartTls => conn
                .starttls(tls()?, &self.hello)
                .await
                .map_err(|e| e.to_string())?,
            Security::Opportunistic if conn.can_starttls() => conn
                .starttls(tls()?, &self.hello)
                .await
                .map_err(|e| e.to_string())?,
            _ => {}
        }
        if let Some(credentials) = &target.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(conn)
    }

    /// An idle connection that still works, or a new one.
    async fn connection(&self) -> std::result::Result<AsyncSmtpConnection, String> {
        loop {
            let parked = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some((mut conn, since)) = parked else {
                // Every step of setting up a connection is bounded too.
                return tokio::time::timeout(self.timeout, self.connect())
                    .await
                    .unwrap_or_else(|_| Err("SMTP server did not answer in time".into()));
            };
            let idle = since.elapsed();
            if idle > MAX_IDLE {
                close(conn).await;
                continue;
            }
            let alive = idle < CHECK_AFTER_IDLE
                || tokio::time::timeout(CHECK_TIMEOUT, conn.test_connected())
                    .await
                    .unwrap_or(false);
            if alive {
                return Ok(conn);
            }
            close(conn).await;
        }
    }

    pub async fn send(&self, message: lettre::Message) -> Outcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return Outcome::Deferred("SMTP transport closed".into());
        };
        let mut conn = match self.connection().await {
            Ok(conn) => conn,
            // Nothing was sent: a plain retry later is right.
            Err(e) => return Outcome::Deferred(format!("cannot connect to the SMTP server: {e}")),
        };
        let bytes = message.formatted();
        match tokio::time::timeout(self.timeout, conn.send(message.envelope(), &bytes)).await {
            Ok(Ok(response)) => {
                if !conn.has_broken() {
                    self.idle
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((conn, Instant::now()));
                }
                Outcome::Sent(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                ))
            }
            // lettre closes the connection after an error reply.
            Ok(Err(e)) if e.is_transient() => Outcome::Deferred(e.to_string()),
            Ok(Err(e)) if e.is_permanent() => Outcome::Bounced(e.to_string()),
            // Connection or protocol trouble mid-transaction: the server may have
            // taken the message, or not. See queue.rs for the policy.
            Ok(Err(e)) => Outcome::Unknown(e.to_string()),
            Err(_) => Outcome::Unknown("SMTP server did not answer in time".into()),
        }
    }
}

/// Closes a connection (QUIT), without waiting long for a server gone silent.
async fn close(mut conn: AsyncSmtpConnection) {
    let _ = tokio::time::timeout(CHECK_TIMEOUT, conn.abort()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.security, t.credentials.is_none()),
            ("127.0.0.1", 2525, Security::None, true)
        );
        let t = parse("smtp://user%40x:p%3As+s@mail.example?tls=required").unwrap();
        assert_eq!((t.port, t.security), (587, Security::StartTls));
        let expected = Credentials::new("user@x".into(), "p:s+s".into());
        assert_eq!(
            format!("{:?}", t.credentials.unwrap()),
            format!("{expected:?}")
        );
        assert_eq!(parse("smtps://mail.example").unwrap().port, 465);
        assert!(parse("http://mail.example").is_err());
        assert!(parse("smtp://mail.example?tls=sometimes").is_err());
    }
}
