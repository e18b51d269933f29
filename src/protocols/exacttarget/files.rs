//! `filemanagement/filemove`: images moved from the account's import folder
//! (which stands for both of the product's FTP servers) into its image
//! library. Each file answers `filemanagement-info` (its name in the
//! library) and `filemanagement-description`; `filemanagement-totalmoved`
//! counts the files moved.

use super::{Call, Reply, code};
use crate::Result;
use crate::db::DbConnection;
use crate::domain::file_imports;
use crate::domain::image_library::{self, Moved};

/// The product's FTP servers: standard and enhanced.
const LOCATIONS: [&str; 2] = ["ExactTargetFTP", "ExactTargetEnhancedFTP"];

pub(super) fn move_file(conn: &mut DbConnection, call: &Call) -> Result<Reply> {
    let source = call.system.child("source");
    let location = source
        .and_then(|s| s.child_text("location"))
        .map_or("", str::trim);
    if !LOCATIONS.iter().any(|l| l.eq_ignore_ascii_case(location)) {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid location {location:?}: ExactTargetFTP or ExactTargetEnhancedFTP"),
        ));
    }
    let destination = call.text("destination");
    if !destination.eq_ignore_ascii_case("imageimport") {
        return Ok(Reply::fault(
            code::INVALID,
            format!("Invalid destination {destination:?}: imageimport"),
        ));
    }
    let names: Vec<&str> = source
        .and_then(|s| s.child("files"))
        .map(|f| {
            f.children_named("filename")
                .map(|n| n.text.trim())
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Ok(Reply::fault(code::INVALID, "<files> names no file"));
    }
    // Every name is checked before any file moves: a refused call moves none.
    for name in &names {
        file_imports::plain_file_name(name)?;
    }
    let mut outcomes = Vec::with_capacity(names.len());
    for name in names {
        let moved = image_library::move_from_imports(conn, call.account_id, &call.data_dir, name)?;
        outcomes.push((name, moved));
    }
    let total = outcomes
        .iter()
        .filter(|(_, m)| matches!(m, Moved::Done(_)))
        .count();
    Ok(Reply::wrapped("filemanagement", |w| {
        for (name, moved) in &outcomes {
            let (info, description) = match moved {
                Moved::Done(new_name) => (new_name.as_str(), format!("File {name} was moved")),
                Moved::Missing => ("", format!("File {name} does not exist")),
                Moved::NotAnImage => (
                    "",
                    format!(
                        "File {name} is not a supported image type (bmp, gif, jpeg, jpg, png, tif, tiff)"
                    ),
                ),
                Moved::TooLarge => ("", format!("File {name} is larger than 200 KB")),
            };
            w.leaf("filemanagement-info", info)
                .leaf("filemanagement-description", &description);
        }
        w.leaf("filemanagement-totalmoved", &total.to_string());
    }))
}
