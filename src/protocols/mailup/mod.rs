//! MailUp's legacy interfaces: the frontend pages and the SOAP services (later
//! also the batch files).

pub mod frontend;
pub mod import;
pub mod manage;
pub mod report;
pub mod send;
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
