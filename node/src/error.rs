use std::path::PathBuf;

/// Errors of the node: configuration, keys, storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("key file {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error(transparent)]
    Types(#[from] ordo_types::Error),
    #[error("storage: {0}")]
    Storage(String),
    #[error("backend: {0}")]
    Backend(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! storage_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(e.to_string())
            }
        }
    )*};
}

storage_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
