//! SMTP: our own client (docs/decisions.md, 11 and 16) over connections we open
//! and pool ourselves, with TCP_NODELAY.
//!
//! When the server offers PIPELINING (RFC 2920), `MAIL FROM`, `RCPT TO` and
//! `DATA` go out in one write and their replies are read together; the message
//! follows, dot-stuffed and with its final `.`, in a second write. That is two
//! round trips and two writes per message where lettre's client made four round
//! trips and five writes. lettre still provides the EHLO name and the message's
//! header encoding; TLS is native-tls, as lettre's was.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::config_error;
use crate::Result;
use crate::sender::compose::Email;
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

#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <password>)", self.user)
    }
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
        Credentials {
            user: decode(parsed.username()),
            password: decode(parsed.password().unwrap_or("")),
        }
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
/// The largest reply accepted; a server that sends more is broken.
const MAX_REPLY: usize = 64 * 1024;

pub struct Smtp {
    target: Target,
    hello: String,
    tls: tokio_native_tls::TlsConnector,
    /// Bounds the connections open at once.
    slots: Semaphore,
    idle: Mutex<Vec<(Connection, Instant)>>,
    timeout: Duration,
}

impl Smtp {
    pub fn new(url: &str, connections: u32) -> Result<Smtp> {
        let tls = native_tls::TlsConnector::builder()
            .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
            .build()
            .map_err(|e| config_error("TLS", e))?;
        Ok(Smtp {
            target: parse(url)?,
            hello: ClientId::default().to_string(),
            tls: tls.into(),
            slots: Semaphore::new(connections.max(1) as usize),
            idle: Mutex::new(Vec::new()),
            timeout: Duration::from_secs(60),
        })
    }

    /// Opens a connection and takes it through the greeting, EHLO, STARTTLS and
    /// AUTH as the URL asks.
    async fn connect(&self) -> std::result::Result<Connection, String> {
        let target = &self.target;
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| e.to_string())?;
        // Without it, Nagle's algorithm holds each write until the server's
        // delayed ACK (decision 11).
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut conn = if target.security == Security::Implicit {
            let mut conn = Connection::new(Box::new(self.tls_over(tcp).await?) as Box<dyn Io>);
            conn.expect_greeting().await?;
            conn.ehlo(&self.hello).await?;
            conn
        } else {
            let mut plain = Connection::new(tcp);
            plain.expect_greeting().await?;
            plain.ehlo(&self.hello).await?;
            let upgrade = match target.security {
                Security::StartTls if !plain.extensions.starttls => {
                    return Err("the server does not offer STARTTLS".into());
                }
                Security::StartTls | Security::Opportunistic => plain.extensions.starttls,
                Security::None | Security::Implicit => false,
            };
            if upgrade {
                let tcp = plain.starttls().await?;
                let mut conn = Connection::new(Box::new(self.tls_over(tcp).await?) as Box<dyn Io>);
                conn.ehlo(&self.hello).await?;
                conn
            } else {
                plain.boxed()
            }
        };
        if let Some(credentials) = &target.credentials {
            conn.auth(credentials).await?;
        }
        Ok(conn)
    }

    async fn tls_over(
        &self,
        tcp: TcpStream,
    ) -> std::result::Result<tokio_native_tls::TlsStream<TcpStream>, String> {
        self.tls
            .connect(&self.target.host, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))
    }

    /// An idle connection that still works, or a new one.
    async fn connection(&self) -> std::result::Result<Connection, String> {
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
                || tokio::time::timeout(CHECK_TIMEOUT, conn.command("NOOP"))
                    .await
                    .is_ok_and(|reply| reply.is_ok_and(|r| r.class() == 2));
            if alive {
                return Ok(conn);
            }
            close(conn).await;
        }
    }

    pub async fn send(&self, email: &Email) -> Outcome {
        let Ok(_slot) = self.slots.acquire().await else {
            return Outcome::Deferred("SMTP transport closed".into());
        };
        let mut conn = match self.connection().await {
            Ok(conn) => conn,
            // Nothing was sent: a plain retry later is right.
            Err(e) => return Outcome::Deferred(format!("cannot connect to the SMTP server: {e}")),
        };
        match tokio::time::timeout(self.timeout, conn.transaction(email)).await {
            Ok((outcome, Reuse::Yes)) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((conn, Instant::now()));
                outcome
            }
            Ok((outcome, Reuse::AfterQuit)) => {
                close(conn).await;
                outcome
            }
            // Dropped: the socket closes.
            Ok((outcome, Reuse::No)) => outcome,
            Err(_) => Outcome::Unknown("SMTP server did not answer in time".into()),
        }
    }
}

