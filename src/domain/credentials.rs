//! Per-protocol API credentials of an account: the MailUp WS user (`a<consoleId>`),
//! ExactTarget API users, eCircle realm + user, and REST API keys. Secrets are
//! stored as argon2 hashes only.

use diesel::prelude::*;

use super::{now, secrets};
use crate::db::DbConnection;
use crate::db::schema::credentials;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    MailupWs,
    ExactTarget,
    Ecircle,
    ApiKey,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::MailupWs => "mailup_ws",
            CredentialKind::ExactTarget => "exacttarget",
            CredentialKind::Ecircle => "ecircle",
            CredentialKind::ApiKey => "api_key",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = credentials)]
pub struct Credential {
    pub id: i64,
    pub account_id: i64,
    pub realm: String,
    pub username: String,
    secret_hash: String,
    /// Where mail for the API user itself goes (eCircle's sendEmailToMe);
    /// empty when it has no address.
    pub email: String,
}

/// Adds a credential. `(kind, realm, username)` is unique across all accounts,
/// because the protocols authenticate before they know the account.
pub fn create(
    conn: &mut DbConnection,
    account_id: i64,
    kind: CredentialKind,
    realm: &str,
    username: &str,
    secret: &str,
) -> Result<Credential> {
    if username.is_empty() || secret.is_empty() {
        return Err(Error::invalid(
            "credential",
            "username and secret are required",
        ));
    }
    if find(conn, kind, realm, username)?.is_some() {
        return Err(Error::Conflict(format!(
            "{} credential {username} exists",
            kind.as_str()
        )));
    }
    let id: i64 = diesel::insert_into(credentials::table)
        .values((
            credentials::account_id.eq(account_id),
            credentials::kind.eq(kind.as_str()),
            credentials::realm.eq(realm),
            credentials::username.eq(username),
            credentials::secret_hash.eq(secrets::hash_secret(secret)?),
            credentials::created_at.eq(now()),
        ))
        .returning(credentials::id)
        .get_result(conn)?;
    Ok(credentials::table
        .find(id)
        .select(Credential::as_select())
        .first(conn)?)
}

/// A credential of the account by id.
pub fn get(conn: &mut DbConnection, account_id: i64, id: i64) -> Result<Credential> {
    credentials::table
        .filter(credentials::account_id.eq(account_id))
        .filter(credentials::id.eq(id))
        .select(Credential::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("credential"))
}

/// Gives the account's API users of one kind an e-mail address (empty: none);
/// answers how many there are.
pub fn set_email(
    conn: &mut DbConnection,
    account_id: i64,
    kind: CredentialKind,
    email: &str,
) -> Result<usize> {
    let email = match email.trim() {
        "" => String::new(),
        address => super::recipients::checked_email(address)?,
    };
    Ok(diesel::update(
        credentials::table
            .filter(credentials::account_id.eq(account_id))
            .filter(credentials::kind.eq(kind.as_str())),
    )
    .set(credentials::email.eq(email))
    .execute(conn)?)
}

pub fn find(
    conn: &mut DbConnection,
    kind: CredentialKind,
    realm: &str,
    username: &str,
) -> Result<Option<Credential>> {
    Ok(credentials::table
        .filter(credentials::kind.eq(kind.as_str()))
        .filter(credentials::realm.eq(realm))
        .filter(credentials::username.eq(username))
        .select(Credential::as_select())
        .first(conn)
        .optional()?)
}

/// The credential whose identity and secret match. Unknown identity and wrong
/// secret give the same error.
pub fn authenticate(
    conn: &mut DbConnection,
    kind: CredentialKind,
    realm: &str,
    username: &str,
    secret: &str,
) -> Result<Credential> {
    match find(conn, kind, realm, username)? {
        Some(credential) if secrets::verify_secret(secret, &credential.secret_hash) => {
            Ok(credential)
        }
        _ => Err(Error::Unauthenticated),
    }
}

const API_KEY_PREFIX: &str = "eb";

/// Creates a REST API key and returns it; only its hash is kept. The key has the
/// form `eb_<id>_<secret>`: the public id finds the row, the secret is verified.
pub fn create_api_key(conn: &mut DbConnection, account_id: i64) -> Result<String> {
    let id = secrets::random_token(12);
    let secret = secrets::random_token(32);
    create(conn, account_id, CredentialKind::ApiKey, "", &id, &secret)?;
    Ok(format!("{API_KEY_PREFIX}_{id}_{secret}"))
}

pub fn authenticate_api_key(conn: &mut DbConnection, key: &str) -> Result<Credential> {
    let mut parts = key.splitn(3, '_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(API_KEY_PREFIX), Some(id), Some(secret)) => {
            authenticate(conn, CredentialKind::ApiKey, "", id, secret)
        }
        _ => Err(Error::Unauthenticated),
    }
}
