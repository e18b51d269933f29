//! MailUp's HTTP "frontend" pages (`/frontend/xmlSubscribe.aspx` and siblings):
//! GET or POST, page and parameter names in any case, the answer a bare code.
//! See `../shared/specs/mailup.md` §1 and `docs/compat/mailup.md`.

use std::collections::HashMap;
use std::net::IpAddr;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::db::{DbConnection, Shared};
use crate::domain::accounts::{self, Account};
use crate::domain::callers::{self, Service};
use crate::domain::confirmations::{self, SenderOverride};
use crate::domain::fields::FieldRef;
use crate::domain::links::LinkSigner;
use crate::domain::recipients::{self, Contact, Mobile, RecipientKey};
use crate::domain::subscriptions::{
    self, GroupChange, Status, Subscribe, UnsubscribeReason, Unsubscribed,
};
use crate::domain::{Channel, Origin, credentials, groups, lists, users};
use crate::protocols::form::Form;
use crate::server::AppState;
use crate::web::{base_url, client_ip, read_body};
use crate::{Error, Result};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // A static prefix and the page name read from the rest of the path: a
    // `{page}` segment is matched by a regex and copied out on every request.
    cfg.service(web::scope("/frontend").default_service(web::to(page)));
}

/// A form is a few hundred bytes; anything near this is not a legitimate call.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The pages, matched without regard to case as IIS did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Subscribe,
    Unsubscribe,
    CheckSubscriber,
    UpdateSubscriber,
    Activation,
}

impl Page {
    fn parse(name: &str) -> Option<Page> {
        match name.to_ascii_lowercase().as_str() {
            "xmlsubscribe.aspx" => Some(Page::Subscribe),
            "xmlunsubscribe.aspx" => Some(Page::Unsubscribe),
            "xmlchksubscriber.aspx" => Some(Page::CheckSubscriber),
            "xmlupdsubscriber.aspx" => Some(Page::UpdateSubscriber),
            "wsactivation.aspx" => Some(Page::Activation),
            _ => None,
        }
    }
}

/// The codes the `xml*` pages answer with.
mod code {
    pub const OK: i32 = 0;
    pub const GENERIC_ERROR: i32 = 1;
    pub const INVALID_ADDRESS: i32 = 2;
    pub const ALREADY_SUBSCRIBED: i32 = 3;
    /// xmlUnSubscribe: unknown recipient or already unsubscribed.
    pub const NOT_SUBSCRIBED: i32 = 3;
    pub const IP_NOT_REGISTERED: i32 = -1011;
    // xmlChkSubscriber
    pub const SUBSCRIBED: i32 = 2;
    pub const UNSUBSCRIBED: i32 = 3;
    pub const PENDING: i32 = 4;
}

/// What a page needs to know about its request besides the parameters.
struct Call {
    form: Form,
    host: String,
    ip: Option<IpAddr>,
    base_url: String,
}

async fn page(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let name = req.match_info().unprocessed().strip_prefix('/');
    let Some(page) = name.and_then(Page::parse) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    let body = match read_body(payload, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            log::info!("frontend {page:?}: {e}");
            return bare_code(page, Ok(code::GENERIC_ERROR));
        }
    };
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let call = Call {
        form: Form::parse(req.query_string(), &body, content_type),
        host: req.connection_info().host().to_string(),
        ip: client_ip(&req, &state.settings),
        base_url: base_url(&req, &state.settings),
    };
    let answer = match page {
        Page::Activation => return activation_page(&state, call).await,
        Page::Subscribe => match state.link_signer().await {
            // A refusal by the domain comes back as its error, so that the
            // request's savepoint undoes whatever it wrote before it.
            Ok(signer) => {
                let call = SubscribeCall::read(call);
                state
                    .db
                    .write_grouped(move |conn, shared| subscribe(conn, shared, &signer, &call))
                    .await
                    .or_else(|e| refusal(e, code::INVALID_ADDRESS))
            }
            Err(e) => Err(e),
        },
        Page::Unsubscribe => {
            state
                .db
                .write_grouped(move |conn, _| unsubscribe(conn, &call))
                .await
        }
        Page::CheckSubscriber => state.db.run(move |conn| check(conn, &call)).await,
        Page::UpdateSubscriber => {
            state
                .db
                .write_grouped(move |conn, _| update(conn, &call))
                .await
        }
    };
    bare_code(page, answer)
}

