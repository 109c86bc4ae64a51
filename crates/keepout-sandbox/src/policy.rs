//! The sandbox policy: plain data that says what a sandboxed command sees.
//!
//! A [`Policy`] is built from a [`RunRequest`] (what the user asked for, plus the facts about
//! the caller that matter: environment, home, uid). Building is the only step that looks at the
//! host filesystem: it resolves symlinks, drops paths that do not exist and expands the masks of
//! `/etc`, so that the resulting policy is concrete, printable and enforceable as it stands.
//!
//! Guarantees of a built policy:
//! * every path is absolute and canonical (no symlink components, no `..`);
//! * nothing of the caller's home, `/root`, `/run`, `/var`, `/mnt`, `/media` or
//!   `$XDG_RUNTIME_DIR` is listed unless the user named it with `--ro`/`--rw`, or it is one of
//!   the caller's toolchains, read-only (see [`crate::toolchains`]);
//! * the environment is exactly [`Policy::env`]: an allowlist of the caller's variables plus
//!   the values keepout sets, nothing else;
//! * the project's `.git/hooks`, `.git/config`, `.git/info` and `.envrc` are read-only
//!   (or, when absent, watched: see [`ProtectedPath`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::{build_env, EnvRule};
use crate::error::{Error, Result};
use crate::project_scan::{self, ProjectScan};
use crate::toolchains::{self, SkippedToolchain, Survey};

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
    /// `extra_toolchains` (see [`toolchains`]).
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
    pub terminal: crate::TerminalPolicy,
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

/// The caller's cache directory: `$XDG_CACHE_HOME` when absolute, else `~/.cache` (none for a
/// home of `/`). Where keepout keeps what it remembers between runs.
pub fn cache_dir(env: &[(String, String)], home: &Path) -> Option<PathBuf> {
    let xdg = env
        .iter()
        .find(|(k, _)| k == "XDG_CACHE_HOME")
        .map(|(_, v)| PathBuf::from(v))
        .filter(|p| p.is_absolute());
    xdg.or_else(|| (home != Path::new("/")).then(|| home.join(".cache")))
}

/// Where a project's bytecode cache (`RunRequest::bytecode_cache`) appears inside: under
/// `/var/cache` (otherwise absent inside), so the home and `/run` stay empty.
pub const BYTECODE_CACHE: &str = "/var/cache/keepout/pycache";

/// The `why` of a mount the user asked for with `--rw`.
const RW_FLAG: &str = "--rw";

/// System directories bound read-only when they exist on the host.
pub const SYSTEM_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/nix/store",
];

/// Files and directories under `/etc` that hold host secrets: masked even though `/etc` is
/// visible. Entries ending in `*` are prefixes matched in their directory.
pub const ETC_MASKS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/security/opasswd",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssl/private",
    "/etc/ssh/ssh_host_*",
    "/etc/krb5.keytab",
    "/etc/NetworkManager/system-connections",
    "/etc/wireguard",
    "/etc/docker/key.json",
    "/etc/ipsec.secrets",
];

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

