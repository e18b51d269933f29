//! Accounts (tenants). Each has a numeric console id (MailUp's `consoleId`, also
//! the number in the WS user `a<consoleId>`), optional console host names that
//! frontend requests are routed by, and settings.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::credentials::{self, CredentialKind};
use super::{fields, lists, now, secrets, users};
use crate::db::schema::{account_hosts, accounts};
use crate::db::{DbConnection, backend, on_backend, write_transaction};
use crate::{Error, Result};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    pub console_id: i64,
    pub name: String,
    settings: String,
    pub created_at: chrono::NaiveDateTime,
}

impl Account {
    /// The parsed settings; a stored document that no longer parses falls back to
    /// the defaults (and is logged) rather than locking the account out.
    pub fn settings(&self) -> AccountSettings {
        serde_json::from_str(&self.settings).unwrap_or_else(|e| {
            log::error!(
                "account {}: unreadable settings ({e}); using defaults",
                self.id
            );
            AccountSettings::default()
        })
    }
}

/// Per-account behaviour, stored as JSON so later features add keys without a
/// migration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccountSettings {
    /// International prefix assumed for mobile numbers given without one.
    pub default_mobile_prefix: String,
    /// Accept frontend and import calls only from registered caller IPs
    /// (loopback is always accepted), as MailUp does unless switched off.
    pub restrict_callers: bool,
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            // MailUp's documented default (Italy).
            default_mobile_prefix: "+39".into(),
            restrict_callers: true,
        }
    }
}

/// What the operator asks for when creating an account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    /// Chosen automatically (one above the highest in use, from 1001) when absent.
    pub console_id: Option<i64>,
    pub console_hosts: Vec<String>,
}

