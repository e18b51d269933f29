//! MailUpSend, MailUpManage and MailUpReport on both backends (and
//! WSMailUpImport's golden pairs, replayed after theirs). Interop: zeep
//! and PHP's SoapClient load the WSDLs from a running server, log in, read
//! lists, groups and fields, create a newsletter, send it to a group (to a real
//! SMTP server) and poll its delivery status to completion; the test opens and
//! clicks the delivered messages; the clients read ReportByMessageEN and log
//! out; wrong password, expired key, unknown list and wrong GUID answer their
//! codes. Golden: the request/response pairs in
//! `fixtures/mailup/{manage,send,report,import}/` replayed in that order on one
//! database (one access key per service directory, opens and clicks recorded
//! before the reports, queued imports run before each Import request), and
//! every inner document they hold validated against `schemas/mailup-ws.xsd`
//! or, for Import, `schemas/mailup-import.xsd`.
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
/// Each service's fixture directory, path, namespace and the schema of its
/// inner documents. WSMailUpImport authenticates by a header in every request
/// and comes last (its fixtures see the lists and groups the others made).
const SERVICES: [(&str, &str, &str, &str); 4] = [
    ("manage", "/MailupManage.asmx", WS, "mailup-ws.xsd"),
    ("send", "/mailupsend.asmx", WS, "mailup-ws.xsd"),
    ("report", "/MailupReport.asmx", WS, "mailup-ws.xsd"),
    (
        "import",
        "/Services/WSMailUpImport.asmx",
        IMPORT,
        "mailup-import.xsd",
    ),
];
const WS: &str = "http://services.mailupnet.it/WS/";
const IMPORT: &str = "http://ws.mailupnet.it/";

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
    // 100 SMS credits granted; e-mail unlimited (no balance).
    espbridge::domain::credits::set(
        &mut conn,
        created.account_id,
        espbridge::domain::messages::MessageKind::Sms,
        espbridge::domain::credits::Balance::Left(100),
    )
    .unwrap();
    // A second console user, who logs in by the console's host name.
    accounts::add_console_host(&mut conn, created.account_id, "console.shop.example").unwrap();
    espbridge::domain::users::create(
        &mut conn,
        created.account_id,
        "marketing",
        "marketing-pass-1",
        espbridge::domain::users::Role::Editor,
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
                // MailUpSend writes `HH:mm:ss`, WSMailUpImport `HH.mm.ss`.
                13 | 16 => *b == b':' || *b == b'.',
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
            // SendMessageNL's file, in the account's send folder.
            let data = tempfile::tempdir().unwrap();
            let folder = data.path().join("ftp/1234/send");
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("customers.csv"), "111;1\r\nann@example.com;Ann\r\nnew@example.com;New\r\n").unwrap();
            let settings = Settings { data_dir: data.path().to_path_buf(), ..Settings::default() };
            let app = test::init_service(App::new().configure(configure(AppState::new(t.db.clone(), settings)))).await;
            let mut key = String::new();
            for (service, path, namespace, schema) in SERVICES {
                if service == "report" {
                    record_activity(t, created.account_id);
                }
                for request_path in requests(service) {
                    // Imports started by an earlier request are applied first,
                    // as the runner would by then.
                    while espbridge::domain::imports::run_next(&t.db, "golden", &|| false).unwrap() {}
                    let name = request_path.file_name().unwrap().to_string_lossy().replace(".request.xml", "");
                    let request = std::fs::read_to_string(&request_path).unwrap()
                        .replace("{password}", &created.mailup.console_password)
                        .replace("{wsPassword}", &created.mailup.ws_password)
                        .replace("{accessKey}", &key)
                        .replace("{guid}", &created.default_list.guid);
                    let operation = name.split_once('-').unwrap().1.to_string();
                    let content_type = if request.contains("http://www.w3.org/2003/05/soap-envelope") {
                        format!("application/soap+xml; charset=utf-8; action=\"{namespace}{operation}\"")
                    } else {
                        "text/xml; charset=utf-8".to_string()
                    };
                    // Import callers must be registered or on loopback.
                    let peer = if service == "import" { "127.0.0.1:4000" } else { "198.51.100.7:4000" };
                    let mut builder = test::TestRequest::post()
                        .uri(path)
                        .insert_header(("Content-Type", content_type))
                        .peer_addr(peer.parse().unwrap());
                    if !request.contains("2003/05/soap-envelope") {
                        builder = builder.insert_header(("SOAPAction", format!("\"{namespace}{operation}\"")));
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
                        documents.push((schema, format!("{service}/{name}"), document));
                    }
                }
            }
        });
        assert!(documents.len() > 60, "{}", documents.len());
        for schema in ["mailup-ws.xsd", "mailup-import.xsd"] {
            let of_schema: Vec<(String, String)> = documents
                .iter()
                .filter(|(s, _, _)| *s == schema)
                .map(|(_, name, document)| (name.clone(), document.clone()))
                .collect();
            validate(schema, &of_schema);
        }
    }
}

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs a client script; its JSON output.
fn run(program: &str, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The tracked pixel and links in a delivered message.
fn tracked_urls(raw: &str) -> (String, Vec<String>) {
    let html = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let values = |marker: &str| {
        let mut found = Vec::new();
        for piece in html
            .split('"')
            .filter(|p| p.contains(marker) && p.starts_with("http"))
        {
            found.push(piece.replace("&amp;", "&"));
        }
        found
    };
    let pixels = values("/t/o/");
    (pixels.first().cloned().unwrap_or_default(), values("/t/c/"))
}

fn soap(port: u16, path: &str, operation: &str, params: &str) -> String {
    let envelope = format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><{operation} xmlns=\"http://services.mailupnet.it/WS\">{params}</{operation}></s:Body></s:Envelope>"
    );
    post_envelope(port, path, &[], envelope)
}

