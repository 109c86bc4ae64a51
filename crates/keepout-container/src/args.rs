//! The [`Policy`] as the engine's exact argument list: a pure function ([`run_args`]) whose
//! whole output the unit tests assert.
//!
//! The image replaces the host's system (`/usr`, `/etc`, `/opt`, the toolchains: the request is
//! made without them, see [`crate::adapt_request`]); everything else the policy shows is shown
//! the same way: the project at its own path read-write, every protected name in it read-only
//! (the policy's own `protected` list and pinned mounts: the builder decides, this translates),
//! the sockets it masks masked, a fresh tmpfs home at the same path, a fresh /tmp, only the
//! policy's environment (the image's own `PATH` instead of the host's), a non-root user, no
//! capabilities, no new privileges, a read-only root, the limits, no network.

use std::path::{Path, PathBuf};

use keepout_sandbox::{MountKind, Network, Policy};

use crate::engine::{Engine, EngineKind};
use crate::error::{Error, Result};

/// Where the image's own system is: what the policy shows there is the host's, and the image
/// replaces it.
const SYSTEM_ROOTS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/dev",
    "/proc", "/sys", "/run", "/var/tmp",
];

/// The policy's variables the container does not get: the host's `PATH` names the host's
/// directories; the image's own `PATH` applies.
const NOT_PASSED: &[&str] = &["PATH"];

/// What one run needs besides the policy.
pub struct Invocation<'a> {
    pub engine: &'a Engine,
    pub image: &'a str,
    /// The container's name (`keepout-<random>`), so that it can be removed.
    pub name: &'a str,
    /// Allocate a terminal (`-t`): stdin and stdout are terminals.
    pub tty: bool,
    /// The seccomp profile to pass (the engine's with keepout's deny list); `None`: the
    /// engine's default.
    pub seccomp: Option<&'a Path>,
    /// Is this host path a directory? (A masked directory is an empty tmpfs, a masked file
    /// `/dev/null`.)
    pub is_dir: &'a dyn Fn(&Path) -> bool,
    /// (the mount's path, where its idmapped copy is attached): a root caller's writable binds
    /// for a rootful engine, bound from there instead (see [`crate::Plan`]).
    pub rebound: &'a [(PathBuf, PathBuf)],
}

/// Can the engine be told never to detach (`--detach-keys ""`)? A local podman only.
pub fn detach_keys_disabled(engine: &Engine) -> bool {
    engine.kind == EngineKind::Podman && !engine.remote
}

fn system(path: &Path) -> bool {
    SYSTEM_ROOTS.iter().any(|root| path.starts_with(root))
}

/// `path`, when the engine's `SRC:DST:OPTS` syntax can carry it (UTF-8, no ':' or ',').
fn no_separator(path: &Path) -> Result<&Path> {
    match path.to_str() {
        Some(s) if !s.contains(':') && !s.contains(',') => Ok(path),
        _ => Err(Error::PathSyntax { path: path.into() }),
    }
}

/// `-v SRC:DST:OPTS`, refusing what that syntax cannot carry.
fn volume(src: &Path, dst: &Path, opts: &str) -> Result<[String; 2]> {
    no_separator(src)?;
    no_separator(dst)?;
    Ok([
        "--volume".into(),
        format!("{}:{}:{opts}", src.display(), dst.display()),
    ])
}

fn tmpfs(dst: &Path, opts: &str) -> Result<[String; 2]> {
    let s = no_separator(dst)?.display();
    Ok(["--tmpfs".into(), format!("{s}:{opts}")])
}