/// The body is the bare code. Our own failures are logged and answered with the
/// generic error code, which clients treat as "try later".
fn bare_code(page: Page, answer: Result<i32>) -> HttpResponse {
    let code = answer.unwrap_or_else(|e| {
        log::error!("frontend {page:?}: {e}");
        code::GENERIC_ERROR
    });
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(code.to_string())
}

/// The account a call is for (by its Host, or the only account) if the caller
/// may use the frontend: `Err(code)` otherwise.
fn account_for(
    conn: &mut DbConnection,
    host: &str,
    ip: Option<IpAddr>,
) -> Result<std::result::Result<Account, i32>> {
    let Some(account) = accounts::for_host(conn, host)? else {
        return Ok(Err(code::GENERIC_ERROR));
    };
    let allowed = match ip {
        Some(ip) => callers::is_allowed(conn, &account, Service::FrontEnd, ip)?,
        None => false,
    };
    if !allowed {
        return Ok(Err(code::IP_NOT_REGISTERED));
    }
    Ok(Ok(account))
}

/// Unwraps `Ok(Ok(x))`, returns the code of anything else.
macro_rules! or_code {
    ($value:expr) => {
        match $value {
            Ok(v) => v,
            Err(code) => return Ok(code),
        }
    };
}

fn origin(call: &Call) -> Origin {
    Origin::new(
        Channel::MailupFrontend,
        call.ip.map(|ip| ip.to_string()).unwrap_or_default(),
    )
}

/// The recipient a call names by `Email` or `Sms` (e-mail first). `Err(code 2)`
/// when neither is given.
fn contact(form: &Form) -> std::result::Result<Contact, i32> {
    let email = form.non_empty("Email").map(str::to_string);
    let mobile = form.non_empty("Sms").map(Mobile::new);
    if email.is_none() && mobile.is_none() {
        return Err(code::INVALID_ADDRESS);
    }
    Ok(Contact { email, mobile })
}

fn key_of(contact: &Contact) -> RecipientKey {
    match (&contact.email, &contact.mobile) {
        (Some(email), _) => RecipientKey::Email(email.clone()),
        (None, Some(mobile)) => RecipientKey::Mobile(mobile.clone()),
        (None, None) => unreachable!("contact() requires one of them"),
    }
}

/// Numbers separated by `separator`; empty pieces are skipped. `Err` on
/// anything not a number.
fn numbers(text: &str, separator: char) -> std::result::Result<Vec<i64>, i32> {
    text.split(separator)
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .map(|piece| piece.parse().map_err(|_| code::GENERIC_ERROR))
        .collect()
}

/// `csvFldNames` / `csvFldValues`: `campoN` (any case) names field N; another
/// name is taken as a field name of the account. The counts must agree (a value
/// with a `;` in it makes them differ, as MailUp documents).
fn field_values(form: &Form) -> std::result::Result<Vec<(FieldRef, String)>, i32> {
    let Some(names) = form.non_empty("csvFldNames") else {
        return Ok(Vec::new());
    };
    let mut names: Vec<&str> = names.split(';').map(str::trim).collect();
    let values_text = form.get("csvFldValues").unwrap_or("");
    let mut values: Vec<&str> = values_text.split(';').collect();
    if names.last() == Some(&"") {
        names.pop();
        if values.len() > names.len() && values.last().is_some_and(|v| v.trim().is_empty()) {
            values.pop();
        }
    }
    if names.len() != values.len() || names.iter().any(|n| n.is_empty()) {
        return Err(code::GENERIC_ERROR);
    }
    Ok(names
        .into_iter()
        .zip(values)
        .map(|(name, value)| {
            let number = name
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case("campo"))
                .and_then(|_| name[5..].parse::<i32>().ok());
            let field = match number {
                Some(n) => FieldRef::Number(n),
                None => FieldRef::Name(name.to_string()),
            };
            (field, value.trim().to_string())
        })
        .collect())
}

