//! A small element tree read from untrusted XML in one streaming pass.
//!
//! Hostile documents are refused while reading, before anything is built: any
//! DOCTYPE (so no entity can be declared, let alone expanded), processing
//! instructions other than the XML declaration, unknown entity references,
//! nesting deeper than the limit, and more elements than the limit. The size of
//! the body is capped before it is read (the endpoint's payload limit) and again
//! here. Element and attribute names keep their namespace but lose their prefix,
//! because legacy clients pick prefixes freely.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// Bounds for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 10 * 1024 * 1024,
            max_depth: 64,
            max_elements: 200_000,
        }
    }
}

/// Why a document was refused. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("document type declarations are not allowed")]
    Doctype,
    #[error("processing instructions are not allowed")]
    ProcessingInstruction,
    #[error("nesting deeper than {0} elements")]
    TooDeep(usize),
    #[error("more than {0} elements")]
    TooManyElements(usize),
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Encoding(String),
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
}

/// An element with its children and its text (the concatenation of its text
/// and CDATA content, entity references resolved).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub namespace: Option<String>,
    pub name: String,
    /// Attributes by local name; namespace declarations are not kept.
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child with this local name, compared without regard to case
    /// (legacy clients differ in the case of parameter names).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Every child with this local name, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// The text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a document into its root element. Bytes are UTF-8 unless the XML
/// declaration or a byte-order mark names another encoding.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Element, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge(limits.max_bytes));
    }
    let text = decode(bytes)?;
    parse_str(&text, limits)
}

/// Reads a document that is already text (an XML document carried inside
/// another one as a string, say).
pub fn parse_str(text: &str, limits: &Limits) -> Result<Element, XmlError> {
    read_document(text, limits, None)
}

/// Reads a document of many records (the root's children) one record at a
/// time: each is handed to `record` as soon as it ends and is not kept, so a
/// document of a million rows never sits in memory as a tree. Returns the root
/// without those children.
pub fn parse_records(
    text: &str,
    limits: &Limits,
    record: &mut dyn FnMut(Element),
) -> Result<Element, XmlError> {
    read_document(text, limits, Some(record))
}

fn read_document(
    text: &str,
    limits: &Limits,
    mut record: Option<&mut dyn FnMut(Element)>,
) -> Result<Element, XmlError> {
    if text.len() > limits.max_bytes {
        return Err(XmlError::TooLarge(limits.max_bytes));
    }
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let malformed = |position: u64, reason: String| XmlError::Malformed {
        line: line_at(text, position),
        reason,
    };
    // The elements still open, innermost last; a finished one joins its parent.
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    // Bytes of text read past the reader (see `take_text`): its positions
    // count without them.
    let mut taken = 0u64;
    // Whether the reader stands right after markup, where text may follow.
    // (Not at the start, where the reader first looks for a byte-order mark,
    // and not after a text event, for which it already consumed the `<`.)
    let mut after_markup = false;
    loop {
        if after_markup {
            let run = take_text(&mut reader);
            let at = reader.buffer_position() + taken;
            taken += run.len() as u64;
            if !run.is_empty() {
                match open.last_mut() {
                    Some(current) => unescape_into(&mut current.text, run)
                        .map_err(|reason| malformed(at, reason))?,
                    None if run.trim().is_empty() => {}
                    None => return Err(malformed(at, "text outside the root element".into())),
                }
            }
        }
        let event = match reader.read_resolved_event() {
            Ok((namespace, event)) => (namespace_of(namespace), event),
            Err(e) => return Err(malformed(reader.error_position() + taken, e.to_string())),
        };
        let position = reader.buffer_position() + taken;
        let empty = matches!(event.1, Event::Empty(_));
        after_markup = !matches!(event.1, Event::Text(_) | Event::GeneralRef(_));
        match event {
            (namespace, Event::Start(start)) | (namespace, Event::Empty(start)) => {
                if root.is_some() {
                    return Err(malformed(position, "content after the root element".into()));
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(XmlError::TooManyElements(limits.max_elements));
                }
                if open.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep(limits.max_depth));
                }
                let new =
                    element(&reader, namespace, &start).map_err(|r| malformed(position, r))?;
                if empty {
                    finish(&mut open, &mut root, new, &mut record);
                } else {
                    open.push(new);
                }
            }
            (_, Event::End(_)) => {
                let done = open
                    .pop()
                    .ok_or_else(|| malformed(position, "unexpected end tag".into()))?;
                finish(&mut open, &mut root, done, &mut record);
            }
            (_, Event::CData(content)) => {
                let content = content
                    .decode()
                    .map_err(|e| malformed(position, e.to_string()))?;
                match open.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None => {
                        return Err(malformed(position, "CDATA outside the root element".into()));
                    }
                }
            }
            // Only text before the first markup reaches the reader (`take_text`
            // reads the rest first): whitespace there is allowed.
            (_, Event::Text(content)) if open.is_empty() && content.trim_ascii().is_empty() => {}
            (_, Event::Text(_)) | (_, Event::GeneralRef(_)) => {
                return Err(malformed(position, "text outside the root element".into()));
            }
            (_, Event::DocType(_)) => return Err(XmlError::Doctype),
            (_, Event::PI(_)) => return Err(XmlError::ProcessingInstruction),
            (_, Event::Decl(_)) | (_, Event::Comment(_)) => {}
            (_, Event::Eof) => break,
        }
    }
    if !open.is_empty() {
        return Err(malformed(
            text.len() as u64,
            format!(
                "document ends inside <{}>",
                open.last().map_or("", |e| &e.name)
            ),
        ));
    }
    root.ok_or_else(|| malformed(0, "no root element".into()))
}

