//! Timestamps as SQLite stores them: the text diesel binds for a
//! `NaiveDateTime` (chrono's `%F %T%.f`), written by hand. chrono's formatter
//! interprets its format string on every call, which showed in the profiles
//! of the tracking recorder (a timestamp or two per hit) and of xmlSubscribe
//! (six per subscribe); their SQLite statements bind these instead (the
//! tracking ones inside JSON documents). The text must stay
//! byte for byte what diesel writes, or ordering and equality on the column
//! would break between rows written one way and the other (see the test).

use chrono::{Datelike, NaiveDateTime, Timelike};
use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

/// Room for the longest text: chrono's years reach six digits and a sign
/// (`+262143-12-31 23:59:60.999999999`).
const ROOM: usize = 40;

/// A timestamp formatted once, bound as SQLite text without allocating.
#[derive(Clone, Copy)]
pub struct SqliteStamp {
    text: [u8; ROOM],
    len: usize,
}

impl std::fmt::Debug for SqliteStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SqliteStamp {
    pub fn new(at: NaiveDateTime) -> SqliteStamp {
        let mut stamp = SqliteStamp {
            text: [0; ROOM],
            len: 0,
        };
        let year = at.year();
        if !(0..=9999).contains(&year) {
            // chrono writes a sign and more digits; such dates never occur
            // here, but they must not be stored differently either.
            let formatted = at.format("%F %T%.f").to_string();
            stamp.text[..formatted.len()].copy_from_slice(formatted.as_bytes());
            stamp.len = formatted.len();
            return stamp;
        }
        let (second, nanos) = match at.nanosecond() {
            // chrono keeps a leap second as nanoseconds past 999,999,999 and
            // writes it as second 60.
            n if n >= 1_000_000_000 => (60, n - 1_000_000_000),
            n => (at.second(), n),
        };
        stamp.digits(year as u32, 4);
        stamp.byte(b'-');
        stamp.digits(at.month(), 2);
        stamp.byte(b'-');
        stamp.digits(at.day(), 2);
        stamp.byte(b' ');
        stamp.digits(at.hour(), 2);
        stamp.byte(b':');
        stamp.digits(at.minute(), 2);
        stamp.byte(b':');
        stamp.digits(second, 2);
        // `%.f`: no fraction for whole seconds, else as few of 3, 6 or 9
        // digits as show every non-zero one.
        let (fraction, width) = if nanos == 0 {
            (0, 0)
        } else if nanos % 1_000_000 == 0 {
            (nanos / 1_000_000, 3)
        } else if nanos % 1_000 == 0 {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        if width > 0 {
            stamp.byte(b'.');
            stamp.digits(fraction, width);
        }
        stamp
    }

    /// `value` in exactly `width` decimal digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: usize) {
        for at in (self.len..self.len + width).rev() {
            self.text[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }

    fn byte(&mut self, byte: u8) {
        self.text[self.len] = byte;
        self.len += 1;
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators, or chrono's own text, are written.
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }
}

impl ToSql<Timestamp, Sqlite> for SqliteStamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> diesel::serialize::Result {
        out.set_value(self.as_str());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;

    fn at(year: i32, nanos: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(year, 11, 3)
            .unwrap()
            .and_time(NaiveTime::from_hms_nano_opt(4, 5, 59, nanos).unwrap())
    }

    /// Byte for byte what diesel binds for a `NaiveDateTime` on SQLite.
    #[test]
    fn stamps_are_diesels_text() {
        let nanos = [
            0,
            1,
            999_999_999,
            120_000_000,
            123_000_000,
            123_400_000,
            123_456_000,
            123_456_700,
            5_000,
            5,
            1_000_000_000,
            1_250_000_000,
        ];
        for year in [0, 7, 999, 2026, 9999, 10_000, -1, 262_142] {
            for nanos in nanos {
                let at = at(year, nanos);
                assert_eq!(
                    SqliteStamp::new(at).as_str(),
                    at.format("%F %T%.f").to_string(),
                    "{at:?}"
                );
            }
        }
        let now = crate::domain::now();
        assert_eq!(
            SqliteStamp::new(now).as_str(),
            now.format("%F %T%.f").to_string()
        );
    }
}
