//! Open pixels and click redirects, in-process on both backends: human hits
//! counted per send, per delivery (unique) and per recipient; HEAD requests,
//! scanner user agents and hits right after delivery stored but flagged as
//! machines; tampered tokens never redirect.

mod common;

use actix_web::{App, test};
use diesel::prelude::*;
use espbridge::config::Settings;
use espbridge::db::schema::{deliveries, delivery_events};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::links::LinkSigner;
use espbridge::domain::messages::{self, NewMessage};
use espbridge::domain::recipients::{Contact, RecipientKey};
use espbridge::domain::sends::{self, NewSingle, SendKind, To};
use espbridge::domain::subscriptions::{self, Subscribe};
use espbridge::domain::tracking::{self, SendActivity};
use espbridge::domain::{Channel, Origin};
use espbridge::server::{AppState, configure};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

backend_tests! {
    fn opens_and_clicks_are_counted_and_machines_flagged(t) {
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        let mut deliveries_by_name = Vec::new();
        let message = messages::create(&mut conn, account, &NewMessage::email("Hi", "<a href=\"https://shop.example/\">x</a>")).unwrap();
        for email in ["ann@example.com", "ben@example.com"] {
            subscriptions::subscribe(&mut conn, account, &Subscribe {
                list: 1, contact: Contact::email(email), fields: vec![], groups: vec![], double_opt_in: Some(false),
                source: "test".into(), origin: Origin::new(Channel::Cli, "test"),
            }).unwrap();
            let enqueued = sends::enqueue_single(&mut conn, account, &NewSingle {
                kind: SendKind::Single, message_id: message.id, to: To::Recipient(RecipientKey::Email(email.into())),
                params: serde_json::Map::new(), idempotency_key: None,
            }).unwrap();
            deliveries_by_name.push(enqueued);
        }
        // Delivered a while ago, so hits are not mistaken for prefetching.
        let sent_at = espbridge::domain::now() - chrono::Duration::minutes(30);
        diesel::update(deliveries::table).set((deliveries::state.eq("sent"), deliveries::sent_at.eq(Some(sent_at)))).execute(&mut conn).unwrap();
        let signer = LinkSigner::load(&mut conn).unwrap();
        let (ann, ben) = (deliveries_by_name[0], deliveries_by_name[1]);
        let ann_open = tracking::open_token(&signer, ann.delivery_id);
        let ann_click = tracking::click_token(&signer, ann.delivery_id, "https://shop.example/offer?a=1&b=2");
        let ben_click = tracking::click_token(&signer, ben.delivery_id, "https://shop.example/");

        let data_dir = tempfile::tempdir().unwrap();
        let state = AppState::new(t.db.clone(), Settings { data_dir: data_dir.path().into(), ..Settings::default() });
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(state.clone()))).await;
            let request = |method: &str, path: String, agent: &str| {
                test::TestRequest::default().method(method.parse().unwrap()).uri(&path).insert_header(("User-Agent", agent)).peer_addr("198.51.100.4:5000".parse().unwrap()).to_request()
            };
            // Ann opens twice and clicks once; Ben clicks without loading images.
            for _ in 0..2 {
                let res = test::call_service(&app, request("GET", format!("/t/o/{ann_open}"), BROWSER)).await;
                assert_eq!(res.status(), 200);
                assert_eq!(res.headers().get("content-type").unwrap(), "image/gif");
            }
            let res = test::call_service(&app, request("GET", format!("/t/c/{ann_click}"), BROWSER)).await;
            assert_eq!(res.status(), 302);
            assert_eq!(res.headers().get("location").unwrap(), "https://shop.example/offer?a=1&b=2");
            let res = test::call_service(&app, request("GET", format!("/t/c/{ben_click}"), BROWSER)).await;
            assert_eq!(res.status(), 302);
            // Machines: a HEAD check and a security scanner. Stored, not counted.
            assert_eq!(test::call_service(&app, request("HEAD", format!("/t/c/{ben_click}"), BROWSER)).await.status(), 302);
            assert_eq!(test::call_service(&app, request("GET", format!("/t/c/{ann_click}"), "Mimecast Link Scanner")).await.status(), 302);
            assert_eq!(test::call_service(&app, request("GET", format!("/t/o/{ann_open}"), "")).await.status(), 200);

            // A token altered to point elsewhere, or not ours: no redirect, nothing stored.
            let (payload, tag) = ann_click.split_once('.').unwrap();
            use base64::Engine;
            let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|https://evil.example/", ann.delivery_id));
            assert_ne!(payload, evil);
            for bad in [format!("{evil}.{tag}"), "garbage".to_string(), ann_open.clone()] {
                let res = test::call_service(&app, request("GET", format!("/t/c/{bad}"), BROWSER)).await;
                assert_eq!(res.status(), 400, "{bad}");
                assert!(res.headers().get("location").is_none());
            }
            // The pixel is served even for a bad token, and records nothing.
            assert_eq!(test::call_service(&app, request("GET", "/t/o/garbage".into(), BROWSER)).await.status(), 200);
            // Only one token segment, and only GET and HEAD, are tracking links.
            for (method, path, status) in [
                ("GET", format!("/t/c/{ann_click}/more"), 404),
                ("GET", format!("/t/o/{ann_open}/more"), 404),
                ("GET", "/t/c/".to_string(), 404),
                ("GET", "/t/o".to_string(), 404),
                ("POST", format!("/t/c/{ann_click}"), 405),
                ("DELETE", format!("/t/o/{ann_open}"), 405),
            ] {
                let res = test::call_service(&app, request(method, path.clone(), BROWSER)).await;
                assert_eq!(res.status(), status, "{method} {path}");
                assert!(res.headers().get("location").is_none());
            }
        });
        assert!(state.hit_journal().unwrap().settle(std::time::Duration::from_secs(30)));

        let activity = |send_id| tracking::send_activity(&mut t.db.conn().unwrap(), account, send_id).unwrap();
        assert_eq!(activity(ann.send_id), SendActivity { opens: 2, unique_opens: 1, clicks: 1, unique_clicks: 1, machine_opens: 1, machine_clicks: 1 });
        // Ben's click counts as his open too (images were blocked).
        assert_eq!(activity(ben.send_id), SendActivity { opens: 0, unique_opens: 1, clicks: 1, unique_clicks: 1, machine_opens: 0, machine_clicks: 1 });
        let recipient_of = |delivery_id: i64| -> i64 {
            deliveries::table.find(delivery_id).select(deliveries::recipient_id).first::<Option<i64>>(&mut t.db.conn().unwrap()).unwrap().unwrap()
        };
        assert_eq!(tracking::recipient_activity(&mut conn, account, recipient_of(ann.delivery_id)).unwrap(), (2, 1));
        assert_eq!(tracking::recipient_activity(&mut conn, account, recipient_of(ben.delivery_id)).unwrap(), (0, 1));
        // Every hit is in the event store, machines flagged, with IP, agent and URL.
        let events: Vec<(String, bool, Option<String>, Option<String>)> = delivery_events::table
            .filter(delivery_events::kind.eq_any(["opened", "clicked"]))
            .order(delivery_events::id)
            .select((delivery_events::kind, delivery_events::machine, delivery_events::ip, delivery_events::url))
            .load(&mut conn)
            .unwrap();
        let summary: Vec<(&str, bool)> = events.iter().map(|(k, m, _, _)| (k.as_str(), *m)).collect();
        assert_eq!(summary, vec![("opened", false), ("opened", false), ("clicked", false), ("clicked", false), ("clicked", true), ("clicked", true), ("opened", true)]);
        assert!(events.iter().all(|e| e.2.as_deref() == Some("198.51.100.4")));
        assert_eq!(events[2].3.as_deref(), Some("https://shop.example/offer?a=1&b=2"));

        // The store answers by kind, send, recipient and time, per account.
        use espbridge::domain::events::{self, Filter};
        let clicks = Filter { kinds: vec!["clicked".into()], send_id: Some(ann.send_id), ..Filter::default() };
        let found = events::list(&mut conn, account, &clicks, 0, 100).unwrap();
        assert_eq!(found.iter().map(|e| e.machine).collect::<Vec<_>>(), vec![false, true]);
        let of_ann = Filter { recipient_id: Some(recipient_of(ann.delivery_id)), kinds: vec!["opened".into(), "clicked".into()], ..Filter::default() };
        assert_eq!(events::list(&mut conn, account, &of_ann, 0, 100).unwrap().len(), 5);
        let page = events::list(&mut conn, account, &of_ann, 0, 2).unwrap();
        assert_eq!(events::list(&mut conn, account, &of_ann, page[1].id, 100).unwrap().len(), 3);
        let later = Filter { from: Some(espbridge::domain::now() + chrono::Duration::hours(1)), ..Filter::default() };
        assert!(events::list(&mut conn, account, &later, 0, 100).unwrap().is_empty());
        assert!(events::list(&mut conn, account + 1, &Filter::default(), 0, 100).unwrap().is_empty());
    }
}

