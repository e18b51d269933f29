//! The queued sender against a real SMTP server process on loopback, on both
//! backends: complete and personalised campaigns, temporary and permanent
//! failures, the priority lane, the outbox's lease rules, and the file outbox.

mod common;

use std::time::{Duration, Instant};

use common::{SmtpBehaviour, SmtpServer, TestDb};
use diesel::prelude::*;
use espbridge::config::{SenderSettings, Settings};
use espbridge::db::schema::{deliveries, delivery_events};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::links::{LinkSigner, Purpose};
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::recipients::{Contact, RecipientKey};
use espbridge::domain::sends::{
    self, Audience, Lane, NewCampaign, NewSingle, SendKind, SendStatus, To,
};
use espbridge::domain::subscriptions::{self, Subscribe};
use espbridge::domain::{Channel, Origin, lists};
use espbridge::sender::queue::{self, Outcome, RetryPolicy};

fn account(t: &TestDb) -> i64 {
    accounts::create(
        &mut t.db.conn().unwrap(),
        &NewAccount {
            name: "Shop".into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
    .account_id
}

fn settings(dir: &tempfile::TempDir, smtp: Option<&SmtpServer>) -> Settings {
    Settings {
        data_dir: dir.path().to_path_buf(),
        smtp_url: smtp.map(SmtpServer::url),
        public_url: Some("https://esp.example".into()),
        sender: SenderSettings {
            poll_milliseconds: 20,
            retry_base_seconds: 1,
            lease_seconds: 30,
            ..SenderSettings::default()
        },
        ..Settings::default()
    }
}

fn message(t: &TestDb, account_id: i64, subject: &str, html: &str) -> i64 {
    let mut new = NewMessage::email(subject, html);
    new.from_email = "news@shop.example".into();
    new.from_name = "Shop".into();
    messages::create(&mut t.db.conn().unwrap(), account_id, &new)
        .unwrap()
        .id
}

/// Waits until the send is completed (or fails the test with its counters).
fn wait_completed(t: &TestDb, account_id: i64, send_id: i64, limit: Duration) -> sends::Send {
    let deadline = Instant::now() + limit;
    loop {
        let send = sends::get(&mut t.db.conn().unwrap(), account_id, send_id).unwrap();
        if send.status().unwrap() == SendStatus::Completed {
            return send;
        }
        assert!(
            Instant::now() < deadline,
            "send not completed in time: {send:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

backend_tests! {
    fn campaign_of_10000_arrives_complete_and_personalised(t) {
        let Some(smtp) = SmtpServer::start(SmtpBehaviour::default()) else { return };
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 10_000, "example.com");
        let m = message(t, a, "News for {{ fields.nome }}", "<p>Hello {{ fields.nome }} ({{ recipient.email }})</p>");
        let send_id = common::start_list_campaign(&t.db, a, m);
        let dir = tempfile::tempdir().unwrap();
        let sender = espbridge::sender::spawn(t.db.clone(), &settings(&dir, Some(&smtp))).unwrap();
        let send = wait_completed(t, a, send_id, Duration::from_secs(300));
        sender.stop();
        assert_eq!((send.to_send, send.sent, send.failed, send.deferred), (10_000, 10_000, 0, 0));

        let received = smtp.received();
        assert_eq!(received.len(), 10_000, "one message per recipient");
        let mut recipients: Vec<&str> = received.iter().map(|r| r.rcpt_tos[0].as_str()).collect();
        recipients.sort();
        recipients.dedup();
        assert_eq!(recipients.len(), 10_000);
        for r in &received {
            let i: usize = r.rcpt_tos[0].trim_start_matches("user").split('@').next().unwrap().parse().unwrap();
            assert!(r.data.contains(&format!("Subject: News for Name{i}\r\n")), "{}", r.data);
            assert!(r.data.contains(&format!("Hello Name{i} (user{i}@example.com)")), "{}", r.data);
            assert_eq!(r.mail_from, "news@shop.example");
            assert!(r.data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        }
        // Every delivery recorded its Message-ID, and the server saw exactly those.
        let ids: Vec<String> = deliveries::table.filter(deliveries::send_id.eq(send_id)).select(deliveries::message_id).load(&mut *t.db.conn().unwrap()).unwrap();
        let mut seen: Vec<&str> = received.iter().map(|r| r.message_id.as_str()).collect();
        seen.sort();
        let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        ids.sort();
        assert_eq!(seen, ids);
    }

    fn temporary_failures_retry_and_permanent_ones_bounce(t) {
        let Some(smtp) = SmtpServer::start(SmtpBehaviour { defer_every: 4, reject: Some("reject".into()), delay_ms: 0 }) else { return };
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 190, "example.com");
        common::seed_subscribers(&t.db, a, 1, 1000, 10, "reject.example.com");
        let m = message(t, a, "Hi", "<p>Hi {{ fields.nome }}</p>");
        let send_id = common::start_list_campaign(&t.db, a, m);
        let dir = tempfile::tempdir().unwrap();
        let sender = espbridge::sender::spawn(t.db.clone(), &settings(&dir, Some(&smtp))).unwrap();
        let send = wait_completed(t, a, send_id, Duration::from_secs(120));
        sender.stop();
        assert_eq!((send.to_send, send.sent, send.failed, send.bounced, send.deferred), (200, 190, 10, 10, 0));

        let received = smtp.received();
        assert_eq!(received.len(), 190);
        assert!(received.iter().all(|r| !r.rcpt_tos[0].contains("reject")));
        let mut conn = t.db.conn().unwrap();
        let failed: Vec<(String, Option<String>)> = deliveries::table
            .filter(deliveries::send_id.eq(send_id))
            .filter(deliveries::state.eq("failed"))
            .select((deliveries::address, deliveries::last_reply))
            .load(&mut *conn)
            .unwrap();
        assert_eq!(failed.len(), 10);
        for (address, reply) in &failed {
            assert!(address.contains("reject"));
            assert!(reply.as_deref().unwrap_or("").contains("550"), "{reply:?}");
        }
        let deferrals: i64 = delivery_events::table
            .filter(delivery_events::send_id.eq(send_id))
            .filter(delivery_events::kind.eq("deferred"))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        assert!(deferrals > 0, "some messages were answered 451 first");
        let retried: i64 = deliveries::table
            .filter(deliveries::send_id.eq(send_id))
            .filter(deliveries::state.eq("sent"))
            .filter(deliveries::attempts.gt(1))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        assert_eq!(retried, deferrals, "each deferred message was delivered on its retry");
        let bounces: i64 = delivery_events::table
            .filter(delivery_events::send_id.eq(send_id))
            .filter(delivery_events::kind.eq("bounced"))
            .filter(delivery_events::detail.like("%550%"))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        assert_eq!(bounces, 10);
    }

    fn transactional_mail_overtakes_a_running_campaign(t) {
        let Some(smtp) = SmtpServer::start(SmtpBehaviour { delay_ms: 20, ..SmtpBehaviour::default() }) else { return };
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 300, "example.com");
        let m = message(t, a, "Bulk", "<p>bulk</p>");
        let dir = tempfile::tempdir().unwrap();
        let mut config = settings(&dir, Some(&smtp));
        config.sender.bulk_concurrency = 2;
        let send_id = common::start_list_campaign(&t.db, a, m);
        let sender = espbridge::sender::spawn(t.db.clone(), &config).unwrap();
        while smtp.count() < 20 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let reset = message(t, a, "Password reset", "<p>Your code is {{ params.code }}</p>");
        let single = sends::enqueue_single(&mut t.db.conn().unwrap(), a, &NewSingle {
            kind: SendKind::Single,
            message_id: reset,
            to: To::Address("customer@example.org".into()),
            params: serde_json::json!({"code": "927451"}).as_object().unwrap().clone(),
            idempotency_key: None,
        }).unwrap();
        wait_completed(t, a, single.send_id, Duration::from_secs(60));
        wait_completed(t, a, send_id, Duration::from_secs(120));
        sender.stop();
        let received = smtp.received();
        let position = received.iter().position(|r| r.rcpt_tos[0] == "customer@example.org").unwrap();
        assert!(received[position].data.contains("Your code is 927451"));
        assert!(position < received.len() - 100, "the reset mail came out at {position} of {}", received.len());
    }

    fn domain_rate_limits_hold_back_but_deliver_everything(t) {
        let Some(smtp) = SmtpServer::start(SmtpBehaviour::default()) else { return };
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 12, "slow.example");
        common::seed_subscribers(&t.db, a, 1, 100, 3, "fast.example");
        let m = message(t, a, "Hi", "<p>Hi</p>");
        let send_id = common::start_list_campaign(&t.db, a, m);
        let dir = tempfile::tempdir().unwrap();
        let mut config = settings(&dir, Some(&smtp));
        config.sender.domain_rates.insert("slow.example".into(), 5.0);
        let started = Instant::now();
        let sender = espbridge::sender::spawn(t.db.clone(), &config).unwrap();
        let send = wait_completed(t, a, send_id, Duration::from_secs(60));
        let elapsed = started.elapsed();
        sender.stop();
        assert_eq!((send.sent, send.failed), (15, 0));
        assert_eq!(smtp.count(), 15);
        // 12 messages at 5 per second, 5 at once: the last ones had to wait.
        assert!(elapsed >= Duration::from_millis(1200), "{elapsed:?}");
        let buckets: Vec<String> = espbridge::db::schema::throttles::table
            .select(espbridge::db::schema::throttles::bucket)
            .load(&mut *t.db.conn().unwrap())
            .unwrap();
        assert_eq!(buckets, vec!["domain:slow.example".to_string()]);
        // Being held back is not an attempt.
        let attempts: Vec<i32> = deliveries::table.filter(deliveries::send_id.eq(send_id)).select(deliveries::attempts).load(&mut *t.db.conn().unwrap()).unwrap();
        assert!(attempts.iter().all(|&n| n == 1), "{attempts:?}");
    }

    fn lost_deliveries_are_given_up_and_zero_rates_ignored(t) {
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 3, "example.com");
        let m = message(t, a, "Hi", "<p>Hi</p>");
        let send_id = common::start_list_campaign(&t.db, a, m);
        let mut conn = t.db.conn().unwrap();
        let jobs = sends::lease_expansions(&mut conn, chrono::Duration::seconds(60), 10).unwrap();
        while sends::expand_next_batch(&mut conn, jobs[0], 10, chrono::Duration::seconds(60)).unwrap() > 0 {}
        // One delivery whose every attempt ended with its worker gone.
        let lost: i64 = deliveries::table.filter(deliveries::send_id.eq(send_id)).select(deliveries::id).order(deliveries::id).first(&mut *conn).unwrap();
        diesel::update(deliveries::table.find(lost))
            .set((deliveries::state.eq("unknown"), deliveries::attempts.eq(8)))
            .execute(&mut *conn)
            .unwrap();
        drop(conn);
        let dir = tempfile::tempdir().unwrap();
        let mut config = settings(&dir, None);
        config.sender.max_attempts = 8;
        // A rate of zero is a configuration slip: ignored (with a warning), not a stall or a panic.
        config.sender.domain_rates.insert("example.com".into(), 0.0);
        let sender = espbridge::sender::spawn(t.db.clone(), &config).unwrap();
        let send = wait_completed(t, a, send_id, Duration::from_secs(60));
        sender.stop();
        assert_eq!((send.sent, send.failed), (2, 1));
        let (state, reply): (String, Option<String>) = deliveries::table.find(lost).select((deliveries::state, deliveries::last_reply)).first(&mut *t.db.conn().unwrap()).unwrap();
        assert_eq!(state, "failed");
        assert!(reply.unwrap().starts_with("gave up after 8 attempts"));
    }

    fn without_smtp_mail_goes_to_the_file_outbox(t) {
        let a = account(t);
        subscriptions::subscribe(&mut t.db.conn().unwrap(), a, &Subscribe {
            list: 1,
            contact: Contact::email("ida@example.com"),
            fields: vec![],
            groups: vec![],
            double_opt_in: Some(false),
            source: "test".into(),
            origin: Origin::new(Channel::Cli, "test"),
        }).unwrap();
        espbridge::domain::variables::set(&mut t.db.conn().unwrap(), a, "shop", "ACME Store").unwrap();
        espbridge::domain::variables::set(&mut t.db.conn().unwrap(), a, "shop", "ACME Shop").unwrap();
        let m = message(t, a, "Hello from {{ vars.shop }}", "<p>Hello</p>");
        let send_id = common::start_list_campaign(&t.db, a, m);
        let dir = tempfile::tempdir().unwrap();
        let sender = espbridge::sender::spawn(t.db.clone(), &settings(&dir, None)).unwrap();
        wait_completed(t, a, send_id, Duration::from_secs(60));
        sender.stop();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let eml = std::fs::read_to_string(&files[0]).unwrap();
        assert!(eml.contains("To: ida@example.com"), "{eml}");
        // Account variables reach the template (the latest value).
        assert!(eml.contains("Subject: Hello from ACME Shop"), "{eml}");
        // The unsubscribe link carries a token signed for that delivery.
        let token = eml.split("/unsubscribe/").nth(1).unwrap().split('>').next().unwrap();
        let signer = LinkSigner::load(&mut t.db.conn().unwrap()).unwrap();
        let delivery_id: i64 = deliveries::table.filter(deliveries::send_id.eq(send_id)).select(deliveries::id).first(&mut *t.db.conn().unwrap()).unwrap();
        assert_eq!(signer.verify(Purpose::Unsubscribe, token).unwrap(), delivery_id.to_string());
    }

    fn outbox_leases_and_outcomes(t) {
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 5, "example.com");
        let m = message(t, a, "S", "<p>x</p>");
        let mut conn = t.db.conn().unwrap();
        let draft = sends::create_campaign(&mut conn, a, &NewCampaign {
            message_id: m,
            audience: Audience::Recipients(vec![RecipientKey::Email("user1@example.com".into()), RecipientKey::Email("user2@example.com".into())]),
            params: serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: Some("campaign-1".into()),
        }).unwrap();
        // The idempotency key returns the same send.
        let again = sends::create_campaign(&mut conn, a, &NewCampaign {
            message_id: m,
            audience: Audience::Recipients(vec![RecipientKey::Email("user3@example.com".into())]),
            params: serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: Some("campaign-1".into()),
        }).unwrap();
        assert_eq!(again.id, draft.id);
        assert_eq!(draft.to_send, 2);
        let lease = chrono::Duration::seconds(60);
        // A draft's deliveries are not claimed.
        assert!(queue::claim(&mut conn, Lane::Bulk, "w1", 10, lease).unwrap().is_empty());
        sends::start(&mut conn, a, draft.id).unwrap();
        let first = queue::claim(&mut conn, Lane::Bulk, "w1", 10, lease).unwrap();
        assert_eq!(first.len(), 2);
        assert!(queue::claim(&mut conn, Lane::Bulk, "w2", 10, lease).unwrap().is_empty(), "leased rows are not claimed twice");
        assert!(queue::claim(&mut conn, Lane::Priority, "w2", 10, lease).unwrap().is_empty());

        let policy = RetryPolicy { base: chrono::Duration::seconds(0), max_attempts: 3 };
        // A worker that lost its lease cannot record an outcome.
        queue::finish(&mut conn, "w2", &[(first[0].clone(), Outcome::Sent("250 ok".into()))], policy).unwrap();
        assert_eq!(sends::get(&mut conn, a, draft.id).unwrap().sent, 0);
        queue::finish(&mut conn, "w1", &[
            (first[0].clone(), Outcome::Sent("250 ok".into())),
            (first[1].clone(), Outcome::Deferred("451 later".into())),
        ], policy).unwrap();
        let s = sends::get(&mut conn, a, draft.id).unwrap();
        assert_eq!((s.sent, s.deferred, s.status().unwrap()), (1, 1, SendStatus::Sending));
        // Retried (backoff 0 here): claimed again with its state remembered.
        let retry = queue::claim(&mut conn, Lane::Bulk, "w1", 10, lease).unwrap();
        assert_eq!((retry.len(), retry[0].previous_state.as_str(), retry[0].attempts), (1, "deferred", 2));
        assert_eq!(sends::get(&mut conn, a, draft.id).unwrap().deferred, 0);

        // A live worker renews its lease before it runs out: the reaper leaves
        // the delivery alone. Only its holder renews it.
        let ran_out = || Some(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1));
        diesel::update(deliveries::table.find(retry[0].id))
            .set(deliveries::lease_until.eq(ran_out()))
            .execute(&mut *conn).unwrap();
        assert!(queue::renew(&mut conn, "w2", &[retry[0].id], lease).unwrap().is_empty(), "not w2's lease");
        assert_eq!(queue::renew(&mut conn, "w1", &[retry[0].id, first[0].id], lease).unwrap(), vec![retry[0].id], "a sent delivery holds no lease");
        assert_eq!(queue::reap(&mut conn).unwrap(), 0);
        assert!(queue::claim(&mut conn, Lane::Bulk, "w3", 10, lease).unwrap().is_empty());

        // The worker dies: after the lease runs out the reaper makes it `unknown`,
        // and it is claimed again (re-sent); its old holder can renew it no more.
        diesel::update(deliveries::table.find(retry[0].id))
            .set(deliveries::lease_until.eq(ran_out()))
            .execute(&mut *conn).unwrap();
        assert_eq!(queue::reap(&mut conn).unwrap(), 1);
        assert!(queue::renew(&mut conn, "w1", &[retry[0].id], lease).unwrap().is_empty(), "the lease is lost");
        let resent = queue::claim(&mut conn, Lane::Bulk, "w3", 10, lease).unwrap();
        assert_eq!((resent.len(), resent[0].previous_state.as_str(), resent[0].attempts), (1, "unknown", 3));
        // Last attempt: a temporary failure becomes final.
        queue::finish(&mut conn, "w3", &[(resent[0].clone(), Outcome::Deferred("451 still".into()))], policy).unwrap();
        let s = sends::get(&mut conn, a, draft.id).unwrap();
        assert_eq!((s.sent, s.failed, s.deferred, s.status().unwrap()), (1, 1, 0, SendStatus::Completed));
        let reply: Option<String> = deliveries::table.find(resent[0].id).select(deliveries::last_reply).first(&mut *conn).unwrap();
        assert!(reply.unwrap().starts_with("gave up after 3 attempts"));
    }

    fn pause_resume_cancel_and_schedule(t) {
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 30, "example.com");
        let m = message(t, a, "S", "<p>x</p>");
        let mut conn = t.db.conn().unwrap();
        let send_id = common::start_list_campaign(&t.db, a, m);
        let job = sends::lease_expansions(&mut conn, chrono::Duration::seconds(60), 10).unwrap();
        assert_eq!(job.len(), 1);
        assert!(sends::lease_expansions(&mut conn, chrono::Duration::seconds(60), 10).unwrap().is_empty(), "expansion is leased");
        assert_eq!(sends::expand_next_batch(&mut conn, job[0], 20, chrono::Duration::seconds(60)).unwrap(), 20);
        sends::pause(&mut conn, a, send_id).unwrap();
        let lease = chrono::Duration::seconds(60);
        assert!(queue::claim(&mut conn, Lane::Bulk, "w", 100, lease).unwrap().is_empty(), "paused sends are not claimed");
        assert_eq!(sends::expand_next_batch(&mut conn, job[0], 20, lease).unwrap(), 0, "nor expanded");
        sends::resume(&mut conn, a, send_id).unwrap();
        assert_eq!(sends::expand_next_batch(&mut conn, job[0], 20, lease).unwrap(), 10);
        assert_eq!(sends::expand_next_batch(&mut conn, job[0], 20, lease).unwrap(), 0);
        let s = sends::get(&mut conn, a, send_id).unwrap();
        assert!(s.expanded);
        assert_eq!(s.to_send, 30);
        let claimed = queue::claim(&mut conn, Lane::Bulk, "w", 5, lease).unwrap();
        assert_eq!(claimed.len(), 5);
        sends::cancel(&mut conn, a, send_id).unwrap();
        assert!(queue::claim(&mut conn, Lane::Bulk, "w", 100, lease).unwrap().is_empty());
        let cancelled: i64 = deliveries::table.filter(deliveries::send_id.eq(send_id)).filter(deliveries::state.eq("cancelled")).count().get_result(&mut *conn).unwrap();
        assert_eq!(cancelled, 25);
        assert!(sends::resume(&mut conn, a, send_id).is_err());
        // The five that were out come back: not sent, they end cancelled and the
        // counters stay consistent.
        let policy = RetryPolicy { base: chrono::Duration::seconds(0), max_attempts: 8 };
        let outcomes: Vec<_> = claimed.iter().enumerate().map(|(i, c)| {
            let outcome = if i == 0 { Outcome::Sent("250 ok".into()) } else { Outcome::Deferred("451 later".into()) };
            (c.clone(), outcome)
        }).collect();
        queue::finish(&mut conn, "w", &outcomes, policy).unwrap();
        let s = sends::get(&mut conn, a, send_id).unwrap();
        assert_eq!((s.sent, s.deferred, s.failed), (1, 0, 0));
        let cancelled: i64 = deliveries::table.filter(deliveries::send_id.eq(send_id)).filter(deliveries::state.eq("cancelled")).count().get_result(&mut *conn).unwrap();
        assert_eq!(cancelled, 29);

        // Scheduled: starts only when due.
        let later = sends::create_campaign(&mut conn, a, &NewCampaign {
            message_id: m,
            audience: Audience::List { list: 1, groups: vec![], filter: vec![] },
            params: serde_json::Map::new(),
            scheduled_at: Some(chrono::Utc::now().naive_utc() + chrono::Duration::hours(1)),
            idempotency_key: None,
        }).unwrap();
        assert_eq!(sends::start(&mut conn, a, later.id).unwrap().status().unwrap(), SendStatus::Scheduled);
        assert_eq!(sends::start_due(&mut conn).unwrap(), 0);
        // Paused before its time, a scheduled send resumes as scheduled.
        sends::pause(&mut conn, a, later.id).unwrap();
        assert_eq!(sends::resume(&mut conn, a, later.id).unwrap().status().unwrap(), SendStatus::Scheduled);
        let soon = sends::create_campaign(&mut conn, a, &NewCampaign {
            message_id: m,
            audience: Audience::List { list: 1, groups: vec![], filter: vec![] },
            params: serde_json::Map::new(),
            scheduled_at: Some(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1)),
            idempotency_key: None,
        }).unwrap();
        assert_eq!(sends::start(&mut conn, a, soon.id).unwrap().status().unwrap(), SendStatus::Sending);
        // Another account sees none of it.
        let b = accounts::create(&mut conn, &NewAccount { name: "B".into(), ..NewAccount::default() }).unwrap().account_id;
        assert!(sends::get(&mut conn, b, send_id).is_err());
        assert!(sends::cancel(&mut conn, b, later.id).is_err());
        assert_eq!(lists::get(&mut conn, b, 1).unwrap().subscribed_count, 0);
    }

    fn campaigns_reach_only_their_groups_and_filter(t) {
        let a = account(t);
        common::seed_subscribers(&t.db, a, 1, 0, 6, "example.com");
        let mut conn = t.db.conn().unwrap();
        let vip = espbridge::domain::groups::create(&mut conn, a, 1, "VIP", "", None).unwrap();
        for i in [1, 2, 3] {
            subscriptions::update_member(&mut conn, a, 1, &RecipientKey::Email(format!("user{i}@example.com")), &[], Some(&subscriptions::GroupChange { groups: vec![vip.number], replace: false })).unwrap();
        }
        let m = message(t, a, "S", "<p>x</p>");
        let expand = |conn: &mut espbridge::db::DbConnection, groups: Vec<i64>, filter: Vec<sends::FieldEquals>| -> Vec<String> {
            let send = sends::create_campaign(conn, a, &NewCampaign {
                message_id: m,
                audience: Audience::List { list: 1, groups, filter },
                params: serde_json::Map::new(),
                scheduled_at: None,
                idempotency_key: None,
            }).unwrap();
            sends::start(conn, a, send.id).unwrap();
            let jobs = sends::lease_expansions(conn, chrono::Duration::seconds(60), 10).unwrap();
            while sends::expand_next_batch(conn, jobs[0], 2, chrono::Duration::seconds(60)).unwrap() > 0 {}
            let mut addresses: Vec<String> = deliveries::table.filter(deliveries::send_id.eq(send.id)).select(deliveries::address).load(conn).unwrap();
            addresses.sort();
            addresses
        };
        assert_eq!(expand(&mut conn, vec![vip.number], vec![]), vec!["user1@example.com", "user2@example.com", "user3@example.com"]);
        let name2 = sends::FieldEquals { field: 1, value: "Name2".into() };
        assert_eq!(expand(&mut conn, vec![], vec![name2.clone()]), vec!["user2@example.com"]);
        assert_eq!(expand(&mut conn, vec![vip.number], vec![sends::FieldEquals { field: 1, value: "Name5".into() }]), Vec::<String>::new());
        assert_eq!(expand(&mut conn, vec![], vec![]).len(), 6);
        assert!(sends::create_campaign(&mut conn, a, &NewCampaign {
            message_id: m,
            audience: Audience::List { list: 1, groups: vec![], filter: vec![sends::FieldEquals { field: 40, value: "x".into() }] },
            params: serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: None,
        }).is_err());
    }

    fn campaigns_to_several_lists_reach_each_once_less_exclusions(t) {
        use sends::ListPart;
        let a = account(t);
        // List 1: user0..user5. List 2: user4, user5 (on both), user6 (in
        // its group Partners), user7. List 3, to leave out: user1.
        common::seed_subscribers(&t.db, a, 1, 0, 6, "example.com");
        let mut conn = t.db.conn().unwrap();
        for name in ["Second", "Leave out"] {
            lists::create(&mut conn, a, &lists::NewList { name: name.into(), ..lists::NewList::default() }).unwrap();
        }
        let partners = espbridge::domain::groups::create(&mut conn, a, 2, "Partners", "", None).unwrap();
        let out = espbridge::domain::groups::create(&mut conn, a, 1, "Out", "", None).unwrap();
        let join = |conn: &mut espbridge::db::DbConnection, list: i64, i: usize, groups: Vec<i64>| {
            subscriptions::subscribe(conn, a, &Subscribe {
                list,
                contact: Contact::email(format!("user{i}@example.com")),
                fields: vec![(espbridge::domain::fields::FieldRef::Number(1), format!("Name{i}"))],
                groups,
                double_opt_in: Some(false),
                source: "test".into(),
                origin: Origin::new(Channel::Cli, "test"),
            }).unwrap();
        };
        for i in [4, 5, 7] {
            join(&mut conn, 2, i, vec![]);
        }
        join(&mut conn, 2, 6, vec![partners.number]);
        join(&mut conn, 3, 1, vec![]);
        subscriptions::update_member(&mut conn, a, 1, &RecipientKey::Email("user2@example.com".into()), &[], Some(&subscriptions::GroupChange { groups: vec![out.number], replace: false })).unwrap();
        let m = message(t, a, "S", "<p>x</p>");
        let whole = |list: i64| ListPart { list, groups: vec![] };
        let expand = |conn: &mut espbridge::db::DbConnection, targets: Vec<ListPart>, exclude: Vec<ListPart>, filter: Vec<sends::FieldEquals>| -> Vec<String> {
            let send = sends::create_campaign(conn, a, &NewCampaign {
                message_id: m,
                audience: Audience::Lists { targets, exclude, filter },
                params: serde_json::Map::new(),
                scheduled_at: None,
                idempotency_key: None,
            }).unwrap();
            sends::start(conn, a, send.id).unwrap();
            let jobs = sends::lease_expansions(conn, chrono::Duration::seconds(60), 10).unwrap();
            while sends::expand_next_batch(conn, jobs[0], 2, chrono::Duration::seconds(60)).unwrap() > 0 {}
            let mut addresses: Vec<String> = deliveries::table.filter(deliveries::send_id.eq(send.id)).select(deliveries::address).load(conn).unwrap();
            addresses.sort();
            addresses
        };
        let users = |ids: &[usize]| -> Vec<String> { ids.iter().map(|i| format!("user{i}@example.com")).collect() };
        assert_eq!(expand(&mut conn, vec![whole(1), whole(2)], vec![], vec![]), users(&[0, 1, 2, 3, 4, 5, 6, 7]), "each once");
        assert_eq!(expand(&mut conn, vec![whole(1), whole(2)], vec![whole(3)], vec![]), users(&[0, 2, 3, 4, 5, 6, 7]));
        assert_eq!(expand(&mut conn, vec![whole(1), ListPart { list: 2, groups: vec![partners.number] }], vec![], vec![]), users(&[0, 1, 2, 3, 4, 5, 6]));
        assert_eq!(expand(&mut conn, vec![whole(1)], vec![ListPart { list: 1, groups: vec![out.number] }], vec![]), users(&[0, 1, 3, 4, 5]));
        // A list named whole and by a group is the whole list.
        assert_eq!(expand(&mut conn, vec![ListPart { list: 2, groups: vec![partners.number] }, whole(2)], vec![], vec![]), users(&[4, 5, 6, 7]));
        let name5 = sends::FieldEquals { field: 1, value: "Name5".into() };
        assert_eq!(expand(&mut conn, vec![whole(1), whole(2)], vec![], vec![name5]), users(&[5]));
        // Whoever is on an excluded list is left out, even unsubscribed from it.
        subscriptions::unsubscribe(&mut conn, a, 3, &RecipientKey::Email("user1@example.com".into()), subscriptions::UnsubscribeReason::Link, &Origin::new(Channel::Cli, "test")).unwrap();
        assert_eq!(expand(&mut conn, vec![whole(1)], vec![whole(3)], vec![]), users(&[0, 2, 3, 4, 5]));
        // An unsubscribed member of a target is not mailed.
        subscriptions::unsubscribe(&mut conn, a, 2, &RecipientKey::Email("user7@example.com".into()), subscriptions::UnsubscribeReason::Link, &Origin::new(Channel::Cli, "test")).unwrap();
        assert_eq!(expand(&mut conn, vec![whole(2)], vec![whole(3)], vec![]), users(&[4, 5, 6]));
        // A whole batch left out (user4 and user5 are on list 1) does not end
        // the expansion.
        assert_eq!(expand(&mut conn, vec![whole(2)], vec![whole(1)], vec![]), users(&[6]));
        // One list and nothing excluded is stored as a send to one list.
        let before: i64 = espbridge::db::schema::send_lists::table.count().get_result(&mut *conn).unwrap();
        assert_eq!(expand(&mut conn, vec![whole(2)], vec![], vec![]), users(&[4, 5, 6]));
        let after: i64 = espbridge::db::schema::send_lists::table.count().get_result(&mut *conn).unwrap();
        assert_eq!(before, after);
        // A list one of a send under way, or left out by it, cannot be
        // deleted; once the send is over it can.
        let running = sends::create_campaign(&mut conn, a, &NewCampaign {
            message_id: m,
            audience: Audience::Lists { targets: vec![whole(1)], exclude: vec![whole(3)], filter: vec![] },
            params: serde_json::Map::new(),
            scheduled_at: None,
            idempotency_key: None,
        }).unwrap();
        sends::start(&mut conn, a, running.id).unwrap();
        assert!(matches!(lists::delete(&mut conn, a, 3), Err(espbridge::Error::Conflict(_))));
        for send in sends::campaigns_in(&mut conn, a, messages::MessageKind::Email, &[SendStatus::Sending]).unwrap() {
            sends::cancel(&mut conn, a, send).unwrap();
        }
        lists::delete(&mut conn, a, 3).unwrap();
        // Refused: no list, an unknown list to leave out.
        for (targets, exclude) in [(vec![], vec![]), (vec![whole(1)], vec![whole(9)])] {
            assert!(sends::create_campaign(&mut conn, a, &NewCampaign {
                message_id: m,
                audience: Audience::Lists { targets, exclude, filter: vec![] },
                params: serde_json::Map::new(),
                scheduled_at: None,
                idempotency_key: None,
            }).is_err());
        }
    }

    fn concurrent_retries_with_one_key_enqueue_once(t) {
        let a = account(t);
        let m = message(t, a, "Code", "<p>{{ params.code }}</p>");
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let db = t.db.clone();
                std::thread::spawn(move || {
                    sends::enqueue_single(&mut db.conn().unwrap(), a, &NewSingle {
                        kind: SendKind::Single,
                        message_id: m,
                        to: To::Address("x@example.com".into()),
                        params: serde_json::Map::new(),
                        idempotency_key: Some("order-42".into()),
                    })
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| !r.repeated).count(), 1);
        assert!(results.iter().all(|r| (r.send_id, r.delivery_id) == (results[0].send_id, results[0].delivery_id)));
        let count: i64 = deliveries::table.count().get_result(&mut *t.db.conn().unwrap()).unwrap();
        assert_eq!(count, 1);
    }

    fn single_sends_are_idempotent_and_respect_blocks(t) {
        let a = account(t);
        let m = message(t, a, "Code", "<p>{{ params.code }}</p>");
        let mut conn = t.db.conn().unwrap();
        let single = |key: Option<&str>, to: &str| NewSingle {
            kind: SendKind::Otp,
            message_id: m,
            to: To::Address(to.into()),
            params: serde_json::json!({"code": "1"}).as_object().unwrap().clone(),
            idempotency_key: key.map(String::from),
        };
        let first = sends::enqueue_single(&mut conn, a, &single(Some("otp-1"), "x@example.com")).unwrap();
        let repeat = sends::enqueue_single(&mut conn, a, &single(Some("otp-1"), "x@example.com")).unwrap();
        assert!(!first.repeated && repeat.repeated);
        assert_eq!((first.send_id, first.delivery_id), (repeat.send_id, repeat.delivery_id));
        let claimed = queue::claim(&mut conn, Lane::Priority, "w", 10, chrono::Duration::seconds(60)).unwrap();
        assert_eq!(claimed.len(), 1, "one delivery despite the retry");
        assert!(matches!(sends::enqueue_single(&mut conn, a, &single(None, "not an address")), Err(espbridge::Error::Invalid { .. })));
        let s = subscriptions::subscribe(&mut conn, a, &Subscribe {
            list: 1,
            contact: Contact::email("blocked@example.com"),
            fields: vec![],
            groups: vec![],
            double_opt_in: Some(false),
            source: "test".into(),
            origin: Origin::new(Channel::Cli, "test"),
        }).unwrap();
        espbridge::domain::recipients::set_blocklisted(&mut conn, a, s.recipient_id, espbridge::domain::recipients::MessageChannel::Email, true).unwrap();
        assert!(matches!(sends::enqueue_single(&mut conn, a, &single(None, "Blocked@example.com")), Err(espbridge::Error::Blocklisted)));
    }
}
