//! MailUp's frontend pages: the golden fixtures in `fixtures/mailup/frontend/`
//! in-process on both backends with what they wrote checked afterwards; the
//! double opt-in link; and the same pages over a real port with curl, the
//! confirmation mail going through a real SMTP server and its List-Unsubscribe
//! header followed.

mod common;

use common::golden;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use actix_web::{App, test};
use diesel::prelude::*;
use espbridge::config::Settings;
use espbridge::db::schema::{deliveries, sends};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::callers::{self, Service};
use espbridge::domain::links::LinkSigner;
use espbridge::domain::lists::{self, NewList};
use espbridge::domain::recipients::{self, Mobile, RecipientKey};
use espbridge::domain::subscriptions::{self, Status, UnsubscribeReason};
use espbridge::domain::{Channel, Origin, confirmations, groups, history, list_blocklist};
use espbridge::server::{AppState, configure};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mailup/frontend");
const OFFERS_GUID: &str = "5f3e9a4c-2b1d-4e6f-8a7b-9c0d1e2f3a4b";

struct Seeded {
    account_id: i64,
    vars: BTreeMap<&'static str, String>,
}

/// An account reached at `news.example.com` with list 1 "News" (group 20) and
/// list 2 "Offers" (groups 10, 11) of a known GUID.
/// xmlSubscribe with each of `queries`, all in flight together; the answers
/// in the same order.
fn subscribes_at_once(
    t: &common::TestDb,
    queries: impl Iterator<Item = String>,
) -> Vec<actix_web::web::Bytes> {
    actix_web::rt::System::new().block_on(async {
        let app = test::init_service(App::new().configure(configure(state(t)))).await;
        let calls = queries.map(|query| {
            let request = test::TestRequest::get()
                .uri(&format!("/frontend/xmlSubscribe.aspx?{query}"))
                .insert_header(("Host", "news.example.com"))
                .peer_addr("127.0.0.1:50000".parse().unwrap())
                .to_request();
            test::call_and_read_body(&app, request)
        });
        futures_util::future::join_all(calls).await
    })
}

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
    // A second account: its data must never be reached through the first's host.
    accounts::create(
        &mut conn,
        &NewAccount {
            name: "Other".into(),
            console_id: Some(2002),
            console_hosts: vec!["other.example.com".into()],
        },
    )
    .unwrap();
    let id = created.account_id;
    lists::create(
        &mut conn,
        id,
        &NewList {
            number: Some(2),
            guid: Some(OFFERS_GUID.into()),
            name: "Offers".into(),
            ..NewList::default()
        },
    )
    .unwrap();
    groups::create(&mut conn, id, 2, "VIP", "", Some(10)).unwrap();
    groups::create(&mut conn, id, 2, "Other", "", Some(11)).unwrap();
    groups::create(&mut conn, id, 1, "Readers", "", Some(20)).unwrap();
    let guid = created.default_list.guid.clone();
    let vars = BTreeMap::from([
        ("list1_guid", guid.clone()),
        ("list1_guid_upper", guid.to_uppercase()),
        ("ws_user", created.mailup.ws_user.clone()),
        ("ws_password", created.mailup.ws_password.clone()),
    ]);
    Seeded {
        account_id: id,
        vars,
    }
}

fn state(t: &common::TestDb) -> AppState {
    AppState::new(t.db.clone(), Settings::default())
}

fn key(email: &str) -> RecipientKey {
    RecipientKey::Email(email.into())
}

