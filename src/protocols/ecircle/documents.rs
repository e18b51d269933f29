//! The user and member documents eCircle carries as strings: `<user id="…">` (or
//! `<member id="<userId>g<groupId>">`) with standard child elements,
//! `cust_attr_N` and `<namedattr name="KEY">`. Read with or without namespace
//! or XML declaration, through the bounded XML reader; written without either,
//! as clients and the wiki show them.
//!
//! `email` and `mobilenumber` are the recipient's addresses; every other value
//! is a recipient field of the same name (`firstname`, `cust_attr_3`, a named
//! attribute's name), created in the account's catalogue on first use.

use crate::xml::tree::{self, Limits};
use crate::xml::{Element, XmlWriter};

use super::EcmFault;

/// Standard child elements kept as fields, in the order we write them.
const STANDARD: [&str; 13] = [
    "title",
    "firstname",
    "lastname",
    "nickname",
    "partnerid",
    "countrycode",
    "languagecode",
    "zipcode",
    "dob_dd",
    "dob_mm",
    "dob_yyyy",
    "fax",
    "identifier",
];

/// A document is small; these bounds refuse anything else early.
const LIMITS: Limits = Limits {
    max_bytes: 256 * 1024,
    max_depth: 8,
    max_elements: 2_000,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDocument {
    /// The `id` attribute; `None` when absent or empty (new users).
    pub id: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    /// Field name and value, in document order.
    pub values: Vec<(String, String)>,
}

/// Reads a user or member document (either root is accepted where clients
/// differ).
pub fn parse(text: &str) -> Result<UserDocument, EcmFault> {
    let root = tree::parse_str(text.trim(), &LIMITS)
        .map_err(|e| EcmFault::invalid(format!("user document: {e}")))?;
    if !root.name.eq_ignore_ascii_case("user") && !root.name.eq_ignore_ascii_case("member") {
        return Err(EcmFault::invalid(format!(
            "user document: root element <{}>",
            root.name
        )));
    }
    let mut document = UserDocument {
        id: root
            .attribute("id")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(String::from),
        ..UserDocument::default()
    };
    for child in &root.children {
        let name = child.name.to_ascii_lowercase();
        let value = child.text.trim().to_string();
        match name.as_str() {
            "email" => document.email = Some(value).filter(|v| !v.is_empty()),
            "mobilenumber" => document.mobile = Some(value).filter(|v| !v.is_empty()),
            "namedattr" => {
                let key = child.attribute("name").map(str::trim).unwrap_or("");
                if key.is_empty() {
                    return Err(EcmFault::invalid("namedattr without a name"));
                }
                document.values.push((key.to_string(), value));
            }
            "faxnumber" => document.values.push(("fax".into(), value)),
            _ if STANDARD.contains(&name.as_str()) || is_custom_attribute(&name) => {
                document.values.push((name, value));
            }
            // Status elements of a member document and anything unknown are not
            // the caller's to set.
            _ => log::debug!("eCircle user document: <{name}> ignored"),
        }
    }
    Ok(document)
}

fn is_custom_attribute(name: &str) -> bool {
    name.strip_prefix("cust_attr_")
        .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What a written document says about a user.
pub struct UserData<'a> {
    pub email: Option<&'a str>,
    pub mobile: Option<&'a str>,
    /// Field name and value.
    pub fields: &'a [(String, String)],
}

/// `<user id="…">` for lookups of users.
pub fn user(id: i64, data: &UserData) -> String {
    write("user", &id.to_string(), data)
}

/// `<member id="<userId>g<groupId>">` for lookups of members.
pub fn member(member_id: &str, data: &UserData) -> String {
    write("member", member_id, data)
}

fn write(root: &str, id: &str, data: &UserData) -> String {
    let mut w = XmlWriter::new();
    w.open(root, &[("id", id)]);
    if let Some(email) = data.email {
        w.leaf("email", email);
    }
    if let Some(mobile) = data.mobile {
        w.leaf("mobilenumber", mobile);
    }
    let value = |name: &str| {
        data.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    for name in STANDARD {
        if let Some(v) = value(name) {
            w.leaf(name, v);
        }
    }
    let mut custom: Vec<(u32, &str)> = data
        .fields
        .iter()
        .filter(|(n, _)| is_custom_attribute(&n.to_ascii_lowercase()))
        .filter_map(|(n, v)| Some((n["cust_attr_".len()..].parse().ok()?, v.as_str())))
        .collect();
    custom.sort();
    for (n, v) in custom {
        w.leaf(&format!("cust_attr_{n}"), v);
    }
    for (name, v) in data.fields {
        let lower = name.to_ascii_lowercase();
        if !STANDARD.contains(&lower.as_str()) && !is_custom_attribute(&lower) {
            w.open("namedattr", &[("name", name)]).text(v).close();
        }
    }
    w.finish()
}

/// A member id `<userId>g<groupId>` split into its parts.
pub fn split_member_id(id: &str) -> Option<(i64, i64)> {
    let (user, group) = id.trim().split_once(['g', 'G'])?;
    Some((user.parse().ok()?, group.parse().ok()?))
}

pub fn member_id(user_id: i64, group_id: i64) -> String {
    format!("{user_id}g{group_id}")
}

/// The element a nested parameter document travels in, as text (clients send
/// it escaped or, rarely, as markup; markup is written back out).
pub fn document_text(element: &Element) -> String {
    match element.children.first() {
        Some(inner) if element.text.trim().is_empty() => {
            let mut w = XmlWriter::new();
            write_element(&mut w, inner);
            w.finish()
        }
        _ => element.text.clone(),
    }
}

fn write_element(w: &mut XmlWriter, element: &Element) {
    let attributes: Vec<(&str, &str)> = element
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    w.open(&element.name, &attributes);
    w.text(&element.text);
    for child in &element.children {
        write_element(w, child);
    }
    w.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_spec_example_with_or_without_namespace() {
        let text = r#"<?xml version="1.0"?><user id="4100000001" xmlns="http://webservices.ecircle-ag.com/ecm">
  <email>anna@example.org</email><title>-1</title><firstname>Anna</firstname>
  <cust_attr_1>x</cust_attr_1><namedattr name="customerNo">K-77</namedattr><status>1</status></user>"#;
        let doc = parse(text).unwrap();
        assert_eq!(doc.id.as_deref(), Some("4100000001"));
        assert_eq!(doc.email.as_deref(), Some("anna@example.org"));
        assert_eq!(
            doc.values,
            vec![
                ("title".into(), "-1".into()),
                ("firstname".into(), "Anna".into()),
                ("cust_attr_1".into(), "x".into()),
                ("customerNo".into(), "K-77".into()),
            ]
        );
        let member = parse("<member id=\"\"><email>a@b.example</email></member>").unwrap();
        assert_eq!(member.id, None);
        assert!(parse("<group/>").is_err());
        assert!(parse("<!DOCTYPE x [<!ENTITY a \"b\">]><user/>").is_err());
    }

    #[test]
    fn writes_standard_children_custom_and_named_attributes() {
        let fields = vec![
            ("customerNo".to_string(), "K<77".to_string()),
            ("cust_attr_10".to_string(), "ten".to_string()),
            ("cust_attr_2".to_string(), "two".to_string()),
            ("firstname".to_string(), "Anna".to_string()),
        ];
        let data = UserData {
            email: Some("anna@example.org"),
            mobile: None,
            fields: &fields,
        };
        assert_eq!(
            user(7, &data),
            "<user id=\"7\"><email>anna@example.org</email><firstname>Anna</firstname><cust_attr_2>two</cust_attr_2><cust_attr_10>ten</cust_attr_10><namedattr name=\"customerNo\">K&lt;77</namedattr></user>"
        );
        assert_eq!(split_member_id("12g3"), Some((12, 3)));
        assert_eq!(split_member_id("12"), None);
    }
}