/// Closes a connection (QUIT), without waiting long for a server gone silent.
async fn close(mut conn: Connection) {
    let _ = tokio::time::timeout(CHECK_TIMEOUT, conn.command("QUIT")).await;
}

/// A reply: its code and the text of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// 2 (done), 3 (go on), 4 (temporary failure) or 5 (permanent failure).
    fn class(&self) -> u16 {
        self.code / 100
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        for line in self.lines.iter().filter(|line| !line.is_empty()) {
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

/// The first complete reply in `input` and how many bytes it took, or None if
/// more must be read first. Lines are `CODE-text` until the last, `CODE text`
/// (or `CODE` alone), each ending in CRLF (a bare LF is accepted).
fn parse_reply(input: &[u8]) -> std::result::Result<Option<(Reply, usize)>, String> {
    let mut used = 0;
    let mut code = None;
    let mut lines = Vec::new();
    while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
        let raw = &input[used..used + end];
        used += end + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let malformed = || format!("malformed reply {:?}", String::from_utf8_lossy(line));
        let digits = line.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
        let this = digits
            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or_else(malformed)?;
        if code.is_some_and(|c| c != this) {
            return Err(malformed());
        }
        code = Some(this);
        let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default());
        lines.push(text.trim().to_string());
        match line.get(3) {
            Some(b'-') => {}
            None | Some(b' ') => {
                return Ok(Some((Reply { code: this, lines }, used)));
            }
            Some(_) => return Err(malformed()),
        }
    }
    Ok(None)
}

/// The message as DATA content (RFC 5321 4.5.2): a `.` doubled at the start of
/// every line, a CRLF at the end if it lacks one, then the final `.`.
fn data_content(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + 64);
    let mut copied = 0;
    if message.first() == Some(&b'.') {
        out.push(b'.');
    }
    for newline in memchr::memmem::find_iter(message, b"\n.") {
        out.extend_from_slice(&message[copied..=newline]);
        out.push(b'.');
        copied = newline + 1;
    }
    out.extend_from_slice(&message[copied..]);
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// What the server announced in its EHLO reply that we use.
#[derive(Debug, Default)]
struct Extensions {
    pipelining: bool,
    eight_bit_mime: bool,
    smtputf8: bool,
    starttls: bool,
    auth_plain: bool,
    auth_login: bool,
}

impl Extensions {
    fn from_ehlo(lines: &[String]) -> Extensions {
        let mut found = Extensions::default();
        for line in lines {
            let mut words = line.split_whitespace().map(str::to_ascii_uppercase);
            match words.next().as_deref() {
                Some("PIPELINING") => found.pipelining = true,
                Some("8BITMIME") => found.eight_bit_mime = true,
                Some("SMTPUTF8") => found.smtputf8 = true,
                Some("STARTTLS") => found.starttls = true,
                Some("AUTH") => {
                    for mechanism in words {
                        found.auth_plain |= mechanism == "PLAIN";
                        found.auth_login |= mechanism == "LOGIN";
                    }
                }
                _ => {}
            }
        }
        found
    }
}

