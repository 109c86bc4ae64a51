//! The launch of one sandboxed command, as a library that prints nothing.
//!
//! What it guarantees: who is calling (ids, home, environment, working directory) is worked out
//! once, in [`Caller::current`]; the user's config file is read and parsed once per command
//! ([`Config::load`]), and a mistake in it is said the same way wherever it is read (its path,
//! line and column with a caret; a setting nobody reads named with the known ones); the
//! [`RunRequest`](keepout_sandbox::RunRequest) a command starts from is made from those two
//! ([`caller_request`]; `keepout run`'s from its command line's options: [`run_request`]); and
//! [`launch`] runs a built policy (with keepout's proxy when an
//! allowlist is given) and returns what came of it as an [`Outcome`]: the exit code, what was
//! refused or unreachable, the decoys read and sent, what the terminal relay dropped, what was
//! undone after the run, and the JSON report's content. [`report`] composes what is said about
//! it as lines (and the `--print-policy` document); printing them is the caller's.
//! [`doctor`] is `keepout doctor`'s checks and verdict, and its report as text or JSON.

mod caller;
mod config;
pub mod doctor;
mod error;
mod home;
mod launch;
mod pip;
pub mod report;
mod request;
pub mod shown;

pub use caller::Caller;
pub use config::{Config, LazyConfig, Resources, KNOWN_KEYS};
pub use error::Error;
pub use home::{prepare_home, PreparedHome};
pub use launch::{launch, launch_in_image, Outcome};
pub use pip::externally_managed_pip;
pub use request::{
    bytecode_cache, caller_request, make_namespaces_ahead, network, review_project, run_request,
    RunOptions, RunSetup, PROXY_PORT,
};
