//! The domain error: every domain function returns it, and each protocol maps it
//! onto its own wire form. Internal details (database messages) go to the log,
//! never to a client.

/// What went wrong, in terms a protocol can translate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named thing does not exist (in this account).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A value supplied by the caller is unusable.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The request clashes with existing data (a taken id, host name, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The recipient is blocklisted (or bounced) on the channel the request uses.
    #[error("recipient is blocklisted on this channel")]
    Blocklisted,
    /// Credentials, token or session were not accepted.
    #[error("not authenticated")]
    Unauthenticated,
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// True for failures of our own (database, pool, bug) rather than of the request.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Database(_) | Error::Unavailable(_) | Error::Internal(_)
        )
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Error::Unavailable(e.to_string())
    }
}
