//! Groups inside a list. Group numbers are per account (as MailUp group ids are per
//! console), so a number names a group without its list.

use diesel::prelude::*;

use super::accounts::{self, Numbered};
use super::lists;
use super::now;
use crate::db::schema::{group_members, list_groups};
use crate::db::{DbConnection, backend, on_backend, write_transaction};
use crate::{Error, Result};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = list_groups)]
pub struct Group {
    pub id: i64,
    pub account_id: i64,
    pub list_id: i64,
    pub number: i64,
    pub name: String,
    pub notes: String,
    pub member_count: i64,
}

#[derive(Insertable)]
#[diesel(table_name = group_members)]
pub struct NewGroupMember {
    pub account_id: i64,
    pub group_id: i64,
    pub recipient_id: i64,
    pub created_at: chrono::NaiveDateTime,
}

/// Creates a group in the list with number `list_number`. Names are unique within
/// a list (compared case-insensitively).
pub fn create(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    name: &str,
    notes: &str,
    number: Option<i64>,
) -> Result<Group> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("group name", "must not be empty"));
    }
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, list_number)?;
        if find_by_name(conn, account_id, list_number, name)?.is_some() {
            return Err(Error::Conflict(format!(
                "group {name:?} exists in this list"
            )));
        }
        let number =
            accounts::allocate_number(conn, account_id, Numbered::Group, number, |conn, n| {
                Ok(find(conn, account_id, n)?.is_some())
            })?;
        let id: i64 = diesel::insert_into(list_groups::table)
            .values((
                list_groups::account_id.eq(account_id),
                list_groups::list_id.eq(list.id),
                list_groups::number.eq(number),
                list_groups::name.eq(name),
                list_groups::notes.eq(notes),
                list_groups::created_at.eq(now()),
            ))
            .returning(list_groups::id)
            .get_result(conn)?;
        Ok(list_groups::table
            .find(id)
            .select(Group::as_select())
            .first(conn)?)
    })
}

pub fn find(conn: &mut DbConnection, account_id: i64, number: i64) -> Result<Option<Group>> {
    Ok(on_backend!(conn, |c| list_groups::table
        .filter(list_groups::account_id.eq(account_id))
        .filter(list_groups::number.eq(number))
        .select(Group::as_select())
        .first(c)
        .optional())?)
}

pub fn find_by_name(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    name: &str,
) -> Result<Option<Group>> {
    let wanted = name.trim().to_lowercase();
    Ok(in_list(conn, account_id, list_number)?
        .into_iter()
        .find(|g| g.name.to_lowercase() == wanted))
}

/// The groups of a list, by number.
pub fn in_list(conn: &mut DbConnection, account_id: i64, list_number: i64) -> Result<Vec<Group>> {
    let list = lists::get(conn, account_id, list_number)?;
    of_list(conn, account_id, list.id)
}

/// The groups of the list with row id `list_id`, by number.
pub(crate) fn of_list(
    conn: &mut DbConnection,
    account_id: i64,
    list_id: i64,
) -> Result<Vec<Group>> {
    Ok(list_groups::table
        .filter(list_groups::account_id.eq(account_id))
        .filter(list_groups::list_id.eq(list_id))
        .order(list_groups::number)
        .select(Group::as_select())
        .load(conn)?)
}

/// Renames a group or changes its notes (`None` keeps the value). Names stay
/// unique within the list.
pub fn update(
    conn: &mut DbConnection,
    account_id: i64,
    number: i64,
    name: Option<&str>,
    notes: Option<&str>,
) -> Result<Group> {
    write_transaction(conn, |conn| {
        let group = find(conn, account_id, number)?.ok_or(Error::NotFound("group"))?;
        let name = match name.map(str::trim) {
            Some("") => return Err(Error::invalid("group name", "must not be empty")),
            Some(name) => {
                let list = lists::by_id(conn, account_id, group.list_id)?;
                if find_by_name(conn, account_id, list.number, name)?
                    .is_some_and(|other| other.id != group.id)
                {
                    return Err(Error::Conflict(format!(
                        "group {name:?} exists in this list"
                    )));
                }
                name.to_string()
            }
            None => group.name.clone(),
        };
        diesel::update(list_groups::table.find(group.id))
            .set((
                list_groups::name.eq(&name),
                list_groups::notes.eq(notes.unwrap_or(&group.notes)),
            ))
            .execute(conn)?;
        Ok(list_groups::table
            .find(group.id)
            .select(Group::as_select())
            .first(conn)?)
    })
}

