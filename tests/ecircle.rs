//! eCircle's SOAP API (`/rpc`): the golden fixtures in `fixtures/ecircle/`
//! replayed in-process on both backends with what they wrote checked
//! afterwards; the WSDL at both its URLs; and Python's zeep and PHP's
//! SoapClient loading it over a real port, with the parametrised single message
//! arriving at a real SMTP server and its open read back through
//! lookupMessages.

mod common;

use std::collections::BTreeMap;

use actix_web::{App, test};
use diesel::prelude::*;
use espbridge::config::Settings;
use espbridge::db::schema::{api_sessions, deliveries};
use espbridge::domain::accounts::{self, CreatedAccount, NewAccount};
use espbridge::domain::lists::{self, NewList};
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::recipients::{self, RecipientKey};
use espbridge::domain::subscriptions::{self, Status};
use espbridge::render::Dialect;
use espbridge::server::{AppState, configure};

use common::golden;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ecircle");
const RPCNS: &str = "http://webservices.ecircleag.com/rpcns";

struct Seeded {
    created: CreatedAccount,
    other: CreatedAccount,
    message_id: i64,
}

/// An account reached at `news.example.com` with group (list) 1 "News" and
/// group 2 "Offers", a single message in eCircle's dialect, and a second
/// account whose data must stay out of reach.
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
    Seeded {
        created,
        other,
        message_id: message.id,
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
            let vars = BTreeMap::from([
                ("session", session),
                ("realm", seeded.created.ecircle.realm.clone()),
                ("user", seeded.created.ecircle.user.clone()),
                ("password", seeded.created.ecircle.password.clone()),
                ("message", seeded.message_id.to_string()),
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
        assert_eq!(queued.len(), 2, "{queued:?}");
        assert_eq!(queued[0].0, "anna@example.com");
        let params: serde_json::Value = serde_json::from_str(queued[0].1.as_deref().unwrap()).unwrap();
        assert_eq!(params, serde_json::json!({"SUBJECT": "Your code", "MSG_BODY": "<b>K-77</b>"}));
        assert_eq!((queued[1].0.as_str(), queued[1].1.as_deref()), ("dora@example.com", None));
        // Logged out: no session left.
        let sessions: i64 = api_sessions::table.filter(api_sessions::account_id.eq(account)).count().get_result(&mut conn).unwrap();
        assert_eq!(sessions, 0);
        // The other account saw nothing.
        let other = seeded.other.account_id;
        assert!(recipients::find(&mut conn, other, &key("anna@example.com")).unwrap().is_none());
    }
}
