//! Recipients: one per e-mail address or mobile number in an account, with global
//! per-channel blocks and the values of the account's fields.

use chrono::{NaiveDateTime, SubsecRound};
use diesel::prelude::*;

use super::fields::{self, FieldRef};
use super::subscriptions::{self, UnsubscribeReason};
use super::{Origin, accounts, groups, now};
use crate::db::schema::{recipient_field_values, recipients};
use crate::db::{DbConnection, backend, on_backend, write_transaction};
use crate::{Error, Result};

/// The value personal data is replaced with when a recipient is erased.
pub const ERASED: &str = "DELETED";

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = recipients)]
pub struct Recipient {
    pub id: i64,
    pub account_id: i64,
    pub email: Option<String>,
    pub mobile_prefix: Option<String>,
    pub mobile_number: Option<String>,
    /// The mobile number as matched: `+` and all digits.
    pub mobile_key: Option<String>,
    pub email_blocklisted: bool,
    pub sms_blocklisted: bool,
    pub bounced: bool,
    pub ext_id: Option<String>,
    pub erased_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Recipient {
    /// The recipient's overall state, most restrictive first.
    pub fn status(&self) -> RecipientStatus {
        if self.bounced {
            RecipientStatus::Bounced
        } else if self.email_blocklisted {
            RecipientStatus::EmailBlocklisted
        } else if self.sms_blocklisted {
            RecipientStatus::SmsBlocklisted
        } else {
            RecipientStatus::Active
        }
    }

    /// Whether mail may go to this recipient at all.
    pub fn email_allowed(&self) -> bool {
        !self.email_blocklisted && !self.bounced && self.erased_at.is_none()
    }

    pub fn sms_allowed(&self) -> bool {
        !self.sms_blocklisted && self.erased_at.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientStatus {
    Active,
    EmailBlocklisted,
    SmsBlocklisted,
    Bounced,
}

/// The message channels a recipient can be blocked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageChannel {
    Email,
    Sms,
}

#[derive(Insertable)]
#[diesel(table_name = recipients)]
pub struct NewRecipient {
    pub account_id: i64,
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub mobile_prefix: Option<String>,
    pub mobile_number: Option<String>,
    pub mobile_key: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = recipient_field_values)]
pub struct FieldValueRow {
    pub account_id: i64,
    pub recipient_id: i64,
    pub field_number: i32,
    pub value: String,
}

/// A mobile number as a protocol delivers it: with the international prefix in
/// `prefix`, or inside `number` (`+39…`, `0039…`), or neither (the account's
/// default prefix applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mobile {
    pub prefix: Option<String>,
    pub number: String,
}

impl Mobile {
    pub fn new(number: impl Into<String>) -> Mobile {
        Mobile {
            prefix: None,
            number: number.into(),
        }
    }
}

/// How a caller names an existing recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientKey {
    Id(i64),
    Email(String),
    Mobile(Mobile),
}

/// The contact data of a recipient to find or create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    pub mobile: Option<Mobile>,
}

impl Contact {
    pub fn email(address: impl Into<String>) -> Contact {
        Contact {
            email: Some(address.into()),
            mobile: None,
        }
    }
}

/// A checked e-mail address: trimmed as given, and the lower-case key it is
/// matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Email {
    address: String,
    key: String,
}

fn parse_email(address: &str) -> Result<Email> {
    let address = address.trim();
    let invalid = || Error::invalid("email", format!("{address:?} is not an e-mail address"));
    let (local, domain) = address.rsplit_once('@').ok_or_else(invalid)?;
    let well_formed = !local.is_empty()
        && local.len() <= 64
        && address.len() <= 254
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        && !local.contains('@');
    if !well_formed {
        return Err(invalid());
    }
    Ok(Email {
        address: address.to_string(),
        key: address.to_lowercase(),
    })
}

/// The address trimmed, if it is a well-formed e-mail address.
pub fn checked_email(address: &str) -> Result<String> {
    Ok(parse_email(address)?.address)
}

/// A checked mobile number: the prefix and national part as stored, and the key
/// `+<all digits>` it is matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MobileNumber {
    prefix: Option<String>,
    number: String,
    key: String,
}

