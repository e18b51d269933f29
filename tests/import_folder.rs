//! MailUp's batch file exchange on both backends. The import folder: a file
//! dropped into `ftp/import/<list>/` is imported once and moved to `done/`;
//! the same file found again (a restart before it was moved) is not imported
//! twice; a file still being written is left alone; a file with an unusable
//! header goes to `failed/` with the reason; bad rows are reported, not fatal.
//! The unsubscriber export: `espbridge export-unsubscribers` with its list and
//! reason filters.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::imports;
use espbridge::domain::lists;
use espbridge::domain::recipients::{self, RecipientKey};
use espbridge::domain::subscriptions::{self, UnsubscribeReason};
use espbridge::domain::{Channel, Origin};
use espbridge::intake::import_folder::{self, Pass};

/// Writes a file as an upload that finished a minute ago.
fn drop_file(path: &Path, text: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
}

backend_tests! {
    fn files_are_imported_once_and_set_aside(t) {
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Files".into(), ..NewAccount::default() }).unwrap();
        let data = tempfile::tempdir().unwrap();
        let folder = data.path().join("ftp/import/1");
        let text = "111|1|2|333|222\n\
                    ann@example.com|Ann|Smith|3331234567|+39\n\
                    bob@example.com|Bob||\n\
                    not-an-address|X|Y||\n\
                    \"carl@example.com\"|\"Carl | Jr\"|C||\n";
        drop_file(&folder.join("recipients.csv"), text.as_bytes());
        // Still being uploaded: too fresh to take.
        std::fs::write(folder.join("partial.csv"), b"111\nlate@example.com\n").unwrap();
        drop_file(&folder.join("wrong.csv"), b"email|name\nx@example.com|X\n");

        let pass = import_folder::scan(&mut conn, data.path()).unwrap();
        assert_eq!(pass, Pass { queued: 1, repeated: 0, refused: 1 });
        assert!(folder.join("done/recipients.csv").exists());
        assert!(folder.join("partial.csv").exists(), "a fresh file waits");
        let note = std::fs::read_to_string(folder.join("failed/wrong.csv.txt")).unwrap();
        assert!(note.contains("\"email\" is not a field id"), "{note}");

        assert!(imports::run_next(&t.db, "test", &|| false).unwrap());
        let list = lists::get(&mut conn, account.account_id, 1).unwrap();
        assert_eq!(list.subscribed_count, 2, "ann and carl; bob's row is short, the bad address rejected");
        let carl = recipients::get(&mut conn, account.account_id, &RecipientKey::Email("carl@example.com".into())).unwrap();
        assert_eq!(recipients::field_values(&mut conn, account.account_id, carl.id).unwrap(), vec![(1, "Carl | Jr".to_string()), (2, "C".to_string())]);
        let ann = recipients::get(&mut conn, account.account_id, &RecipientKey::Email("ann@example.com".into())).unwrap();
        assert_eq!(ann.mobile_key.as_deref(), Some("+393331234567"));

        // The runner stopped before moving the file: it is back, unchanged
        // (a rename keeps the modification time the source is made of).
        std::fs::rename(folder.join("done/recipients.csv"), folder.join("recipients.csv")).unwrap();
        let pass = import_folder::scan(&mut conn, data.path()).unwrap();
        assert_eq!(pass, Pass { queued: 0, repeated: 1, refused: 0 });
        assert!(!imports::run_next(&t.db, "test", &|| false).unwrap(), "nothing new to run");
        assert!(folder.join("done/recipients.csv").exists());
    }
}

backend_tests! {
    fn unsubscribers_are_exported_with_reasons_and_filters(t) {
        let mut conn = t.db.conn().unwrap();
        let account = accounts::create(&mut conn, &NewAccount { name: "Export".into(), console_id: Some(4242), ..NewAccount::default() }).unwrap();
        for (email, reason) in [("link@example.com", UnsubscribeReason::Link), ("hard@example.com", UnsubscribeReason::HardBounce), ("kept@example.com", UnsubscribeReason::Imported)] {
            common::subscribe(&mut conn, account.account_id, email);
            subscriptions::unsubscribe(&mut conn, account.account_id, 1, &RecipientKey::Email(email.into()), reason, &Origin::new(Channel::Cli, "test")).unwrap();
        }
        common::subscribe(&mut conn, account.account_id, "stays@example.com");
        let dir = tempfile::tempdir().unwrap();
        let export = |args: &[&str]| -> Vec<String> {
            let out = dir.path().join("out.csv");
            let status = std::process::Command::new(env!("CARGO_BIN_EXE_espbridge"))
                .env("ESPBRIDGE_DATABASE_URL", &t.url)
                .env("ESPBRIDGE_DATA_DIR", dir.path())
                .args(["export-unsubscribers", "--console-id", "4242", "--out", out.to_str().unwrap()])
                .args(args)
                .status()
                .unwrap();
            assert!(status.success());
            std::fs::read_to_string(&out).unwrap().lines().map(str::to_string).collect()
        };
        let all = export(&[]);
        assert_eq!(all[0], "email;Phone Number;idList;OptOut_Date;Subscription Date;optout_type");
        assert_eq!(all.len(), 4, "{all:?}");
        let link: Vec<&str> = all[1].split(';').collect();
        assert_eq!((link[0], link[2], link[5]), ("link@example.com", "1", "2"));
        assert_eq!(link[3].len(), "20210122T111244".len());
        let no_bounces = export(&["--list", "1", "--exclude-reasons", "8"]);
        assert_eq!(no_bounces.len(), 3, "{no_bounces:?}");
        assert!(no_bounces.iter().all(|l| !l.starts_with("hard@")));
        let bounces = export(&["--reasons", "8,16"]);
        assert_eq!(bounces.len(), 2, "{bounces:?}");
        assert!(bounces[1].starts_with("hard@example.com;") && bounces[1].ends_with(";8"));
        assert_eq!(export(&["--list", "2"]).len(), 1, "only the header for a list without unsubscribes");
        assert_eq!(export(&["--until", "2000-01-01"]).len(), 1);
    }
}
