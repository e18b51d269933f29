//! The `<subscribers>` document of WSMailUpImport's `xmlDoc`: one
//! `<subscriber email Prefix Number>` per recipient with `<campoN>` fields.
//! See `../shared/specs/mailup.md` §2.4.

use crate::domain::imports::Row;
use crate::domain::recipients::Mobile;
use crate::xml::{Element, Limits, XmlError, tree};

/// How `Number` and `Prefix` carry a mobile number (`mobileInputType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MobileInput {
    /// 1: `Number` holds the international code too.
    International,
    /// 2: the code is in `Prefix`, the national number in `Number`.
    SeparatePrefix,
}

/// The rows of a document, and the elements that were not subscribers.
#[derive(Debug, Clone, Default)]
pub struct Subscribers {
    pub rows: Vec<Row>,
    pub unreadable: Vec<String>,
}

/// Why the document cannot be imported at all (MailUp's `-402`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("{0}")]
    Xml(#[from] XmlError),
    /// MailUp converts the document to `|`-separated text internally, so the
    /// character is refused in values.
    #[error("subscriber {0}: the character | is not allowed")]
    Pipe(usize),
}

pub fn read(
    document: &str,
    limits: &Limits,
    input: MobileInput,
) -> Result<Subscribers, Unreadable> {
    let mut read = Subscribers::default();
    let mut pipe_at = None;
    let mut position = 0;
    tree::parse_records(document, limits, &mut |element| {
        position += 1;
        if pipe_at.is_some() {
            return;
        }
        if !element.name.eq_ignore_ascii_case("subscriber") {
            read.unreadable.push(format!(
                "element {position}: <{}> is not a subscriber",
                element.name
            ));
            return;
        }
        if has_pipe(&element) {
            pipe_at = Some(position);
            return;
        }
        read.rows.push(row(&element, input));
    })?;
    match pipe_at {
        Some(position) => Err(Unreadable::Pipe(position)),
        None => Ok(read),
    }
}

fn has_pipe(element: &Element) -> bool {
    element.attributes.iter().any(|(_, v)| v.contains('|'))
        || element.children.iter().any(|c| c.text.contains('|'))
}

fn row(element: &Element, input: MobileInput) -> Row {
    let email = element.attribute("email").map(str::to_string);
    let number = element.attribute("Number").unwrap_or("").trim();
    let prefix = element.attribute("Prefix").unwrap_or("").trim();
    let mobile = (!number.is_empty()).then(|| mobile(prefix, number, input));
    let fields = element
        .children
        .iter()
        .filter_map(|child| {
            let name = child.name.to_ascii_lowercase();
            let number = name.strip_prefix("campo")?.parse().ok()?;
            Some((number, child.text.clone()))
        })
        .collect();
    Row {
        email,
        mobile,
        fields,
    }
}

/// A prefix, when given, is used whatever the input type says; otherwise type
/// 1 reads the number as international (`+` added when missing) and type 2
/// leaves it to the account's default prefix.
fn mobile(prefix: &str, number: &str, input: MobileInput) -> Mobile {
    if !prefix.is_empty() {
        return Mobile {
            prefix: Some(prefix.to_string()),
            number: number.to_string(),
        };
    }
    let international = number.starts_with('+') || number.starts_with("00");
    match input {
        MobileInput::International if !international => Mobile::new(format!("+{number}")),
        _ => Mobile::new(number),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_fields_and_both_mobile_forms() {
        let document = r#"<subscribers>
            <subscriber email="a@b.it" Prefix="+39" Number="3331234567" Name="">
              <campo1>Ann</campo1><Campo2><![CDATA[O'Neil & co]]></Campo2><other>x</other>
            </subscriber>
            <subscriber email="" Prefix="" Number="393337654321"/>
            <note/>
          </subscribers>"#;
        let read = read(document, &Limits::default(), MobileInput::International).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert_eq!(read.rows[0].email.as_deref(), Some("a@b.it"));
        assert_eq!(
            read.rows[0].fields,
            vec![(1, "Ann".to_string()), (2, "O'Neil & co".to_string())]
        );
        assert_eq!(read.rows[1].mobile, Some(Mobile::new("+393337654321")));
        assert_eq!(
            read.unreadable,
            vec!["element 3: <note> is not a subscriber"]
        );
    }

    #[test]
    fn refuses_a_pipe_and_broken_xml() {
        let piped = r#"<subscribers><subscriber email="a@b.it"><campo1>a|b</campo1></subscriber></subscribers>"#;
        assert_eq!(
            read(piped, &Limits::default(), MobileInput::International).unwrap_err(),
            Unreadable::Pipe(1)
        );
        assert!(matches!(
            read(
                "<subscribers><subscriber>",
                &Limits::default(),
                MobileInput::SeparatePrefix
            ),
            Err(Unreadable::Xml(_))
        ));
    }
}