fn digits_of(text: &str) -> Result<String> {
    let mut digits = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return Err(Error::invalid("mobile", format!("unexpected {c:?}"))),
        }
    }
    Ok(digits)
}

/// `+39`, `0039` or `39` → `39`.
fn international_digits(prefix: &str) -> Result<String> {
    let prefix = prefix.trim();
    let prefix = prefix
        .strip_prefix('+')
        .or_else(|| prefix.strip_prefix("00"))
        .unwrap_or(prefix);
    digits_of(prefix)
}

fn parse_mobile(
    mobile: &Mobile,
    default_prefix: impl FnOnce() -> Result<String>,
) -> Result<MobileNumber> {
    let raw = mobile.number.trim();
    let given_prefix = mobile
        .prefix
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let embedded = raw.strip_prefix('+').or_else(|| raw.strip_prefix("00"));
    let (prefix, national) = match (given_prefix, embedded) {
        (_, Some(full)) => (None, digits_of(full)?),
        (Some(prefix), None) => (Some(international_digits(prefix)?), digits_of(raw)?),
        (None, None) => (
            Some(international_digits(&default_prefix()?)?),
            digits_of(raw)?,
        ),
    };
    let full = format!("{}{}", prefix.as_deref().unwrap_or(""), national);
    if national.is_empty() || !(6..=15).contains(&full.len()) {
        return Err(Error::invalid(
            "mobile",
            format!("{raw:?} is not a mobile number"),
        ));
    }
    Ok(MobileNumber {
        number: match &prefix {
            Some(_) => national,
            None => format!("+{national}"),
        },
        prefix: prefix.map(|p| format!("+{p}")),
        key: format!("+{full}"),
    })
}

/// A contact checked and normalised as it is stored: the addresses as given and
/// the keys recipients are matched by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactKeys {
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub mobile_prefix: Option<String>,
    pub mobile_number: Option<String>,
    pub mobile_key: Option<String>,
}

/// Checks and normalises a contact without touching the database (bulk imports
/// read the account's default prefix once).
pub fn contact_keys(contact: &Contact, default_prefix: &str) -> Result<ContactKeys> {
    let email = contact.email.as_deref().map(parse_email).transpose()?;
    let mobile = contact
        .mobile
        .as_ref()
        .map(|m| parse_mobile(m, || Ok(default_prefix.to_string())))
        .transpose()?;
    let (email, email_key) = email.map_or((None, None), |e| (Some(e.address), Some(e.key)));
    let (mobile_prefix, mobile_number, mobile_key) = mobile.map_or((None, None, None), |m| {
        (m.prefix, Some(m.number), Some(m.key))
    });
    Ok(ContactKeys {
        email,
        email_key,
        mobile_prefix,
        mobile_number,
        mobile_key,
    })
}

/// The normalised form (`+<all digits>`) of a mobile number in the account.
pub fn mobile_key(conn: &mut DbConnection, account_id: i64, mobile: &Mobile) -> Result<String> {
    Ok(parse_mobile(mobile, || account_default_prefix(conn, account_id))?.key)
}

fn account_default_prefix(conn: &mut DbConnection, account_id: i64) -> Result<String> {
    Ok(accounts::get(conn, account_id)?
        .settings()
        .default_mobile_prefix)
}

fn by_email_key(conn: &mut DbConnection, account_id: i64, key: &str) -> Result<Option<Recipient>> {
    Ok(on_backend!(conn, |c| recipients::table
        .filter(recipients::account_id.eq(account_id))
        .filter(recipients::email_key.eq(key))
        .select(Recipient::as_select())
        .first(c)
        .optional())?)
}

fn by_mobile_key(conn: &mut DbConnection, account_id: i64, key: &str) -> Result<Option<Recipient>> {
    Ok(on_backend!(conn, |c| recipients::table
        .filter(recipients::account_id.eq(account_id))
        .filter(recipients::mobile_key.eq(key))
        .select(Recipient::as_select())
        .first(c)
        .optional())?)
}

