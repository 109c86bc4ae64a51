//! How a sandboxed command ended: plain data, shared by the backend and the caller.

/// How the sandboxed command ended, in the terms a shell uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command exited with this code.
    Exited(i32),
    /// The command was killed by this signal number.
    Signaled(i32),
}

impl Outcome {
    /// The exit code a shell would report: the code itself, or 128 + the signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Exited(code) => code,
            Outcome::Signaled(sig) => 128 + sig,
        }
    }
}
