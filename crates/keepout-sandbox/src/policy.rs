//! The sandbox policy as plain data: what a sandboxed command sees, and what the user asked for.
//!
//! Nothing here looks at the host or decides anything: a [`Policy`] is built from a
//! [`RunRequest`] by [`Policy::build`] (see [`crate::builder`], the only step that looks at the
//! host filesystem), is printable ([`Policy::to_toml`], what `keepout run --print-policy` shows)
//! and is enforced as it stands by a backend.
//!
//! Guarantees of a built policy (kept by [`crate::builder`]):
//! * every path is absolute and canonical (no symlink components, no `..`);
//! * nothing of the caller's home, `/root`, `/run`, `/var`, `/mnt`, `/media` or
//!   `$XDG_RUNTIME_DIR` is listed unless the user named it with `--ro`/`--rw`, or it is one of
//!   the caller's toolchains, read-only (see [`crate::toolchains`]);
//! * the environment is exactly [`Policy::env`]: an allowlist of the caller's variables plus
//!   the values keepout sets, nothing else;
//! * the project's `.git/hooks`, `.git/config`, `.git/info` and `.envrc` are read-only
//!   (or, when absent, watched: see [`ProtectedPath`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::project_scan::ProjectScan;

/// How the sandbox is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Namespaces, a new root, Landlock and seccomp (the default).
    #[default]
    Namespaces,
    /// Landlock, seccomp and a scrubbed environment only; needs no user namespaces.
    Landlock,
}

/// Whether the sandbox has a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// A network namespace with only its own loopback interface.
    #[default]
    None,
    /// The host's network, as it is (`--net host`). Host abstract unix sockets stay unreachable
    /// where Landlock scoping is available.
    Host,
    /// Only the sandbox's own loopback, where `127.0.0.1:port` is a listening socket that
    /// keepout holds outside the sandbox (its proxy), and the proxy variables point there.
    Proxied { port: u16 },
}

impl Network {
    /// Whether the sandbox gets a network namespace of its own (everything but `Host`).
    pub fn isolated(self) -> bool {
        self != Network::Host
    }
}

/// What one visible path is inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum MountKind {
    /// The host path (or `source`) bound read-only, nosuid, nodev.
    ReadOnly,
    /// The host path (or `source`) bound read-write, nosuid, nodev.
    ReadWrite,
    /// The caller's own file or directory inside the project, bound read-only over itself
    /// because the host runs code from it later (git's hooks and configuration at any depth,
    /// editor and tool files). For a root caller a `.git` pointer file is idmapped like the
    /// project, because git checks its owner ("dubious ownership" otherwise); what is inside a
    /// git directory git only reads, and it is bound as it is.
    Pinned,
    /// Hidden behind an empty read-only file or directory.
    Masked,
    /// A read-only file with this text instead of the host's (a system file with its
    /// credentials removed: see [`crate::system_credentials`]), made in the sandbox's own memory.
    Text { content: String },
    /// A directory keepout keeps for the sandbox (a workspace's home), owned on the host by the
    /// sandbox's own user: bound read-write as it is (`source`), nosuid, nodev, never idmapped.
    Kept,
    /// overlayfs: the read-only `layers` (topmost first) under the writable `source` directory,
    /// with overlayfs's `work` directory beside it. Writes never reach a layer.
    /// `callers_layers`: the layers are the caller's own files (the real project under
    /// `--review`), which a root caller's sandbox sees idmapped, as it sees a read-write bind;
    /// otherwise they belong to the sandbox's user already (a workspace's layers).
    Overlay {
        layers: Vec<PathBuf>,
        work: PathBuf,
        #[serde(default)]
        callers_layers: bool,
    },
    /// A fresh, empty, writable tmpfs of at most `size_mib` MiB.
    Tmpfs { size_mib: u64 },
    /// A symbolic link to `target`, as on the host (e.g. `/bin -> usr/bin`).
    Symlink { target: PathBuf },
    /// A minimal `/dev`: null, zero, full, random, urandom, tty, a new devpts, shm.
    Dev,
    /// A new `/proc` for the sandbox's pid namespace; kernel knobs read-only or masked.
    Proc,
}

/// One entry of what the sandbox sees, in the order it is put in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Where it appears inside the sandbox.
    pub path: PathBuf,
    #[serde(flatten)]
    pub kind: MountKind,
    /// The host path bound there when it differs from `path` (e.g. `--home DIR`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<PathBuf>,
    /// Why it is there, for `--print-policy` and error messages.
    pub why: String,
}

/// A path in the project that the host runs code from later, and how it is protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedPath {
    pub path: PathBuf,
    /// `true`: it exists and is mounted read-only over itself. `false`: it does not exist;
    /// if the sandbox creates it, keepout moves it aside after the run and says so.
    pub exists: bool,
}