backend_tests! {
    fn golden_fixtures_and_what_they_wrote(t) {
        let seeded = seed(t);
        let cases = golden::read(FIXTURES, &seeded.vars);
        assert!(cases.len() >= 30, "fixtures missing: {}", cases.len());
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(state(t)))).await;
            for case in &cases {
                let mut request = match case.method.as_str() {
                    "GET" => test::TestRequest::get(),
                    "POST" => test::TestRequest::post(),
                    other => panic!("{}: method {other}", case.name),
                }
                .uri(&case.target)
                .insert_header(("Host", "news.example.com"))
                .peer_addr("127.0.0.1:50000".parse().unwrap());
                for (name, value) in &case.headers {
                    if name == "X-Test-Peer" {
                        request = request.peer_addr(format!("{value}:50000").parse().unwrap());
                    } else {
                        request = request.insert_header((name.as_str(), value.as_str()));
                    }
                }
                let response = test::call_service(&app, request.set_payload(case.body.clone()).to_request()).await;
                let status = response.status().as_u16();
                let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
                assert_eq!(status, case.status, "{}: status; body {body:?}", case.name);
                assert!(golden::matches(&case.expected, &body), "{}:\nexpected {:?}\n     got {body:?}", case.name, case.expected);
            }
        });

        let id = seeded.account_id;
        let mut conn = t.db.conn().unwrap();
        let status = |conn: &mut _, list, email: &str| subscriptions::status(conn, id, list, &key(email)).unwrap();
        // 01, 18: subscribed with its fields, then unsubscribed with reason 0.
        let anna = recipients::get(&mut conn, id, &key("anna@example.com")).unwrap();
        assert_eq!(
            recipients::field_values(&mut conn, id, anna.id).unwrap(),
            vec![(1, "Anna".to_string()), (2, "Rossi".to_string())]
        );
        let anna_history = history::for_recipient(&mut conn, id, anna.id).unwrap();
        let last = anna_history.last().unwrap();
        assert_eq!((last.to_status.as_str(), last.reason, last.channel.as_str()), ("unsubscribed", Some(UnsubscribeReason::AdminConsole.code()), "mailup-frontend"));
        assert_eq!(anna_history.len(), 2, "the repeated unsubscribe changed nothing");
        // 03: pending with one confirmation mail queued in the system lane.
        assert_eq!(status(&mut conn, 1, "bruno@example.com"), Some(Status::Pending));
        let bruno = recipients::get(&mut conn, id, &key("bruno@example.com")).unwrap();
        let queued: Vec<(String, Option<String>)> = deliveries::table
            .inner_join(sends::table)
            .filter(deliveries::recipient_id.eq(bruno.id))
            .select((sends::kind, deliveries::params))
            .load(&mut conn)
            .unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].0, "system");
        assert!(queued[0].1.as_deref().unwrap().contains("/confirm?t="), "{queued:?}");
        // 12: the mobile number got the account's default prefix.
        let mobile = recipients::get(&mut conn, id, &RecipientKey::Mobile(Mobile::new("+393331234567"))).unwrap();
        assert_eq!(subscriptions::status(&mut conn, id, 1, &RecipientKey::Mobile(Mobile::new("+393331234567"))).unwrap(), Some(Status::Subscribed), "{mobile:?}");
        // 14, 23: both lists, groups per list; the update replaced list 2's groups only.
        assert_eq!(status(&mut conn, 1, "carla@example.com"), Some(Status::Subscribed));
        assert_eq!(status(&mut conn, 2, "carla@example.com"), Some(Status::Subscribed));
        let carla = recipients::get(&mut conn, id, &key("carla@example.com")).unwrap();
        let offers = lists::get(&mut conn, id, 2).unwrap();
        let news = lists::get(&mut conn, id, 1).unwrap();
        let numbers = |groups: Vec<groups::Group>| groups.into_iter().map(|g| g.number).collect::<Vec<_>>();
        assert_eq!(numbers(groups::memberships(&mut conn, id, offers.id, carla.id).unwrap()), vec![11]);
        assert_eq!(numbers(groups::memberships(&mut conn, id, news.id, carla.id).unwrap()), vec![20]);
        // 24 changed nothing.
        assert_eq!(
            recipients::field_values(&mut conn, id, carla.id).unwrap(),
            vec![(1, "Carla".to_string()), (3, "Milano".to_string())]
        );
        // 09, 10, 15, 16, 17: refused calls wrote nothing.
        for email in ["dario@example.com", "elena@example.com"] {
            assert!(recipients::find(&mut conn, id, &key(email)).unwrap().is_none(), "{email}");
        }
        // 30, 31: the caller was registered and then accepted.
        assert_eq!(callers::registered(&mut conn, id, Service::FrontEnd).unwrap(), vec!["203.0.113.9".to_string()]);
        assert_eq!(status(&mut conn, 1, "fabio@example.com"), Some(Status::Subscribed));
        // Counters kept in step: anna unsubscribed; carla, the mobile and fabio subscribed; bruno pending.
        let news = lists::get(&mut conn, id, 1).unwrap();
        assert_eq!((news.subscribed_count, news.pending_count, news.unsubscribed_count), (3, 1, 1));
        // The other account saw nothing.
        let other = accounts::find_by_host(&mut conn, "other.example.com").unwrap().unwrap();
        assert_eq!(lists::get(&mut conn, other.id, 1).unwrap().subscribed_count + lists::get(&mut conn, other.id, 1).unwrap().pending_count, 0);
    }

    fn a_list_that_refuses_undoes_the_whole_subscribe(t) {
        let seeded = seed(t);
        let id = seeded.account_id;
        let mut conn = t.db.conn().unwrap();
        let origin = Origin::new(Channel::MailupFrontend, "127.0.0.1");
        list_blocklist::add(&mut conn, id, 2, "hugo@example.com", &origin).unwrap();
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(state(t)))).await;
            let request = test::TestRequest::get()
                .uri("/frontend/xmlSubscribe.aspx?Email=hugo%40example.com&List=1,2&Confirm=0")
                .insert_header(("Host", "news.example.com"))
                .peer_addr("127.0.0.1:50000".parse().unwrap())
                .to_request();
            assert_eq!(test::call_and_read_body(&app, request).await, "1");
        });
        // List 1 came first and took the address, but the request's
        // savepoint undid it with list 2's refusal: no recipient, no member.
        assert!(recipients::find(&mut conn, id, &key("hugo@example.com")).unwrap().is_none());
        let news = lists::get(&mut conn, id, 1).unwrap();
        assert_eq!(news.subscribed_count, 0);
    }

    fn lists_named_in_either_order_at_once_are_all_subscribed(t) {
        // Each list's counts row is locked in turn: requests naming the same
        // lists in opposite orders must not deadlock (PostgreSQL).
        let seeded = seed(t);
        let id = seeded.account_id;
        let answers = subscribes_at_once(t, (0..40).map(|i| {
            let lists = if i % 2 == 0 { "1,2" } else { "2,1" };
            format!("Email=both{i}%40example.com&List={lists}&Confirm=0")
        }));
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(answer, "0", "request {i}");
        }
        let mut conn = t.db.conn().unwrap();
        assert_eq!(lists::get(&mut conn, id, 1).unwrap().subscribed_count, 40);
        assert_eq!(lists::get(&mut conn, id, 2).unwrap().subscribed_count, 40);
    }

    fn concurrent_subscribes_keep_the_list_counts(t) {
        // Subscribes that arrive together share a write group (SQLite), which
        // adds their list counts once before it commits; what a refused
        // request added must not count, even when it had subscribed to list 1
        // before list 2 refused it.
        let seeded = seed(t);
        let id = seeded.account_id;
        let mut conn = t.db.conn().unwrap();
        let origin = Origin::new(Channel::MailupFrontend, "127.0.0.1");
        list_blocklist::add(&mut conn, id, 2, "barred@example.com", &origin).unwrap();
        // List 2 bars one address: the others are still taken there.
        let answers = subscribes_at_once(t, (0..80).map(|i| match i % 5 {
            0 => format!("Email=new{i}%40example.com&List=1&Confirm=0"),
            1 => format!("Email=pending{i}%40example.com&List=1&Confirm=1"),
            2 => "Email=barred%40example.com&List=1,2&Confirm=0".to_string(),
            3 => format!("Email=free{i}%40example.com&List=2&Confirm=0"),
            _ => format!("Email=not-an-address-{i}&List=1&Confirm=0"),
        }));
        for (i, answer) in answers.iter().enumerate() {
            let expected = ["0", "0", "1", "0", "2"][i % 5];
            assert_eq!(answer, expected, "request {i}");
        }
        assert!(recipients::find(&mut conn, id, &key("barred@example.com")).unwrap().is_none());
        let news = lists::get(&mut conn, id, 1).unwrap();
        let mut stored = |status: Status| -> i64 {
            espbridge::db::schema::subscriptions::table
                .filter(espbridge::db::schema::subscriptions::list_id.eq(news.id))
                .filter(espbridge::db::schema::subscriptions::status.eq(status.as_str()))
                .count()
                .get_result(&mut conn)
                .unwrap()
        };
        assert_eq!((news.subscribed_count, news.pending_count), (16, 16));
        assert_eq!((stored(Status::Subscribed), stored(Status::Pending)), (16, 16));
        assert_eq!(lists::get(&mut conn, id, 2).unwrap().subscribed_count, 16);
    }

    fn confirmation_links_confirm_once_and_refuse_forged_or_expired_ones(t) {
        let seeded = seed(t);
        let id = seeded.account_id;
        actix_web::rt::System::new().block_on(async {
            let state = state(t);
            let app = test::init_service(App::new().configure(configure(state.clone()))).await;
            let call = |uri: String| {
                test::TestRequest::get()
                    .uri(&uri)
                    .insert_header(("Host", "news.example.com"))
                    .peer_addr("127.0.0.1:50000".parse().unwrap())
                    .to_request()
            };
            let body = test::call_and_read_body(&app, call("/frontend/xmlSubscribe.aspx?Email=gina%40example.com&List=1,2&ConfirmListID=2".into())).await;
            assert_eq!(body, "0");
            // One mail for both lists, as ConfirmListID asks.
            let mut conn = t.db.conn().unwrap();
            let gina = recipients::get(&mut conn, id, &key("gina@example.com")).unwrap();
            let params: Vec<Option<String>> = deliveries::table
                .filter(deliveries::recipient_id.eq(gina.id))
                .select(deliveries::params)
                .load(&mut conn)
                .unwrap();
            assert_eq!(params.len(), 1);
            let params: serde_json::Value = serde_json::from_str(params[0].as_deref().unwrap()).unwrap();
            let url = params["confirm_url"].as_str().unwrap().to_string();
            let path = url.strip_prefix("http://news.example.com").expect("link on the host the call came to").to_string();

            let forged = path.replace("t=", "t=x");
            let res = test::call_service(&app, call(forged)).await;
            assert_eq!(res.status(), 400);
            assert!(String::from_utf8(test::read_body(res).await.to_vec()).unwrap().contains("not valid"));

            let signer = LinkSigner::load(&mut conn).unwrap();
            let stale = confirmations::link_token(&signer, &["whatever".to_string()], espbridge::domain::now() - chrono::Duration::hours(1));
            let res = test::call_service(&app, call(format!("/confirm?t={stale}"))).await;
            assert_eq!(res.status(), 410);
            assert_eq!(subscriptions::status(&mut conn, id, 1, &key("gina@example.com")).unwrap(), Some(Status::Pending));

            let res = test::call_service(&app, call(path.clone())).await;
            assert_eq!(res.status(), 200);
            assert!(String::from_utf8(test::read_body(res).await.to_vec()).unwrap().contains("confirmed"));
            for list in [1, 2] {
                assert_eq!(subscriptions::status(&mut conn, id, list, &key("gina@example.com")).unwrap(), Some(Status::Subscribed));
            }
            let entries = history::for_recipient(&mut conn, id, gina.id).unwrap();
            assert_eq!(entries.iter().filter(|e| e.to_status == "subscribed" && e.channel == "web").count(), 2);

            // Following it again changes nothing and says so.
            let res = test::call_service(&app, call(path)).await;
            assert_eq!(res.status(), 200);
            assert!(String::from_utf8(test::read_body(res).await.to_vec()).unwrap().contains("already"));
            assert_eq!(history::for_recipient(&mut conn, id, gina.id).unwrap().len(), entries.len());
        });
    }
}

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