/// The recipient a key names in the account, if any.
pub fn find(
    conn: &mut DbConnection,
    account_id: i64,
    key: &RecipientKey,
) -> Result<Option<Recipient>> {
    match key {
        RecipientKey::Id(id) => Ok(on_backend!(conn, |c| recipients::table
            .filter(recipients::account_id.eq(account_id))
            .filter(recipients::id.eq(id))
            .select(Recipient::as_select())
            .first(c)
            .optional())?),
        RecipientKey::Email(address) => {
            let email = parse_email(address)?;
            by_email_key(conn, account_id, &email.key)
        }
        RecipientKey::Mobile(mobile) => {
            let number = parse_mobile(mobile, || account_default_prefix(conn, account_id))?;
            by_mobile_key(conn, account_id, &number.key)
        }
    }
}

pub fn get(conn: &mut DbConnection, account_id: i64, key: &RecipientKey) -> Result<Recipient> {
    find(conn, account_id, key)?.ok_or(Error::NotFound("recipient"))
}

/// Finds the recipient by e-mail (else by mobile) or creates it. A contact detail
/// the recipient lacks, or a changed mobile, is stored. Safe under concurrency:
/// twins racing to create the same address end with one row. Returns the
/// recipient and whether it was created.
pub fn find_or_create(
    conn: &mut DbConnection,
    account_id: i64,
    contact: &Contact,
) -> Result<(Recipient, bool)> {
    write_transaction(conn, |conn| find_or_create_in(conn, account_id, contact))
}

/// [`find_or_create`] within the caller's writing transaction.
pub(crate) fn find_or_create_in(
    conn: &mut DbConnection,
    account_id: i64,
    contact: &Contact,
) -> Result<(Recipient, bool)> {
    let email = contact.email.as_deref().map(parse_email).transpose()?;
    let mobile = match &contact.mobile {
        Some(mobile) => Some(parse_mobile(mobile, || {
            account_default_prefix(conn, account_id)
        })?),
        None => None,
    };
    if email.is_none() && mobile.is_none() {
        return Err(Error::invalid(
            "recipient",
            "an e-mail address or a mobile number is required",
        ));
    }
    // On PostgreSQL looked up first: an insert that does nothing still takes
    // a number from the sequence, and eCircle's user ids are recipient ids.
    // SQLite numbers a row after the table's largest id, so there an insert
    // that does nothing costs no number, and a new recipient (a subscribe's
    // common case) is inserted without the lookup; an existing one is found
    // below, after the insert did nothing.
    if matches!(conn, DbConnection::Postgresql(_))
        && let Some(found) = lookup(conn, account_id, email.as_ref(), mobile.as_ref())?
    {
        let updated = complete_contact(conn, found, email.as_ref(), mobile.as_ref())?;
        return Ok((updated, false));
    }
    // Microseconds, as PostgreSQL keeps them, so that the recipient returned
    // equals the one stored.
    let stamp = now().trunc_subsecs(6);
    let row = NewRecipient {
        account_id,
        email: email.as_ref().map(|e| e.address.clone()),
        email_key: email.as_ref().map(|e| e.key.clone()),
        mobile_prefix: mobile.as_ref().and_then(|m| m.prefix.clone()),
        mobile_number: mobile.as_ref().map(|m| m.number.clone()),
        mobile_key: mobile.as_ref().map(|m| m.key.clone()),
        created_at: stamp,
        updated_at: stamp,
    };
    if let Some(id) = backend::insert_recipient_if_absent(conn, &row)? {
        // The row as inserted, with the table's defaults: not read back.
        let created = Recipient {
            id,
            account_id,
            email: row.email,
            mobile_prefix: row.mobile_prefix,
            mobile_number: row.mobile_number,
            mobile_key: row.mobile_key,
            email_blocklisted: false,
            sms_blocklisted: false,
            bounced: false,
            ext_id: None,
            erased_at: None,
            created_at: stamp,
            updated_at: stamp,
        };
        return Ok((created, true));
    }
    // It exists (on PostgreSQL: a concurrent request created it between our
    // lookup and insert).
    match lookup(conn, account_id, email.as_ref(), mobile.as_ref())? {
        Some(found) => Ok((
            complete_contact(conn, found, email.as_ref(), mobile.as_ref())?,
            false,
        )),
        None => Err(Error::Internal(
            "recipient neither inserted nor found".into(),
        )),
    }
}

fn lookup(
    conn: &mut DbConnection,
    account_id: i64,
    email: Option<&Email>,
    mobile: Option<&MobileNumber>,
) -> Result<Option<Recipient>> {
    if let Some(email) = email
        && let Some(found) = by_email_key(conn, account_id, &email.key)?
    {
        return Ok(Some(found));
    }
    match mobile {
        Some(mobile) => by_mobile_key(conn, account_id, &mobile.key),
        None => Ok(None),
    }
}