/// A new account with the secrets of its credentials, shown once and then only
/// kept hashed.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedAccount {
    pub account_id: i64,
    pub console_id: i64,
    pub name: String,
    pub console_hosts: Vec<String>,
    pub mailup: MailupCredentials,
    pub exacttarget: UserPassword,
    pub ecircle: EcircleCredentials,
    pub api_key: String,
    pub default_list: DefaultList,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailupCredentials {
    pub ws_user: String,
    pub ws_password: String,
    pub console_user: String,
    pub console_password: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserPassword {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EcircleCredentials {
    pub realm: String,
    pub user: String,
    pub password: String,
    /// The API user's own address (sendEmailToMe); empty when it has none.
    pub email: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DefaultList {
    pub id: i64,
    pub guid: String,
}

#[derive(Insertable)]
#[diesel(table_name = accounts)]
struct AccountRow<'a> {
    console_id: i64,
    name: &'a str,
    settings: &'a str,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

const FIRST_CONSOLE_ID: i64 = 1001;
const PASSWORD_LENGTH: usize = 20;

/// Creates an account with its credentials for every protocol, list 1 "News" and
/// the default field catalogue, all in one transaction.
pub fn create(conn: &mut DbConnection, new: &NewAccount) -> Result<CreatedAccount> {
    let name = new.name.trim();
    if name.is_empty() {
        return Err(Error::invalid("account name", "must not be empty"));
    }
    let hosts = new
        .console_hosts
        .iter()
        .map(|h| normalize_host(h))
        .collect::<Result<Vec<_>>>()?;
    if let Some(id) = new.console_id
        && id <= 0
    {
        return Err(Error::invalid("console id", "must be a positive number"));
    }
    write_transaction(conn, |conn| {
        let console_id = match new.console_id {
            Some(id) => {
                if find_by_console_id(conn, id)?.is_some() {
                    return Err(Error::Conflict(format!("console id {id} is taken")));
                }
                id
            }
            None => {
                let highest: Option<i64> = accounts::table
                    .select(diesel::dsl::max(accounts::console_id))
                    .first(conn)?;
                highest.map_or(FIRST_CONSOLE_ID, |h| (h + 1).max(FIRST_CONSOLE_ID))
            }
        };
        let settings = serde_json::to_string(&AccountSettings::default())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let stamp = now();
        let account_id: i64 = diesel::insert_into(accounts::table)
            .values(AccountRow {
                console_id,
                name,
                settings: &settings,
                created_at: stamp,
                updated_at: stamp,
            })
            .returning(accounts::id)
            .get_result(conn)?;
        for host in &hosts {
            add_console_host(conn, account_id, host)?;
        }

        let mailup = MailupCredentials {
            ws_user: format!("a{console_id}"),
            ws_password: secrets::random_token(PASSWORD_LENGTH),
            console_user: format!("m{console_id}"),
            console_password: secrets::random_token(PASSWORD_LENGTH),
        };
        credentials::create(
            conn,
            account_id,
            CredentialKind::MailupWs,
            "",
            &mailup.ws_user,
            &mailup.ws_password,
        )?;
        users::create(
            conn,
            account_id,
            &mailup.console_user,
            &mailup.console_password,
            users::Role::Admin,
        )?;
        let exacttarget = UserPassword {
            username: format!("et{console_id}"),
            password: secrets::random_token(PASSWORD_LENGTH),
        };
        credentials::create(
            conn,
            account_id,
            CredentialKind::ExactTarget,
            "",
            &exacttarget.username,
            &exacttarget.password,
        )?;
        let ecircle = EcircleCredentials {
            // eCircle clients configure the realm as the customer system's URL.
            realm: match hosts.first() {
                Some(host) => format!("http://{host}"),
                None => format!("http://console{console_id}.espbridge.invalid"),
            },
            user: format!("ecm{console_id}"),
            password: secrets::random_token(PASSWORD_LENGTH),
            email: String::new(),
        };
        credentials::create(
            conn,
            account_id,
            CredentialKind::Ecircle,
            &ecircle.realm,
            &ecircle.user,
            &ecircle.password,
        )?;
        let api_key = credentials::create_api_key(conn, account_id)?;

        fields::create_default_catalogue(conn, account_id)?;
        let list = lists::create(
            conn,
            account_id,
            &lists::NewList {
                name: "News".into(),
                ..lists::NewList::default()
            },
        )?;
        Ok(CreatedAccount {
            account_id,
            console_id,
            name: name.to_string(),
            console_hosts: hosts.clone(),
            mailup,
            exacttarget,
            ecircle,
            api_key,
            default_list: DefaultList {
                id: list.number,
                guid: list.guid,
            },
        })
    })
}

/// Routes an additional host name to the account.
pub fn add_console_host(conn: &mut DbConnection, account_id: i64, host: &str) -> Result<()> {
    let host = normalize_host(host)?;
    let taken: Option<i64> = account_hosts::table
        .filter(account_hosts::host.eq(&host))
        .select(account_hosts::account_id)
        .first(conn)
        .optional()?;
    match taken {
        Some(owner) if owner == account_id => Ok(()),
        Some(_) => Err(Error::Conflict(format!(
            "console host {host} belongs to another account"
        ))),
        None => {
            diesel::insert_into(account_hosts::table)
                .values((
                    account_hosts::account_id.eq(account_id),
                    account_hosts::host.eq(&host),
                ))
                .execute(conn)?;
            Ok(())
        }
    }
}

/// Host names compare case-insensitively and without a port.
fn normalize_host(host: &str) -> Result<String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid {
        Ok(host)
    } else {
        Err(Error::invalid(
            "console host",
            format!("{host:?} is not a host name"),
        ))
    }
}

pub fn get(conn: &mut DbConnection, account_id: i64) -> Result<Account> {
    accounts::table
        .find(account_id)
        .select(Account::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("account"))
}

pub fn find_by_console_id(conn: &mut DbConnection, console_id: i64) -> Result<Option<Account>> {
    Ok(accounts::table
        .filter(accounts::console_id.eq(console_id))
        .select(Account::as_select())
        .first(conn)
        .optional()?)
}

/// The account a request's `Host` header (with or without port) belongs to.
pub fn find_by_host(conn: &mut DbConnection, host: &str) -> Result<Option<Account>> {
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let Ok(name) = normalize_host(name) else {
        return Ok(None);
    };
    Ok(on_backend!(conn, |c| accounts::table
        .inner_join(account_hosts::table)
        .filter(account_hosts::host.eq(&name))
        .select(Account::as_select())
        .first(c)
        .optional())?)
}

pub fn console_hosts(conn: &mut DbConnection, account_id: i64) -> Result<Vec<String>> {
    Ok(account_hosts::table
        .filter(account_hosts::account_id.eq(account_id))
        .order(account_hosts::id)
        .select(account_hosts::host)
        .load(conn)?)
}

/// The account of a single-account install: `Some` only when exactly one exists.
/// The account a request for `host` is for: the one with that console host
/// name, or, on an installation with a single account, that account.
pub fn for_host(conn: &mut DbConnection, host: &str) -> Result<Option<Account>> {
    match find_by_host(conn, host)? {
        Some(account) => Ok(Some(account)),
        None => only_account(conn),
    }
}

pub fn only_account(conn: &mut DbConnection) -> Result<Option<Account>> {
    let mut two: Vec<Account> = on_backend!(conn, |c| accounts::table
        .order(accounts::id)
        .limit(2)
        .select(Account::as_select())
        .load(c))?;
    Ok(if two.len() == 1 { two.pop() } else { None })
}

pub fn count(conn: &mut DbConnection) -> Result<i64> {
    Ok(accounts::table.count().get_result(conn)?)
}

pub fn update_settings(
    conn: &mut DbConnection,
    account_id: i64,
    settings: &AccountSettings,
) -> Result<()> {
    let json = serde_json::to_string(settings).map_err(|e| Error::Internal(e.to_string()))?;
    let updated = diesel::update(accounts::table.find(account_id))
        .set((accounts::settings.eq(json), accounts::updated_at.eq(now())))
        .execute(conn)?;
    if updated == 0 {
        return Err(Error::NotFound("account"));
    }
    Ok(())
}

/// The per-account numbering sequences.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Numbered {
    List,
    Group,
}

impl Numbered {
    fn label(self) -> &'static str {
        match self {
            Numbered::List => "list id",
            Numbered::Group => "group id",
        }
    }
}

