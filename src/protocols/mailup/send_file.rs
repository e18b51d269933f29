//! MailUpSend's `SendMessageNL`: a newsletter sent to the recipients of a CSV
//! file the caller uploaded beforehand. MailUp read it from the account's FTP
//! space; espbridge reads `<data dir>/ftp/<console id>/send/<fileName>`. The
//! file's layout (the spec's "Appendix B" is lost) is that of the batch import
//! files (`csv.rs`): a header row of field ids, `111` the e-mail column. See
//! `docs/compat/mailup.md`.

use chrono::NaiveDateTime;

use super::send::newsletter;
use super::ws::Params;
use crate::config::Settings;
use crate::db::DbConnection;
use crate::domain::accounts::Account;
use crate::domain::fields::FieldRef;
use crate::domain::messages;
use crate::domain::recipients::{Contact, RecipientKey};
use crate::domain::sends::{self, Audience, NewCampaign};
use crate::domain::subscriptions::{self, Status, Subscribe};
use crate::domain::{Channel, Origin, lists};
use crate::{Error, Result};

/// `SendMessageNL(fileName, separator, listId, listGuid, messageId,
/// senderName, sender, subject, timeDateSending, sendDelayTest)`: answers the
/// delivery id (any failure is `-1`, as the spec says, with the reason in the
/// log). Addresses the list does not know are subscribed first (as MailUp's
/// single sends did); those unsubscribed or pending are left out.
/// `sendDelayTest` is obsolete and ignored.
pub fn send_message_nl(
    conn: &mut DbConnection,
    settings: &Settings,
    account: &Account,
    params: &Params,
) -> Result<String> {
    let list_number: i64 = params
        .text("listId")
        .parse()
        .map_err(|_| Error::invalid("listId", "a list id is required"))?;
    let list = lists::get(conn, account.id, list_number)?;
    let guid = params.text("listGuid").trim_matches(['{', '}']);
    if !guid.is_empty() && !list.guid.eq_ignore_ascii_case(guid) {
        return Err(Error::invalid("listGuid", "not the GUID of this list"));
    }
    let message_id: i64 = params
        .text("messageId")
        .parse()
        .map_err(|_| Error::invalid("messageId", "a newsletter id is required"))?;
    let mut message = newsletter(conn, account, list.number, message_id)?;
    let rows = read_file(settings, account, params)?;

    // The subject given replaces the newsletter's in a copy sent this once.
    let subject = params.text("subject");
    if !subject.is_empty() && subject != message.subject {
        let copy = messages::copy_to_list(conn, account.id, message.id, list.number)?;
        message = messages::update_content(conn, account.id, copy.id, Some(subject), None, None)?;
    }
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(email) = row.email else { continue };
        let key = RecipientKey::Email(email.clone());
        match subscriptions::status(conn, account.id, list.number, &key)? {
            Some(Status::Subscribed) => {}
            Some(_) => continue,
            None => {
                subscriptions::subscribe(
                    conn,
                    account.id,
                    &Subscribe {
                        list: list.number,
                        contact: Contact::email(email),
                        fields: row
                            .fields
                            .into_iter()
                            .map(|(number, value)| (FieldRef::Number(number), value))
                            .collect(),
                        groups: Vec::new(),
                        double_opt_in: Some(false),
                        source: "SendMessageNL".into(),
                        origin: Origin::new(Channel::MailupSoap, "MailUpSend"),
                    },
                )?;
            }
        }
        keys.push(key);
    }
    let send = sends::create_campaign(
        conn,
        account.id,
        &NewCampaign {
            message_id: message.id,
            audience: Audience::Recipients(keys),
            params: serde_json::Map::new(),
            scheduled_at: sending_time(params.text("timeDateSending"))?,
            idempotency_key: None,
        },
    )?;
    let sender = params.text("sender");
    if !sender.is_empty() {
        sends::set_sender(conn, account.id, send.id, params.text("senderName"), sender)?;
    }
    let send = sends::start(conn, account.id, send.id)?;
    Ok(send.id.to_string())
}

/// The rows of the file named `fileName` in the account's send folder. The
/// `separator` must be the file's (`;` or `|`, read from its header).
fn read_file(
    settings: &Settings,
    account: &Account,
    params: &Params,
) -> Result<Vec<crate::domain::imports::Row>> {
    let name = params.text("fileName");
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
        return Err(Error::invalid("fileName", "a file name in the send folder"));
    }
    let path = settings
        .data_dir
        .join("ftp")
        .join(account.console_id.to_string())
        .join("send")
        .join(name);
    let size = std::fs::metadata(&path)
        .map_err(|_| Error::invalid("fileName", format!("{name:?} is not in the send folder")))?
        .len();
    if size > settings.max_import_bytes as u64 {
        return Err(Error::invalid("fileName", "the file is too large"));
    }
    let bytes = std::fs::read(&path)
        .map_err(|e| Error::Unavailable(format!("reading {}: {e}", path.display())))?;
    let file = super::csv::read(&bytes).map_err(|e| Error::invalid("fileName", e.to_string()))?;
    let separator = params.text("separator");
    let header = String::from_utf8_lossy(&bytes);
    let used = if header.lines().next().unwrap_or("").contains('|') {
        "|"
    } else {
        ";"
    };
    if !separator.is_empty() && separator != used {
        return Err(Error::invalid(
            "separator",
            format!("the file is separated by {used:?}"),
        ));
    }
    for line in &file.unreadable {
        log::info!("SendMessageNL {name}: {line}");
    }
    Ok(file.rows)
}

/// `timeDateSending` (`xs:dateTime`): with an offset or `Z` as given, without
/// one Europe/Rome time as in MailUp's console; empty or past is now.
fn sending_time(text: &str) -> Result<Option<NaiveDateTime>> {
    if text.is_empty() {
        return Ok(None);
    }
    let at = match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(at) => at.naive_utc(),
        Err(_) => ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]
            .iter()
            .find_map(|f| {
                NaiveDateTime::parse_from_str(text, f).ok().or_else(|| {
                    chrono::NaiveDate::parse_from_str(text, f)
                        .ok()
                        .map(|d| d.and_time(chrono::NaiveTime::MIN))
                })
            })
            .map(super::rome_to_utc)
            .ok_or_else(|| Error::invalid("timeDateSending", "expected an xs:dateTime"))?,
    };
    Ok(Some(at).filter(|at| *at > crate::domain::now()))
}
