//! Groups: eCircle's groups are our lists, their id the list number.

use super::params::Params;
use super::session::Caller;
use super::{EcmFault, Failure, Outcome, Return};
use crate::db::DbConnection;
use crate::domain::lists::{self, List};
use crate::domain::{list_blocklist, list_properties};

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