/// Everything after the engine's program: its global options, `run`, the options that enforce
/// `policy`, the image and the command.
pub fn run_args(policy: &Policy, inv: &Invocation) -> Result<Vec<String>> {
    if policy.mode != keepout_sandbox::Mode::Namespaces {
        // Landlock mode is the native backend's fallback; a container is a backend of its own.
        return Err(Error::NotYet {
            what: "--mode landlock".into(),
        });
    }
    let engine = inv.engine;
    let podman = engine.kind == EngineKind::Podman;
    let proxied = matches!(policy.network, Network::Proxied { .. });
    if proxied && (!podman || engine.remote) {
        // The proxy's port is put into the container's network namespace from this host
        // between `podman init` and `podman start` (see `crate::run`).
        return Err(Error::NotYet {
            what: format!(
                "--net NAMES (keepout's proxy) and {}{}",
                if engine.remote { "a remote " } else { "" },
                engine.name()
            ),
        });
    }
    let mut a: Vec<String> = engine.global_args();
    let mut push = |words: &[&str]| a.extend(words.iter().map(|w| w.to_string()));
    push(&[
        // Made, then started once the proxy's port is in it (`start_args`).
        if proxied { "create" } else { "run" },
        "--rm",
        "--name",
        inv.name,
        "--pull",
        "never",
        "--interactive",
    ]);
    if inv.tty {
        push(&["--tty"]);
    }
    if detach_keys_disabled(engine) && !proxied {
        // Never detach on a key the command's input may hold (a remote podman refuses "": its
        // container is removed after the run whatever happened, see `crate::run`).
        push(&["--detach-keys", ""]);
    }
    if podman {
        // Never pass the engine's own proxy variables (podman's --http-proxy copies the
        // caller's HTTP_PROXY...).
        push(&["--http-proxy=false"]);
    }
    // An init as pid 1: signals reach the command, its orphans are reaped.
    push(&["--init"]);
    let id = &policy.identity;
    let user = format!("{}:{}", id.host_uid, id.host_gid);
    if podman && engine.rootless {
        // The caller's own ids inside, so the project keeps its owner.
        push(&["--userns", "keep-id"]);
    }
    push(&["--user", &user]);
    push(&["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]);
    if let Some(profile) = inv.seccomp {
        push(&["--security-opt", &format!("seccomp={}", profile.display())]);
    }
    push(&["--read-only"]);
    if podman {
        // No tmpfs of the engine's choosing; no /sys (the native sandbox has none: the host's
        // devices and kernel settings), an empty read-only directory instead.
        push(&["--read-only-tmpfs=false", "--security-opt", "mask=/sys"]);
    }
    match policy.network {
        Network::None => push(&["--network", "none"]),
        Network::Host => push(&["--network", "host"]),
        // Only its own loopback, where keepout's proxy listens (`crate::run`); the proxy
        // variables in the policy's environment point there.
        Network::Proxied { .. } => push(&["--network", "none"]),
    }
    push(&["--ipc", "private"]);
    let limits = &policy.limits;
    let nproc = limits.max_processes.min(engine.nproc_hard);
    let nofile = engine.nofile;
    push(&[
        "--ulimit",
        &format!("nofile={nofile}:{nofile}"),
        "--ulimit",
        &format!("nproc={nproc}:{nproc}"),
    ]);
    if !limits.core_dumps {
        push(&["--ulimit", "core=0:0"]);
    }
    // Rootless containers on cgroups v1 get no cgroup: the process limit is RLIMIT_NPROC alone.
    let cgroups = !(engine.rootless && engine.cgroups_v1);
    if cgroups {
        push(&["--pids-limit", &limits.max_processes.to_string()]);
    }
    if let Some(bytes) = limits.memory_bytes {
        if !cgroups {
            return Err(Error::Unenforceable {
                what: "--memory".into(),
                why: "rootless containers get no memory cgroup on cgroups v1 or hybrid".into(),
            });
        }
        let b = format!("{bytes}b");
        push(&["--memory", &b, "--memory-swap", &b]);
    }
    let home_owner = if podman {
        "U".to_string()
    } else {
        format!("uid={},gid={}", id.host_uid, id.host_gid)
    };
    let mut pinned: Vec<PathBuf> = Vec::new();
    for m in &policy.mounts {
        let rebound = inv.rebound.iter().find(|(path, _)| *path == m.path);
        let rebound = rebound.map(|(_, attached)| attached.as_path());
        let src = m.source.as_deref().unwrap_or(&m.path);
        let words = match &m.kind {
            MountKind::Dev | MountKind::Proc | MountKind::Text { .. } => continue,
            MountKind::Symlink { .. } if m.path == Path::new("/var/tmp") => {
                tmpfs(&m.path, "rw,nosuid,nodev,size=64m,mode=1777")?
            }
            MountKind::Symlink { .. } => continue,
            MountKind::Tmpfs { size_mib } => {
                let opts = if m.path == policy.home_path {
                    format!("rw,nosuid,nodev,size={size_mib}m,mode=0700,{home_owner}")
                } else if m.path == Path::new("/tmp") {
                    format!("rw,nosuid,nodev,size={size_mib}m,mode=1777")
                } else {
                    format!("rw,nosuid,nodev,size={size_mib}m,mode=0755")
                };
                tmpfs(&m.path, &opts)?
            }
            MountKind::ReadOnly | MountKind::Masked if system(&m.path) => continue,
            MountKind::ReadOnly => volume(src, &m.path, "ro")?,
            MountKind::Masked if (inv.is_dir)(&m.path) => {
                tmpfs(&m.path, "ro,nosuid,nodev,noexec,size=4k,mode=0555")?
            }
            MountKind::Masked => volume(Path::new("/dev/null"), &m.path, "ro")?,
            MountKind::Pinned => {
                pinned.push(m.path.clone());
                volume(rebound.unwrap_or(src), &m.path, "ro")?
            }
            MountKind::ReadWrite | MountKind::Kept => {
                volume(rebound.unwrap_or(src), &m.path, "rw")?
            }
            // `--review`: the project the lower layer, the run's writes in the review's upper
            // directory (podman's overlay volume; a workspace's several layers it cannot do).
            MountKind::Overlay { layers, work, .. } => match &layers[..] {
                [project] if podman => {
                    let upper = no_separator(src)?.display();
                    let work = no_separator(work)?.display();
                    volume(
                        rebound.unwrap_or(project),
                        &m.path,
                        &format!("O,upperdir={upper},workdir={work}"),
                    )?
                }
                _ => {
                    return Err(Error::NotYet {
                        what: match podman {
                            true => format!(
                                "a workspace on {} layers (podman's overlay volume takes one)",
                                layers.len()
                            ),
                            false => format!("--review and {}", engine.name()),
                        },
                    })
                }
            },
        };
        a.extend(words);
    }
    // Every protected name that exists is read-only, whether or not the builder listed it as a
    // mount (it does: this keeps the guarantee if that ever changes).
    for p in &policy.protected {
        if p.exists && !pinned.contains(&p.path) {
            a.extend(volume(&p.path, &p.path, "ro")?);
        }
    }
    for (k, v) in &policy.env {
        if !NOT_PASSED.contains(&k.as_str()) {
            a.extend(["--env".to_string(), format!("{k}={v}")]);
        }
    }
    a.extend(["--workdir".to_string(), policy.cwd.display().to_string()]);
    a.push(inv.image.to_string());
    a.extend(policy.command.iter().cloned());
    Ok(a)
}

/// After `create` (a proxied run): the engine's arguments that start container `name` with the
/// caller's input and output attached, never detaching on a key the input may hold.
pub fn start_args(engine: &Engine, name: &str) -> Vec<String> {
    let mut a = engine.global_args();
    a.extend(["start", "--attach", "--interactive"].map(String::from));
    if detach_keys_disabled(engine) {
        a.extend(["--detach-keys".to_string(), String::new()]);
    }
    a.push(name.to_string());
    a
}