impl Policy {
    /// Turn a request into a concrete policy, checking the host paths it names.
    pub fn build(req: &RunRequest) -> Result<Policy> {
        if req.command.is_empty() {
            return Err(Error::Usage(
                "no command given: keepout run -- COMMAND [ARGS...]".into(),
            ));
        }
        let secret_places = secret_places(&req.caller_home, &req.caller_env);
        let home_path = clean_absolute(&req.caller_home)
            .filter(|h| h != Path::new("/"))
            .unwrap_or_else(|| PathBuf::from("/home/sandbox"));
        let (project, cwd) = match &req.kept_home {
            Some(kept) => {
                if req.project.is_some() || req.home.is_some() {
                    return Err(Error::Usage(
                        "a workspace brings its own home and project: no --project or --home"
                            .into(),
                    ));
                }
                if req.mode == Mode::Landlock {
                    return Err(Error::Usage(
                        "a workspace needs --mode namespaces (its home is mounted)".into(),
                    ));
                }
                let relative_and_plain = kept
                    .workdir
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
                if !relative_and_plain {
                    return Err(Error::Usage(format!(
                        "the workspace's project {} must be a plain path inside its home",
                        kept.workdir.display()
                    )));
                }
                (None, home_path.join(&kept.workdir))
            }
            None => {
                let project_in = req.project.clone().unwrap_or_else(|| req.cwd.clone());
                let project = canonical(&project_in, "project directory")?;
                if !project.is_dir() {
                    return Err(Error::Usage(format!(
                        "project {} is not a directory",
                        project.display()
                    )));
                }
                if let Some(place) = exposes(&project, &secret_places, true) {
                    return Err(Error::Usage(format!(
                        "the project {} would show the sandbox {place}. cd into the project itself (the \
                         repository you cloned), or pass --project DIR",
                        project.display()
                    )));
                }
                let cwd = match canonical(&req.cwd, "working directory") {
                    Ok(cwd) if cwd.starts_with(&project) => cwd,
                    _ => project.clone(),
                };
                (Some(project), cwd)
            }
        };
        let identity = if req.caller_uid == 0 {
            Identity {
                uid: ROOT_CALLER_INNER_ID,
                gid: ROOT_CALLER_INNER_ID,
                host_uid: ROOT_CALLER_HOST_ID,
                host_gid: ROOT_CALLER_HOST_ID,
                idmap_root: true,
            }
        } else {
            Identity {
                uid: req.caller_uid,
                gid: req.caller_gid,
                host_uid: req.caller_uid,
                host_gid: req.caller_gid,
                idmap_root: false,
            }
        };
        let home = match (&req.kept_home, &req.home) {
            (Some(kept), _) => HomeSpec::Kept(kept_home(kept)?),
            (None, None) => HomeSpec::Fresh,
            (None, Some(dir)) => HomeSpec::Dir(canonical(dir, "--home directory")?),
        };

        let mut mounts = Vec::new();
        for sys in SYSTEM_PATHS {
            let p = Path::new(sys);
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(p).map_err(|e| Error::io(p, e))?;
                    mounts.push(Mount {
                        path: p.into(),
                        kind: MountKind::Symlink { target },
                        source: None,
                        why: "system (symlink as on the host)".into(),
                    });
                }
                Ok(m) if m.is_dir() => mounts.push(Mount {
                    path: p.into(),
                    kind: MountKind::ReadOnly,
                    source: None,
                    why: "system".into(),
                }),
                _ => {}
            }
        }
        // Only what the sandbox's user could otherwise read needs a mask (and a mount).
        let caller_is_root = req.caller_uid == 0;
        for mask in expand_masks(ETC_MASKS)
            .into_iter()
            .filter(|m| readable_by_sandbox(m, caller_is_root))
        {
            mounts.push(Mount {
                path: mask,
                kind: MountKind::Masked,
                source: None,
                why: "host secret under /etc".into(),
            });
        }
        mounts.push(Mount {
            path: "/dev".into(),
            kind: MountKind::Dev,
            source: None,
            why: "safe device nodes only".into(),
        });
        mounts.push(Mount {
            path: "/proc".into(),
            kind: MountKind::Proc,
            source: None,
            why: "the sandbox's own processes only".into(),
        });
        let tmp = MountKind::Tmpfs {
            size_mib: req.limits.tmp_size_mib,
        };
        mounts.push(Mount {
            path: "/tmp".into(),
            kind: tmp.clone(),
            source: None,
            why: "fresh".into(),
        });
        mounts.push(Mount {
            path: "/run".into(),
            kind: MountKind::Tmpfs { size_mib: 16 },
            source: None,
            why: "fresh and empty: the host's sockets stay outside".into(),
        });
        mounts.push(Mount {
            path: "/var/tmp".into(),
            kind: MountKind::Symlink {
                target: "/tmp".into(),
            },
            source: None,
            why: "programs expect it".into(),
        });
        if req.network == Network::Host {
            if let Some(m) = resolv_conf_target(Path::new("/etc/resolv.conf")) {
                mounts.push(m);
            }
        }
        mounts.push(Mount {
            path: home_path.clone(),
            kind: match &home {
                HomeSpec::Fresh => tmp.clone(),
                HomeSpec::Dir(_) => MountKind::ReadWrite,
                HomeSpec::Kept(k) => match &k.work {
                    Some(work) if !k.layers.is_empty() => MountKind::Overlay {
                        layers: k.layers.clone(),
                        work: work.clone(),
                        callers_layers: false,
                    },
                    _ => MountKind::Kept,
                },
            },
            source: match &home {
                HomeSpec::Fresh => None,
                HomeSpec::Dir(d) => Some(d.clone()),
                HomeSpec::Kept(k) => Some(k.upper.clone()),
            },
            why: match &home {
                HomeSpec::Kept(_) => {
                    "the workspace's home (and its project): nothing of the caller's"
                }
                _ => "the sandbox's home: nothing of the caller's",
            }
            .into(),
        });

        let toolchains = if req.toolchains {
            let caller = toolchains::Caller {
                home: &req.caller_home,
                uid: req.caller_uid,
                env: &req.caller_env,
                mode: req.mode,
            };
            toolchains::survey(&caller, true, &req.extra_toolchains)?
        } else {
            Survey::default()
        };

        // User binds, toolchains and the project: parents before children so nested mounts
        // stack right.
        let mut user = Vec::new();
        let mut requested_rw = Vec::new();
        for (paths, kind, flag) in [
            (&req.read_only, MountKind::ReadOnly, "--ro"),
            (&req.read_write, MountKind::ReadWrite, RW_FLAG),
        ] {
            for p in paths {
                let path = canonical(p, flag)?;
                if let Some(place) = exposes(&path, &secret_places, false) {
                    return Err(Error::Usage(format!(
                        "{flag} {} would show the sandbox {place}. Name the directories the \
                         command needs instead, e.g. --ro ~/.pyenv",
                        path.display()
                    )));
                }
                if kind == MountKind::ReadWrite {
                    requested_rw.push(path.clone());
                }
                user.push(Mount {
                    path,
                    kind: kind.clone(),
                    source: None,
                    why: flag.to_string(),
                });
            }
        }
        match (&project, &req.review) {
            (Some(project), None) => user.push(Mount {
                path: project.clone(),
                kind: MountKind::ReadWrite,
                source: None,
                why: "the project".into(),
            }),
            (Some(project), Some(review)) => {
                if req.mode == Mode::Landlock {
                    return Err(Error::Usage(
                        "--review needs --mode namespaces (the project is an overlay)".into(),
                    ));
                }
                user.push(Mount {
                    path: project.clone(),
                    kind: MountKind::Overlay {
                        layers: vec![project.clone()],
                        work: canonical(&review.work, "review work directory")?,
                        callers_layers: true,
                    },
                    source: Some(canonical(&review.upper, "review directory")?),
                    why: "the project, under review: every write goes aside".into(),
                })
            }
            (None, Some(_)) => {
                return Err(Error::Usage(
                    "--review is for your own tree; a workspace is a sandbox's already".into(),
                ))
            }
            (None, None) => {}
        }
        if let Some(cache) = &req.bytecode_cache {
            user.push(Mount {
                path: BYTECODE_CACHE.into(),
                kind: MountKind::ReadWrite,
                source: Some(canonical(cache, "bytecode cache")?),
                why: "this project's Python bytecode (PYTHONPYCACHEPREFIX), kept by keepout".into(),
            });
        }
        for m in toolchains.mounts() {
            if !user.iter().any(|u| u.path == m.path) {
                user.push(m); // unless --ro, --rw or the project shows it already
            }
        }
        user.sort_by_key(|m| m.path.components().count());
        mounts.extend(user);
        // After every bind, so that no --ro of a directory shows such a file again.
        let clean_cache = cache_dir(&req.caller_env, &req.caller_home)
            .map(|d| d.join("keepout/system-files-clean"));
        mounts.extend(crate::system_credentials::mounts(
            caller_is_root,
            clean_cache.as_deref(),
        ));

        // Under review nothing reaches the real tree, so nothing in it needs pinning (a pinned
        // `.git` would even be the real one, writable, over the overlay); `review apply` leaves
        // the same names alone. A host service's socket is masked either way: a connection
        // through the overlay reaches the real one.
        // The same for every `--rw` directory: it is a tree of the host's too.
        let mut roots: Vec<PathBuf> = project.iter().cloned().collect();
        for rw in &requested_rw {
            if rw.is_dir() && !roots.iter().any(|r| rw.starts_with(r) || r.starts_with(rw)) {
                roots.push(rw.clone());
            }
        }
        let scans: Vec<(PathBuf, ProjectScan)> = roots
            .into_iter()
            .map(|r| {
                let scan = project_scan::scan(&r, project_scan::Pass::Before);
                (r, scan)
            })
            .collect();
        let mut protected = Vec::new();
        for (root, scan) in &scans {
            let under_review = req.review.is_some() && Some(root) == project.as_ref();
            if !under_review {
                protected.extend(protect_project(root, scan, &mut mounts)?);
            }
            mask_sockets(scan, &req.allow_sockets, &mut mounts)?;
        }

        let env = build_env(req, &home_path, &toolchains)?;
        Ok(Policy {
            mode: req.mode,
            command: req.command.clone(),
            cwd,
            project,
            network: req.network,
            home,
            home_path,
            identity,
            limits: req.limits.clone(),
            terminal: crate::TerminalPolicy::default(),
            env,
            protected,
            mounts,
            skipped_toolchains: toolchains.skipped,
            requested_rw,
            scans,
            join_socket: None,
        })
    }

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

