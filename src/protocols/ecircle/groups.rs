//! Groups: eCircle's groups are our lists, their id the list number.

use super::documents;
use super::params::Params;
use super::session::Caller;
use super::{EcmFault, Failure, Outcome, Return};
use crate::db::DbConnection;
use crate::domain::list_decorations::{self, DecorationChanges};
use crate::domain::lists::{self, List, NewList};
use crate::domain::{list_blocklist, list_properties};
use crate::xml::tree::{self, Limits};

/// A group document is small.
const GROUP_LIMITS: Limits = Limits {
    max_bytes: 64 * 1024,
    max_depth: 8,
    max_elements: 200,
};

/// Largest page `lookupGroups` answers.
const MAX_BATCH: usize = 500;

/// `lookupGroups(lookupParams)`: `GroupCore` of the account's groups whose name
/// contains `groupName` (all when empty), sorted by `sortProperty` (`name`,
/// else the id), a batch at a time.
pub fn lookup(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let lookup = p.child("lookupParams");
    let param = |name: &str| {
        lookup
            .and_then(|l| l.child_text(name))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let name = param("groupName").map(str::to_lowercase);
    let mut groups: Vec<List> = lists::all(conn, caller.account_id)?
        .into_iter()
        .filter(|l| {
            name.as_deref()
                .is_none_or(|n| l.name.to_lowercase().contains(n))
        })
        .collect();
    if param("sortProperty").is_some_and(|s| s.eq_ignore_ascii_case("name")) {
        groups.sort_by_key(|l| l.name.to_lowercase());
    } else {
        groups.sort_by_key(|l| l.number);
    }
    if param("sortAscending").is_some_and(|s| s.eq_ignore_ascii_case("false") || s == "0") {
        groups.reverse();
    }
    let offset: usize = param("batchOffset")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let size: usize = param("batchSize")
        .and_then(|t| t.parse().ok())
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH);
    Ok(Return::Records(
        groups
            .iter()
            .skip(offset)
            .take(size)
            .map(group_core)
            .collect(),
    ))
}

fn group_core(list: &List) -> Vec<(&'static str, Option<String>)> {
    let zero = || Some("0".to_string());
    vec![
        ("ISOCountryCode", None),
        ("ISOLanguageCode", None),
        ("archived", Some("false".into())),
        ("categoryId", None),
        ("creationDate", None),
        ("description", Some(list.description.clone())),
        (
            "email",
            Some(list.sender_email.clone()).filter(|e| !e.is_empty()),
        ),
        ("id", Some(list.number.to_string())),
        ("name", Some(list.name.clone())),
        ("noOfBouncedMembers", zero()),
        ("noOfMembers", Some(list.subscribed_count.to_string())),
        ("noOfMessages", zero()),
        ("noOfModMembers", zero()),
        ("noOfModMessages", zero()),
        ("ownerEmail", None),
        ("ownerFirstname", None),
        ("ownerLastname", None),
        ("ownerPK", None),
    ]
}

/// `getGroupId(email)`: the group whose address (our list's sender address)
/// this is; nil when none.
pub fn id_by_email(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let Some(email) = p.text("email") else {
        return Ok(Return::Nil);
    };
    Ok(lists::all(conn, caller.account_id)?
        .into_iter()
        .find(|l| l.sender_email.eq_ignore_ascii_case(email))
        .map_or(Return::Nil, |l| Return::Text(l.number.to_string())))
}

/// The group a parameter names; unknown or unusable is eC-M's permission fault.
fn group_number(
    conn: &mut DbConnection,
    caller: &Caller,
    p: &Params,
    name: &str,
) -> std::result::Result<i64, Failure> {
    let number = p.id(name).ok_or_else(EcmFault::permission)?;
    lists::find(conn, caller.account_id, number)?.ok_or_else(EcmFault::permission)?;
    Ok(number)
}

/// `addToBlacklist(groupId, email)`: the address may no longer join the group
/// (and leaves it); whether it was not barred yet.
pub fn add_to_blacklist(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_number(conn, caller, p, "groupId")?;
    let email = p.required("email")?;
    Ok(Return::Bool(list_blocklist::add(
        conn,
        caller.account_id,
        group,
        email,
        &caller.origin,
    )?))
}

/// `removeFromBlacklist(groupId, email)`: whether a bar was lifted.
pub fn remove_from_blacklist(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_number(conn, caller, p, "groupId")?;
    let email = p.required("email")?;
    Ok(Return::Bool(list_blocklist::remove(
        conn,
        caller.account_id,
        group,
        email,
    )?))
}

/// `setGroupProperty(gid, name, value)`.
pub fn set_property(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_number(conn, caller, p, "gid")?;
    let name = p.required("name")?;
    list_properties::set(
        conn,
        caller.account_id,
        group,
        name,
        p.raw("value").unwrap_or(""),
    )?;
    Ok(Return::Nothing)
}

