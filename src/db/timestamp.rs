//! Timestamps bound to SQLite's hot-path statements as the exact text diesel
//! would bind for them.
//!
//! Diesel binds a `Timestamp` on SQLite as the text of chrono's
//! `format("%F %T%.f")`, which interprets the format string and allocates on
//! every bind; a subscribe binds six of them. SQLite compares timestamps as
//! text, so the text here must stay byte for byte diesel's (the unit tests
//! compare the two).

use std::fmt::Write;

use chrono::{Datelike, NaiveDateTime, Timelike};
use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

/// Diesel's format for `Timestamp` on SQLite (`ENCODE_NAIVE_DATETIME_FORMAT`).
const DIESEL_FORMAT: &str = "%F %T%.f";

/// A timestamp's SQLite text, formatted without allocating.
#[derive(Debug, Clone, Copy)]
pub struct SqliteTimestamp {
    // "+262143-12-31 23:59:60.999999999", chrono's longest, is 32 bytes.
    text: [u8; 40],
    len: usize,
}

impl SqliteTimestamp {
    pub fn new(at: &NaiveDateTime) -> SqliteTimestamp {
        let mut out = SqliteTimestamp {
            text: [0; 40],
            len: 0,
        };
        let (year, nanos) = (at.year(), at.nanosecond());
        // A year that takes a sign and a leap second (written as second 60)
        // are left to chrono; neither occurs in the times we stamp.
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            let _ = write!(out, "{}", at.format(DIESEL_FORMAT));
            return out;
        }
        out.digits(year as u32, 4);
        out.push(b'-');
        out.digits(at.month(), 2);
        out.push(b'-');
        out.digits(at.day(), 2);
        out.push(b' ');
        out.digits(at.hour(), 2);
        out.push(b':');
        out.digits(at.minute(), 2);
        out.push(b':');
        out.digits(at.second(), 2);
        // `%.f`: nothing for whole seconds, else milli-, micro- or
        // nanoseconds, whichever is the shortest exact form.
        if nanos != 0 {
            out.push(b'.');
            if nanos % 1_000_000 == 0 {
                out.digits(nanos / 1_000_000, 3);
            } else if nanos % 1_000 == 0 {
                out.digits(nanos / 1_000, 6);
            } else {
                out.digits(nanos, 9);
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators, or chrono's text, are written.
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) {
        self.text[self.len] = byte;
        self.len += 1;
    }

    /// `value` as exactly `width` decimal digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: usize) {
        for at in (self.len..self.len + width).rev() {
            self.text[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }
}

impl Write for SqliteTimestamp {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.text.len() {
            return Err(std::fmt::Error);
        }
        self.text[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl ToSql<Timestamp, Sqlite> for SqliteTimestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> diesel::serialize::Result {
        out.set_value(self.as_str());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeDelta};

    fn diesel_text(at: &NaiveDateTime) -> String {
        at.format(DIESEL_FORMAT).to_string()
    }

    #[test]
    fn text_is_diesels_for_every_fraction() {
        let base = NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(4, 5, 6)
            .unwrap();
        for nanos in [
            0,
            1,
            999,
            1_000,
            26_490_000,
            26_490_001,
            100_000_000,
            120_000,
            999_999_999,
            500_000,
        ] {
            let at = base + TimeDelta::nanoseconds(nanos);
            assert_eq!(SqliteTimestamp::new(&at).as_str(), diesel_text(&at));
        }
    }

    #[test]
    fn text_is_diesels_across_dates_and_edges() {
        let mut at = NaiveDate::from_ymd_opt(1, 1, 1)
            .unwrap()
            .and_hms_nano_opt(0, 0, 0, 7)
            .unwrap();
        // Steps of a prime number of seconds and microseconds walk through
        // every month, day, hour, minute and second over the centuries.
        while at.year() < 10_000 {
            assert_eq!(SqliteTimestamp::new(&at).as_str(), diesel_text(&at));
            at += TimeDelta::seconds(86_400 * 97 + 3_607) + TimeDelta::microseconds(10_007);
        }
        for at in [
            NaiveDate::from_ymd_opt(10_000, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            NaiveDate::from_ymd_opt(-1, 12, 31)
                .unwrap()
                .and_hms_opt(23, 59, 59)
                .unwrap(),
            NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .unwrap(),
            NaiveDateTime::MAX,
            NaiveDateTime::MIN,
            chrono::Utc::now().naive_utc(),
        ] {
            assert_eq!(SqliteTimestamp::new(&at).as_str(), diesel_text(&at));
        }
    }
}