/// A workspace's home made concrete: its directories canonical, layers with a work directory,
/// and no path that overlayfs's option string could misread.
fn kept_home(kept: &KeptHome) -> Result<KeptHome> {
    let dir = |p: &Path, what: &str| -> Result<PathBuf> {
        let c = canonical(p, what)?;
        if !c.is_dir() {
            return Err(Error::Usage(format!(
                "{what} {} is not a directory",
                c.display()
            )));
        }
        let text = c.to_string_lossy();
        if text.contains([',', ':', '\\']) {
            return Err(Error::Usage(format!(
                "{what} {}: overlayfs cannot take a path with ',', ':' or '\\'; \
                 set XDG_DATA_HOME to a plainer path",
                c.display()
            )));
        }
        Ok(c)
    };
    let layers = kept
        .layers
        .iter()
        .map(|l| dir(l, "workspace layer"))
        .collect::<Result<Vec<_>>>()?;
    let work = match (&kept.work, layers.is_empty()) {
        (Some(w), _) => Some(dir(w, "workspace work directory")?),
        (None, true) => None,
        (None, false) => {
            return Err(Error::Usage(
                "a workspace on layers needs a work directory".into(),
            ))
        }
    };
    Ok(KeptHome {
        upper: dir(&kept.upper, "workspace home")?,
        layers,
        work,
        workdir: kept.workdir.clone(),
    })
}

