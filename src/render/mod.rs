//! Rendering of user-written templates: minijinja with HTML auto-escaping, a fuel
//! budget and caps on template and output size. Legacy placeholder dialects are
//! translated to Jinja first (`legacy`), so there is one render path. A message is
//! compiled once per send and rendered once per recipient.

pub mod decoration;
pub mod legacy;
pub mod tracking;

use std::collections::BTreeMap;
use std::io;

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior};
use serde::Serialize;

pub use legacy::Dialect;

/// Bounds on what a template may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest template source, in bytes, per part.
    pub max_source_bytes: usize,
    /// Largest rendered part, in bytes.
    pub max_output_bytes: usize,
    /// minijinja fuel per render (roughly one unit per instruction).
    pub fuel: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_bytes: 512 * 1024,
            max_output_bytes: 4 * 1024 * 1024,
            fuel: 1_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {part} is larger than {limit} bytes")]
    SourceTooLarge { part: &'static str, limit: usize },
    #[error("template {part}: {message}")]
    Syntax { part: &'static str, message: String },
    #[error("rendering {part}: {message}")]
    Render { part: &'static str, message: String },
    #[error("rendered {part} is larger than {limit} bytes")]
    OutputTooLarge { part: &'static str, limit: usize },
}

/// The parts of a message to compile; absent parts are not rendered.
#[derive(Debug, Clone, Default)]
pub struct Parts<'a> {
    pub subject: Option<&'a str>,
    pub html: Option<&'a str>,
    pub text: Option<&'a str>,
}

/// A rendered message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// What a template can refer to. Field names are matched case-insensitively, so
/// they are stored lower-case; every field is also reachable as `campoN`. The
/// list, the variables and the parameters are template values already (maps;
/// see [`template_value`]): a sender converts them once per send, and cloning
/// one shares it.
#[derive(Debug, Clone)]
pub struct RenderContext {
    pub recipient: RecipientData,
    pub fields: BTreeMap<String, String>,
    pub list: Value,
    pub vars: Value,
    pub params: Value,
}

impl Default for RenderContext {
    fn default() -> Self {
        let empty = || Value::from(BTreeMap::<String, String>::new());
        RenderContext {
            recipient: RecipientData::default(),
            fields: BTreeMap::new(),
            list: empty(),
            vars: empty(),
            params: empty(),
        }
    }
}

/// Data as a template value, for [`RenderContext`].
pub fn template_value<T: Serialize>(data: &T) -> Value {
    Value::from(Serde(data))
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RecipientData {
    pub id: Option<i64>,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

const SUBJECT: &str = "subject.txt";
const HTML: &str = "body.html";
const TEXT: &str = "body.txt";

/// A message compiled for rendering many times.
pub struct Compiled {
    env: Environment<'static>,
    has_subject: bool,
    has_html: bool,
    has_text: bool,
    limits: Limits,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").finish_non_exhaustive()
    }
}

impl Compiled {
    /// Translates (for legacy dialects) and compiles the parts. `known_fields` are
    /// the account's field names, which MailUp's `[name]` tags may use.
    pub fn new(
        parts: &Parts,
        dialect: Dialect,
        known_fields: &[String],
        limits: Limits,
    ) -> Result<Compiled, RenderError> {
        let mut env = Environment::new();
        env.set_fuel(Some(limits.fuel));
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.add_function("field", field);
        let mut add = |name: &'static str,
                       part: &'static str,
                       source: Option<&str>|
         -> Result<bool, RenderError> {
            let Some(source) = source else {
                return Ok(false);
            };
            if source.len() > limits.max_source_bytes {
                return Err(RenderError::SourceTooLarge {
                    part,
                    limit: limits.max_source_bytes,
                });
            }
            let jinja = legacy::to_jinja(source, dialect, known_fields);
            env.add_template_owned(name, jinja)
                .map_err(|e| RenderError::Syntax {
                    part,
                    message: describe(&e),
                })?;
            Ok(true)
        };
        let has_subject = add(SUBJECT, "subject", parts.subject)?;
        let has_html = add(HTML, "html", parts.html)?;
        let has_text = add(TEXT, "text", parts.text)?;
        Ok(Compiled {
            env,
            has_subject,
            has_html,
            has_text,
            limits,
        })
    }

    pub fn render(&self, context: &RenderContext) -> Result<Rendered, RenderError> {
        let ctx = Value::from_pairs([
            ("recipient", template_value(&context.recipient)),
            ("fields", Value::from(context.fields.clone())),
            ("list", context.list.clone()),
            ("vars", context.vars.clone()),
            ("params", context.params.clone()),
        ]);
        let subject = if self.has_subject {
            self.render_part(SUBJECT, "subject", &ctx)?
        } else {
            String::new()
        };
        Ok(Rendered {
            // A subject is one line: a template must not be able to add headers.
            subject: subject.replace(['\r', '\n'], " ").trim().to_string(),
            html: self
                .has_html
                .then(|| self.render_part(HTML, "html", &ctx))
                .transpose()?,
            text: self
                .has_text
                .then(|| self.render_part(TEXT, "text", &ctx))
                .transpose()?,
        })
    }

    fn render_part(
        &self,
        name: &str,
        part: &'static str,
        ctx: &Value,
    ) -> Result<String, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| RenderError::Render {
                part,
                message: describe(&e),
            })?;
        let mut out = CappedBuffer {
            buffer: Vec::new(),
            limit: self.limits.max_output_bytes,
        };
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.buffer).map_err(|_| RenderError::Render {
                part,
                message: "output is not UTF-8".into(),
            }),
            Err(_) if out.buffer.len() >= self.limits.max_output_bytes => {
                Err(RenderError::OutputTooLarge {
                    part,
                    limit: self.limits.max_output_bytes,
                })
            }
            Err(e) => Err(RenderError::Render {
                part,
                message: describe(&e),
            }),
        }
    }
}

