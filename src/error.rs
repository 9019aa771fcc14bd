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
    Ok,
    /// `plan`: the node is not converged, changes are pending.
    Changes,
    /// EX_USAGE: the command line was wrong.
    Usage,
    /// EX_DATAERR: input data (a policy, a unit file) is invalid.
    DataErr,
    /// EX_NOINPUT: an input file does not exist or cannot be read.
    NoInput,
    /// EX_UNAVAILABLE: a service (the system bus, systemd) is unavailable.
    Unavailable,
    /// EX_SOFTWARE: apply failed (and rolled back), or an internal error.
    Software,
    /// EX_IOERR: an error while reading or writing a file.
    IoErr,
    /// EX_TEMPFAIL: try again later (another run holds the lock).
    TempFail,
    /// EX_NOPERM: insufficient permission.
    NoPerm,
    /// EX_CONFIG: the configuration is invalid.
    Config,
    /// A code given as is (`apply --detailed-exitcodes`).
    #[serde(skip)]
    Raw(u8),
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Changes => 2,
            ExitCode::Usage => 64,
            ExitCode::DataErr => 65,
            ExitCode::NoInput => 66,
            ExitCode::Unavailable => 69,
            ExitCode::Software => 70,
            ExitCode::IoErr => 74,
            ExitCode::TempFail => 75,
            ExitCode::NoPerm => 77,
            ExitCode::Config => 78,
            ExitCode::Raw(c) => c as i32,
        }
    }
}

/// An error with the exit code it maps to. The message is complete: it
/// names the file, line and field where there is one.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: ExitCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
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