/// Places that hold the caller's secrets or other users' files, each with what it is, for
/// [`exposes`]. Nothing the sandbox sees may be one of them or contain one.
pub(crate) fn secret_places(
    caller_home: &Path,
    caller_env: &[(String, String)],
) -> Vec<(PathBuf, String)> {
    let mut places: Vec<(PathBuf, String)> = vec![
        ("/".into(), "the whole host".into()),
        ("/root".into(), "root's home".into()),
        ("/home".into(), "every home directory".into()),
        ("/run".into(), "the host's sockets under /run".into()),
        (
            "/tmp".into(),
            "the host's /tmp, where agents keep sockets".into(),
        ),
        ("/var/tmp".into(), "the host's /var/tmp".into()),
        ("/dev/shm".into(), "the host's shared memory".into()),
        ("/var".into(), "/var (mail, spools, databases)".into()),
        ("/proc".into(), "the host's processes".into()),
        ("/sys".into(), "/sys".into()),
        ("/dev".into(), "the host's devices".into()),
        ("/boot".into(), "/boot".into()),
        ("/mnt".into(), "/mnt".into()),
        ("/media".into(), "/media".into()),
    ];
    if let Ok(home) = std::fs::canonicalize(caller_home) {
        places.push((home, "your home directory (SSH keys, tokens)".into()));
    }
    for (var, what) in [
        (
            "XDG_RUNTIME_DIR",
            "your runtime directory (agent and D-Bus sockets)",
        ),
        ("SSH_AUTH_SOCK", "the directory of your ssh-agent socket"),
    ] {
        let value = caller_env
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| PathBuf::from(v));
        let dir = match var {
            "SSH_AUTH_SOCK" => value.and_then(|v| v.parent().map(Path::to_path_buf)),
            _ => value,
        };
        if let Some(dir) = dir.and_then(|d| std::fs::canonicalize(d).ok()) {
            places.push((dir, what.into()));
        }
    }
    places
}