backend_tests! {
    fn a_batch_counts_firsts_once_and_drops_unknown_deliveries(t) {
        use espbridge::domain::tracking::{Activity, Hit, PendingHit};
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        let message = messages::create(&mut conn, account, &NewMessage::email("Hi", "<p>x</p>")).unwrap();
        subscriptions::subscribe(&mut conn, account, &Subscribe {
            list: 1, contact: Contact::email("zoe@example.com"), fields: vec![], groups: vec![], double_opt_in: Some(false),
            source: "test".into(), origin: Origin::new(Channel::Cli, "test"),
        }).unwrap();
        let enqueued = sends::enqueue_single(&mut conn, account, &NewSingle {
            kind: SendKind::Single, message_id: message.id, to: To::Recipient(RecipientKey::Email("zoe@example.com".into())),
            params: serde_json::Map::new(), idempotency_key: None,
        }).unwrap();
        let now = espbridge::domain::now();
        let human = Hit { ip: None, user_agent: Some(BROWSER.into()), head: false };
        let mut hits: Vec<PendingHit> = (0..10)
            .map(|i| PendingHit {
                delivery_id: enqueued.delivery_id,
                activity: if i % 2 == 0 { Activity::Open } else { Activity::Click },
                url: (i % 2 == 1).then(|| "https://shop.example/".to_string()),
                hit: human.clone(),
                at: now,
            })
            .collect();
        hits.push(PendingHit { delivery_id: 999_999, activity: Activity::Open, url: None, hit: human, at: now });
        let stored = t.db.write_blocking(|conn| tracking::record_batch(conn, &hits)).unwrap();
        assert_eq!(stored, 10, "the hit of an unknown delivery is dropped");
        assert_eq!(
            tracking::send_activity(&mut conn, account, enqueued.send_id).unwrap(),
            SendActivity { opens: 5, unique_opens: 1, clicks: 5, unique_clicks: 1, machine_opens: 0, machine_clicks: 0 }
        );
        // A second batch adds totals but no new firsts.
        t.db.write_blocking(|conn| tracking::record_batch(conn, &hits[..2])).unwrap();
        let activity = tracking::send_activity(&mut conn, account, enqueued.send_id).unwrap();
        assert_eq!((activity.opens, activity.unique_opens, activity.clicks, activity.unique_clicks), (6, 1, 6, 1));
        let recipient = deliveries::table.find(enqueued.delivery_id).select(deliveries::recipient_id).first::<Option<i64>>(&mut conn).unwrap().unwrap();
        assert_eq!(tracking::recipient_activity(&mut conn, account, recipient).unwrap(), (6, 6));
    }
}