/// The send parameter holding per-send attribute values for `field()`.
pub const ATTRIBUTES: &str = "attributes";

/// `field("First Name")`: a send attribute (see [`ATTRIBUTES`]), a recipient field by name or `campoN`, or a recipient
/// attribute (`email`, `emailaddr`, `mobile`), case-insensitive; empty if unknown,
/// as the legacy ESPs rendered missing attributes.
fn field(state: &State, name: &str) -> Value {
    let key = name.trim().to_lowercase();
    // Attributes given with the send itself (an ExactTarget triggered send's),
    // by lower-case name, come before the recipient's stored fields.
    if let Some(value) = state
        .lookup("params")
        .and_then(|params| params.get_attr(ATTRIBUTES).ok())
        .and_then(|attributes| attributes.get_attr(&key).ok())
        .filter(|v| !v.is_undefined() && !v.is_none())
    {
        return value;
    }
    if let Some(value) = state
        .lookup("fields")
        .and_then(|fields| fields.get_attr(&key).ok())
        .filter(|v| !v.is_undefined() && !v.is_none())
    {
        return value;
    }
    let recipient = state.lookup("recipient");
    let attribute = match key.as_str() {
        "email" | "emailaddr" | "email address" | "emailaddress" => "email",
        "mobile" | "sms" | "number" => "mobile",
        _ => return Value::from(""),
    };
    recipient
        .and_then(|r| r.get_attr(attribute).ok())
        .filter(|v| !v.is_undefined() && !v.is_none())
        .unwrap_or_else(|| Value::from(""))
}

fn describe(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!(
            "{} (line {line})",
            error.detail().unwrap_or(&error.kind().to_string())
        ),
        None => error
            .detail()
            .map(String::from)
            .unwrap_or_else(|| error.kind().to_string()),
    }
}

/// Collects output up to a limit; the write past it fails, which stops the render.
struct CappedBuffer {
    buffer: Vec<u8>,
    limit: usize,
}

