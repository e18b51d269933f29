//! MailUpSend's account calls whose payloads the spec leaves unknown (§5.5):
//! GetUserAccess, CheckUserHash, GetCredits and GetCreditsLists. The shapes
//! are the tolerant readings recorded in `docs/compat/mailup.md`.

use super::ws::{self, Params};
use crate::db::DbConnection;
use crate::domain::accounts::Account;
use crate::domain::credits::{self, Balance, Credits};
use crate::domain::{access_keys, lists, users};
use crate::xml::XmlWriter;
use crate::{Error, Result};

/// `GetUserAccess(userId)`: who the user is and the lists they reach
/// (`idUser`, `userName`, `lists/list/{listID,listName}`). Console users see
/// every list of the account; user 0 is the WS user `a<consoleId>`.
pub fn user_access(conn: &mut DbConnection, account: &Account, params: &Params) -> Result<String> {
    let id = params.required_int("userId")?;
    let name = match id {
        0 => format!("a{}", account.console_id),
        id => {
            users::by_id(conn, account.id, id)?
                .ok_or(Error::NotFound("user"))?
                .username
        }
    };
    let all = lists::all(conn, account.id)?;
    Ok(ws::ok("GetUserAccess", |w| {
        w.leaf("idUser", &id.to_string())
            .leaf("userName", &name)
            .open("lists", &[]);
        for list in &all {
            w.open("list", &[])
                .leaf("listID", &list.number.to_string())
                .leaf("listName", &list.name)
                .close();
        }
        w.close();
    }))
}

/// `CheckUserHash(userID, userHash)`: the only user hash espbridge hands out
/// is an access key, so the hash is good (errorCode 0, `idUser`) when it is a
/// live key of this account given to that user (0: the WS user); otherwise
/// -1005, the code of an invalid key.
pub fn check_user_hash(
    conn: &mut DbConnection,
    account: &Account,
    params: &Params,
) -> Result<String> {
    let id = params.required_int("userID")?;
    let hash = params.text("userHash");
    let owner = match access_keys::account(conn, hash) {
        Ok(owner) if owner.id == account.id => Some(access_keys::user_id(conn, hash)?),
        Ok(_) | Err(Error::Unauthenticated) => None,
        Err(e) => return Err(e),
    };
    if owner != Some(id) {
        return Ok(ws::document(
            "CheckUserHashResult",
            ws::code::KEY_INVALID,
            "User hash not valid for this user",
            |_| {},
        ));
    }
    Ok(ws::ok("CheckUserHash", |w| {
        w.leaf("idUser", &id.to_string());
    }))
}

/// `GetCredits()` and `GetCreditsLists(idList)`: the account's balances as
/// `credits/{email,sms}`. An unlimited channel reads 2147483647 (the largest
/// `xs:int`, so a client comparing the balance with what it is about to send
/// goes ahead) with `unlimited="true"`. Lists share the account's credits:
/// GetCreditsLists answers them under `list/{listID,credits}`.
pub fn credits(
    conn: &mut DbConnection,
    account: &Account,
    params: &Params,
    operation: &str,
) -> Result<String> {
    let balances = credits::get(conn, account.id)?;
    if operation == "GetCreditsLists" {
        let list = lists::get(conn, account.id, params.required_int("idList")?)?;
        return Ok(ws::ok(operation, |w| {
            w.open("list", &[]).leaf("listID", &list.number.to_string());
            write_credits(w, &balances);
            w.close();
        }));
    }
    Ok(ws::ok(operation, |w| write_credits(w, &balances)))
}

fn write_credits(w: &mut XmlWriter, credits: &Credits) {
    w.open("credits", &[]);
    for (name, balance) in [("email", credits.email), ("sms", credits.sms)] {
        match balance {
            Balance::Unlimited => {
                w.open(name, &[("unlimited", "true")])
                    .text(&i32::MAX.to_string())
                    .close();
            }
            Balance::Left(left) => {
                w.leaf(name, &left.to_string());
            }
        }
    }
    w.close();
}
