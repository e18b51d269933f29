//! eCircle's SOAP API (`/rpc`): the golden fixtures in `fixtures/ecircle/`
//! replayed in-process on both backends with what they wrote checked
//! afterwards; the WSDL at both its URLs; and Python's zeep and PHP's
//! SoapClient loading it over a real port, with the parametrised single message
//! arriving at a real SMTP server and its open read back through
//! lookupMessages; and the mails of changeGroupSettings (a group's prefix,
//! headers and footers), invite (the confirmation link, followed), sendMessage
//! (the welcome) and sendEmailToMe arriving at a real SMTP server.

mod common;

use std::collections::BTreeMap;

use actix_web::{App, test};
use diesel::prelude::*;
use espbridge::config::Settings;
use espbridge::db::schema::{api_sessions, deliveries};
use espbridge::domain::accounts::{self, CreatedAccount, NewAccount};
use espbridge::domain::credentials::{self, CredentialKind};
use espbridge::domain::list_decorations;
use espbridge::domain::lists::{self, NewList};
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::recipients::{self, RecipientKey};
use espbridge::domain::subscriptions::{self, Status};
use espbridge::render::Dialect;
use espbridge::render::decoration::Decoration;
use espbridge::server::{AppState, configure};

use common::golden;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ecircle");
const RPCNS: &str = "http://webservices.ecircleag.com/rpcns";

struct Seeded {
    created: CreatedAccount,
    other: CreatedAccount,
    message_id: i64,
    group_message_id: i64,
    draft_message_id: i64,
}

/// An account reached at `news.example.com` with group (list) 1 "News" and
/// group 2 "Offers", a single message in eCircle's dialect, a message of each
/// group, a draft, and a second account whose data must stay out of reach.
fn seed(t: &common::TestDb) -> Seeded {
    let mut conn = t.db.conn().unwrap();
    let created = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Fixtures".into(),
            console_id: Some(1001),
            console_hosts: vec!["news.example.com".into()],
        },
    )
    .unwrap();
    let other = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Other".into(),
            console_id: Some(2002),
            console_hosts: vec!["other.example.com".into()],
        },
    )
    .unwrap();
    lists::create(
        &mut conn,
        created.account_id,
        &NewList {
            number: Some(2),
            name: "Offers".into(),
            ..NewList::default()
        },
    )
    .unwrap();
    let message = messages::create(
        &mut conn,
        created.account_id,
        &NewMessage {
            dialect: Dialect::Ecircle,
            name: "Password reset".into(),
            from_email: "shop@news.example.com".into(),
            ..NewMessage::email(
                "<%parameter.SUBJECT%>",
                "<html><body><p>Hello <%user.firstname%>,</p><p><%InsertIf expression=\"${parameter.MSG_BODY == null}\"%>no body<%/InsertIf%><%InsertElse%><%parameter.MSG_BODY%><%/InsertElse%></p><p>Customer <%${user['customerNo']}%></p></body></html>",
            )
        },
    )
    .unwrap();
    let mut newsletter = NewMessage::email("News", "<p>Hello <%user.firstname%></p>");
    newsletter.dialect = Dialect::Ecircle;
    newsletter.list = Some(1);
    let group_message = messages::create(&mut conn, created.account_id, &newsletter).unwrap();
    let draft = messages::create(
        &mut conn,
        created.account_id,
        &NewMessage::email("Draft", "<p>later</p>"),
    )
    .unwrap();
    // A message of group 2 that is never sent (lookupMessages' status filter).
    let mut offer = NewMessage::email("Autumn offer", "<p>Coats</p>");
    offer.name = "Autumn offer".into();
    offer.list = Some(2);
    messages::create(&mut conn, created.account_id, &offer).unwrap();
    // The API user's own address, for sendEmailToMe; the other's has none.
    credentials::set_email(
        &mut conn,
        created.account_id,
        CredentialKind::Ecircle,
        "ops@news.example.com",
    )
    .unwrap();
    Seeded {
        created,
        other,
        message_id: message.id,
        group_message_id: group_message.id,
        draft_message_id: draft.id,
    }
}

