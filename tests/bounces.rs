//! Bounce and complaint intake from a Maildir on both backends, with the
//! samples in `fixtures/bounces/` (written after RFC 3464 and RFC 5965): a hard
//! 5.1.1 bounce, three soft 4.2.2 bounces, an ARF complaint matched by its
//! Message-ID, and a message that is no report at all. Each is applied once
//! with MailUp's reason codes; the unreadable one is skipped without stopping
//! the rest.

mod common;

use diesel::prelude::*;
use espbridge::db::DbConnection;
use espbridge::db::schema::{deliveries, delivery_events};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::bounces;
use espbridge::domain::history;
use espbridge::domain::links::LinkSigner;
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::recipients::{self, RecipientKey};
use espbridge::domain::sends::{self, Enqueued, NewSingle, SendKind, To};
use espbridge::domain::subscriptions::{self, Status, UnsubscribeReason};
use espbridge::intake::{self, Taken, maildir};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/bounces");

fn sample(name: &str, verp: &str, recipient: &str, message_id: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap()
        .replace("{verp}", verp)
        .replace("{recipient}", recipient)
        .replace("{message_id}", message_id)
        .replace('\n', "\r\n")
}

fn reason_of(conn: &mut DbConnection, account: i64, email: &str) -> Option<i32> {
    let recipient = recipients::get(conn, account, &RecipientKey::Email(email.into())).unwrap();
    history::for_recipient(conn, account, recipient.id)
        .unwrap()
        .last()
        .unwrap()
        .reason
}

backend_tests! {
    fn maildir_reports_are_classified_and_applied_once(t) {
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        let mut message = NewMessage::email("Our news", "<p>news</p>");
        message.from_email = "news@shop.example".into();
        message.list = Some(1);
        let message = messages::create(&mut conn, account, &message).unwrap();
        let signer = LinkSigner::load(&mut conn).unwrap();
        let hard = common::subscribe_and_send(&mut conn, account, message.id, "gone@example.org");
        let soft = common::subscribe_and_send(&mut conn, account, message.id, "full@example.org");
        let spam = common::subscribe_and_send(&mut conn, account, message.id, "angry@example.org");
        let message_id_of = |conn: &mut DbConnection, d: &Enqueued| -> String {
            deliveries::table.find(d.delivery_id).select(deliveries::message_id).first(conn).unwrap()
        };
        let verp = |d: &Enqueued| bounces::return_path(&signer, d.delivery_id, "bounces.shop.example");
        assert_eq!(bounces::delivery_of(&signer, &verp(&hard)), Some(hard.delivery_id));
        assert_eq!(bounces::delivery_of(&signer, &verp(&hard).replace(&format!("b{}", hard.delivery_id), &format!("b{}", spam.delivery_id))), None, "a forged VERP address names nothing");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("new")).unwrap();
        let hard_id = message_id_of(&mut conn, &hard);
        let spam_id = message_id_of(&mut conn, &spam);
        let files = [
            ("1.hard", sample("hard-5.1.1.eml", &verp(&hard), "gone@example.org", &hard_id)),
            ("2.soft", sample("soft-4.2.2.eml", &verp(&soft), "full@example.org", "")),
            ("3.soft", sample("soft-4.2.2.eml", &verp(&soft), "full@example.org", "")),
            ("4.junk", sample("malformed.eml", "", "", "")),
            ("5.soft", sample("soft-4.2.2.eml", &verp(&soft), "full@example.org", "")),
            ("6.arf", sample("complaint-arf.eml", "", "angry@example.org", &spam_id)),
        ];
        for (name, text) in &files {
            std::fs::write(dir.path().join("new").join(name), text).unwrap();
        }
        // Two soft bounces leave the address alone; the third counts.
        let pass = maildir::process(&mut conn, &signer, dir.path()).unwrap();
        assert_eq!(pass, maildir::Pass { applied: 5, repeated: 0, unreadable: 1, unmatched: 0 });
        assert_eq!(std::fs::read_dir(dir.path().join("new")).unwrap().count(), 0);
        let mut moved: Vec<String> = std::fs::read_dir(dir.path().join("cur")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        moved.sort();
        assert_eq!(moved, vec!["1.hard:2,S", "2.soft:2,S", "3.soft:2,S", "4.junk:2,T", "5.soft:2,S", "6.arf:2,S"]);

        for (email, reason) in [
            ("gone@example.org", UnsubscribeReason::HardBounce),
            ("full@example.org", UnsubscribeReason::RepeatedSoftBounces),
            ("angry@example.org", UnsubscribeReason::Complaint),
        ] {
            assert_eq!(subscriptions::status(&mut conn, account, 1, &RecipientKey::Email(email.into())).unwrap(), Some(Status::Unsubscribed), "{email}");
            assert_eq!(reason_of(&mut conn, account, email), Some(reason.code()), "{email}");
            let recipient = recipients::get(&mut conn, account, &RecipientKey::Email(email.into())).unwrap();
            assert!(!recipient.email_allowed(), "{email} is blocked from further sends");
        }
        let gone = recipients::get(&mut conn, account, &RecipientKey::Email("gone@example.org".into())).unwrap();
        assert!(gone.bounced);
        let angry = recipients::get(&mut conn, account, &RecipientKey::Email("angry@example.org".into())).unwrap();
        assert!(angry.email_blocklisted);
        let mut kinds: Vec<(String, String)> = delivery_events::table
            .filter(delivery_events::kind.eq_any(["bounced_hard", "bounced_soft", "complaint"]))
            .order(delivery_events::id)
            .select((delivery_events::kind, delivery_events::detail))
            .load(&mut conn)
            .unwrap();
        kinds.iter_mut().for_each(|(_, d)| d.truncate(5));
        assert_eq!(kinds, vec![
            ("bounced_hard".to_string(), "5.1.1".to_string()),
            ("bounced_soft".to_string(), "4.2.2".to_string()),
            ("bounced_soft".to_string(), "4.2.2".to_string()),
            ("bounced_soft".to_string(), "4.2.2".to_string()),
            ("complaint".to_string(), "abuse".to_string()),
        ]);
        // Sending to a bounced address is refused.
        let again = sends::enqueue_single(&mut conn, account, &NewSingle {
            kind: SendKind::Single, message_id: message.id, to: To::Recipient(RecipientKey::Email("gone@example.org".into())),
            params: serde_json::Map::new(), idempotency_key: None,
        });
        assert!(matches!(again, Err(espbridge::Error::Blocklisted)), "{again:?}");

        // The same report again (a crash before the file moved): nothing twice.
        let text = sample("hard-5.1.1.eml", &verp(&hard), "gone@example.org", &hard_id);
        assert_eq!(intake::take(&mut conn, &signer, "maildir:1.hard", text.as_bytes()).unwrap(), Taken::Repeated);
        std::fs::write(dir.path().join("new").join("1.hard"), &text).unwrap();
        assert_eq!(maildir::process(&mut conn, &signer, dir.path()).unwrap(), maildir::Pass { applied: 0, repeated: 1, unreadable: 0, unmatched: 0 });
        let count: i64 = delivery_events::table.filter(delivery_events::kind.eq("bounced_hard")).count().get_result(&mut conn).unwrap();
        assert_eq!(count, 1);
    }
}