backend_tests! {
    fn curl_against_the_real_server_with_a_real_confirmation_mail(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let smtp_url = smtp.url();
        let server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_SMTP_URL", smtp_url.as_str())]);
        let base = server.base();
        let mut conn = t.db.conn().unwrap();
        let account = accounts::only_account(&mut conn).unwrap().expect("the demo account");
        let guid = lists::get(&mut conn, account.id, 1).unwrap().guid;

        // A form POST as PHP's curl extension sends it, and a GET as a browser would.
        let code = curl(&["-d", "Email=hugo%40example.com&List=1&csvFldNames=campo1&csvFldValues=Hugo", &format!("{base}/frontend/xmlSubscribe.aspx")]);
        assert_eq!(code.trim(), "0");
        let code = curl(&[&format!("{base}/frontend/xmlChkSubscriber.aspx?ListGuid={guid}&List=1&Email=hugo%40example.com")]);
        assert_eq!(code.trim(), "4");

        // The confirmation mail reaches the SMTP server; its link confirms.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mail = loop {
            if let Some(mail) = smtp.received().into_iter().find(|m| m.rcpt_tos == ["hugo@example.com"]) {
                break mail;
            }
            assert!(Instant::now() < deadline, "no confirmation mail");
            std::thread::sleep(Duration::from_millis(100));
        };
        let data = mail.data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=").replace("&#x2f;", "/");
        let start = data.find(&format!("{base}/confirm?t=")).expect("the link in the mail");
        let link: String = data[start..].chars().take_while(|c| !matches!(c, '"' | '<' | ' ' | '\r' | '\n')).collect();
        let page = curl(&[&link]);
        assert!(page.contains("confirmed"), "{link}\n{data}\n{page}");
        let code = curl(&["--data-urlencode", &format!("ListGuid={guid}"), "-d", "List=1", "--data-urlencode", "Email=hugo@example.com", &format!("{base}/frontend/XMLCHKSUBSCRIBER.ASPX")]);
        assert_eq!(code.trim(), "2");
        // The mail's List-Unsubscribe header, used as a mailbox provider's
        // one-click button does (RFC 8058).
        let header = mail.data.lines().find_map(|l| l.strip_prefix("List-Unsubscribe: ")).expect("List-Unsubscribe header");
        let url = header.trim().trim_start_matches('<').trim_end_matches('>');
        assert!(url.starts_with(&format!("{base}/unsubscribe/")), "{url}");
        assert!(mail.data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        let status = curl(&["-o", "/dev/null", "-w", "%{http_code}", "-d", "List-Unsubscribe=One-Click", url]);
        assert_eq!(status, "200");
        let code = curl(&["-G", "--data-urlencode", &format!("ListGuid={guid}"), "-d", "List=1", "--data-urlencode", "Email=hugo@example.com", &format!("{base}/frontend/xmlUnSubscribe.aspx")]);
        assert_eq!(code.trim(), "3", "already unsubscribed by the one-click POST");
        let code = curl(&[&format!("{base}/frontend/xmlChkSubscriber.aspx?ListGuid={guid}&List=1&Email=hugo%40example.com")]);
        assert_eq!(code.trim(), "3");
    }
}