impl io::Write for &mut CappedBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + data.len() > self.limit {
            let room = self.limit - self.buffer.len();
            self.buffer.extend_from_slice(&data[..room]);
            return Err(io::Error::other("output limit reached"));
        }
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A plain-text alternative for an HTML body. Prose wraps at 78 columns, but
/// link targets never do: a URL broken across lines stops working when clicked
/// or copied.
pub fn html_to_text(html: &str) -> String {
    html2text::config::plain()
        .no_link_wrapping()
        .string_from_read(html.as_bytes(), 78)
        .unwrap_or_else(|e| {
            log::warn!("HTML to text conversion failed: {e}");
            String::new()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> RenderContext {
        let mut ctx = RenderContext::default();
        ctx.recipient.email = Some("mario@example.com".into());
        ctx.fields.insert("nome".into(), "Mario <b>".into());
        ctx.fields.insert("campo1".into(), "Mario <b>".into());
        ctx.fields.insert("first name".into(), "Mario <b>".into());
        ctx.params = template_value(&serde_json::json!({"ORDER": "A-17"}));
        ctx.vars = template_value(&BTreeMap::from([("shop", "ACME")]));
        ctx
    }

    fn compile(parts: Parts, dialect: Dialect) -> Compiled {
        Compiled::new(
            &parts,
            dialect,
            &["nome".into(), "First Name".into()],
            Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn jinja_escapes_html_but_not_text_or_subject() {
        let c = compile(
            Parts {
                subject: Some("Hi {{ fields.nome }}\r\nBcc: x@evil"),
                html: Some("<p>{{ fields.nome }} {{ vars.shop }} {{ params.ORDER }}</p>"),
                text: Some("{{ fields.nome }}"),
            },
            Dialect::Jinja,
        );
        let r = c.render(&context()).unwrap();
        assert_eq!(r.subject, "Hi Mario <b>  Bcc: x@evil");
        assert_eq!(r.html.unwrap(), "<p>Mario &lt;b&gt; ACME A-17</p>");
        assert_eq!(r.text.unwrap(), "Mario <b>");
    }

    #[test]
    fn legacy_dialects_render_through_jinja() {
        let et = compile(
            Parts {
                html: Some("Dear %%First Name%%, {{ not jinja }} %%emailaddr%%"),
                ..Parts::default()
            },
            Dialect::ExactTarget,
        );
        assert_eq!(
            et.render(&context()).unwrap().html.unwrap(),
            "Dear Mario &lt;b&gt;, {{ not jinja }} mario@example.com"
        );
        let ec = compile(
            Parts {
                text: Some("Order <%parameter.ORDER%> for <%user.email%>"),
                ..Parts::default()
            },
            Dialect::Ecircle,
        );
        assert_eq!(
            ec.render(&context()).unwrap().text.unwrap(),
            "Order A-17 for mario@example.com"
        );
        let conditional = compile(
            Parts {
                text: Some(
                    "<%InsertIf expression=\"${(parameter.MISSING == null)}\"%>no<%/InsertIf%><%InsertElse%>yes<%/InsertElse%>,<%InsertIf expression=\"${parameter.ORDER != null && user['First Name'] == 'Mario <b>'}\"%><%${parameter.ORDER}%><%/InsertIf%>",
                ),
                ..Parts::default()
            },
            Dialect::Ecircle,
        );
        assert_eq!(
            conditional.render(&context()).unwrap().text.unwrap(),
            "no,A-17"
        );
        let mu = compile(
            Parts {
                text: Some("Ciao [NOME] [campo1] [email] [not a field] {%"),
                ..Parts::default()
            },
            Dialect::Mailup,
        );
        assert_eq!(
            mu.render(&context()).unwrap().text.unwrap(),
            "Ciao Mario <b> Mario <b> mario@example.com [not a field] {%"
        );
    }

    #[test]
    fn send_attributes_come_before_stored_fields() {
        let et = compile(
            Parts {
                text: Some("%%First Name%% %%Order Id%% %%nome%%"),
                ..Parts::default()
            },
            Dialect::ExactTarget,
        );
        let mut ctx = context();
        ctx.params = template_value(&serde_json::json!({
            ATTRIBUTES: {"first name": "Jo", "order id": "17"}
        }));
        assert_eq!(et.render(&ctx).unwrap().text.unwrap(), "Jo 17 Mario <b>");
    }

    #[test]
    fn limits_hold() {
        let small = Limits {
            max_source_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            Compiled::new(
                &Parts {
                    text: Some("12345678901"),
                    ..Parts::default()
                },
                Dialect::Jinja,
                &[],
                small
            ),
            Err(RenderError::SourceTooLarge { .. })
        ));
        let endless = compile(
            Parts {
                text: Some("{% for i in range(100000000) %}x{% endfor %}"),
                ..Parts::default()
            },
            Dialect::Jinja,
        );
        assert!(endless.render(&context()).is_err());
        let tight = Limits {
            max_output_bytes: 100,
            fuel: 10_000_000,
            ..Limits::default()
        };
        let big = Compiled::new(
            &Parts {
                text: Some("{% for i in range(1000) %}xx{% endfor %}"),
                ..Parts::default()
            },
            Dialect::Jinja,
            &[],
            tight,
        )
        .unwrap();
        assert!(matches!(
            big.render(&context()),
            Err(RenderError::OutputTooLarge { .. })
        ));
        assert!(matches!(
            Compiled::new(
                &Parts {
                    text: Some("{% if %}"),
                    ..Parts::default()
                },
                Dialect::Jinja,
                &[],
                Limits::default()
            ),
            Err(RenderError::Syntax { .. })
        ));
    }

    #[test]
    fn text_alternative_from_html() {
        let text = html_to_text(
            "<p>Hello <b>Mario</b></p><p><a href=\"https://example.com/x\">Shop</a></p>",
        );
        assert!(text.contains("Hello"), "{text}");
        assert!(text.contains("https://example.com/x"), "{text}");
        assert!(!text.contains("<p>"), "{text}");
        let long = format!("https://example.com/confirm?t={}", "x".repeat(120));
        let text = html_to_text(&format!("<p><a href=\"{long}\">Confirm</a></p>"));
        assert!(text.contains(&long), "a long link is not wrapped: {text}");
    }
}
