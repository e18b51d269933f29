//! The account's image library, `<data_dir>/images/<console id>/`: images
//! are moved there from the account's import folder (ExactTarget's
//! `filemanagement/filemove`, which took them from its FTP server into the
//! account's images). Only image types, each at most 200 KB.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{accounts, file_imports};
use crate::db::DbConnection;
use crate::{Error, Result};

/// The largest image taken.
pub const MAX_IMAGE_BYTES: u64 = 200 * 1024;

/// The file name endings taken, without regard to case.
const IMAGE_TYPES: [&str; 7] = ["bmp", "gif", "jpeg", "jpg", "png", "tif", "tiff"];

/// The image library of the account with this console id.
pub fn folder(data_dir: &Path, console_id: i64) -> PathBuf {
    data_dir.join("images").join(console_id.to_string())
}

/// What became of a file asked to be moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// In the library under this name (the file's own, or with `_N` added
    /// when an image of that name is there already).
    Done(String),
    /// No such file in the import folder.
    Missing,
    /// Not an image type: left where it is.
    NotAnImage,
    /// Larger than [`MAX_IMAGE_BYTES`]: left where it is.
    TooLarge,
}

/// Moves the file `name` (a plain name, else refused) from the account's import folder into
/// its image library.
pub fn move_from_imports(
    conn: &mut DbConnection,
    account_id: i64,
    data_dir: &Path,
    name: &str,
) -> Result<Moved> {
    let name = file_imports::plain_file_name(name)?;
    let account = accounts::get(conn, account_id)?;
    let source = file_imports::folder(data_dir, account.console_id).join(name);
    // A link is not followed: only files in the folder itself are moved.
    let Ok(metadata) = std::fs::symlink_metadata(&source) else {
        return Ok(Moved::Missing);
    };
    if !metadata.is_file() {
        return Ok(Moved::Missing);
    }
    let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
    if !IMAGE_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(extension))
    {
        return Ok(Moved::NotAnImage);
    }
    if metadata.len() > MAX_IMAGE_BYTES {
        return Ok(Moved::TooLarge);
    }
    let Ok(bytes) = std::fs::read(&source) else {
        return Ok(Moved::Missing);
    };
    // It may have grown since it was measured.
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Ok(Moved::TooLarge);
    }
    let library = folder(data_dir, account.console_id);
    std::fs::create_dir_all(&library)
        .map_err(|e| Error::Internal(format!("creating {}: {e}", library.display())))?;
    // The first free name is claimed by creating it (create_new), so two
    // moves at once never write the same file.
    for n in 0..1000 {
        let target = if n == 0 {
            name.to_string()
        } else {
            format!("{stem}_{n}.{extension}")
        };
        let path = library.join(&target);
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::Internal(format!("writing {}: {e}", path.display()))),
        };
        let written = file.write_all(&bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(Error::Internal(format!("writing {}: {e}", path.display())));
        }
        std::fs::remove_file(&source)
            .map_err(|e| Error::Internal(format!("removing {}: {e}", source.display())))?;
        return Ok(Moved::Done(target));
    }
    Err(Error::Conflict(format!("no free name for {name}")))
}
