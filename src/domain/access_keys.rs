//! MailUp access keys: what `Login`/`LoginFromId` hand out and every call of
//! MailUpSend, MailUpManage and MailUpReport carries. A key is a session
//! (see [`super::sessions`]) of the `mailup` protocol that lives 60 minutes from
//! login, not extended by use; one key serves all three services. Password
//! guessing is slowed: after [`MAX_FAILURES`] wrong passwords for a user within
//! [`FAILURE_WINDOW_MINUTES`], its logins are refused until the window passes.

use chrono::Duration;
use diesel::prelude::*;

use super::accounts::{self, Account};
use super::credentials::{self, CredentialKind};
use super::sessions::{self, Lifetime, Principal};
use super::{now, users};
use crate::db::DbConnection;
use crate::db::schema::login_failures;
use crate::{Error, Result};

const PROTOCOL: &str = "mailup";
const LIFETIME_MINUTES: i64 = 60;
pub const MAX_FAILURES: i64 = 10;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;

/// Why a login was refused, told apart because MailUp's codes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No account has this console id, or the user is not one of its users.
    UnknownUser,
    WrongPassword,
    /// Too many wrong passwords lately; try again later.
    Locked,
}

/// Logs in the console user (`m<consoleId>` and the other console users) or
/// the WS user (`a<consoleId>`) of the account with `console_id`; the key.
pub fn login(
    conn: &mut DbConnection,
    console_id: i64,
    user: &str,
    password: &str,
) -> Result<std::result::Result<String, Refusal>> {
    let Some(account) = accounts::find_by_console_id(conn, console_id)? else {
        return Ok(Err(Refusal::UnknownUser));
    };
    let user = user.trim();
    let is_user = users::find(conn, account.id, user)?.is_some();
    let is_ws_user = !is_user
        && credentials::find(conn, CredentialKind::MailupWs, "", user)?
            .is_some_and(|c| c.account_id == account.id);
    if !is_user && !is_ws_user {
        return Ok(Err(Refusal::UnknownUser));
    }
    if recent_failures(conn, account.id, user)? >= MAX_FAILURES {
        return Ok(Err(Refusal::Locked));
    }
    let verified = if is_user {
        users::authenticate(conn, account.id, user, password).map(|u| Principal::User(u.id))
    } else {
        credentials::authenticate(conn, CredentialKind::MailupWs, "", user, password)
            .map(|c| Principal::Credential(c.id))
    };
    let principal = match verified {
        Ok(principal) => principal,
        Err(Error::Unauthenticated) => {
            diesel::insert_into(login_failures::table)
                .values((
                    login_failures::account_id.eq(account.id),
                    login_failures::protocol.eq(PROTOCOL),
                    login_failures::username.eq(user),
                    login_failures::failed_at.eq(now()),
                ))
                .execute(conn)?;
            return Ok(Err(Refusal::WrongPassword));
        }
        Err(e) => return Err(e),
    };
    diesel::delete(
        login_failures::table
            .filter(login_failures::account_id.eq(account.id))
            .filter(login_failures::protocol.eq(PROTOCOL))
            .filter(login_failures::username.eq(user)),
    )
    .execute(conn)?;
    let key = sessions::create(
        conn,
        account.id,
        principal,
        PROTOCOL,
        Lifetime {
            max_age: Duration::minutes(LIFETIME_MINUTES),
            idle_timeout: None,
        },
    )?;
    Ok(Ok(key))
}

/// Wrong passwords for the user within the window (older ones are removed).
fn recent_failures(conn: &mut DbConnection, account_id: i64, user: &str) -> Result<i64> {
    let since = now() - Duration::minutes(FAILURE_WINDOW_MINUTES);
    let of_user = login_failures::table
        .filter(login_failures::account_id.eq(account_id))
        .filter(login_failures::protocol.eq(PROTOCOL))
        .filter(login_failures::username.eq(user));
    diesel::delete(of_user.filter(login_failures::failed_at.lt(since))).execute(conn)?;
    Ok(of_user.count().get_result(conn)?)
}

/// The console id a MailUp user name carries: `m1234` and `a1234` → 1234.
pub fn console_id_of(user: &str) -> Option<i64> {
    let digits = user
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_alphabetic());
    digits.parse().ok().filter(|id| *id > 0)
}

/// The account a live key belongs to; an unknown, ended or expired key is
/// [`Error::Unauthenticated`].
pub fn account(conn: &mut DbConnection, key: &str) -> Result<Account> {
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::Unauthenticated);
    }
    let session = sessions::resolve(conn, key)?;
    if session.protocol != PROTOCOL {
        return Err(Error::Unauthenticated);
    }
    accounts::get(conn, session.account_id)
}

/// The console user a live key was given to; 0 for the WS user, which is no
/// console user.
pub fn user_id(conn: &mut DbConnection, key: &str) -> Result<i64> {
    account(conn, key)?;
    let session = sessions::resolve(conn, key.trim())?;
    Ok(session.user_id.unwrap_or(0))
}

/// Ends a key; whether it was live.
pub fn logout(conn: &mut DbConnection, key: &str) -> Result<bool> {
    match account(conn, key) {
        Ok(_) => sessions::end(conn, key.trim()),
        Err(Error::Unauthenticated) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_ids_come_from_user_names() {
        assert_eq!(console_id_of("m1234"), Some(1234));
        assert_eq!(console_id_of(" a77 "), Some(77));
        assert_eq!(console_id_of("admin"), None);
        assert_eq!(console_id_of("m0"), None);
    }
}
