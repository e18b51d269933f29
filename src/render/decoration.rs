//! A list's decoration (eCircle's group settings): a subject prefix, and a
//! header and a footer around each body, added to every message sent to the
//! list after it is rendered. HTML parts get the HTML header and footer, text
//! parts the text ones; the texts are the account's own and are added as
//! written (no placeholders, no escaping).

use super::Rendered;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoration {
    pub subject_prefix: String,
    pub text_header: String,
    pub text_footer: String,
    pub html_header: String,
    pub html_footer: String,
}

impl Decoration {
    /// Nothing to add.
    pub fn is_empty(&self) -> bool {
        self == &Decoration::default()
    }

    /// Adds the prefix, headers and footers to a rendered message. A part the
    /// message does not have gets none (a text part derived from the HTML later
    /// carries the HTML header and footer).
    pub fn apply(&self, rendered: &mut Rendered) {
        rendered.subject = self.prefixed(&rendered.subject);
        if let Some(html) = rendered.html.as_mut() {
            *html = around_html(html, &self.html_header, &self.html_footer);
        }
        if let Some(text) = rendered.text.as_mut() {
            *text = around_text(text, &self.text_header, &self.text_footer);
        }
    }

    /// `[News] Subject`: one space between prefix and subject unless the prefix
    /// ends in one, and no second prefix on a subject that has it already (a
    /// reply, a resend). A prefix cannot add header lines.
    fn prefixed(&self, subject: &str) -> String {
        let prefix = self.subject_prefix.replace(['\r', '\n'], " ");
        let trimmed = prefix.trim();
        if trimmed.is_empty() || subject.starts_with(trimmed) {
            return subject.to_string();
        }
        if prefix.ends_with(' ') || subject.is_empty() {
            format!("{}{subject}", prefix.trim_start())
        } else {
            format!("{trimmed} {subject}")
        }
    }
}

/// The header right after `<body …>` and the footer right before `</body>`
/// when the HTML is a whole document, else at its start and end.
fn around_html(html: &str, header: &str, footer: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let body_start = lower
        .find("<body")
        .and_then(|at| lower[at..].find('>').map(|end| at + end + 1))
        .unwrap_or(0);
    let body_end = lower
        .rfind("</body")
        .filter(|&at| at >= body_start)
        .unwrap_or(html.len());
    let mut out = String::with_capacity(html.len() + header.len() + footer.len());
    out.push_str(&html[..body_start]);
    out.push_str(header);
    out.push_str(&html[body_start..body_end]);
    out.push_str(footer);
    out.push_str(&html[body_end..]);
    out
}

/// The header and footer on lines of their own around the text.
fn around_text(text: &str, header: &str, footer: &str) -> String {
    let mut out = String::with_capacity(text.len() + header.len() + footer.len() + 2);
    if !header.is_empty() {
        out.push_str(header);
        if !header.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str(text);
    if !footer.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(footer);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoration() -> Decoration {
        Decoration {
            subject_prefix: "[News]".into(),
            text_header: "TOP".into(),
            text_footer: "BOTTOM\n".into(),
            html_header: "<p>top</p>".into(),
            html_footer: "<p>bottom</p>".into(),
        }
    }

    #[test]
    fn parts_get_their_own_header_and_footer() {
        let mut r = Rendered {
            subject: "Hello".into(),
            html: Some("<html><BODY class=\"x\"><p>Hi</p></BODY></html>".into()),
            text: Some("Hi".into()),
        };
        decoration().apply(&mut r);
        assert_eq!(r.subject, "[News] Hello");
        assert_eq!(
            r.html.as_deref(),
            Some("<html><BODY class=\"x\"><p>top</p><p>Hi</p><p>bottom</p></BODY></html>")
        );
        assert_eq!(r.text.as_deref(), Some("TOP\nHi\nBOTTOM\n"));
        // A fragment is wrapped; a subject with the prefix keeps one.
        let mut again = Rendered {
            subject: "[News] Hello".into(),
            html: Some("<p>Hi</p>".into()),
            text: None,
        };
        decoration().apply(&mut again);
        assert_eq!(again.subject, "[News] Hello");
        assert_eq!(
            again.html.as_deref(),
            Some("<p>top</p><p>Hi</p><p>bottom</p>")
        );
        assert_eq!(again.text, None);
    }

    #[test]
    fn a_prefix_adds_no_header_lines_and_empty_changes_nothing() {
        let mut r = Rendered {
            subject: "Hello".into(),
            ..Rendered::default()
        };
        Decoration {
            subject_prefix: "[A]\r\nBcc: x@example.com ".into(),
            ..Decoration::default()
        }
        .apply(&mut r);
        assert_eq!(r.subject, "[A]  Bcc: x@example.com Hello");
        assert!(Decoration::default().is_empty());
        let mut same = Rendered {
            subject: "Hello".into(),
            html: Some("<p>x</p>".into()),
            text: Some("x".into()),
        };
        let before = same.clone();
        Decoration::default().apply(&mut same);
        assert_eq!(same, before);
    }
}
