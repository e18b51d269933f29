//! Builds the MIME message for one e-mail delivery: sender, recipient, subject,
//! the HTML and text parts (a text part is derived when only HTML was written),
//! the fixed Message-ID, the message's own headers and one-click unsubscribe.
//!
//! What is the same for every recipient of a send (From, Reply-To, the message's
//! own headers) is encoded once per send ([`Letterhead`]); per recipient only the
//! personal headers are encoded and the rendered parts are written straight into
//! the message: as they are (7bit) when they are ASCII with lines of at most 998
//! octets, else quoted-printable, or base64 when most of the text would need
//! escaping. Header encoding (RFC 2047 encoded words, folding) is lettre's.

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Address;
use lettre::message::header::{self, HeaderName, HeaderValue, Headers};
use lettre::message::{Mailbox, Mailboxes};
use rand::Rng;
use rand::distributions::Alphanumeric;

use crate::render::{Rendered, html_to_text};

/// A message ready for a transport.
#[derive(Debug, Clone)]
pub struct Email {
    /// Envelope sender (SMTP `MAIL FROM`).
    pub from: String,
    /// Envelope recipient (SMTP `RCPT TO`).
    pub to: String,
    /// The Message-ID fixed at enqueue, with its angle brackets.
    pub message_id: String,
    /// The whole message, lines ending in CRLF.
    pub bytes: Vec<u8>,
}

/// The headers every message of a send shares, encoded once.
#[derive(Debug, Clone)]
pub struct Letterhead {
    from: String,
    /// `From`, `Reply-To` and the message's own headers, each line ending in CRLF.
    headers: String,
}

impl Letterhead {
    /// Fails on a header name that is not a valid one.
    pub fn new(
        from: &Mailbox,
        reply_to: Option<&Mailbox>,
        own: &BTreeMap<String, String>,
    ) -> Result<Letterhead, String> {
        let mut headers = Headers::new();
        headers.set(header::From::from(Mailboxes::from(from.clone())));
        if let Some(reply_to) = reply_to {
            headers.set(header::ReplyTo::from(Mailboxes::from(reply_to.clone())));
        }
        for (name, value) in own {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|e| format!("header {name}: {e}"))?;
            headers.insert_raw(HeaderValue::new(name, value.clone()));
        }
        Ok(Letterhead {
            from: from.email.to_string(),
            headers: headers.to_string(),
        })
    }
}

/// One delivery's part of the message.
pub struct Envelope<'a> {
    pub to: &'a str,
    pub message_id: &'a str,
    /// The signed unsubscribe URL for `List-Unsubscribe` (RFC 8058 one-click).
    pub unsubscribe_url: Option<&'a str>,
    /// The envelope sender (VERP) when bounces come back to us; otherwise the
    /// From address.
    pub return_path: Option<&'a str>,
}

/// The message, or why it cannot be built (a bad address, for one): such a
/// delivery fails without a retry.
pub fn email(
    letterhead: &Letterhead,
    envelope: &Envelope,
    content: Rendered,
) -> Result<Email, String> {
    let to: Address = envelope
        .to
        .parse()
        .map_err(|e| format!("recipient address {:?}: {e}", envelope.to))?;
    let mut headers = Headers::new();
    headers.set(header::Date::now());
    headers.set(header::To::from(Mailboxes::from(Mailbox::new(
        None,
        to.clone(),
    ))));
    headers.set(header::Subject::from(content.subject));
    let message_id = HeaderName::new_from_ascii_str("Message-ID");
    headers.insert_raw(HeaderValue::new(
        message_id,
        envelope.message_id.to_string(),
    ));
    if let Some(url) = envelope.unsubscribe_url {
        let name = HeaderName::new_from_ascii_str("List-Unsubscribe");
        headers.insert_raw(HeaderValue::new(name, format!("<{url}>")));
        let name = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
        headers.insert_raw(HeaderValue::new(name, "List-Unsubscribe=One-Click".into()));
    }
    let text = match (&content.html, content.text) {
        (_, Some(text)) => text,
        (Some(html), None) => html_to_text(html),
        (None, None) => String::new(),
    };
    let size = letterhead.headers.len() + text.len() + content.html.as_ref().map_or(0, String::len);
    // Room for the personal headers, the MIME framing and some encoding.
    let mut out = Vec::with_capacity(size + size / 4 + 1024);
    out.extend_from_slice(letterhead.headers.as_bytes());
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{headers}");
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    match content.html {
        Some(html) => {
            let boundary = boundary();
            let _ = write!(
                out,
                "Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n\r\n"
            );
            let _ = write!(out, "--{boundary}\r\n");
            part(&mut out, "text/plain", &text);
            let _ = write!(out, "\r\n--{boundary}\r\n");
            part(&mut out, "text/html", &html);
            let _ = write!(out, "\r\n--{boundary}--\r\n");
        }
        None => {
            part(&mut out, "text/plain", &text);
            out.extend_from_slice(b"\r\n");
        }
    }
    Ok(Email {
        from: envelope
            .return_path
            .map_or_else(|| letterhead.from.clone(), str::to_string),
        to: to.to_string(),
        message_id: envelope.message_id.to_string(),
        bytes: out,
    })
}