fn envelope(operation: &str, children: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><{operation} xmlns=\"{RPCNS}\">{children}</{operation}></soapenv:Body></soapenv:Envelope>"
    )
}

/// The text of the first `<tag>` in `xml`.
fn element_text(xml: &str, tag: &str) -> String {
    let start = xml
        .find(&format!("<{tag}>"))
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + tag.len()
        + 2;
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    xml[start..end].to_string()
}

backend_tests! {
    fn golden_fixtures_and_what_they_wrote(t) {
        let seeded = seed(t);
        let account = seeded.created.account_id;
        let cases = golden::read(FIXTURES, &BTreeMap::new());
        assert!(cases.len() >= 40, "fixtures missing: {}", cases.len());
        let state = AppState::new(t.db.clone(), Settings::default());
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(state))).await;
            // The WSDL at both URLs, pointing back at /rpc where it was fetched.
            for path in ["/rpc?wsdl", "/soap/ecm.wsdl"] {
                let response = test::call_service(&app, test::TestRequest::get().uri(path).insert_header(("Host", "news.example.com")).to_request()).await;
                assert_eq!(response.status(), 200, "{path}");
                let wsdl = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                assert!(wsdl.contains("<wsdlsoap:address location=\"http://news.example.com/rpc\"/>"), "{path}");
                assert!(wsdl.contains("<wsdl:service name=\"EcMSoapBridgeService\">"));
            }
            // Log on for the fixtures' `{session}`.
            let logon = envelope("logon", &format!(
                "<realm>{}/</realm><user>{}</user><passwd>{}</passwd>",
                seeded.created.ecircle.realm, seeded.created.ecircle.user, seeded.created.ecircle.password
            ));
            let response = test::call_service(&app, test::TestRequest::post().uri("/rpc").insert_header(("Content-Type", "text/xml")).set_payload(logon).to_request()).await;
            assert_eq!(response.status(), 200);
            let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
            let session = element_text(&body, "logonReturn");
            assert_eq!(session.len(), 40, "{body}");
            let ec = &seeded.other.ecircle;
            let logon = envelope("logon", &format!("<realm>{}</realm><user>{}</user><passwd>{}</passwd>", ec.realm, ec.user, ec.password));
            let response = test::call_service(&app, test::TestRequest::post().uri("/rpc").insert_header(("Content-Type", "text/xml")).set_payload(logon).to_request()).await;
            let other_session = element_text(std::str::from_utf8(&test::read_body(response).await).unwrap(), "logonReturn");
            let vars = BTreeMap::from([
                ("session", session),
                ("other_session", other_session),
                ("realm", seeded.created.ecircle.realm.clone()),
                ("user", seeded.created.ecircle.user.clone()),
                ("password", seeded.created.ecircle.password.clone()),
                ("message", seeded.message_id.to_string()),
                ("group_message", seeded.group_message_id.to_string()),
                ("draft_message", seeded.draft_message_id.to_string()),
            ]);
            let cases = golden::read(FIXTURES, &vars);
            for case in &cases {
                let mut request = test::TestRequest::post().uri(&case.target).insert_header(("Host", "news.example.com"));
                for (name, value) in &case.headers {
                    request = request.insert_header((name.as_str(), value.as_str()));
                }
                let response = test::call_service(&app, request.set_payload(case.body.clone()).to_request()).await;
                let status = response.status().as_u16();
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                assert_eq!(status, case.status, "{}: status; body {body:?}", case.name);
                assert!(golden::matches(&case.expected, &body), "{}:\nexpected {:?}\n     got {body:?}", case.name, case.expected);
            }

            // The other account's session reaches none of this account's data.
            let call = |operation: &str, children: String| {
                test::TestRequest::post().uri("/rpc").insert_header(("Content-Type", "text/xml")).set_payload(envelope(operation, &children)).to_request()
            };
            let ec = &seeded.other.ecircle;
            let response = test::call_service(&app, call("logon", format!("<realm>{}</realm><user>{}</user><passwd>{}</passwd>", ec.realm, ec.user, ec.password))).await;
            let other = element_text(std::str::from_utf8(&test::read_body(response).await).unwrap(), "logonReturn");
            for (operation, children, expected) in [
                ("lookupUserById", "<userId>1</userId>", "<lookupUserByIdReturn xsi:nil=\"true\"/>"),
                ("lookupUserByEmail", "<email>anna@example.com</email>", "<lookupUserByEmailReturn xsi:nil=\"true\"/>"),
                ("lookupMemberById", "<memberid>1g1</memberid>", "<lookupMemberByIdReturn xsi:nil=\"true\"/>"),
                ("createMember", "<userId>1</userId><groupId>1</groupId><invite>false</invite><sendMessage>false</sendMessage>", "<code>103</code>"),
                ("getGroupProperty", "<gid>2</gid><name>shop.color</name>", "<code>502</code>"),
                ("sendSingleMessageToUser", "<singleMessageId>1</singleMessageId><userId>1</userId>", "<code>104</code>"),
                ("deleteUser", "<userId>1</userId>", "<code>103</code>"),
            ] {
                let response = test::call_service(&app, call(operation, format!("<session>{other}</session>{children}"))).await;
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                assert!(body.contains(expected), "{operation} across accounts: {body}");
            }
        });

        let mut conn = t.db.conn().unwrap();
        let key = |email: &str| RecipientKey::Email(email.into());
        // Anna: standard children, custom and named attributes as fields.
        let anna = recipients::get(&mut conn, account, &key("anna@example.com")).unwrap();
        let names: BTreeMap<i32, String> = espbridge::domain::fields::all(&mut conn, account).unwrap().into_iter().map(|f| (f.number, f.name)).collect();
        let values: BTreeMap<String, String> = recipients::field_values(&mut conn, account, anna.id).unwrap().into_iter().map(|(n, v)| (names[&n].clone(), v)).collect();
        assert_eq!(values["customerNo"], "K-77");
        assert_eq!(values["firstname"], "Anna Maria");
        assert_eq!(values["cust_attr_2"], "silver");
        assert_eq!(values["fax"], "+46 8 123");
        // Memberships: Anna in 1, Carla unsubscribed from 2, Dora left 1.
        assert_eq!(subscriptions::status(&mut conn, account, 1, &key("anna@example.com")).unwrap(), Some(Status::Subscribed));
        assert_eq!(subscriptions::status(&mut conn, account, 2, &key("carla@example.com")).unwrap(), Some(Status::Unsubscribed));
        assert_eq!(subscriptions::status(&mut conn, account, 1, &key("dora@example.com")).unwrap(), Some(Status::Unsubscribed));
        // Bruno was erased.
        let bruno = recipients::get(&mut conn, account, &RecipientKey::Id(2)).unwrap();
        assert!(bruno.erased_at.is_some());
        // The parametrised single message is in the outbox with its parameters.
        let queued: Vec<(String, Option<String>)> = deliveries::table
            .filter(deliveries::account_id.eq(account))
            .order(deliveries::id)
            .select((deliveries::address, deliveries::params))
            .load(&mut conn)
            .unwrap();
        assert_eq!(queued.len(), 7, "{queued:?}");
        assert_eq!(queued[0].0, "anna@example.com");
        let params: serde_json::Value = serde_json::from_str(queued[0].1.as_deref().unwrap()).unwrap();
        assert_eq!(params, serde_json::json!({"SUBJECT": "Your code", "MSG_BODY": "<b>K-77</b>"}));
        assert_eq!((queued[1].0.as_str(), queued[1].1.as_deref()), ("dora@example.com", None));
        assert_eq!((queued[2].0.as_str(), queued[2].1.as_deref()), ("dora@example.com", None));
        assert_eq!((queued[3].0.as_str(), queued[3].1.as_deref()), ("anna@example.com", None));
        // sendEmailToMe: the note's subject and text as given, never templates.
        assert_eq!(queued[4].0, "ops@news.example.com");
        let params: serde_json::Value = serde_json::from_str(queued[4].1.as_deref().unwrap()).unwrap();
        assert_eq!(params, serde_json::json!({"subject": "Import finished", "text": "3 rows imported <%parameter.X%> {{ 1 + 1 }}"}));
        // invite: Anna's confirmation link; sendMessage: Gil's welcome (once).
        assert_eq!(queued[5].0, "anna@example.com");
        let params: serde_json::Value = serde_json::from_str(queued[5].1.as_deref().unwrap()).unwrap();
        assert!(params["confirm_url"].as_str().unwrap().starts_with("http://news.example.com/confirm?t="), "{params}");
        assert_eq!((queued[6].0.as_str(), queued[6].1.as_deref()), ("gil@example.com", None));
        assert_eq!(subscriptions::status(&mut conn, account, 2, &key("anna@example.com")).unwrap(), Some(Status::Pending));
        assert_eq!(subscriptions::status(&mut conn, account, 2, &key("gil@example.com")).unwrap(), Some(Status::Subscribed));
        // Group 2's settings: nil kept the prefix, empty cleared the HTML footer.
        let offers = lists::get(&mut conn, account, 2).unwrap();
        assert_eq!(offers.description, "Weekly offers");
        assert_eq!(
            list_decorations::get(&mut conn, account, offers.id).unwrap(),
            Decoration {
                subject_prefix: "[Offers]".into(),
                text_header: "OFFERS OF THE WEEK".into(),
                text_footer: "-- \nOffers by Example".into(),
                html_header: "<h1>Offers of the week</h1>".into(),
                html_footer: String::new(),
            }
        );
        // The fixtures' session was logged out; only the one the `logon`
        // fixture opened is left.
        let sessions: i64 = api_sessions::table.filter(api_sessions::account_id.eq(account)).count().get_result(&mut conn).unwrap();
        assert_eq!(sessions, 1);
        // Groups 3 and 4 are gone, with their memberships; 1 and 2 stay.
        let numbers: Vec<i64> = lists::all(&mut conn, account).unwrap().into_iter().map(|l| l.number).collect();
        assert_eq!(numbers, vec![1, 2]);
        // A fault after a write left nothing behind.
        assert!(recipients::find(&mut conn, account, &key("eve@example.com")).unwrap().is_none());
        // The other account saw nothing.
        let other = seeded.other.account_id;
        assert!(recipients::find(&mut conn, other, &key("anna@example.com")).unwrap().is_none());
    }
}