fn finish(
    open: &mut [Element],
    root: &mut Option<Element>,
    done: Element,
    record: &mut Option<&mut dyn FnMut(Element)>,
) {
    match (open.len(), open.last_mut(), record) {
        (1, _, Some(record)) => record(done),
        (_, Some(parent), _) => parent.children.push(done),
        (_, None, _) => *root = Some(done),
    }
}

fn namespace_of(resolved: ResolveResult<'_>) -> Option<String> {
    match resolved {
        ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        // An undeclared prefix: tolerated, the element simply has no namespace.
        ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    namespace: Option<String>,
    start: &BytesStart<'_>,
) -> Result<Element, String> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = attribute.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let value = attribute
            .decode_and_unescape_value(reader.decoder())
            .map_err(|e| e.to_string())?;
        let local = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
        attributes.push((local, value.into_owned()));
    }
    Ok(Element {
        namespace,
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Reads the text up to the next markup straight off the reader's input. The
/// reader would hand over the text between references as separate events, one
/// pair per `&lt;`, which made a large escaped document (an XML document
/// carried as a string parameter) cost a dozen times more to read than to
/// unescape in one pass. The reader then goes on at the `<`, as it would have.
fn take_text<'a>(reader: &mut NsReader<&'a [u8]>) -> &'a str {
    let input: &mut &'a [u8] = reader.get_mut();
    let rest: &'a [u8] = input;
    let end = memchr::memchr(b'<', rest).unwrap_or(rest.len());
    let (run, after) = rest.split_at(end);
    *input = after;
    // The input is a `&str` and `<` is ASCII, so the run ends on a boundary.
    std::str::from_utf8(run).unwrap_or_default()
}

/// Appends text with its references resolved: character references and the
/// five predefined entities; anything else would need a DTD, which is
/// refused. Line ends are normalised to `\n` as XML requires.
fn unescape_into(out: &mut String, mut raw: &str) -> Result<(), String> {
    while let Some(at) = raw.find('&') {
        push_line_normalised(out, &raw[..at]);
        let after = &raw[at + 1..];
        let end = after
            .find(';')
            .filter(|&end| end <= 32)
            .ok_or("unterminated reference (a bare & must be written &amp;)")?;
        let name = &after[..end];
        out.push(resolve_reference(name)?);
        raw = &after[end + 1..];
    }
    push_line_normalised(out, raw);
    Ok(())
}

