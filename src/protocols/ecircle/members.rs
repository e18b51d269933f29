//! Members: a user's subscription to a group (our list), named
//! `<userId>g<groupId>`. A member is active when subscribed, inactive while a
//! confirmation is pending; an unsubscribed user is no member at all.

use super::documents::{self, UserData};
use super::params::Params;
use super::session::Caller;
use super::users;
use super::{EcmFault, Failure, Outcome, Return};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::recipients::{Contact, Mobile, Recipient, RecipientKey};
use crate::domain::subscriptions::{self, Status, Subscribe, UnsubscribeReason, Unsubscribed};
use crate::domain::{confirmations, lists, notices};

/// The group (list) number a parameter names; an unusable one is a
/// permission problem, as eC-M answers for groups it does not know.
fn group_param(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    names: &[&str],
) -> std::result::Result<i64, Failure> {
    let number = names
        .iter()
        .find_map(|n| p.id(n))
        .ok_or_else(EcmFault::permission)?;
    lists::find(conn, caller.account_id, number)?.ok_or_else(EcmFault::permission)?;
    Ok(number)
}

/// The mails a new membership brings (the `invite` and `sendMessage` flags).
#[derive(Debug, Clone, Copy)]
struct Mails {
    /// The membership waits for the double opt-in confirmation, whose link is
    /// mailed (the confirmation flow of every protocol).
    invite: bool,
    /// A member subscribed directly gets the group's welcome mail.
    welcome: bool,
}

impl Mails {
    fn of(p: &Params) -> Mails {
        Mails {
            invite: p.flag("invite"),
            welcome: p.flag("sendMessage"),
        }
    }
}

fn subscribe(
    conn: &mut DbConnection,
    caller: &Caller,
    group: i64,
    recipient: &Recipient,
    mails: Mails,
) -> std::result::Result<String, Failure> {
    let contact = match &recipient.email {
        Some(email) => Contact::email(email.clone()),
        None => Contact {
            email: None,
            mobile: recipient.mobile_key.clone().map(Mobile::new),
        },
    };
    // Only a mailbox can confirm: a mobile-only user joins directly.
    let invite = mails.invite && contact.email.is_some();
    let subscribed = subscriptions::subscribe(
        conn,
        caller.account_id,
        &Subscribe {
            list: group,
            contact,
            fields: Vec::new(),
            groups: Vec::new(),
            double_opt_in: Some(invite),
            source: "ecircle".into(),
            origin: caller.origin.clone(),
        },
    )?;
    let member = RecipientKey::Id(subscribed.recipient_id);
    let list = lists::get(conn, caller.account_id, group)?;
    if let Some(token) = subscribed.confirmation_token.clone() {
        confirmations::enqueue(
            conn,
            &caller.links.signer,
            caller.account_id,
            &confirmations::Request {
                list: &list,
                recipient: member,
                tokens: vec![token],
                sender: None,
                confirm_page: &caller.links.confirm_page,
            },
        )?;
    } else if mails.welcome
        && recipient.email.is_some()
        && subscribed.status == Status::Subscribed
        && !subscribed.was_already_subscribed()
    {
        notices::welcome(conn, caller.account_id, &list, member)?;
    }
    Ok(documents::member_id(subscribed.recipient_id, group))
}

/// `createMember(userId, groupId, invite, sendMessage)`: the member id.
pub fn create(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let recipient = users::by_id_param(conn, caller, p, "userId")?;
    let group = group_param(conn, caller, p, &["groupId"])?;
    Ok(Return::Text(subscribe(
        conn,
        caller,
        group,
        &recipient,
        Mails::of(p),
    )?))
}

/// `subscribeMemberByEmail(email, groupId, sendMessage)`: the user is created
/// if new; the member id is answered.
pub fn subscribe_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let email = p.required("email")?;
    let group = group_param(conn, caller, p, &["groupId"])?;
    let (recipient, _) =
        crate::domain::recipients::find_or_create(conn, caller.account_id, &Contact::email(email))?;
    Ok(Return::Text(subscribe(
        conn,
        caller,
        group,
        &recipient,
        Mails::of(p),
    )?))
}

