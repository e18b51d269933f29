//! MailUp's batch import files (`../shared/specs/mailup.md` §3.1): a header
//! row of field ids (`1`–`39` personal fields, `111` e-mail, `222` mobile
//! prefix, `333` mobile number, `444` prefix and number together; an empty
//! slot ignores its column), then one recipient per row, separated by `|` (the
//! English documentation) or `;` (the older Italian example), whichever the
//! header uses. Values may be double-quoted, with `""` for a quote.
//!
//! And the unsubscriber export (§3.2): `email`, `Phone Number`, `idList`,
//! `OptOut_Date`, `Subscription Date` (`yyyyMMddTHHmmss`, Europe/Rome time)
//! and `optout_type` (the reason code), separated by `;`.

use crate::domain::history::Unsubscriber;
use crate::domain::imports::Row;
use crate::domain::recipients::Mobile;

/// What a column carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Field(i32),
    Email,
    Prefix,
    Number,
    FullMobile,
    Ignored,
}

/// The rows of a file, and the lines that could not be used.
#[derive(Debug, Default, PartialEq)]
pub struct File {
    pub rows: Vec<Row>,
    pub unreadable: Vec<String>,
}

/// Why a file cannot be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the file is empty")]
    Empty,
    #[error("header column {0}: {1:?} is not a field id")]
    Header(usize, String),
    #[error("the header names no e-mail (111) or mobile (333, 444) column")]
    NoAddress,
}

/// Reads a file's text (bytes that are not UTF-8 are read as windows-1252).
pub fn read(bytes: &[u8]) -> Result<File, Refused> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0,
    };
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(Refused::Empty)?;
    let separator = if header.contains('|') { '|' } else { ';' };
    let columns = split(header, separator)
        .into_iter()
        .enumerate()
        .map(|(index, id)| column(index + 1, &id))
        .collect::<Result<Vec<_>, _>>()?;
    if !columns
        .iter()
        .any(|c| matches!(c, Column::Email | Column::Number | Column::FullMobile))
    {
        return Err(Refused::NoAddress);
    }
    let mut file = File::default();
    for (index, line) in lines {
        let values = split(line, separator);
        if values.len() != columns.len() {
            file.unreadable.push(format!(
                "line {}: {} values where the header has {} columns",
                index + 1,
                values.len(),
                columns.len()
            ));
            continue;
        }
        file.rows.push(row(&columns, values));
    }
    Ok(file)
}

fn column(position: usize, id: &str) -> Result<Column, Refused> {
    let id = id.trim();
    Ok(match id {
        "" => Column::Ignored,
        "111" => Column::Email,
        "222" => Column::Prefix,
        "333" => Column::Number,
        "444" => Column::FullMobile,
        other => match other.parse::<i32>() {
            Ok(n) if (1..=39).contains(&n) => Column::Field(n),
            _ => return Err(Refused::Header(position, other.to_string())),
        },
    })
}

fn row(columns: &[Column], values: Vec<String>) -> Row {
    let mut row = Row::default();
    let (mut prefix, mut number) = (None, None);
    for (column, value) in columns.iter().zip(values) {
        match column {
            Column::Field(n) => row.fields.push((*n, value)),
            Column::Email => row.email = Some(value.trim().to_string()),
            Column::Prefix => prefix = Some(value.trim().to_string()),
            Column::Number => number = Some(value.trim().to_string()),
            Column::FullMobile => row.mobile = Some(Mobile::new(value.trim())),
            Column::Ignored => {}
        }
    }
    if let Some(number) = number.filter(|n| !n.is_empty()) {
        row.mobile = Some(Mobile {
            prefix: prefix.filter(|p| !p.is_empty()),
            number,
        });
    }
    row
}

/// Splits a line at `separator`, honouring double quotes.
fn split(line: &str, separator: char) -> Vec<String> {
    let mut values = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let current = values.last_mut().expect("starts with one value");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if current.is_empty() => quoted = true,
            c if c == separator && !quoted => values.push(String::new()),
            c => current.push(c),
        }
    }
    values
}

/// The unsubscriber export file.
pub fn unsubscribers(rows: &[Unsubscriber]) -> String {
    let date = |t| super::rome_time(t).format("%Y%m%dT%H%M%S").to_string();
    let mut out =
        String::from("email;Phone Number;idList;OptOut_Date;Subscription Date;optout_type\r\n");
    for row in rows {
        let values = [
            row.email.clone().unwrap_or_default(),
            row.mobile.clone().unwrap_or_default(),
            row.list.to_string(),
            date(row.unsubscribed_at),
            date(row.subscribed_at),
            row.reason.map(|r| r.to_string()).unwrap_or_default(),
        ];
        let quoted: Vec<String> = values.iter().map(|v| quote(v)).collect();
        out.push_str(&quoted.join(";"));
        out.push_str("\r\n");
    }
    out
}

fn quote(value: &str) -> String {
    if value.contains([';', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_either_separator_quotes_and_mobiles() {
        let file = read(
            "111|1|2||333|222\n\
             a@b.it|Ann|\"O\"\"Neil | Co\"|x|3331234567|+39\n\
             \n\
             c@d.it|Carl||x||\n\
             short|row\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(file.rows.len(), 2);
        assert_eq!(file.rows[0].email.as_deref(), Some("a@b.it"));
        assert_eq!(
            file.rows[0].fields,
            vec![(1, "Ann".to_string()), (2, "O\"Neil | Co".to_string())]
        );
        assert_eq!(
            file.rows[0].mobile,
            Some(Mobile {
                prefix: Some("+39".into()),
                number: "3331234567".into()
            })
        );
        assert_eq!(file.rows[1].mobile, None);
        assert_eq!(
            file.unreadable,
            vec!["line 5: 2 values where the header has 6 columns"]
        );

        let semicolons = read(b"444;111\n+393330001111;e@f.it\n").unwrap();
        assert_eq!(
            semicolons.rows[0].mobile,
            Some(Mobile::new("+393330001111"))
        );
        assert_eq!(semicolons.rows[0].email.as_deref(), Some("e@f.it"));
    }

    #[test]
    fn writes_the_unsubscriber_export() {
        let at =
            |text: &str| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        let file = unsubscribers(&[Unsubscriber {
            email: Some("a;b@x.it".into()),
            mobile: None,
            list: 3,
            unsubscribed_at: at("2021-01-22 10:12:44"),
            subscribed_at: at("2020-07-01 22:30:00"),
            reason: Some(2),
        }]);
        assert_eq!(
            file,
            "email;Phone Number;idList;OptOut_Date;Subscription Date;optout_type\r\n\
             \"a;b@x.it\";;3;20210122T111244;20200702T003000;2\r\n"
        );
    }

    #[test]
    fn refuses_a_header_it_cannot_map() {
        assert_eq!(read(b""), Err(Refused::Empty));
        assert_eq!(read(b"111|name\n"), Err(Refused::Header(2, "name".into())));
        assert_eq!(read(b"1|2\nx|y\n"), Err(Refused::NoAddress));
        // windows-1252 bytes are read as such.
        let file = read(b"111;1\na@b.it;Caf\xe9\n").unwrap();
        assert_eq!(file.rows[0].fields, vec![(1, "Caf\u{e9}".to_string())]);
    }
}
