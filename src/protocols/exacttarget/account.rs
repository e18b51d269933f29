//! `accountinfo/retrieve_attrbs` (the attribute catalogue) and
//! `diagnostics/Ping`.

use super::{Call, EMAIL_ADDRESS, Reply, catalogue};
use crate::Result;
use crate::db::DbConnection;
use crate::xml::XmlWriter;

/// The pick-list of the `Email Type` attribute, when the account has one.
const EMAIL_TYPES: [&str; 2] = ["HTML", "Text"];

/// Longest value of an attribute (the address has the e-mail limit).
const MAX_VALUE: usize = 4000;

struct Attribute<'a> {
    name: &'a str,
    description: &'a str,
    default_value: &'a str,
    required: bool,
    max_size: usize,
}

fn write_attribute(w: &mut XmlWriter, a: &Attribute) {
    w.open("attribute", &[])
        .leaf("name", a.name)
        .leaf("description", a.description)
        .leaf("default_value", a.default_value)
        .leaf("data_type", "text")
        .leaf("required", if a.required { "True" } else { "False" })
        .leaf("min_size", "0")
        .leaf("max_size", &a.max_size.to_string())
        .leaf("subscriber_editable", "1")
        .leaf("display", "1");
    if a.name.eq_ignore_ascii_case("Email Type") {
        w.open("values", &[]);
        for value in EMAIL_TYPES {
            w.leaf("value", value);
        }
        w.close();
    }
    w.close();
}

pub(super) fn retrieve_attributes(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let fields = catalogue(conn, call.account_id)?;
    Ok(Reply::wrapped("profile", |w| {
        write_attribute(
            w,
            &Attribute {
                name: EMAIL_ADDRESS,
                description: "The subscriber's e-mail address",
                default_value: "",
                required: true,
                max_size: 254,
            },
        );
        for field in &fields {
            write_attribute(
                w,
                &Attribute {
                    name: &field.name,
                    description: "",
                    default_value: &field.default_value,
                    required: false,
                    max_size: MAX_VALUE,
                },
            );
        }
    }))
}

pub(super) fn ping() -> Reply {
    Reply::wrapped("diagnostics", |w| {
        w.leaf("Ping", "Running");
    })
}
