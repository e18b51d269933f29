//! Sending providers of an account (an SMTP relay, a file outbox, an HTTP SMS
//! gateway, an SMS log), with a default per channel and category. Without one,
//! the installation's own transport is used (its SMTP URL, else the file outbox).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::messages::MessageKind;
use super::now;
use super::sends::SendKind;
use crate::db::DbConnection;
use crate::db::schema::{provider_defaults, providers};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `{"url": "smtp://…", "rate_per_second": 50}`
    Smtp,
    /// `{}`: `.eml` files in the data directory.
    File,
    /// `{"url": "https://…", "token": "…", "from": "…", "rate_per_second": 5}`
    Http,
    /// `{}`: SMS appended to a log file in the data directory.
    Log,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Smtp => "smtp",
            ProviderKind::File => "file",
            ProviderKind::Http => "http",
            ProviderKind::Log => "log",
        }
    }

    pub fn parse(text: &str) -> Result<ProviderKind> {
        Ok(match text {
            "smtp" => ProviderKind::Smtp,
            "file" => ProviderKind::File,
            "http" => ProviderKind::Http,
            "log" => ProviderKind::Log,
            other => {
                return Err(Error::invalid(
                    "provider kind",
                    format!("unknown kind {other:?}"),
                ));
            }
        })
    }

    fn channel(self) -> MessageKind {
        match self {
            ProviderKind::Smtp | ProviderKind::File => MessageKind::Email,
            ProviderKind::Http | ProviderKind::Log => MessageKind::Sms,
        }
    }
}

/// The kinds of traffic a default provider is chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Transactional,
    Otp,
    Promotional,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Transactional => "transactional",
            Category::Otp => "otp",
            Category::Promotional => "promotional",
        }
    }

    pub fn of(kind: SendKind) -> Category {
        match kind {
            SendKind::Campaign => Category::Promotional,
            SendKind::Otp => Category::Otp,
            SendKind::Single | SendKind::System => Category::Transactional,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = providers)]
pub struct Provider {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    kind: String,
    pub config: String,
    pub created_at: NaiveDateTime,
}

impl Provider {
    pub fn kind(&self) -> Result<ProviderKind> {
        ProviderKind::parse(&self.kind)
    }

    /// `rate_per_second` from the config, if set.
    pub fn rate_per_second(&self) -> Option<f64> {
        serde_json::from_str::<serde_json::Value>(&self.config)
            .ok()?
            .get("rate_per_second")?
            .as_f64()
            .filter(|rate| *rate > 0.0)
    }
}

pub fn create(
    conn: &mut DbConnection,
    account_id: i64,
    name: &str,
    kind: ProviderKind,
    config: &serde_json::Value,
) -> Result<Provider> {
    if !config.is_object() {
        return Err(Error::invalid("provider config", "must be a JSON object"));
    }
    let id: i64 = diesel::insert_into(providers::table)
        .values((
            providers::account_id.eq(account_id),
            providers::name.eq(name),
            providers::channel.eq(kind.channel().as_str()),
            providers::kind.eq(kind.as_str()),
            providers::config.eq(config.to_string()),
            providers::created_at.eq(now()),
        ))
        .returning(providers::id)
        .get_result(conn)?;
    get(conn, account_id, id)
}

pub fn get(conn: &mut DbConnection, account_id: i64, id: i64) -> Result<Provider> {
    providers::table
        .filter(providers::account_id.eq(account_id))
        .filter(providers::id.eq(id))
        .select(Provider::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound("provider"))
}

/// Makes `provider_id` the account's default for its channel and `category`.
pub fn set_default(
    conn: &mut DbConnection,
    account_id: i64,
    category: Category,
    provider_id: i64,
) -> Result<()> {
    let provider = get(conn, account_id, provider_id)?;
    let channel = provider.kind()?.channel().as_str();
    let scope = provider_defaults::table
        .filter(provider_defaults::account_id.eq(account_id))
        .filter(provider_defaults::channel.eq(channel))
        .filter(provider_defaults::category.eq(category.as_str()));
    diesel::delete(scope).execute(conn)?;
    diesel::insert_into(provider_defaults::table)
        .values((
            provider_defaults::account_id.eq(account_id),
            provider_defaults::channel.eq(channel),
            provider_defaults::category.eq(category.as_str()),
            provider_defaults::provider_id.eq(provider.id),
        ))
        .execute(conn)?;
    Ok(())
}

/// The provider a delivery uses: the send's own, else the account's default for
/// the channel and category; `None` means the installation's transport.
pub fn route(
    conn: &mut DbConnection,
    account_id: i64,
    explicit: Option<i64>,
    channel: MessageKind,
    category: Category,
) -> Result<Option<Provider>> {
    if let Some(id) = explicit {
        return get(conn, account_id, id).map(Some);
    }
    let default: Option<i64> = provider_defaults::table
        .filter(provider_defaults::account_id.eq(account_id))
        .filter(provider_defaults::channel.eq(channel.as_str()))
        .filter(provider_defaults::category.eq(category.as_str()))
        .select(provider_defaults::provider_id)
        .first(conn)
        .optional()?;
    default.map(|id| get(conn, account_id, id)).transpose()
}
