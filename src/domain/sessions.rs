//! API sessions and access keys (MailUp access keys, eCircle session tokens):
//! random tokens stored as digests, with an absolute expiry and optionally an idle
//! timeout that use extends.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::{now, secrets};
use crate::db::DbConnection;
use crate::db::schema::api_sessions;
use crate::{Error, Result};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_sessions)]
pub struct Session {
    pub id: i64,
    pub account_id: i64,
    pub credential_id: Option<i64>,
    pub user_id: Option<i64>,
    pub protocol: String,
    pub expires_at: NaiveDateTime,
    pub idle_timeout_seconds: Option<i64>,
    pub last_used_at: NaiveDateTime,
}

/// Who a session is for.
#[derive(Debug, Clone, Copy)]
pub enum Principal {
    Credential(i64),
    User(i64),
}

/// How long a session lives.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// Hard limit from creation (MailUp: 60 minutes, not extended by use).
    pub max_age: Duration,
    /// Expires this long after the last use (eCircle: 10 minutes idle).
    pub idle_timeout: Option<Duration>,
}

const TOKEN_LENGTH: usize = 40;

/// Opens a session and returns its token (shown to the client once).
pub fn create(
    conn: &mut DbConnection,
    account_id: i64,
    principal: Principal,
    protocol: &str,
    lifetime: Lifetime,
) -> Result<String> {
    let token = secrets::random_token(TOKEN_LENGTH);
    let (credential_id, user_id) = match principal {
        Principal::Credential(id) => (Some(id), None),
        Principal::User(id) => (None, Some(id)),
    };
    let stamp = now();
    diesel::insert_into(api_sessions::table)
        .values((
            api_sessions::account_id.eq(account_id),
            api_sessions::credential_id.eq(credential_id),
            api_sessions::user_id.eq(user_id),
            api_sessions::protocol.eq(protocol),
            api_sessions::token_hash.eq(secrets::token_digest(&token)),
            api_sessions::created_at.eq(stamp),
            api_sessions::expires_at.eq(stamp + lifetime.max_age),
            api_sessions::idle_timeout_seconds.eq(lifetime.idle_timeout.map(|d| d.num_seconds())),
            api_sessions::last_used_at.eq(stamp),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The live session for `token`, marking it used. Expired sessions are removed
/// and reported as unauthenticated, like unknown tokens.
pub fn resolve(conn: &mut DbConnection, token: &str) -> Result<Session> {
    let digest = secrets::token_digest(token);
    let session: Session = api_sessions::table
        .filter(api_sessions::token_hash.eq(&digest))
        .select(Session::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::Unauthenticated)?;
    let stamp = now();
    let idle_expired = session
        .idle_timeout_seconds
        .is_some_and(|secs| session.last_used_at + Duration::seconds(secs) < stamp);
    if session.expires_at <= stamp || idle_expired {
        diesel::delete(api_sessions::table.find(session.id)).execute(conn)?;
        return Err(Error::Unauthenticated);
    }
    if session.idle_timeout_seconds.is_some() {
        diesel::update(api_sessions::table.find(session.id))
            .set(api_sessions::last_used_at.eq(stamp))
            .execute(conn)?;
    }
    Ok(session)
}

/// Ends a session; ending an unknown one is not an error (logout is idempotent).
pub fn end(conn: &mut DbConnection, token: &str) -> Result<bool> {
    let digest = secrets::token_digest(token);
    let deleted = diesel::delete(api_sessions::table.filter(api_sessions::token_hash.eq(digest)))
        .execute(conn)?;
    Ok(deleted > 0)
}

/// Deletes sessions past their absolute expiry. Returns how many.
pub fn purge_expired(conn: &mut DbConnection) -> Result<usize> {
    Ok(
        diesel::delete(api_sessions::table.filter(api_sessions::expires_at.le(now())))
            .execute(conn)?,
    )
}
