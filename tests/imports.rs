//! Import processes through the domain on both backends: every status rule of
//! the flags, fields (empty, blank, overwrite), groups (add, replace), the
//! counters GetProcessDetails reports, the history, the list's counts, chunked
//! runs, resuming after a runner vanished, and one import per list at a time.

mod common;

use espbridge::db::{Db, DbConnection};
use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::imports::{
    self, ImportType, NewImport, Process, Row, Started, State, StatusRules,
};
use espbridge::domain::recipients::{self, Contact, Mobile, RecipientKey};
use espbridge::domain::subscriptions::{self, Status, Subscribe, UnsubscribeReason};
use espbridge::domain::{Channel, Origin, groups, history, lists};

fn origin() -> Origin {
    Origin::new(Channel::Cli, "test")
}

fn account(conn: &mut DbConnection) -> i64 {
    accounts::create(
        conn,
        &NewAccount {
            name: "Imports".into(),
            ..NewAccount::default()
        },
    )
    .unwrap()
    .account_id
}

fn subscribe(conn: &mut DbConnection, account_id: i64, email: &str, confirm: bool) {
    subscriptions::subscribe(
        conn,
        account_id,
        &Subscribe {
            list: 1,
            contact: Contact::email(email),
            fields: vec![],
            groups: vec![],
            double_opt_in: Some(confirm),
            source: "test".into(),
            origin: origin(),
        },
    )
    .unwrap();
}

fn unsubscribe(conn: &mut DbConnection, account_id: i64, email: &str, reason: UnsubscribeReason) {
    subscriptions::unsubscribe(
        conn,
        account_id,
        1,
        &RecipientKey::Email(email.into()),
        reason,
        &origin(),
    )
    .unwrap();
}

fn row(email: &str, fields: &[(i32, &str)]) -> Row {
    Row {
        email: Some(email.into()),
        mobile: None,
        fields: fields.iter().map(|(n, v)| (*n, v.to_string())).collect(),
    }
}

fn request(rows: Vec<Row>, rules: StatusRules) -> NewImport {
    NewImport {
        list: 1,
        groups: vec![],
        rows,
        unreadable: vec![],
        import_type: ImportType::default(),
        rules,
        replace_groups: false,
        confirm_message: None,
        source: "test import".into(),
        origin: origin(),
    }
}

/// Prepares, starts and runs an import to the end; returns the finished process.
fn run(db: &Db, account_id: i64, new: &NewImport) -> Process {
    let mut conn = db.conn().unwrap();
    let process = imports::prepare(&mut conn, account_id, new.clone()).unwrap();
    assert_eq!(process.state().unwrap(), State::Prepared);
    assert_eq!(
        imports::start(&mut conn, account_id, new.list, process.id).unwrap(),
        Started::Queued
    );
    assert!(imports::run_next(db, "test-runner", &|| false).unwrap());
    imports::find(&mut conn, account_id, new.list, process.id)
        .unwrap()
        .unwrap()
}

fn status(conn: &mut DbConnection, account_id: i64, email: &str) -> Option<(Status, Option<i32>)> {
    let recipient =
        recipients::find(conn, account_id, &RecipientKey::Email(email.into())).unwrap()?;
    subscriptions::of_recipient(conn, account_id, recipient.id)
        .unwrap()
        .into_iter()
        .find(|(list, _)| *list == 1)
        .map(|(_, s)| {
            (
                s.status().unwrap(),
                s.unsubscribe_reason().map(|r| r.code()),
            )
        })
}

/// The list's stored counters agree with its subscriptions.
fn assert_list_counts(conn: &mut DbConnection, account_id: i64) {
    let list = lists::get(conn, account_id, 1).unwrap();
    let mut counted = (0, 0, 0);
    let mut after = 0;
    loop {
        let page = subscriptions::members(conn, account_id, 1, None, after, 10_000).unwrap();
        let Some(last) = page.last() else { break };
        after = last.recipient.id;
        for member in &page {
            match member.subscription.status().unwrap() {
                Status::Subscribed => counted.0 += 1,
                Status::Pending => counted.1 += 1,
                Status::Unsubscribed => counted.2 += 1,
            }
        }
    }
    assert_eq!(
        (
            list.subscribed_count,
            list.pending_count,
            list.unsubscribed_count
        ),
        counted
    );
}

