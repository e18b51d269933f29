//! Account-wide template variables (`{{ vars.name }}`).

use std::collections::BTreeMap;

use diesel::prelude::*;

use crate::Result;
use crate::db::schema::variables;
use crate::db::{DbConnection, write_transaction};

pub fn set(conn: &mut DbConnection, account_id: i64, name: &str, value: &str) -> Result<()> {
    write_transaction(conn, |conn| {
        let scope = variables::table
            .filter(variables::account_id.eq(account_id))
            .filter(variables::name.eq(name));
        if diesel::update(scope)
            .set(variables::value.eq(value))
            .execute(conn)?
            == 0
        {
            diesel::insert_into(variables::table)
                .values((
                    variables::account_id.eq(account_id),
                    variables::name.eq(name),
                    variables::value.eq(value),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

pub fn all(conn: &mut DbConnection, account_id: i64) -> Result<BTreeMap<String, String>> {
    Ok(variables::table
        .filter(variables::account_id.eq(account_id))
        .select((variables::name, variables::value))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}
