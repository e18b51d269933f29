//! Caller allow-lists: the IP addresses an account accepts calls from, per web
//! service (MailUp's "FrontEnd" pages and its "WSMailupImport" service).
//! Loopback callers are always accepted; an account can switch the check off.

use std::net::IpAddr;

use diesel::prelude::*;

use super::accounts::Account;
use super::now;
use crate::db::schema::caller_ips;
use crate::db::{DbConnection, backend, on_backend};
use crate::{Error, Result};

/// The services an IP can be registered for, named as MailUp's `ws_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    FrontEnd,
    MailupImport,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::FrontEnd => "FrontEnd",
            Service::MailupImport => "WSMailupImport",
        }
    }

    /// Reads a `ws_name` in any letter case.
    pub fn parse(name: &str) -> Option<Service> {
        [Service::FrontEnd, Service::MailupImport]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// Whether the account takes calls to `service` from `ip`.
pub fn is_allowed(
    conn: &mut DbConnection,
    account: &Account,
    service: Service,
    ip: IpAddr,
) -> Result<bool> {
    let ip = canonical(ip);
    if ip.is_loopback() || !account.settings().restrict_callers {
        return Ok(true);
    }
    let found: i64 = on_backend!(conn, |c| caller_ips::table
        .filter(caller_ips::account_id.eq(account.id))
        .filter(caller_ips::service.eq(service.as_str()))
        .filter(caller_ips::ip.eq(ip.to_string()))
        .count()
        .get_result(c))?;
    Ok(found > 0)
}

/// Registers `ip` for `service`. Returns false if it was registered already.
pub fn register(
    conn: &mut DbConnection,
    account_id: i64,
    service: Service,
    ip: IpAddr,
) -> Result<bool> {
    let ip = canonical(ip).to_string();
    backend::insert_caller_ip_if_absent(conn, account_id, service.as_str(), &ip, now())
}

/// Removes a registration. Returns whether there was one.
pub fn unregister(
    conn: &mut DbConnection,
    account_id: i64,
    service: Service,
    ip: IpAddr,
) -> Result<bool> {
    let removed = diesel::delete(
        caller_ips::table
            .filter(caller_ips::account_id.eq(account_id))
            .filter(caller_ips::service.eq(service.as_str()))
            .filter(caller_ips::ip.eq(canonical(ip).to_string())),
    )
    .execute(conn)?;
    Ok(removed > 0)
}

/// The registered IPs of a service, in text order.
pub fn registered(
    conn: &mut DbConnection,
    account_id: i64,
    service: Service,
) -> Result<Vec<String>> {
    Ok(caller_ips::table
        .filter(caller_ips::account_id.eq(account_id))
        .filter(caller_ips::service.eq(service.as_str()))
        .order(caller_ips::ip)
        .select(caller_ips::ip)
        .load(conn)?)
}

/// One spelling per address: an IPv4 address reached over an IPv6 socket
/// (`::ffff:10.0.0.1`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Parses an address given by an operator.
pub fn parse_ip(text: &str) -> Result<IpAddr> {
    text.trim()
        .parse()
        .map_err(|_| Error::invalid("IP address", format!("{text:?} is not an IP address")))
}