/// The tracked URLs in a delivered message's HTML: (pixel, click links).
fn tracked_urls(raw: &str) -> (String, Vec<String>) {
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a MIME message");
    let html = message.body_html(0).expect("an HTML part").into_owned();
    let attribute_values = |marker: &str| -> Vec<String> {
        html.match_indices(marker)
            .map(|(at, _)| {
                let start = html[..at].rfind('"').unwrap() + 1;
                let end = at + html[at..].find('"').unwrap();
                html[start..end].replace("&amp;", "&")
            })
            .collect()
    };
    let pixels = attribute_values("/t/o/");
    assert_eq!(pixels.len(), 1, "{html}");
    (pixels[0].clone(), attribute_values("/t/c/"))
}

backend_tests! {
    fn a_campaign_is_opened_and_clicked_like_a_mail_client_would(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let account = {
            let mut conn = t.db.conn().unwrap();
            accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id
        };
        common::seed_subscribers(&t.db, account, 1, 0, 8, "example.com");
        let mut message = NewMessage::email(
            "Spring",
            "<html><body><p>Hi {{ fields.nome }}</p><a href=\"https://shop.example/spring?a=1&amp;b=2\">Shop</a> <a href=\"https://shop.example/faq\">FAQ</a></body></html>",
        );
        message.list = Some(1);
        let message = messages::create(&mut t.db.conn().unwrap(), account, &message).unwrap();
        let send_id = common::start_list_campaign(&t.db, account, message.id);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("espbridge.toml");
        std::fs::write(&config, "[sender]\nbounce_domain = \"bounces.shop.example\"\npoll_milliseconds = 50\n").unwrap();
        let smtp_url = smtp.url();
        let server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_SMTP_URL", smtp_url.as_str()), ("ESPBRIDGE_CONFIG", config.to_str().unwrap())]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        // Delivered, and recorded as sent.
        while smtp.count() < 8 || sends::get(&mut t.db.conn().unwrap(), account, send_id).unwrap().sent < 8 {
            assert!(std::time::Instant::now() < deadline, "campaign not delivered");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // The deliveries went out a while ago (link scanners strike on arrival).
        diesel::update(deliveries::table.filter(deliveries::send_id.eq(send_id)))
            .set(deliveries::sent_at.eq(Some(espbridge::domain::now() - chrono::Duration::minutes(10))))
            .execute(&mut t.db.conn().unwrap())
            .unwrap();

        let mut received = smtp.received();
        received.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
        let signer = LinkSigner::load(&mut t.db.conn().unwrap()).unwrap();
        let get = |url: &str, agent: &str| {
            let path = url.strip_prefix(&server.base()).unwrap_or_else(|| panic!("{url} is not on the server"));
            common::http(server.port, "GET", path, &[("User-Agent", agent)], Vec::new(), std::time::Duration::from_secs(10)).unwrap()
        };
        for (i, mail) in received.iter().enumerate() {
            // Bounces come back to a VERP address naming this delivery.
            let delivery = espbridge::domain::bounces::delivery_of(&signer, &mail.mail_from).expect("a VERP return path");
            assert!(mail.mail_from.ends_with("@bounces.shop.example"), "{}", mail.mail_from);
            let (pixel, links) = tracked_urls(&mail.data);
            assert_eq!(links.len(), 2);
            assert!(tracking::open_target(&signer, pixel.rsplit('/').next().unwrap()) == Some(delivery));
            // Six readers load the images, three of them click the first link.
            if i < 6 {
                let answer = get(&pixel, BROWSER);
                assert_eq!((answer.status, answer.head.contains("image/gif")), (200, true));
            }
            if i < 3 {
                let answer = get(&links[0], BROWSER);
                assert_eq!(answer.status, 302);
                assert!(answer.head.contains("location: https://shop.example/spring?a=1&b=2") || answer.head.contains("Location: https://shop.example/spring?a=1&b=2"), "{}", answer.head);
            }
            // A security gateway follows every link of the last message.
            if i == 7 {
                for link in &links {
                    assert_eq!(get(link, "Mimecast Link Scanner").status, 302);
                }
            }
        }
        server.hits_applied();
        drop(server);
        assert_eq!(
            tracking::send_activity(&mut t.db.conn().unwrap(), account, send_id).unwrap(),
            SendActivity { opens: 6, unique_opens: 6, clicks: 3, unique_clicks: 3, machine_opens: 0, machine_clicks: 2 }
        );
    }
}

backend_tests! {
    fn tracking_can_be_switched_off_per_list_and_per_send(t) {
        let Some(smtp) = common::SmtpServer::start(common::SmtpBehaviour::default()) else {
            return;
        };
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        common::seed_subscribers(&t.db, account, 1, 0, 2, "example.com");
        let html = "<p><a href=\"https://shop.example/x\">x</a></p>";
        let mut message = NewMessage::email("News", html);
        message.list = Some(1);
        let message = messages::create(&mut conn, account, &message).unwrap();
        // The list says no: its campaign goes out untracked.
        let untracked = espbridge::domain::lists::ListChanges { tracking: Some(false), ..Default::default() };
        espbridge::domain::lists::update(&mut conn, account, 1, &untracked).unwrap();
        common::start_list_campaign(&t.db, account, message.id);
        // A single message sent for no list, its send switched off before it starts.
        let plain = messages::create(&mut conn, account, &NewMessage::email("Receipt", html)).unwrap();
        let single = sends::enqueue_single(&mut conn, account, &NewSingle {
            kind: SendKind::Single, message_id: plain.id, to: To::Address("buyer@example.com".into()),
            params: serde_json::Map::new(), idempotency_key: None,
        }).unwrap();
        assert!(matches!(sends::set_tracking(&mut conn, account, single.send_id, false), Err(espbridge::Error::Conflict(_))), "a started send keeps its setting");
        let draft = sends::create_campaign(&mut conn, account, &sends::NewCampaign {
            message_id: message.id,
            audience: sends::Audience::List { list: 1, groups: vec![], filter: vec![] },
            params: serde_json::Map::new(), scheduled_at: None, idempotency_key: None,
        }).unwrap();
        assert!(draft.tracking);
        assert!(!sends::set_tracking(&mut conn, account, draft.id, false).unwrap().tracking);
        let smtp_url = smtp.url();
        let _server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_SMTP_URL", smtp_url.as_str())]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while smtp.count() < 3 {
            assert!(std::time::Instant::now() < deadline, "not delivered");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for mail in smtp.received() {
            let body = mail_parser::MessageParser::default().parse(mail.data.as_bytes()).unwrap().body_html(0).unwrap().into_owned();
            let tracked = body.contains("/t/o/");
            if mail.rcpt_tos == ["buyer@example.com"] {
                assert!(tracked && body.contains("/t/c/"), "single sends are tracked by default: {body}");
            } else {
                assert!(!tracked && body.contains("href=\"https://shop.example/x\""), "list tracking is off: {body}");
            }
        }
    }
}

/// A delivery sent half an hour ago, and its open pixel's token.
fn sent_delivery(t: &common::TestDb) -> (i64, sends::Enqueued, String) {
    let mut conn = t.db.conn().unwrap();
    let account = accounts::create(
        &mut conn,
        &NewAccount {
            name: "Shop".into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
    .account_id;
    let message =
        messages::create(&mut conn, account, &NewMessage::email("Hi", "<p>x</p>")).unwrap();
    let enqueued = sends::enqueue_single(
        &mut conn,
        account,
        &NewSingle {
            kind: SendKind::Single,
            message_id: message.id,
            to: To::Address("amy@example.com".into()),
            params: serde_json::Map::new(),
            idempotency_key: None,
        },
    )
    .unwrap();
    let sent_at = espbridge::domain::now() - chrono::Duration::minutes(30);
    diesel::update(deliveries::table)
        .set((
            deliveries::state.eq("sent"),
            deliveries::sent_at.eq(Some(sent_at)),
        ))
        .execute(&mut conn)
        .unwrap();
    let open = tracking::open_token(&LinkSigner::load(&mut conn).unwrap(), enqueued.delivery_id);
    (account, enqueued, open)
}

fn stored_opens(t: &common::TestDb) -> i64 {
    delivery_events::table
        .filter(delivery_events::kind.eq("opened"))
        .count()
        .get_result(&mut t.db.conn().unwrap())
        .unwrap()
}

backend_tests! {
    fn concurrent_hits_are_each_answered_and_applied_once(t) {
        const HITS: usize = 60;
        let (account, enqueued, open) = sent_delivery(t);
        let data_dir = tempfile::tempdir().unwrap();
        let state = AppState::new(t.db.clone(), Settings { data_dir: data_dir.path().into(), ..Settings::default() });
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(App::new().configure(configure(state.clone()))).await;
            let requests = (0..HITS).map(|_| {
                let request = test::TestRequest::get().uri(&format!("/t/o/{open}")).insert_header(("User-Agent", BROWSER)).to_request();
                test::call_service(&app, request)
            });
            let answers = futures_util::future::join_all(requests).await;
            assert!(answers.iter().all(|res| res.status() == 200));
        });
        let journal = state.hit_journal().unwrap();
        assert!(journal.settle(std::time::Duration::from_secs(30)));
        assert_eq!(journal.backlog(), 0);
        assert_eq!(tracking::send_activity(&mut t.db.conn().unwrap(), account, enqueued.send_id).unwrap().opens, HITS as i64);
        assert_eq!(stored_opens(t), HITS as i64);
    }
}

backend_tests! {
    fn a_stopped_process_journal_is_applied_from_where_it_stopped(t) {
        // What a process that died leaves: a segment with its row, applied up
        // to its second line, and a last line cut short by the crash; beside
        // it a segment of another database (no row here).
        let (account, enqueued, _) = sent_delivery(t);
        let data_dir = tempfile::tempdir().unwrap();
        let dir = data_dir.path().join("hits");
        std::fs::create_dir_all(&dir).unwrap();
        let line = |minute: i64| {
            let hit = tracking::PendingHit {
                delivery_id: enqueued.delivery_id,
                activity: tracking::Activity::Open,
                url: None,
                hit: tracking::Hit { ip: Some("198.51.100.4".into()), user_agent: Some(BROWSER.into()), head: false },
                at: espbridge::domain::now() - chrono::Duration::minutes(minute),
            };
            let mut line = serde_json::to_vec(&hit).unwrap();
            line.push(b'\n');
            line
        };
        let (first, second) = (line(20), line(19));
        let mut orphan = [first.clone(), second.clone(), line(18), line(17), line(16)].concat();
        orphan.extend_from_slice(&line(15)[..40]);
        std::fs::write(dir.join("1-1-0.hits"), &orphan).unwrap();
        std::fs::write(dir.join("2-2-0.hits"), line(10)).unwrap();
        // A segment its process died naming, long ago, and one being named now.
        let unnamed = std::fs::File::create(dir.join("3-3-0.hits.new")).unwrap();
        unnamed.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120)).unwrap();
        std::fs::write(dir.join("4-4-0.hits.new"), b"").unwrap();
        use espbridge::db::schema::hit_journal_segments;
        for (name, applied) in [("1-1-0.hits", (first.len() + second.len()) as i64), ("3-3-0.hits", 0)] {
            diesel::insert_into(hit_journal_segments::table)
                .values((hit_journal_segments::name.eq(name), hit_journal_segments::applied_bytes.eq(applied)))
                .execute(&mut t.db.conn().unwrap())
                .unwrap();
        }

        let state = AppState::new(t.db.clone(), Settings { data_dir: data_dir.path().into(), ..Settings::default() });
        assert!(state.hit_journal().is_some());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while dir.join("1-1-0.hits").exists() || dir.join("3-3-0.hits.new").exists() {
            assert!(std::time::Instant::now() < deadline, "the orphan segment was not applied");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The three complete lines after the applied two, each once.
        assert_eq!(stored_opens(t), 3);
        assert_eq!(tracking::send_activity(&mut t.db.conn().unwrap(), account, enqueued.send_id).unwrap().opens, 3);
        let rows: Vec<String> = hit_journal_segments::table.select(hit_journal_segments::name).load(&mut t.db.conn().unwrap()).unwrap();
        assert!(!rows.contains(&"1-1-0.hits".to_string()) && !rows.contains(&"3-3-0.hits".to_string()), "{rows:?}");
        // The other database's segment is left alone, and so is the one
        // still being named.
        assert!(dir.join("2-2-0.hits").exists());
        assert!(dir.join("4-4-0.hits.new").exists());
    }
}