/// Maps the domain's refusals of a request onto the page's codes; anything of
/// our own stays an error (logged, answered with the generic code).
fn refusal(error: Error, invalid_address: i32) -> Result<i32> {
    match error {
        Error::Invalid {
            field: "email" | "mobile",
            ..
        } => Ok(invalid_address),
        e if e.is_internal() => Err(e),
        _ => Ok(code::GENERIC_ERROR),
    }
}

/// What xmlSubscribe requests of one write group looked up (the caller's
/// account and its lists), for the requests after them: under load most
/// requests of a group come from the same caller for the same lists. The
/// lists' member counts in here go stale as the group subscribes; they are
/// not read.
#[derive(Default)]
struct Lookups {
    accounts: HashMap<(String, Option<IpAddr>), std::result::Result<Account, i32>>,
    lists: HashMap<(i64, i64), Option<lists::List>>,
}

impl Lookups {
    fn account(
        &mut self,
        conn: &mut DbConnection,
        host: &str,
        ip: Option<IpAddr>,
    ) -> Result<std::result::Result<Account, i32>> {
        let key = (host.to_string(), ip);
        if let Some(found) = self.accounts.get(&key) {
            return Ok(found.clone());
        }
        let found = account_for(conn, host, ip)?;
        self.accounts.insert(key, found.clone());
        Ok(found)
    }

    fn list(
        &mut self,
        conn: &mut DbConnection,
        account_id: i64,
        number: i64,
    ) -> Result<Option<lists::List>> {
        if let Some(found) = self.lists.get(&(account_id, number)) {
            return Ok(found.clone());
        }
        let found = lists::find(conn, account_id, number)?;
        self.lists.insert((account_id, number), found.clone());
        Ok(found)
    }
}

/// An xmlSubscribe call with its parameters read in the request's own worker
/// thread: the group writer, which takes every subscribe one at a time, then
/// only looks up and writes (decision 71).
struct SubscribeCall {
    host: String,
    ip: Option<IpAddr>,
    base_url: String,
    /// `Err(code)` for parameters that cannot be taken; answered only once the
    /// caller is known, as an unregistered caller gets -1011 whatever it sent.
    form: std::result::Result<SubscribeForm, i32>,
}

struct SubscribeForm {
    contact: Contact,
    list_numbers: Vec<i64>,
    group_numbers: Vec<i64>,
    fields: Vec<(FieldRef, String)>,
    double_opt_in: bool,
    confirm_list: Option<i64>,
    sender: Option<SenderOverride>,
    source: String,
    origin: Origin,
}

impl SubscribeCall {
    fn read(call: Call) -> SubscribeCall {
        SubscribeCall {
            form: SubscribeForm::read(&call),
            host: call.host,
            ip: call.ip,
            base_url: call.base_url,
        }
    }
}

impl SubscribeForm {
    fn read(call: &Call) -> std::result::Result<SubscribeForm, i32> {
        let form = &call.form;
        let contact = contact(form)?;
        let list_numbers = numbers(form.non_empty("List").ok_or(code::GENERIC_ERROR)?, ',')?;
        let group_numbers = numbers(form.get("Group").unwrap_or(""), ',')?;
        let fields = field_values(form)?;
        let double_opt_in = match form.flag("Confirm") {
            None => true,
            Some(Ok(flag)) => flag,
            Some(Err(())) => return Err(code::GENERIC_ERROR),
        };
        let confirm_list = form
            .non_empty("ConfirmListID")
            .and_then(|text| text.parse::<i64>().ok());
        let sender = match form.non_empty("Dynsndmail") {
            None => None,
            Some(address) => match recipients::checked_email(address) {
                Ok(email) => Some(SenderOverride {
                    email,
                    name: form.get("dynsndname").unwrap_or("").to_string(),
                }),
                Err(_) => return Err(code::GENERIC_ERROR),
            },
        };
        if list_numbers.is_empty() {
            return Err(code::GENERIC_ERROR);
        }
        Ok(SubscribeForm {
            // An SMS-only subscriber has no mailbox to confirm from: subscribed directly.
            double_opt_in: double_opt_in && contact.email.is_some(),
            contact,
            list_numbers,
            group_numbers,
            fields,
            confirm_list,
            sender,
            source: form.non_empty("source").unwrap_or("frontend").to_string(),
            origin: origin(call),
        })
    }
}

