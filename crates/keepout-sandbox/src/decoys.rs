//! Decoy credentials: a fresh home for the sandbox, holding fake `~/.ssh/id_ed25519`,
//! `~/.netrc`, `~/.aws/credentials`, `~/.pypirc` and `~/.config/gh/hosts.yml`, whose opens are
//! watched from outside the sandbox (inotify on the host side of the bind mount).
//!
//! The values match no real host or account (`.invalid` names, `keepout-decoy-` tokens), so a
//! decoy that leaks harms nobody; what matters is that keepout learns the code went looking.
//! Each value is `keepout-decoy-TAG-RANDOM`: the tag names the run (or workspace) that planted
//! it, and RANDOM (24 random characters, new for each file) makes it a value no traffic carries
//! by chance, so keepout's proxy can watch for it ([`Decoys::values`]): a decoy's value in a
//! request is proof of theft, where a read alone is not (pip reads `~/.netrc` on every
//! install: [`DecoyRead::ordinary`] says which reads ordinary tools make).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::inotify;
use serde::Serialize;

/// The planted home and the watch on its decoys.
pub struct Decoys {
    /// The fresh home keepout made ([`Decoys::plant`]); `None` for a kept home that is watched
    /// ([`Decoys::watch`]).
    dir: Option<tempfile::TempDir>,
    home: PathBuf,
    inotify: OwnedFd,
    /// Watch descriptor -> the decoy's path relative to the home.
    watches: Vec<(i32, &'static str)>,
    values: Vec<DecoyValue>,
}

/// A decoy's secret value, for the proxy to watch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoyValue {
    /// The decoy, as `~/REL`.
    pub decoy: String,
    pub value: String,
    /// Its random part, whose pieces are watched for too (`None` in decoys planted before
    /// values had one).
    pub random: Option<String>,
}

/// A decoy that was opened, and whether ordinary tools open it on their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecoyRead {
    /// The decoy, as `~/REL`.
    pub path: PathBuf,
    /// `ordinary` (tools read it on their own: not an alarm) or `unexpected`.
    pub kind: ReadKind,
    /// Who reads it as a matter of course, for an ordinary read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordinary: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadKind {
    Ordinary,
    Unexpected,
}

/// Decoys that ordinary tools read on their own, and which tools.
const ORDINARY_READS: &[(&str, &str)] = &[(
    ".netrc",
    "pip, curl and git read it on their own, for HTTP logins",
)];

const DECOYS: &[(&str, &str)] = &[
    (
        ".ssh/id_ed25519",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nVALUE\n-----END OPENSSH PRIVATE KEY-----\n",
    ),
    (
        ".netrc",
        "machine git.decoy.invalid login decoy password VALUE\n",
    ),
    (
        ".aws/credentials",
        "[default]\naws_access_key_id = AKIAKEEPOUTDECOY0000\naws_secret_access_key = VALUE\n",
    ),
    (
        ".pypirc",
        "[pypi]\nrepository = https://upload.decoy.invalid/\nusername = __token__\npassword = VALUE\n",
    ),
    (
        ".config/gh/hosts.yml",
        "github.decoy.invalid:\n    oauth_token: VALUE\n    user: decoy\n",
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
        let mut values = Vec::new();
        for (rel, _) in DECOYS {
            let Some(path) = dirs
                .iter()
                .map(|d| d.join(rel))
                .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
            else {
                continue;
            };
            // Read before the watch is set: keepout's own read is not the code's.
            if let Some(text) = read_decoy(&path) {
                values.extend(values_in(&text, rel));
            }
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
            values,
        })
    }

    /// The decoys' secret values (read when the watch began), for the proxy to watch for.
    pub fn values(&self) -> &[DecoyValue] {
        &self.values
    }

    /// The directory to use as the sandbox's home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Give the home keepout planted (never a kept one) to `uid`:`gid`, for a backend whose
    /// command runs as that host user without idmapped mounts (a root caller's rootful
    /// container runs as nobody): the fake credentials must be readable there to be read.
    pub fn give_to(&self, uid: u32, gid: u32) -> crate::Result<()> {
        fn walk(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
            if std::fs::symlink_metadata(path)?.is_dir() {
                for entry in std::fs::read_dir(path)? {
                    walk(&entry?.path(), uid, gid)?;
                }
            }
            Ok(())
        }
        match &self.dir {
            Some(_) => walk(&self.home, uid, gid).map_err(|e| crate::Error::io(&self.home, e)),
            None => Ok(()),
        }
    }

    /// The decoys opened since they were planted, each once, with whether that is a read
    /// ordinary tools make.
    pub fn opened(&self) -> Vec<DecoyRead> {
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
        seen.into_iter()
            .map(|rel| {
                let ordinary = ORDINARY_READS
                    .iter()
                    .find(|(r, _)| *r == rel)
                    .map(|(_, who)| *who);
                DecoyRead {
                    path: Path::new("~").join(rel),
                    kind: if ordinary.is_some() {
                        ReadKind::Ordinary
                    } else {
                        ReadKind::Unexpected
                    },
                    ordinary,
                }
            })
            .collect()
    }
}