fn resolve_reference(name: &str) -> Result<char, String> {
    let code = match name.strip_prefix('#') {
        Some(number) => match number.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number.parse().ok(),
        },
        None => {
            return match name {
                "lt" => Ok('<'),
                "gt" => Ok('>'),
                "amp" => Ok('&'),
                "apos" => Ok('\''),
                "quot" => Ok('"'),
                _ => Err(format!("unknown entity &{name};")),
            };
        }
    };
    code.filter(|&c| c != 0)
        .and_then(char::from_u32)
        .ok_or_else(|| format!("invalid character reference &{name};"))
}

fn push_line_normalised(out: &mut String, text: &str) {
    if !text.contains('\r') {
        out.push_str(text);
        return;
    }
    out.push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
}

/// 1-based line of a byte offset, for error messages.
fn line_at(text: &str, position: u64) -> usize {
    let end = (position as usize).min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The document as UTF-8: a byte-order mark or the declaration's `encoding`
/// decides (legacy clients send windows-1252 and ISO-8859-1); invalid bytes are
/// an error, never replaced.
fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, XmlError> {
    let (encoding, body) = match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, bom_length)) => (encoding, &bytes[bom_length..]),
        None => (declared_encoding(bytes)?, bytes),
    };
    if encoding == encoding_rs::UTF_8 {
        return std::str::from_utf8(body)
            .map(Cow::Borrowed)
            .map_err(|e| XmlError::Encoding(format!("invalid UTF-8 at byte {}", e.valid_up_to())));
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or_else(|| XmlError::Encoding(format!("invalid {} text", encoding.name())))
}

