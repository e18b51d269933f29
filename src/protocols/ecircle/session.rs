//! `logon`, `logout` and the session check every other operation starts with.
//! Sessions are the domain's (`domain::sessions`): a random token kept as a
//! digest, ended after a configurable idle time.

use chrono::Duration;

use super::params::Params;
use super::{EcmFault, Return};
use crate::db::DbConnection;
use crate::domain::credentials::{self, CredentialKind};
use crate::domain::links::LinkSigner;
use crate::domain::sessions::{self, Lifetime, Principal};
use crate::domain::{Channel, Origin};
use crate::{Error, Result};

const PROTOCOL: &str = "ecircle";
/// However busy, a session ends after this long; clients log on again when told
/// "Not authenticated", as they must after the idle timeout anyway.
const MAX_AGE_HOURS: i64 = 24;

/// The account a call acts for, who is acting, and how its confirmation
/// links are made.
#[derive(Clone)]
pub struct Caller {
    pub account_id: i64,
    pub origin: Origin,
    /// The API user (credential) the session was opened with.
    pub credential_id: Option<i64>,
    pub links: Links,
}

/// What double opt-in invitations need: the key that signs their links and
/// the confirmation page the links lead to.
#[derive(Clone)]
pub struct Links {
    pub signer: LinkSigner,
    pub confirm_page: String,
}

pub fn logon(
    conn: &mut DbConnection,
    params: &Params,
    idle_seconds: u64,
) -> Result<std::result::Result<Return, EcmFault>> {
    let realm = params.text("realm").unwrap_or("");
    let user = params.text("user").unwrap_or("");
    let password = params.raw("passwd").unwrap_or("");
    let Some(credential) = find_credential(conn, realm, user, password)? else {
        log::info!("eCircle logon refused for {user:?} at {realm:?}");
        return Ok(Err(EcmFault::not_authenticated()));
    };
    let token = sessions::create(
        conn,
        credential.account_id,
        Principal::Credential(credential.id),
        PROTOCOL,
        Lifetime {
            max_age: Duration::hours(MAX_AGE_HOURS),
            idle_timeout: Some(Duration::seconds(
                i64::try_from(idle_seconds).unwrap_or(i64::MAX),
            )),
        },
    )?;
    Ok(Ok(Return::Text(token)))
}

/// The credential for `realm`, compared as clients write the system's URL: a
/// trailing slash and the case of scheme and host do not matter.
fn find_credential(
    conn: &mut DbConnection,
    realm: &str,
    user: &str,
    password: &str,
) -> Result<Option<credentials::Credential>> {
    let trimmed = realm.trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    for candidate in [realm, trimmed, lower.as_str()] {
        match credentials::authenticate(conn, CredentialKind::Ecircle, candidate, user, password) {
            Ok(credential) => return Ok(Some(credential)),
            Err(Error::Unauthenticated) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Ends the session; unknown or expired ones too (logout declares no fault).
pub fn logout(conn: &mut DbConnection, params: &Params) -> Result<Return> {
    if let Some(token) = params.text("session") {
        sessions::end(conn, token)?;
    }
    Ok(Return::Nothing)
}

/// The caller of a session-bound operation, or "Not authenticated".
pub fn caller(
    conn: &mut DbConnection,
    params: &Params,
    links: &Links,
) -> Result<std::result::Result<Caller, EcmFault>> {
    let Some(token) = params.text("session") else {
        return Ok(Err(EcmFault::not_authenticated()));
    };
    match sessions::resolve(conn, token) {
        Ok(session) if session.protocol == PROTOCOL => Ok(Ok(Caller {
            account_id: session.account_id,
            origin: Origin::new(
                Channel::Ecircle,
                format!("ecircle credential {}", session.credential_id.unwrap_or(0)),
            ),
            credential_id: session.credential_id,
            links: links.clone(),
        })),
        Ok(_) | Err(Error::Unauthenticated) => Ok(Err(EcmFault::not_authenticated())),
        Err(e) => Err(e),
    }
}
