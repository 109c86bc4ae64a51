//! The crate's one error type; an error with a fix carries it apart from the message
//! ([`Error::hint`]).

use std::path::PathBuf;

/// What can stop `keepout run --image`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No engine on PATH (or not the one `--engine` named).
    #[error("no container engine found: {wanted}")]
    NoEngine { wanted: String },

    /// The engine is there but cannot say what it is (`podman info` failed).
    #[error("{engine} cannot describe itself (`{engine} info` failed): {stderr}")]
    Info { engine: String, stderr: String },

    /// The engine's `info` is not what keepout can read.
    #[error("cannot read `{engine} info`'s answer")]
    InfoFormat {
        engine: String,
        #[source]
        source: serde_json::Error,
    },

    /// Starting the engine failed.
    #[error("cannot start {}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The image is not in the engine's storage; keepout never pulls.
    #[error("the image {image} is not in {engine}'s storage (keepout never pulls an image)")]
    ImageMissing { image: String, engine: String },

    /// Rootless podman without subordinate ids for this user.
    #[error("rootless {engine} is not set up for {user}: no range in /etc/subuid or /etc/subgid")]
    RootlessNotSetUp { engine: String, user: String },

    /// crun on cgroups v1 or hybrid, and no runc to use instead.
    #[error("{engine}'s runtime crun cannot run containers on this machine's cgroups (v1 or hybrid), and runc is not installed")]
    NoRuntime { engine: String },

    /// Something the policy asks for that the container backend does not do yet.
    #[error("--image with {what} is not supported yet")]
    NotYet { what: String },

    /// A limit the engine cannot enforce here.
    #[error("--image with {what}: {why}")]
    Unenforceable { what: String, why: String },

    /// A path the engine's `-v SRC:DST:OPTS` syntax cannot carry.
    #[error("{}: a path with ':' or ',' cannot be given to the container engine", path.display())]
    PathSyntax { path: PathBuf },

    /// The proxy's port could not be put into the container's network namespace.
    #[error("cannot give the container keepout's proxy (its port in the container's network)")]
    Egress {
        #[source]
        source: std::io::Error,
    },

    /// The engine refused to start the container (its own message was printed above).
    #[error("{engine} could not start the container (its message is above)")]
    Refused { engine: String },

    /// The engine's seccomp profile cannot be read or extended.
    #[error("cannot add keepout's deny list to the engine's seccomp profile")]
    Seccomp {
        #[source]
        source: serde_json::Error,
    },

    /// A root caller's writable path could not be given to the container as writable by its
    /// user (see `Plan`'s idmapped copies).
    #[error("cannot prepare {} for the container (an idmapped copy of it)", path.display())]
    Attach {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The extended profile cannot be written.
    #[error("cannot write the container's seccomp profile")]
    SeccompFile {
        #[source]
        source: std::io::Error,
    },

    /// Waiting for the engine or relaying signals failed.
    #[error("waiting for {engine} failed")]
    Wait {
        engine: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// What to do about it, where there is something to do.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NoEngine { .. } => "install podman (Debian and Ubuntu: `sudo apt-get install podman runc uidmap`), \
                or say which engine with --engine podman|docker; without --image keepout needs no engine"
                .into(),
            Error::Info { engine, .. } => format!(
                "`{engine} info` must work for this user first; for a remote engine check CONTAINER_HOST or DOCKER_HOST"
            ),
            Error::ImageMissing { image, engine } => format!(
                "pull or build it yourself first: `{engine} pull {image}`, or make one without a registry \
                 (`tar -C ROOTFS -c . | {engine} import - NAME`; docs/container.md)"
            ),
            Error::RootlessNotSetUp { user, .. } => format!(
                "install uidmap and give {user} a range of subordinate ids no other user has (see /etc/subuid), \
                 e.g. `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`, \
                 then `podman system migrate`"
            ),
            Error::NoRuntime { .. } => "install runc (`sudo apt-get install runc`): keepout then uses it".into(),
            Error::NotYet { .. } => "run it without --image: the native sandbox does it".into(),
            Error::Unenforceable { .. } => {
                "run it without --image (the native sandbox), or as root, or on a machine with cgroup v2".into()
            }
            Error::PathSyntax { .. } => "rename it, or run without --image".into(),
            Error::Attach { .. } => {
                "run it without --image (the native sandbox), or as a plain user (rootless podman)".into()
            }
            Error::Refused { engine } => format!(
                "`keepout run --image IMAGE --print-policy -- COMMAND` shows the exact command line; `{engine} info` \
                 and `keepout doctor` show what the engine can do"
            ),
            _ => return None,
        })
    }

    /// keepout's exit status for this error: 125, its own failure.
    pub fn exit_code(&self) -> u8 {
        keepout_sandbox::EXIT_KEEPOUT
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