/// Subscribes as the call asks; a refusal of the domain is returned as its
/// error (see [`refusal`]), anything refused before a write as its code.
fn subscribe(
    conn: &mut DbConnection,
    shared: &mut Shared,
    signer: &LinkSigner,
    call: &SubscribeCall,
) -> Result<i32> {
    let lookups = shared.get::<Lookups>();
    let account = or_code!(lookups.account(conn, &call.host, call.ip)?);
    let form = match &call.form {
        Ok(form) => form,
        Err(code) => return Ok(*code),
    };
    // Each group goes to the list it belongs to; a group of none of the lists is
    // an error, as is an unknown list.
    let mut lists = Vec::with_capacity(form.list_numbers.len());
    for number in &form.list_numbers {
        match lookups.list(conn, account.id, *number)? {
            Some(list) => lists.push(list),
            None => return Ok(code::GENERIC_ERROR),
        }
    }
    let mut groups_of: Vec<Vec<groups::Group>> = vec![Vec::new(); lists.len()];
    for number in &form.group_numbers {
        let Some(group) = groups::find(conn, account.id, *number)? else {
            return Ok(code::GENERIC_ERROR);
        };
        match lists.iter().position(|l| l.id == group.list_id) {
            Some(at) => groups_of[at].push(group),
            None => return Ok(code::GENERIC_ERROR),
        }
    }
    // Each list's row is locked for its counts: taking them in one order keeps
    // `List=1,2` and `List=2,1` arriving together from deadlocking (PostgreSQL).
    let mut targets: Vec<(lists::List, Vec<groups::Group>)> =
        lists.into_iter().zip(groups_of).collect();
    targets.sort_by_key(|(list, _)| list.id);
    let mut pending = Vec::new();
    let mut all_already = true;
    for (list, groups) in &targets {
        let request = Subscribe {
            list: list.number,
            contact: form.contact.clone(),
            fields: form.fields.clone(),
            groups: groups.iter().map(|g| g.number).collect(),
            double_opt_in: Some(form.double_opt_in),
            source: form.source.clone(),
            origin: form.origin.clone(),
        };
        // The lists and groups were looked up above: not again.
        let done = subscriptions::subscribe_in(conn, list, groups, &request, Some(&mut *shared))?;
        all_already &= done.was_already_subscribed();
        if let Some(token) = done.confirmation_token {
            pending.push((list, token));
        }
    }
    send_confirmations(
        conn,
        signer,
        account.id,
        &call.base_url,
        &form.contact,
        pending,
        form.confirm_list,
        form.sender.clone(),
    )?;
    Ok(if all_already {
        code::ALREADY_SUBSCRIBED
    } else {
        code::OK
    })
}

/// One confirmation mail per list, or a single one for all of them when
/// `ConfirmListID` names one of the lists.
#[allow(clippy::too_many_arguments)]
fn send_confirmations(
    conn: &mut DbConnection,
    signer: &LinkSigner,
    account_id: i64,
    base_url: &str,
    contact: &Contact,
    pending: Vec<(&lists::List, String)>,
    confirm_list: Option<i64>,
    sender: Option<SenderOverride>,
) -> Result<()> {
    let recipient = key_of(contact);
    let one_for_all = confirm_list.and_then(|n| pending.iter().find(|(l, _)| l.number == n));
    let mails: Vec<(&lists::List, Vec<String>)> = match one_for_all {
        Some((list, _)) => vec![(list, pending.iter().map(|(_, t)| t.clone()).collect())],
        None => pending.iter().map(|(l, t)| (*l, vec![t.clone()])).collect(),
    };
    for (list, tokens) in mails {
        confirmations::enqueue(
            conn,
            signer,
            account_id,
            &confirmations::Request {
                list,
                recipient: recipient.clone(),
                tokens,
                sender: sender.clone(),
                confirm_page: &format!("{base_url}{}", crate::web::confirm::PATH),
            },
        )?;
    }
    Ok(())
}

