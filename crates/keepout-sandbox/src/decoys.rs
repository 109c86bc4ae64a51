//! Decoy credentials: a fresh home for the sandbox, holding fake `~/.ssh/id_ed25519`,
//! `~/.netrc`, `~/.aws/credentials`, `~/.pypirc` and `~/.config/gh/hosts.yml`, whose opens are
//! watched from outside the sandbox (inotify on the host side of the bind mount).
//!
//! The values match no real host or account (`.invalid` names, `keepout-decoy-` tokens), so a
//! decoy that leaks harms nobody; what matters is that keepout learns the code went looking.
//! Each run gets new values (a random tag), so a leaked decoy names the run that leaked it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::inotify;

/// The planted home and the watch on its decoys.
pub struct Decoys {
    /// The fresh home keepout made ([`Decoys::plant`]); `None` for a kept home that is watched
    /// ([`Decoys::watch`]).
    dir: Option<tempfile::TempDir>,
    home: PathBuf,
    inotify: OwnedFd,
    /// Watch descriptor -> the decoy's path relative to the home.
    watches: Vec<(i32, &'static str)>,
}

const DECOYS: &[(&str, &str)] = &[
    (
        ".ssh/id_ed25519",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nkeepout-decoy-TAG\n-----END OPENSSH PRIVATE KEY-----\n",
    ),
    (
        ".netrc",
        "machine git.decoy.invalid login decoy password keepout-decoy-TAG\n",
    ),
    (
        ".aws/credentials",
        "[default]\naws_access_key_id = AKIAKEEPOUTDECOY0000\naws_secret_access_key = keepout-decoy-TAG\n",
    ),
    (
        ".pypirc",
        "[pypi]\nrepository = https://upload.decoy.invalid/\nusername = __token__\npassword = keepout-decoy-TAG\n",
    ),
    (
        ".config/gh/hosts.yml",
        "github.decoy.invalid:\n    oauth_token: keepout-decoy-TAG\n    user: decoy\n",
    ),
];

impl Decoys {
    /// Plant the decoys in a new private directory (to be the sandbox's `--home`).
    pub fn plant() -> std::io::Result<Decoys> {
        let dir = tempfile::Builder::new().prefix("keepout-home-").tempdir()?;
        // The temporary directory's random name doubles as the run's tag.
        let tag = dir
            .path()
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_start_matches("keepout-home-")
                    .to_string()
            })
            .unwrap_or_default();
        plant_into(dir.path(), &tag, None)?;
        let mut decoys = Decoys::watch(&[dir.path().to_path_buf()])?;
        decoys.dir = Some(dir);
        Ok(decoys)
    }

    /// Watch the decoys found in a kept home: `dirs` are what the sandbox's home is made of,
    /// topmost first (a workspace's home, then its layers); each decoy is watched where the
    /// sandbox sees it, the topmost copy.
    pub fn watch(dirs: &[PathBuf]) -> std::io::Result<Decoys> {
        let inotify =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let mut watches = Vec::new();
        for (rel, _) in DECOYS {
            let Some(path) = dirs
                .iter()
                .map(|d| d.join(rel))
                .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
            else {
                continue;
            };
            let wd = inotify::add_watch(
                &inotify,
                path,
                inotify::WatchFlags::OPEN | inotify::WatchFlags::ACCESS,
            )?;
            watches.push((wd, *rel));
        }
        Ok(Decoys {
            dir: None,
            home: dirs.first().cloned().unwrap_or_default(),
            inotify,
            watches,
        })
    }

    /// The directory to use as the sandbox's home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The decoys opened since they were planted, as `~/REL`, each once.
    pub fn opened(&self) -> Vec<PathBuf> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 8192];
        let mut reader = inotify::Reader::new(&self.inotify, &mut buf);
        let mut seen: Vec<&'static str> = Vec::new();
        while let Ok(event) = reader.next() {
            if let Some((_, rel)) = self.watches.iter().find(|(wd, _)| *wd == event.wd()) {
                if !seen.contains(rel) {
                    seen.push(rel);
                }
            }
        }
        seen.into_iter().map(|r| Path::new("~").join(r)).collect()
    }
}

/// Plant the decoys (those not there yet) in `home`, tagged `tag`, readable by their owner only;
/// `owner`: the uid and gid to give them (a root caller's kept home belongs to the sandbox's
/// user).
pub fn plant_into(home: &Path, tag: &str, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, text) in DECOYS {
        let path = home.join(rel);
        if std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        let parent = path.parent().expect("decoys are in directories or home");
        let mut made = Vec::new();
        for dir in parent.ancestors().take_while(|d| *d != home) {
            if !dir.exists() {
                made.push(dir.to_path_buf());
            }
        }
        std::fs::create_dir_all(parent)?;
        std::fs::write(&path, text.replace("TAG", tag))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = owner {
            for p in made.iter().chain([&path]) {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
            }
        }
    }
    Ok(())
}