/// A server on a real port whose sender mails through `smtp` and polls every
/// 50 ms; `dir` is its data directory and holds its settings file, whose
/// `[sender]` section gets `sender_settings` too.
fn sending_server(
    t: &common::TestDb,
    smtp: &common::SmtpServer,
    dir: &std::path::Path,
    sender_settings: &str,
) -> common::RunningServer {
    let config = dir.join("espbridge.toml");
    std::fs::write(
        &config,
        format!("[sender]\n{sender_settings}poll_milliseconds = 50\n"),
    )
    .unwrap();
    common::RunningServer::start(
        &t.url,
        &[
            ("ESPBRIDGE_SMTP_URL", smtp.url().as_str()),
            ("ESPBRIDGE_CONFIG", config.to_str().unwrap()),
            ("ESPBRIDGE_DATA_DIR", dir.to_str().unwrap()),
        ],
    )
}

/// Posts a SOAP envelope on a real port; the inner document of its answer.
fn post_envelope(port: u16, path: &str, headers: &[(&str, &str)], envelope: String) -> String {
    let mut all = vec![("Content-Type", "text/xml; charset=utf-8")];
    all.extend_from_slice(headers);
    let answer = common::http(port, "POST", path, &all, envelope.into_bytes(), WAIT).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    inner(&answer.body).unwrap_or_else(|| panic!("no document in {}", answer.body))
}

