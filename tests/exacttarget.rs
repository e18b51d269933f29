//! ExactTarget's XML API: the golden fixtures in `fixtures/exacttarget/`
//! in-process on both backends with what they wrote checked afterwards; and
//! the endpoint over a real port with curl, as the product's public clients
//! call it (form POST, GET, POST with the fields in the query string, `+` in
//! an address, no declaration, CDATA credentials).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use actix_web::{App, test};
use diesel::prelude::*;
use espbridge::config::Settings;
use espbridge::db::schema::fields as fields_table;
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::credentials::{self, CredentialKind};
use espbridge::domain::fields::{self, FieldRef};
use espbridge::domain::file_imports;
use espbridge::domain::image_library;
use espbridge::domain::lists;
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::recipients::{self, Contact, RecipientKey};
use espbridge::domain::sends;
use espbridge::domain::subscriptions::{self, Status, Subscribe};
use espbridge::domain::triggered_sends::{self, NewTriggeredSend};
use espbridge::domain::{Channel, Origin, groups, history};
use espbridge::render::Dialect;
use espbridge::server::{AppState, configure};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/exacttarget");

/// One request document and the answer expected for it.
#[derive(Debug)]
struct Fixture {
    name: String,
    request: String,
    expected: String,
}

/// Reads `NNN-name.xml` files: comment lines (`#`), the request document, a
/// `---` line, and the expected answer, in which `{*}` stands for any text
/// without markup. `{name}` is replaced by the value of `vars[name]`.
fn fixtures(vars: &BTreeMap<&str, String>) -> Vec<Fixture> {
    common::golden::pairs(FIXTURES, "xml", vars)
        .into_iter()
        .map(|(name, request, expected)| Fixture {
            name,
            request,
            expected: expected.trim_end_matches('\n').to_string(),
        })
        .collect()
}

/// Whether `actual` is `expected` with each `{*}` standing for any text
/// without markup.
fn matches(expected: &str, actual: &str) -> bool {
    let mut pieces = expected.split("{*}");
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i + 1 == pieces.len() {
            return rest.ends_with(piece) && !rest[..rest.len() - piece.len()].contains('<');
        }
        match rest.find(piece) {
            Some(at) if !rest[..at].contains('<') => rest = &rest[at + piece.len()..],
            _ => return false,
        }
    }
    rest.is_empty()
}

/// `qf=xml&xml=…` as a form body.
fn form_body(xml: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("qf", "xml")
        .append_pair("xml", xml)
        .finish()
}

struct Seeded {
    account_id: i64,
    other_account_id: i64,
    vars: BTreeMap<&'static str, String>,
}

fn origin() -> Origin {
    Origin::new(Channel::Cli, "test")
}

fn subscribe(
    conn: &mut espbridge::db::DbConnection,
    account_id: i64,
    list: i64,
    email: &str,
    first: &str,
) -> i64 {
    subscriptions::subscribe(
        conn,
        account_id,
        &Subscribe {
            list,
            contact: Contact::email(email),
            fields: vec![(FieldRef::Number(1), first.to_string())],
            groups: vec![],
            double_opt_in: Some(false),
            source: "test".into(),
            origin: origin(),
        },
    )
    .unwrap()
    .recipient_id
}

/// An account whose attributes are First Name, Last Name and Email Type,
/// with list 1 "News" (group 20), subscriber jane@example.com on it and an
/// e-mail "Welcome"; and a second account that must stay out of reach.
fn seed(t: &common::TestDb) -> Seeded {
    let mut conn = t.db.conn().unwrap();
    let created = accounts::create(
        &mut conn,
        &NewAccount {
            name: "ET".into(),
            console_id: Some(1001),
            console_hosts: vec![],
        },
    )
    .unwrap();
    let id = created.account_id;
    let other = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Other".into(),
            console_id: Some(2002),
            console_hosts: vec![],
        },
    )
    .unwrap();
    subscribe(
        &mut conn,
        other.account_id,
        1,
        "jane@example.com",
        "Other Jane",
    );
    diesel::delete(
        fields_table::table
            .filter(fields_table::account_id.eq(id))
            .filter(fields_table::number.ge(3)),
    )
    .execute(&mut *conn)
    .unwrap();
    fields::define(&mut conn, id, 1, "First Name", "").unwrap();
    fields::define(&mut conn, id, 2, "Last Name", "").unwrap();
    fields::define(&mut conn, id, 3, "Email Type", "HTML").unwrap();
    groups::create(&mut conn, id, 1, "Readers", "Weekly readers", Some(20)).unwrap();
    let jane = subscribe(&mut conn, id, 1, "jane@example.com", "Jane");
    let email = messages::create(
        &mut conn,
        id,
        &NewMessage {
            dialect: Dialect::ExactTarget,
            name: "Welcome".into(),
            ..NewMessage::email("Welcome %%First Name%%", "<p>Welcome, %%First Name%%!</p>")
        },
    )
    .unwrap();
    // Olga is a recipient on no list, for job/send_single.
    let (olga, _) =
        recipients::find_or_create(&mut conn, id, &Contact::email("olga@example.com")).unwrap();
    triggered_sends::create(
        &mut conn,
        id,
        &NewTriggeredSend {
            customer_key: "welcome".into(),
            message_id: email.id,
            list: None,
            from_name: "Welcome Desk".into(),
            from_email: "welcome@example.com".into(),
        },
    )
    .unwrap();
    // A job not started yet, to one recipient, for tracking/retrieve summary.
    let job = sends::create_campaign(
        &mut conn,
        id,
        &sends::NewCampaign {
            message_id: email.id,
            audience: sends::Audience::Recipients(vec![RecipientKey::Id(olga.id)]),
            params: serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: None,
        },
    )
    .unwrap();
    let today = chrono::Utc::now()
        .naive_utc()
        .format("%-m/%-d/%Y")
        .to_string();
    Seeded {
        account_id: id,
        other_account_id: other.account_id,
        vars: BTreeMap::from([
            ("username", created.exacttarget.username.clone()),
            ("password", created.exacttarget.password.clone()),
            ("jane_id", jane.to_string()),
            ("email_id", email.id.to_string()),
            ("today", today),
            ("other_subscriber_id", olga.id.to_string()),
            ("job_id", job.id.to_string()),
        ]),
    }
}

