//! Named free-form properties of a list (eCircle's group properties), set and
//! read by integrations; espbridge itself gives them no meaning.

use diesel::prelude::*;

use super::lists;
use crate::db::schema::list_properties;
use crate::db::{DbConnection, write_transaction};
use crate::{Error, Result};

const MAX_NAME: usize = 200;
const MAX_VALUE: usize = 64 * 1024;

/// Sets (replaces) a property of list `list_number`.
pub fn set(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    name: &str,
    value: &str,
) -> Result<()> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Error::invalid(
            "property name",
            "must have 1 to 200 characters",
        ));
    }
    if value.len() > MAX_VALUE {
        return Err(Error::invalid("property value", "longer than 64 KiB"));
    }
    write_transaction(conn, |conn| {
        let list = lists::get(conn, account_id, list_number)?;
        diesel::delete(
            list_properties::table
                .filter(list_properties::list_id.eq(list.id))
                .filter(list_properties::name.eq(name)),
        )
        .execute(conn)?;
        diesel::insert_into(list_properties::table)
            .values((
                list_properties::account_id.eq(account_id),
                list_properties::list_id.eq(list.id),
                list_properties::name.eq(name),
                list_properties::value.eq(value),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// A property of list `list_number`, if set.
pub fn get(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    name: &str,
) -> Result<Option<String>> {
    let list = lists::get(conn, account_id, list_number)?;
    Ok(list_properties::table
        .filter(list_properties::account_id.eq(account_id))
        .filter(list_properties::list_id.eq(list.id))
        .filter(list_properties::name.eq(name.trim()))
        .select(list_properties::value)
        .first(conn)
        .optional()?)
}
