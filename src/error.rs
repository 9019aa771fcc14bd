//! Errors and process exit codes.
//!
//! Every error the tool reports carries the exit code it maps to. Codes
//! follow sysexits(3) for `plan`, `apply` and `policy`; `check` uses the
//! monitoring-plugin scheme and does not go through this type.

use std::fmt;

/// Process exit codes (sysexits.h plus the "changes" code of `plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitCode {
    /// Nothing to do / success.
    Ok = 0,
    /// `plan`: the node is not converged, changes are pending.
    Changes = 2,
    /// EX_USAGE: the command line was wrong.
    Usage = 64,
    /// EX_DATAERR: input data (a policy, a unit file) is invalid.
    DataErr = 65,
    /// EX_NOINPUT: an input file does not exist or cannot be read.
    NoInput = 66,
    /// EX_UNAVAILABLE: a service (the system bus, systemd) is unavailable.
    Unavailable = 69,
    /// EX_SOFTWARE: an internal error.
    Software = 70,
    /// EX_IOERR: an error while reading or writing a file.
    IoErr = 74,
    /// EX_NOPERM: insufficient permission.
    NoPerm = 77,
    /// EX_CONFIG: the configuration is invalid.
    Config = 78,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error with the exit code it maps to. The message is complete: it
/// names the file, line and field where there is one.
#[derive(Debug)]
pub struct Error {
    pub code: ExitCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    /// Invalid configuration (EX_CONFIG).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Config, message)
    }
    /// Invalid input data (EX_DATAERR).
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ExitCode::DataErr, message)
    }
    /// Missing input (EX_NOINPUT).
    pub fn no_input(message: impl Into<String>) -> Self {
        Self::new(ExitCode::NoInput, message)
    }
    /// I/O failure (EX_IOERR).
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ExitCode::IoErr, message)
    }
    /// Reading a file failed: not found maps to EX_NOINPUT, the rest to EX_IOERR.
    pub fn read(path: &str, err: &std::io::Error) -> Self {
        let code = match err.kind() {
            std::io::ErrorKind::NotFound => ExitCode::NoInput,
            std::io::ErrorKind::PermissionDenied => ExitCode::NoPerm,
            _ => ExitCode::IoErr,
        };
        Self::new(code, format!("{path}: cannot read: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
