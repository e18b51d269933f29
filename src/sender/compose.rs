//! Builds the MIME message for one e-mail delivery: sender, recipient, subject,
//! the HTML and text parts (a text part is derived when only HTML was written),
//! the fixed Message-ID, the message's own headers and one-click unsubscribe.

use std::collections::BTreeMap;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::render::{Rendered, html_to_text};

pub struct Envelope<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to: &'a str,
    pub message_id: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    /// The signed unsubscribe URL for `List-Unsubscribe` (RFC 8058 one-click).
    pub unsubscribe_url: Option<&'a str>,
}

/// The message, or why it cannot be built (a bad address, for one): such a
/// delivery fails without a retry.
pub fn email(envelope: &Envelope, content: Rendered) -> Result<lettre::Message, String> {
    let to: Mailbox = envelope
        .to
        .parse()
        .map_err(|e| format!("recipient address {:?}: {e}", envelope.to))?;
    let mut builder = lettre::Message::builder()
        .from(envelope.from.clone())
        .to(to)
        .subject(content.subject)
        .message_id(Some(envelope.message_id.to_string()));
    if let Some(reply_to) = envelope.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    for (name, value) in envelope.headers {
        let name =
            HeaderName::new_from_ascii(name.clone()).map_err(|e| format!("header {name}: {e}"))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    if let Some(url) = envelope.unsubscribe_url {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    let built = match (content.html, content.text) {
        (Some(html), Some(text)) => {
            builder.multipart(MultiPart::alternative_plain_html(text, html))
        }
        (Some(html), None) => {
            let text = html_to_text(&html);
            builder.multipart(MultiPart::alternative_plain_html(text, html))
        }
        (None, Some(text)) => builder.singlepart(SinglePart::plain(text)),
        (None, None) => builder.singlepart(SinglePart::plain(String::new())),
    };
    built.map_err(|e| format!("message cannot be built: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_only_mail_gets_a_text_part_and_unsubscribe_headers() {
        let from: Mailbox = "Shop <news@shop.example>".parse().unwrap();
        let headers = BTreeMap::from([("X-Campaign".to_string(), "spring".to_string())]);
        let message = email(
            &Envelope {
                from: &from,
                reply_to: None,
                to: "mario@example.com",
                message_id: "<abc@shop.example>",
                headers: &headers,
                unsubscribe_url: Some("https://esp.example/unsubscribe/t0k3n"),
            },
            Rendered {
                subject: "Ciao Mario".into(),
                html: Some("<p>Hello <b>Mario</b></p>".into()),
                text: None,
            },
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Message-ID: <abc@shop.example>"), "{text}");
        assert!(
            text.contains("List-Unsubscribe: <https://esp.example/unsubscribe/t0k3n>"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{text}"
        );
        assert!(text.contains("X-Campaign: spring"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("Content-Type: text/plain"), "{text}");
        assert!(text.contains("Content-Type: text/html"), "{text}");
        assert!(
            email(
                &Envelope {
                    from: &from,
                    reply_to: None,
                    to: "not an address",
                    message_id: "<x@y>",
                    headers: &BTreeMap::new(),
                    unsubscribe_url: None
                },
                Rendered::default()
            )
            .is_err()
        );
    }
}
