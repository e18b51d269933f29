//! Unsubscribing through a message, in-process on both backends: the page a
//! link opens (which asks and never unsubscribes by itself), its button, the
//! RFC 8058 one-click POST, each with MailUp's reason code, a history entry and
//! an event, idempotently; forged tokens refused. The real List-Unsubscribe
//! header of a delivered mail is followed in `tests/mailup_frontend.rs`.

mod common;

use actix_web::{App, test};
use diesel::prelude::*;
use espbridge::config::Settings;
use espbridge::db::schema::delivery_events;
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::history;
use espbridge::domain::links::{LinkSigner, Purpose};
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::recipients::{self, RecipientKey};
use espbridge::domain::sends::{self, NewSingle, SendKind, To};
use espbridge::domain::subscriptions::{self, Status, UnsubscribeReason};
use espbridge::server::{AppState, configure};

/// A single message to `email` (for list 1 when `for_list`), and the token
/// its List-Unsubscribe header carries.
fn delivery_token(
    conn: &mut espbridge::db::DbConnection,
    account: i64,
    email: &str,
    for_list: bool,
) -> String {
    let mut message = NewMessage::email("News", "<p>Hello</p>");
    message.list = for_list.then_some(1);
    let message = messages::create(conn, account, &message).unwrap();
    let enqueued = sends::enqueue_single(
        conn,
        account,
        &NewSingle {
            kind: SendKind::Single,
            message_id: message.id,
            to: To::Recipient(RecipientKey::Email(email.into())),
            params: serde_json::Map::new(),
            idempotency_key: None,
        },
    )
    .unwrap();
    LinkSigner::load(conn)
        .unwrap()
        .sign(Purpose::Unsubscribe, &enqueued.delivery_id.to_string())
}

fn events(conn: &mut espbridge::db::DbConnection, kind: &str) -> Vec<String> {
    delivery_events::table
        .filter(delivery_events::kind.eq(kind))
        .select(delivery_events::detail)
        .load(conn)
        .unwrap()
}

backend_tests! {
    fn link_page_button_and_one_click(t) {
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
            common::subscribe(&mut conn, account, email);
        }
        let ada = delivery_token(&mut conn, account, "ada@example.com", true);
        let bob = delivery_token(&mut conn, account, "bob@example.com", true);
        let cy = delivery_token(&mut conn, account, "cy@example.com", false);
        let status = |conn: &mut _, email: &str| subscriptions::status(conn, account, 1, &RecipientKey::Email(email.into())).unwrap();

        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(AppState::new(t.db.clone(), Settings::default())))).await;
            let get = |token: &str| test::TestRequest::get().uri(&format!("/unsubscribe/{token}")).to_request();
            let post = |token: &str, body: &'static str| {
                test::TestRequest::post()
                    .uri(&format!("/unsubscribe/{token}"))
                    .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                    .peer_addr("192.0.2.7:4000".parse().unwrap())
                    .set_payload(body)
                    .to_request()
            };

            // Opening the link (or a scanner fetching it) only asks.
            let res = test::call_service(&app, get(&ada)).await;
            assert_eq!(res.status(), 200);
            let page = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
            assert!(page.contains("unsubscribe from News?") && page.contains("method=\"post\""), "{page}");
            assert_eq!(status(&mut conn, "ada@example.com"), Some(Status::Subscribed));

            // The page's button: reason 2.
            let res = test::call_service(&app, post(&ada, "confirm=yes")).await;
            assert_eq!(res.status(), 200);
            assert!(String::from_utf8(test::read_body(res).await.to_vec()).unwrap().contains("no more messages from News"));
            // One-click from the mailbox provider: reason 32.
            let res = test::call_service(&app, post(&bob, "List-Unsubscribe=One-Click")).await;
            assert_eq!(res.status(), 200);
            for _ in 0..2 {
                // Repeats change nothing.
                assert_eq!(test::call_service(&app, post(&ada, "confirm=yes")).await.status(), 200);
                assert_eq!(test::call_service(&app, post(&bob, "List-Unsubscribe=One-Click")).await.status(), 200);
            }
            // A message sent for no list ends every subscription.
            assert_eq!(test::call_service(&app, post(&cy, "List-Unsubscribe=One-Click")).await.status(), 200);

            // Forged or altered tokens are refused, for GET and POST alike.
            let forged = format!("{}x", &ada[..ada.len() - 1]);
            for request in [get(&forged), post(&forged, "List-Unsubscribe=One-Click"), get("nonsense")] {
                assert_eq!(test::call_service(&app, request).await.status(), 400);
            }
        });

        for (email, reason) in [("ada@example.com", UnsubscribeReason::Link), ("bob@example.com", UnsubscribeReason::ListUnsubscribeLink), ("cy@example.com", UnsubscribeReason::ListUnsubscribeLink)] {
            assert_eq!(status(&mut conn, email), Some(Status::Unsubscribed), "{email}");
            let recipient = recipients::get(&mut conn, account, &RecipientKey::Email(email.into())).unwrap();
            let entries = history::for_recipient(&mut conn, account, recipient.id).unwrap();
            assert_eq!(entries.len(), 2, "{email}: subscribed, then one unsubscribe");
            let last = entries.last().unwrap();
            assert_eq!((last.reason, last.channel.as_str(), last.actor.as_str()), (Some(reason.code()), "web", "192.0.2.7"), "{email}");
        }
        let mut recorded = events(&mut conn, "unsubscribed");
        recorded.sort();
        assert_eq!(recorded, vec!["2", "32", "32"]);
    }
}

backend_tests! {
    fn processes_starting_together_share_one_key(t) {
        // A server and its workers starting at once on a new database: each
        // loads the key, which none has created yet.
        let barrier = std::sync::Barrier::new(4);
        let signatures: Vec<String> = std::thread::scope(|scope| {
            let loads: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| {
                    let mut conn = t.db.conn().unwrap();
                    barrier.wait();
                    LinkSigner::load(&mut conn).unwrap().sign(Purpose::Unsubscribe, "7")
                }))
                .collect();
            loads.into_iter().map(|l| l.join().unwrap()).collect()
        });
        assert!(signatures.iter().all(|s| *s == signatures[0]), "one key for all");
    }

    fn links_survive_one_key_rotation(t) {
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        common::subscribe(&mut conn, account, "kim@example.com");
        let before = delivery_token(&mut conn, account, "kim@example.com", true);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_espbridge"))
            .env("ESPBRIDGE_DATABASE_URL", &t.url)
            .env("ESPBRIDGE_DATA_DIR", tempfile::tempdir().unwrap().path())
            .arg("rotate-link-key")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rotated = LinkSigner::load(&mut conn).unwrap();
        let payload = rotated.verify(Purpose::Unsubscribe, &before).expect("a link of the previous key still works");
        assert_ne!(rotated.sign(Purpose::Unsubscribe, &payload), before, "new links are signed with the new key");
        LinkSigner::rotate(&mut conn).unwrap();
        let twice = LinkSigner::load(&mut conn).unwrap();
        assert!(twice.verify(Purpose::Unsubscribe, &before).is_err(), "two rotations retire a key");
        let fresh = twice.sign(Purpose::Unsubscribe, "7");
        assert_eq!(twice.verify(Purpose::Unsubscribe, &fresh).unwrap(), "7");
    }
}
