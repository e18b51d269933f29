//! Writes XML text: strict in what we emit (every value escaped, every element
//! closed), with an ASCII-only mode for documents that declare a legacy
//! encoding, where anything beyond ASCII goes out as a character reference.

use std::fmt::Write;

#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
    /// Open elements, to close them in order.
    open: Vec<String>,
    ascii_only: bool,
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        XmlWriter::default()
    }

    /// A writer for documents declared `windows-1252` (MailUp's inner documents):
    /// characters outside ASCII are written as `&#N;`, which means the same in
    /// every encoding.
    pub fn ascii_only() -> XmlWriter {
        XmlWriter {
            ascii_only: true,
            ..XmlWriter::default()
        }
    }

    /// Markup written as is (a declaration, or a document made elsewhere).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    pub fn open(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attributes);
        self.out.push('>');
        self.open.push(name.to_string());
        self
    }

    pub fn close(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(&name);
            self.out.push('>');
        }
        self
    }

    /// `<name attributes/>`
    pub fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attributes);
        self.out.push_str("/>");
        self
    }

    /// `<name>text</name>`
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name, &[]);
        self.text(text);
        self.close()
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.escaped(text);
        self
    }

    /// Text in a CDATA section (as legacy clients expect HTML bodies); a `]]>`
    /// in it is split across two sections.
    pub fn cdata(&mut self, text: &str) -> &mut Self {
        self.out.push_str("<![CDATA[");
        self.out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
        self.out.push_str("]]>");
        self
    }

    /// The document; elements left open are closed.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }

    fn start_tag(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            self.escaped(value);
            self.out.push('"');
        }
    }

    fn escaped(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '&' => self.out.push_str("&amp;"),
                '"' => self.out.push_str("&quot;"),
                // Characters XML 1.0 cannot carry at all are dropped rather
                // than producing a document the client cannot read.
                '\t' | '\n' | '\r' => self.out.push(c),
                c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
                c if self.ascii_only && !c.is_ascii() => {
                    let _ = write!(self.out, "&#{};", c as u32);
                }
                c => self.out.push(c),
            }
        }
    }
}

/// Text escaped for an element or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut w = XmlWriter::new();
    w.text(text);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes_and_closes_elements() {
        let mut w = XmlWriter::new();
        w.open("a", &[("x", "1 \"2\" & <3>")])
            .leaf("b", "Tom & Jerry <tags>")
            .empty("c", &[])
            .open("d", &[])
            .text("\u{1}kept\u{7}");
        assert_eq!(
            w.finish(),
            "<a x=\"1 &quot;2&quot; &amp; &lt;3&gt;\"><b>Tom &amp; Jerry &lt;tags&gt;</b><c/><d>kept</d></a>"
        );
    }

    #[test]
    fn cdata_sections_survive_their_end_marker() {
        let mut w = XmlWriter::new();
        w.open("b", &[]).cdata("<p>a]]>b</p>");
        assert_eq!(w.finish(), "<b><![CDATA[<p>a]]]]><![CDATA[>b</p>]]></b>");
    }

    #[test]
    fn ascii_only_writes_character_references() {
        let mut w = XmlWriter::ascii_only();
        w.leaf("n", "café €");
        assert_eq!(w.finish(), "<n>caf&#233; &#8364;</n>");
    }
}