backend_tests! {
    fn hits_answered_by_a_killed_server_are_applied_once_after_a_restart(t) {
        const HITS: usize = 200;
        let (account, enqueued, open) = sent_delivery(t);
        let data_dir = tempfile::tempdir().unwrap();
        let data = data_dir.path().to_str().unwrap();
        let server = common::RunningServer::start(&t.url, &[("ESPBRIDGE_DATA_DIR", data)]);
        for _ in 0..HITS {
            let answer = common::http(server.port, "GET", &format!("/t/o/{open}"), &[("User-Agent", BROWSER)], Vec::new(), std::time::Duration::from_secs(10)).unwrap();
            assert_eq!(answer.status, 200);
        }
        drop(server); // SIGKILL: whatever was not applied yet is in its journal
        let restarted = common::RunningServer::start(&t.url, &[("ESPBRIDGE_DATA_DIR", data)]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_dir(data_dir.path().join("hits")).unwrap().count() > 1 {
            assert!(std::time::Instant::now() < deadline, "the killed server's journal was not applied");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(restarted);
        assert_eq!(stored_opens(t), HITS as i64);
        assert_eq!(tracking::send_activity(&mut t.db.conn().unwrap(), account, enqueued.send_id).unwrap().opens, HITS as i64);
    }
}

backend_tests! {
    fn segments_are_rotated_and_removed_once_applied(t) {
        const HITS: usize = 300;
        let (account, enqueued, _) = sent_delivery(t);
        let data_dir = tempfile::tempdir().unwrap();
        // Segments of 4 KiB: a new one every twenty hits or so.
        let journal = espbridge::intake::hit_journal::HitJournal::open_with_segments_of(t.db.clone(), data_dir.path(), 4096).unwrap();
        let segments = || -> Vec<String> {
            std::fs::read_dir(data_dir.path().join("hits")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        };
        let first = segments();
        assert_eq!(first.len(), 1);
        actix_web::rt::System::new().block_on(async {
            for i in 0..HITS {
                let hit = tracking::PendingHit {
                    delivery_id: enqueued.delivery_id,
                    activity: tracking::Activity::Open,
                    url: None,
                    hit: tracking::Hit { ip: None, user_agent: Some(BROWSER.into()), head: false },
                    at: espbridge::domain::now(),
                };
                journal.append(&hit).await.unwrap();
                if i % 50 == 0 {
                    // Let the applier catch up now and then, so it rotates.
                    assert!(journal.settle(std::time::Duration::from_secs(30)));
                }
            }
        });
        assert!(journal.settle(std::time::Duration::from_secs(30)));
        assert_eq!(stored_opens(t), HITS as i64);
        assert_eq!(tracking::send_activity(&mut t.db.conn().unwrap(), account, enqueued.send_id).unwrap().opens, HITS as i64);
        // Applied segments are gone, file and row: only the one being written is left.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let files = segments();
            use espbridge::db::schema::hit_journal_segments;
            let rows: Vec<String> = hit_journal_segments::table.select(hit_journal_segments::name).load(&mut t.db.conn().unwrap()).unwrap();
            if files.len() == 1 && rows == files && files != first {
                break;
            }
            let files = files.len();
            let rows = rows.len();
            assert!(std::time::Instant::now() < deadline, "{files} segment files and {rows} rows left");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

backend_tests! {
    fn a_batch_over_many_sends_and_recipients_counts_each_of_them(t) {
        // More sends and recipients than one multi-row statement takes (64),
        // so the batch goes in as full statements and single rows.
        const PEOPLE: usize = 70;
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Shop".into(), ..NewAccount::default() }).unwrap().account_id;
        let message = messages::create(&mut conn, account, &NewMessage::email("Hi", "<p>x</p>")).unwrap();
        let mut people = Vec::new();
        for i in 0..PEOPLE {
            let email = format!("reader{i}@example.com");
            subscriptions::subscribe(&mut conn, account, &Subscribe {
                list: 1, contact: Contact::email(&email), fields: vec![], groups: vec![], double_opt_in: Some(false),
                source: "test".into(), origin: Origin::new(Channel::Cli, "test"),
            }).unwrap();
            let enqueued = sends::enqueue_single(&mut conn, account, &NewSingle {
                kind: SendKind::Single, message_id: message.id, to: To::Recipient(RecipientKey::Email(email)),
                params: serde_json::Map::new(), idempotency_key: None,
            }).unwrap();
            let recipient: Option<i64> = deliveries::table.find(enqueued.delivery_id).select(deliveries::recipient_id).first(&mut conn).unwrap();
            people.push((enqueued, recipient.unwrap()));
        }
        diesel::update(deliveries::table)
            .set((deliveries::state.eq("sent"), deliveries::sent_at.eq(Some(espbridge::domain::now() - chrono::Duration::minutes(30)))))
            .execute(&mut conn)
            .unwrap();
        // Reader i opens i % 3 + 1 times, clicks once if i is even, and a
        // link checker sends one HEAD for the pixel.
        let hit = |delivery_id, activity, head| tracking::PendingHit {
            delivery_id,
            activity,
            url: (activity == tracking::Activity::Click).then(|| "https://shop.example/".to_string()),
            hit: tracking::Hit { ip: Some("198.51.100.7".into()), user_agent: Some(BROWSER.into()), head },
            at: espbridge::domain::now(),
        };
        let mut hits = Vec::new();
        for (i, (enqueued, _)) in people.iter().enumerate() {
            for _ in 0..i % 3 + 1 {
                hits.push(hit(enqueued.delivery_id, tracking::Activity::Open, false));
            }
            if i % 2 == 0 {
                hits.push(hit(enqueued.delivery_id, tracking::Activity::Click, false));
            }
            hits.push(hit(enqueued.delivery_id, tracking::Activity::Open, true));
        }
        let stored = conn.transaction(|c| tracking::record_batch(c, &hits)).unwrap();
        assert_eq!(stored, hits.len());
        let events: i64 = delivery_events::table.filter(delivery_events::kind.eq_any(["opened", "clicked"])).count().get_result(&mut conn).unwrap();
        assert_eq!(events, hits.len() as i64);
        for (i, (enqueued, recipient)) in people.iter().enumerate() {
            let clicks = i64::from(i % 2 == 0);
            let opens = (i % 3 + 1) as i64;
            assert_eq!(
                tracking::send_activity(&mut conn, account, enqueued.send_id).unwrap(),
                SendActivity { opens, unique_opens: 1, clicks, unique_clicks: clicks, machine_opens: 1, machine_clicks: 0 },
                "reader {i}"
            );
            assert_eq!(tracking::recipient_activity(&mut conn, account, *recipient).unwrap(), (opens, clicks), "reader {i}");
        }
    }
}