backend_tests! {
    fn webhook_events_apply_once_and_only_to_the_keys_account(t) {
        let mut conn = t.db.conn().unwrap();
        let shop = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap();
        let other = accounts::create(&mut conn, &NewAccount { name: "Other".into(), ..NewAccount::default() }).unwrap();
        let mut ids = Vec::new();
        for account in [shop.account_id, other.account_id] {
            let mut message = NewMessage::email("News", "<p>news</p>");
            message.list = Some(1);
            let message = messages::create(&mut conn, account, &message).unwrap();
            ids.push(common::subscribe_and_send(&mut conn, account, message.id, "same@example.org"));
        }
        let signer = LinkSigner::load(&mut conn).unwrap();
        let shop_verp = bounces::return_path(&signer, ids[0].delivery_id, "b.example");
        let other_message_id: String = deliveries::table.find(ids[1].delivery_id).select(deliveries::message_id).first(&mut conn).unwrap();

        actix_web::rt::System::new().block_on(async {
            use actix_web::{App, test};
            let state = espbridge::server::AppState::new(t.db.clone(), espbridge::config::Settings::default());
            let app = test::init_service(App::new().configure(espbridge::server::configure(state))).await;
            let post = |key: &str, body: serde_json::Value| {
                test::TestRequest::post()
                    .uri("/webhooks/bounces")
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .set_json(body)
                    .to_request()
            };
            let events = serde_json::json!({"events": [
                {"id": "e1", "type": "hard_bounce", "return_path": shop_verp, "recipient": "same@example.org", "status": "5.1.1", "diagnostic": "550 unknown"},
                {"id": "e2", "type": "complaint", "message_id": other_message_id, "recipient": "same@example.org"}
            ]});
            let answer: serde_json::Value = test::call_and_read_body_json(&app, post(&shop.api_key, events.clone())).await;
            assert_eq!(answer, serde_json::json!({"applied": 1, "repeated": 0, "unmatched": 1}));
            let answer: serde_json::Value = test::call_and_read_body_json(&app, post(&shop.api_key, events.clone())).await;
            assert_eq!(answer, serde_json::json!({"applied": 0, "repeated": 2, "unmatched": 0}));
            assert_eq!(test::call_service(&app, post("eb_nope_nope", events)).await.status(), 401);
            let bad = test::TestRequest::post().uri("/webhooks/bounces").insert_header(("Authorization", format!("Bearer {}", shop.api_key))).set_payload("{not json").to_request();
            assert_eq!(test::call_service(&app, bad).await.status(), 400);
        });
        assert_eq!(reason_of(&mut conn, shop.account_id, "same@example.org"), Some(UnsubscribeReason::HardBounce.code()));
        // The other account's recipient was untouched by the shop's key.
        assert_eq!(subscriptions::status(&mut conn, other.account_id, 1, &RecipientKey::Email("same@example.org".into())).unwrap(), Some(Status::Subscribed));
    }
}

