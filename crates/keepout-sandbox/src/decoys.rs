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
    dir: tempfile::TempDir,
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
        for (rel, text) in DECOYS {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("decoys are in directories or home"))?;
            std::fs::write(&path, text.replace("TAG", &tag))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        let inotify =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let mut watches = Vec::new();
        for (rel, _) in DECOYS {
            let wd = inotify::add_watch(
                &inotify,
                dir.path().join(rel),
                inotify::WatchFlags::OPEN | inotify::WatchFlags::ACCESS,
            )?;
            watches.push((wd, *rel));
        }
        Ok(Decoys {
            dir,
            inotify,
            watches,
        })
    }

    /// The directory to use as the sandbox's home.
    pub fn home(&self) -> &Path {
        self.dir.path()
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
