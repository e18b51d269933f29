//! Imports of subscriber files into a list: a delimited text file (tab or
//! comma, quotes as CSV writes them) that the operator placed in the
//! account's import folder, `<data_dir>/imports/<console id>/`. Each row
//! subscribes its address with the row's attribute values; a row that cannot
//! be (a bad address, a blocked one) is counted as rejected. The outcome is
//! kept for status queries.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::fields::{self, FieldRef};
use super::recipients::Contact;
use super::subscriptions::{self, Subscribe};
use super::{Origin, accounts, lists, now};
use crate::db::schema::file_imports;
use crate::db::{DbConnection, write_transaction};
use crate::{Error, Result};

/// The largest file read.
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// The column holding the address.
const EMAIL_COLUMN: &str = "email address";

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = file_imports)]
pub struct FileImport {
    pub id: i64,
    pub account_id: i64,
    pub list_id: Option<i64>,
    pub file_name: String,
    /// `Complete` once the rows are in.
    pub status: String,
    pub imported: i64,
    pub rejected: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The lists' public numbers (at least one): every row goes into each.
    pub lists: Vec<i64>,
    /// A plain file name in the account's import folder.
    pub file_name: String,
    pub delimiter: char,
    /// The first row names the columns.
    pub headings: bool,
    /// The attribute (field) name of each column, in order; empty to take the
    /// headings. `Email Address` is the address.
    pub mapping: Vec<String>,
    pub origin: Origin,
}

/// The import folder of the account with this console id.
pub fn folder(data_dir: &Path, console_id: i64) -> PathBuf {
    data_dir.join("imports").join(console_id.to_string())
}

/// The name trimmed, if it names a file in a folder and not a path (nothing
/// outside the account's folder can be reached).
pub fn plain_file_name(name: &str) -> Result<&str> {
    let name = name.trim();
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if !plain {
        return Err(Error::invalid(
            "file name",
            "must be a file name without a path",
        ));
    }
    Ok(name)
}

/// Imports the file in one transaction and records the outcome.
pub fn import(
    conn: &mut DbConnection,
    account_id: i64,
    data_dir: &Path,
    request: &ImportRequest,
) -> Result<FileImport> {
    let name = plain_file_name(&request.file_name)?;
    let account = accounts::get(conn, account_id)?;
    let path = folder(data_dir, account.console_id).join(name);
    let size = std::fs::metadata(&path)
        .map_err(|_| Error::NotFound("file"))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(Error::invalid(
            "file",
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|_| Error::NotFound("file"))?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text.to_string(),
        // Spreadsheets export Windows-1252 as often as UTF-8.
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(&bytes)
            .0
            .into_owned(),
    };
    let mut rows = parse_delimited(text.trim_start_matches('\u{feff}'), request.delimiter);
    let headings = if request.headings && !rows.is_empty() {
        rows.remove(0)
    } else {
        Vec::new()
    };
    let columns = if request.mapping.is_empty() {
        headings
    } else {
        request.mapping.clone()
    };
    write_transaction(conn, |conn| {
        let mut targets = Vec::with_capacity(request.lists.len());
        for number in &request.lists {
            targets.push(lists::get(conn, account_id, *number)?);
        }
        let Some(first) = targets.first().map(|l| l.id) else {
            return Err(Error::invalid("lists", "at least one list is needed"));
        };
        // Every column is the address or a field of the catalogue.
        let mut email_column = None;
        let mut field_columns = Vec::new();
        for (at, column) in columns.iter().enumerate() {
            let column = column.trim();
            if column.eq_ignore_ascii_case(EMAIL_COLUMN) {
                email_column = Some(at);
            } else if !column.is_empty() {
                let number = fields::resolve(conn, account_id, &FieldRef::Name(column.into()))?;
                field_columns.push((at, number));
            }
        }
        let email_column =
            email_column.ok_or(Error::invalid("file mapping", "no Email Address column"))?;
        let (mut imported, mut rejected) = (0i64, 0i64);
        for row in rows
            .iter()
            .filter(|r| r.iter().any(|v| !v.trim().is_empty()))
        {
            let email = row.get(email_column).map_or("", |v| v.trim());
            let values: Vec<_> = field_columns
                .iter()
                .filter_map(|(at, number)| {
                    row.get(*at)
                        .map(|v| (FieldRef::Number(*number), v.trim().to_string()))
                })
                .collect();
            // A row counts once: refused by a list (its address is bad or
            // blocked, which no list would take), it goes to no further list.
            let mut done = Ok(());
            for list in &targets {
                done = subscriptions::subscribe(
                    conn,
                    account_id,
                    &Subscribe {
                        list: list.number,
                        contact: Contact::email(email),
                        fields: values.clone(),
                        groups: Vec::new(),
                        double_opt_in: Some(false),
                        source: format!("import {name}"),
                        origin: request.origin.clone(),
                    },
                )
                .map(|_| ());
                if done.is_err() {
                    break;
                }
            }
            match done {
                Ok(_) => imported += 1,
                Err(Error::Invalid { .. } | Error::Blocklisted | Error::Conflict(_)) => {
                    rejected += 1
                }
                Err(e) => return Err(e),
            }
        }
        let id: i64 = diesel::insert_into(file_imports::table)
            .values((
                file_imports::account_id.eq(account_id),
                file_imports::list_id.eq(Some(first)),
                file_imports::file_name.eq(name),
                file_imports::status.eq("Complete"),
                file_imports::imported.eq(imported),
                file_imports::rejected.eq(rejected),
                file_imports::created_at.eq(now()),
            ))
            .returning(file_imports::id)
            .get_result(conn)?;
        get(conn, account_id, id)
    })
}

pub fn get(conn: &mut DbConnection, account_id: i64, id: i64) -> Result<FileImport> {
    file_imports::table
        .filter(file_imports::account_id.eq(account_id))
        .filter(file_imports::id.eq(id))
        .select(FileImport::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("import"))
}

/// Rows of delimited text: a field in double quotes may hold the delimiter,
/// line breaks and doubled quotes.
fn parse_delimited(text: &str, delimiter: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            c if quoted => field.push(c),
            c if c == delimiter => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimited_text_with_quotes_and_line_breaks() {
        let rows = parse_delimited("a,\"b, \"\"c\"\"\"\r\n\"x\ny\",z\n", ',');
        assert_eq!(
            rows,
            vec![
                vec!["a".to_string(), "b, \"c\"".to_string()],
                vec!["x\ny".to_string(), "z".to_string()],
            ]
        );
        assert_eq!(
            parse_delimited("e\tf", '\t'),
            vec![vec!["e".to_string(), "f".to_string()]]
        );
    }
}