/// `List` and `ListGuid` must name the same list; a call without `ListGuid`
/// is taken by `List` alone. `Err(1)` otherwise.
fn named_list(
    conn: &mut DbConnection,
    account: &Account,
    form: &Form,
) -> Result<std::result::Result<i64, i32>> {
    let Some(number) = form.non_empty("List").and_then(|n| n.parse::<i64>().ok()) else {
        return Ok(Err(code::GENERIC_ERROR));
    };
    let Some(list) = lists::find(conn, account.id, number)? else {
        return Ok(Err(code::GENERIC_ERROR));
    };
    if let Some(guid) = form.non_empty("ListGuid") {
        let guid = guid.trim_matches(|c| c == '{' || c == '}');
        if !guid.eq_ignore_ascii_case(&list.guid) {
            return Ok(Err(code::GENERIC_ERROR));
        }
    }
    Ok(Ok(list.number))
}

fn check(conn: &mut DbConnection, call: &Call) -> Result<i32> {
    let account = or_code!(account_for(conn, &call.host, call.ip)?);
    let list = or_code!(named_list(conn, &account, &call.form)?);
    let contact = or_code!(contact(&call.form).map_err(|_| code::GENERIC_ERROR));
    let status = match subscriptions::status(conn, account.id, list, &key_of(&contact)) {
        Ok(status) => status,
        Err(e) => return refusal(e, code::GENERIC_ERROR),
    };
    Ok(match status {
        None => code::GENERIC_ERROR,
        Some(Status::Subscribed) => code::SUBSCRIBED,
        Some(Status::Unsubscribed) => code::UNSUBSCRIBED,
        Some(Status::Pending) => code::PENDING,
    })
}

fn unsubscribe(conn: &mut DbConnection, call: &Call) -> Result<i32> {
    let account = or_code!(account_for(conn, &call.host, call.ip)?);
    let list = or_code!(named_list(conn, &account, &call.form)?);
    let contact = or_code!(contact(&call.form).map_err(|_| code::GENERIC_ERROR));
    let done = subscriptions::unsubscribe(
        conn,
        account.id,
        list,
        &key_of(&contact),
        UnsubscribeReason::AdminConsole,
        &origin(call),
    );
    match done {
        Ok(Unsubscribed::Done { .. }) => Ok(code::OK),
        Ok(Unsubscribed::AlreadyUnsubscribed | Unsubscribed::NotOnList) => Ok(code::NOT_SUBSCRIBED),
        Err(e) => refusal(e, code::NOT_SUBSCRIBED),
    }
}

fn update(conn: &mut DbConnection, call: &Call) -> Result<i32> {
    let account = or_code!(account_for(conn, &call.host, call.ip)?);
    let form = &call.form;
    let list = or_code!(named_list(conn, &account, form)?);
    let contact = or_code!(contact(form).map_err(|_| code::GENERIC_ERROR));
    let fields = or_code!(field_values(form));
    // MailUp refuses values with a double hyphen.
    if fields.iter().any(|(_, value)| value.contains("--")) {
        return Ok(code::GENERIC_ERROR);
    }
    let replace = match form.flag("Replace") {
        None => false,
        Some(Ok(flag)) => flag,
        Some(Err(())) => return Ok(code::GENERIC_ERROR),
    };
    let group_change = match form.get("Group") {
        None => None,
        Some(text) => Some(GroupChange {
            groups: or_code!(numbers(text, ';')),
            replace,
        }),
    };
    match subscriptions::update_member(
        conn,
        account.id,
        list,
        &key_of(&contact),
        &fields,
        group_change.as_ref(),
    ) {
        Ok(()) => Ok(code::OK),
        Err(e) => refusal(e, code::GENERIC_ERROR),
    }
}

/// `WSActivation.aspx` answers a `mailupMessage` document.
mod activation {
    pub const OK: i32 = 0;
    pub const WS_NAME_MISSING: i32 = -2;
    pub const USER_MISSING: i32 = -4;
    pub const PASSWORD_MISSING: i32 = -8;
    pub const URL_MISSING: i32 = -16;
    pub const ACCOUNT_INVALID: i32 = -1001;
    pub const PASSWORD_INVALID: i32 = -1002;
    pub const WS_NOT_ENABLED: i32 = -1006;
    pub const ACTIVATION_ERROR: i32 = -1009;
    pub const IP_REGISTRATION_ERROR: i32 = -1010;
}