/// A boundary that cannot occur in quoted-printable or base64 text (`=_` never
/// does), random so that it does not occur in 7bit text either.
fn boundary() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("=_{random}")
}

/// The longest line SMTP allows, without its CRLF (RFC 5321 4.5.3.1.6).
const MAX_LINE: usize = 998;
/// The longest encoded line of quoted-printable and base64 (RFC 2045).
const ENCODED_LINE: usize = 76;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferEncoding {
    SevenBit,
    QuotedPrintable,
    Base64,
}

/// The encoding that keeps the part intact over SMTP: none if the text is
/// ASCII (no control characters but tab and line breaks) with short lines, else
/// the shorter of quoted-printable (an escaped byte takes three characters) and
/// base64 (four for every three bytes).
fn choose(text: &str) -> TransferEncoding {
    let bytes = text.as_bytes();
    // Bytes outside printable ASCII, but tab and line breaks.
    let escaped = count(bytes, |b| {
        !(0x20..0x7f).contains(&b) && b != b'\t' && b != b'\r' && b != b'\n'
    });
    if escaped == 0 && lines(text).all(|line| line.len() <= MAX_LINE) {
        return TransferEncoding::SevenBit;
    }
    let equals_signs = count(bytes, |b| b == b'=');
    let quoted_printable = bytes.len() + 2 * (escaped + equals_signs);
    if bytes.len().div_ceil(3) * 4 < quoted_printable {
        TransferEncoding::Base64
    } else {
        TransferEncoding::QuotedPrintable
    }
}

/// How many bytes are `wanted`. Counted in blocks of 255 with a byte-sized
/// sum, which the compiler turns into vector instructions.
fn count(bytes: &[u8], wanted: fn(u8) -> bool) -> usize {
    bytes
        .chunks(255)
        .map(|block| usize::from(block.iter().map(|&b| u8::from(wanted(b))).sum::<u8>()))
        .sum()
}

/// Writes a part's headers and body (without the CRLF before the next boundary).
fn part(out: &mut Vec<u8>, content_type: &str, text: &str) {
    let encoding = choose(text);
    let name = match encoding {
        TransferEncoding::SevenBit => "7bit",
        TransferEncoding::QuotedPrintable => "quoted-printable",
        TransferEncoding::Base64 => "base64",
    };
    let _ = write!(
        out,
        "Content-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: {name}\r\n\r\n"
    );
    match encoding {
        TransferEncoding::SevenBit => seven_bit(out, text),
        TransferEncoding::QuotedPrintable => quoted_printable(out, text),
        TransferEncoding::Base64 => base64_lines(out, text),
    }
}

/// The text with every line break (LF, CR or CRLF) as CRLF.
fn seven_bit(out: &mut Vec<u8>, text: &str) {
    for (i, line) in lines(text).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line.as_bytes());
    }
}

/// Lines of text separated by LF, CR or CRLF.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .flat_map(|line| line.split('\r'))
}

/// Whether quoted-printable writes the byte as it is: printable ASCII but `=`,
/// and inside a line (not at its end) space and tab. Tables, for one load per
/// byte.
fn literal(b: u8, ends_line: bool) -> bool {
    match ends_line {
        true => LITERAL_AT_END[usize::from(b)],
        false => LITERAL_INSIDE[usize::from(b)],
    }
}

const LITERAL_AT_END: [bool; 256] = literal_table(false);
const LITERAL_INSIDE: [bool; 256] = literal_table(true);

const fn literal_table(blanks: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b > 0x20 && b < 0x7f && b != 0x3d) || (blanks && (b == 0x20 || b == 0x09));
        b += 1;
    }
    table
}

