//! The development outbox: one `.eml` file per message, named after its delivery's
//! Message-ID, written atomically (temporary file, then rename).

use std::path::PathBuf;

use super::config_error;
use crate::Result;
use crate::sender::compose::Email;
use crate::sender::queue::Outcome;

pub struct FileOutbox {
    dir: PathBuf,
}

impl FileOutbox {
    pub fn new(dir: PathBuf) -> Result<FileOutbox> {
        std::fs::create_dir_all(&dir).map_err(|e| config_error(&dir.display().to_string(), e))?;
        Ok(FileOutbox { dir })
    }

    pub async fn send(&self, email: &Email) -> Outcome {
        let id = email
            .message_id
            .trim_matches(['<', '>', ' '])
            .replace(['/', '\\'], "_");
        let path = self.dir.join(format!("{id}.eml"));
        let temporary = self.dir.join(format!(".{id}.tmp"));
        let bytes = email.bytes.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::write(&temporary, &bytes)?;
            std::fs::rename(&temporary, &path)?;
            Ok::<_, std::io::Error>(path)
        })
        .await;
        match written {
            Ok(Ok(path)) => Outcome::Sent(format!("written to {}", path.display())),
            Ok(Err(e)) => Outcome::Deferred(format!("outbox write failed: {e}")),
            Err(e) => Outcome::Deferred(format!("outbox task failed: {e}")),
        }
    }
}