fn declared_encoding(bytes: &[u8]) -> Result<&'static encoding_rs::Encoding, XmlError> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    if !rest.starts_with(b"<?xml") {
        return Ok(encoding_rs::UTF_8);
    }
    let end = rest
        .windows(2)
        .position(|w| w == b"?>")
        .unwrap_or(rest.len().min(200));
    let declaration = String::from_utf8_lossy(&rest[..end]);
    let Some(at) = declaration.find("encoding") else {
        return Ok(encoding_rs::UTF_8);
    };
    let value = declaration[at + "encoding".len()..]
        .trim_start()
        .trim_start_matches('=')
        .trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
    let label = match quote {
        Some(q) => value[1..].split(q).next().unwrap_or(""),
        None => value.split_whitespace().next().unwrap_or(""),
    };
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        // UTF-16 declared in a document without a BOM is ASCII-compatible text
        // that lies about itself; read it as UTF-8.
        Some(e) if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE => {
            Ok(encoding_rs::UTF_8)
        }
        Some(e) => Ok(e),
        None => Err(XmlError::Encoding(format!(
            "unsupported encoding {label:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Element, XmlError> {
        parse(text.as_bytes(), &Limits::default())
    }

    #[test]
    fn reads_names_without_prefixes_and_text_with_references_and_cdata() {
        let root = read(
            r#"<?xml version="1.0"?>
            <s:Envelope xmlns:s="urn:a"><s:Body><m:Op xmlns:m="urn:b" m:kind="x &amp; y">
            <m:Name>A &amp; B &#233;<![CDATA[<raw>]]></m:Name><Empty/></m:Op></s:Body></s:Envelope>"#,
        )
        .unwrap();
        assert_eq!(root.name, "Envelope");
        assert_eq!(root.namespace.as_deref(), Some("urn:a"));
        let op = &root.child("body").unwrap().children[0];
        assert_eq!(op.namespace.as_deref(), Some("urn:b"));
        assert_eq!(op.attribute("kind"), Some("x & y"));
        assert_eq!(op.child_text("NAME"), Some("A & B é<raw>"));
        assert_eq!(op.child_text("empty"), Some(""));
    }

    #[test]
    fn hands_records_over_one_at_a_time() {
        let mut names = Vec::new();
        let root = parse_records(
            "<rows kind=\"k\"><row n=\"1\"><f>a</f></row><row n=\"2\"/></rows>",
            &Limits::default(),
            &mut |row| names.push((row.attribute("n").unwrap().to_string(), row.children.len())),
        )
        .unwrap();
        assert_eq!(names, vec![("1".into(), 1), ("2".into(), 0)]);
        assert_eq!(
            (root.attribute("kind"), root.children.len()),
            (Some("k"), 0)
        );
        let broken = parse_records("<rows><row/><row>", &Limits::default(), &mut |_| {});
        assert!(matches!(broken, Err(XmlError::Malformed { .. })));
    }

    #[test]
    fn refuses_doctype_entities_and_processing_instructions() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(read(laughs), Err(XmlError::Doctype));
        let external = r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
        assert_eq!(read(external), Err(XmlError::Doctype));
        assert_eq!(
            read("<a><?php evil ?></a>"),
            Err(XmlError::ProcessingInstruction)
        );
        assert!(matches!(
            read("<a>&undeclared;</a>"),
            Err(XmlError::Malformed { .. })
        ));
    }

    #[test]
    fn resolves_references_and_line_ends_in_text() {
        let doc =
            "<a>x &lt;b&gt; &amp; &quot;q&apos; &#233;&#x20AC;\r\ny\rz<b/>tail &amp; more</a>";
        let a = read(doc).unwrap();
        assert_eq!(a.text, "x <b> & \"q' é€\ny\nztail & more");
        assert_eq!(a.children.len(), 1);
        let escaped = read(
            "<p>&lt;subscribers&gt;&lt;s email=&quot;a@b.it&quot;/&gt;&lt;/subscribers&gt;</p>",
        )
        .unwrap();
        assert_eq!(
            escaped.text,
            "<subscribers><s email=\"a@b.it\"/></subscribers>"
        );
        for broken in [
            "<a>fish & chips</a>",
            "<a>&#0;</a>",
            "<a>&#xD800;</a>",
            "<a>&;</a>",
        ] {
            assert!(
                matches!(read(broken), Err(XmlError::Malformed { .. })),
                "{broken}"
            );
        }
        match read("<a>\n\n<b>&nope;</b></a>") {
            Err(XmlError::Malformed { line, reason }) => {
                assert_eq!((line, reason.as_str()), (3, "unknown entity &nope;"));
            }
            other => panic!("expected a malformed error, got {other:?}"),
        }
        assert!(matches!(read("<a/>text"), Err(XmlError::Malformed { .. })));
        assert_eq!(read("<a>x</a>\n").unwrap().text, "x");
        assert_eq!(read("  \n<a>x</a>").unwrap().text, "x");
    }

    #[test]
    fn refuses_deep_nesting_many_elements_and_large_documents() {
        let deep = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
        assert_eq!(read(&deep), Err(XmlError::TooDeep(64)));
        let limits = Limits {
            max_elements: 10,
            ..Limits::default()
        };
        let many = format!("<a>{}</a>", "<b/>".repeat(20));
        assert_eq!(
            parse(many.as_bytes(), &limits),
            Err(XmlError::TooManyElements(10))
        );
        let small = Limits {
            max_bytes: 8,
            ..Limits::default()
        };
        assert_eq!(
            parse(b"<a>too long</a>", &small),
            Err(XmlError::TooLarge(8))
        );
    }

    #[test]
    fn reports_the_line_of_malformed_input() {
        match read("<a>\n<b>\n</a>") {
            Err(XmlError::Malformed { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a malformed error, got {other:?}"),
        }
        assert!(matches!(read("<a><b>"), Err(XmlError::Malformed { .. })));
        assert!(matches!(read(""), Err(XmlError::Malformed { .. })));
        assert!(matches!(read("<a/><b/>"), Err(XmlError::Malformed { .. })));
    }

    #[test]
    fn decodes_declared_legacy_encodings_and_refuses_invalid_utf8() {
        let latin = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><a>caf\xe9 \x80</a>";
        assert_eq!(parse(latin, &Limits::default()).unwrap().text, "café €");
        let broken = b"<a>caf\xe9</a>";
        assert!(matches!(
            parse(broken, &Limits::default()),
            Err(XmlError::Encoding(_))
        ));
        let bom = b"\xef\xbb\xbf<a>x</a>";
        assert_eq!(parse(bom, &Limits::default()).unwrap().text, "x");
    }
}