backend_tests! {
    fn hostile_envelopes_and_documents_get_faults(t) {
        let seeded = seed(t);
        let account = seeded.created.account_id;
        let state = AppState::new(t.db.clone(), Settings::default());
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(state))).await;
            let post = |body: Vec<u8>| test::TestRequest::post().uri("/rpc").insert_header(("Content-Type", "text/xml")).set_payload(body).to_request();
            for (name, document) in common::hostile_documents() {
                let response = test::call_service(&app, post(document)).await;
                assert_eq!(response.status(), 500, "{name}");
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                assert!(body.contains("<faultcode>soap:Client</faultcode>"), "{name}: {body}");
            }
            // Hostile user documents inside a good envelope: EcMException 101.
            let ec = &seeded.created.ecircle;
            let logon = envelope("logon", &format!("<realm>{}</realm><user>{}</user><passwd>{}</passwd>", ec.realm, ec.user, ec.password));
            let body = test::read_body(test::call_service(&app, post(logon.into_bytes())).await).await;
            let session = element_text(std::str::from_utf8(&body).unwrap(), "logonReturn");
            let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
            for document in [
                "<!DOCTYPE user [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><user><email>x@example.com</email><firstname>&b;</firstname></user>".to_string(),
                format!("<user><email>x@example.com</email>{deep}</user>"),
                "<user><email>x@example.com</email>".to_string(),
                format!("<user><email>x@example.com</email>{}</user>", "<firstname>x</firstname>".repeat(3000)),
            ] {
                let escaped = espbridge::xml::writer::escape(&document);
                let request = envelope("createOrUpdateUserByEmail", &format!("<session>{session}</session><userXml>{escaped}</userXml><sendMessage>false</sendMessage>"));
                let response = test::call_service(&app, post(request.into_bytes())).await;
                assert_eq!(response.status(), 500);
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                assert!(body.contains("<code>101</code>"), "{document:.60}: {body}");
            }
        });
        let mut conn = t.db.conn().unwrap();
        assert!(recipients::find(&mut conn, account, &RecipientKey::Email("x@example.com".into())).unwrap().is_none());
    }
}

