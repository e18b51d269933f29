//! Every domain operation on both backends.

mod common;

use diesel::prelude::*;
use espbridge::Error;
use espbridge::db::DbConnection;
use espbridge::domain::accounts::{self, CreatedAccount, NewAccount};
use espbridge::domain::credentials::{self, CredentialKind};
use espbridge::domain::fields::{self, FieldRef};
use espbridge::domain::recipients::{self, Contact, MessageChannel, Mobile, RecipientKey};
use espbridge::domain::subscriptions::{
    self, GroupChange, Status, Subscribe, UnsubscribeReason, Unsubscribed,
};
use espbridge::domain::{Channel, Origin, groups, history, lists, sessions, users};

fn account(conn: &mut DbConnection, name: &str) -> CreatedAccount {
    accounts::create(
        conn,
        &NewAccount {
            name: name.into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
}

fn origin() -> Origin {
    Origin::new(Channel::MailupFrontend, "203.0.113.7")
}

fn subscribe_email(list: i64, email: &str, double_opt_in: bool) -> Subscribe {
    Subscribe {
        list,
        contact: Contact::email(email),
        fields: vec![],
        groups: vec![],
        double_opt_in: Some(double_opt_in),
        source: "test".into(),
        origin: origin(),
    }
}

fn email(address: &str) -> RecipientKey {
    RecipientKey::Email(address.into())
}

backend_tests! {
    fn grouped_writes_commit_together_and_fail_alone(t) {
        // Requests queued together share a transaction (group commit on
        // SQLite); one that fails or panics must undo only its own writes.
        let c = &mut t.db.conn().unwrap();
        let a = account(c, "Grouped").account_id;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let results = runtime.block_on(async {
            let calls = (0..40).map(|i| {
                let db = t.db.clone();
                async move {
                    db.write_grouped(move |conn, _| {
                        let new = lists::NewList { name: format!("L{i}"), ..lists::NewList::default() };
                        lists::create(conn, a, &new)?;
                        match i % 4 {
                            1 => Err(Error::invalid("test", "refused after writing")),
                            3 if i == 3 => panic!("a grouped write panics"),
                            _ => Ok(i),
                        }
                    })
                    .await
                }
            });
            futures_util::future::join_all(calls).await
        });
        for (i, result) in results.iter().enumerate() {
            match i % 4 {
                1 => assert!(matches!(result, Err(Error::Invalid { .. }))),
                3 if i == 3 => assert!(matches!(result, Err(Error::Internal(_)))),
                _ => assert_eq!(result.as_ref().unwrap(), &i),
            }
        }
        let mut names: Vec<String> = lists::all(c, a).unwrap().into_iter().map(|l| l.name)
            .filter(|name| name.strip_prefix('L').is_some_and(|n| n.parse::<u32>().is_ok()))
            .collect();
        names.sort();
        let mut expected: Vec<String> = (0..40).filter(|i| i % 4 != 1 && *i != 3).map(|i| format!("L{i}")).collect();
        expected.sort();
        assert_eq!(names, expected);
    }

    fn account_creation_sets_up_credentials_list_and_fields(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let created = accounts::create(c, &NewAccount {
            name: "Shop".into(),
            console_id: Some(4321),
            console_hosts: vec!["News.Example.COM".into()],
        }).unwrap();
        assert_eq!(created.console_id, 4321);
        assert_eq!(created.mailup.ws_user, "a4321");
        assert_eq!(created.mailup.console_user, "m4321");
        assert_eq!(created.default_list.id, 1);
        assert_eq!(created.console_hosts, vec!["news.example.com".to_string()]);

        let ws = credentials::authenticate(c, CredentialKind::MailupWs, "", "a4321", &created.mailup.ws_password).unwrap();
        assert_eq!(ws.account_id, created.account_id);
        assert!(matches!(
            credentials::authenticate(c, CredentialKind::MailupWs, "", "a4321", "wrong"),
            Err(Error::Unauthenticated)
        ));
        credentials::authenticate(c, CredentialKind::ExactTarget, "", &created.exacttarget.username, &created.exacttarget.password).unwrap();
        credentials::authenticate(c, CredentialKind::Ecircle, &created.ecircle.realm, &created.ecircle.user, &created.ecircle.password).unwrap();
        assert!(credentials::authenticate(c, CredentialKind::Ecircle, "http://other", &created.ecircle.user, &created.ecircle.password).is_err());
        assert_eq!(credentials::authenticate_api_key(c, &created.api_key).unwrap().account_id, created.account_id);
        assert!(credentials::authenticate_api_key(c, &format!("{}x", created.api_key)).is_err());
        let admin = users::authenticate(c, created.account_id, "m4321", &created.mailup.console_password).unwrap();
        assert_eq!(admin.role().unwrap(), users::Role::Admin);

        // Secrets are stored hashed, never in clear.
        let stored: Vec<String> = espbridge::db::schema::credentials::table
            .select(espbridge::db::schema::credentials::secret_hash)
            .load(c)
            .unwrap();
        assert!(stored.iter().all(|h| h.starts_with("$argon2id$")));
        assert!(!stored.contains(&created.mailup.ws_password));

        let list = lists::get(c, created.account_id, 1).unwrap();
        assert_eq!(list.name, "News");
        assert_eq!(list.guid, created.default_list.guid);
        assert!(list.double_opt_in);
        assert_eq!(fields::find(c, created.account_id, 1).unwrap().unwrap().name, "nome");
        assert_eq!(fields::find_by_name(c, created.account_id, "COGNOME").unwrap().unwrap().number, 2);

        assert_eq!(accounts::find_by_host(c, "NEWS.example.com:8080").unwrap().unwrap().id, created.account_id);
        assert!(accounts::find_by_host(c, "other.example.com").unwrap().is_none());
        assert_eq!(accounts::only_account(c).unwrap().unwrap().id, created.account_id);

        // Console ids and hosts are unique; the next automatic id follows the highest.
        assert!(matches!(
            accounts::create(c, &NewAccount { name: "Twin".into(), console_id: Some(4321), ..NewAccount::default() }),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            accounts::create(c, &NewAccount { name: "Squatter".into(), console_hosts: vec!["news.example.com".into()], ..NewAccount::default() }),
            Err(Error::Conflict(_))
        ));
        let second = account(c, "Second");
        assert_eq!(second.console_id, 4322);
        assert!(accounts::only_account(c).unwrap().is_none());
        // A failed creation leaves nothing behind.
        assert_eq!(accounts::count(c).unwrap(), 2);
    }

    fn list_and_group_numbers_are_per_account_and_settable(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let b = account(c, "B").account_id;
        let new = |name: &str, number: Option<i64>, guid: Option<&str>| lists::NewList {
            name: name.into(),
            number,
            guid: guid.map(String::from),
            ..lists::NewList::default()
        };
        assert_eq!(lists::create(c, a, &new("Two", None, None)).unwrap().number, 2);
        let migrated = lists::create(c, a, &new("Migrated", Some(85), Some("6c1f2e1a-aaaa-bbbb-cccc-000000000085"))).unwrap();
        assert_eq!((migrated.number, migrated.guid.as_str()), (85, "6c1f2e1a-aaaa-bbbb-cccc-000000000085"));
        assert_eq!(lists::create(c, a, &new("After", None, None)).unwrap().number, 86);
        assert!(matches!(lists::create(c, a, &new("Dup", Some(85), None)), Err(Error::Conflict(_))));
        assert!(matches!(
            lists::create(c, a, &new("Dup guid", None, Some("6c1f2e1a-aaaa-bbbb-cccc-000000000085"))),
            Err(Error::Conflict(_))
        ));
        // Account B counts on its own, and may reuse A's numbers.
        assert_eq!(lists::create(c, b, &new("B two", None, None)).unwrap().number, 2);
        assert_eq!(lists::create(c, b, &new("B 85", Some(85), None)).unwrap().number, 85);
        assert_eq!(lists::find_by_guid(c, a, &migrated.guid).unwrap().unwrap().id, migrated.id);
        assert_eq!(lists::all(c, a).unwrap().iter().map(|l| l.number).collect::<Vec<_>>(), vec![1, 2, 85, 86]);

        let g1 = groups::create(c, a, 1, "VIP", "", None).unwrap();
        let g2 = groups::create(c, a, 85, "Buyers", "", Some(22)).unwrap();
        let g3 = groups::create(c, a, 85, "Prospects", "notes", None).unwrap();
        assert_eq!((g1.number, g2.number, g3.number), (1, 22, 23));
        assert!(matches!(groups::create(c, a, 85, "buyers", "", None), Err(Error::Conflict(_))));
        assert!(matches!(groups::create(c, a, 2, "Any", "", Some(22)), Err(Error::Conflict(_))));
        assert!(matches!(groups::create(c, a, 999, "Nowhere", "", None), Err(Error::NotFound("list"))));
        assert_eq!(groups::create(c, b, 1, "B group", "", None).unwrap().number, 1);
        assert_eq!(groups::in_list(c, a, 85).unwrap().len(), 2);
        assert_eq!(groups::find_by_name(c, a, 85, "PROSPECTS").unwrap().unwrap().number, 23);
    }

    fn fields_catalogue_and_values(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        fields::define(c, a, 12, "Customer Code", "none").unwrap();
        assert_eq!(fields::find_by_name(c, a, "customer code").unwrap().unwrap().number, 12);
        assert!(matches!(fields::define(c, a, 40, "Too far", ""), Err(Error::Invalid { .. })));
        assert!(matches!(fields::define(c, a, 13, "nome", ""), Err(Error::Conflict(_))));
        fields::define(c, a, 12, "Client Code", "").unwrap();
        assert!(fields::find_by_name(c, a, "Customer Code").unwrap().is_none());
        assert_eq!(fields::all(c, a).unwrap().len(), 12);

        let done = subscriptions::subscribe(c, a, &Subscribe {
            fields: vec![
                (FieldRef::Number(1), "Mario".into()),
                (FieldRef::Name("COGNOME".into()), "Rossi".into()),
                (FieldRef::Number(30), "uncatalogued".into()),
            ],
            ..subscribe_email(1, "mario@example.com", false)
        }).unwrap();
        recipients::set_fields(c, a, done.recipient_id, &[(FieldRef::Name("Client Code".into()), "C-7".into()), (FieldRef::Number(1), "Maria".into())]).unwrap();
        assert_eq!(
            recipients::field_values(c, a, done.recipient_id).unwrap(),
            vec![(1, "Maria".into()), (2, "Rossi".into()), (12, "C-7".into()), (30, "uncatalogued".into())]
        );
        assert!(matches!(
            recipients::set_fields(c, a, done.recipient_id, &[(FieldRef::Name("nope".into()), "x".into())]),
            Err(Error::NotFound("field"))
        ));

        // A subscribe that fails half-way (unknown field, found after the recipient
        // was created) leaves nothing behind.
        assert!(matches!(
            subscriptions::subscribe(c, a, &Subscribe {
                fields: vec![(FieldRef::Number(1), "Half".into()), (FieldRef::Name("nope".into()), "x".into())],
                ..subscribe_email(1, "half@example.com", false)
            }),
            Err(Error::NotFound("field"))
        ));
        assert!(recipients::find(c, a, &email("half@example.com")).unwrap().is_none());
        assert_eq!(lists::get(c, a, 1).unwrap().subscribed_count, 1);
    }

    fn subscribe_without_confirmation_is_idempotent(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let first = subscriptions::subscribe(c, a, &subscribe_email(1, "Anna@Example.com", false)).unwrap();
        assert_eq!((first.previous, first.status, first.recipient_created), (None, Status::Subscribed, true));
        assert!(first.confirmation_token.is_none());
        let again = subscriptions::subscribe(c, a, &subscribe_email(1, "anna@example.COM", true)).unwrap();
        assert!(again.was_already_subscribed());
        assert_eq!(again.status, Status::Subscribed);
        assert_eq!((again.recipient_id, again.subscription_id), (first.recipient_id, first.subscription_id));
        assert!(!again.recipient_created);
        let list = lists::get(c, a, 1).unwrap();
        assert_eq!((list.subscribed_count, list.pending_count, list.unsubscribed_count), (1, 0, 0));
        assert_eq!(subscriptions::status(c, a, 1, &email("ANNA@example.com")).unwrap(), Some(Status::Subscribed));
        assert_eq!(subscriptions::status(c, a, 1, &email("nobody@example.com")).unwrap(), None);
        assert!(matches!(subscriptions::status(c, a, 7, &email("anna@example.com")), Err(Error::NotFound("list"))));
        assert!(matches!(
            subscriptions::subscribe(c, a, &subscribe_email(1, "not-an-address", false)),
            Err(Error::Invalid { field: "email", .. })
        ));
        assert!(matches!(subscriptions::subscribe(c, a, &subscribe_email(9, "x@example.com", false)), Err(Error::NotFound("list"))));
    }

    fn double_opt_in_confirm_flow(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        // The list default (double opt-in) applies when the request does not say.
        let pending = subscriptions::subscribe(c, a, &Subscribe { double_opt_in: None, ..subscribe_email(1, "bea@example.com", false) }).unwrap();
        assert_eq!(pending.status, Status::Pending);
        let token = pending.confirmation_token.clone().unwrap();
        assert_eq!(lists::get(c, a, 1).unwrap().pending_count, 1);

        // Asking again re-issues the token; the old link stops working.
        let again = subscriptions::subscribe(c, a, &subscribe_email(1, "bea@example.com", true)).unwrap();
        assert_eq!(again.previous, Some(Status::Pending));
        let token2 = again.confirmation_token.unwrap();
        assert_ne!(token, token2);
        let web = Origin::new(Channel::Web, "198.51.100.2");
        assert!(matches!(subscriptions::confirm(c, &token, &web), Err(Error::NotFound(_))));

        let confirmed = subscriptions::confirm(c, &token2, &web).unwrap();
        assert_eq!((confirmed.account_id, confirmed.list_number, confirmed.already_confirmed), (a, 1, false));
        assert_eq!(subscriptions::status(c, a, 1, &email("bea@example.com")).unwrap(), Some(Status::Subscribed));
        assert!(subscriptions::confirm(c, &token2, &web).unwrap().already_confirmed);
        assert!(matches!(subscriptions::confirm(c, "forged-token", &web), Err(Error::NotFound(_))));
        let list = lists::get(c, a, 1).unwrap();
        assert_eq!((list.subscribed_count, list.pending_count), (1, 0));

        let entries = history::for_recipient(c, a, pending.recipient_id).unwrap();
        let steps: Vec<_> = entries.iter().map(|e| (e.from_status.as_deref(), e.to_status.as_str(), e.channel.as_str())).collect();
        assert_eq!(steps, vec![(None, "pending", "mailup-frontend"), (Some("pending"), "subscribed", "web")]);
        assert_eq!(entries[1].actor, "198.51.100.2");

        // After an unsubscribe the confirmation link is dead.
        subscriptions::unsubscribe(c, a, 1, &email("bea@example.com"), UnsubscribeReason::Link, &web).unwrap();
        assert!(matches!(subscriptions::confirm(c, &token2, &web), Err(Error::NotFound(_))));
    }

    fn unsubscribe_records_reason_and_history(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let s = subscriptions::subscribe(c, a, &subscribe_email(1, "carl@example.com", false)).unwrap();
        let api = Origin::new(Channel::Brevo, "api-key eb_x");
        assert_eq!(
            subscriptions::unsubscribe(c, a, 1, &email("carl@example.com"), UnsubscribeReason::ListUnsubscribeLink, &api).unwrap(),
            Unsubscribed::Done { previous: Status::Subscribed }
        );
        assert_eq!(
            subscriptions::unsubscribe(c, a, 1, &email("carl@example.com"), UnsubscribeReason::Link, &api).unwrap(),
            Unsubscribed::AlreadyUnsubscribed
        );
        assert_eq!(
            subscriptions::unsubscribe(c, a, 1, &email("ghost@example.com"), UnsubscribeReason::Link, &api).unwrap(),
            Unsubscribed::NotOnList
        );
        let members = subscriptions::members(c, a, 1, Some(Status::Unsubscribed), 0, 10).unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].subscription.unsubscribe_reason(), Some(UnsubscribeReason::ListUnsubscribeLink));
        assert!(members[0].subscription.unsubscribed_at.is_some());
        let list = lists::get(c, a, 1).unwrap();
        assert_eq!((list.subscribed_count, list.unsubscribed_count), (0, 1));
        let entries = history::for_recipient(c, a, s.recipient_id).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[1].to_status.as_str(), entries[1].reason, entries[1].channel.as_str()), ("unsubscribed", Some(32), "brevo"));

        // Subscribing again works and clears the reason.
        let back = subscriptions::subscribe(c, a, &subscribe_email(1, "carl@example.com", false)).unwrap();
        assert_eq!((back.previous, back.status), (Some(Status::Unsubscribed), Status::Subscribed));
        assert_eq!(subscriptions::members(c, a, 1, Some(Status::Subscribed), 0, 10).unwrap()[0].subscription.unsubscribe_reason(), None);
        assert_eq!(history::for_recipient(c, a, s.recipient_id).unwrap().len(), 3);
        let list = lists::get(c, a, 1).unwrap();
        assert_eq!((list.subscribed_count, list.unsubscribed_count), (1, 0));
    }

    fn update_member_fields_and_groups(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let g1 = groups::create(c, a, 1, "One", "", None).unwrap();
        let g2 = groups::create(c, a, 1, "Two", "", None).unwrap();
        let g3 = groups::create(c, a, 1, "Three", "", None).unwrap();
        lists::create(c, a, &lists::NewList { name: "Other".into(), ..lists::NewList::default() }).unwrap();
        let other = groups::create(c, a, 2, "Elsewhere", "", None).unwrap();

        let s = subscriptions::subscribe(c, a, &Subscribe { groups: vec![g1.number], ..subscribe_email(1, "dora@example.com", false) }).unwrap();
        let key = email("dora@example.com");
        let numbers = |c: &mut DbConnection| -> Vec<i64> {
            let list_id = lists::get(c, a, 1).unwrap().id;
            groups::memberships(c, a, list_id, s.recipient_id).unwrap().iter().map(|g| g.number).collect()
        };
        assert_eq!(numbers(c), vec![g1.number]);
        subscriptions::update_member(c, a, 1, &key, &[(FieldRef::Number(3), "ACME".into())], Some(&GroupChange { groups: vec![g2.number], replace: false })).unwrap();
        assert_eq!(numbers(c), vec![g1.number, g2.number]);
        subscriptions::update_member(c, a, 1, &key, &[], Some(&GroupChange { groups: vec![g3.number], replace: true })).unwrap();
        assert_eq!(numbers(c), vec![g3.number]);
        assert_eq!(recipients::field_values(c, a, s.recipient_id).unwrap(), vec![(3, "ACME".into())]);
        assert_eq!(groups::find(c, a, g1.number).unwrap().unwrap().member_count, 0);
        assert_eq!(groups::find(c, a, g3.number).unwrap().unwrap().member_count, 1);

        // A group of another list, and a recipient not on the list, are refused
        // without changing anything.
        assert!(matches!(
            subscriptions::update_member(c, a, 1, &key, &[(FieldRef::Number(3), "changed".into())], Some(&GroupChange { groups: vec![other.number], replace: true })),
            Err(Error::Invalid { field: "group", .. })
        ));
        assert_eq!(numbers(c), vec![g3.number]);
        assert_eq!(recipients::field_values(c, a, s.recipient_id).unwrap(), vec![(3, "ACME".into())]);
        assert!(matches!(subscriptions::update_member(c, a, 2, &key, &[], None), Err(Error::NotFound("subscription"))));
        assert!(matches!(subscriptions::update_member(c, a, 1, &email("x@example.com"), &[], None), Err(Error::NotFound("subscription"))));
    }

    fn members_are_listed_by_status_in_pages(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        for i in 0..7 {
            subscriptions::subscribe(c, a, &subscribe_email(1, &format!("m{i}@example.com"), i % 3 == 0)).unwrap();
        }
        subscriptions::unsubscribe(c, a, 1, &email("m1@example.com"), UnsubscribeReason::AdminConsole, &origin()).unwrap();
        let status_count = |c: &mut DbConnection, s| subscriptions::members(c, a, 1, Some(s), 0, 100).unwrap().len();
        assert_eq!(status_count(c, Status::Pending), 3);
        assert_eq!(status_count(c, Status::Subscribed), 3);
        assert_eq!(status_count(c, Status::Unsubscribed), 1);
        let list = lists::get(c, a, 1).unwrap();
        assert_eq!((list.pending_count, list.subscribed_count, list.unsubscribed_count), (3, 3, 1));

        let mut seen = vec![];
        let mut after = 0;
        loop {
            let page = subscriptions::members(c, a, 1, None, after, 3).unwrap();
            if page.is_empty() { break; }
            after = page.last().unwrap().recipient.id;
            seen.extend(page.into_iter().map(|m| m.recipient.email.unwrap()));
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(seen[0], "m0@example.com");
    }

    fn mobile_recipients(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let sms = Subscribe {
            contact: Contact { email: None, mobile: Some(Mobile::new("333 1234567")) },
            ..subscribe_email(1, "unused@example.com", false)
        };
        let s = subscriptions::subscribe(c, a, &sms).unwrap();
        let by_full = RecipientKey::Mobile(Mobile::new("+393331234567"));
        let by_prefix = RecipientKey::Mobile(Mobile { prefix: Some("0039".into()), number: "3331234567".into() });
        assert_eq!(recipients::get(c, a, &by_full).unwrap().id, s.recipient_id);
        assert_eq!(recipients::get(c, a, &by_prefix).unwrap().id, s.recipient_id);
        // Adding the e-mail later finds the same recipient by mobile.
        let both = subscriptions::subscribe(c, a, &Subscribe {
            contact: Contact { email: Some("tel@example.com".into()), mobile: Some(Mobile::new("+393331234567")) },
            ..subscribe_email(1, "unused@example.com", false)
        }).unwrap();
        assert_eq!(both.recipient_id, s.recipient_id);
        assert_eq!(recipients::get(c, a, &email("tel@example.com")).unwrap().mobile_key.as_deref(), Some("+393331234567"));
        // A number already used by someone else cannot be taken over.
        subscriptions::subscribe(c, a, &subscribe_email(1, "other@example.com", false)).unwrap();
        assert!(matches!(
            subscriptions::subscribe(c, a, &Subscribe {
                contact: Contact { email: Some("other@example.com".into()), mobile: Some(Mobile::new("3331234567")) },
                ..subscribe_email(1, "unused@example.com", false)
            }),
            Err(Error::Conflict(_))
        ));
        // The account's default prefix applies to numbers given without one.
        let mut settings = accounts::get(c, a).unwrap().settings();
        settings.default_mobile_prefix = "0049".into();
        accounts::update_settings(c, a, &settings).unwrap();
        let german = subscriptions::subscribe(c, a, &Subscribe {
            contact: Contact { email: None, mobile: Some(Mobile::new("151 2345678")) },
            ..subscribe_email(1, "unused@example.com", false)
        }).unwrap();
        assert_eq!(recipients::get(c, a, &RecipientKey::Id(german.recipient_id)).unwrap().mobile_key.as_deref(), Some("+491512345678"));
    }

    fn blocklisted_recipients_cannot_subscribe(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let s = subscriptions::subscribe(c, a, &subscribe_email(1, "eve@example.com", false)).unwrap();
        recipients::set_blocklisted(c, a, s.recipient_id, MessageChannel::Email, true).unwrap();
        let r = recipients::get(c, a, &RecipientKey::Id(s.recipient_id)).unwrap();
        assert_eq!(r.status(), recipients::RecipientStatus::EmailBlocklisted);
        assert!(!r.email_allowed() && r.sms_allowed());
        lists::create(c, a, &lists::NewList { name: "Two".into(), ..lists::NewList::default() }).unwrap();
        assert!(matches!(subscriptions::subscribe(c, a, &subscribe_email(2, "eve@example.com", false)), Err(Error::Blocklisted)));
        assert_eq!(subscriptions::status(c, a, 2, &email("eve@example.com")).unwrap(), None);
        recipients::set_blocklisted(c, a, s.recipient_id, MessageChannel::Email, false).unwrap();
        subscriptions::subscribe(c, a, &subscribe_email(2, "eve@example.com", false)).unwrap();
        let b = account(c, "B").account_id;
        assert!(matches!(recipients::set_blocklisted(c, b, s.recipient_id, MessageChannel::Sms, true), Err(Error::NotFound(_))));
    }

    fn erase_removes_personal_data_and_keeps_history(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let g = groups::create(c, a, 1, "G", "", None).unwrap();
        lists::create(c, a, &lists::NewList { name: "Two".into(), ..lists::NewList::default() }).unwrap();
        let s = subscriptions::subscribe(c, a, &Subscribe {
            contact: Contact { email: Some("frank@example.com".into()), mobile: Some(Mobile::new("+4915112345678")) },
            fields: vec![(FieldRef::Number(1), "Frank".into()), (FieldRef::Number(2), "Meier".into())],
            groups: vec![g.number],
            ..subscribe_email(1, "unused@example.com", false)
        }).unwrap();
        subscriptions::subscribe(c, a, &subscribe_email(2, "frank@example.com", true)).unwrap();
        let before = history::for_recipient(c, a, s.recipient_id).unwrap().len();

        recipients::erase(c, a, s.recipient_id, &Origin::new(Channel::Console, "admin")).unwrap();

        let r = recipients::get(c, a, &RecipientKey::Id(s.recipient_id)).unwrap();
        assert_eq!(r.email.as_deref(), Some(recipients::ERASED));
        assert_eq!(r.mobile_number.as_deref(), Some(recipients::ERASED));
        assert_eq!((r.mobile_prefix.as_deref(), r.mobile_key.as_deref()), (None, None));
        assert!(r.erased_at.is_some());
        assert!(recipients::field_values(c, a, r.id).unwrap().iter().all(|(_, v)| v == recipients::ERASED));
        assert!(recipients::find(c, a, &email("frank@example.com")).unwrap().is_none());
        assert!(recipients::find(c, a, &RecipientKey::Mobile(Mobile::new("+4915112345678"))).unwrap().is_none());
        for (_, sub) in subscriptions::of_recipient(c, a, r.id).unwrap() {
            assert_eq!(sub.status().unwrap(), Status::Unsubscribed);
        }
        assert_eq!(groups::find(c, a, g.number).unwrap().unwrap().member_count, 0);
        let list = lists::get(c, a, 1).unwrap();
        assert_eq!((list.subscribed_count, list.unsubscribed_count), (0, 1));
        assert_eq!(lists::get(c, a, 2).unwrap().pending_count, 0);

        // No trace of the address anywhere in the database's text columns we own.
        let leaks: i64 = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM recipients WHERE email LIKE '%frank%' OR email_key LIKE '%frank%' OR mobile_number LIKE '%151%'"
        ).get_result::<Count>(c).unwrap().n;
        assert_eq!(leaks, 0);
        let after = history::for_recipient(c, a, r.id).unwrap();
        assert_eq!(after.len(), before + 2);
        assert!(after[before..].iter().all(|e| e.note == "erased" && e.to_status == "unsubscribed"));
        // The address can subscribe afresh as a new recipient.
        let fresh = subscriptions::subscribe(c, a, &subscribe_email(1, "frank@example.com", false)).unwrap();
        assert!(fresh.recipient_created);
        assert_ne!(fresh.recipient_id, r.id);
    }

    fn accounts_are_isolated(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let a = account(c, "A").account_id;
        let b = account(c, "B").account_id;
        let g = groups::create(c, a, 1, "Secret group", "", Some(50)).unwrap();
        let s = subscriptions::subscribe(c, a, &Subscribe {
            groups: vec![g.number],
            fields: vec![(FieldRef::Number(1), "Gina".into())],
            ..subscribe_email(1, "gina@example.com", false)
        }).unwrap();
        let a_list = lists::get(c, a, 1).unwrap();

        // B sees its own list 1, empty, and none of A's data.
        let b_list = lists::get(c, b, 1).unwrap();
        assert_ne!(b_list.id, a_list.id);
        assert_eq!(b_list.subscribed_count, 0);
        assert!(lists::find_by_guid(c, b, &a_list.guid).unwrap().is_none());
        assert!(recipients::find(c, b, &email("gina@example.com")).unwrap().is_none());
        assert!(recipients::find(c, b, &RecipientKey::Id(s.recipient_id)).unwrap().is_none());
        assert_eq!(subscriptions::status(c, b, 1, &email("gina@example.com")).unwrap(), None);
        assert!(subscriptions::members(c, b, 1, None, 0, 100).unwrap().is_empty());
        assert!(groups::find(c, b, g.number).unwrap().is_none());
        assert!(recipients::field_values(c, b, s.recipient_id).unwrap().is_empty());
        assert!(history::for_recipient(c, b, s.recipient_id).unwrap().is_empty());
        assert!(subscriptions::of_recipient(c, b, s.recipient_id).unwrap().is_empty());

        // B cannot change A's data either.
        assert_eq!(
            subscriptions::unsubscribe(c, b, 1, &email("gina@example.com"), UnsubscribeReason::Link, &origin()).unwrap(),
            Unsubscribed::NotOnList
        );
        assert!(recipients::set_fields(c, b, s.recipient_id, &[(FieldRef::Number(1), "x".into())]).is_err());
        assert!(recipients::erase(c, b, s.recipient_id, &origin()).is_err());
        assert!(matches!(
            subscriptions::subscribe(c, b, &Subscribe { groups: vec![g.number], ..subscribe_email(1, "h@example.com", false) }),
            Err(Error::NotFound("group"))
        ));
        // The same address in B is a separate recipient.
        let in_b = subscriptions::subscribe(c, b, &subscribe_email(1, "gina@example.com", false)).unwrap();
        assert_ne!(in_b.recipient_id, s.recipient_id);
        assert_eq!(subscriptions::status(c, a, 1, &email("gina@example.com")).unwrap(), Some(Status::Subscribed));
        assert_eq!(recipients::field_values(c, a, s.recipient_id).unwrap(), vec![(1, "Gina".into())]);
    }

    fn sessions_expire(t) {
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        let created = account(c, "A");
        let cred = credentials::authenticate(c, CredentialKind::MailupWs, "", &created.mailup.ws_user, &created.mailup.ws_password).unwrap();
        let hour = sessions::Lifetime { max_age: chrono::Duration::minutes(60), idle_timeout: None };
        let token = sessions::create(c, created.account_id, sessions::Principal::Credential(cred.id), "mailup", hour).unwrap();
        let session = sessions::resolve(c, &token).unwrap();
        assert_eq!((session.account_id, session.credential_id), (created.account_id, Some(cred.id)));
        assert!(matches!(sessions::resolve(c, "unknown"), Err(Error::Unauthenticated)));
        assert!(sessions::end(c, &token).unwrap());
        assert!(!sessions::end(c, &token).unwrap());
        assert!(sessions::resolve(c, &token).is_err());

        let gone = sessions::Lifetime { max_age: chrono::Duration::seconds(-1), idle_timeout: None };
        let expired = sessions::create(c, created.account_id, sessions::Principal::Credential(cred.id), "mailup", gone).unwrap();
        assert!(matches!(sessions::resolve(c, &expired), Err(Error::Unauthenticated)));
        let idle = sessions::Lifetime { max_age: chrono::Duration::hours(1), idle_timeout: Some(chrono::Duration::seconds(-1)) };
        let idled = sessions::create(c, created.account_id, sessions::Principal::Credential(cred.id), "ecircle", idle).unwrap();
        assert!(matches!(sessions::resolve(c, &idled), Err(Error::Unauthenticated)));
        sessions::create(c, created.account_id, sessions::Principal::Credential(cred.id), "mailup", gone).unwrap();
        assert_eq!(sessions::purge_expired(c).unwrap(), 1);
    }

    fn concurrent_subscribes_make_one_recipient(t) {
        let account_id = account(&mut t.db.conn().unwrap(), "A").account_id;
        let threads: Vec<_> = (0..100)
            .map(|i| {
                let db = t.db.clone();
                std::thread::spawn(move || {
                    let mut conn = db.conn().unwrap();
                    let address = if i % 2 == 0 { "Race@Example.com" } else { "race@example.com" };
                    subscriptions::subscribe(&mut conn, account_id, &subscribe_email(1, address, i % 3 == 0))
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        let recipient_ids: std::collections::BTreeSet<_> = outcomes.iter().map(|o| o.recipient_id).collect();
        let subscription_ids: std::collections::BTreeSet<_> = outcomes.iter().map(|o| o.subscription_id).collect();
        assert_eq!((recipient_ids.len(), subscription_ids.len()), (1, 1));
        assert_eq!(outcomes.iter().filter(|o| o.recipient_created).count(), 1);
        assert_eq!(outcomes.iter().filter(|o| o.previous.is_none()).count(), 1);

        use espbridge::db::schema::{recipients as r, subscriptions as s};
        let mut conn = t.db.conn().unwrap();
        let c = &mut *conn;
        assert_eq!(r::table.filter(r::account_id.eq(account_id)).count().get_result::<i64>(c).unwrap(), 1);
        assert_eq!(s::table.filter(s::account_id.eq(account_id)).count().get_result::<i64>(c).unwrap(), 1);
        let list = lists::get(c, account_id, 1).unwrap();
        assert_eq!(list.subscribed_count + list.pending_count + list.unsubscribed_count, 1);
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