backend_tests! {
    fn imap_mailbox_served_by_dovecot_is_polled(t) {
        let Some(imap) = common::ImapServer::start() else {
            return;
        };
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        let mut message = NewMessage::email("Our news", "<p>news</p>");
        message.list = Some(1);
        let message = messages::create(&mut conn, account, &message).unwrap();
        let signer = LinkSigner::load(&mut conn).unwrap();
        let hard = common::subscribe_and_send(&mut conn, account, message.id, "gone@example.org");
        let spam = common::subscribe_and_send(&mut conn, account, message.id, "angry@example.org");
        let spam_id: String = deliveries::table.find(spam.delivery_id).select(deliveries::message_id).first(&mut conn).unwrap();
        let verp = bounces::return_path(&signer, hard.delivery_id, "bounces.shop.example");
        imap.deliver("1.hard", &sample("hard-5.1.1.eml", &verp, "gone@example.org", ""));
        imap.deliver("2.junk", &sample("malformed.eml", "", "", ""));
        imap.deliver("3.arf", &sample("complaint-arf.eml", "", "angry@example.org", &spam_id));

        let mailbox = intake::imap::Mailbox::parse(&imap.url()).unwrap();
        let poll = intake::imap::poll(&mut conn, &signer, &mailbox).unwrap();
        assert_eq!(poll, intake::imap::Poll { applied: 2, repeated: 0, unreadable: 1 });
        assert_eq!(reason_of(&mut conn, account, "gone@example.org"), Some(UnsubscribeReason::HardBounce.code()));
        assert_eq!(reason_of(&mut conn, account, "angry@example.org"), Some(UnsubscribeReason::Complaint.code()));
        // Seen messages are not taken again.
        assert_eq!(intake::imap::poll(&mut conn, &signer, &mailbox).unwrap(), intake::imap::Poll::default());
        // A wrong password is a clear error, not a panic.
        let wrong = intake::imap::Mailbox { password: "nope".into(), ..mailbox };
        assert!(intake::imap::poll(&mut conn, &signer, &wrong).is_err());
    }
}

backend_tests! {
    fn the_server_polls_its_bounce_maildir(t) {
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        let mut message = NewMessage::email("Our news", "<p>news</p>");
        message.list = Some(1);
        let message = messages::create(&mut conn, account, &message).unwrap();
        let signer = LinkSigner::load(&mut conn).unwrap();
        let hard = common::subscribe_and_send(&mut conn, account, message.id, "gone@example.org");
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        std::fs::create_dir_all(maildir.join("new")).unwrap();
        let config = dir.path().join("espbridge.toml");
        std::fs::write(&config, format!("[sender]\nbounce_maildir = \"{}\"\nbounce_poll_seconds = 1\n", maildir.display())).unwrap();
        let _server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_CONFIG", config.to_str().unwrap())]);
        let verp = bounces::return_path(&signer, hard.delivery_id, "bounces.shop.example");
        std::fs::write(maildir.join("new").join("1.hard"), sample("hard-5.1.1.eml", &verp, "gone@example.org", "")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while subscriptions::status(&mut conn, account, 1, &RecipientKey::Email("gone@example.org".into())).unwrap() != Some(Status::Unsubscribed) {
            assert!(std::time::Instant::now() < deadline, "the bounce was not taken in");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(reason_of(&mut conn, account, "gone@example.org"), Some(UnsubscribeReason::HardBounce.code()));
        assert!(maildir.join("cur").join("1.hard:2,S").exists());
    }
}
