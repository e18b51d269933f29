//! MailUp's batch import folder on both backends: a file dropped into
//! `ftp/import/<list>/` is imported once and moved to `done/`; the same file
//! found again (a restart before it was moved) is not imported twice; a file
//! still being written is left alone; a file with an unusable header goes to
//! `failed/` with the reason; bad rows are reported, not fatal.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use espbridge::domain::accounts::{self, NewAccount};
use espbridge::domain::imports;
use espbridge::domain::lists;
use espbridge::domain::recipients::{self, RecipientKey};
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

        // The runner stopped before moving the file: it is back, unchanged.
        std::fs::rename(folder.join("done/recipients.csv"), folder.join("recipients.csv")).unwrap();
        let again = std::fs::File::options().write(true).open(folder.join("recipients.csv")).unwrap();
        again.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
        let pass = import_folder::scan(&mut conn, data.path()).unwrap();
        assert_eq!(pass, Pass { queued: 0, repeated: 1, refused: 0 });
        assert!(!imports::run_next(&t.db, "test", &|| false).unwrap(), "nothing new to run");
        assert!(folder.join("done/recipients.csv").exists());
    }
}