/// The byte stream under a connection: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Whether a connection can carry the next message after a transaction.
#[derive(Debug, PartialEq, Eq)]
enum Reuse {
    Yes,
    /// Out of step with the server: say QUIT and close it.
    AfterQuit,
    /// Broken: drop it.
    No,
}

/// A connection: plain TCP while it is set up, then any [`Io`] (pooled ones
/// are `Box<dyn Io>`).
struct Connection<S = Box<dyn Io>> {
    /// Bytes received and not yet parsed.
    input: Vec<u8>,
    /// The next write, reused from message to message.
    output: Vec<u8>,
    extensions: Extensions,
    stream: S,
}

impl Connection<TcpStream> {
    /// Asks for STARTTLS and hands back the TCP stream to encrypt.
    async fn starttls(mut self) -> std::result::Result<TcpStream, String> {
        self.setup_step("STARTTLS", 2).await?;
        // Anything the server sent after its reply would be read as if it had
        // come through TLS (a known injection): refuse it.
        if !self.input.is_empty() {
            return Err("data after the STARTTLS reply".into());
        }
        Ok(self.stream)
    }

    fn boxed(self) -> Connection {
        Connection {
            input: self.input,
            output: self.output,
            extensions: self.extensions,
            stream: Box::new(self.stream),
        }
    }
}

impl<S: Io> Connection<S> {
    fn new(stream: S) -> Connection<S> {
        Connection {
            input: Vec::with_capacity(1024),
            output: Vec::new(),
            extensions: Extensions::default(),
            stream,
        }
    }

