//! A list's decoration (eCircle's group settings): the subject prefix and the
//! text and HTML headers and footers the sender adds to every e-mail of the
//! list (see `render::decoration`).

use diesel::prelude::*;

use super::lists;
use crate::db::DbConnection;
use crate::db::schema::list_decorations;
use crate::render::decoration::Decoration;
use crate::{Error, Result};

/// Changes to a decoration; `None` keeps the part as it is.
#[derive(Debug, Clone, Default)]
pub struct DecorationChanges {
    pub subject_prefix: Option<String>,
    pub text_header: Option<String>,
    pub text_footer: Option<String>,
    pub html_header: Option<String>,
    pub html_footer: Option<String>,
}

/// The longest prefix, header or footer: they go into every message.
const MAX_PART: usize = 64 * 1024;

/// The decoration of list `list_id` (internal id); empty when none was set.
pub fn get(conn: &mut DbConnection, account_id: i64, list_id: i64) -> Result<Decoration> {
    let row: Option<(String, String, String, String, String)> = list_decorations::table
        .filter(list_decorations::account_id.eq(account_id))
        .filter(list_decorations::list_id.eq(list_id))
        .select((
            list_decorations::subject_prefix,
            list_decorations::text_header,
            list_decorations::text_footer,
            list_decorations::html_header,
            list_decorations::html_footer,
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map_or_else(Decoration::default, |(prefix, th, tf, hh, hf)| Decoration {
            subject_prefix: prefix,
            text_header: th,
            text_footer: tf,
            html_header: hh,
            html_footer: hf,
        }),
    )
}

/// Changes the decoration of list `list_number`; answers the new one. Runs in
/// the caller's transaction.
pub fn change(
    conn: &mut DbConnection,
    account_id: i64,
    list_number: i64,
    changes: &DecorationChanges,
) -> Result<Decoration> {
    for part in [
        &changes.subject_prefix,
        &changes.text_header,
        &changes.text_footer,
        &changes.html_header,
        &changes.html_footer,
    ]
    .into_iter()
    .flatten()
    {
        if part.len() > MAX_PART {
            return Err(Error::invalid(
                "list decoration",
                "a prefix, header or footer is longer than 64 KiB",
            ));
        }
    }
    let list = lists::get(conn, account_id, list_number)?;
    let old = get(conn, account_id, list.id)?;
    let pick = |new: &Option<String>, old: String| new.clone().unwrap_or(old);
    let new = Decoration {
        subject_prefix: pick(&changes.subject_prefix, old.subject_prefix),
        text_header: pick(&changes.text_header, old.text_header),
        text_footer: pick(&changes.text_footer, old.text_footer),
        html_header: pick(&changes.html_header, old.html_header),
        html_footer: pick(&changes.html_footer, old.html_footer),
    };
    set(conn, account_id, list.id, &new)?;
    Ok(new)
}

/// Replaces the decoration of list `list_id` (internal id).
pub fn set(
    conn: &mut DbConnection,
    account_id: i64,
    list_id: i64,
    decoration: &Decoration,
) -> Result<()> {
    diesel::delete(
        list_decorations::table
            .filter(list_decorations::account_id.eq(account_id))
            .filter(list_decorations::list_id.eq(list_id)),
    )
    .execute(conn)?;
    if decoration.is_empty() {
        return Ok(());
    }
    diesel::insert_into(list_decorations::table)
        .values((
            list_decorations::list_id.eq(list_id),
            list_decorations::account_id.eq(account_id),
            list_decorations::subject_prefix.eq(&decoration.subject_prefix),
            list_decorations::text_header.eq(&decoration.text_header),
            list_decorations::text_footer.eq(&decoration.text_footer),
            list_decorations::html_header.eq(&decoration.html_header),
            list_decorations::html_footer.eq(&decoration.html_footer),
        ))
        .execute(conn)?;
    Ok(())
}
