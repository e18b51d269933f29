//! An IMAP mailbox of bounce reports, polled: every unseen message is taken in
//! and then flagged Seen. A small client of our own (LOGIN, SELECT, UID
//! SEARCH, UID FETCH, UID STORE) over plain TCP or TLS: that is all intake
//! needs. The source key of a report is the mailbox's UIDVALIDITY and the UID,
//! so a message is applied once even if flagging it failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Taken, take};
use crate::db::DbConnection;
use crate::domain::links::LinkSigner;
use crate::{Error, Result};

/// Where to poll: `imap://user:password@host:port/MAILBOX` (or `imaps://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub mailbox: String,
}

impl Mailbox {
    pub fn parse(url: &str) -> Result<Mailbox> {
        let invalid = |why: &str| Error::invalid("IMAP URL", why.to_string());
        let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        let tls = match parsed.scheme() {
            "imap" => false,
            "imaps" => true,
            _ => return Err(invalid("the scheme must be imap or imaps")),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mailbox = decode(parsed.path().trim_start_matches('/'));
        Ok(Mailbox {
            tls,
            host: parsed
                .host_str()
                .ok_or_else(|| invalid("no host"))?
                .to_string(),
            port: parsed.port().unwrap_or(if tls { 993 } else { 143 }),
            user: decode(parsed.username()),
            password: decode(parsed.password().unwrap_or("")),
            mailbox: if mailbox.is_empty() {
                "INBOX".into()
            } else {
                mailbox
            },
        })
    }
}

/// Counts of one poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Poll {
    pub applied: usize,
    pub repeated: usize,
    pub unreadable: usize,
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

struct Session {
    reader: BufReader<Box<dyn Stream>>,
    tag: u32,
}

const TIMEOUT: Duration = Duration::from_secs(30);
/// Larger messages are not bounce reports worth reading.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

impl Session {
    fn open(mailbox: &Mailbox) -> Result<Session> {
        let unavailable = |e: String| Error::Unavailable(format!("IMAP {}: {e}", mailbox.host));
        let tcp = TcpStream::connect((mailbox.host.as_str(), mailbox.port))
            .map_err(|e| unavailable(e.to_string()))?;
        tcp.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| unavailable(e.to_string()))?;
        tcp.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| unavailable(e.to_string()))?;
        let stream: Box<dyn Stream> = if mailbox.tls {
            let connector =
                native_tls::TlsConnector::new().map_err(|e| unavailable(e.to_string()))?;
            Box::new(
                connector
                    .connect(&mailbox.host, tcp)
                    .map_err(|e| unavailable(e.to_string()))?,
            )
        } else {
            Box::new(tcp)
        };
        let mut session = Session {
            reader: BufReader::new(stream),
            tag: 0,
        };
        let greeting = session.line()?;
        if !greeting.starts_with(b"* OK") {
            return Err(unavailable(format!(
                "greeting {:?}",
                String::from_utf8_lossy(&greeting)
            )));
        }
        Ok(session)
    }

    fn line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        self.reader
            .by_ref()
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::Unavailable(format!("IMAP read: {e}")))?;
        if line.is_empty() {
            return Err(Error::Unavailable(
                "IMAP server closed the connection".into(),
            ));
        }
        Ok(line)
    }

    /// Sends a command and returns its untagged lines, literals inlined as
    /// separate items. A NO or BAD answer is an error.
    fn command(&mut self, command: &str) -> Result<Vec<Vec<u8>>> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.reader
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .map_err(|e| Error::Unavailable(format!("IMAP write: {e}")))?;
        let mut items = Vec::new();
        loop {
            let line = self.line()?;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let status = String::from_utf8_lossy(&line[tag.len() + 1..]).into_owned();
                if status.starts_with("OK") {
                    return Ok(items);
                }
                let verb = command.split(' ').next().unwrap_or(command);
                return Err(Error::Unavailable(format!(
                    "IMAP {verb}: {}",
                    status.trim()
                )));
            }
            let literal = literal_length(&line);
            items.push(line);
            if let Some(length) = literal {
                if length > MAX_MESSAGE {
                    return Err(Error::Unavailable(format!(
                        "IMAP literal of {length} bytes"
                    )));
                }
                let mut data = vec![0; length];
                self.reader
                    .read_exact(&mut data)
                    .map_err(|e| Error::Unavailable(format!("IMAP read: {e}")))?;
                items.push(data);
            }
        }
    }
}

/// `… {123}\r\n` announces a literal of 123 bytes.
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let open = line.rfind('{')?;
    line.strip_suffix('}')?[open + 1..].parse().ok()
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Takes in every unseen message of the mailbox.
pub fn poll(conn: &mut DbConnection, signer: &LinkSigner, mailbox: &Mailbox) -> Result<Poll> {
    let mut session = Session::open(mailbox)?;
    session.command(&format!(
        "LOGIN {} {}",
        quoted(&mailbox.user),
        quoted(&mailbox.password)
    ))?;
    let selected = session.command(&format!("SELECT {}", quoted(&mailbox.mailbox)))?;
    let validity = selected
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .find_map(|l| {
            let at = l.find("[UIDVALIDITY ")?;
            l[at + 13..].split(']').next()?.trim().parse::<u64>().ok()
        })
        .unwrap_or(0);
    let found = session.command("UID SEARCH UNSEEN")?;
    let uids: Vec<u64> = found
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut counts = Poll::default();
    for uid in uids {
        let fetched = session.command(&format!("UID FETCH {uid} (BODY.PEEK[])"))?;
        // The literal follows the line that announced it.
        let raw = fetched
            .windows(2)
            .find(|pair| literal_length(&pair[0]).is_some())
            .map(|pair| pair[1].clone())
            .unwrap_or_default();
        let source = format!(
            "imap:{}@{}/{}:{validity}:{uid}",
            mailbox.user, mailbox.host, mailbox.mailbox
        );
        match take(conn, signer, &source, &raw)? {
            Taken::Applied { .. } => counts.applied += 1,
            Taken::Repeated => counts.repeated += 1,
            Taken::Unreadable => counts.unreadable += 1,
        }
        session.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)"))?;
    }
    let _ = session.command("LOGOUT");
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_urls_and_literals() {
        let mailbox = Mailbox::parse("imaps://bounce%40shop:p%3Ass@mail.example/Bounces").unwrap();
        assert_eq!(
            mailbox,
            Mailbox {
                tls: true,
                host: "mail.example".into(),
                port: 993,
                user: "bounce@shop".into(),
                password: "p:ss".into(),
                mailbox: "Bounces".into(),
            }
        );
        assert_eq!(Mailbox::parse("imap://u:p@h").unwrap().mailbox, "INBOX");
        assert!(Mailbox::parse("http://h").is_err());
        assert_eq!(
            literal_length(b"* 1 FETCH (UID 7 BODY[] {32}\r\n"),
            Some(32)
        );
        assert_eq!(literal_length(b"* OK done\r\n"), None);
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
