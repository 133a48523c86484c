//! The simulator's errors: bad input (scenario files, arguments, output
//! directories), never a failed check (that is a [`crate::Violation`]).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {origin}: {message}")]
    Scenario { origin: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("chart {path}: {message}")]
    Plot { path: String, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;