/// Does showing `path` show one of the secret places (it is one, or contains one)? For a
/// writable project, the system directories count too.
pub(crate) fn exposes(path: &Path, places: &[(PathBuf, String)], project: bool) -> Option<String> {
    for (place, what) in places {
        if place.starts_with(path) {
            return Some(what.clone());
        }
    }
    if project && SYSTEM_PATHS.iter().any(|s| path.starts_with(s)) {
        return Some("a system directory, writable".into());
    }
    None
}

/// Pin what the host runs code from later read-only over itself, at any depth (see
/// [`crate::autorun`]): the control entries of every git directory, `.git` pointer files, editor
/// and tool files. The project's own `.git` is also bound over itself so it is a mount point,
/// which cannot be renamed away and replaced. Nothing inside a directory a package manager
/// recreates whole is pinned (it is checked after the run instead).
fn protect_project(
    project: &Path,
    scan: &ProjectScan,
    mounts: &mut Vec<Mount>,
) -> Result<Vec<ProtectedPath>> {
    let mut protected = Vec::new();
    let git = project.join(".git");
    match std::fs::symlink_metadata(&git) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::Usage(format!(
                "{} is a symlink; keepout will not guess what it protects. Replace it with the directory, or run elsewhere",
                git.display()
            )))
        }
        Ok(m) if m.is_dir() => mounts.push(Mount {
            path: git.clone(),
            kind: MountKind::ReadWrite,
            source: None,
            why: "pinned in place so it cannot be swapped for a planted copy".into(),
        }),
        Ok(_) => {}
        Err(_) => protected.push(ProtectedPath {
            path: git.clone(),
            exists: false,
        }),
    }
    let mut pins: Vec<(PathBuf, &'static str)> = Vec::new();
    let refuse_symlink = |path: &Path| {
        Err(Error::Usage(format!(
            "{} is a symlink; keepout cannot pin it read-only. Replace it with a real file or directory first",
            path.display()
        )))
    };
    for g in scan.git_dirs.iter().filter(|g| g.dir.pinnable) {
        for c in g.control.iter().filter(|c| c.pinnable) {
            if c.is_symlink {
                return refuse_symlink(&c.path);
            }
            pins.push((
                c.path.clone(),
                "git: decides what git runs on the host later",
            ));
        }
    }
    for p in scan
        .git_pointers
        .iter()
        .filter(|p| p.pinnable && !p.is_symlink)
    {
        pins.push((
            p.path.clone(),
            "gitdir pointer: runs code on the host later",
        ));
    }
    for e in scan.editor_files.iter().filter(|e| e.pinnable) {
        if e.is_symlink {
            return refuse_symlink(&e.path);
        }
        let why = crate::autorun::editor_or_tool(project_scan::file_name(&e.path), e.is_dir)
            .unwrap_or("runs code on the host later");
        pins.push((e.path.clone(), why));
    }
    pins.sort_by_key(|(p, _)| p.components().count());
    for (path, why) in pins {
        mounts.push(Mount {
            path: path.clone(),
            kind: MountKind::Pinned,
            source: None,
            why: why.into(),
        });
        protected.push(ProtectedPath { path, exists: true });
    }
    // What is absent at the top is watched (moved aside after the run if it appears).
    for name in PROTECTED_NAMES {
        let path = project.join(name);
        if (name.starts_with(".git/") && !git.is_dir()) || protected.iter().any(|p| p.path == path)
        {
            continue;
        }
        if std::fs::symlink_metadata(&path).is_err() {
            protected.push(ProtectedPath {
                path,
                exists: false,
            });
        }
    }
    Ok(protected)
}