/// `createOrUpdateUserMemberByEmail(memberXml, groupId, sendMessage)`: the
/// document (`<member>` or `<user>`) creates or updates the user, who then
/// joins the group; the member id is answered.
pub fn create_or_update_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let document = users::document_param(p, &["memberXml", "userXml"])?;
    if document.email.is_none() {
        return Err(EcmFault::invalid("the member document has no email").into());
    }
    let recipient = users::create_or_update(conn, caller, &document)?;
    // Checked after the user is written: an unknown group undoes it.
    let group = group_param(conn, caller, p, &["groupId"])?;
    Ok(Return::Text(subscribe(
        conn,
        caller,
        group,
        &recipient,
        Mails::of(p),
    )?))
}

/// The member an id names: its user and group, if the user is on the group.
fn member_by_id(
    conn: &mut DbConnection,
    caller: &Caller,
    member_id: Option<&str>,
) -> Result<Option<(Recipient, i64, Status)>> {
    let Some((user_id, group)) = member_id.and_then(documents::split_member_id) else {
        return Ok(None);
    };
    let Some(recipient) = users::find(conn, caller, &RecipientKey::Id(user_id))? else {
        return Ok(None);
    };
    if lists::find(conn, caller.account_id, group)?.is_none() {
        return Ok(None);
    }
    let status = subscriptions::status(
        conn,
        caller.account_id,
        group,
        &RecipientKey::Id(recipient.id),
    )?;
    Ok(match status {
        Some(status @ (Status::Subscribed | Status::Pending)) => Some((recipient, group, status)),
        _ => None,
    })
}

/// `updateMember(memberXmlSpec)`: the member's user gets the document's values.
pub fn update(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let document = users::document_param(p, &["memberXmlSpec", "memberXml"])?;
    let (recipient, _, _) =
        member_by_id(conn, caller, document.id.as_deref())?.ok_or_else(EcmFault::no_member)?;
    users::apply_values(conn, caller, recipient.id, &document)?;
    Ok(Return::Bool(true))
}

/// `deleteMember(memberId)`: the user leaves the group.
pub fn delete(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let (recipient, group, _) =
        member_by_id(conn, caller, p.text("memberId"))?.ok_or_else(EcmFault::no_member)?;
    subscriptions::unsubscribe(
        conn,
        caller.account_id,
        group,
        &RecipientKey::Id(recipient.id),
        UnsubscribeReason::AdminConsole,
        &caller.origin,
    )?;
    Ok(Return::Bool(true))
}

/// `unsubscribeMemberByEmail(email, groupId, sendMessage)`: whether the user
/// was a member and is no longer.
pub fn unsubscribe_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_param(conn, caller, p, &["groupId"])?;
    let Some(recipient) = p
        .text("email")
        .map(|e| users::find(conn, caller, &RecipientKey::Email(e.into())))
        .transpose()?
        .flatten()
    else {
        return Ok(Return::Bool(false));
    };
    let outcome = subscriptions::unsubscribe(
        conn,
        caller.account_id,
        group,
        &RecipientKey::Id(recipient.id),
        UnsubscribeReason::AdminConsole,
        &caller.origin,
    )?;
    Ok(Return::Bool(matches!(outcome, Unsubscribed::Done { .. })))
}

fn member_answer(
    conn: &mut DbConnection,
    caller: &Caller,
    group: i64,
    recipient: Option<Recipient>,
    only_active: bool,
) -> Outcome {
    let Some(recipient) = recipient else {
        return Ok(Return::Nil);
    };
    let status = subscriptions::status(
        conn,
        caller.account_id,
        group,
        &RecipientKey::Id(recipient.id),
    )?;
    let visible = match status {
        Some(Status::Subscribed) => true,
        Some(Status::Pending) => !only_active,
        _ => false,
    };
    if !visible {
        return Ok(Return::Nil);
    }
    let values = users::data(conn, caller, &recipient)?;
    Ok(Return::Text(documents::member(
        &documents::member_id(recipient.id, group),
        &UserData {
            email: recipient.email.as_deref(),
            mobile: recipient.mobile_key.as_deref(),
            fields: &values,
        },
    )))
}

