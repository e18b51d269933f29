//! MailUpSend, MailUpManage and MailUpReport in-process on both backends: the
//! golden request/response pairs in `fixtures/mailup/{manage,send,report}/`
//! replayed in that order on one database (one access key per service
//! directory, opens and clicks recorded before the reports), and every inner
//! document they hold validated against `schemas/mailup-ws.xsd`.
//!
//! Values that differ per run are written as placeholders: `{password}`,
//! `{wsPassword}`, `{accessKey}` and `{guid}` (list 1's GUID) in requests;
//! in responses also `{uuid}` for other GUIDs and `{date}` for
//! `dd/MM/yyyy HH:mm:ss` stamps. `ESPBRIDGE_RECORD_FIXTURES=1` writes the
//! responses instead of comparing (to be reviewed before committing).

mod common;

use std::path::{Path, PathBuf};

use actix_web::{App, test};
use espbridge::config::Settings;
use espbridge::domain::accounts::{self, CreatedAccount, NewAccount};
use espbridge::domain::recipients::Contact;
use espbridge::domain::subscriptions::{self, Subscribe};
use espbridge::domain::tracking::{self, Activity, Hit, PendingHit};
use espbridge::domain::{Channel, Origin};
use espbridge::server::{AppState, configure};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mailup");
const SERVICES: [(&str, &str); 3] = [
    ("manage", "/MailupManage.asmx"),
    ("send", "/mailupsend.asmx"),
    ("report", "/MailupReport.asmx"),
];

fn seed(t: &common::TestDb) -> CreatedAccount {
    let mut conn = t.db.conn().unwrap();
    let created = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Shop".into(),
            console_id: Some(1234),
            console_hosts: Vec::new(),
        },
    )
    .unwrap();
    for email in ["ann@example.com", "ben@example.com"] {
        subscriptions::subscribe(
            &mut conn,
            created.account_id,
            &Subscribe {
                list: 1,
                contact: Contact::email(email),
                fields: vec![(espbridge::domain::fields::FieldRef::Number(1), "Ann".into())]
                    .into_iter()
                    .filter(|_| email.starts_with("ann"))
                    .collect(),
                groups: vec![],
                double_opt_in: Some(false),
                source: "test".into(),
                origin: Origin::new(Channel::Cli, "test"),
            },
        )
        .unwrap();
    }
    created
}

/// Fixture pairs of a service, in order.
fn requests(service: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(Path::new(FIXTURES).join(service))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".request.xml"))
        .collect();
    paths.sort();
    paths
}