/// Stores the contact details a found recipient is missing or whose mobile changed.
fn complete_contact(
    conn: &mut DbConnection,
    recipient: Recipient,
    email: Option<&Email>,
    mobile: Option<&MobileNumber>,
) -> Result<Recipient> {
    let mut changed = false;
    if let Some(email) = email {
        match &recipient.email {
            Some(current) if current.to_lowercase() == email.key => {}
            Some(_) => {
                // Found by mobile, but that number belongs to a different address.
                return Err(Error::Conflict(
                    "the mobile number belongs to a recipient with another e-mail address".into(),
                ));
            }
            None => {
                diesel::update(recipients::table.find(recipient.id))
                    .set((
                        recipients::email.eq(&email.address),
                        recipients::email_key.eq(&email.key),
                    ))
                    .execute(conn)?;
                changed = true;
            }
        }
    }
    if let Some(mobile) = mobile {
        let unchanged = recipient.mobile_key.as_deref() == Some(mobile.key.as_str());
        if !unchanged {
            if let Some(owner) = by_mobile_key(conn, recipient.account_id, &mobile.key)?
                && owner.id != recipient.id
            {
                return Err(Error::Conflict(
                    "the mobile number belongs to another recipient".into(),
                ));
            }
            diesel::update(recipients::table.find(recipient.id))
                .set((
                    recipients::mobile_prefix.eq(&mobile.prefix),
                    recipients::mobile_number.eq(&mobile.number),
                    recipients::mobile_key.eq(&mobile.key),
                ))
                .execute(conn)?;
            changed = true;
        }
    }
    if !changed {
        return Ok(recipient);
    }
    diesel::update(recipients::table.find(recipient.id))
        .set(recipients::updated_at.eq(now()))
        .execute(conn)?;
    get(conn, recipient.account_id, &RecipientKey::Id(recipient.id))
}

/// Changes a recipient's e-mail address; another recipient of the account
/// with the new address is a conflict.
pub fn change_email(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    address: &str,
) -> Result<Recipient> {
    let email = parse_email(address)?;
    write_transaction(conn, |conn| {
        let recipient = get(conn, account_id, &RecipientKey::Id(recipient_id))?;
        if let Some(owner) = by_email_key(conn, account_id, &email.key)?
            && owner.id != recipient.id
        {
            return Err(Error::Conflict(
                "the address belongs to another recipient".into(),
            ));
        }
        diesel::update(recipients::table.find(recipient.id))
            .set((
                recipients::email.eq(&email.address),
                recipients::email_key.eq(&email.key),
                recipients::updated_at.eq(now()),
            ))
            .execute(conn)?;
        get(conn, account_id, &RecipientKey::Id(recipient.id))
    })
}

/// Sets field values (by number or catalogue name) on a recipient of the account.
pub fn set_fields(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    values: &[(FieldRef, String)],
) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    write_transaction(conn, |conn| {
        let recipient = get(conn, account_id, &RecipientKey::Id(recipient_id))?;
        store_fields(conn, &recipient, values, true)
    })
}

/// Stores field values of a recipient within the caller's writing
/// transaction. `touch` sets its `updated_at` (a recipient created by the
/// same transaction has it already).
pub(crate) fn store_fields(
    conn: &mut DbConnection,
    recipient: &Recipient,
    values: &[(FieldRef, String)],
    touch: bool,
) -> Result<()> {
    for (field, value) in values {
        let number = fields::resolve(conn, recipient.account_id, field)?;
        backend::upsert_field_value(
            conn,
            &FieldValueRow {
                account_id: recipient.account_id,
                recipient_id: recipient.id,
                field_number: number,
                value: value.clone(),
            },
        )?;
    }
    if touch && !values.is_empty() {
        backend::touch_recipient(conn, recipient.id, now())?;
    }
    Ok(())
}

/// The recipient's field values by field number.
pub fn field_values(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
) -> Result<Vec<(i32, String)>> {
    Ok(recipient_field_values::table
        .filter(recipient_field_values::account_id.eq(account_id))
        .filter(recipient_field_values::recipient_id.eq(recipient_id))
        .order(recipient_field_values::field_number)
        .select((
            recipient_field_values::field_number,
            recipient_field_values::value,
        ))
        .load(conn)?)
}

