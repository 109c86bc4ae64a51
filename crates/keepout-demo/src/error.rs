//! The one error type of keepout-demo. Its messages and causes are those the CLI has always
//! shown: an I/O error is itself (transparent), a failed step says which step and keeps the
//! I/O or JSON error as its cause.

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Planting, a decoy's socket, or the temporary directory.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot start the decoy `sleep`")]
    DecoySleep(#[source] std::io::Error),
    #[error("cannot run python3: the demo's test suite is written in Python")]
    Python(#[source] std::io::Error),
    /// `keepout run` exited with keepout's own error status and the suite wrote no report.
    #[error("keepout could not start the sandbox (see the error above)")]
    SandboxDidNotStart,
    /// The suite ended without writing its report (`reading` is why it cannot be read).
    #[error("the test suite wrote no report (exit {status:?}): {reading}")]
    NoReport {
        status: Option<i32>,
        reading: std::io::Error,
    },
    #[error("the test suite's report is not valid JSON")]
    ReportNotJson(#[source] serde_json::Error),
}