fn key(email: &str) -> RecipientKey {
    RecipientKey::Email(email.into())
}

backend_tests! {
    fn golden_fixtures_and_what_they_wrote(t) {
        let seeded = seed(t);
        let cases = fixtures(&seeded.vars);
        assert!(cases.len() >= 50, "fixtures missing: {}", cases.len());
        let data_dir = tempfile::tempdir().unwrap();
        actix_web::rt::System::new().block_on(async {
            // The import files in the account's import folder.
            let folder = file_imports::folder(data_dir.path(), 1001);
            std::fs::create_dir_all(&folder).unwrap();
            for name in ["subscribers.csv", "more.txt", "partners.csv"] {
                std::fs::copy(Path::new(FIXTURES).join("imports").join(name), folder.join(name)).unwrap();
            }
            // Images for filemove; the library has a logo.png already.
            std::fs::write(folder.join("banner.gif"), GIF).unwrap();
            std::fs::write(folder.join("logo.png"), PNG).unwrap();
            std::fs::write(folder.join("icon.png"), PNG).unwrap();
            std::fs::write(folder.join("big.jpg"), vec![0u8; 200 * 1024 + 1]).unwrap();
            let library = image_library::folder(data_dir.path(), 1001);
            std::fs::create_dir_all(&library).unwrap();
            std::fs::write(library.join("logo.png"), b"the old logo").unwrap();
            let settings = Settings { data_dir: data_dir.path().to_path_buf(), ..Settings::default() };
            let state = AppState::new(t.db.clone(), settings);
            let app = test::init_service(App::new().configure(configure(state))).await;
            for case in &cases {
                let request = test::TestRequest::post()
                    .uri("/integrate.aspx")
                    .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                    .set_payload(form_body(&case.request))
                    .to_request();
                let response = test::call_service(&app, request).await;
                let status = response.status().as_u16();
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                assert_eq!(status, 200, "{}: status; body {body:?}", case.name);
                assert!(matches(&case.expected, &body), "{}:\nexpected {:?}\n     got {body:?}", case.name, case.expected);
            }
        });

        let id = seeded.account_id;
        let mut conn = t.db.conn().unwrap();
        // Tom: master-unsubscribed (blocked for e-mail, every subscription
        // ended), off list 2 before it was deleted, his attributes kept.
        let tom = recipients::get(&mut conn, id, &key("tom@example.com")).unwrap();
        assert!(tom.email_blocklisted);
        assert_eq!(subscriptions::status(&mut conn, id, 1, &key("tom@example.com")).unwrap(), Some(Status::Unsubscribed));
        assert_eq!(
            recipients::field_values(&mut conn, id, tom.id).unwrap(),
            vec![(1, "Tom".to_string()), (2, "Thumb".to_string()), (3, "HTML".to_string())]
        );
        let tom_history = history::for_recipient(&mut conn, id, tom.id).unwrap();
        assert!(tom_history.iter().all(|e| e.channel == "exacttarget"), "{tom_history:?}");
        assert!(tom_history.iter().any(|e| e.note == "asked by phone" && e.to_status == "unsubscribed"), "{tom_history:?}");
        assert!(tom_history.iter().any(|e| e.note == "master unsubscribe"), "{tom_history:?}");
        // The stranger is on no list but kept out of future sends.
        let stranger = recipients::get(&mut conn, id, &key("stranger@example.com")).unwrap();
        assert!(stranger.email_blocklisted);
        // Jane: her address changed, unsubscribed with a reason, back, then deleted.
        assert!(recipients::find(&mut conn, id, &key("jane.doe@example.com")).unwrap().is_none());
        let jane_id: i64 = seeded.vars["jane_id"].parse().unwrap();
        let jane = recipients::get(&mut conn, id, &RecipientKey::Id(jane_id)).unwrap();
        assert!(jane.erased_at.is_some());
        let jane_history = history::for_recipient(&mut conn, id, jane_id).unwrap();
        assert!(jane_history.iter().any(|e| e.note == "too many mails"), "{jane_history:?}");
        // Refused calls wrote nothing.
        for email in ["ghost@example.com", "nobody@example.com"] {
            assert!(recipients::find(&mut conn, id, &key(email)).unwrap().is_none(), "{email}");
        }
        // List 2 is gone; list 1's counters are in step.
        assert!(lists::find(&mut conn, id, 2).unwrap().is_none());
        let news = lists::get(&mut conn, id, 1).unwrap();
        assert_eq!((news.subscribed_count, news.pending_count, news.unsubscribed_count), (5, 0, 2), "the imports subscribed five");
        // The e-mail got its text version, in the ExactTarget dialect.
        let email_id: i64 = seeded.vars["email_id"].parse().unwrap();
        let welcome = messages::get(&mut conn, id, email_id).unwrap();
        assert_eq!(welcome.text.as_deref(), Some("Dear %%First Name%%, welcome."));
        let spring = messages::emails(&mut conn, id, &messages::EmailFilter { name_contains: Some("spring".into()), ..Default::default() }).unwrap();
        assert_eq!(spring.len(), 1);
        assert_eq!(spring[0].html.as_deref(), Some("<p>Dear %%First Name%%, spring is here &amp; so are we.</p>"));
        assert_eq!(spring[0].dialect().unwrap(), Dialect::ExactTarget);
        // The other account's jane was never touched.
        let other = seeded.other_account_id;
        let other_jane = recipients::get(&mut conn, other, &key("jane@example.com")).unwrap();
        assert!(other_jane.erased_at.is_none() && !other_jane.email_blocklisted);
        assert_eq!(subscriptions::status(&mut conn, other, 1, &key("jane@example.com")).unwrap(), Some(Status::Subscribed));
        assert_eq!(lists::all(&mut conn, other).unwrap().len(), 1);

        // The imports: two rows in and two rejected, then one more.
        for (email, first) in [("pia@example.com", "Pia"), ("quinn@example.com", "Quinn, Jr."), ("rae@example.com", "Rae")] {
            assert_eq!(subscriptions::status(&mut conn, id, 1, &key(email)).unwrap(), Some(Status::Subscribed), "{email}");
            let recipient = recipients::get(&mut conn, id, &key(email)).unwrap();
            assert_eq!(recipients::field_values(&mut conn, id, recipient.id).unwrap()[0], (1, first.to_string()));
        }
        let first = file_imports::get(&mut conn, id, 1).unwrap();
        assert_eq!((first.imported, first.rejected, first.status.as_str()), (2, 2, "Complete"));
        assert!(recipients::get(&mut conn, id, &key("tom@example.com")).unwrap().email_blocklisted);
        // The import into lists 1 and 3: each row on both, the bad one
        // rejected once; the import naming an unknown list changed nothing.
        let partners = file_imports::get(&mut conn, id, 3).unwrap();
        assert_eq!((partners.imported, partners.rejected), (3, 1));
        for email in ["pia@example.com", "sam@example.com", "una@example.com"] {
            for list in [1, 3] {
                assert_eq!(subscriptions::status(&mut conn, id, list, &key(email)).unwrap(), Some(Status::Subscribed), "{email} on {list}");
            }
        }
        assert_eq!(subscriptions::status(&mut conn, id, 3, &key("rae@example.com")).unwrap(), None);
        assert_eq!(lists::get(&mut conn, id, 3).unwrap().subscribed_count, 3);

        // The first export is a zip that unzip reads, with everyone's status.
        let zip = espbridge::domain::exports::folder(data_dir.path(), 1001).join("SubsStatus_1.zip");
        let unzipped = Command::new("unzip").arg("-p").arg(&zip).arg("subscribers.xml").output().expect("unzip is installed");
        assert!(unzipped.status.success(), "{}", String::from_utf8_lossy(&unzipped.stderr));
        let statuses = String::from_utf8(unzipped.stdout).unwrap();
        assert!(statuses.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><subscribers><subscriber>"), "{statuses}");
        assert!(statuses.contains("<email_address>tom@example.com</email_address><status>Unsubscribed</status>"), "{statuses}");
        assert!(statuses.contains("<email_address>pia@example.com</email_address><status>Active</status>"), "{statuses}");
        assert!(!statuses.contains("jane"), "the erased subscriber is not exported: {statuses}");
        let list_export = espbridge::domain::exports::folder(data_dir.path(), 1001).join("Subs_3.zip");
        let unzipped = Command::new("unzip").arg("-p").arg(&list_export).output().unwrap();
        let members = String::from_utf8(unzipped.stdout).unwrap();
        assert!(members.contains("<Email__Address>quinn@example.com</Email__Address><Status>Active</Status><First__Name>Quinn, Jr.</First__Name>"), "{members}");
        assert!(!members.contains("tom@example.com"), "only the active ones: {members}");

        // The jobs and triggered sends are in the outbox as asked.
        let all_sends: Vec<(i64, i64, Option<chrono::NaiveDateTime>)> = espbridge::db::schema::sends::table
            .filter(espbridge::db::schema::sends::account_id.eq(id))
            .order(espbridge::db::schema::sends::id)
            .select((espbridge::db::schema::sends::id, espbridge::db::schema::sends::message_id, espbridge::db::schema::sends::scheduled_at))
            .load(&mut conn)
            .unwrap();
        assert!(all_sends.iter().all(|(_, message, _)| *message == email_id), "{all_sends:?}");
        let scheduled: Vec<_> = all_sends.iter().filter_map(|(_, _, at)| *at).collect();
        assert_eq!(scheduled, vec![chrono::NaiveDate::from_ymd_opt(2030, 12, 24).unwrap().and_hms_opt(18, 30, 0).unwrap()]);
        let senders: Vec<Option<(String, String)>> = all_sends.iter().map(|(send, _, _)| sends::sender(&mut conn, id, *send).unwrap()).collect();
        let shop = Some(("Shop".to_string(), "shop@example.com".to_string()));
        let desk = Some(("Welcome Desk".to_string(), "welcome@example.com".to_string()));
        let owner = Some(("Desk".to_string(), "desk@example.com".to_string()));
        // The seeded job, job/send, the scheduled one, send_single, amy (the
        // definition's sender), ben (his Owner's); carla's call was refused whole.
        // The job to several lists last.
        assert_eq!(senders, vec![None, shop.clone(), None, shop, desk, owner, None]);
        let params: Vec<(String, Option<String>)> = espbridge::db::schema::deliveries::table
            .filter(espbridge::db::schema::deliveries::account_id.eq(id))
            .filter(espbridge::db::schema::deliveries::params.is_not_null())
            .order(espbridge::db::schema::deliveries::id)
            .select((espbridge::db::schema::deliveries::address, espbridge::db::schema::deliveries::params))
            .load(&mut conn)
            .unwrap();
        assert_eq!(params, vec![
            ("amy@example.com".to_string(), Some(r#"{"attributes":{"first name":"Amy"}}"#.to_string())),
            ("ben@example.com".to_string(), Some(r#"{"attributes":{"first name":"Ben & Co"}}"#.to_string())),
        ]);

        // The job to lists 1 and 3 less list 4, expanded as the sender does:
        // each subscriber once, una (on all three) left out.
        let several: i64 = espbridge::db::schema::send_lists::table
            .filter(espbridge::db::schema::send_lists::account_id.eq(id))
            .select(espbridge::db::schema::send_lists::send_id)
            .first(&mut conn)
            .unwrap();
        let job = sends::ExpansionJob { account_id: id, send_id: several };
        while sends::expand_next_batch(&mut conn, job, 2, chrono::Duration::minutes(1)).unwrap() > 0 {}
        let mut addresses: Vec<String> = espbridge::db::schema::deliveries::table
            .filter(espbridge::db::schema::deliveries::send_id.eq(several))
            .select(espbridge::db::schema::deliveries::address)
            .load(&mut conn)
            .unwrap();
        addresses.sort();
        assert_eq!(addresses, ["pia@example.com", "quinn@example.com", "rae@example.com", "sam@example.com"]);

        // The exports: no sent record for a job never sent; the jobs of the
        // send-date range, none with activity in 2001, the Enterprise variant
        // the account's own.
        let exports = espbridge::domain::exports::folder(data_dir.path(), 1001);
        let unzip = |name: &str| {
            let out = Command::new("unzip").arg("-p").arg(exports.join(name)).output().unwrap();
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(unzip("Sent_all_ToFTP_7.zip"), "<?xml version=\"1.0\" encoding=\"utf-8\"?><sent></sent>");
        assert!(unzip("Sent_all_attributes_ToFTP_8.zip").starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><sent"));
        for name in ["all_jobs_ToFTP_9.zip", "all_jobs_ToFTP_11.zip"] {
            let jobs = unzip(name);
            assert_eq!(jobs.matches("<job>").count(), 2, "{name}: {jobs}");
            assert!(jobs.contains(&format!("<jobID>{several}</jobID>")), "{name}: {jobs}");
        }
        let none = unzip("all_jobs_ToFTP_10.zip");
        assert!(!none.contains("<job>"), "{none}");

        // filemove: the images in the library, the old logo kept; what was
        // not moved is still in the import folder.
        let library = image_library::folder(data_dir.path(), 1001);
        let imports = file_imports::folder(data_dir.path(), 1001);
        assert_eq!(std::fs::read(library.join("banner.gif")).unwrap(), GIF);
        assert_eq!(std::fs::read(library.join("logo_1.png")).unwrap(), PNG);
        assert_eq!(std::fs::read(library.join("logo.png")).unwrap(), b"the old logo");
        assert!(!imports.join("banner.gif").exists() && !imports.join("logo.png").exists());
        assert!(imports.join("more.txt").exists() && imports.join("big.jpg").exists());
        assert!(imports.join("icon.png").exists() && !library.join("icon.png").exists(), "a refused call moves nothing");
        assert!(!library.join("more.txt").exists() && !library.join("big.jpg").exists());
    }
}

/// A one-pixel GIF and the start of a PNG, for filemove.
const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn percent(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

backend_tests! {
    fn real_clients_over_a_real_port(t) {
        let server = common::RunningServer::start(&t.url, &[]);
        let url = format!("{}/integrate.aspx", server.base());
        let mut conn = t.db.conn().unwrap();
        let account = accounts::only_account(&mut conn).unwrap().expect("the demo account");
        credentials::create(&mut conn, account.id, CredentialKind::ExactTarget, "", "api_user", "s3cret&more").unwrap();
        let auth = "<authorization><username>api_user</username><password>s3cret&amp;more</password></authorization>";
        let add = |email: &str| format!(
            "<exacttarget>{auth}<system><system_name>subscriber</system_name><action>add</action><search_type>listid</search_type><search_value>1</search_value><search_value2/><values><Email__Address>{email}</Email__Address><status>active</status></values><update>true</update></system></exacttarget>"
        );
        let ok = "<subscriber_info>Subscriber was added/updated successfully</subscriber_info>";

        // A form-encoded POST (PHP's curl extension, Python's urlencode: `+`
        // for spaces), with a declaration after leading whitespace.
        let document = format!("\n\t<?xml version=\"1.0\"?>{}", add("ann+news@example.com"));
        let answer = curl(&["--data", &form_body(&document), &url]);
        assert!(answer.starts_with("<?xml version=\"1.0\"?><exacttarget><system><subscriber>"), "{answer}");
        assert!(answer.contains(ok), "{answer}");
        assert!(subscriptions::status(&mut conn, account.id, 1, &key("ann+news@example.com")).unwrap() == Some(Status::Subscribed));

        // A `+` left raw in the value (Ruby's URI.escape) is a space after
        // form decoding, so the address is refused, as the product did.
        let raw = format!("qf=xml&xml={}", percent(&add("bob+news@example.com")).replace("%2B", "+"));
        let answer = curl(&["--data", &raw, &url]);
        assert!(answer.contains("<error>4</error><error_description>Invalid email: &quot;bob news@example.com&quot;"), "{answer}");

        // GET with everything in the URL; no declaration; credentials in CDATA;
        // the field name in capitals.
        let cdata = add("carl@example.com").replace(auth, "<authorization><username><![CDATA[api_user]]></username><password><![CDATA[s3cret&more]]></password></authorization>");
        let answer = curl(&[&format!("{url}?qf=xml&XML={}", percent(&cdata))]);
        assert!(answer.contains(ok), "{answer}");

        // POST with an empty body and the fields in the query string.
        let retrieve = format!("<exacttarget>{auth}<system><system_name>subscriber</system_name><action>retrieve</action><search_type>listid</search_type><search_value>1</search_value><search_value2>carl@example.com</search_value2></system></exacttarget>");
        let answer = curl(&["-X", "POST", "-H", "Content-Length: 0", &format!("{url}?qf=xml&xml={}", percent(&retrieve))]);
        assert!(answer.contains("<Email__Address>carl@example.com</Email__Address><Status>Active</Status>"), "{answer}");

        // An unescaped `&` in the URL cuts the document short: error 39 with
        // the line and the reason.
        let cut = format!("{url}?qf=xml&xml={}", percent(&retrieve).replace("%26amp%3B", "&"));
        let answer = curl(&[&cut]);
        assert!(answer.contains("<error>39</error><error_description>XML Parse Error = Error!!! Error Code = -1072896668, Line Number = 1, Reason = "), "{answer}");

        // Hostile documents are refused as parse errors.
        for (name, document) in common::hostile_documents() {
            if document.len() > 1024 * 1024 {
                continue;
            }
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("qf", "xml")
                .append_pair("xml", &String::from_utf8_lossy(&document))
                .finish();
            let answer = common::http(server.port, "POST", "/integrate.aspx", &[("Content-Type", "application/x-www-form-urlencoded")], body.into_bytes(), std::time::Duration::from_secs(20)).expect("an answer");
            assert!(answer.body.contains("<error>39</error>"), "{name}: {}", answer.body);
        }
        // A body beyond the limit gets error 39 too, not a dropped connection.
        let huge = format!("qf=xml&xml={}", "x".repeat(5 * 1024 * 1024));
        let answer = common::http(server.port, "POST", "/integrate.aspx", &[("Content-Type", "application/x-www-form-urlencoded")], huge.into_bytes(), std::time::Duration::from_secs(20)).expect("an answer");
        assert_eq!(answer.status, 200);
        assert!(answer.body.contains("<error>39</error>"), "{}", answer.body);
    }
}

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The text between `<name>` and `</name>` in an answer.
fn element<'a>(answer: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = answer
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {answer}"))
        + open.len();
    let end = start + answer[start..].find("</").unwrap();
    &answer[start..end]
}

/// A delivered message: (subject, decoded HTML body, From header).
fn parsed(raw: &str) -> (String, String, String) {
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a MIME message");
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_string();
    (
        message.subject().unwrap_or("").to_string(),
        message.body_html(0).expect("an HTML part").into_owned(),
        from,
    )
}

/// The value of the attribute holding `marker` in `html`.
fn url_with(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let start = html[..at].rfind('"').unwrap() + 1;
    let end = at + html[at..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

backend_tests! {
    fn a_list_job_and_a_triggered_send_reach_a_real_smtp_server_personalised(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("espbridge.toml");
        std::fs::write(&config, "[sender]\npoll_milliseconds = 50\n").unwrap();
        let smtp_url = smtp.url();
        let server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_SMTP_URL", smtp_url.as_str()), ("ESPBRIDGE_CONFIG", config.to_str().unwrap())]);
        let url = format!("{}/integrate.aspx", server.base());
        let account = {
            let mut conn = t.db.conn().unwrap();
            let account = accounts::only_account(&mut conn).unwrap().expect("the demo account");
            credentials::create(&mut conn, account.id, CredentialKind::ExactTarget, "", "api_user", "secret").unwrap();
            fields::define(&mut conn, account.id, 12, "First Name", "").unwrap();
            account
        };
        let call = |system: &str| {
            let document = format!("<exacttarget><authorization><username>api_user</username><password>secret</password></authorization><system>{system}</system></exacttarget>");
            let answer = curl(&["--data", &form_body(&document), &url]);
            assert!(!answer.contains("<error>"), "{system}\n{answer}");
            answer
        };
        for (email, name) in [("ann@example.com", "Ann"), ("bob@example.com", "Bob")] {
            call(&format!("<system_name>subscriber</system_name><action>add</action><search_type>listid</search_type><search_value>1</search_value><values><Email__Address>{email}</Email__Address><First__Name>{name}</First__Name><status>active</status></values>"));
        }
        let answer = call("<system_name>email</system_name><action>add</action><sub_action>HTMLPaste</sub_action><email_name>Spring</email_name><email_subject>Hello %%First Name%%</email_subject><email_body><![CDATA[<html><body><p>Dear %%First Name%%,</p><a href=\"https://shop.example/spring\">Spring</a></body></html>]]></email_body>");
        let email_id = element(&answer, "emailID").to_string();
        let answer = call(&format!("<system_name>job</system_name><action>send</action><search_type>emailid</search_type><search_value>{email_id}</search_value><from_name>Shop</from_name><from_email>shop@example.com</from_email><send_date>immediate</send_date><send_time/><lists><list>1</list></lists>"));
        let job: i64 = element(&answer, "job_description").parse().unwrap();

        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while smtp.count() < 2 || sends::get(&mut t.db.conn().unwrap(), account.id, job).unwrap().sent < 2 {
            assert!(std::time::Instant::now() < deadline, "job not delivered");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // Opened and clicked a while after delivery, as a person would (link
        // scanners strike on arrival).
        diesel::update(espbridge::db::schema::deliveries::table.filter(espbridge::db::schema::deliveries::send_id.eq(job)))
            .set(espbridge::db::schema::deliveries::sent_at.eq(Some(espbridge::domain::now() - chrono::Duration::minutes(10))))
            .execute(&mut t.db.conn().unwrap())
            .unwrap();
        let mut received = smtp.received();
        received.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
        let get = |target: &str| {
            let path = target.strip_prefix(&server.base()).unwrap_or_else(|| panic!("{target} is not on the server"));
            common::http(server.port, "GET", path, &[("User-Agent", BROWSER)], Vec::new(), std::time::Duration::from_secs(10)).unwrap()
        };
        for (mail, name) in received.iter().zip(["Ann", "Bob"]) {
            let (subject, html, from) = parsed(&mail.data);
            assert_eq!(subject, format!("Hello {name}"));
            assert!(html.contains(&format!("Dear {name},")), "{html}");
            assert_eq!(from, "shop@example.com");
        }
        // Ann opens and clicks.
        let (_, ann_html, _) = parsed(&received[0].data);
        assert_eq!(get(&url_with(&ann_html, "/t/o/")).status, 200);
        assert_eq!(get(&url_with(&ann_html, "/t/c/")).status, 302);
        server.hits_applied();

        let summary = call(&format!("<system_name>tracking</system_name><action>retrieve</action><sub_action>summary</sub_action><search_type>jobID</search_type><search_value>{job}</search_value>"));
        for (name, value) in [("jobID", job.to_string()), ("totalSent", "2".into()), ("delivered", "2".into()), ("opens", "1".into()), ("uniqueOpens", "1".into()), ("clicks", "1".into()), ("uniqueClicks", "1".into())] {
            assert_eq!(element(&summary, name), value, "{name} in {summary}");
        }
        // Bob leaves everything; the master-unsubscribe list shows him.
        call("<system_name>subscriber</system_name><action>masterunsub</action><search_type>emailaddress</search_type><search_value><emailaddress>bob@example.com</emailaddress></search_value>");
        let unsubscribed = call("<system_name>tracking</system_name><action>retrieve</action><sub_action>masterunsub</sub_action>");
        assert_eq!(element(&unsubscribed, "email_address"), "bob@example.com", "{unsubscribed}");

        // A triggered-send definition made with the CLI, fired for three
        // addresses with their own attributes.
        let created = Command::new(env!("CARGO_BIN_EXE_espbridge"))
            .env("ESPBRIDGE_DATABASE_URL", &t.url)
            .env("ESPBRIDGE_DATA_DIR", dir.path())
            .args(["triggered-send", "create", "--console-id", &account.console_id.to_string(), "--key", "order-confirmation", "--email-id", &email_id, "--from-name", "Orders", "--from-email", "orders@example.com"])
            .output()
            .unwrap();
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        let listed = Command::new(env!("CARGO_BIN_EXE_espbridge"))
            .env("ESPBRIDGE_DATABASE_URL", &t.url)
            .env("ESPBRIDGE_DATA_DIR", dir.path())
            .args(["triggered-send", "list", "--console-id", &account.console_id.to_string()])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&listed.stdout).starts_with("order-confirmation\t"), "{listed:?}");
        let subscribers: String = [("cleo@example.com", "Cleo"), ("dan@example.com", "Dan"), ("eve@example.com", "Eve")]
            .iter()
            .map(|(email, name)| format!("<Subscribers><EmailAddress>{email}</EmailAddress><SubscriberKey>{email}</SubscriberKey><Attributes><Name>First Name</Name><Value>{name}</Value></Attributes></Subscribers>"))
            .collect();
        let answer = call(&format!("<system_name>triggeredsend</system_name><action>add</action><search_type/><search_value/><TriggeredSend xmlns=\"http://exacttarget.com/wsdl/partnerAPI\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchemainstance\"><TriggeredSendDefinition><CustomerKey>order-confirmation</CustomerKey></TriggeredSendDefinition>{subscribers}</TriggeredSend>"));
        assert!(answer.contains("<triggered_send_info>Triggered Send was added successfully</triggered_send_info>"), "{answer}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while smtp.count() < 5 {
            assert!(std::time::Instant::now() < deadline, "triggered send not delivered");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let mut triggered: Vec<_> = smtp.received().into_iter().filter(|m| !m.rcpt_tos.iter().any(|r| r == "ann@example.com" || r == "bob@example.com")).collect();
        triggered.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
        assert_eq!(triggered.len(), 3);
        for (mail, name) in triggered.iter().zip(["Cleo", "Dan", "Eve"]) {
            let (subject, html, from) = parsed(&mail.data);
            assert_eq!(subject, format!("Hello {name}"));
            assert!(html.contains(&format!("Dear {name},")), "{html}");
            assert_eq!(from, "orders@example.com");
        }
    }
}

backend_tests! {
    fn a_job_to_several_lists_mails_each_once_and_not_the_suppressed(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("espbridge.toml");
        std::fs::write(&config, "[sender]\npoll_milliseconds = 50\n").unwrap();
        let smtp_url = smtp.url();
        let server = common::RunningServer::start(&t.url, &[
            ("ESPBRIDGE_SMTP_URL", smtp_url.as_str()),
            ("ESPBRIDGE_CONFIG", config.to_str().unwrap()),
            ("ESPBRIDGE_DATA_DIR", dir.path().to_str().unwrap()),
        ]);
        let url = format!("{}/integrate.aspx", server.base());
        let account = {
            let mut conn = t.db.conn().unwrap();
            let account = accounts::only_account(&mut conn).unwrap().expect("the demo account");
            credentials::create(&mut conn, account.id, CredentialKind::ExactTarget, "", "api_user", "secret").unwrap();
            fields::define(&mut conn, account.id, 12, "First Name", "").unwrap();
            account
        };
        let call = |system: &str| {
            let document = format!("<exacttarget><authorization><username>api_user</username><password>secret</password></authorization><system>{system}</system></exacttarget>");
            let answer = curl(&["--data", &form_body(&document), &url]);
            assert!(!answer.contains("<error>"), "{system}\n{answer}");
            answer
        };
        let add_list = |name: &str| -> String {
            let answer = call(&format!("<system_name>list</system_name><action>add</action><list_type>public</list_type><list_name>{name}</list_name>"));
            element(&answer, "list_description").to_string()
        };
        let partners = add_list("Partners");
        let blocked = add_list("Blocked");
        // Bob is on both lists, Dan on list 1 and on the suppression list.
        for (list, email, name) in [
            ("1", "ann@example.com", "Ann"),
            ("1", "bob@example.com", "Bob"),
            ("1", "dan@example.com", "Dan"),
            (partners.as_str(), "bob@example.com", "Bob"),
            (partners.as_str(), "cat@example.com", "Cat"),
            (blocked.as_str(), "dan@example.com", "Dan"),
        ] {
            call(&format!("<system_name>subscriber</system_name><action>add</action><search_type>listid</search_type><search_value>{list}</search_value><values><Email__Address>{email}</Email__Address><First__Name>{name}</First__Name><status>active</status></values><update>true</update>"));
        }
        let answer = call("<system_name>email</system_name><action>add</action><sub_action>HTMLPaste</sub_action><email_name>News</email_name><email_subject>News for %%First Name%%</email_subject><email_body><![CDATA[<p>Dear %%First Name%%,</p>]]></email_body>");
        let email_id = element(&answer, "emailID").to_string();
        let answer = call(&format!("<system_name>job</system_name><action>send</action><search_type>emailid</search_type><search_value>{email_id}</search_value><send_date>immediate</send_date><lists><list>1</list><list>{partners}</list></lists><suppress><list>{blocked}</list></suppress>"));
        let job: i64 = element(&answer, "job_description").parse().unwrap();

        // Every delivery of the job reaches its end: nothing more can come.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let send = sends::get(&mut t.db.conn().unwrap(), account.id, job).unwrap();
            if send.status().unwrap() == sends::SendStatus::Completed {
                assert_eq!((send.to_send, send.sent), (3, 3));
                break;
            }
            assert!(std::time::Instant::now() < deadline, "job not completed");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let mut received = smtp.received();
        received.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
        let recipients: Vec<Vec<String>> = received.iter().map(|m| m.rcpt_tos.clone()).collect();
        assert_eq!(recipients, [["ann@example.com"], ["bob@example.com"], ["cat@example.com"]], "each once, Dan not at all");
        for (mail, name) in received.iter().zip(["Ann", "Bob", "Cat"]) {
            let (subject, html, _) = parsed(&mail.data);
            assert_eq!(subject, format!("News for {name}"));
            assert!(html.contains(&format!("Dear {name},")), "{html}");
        }

        // Cat came from Partners: her one-click unsubscribe takes her off it.
        let header = received[2].data.lines().find_map(|l| l.strip_prefix("List-Unsubscribe: ")).expect("List-Unsubscribe header");
        let link = header.trim().trim_start_matches('<').trim_end_matches('>');
        let status = curl(&["-o", "/dev/null", "-w", "%{http_code}", "-d", "List-Unsubscribe=One-Click", link]);
        assert_eq!(status, "200");
        let partners_number: i64 = partners.parse().unwrap();
        let mut conn = t.db.conn().unwrap();
        assert_eq!(subscriptions::status(&mut conn, account.id, partners_number, &key("cat@example.com")).unwrap(), Some(Status::Unsubscribed));

        // The sent records with attributes, as a zip batch/inquire names.
        let answer = call(&format!("<system_name>tracking</system_name><action>Sent_BulkAsync</action><sub_action>all_attributes_ToFTP</sub_action><search_type>jobID</search_type><search_value>{job}</search_value>"));
        let batch = element(&answer, "batchID").to_string();
        let answer = call(&format!("<system_name>batch</system_name><action>inquire</action><search_type>batchid</search_type><search_value>{batch}</search_value>"));
        let file = element(&answer, "filename").to_string();
        assert_eq!(file, format!("Sent_all_attributes_ToFTP_{batch}.zip"));
        let zip = espbridge::domain::exports::folder(dir.path(), account.console_id).join(&file);
        let unzipped = Command::new("unzip").arg("-p").arg(&zip).output().unwrap();
        assert!(unzipped.status.success(), "{}", String::from_utf8_lossy(&unzipped.stderr));
        let records = String::from_utf8(unzipped.stdout).unwrap();
        for (email, name) in [("ann@example.com", "Ann"), ("bob@example.com", "Bob"), ("cat@example.com", "Cat")] {
            let block = format!("<email_address>{email}</email_address><sendDate>");
            assert_eq!(records.matches(&block).count(), 1, "{email}: {records}");
            assert!(records.contains(&format!("<First__Name>{name}</First__Name>")), "{records}");
        }
        assert_eq!(records.matches("<subscriber>").count(), 3, "{records}");
        assert!(records.contains(&format!("<jobID>{job}</jobID>")), "{records}");
        assert!(!records.contains("dan@example.com"), "{records}");

        // all_jobs_ToFTP: a job sent (started) in 2020 whose messages went out
        // today is in a file of 2020's send dates and today's activity, not in
        // one whose activity is 2021.
        diesel::update(espbridge::db::schema::sends::table.find(job))
            .set(espbridge::db::schema::sends::started_at.eq(Some(chrono::NaiveDate::from_ymd_opt(2020, 6, 1).unwrap().and_hms_opt(12, 0, 0).unwrap())))
            .execute(&mut conn)
            .unwrap();
        // Yesterday to tomorrow, so that midnight cannot fall between.
        let day = |offset: i64| (chrono::Utc::now().naive_utc() + chrono::Duration::days(offset)).format("%-m/%-d/%Y").to_string();
        let jobs_file = |start: &str, end: &str| -> String {
            let answer = call(&format!("<system_name>tracking</system_name><action>BulkAsync</action><sub_action>all_jobs_ToFTP</sub_action><daterange><startdate>{start}</startdate><enddate>{end}</enddate></daterange><jobdaterange><startdate>1/1/2020</startdate><enddate>12/31/2020</enddate></jobdaterange>"));
            let batch = element(&answer, "batchID").to_string();
            let zip = espbridge::domain::exports::folder(dir.path(), account.console_id).join(format!("all_jobs_ToFTP_{batch}.zip"));
            let unzipped = Command::new("unzip").arg("-p").arg(&zip).output().unwrap();
            String::from_utf8(unzipped.stdout).unwrap()
        };
        let active = jobs_file(&day(-1), &day(1));
        assert!(active.contains(&format!("<job><jobID>{job}</jobID>")), "{active}");
        assert!(active.contains("<sent>3</sent>"), "{active}");
        let idle = jobs_file("6/1/2021", "6/30/2021");
        assert!(!idle.contains("<job>"), "{idle}");
    }
}