/// Quoted-printable (RFC 2045 6.7): line breaks become CRLF, lines are broken
/// softly (`=` CRLF) so that none is longer than 76 characters, `=`, bytes
/// outside printable ASCII and a space or tab that ends a line are escaped as
/// `=XX`. Runs of literal bytes are copied whole.
fn quoted_printable(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let escape = |out: &mut Vec<u8>, b: u8| {
        out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    };
    // Inside a line one column is kept for a soft break's `=`.
    const INSIDE: usize = ENCODED_LINE - 1;
    for (i, line) in lines(text).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let Some((&last, mut rest)) = line.as_bytes().split_last() else {
            continue;
        };
        let mut column = 0;
        while !rest.is_empty() {
            let window = &rest[..rest.len().min(INSIDE - column)];
            let run = window
                .iter()
                .position(|&b| !literal(b, false))
                .unwrap_or(window.len());
            out.extend_from_slice(&rest[..run]);
            column += run;
            rest = &rest[run..];
            let Some((&b, after)) = rest.split_first() else {
                break;
            };
            // `b` must be escaped, or the line is full.
            let width = if literal(b, false) { 1 } else { 3 };
            if column + width > INSIDE {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            if width == 3 {
                escape(out, b);
                column += 3;
                rest = after;
            }
        }
        // The line's last byte may take the last column.
        let width = if literal(last, true) { 1 } else { 3 };
        if column + width > ENCODED_LINE {
            out.extend_from_slice(b"=\r\n");
        }
        match width {
            1 => out.push(last),
            _ => escape(out, last),
        }
    }
}

