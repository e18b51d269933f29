//! Translation of the legacy ESPs' placeholder syntaxes into Jinja:
//!
//! - ExactTarget: `%%Attribute Name%%` → `{{ field("Attribute Name") }}`
//! - eCircle: `<%parameter.NAME%>` → `{{ params["NAME"] }}`, `<%user.ATTR%>` →
//!   `{{ field("ATTR") }}`
//! - MailUp: `[name]` for a field name of the account, `[campoN]`, `[email]`,
//!   `[prefix]`, `[mobile]` → `{{ field("name") }}`; any other bracketed text stays.
//!
//! Literal text is emitted so Jinja prints it unchanged: every `{` in it becomes
//! `{{ "{" }}`, so `{{`, `{%` and `{#` in a legacy template are never interpreted.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Jinja,
    ExactTarget,
    Ecircle,
    Mailup,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Jinja => "jinja",
            Dialect::ExactTarget => "exacttarget",
            Dialect::Ecircle => "ecircle",
            Dialect::Mailup => "mailup",
        }
    }

    pub fn parse(text: &str) -> Option<Dialect> {
        match text {
            "jinja" => Some(Dialect::Jinja),
            "exacttarget" => Some(Dialect::ExactTarget),
            "ecircle" => Some(Dialect::Ecircle),
            "mailup" => Some(Dialect::Mailup),
            _ => None,
        }
    }
}

/// MailUp's built-in merge tags besides the account's field names.
const MAILUP_BUILTINS: [&str; 4] = ["email", "prefix", "mobile", "number"];

/// The Jinja source for a template written in `dialect`.
pub fn to_jinja(source: &str, dialect: Dialect, known_fields: &[String]) -> String {
    match dialect {
        Dialect::Jinja => source.to_string(),
        Dialect::ExactTarget => translate(source, "%%", "%%", |name| {
            let valid = !name.is_empty() && name.len() <= 100 && !name.contains(['\r', '\n', '%']);
            valid.then(|| field_call(name))
        }),
        Dialect::Ecircle => translate(source, "<%", "%>", |tag| {
            if let Some(name) = tag.strip_prefix("parameter.") {
                Some(format!("{{{{ params[{}] }}}}", string_literal(name)))
            } else {
                tag.strip_prefix("user.").map(field_call)
            }
        }),
        Dialect::Mailup => translate(source, "[", "]", |name| {
            let key = name.trim().to_lowercase();
            let known = MAILUP_BUILTINS.contains(&key.as_str())
                || key
                    .strip_prefix("campo")
                    .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| (1..=39).contains(&n)))
                || known_fields.iter().any(|f| f.to_lowercase() == key);
            known.then(|| field_call(name))
        }),
    }
}

/// Splits `source` on `open … close` tags; `tag` returns the Jinja for a tag it
/// recognises, and unrecognised tags stay literal text.
fn translate(
    source: &str,
    open: &str,
    close: &str,
    tag: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(source.len() + source.len() / 8);
    let mut rest = source;
    while let Some(start) = rest.find(open) {
        let after_open = &rest[start + open.len()..];
        let Some(end) = after_open.find(close) else {
            break;
        };
        match tag(&after_open[..end]) {
            Some(jinja) => {
                push_literal(&mut out, &rest[..start]);
                out.push_str(&jinja);
                rest = &after_open[end + close.len()..];
            }
            None => {
                // Keep the opener as text and look for the next tag after it.
                push_literal(&mut out, &rest[..start + open.len()]);
                rest = after_open;
            }
        }
    }
    push_literal(&mut out, rest);
    out
}

fn push_literal(out: &mut String, text: &str) {
    for c in text.chars() {
        if c == '{' {
            out.push_str("{{ \"{\" }}");
        } else {
            out.push(c);
        }
    }
}

fn field_call(name: &str) -> String {
    format!("{{{{ field({}) }}}}", string_literal(name.trim()))
}

/// A Jinja string literal (JSON's escaping is a subset Jinja reads).
fn string_literal(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translations() {
        assert_eq!(
            to_jinja("Hi %%First Name%%!", Dialect::ExactTarget, &[]),
            "Hi {{ field(\"First Name\") }}!"
        );
        assert_eq!(
            to_jinja("50%% off %%x", Dialect::ExactTarget, &[]),
            "50{{ field(\"off\") }}x"
        );
        assert_eq!(
            to_jinja("<%parameter.A\"B%>", Dialect::Ecircle, &[]),
            "{{ params[\"A\\\"B\"] }}"
        );
        assert_eq!(
            to_jinja("<%other%> {x}", Dialect::Ecircle, &[]),
            "<%other%> {{ \"{\" }}x}"
        );
        assert_eq!(
            to_jinja("[a] [Nome] [campo40]", Dialect::Mailup, &["nome".into()]),
            "[a] {{ field(\"Nome\") }} [campo40]"
        );
    }
}