backend_tests! {
    fn zeep_and_php_log_in_send_and_report(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let created = seed(t);
        let account = created.account_id;
        {
            // Three customers in the group, one subscriber outside it.
            let mut conn = t.db.conn().unwrap();
            let group = espbridge::domain::groups::create(&mut conn, account, 1, "Customers", "", None).unwrap();
            for email in ["cat@example.com", "dan@example.com", "eve@example.com", "ann@example.com"] {
                subscriptions::subscribe(&mut conn, account, &Subscribe {
                    list: 1, contact: Contact::email(email), fields: vec![],
                    groups: if email == "ann@example.com" { vec![] } else { vec![group.number] },
                    double_opt_in: Some(false), source: "test".into(), origin: Origin::new(Channel::Cli, "test"),
                }).unwrap();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let server = sending_server(t, &smtp, dir.path(), "bounce_domain = \"bounces.shop.example\"\n");
        let base = server.base();

        // The WSDLs, at any letter case of the path, point back at the server.
        for path in ["/MailupSend.asmx?WSDL", "/mailupmanage.asmx?wsdl", "/MAILUPREPORT.ASMX?WSDL"] {
            let answer = common::http(server.port, "GET", path, &[], Vec::new(), WAIT).unwrap();
            assert_eq!(answer.status, 200, "{path}");
            let location = format!("location=\"{base}{}\"", path.split('?').next().unwrap());
            assert_eq!(answer.body.matches(&location).count(), 2, "{path}");
        }

        let console_id = created.console_id.to_string();
        let Some(python) = common::test_python() else { return };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/zeep_send.py");
        let sent = run(&python, &[script, "send", &base, &created.mailup.console_user, &created.mailup.console_password, &console_id, "Customers", &created.default_list.guid]);
        assert_eq!(sent["wrong_password"], -1002);
        assert_eq!(sent["lists"], serde_json::json!(["News"]));
        assert_eq!(sent["fields"], serde_json::json!(["nome", "cognome", "azienda"]));
        assert_eq!(sent["unknown_list"], -100);
        assert_eq!(sent["created_group"], 0);
        assert_eq!(sent["statuses"].as_array().unwrap().last().unwrap(), "COMPLETED", "{sent}");
        assert_eq!((sent["to_send"].as_i64(), sent["progress"].as_i64()), (Some(3), Some(100)));
        assert_eq!((sent["clone_wrong_guid"].as_i64(), sent["clone_bad_guid"].as_i64()), (Some(-101), Some(-102)));
        assert!(sent["clone"].as_i64().unwrap() > sent["newsletter"].as_i64().unwrap());
        let key = sent["key"].as_str().unwrap().to_string();
        let newsletter = sent["newsletter"].to_string();

        // The group's three members got it, the subscriber outside the group not.
        let mut received = smtp.received();
        received.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
        let rcpts: Vec<String> = received.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
        assert_eq!(rcpts, ["cat@example.com", "dan@example.com", "eve@example.com"]);
        // Delivered a while ago, so the hits below are people, not scanners.
        {
            use diesel::prelude::*;
            use espbridge::db::schema::deliveries;
            diesel::update(deliveries::table.filter(deliveries::account_id.eq(account)))
                .set(deliveries::sent_at.eq(Some(espbridge::domain::now() - chrono::Duration::minutes(10))))
                .execute(&mut t.db.conn().unwrap())
                .unwrap();
        }
        let get = |url: &str| {
            let path = url.strip_prefix(&base).unwrap_or_else(|| panic!("{url} is not on the server"));
            common::http(server.port, "GET", path, &[("User-Agent", BROWSER)], Vec::new(), WAIT).unwrap()
        };
        // Cat and Dan load the images; Cat clicks the first link.
        for (i, mail) in received.iter().enumerate().take(2) {
            let (pixel, links) = tracked_urls(&mail.data);
            assert_eq!(get(&pixel).status, 200);
            if i == 0 {
                assert_eq!(get(&links[0]).status, 302);
            }
        }
        // Hits are recorded in batches: wait for them to land.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let delivery: i64 = sent["delivery"].as_i64().unwrap();
        while espbridge::domain::tracking::send_activity(&mut t.db.conn().unwrap(), account, delivery).unwrap().clicks < 1
            || espbridge::domain::tracking::send_activity(&mut t.db.conn().unwrap(), account, delivery).unwrap().opens < 2 {
            assert!(std::time::Instant::now() < deadline, "hits not recorded");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }

        // PHP reads with its own key, the report of zeep's newsletter, logs out.
        if let Some(php) = common::test_php() {
            let out = run(php, &[concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/soapclient_send.php"), &base, &created.mailup.console_user, &created.mailup.console_password, &console_id, &newsletter]);
            assert_eq!(out["wrong_password"], -1002);
            assert_eq!(out["lists"], serde_json::json!(["News"]));
            assert_eq!(out["groups"], serde_json::json!(["Customers", "From zeep"]));
            assert_eq!(out["first_field"], "nome");
            assert!(out["created"].as_i64().unwrap() > 0);
            assert_eq!(out["code_subject"], "From PHP");
            assert_eq!(out["opens"], 2);
            assert_eq!(out["unknown_list"], -100);
            assert_eq!((out["logout"].as_i64(), out["after_logout"].as_i64()), (Some(0), Some(-1005)));
        }

        // zeep reads the report with the key it got from MailUpSend, logs out.
        let report = run(&python, &[script, "report", &base, &key, &newsletter]);
        assert_eq!(report["code"], 0);
        assert_eq!(report["opens"], 2);
        assert_eq!(report["openers"], serde_json::json!(["cat@example.com", "dan@example.com"]));
        assert_eq!(report["clicks"], serde_json::json!({"https://shop.example/spring": 1}));
        assert_eq!((report["logout"].as_i64(), report["after_logout"].as_i64()), (Some(0), Some(-1005)));

        // A key past its 60 minutes is refused by every service.
        let login = soap(server.port, "/MailupReport.asmx", "LoginFromId", &format!("<user>{}</user><pwd>{}</pwd><consoleId>{console_id}</consoleId>", created.mailup.ws_user, created.mailup.ws_password));
        let key = login.split("<accessKey>").nth(1).unwrap().split('<').next().unwrap().to_string();
        assert!(soap(server.port, "/MailupManage.asmx", "GetLists", &format!("<accessKey>{key}</accessKey>")).contains("<errorCode>0</errorCode>"));
        {
            use diesel::prelude::*;
            use espbridge::db::schema::api_sessions;
            diesel::update(api_sessions::table.filter(api_sessions::account_id.eq(account)))
                .set(api_sessions::expires_at.eq(espbridge::domain::now() - chrono::Duration::minutes(1)))
                .execute(&mut t.db.conn().unwrap())
                .unwrap();
        }
        for (path, operation) in [("/MailupManage.asmx", "GetLists"), ("/MailupSend.asmx", "GetFields_st")] {
            let answer = soap(server.port, path, operation, &format!("<accessKey>{key}</accessKey>"));
            assert!(answer.contains("<errorCode>-1005</errorCode>"), "{answer}");
        }
        // Another account's key neither reads nor changes this account's data.
        let other = accounts::create(&mut t.db.conn().unwrap(), &NewAccount { name: "Other".into(), console_id: Some(777), console_hosts: Vec::new() }).unwrap();
        let login = soap(server.port, "/MailupSend.asmx", "LoginFromId", &format!("<user>{}</user><pwd>{}</pwd><consoleId>777</consoleId>", other.mailup.console_user, other.mailup.console_password));
        let other_key = login.split("<accessKey>").nth(1).unwrap().split('<').next().unwrap().to_string();
        let status = soap(server.port, "/MailupSend.asmx", "GetNewsletterDeliveryStatus", &format!("<accessKey>{other_key}</accessKey><deliveryID>{delivery}</deliveryID>"));
        assert!(status.contains("<errorCode>-500</errorCode>"), "{status}");
        let report = soap(server.port, "/MailupReport.asmx", "ReportByMessageEN", &format!("<accessKey>{other_key}</accessKey><listID>1</listID><messageID>{newsletter}</messageID>"));
        assert!(report.contains("<errorCode>-400</errorCode>"), "{report}");
        let edit = soap(server.port, "/MailupSend.asmx", "EditNewsletter", &format!("<accessKey>{other_key}</accessKey><listID>1</listID><newsletterId>{newsletter}</newsletterId><subject>Hacked</subject><type>HTML</type><content>x</content>"));
        assert!(edit.contains("<errorCode>-400</errorCode>"), "{edit}");
        let groups = soap(server.port, "/MailupManage.asmx", "GetGroups", &format!("<accessKey>{other_key}</accessKey><listID>1</listID>"));
        assert!(!groups.contains("Customers"), "{groups}");
        let message = espbridge::domain::messages::get(&mut t.db.conn().unwrap(), account, newsletter.parse().unwrap()).unwrap();
        assert_eq!(message.subject, "Spring");

        // Hostile documents get a Client fault and the services go on.
        for (name, document) in common::hostile_documents() {
            for path in ["/MailupSend.asmx", "/MailupReport.asmx"] {
                let answer = common::http(server.port, "POST", path, &[("Content-Type", "text/xml; charset=utf-8")], document.clone(), WAIT)
                    .unwrap_or_else(|| panic!("{name}: no answer"));
                assert_eq!(answer.status, 500, "{name}: {}", answer.body);
                assert!(answer.body.contains("<faultcode>soap:Client</faultcode>"), "{name}: {}", answer.body);
            }
        }
        let lists = soap(server.port, "/MailupManage.asmx", "GetLists", &format!("<accessKey>{other_key}</accessKey>"));
        assert!(lists.contains("<errorCode>0</errorCode>"), "{lists}");
        drop(server);
    }
}

/// Ann opens newsletter 1 twice and clicks its first link; Ben opens it once,
/// then unsubscribes.
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
    // Ben leaves the list: the reports show him no more.
    subscriptions::unsubscribe(
        &mut conn,
        account_id,
        1,
        &espbridge::domain::recipients::RecipientKey::Email("ben@example.com".into()),
        subscriptions::UnsubscribeReason::Link,
        &Origin::new(Channel::Web, "test"),
    )
    .unwrap();
}

/// Every inner document against `schemas/mailup-ws.xsd`, with lxml.
fn validate(schema: &str, documents: &[(String, String)]) {
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
    let schema = format!("{}/schemas/{schema}", env!("CARGO_MANIFEST_DIR"));
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

backend_tests! {
    fn wrong_passwords_lock_the_user_for_a_while(t) {
        use espbridge::domain::access_keys::{self, MAX_FAILURES, Refusal};
        let created = seed(t);
        let mut conn = t.db.conn().unwrap();
        let user = created.mailup.console_user.as_str();
        let password = created.mailup.console_password.as_str();
        // A success clears earlier failures.
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(access_keys::login(&mut conn, 1234, user, "guess").unwrap(), Err(Refusal::WrongPassword));
        }
        assert!(access_keys::login(&mut conn, 1234, user, password).unwrap().is_ok());
        for _ in 0..MAX_FAILURES {
            assert_eq!(access_keys::login(&mut conn, 1234, user, "guess").unwrap(), Err(Refusal::WrongPassword));
        }
        // Now even the right password is refused, for this user only.
        assert_eq!(access_keys::login(&mut conn, 1234, user, password).unwrap(), Err(Refusal::Locked));
        assert!(access_keys::login(&mut conn, 1234, &created.mailup.ws_user, &created.mailup.ws_password).unwrap().is_ok());
        // The failures age out of the window.
        {
            use diesel::prelude::*;
            use espbridge::db::schema::login_failures;
            diesel::update(login_failures::table)
                .set(login_failures::failed_at.eq(espbridge::domain::now() - chrono::Duration::minutes(access_keys::FAILURE_WINDOW_MINUTES + 1)))
                .execute(&mut conn)
                .unwrap();
        }
        assert!(access_keys::login(&mut conn, 1234, user, password).unwrap().is_ok());
    }
}

/// The text of the first `<tag>` in a document.
fn value(document: &str, tag: &str) -> String {
    document
        .split(&format!("<{tag}>"))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no <{tag}> in {document}"))
        .to_string()
}

/// Runs the espbridge command line on the test database; its output.
fn cli(t: &common::TestDb, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_espbridge"))
        .env("ESPBRIDGE_DATABASE_URL", &t.url)
        .env("ESPBRIDGE_DATA_DIR", dir.path())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls a delivery until MailUp's status says COMPLETED.
fn wait_completed(port: u16, key: &str, delivery: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = soap(
            port,
            "/MailupSend.asmx",
            "GetNewsletterDeliveryStatus",
            &format!("<accessKey>{key}</accessKey><deliveryID>{delivery}</deliveryID>"),
        );
        if status.contains("<status>COMPLETED</status>") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery not completed: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

backend_tests! {
    fn templates_exclusions_credits_and_user_calls(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let created = seed(t);
        let account = created.account_id;
        let vip = {
            // Ann (seeded) and Dan are in the group, Ben (seeded) and Cat not.
            let mut conn = t.db.conn().unwrap();
            let vip = espbridge::domain::groups::create(&mut conn, account, 1, "VIP", "", None).unwrap();
            for (email, groups) in [("cat@example.com", vec![]), ("dan@example.com", vec![vip.number]), ("ann@example.com", vec![vip.number])] {
                subscriptions::subscribe(&mut conn, account, &Subscribe {
                    list: 1, contact: Contact::email(email), fields: vec![], groups,
                    double_opt_in: Some(false), source: "test".into(), origin: Origin::new(Channel::Cli, "test"),
                }).unwrap();
            }
            vip.number
        };
        let console_id = created.console_id.to_string();
        // The operator grants 10 e-mail credits, then takes the SMS limit away.
        let shown = cli(t, &["credits", "--console-id", &console_id, "--channel", "email", "--balance", "10"]);
        assert_eq!(shown, "email\t10\nsms\t100\n");
        let shown = cli(t, &["credits", "--console-id", &console_id, "--channel", "sms", "--unlimited"]);
        assert_eq!(shown, "email\t10\nsms\tunlimited\n");

        let dir = tempfile::tempdir().unwrap();
        let server = sending_server(t, &smtp, dir.path(), "");
        let port = server.port;
        let send = |operation: &str, params: &str| soap(port, "/MailupSend.asmx", operation, params);
        let login = send("LoginFromId", &format!("<user>{}</user><pwd>{}</pwd><consoleId>{console_id}</consoleId>", created.mailup.console_user, created.mailup.console_password));
        let key = value(&login, "accessKey");
        let k = format!("<accessKey>{key}</accessKey>");

        let credits = send("GetCredits", &k);
        assert!(credits.contains("<credits><email>10</email><sms unlimited=\"true\">2147483647</sms></credits>"), "{credits}");

        // A template: listed by GetTemplates, not by GetNewsletters, not sent
        // itself; its clone is an ordinary newsletter.
        let template = value(&send("CreateNewsletter", &format!("{k}<listID>1</listID><subject>Model</subject><type>HTML</type><content>&lt;p&gt;Hello [nome]&lt;/p&gt;</content><options><Option><Key>template</Key><Value>true</Value></Option></options>")), "newsletterID");
        let templates = send("GetTemplates", &format!("{k}<listID>1</listID>"));
        assert_eq!(value(&templates, "templateID"), template, "{templates}");
        assert!(!send("GetNewsletters", &format!("{k}<listID>1</listID>")).contains(&format!("<newsletterID>{template}</newsletterID>")));
        let code = send("GetNewsletterCode", &format!("{k}<listID>1</listID><newsletterID>{template}</newsletterID><isTemplate>true</isTemplate>"));
        assert_eq!(value(&code, "newsletterSubject"), "Model");
        let refused = send("SendNewsletter", &format!("{k}<listID>1</listID><newsletterID>{template}</newsletterID><options><Option><Key>send_to</Key><Value>ALL</Value></Option></options>"));
        assert_eq!(value(&refused, "errorCode"), "-200", "{refused}");
        let guid = &created.default_list.guid;
        let envelope = format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><CloneMessage xmlns=\"http://services.mailupnet.it/WS\">{k}<listId>1</listId><listGuid>{guid}</listGuid><messageToCloneId>{template}</messageToCloneId><subject>For all but VIPs</subject></CloneMessage></s:Body></s:Envelope>");
        let answer = common::http(port, "POST", "/MailupSend.asmx", &[("Content-Type", "text/xml; charset=utf-8")], envelope.into_bytes(), WAIT).unwrap();
        let copy: i64 = value(&answer.body, "CloneMessageResult").parse().unwrap_or_else(|_| panic!("{}", answer.body));
        assert!(copy > template.parse().unwrap());

        // Sent to the whole list but the VIP group: Ben and Cat only.
        let sent = send("SendNewsletter", &format!("{k}<listID>1</listID><newsletterID>{copy}</newsletterID><options><Option><Key>send_to</Key><Value>ALL</Value></Option><Option><Key>exclude</Key><Value>{vip}</Value></Option></options>"));
        let delivery = value(&sent, "deliveryID");
        wait_completed(port, &key, &delivery);
        let mut rcpts: Vec<String> = smtp.received().into_iter().flat_map(|m| m.rcpt_tos).collect();
        rcpts.sort();
        assert_eq!(rcpts, ["ben@example.com", "cat@example.com"]);
        // Named recipients in an excluded group are left out too.
        let sent = send("SendNewsletter", &format!("{k}<listID>1</listID><newsletterID>{copy}</newsletterID><options><Option><Key>send_to</Key><Value>RECIPIENTS</Value></Option><Option><Key>recipients</Key><Value>ann@example.com;cat@example.com</Value></Option><Option><Key>exclude</Key><Value>{vip}</Value></Option></options>"));
        let delivery = value(&sent, "deliveryID");
        wait_completed(port, &key, &delivery);
        let status = send("GetNewsletterDeliveryStatus", &format!("{k}<deliveryID>{delivery}</deliveryID>"));
        assert_eq!(value(&status, "toSend"), "1", "{status}");
        assert_eq!(smtp.received().iter().filter(|m| m.rcpt_tos == ["cat@example.com"]).count(), 2);
        assert_eq!(smtp.count(), 3);
        // Three messages sent, three credits spent.
        let credits = send("GetCreditsLists", &format!("{k}<idList>1</idList>"));
        assert!(credits.contains("<list><listID>1</listID><credits><email>7</email>"), "{credits}");
        assert_eq!(cli(t, &["credits", "--console-id", &console_id]), "email\t7\nsms\tunlimited\n");

        // A list created from list 1's settings with copyTemplate has its templates.
        let made = soap(port, "/MailupManage.asmx", "CreateList", &format!("{k}<name>Copies</name><defaultSettings>1</defaultSettings><copyTemplate>true</copyTemplate><options/>"));
        let list = value(&made, "listID");
        let copied = send("GetTemplates", &format!("{k}<listID>{list}</listID>"));
        assert_eq!(value(&copied, "subject"), "Model", "{copied}");
        assert_ne!(value(&copied, "templateID"), template);
        let plain = soap(port, "/MailupManage.asmx", "CreateList", &format!("{k}<name>Plain</name><defaultSettings>1</defaultSettings><copyTemplate>false</copyTemplate><options/>"));
        let plain = send("GetTemplates", &format!("{k}<listID>{}</listID>", value(&plain, "listID")));
        assert!(plain.contains("<templates></templates>") || plain.contains("<templates/>"), "{plain}");

        // The key is the user's hash; another key or text is not.
        let user = value(&send("GetIdUser", &k), "idUser");
        let access = send("GetUserAccess", &format!("<userId>{user}</userId>{k}"));
        assert_eq!(value(&access, "userName"), created.mailup.console_user);
        assert!(access.contains("<listName>Copies</listName>"), "{access}");
        let good = send("CheckUserHash", &format!("<userID>{user}</userID><userHash>{key}</userHash>{k}"));
        assert_eq!(value(&good, "errorCode"), "0");
        let ws = send("LoginFromId", &format!("<user>{}</user><pwd>{}</pwd><consoleId>{console_id}</consoleId>", created.mailup.ws_user, created.mailup.ws_password));
        let ws_key = value(&ws, "accessKey");
        for hash in [ws_key.as_str(), "not-a-key"] {
            let bad = send("CheckUserHash", &format!("<userID>{user}</userID><userHash>{hash}</userHash>{k}"));
            assert_eq!(value(&bad, "errorCode"), "-1005", "{bad}");
        }
        let ws_user = send("CheckUserHash", &format!("<userID>0</userID><userHash>{ws_key}</userHash>{k}"));
        assert_eq!(value(&ws_user, "errorCode"), "0");

        // Another account sees none of it and moves nothing of it.
        let prepared = send("PrepareNewsletterSchedule", &format!("{k}<listID>1</listID><newsletterID>{copy}</newsletterID><deliveryDate>01/01/2030</deliveryDate><deliveryTime>08:00</deliveryTime><adminEmail></adminEmail><idUser>0</idUser><note></note>"));
        let schedule = value(&prepared, "scheduleID");
        let other = accounts::create(&mut t.db.conn().unwrap(), &NewAccount { name: "Other".into(), console_id: Some(777), console_hosts: Vec::new() }).unwrap();
        let login = send("LoginFromId", &format!("<user>{}</user><pwd>{}</pwd><consoleId>777</consoleId>", other.mailup.console_user, other.mailup.console_password));
        let o = format!("<accessKey>{}</accessKey>", value(&login, "accessKey"));
        assert!(!send("GetTemplates", &format!("{o}<listID>1</listID>")).contains("<template>"));
        let moved = send("SetNewsletterQueueOrder", &format!("{o}<scheduleID>{schedule}</scheduleID><Up>true</Up>"));
        assert_eq!(value(&moved, "errorCode"), "-500", "{moved}");
        let moved = send("SetNewsletterQueueOrder", &format!("{k}<scheduleID>{schedule}</scheduleID><Up>true</Up>"));
        assert_eq!(value(&moved, "errorCode"), "0", "{moved}");
        let hash = send("CheckUserHash", &format!("<userID>{user}</userID><userHash>{key}</userHash>{o}"));
        assert_eq!(value(&hash, "errorCode"), "-1005", "{hash}");
        let credits = send("GetCredits", &o);
        assert!(credits.contains("<email unlimited=\"true\">"), "{credits}");
        let access = send("GetUserAccess", &format!("<userId>{user}</userId>{o}"));
        assert_eq!(value(&access, "errorCode"), "-200", "{access}");
    }
}

/// The SOAP envelope of a WSMailUpImport call with its header.
fn import_call(port: u16, user: &str, password: &str, operation: &str, params: &str) -> String {
    let envelope = format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header><Authentication xmlns=\"http://ws.mailupnet.it/\"><User>{user}</User><Password>{password}</Password><encType>UTF-8</encType></Authentication></s:Header><s:Body><{operation} xmlns=\"http://ws.mailupnet.it/\">{params}</{operation}></s:Body></s:Envelope>"
    );
    let action = format!("\"{IMPORT}{operation}\"");
    post_envelope(
        port,
        "/Services/WSMailUpImport.asmx",
        &[("SOAPAction", &action)],
        envelope,
    )
}

backend_tests! {
    fn held_import_confirmations_are_sent_from_the_cli(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let created = seed(t);
        let dir = tempfile::tempdir().unwrap();
        let server = sending_server(t, &smtp, dir.path(), "");
        let base = server.base();
        let (user, password) = (created.mailup.ws_user.as_str(), created.mailup.ws_password.as_str());
        let guid = &created.default_list.guid;

        // An import asking for confirmations: Fay and Gus wait, unmailed.
        let xml = "&lt;subscribers&gt;&lt;subscriber email=\"fay@example.com\"/&gt;&lt;subscriber email=\"gus@example.com\"/&gt;&lt;/subscribers&gt;";
        let prepared = import_call(server.port, user, password, "NewImportProcess", &format!("<idList>1</idList><listGUID>{guid}</listGUID><xmlDoc>{xml}</xmlDoc><idGroups></idGroups><importType>3</importType><mobileInputType>1</mobileInputType><asPending>false</asPending><ConfirmEmail>true</ConfirmEmail><asOptOut>false</asOptOut><forceOptIn>false</forceOptIn><replaceGroups>false</replaceGroups><idConfirmNL>0</idConfirmNL>"));
        let process = value(&prepared, "ReturnCode");
        assert!(process.parse::<i64>().unwrap() > 0, "{prepared}");
        let started = import_call(server.port, user, password, "StartProcess", &format!("<idList>1</idList><listGUID>{guid}</listGUID><idProcess>{process}</idProcess>"));
        assert_eq!(value(&started, "ReturnCode"), "0");
        let details = || import_call(server.port, user, password, "GetProcessDetails", &format!("<idList>1</idList><listGUID>{guid}</listGUID><idProcess>{process}</idProcess>"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while value(&details(), "StatusCode") != "3" {
            assert!(std::time::Instant::now() < deadline, "import not done");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(value(&details(), "ConfirmationSent"), "False");
        let fay = espbridge::domain::recipients::RecipientKey::Email("fay@example.com".into());
        let status = |key| subscriptions::status(&mut t.db.conn().unwrap(), created.account_id, 1, key).unwrap();
        assert_eq!(status(&fay), Some(subscriptions::Status::Pending));
        assert_eq!(smtp.count(), 0);

        // The operator sends them; each link confirms its subscriber.
        let console_id = created.console_id.to_string();
        let out = cli(t, &["send-confirmations", "--console-id", &console_id, "--list", "1", "--public-url", &base]);
        assert_eq!(out, "2 confirmation mails queued for list 1\n");
        assert_eq!(value(&details(), "ConfirmationSent"), "True");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while smtp.count() < 2 {
            assert!(std::time::Instant::now() < deadline, "confirmation mails not delivered");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let mut rcpts: Vec<String> = smtp.received().into_iter().flat_map(|m| m.rcpt_tos).collect();
        rcpts.sort();
        assert_eq!(rcpts, ["fay@example.com", "gus@example.com"]);
        let mail = smtp.received().into_iter().find(|m| m.rcpt_tos == ["fay@example.com"]).unwrap();
        let data = mail.data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=").replace("&#x2f;", "/");
        let start = data.find(&format!("{base}/confirm?t=")).expect("the link in the mail");
        let link: String = data[start..].chars().take_while(|c| !matches!(c, '"' | '<' | ' ' | '\r' | '\n')).collect();
        let page = common::http(server.port, "GET", link.strip_prefix(&base).unwrap(), &[("User-Agent", BROWSER)], Vec::new(), WAIT).unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(status(&fay), Some(subscriptions::Status::Subscribed));
        let gus = espbridge::domain::recipients::RecipientKey::Email("gus@example.com".into());
        assert_eq!(status(&gus), Some(subscriptions::Status::Pending));
        // Nothing is held any more: a second run sends nothing.
        let out = cli(t, &["send-confirmations", "--console-id", &console_id, "--list", "1", "--public-url", &base]);
        assert_eq!(out, "0 confirmation mails queued for list 1\n");
    }
}

backend_tests! {
    fn the_sender_follows_the_queue_order(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let created = seed(t);
        let dir = tempfile::tempdir().unwrap();
        let server = sending_server(t, &smtp, dir.path(), "");
        let port = server.port;
        let send = |operation: &str, params: &str| soap(port, "/MailupSend.asmx", operation, params);
        let console_id = created.console_id.to_string();
        let login = send("LoginFromId", &format!("<user>{}</user><pwd>{}</pwd><consoleId>{console_id}</consoleId>", created.mailup.console_user, created.mailup.console_password));
        let key = value(&login, "accessKey");
        let k = format!("<accessKey>{key}</accessKey>");

        // Two schedules, the first made first; the second is moved ahead.
        let mut schedules = Vec::new();
        for subject in ["Made first", "Made second"] {
            let newsletter = value(&send("CreateNewsletter", &format!("{k}<listID>1</listID><subject>{subject}</subject><type>HTML</type><content>&lt;p&gt;{subject}&lt;/p&gt;</content><options/>")), "newsletterID");
            let prepared = send("PrepareNewsletterSchedule", &format!("{k}<listID>1</listID><newsletterID>{newsletter}</newsletterID><deliveryDate>01/01/2026</deliveryDate><deliveryTime>08:00</deliveryTime><adminEmail></adminEmail><idUser>0</idUser><note></note>"));
            schedules.push(value(&prepared, "scheduleID"));
        }
        let (first, second) = (&schedules[0], &schedules[1]);
        let moved = send("SetNewsletterQueueOrder", &format!("{k}<scheduleID>{second}</scheduleID><Up>true</Up>"));
        assert!(moved.contains(&format!("<queue><scheduleID>{second}</scheduleID><scheduleID>{first}</scheduleID></queue>")), "{moved}");
        let queues = send("GetNewsletterQueues", &format!("{k}<listID>1</listID>"));
        let at = |id: &str| queues.find(&format!("<deliveryID>{id}</deliveryID>")).unwrap();
        assert!(at(second) < at(first), "{queues}");
        let unknown = send("SetNewsletterQueueOrder", &format!("{k}<scheduleID>999</scheduleID><Up>true</Up>"));
        assert_eq!(value(&unknown, "errorCode"), "-500");
        // Queued in creation order, sent in queue order: all of the second
        // before any of the first.
        for schedule in [first, second] {
            let queued = send("AddNewsletterQueue", &format!("{k}<deliveryID>{schedule}</deliveryID><immediate>true</immediate>"));
            assert_eq!(value(&queued, "errorCode"), "0", "{queued}");
        }
        wait_completed(port, &key, first);
        wait_completed(port, &key, second);
        let subjects: Vec<&str> = smtp
            .received()
            .iter()
            .map(|m| if m.data.contains("Subject: Made first") { "first" } else { "second" })
            .collect();
        assert_eq!(subjects, ["second", "second", "first", "first"]);
    }
}

backend_tests! {
    fn send_message_nl_sends_to_the_file_recipients(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let created = seed(t);
        {
            let mut conn = t.db.conn().unwrap();
            let ben = espbridge::domain::recipients::RecipientKey::Email("ben@example.com".into());
            subscriptions::unsubscribe(&mut conn, created.account_id, 1, &ben, subscriptions::UnsubscribeReason::Link, &Origin::new(Channel::Cli, "test")).unwrap();
        }
        // Ann is subscribed, Hal unknown, Ben unsubscribed.
        let data = tempfile::tempdir().unwrap();
        let folder = data.path().join("ftp").join(created.console_id.to_string()).join("send");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("march.csv"), "111|1\nann@example.com|Ann\nhal@example.com|Hal\nben@example.com|Ben\n").unwrap();
        let server = sending_server(t, &smtp, data.path(), "");
        let port = server.port;
        let send = |operation: &str, params: &str| soap(port, "/MailupSend.asmx", operation, params);
        let console_id = created.console_id.to_string();
        let key = value(&send("LoginFromId", &format!("<user>{}</user><pwd>{}</pwd><consoleId>{console_id}</consoleId>", created.mailup.console_user, created.mailup.console_password)), "accessKey");
        let k = format!("<accessKey>{key}</accessKey>");
        let newsletter = value(&send("CreateNewsletter", &format!("{k}<listID>1</listID><subject>Stored subject</subject><type>HTML</type><content>&lt;p&gt;Ciao [nome]&lt;/p&gt;</content><options/>")), "newsletterID");
        let call = |file: &str, guid: &str| {
            let envelope = format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><SendMessageNL xmlns=\"http://services.mailupnet.it/WS\">{k}<fileName>{file}</fileName><separator>|</separator><listId>1</listId><listGuid>{guid}</listGuid><messageId>{newsletter}</messageId><senderName>Promo</senderName><sender>promo@shop.example</sender><subject>Just for you</subject><timeDateSending>0001-01-01T00:00:00</timeDateSending><sendDelayTest>0</sendDelayTest></SendMessageNL></s:Body></s:Envelope>");
            let answer = common::http(port, "POST", "/MailupSend.asmx", &[("Content-Type", "text/xml; charset=utf-8")], envelope.into_bytes(), WAIT).unwrap();
            value(&answer.body, "SendMessageNLResult")
        };
        let guid = created.default_list.guid.clone();
        assert_eq!(call("missing.csv", &guid), "-1");
        assert_eq!(call("../march.csv", &guid), "-1");
        assert_eq!(call("march.csv", "00000000-0000-0000-0000-000000000000"), "-1");
        let delivery = call("march.csv", &guid);
        assert!(delivery.parse::<i64>().unwrap() > 0, "{delivery}");
        wait_completed(port, &key, &delivery);
        let mut received = smtp.received();
        received.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
        let rcpts: Vec<String> = received.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
        assert_eq!(rcpts, ["ann@example.com", "hal@example.com"]);
        for mail in &received {
            assert!(mail.data.contains("Subject: Just for you"), "{}", mail.data);
            assert!(mail.data.contains("From: Promo <promo@shop.example>"), "{}", mail.data);
        }
        assert!(received[1].data.contains("Ciao Hal"), "{}", received[1].data);
        let hal = espbridge::domain::recipients::RecipientKey::Email("hal@example.com".into());
        assert_eq!(subscriptions::status(&mut t.db.conn().unwrap(), created.account_id, 1, &hal).unwrap(), Some(subscriptions::Status::Subscribed));
    }
}
