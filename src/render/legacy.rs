//! Translation of the legacy ESPs' placeholder syntaxes into Jinja:
//!
//! - ExactTarget: `%%Attribute Name%%` → `{{ field("Attribute Name") }}`
//! - eCircle: `<%parameter.NAME%>` → `{{ params["NAME"]|safe }}` (not escaped), `<%user.ATTR%>` →
//!   `{{ field("ATTR") }}`, the expression tags `<%${user['ATTR']}%>` and
//!   `<%${user.CustomAttribute['ATTR']}%>`, and the conditionals
//!   `<%InsertIf expression="${…}"%>…<%/InsertIf%><%InsertElse%>…<%/InsertElse%>`
//!   whose expressions (see [`ecircle_expression`]) become Jinja `if`/`else`
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
        Dialect::ExactTarget => translate(source, "%%", "%%", |name, _| {
            let valid = !name.is_empty() && name.len() <= 100 && !name.contains(['\r', '\n', '%']);
            valid.then(|| (field_call(name), 0))
        }),
        Dialect::Ecircle => translate(source, "<%", "%>", ecircle_tag),
        Dialect::Mailup => translate(source, "[", "]", |name, _| {
            let key = name.trim().to_lowercase();
            let known = MAILUP_BUILTINS.contains(&key.as_str())
                || key
                    .strip_prefix("campo")
                    .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| (1..=39).contains(&n)))
                || known_fields.iter().any(|f| f.to_lowercase() == key);
            known.then(|| (field_call(name), 0))
        }),
    }
}

/// The Jinja for one eCircle tag (the text between `<%` and `%>`), and how many
/// bytes of what follows it belong to it: `<%/InsertIf%>` directly followed by
/// `<%InsertElse%>` is one `else`.
fn ecircle_tag(tag: &str, rest: &str) -> Option<(String, usize)> {
    const ELSE: &str = "<%InsertElse%>";
    let trimmed = tag.trim();
    if let Some(name) = trimmed.strip_prefix("parameter.") {
        // Parameters are the API caller's own content (a whole HTML body in
        // `MSG_BODY`, as eCircle's clients use it): inserted as given.
        return Some((
            format!("{{{{ params[{}]|safe }}}}", string_literal(name)),
            0,
        ));
    }
    if let Some(expression) = trimmed.strip_prefix("${").and_then(|e| e.strip_suffix('}')) {
        return Some((format!("{{{{ {} }}}}", ecircle_expression(expression)?), 0));
    }
    if let Some(attribute) = trimmed.strip_prefix("InsertIf") {
        let expression = attribute
            .trim()
            .strip_prefix("expression=\"${")?
            .strip_suffix("}\"")?;
        return Some((format!("{{% if {} %}}", ecircle_expression(expression)?), 0));
    }
    match trimmed {
        "/InsertIf" => {
            let after = rest.trim_start();
            if after.starts_with(ELSE) {
                let skipped = rest.len() - after.len() + ELSE.len();
                Some(("{% else %}".into(), skipped))
            } else {
                Some(("{% endif %}".into(), 0))
            }
        }
        "/InsertElse" => Some(("{% endif %}".into(), 0)),
        _ => trimmed
            .strip_prefix("user.")
            .map(|name| (field_call(name), 0)),
    }
}

/// A condition or value of eCircle's expression language, as Jinja. Only a
/// small, safe subset is accepted: `parameter.NAME`, `user.NAME`,
/// `user['NAME']`, `user.CustomAttribute['NAME']` (or `.NAME`), string and
/// number literals, `null`, `true`, `false`, `==`, `!=`, `&&`, `||`, `!`,
/// `empty` and parentheses. Anything else leaves the tag as text.
pub fn ecircle_expression(expression: &str) -> Option<String> {
    let mut out = String::new();
    let chars: Vec<char> = expression.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' => i += 1,
            '(' | ')' => {
                out.push(c);
                out.push(' ');
                i += 1;
            }
            '=' if next == Some('=') => {
                out.push_str("== ");
                i += 2;
            }
            '!' if next == Some('=') => {
                out.push_str("!= ");
                i += 2;
            }
            '!' => {
                out.push_str("not ");
                i += 1;
            }
            '&' if next == Some('&') => {
                out.push_str("and ");
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push_str("or ");
                i += 2;
            }
            '\'' | '"' => {
                let end = chars[i + 1..].iter().position(|&q| q == c)? + i + 1;
                let text: String = chars[i + 1..end].iter().collect();
                out.push_str(&string_literal(&text));
                out.push(' ');
                i = end + 1;
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    out.push(chars[i]);
                    i += 1;
                }
                out.push(' ');
            }
            c if c.is_alphabetic() => {
                let (jinja, used) = ecircle_reference(&chars[i..])?;
                out.push_str(&jinja);
                out.push(' ');
                i += used;
            }
            _ => return None,
        }
    }
    Some(out.trim_end().to_string())
}

