//! Message credits: how many e-mails and SMS an account may still send, as
//! MailUp's GetCredits reports them. A self-hosted server sells nothing, so an
//! account without a balance is unlimited; an operator who wants a quota sets
//! one (`espbridge credits`), and every message sent on that channel takes one
//! credit from it. The balance is a count the operator reads, not a stop:
//! sending goes on below zero, so no accepted message is ever held back by it.

use diesel::prelude::*;

use super::messages::MessageKind;
use super::now;
use crate::Result;
use crate::db::DbConnection;
use crate::db::schema::account_credits;

/// An account's credits on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    Unlimited,
    /// What is left (below zero when more was sent than was granted).
    Left(i64),
}

/// The account's e-mail and SMS balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credits {
    pub email: Balance,
    pub sms: Balance,
}

pub fn get(conn: &mut DbConnection, account_id: i64) -> Result<Credits> {
    let rows: Vec<(String, i64)> = account_credits::table
        .filter(account_credits::account_id.eq(account_id))
        .select((account_credits::channel, account_credits::balance))
        .load(conn)?;
    let of = |kind: MessageKind| {
        rows.iter()
            .find(|(channel, _)| channel == kind.as_str())
            .map_or(Balance::Unlimited, |(_, left)| Balance::Left(*left))
    };
    Ok(Credits {
        email: of(MessageKind::Email),
        sms: of(MessageKind::Sms),
    })
}

/// Sets a channel's balance (`Unlimited` removes it).
pub fn set(
    conn: &mut DbConnection,
    account_id: i64,
    kind: MessageKind,
    balance: Balance,
) -> Result<()> {
    crate::db::write_transaction(conn, |conn| {
        diesel::delete(
            account_credits::table
                .filter(account_credits::account_id.eq(account_id))
                .filter(account_credits::channel.eq(kind.as_str())),
        )
        .execute(conn)?;
        if let Balance::Left(left) = balance {
            diesel::insert_into(account_credits::table)
                .values((
                    account_credits::account_id.eq(account_id),
                    account_credits::channel.eq(kind.as_str()),
                    account_credits::balance.eq(left),
                    account_credits::updated_at.eq(now()),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Takes `sent` credits from the account's balance on `channel` (`email` or
/// `sms`), in the caller's transaction; nothing when it has none (unlimited).
pub fn spend(conn: &mut DbConnection, account_id: i64, channel: &str, sent: i64) -> Result<()> {
    diesel::update(
        account_credits::table
            .filter(account_credits::account_id.eq(account_id))
            .filter(account_credits::channel.eq(channel)),
    )
    .set((
        account_credits::balance.eq(account_credits::balance - sent),
        account_credits::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(())
}