    async fn read_reply(&mut self) -> std::io::Result<Reply> {
        loop {
            match parse_reply(&self.input) {
                Ok(Some((reply, used))) => {
                    self.input.drain(..used);
                    return Ok(reply);
                }
                Ok(None) if self.input.len() > MAX_REPLY => {
                    return Err(protocol_error("reply too long".into()));
                }
                Ok(None) => {}
                Err(e) => return Err(protocol_error(e)),
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed by the SMTP server",
                ));
            }
        }
    }

    /// Writes what is in `output`, in one write.
    async fn flush_output(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&self.output).await?;
        self.stream.flush().await?;
        self.output.clear();
        Ok(())
    }

    async fn command(&mut self, line: &str) -> std::io::Result<Reply> {
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
        self.flush_output().await?;
        self.read_reply().await
    }

    /// A command during setup: its reply, if it has the expected class.
    async fn setup_step(&mut self, line: &str, class: u16) -> std::result::Result<Reply, String> {
        let reply = self.command(line).await.map_err(|e| e.to_string())?;
        match reply.class() == class {
            true => Ok(reply),
            false => Err(format!("{} answered {reply}", first_word(line))),
        }
    }

    async fn expect_greeting(&mut self) -> std::result::Result<(), String> {
        let greeting = self.read_reply().await.map_err(|e| e.to_string())?;
        match greeting.class() {
            2 => Ok(()),
            _ => Err(format!("greeting {greeting}")),
        }
    }

    async fn ehlo(&mut self, hello: &str) -> std::result::Result<(), String> {
        let reply = self.setup_step(&format!("EHLO {hello}"), 2).await?;
        // The first line is the server's name, the others its extensions.
        self.extensions = Extensions::from_ehlo(reply.lines.get(1..).unwrap_or_default());
        Ok(())
    }

    async fn auth(&mut self, credentials: &Credentials) -> std::result::Result<(), String> {
        let encode = |s: &str| STANDARD.encode(s);
        if self.extensions.auth_plain {
            let token = encode(&format!("\0{}\0{}", credentials.user, credentials.password));
            self.setup_step(&format!("AUTH PLAIN {token}"), 2).await?;
        } else if self.extensions.auth_login {
            self.setup_step("AUTH LOGIN", 3).await?;
            self.setup_step(&encode(&credentials.user), 3).await?;
            self.setup_step(&encode(&credentials.password), 2).await?;
        } else {
            return Err("the server offers neither AUTH PLAIN nor AUTH LOGIN".into());
        }
        Ok(())
    }

    /// Sends one message to its one recipient: the outcome, and whether the
    /// connection can carry the next message.
    async fn transaction(&mut self, email: &Email) -> (Outcome, Reuse) {
        let mut parameters = String::new();
        if !email.bytes.is_ascii() {
            if !self.extensions.eight_bit_mime {
                let reason = "the message is not ASCII and the server lacks 8BITMIME";
                return (Outcome::Failed(reason.into()), Reuse::Yes);
            }
            parameters.push_str(" BODY=8BITMIME");
        }
        if !(email.from.is_ascii() && email.to.is_ascii()) {
            if !self.extensions.smtputf8 {
                let reason = "the addresses are not ASCII and the server lacks SMTPUTF8";
                return (Outcome::Failed(reason.into()), Reuse::Yes);
            }
            parameters.push_str(" SMTPUTF8");
        }
        let commands = [
            format!("MAIL FROM:<{}>{parameters}", email.from),
            format!("RCPT TO:<{}>", email.to),
            "DATA".to_string(),
        ];
        let refused = match self.envelope(&commands).await {
            Ok(refused) => refused,
            Err(e) => return (Outcome::Unknown(e.to_string()), Reuse::No),
        };
        if let Some((reply, reuse)) = refused {
            return (refusal(reply), reuse);
        }
        data_content(&email.bytes, &mut self.output);
        let reply = match self.flush_output().await {
            Ok(()) => self.read_reply().await,
            Err(e) => Err(e),
        };
        match reply {
            // After the final dot the server is ready for the next MAIL
            // whatever it answered.
            Ok(reply) if reply.class() == 2 => (Outcome::Sent(reply.to_string()), Reuse::Yes),
            Ok(reply) if reply.class() >= 4 => (refusal(reply), Reuse::Yes),
            Ok(reply) => (
                Outcome::Unknown(format!("unexpected reply to the message: {reply}")),
                Reuse::AfterQuit,
            ),
            // The server may have taken the message, or not (see queue.rs).
            Err(e) => (Outcome::Unknown(e.to_string()), Reuse::No),
        }
    }

    /// MAIL, RCPT and DATA: pipelined when the server allows it, else one at a
    /// time. None when the server is ready for the message; else the reply that
    /// refused it, and whether the connection is fit for another message.
    async fn envelope(
        &mut self,
        commands: &[String; 3],
    ) -> std::io::Result<Option<(Reply, Reuse)>> {
        let mut replies = Vec::with_capacity(3);
        // A connection error after a refusal (a server that says 421 and
        // hangs up, say) leaves the refusal as the outcome.
        let mut lost = None;
        if self.extensions.pipelining {
            for command in commands {
                self.output.extend_from_slice(command.as_bytes());
                self.output.extend_from_slice(b"\r\n");
            }
            self.flush_output().await?;
            // Every command is answered, refused or not.
            for _ in commands {
                match self.read_reply().await {
                    Ok(reply) => replies.push(reply),
                    Err(e) => {
                        lost = Some(e);
                        break;
                    }
                }
            }
        } else {
            for command in commands {
                match self.command(command).await {
                    Ok(reply) => {
                        let refused = reply.class() >= 4;
                        replies.push(reply);
                        if refused {
                            break;
                        }
                    }
                    Err(e) => {
                        lost = Some(e);
                        break;
                    }
                }
            }
        }
        let data_accepted = replies.get(2).is_some_and(|data| data.class() == 3);
        let refusal = replies
            .into_iter()
            .zip([2, 2, 3])
            .find(|(reply, expected)| reply.class() != *expected)
            .map(|(reply, _)| reply);
        let reuse = match (&refusal, lost) {
            (None, Some(e)) => return Err(e),
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => Reuse::No,
            // The server now waits for a message we will not send, or
            // answered out of place.
            (Some(refusal), None) if data_accepted || refusal.class() < 4 => Reuse::AfterQuit,
            // Back to a clean state for the next message.
            (Some(_), None) => match self.command("RSET").await {
                Ok(reset) if reset.class() == 2 => Reuse::Yes,
                Ok(_) => Reuse::AfterQuit,
                Err(_) => Reuse::No,
            },
        };
        Ok(refusal.map(|refusal| (refusal, reuse)))
    }
}