/// Mask every unix socket in the project (a host service's: a dev database's socket directory,
/// a forwarded agent, git's fsmonitor daemon) unless `--socket` names it.
fn mask_sockets(scan: &ProjectScan, allowed: &[PathBuf], mounts: &mut Vec<Mount>) -> Result<()> {
    let allowed: Vec<PathBuf> = allowed
        .iter()
        .map(|p| canonical(p, "--socket"))
        .collect::<Result<_>>()?;
    for socket in &scan.sockets {
        if allowed.contains(socket) {
            continue;
        }
        mounts.push(Mount {
            path: socket.clone(),
            kind: MountKind::Masked,
            source: None,
            why: "a host service's unix socket (--socket PATH to let the sandbox connect)".into(),
        });
    }
    Ok(())
}

/// DNS with the host network: where `/etc/resolv.conf` is a symlink (e.g. into
/// `/run/systemd/resolve`), bind its target at the same path inside the fresh `/run`.
fn resolv_conf_target(link: &Path) -> Option<Mount> {
    if !std::fs::symlink_metadata(link)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let target = std::fs::canonicalize(link).ok()?;
    if target.starts_with("/etc") || target.starts_with("/usr") {
        return None; // already visible through a system bind
    }
    Some(Mount {
        path: target,
        kind: MountKind::ReadOnly,
        source: None,
        why: "DNS: target of the /etc/resolv.conf symlink".into(),
    })
}

/// Could the sandbox's user read `path` if it were not masked? An ordinary caller's sandbox has
/// the caller's own uid and groups, so the caller's own access check answers; a root caller's
/// sandbox is `nobody` with no groups, so only the "other" permission bits count.
pub(crate) fn readable_by_sandbox(path: &Path, caller_is_root: bool) -> bool {
    use rustix::fs::Access;
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if caller_is_root {
        let other = if meta.is_dir() { 0o005 } else { 0o004 };
        return meta.mode() & other != 0;
    }
    rustix::fs::access(path, Access::READ_OK).is_ok()
        || (meta.is_dir() && rustix::fs::access(path, Access::EXEC_OK).is_ok())
}

fn expand_masks(masks: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for mask in masks {
        let candidates: Vec<PathBuf> = match mask.strip_suffix('*') {
            Some(prefix) => {
                let prefix = Path::new(prefix);
                let (Some(dir), Some(stem)) = (prefix.parent(), prefix.file_name()) else {
                    continue;
                };
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut found: Vec<PathBuf> = entries
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .as_encoded_bytes()
                            .starts_with(stem.as_encoded_bytes())
                    })
                    .map(|e| e.path())
                    .collect();
                found.sort();
                found
            }
            None => vec![PathBuf::from(mask)],
        };
        for p in candidates {
            // A secret that is a symlink is masked where it really is, when that is visible
            // (inside a system directory); a symlink to elsewhere leads nowhere inside.
            let Ok(real) = std::fs::canonicalize(&p) else {
                continue;
            };
            if SYSTEM_PATHS.iter().any(|s| real.starts_with(s)) && !out.contains(&real) {
                out.push(real);
            }
        }
    }
    out
}