/// What a message needs of a recipient: its addresses and field values by number.
#[derive(Debug, Clone)]
pub struct WithFields {
    pub id: i64,
    pub email: Option<String>,
    pub mobile_key: Option<String>,
    pub fields: Vec<(i32, String)>,
}

/// One row of [`backend::recipients_with_fields`]: a recipient and one of its
/// field values (none when it has no values).
#[derive(Debug, QueryableByName)]
pub struct RecipientFieldRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub mobile_key: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    pub field_number: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub value: Option<String>,
}

/// Recipients of the account by id with their field values (for rendering a
/// batch of deliveries in one query).
pub fn with_field_values(
    conn: &mut DbConnection,
    account_id: i64,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, WithFields>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for row in backend::recipients_with_fields(conn, account_id, ids)? {
        let recipient = found.entry(row.id).or_insert_with(|| WithFields {
            id: row.id,
            email: row.email,
            mobile_key: row.mobile_key,
            fields: Vec::new(),
        });
        if let (Some(number), Some(value)) = (row.field_number, row.value) {
            recipient.fields.push((number, value));
        }
    }
    Ok(found)
}

/// The recipients of the account (not erased) whose field `number` has this
/// value, lowest id first, at most `limit`.
pub fn find_by_field(
    conn: &mut DbConnection,
    account_id: i64,
    number: i32,
    value: &str,
    limit: i64,
) -> Result<Vec<Recipient>> {
    Ok(recipients::table
        .inner_join(recipient_field_values::table)
        .filter(recipients::account_id.eq(account_id))
        .filter(recipients::erased_at.is_null())
        .filter(recipient_field_values::account_id.eq(account_id))
        .filter(recipient_field_values::field_number.eq(number))
        .filter(recipient_field_values::value.eq(value))
        .order(recipients::id)
        .limit(limit)
        .select(Recipient::as_select())
        .load(conn)?)
}