/// The outcome of a refusal: 4xx defers, 5xx bounces; anything else (a reply
/// out of place) leaves the outcome unknown.
fn refusal(reply: Reply) -> Outcome {
    match reply.class() {
        4 => Outcome::Deferred(reply.to_string()),
        5 => Outcome::Bounced(reply.to_string()),
        _ => Outcome::Unknown(format!("unexpected reply {reply}")),
    }
}

fn first_word(line: &str) -> &str {
    line.split(' ').next().unwrap_or(line)
}

fn protocol_error(reason: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, reason)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

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
        let expected = Credentials {
            user: "user@x".into(),
            password: "p:s+s".into(),
        };
        assert_eq!(t.credentials, Some(expected));
        assert_eq!(parse("smtps://mail.example").unwrap().port, 465);
        assert!(parse("http://mail.example").is_err());
        assert!(parse("smtp://mail.example?tls=sometimes").is_err());
    }

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn replies_are_parsed_line_by_line() {
        let input = b"250-smtp.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n354 go on\r\n";
        let (first, used) = parse_reply(input).unwrap().unwrap();
        assert_eq!(
            first,
            reply(250, &["smtp.example", "PIPELINING", "8BITMIME"])
        );
        let (second, rest) = parse_reply(&input[used..]).unwrap().unwrap();
        assert_eq!(
            (second.to_string().as_str(), used + rest),
            ("354 go on", input.len())
        );
        // smtp-sink ends its EHLO reply with "250 " and no text.
        assert_eq!(
            parse_reply(b"250 \r\n").unwrap().unwrap().0.to_string(),
            "250"
        );
        assert_eq!(parse_reply(b"221\n").unwrap().unwrap().0, reply(221, &[""]));
        // Incomplete: more must be read.
        assert_eq!(parse_reply(b"250-first\r\n250 sec").unwrap(), None);
        assert_eq!(parse_reply(b"").unwrap(), None);
        for bad in [
            &b"hello\r\n"[..],
            b"250-a\r\n251 b\r\n",
            b"250x\r\n",
            b"099 no\r\n",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let refused = reply(
            550,
            &["5.1.1 <x@y>: Recipient address rejected:", "User unknown"],
        );
        assert_eq!(
            refused.to_string(),
            "550 5.1.1 <x@y>: Recipient address rejected: User unknown"
        );
    }

    #[test]
    fn dots_are_stuffed_and_the_data_ends_with_a_dot() {
        let stuffed = |message: &[u8]| {
            let mut out = Vec::new();
            data_content(message, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            stuffed(b".first\r\nnot.this\r\n.\r\n..two\r\n"),
            "..first\r\nnot.this\r\n..\r\n...two\r\n.\r\n"
        );
        assert_eq!(
            stuffed(b"no line break at the end"),
            "no line break at the end\r\n.\r\n"
        );
        assert_eq!(stuffed(b"a\r\n."), "a\r\n..\r\n.\r\n");
        assert_eq!(stuffed(b""), ".\r\n");
    }

    #[test]
    fn extensions_come_from_the_ehlo_lines() {
        let lines = [
            "PIPELINING",
            "8BITMIME",
            "AUTH LOGIN PLAIN",
            "starttls",
            "SIZE 100",
        ];
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let found = Extensions::from_ehlo(&lines);
        assert!(found.pipelining && found.eight_bit_mime && found.starttls);
        assert!(found.auth_plain && found.auth_login && !found.smtputf8);
    }

    /// How the fake server answers: a reply (with CRLFs) per command line, and
    /// one for each message (after its final dot).
    type Answer = Arc<dyn Fn(&str) -> String + Send + Sync>;

    /// What the fake server saw: command lines, and messages as received
    /// (still dot-stuffed).
    #[derive(Default)]
    struct Transcript {
        commands: Vec<String>,
        messages: Vec<String>,
        connections: usize,
    }

    /// A fake SMTP server on loopback. With `pipelining` it announces
    /// PIPELINING and, as Postfix does, holds the replies to MAIL and RCPT
    /// until a command that ends a group (DATA, RSET, NOOP, QUIT), so a client
    /// that waits for each reply before the next command gets stuck. Like
    /// Postfix, it refuses DATA when no recipient was accepted.
    async fn fake_server(
        pipelining: bool,
        auth: bool,
        answer: Answer,
    ) -> (String, Arc<Mutex<Transcript>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let transcript = Arc::new(Mutex::new(Transcript::default()));
        let seen = transcript.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                seen.lock().unwrap().connections += 1;
                let (seen, answer) = (seen.clone(), answer.clone());
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                    let mut held = String::new();
                    let mut message: Option<String> = None;
                    let mut recipients = 0;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = message.as_mut() {
                            if line == "." {
                                let body = message.take().unwrap();
                                seen.lock().unwrap().messages.push(body);
                                held.push_str(&answer("."));
                            } else {
                                body.push_str(&line);
                                body.push_str("\r\n");
                                continue;
                            }
                        } else {
                            seen.lock().unwrap().commands.push(line.clone());
                            let verb = line.split(' ').next().unwrap().to_ascii_uppercase();
                            let reply = match verb.as_str() {
                                "EHLO" => {
                                    let mut r = "250-fake\r\n".to_string();
                                    if pipelining {
                                        r.push_str("250-PIPELINING\r\n");
                                    }
                                    if auth {
                                        r.push_str("250-AUTH PLAIN LOGIN\r\n");
                                    }
                                    r + "250 8BITMIME\r\n"
                                }
                                "RSET" | "NOOP" => "250 2.0.0 Ok\r\n".into(),
                                "QUIT" => "221 2.0.0 Bye\r\n".into(),
                                "DATA" if recipients == 0 => {
                                    "554 5.5.1 Error: no valid recipients\r\n".into()
                                }
                                _ => answer(&line),
                            };
                            match verb.as_str() {
                                "MAIL" | "RSET" => recipients = 0,
                                "RCPT" if reply.starts_with('2') => recipients += 1,
                                _ => {}
                            }
                            if verb == "DATA" && reply.starts_with("354") {
                                message = Some(String::new());
                            }
                            held.push_str(&reply);
                            if pipelining && (verb == "MAIL" || verb == "RCPT") {
                                continue;
                            }
                        }
                        if write.write_all(held.as_bytes()).await.is_err() {
                            break;
                        }
                        held.clear();
                        if line == "QUIT" {
                            break;
                        }
                    }
                });
            }
        });
        (url, transcript)
    }

    /// MAIL and RCPT accepted unless the recipient contains "reject" (550) or
    /// "later" (451); messages accepted unless they contain "SPAM" (554) or
    /// "FULL" (452), with a reply of two lines.
    fn usual(line: &str) -> String {
        match line {
            "." => "250-2.0.0 Ok:\r\n250 queued as 12345\r\n".into(),
            l if l.starts_with("RCPT") && l.contains("reject") => {
                "550 5.1.1 Recipient address rejected: User unknown\r\n".into()
            }
            l if l.starts_with("RCPT") && l.contains("later") => {
                "451 4.3.0 Try again later\r\n".into()
            }
            l if l.starts_with("DATA") => "354 End data with <CR><LF>.<CR><LF>\r\n".into(),
            _ => "250 2.1.0 Ok\r\n".into(),
        }
    }

    fn email(to: &str, body: &str) -> Email {
        Email {
            from: "news@shop.example".into(),
            to: to.into(),
            message_id: "<m@shop.example>".into(),
            bytes: format!("Subject: test\r\n\r\n{body}\r\n").into_bytes(),
        }
    }

    async fn send_all(url: &str, emails: &[Email]) -> Vec<Outcome> {
        let smtp = Smtp::new(url, 1).unwrap();
        let mut outcomes = Vec::new();
        for email in emails {
            let sent = tokio::time::timeout(Duration::from_secs(10), smtp.send(email));
            outcomes.push(sent.await.expect("the client waited for a held reply"));
        }
        outcomes
    }

    #[tokio::test]
    async fn pipelined_transactions_and_their_outcomes() {
        let answer: Answer = Arc::new(|line: &str| match line {
            "." => "250 2.0.0 Ok\r\n".into(),
            _ => usual(line),
        });
        let answer_data: Answer = Arc::new(move |line: &str| usual(line));
        for (pipelining, answer) in [(true, answer_data), (false, answer)] {
            let (url, transcript) = fake_server(pipelining, false, answer).await;
            let outcomes = send_all(
                &url,
                &[
                    email("a@example.com", ".hidden line\r\n..two dots"),
                    email("reject@example.com", "x"),
                    email("later@example.com", "x"),
                    email("b@example.com", "last"),
                ],
            )
            .await;
            let sent = if pipelining {
                "250 2.0.0 Ok: queued as 12345"
            } else {
                "250 2.0.0 Ok"
            };
            assert_eq!(
                outcomes,
                [
                    Outcome::Sent(sent.into()),
                    Outcome::Bounced("550 5.1.1 Recipient address rejected: User unknown".into()),
                    Outcome::Deferred("451 4.3.0 Try again later".into()),
                    Outcome::Sent(sent.into()),
                ]
            );
            let transcript = transcript.lock().unwrap();
            // One connection for all: refusals leave it usable (after RSET).
            assert_eq!(transcript.connections, 1);
            assert_eq!(
                transcript.messages,
                [
                    "Subject: test\r\n\r\n..hidden line\r\n...two dots\r\n",
                    "Subject: test\r\n\r\nlast\r\n"
                ]
            );
            let commands: Vec<&str> = transcript.commands.iter().map(|c| first_word(c)).collect();
            let expected: &[&str] = if pipelining {
                // Pipelined, DATA goes out even when RCPT is refused.
                &[
                    "EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT",
                    "DATA", "RSET", "MAIL", "RCPT", "DATA",
                ]
            } else {
                &[
                    "EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "RSET", "MAIL", "RCPT", "RSET",
                    "MAIL", "RCPT", "DATA",
                ]
            };
            assert_eq!(commands, expected);
            assert_eq!(transcript.commands[1], "MAIL FROM:<news@shop.example>");
            assert_eq!(transcript.commands[2], "RCPT TO:<a@example.com>");
        }
    }

    #[tokio::test]
    async fn refusals_after_the_message() {
        let answer: Answer = Arc::new(|line: &str| usual(line));
        let (url, _) = fake_server(true, false, answer.clone()).await;
        // The message's own reply decides: the fake server refuses by content.
        let refusing: Answer = Arc::new(|line: &str| match line {
            "." => "554 5.7.1 Message rejected as spam\r\n".into(),
            other => usual(other),
        });
        let (spam_url, spam) = fake_server(true, false, refusing).await;
        let full: Answer = Arc::new(|line: &str| match line {
            "." => "452 4.3.1 Insufficient system storage\r\n".into(),
            other => usual(other),
        });
        let (full_url, _) = fake_server(true, false, full).await;
        assert_eq!(
            send_all(&url, &[email("a@example.com", "x")]).await,
            [Outcome::Sent("250 2.0.0 Ok: queued as 12345".into())]
        );
        assert_eq!(
            send_all(
                &spam_url,
                &[email("a@example.com", "x"), email("b@example.com", "y")]
            )
            .await,
            [
                Outcome::Bounced("554 5.7.1 Message rejected as spam".into()),
                Outcome::Bounced("554 5.7.1 Message rejected as spam".into())
            ]
        );
        assert_eq!(
            spam.lock().unwrap().connections,
            1,
            "the connection stays usable"
        );
        assert_eq!(
            send_all(&full_url, &[email("a@example.com", "x")]).await,
            [Outcome::Deferred(
                "452 4.3.1 Insufficient system storage".into()
            )]
        );
    }

    /// A server that greets, offers PIPELINING, then answers each of the
    /// client's writes with the next of `replies`, reads once more if
    /// `then_read`, and hangs up. Returns its URL.
    async fn scripted_server(replies: &'static [&'static [u8]], then_read: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(b"220 x\r\n").await.unwrap();
            let mut buffer = vec![0; 4096];
            let greeting: &[u8] = b"250-x\r\n250 PIPELINING\r\n";
            for reply in std::iter::once(&greeting).chain(replies) {
                let _ = socket.read(&mut buffer).await;
                socket.write_all(reply).await.unwrap();
            }
            if then_read {
                let _ = socket.read(&mut buffer).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_connection_lost_mid_message_leaves_the_outcome_unknown() {
        // Replies to the message never come: the server closes the connection.
        let url = scripted_server(&[b"250 ok\r\n250 ok\r\n354 go\r\n"], true).await;
        let outcomes = send_all(&url, &[email("a@example.com", "x")]).await;
        assert!(
            matches!(&outcomes[0], Outcome::Unknown(reason) if reason.contains("closed")),
            "{outcomes:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_takes_data_without_recipients_is_left() {
        // It answers 354 to DATA although it refused the recipient: the client
        // does not send the message, and says QUIT rather than reuse the
        // connection.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 x\r\n").await.unwrap();
            let mut seen = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &[u8] = match first_word(&line) {
                    "EHLO" => b"250-x\r\n250 PIPELINING\r\n",
                    "MAIL" | "RCPT" => b"",
                    "DATA" => b"250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n",
                    _ => b"221 bye\r\n",
                };
                write.write_all(reply).await.unwrap();
                seen.push(line);
            }
            seen
        });
        let outcomes = send_all(&url, &[email("nobody@example.com", "x")]).await;
        assert_eq!(outcomes, [Outcome::Bounced("550 5.1.1 unknown".into())]);
        let seen = server.await.unwrap();
        let verbs: Vec<&str> = seen.iter().map(|l| first_word(l)).collect();
        assert_eq!(verbs, ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
    }

    #[tokio::test]
    async fn a_refusal_before_the_server_hangs_up_is_the_outcome() {
        let url = scripted_server(&[b"421 4.3.2 Service shutting down\r\n"], false).await;
        let outcomes = send_all(&url, &[email("a@example.com", "x")]).await;
        assert_eq!(
            outcomes,
            [Outcome::Deferred("421 4.3.2 Service shutting down".into())]
        );
    }

    #[tokio::test]
    async fn authentication_with_plain() {
        let answer: Answer = Arc::new(|line: &str| match line {
            l if l.starts_with("AUTH PLAIN") => "235 2.7.0 Authentication successful\r\n".into(),
            other => usual(other),
        });
        let (url, transcript) = fake_server(true, true, answer).await;
        let url = url.replace("smtp://", "smtp://user:s%3Acret@");
        let outcomes = send_all(&url, &[email("a@example.com", "x")]).await;
        assert!(matches!(outcomes[0], Outcome::Sent(_)), "{outcomes:?}");
        let expected = format!("AUTH PLAIN {}", STANDARD.encode("\0user\0s:cret"));
        assert_eq!(transcript.lock().unwrap().commands[1], expected);
    }
}