fn canonical(p: &Path, what: &str) -> Result<PathBuf> {
    std::fs::canonicalize(p).map_err(|e| {
        Error::Usage(format!(
            "{what} {}: {}",
            p.display(),
            crate::error::describe_io(&e)
        ))
    })
}

/// An absolute path with `.` and `..` resolved lexically; `None` for a relative path.
pub(crate) fn clean_absolute(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(project: &Path) -> RunRequest {
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
            caller_env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("GITHUB_TOKEN".into(), "ghp_secret".into()),
                ("SSH_AUTH_SOCK".into(), "/run/user/1000/ssh".into()),
                ("LANG".into(), "C.UTF-8".into()),
            ],
            caller_home: "/home/alice".into(),
            caller_uid: 1000,
            caller_gid: 1000,
            allow_sockets: vec![],
            bytecode_cache: None,
        }
    }

    #[test]
    fn home_and_credentials_are_not_visible() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy::build(&request(dir.path())).unwrap();
        let home = policy
            .mounts
            .iter()
            .find(|m| m.path == Path::new("/home/alice"))
            .unwrap();
        assert_eq!(
            home.kind,
            MountKind::Tmpfs {
                size_mib: Limits::default().tmp_size_mib
            }
        );
        for hidden in ["/root", "/home", "/run/user", "/var", "/mnt", "/media"] {
            assert!(
                !policy.mounts.iter().any(|m| m.path == Path::new(hidden)
                    && matches!(m.kind, MountKind::ReadOnly | MountKind::ReadWrite)),
                "{hidden} must not be bound"
            );
        }
    }

    #[test]
    fn environment_is_an_allowlist() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Policy::build(&request(dir.path())).unwrap();
        assert!(!policy.env.contains_key("GITHUB_TOKEN"));
        assert!(!policy.env.contains_key("SSH_AUTH_SOCK"));
        assert_eq!(policy.env["LANG"], "C.UTF-8");
        assert_eq!(policy.env["HOME"], "/home/alice");
    }

    #[test]
    fn git_internals_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git/hooks")).unwrap();
        std::fs::write(dir.path().join(".git/config"), "").unwrap();
        let policy = Policy::build(&request(dir.path())).unwrap();
        let project = std::fs::canonicalize(dir.path()).unwrap();
        let ro = |p: &str| {
            policy
                .mounts
                .iter()
                .any(|m| m.path == project.join(p) && m.kind == MountKind::Pinned)
        };
        assert!(ro(".git/hooks") && ro(".git/config"));
        let absent: Vec<_> = policy
            .protected
            .iter()
            .filter(|p| !p.exists)
            .map(|p| p.path.clone())
            .collect();
        assert!(absent.contains(&project.join(".envrc")));
        assert!(absent.contains(&project.join(".git/info")));
        // The project comes before the protections that sit on top of it.
        let pos = |p: &Path| policy.mounts.iter().position(|m| m.path == p).unwrap();
        assert!(pos(&project) < pos(&project.join(".git/hooks")));
    }

    #[test]
    fn a_project_that_contains_the_home_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home/alice");
        std::fs::create_dir_all(&home).unwrap();
        let mut req = request(&home);
        req.caller_home = home.clone();
        let err = Policy::build(&req).unwrap_err().to_string();
        assert!(err.contains("home directory"), "{err}");
        req.cwd = dir.path().join("home");
        assert!(
            Policy::build(&req).is_err(),
            "a parent of the home is refused too"
        );
        req.cwd = home.clone();
        std::fs::create_dir_all(home.join("src/repro")).unwrap();
        req.cwd = home.join("src/repro");
        assert!(
            Policy::build(&req).is_ok(),
            "a project inside the home is fine"
        );
        req.read_only = vec![home.clone()];
        assert!(Policy::build(&req).is_err(), "--ro ~ is refused");
    }

    #[test]
    fn dns_follows_a_resolv_conf_symlink_into_run() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("stub-resolv.conf");
        std::fs::write(&target, "nameserver 127.0.0.53\n").unwrap();
        let link = dir.path().join("resolv.conf");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let m = resolv_conf_target(&link).expect("a symlink outside /etc is bound");
        assert_eq!(m.path, std::fs::canonicalize(&target).unwrap());
        assert_eq!(m.kind, MountKind::ReadOnly);
        assert!(
            resolv_conf_target(&target).is_none(),
            "a plain file needs nothing"
        );
    }

    #[test]
    fn masks_go_only_where_the_sandbox_user_could_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "x").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            !readable_by_sandbox(&secret, true),
            "a root caller's sandbox is `other`"
        );
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(readable_by_sandbox(&secret, true));
        assert!(
            readable_by_sandbox(&secret, false),
            "the caller can read its own file"
        );
        assert!(!readable_by_sandbox(&dir.path().join("missing"), false));
    }

    #[test]
    fn symlinked_hooks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join(".git/hooks")).unwrap();
        let err = Policy::build(&request(dir.path())).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
    }

    #[test]
    fn root_caller_runs_as_nobody_outside() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        req.caller_uid = 0;
        req.caller_gid = 0;
        let policy = Policy::build(&req).unwrap();
        assert_ne!(policy.identity.uid, 0);
        assert_eq!(policy.identity.host_uid, ROOT_CALLER_HOST_ID);
    }

    #[test]
    fn toolchains_go_inside_the_fresh_home_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let home = std::fs::canonicalize(dir.path()).unwrap().join("alice");
        for d in [".rustup", ".cargo/bin", ".pyenv"] {
            std::fs::create_dir_all(home.join(d)).unwrap();
        }
        std::fs::write(home.join(".cargo/credentials.toml"), "token").unwrap();
        let project = tempfile::tempdir().unwrap();
        let mut req = request(project.path());
        req.caller_home = home.clone();
        req.toolchains = true;
        req.read_only = vec![home.join(".pyenv")];
        let policy = Policy::build(&req).unwrap();
        let at = |p: &Path| policy.mounts.iter().position(|m| m.path == p);
        let rustup = at(&home.join(".rustup")).expect("rustup is shown");
        assert!(at(&home).unwrap() < rustup, "the home comes first");
        assert_eq!(policy.mounts[rustup].kind, MountKind::ReadOnly);
        assert!(at(&home.join(".cargo/bin")).is_some() && at(&home.join(".cargo")).is_none());
        let pyenv: Vec<_> = policy
            .mounts
            .iter()
            .filter(|m| m.path == home.join(".pyenv"))
            .collect();
        assert_eq!(pyenv.len(), 1, "--ro ~/.pyenv and the toolchain: one mount");
        assert_eq!(
            policy.env["RUSTUP_HOME"],
            home.join(".rustup").to_string_lossy()
        );

        req.toolchains = false;
        let policy = Policy::build(&req).unwrap();
        assert!(!policy.mounts.iter().any(|m| m.why.starts_with("toolchain")));
        assert!(!policy.env.contains_key("RUSTUP_HOME"));
    }

    #[test]
    fn policy_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let mut policy = Policy::build(&request(dir.path())).unwrap();
        let text = policy.to_toml().unwrap();
        let back: Policy = toml::from_str(&text).unwrap();
        policy.scans.clear(); // the walks are not part of the printed policy
        assert_eq!(back, policy);
    }
}
