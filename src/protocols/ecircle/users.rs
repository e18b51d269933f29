//! Users: eCircle's users are our recipients, their id the recipient id.

use super::documents::{self, UserData, UserDocument};
use super::params::Params;
use super::session::Caller;
use super::{EcmFault, Failure, Outcome, Return};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::fields::{self, FieldRef};
use crate::domain::recipients::{self, Contact, Mobile, Recipient, RecipientKey};

/// The document parameter of an operation (any of the names clients use).
pub fn document_param(p: &Params, names: &[&str]) -> std::result::Result<UserDocument, EcmFault> {
    let element = names
        .iter()
        .find_map(|n| p.child(n))
        .ok_or_else(|| EcmFault::invalid(format!("{} is missing", names[0])))?;
    documents::parse(&documents::document_text(element))
}

/// The user a document describes, found by e-mail (else mobile) or created,
/// with its values applied.
pub fn create_or_update(
    conn: &mut DbConnection,
    caller: &Caller,
    document: &UserDocument,
) -> std::result::Result<Recipient, Failure> {
    if document.email.is_none() && document.mobile.is_none() {
        return Err(EcmFault::invalid("the user needs an email or a mobilenumber").into());
    }
    let contact = Contact {
        email: document.email.clone(),
        mobile: document.mobile.clone().map(Mobile::new),
    };
    let (recipient, _) = recipients::find_or_create(conn, caller.account_id, &contact)?;
    apply_values(conn, caller, recipient.id, document)?;
    Ok(recipient)
}

/// Stores the document's field values on the recipient.
pub fn apply_values(
    conn: &mut DbConnection,
    caller: &Caller,
    recipient_id: i64,
    document: &UserDocument,
) -> Result<()> {
    let mut values = Vec::with_capacity(document.values.len());
    for (name, value) in &document.values {
        let number = fields::resolve_or_define(conn, caller.account_id, name)?;
        values.push((FieldRef::Number(number), value.clone()));
    }
    recipients::set_fields(conn, caller.account_id, recipient_id, &values)
}

/// A live (not erased) user of the account.
pub fn find(
    conn: &mut DbConnection,
    caller: &Caller,
    key: &RecipientKey,
) -> Result<Option<Recipient>> {
    // An unusable address names nobody: lookups answer nil, not a fault.
    match recipients::find(conn, caller.account_id, key) {
        Ok(found) => Ok(found.filter(|r| r.erased_at.is_none())),
        Err(crate::Error::Invalid { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The user a `userId` parameter names, or "No such User".
pub fn by_id_param(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    name: &str,
) -> std::result::Result<Recipient, Failure> {
    let id = p.id(name).ok_or_else(EcmFault::no_user)?;
    find(conn, caller, &RecipientKey::Id(id))?.ok_or_else(|| EcmFault::no_user().into())
}

/// What documents say about a user: addresses and named field values.
pub fn data(
    conn: &mut DbConnection,
    caller: &Caller,
    recipient: &Recipient,
) -> Result<Vec<(String, String)>> {
    let names = fields::all(conn, caller.account_id)?;
    Ok(
        recipients::field_values(conn, caller.account_id, recipient.id)?
            .into_iter()
            .filter_map(|(number, value)| {
                let field = names.iter().find(|f| f.number == number)?;
                Some((field.name.clone(), value))
            })
            .collect(),
    )
}

fn user_document(
    conn: &mut DbConnection,
    caller: &Caller,
    recipient: &Recipient,
) -> Result<String> {
    let values = data(conn, caller, recipient)?;
    Ok(documents::user(
        recipient.id,
        &UserData {
            email: recipient.email.as_deref(),
            mobile: recipient.mobile_key.as_deref(),
            fields: &values,
        },
    ))
}

fn lookup_answer(conn: &mut DbConnection, caller: &Caller, found: Option<Recipient>) -> Outcome {
    Ok(match found {
        Some(recipient) => Return::Text(user_document(conn, caller, &recipient)?),
        None => Return::Nil,
    })
}

/// `createUser(userXmlSpec)`: the new user's id. A user with the document's
/// address already exists: it is updated and its id answered.
pub fn create(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let document = document_param(p, &["userXmlSpec", "userXml"])?;
    let recipient = create_or_update(conn, caller, &document)?;
    Ok(Return::Text(recipient.id.to_string()))
}

/// `createOrUpdateUserByEmail(userXml, sendMessage)`.
pub fn create_or_update_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let document = document_param(p, &["userXml", "userXmlSpec"])?;
    if document.email.is_none() {
        return Err(EcmFault::invalid("the user document has no email").into());
    }
    let recipient = create_or_update(conn, caller, &document)?;
    Ok(Return::Text(recipient.id.to_string()))
}

/// `updateUser(userXmlSpec)`: the user named by the `id` attribute; its e-mail
/// and mobile number change to the document's.
pub fn update(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let document = document_param(p, &["userXmlSpec", "userXml"])?;
    let id = document
        .id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .ok_or_else(EcmFault::no_user)?;
    let recipient = find(conn, caller, &RecipientKey::Id(id))?.ok_or_else(EcmFault::no_user)?;
    let recipient = match &document.email {
        Some(email) => recipients::set_email(conn, caller.account_id, recipient.id, email)?,
        None => recipient,
    };
    if let (Some(mobile), Some(email)) = (&document.mobile, &recipient.email) {
        recipients::find_or_create(
            conn,
            caller.account_id,
            &Contact {
                email: Some(email.clone()),
                mobile: Some(Mobile::new(mobile.clone())),
            },
        )?;
    }
    apply_values(conn, caller, recipient.id, &document)?;
    Ok(Return::Bool(true))
}

/// `updateUserByEmail(userXmlSpec)`: the user with the document's e-mail.
pub fn update_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let document = document_param(p, &["userXmlSpec", "userXml"])?;
    let email = document
        .email
        .clone()
        .ok_or_else(|| EcmFault::invalid("the user document has no email"))?;
    let recipient =
        find(conn, caller, &RecipientKey::Email(email))?.ok_or_else(EcmFault::no_user)?;
    apply_values(conn, caller, recipient.id, &document)?;
    Ok(Return::Bool(true))
}

/// `deleteUser(userId)`: the user's personal data is erased and every
/// membership ends.
pub fn delete(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let recipient = by_id_param(conn, caller, p, "userId")?;
    recipients::erase(conn, caller.account_id, recipient.id, &caller.origin)?;
    Ok(Return::Bool(true))
}

/// `deleteUserByEmail(email)`: as `deleteUser`; the response is empty.
pub fn delete_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let email = p.required("email")?;
    let recipient =
        find(conn, caller, &RecipientKey::Email(email.into()))?.ok_or_else(EcmFault::no_user)?;
    recipients::erase(conn, caller.account_id, recipient.id, &caller.origin)?;
    Ok(Return::Nothing)
}

pub fn lookup_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let found = match p.text("email") {
        Some(email) => find(conn, caller, &RecipientKey::Email(email.into()))?,
        None => None,
    };
    lookup_answer(conn, caller, found)
}