/// The requested number if free (`is_taken` says), else the account's next one.
/// The counter always stays above every number in use, so automatic numbers never
/// collide with explicit ones. The account row is locked until the transaction
/// ends, serialising allocations.
pub(crate) fn allocate_number(
    conn: &mut DbConnection,
    account_id: i64,
    sequence: Numbered,
    wanted: Option<i64>,
    is_taken: impl FnOnce(&mut DbConnection, i64) -> Result<bool>,
) -> Result<i64> {
    backend::lock_account(conn, account_id)?;
    let counter = accounts::table.find(account_id);
    let next: i64 = match sequence {
        Numbered::List => counter.select(accounts::next_list_number).first(conn),
        Numbered::Group => counter.select(accounts::next_group_number).first(conn),
    }
    .optional()?
    .ok_or(Error::NotFound("account"))?;
    let number = match wanted {
        Some(n) if n <= 0 => {
            return Err(Error::invalid(
                sequence.label(),
                "must be a positive number",
            ));
        }
        Some(n) if is_taken(conn, n)? => {
            return Err(Error::Conflict(format!(
                "{} {n} is taken",
                sequence.label()
            )));
        }
        Some(n) => n,
        None => next,
    };
    let next = next.max(number + 1);
    match sequence {
        Numbered::List => diesel::update(counter)
            .set(accounts::next_list_number.eq(next))
            .execute(conn)?,
        Numbered::Group => diesel::update(counter)
            .set(accounts::next_group_number.eq(next))
            .execute(conn)?,
    };
    Ok(number)
}