/// The `WS_Activation` block's values.
#[derive(Clone)]
struct ActivationBlock {
    ws_name: String,
    user: String,
}

async fn activation_page(state: &AppState, call: Call) -> HttpResponse {
    let block = ActivationBlock {
        ws_name: call.form.get("ws_name").unwrap_or("").to_string(),
        user: call.form.get("usr").unwrap_or("").to_string(),
    };
    let code = {
        let block = block.clone();
        state
            .db
            .write(move |conn| activate(conn, &call, &block))
            .await
    };
    let code = code.unwrap_or_else(|e| {
        log::error!("WSActivation.aspx: {e}");
        activation::ACTIVATION_ERROR
    });
    HttpResponse::Ok()
        .content_type("text/xml; charset=windows-1252")
        .body(activation_document(code, &block))
}

/// Registers the caller's IP for a web service of the account named by
/// `nl_url`, after checking the account's WS or console credentials.
fn activate(conn: &mut DbConnection, call: &Call, block: &ActivationBlock) -> Result<i32> {
    let form = &call.form;
    let missing = [
        ("ws_name", activation::WS_NAME_MISSING),
        ("usr", activation::USER_MISSING),
        ("pwd", activation::PASSWORD_MISSING),
        ("nl_url", activation::URL_MISSING),
    ]
    .into_iter()
    .filter(|(name, _)| form.non_empty(name).is_none())
    .map(|(_, code)| code)
    .sum::<i32>();
    if missing != 0 {
        return Ok(missing);
    }
    let Some(service) = Service::parse(&block.ws_name) else {
        return Ok(activation::WS_NOT_ENABLED);
    };
    let nl_url = form.get("nl_url").unwrap_or("");
    // The host of `http://news.example.com:80/`, `news.example.com` and the like.
    let host = nl_url
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    let Some(account) = accounts::for_host(conn, host)? else {
        return Ok(activation::ACCOUNT_INVALID);
    };
    let password = form.get("pwd").unwrap_or("");
    let ws_user = credentials::authenticate(
        conn,
        credentials::CredentialKind::MailupWs,
        "",
        &block.user,
        password,
    );
    let authenticated = match ws_user {
        Ok(credential) => credential.account_id == account.id,
        Err(Error::Unauthenticated) => {
            users::authenticate(conn, account.id, &block.user, password).is_ok()
        }
        Err(e) => return Err(e),
    };
    if !authenticated {
        let known =
            credentials::find(conn, credentials::CredentialKind::MailupWs, "", &block.user)?
                .is_some_and(|c| c.account_id == account.id)
                || users::find(conn, account.id, &block.user)?.is_some();
        return Ok(if known {
            activation::PASSWORD_INVALID
        } else {
            activation::ACCOUNT_INVALID
        });
    }
    let Some(ip) = call.ip else {
        return Ok(activation::IP_REGISTRATION_ERROR);
    };
    callers::register(conn, account.id, service, ip)?;
    Ok(activation::OK)
}

fn activation_document(code: i32, block: &ActivationBlock) -> String {
    super::mailup_message(code, |w| {
        w.open("WS_Activation", &[])
            .leaf("WS_Name", &block.ws_name)
            .leaf("DateOfRequest", &super::console_time(crate::domain::now()))
            .leaf("User", &block.user);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_activation_document_dates_the_request_in_rome_time() {
        let block = ActivationBlock {
            ws_name: "frontend".into(),
            user: "a1".into(),
        };
        let before = super::super::rome_time(crate::domain::now());
        let document = activation_document(activation::OK, &block);
        let after = super::super::rome_time(crate::domain::now());
        let date = document
            .split_once("<DateOfRequest>")
            .and_then(|(_, rest)| rest.split_once("</DateOfRequest>"))
            .map(|(date, _)| date)
            .expect("a DateOfRequest");
        let date = chrono::NaiveDateTime::parse_from_str(date, "%d/%m/%Y %H:%M:%S").unwrap();
        // The document has whole seconds.
        assert!(
            date >= before - chrono::Duration::seconds(1) && date <= after,
            "{date}"
        );
    }
}