/// The five starting points every rule is tried on, then the import of them
/// and one new address with `rules`; returns the statuses afterwards.
fn statuses_after(db: &Db, rules: StatusRules) -> Vec<Option<(Status, Option<i32>)>> {
    let mut conn = db.conn().unwrap();
    let account_id = account(&mut conn);
    subscribe(&mut conn, account_id, "sub@x.it", false);
    subscribe(&mut conn, account_id, "pend@x.it", true);
    subscribe(&mut conn, account_id, "left@x.it", false);
    unsubscribe(&mut conn, account_id, "left@x.it", UnsubscribeReason::Link);
    subscribe(&mut conn, account_id, "hard@x.it", false);
    unsubscribe(
        &mut conn,
        account_id,
        "hard@x.it",
        UnsubscribeReason::HardBounce,
    );
    let emails = [
        "sub@x.it",
        "pend@x.it",
        "left@x.it",
        "hard@x.it",
        "new@x.it",
    ];
    let process = run(
        db,
        account_id,
        &request(emails.iter().map(|e| row(e, &[])).collect(), rules),
    );
    assert_eq!(process.state().unwrap(), State::Done);
    assert_eq!(
        (
            process.total_rows,
            process.new_email,
            process.existing_email
        ),
        (5, 1, 4)
    );
    assert_list_counts(&mut conn, account_id);
    emails
        .iter()
        .map(|e| status(&mut conn, account_id, e))
        .collect()
}

use Status::{Pending as P, Subscribed as S, Unsubscribed as U};

backend_tests! {
    fn default_rules_add_new_ones_and_change_no_status(t) {
        assert_eq!(
            statuses_after(&t.db, StatusRules::default()),
            vec![Some((S, None)), Some((P, None)), Some((U, Some(2))), Some((U, Some(8))), Some((S, None))]
        );
    }

    fn as_pending_confirms_the_pending_and_force_opt_in_spares_bounces(t) {
        let rules = StatusRules { as_pending: true, force_opt_in: true, ..StatusRules::default() };
        assert_eq!(
            statuses_after(&t.db, rules),
            vec![Some((S, None)), Some((S, None)), Some((S, None)), Some((U, Some(8))), Some((S, None))]
        );
    }

    fn confirm_email_makes_everyone_pending_but_those_who_left(t) {
        let rules = StatusRules { confirm_email: true, ..StatusRules::default() };
        assert_eq!(
            statuses_after(&t.db, rules),
            vec![Some((P, None)), Some((P, None)), Some((U, Some(2))), Some((U, Some(8))), Some((P, None))]
        );
        let rules = StatusRules { confirm_email: true, force_opt_in: true, ..StatusRules::default() };
        assert_eq!(statuses_after(&t.db, rules)[2], Some((P, None)));
    }

    fn as_opt_out_imports_everyone_as_unsubscribed_with_reason_4(t) {
        let rules = StatusRules { as_opt_out: true, ..StatusRules::default() };
        assert_eq!(
            statuses_after(&t.db, rules),
            vec![Some((U, Some(4))), Some((U, Some(4))), Some((U, Some(2))), Some((U, Some(8))), Some((U, Some(4)))]
        );
    }

    fn fields_groups_mobiles_counters_and_history(t) {
        let mut conn = t.db.conn().unwrap();
        let account_id = account(&mut conn);
        let gold = groups::create(&mut conn, account_id, 1, "Gold", "", None).unwrap();
        let silver = groups::create(&mut conn, account_id, 1, "Silver", "", None).unwrap();
        subscriptions::subscribe(&mut conn, account_id, &Subscribe {
            list: 1,
            contact: Contact::email("old@x.it"),
            fields: vec![(espbridge::domain::fields::FieldRef::Number(1), "Olga".into()), (espbridge::domain::fields::FieldRef::Number(2), "Keep".into())],
            groups: vec![silver.number],
            double_opt_in: Some(false),
            source: "test".into(),
            origin: origin(),
        }).unwrap();

        let rows = vec![
            // Empty leaves field 2, a space blanks field 3, field 1 changes.
            Row { email: Some("OLD@x.it".into()), mobile: Some(Mobile { prefix: Some("+39".into()), number: "3331112222".into() }), fields: vec![(1, "Olivia".into()), (2, String::new()), (3, " ".into())] },
            Row { email: None, mobile: Some(Mobile::new("+393334445555")), fields: vec![(1, "Texter".into())] },
            row("not an address", &[]),
            row("new@x.it", &[(1, "Nina")]),
            row("NEW@x.it", &[(2, "Later value")]),
        ];
        let mut new = request(rows, StatusRules::default());
        new.groups = vec![gold.number];
        new.replace_groups = true;
        new.unreadable = vec!["element 6: <junk> is not a subscriber".into()];
        let process = run(&t.db, account_id, &new);
        assert_eq!(process.state().unwrap(), State::Done);
        assert_eq!(process.total_rows, 6);
        assert_eq!(process.staged_rows, 3);
        assert_eq!(process.rejected_rows, 2);
        assert!(process.report.contains("row 3:"), "{}", process.report);
        assert_eq!((process.new_email, process.new_mobile), (1, 1));
        assert_eq!((process.existing_email, process.existing_mobile), (1, 1));
        assert_eq!((process.optout_email, process.optout_mobile), (0, 0));
        assert!(process.started_at.is_some() && process.ended_at.is_some());

        let old = recipients::get(&mut conn, account_id, &RecipientKey::Email("old@x.it".into())).unwrap();
        assert_eq!(old.mobile_key.as_deref(), Some("+393331112222"));
        let values = recipients::field_values(&mut conn, account_id, old.id).unwrap();
        let value = |n: i32| values.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        assert_eq!((value(1), value(2), value(3)), (Some("Olivia".into()), Some("Keep".into()), Some(String::new())));
        let new_one = recipients::get(&mut conn, account_id, &RecipientKey::Email("new@x.it".into())).unwrap();
        let values = recipients::field_values(&mut conn, account_id, new_one.id).unwrap();
        assert_eq!(values.len(), 2, "{values:?}");

        // Replacing groups: old@ left Silver for Gold; everyone is in Gold.
        let in_list = groups::in_list(&mut conn, account_id, 1).unwrap();
        let count = |name: &str| in_list.iter().find(|g| g.name == name).unwrap().member_count;
        assert_eq!((count("Gold"), count("Silver")), (3, 0));
        let list = lists::get(&mut conn, account_id, 1).unwrap();
        let names: Vec<String> = groups::memberships(&mut conn, account_id, list.id, old.id)
            .unwrap()
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(names, vec!["Gold"]);

        // The history has one entry per new subscription, from the import.
        let entries = history::for_recipient(&mut conn, account_id, new_one.id).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].note, "test import");
        assert_list_counts(&mut conn, account_id);
    }
}

