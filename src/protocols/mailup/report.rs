//! MailUpReport (`/MailupReport.asmx`): opens and clicks per message
//! (ReportByMessage) and one recipient's status, bounces, opens, clicks and
//! fields (ReportByUser), each in English (`…EN`) and Italian, from the event
//! store. Opens and clicks by machines (link scanners, image proxies) and
//! those of recipients since unsubscribed from the list are left out. See `../shared/specs/mailup.md` §2.7 and `docs/compat/mailup.md`.

use std::collections::BTreeMap;

use super::ws::{self, Params, Service};
use crate::Result;
use crate::config::Settings;
use crate::db::DbConnection;
use crate::domain::accounts::Account;
use crate::domain::events::{self, Event, Filter};
use crate::domain::lists;
use crate::domain::messages::{self, Message, MessageKind};
use crate::domain::recipients::{self, RecipientKey};
use crate::domain::sends;
use crate::domain::subscriptions::{self, Status};
use crate::xml::XmlWriter;

pub static SERVICE: Service = Service {
    name: "MailupReport",
    wsdl: include_str!("../../../wsdl/MailupReport.wsdl"),
    legacy: &[],
    call,
};

fn call(
    conn: &mut DbConnection,
    _settings: &Settings,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Option<Result<String>> {
    let language = if operation.ends_with("EN") {
        Language::English
    } else {
        Language::Italian
    };
    Some(match operation {
        "ReportByMessage" | "ReportByMessageEN" => {
            by_message(conn, account, operation, language, params)
        }
        "ReportByUser" | "ReportByUserEN" => by_user(conn, account, operation, language, params),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Language {
    English,
    Italian,
}

impl Language {
    /// The word for each English term of the reports.
    fn word(self, english: &'static str) -> &'static str {
        if self == Language::English {
            return english;
        }
        match english {
            "Total" => "Totale",
            "Channels" => "Canali",
            "RegularMail" => "Posta",
            "Voice" => "Voce",
            "Subscribed" => "Iscritto",
            "Unsubscribed" => "Disiscritto",
            "Pending" => "In attesa",
            "Not Registered" => "Non Registrato",
            "DateTime" => "DataOra",
            "MessageID" => "IDMessaggio",
            "Subject" => "Oggetto",
            "PersonalDataFields" => "CampiAnagrafici",
            "Field" => "campo",
            "Value" => "Valore",
            other => other,
        }
    }
}

/// The messages a report covers: `messageID`, or every e-mail of the list when 0.
fn messages_of(
    conn: &mut DbConnection,
    account: &Account,
    list: i64,
    message: i64,
) -> Result<Vec<Message>> {
    let all = messages::in_list(conn, account.id, list, MessageKind::Email)?;
    if message == 0 {
        return Ok(all);
    }
    match all.into_iter().find(|m| m.id == message) {
        Some(found) => Ok(vec![found]),
        None => Err(crate::Error::NotFound("message")),
    }
}

const PAGE: i64 = 5_000;

/// Human opens and clicks of the messages' sends, optionally of one recipient.
fn activity(
    conn: &mut DbConnection,
    account: &Account,
    messages: &[Message],
    recipient_id: Option<i64>,
) -> Result<Vec<(Event, i64)>> {
    let mut found = Vec::new();
    for message in messages {
        for send in sends::of_message(conn, account.id, message.id)? {
            let filter = Filter {
                send_id: Some(send.id),
                recipient_id,
                kinds: vec!["opened".into(), "clicked".into()],
                ..Filter::default()
            };
            let mut after = 0;
            loop {
                let page = events::list(conn, account.id, &filter, after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                let full = page.len() as i64 == PAGE;
                found.extend(
                    page.into_iter()
                        .filter(|e| !e.machine)
                        .map(|e| (e, message.id)),
                );
                if !full {
                    break;
                }
            }
        }
    }
    Ok(found)
}

/// `Clicks Url Total` (one per URL) with `Click Email Total`, then
/// `Opens Total` with `Open Email Total`.
fn by_message(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    language: Language,
    params: &Params,
) -> Result<String> {
    let list = params.required_int("listID")?;
    let messages = messages_of(conn, account, list, params.int("messageID").unwrap_or(0))?;
    // Recipients reported (their address) or left out (`None`: unsubscribed
    // from the list since).
    let mut emails: BTreeMap<i64, Option<String>> = BTreeMap::new();
    let mut clicks: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    let mut opens: BTreeMap<i64, i64> = BTreeMap::new();
    for (event, _) in activity(conn, account, &messages, None)? {
        let Some(recipient) = event.recipient_id else {
            continue;
        };
        if let std::collections::btree_map::Entry::Vacant(slot) = emails.entry(recipient) {
            let key = RecipientKey::Id(recipient);
            let unsubscribed =
                subscriptions::status(conn, account.id, list, &key)? == Some(Status::Unsubscribed);
            let email = recipients::find(conn, account.id, &key)?
                .and_then(|r| r.email)
                .unwrap_or_default();
            slot.insert((!unsubscribed).then_some(email));
        }
        if emails[&recipient].is_none() {
            continue;
        }
        if event.kind == "clicked" {
            *clicks
                .entry(event.url.unwrap_or_default())
                .or_default()
                .entry(recipient)
                .or_default() += 1;
        } else {
            *opens.entry(recipient).or_default() += 1;
        }
    }
    let total = language.word("Total");
    Ok(ws::ok(operation, |w| {
        for (url, by_recipient) in &clicks {
            let sum: i64 = by_recipient.values().sum();
            w.open("Clicks", &[("Url", url), (total, &sum.to_string())]);
            for (recipient, count) in by_recipient {
                w.empty(
                    "Click",
                    &[
                        ("Email", emails[recipient].as_deref().unwrap_or("")),
                        (total, &count.to_string()),
                    ],
                );
            }
            w.close();
        }
        let sum: i64 = opens.values().sum();
        w.open("Opens", &[(total, &sum.to_string())]);
        for (recipient, count) in &opens {
            w.empty(
                "Open",
                &[
                    ("Email", emails[recipient].as_deref().unwrap_or("")),
                    (total, &count.to_string()),
                ],
            );
        }
        w.close();
    }))
}

/// One recipient: `Channels/Email` and `SMS` status on the list (the other
/// channels `Not Registered`), `Bounce` (last bounce), `Clicks` and `Opens`
/// with each hit, `PersonalDataFields`. An unsubscribed recipient gets no
/// statistics.
fn by_user(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    language: Language,
    params: &Params,
) -> Result<String> {
    let list = params.required_int("listID")?;
    lists::get(conn, account.id, list)?;
    let key = RecipientKey::Email(params.text("email").to_string());
    let recipient = recipients::get(conn, account.id, &key)?;
    let status = subscriptions::status(conn, account.id, list, &key)?;
    let status_word = language.word(match status {
        Some(Status::Subscribed) => "Subscribed",
        Some(Status::Unsubscribed) => "Unsubscribed",
        Some(Status::Pending) => "Pending",
        None => "Not Registered",
    });
    let sms_word = if recipient.mobile_key.is_some() {
        status_word
    } else {
        language.word("Not Registered")
    };
    let messages = messages_of(conn, account, list, params.int("messageID").unwrap_or(0))?;
    let hits = if status == Some(Status::Unsubscribed) {
        Vec::new()
    } else {
        activity(conn, account, &messages, Some(recipient.id))?
    };
    let bounce = events::list(
        conn,
        account.id,
        &Filter {
            recipient_id: Some(recipient.id),
            kinds: vec![
                "bounced".into(),
                "bounced_hard".into(),
                "bounced_soft".into(),
            ],
            ..Filter::default()
        },
        0,
        10_000,
    )?
    .last()
    .map(|e| super::console_time(e.created_at))
    .unwrap_or_default();
    let fields = recipients::field_values(conn, account.id, recipient.id)?;
    let subjects: BTreeMap<i64, &str> = messages
        .iter()
        .map(|m| (m.id, m.subject.as_str()))
        .collect();
    let word = |english| language.word(english);
    Ok(ws::ok(operation, |w| {
        w.open(word("Channels"), &[])
            .leaf("Email", status_word)
            .leaf("SMS", sms_word)
            .leaf(word("RegularMail"), word("Not Registered"))
            .leaf(word("Voice"), word("Not Registered"))
            .leaf("Fax", word("Not Registered"))
            .close();
        w.leaf("Bounce", &bounce);
        let write_hits = |w: &mut XmlWriter, kind: &str, element: &str, list_element: &str| {
            let chosen: Vec<&(Event, i64)> = hits.iter().filter(|(e, _)| e.kind == kind).collect();
            let mut by_url: BTreeMap<&str, Vec<&(Event, i64)>> = BTreeMap::new();
            if kind == "clicked" {
                for hit in &chosen {
                    by_url
                        .entry(hit.0.url.as_deref().unwrap_or(""))
                        .or_default()
                        .push(hit);
                }
            } else {
                by_url.insert("", chosen.clone());
            }
            for (url, hits) in by_url {
                let total = hits.len().to_string();
                let mut attributes = vec![(word("Total"), total.as_str())];
                if kind == "clicked" {
                    attributes.insert(0, ("Url", url));
                }
                w.open(list_element, &attributes);
                for (event, message) in hits {
                    w.empty(
                        element,
                        &[
                            (word("DateTime"), &super::console_time(event.created_at)),
                            ("IP", event.ip.as_deref().unwrap_or("")),
                            (word("MessageID"), &message.to_string()),
                            (
                                word("Subject"),
                                subjects.get(message).copied().unwrap_or(""),
                            ),
                        ],
                    );
                }
                w.close();
            }
        };
        write_hits(w, "clicked", "Click", "Clicks");
        write_hits(w, "opened", "Open", "Opens");
        w.open(word("PersonalDataFields"), &[]);
        for (number, value) in &fields {
            w.empty(
                word("Field"),
                &[("Id", &number.to_string()), (word("Value"), value)],
            );
        }
        w.close();
    }))
}