/// Where the sandbox's `$HOME` comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HomeSpec {
    /// An empty tmpfs, new for each run.
    Fresh,
    /// A host directory kept between runs (`--home DIR`).
    Dir(PathBuf),
    /// A workspace's home, kept by keepout (see [`KeptHome`]).
    Kept(KeptHome),
}

/// Where a `--review` run's writes go: overlayfs's upper and work directories (one filesystem,
/// owned by the sandbox's user on the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// A home that keepout keeps for the sandbox: a workspace. It is owned on the host by the
/// sandbox's own user (for a root caller, `nobody`), so it is bound as it is, and the workspace's
/// project lives inside it: there is no project of the host's in such a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeptHome {
    /// The writable directory: the home itself, or overlayfs's upper directory.
    pub upper: PathBuf,
    /// Read-only layers under `upper`, topmost first; empty when `upper` is the whole home.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<PathBuf>,
    /// overlayfs's work directory (empty, on the same filesystem as `upper`); needed with layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<PathBuf>,
    /// Where the command starts, relative to the home (the workspace's project).
    pub workdir: PathBuf,
}

/// Resource limits applied to every process of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Limits {
    /// RLIMIT_NPROC inside the sandbox's user namespace (threads count too).
    pub max_processes: u64,
    /// Size of the fresh `/tmp` (and of a fresh `$HOME`), MiB.
    pub tmp_size_mib: u64,
    /// Core dumps are off (RLIMIT_CORE 0) unless this is true.
    pub core_dumps: bool,
    /// `--memory`: the most memory the sandbox's processes may use together, bytes (RAM and
    /// swap, the pages of its tmpfs included), enforced by a memory cgroup; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// `--disk-reserve`: the free space keepout keeps for the host on each writable host
    /// filesystem the sandbox sees; the run is stopped when it would go below.
    #[serde(default)]
    pub disk_reserve: crate::limits::DiskReserve,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_processes: 2048,
            tmp_size_mib: crate::limits::default_tmp_size_mib(),
            core_dumps: false,
            memory_bytes: None,
            disk_reserve: Default::default(),
        }
    }
}

/// The user the command runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Identity {
    /// uid and gid inside the sandbox: never 0.
    pub uid: u32,
    pub gid: u32,
    /// The host ids they map to. For an ordinary caller these are the caller's own ids; for
    /// root, the unprivileged `nobody` ids, so that the code is not host root in disguise.
    pub host_uid: u32,
    pub host_gid: u32,
    /// Root callers only: read-write paths are idmapped, so files the host's root owns there
    /// appear owned by the sandbox's user, and files it creates are owned by root on the host.
    pub idmap_root: bool,
}

/// The uid and gid used inside the sandbox when the caller is root.
pub const ROOT_CALLER_INNER_ID: u32 = 1000;
/// The host uid and gid (`nobody`/`nogroup`) that a root caller's sandbox runs as.
pub const ROOT_CALLER_HOST_ID: u32 = 65534;

/// What the user asked for, plus the facts about the caller that the policy depends on.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub command: Vec<String>,
    /// The caller's working directory.
    pub cwd: PathBuf,
    /// `--project DIR`; the cwd when absent.
    pub project: Option<PathBuf>,
    /// `--home DIR`; a fresh empty home when absent.
    pub home: Option<PathBuf>,
    /// A workspace's home instead (`home` and `project` must then be `None`): the command starts
    /// in its project, inside the home, and no directory of the host's is the project.
    pub kept_home: Option<KeptHome>,
    /// `--review`: the project is an overlay whose writes land in these directories; the real
    /// tree is not written at all.
    pub review: Option<ReviewDirs>,
    pub read_only: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
    /// Show the caller's toolchains, read-only: those found under the home and
    /// `extra_toolchains` (see [`crate::toolchains`]).
    pub toolchains: bool,
    /// Toolchain directories the config names (`[run] toolchains`).
    pub extra_toolchains: Vec<PathBuf>,
    pub env: Vec<EnvRule>,
    pub network: Network,
    pub mode: Mode,
    pub limits: Limits,
    /// The caller's environment (normally `std::env::vars_os()` as UTF-8 pairs).
    pub caller_env: Vec<(String, String)>,
    /// The names of the caller's variables whose value is not UTF-8 (left out of `caller_env`):
    /// `--env NAME` of one says so instead of "not set".
    pub caller_env_not_utf8: Vec<String>,
    /// The caller's home directory; the sandbox's `$HOME` appears at the same path.
    pub caller_home: PathBuf,
    pub caller_uid: u32,
    pub caller_gid: u32,
    /// `--socket PATH`: unix sockets in the project the sandbox may reach (all others are
    /// masked).
    pub allow_sockets: Vec<PathBuf>,
    /// A directory kept for this project's Python bytecode (`PYTHONPYCACHEPREFIX`), bound
    /// read-write; `None`: under the sandbox's home.
    pub bytecode_cache: Option<PathBuf>,
}