/// A decoy's text, at most 64 KiB of it, when it is a regular file. A kept home is the
/// sandbox's to change: a decoy replaced by a symlink, a FIFO or a huge file between runs is
/// not followed, does not block, and is not read whole.
fn read_decoy(path: &Path) -> Option<String> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let stat = rustix::fs::fstat(&fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The secret values in a decoy's text: each `keepout-decoy-...` token, and the fixed decoy
/// AWS key id.
fn values_in(text: &str, rel: &str) -> Vec<DecoyValue> {
    let decoy = format!("~/{rel}");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("keepout-decoy-") {
        let token: String = rest[i..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        rest = &rest[i + token.len()..];
        let random = token
            .rsplit('-')
            .next()
            .filter(|r| r.len() >= RANDOM_LEN)
            .map(str::to_string);
        out.push(DecoyValue {
            decoy: decoy.clone(),
            value: token,
            random,
        });
    }
    if text.contains(AWS_KEY_ID) {
        out.push(DecoyValue {
            decoy,
            value: AWS_KEY_ID.into(),
            random: None,
        });
    }
    out
}

/// The decoy AWS access key id (fixed: it has to look like one).
const AWS_KEY_ID: &str = "AKIAKEEPOUTDECOY0000";

/// The length of a value's random part.
const RANDOM_LEN: usize = 24;

/// `RANDOM_LEN` random lowercase letters and digits.
fn random_part() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; RANDOM_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// Plant the decoys (those not there yet) in `home`, tagged `tag` (each value also gets a random
/// part of its own), readable by their owner only;
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
        let value = format!("keepout-decoy-{tag}-{}", random_part()?);
        std::fs::write(&path, text.replace("VALUE", &value))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = owner {
            for p in made.iter().chain([&path]) {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_random_per_file_and_reads_have_kinds() {
        let home = tempfile::tempdir().unwrap();
        plant_into(home.path(), "t1", None).unwrap();
        let decoys = Decoys::watch(&[home.path().to_path_buf()]).unwrap();
        let values = decoys.values();
        // Five tokens, one per file, and the AWS key id.
        assert_eq!(values.len(), 6, "{values:?}");
        let randoms: Vec<&str> = values.iter().filter_map(|v| v.random.as_deref()).collect();
        assert_eq!(randoms.len(), 5, "{values:?}");
        for r in &randoms {
            assert_eq!(r.len(), RANDOM_LEN);
            assert_eq!(randoms.iter().filter(|o| *o == r).count(), 1, "distinct");
        }
        let netrc = values.iter().find(|v| v.decoy == "~/.netrc").unwrap();
        assert!(netrc.value.starts_with("keepout-decoy-t1-"), "{netrc:?}");
        // keepout's own read (above) is not reported; the code's are, with their kinds.
        assert!(decoys.opened().is_empty());
        std::fs::read(home.path().join(".netrc")).unwrap();
        std::fs::read(home.path().join(".aws/credentials")).unwrap();
        let opened = decoys.opened();
        assert_eq!(
            opened
                .iter()
                .map(|r| (r.path.display().to_string(), r.kind))
                .collect::<Vec<_>>(),
            [
                ("~/.netrc".to_string(), ReadKind::Ordinary),
                ("~/.aws/credentials".to_string(), ReadKind::Unexpected)
            ]
        );
    }

    #[test]
    fn a_decoy_replaced_by_a_fifo_or_a_symlink_is_not_read() {
        let home = tempfile::tempdir().unwrap();
        plant_into(home.path(), "t2", None).unwrap();
        let netrc = home.path().join(".netrc");
        std::fs::remove_file(&netrc).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &netrc,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(read_decoy(&netrc), None, "a FIFO: no read, no hang");
        let pypirc = home.path().join(".pypirc");
        std::fs::remove_file(&pypirc).unwrap();
        std::os::unix::fs::symlink(home.path().join(".aws/credentials"), &pypirc).unwrap();
        assert_eq!(read_decoy(&pypirc), None, "a symlink is not followed");
    }
}
