//! How showing a host path exposes it: the places that hold the caller's secrets or other users'
//! files, the system directories, the secrets inside `/etc`, and what the sandbox's user could
//! read at all.
//!
//! Guarantee: [`exposes`] names every secret place that showing a path would show (the path is
//! one, or contains one); [`readable_by_sandbox`] answers for the sandbox's user, not the
//! caller, so a mask is placed wherever, and only where, the sandbox could otherwise read.
//! Everything here only reads the host (metadata, `readlink`, directory listings).

use std::path::{Path, PathBuf};

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

/// `p` canonical, or a usage error naming it as `what`.
pub(crate) fn canonical(p: &Path, what: &str) -> Result<PathBuf> {
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