/// Deletes a group of the list; its members stay in the list (their
/// memberships go with the group).
pub fn delete(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    number: i64,
) -> Result<()> {
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, list_number)?;
        let group = find(conn, account_id, number)?
            .filter(|g| g.list_id == list.id)
            .ok_or(Error::NotFound("group"))?;
        diesel::delete(
            group_members::table
                .filter(group_members::account_id.eq(account_id))
                .filter(group_members::group_id.eq(group.id)),
        )
        .execute(conn)?;
        diesel::delete(list_groups::table.find(group.id)).execute(conn)?;
        Ok(())
    })
}

/// Resolves group numbers that must all belong to the list with row id `list_id`.
pub(crate) fn resolve_in_list(
    conn: &mut DbConnection,
    account_id: i64,
    list_id: i64,
    numbers: &[i64],
) -> Result<Vec<Group>> {
    let mut groups = Vec::with_capacity(numbers.len());
    for &number in numbers {
        match find(conn, account_id, number)? {
            Some(group) if group.list_id == list_id => groups.push(group),
            Some(_) => {
                return Err(Error::invalid(
                    "group",
                    format!("group {number} belongs to another list"),
                ));
            }
            None => return Err(Error::NotFound("group")),
        }
    }
    Ok(groups)
}

/// Adds the recipient to the group (no-op if a member), keeping the count.
pub(crate) fn add_member(
    conn: &mut DbConnection,
    group: &Group,
    recipient_id: i64,
) -> Result<bool> {
    let added = backend::insert_group_member_if_absent(
        conn,
        &NewGroupMember {
            account_id: group.account_id,
            group_id: group.id,
            recipient_id,
            created_at: now(),
        },
    )?;
    if added {
        adjust_count(conn, group.id, 1)?;
    }
    Ok(added)
}

/// Removes the recipient from the group (no-op if not a member), keeping the count.
pub(crate) fn remove_member(
    conn: &mut DbConnection,
    account_id: i64,
    group_id: i64,
    recipient_id: i64,
) -> Result<bool> {
    let removed = diesel::delete(
        group_members::table
            .filter(group_members::account_id.eq(account_id))
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::recipient_id.eq(recipient_id)),
    )
    .execute(conn)?;
    if removed > 0 {
        adjust_count(conn, group_id, -1)?;
    }
    Ok(removed > 0)
}

pub(crate) fn adjust_count(conn: &mut DbConnection, group_id: i64, delta: i64) -> Result<()> {
    diesel::update(list_groups::table.find(group_id))
        .set(list_groups::member_count.eq(list_groups::member_count + delta))
        .execute(conn)?;
    Ok(())
}

/// The numbers of the groups of list `list_id` the recipient belongs to.
pub fn memberships(
    conn: &mut DbConnection,
    account_id: i64,
    list_id: i64,
    recipient_id: i64,
) -> Result<Vec<Group>> {
    Ok(list_groups::table
        .inner_join(group_members::table)
        .filter(list_groups::account_id.eq(account_id))
        .filter(list_groups::list_id.eq(list_id))
        .filter(group_members::recipient_id.eq(recipient_id))
        .order(list_groups::number)
        .select(Group::as_select())
        .load(conn)?)
}

/// Every group (of any list) the recipient belongs to.
pub(crate) fn all_memberships(
    conn: &mut DbConnection,
    account_id: i64,
    recipient_id: i64,
) -> Result<Vec<i64>> {
    Ok(group_members::table
        .filter(group_members::account_id.eq(account_id))
        .filter(group_members::recipient_id.eq(recipient_id))
        .select(group_members::group_id)
        .load(conn)?)
}
