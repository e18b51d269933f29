//! Tracking added to a rendered HTML body: each `http(s)` link of an `<a>`
//! element is replaced by the URL the caller makes for it (a signed redirect),
//! and an open pixel is placed before `</body>`.

/// `html` with links rewritten by `link` (which may leave one as it is by
/// returning `None`) and `pixel_url` as a 1×1 image at the end of the body.
pub fn add_tracking(
    html: &str,
    pixel_url: Option<&str>,
    mut link: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(at) = find_anchor(rest) {
        let (before, tag_and_after) = rest.split_at(at);
        out.push_str(before);
        let tag_end = tag_and_after.find('>').unwrap_or(tag_and_after.len());
        let tag = &tag_and_after[..tag_end];
        match href_value(tag) {
            Some((start, end)) => {
                let original = decode_entities(&tag[start..end]);
                let lower = original.to_ascii_lowercase();
                let rewritten = (lower.starts_with("http://") || lower.starts_with("https://"))
                    .then(|| link(&original))
                    .flatten();
                match rewritten {
                    Some(url) => {
                        out.push_str(&tag[..start]);
                        out.push_str(&crate::xml::writer::escape(&url));
                        out.push_str(&tag[end..]);
                    }
                    None => out.push_str(tag),
                }
            }
            None => out.push_str(tag),
        }
        rest = &tag_and_after[tag_end..];
    }
    out.push_str(rest);
    if let Some(pixel_url) = pixel_url {
        let image = format!(
            "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">",
            crate::xml::writer::escape(pixel_url)
        );
        match out.to_ascii_lowercase().rfind("</body") {
            Some(at) => out.insert_str(at, &image),
            None => out.push_str(&image),
        }
    }
    out
}

/// Offset of the next `<a` tag (followed by whitespace), in any case.
fn find_anchor(html: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut from = 0;
    while let Some(offset) = html[from..].find('<') {
        let at = from + offset;
        let is_anchor = bytes
            .get(at + 1)
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'a'))
            && bytes.get(at + 2).is_some_and(u8::is_ascii_whitespace);
        if is_anchor {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The byte range of the `href` attribute's value within a tag.
fn href_value(tag: &str) -> Option<(usize, usize)> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(offset) = lower[from..].find("href") {
        let at = from + offset;
        let preceded_by_space = lower[..at].ends_with(|c: char| c.is_ascii_whitespace());
        let after = lower[at + 4..].trim_start();
        if preceded_by_space && after.starts_with('=') {
            let value_start = lower.len() - after[1..].trim_start().len();
            let quote = tag[value_start..].chars().next()?;
            return if quote == '"' || quote == '\'' {
                let end = tag[value_start + 1..].find(quote)? + value_start + 1;
                Some((value_start + 1, end))
            } else {
                let end = tag[value_start..]
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .map_or(tag.len(), |e| value_start + e);
                Some((value_start, end))
            };
        }
        from = at + 4;
    }
    None
}

/// The entities that appear in URLs written into HTML.
fn decode_entities(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#x3d;", "=")
        .replace("&#x3D;", "=")
        .replace("&quot;", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_web_links_and_adds_the_pixel() {
        let html = "<html><body><p><A HREF=\"https://shop.example/a?x=1&amp;y=2\">Shop</A> \
                    <a class='c' href='http://b.example/'>B</a> <a href=\"mailto:x@y.z\">mail</a> \
                    <a name=\"top\">top</a> <abbr>no</abbr> <a href=https://c.example/x>C</a></p></BODY></html>";
        let mut seen = Vec::new();
        let out = add_tracking(html, Some("https://t.example/t/o/TOKEN"), |url| {
            seen.push(url.to_string());
            (!url.contains("b.example")).then(|| format!("https://t.example/t/c/{}", seen.len()))
        });
        assert_eq!(
            seen,
            vec![
                "https://shop.example/a?x=1&y=2",
                "http://b.example/",
                "https://c.example/x"
            ]
        );
        assert!(
            out.contains("<A HREF=\"https://t.example/t/c/1\">Shop</A>"),
            "{out}"
        );
        assert!(out.contains("href='http://b.example/'"), "{out}");
        assert!(out.contains("href=\"mailto:x@y.z\""), "{out}");
        assert!(
            out.contains("<a href=https://t.example/t/c/3>C</a>"),
            "{out}"
        );
        assert!(out.ends_with("<img src=\"https://t.example/t/o/TOKEN\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\"></BODY></html>"), "{out}");
    }

    #[test]
    fn without_a_body_the_pixel_goes_last_and_nothing_else_changes() {
        let out = add_tracking("<p>no links</p>", Some("https://t/o"), |_| None);
        assert!(out.starts_with("<p>no links</p><img src=\"https://t/o\""));
        assert_eq!(add_tracking("<p>x</p>", None, |_| None), "<p>x</p>");
    }
}