pub fn lookup_by_id(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let found = match p.id("userId") {
        Some(id) => find(conn, caller, &RecipientKey::Id(id))?,
        None => None,
    };
    lookup_answer(conn, caller, found)
}

pub fn lookup_by_mobile(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let found = match p.text("mobile") {
        Some(mobile) => find(conn, caller, &RecipientKey::Mobile(Mobile::new(mobile)))?,
        None => None,
    };
    lookup_answer(conn, caller, found)
}

/// The first user whose field `field` has the value of parameter `param`.
pub fn by_field(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    param: &str,
    field: &str,
) -> Result<Option<Recipient>> {
    let (Some(value), Some(field)) = (
        p.text(param),
        fields::find_by_name(conn, caller.account_id, field)?,
    ) else {
        return Ok(None);
    };
    Ok(
        recipients::find_by_field(conn, caller.account_id, field.number, value, 1)?
            .into_iter()
            .next(),
    )
}

/// `lookupUserByFaxNumber(fax)`: the first user whose `fax` field is the number.
pub fn lookup_by_fax(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let found = by_field(conn, caller, p, "fax", "fax")?;
    lookup_answer(conn, caller, found)
}

/// `lookupUserByIdentifier(identifier)`: the first user whose `identifier`
/// (an element of the user document) is this.
pub fn lookup_by_identifier(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let found = by_field(conn, caller, p, "identifier", "identifier")?;
    lookup_answer(conn, caller, found)
}

/// `isEmailOnSystemBlacklist(email)`: the address is blocked account-wide.
pub fn is_blacklisted(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let found = match p.text("email") {
        Some(email) => find(conn, caller, &RecipientKey::Email(email.into()))?,
        None => None,
    };
    Ok(Return::Bool(found.is_some_and(|r| r.email_blocklisted)))
}

/// `isEmailBouncedSystemwide(email)`: the address bounced hard.
pub fn is_bounced(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let found = match p.text("email") {
        Some(email) => find(conn, caller, &RecipientKey::Email(email.into()))?,
        None => None,
    };
    Ok(Return::Bool(found.is_some_and(|r| r.bounced)))
}
