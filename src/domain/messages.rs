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

/// Where a message stands with its sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendState {
    /// Never sent.
    New,
    /// A send is scheduled, sending or paused.
    Sending,
    /// Sent, and nothing under way.
    Sent,
}

/// What to sort messages by; ties go by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageOrder {
    #[default]
    Id,
    Name,
    Subject,
    Created,
    /// When its first send started; never-sent messages come last.
    FirstSent,
    /// Its list's number; messages of no list come last.
    List,
}

/// Which messages to list, in which order; every condition is optional.
#[derive(Debug, Clone, Default)]
pub struct MessageSearch {
    pub id: Option<i64>,
    /// Part of the name, compared without regard to case.
    pub name_contains: Option<String>,
    /// Part of the subject, compared without regard to case.
    pub subject_contains: Option<String>,
    /// `Some(true)`: only messages of a list; `Some(false)`: only of none.
    pub of_a_list: Option<bool>,
    /// Only messages of these lists (internal ids).
    pub lists: Option<Vec<i64>>,
    /// Created in `[from, to]`.
    pub created_from: Option<NaiveDateTime>,
    pub created_to: Option<NaiveDateTime>,
    /// First sent in `[from, to]` (a never-sent message matches neither).
    pub first_sent_from: Option<NaiveDateTime>,
    pub first_sent_to: Option<NaiveDateTime>,
    pub state: Option<SendState>,
    pub order: MessageOrder,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

diesel::define_sql_function! {
    /// SQL's LOWER, for substring matches without regard to case on both backends.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `%part%` for LIKE, with LIKE's own characters escaped by `\`.
fn like_pattern(part: &str) -> String {
    let mut pattern = String::from("%");
    for c in part.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The account's messages that match, sorted, `limit` of them after `offset`.
pub fn search(
    conn: &mut DbConnection,
    account_id: i64,
    search: &MessageSearch,
) -> Result<Vec<Message>> {
    use crate::db::schema::{lists as lists_table, sends};
    let first_sent = || {
        sends::table
            .filter(sends::message_id.eq(messages::id))
            .select(diesel::dsl::min(sends::started_at))
            .single_value()
    };
    let any_send = || diesel::dsl::exists(sends::table.filter(sends::message_id.eq(messages::id)));
    let under_way = || {
        diesel::dsl::exists(
            sends::table
                .filter(sends::message_id.eq(messages::id))
                .filter(sends::status.eq_any(["scheduled", "sending", "paused"])),
        )
    };
    let list_number = || {
        lists_table::table
            .filter(lists_table::id.nullable().eq(messages::list_id))
            .select(lists_table::number)
            .single_value()
    };
    let mut query = messages::table
        .filter(messages::account_id.eq(account_id))
        .into_boxed();
    if let Some(id) = search.id {
        query = query.filter(messages::id.eq(id));
    }
    if let Some(part) = &search.name_contains {
        query = query.filter(lower(messages::name).like(like_pattern(part)).escape('\\'));
    }
    if let Some(part) = &search.subject_contains {
        query = query.filter(
            lower(messages::subject)
                .like(like_pattern(part))
                .escape('\\'),
        );
    }
    match search.of_a_list {
        Some(true) => query = query.filter(messages::list_id.is_not_null()),
        Some(false) => query = query.filter(messages::list_id.is_null()),
        None => {}
    }
    if let Some(ids) = &search.lists {
        query = query.filter(messages::list_id.eq_any(ids.clone()));
    }
    if let Some(from) = search.created_from {
        query = query.filter(messages::created_at.ge(from));
    }
    if let Some(to) = search.created_to {
        query = query.filter(messages::created_at.le(to));
    }
    if let Some(from) = search.first_sent_from {
        query = query.filter(first_sent().ge(from));
    }
    if let Some(to) = search.first_sent_to {
        query = query.filter(first_sent().le(to));
    }
    match search.state {
        Some(SendState::New) => query = query.filter(diesel::dsl::not(any_send())),
        Some(SendState::Sending) => query = query.filter(under_way()),
        Some(SendState::Sent) => {
            query = query
                .filter(any_send())
                .filter(diesel::dsl::not(under_way()))
        }
        None => {}
    }
    query = match (search.order, search.descending) {
        (MessageOrder::Id, _) => query,
        (MessageOrder::Name, false) => query.order(lower(messages::name).asc()),
        (MessageOrder::Name, true) => query.order(lower(messages::name).desc()),
        (MessageOrder::Subject, false) => query.order(lower(messages::subject).asc()),
        (MessageOrder::Subject, true) => query.order(lower(messages::subject).desc()),
        (MessageOrder::Created, false) => query.order(messages::created_at.asc()),
        (MessageOrder::Created, true) => query.order(messages::created_at.desc()),
        // NULLs sort differently on the two backends: put them last explicitly.
        (MessageOrder::FirstSent, false) => query
            .order(first_sent().is_null().asc())
            .then_order_by(first_sent().asc()),
        (MessageOrder::FirstSent, true) => query
            .order(first_sent().is_null().asc())
            .then_order_by(first_sent().desc()),
        (MessageOrder::List, false) => query
            .order(messages::list_id.is_null().asc())
            .then_order_by(list_number().asc()),
        (MessageOrder::List, true) => query
            .order(messages::list_id.is_null().asc())
            .then_order_by(list_number().desc()),
    };
    query = if search.descending {
        query.then_order_by(messages::id.desc())
    } else {
        query.then_order_by(messages::id.asc())
    };
    Ok(query
        .offset(search.offset.max(0))
        .limit(search.limit.clamp(1, 1000))
        .select(Message::as_select())
        .load(conn)?)
}