/// `text` with every GUID shape replaced by `{uuid}` and every
/// `dd/MM/yyyy HH:mm:ss` by `{date}`.
fn mask(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(j, b)| match j {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let is_date = |s: &[u8]| {
        s.len() == 19
            && s.iter().enumerate().all(|(j, b)| match j {
                2 | 5 => *b == b'/',
                10 => *b == b' ',
                13 | 16 => *b == b':',
                _ => b.is_ascii_digit(),
            })
    };
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push_str("{uuid}");
            i += 36;
        } else if i + 19 <= bytes.len() && is_date(&bytes[i..i + 19]) {
            out.push_str("{date}");
            i += 19;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The inner document of a `…Result` element, unescaped.
fn inner(xml: &str) -> Option<String> {
    let start = xml.find("Result>")? + "Result>".len();
    let end = start + xml[start..].find("</")?;
    let text = &xml[start..end];
    text.starts_with("&lt;").then(|| {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    })
}

backend_tests! {
    fn golden_fixtures(t) {
        let created = seed(t);
        let record = std::env::var("ESPBRIDGE_RECORD_FIXTURES").is_ok_and(|v| v == "1");
        let mut documents = Vec::new();
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(AppState::new(t.db.clone(), Settings::default())))).await;
            let mut key = String::new();
            for (service, path) in SERVICES {
                if service == "report" {
                    record_activity(t, created.account_id);
                }
                for request_path in requests(service) {
                    let name = request_path.file_name().unwrap().to_string_lossy().replace(".request.xml", "");
                    let request = std::fs::read_to_string(&request_path).unwrap()
                        .replace("{password}", &created.mailup.console_password)
                        .replace("{wsPassword}", &created.mailup.ws_password)
                        .replace("{accessKey}", &key)
                        .replace("{guid}", &created.default_list.guid);
                    let operation = name.split_once('-').unwrap().1.to_string();
                    let content_type = if request.contains("http://www.w3.org/2003/05/soap-envelope") {
                        format!("application/soap+xml; charset=utf-8; action=\"http://services.mailupnet.it/WS/{operation}\"")
                    } else {
                        "text/xml; charset=utf-8".to_string()
                    };
                    let mut builder = test::TestRequest::post()
                        .uri(path)
                        .insert_header(("Content-Type", content_type))
                        .peer_addr("198.51.100.7:4000".parse().unwrap());
                    if !request.contains("2003/05/soap-envelope") {
                        builder = builder.insert_header(("SOAPAction", format!("\"http://services.mailupnet.it/WS/{operation}\"")));
                    }
                    let response = test::call_service(&app, builder.set_payload(request).to_request()).await;
                    let status = response.status().as_u16();
                    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                    if let Some(found) = body.split("&lt;accessKey&gt;").nth(1).and_then(|rest| rest.split("&lt;/accessKey&gt;").next()) {
                        key = found.to_string();
                    }
                    let mut actual = format!("HTTP {status}\n{body}\n");
                    if !key.is_empty() {
                        actual = actual.replace(&key, "{accessKey}");
                    }
                    let actual = mask(&actual.replace(&created.default_list.guid, "{guid}"));
                    let expected_path = request_path.with_file_name(format!("{name}.response.xml"));
                    if record {
                        std::fs::write(&expected_path, &actual).unwrap();
                    } else {
                        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| panic!("{} missing", expected_path.display()));
                        assert_eq!(actual, expected, "{service}/{name}");
                    }
                    if let Some(document) = inner(&body) {
                        documents.push((format!("{service}/{name}"), document));
                    }
                }
            }
        });
        assert!(documents.len() > 40, "{}", documents.len());
        validate(&documents);
    }
}

/// Ann opens newsletter 1 twice and clicks its first link; Ben opens it once.
fn record_activity(t: &common::TestDb, account_id: i64) {
    use diesel::prelude::*;
    use espbridge::db::schema::deliveries;
    let mut conn = t.db.conn().unwrap();
    let rows: Vec<(i64, String)> = deliveries::table
        .filter(deliveries::account_id.eq(account_id))
        .filter(deliveries::send_id.eq(1))
        .select((deliveries::id, deliveries::address))
        .order(deliveries::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let hit = |delivery_id, activity, url: Option<&str>| PendingHit {
        delivery_id,
        activity,
        url: url.map(str::to_string),
        hit: Hit {
            ip: Some("198.51.100.9".into()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
            ),
            head: false,
        },
        at: espbridge::domain::now(),
    };
    let ann = rows.iter().find(|r| r.1 == "ann@example.com").unwrap().0;
    let ben = rows.iter().find(|r| r.1 == "ben@example.com").unwrap().0;
    let hits = [
        hit(ann, Activity::Open, None),
        hit(ann, Activity::Open, None),
        hit(ann, Activity::Click, Some("https://shop.example/spring")),
        hit(ben, Activity::Open, None),
    ];
    assert_eq!(tracking::record_batch(&mut conn, &hits).unwrap(), 4);
}

/// Every inner document against `schemas/mailup-ws.xsd`, with lxml.
fn validate(documents: &[(String, String)]) {
    let Some(python) = common::test_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for (i, (name, document)) in documents.iter().enumerate() {
        let file = dir.path().join(format!("{i:03}.xml"));
        std::fs::write(&file, document).unwrap();
        names.push((name.clone(), file));
    }
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/mailup-ws.xsd");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/validate_xsd.py");
    let mut command = std::process::Command::new(python);
    command.arg(script).arg(schema);
    for (_, file) in &names {
        command.arg(file);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "schema validation failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
