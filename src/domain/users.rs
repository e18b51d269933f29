//! Console users of an account, with roles. Passwords are stored as argon2 hashes.

use diesel::prelude::*;

use super::{now, secrets};
use crate::db::DbConnection;
use crate::db::schema::users;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including users and credentials.
    Admin,
    /// Lists, recipients, messages and sends.
    Editor,
    /// Read only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Result<Role> {
        match text {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            other => Err(Error::invalid("role", format!("unknown role {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    pub username: String,
    password_hash: String,
    role: String,
}

impl User {
    pub fn role(&self) -> Result<Role> {
        Role::parse(&self.role)
    }
}

pub fn create(
    conn: &mut DbConnection,
    account_id: i64,
    username: &str,
    password: &str,
    role: Role,
) -> Result<User> {
    let username = username.trim();
    if username.is_empty() {
        return Err(Error::invalid("username", "must not be empty"));
    }
    if password.len() < 8 {
        return Err(Error::invalid(
            "password",
            "must have at least 8 characters",
        ));
    }
    let exists = users::table
        .filter(users::account_id.eq(account_id))
        .filter(users::username.eq(username))
        .select(users::id)
        .first::<i64>(conn)
        .optional()?
        .is_some();
    if exists {
        return Err(Error::Conflict(format!("user {username} exists")));
    }
    let id: i64 = diesel::insert_into(users::table)
        .values((
            users::account_id.eq(account_id),
            users::username.eq(username),
            users::password_hash.eq(secrets::hash_secret(password)?),
            users::role.eq(role.as_str()),
            users::created_at.eq(now()),
        ))
        .returning(users::id)
        .get_result(conn)?;
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)?)
}

/// The user with this username in the account, if any.
pub fn find(conn: &mut DbConnection, account_id: i64, username: &str) -> Result<Option<User>> {
    Ok(users::table
        .filter(users::account_id.eq(account_id))
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The user with this id in the account, if any.
pub fn by_id(conn: &mut DbConnection, account_id: i64, id: i64) -> Result<Option<User>> {
    Ok(users::table
        .filter(users::account_id.eq(account_id))
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The user, if the username exists in the account and the password matches.
pub fn authenticate(
    conn: &mut DbConnection,
    account_id: i64,
    username: &str,
    password: &str,
) -> Result<User> {
    match find(conn, account_id, username)? {
        Some(user) if secrets::verify_secret(password, &user.password_hash) => Ok(user),
        _ => Err(Error::Unauthenticated),
    }
}
