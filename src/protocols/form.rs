//! Parameters of legacy form-style calls: the query string and an urlencoded
//! body read together, names matched without regard to case, `+` as a space.
//! Old clients send Latin-1 bytes as often as UTF-8: a value that is not valid
//! UTF-8 is read as windows-1252 rather than refused.

use std::borrow::Cow;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// The query string's parameters followed by the body's (when the body is
    /// form-urlencoded or has no content type, as some clients send it).
    pub fn parse(query: &str, body: &[u8], content_type: &str) -> Form {
        let mut pairs = Vec::new();
        read_pairs(query.as_bytes(), &mut pairs);
        let content_type = content_type.to_ascii_lowercase();
        if content_type.is_empty() || content_type.starts_with("application/x-www-form-urlencoded")
        {
            read_pairs(body, &mut pairs);
        }
        Form { pairs }
    }

    /// The first value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }

    /// The first value of `name`, absent when empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A boolean in the forms legacy clients send: `1`/`0`, `true`/`false`
    /// (any case), also `yes`/`no` and `on`/`off`. `None` when absent or empty;
    /// `Some(Err(()))` when present but none of those.
    pub fn flag(&self, name: &str) -> Option<Result<bool, ()>> {
        let value = self.non_empty(name)?;
        Some(match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "-1" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(()),
        })
    }
}

fn read_pairs(input: &[u8], pairs: &mut Vec<(String, String)>) {
    for piece in input.split(|b| *b == b'&') {
        if piece.is_empty() {
            continue;
        }
        let (key, value) = match piece.iter().position(|b| *b == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &b""[..]),
        };
        pairs.push((decode(key), decode(value)));
    }
}

fn decode(raw: &[u8]) -> String {
    // Most names and values have no `+` (nor `%`): decoded without copies.
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        raw.iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect()
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Cow<'_, [u8]> = percent_encoding::percent_decode(&spaced).into();
    match std::str::from_utf8(&bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(&bytes)
            .0
            .into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_query_and_body_case_insensitively() {
        let form = Form::parse(
            "List=3&email=a%40b.it",
            b"csvFldValues=Mario+Rossi%3BRoma&Confirm=TRUE&empty=",
            "application/x-www-form-urlencoded; charset=utf-8",
        );
        assert_eq!(form.get("list"), Some("3"));
        assert_eq!(form.get("EMAIL"), Some("a@b.it"));
        assert_eq!(form.get("csvfldvalues"), Some("Mario Rossi;Roma"));
        assert_eq!(form.flag("confirm"), Some(Ok(true)));
        assert!(form.has("empty"));
        assert_eq!(form.non_empty("empty"), None);
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn reads_latin1_values_and_ignores_other_bodies() {
        let form = Form::parse("name=caf%E9", b"x=1", "application/json");
        assert_eq!(form.get("name"), Some("café"));
        assert_eq!(form.get("x"), None);
        assert_eq!(Form::parse("", b"", "").flag("a"), None);
        assert_eq!(Form::parse("a=maybe", b"", "").flag("a"), Some(Err(())));
    }
}