/// Base64 in lines of 76 characters.
fn base64_lines(out: &mut Vec<u8>, text: &str) {
    let mut encoded = String::with_capacity(text.len().div_ceil(3) * 4);
    STANDARD.encode_string(text.as_bytes(), &mut encoded);
    for (i, line) in encoded.as_bytes().chunks(ENCODED_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letterhead() -> Letterhead {
        let from: Mailbox = "Négozio Shop <news@shop.example>".parse().unwrap();
        let reply_to: Mailbox = "help@shop.example".parse().unwrap();
        let headers = BTreeMap::from([("X-Campaign".to_string(), "spring".to_string())]);
        Letterhead::new(&from, Some(&reply_to), &headers).unwrap()
    }

    fn compose(subject: &str, html: Option<&str>, text: Option<&str>) -> String {
        let email = email(
            &letterhead(),
            &Envelope {
                to: "mario@example.com",
                message_id: "<abc@shop.example>",
                unsubscribe_url: Some("https://esp.example/unsubscribe/t0k3n"),
                return_path: None,
            },
            Rendered {
                subject: subject.into(),
                html: html.map(String::from),
                text: text.map(String::from),
            },
        )
        .unwrap();
        assert_eq!(
            (email.from.as_str(), email.to.as_str()),
            ("news@shop.example", "mario@example.com")
        );
        String::from_utf8(email.bytes).unwrap()
    }

    /// Every line ends in CRLF, is at most 998 octets and is ASCII.
    fn assert_transportable(message: &str) {
        assert!(message.is_ascii(), "{message}");
        assert!(message.ends_with("\r\n"), "{message:?}");
        for line in message.split("\r\n") {
            assert!(!line.contains(['\r', '\n']), "bare line break in {line:?}");
            assert!(line.len() <= MAX_LINE, "{} octets: {line}", line.len());
        }
    }

    #[test]
    fn html_only_mail_gets_a_text_part_and_unsubscribe_headers() {
        let text = compose("Ciao Mario", Some("<p>Hello <b>Mario</b></p>"), None);
        assert_transportable(&text);
        for expected in [
            "Message-ID: <abc@shop.example>\r\n",
            "List-Unsubscribe: <https://esp.example/unsubscribe/t0k3n>\r\n",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            "X-Campaign: spring\r\n",
            "To: mario@example.com\r\n",
            "Subject: Ciao Mario\r\n",
            "Reply-To: help@shop.example\r\n",
            "From: =?utf-8?b?TsOpZ296aW8gU2hvcA==?= <news@shop.example>\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/alternative;\r\n boundary=\"=_",
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nHello **Mario**",
            "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>Hello <b>Mario</b></p>\r\n--=_",
            "\r\nDate: ",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        // The headers end before the first part, which ends at the closing boundary.
        let (headers, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(headers.contains("boundary=\"=_"), "{headers}");
        let boundary = headers
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        assert!(body.starts_with(&format!("--{boundary}\r\n")), "{body}");
        assert!(body.ends_with(&format!("\r\n--{boundary}--\r\n")), "{body}");
        assert_eq!(body.matches(&format!("--{boundary}\r\n")).count(), 2);
    }

    #[test]
    fn text_only_mail_is_one_part() {
        let text = compose("Hi", None, Some("line one\nline two\r\nline three"));
        assert_transportable(&text);
        assert!(!text.contains("multipart"), "{text}");
        assert!(
            text.ends_with(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nline one\r\nline two\r\nline three\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn non_ascii_subjects_are_encoded_words() {
        let text = compose("Novità per te, Mario", None, Some("x"));
        assert_transportable(&text);
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert!(!text.contains("Novità"));
        // A line break in a subject cannot start a header of its own.
        let text = compose("Hi\r\nBcc: victim@example.com", None, Some("x"));
        assert_transportable(&text);
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    #[test]
    fn long_lines_and_non_ascii_text_are_quoted_printable() {
        let long = "Lorem ipsum dolor sit amet. ".repeat(60);
        let italian = "Caffè = 1 € per tutti i clienti";
        let text = compose("Hi", Some(&format!("<p>{long}</p>")), Some(italian));
        assert_transportable(&text);
        assert!(
            text.contains(
                "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaff=C3=A8 =3D 1 =E2=82=AC per tutti i clienti\r\n"
            ),
            "{text}"
        );
        let html = text.split("Content-Type: text/html").nth(1).unwrap();
        assert!(
            html.contains("Content-Transfer-Encoding: quoted-printable"),
            "{html}"
        );
        assert_eq!(
            decode_quoted_printable(body_of(html)),
            format!("<p>{long}</p>")
        );
    }

    #[test]
    fn mostly_non_ascii_text_is_base64() {
        let greek = "Καλημέρα σας, αγαπητέ πελάτη.\nΝέα προσφορά.";
        let text = compose("Hi", None, Some(greek));
        assert_transportable(&text);
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n"),
            "{text}"
        );
        let encoded: String = body_of(&text).split("\r\n").collect();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, greek);
    }

    #[test]
    fn quoted_printable_lines_and_trailing_space() {
        let qp = |text: &str| {
            let mut out = Vec::new();
            quoted_printable(&mut out, text);
            String::from_utf8(out).unwrap()
        };
        let out = qp(&format!("{} \nend\t", "é".repeat(40)));
        for line in out.split("\r\n") {
            assert!(line.len() <= ENCODED_LINE, "{line}");
        }
        // Whitespace that ends a line is escaped; inside a line it is not.
        assert!(out.ends_with("=20\r\nend=09"), "{out}");
        assert_eq!(
            decode_quoted_printable(&out),
            format!("{} \r\nend\t", "é".repeat(40))
        );
        let out = qp(&"a b".repeat(40));
        assert!(out.split("\r\n").all(|l| l.len() <= ENCODED_LINE), "{out}");
        assert_eq!(decode_quoted_printable(&out), "a b".repeat(40));
    }

    #[test]
    fn quoted_printable_round_trips() {
        use rand::SeedableRng;
        let pieces = [
            "a", "Z", " ", "\t", "=", "é", "€", "\n", "\r\n", ".", "xyz ",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let length = rng.gen_range(0..300);
            let text: String = (0..length)
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let mut out = Vec::new();
            quoted_printable(&mut out, &text);
            let out = String::from_utf8(out).unwrap();
            assert!(out.is_ascii());
            for line in out.split("\r\n") {
                assert!(line.len() <= ENCODED_LINE, "{line:?} of {text:?}");
                assert!(!line.ends_with([' ', '\t']), "{line:?} of {text:?}");
            }
            assert_eq!(
                decode_quoted_printable(&out),
                text.replace("\r\n", "\n").replace('\n', "\r\n")
            );
        }
    }

    #[test]
    fn bad_addresses_and_header_names_are_refused() {
        let refused = email(
            &letterhead(),
            &Envelope {
                to: "not an address",
                message_id: "<x@y>",
                unsubscribe_url: None,
                return_path: None,
            },
            Rendered::default(),
        );
        assert!(refused.is_err());
        let from: Mailbox = "news@shop.example".parse().unwrap();
        let headers = BTreeMap::from([("Bad Name".to_string(), "x".to_string())]);
        assert!(Letterhead::new(&from, None, &headers).is_err());
    }

    /// The body of the (last) part whose headers `text` starts in.
    fn body_of(text: &str) -> &str {
        let body = text.split_once("\r\n\r\n").unwrap().1;
        body.split("\r\n--")
            .next()
            .unwrap()
            .trim_end_matches("\r\n")
    }

    fn decode_quoted_printable(text: &str) -> String {
        let joined = text.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}
