//! MailUpManage (`/MailupManage.asmx`): lists and groups, read and changed with
//! an access key. The list readers are shared with MailUpSend. See
//! `../shared/specs/mailup.md` §2.6 and `docs/compat/mailup.md`.

use super::ws::{self, Options, Params, Service};
use crate::config::Settings;
use crate::db::DbConnection;
use crate::domain::accounts::Account;
use crate::domain::groups::{self, Group};
use crate::domain::lists::{self, ListChanges, NewList};
use crate::domain::messages;
use crate::xml::XmlWriter;
use crate::{Error, Result};

pub static SERVICE: Service = Service {
    name: "MailupManage",
    wsdl: include_str!("../../../wsdl/MailupManage.wsdl"),
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
    Some(match operation {
        "GetLists" | "GetListsUser" => get_lists(conn, account, operation),
        "GetGroups" => get_groups(conn, account, operation, params),
        "CreateList" => create_list(conn, account, params),
        "UpdateList" => update_list(conn, account, params),
        "DeleteList" => delete_list(conn, account, params),
        "CreateGroup" => create_group(conn, account, params),
        "UpdateGroup" => update_group(conn, account, params),
        "DeleteGroup" => delete_group(conn, account, params),
        _ => return None,
    })
}

/// `lists/list` with `listID`, `listGUID`, `listName` (MLO and JOO read the
/// first and last). GetListsUser answers the same: every console user sees
/// every list of the account.
pub fn get_lists(conn: &mut DbConnection, account: &Account, operation: &str) -> Result<String> {
    let all = lists::all(conn, account.id)?;
    Ok(ws::ok(operation, |w| {
        w.open("lists", &[]);
        for list in &all {
            w.open("list", &[])
                .leaf("listID", &list.number.to_string())
                .leaf("listGUID", &list.guid)
                .leaf("listName", &list.name)
                .close();
        }
        w.close();
    }))
}

/// `groups/group` with `groupID`, `groupName`, `groupNotes`.
pub fn get_groups(
    conn: &mut DbConnection,
    account: &Account,
    operation: &str,
    params: &Params,
) -> Result<String> {
    let list = params.required_int("listID")?;
    let groups = groups::in_list(conn, account.id, list)?;
    Ok(ws::ok(operation, |w| write_groups(w, &groups)))
}

fn write_groups(w: &mut XmlWriter, groups: &[Group]) {
    w.open("groups", &[]);
    for group in groups {
        w.open("group", &[])
            .leaf("groupID", &group.number.to_string())
            .leaf("groupName", &group.name)
            .leaf("groupNotes", &group.notes)
            .close();
    }
    w.close();
}

/// The list options of CreateList and UpdateList that our lists keep. The
/// others the spec names are accepted and ignored (docs/compat/mailup.md).
fn list_changes(options: &Options) -> Result<ListChanges> {
    let double_opt_in = match options.get("optout_type") {
        None => None,
        // 1 single with confirmation, 2 single: no confirmation of
        // subscriptions; 3 double opt-in.
        Some("1" | "2") => Some(false),
        Some("3") => Some(true),
        Some(other) => {
            return Err(Error::invalid(
                "optout_type",
                format!("{other:?} is not 1, 2 or 3"),
            ));
        }
    };
    Ok(ListChanges {
        name: options.get("name").map(str::to_string),
        sender_name: options.get("nl_sendername").map(str::to_string),
        sender_email: options.get("owneremail").map(str::to_string),
        reply_to: options.get("replyto").map(str::to_string),
        double_opt_in,
        description: options.get("description").map(str::to_string),
        tracking: options.flag("tracking"),
    })
}

/// `CreateList(name, defaultSettings, copyTemplate, options)`: a new list, its
/// settings copied from `defaultSettings` when that names a list. Answers
/// `listID` and `listGUID`.
fn create_list(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let template = match params.text("defaultSettings") {
        "" => None,
        text if text.eq_ignore_ascii_case("default") => None,
        text => Some(lists::get(
            conn,
            account.id,
            text.parse()
                .map_err(|_| Error::invalid("defaultSettings", "\"default\" or a list id"))?,
        )?),
    };
    let changes = list_changes(&params.options("options"))?;
    let mut new = NewList {
        name: params.text("name").to_string(),
        ..NewList::default()
    };
    if let Some(template) = &template {
        new.sender_name = template.sender_name.clone();
        new.sender_email = template.sender_email.clone();
        new.reply_to = template.reply_to.clone();
        new.double_opt_in = template.double_opt_in;
        new.description = template.description.clone();
    }
    let list = lists::create(conn, account.id, &new)?;
    let tracking = template.as_ref().map(|t| t.tracking);
    let list = lists::update(
        conn,
        account.id,
        list.number,
        &ListChanges {
            tracking: changes.tracking.or(tracking),
            ..changes
        },
    )?;
    // `copyTemplate`: the templates of the list the settings come from are
    // copied too (with `default` there is no such list, so none).
    if let (true, Some(source)) = (params.flag("copyTemplate"), &template) {
        for original in messages::templates_in_list(conn, account.id, source.number)? {
            let copy = messages::copy_to_list(conn, account.id, original.id, list.number)?;
            messages::set_template(conn, account.id, copy.id, true)?;
        }
    }
    Ok(ws::ok("CreateList", |w| {
        w.leaf("listID", &list.number.to_string())
            .leaf("listGUID", &list.guid);
    }))
}

fn update_list(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let number = params.required_int("listID")?;
    let list = lists::update(
        conn,
        account.id,
        number,
        &list_changes(&params.options("options"))?,
    )?;
    Ok(ws::ok("UpdateList", |w| {
        w.leaf("listID", &list.number.to_string());
    }))
}

/// Answers the new group as `groups/group`, as JOO reads it.
fn create_group(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let list = params.required_int("listID")?;
    let group = groups::create(
        conn,
        account.id,
        list,
        params.text("groupName"),
        params.text("groupNotes"),
        None,
    )?;
    Ok(ws::ok("CreateGroup", |w| write_groups(w, &[group])))
}

/// Options `name` (also `groupName`) and `notes` (also `groupNotes`).
fn update_group(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let number = params.required_int("groupID")?;
    let options = params.options("options");
    let name = options.get("name").or(options.get("groupname"));
    let notes = options.get("notes").or(options.get("groupnotes"));
    let group = groups::update(conn, account.id, number, name, notes)?;
    Ok(ws::ok("UpdateGroup", |w| write_groups(w, &[group])))
}

/// `deleteUsers` is refused: members of a deleted group stay in the list.
fn delete_group(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    if params.flag("deleteUsers") {
        return Err(Error::invalid(
            "deleteUsers",
            "recipients are not deleted with their group; unsubscribe them instead",
        ));
    }
    groups::delete(
        conn,
        account.id,
        params.required_int("listID")?,
        params.required_int("groupID")?,
    )?;
    Ok(ws::ok("DeleteGroup", |_| {}))
}

fn delete_list(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let number = params.required_int("listID")?;
    lists::delete(conn, account.id, number)?;
    Ok(ws::ok("DeleteList", |w| {
        w.leaf("listID", &number.to_string());
    }))
}