backend_tests! {
    fn chunked_run_resumes_where_it_stopped_and_applies_each_row_once(t) {
        let mut conn = t.db.conn().unwrap();
        let account_id = account(&mut conn);
        // More rows than one chunk, with duplicates spread across the file.
        let rows: Vec<Row> = (0..12_000)
            .map(|i| row(&format!("r{}@x.it", i % 11_000), &[(1, &format!("v{i}"))]))
            .collect();
        let process = imports::prepare(&mut conn, account_id, request(rows, StatusRules::default())).unwrap();
        assert_eq!((process.total_rows, process.staged_rows), (12_000, 11_000));
        imports::start(&mut conn, account_id, 1, process.id).unwrap();
        // The runner is told to stop after its first chunk: the process goes
        // back to the queue with that chunk applied.
        let checks = std::cell::Cell::new(0);
        let stop_after_one_chunk = || {
            checks.set(checks.get() + 1);
            checks.get() > 1
        };
        assert!(imports::run_next(&t.db, "first", &stop_after_one_chunk).unwrap());
        let halfway = imports::find(&mut conn, account_id, 1, process.id).unwrap().unwrap();
        assert_eq!(halfway.state().unwrap(), State::Queued);
        assert!(halfway.rows_done > 0 && halfway.rows_done < 11_000, "{}", halfway.rows_done);
        assert_eq!(halfway.new_email, halfway.rows_done);
        // Another runner finishes it.
        assert!(imports::run_next(&t.db, "second", &|| false).unwrap());
        let done = imports::find(&mut conn, account_id, 1, process.id).unwrap().unwrap();
        assert_eq!(done.state().unwrap(), State::Done);
        assert_eq!((done.rows_done, done.new_email, done.existing_email), (11_000, 11_000, 0));
        assert!(!imports::run_next(&t.db, "third", &|| false).unwrap(), "nothing left to run");
        let list = lists::get(&mut conn, account_id, 1).unwrap();
        assert_eq!(list.subscribed_count, 11_000);
        assert_list_counts(&mut conn, account_id);
        // A later duplicate's value won.
        let r5 = recipients::get(&mut conn, account_id, &RecipientKey::Email("r5@x.it".into())).unwrap();
        let values = recipients::field_values(&mut conn, account_id, r5.id).unwrap();
        assert_eq!(values, vec![(1, "v11005".to_string())]);
        let entries = history::for_recipient(&mut conn, account_id, r5.id).unwrap();
        assert_eq!(entries.len(), 1);
        // Starting it again is refused.
        assert_eq!(
            imports::start(&mut conn, account_id, 1, process.id).unwrap(),
            Started::AlreadyStarted(State::Done)
        );
    }
}