/// One page of the account's recipients (not erased) in id order: pass the
/// last id as `after` for the next.
pub fn page(
    conn: &mut DbConnection,
    account_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Recipient>> {
    Ok(recipients::table
        .filter(recipients::account_id.eq(account_id))
        .filter(recipients::erased_at.is_null())
        .filter(recipients::id.gt(after))
        .order(recipients::id)
        .limit(limit.clamp(1, 10_000))
        .select(Recipient::as_select())
        .load(conn)?)
}

/// Changes a recipient's e-mail address. An address another recipient of the
/// account has is a conflict.
pub fn set_email(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    address: &str,
) -> Result<Recipient> {
    let email = parse_email(address)?;
    write_transaction(conn, |conn| {
        let recipient = get(conn, account_id, &RecipientKey::Id(recipient_id))?;
        if recipient.erased_at.is_some() {
            return Err(Error::NotFound("recipient"));
        }
        if let Some(owner) = by_email_key(conn, account_id, &email.key)? {
            if owner.id == recipient.id && recipient.email.as_deref() == Some(&email.address) {
                return Ok(recipient);
            }
            if owner.id != recipient.id {
                return Err(Error::Conflict(
                    "the e-mail address belongs to another recipient".into(),
                ));
            }
        }
        diesel::update(recipients::table.find(recipient.id))
            .set((
                recipients::email.eq(&email.address),
                recipients::email_key.eq(&email.key),
                recipients::updated_at.eq(now()),
            ))
            .execute(conn)?;
        get(conn, account_id, &RecipientKey::Id(recipient.id))
    })
}

/// One page of the account's recipients blocked for e-mail whose record last
/// changed in `[from, until)`, in id order (pass the last id as `after`).
pub fn email_blocklisted(
    conn: &mut DbConnection,
    account_id: i64,
    from: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    after: i64,
    limit: i64,
) -> Result<Vec<Recipient>> {
    let mut query = recipients::table
        .filter(recipients::account_id.eq(account_id))
        .filter(recipients::email_blocklisted.eq(true))
        .filter(recipients::erased_at.is_null())
        .filter(recipients::id.gt(after))
        .into_boxed();
    if let Some(from) = from {
        query = query.filter(recipients::updated_at.ge(from));
    }
    if let Some(until) = until {
        query = query.filter(recipients::updated_at.lt(until));
    }
    Ok(query
        .order(recipients::id)
        .limit(limit.clamp(1, 10_000))
        .select(Recipient::as_select())
        .load(conn)?)
}

/// Blocks (or unblocks) a recipient account-wide on one channel. Subscriptions
/// keep their status; sending checks the block.
pub fn set_blocklisted(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    channel: MessageChannel,
    blocked: bool,
) -> Result<()> {
    let target = recipients::table
        .filter(recipients::account_id.eq(account_id))
        .filter(recipients::id.eq(recipient_id));
    let updated = match channel {
        MessageChannel::Email => diesel::update(target)
            .set((
                recipients::email_blocklisted.eq(blocked),
                recipients::updated_at.eq(now()),
            ))
            .execute(conn)?,
        MessageChannel::Sms => diesel::update(target)
            .set((
                recipients::sms_blocklisted.eq(blocked),
                recipients::updated_at.eq(now()),
            ))
            .execute(conn)?,
    };
    if updated == 0 {
        return Err(Error::NotFound("recipient"));
    }
    Ok(())
}

/// Erases a recipient's personal data (GDPR): e-mail, mobile, external id and
/// every field value become `DELETED`, every subscription is ended, group
/// memberships are removed. The row and the subscription history stay, so reports
/// and audits keep their counts without the person.
pub fn erase(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
    origin: &Origin,
) -> Result<()> {
    write_transaction(conn, |conn| {
        let recipient = get(conn, account_id, &RecipientKey::Id(recipient_id))?;
        subscriptions::end_all(
            conn,
            account_id,
            recipient.id,
            UnsubscribeReason::AdminConsole,
            origin,
            "erased",
        )?;
        for group_id in groups::all_memberships(conn, account_id, recipient.id)? {
            groups::remove_member(conn, account_id, group_id, recipient.id)?;
        }
        let stamp = now();
        diesel::update(recipients::table.find(recipient.id))
            .set((
                recipients::email.eq(recipient.email.as_ref().map(|_| ERASED)),
                recipients::email_key.eq(None::<String>),
                recipients::mobile_prefix.eq(None::<String>),
                recipients::mobile_number.eq(recipient.mobile_number.as_ref().map(|_| ERASED)),
                recipients::mobile_key.eq(None::<String>),
                recipients::ext_id.eq(recipient.ext_id.as_ref().map(|_| ERASED)),
                recipients::erased_at.eq(Some(stamp)),
                recipients::updated_at.eq(stamp),
            ))
            .execute(conn)?;
        diesel::update(
            recipient_field_values::table
                .filter(recipient_field_values::account_id.eq(account_id))
                .filter(recipient_field_values::recipient_id.eq(recipient.id)),
        )
        .set(recipient_field_values::value.eq(ERASED))
        .execute(conn)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn italy() -> Result<String> {
        Ok("+39".into())
    }

    #[test]
    fn emails_are_checked_and_keyed_case_insensitively() {
        let e = parse_email("  Mario.Rossi@Example.COM ").unwrap();
        assert_eq!(e.address, "Mario.Rossi@Example.COM");
        assert_eq!(e.key, "mario.rossi@example.com");
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@example..com",
            "a@@example.com",
        ] {
            assert!(parse_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mobile_numbers_normalise_to_one_key() {
        let with_prefix = parse_mobile(
            &Mobile {
                prefix: Some("0039".into()),
                number: "333 123 4567".into(),
            },
            italy,
        )
        .unwrap();
        let embedded = parse_mobile(&Mobile::new("+393331234567"), italy).unwrap();
        let defaulted = parse_mobile(&Mobile::new("3331234567"), italy).unwrap();
        assert_eq!(with_prefix.key, "+393331234567");
        assert_eq!(embedded.key, with_prefix.key);
        assert_eq!(defaulted.key, with_prefix.key);
        assert_eq!(with_prefix.prefix.as_deref(), Some("+39"));
        assert_eq!(with_prefix.number, "3331234567");
        assert!(parse_mobile(&Mobile::new("12"), italy).is_err());
        assert!(parse_mobile(&Mobile::new("33312x4567"), italy).is_err());
    }
}
