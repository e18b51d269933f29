//! MailUp's legacy interfaces: the frontend pages and the SOAP services (later
//! also the batch files).

mod account;
pub mod csv;
pub mod frontend;
pub mod import;
pub mod manage;
pub mod report;
pub mod send;
mod send_file;
mod subscribers;
pub mod ws;

use crate::xml::XmlWriter;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    frontend::configure(cfg);
    import::configure(cfg);
    ws::configure(cfg, &send::SERVICE);
    ws::configure(cfg, &manage::SERVICE);
    ws::configure(cfg, &report::SERVICE);
}

/// The `mailupMessage` document of the Import family and WSActivation:
/// `ReturnCode` then whatever `payload` writes. It declares windows-1252, as
/// MailUp's did, and is written in ASCII with character references, which
/// reads the same in that encoding and in UTF-8.
pub fn mailup_message(return_code: i32, payload: impl FnOnce(&mut XmlWriter)) -> String {
    let mut w = XmlWriter::ascii_only();
    w.raw("<?xml version=\"1.0\" encoding=\"windows-1252\" ?>")
        .open("mailupMessage", &[])
        .open("mailupBody", &[])
        .leaf("ReturnCode", &return_code.to_string());
    payload(&mut w);
    w.finish()
}

/// A time as MailUp's documents show it: Rome's wall clock, `dd/MM/yyyy HH:mm:ss`.
pub fn console_time(utc: chrono::NaiveDateTime) -> String {
    rome_time(utc).format("%d/%m/%Y %H:%M:%S").to_string()
}

/// UTC as Europe/Rome's wall clock (CET, CEST from the last Sunday of March
/// to the last Sunday of October, switching at 01:00 UTC), the time MailUp's
/// documents show.
pub fn rome_time(utc: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
    use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
    let last_sunday = |month: u32| {
        let first_of_next = NaiveDate::from_ymd_opt(utc.year(), month + 1, 1)
            .expect("months 3 and 10 are followed by a month");
        let last = first_of_next.pred_opt().expect("a month has a last day");
        let back = i64::from(last.weekday().num_days_from_sunday());
        (last - Duration::days(back)).and_time(NaiveTime::from_hms_opt(1, 0, 0).expect("01:00"))
    };
    let summer = utc >= last_sunday(3) && utc < last_sunday(10);
    utc + Duration::hours(if summer { 2 } else { 1 })
}

/// A Europe/Rome wall-clock time (as MailUp's clients give dates) in UTC. In
/// the hour the clocks go back, the earlier of the two instants; in the hour
/// they skip, an hour later than a clock would have shown.
pub fn rome_to_utc(local: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
    let winter = local - chrono::Duration::hours(1);
    let summer = local - chrono::Duration::hours(2);
    if rome_time(summer) == local {
        summer
    } else {
        winter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> chrono::NaiveDateTime {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn rome_wall_clock_times_back_to_utc() {
        assert_eq!(rome_to_utc(at("2026-01-15 10:00")), at("2026-01-15 09:00"));
        assert_eq!(rome_to_utc(at("2026-07-15 10:00")), at("2026-07-15 08:00"));
        // 29 March 2026: 02:00 CET is 03:00 CEST; 03:30 CEST is 01:30 UTC.
        assert_eq!(rome_to_utc(at("2026-03-29 03:30")), at("2026-03-29 01:30"));
        // 25 October 2026: 02:30 happens twice; the earlier (CEST) one.
        assert_eq!(rome_to_utc(at("2026-10-25 02:30")), at("2026-10-25 00:30"));
        for utc in [at("2026-02-01 12:00"), at("2026-08-01 12:00")] {
            assert_eq!(rome_to_utc(rome_time(utc)), utc);
        }
    }
}
