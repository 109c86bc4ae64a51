//! How showing a host path exposes it: the places that hold the caller's secrets or other users'
//! files, the system directories, the secrets inside `/etc`, and what the sandbox's user could
//! read at all.
//!
//! Guarantee: [`exposes`] names every secret place that showing a path would show (the path is
//! one, or contains one); [`readable_by_sandbox`] answers for the sandbox's user, not the
//! caller, so a mask is placed wherever, and only where, the sandbox could otherwise read.
//! Everything here only reads the host (metadata, `readlink`, directory listings).
//!
//! [`canonicalize`] is `std::fs::canonicalize` that, while a build holds [`RememberDirs`],
//! resolves each directory once: a build resolves many paths in few directories (`/etc`,
//! `/etc/ssh`, the home), and glibc's realpath asks the kernel about every component of every
//! one of them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

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
    if let Ok(home) = canonicalize(caller_home) {
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
        if let Some(dir) = dir.and_then(|d| canonicalize(&d).ok()) {
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

/// `masks` made concrete: each `*` prefix expanded in its directory, each symlink resolved; only
/// what is inside a system directory (elsewhere it is not visible anyway).
pub(crate) fn expand_masks(masks: &[&str]) -> Vec<PathBuf> {
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
            let Ok(real) = canonicalize(&p) else {
                continue;
            };
            if SYSTEM_PATHS.iter().any(|s| real.starts_with(s)) && !out.contains(&real) {
                out.push(real);
            }
        }
    }
    out
}

/// A directory's canonical form, or the error (its raw number) resolving it gave.
type Resolved = std::result::Result<PathBuf, i32>;

thread_local! {
    /// The directories [`canonicalize`] resolved on this thread while [`RememberDirs`] lives.
    static DIRS: RefCell<Option<HashMap<PathBuf, Resolved>>> = const { RefCell::new(None) };
}

/// While it lives, [`canonicalize`] on this thread remembers the directories it resolves.
/// Held for one policy build (a fraction of a millisecond): a directory renamed or retargeted
/// meanwhile is the same race that resolving each path afresh would have.
pub(crate) struct RememberDirs(());

impl RememberDirs {
    pub(crate) fn start() -> RememberDirs {
        DIRS.with(|d| *d.borrow_mut() = Some(HashMap::new()));
        RememberDirs(())
    }
}

impl Drop for RememberDirs {
    fn drop(&mut self) {
        DIRS.with(|d| *d.borrow_mut() = None);
    }
}

/// `std::fs::canonicalize(p)`. While [`RememberDirs`] lives: `p`'s directory resolved (once
/// per directory), then one look at `p` itself there, a symlink resolved in full. A path that
/// is relative, has `.` or `..`, or ends in `/`, is left to std.
pub(crate) fn canonicalize(p: &Path) -> io::Result<PathBuf> {
    let remembering = DIRS.with(|d| d.borrow().is_some());
    let plain = p.is_absolute()
        && !p.as_os_str().as_encoded_bytes().ends_with(b"/")
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let (Some(parent), Some(name), true, true) = (p.parent(), p.file_name(), remembering, plain)
    else {
        return std::fs::canonicalize(p);
    };
    let known = DIRS.with(|d| d.borrow().as_ref().and_then(|m| m.get(parent).cloned()));
    let dir = match known {
        Some(resolved) => resolved,
        None => {
            let resolved = canonicalize(parent).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO));
            DIRS.with(|d| {
                if let Some(m) = d.borrow_mut().as_mut() {
                    m.insert(parent.to_path_buf(), resolved.clone());
                }
            });
            resolved
        }
    }
    .map_err(io::Error::from_raw_os_error)?;
    let candidate = dir.join(name);
    match std::fs::symlink_metadata(&candidate) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&candidate),
        Ok(_) => Ok(candidate),
        Err(e) => Err(e),
    }
}

/// `p` canonical, or a usage error naming it as `what`.
pub(crate) fn canonical(p: &Path, what: &str) -> Result<PathBuf> {
    canonicalize(p).map_err(|e| {
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

    /// With directories remembered, every path resolves as std's canonicalize resolves it:
    /// symlinked directories and files, dangling and looping links, a file used as a
    /// directory, `..`, a trailing `/`, a missing parent; asked twice, so that the second
    /// answer comes from what was remembered.
    #[test]
    fn remembered_resolution_is_stds() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::write(root.join("real/sub/file"), "x").unwrap();
        std::fs::write(root.join("real/other"), "y").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        std::os::unix::fs::symlink("sub/file", root.join("real/rel")).unwrap();
        std::os::unix::fs::symlink("../other", root.join("real/sub/up")).unwrap();
        std::os::unix::fs::symlink("nowhere", root.join("real/dangling")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("real/loop")).unwrap();
        let asked = [
            "real/sub/file",
            "link/sub/file",
            "link/rel",
            "link/sub/up",
            "real/dangling",
            "real/loop",
            "real/other/x",
            "real/sub/../other",
            "real/sub/file/",
            "missing/file",
            "link/missing",
            "link",
        ];
        let _remember = RememberDirs::start();
        for round in 0..2 {
            for rel in asked {
                let p = root.join(rel);
                let ours = canonicalize(&p).map_err(|e| e.raw_os_error());
                let std = std::fs::canonicalize(&p).map_err(|e| e.raw_os_error());
                assert_eq!(ours, std, "{rel} (round {round})");
            }
        }
    }
}