/// A single message of its own for one client, so its statistics are its own.
fn single_message(t: &common::TestDb, account: i64, name: &str) -> i64 {
    messages::create(
        &mut t.db.conn().unwrap(),
        account,
        &NewMessage {
            dialect: Dialect::Ecircle,
            name: name.into(),
            from_email: "shop@news.example.com".into(),
            ..NewMessage::email(
                "<%parameter.SUBJECT%>",
                "<html><body><p>Hello <%user.firstname%> (<%${user['customerNo']}%>)</p><%InsertIf expression=\"${parameter.MSG_BODY == null}\"%><p>no body</p><%/InsertIf%><%InsertElse%><p><%parameter.MSG_BODY%></p><%/InsertElse%></body></html>",
            )
        },
    )
    .unwrap()
    .id
}

/// Runs one phase of a client script and reads its JSON.
fn phase(program: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(program)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/").to_string() + script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {}: {}{}",
        args[0],
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The whole journey with one real client: log on, create a user with named
/// attributes, subscribe and look the member up, send a parametrised single
/// message (delivered through a real SMTP server with the parameters filled
/// in), open it, read the open back through lookupMessages, unsubscribe, log
/// out; then an expired session and a wrong password.
fn journey(
    t: &common::TestDb,
    server: &common::RunningServer,
    smtp: &common::SmtpServer,
    created: &CreatedAccount,
    (program, script, email): (&str, &str, &str),
) {
    let account = created.account_id;
    let message = single_message(t, account, script).to_string();
    let wsdl = format!("{}/soap/ecm.wsdl", server.base());
    let ec = &created.ecircle;
    let common_args = [
        wsdl.as_str(),
        &ec.realm,
        &ec.user,
        &ec.password,
        email,
        "2",
        &message,
    ];
    let first = phase(
        program,
        script,
        &[&["first"][..], &common_args[..]].concat(),
    );
    let user_id = first["user_id"].as_str().unwrap().to_string();
    assert_eq!(first["member_id"], format!("{user_id}g2"), "{first}");
    let member = first["member"].as_str().unwrap();
    assert!(
        member.starts_with(&format!(
            "<member id=\"{user_id}g2\"><email>{email}</email><firstname>Zoe</firstname>"
        )),
        "{member}"
    );
    assert!(member.contains("<namedattr name=\"customerNo\">Z-42</namedattr><namedattr name=\"tier\">gold</namedattr>"), "{member}");

    // The message arrives with the parameters and the user's attributes filled in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mail = loop {
        if let Some(mail) = smtp
            .received()
            .into_iter()
            .find(|m| m.rcpt_tos.iter().any(|r| r == email))
        {
            break mail;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{script}: no mail for {email}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("a MIME message");
    let (subject, code) = if script.starts_with("zeep") {
        ("Your code from zeep", "Z-1234")
    } else {
        ("Your code from PHP", "P-5678")
    };
    assert_eq!(parsed.subject(), Some(subject));
    let html = parsed.body_html(0).expect("an HTML part").into_owned();
    assert!(
        html.contains(&format!("<p>Code <b>{code}</b></p>")),
        "{html}"
    );
    assert!(html.contains("Hello Zoe (Z-42)"), "{html}");
    assert!(!html.contains("no body"), "{html}");

    // The reader opens it a while after delivery, with images on. The sender
    // records the delivery after the SMTP server has the mail: wait for that
    // record before dating it back, or the sender's own write would undo it.
    let mut conn = t.db.conn().unwrap();
    while deliveries::table
        .filter(deliveries::address.eq(email))
        .filter(deliveries::sent_at.is_not_null())
        .count()
        .get_result::<i64>(&mut conn)
        .unwrap()
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{script}: the delivery was not recorded as sent"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    diesel::update(deliveries::table.filter(deliveries::address.eq(email)))
        .set(deliveries::sent_at.eq(Some(
            espbridge::domain::now() - chrono::Duration::minutes(10),
        )))
        .execute(&mut conn)
        .unwrap();
    let start = html.find("/t/o/").expect("an open pixel");
    let end = start + html[start..].find('"').unwrap();
    let pixel = html[start..end].to_string();
    let browser = (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    );
    assert_eq!(
        common::http(
            server.port,
            "GET",
            &pixel,
            &[browser],
            Vec::new(),
            std::time::Duration::from_secs(10)
        )
        .unwrap()
        .status,
        200
    );
    // The sender records the delivery after the SMTP server has the mail, and
    // opens are recorded in batches: wait until both are.
    let message_id: i64 = message.parse().unwrap();
    while {
        let totals =
            espbridge::domain::message_stats::totals(&mut conn, account, message_id).unwrap();
        totals.sent < 1 || totals.unique_opens < 1
    } {
        assert!(
            std::time::Instant::now() < deadline,
            "{script}: the open was not recorded"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The second session has been idle longer than the timeout.
    let expiring = first["expiring"].as_str().unwrap();
    diesel::update(
        api_sessions::table.filter(
            api_sessions::token_hash.eq(espbridge::domain::secrets::token_digest(expiring)),
        ),
    )
    .set(api_sessions::last_used_at.eq(espbridge::domain::now() - chrono::Duration::minutes(11)))
    .execute(&mut conn)
    .unwrap();

    let session = first["session"].as_str().unwrap();
    let second = phase(
        program,
        script,
        &[&["second"][..], &common_args[..], &[session, expiring][..]].concat(),
    );
    let info = &second["messages"][0];
    assert_eq!(
        (info["id"].as_str(), info["type"].as_str()),
        (Some(message.as_str()), Some("single")),
        "{second}"
    );
    assert_eq!(
        (
            info["recipientCount"].as_i64(),
            info["actualRecipientCount"].as_i64(),
            info["readerCount"].as_i64()
        ),
        (Some(1), Some(1), Some(1)),
        "{second}"
    );
    assert_eq!(info["openRate"].as_f64(), Some(1.0), "{second}");
    if script.starts_with("zeep") {
        assert_eq!(second["hourly_openings"], 1, "{second}");
    }
    // The date filters as each client writes dates.
    assert_eq!(
        second["sent_in_range"],
        serde_json::json!([message]),
        "{second}"
    );
    assert_eq!(second["created_later"], 0, "{second}");
    // changeGroupSettings: what a client sends as None/null (nil) is kept.
    // zeep runs first and sets the prefix and the HTML header; PHP then
    // changes only the text footer and the description.
    let offers = lists::get(&mut conn, account, 2).unwrap();
    let zeep = Decoration {
        subject_prefix: "[zeep]".into(),
        html_header: "<p>zeep</p>".into(),
        ..Decoration::default()
    };
    let (description, decoration) = if script.starts_with("zeep") {
        ("Set by zeep", zeep)
    } else {
        (
            "Set by PHP",
            Decoration {
                text_footer: "php footer".into(),
                ..zeep
            },
        )
    };
    assert_eq!(offers.description, description);
    assert_eq!(
        list_decorations::get(&mut conn, account, offers.id).unwrap(),
        decoration
    );
    assert_eq!(second["unsubscribed"], true, "{second}");
    assert!(second["member_after"].is_null(), "{second}");
    let not_authenticated = serde_json::json!({"code": 501, "errorMessage": "Not authenticated", "faultstring": "Not authenticated"});
    for case in ["after_logout", "expired", "wrong_password"] {
        assert_eq!(second[case], not_authenticated, "{script} {case}: {second}");
    }
    assert_eq!(
        subscriptions::status(&mut conn, account, 2, &RecipientKey::Email(email.into())).unwrap(),
        Some(Status::Unsubscribed)
    );
}

backend_tests! {
    fn zeep_and_php_soapclient_journeys(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let seeded = seed(t);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("espbridge.toml");
        std::fs::write(&config, "[sender]\npoll_milliseconds = 50\n").unwrap();
        let smtp_url = smtp.url();
        let server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_SMTP_URL", smtp_url.as_str()), ("ESPBRIDGE_CONFIG", config.to_str().unwrap())]);
        let python = common::test_python().expect("SmtpServer needs the test Python");
        journey(t, &server, &smtp, &seeded.created, (&python, "zeep_ecircle.py", "zoe.zeep@example.com"));
        if let Some(php) = common::test_php() {
            journey(t, &server, &smtp, &seeded.created, (php, "soapclient_ecircle.php", "zoe.php@example.com"));
        }
    }
}

/// The first mail the SMTP server received for `address` whose subject
/// satisfies `wanted`, waiting for the sender up to a minute.
fn mail_for(smtp: &common::SmtpServer, address: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        for mail in smtp.received() {
            if !mail.rcpt_tos.iter().any(|r| r == address) {
                continue;
            }
            let parsed = mail_parser::MessageParser::default()
                .parse(mail.data.as_bytes())
                .expect("a MIME message");
            if wanted(parsed.subject().unwrap_or("")) {
                return mail.data;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail for {address}: {:?}",
            smtp.received()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

backend_tests! {
    fn group_settings_invitations_welcomes_and_notes_arrive(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let seeded = seed(t);
        let account = seeded.created.account_id;
        // A message of group 2 with both parts, to show each gets its own header and footer.
        let mut offer = NewMessage::email("Autumn sale", "<html><body><p>All coats half price.</p></body></html>");
        offer.text = Some("All coats half price.".into());
        offer.list = Some(2);
        let offer = messages::create(&mut t.db.conn().unwrap(), account, &offer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("espbridge.toml");
        std::fs::write(&config, "[sender]\npoll_milliseconds = 50\n").unwrap();
        let smtp_url = smtp.url();
        let server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_SMTP_URL", smtp_url.as_str()), ("ESPBRIDGE_CONFIG", config.to_str().unwrap())]);
        let call = |operation: &str, children: &str| -> String {
            let answer = common::http(
                server.port,
                "POST",
                "/rpc",
                &[("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", "\"\"")],
                envelope(operation, children).into_bytes(),
                std::time::Duration::from_secs(30),
            )
            .unwrap();
            assert_eq!(answer.status, 200, "{operation}: {}", answer.body);
            answer.body
        };
        let ec = &seeded.created.ecircle;
        let session = element_text(&call("logon", &format!("<realm>{}</realm><user>{}</user><passwd>{}</passwd>", ec.realm, ec.user, ec.password)), "logonReturn");
        let with_session = |children: &str| format!("<session>{session}</session>{children}");
        call("changeGroupSettings", &with_session("<groupId>2</groupId><description>Weekly offers</description><prefix>[Offers]</prefix><textFooter>Offers by Example</textFooter><textHeader>OFFERS OF THE WEEK</textHeader><htmlFooter>&lt;p&gt;Sent by Example&lt;/p&gt;</htmlFooter><htmlHeader>&lt;h1&gt;Offers of the week&lt;/h1&gt;</htmlHeader>"));
        // sendMessage: Hal joins directly and is welcomed.
        let hal = element_text(&call("subscribeMemberByEmail", &with_session("<email>hal@example.com</email><groupId>2</groupId><sendMessage>true</sendMessage>")), "subscribeMemberByEmailReturn");
        let hal_user = hal.strip_suffix("g2").unwrap().to_string();
        // invite: Ivy waits for her confirmation.
        let ivy_user = element_text(&call("createOrUpdateUserByEmail", &with_session("<userXml>&lt;user&gt;&lt;email&gt;ivy@example.com&lt;/email&gt;&lt;/user&gt;</userXml><sendMessage>false</sendMessage>")), "createOrUpdateUserByEmailReturn");
        call("createMember", &with_session(&format!("<userId>{ivy_user}</userId><groupId>2</groupId><invite>true</invite><sendMessage>true</sendMessage>")));
        let pending = call("lookupMemberById_v2_0", &with_session(&format!("<memberid>{ivy_user}g2</memberid><onlyActive>true</onlyActive>")));
        assert!(pending.contains("xsi:nil=\"true\""), "{pending}");
        call("sendEmailToMe", &with_session("<subject>Import finished</subject><message>3 rows imported.\nNothing refused.</message>"));

        let welcome = mail_for(&smtp, "hal@example.com", |s| s.starts_with("Welcome"));
        let parsed = mail_parser::MessageParser::default().parse(welcome.as_bytes()).unwrap();
        // The system's own mail carries no group decoration.
        assert_eq!(parsed.subject(), Some("Welcome to Offers"));
        assert!(!welcome.contains("Offers of the week"), "{welcome}");

        let invitation = mail_for(&smtp, "ivy@example.com", |s| s.starts_with("Please confirm"));
        let parsed = mail_parser::MessageParser::default().parse(invitation.as_bytes()).unwrap();
        // The link is HTML-escaped in the href (`/` as `&#x2f;`).
        let html = parsed.body_html(0).unwrap().replace("&#x2f;", "/");
        let start = html.find("/confirm?t=").expect("a confirmation link");
        let end = start + html[start..].find('"').unwrap();
        let link = html[start..end].to_string();
        let page = common::http(server.port, "GET", &link, &[], Vec::new(), std::time::Duration::from_secs(30)).unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        let active = call("lookupMemberById_v2_0", &with_session(&format!("<memberid>{ivy_user}g2</memberid><onlyActive>true</onlyActive>")));
        assert!(active.contains("&lt;email&gt;ivy@example.com&lt;/email&gt;"), "{active}");

        let note = mail_for(&smtp, "ops@news.example.com", |s| s == "Import finished");
        let parsed = mail_parser::MessageParser::default().parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n").trim_end(), "3 rows imported.\nNothing refused.");
        assert!(!note.contains("text/html"), "{note}");

        // Mail to the group carries its prefix, headers and footers: a single
        // group message with both parts, and a campaign to the whole group.
        call("sendGroupMessageToUser", &with_session(&format!("<groupid>2</groupid><messageId>{}</messageId><userId>{hal_user}</userId>", offer.id)));
        let single = mail_for(&smtp, "hal@example.com", |s| s.contains("Autumn sale"));
        let parsed = mail_parser::MessageParser::default().parse(single.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some("[Offers] Autumn sale"));
        let html = parsed.body_html(0).unwrap().into_owned();
        assert!(html.contains("<body><h1>Offers of the week</h1><p>All coats half price.</p><p>Sent by Example</p>"), "{html}");
        assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n").trim_end(), "OFFERS OF THE WEEK\nAll coats half price.\nOffers by Example");
        call("copyAndSendDraftMessage", &with_session(&format!("<groupId>2</groupId><messageId>{}</messageId>", seeded.draft_message_id)));
        for member in ["hal@example.com", "ivy@example.com"] {
            let campaign = mail_for(&smtp, member, |s| s.contains("Draft"));
            let parsed = mail_parser::MessageParser::default().parse(campaign.as_bytes()).unwrap();
            assert_eq!(parsed.subject(), Some("[Offers] Draft"), "{member}");
            let html = parsed.body_html(0).unwrap().into_owned();
            assert!(html.starts_with("<h1>Offers of the week</h1><p>later</p><p>Sent by Example</p>"), "{member}: {html}");
        }
        // Following the link made Ivy's membership active for good.
        assert_eq!(
            subscriptions::status(&mut t.db.conn().unwrap(), account, 2, &RecipientKey::Email("ivy@example.com".into())).unwrap(),
            Some(Status::Subscribed)
        );
    }
}