/// A name at the start of `chars`: a keyword, or a reference to a parameter or
/// user attribute. Returns the Jinja and the characters used.
fn ecircle_reference(chars: &[char]) -> Option<(String, usize)> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let word_end = chars
        .iter()
        .position(|&c| !is_name(c))
        .unwrap_or(chars.len());
    let word: String = chars[..word_end].iter().collect();
    match word.as_str() {
        "null" => return Some(("none".into(), word_end)),
        "true" | "false" => return Some((word, word_end)),
        "empty" => return Some(("not".into(), word_end)),
        "and" | "or" | "not" => return Some((word, word_end)),
        "parameter" | "user" => {}
        _ => return None,
    }
    // `.NAME` or `['NAME']`, once or (user.CustomAttribute…) twice.
    let mut at = word_end;
    let mut parts = Vec::new();
    while parts.len() < 2 {
        match chars.get(at) {
            Some('.') => {
                let len = chars[at + 1..]
                    .iter()
                    .position(|&c| !is_name(c))
                    .unwrap_or(chars.len() - at - 1);
                if len == 0 {
                    return None;
                }
                parts.push(chars[at + 1..at + 1 + len].iter().collect::<String>());
                at += 1 + len;
            }
            Some('[') => {
                let quote = *chars.get(at + 1)?;
                if quote != '\'' && quote != '"' {
                    return None;
                }
                let len = chars[at + 2..].iter().position(|&c| c == quote)?;
                if chars.get(at + 2 + len + 1) != Some(&']') {
                    return None;
                }
                parts.push(chars[at + 2..at + 2 + len].iter().collect::<String>());
                at += len + 4;
            }
            _ => break,
        }
    }
    let name = match (word.as_str(), parts.as_slice()) {
        (_, []) => return None,
        ("user", [first, second]) if first == "CustomAttribute" => second.clone(),
        (_, [only]) => only.clone(),
        _ => return None,
    };
    // A parameter that was not passed is `null` in eCircle's expressions.
    let jinja = if word == "parameter" {
        format!("params[{}]|default(none)", string_literal(&name))
    } else {
        format!("field({})", string_literal(&name))
    };
    Some((jinja, at))
}

/// Splits `source` on `open … close` tags; `tag` gets a tag's text and what
/// follows it, and returns the Jinja for a tag it recognises with the number of
/// following bytes that belong to the tag. Unrecognised tags stay literal text.
fn translate(
    source: &str,
    open: &str,
    close: &str,
    tag: impl Fn(&str, &str) -> Option<(String, usize)>,
) -> String {
    let mut out = String::with_capacity(source.len() + source.len() / 8);
    let mut rest = source;
    while let Some(start) = rest.find(open) {
        let after_open = &rest[start + open.len()..];
        let Some(end) = after_open.find(close) else {
            break;
        };
        let after_tag = &after_open[end + close.len()..];
        match tag(&after_open[..end], after_tag) {
            Some((jinja, consumed)) => {
                push_literal(&mut out, &rest[..start]);
                out.push_str(&jinja);
                rest = &after_tag[consumed.min(after_tag.len())..];
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
            "{{ params[\"A\\\"B\"]|safe }}"
        );
        assert_eq!(
            to_jinja("<%other%> {x}", Dialect::Ecircle, &[]),
            "<%other%> {{ \"{\" }}x}"
        );
        assert_eq!(
            to_jinja(
                "<%InsertIf expression=\"${( (parameter.X == null) )}\"%>none<%/InsertIf%> <%InsertElse%>x=<%parameter.X%><%/InsertElse%>",
                Dialect::Ecircle,
                &[]
            ),
            "{% if ( ( params[\"X\"]|default(none) == none ) ) %}none{% else %}x={{ params[\"X\"]|safe }}{% endif %}"
        );
        assert_eq!(
            to_jinja(
                "<%${user['FirstName']}%> <%${user.CustomAttribute['Tier Code']}%>",
                Dialect::Ecircle,
                &[]
            ),
            "{{ field(\"FirstName\") }} {{ field(\"Tier Code\") }}"
        );
        // Outside the safe subset the tag stays text.
        assert_eq!(
            to_jinja("<%${range(9)}%>", Dialect::Ecircle, &[]),
            "<%${{ \"{\" }}range(9)}%>"
        );
        assert_eq!(
            ecircle_expression("!empty parameter.A && user.x != 'o\"k' || 2 == 2"),
            Some(
                "not not params[\"A\"]|default(none) and field(\"x\") != \"o\\\"k\" or 2 == 2"
                    .into()
            )
        );
        assert_eq!(
            to_jinja("[a] [Nome] [campo40]", Dialect::Mailup, &["nome".into()]),
            "[a] {{ field(\"Nome\") }} [campo40]"
        );
    }
}
