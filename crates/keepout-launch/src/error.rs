//! The crate's one error type. Every message is the one keepout has always said; an error of
//! another keepout crate is kept whole (transparent), so that the CLI still finds it by type.

use std::path::PathBuf;

use crate::shown;

/// What can go wrong reading the config, making a request or launching a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config's TOML, or a top-level key, is wrong: the whole message, with where
    /// (`PATH:LINE:COLUMN`, the line and a caret), as keepout-vault words it.
    #[error("{0}")]
    ConfigSyntax(String),

    /// A table that `keepout run` reads has a key it does not know.
    #[error(
        "{}: [{section}] has no setting {} (a typo?); its settings are: {}",
        path.display(),
        unknown.join(", "),
        known.join(", ")
    )]
    UnknownSetting {
        path: PathBuf,
        section: &'static str,
        unknown: Vec<String>,
        known: &'static [&'static str],
    },

    /// `[run] toolchains` is not a list of strings.
    #[error(
        "{}: [run] toolchains must be a list of paths, e.g. [\"~/opt/zig\"]",
        path.display()
    )]
    BadToolchains { path: PathBuf },

    /// `[run] memory` or `[run] disk-reserve` cannot be read.
    #[error("{}: [run] {key}: {why}", path.display())]
    BadLimit {
        path: PathBuf,
        key: &'static str,
        why: String,
    },

    /// `[net.presets]` is not a table of presets.
    #[error("{}: [net.presets]", path.display())]
    Presets {
        path: PathBuf,
        #[source]
        source: keepout_net::NetError,
    },

    /// A `--net` name or pattern that is not known.
    #[error(transparent)]
    Net(#[from] keepout_net::NetError),

    /// The working directory cannot be read (removed under the caller, or not searchable).
    #[error("cannot read the current directory")]
    NoCwd(#[source] std::io::Error),

    /// Neither `XDG_CACHE_HOME` nor `HOME` is set.
    #[error("neither XDG_CACHE_HOME nor HOME is set: nowhere to keep the bytecode cache")]
    NoCacheDir,

    /// The bytecode cache's directory cannot be made.
    #[error("cannot create the bytecode cache {}", dir.display())]
    BytecodeCache {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `--home DIR` is there and not a directory.
    #[error(
        "--home {} exists and is not a directory: give a directory, or a path that does not \
         exist yet (keepout makes it)",
        shown::path(path)
    )]
    HomeNotDirectory { path: PathBuf },

    /// `--home DIR` is someone else's.
    #[error(
        "--home {} belongs to uid {owner}, not to you (uid {uid}): a sandbox's home must be \
         yours; give another directory",
        shown::path(path)
    )]
    HomeNotYours { path: PathBuf, owner: u32, uid: u32 },

    /// `--home DIR` does not exist and nothing may be made (`--print-policy`).
    #[error(
        "--home {} does not exist yet; `keepout run` makes it (mode 0700) when it runs",
        shown::path(path)
    )]
    HomeMissing { path: PathBuf },

    /// `--home DIR` cannot be made.
    #[error("cannot make the --home directory {}", shown::path(path))]
    HomeUnmakeable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `--home DIR` cannot be looked at.
    #[error("cannot use --home {}", shown::path(path))]
    HomeUnusable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The project of a `--review` run cannot be found.
    #[error("cannot find the project {}", path.display())]
    NoProject {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The project of a `--review` run has a path a review cannot record.
    #[error(
        "--review: the project's path {} is not UTF-8, and a review records it in its \
         meta.toml, which holds only UTF-8 text; rename the directory (or a parent), or run \
         without --review",
        path.to_string_lossy()
    )]
    ReviewPathNotUtf8 { path: PathBuf },

    /// Building or running the sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] keepout_sandbox::Error),

    /// Running the policy in a container (`--image`) failed.
    #[error(transparent)]
    Container(#[from] keepout_container::Error),

    /// The report could not be written as JSON.
    #[error(transparent)]
    Report(#[from] serde_json::Error),

    /// The report file (`--report FILE`) could not be written.
    #[error("cannot write the report {}", path.display())]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
