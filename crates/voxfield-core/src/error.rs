use std::path::PathBuf;

/// Every failure a voxfield library can report. Messages name the file and the
/// field that is wrong so a user can fix the input without reading code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// (The I/O error is part of the message, not a separate cause, so error
    /// chains do not print it twice.)
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// The file exists but its content is not what its format requires.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// A caller-supplied argument is invalid (shape, dtype, vector, matrix...).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err: source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
