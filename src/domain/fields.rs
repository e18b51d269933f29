//! The account's catalogue of recipient fields: numbers 1..=39 (MailUp's
//! `campo1`..`campo39`), each with a name and a default value. Values per
//! recipient live in `recipients`.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::fields;
use crate::{Error, Result};

pub const MAX_FIELD_NUMBER: i32 = 39;

/// The names a new MailUp console starts with (its integrations' mappings assume
/// them); the remaining numbers are free.
const DEFAULT_FIELDS: [&str; 11] = [
    "nome",
    "cognome",
    "azienda",
    "città",
    "provincia",
    "cap",
    "regione",
    "paese",
    "indirizzo",
    "fax",
    "telefono",
];

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = fields)]
pub struct Field {
    pub number: i32,
    pub name: String,
    pub default_value: String,
}

/// A field named by number or by name (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    Number(i32),
    Name(String),
}

pub(crate) fn create_default_catalogue(conn: &mut DbConnection, account_id: i64) -> Result<()> {
    for (index, name) in DEFAULT_FIELDS.iter().enumerate() {
        define(conn, account_id, index as i32 + 1, name, "")?;
    }
    Ok(())
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn check_number(number: i32) -> Result<()> {
    if (1..=MAX_FIELD_NUMBER).contains(&number) {
        Ok(())
    } else {
        Err(Error::invalid(
            "field",
            format!("field numbers go from 1 to {MAX_FIELD_NUMBER}, not {number}"),
        ))
    }
}

/// Creates field `number`, or renames it and sets its default if it exists.
pub fn define(
    conn: &mut DbConnection,
    account_id: i64,
    number: i32,
    name: &str,
    default_value: &str,
) -> Result<Field> {
    check_number(number)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("field name", "must not be empty"));
    }
    if let Some(other) = find_by_name(conn, account_id, name)?
        && other.number != number
    {
        return Err(Error::Conflict(format!(
            "field name {name:?} is used by field {}",
            other.number
        )));
    }
    let existing = find(conn, account_id, number)?;
    let scope = fields::table
        .filter(fields::account_id.eq(account_id))
        .filter(fields::number.eq(number));
    if existing.is_some() {
        diesel::update(scope)
            .set((
                fields::name.eq(name),
                fields::name_key.eq(name_key(name)),
                fields::default_value.eq(default_value),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(fields::table)
            .values((
                fields::account_id.eq(account_id),
                fields::number.eq(number),
                fields::name.eq(name),
                fields::name_key.eq(name_key(name)),
                fields::default_value.eq(default_value),
            ))
            .execute(conn)?;
    }
    Ok(Field {
        number,
        name: name.to_string(),
        default_value: default_value.to_string(),
    })
}

pub fn all(conn: &mut DbConnection, account_id: i64) -> Result<Vec<Field>> {
    Ok(fields::table
        .filter(fields::account_id.eq(account_id))
        .order(fields::number)
        .select(Field::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, account_id: i64, number: i32) -> Result<Option<Field>> {
    Ok(fields::table
        .filter(fields::account_id.eq(account_id))
        .filter(fields::number.eq(number))
        .select(Field::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_name(conn: &mut DbConnection, account_id: i64, name: &str) -> Result<Option<Field>> {
    Ok(fields::table
        .filter(fields::account_id.eq(account_id))
        .filter(fields::name_key.eq(name_key(name)))
        .select(Field::as_select())
        .first(conn)
        .optional()?)
}

/// The number of the field with this name, defining it at the lowest free number
/// when the catalogue has none (protocols whose attributes are free-form names,
/// like eCircle's named attributes). A full catalogue is refused.
pub fn resolve_or_define(conn: &mut DbConnection, account_id: i64, name: &str) -> Result<i32> {
    if let Some(field) = find_by_name(conn, account_id, name)? {
        return Ok(field.number);
    }
    let used: Vec<i32> = fields::table
        .filter(fields::account_id.eq(account_id))
        .select(fields::number)
        .load(conn)?;
    let free = (1..=MAX_FIELD_NUMBER)
        .find(|n| !used.contains(n))
        .ok_or_else(|| {
            Error::invalid(
                "field",
                format!("all {MAX_FIELD_NUMBER} fields are in use; {name:?} cannot be added"),
            )
        })?;
    Ok(define(conn, account_id, free, name, "")?.number)
}

/// The number a reference names. A number needs no catalogue entry (MailUp
/// accepts any `campoN` up to 39); a name must be in the catalogue.
pub fn resolve(conn: &mut DbConnection, account_id: i64, field: &FieldRef) -> Result<i32> {
    match field {
        FieldRef::Number(number) => {
            check_number(*number)?;
            Ok(*number)
        }
        FieldRef::Name(name) => find_by_name(conn, account_id, name)?
            .map(|f| f.number)
            .ok_or(Error::NotFound("field")),
    }
}