/// `getGroupProperty(gid, name)`: the value, nil when not set.
pub fn get_property(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_number(conn, caller, p, "gid")?;
    let name = p.required("name")?;
    Ok(list_properties::get(conn, caller.account_id, group, name)?
        .map_or(Return::Nil, Return::Text))
}

/// `createOrUpdateGroup(groupXML)`: `<group group-id="new|<id>">` with `name`,
/// `description` and `email-channel/email` (the group's address, our list's
/// sender address); the group's id.
pub fn create_or_update(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let element = p
        .child("groupXML")
        .ok_or_else(|| EcmFault::invalid("groupXML is missing"))?;
    let root = tree::parse_str(documents::document_text(element).trim(), &GROUP_LIMITS)
        .map_err(|e| EcmFault::invalid(format!("group document: {e}")))?;
    if !root.name.eq_ignore_ascii_case("group") {
        return Err(
            EcmFault::invalid(format!("group document: root element <{}>", root.name)).into(),
        );
    }
    let text = |e: Option<&crate::xml::Element>| e.map(|e| e.text.trim().to_string());
    let name = text(root.child("name"));
    let description = text(root.child("description"));
    let email = text(root.child("email-channel").and_then(|c| c.child("email")))
        .filter(|e| !e.is_empty())
        .map(|e| crate::domain::recipients::checked_email(&e))
        .transpose()?;
    let id = root.attribute("group-id").map(str::trim).unwrap_or("new");
    let list = if id.is_empty() || id.eq_ignore_ascii_case("new") {
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| EcmFault::invalid("the group has no name"))?;
        lists::create(
            conn,
            caller.account_id,
            &NewList {
                name,
                description: description.unwrap_or_default(),
                sender_email: email.unwrap_or_default(),
                // eCircle subscribes members directly unless told otherwise.
                double_opt_in: false,
                ..NewList::default()
            },
        )?
    } else {
        let number = id.parse().map_err(|_| EcmFault::permission())?;
        lists::find(conn, caller.account_id, number)?.ok_or_else(EcmFault::permission)?;
        lists::update(
            conn,
            caller.account_id,
            number,
            &lists::ListChanges {
                name: name.filter(|n| !n.is_empty()),
                description,
                sender_email: email,
                ..lists::ListChanges::default()
            },
        )?
    };
    Ok(Return::Text(list.number.to_string()))
}

/// `cloneGroup(templateGroupId, newGroupEmail, newGroupName, keepOwner)`: a new
/// group with the template's settings (not its members); its id.
pub fn clone(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let template = group_number(conn, caller, p, "templateGroupId")?;
    let template = lists::get(conn, caller.account_id, template)?;
    let name = p.required("newGroupName")?;
    let email = match p.text("newGroupEmail") {
        Some(email) => crate::domain::recipients::checked_email(email)?,
        None => String::new(),
    };
    let list = lists::create(
        conn,
        caller.account_id,
        &NewList {
            name: name.to_string(),
            sender_name: template.sender_name.clone(),
            sender_email: email,
            reply_to: template.reply_to.clone(),
            double_opt_in: template.double_opt_in,
            description: template.description.clone(),
            ..NewList::default()
        },
    )?;
    let decoration = list_decorations::get(conn, caller.account_id, template.id)?;
    list_decorations::set(conn, caller.account_id, list.id, &decoration)?;
    if !template.tracking {
        let untracked = lists::ListChanges {
            tracking: Some(false),
            ..lists::ListChanges::default()
        };
        lists::update(conn, caller.account_id, list.number, &untracked)?;
    }
    Ok(Return::Text(list.number.to_string()))
}

/// `changeGroupSettings(groupId, description, prefix, textFooter, textHeader,
/// htmlFooter, htmlHeader)`: the group's description, and the subject prefix,
/// headers and footers every message sent to the group gets from now on. A
/// parameter left out or nil keeps its setting; an empty one clears it.
pub fn change_settings(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let group = group_number(conn, caller, p, "groupId")?;
    let own = |name: &str| p.setting(name).map(str::to_string);
    if let Some(description) = own("description") {
        let changes = lists::ListChanges {
            description: Some(description),
            ..lists::ListChanges::default()
        };
        lists::update(conn, caller.account_id, group, &changes)?;
    }
    list_decorations::change(
        conn,
        caller.account_id,
        group,
        &DecorationChanges {
            subject_prefix: own("prefix"),
            text_header: own("textHeader"),
            text_footer: own("textFooter"),
            html_header: own("htmlHeader"),
            html_footer: own("htmlFooter"),
        },
    )?;
    Ok(Return::Nothing)
}

/// `deleteGroup(groupId)`: the group with its memberships. One client sends
/// the id as `memberId`.
pub fn delete(conn: &mut DbConnection, caller: &Caller, p: &Params) -> Outcome {
    let name = if p.text("groupId").is_some() {
        "groupId"
    } else {
        "memberId"
    };
    let group = group_number(conn, caller, p, name)?;
    lists::delete(conn, caller.account_id, group)?;
    Ok(Return::Bool(true))
}
