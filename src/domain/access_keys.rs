//! MailUp access keys: what `Login`/`LoginFromId` hand out and every call of
//! MailUpSend, MailUpManage and MailUpReport carries. A key is a session
//! (see [`super::sessions`]) of the `mailup` protocol that lives 60 minutes from
//! login, not extended by use; one key serves all three services.

use chrono::Duration;

use super::accounts::{self, Account};
use super::credentials::{self, CredentialKind};
use super::sessions::{self, Lifetime, Principal};
use super::users;
use crate::db::DbConnection;
use crate::{Error, Result};

const PROTOCOL: &str = "mailup";
const LIFETIME_MINUTES: i64 = 60;

/// Why a login was refused, told apart because MailUp's codes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No account has this console id, or the user is not one of its users.
    UnknownUser,
    WrongPassword,
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
    let principal = if users::find(conn, account.id, user)?.is_some() {
        match users::authenticate(conn, account.id, user, password) {
            Ok(found) => Principal::User(found.id),
            Err(Error::Unauthenticated) => return Ok(Err(Refusal::WrongPassword)),
            Err(e) => return Err(e),
        }
    } else {
        match credentials::find(conn, CredentialKind::MailupWs, "", user)? {
            Some(credential) if credential.account_id == account.id => {
                match credentials::authenticate(conn, CredentialKind::MailupWs, "", user, password)
                {
                    Ok(credential) => Principal::Credential(credential.id),
                    Err(Error::Unauthenticated) => return Ok(Err(Refusal::WrongPassword)),
                    Err(e) => return Err(e),
                }
            }
            _ => return Ok(Err(Refusal::UnknownUser)),
        }
    };
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