#[cfg(test)]
impl RunRequest {
    /// What the crate's unit tests start from: `true` in `project`, run by uid 1000 with the home
    /// /home/alice, no environment, no toolchains, no network, namespaces mode.
    pub(crate) fn for_tests(project: &std::path::Path) -> RunRequest {
        RunRequest {
            command: vec!["true".into()],
            cwd: project.to_path_buf(),
            project: None,
            home: None,
            kept_home: None,
            review: None,
            read_only: vec![],
            read_write: vec![],
            toolchains: false,
            extra_toolchains: vec![],
            env: vec![],
            network: Network::None,
            mode: Mode::Namespaces,
            limits: Limits::default(),
            caller_env_not_utf8: vec![],
            caller_env: vec![],
            caller_home: "/home/alice".into(),
            caller_uid: 1000,
            caller_gid: 1000,
            allow_sockets: vec![],
            bytecode_cache: None,
        }
    }
}

/// Everything the sandbox will be, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Policy {
    pub mode: Mode,
    pub command: Vec<String>,
    /// Working directory inside the sandbox.
    pub cwd: PathBuf,
    /// The host directory that is the project (read-write); `None` for a workspace, whose
    /// project lives in its kept home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<PathBuf>,
    pub network: Network,
    pub home: HomeSpec,
    pub home_path: PathBuf,
    pub identity: Identity,
    pub limits: Limits,
    /// What the command's terminal output may do beyond drawing (`--allow-clipboard`).
    #[serde(default)]
    pub terminal: crate::terminal_filter::TerminalPolicy,
    /// The command's whole environment.
    pub env: BTreeMap<String, String>,
    /// Paths in the project that run code on the host later.
    #[serde(rename = "protected")]
    pub protected: Vec<ProtectedPath>,
    /// What is visible, in mount order. Anything not listed does not exist inside.
    #[serde(rename = "mount")]
    pub mounts: Vec<Mount>,
    /// Toolchains found under the home (or named in the config) but not shown, and why.
    #[serde(
        rename = "skipped-toolchain",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub skipped_toolchains: Vec<SkippedToolchain>,
    /// Paths the user made writable with `--rw` (what `--mode landlock` grants writes to).
    #[serde(
        rename = "rw-by-request",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub requested_rw: Vec<PathBuf>,
    /// The walks made while building (see [`crate::project_scan`]) of the host trees the
    /// sandbox can write: the project and each `--rw` directory. Reused by the after-run check,
    /// so each is walked once before the run.
    #[serde(skip)]
    pub scans: Vec<(PathBuf, ProjectScan)>,
    /// Where a second keepout may join this sandbox while it runs (a unix socket keepout
    /// serves; see [`crate::join`]); `None`: it cannot be joined. Namespaces mode only.
    #[serde(skip)]
    pub join_socket: Option<PathBuf>,
}

/// Where a project's bytecode cache (`RunRequest::bytecode_cache`) appears inside: under
/// `/var/cache` (otherwise absent inside), so the home and `/run` stay empty.
pub const BYTECODE_CACHE: &str = "/var/cache/keepout/pycache";

/// Names in the project that the host runs code from later: git hooks and configuration (also
/// where git looks for them: `commondir`, and the hooks and configs of linked worktrees and
/// submodules), and direnv's `.envrc`.
pub const PROTECTED_NAMES: &[&str] = &[
    ".git/hooks",
    ".git/config",
    ".git/config.worktree",
    ".git/info",
    ".git/commondir",
    ".git/worktrees",
    ".git/modules",
    ".envrc",
];

/// One `--env` argument: pass the caller's variable `NAME`, or set `NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvRule {
    Pass(String),
    Set(String, String),
}

impl std::str::FromStr for EnvRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Invalid(format!(
                "{name:?} is not a variable name (letters, digits and _ only)"
            )));
        }
        Ok(match value {
            Some(v) => EnvRule::Set(name.into(), v.into()),
            None => EnvRule::Pass(name.into()),
        })
    }
}

/// A toolchain that was found, or named in the config, but is not shown, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedToolchain {
    pub path: PathBuf,
    pub why: String,
}

impl Policy {
    /// The policy as TOML, as `keepout run --print-policy` shows it; an error when a path in it
    /// is not UTF-8 (TOML holds only UTF-8 text).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| {
            let not_utf8 = self
                .mounts
                .iter()
                .map(|m| m.path.as_path())
                .chain([self.cwd.as_path()])
                .find(|p| p.to_str().is_none());
            Error::Usage(format!(
                "cannot show the policy as TOML ({e}){}: TOML holds only UTF-8 text. The run \
                 itself works; to see its policy, run from a directory whose path is UTF-8",
                match not_utf8 {
                    Some(p) => format!(": {} is not UTF-8", p.to_string_lossy()),
                    None => String::new(),
                }
            ))
        })
    }
}