/// `lookupMemberByEmail(groupId, email)` and `…_v2_0(…, onlyActive)`.
pub fn lookup_by_email(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    only_active_param: bool,
) -> Outcome {
    let group = group_param(conn, caller, p, &["groupId"])?;
    let recipient = match p.text("email") {
        Some(email) => users::find(conn, caller, &RecipientKey::Email(email.into()))?,
        None => None,
    };
    member_answer(
        conn,
        caller,
        group,
        recipient,
        only_active_param && p.flag("onlyActive"),
    )
}

/// `lookupMemberById(memberid)` and `…_v2_0(memberid, onlyActive)`.
pub fn lookup_by_id(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    only_active_param: bool,
) -> Outcome {
    let Some((recipient, group, _)) = member_by_id(conn, caller, p.text("memberid"))? else {
        return Ok(Return::Nil);
    };
    member_answer(
        conn,
        caller,
        group,
        Some(recipient),
        only_active_param && p.flag("onlyActive"),
    )
}

/// `lookupMemberByUserId(groupid, userId)` and `…_v2_0(…, onlyActive)`.
pub fn lookup_by_user_id(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    only_active_param: bool,
) -> Outcome {
    let group = group_param(conn, caller, p, &["groupid"])?;
    let recipient = match p.id("userId") {
        Some(id) => users::find(conn, caller, &RecipientKey::Id(id))?,
        None => None,
    };
    member_answer(
        conn,
        caller,
        group,
        recipient,
        only_active_param && p.flag("onlyActive"),
    )
}

/// `lookupMemberByMobileNumber(groupId, mobile, onlyActive)`.
pub fn lookup_by_mobile(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_param(conn, caller, p, &["groupId"])?;
    let recipient = match p.text("mobile") {
        Some(mobile) => users::find(conn, caller, &RecipientKey::Mobile(Mobile::new(mobile)))?,
        None => None,
    };
    member_answer(conn, caller, group, recipient, p.flag("onlyActive"))
}

/// `lookupMemberByIdentifier(groupId, identifier, onlyActive)`.
pub fn lookup_by_identifier(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_param(conn, caller, p, &["groupId"])?;
    let recipient = users::by_field(conn, caller, p, "identifier", "identifier")?;
    member_answer(conn, caller, group, recipient, p.flag("onlyActive"))
}

/// The member a group and user parameter name, or "No Member Id".
pub fn member_of(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    group_names: &[&str],
) -> std::result::Result<(Recipient, i64), Failure> {
    let group = group_param(conn, caller, p, group_names)?;
    let recipient = users::by_id_param(conn, caller, p, "userId")?;
    let status = subscriptions::status(
        conn,
        caller.account_id,
        group,
        &RecipientKey::Id(recipient.id),
    )?;
    match status {
        Some(Status::Subscribed | Status::Pending) => Ok((recipient, group)),
        _ => Err(EcmFault::no_member().into()),
    }
}

/// `findMembershipsByEmail(email)`: the ids of the groups the user is a
/// member of (subscribed or pending).
pub fn find_memberships_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let Some(recipient) = p
        .text("email")
        .map(|e| users::find(conn, caller, &RecipientKey::Email(e.into())))
        .transpose()?
        .flatten()
    else {
        return Ok(Return::Texts(Vec::new()));
    };
    let mut groups = Vec::new();
    for (number, subscription) in
        subscriptions::of_recipient(conn, caller.account_id, recipient.id)?
    {
        if subscription.status()? != Status::Unsubscribed {
            groups.push(number.to_string());
        }
    }
    Ok(Return::Texts(groups))
}
