//! Messages: the content of e-mails (subject, HTML, text, sender, headers) and SMS
//! (text, sender in `from_name`), each written in a template dialect. A message is
//! checked by compiling it when it is saved, so a broken template is refused up
//! front rather than failing per recipient.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{fields, lists, now};
use crate::db::DbConnection;
use crate::db::schema::messages;
use crate::render::{Compiled, Dialect, Limits, Parts};
use crate::{Error, Result};

/// The channel a message or delivery goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Email,
    Sms,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Email => "email",
            MessageKind::Sms => "sms",
        }
    }

    pub fn parse(text: &str) -> Result<MessageKind> {
        match text {
            "email" => Ok(MessageKind::Email),
            "sms" => Ok(MessageKind::Sms),
            other => Err(Error::Internal(format!("unknown channel {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = messages)]
pub struct Message {
    pub id: i64,
    pub account_id: i64,
    channel: String,
    dialect: String,
    pub name: String,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub from_name: String,
    pub from_email: String,
    pub reply_to: String,
    headers: String,
    pub list_id: Option<i64>,
    pub created_at: NaiveDateTime,
    /// A model for newsletters rather than one to send (MailUp's templates).
    pub is_template: bool,
}

impl Message {
    pub fn kind(&self) -> Result<MessageKind> {
        MessageKind::parse(&self.channel)
    }

    pub fn dialect(&self) -> Result<Dialect> {
        Dialect::parse(&self.dialect)
            .ok_or_else(|| Error::Internal(format!("unknown dialect {:?}", self.dialect)))
    }

    /// Extra headers to add to every e-mail of this message.
    pub fn headers(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.headers).unwrap_or_default()
    }

    /// Compiles the message for rendering, with the account's field names.
    pub fn compile(&self, field_names: &[String]) -> Result<Compiled> {
        let parts = Parts {
            subject: Some(&self.subject),
            html: self.html.as_deref(),
            text: self.text.as_deref(),
        };
        compile(&parts, self.dialect()?, field_names)
    }
}

/// Compiles message parts; a template error is the caller's invalid input.
fn compile(parts: &Parts, dialect: Dialect, field_names: &[String]) -> Result<Compiled> {
    Compiled::new(parts, dialect, field_names, Limits::default())
        .map_err(|e| Error::invalid("template", e.to_string()))
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub kind: MessageKind,
    pub dialect: Dialect,
    pub name: String,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub from_name: String,
    pub from_email: String,
    pub reply_to: String,
    pub headers: BTreeMap<String, String>,
    /// The public number of the list the message belongs to, if any.
    pub list: Option<i64>,
}

impl NewMessage {
    /// An e-mail in Jinja with the given subject and HTML, other parts empty.
    pub fn email(subject: impl Into<String>, html: impl Into<String>) -> NewMessage {
        NewMessage {
            kind: MessageKind::Email,
            dialect: Dialect::Jinja,
            name: String::new(),
            subject: subject.into(),
            html: Some(html.into()),
            text: None,
            from_name: String::new(),
            from_email: String::new(),
            reply_to: String::new(),
            headers: BTreeMap::new(),
            list: None,
        }
    }
}

/// Headers that the sender sets itself and a message may not override.
const RESERVED_HEADERS: [&str; 12] = [
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "message-id",
    "date",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
];

fn check_headers(headers: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in headers {
        let valid_name =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid_name || RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(Error::invalid("header", format!("{name:?} cannot be set")));
        }
        if value.contains(['\r', '\n']) {
            return Err(Error::invalid(
                "header",
                format!("{name}: value has a line break"),
            ));
        }
    }
    Ok(())
}

pub fn create(conn: &mut DbConnection, account_id: i64, new: &NewMessage) -> Result<Message> {
    check_headers(&new.headers)?;
    if new.kind == MessageKind::Email && new.html.is_none() && new.text.is_none() {
        return Err(Error::invalid(
            "message",
            "an e-mail needs an HTML or a text body",
        ));
    }
    if new.kind == MessageKind::Sms && new.text.as_deref().is_none_or(str::is_empty) {
        return Err(Error::invalid("message", "an SMS needs a text"));
    }
    let list_id = match new.list {
        Some(number) => Some(lists::get(conn, account_id, number)?.id),
        None => None,
    };
    let field_names = field_names(conn, account_id)?;
    let parts = Parts {
        subject: Some(&new.subject),
        html: new.html.as_deref(),
        text: new.text.as_deref(),
    };
    compile(&parts, new.dialect, &field_names)?;
    let headers =
        serde_json::to_string(&new.headers).map_err(|e| Error::Internal(e.to_string()))?;
    let stamp = now();
    let id: i64 = diesel::insert_into(messages::table)
        .values((
            messages::account_id.eq(account_id),
            messages::channel.eq(new.kind.as_str()),
            messages::dialect.eq(new.dialect.as_str()),
            messages::name.eq(&new.name),
            messages::subject.eq(&new.subject),
            messages::html.eq(&new.html),
            messages::text.eq(&new.text),
            messages::from_name.eq(&new.from_name),
            messages::from_email.eq(&new.from_email),
            messages::reply_to.eq(&new.reply_to),
            messages::headers.eq(headers),
            messages::list_id.eq(list_id),
            messages::created_at.eq(stamp),
            messages::updated_at.eq(stamp),
        ))
        .returning(messages::id)
        .get_result(conn)?;
    get(conn, account_id, id)
}

pub fn get(conn: &mut DbConnection, account_id: i64, id: i64) -> Result<Message> {
    messages::table
        .filter(messages::account_id.eq(account_id))
        .filter(messages::id.eq(id))
        .select(Message::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("message"))
}

/// New content for a message: subject, HTML and name (`None` keeps the
/// value). Checked by compiling, as on creation.
pub fn update_content(
    conn: &mut DbConnection,
    account_id: i64,
    id: i64,
    subject: Option<&str>,
    html: Option<&str>,
    name: Option<&str>,
) -> Result<Message> {
    let message = get(conn, account_id, id)?;
    let subject = subject.unwrap_or(&message.subject);
    let html = html.map(str::to_string).or(message.html.clone());
    let parts = Parts {
        subject: Some(subject),
        html: html.as_deref(),
        text: message.text.as_deref(),
    };
    compile(&parts, message.dialect()?, &field_names(conn, account_id)?)?;
    diesel::update(messages::table.find(message.id))
        .set((
            messages::subject.eq(subject),
            messages::html.eq(&html),
            messages::name.eq(name.unwrap_or(&message.name)),
            messages::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, account_id, id)
}

/// Sets the sender of a message (`None` keeps the value).
pub fn set_sender(
    conn: &mut DbConnection,
    account_id: i64,
    id: i64,
    from_name: Option<&str>,
    from_email: Option<&str>,
) -> Result<Message> {
    let message = get(conn, account_id, id)?;
    diesel::update(messages::table.find(message.id))
        .set((
            messages::from_name.eq(from_name.unwrap_or(&message.from_name)),
            messages::from_email.eq(from_email.unwrap_or(&message.from_email)),
            messages::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, account_id, id)
}

/// The messages of a channel that belong to the list with this number, oldest
/// first; templates are not among them (see [`templates_in_list`]).
pub fn in_list(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    kind: MessageKind,
) -> Result<Vec<Message>> {
    of_list(conn, account_id, list_number, kind, false)
}

/// The list's e-mail templates, oldest first.
pub fn templates_in_list(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
) -> Result<Vec<Message>> {
    of_list(conn, account_id, list_number, MessageKind::Email, true)
}

fn of_list(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    kind: MessageKind,
    templates: bool,
) -> Result<Vec<Message>> {
    let list = lists::get(conn, account_id, list_number)?;
    Ok(messages::table
        .filter(messages::account_id.eq(account_id))
        .filter(messages::list_id.eq(list.id))
        .filter(messages::channel.eq(kind.as_str()))
        .filter(messages::is_template.eq(templates))
        .order(messages::id)
        .select(Message::as_select())
        .load(conn)?)
}

/// Makes an e-mail a template or an ordinary message again. A template is a
/// model: it is copied to make newsletters, never sent itself.
pub fn set_template(
    conn: &mut DbConnection,
    account_id: i64,
    id: i64,
    template: bool,
) -> Result<Message> {
    let message = get(conn, account_id, id)?;
    if message.kind()? != MessageKind::Email {
        return Err(Error::invalid(
            "template",
            "only an e-mail can be a template",
        ));
    }
    diesel::update(messages::table.find(message.id))
        .set((
            messages::is_template.eq(template),
            messages::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, account_id, id)
}

/// The account's field names, for MailUp's `[name]` tags.
pub fn field_names(conn: &mut DbConnection, account_id: i64) -> Result<Vec<String>> {
    Ok(fields::all(conn, account_id)?
        .into_iter()
        .map(|f| f.name)
        .collect())
}

/// The account's messages in id order, `limit` of them after skipping `offset`.
pub fn page(
    conn: &mut DbConnection,
    account_id: i64,
    offset: i64,
    limit: i64,
) -> Result<Vec<Message>> {
    Ok(messages::table
        .filter(messages::account_id.eq(account_id))
        .order(messages::id)
        .offset(offset.max(0))
        .limit(limit.clamp(1, 1000))
        .select(Message::as_select())
        .load(conn)?)
}

/// Deletes a message that was never sent. Returns `false` (and keeps it) when
/// sends refer to it: their reports need it.
pub fn delete(conn: &mut DbConnection, account_id: i64, id: i64) -> Result<bool> {
    use crate::db::schema::sends;
    crate::db::write_transaction(conn, |conn| {
        let message = get(conn, account_id, id)?;
        let used: i64 = sends::table
            .filter(sends::account_id.eq(account_id))
            .filter(sends::message_id.eq(message.id))
            .count()
            .get_result(conn)?;
        if used > 0 {
            return Ok(false);
        }
        diesel::delete(messages::table.find(message.id)).execute(conn)?;
        Ok(true)
    })
}

/// A copy of a message that belongs to list `list_number` (to send it to that
/// list as a campaign).
pub fn copy_to_list(
    conn: &mut DbConnection,
    account_id: i64,
    id: i64,
    list_number: i64,
) -> Result<Message> {
    let original = get(conn, account_id, id)?;
    create(
        conn,
        account_id,
        &NewMessage {
            kind: original.kind()?,
            dialect: original.dialect()?,
            name: original.name.clone(),
            subject: original.subject.clone(),
            html: original.html.clone(),
            text: original.text.clone(),
            from_name: original.from_name.clone(),
            from_email: original.from_email.clone(),
            reply_to: original.reply_to.clone(),
            headers: original.headers(),
            list: Some(list_number),
        },
    )
}
/// Replaces the text part of an e-mail (checked by compiling, as on create).
pub fn set_text(conn: &mut DbConnection, account_id: i64, id: i64, text: &str) -> Result<Message> {
    let message = get(conn, account_id, id)?;
    let field_names = field_names(conn, account_id)?;
    let parts = Parts {
        subject: Some(&message.subject),
        html: message.html.as_deref(),
        text: Some(text),
    };
    compile(&parts, message.dialect()?, &field_names)?;
    diesel::update(messages::table.find(message.id))
        .set((messages::text.eq(text), messages::updated_at.eq(now())))
        .execute(conn)?;
    get(conn, account_id, id)
}

/// Which e-mails to list; every condition is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailFilter {
    /// Part of the name, compared without regard to case.
    pub name_contains: Option<String>,
    /// Created at or after this time.
    pub from: Option<NaiveDateTime>,
    /// Created before this time.
    pub until: Option<NaiveDateTime>,
}

/// The account's e-mails (not SMS) by id.
pub fn emails(
    conn: &mut DbConnection,
    account_id: i64,
    filter: &EmailFilter,
) -> Result<Vec<Message>> {
    let mut query = messages::table
        .filter(messages::account_id.eq(account_id))
        .filter(messages::channel.eq(MessageKind::Email.as_str()))
        .into_boxed();
    if let Some(from) = filter.from {
        query = query.filter(messages::created_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(messages::created_at.lt(until));
    }
    let found: Vec<Message> = query
        .order(messages::id)
        .select(Message::as_select())
        .load(conn)?;
    Ok(match &filter.name_contains {
        Some(part) => {
            let part = part.to_lowercase();
            found
                .into_iter()
                .filter(|m| m.name.to_lowercase().contains(&part))
                .collect()
        }
        None => found,
    })
}
