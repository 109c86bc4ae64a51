//! Credentials outside the home (threat A19): system-wide files that tools read for every user
//! and that carry tokens (`/etc/pip.conf` with `index-url = https://user:password@...`,
//! `/etc/gitconfig` with `http.extraHeader = Authorization: ...`, a global `npmrc` with
//! `_authToken`, `/etc/environment` exporting one). The sandbox shows `/etc`, `/usr` and `/opt`,
//! so it would show these.
//!
//! [`mounts`] examines each file of [`keepout_credentials::system::CATALOGUE`] that exists in a
//! system directory and that the sandbox's user could read, with the detector the audit uses
//! too ([`keepout_credentials::detect`]), and returns what goes over it:
//!
//! * no credentials: nothing; the file is seen as it is (pip still gets its `index-url`);
//! * credentials that can be taken out of the text: a [`MountKind::Text`] at the same path, the
//!   same text with only them removed (`index-url = https://pypi.internal/simple`), made in the
//!   sandbox's own memory by its init, read-only. No copy is ever written to the host, so
//!   nothing needs cleaning up and no other user can read it;
//! * otherwise (a netrc, a key file, a private key block, what is left still looks like a
//!   credential, a file over [`MAX_TEXT`], or more text than [`MAX_TOTAL`] in all): a
//!   [`MountKind::Masked`], an empty file.
//!
//! Each entry's `why` (shown by `--print-policy`) names the tool and what was found, never a
//! value. A redacted copy rather than a mask because these files carry settings that work
//! depends on (an internal index, a CA file, a proxy): hiding them would break the run in the
//! sandbox, and the copy only lacks what the detector removed. The file is read when the policy
//! is built, so what the sandbox sees is what `--print-policy` shows.
//!
//! Not covered: files not in the catalogue, credential shapes the detector does not know,
//! another name (a hard link) of the same file, and `--mode landlock` (Landlock cannot hide a
//! file inside a readable directory). A file only a group may read is left to its mode: for a
//! root caller the sandbox has no groups; an ordinary caller keeps its groups, and such a file is
//! examined like any other.
//!
//! [`MAX_TEXT`]: keepout_credentials::system::MAX_TEXT

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use keepout_credentials::detect::Verdict;
use keepout_credentials::system::{describe, examine_file, files_and_watch, Place, CATALOGUE};

use crate::path_safety::{readable_by_sandbox, SYSTEM_PATHS};
use crate::policy::{Mount, MountKind};

/// At most this much redacted text in one sandbox (it lives in a 1 MiB tmpfs); beyond it, masks.
pub const MAX_TOTAL: usize = 512 << 10;

/// The masks and redacted copies for the system's credential files (see the module docs).
/// `clean_cache`: a file where keepout remembers which of them it found clean, by identity
/// (see [`CleanCache`]), so that an unchanged clean file is not read again at the next run.
pub fn mounts(caller_is_root: bool, clean_cache: Option<&Path>) -> Vec<Mount> {
    let mut cache = CleanCache::load(clean_cache);
    let mounts = examine_all(caller_is_root, &mut cache);
    cache.save();
    mounts
}

fn examine_all(caller_is_root: bool, cache: &mut CleanCache) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut total = 0;
    // Many catalogue files share a directory (/etc, /etc/apt/apt.conf.d): each directory is
    // resolved and checked once.
    let mut dirs: HashMap<PathBuf, Option<(PathBuf, bool)>> = HashMap::new();
    for (place, path) in cache.files("/".as_ref()) {
        // A file found clean before, and the same file still (its identity, reached the same
        // way: a retargeted symlink is another identity), needs nothing: not even resolving.
        let stamp = std::fs::metadata(&path).ok().map(|m| Stamp::from(&m));
        if stamp.is_some_and(|s| cache.is_clean(&path, s)) {
            continue;
        }
        // Where it really is, when that is visible inside (a symlink to elsewhere leads nowhere).
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let Some((real_dir, dir_traversable)) = dirs
            .entry(parent.to_path_buf())
            .or_insert_with(|| {
                let real = std::fs::canonicalize(parent).ok()?;
                let traversable = traversable_by_sandbox(&real.join("x"), caller_is_root);
                Some((real, traversable))
            })
            .clone()
        else {
            continue;
        };
        let candidate = real_dir.join(name);
        // One stat per file: its identity, its type and its mode come from the same answer.
        let (real, meta) = match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                match std::fs::canonicalize(&candidate)
                    .and_then(|r| std::fs::metadata(&r).map(|m| (r, m)))
                {
                    Ok(found) => found,
                    Err(_) => continue,
                }
            }
            Ok(m) => (candidate, m),
            Err(_) => continue,
        };
        let traversable = if real.parent() == Some(real_dir.as_path()) {
            dir_traversable
        } else {
            traversable_by_sandbox(&real, caller_is_root)
        };
        if !SYSTEM_PATHS.iter().any(|s| real.starts_with(s))
            || seen.contains(&real)
            || !traversable
            || !readable(&real, &meta, caller_is_root)
        {
            continue;
        }
        seen.push(real.clone());

        // Unreadable to keepout but readable to the sandbox cannot happen (same user, or root);
        // if it did, hide it.
        let verdict = examine_file(&real, place.shape).unwrap_or(Verdict::Mask { hits: vec![] });
        if let (Verdict::Clean, Some(stamp)) = (&verdict, stamp) {
            cache.mark_clean(&path, stamp);
        }
        let (kind, why) = match verdict {
            Verdict::Clean => continue,
            Verdict::Redacted { text, hits } if total + text.len() <= MAX_TOTAL => {
                total += text.len();
                let why = format!(
                    "credentials outside the home: {} ({}) removed, the rest as on the host",
                    place.tool,
                    describe(&hits)
                );
                (MountKind::Text { content: text }, why)
            }
            Verdict::Redacted { hits, .. } | Verdict::Mask { hits } => {
                let found = if hits.is_empty() {
                    String::from("unreadable to keepout")
                } else {
                    describe(&hits)
                };
                let why = format!(
                    "credentials outside the home: {} ({found}), hidden",
                    place.tool
                );
                (MountKind::Masked, why)
            }
        };
        out.push(Mount {
            path: real,
            kind,
            source: None,
            why,
        });
    }
    out
}

/// A file's identity: what any change to it changes (device, inode, size, mtime, and ctime,
/// which no system call sets back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Stamp([i64; 6]);

impl Stamp {
    #[cfg(test)]
    fn of(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp::from(&m))
    }

    fn from(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp([
            m.dev() as i64,
            m.ino() as i64,
            m.size() as i64,
            m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            0,
        ])
    }
}

/// [`readable_by_sandbox`] for a file whose metadata is at hand: a root caller's sandbox
/// (`nobody`) reads by the "other" bits, an ordinary caller's by its own access check.
fn readable(path: &Path, meta: &std::fs::Metadata, caller_is_root: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    if caller_is_root {
        meta.is_file() && meta.mode() & 0o004 != 0
    } else {
        meta.is_file() && readable_by_sandbox(path, false)
    }
}

/// The system files keepout found clean, by identity: one line per file (`DEV INO SIZE MTIME
/// CTIME PATH`) under a header naming this keepout and its catalogue, kept in the caller's own
/// cache directory (never visible inside a sandbox). A file whose identity changed, and every
/// file after keepout or its catalogue changed, is examined again; only clean verdicts are
/// kept, so a file with credentials is examined at every run. A cache that cannot be read or
/// written only costs the reading.
struct CleanCache {
    path: Option<PathBuf>,
    header: String,
    known: HashMap<PathBuf, Stamp>,
    /// The catalogue files found last time (catalogue index, path), and the directories whose
    /// stamps tell they are still the same set (see [`files_and_watch`]).
    found: Vec<(usize, PathBuf)>,
    watched: Vec<(PathBuf, Stamp)>,
    changed: bool,
}

impl CleanCache {
    fn header() -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for place in CATALOGUE {
            place.path.hash(&mut h);
            format!("{:?}", place.shape).hash(&mut h);
        }
        keepout_credentials::detect::REVISION.hash(&mut h);
        3u32.hash(&mut h); // this file's format (clean entries by the path found)
        format!(
            "keepout-system-files-clean {} {:016x}",
            env!("CARGO_PKG_VERSION"),
            h.finish()
        )
    }

    /// `C DEV INO SIZE MTIME CTIME PATH`: a file found clean; `D ...`: a watched directory;
    /// `F INDEX PATH`: a catalogue file found.
    fn load(path: Option<&Path>) -> CleanCache {
        let mut cache = CleanCache {
            path: path.map(Path::to_path_buf),
            header: Self::header(),
            known: HashMap::new(),
            found: Vec::new(),
            watched: Vec::new(),
            changed: false,
        };
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return cache;
        };
        let mut lines = text.lines();
        if lines.next() != Some(cache.header.as_str()) {
            return cache;
        }
        for line in lines {
            let Some((tag, rest)) = line.split_once(' ') else {
                continue;
            };
            if tag == "F" {
                if let Some((i, p)) = rest.split_once(' ') {
                    if let Ok(i) = i.parse::<usize>() {
                        cache.found.push((i, PathBuf::from(p)));
                    }
                }
                continue;
            }
            let mut f = rest.splitn(6, ' ');
            let nums: Vec<i64> = (0..5).filter_map(|_| f.next()?.parse().ok()).collect();
            if let (5, Some(p)) = (nums.len(), f.next()) {
                let stamp = Stamp([nums[0], nums[1], nums[2], nums[3], nums[4], 0]);
                match tag {
                    "C" => {
                        cache.known.insert(PathBuf::from(p), stamp);
                    }
                    "D" => cache.watched.push((PathBuf::from(p), stamp)),
                    _ => {}
                }
            }
        }
        cache
    }

    /// The catalogue's files on this system: the remembered list while no watched directory
    /// changed, else found again (and remembered).
    fn files(&mut self, root: &Path) -> Vec<(&'static Place, PathBuf)> {
        let unchanged = !self.watched.is_empty()
            && self.watched.iter().all(|(dir, stamp)| {
                std::fs::symlink_metadata(dir).is_ok_and(|m| Stamp::from(&m) == *stamp)
            });
        if unchanged {
            let found: Option<Vec<_>> = self
                .found
                .iter()
                .map(|(i, p)| CATALOGUE.get(*i).map(|place| (place, p.clone())))
                .collect();
            if let Some(found) = found {
                return found;
            }
        }
        let (found, watch) = files_and_watch(Some(root), None);
        self.found = found
            .iter()
            .filter_map(|(place, p)| {
                // By content: a `const` slice's address is not the same in every crate.
                let i = CATALOGUE
                    .iter()
                    .position(|c| c.path == place.path && c.tool == place.tool)?;
                Some((i, p.clone()))
            })
            .collect();
        self.watched = watch
            .into_iter()
            .filter_map(|d| {
                let m = std::fs::symlink_metadata(&d).ok()?;
                Some((d, Stamp::from(&m)))
            })
            .collect();
        self.changed = true;
        found
    }

    fn is_clean(&self, path: &Path, stamp: Stamp) -> bool {
        self.known.get(path) == Some(&stamp)
    }

    fn mark_clean(&mut self, path: &Path, stamp: Stamp) {
        self.known.insert(path.to_path_buf(), stamp);
        self.changed = true;
    }

    /// Replace the file atomically (a temporary file renamed over it), when anything changed.
    fn save(&self) {
        let Some(path) = self.path.as_deref().filter(|_| self.changed) else {
            return;
        };
        let plain = |p: &Path| p.to_str().is_some_and(|t| !t.contains('\n'));
        let line = |tag: &str, p: &Path, s: &Stamp| {
            let [dev, ino, size, mtime, ctime, _] = s.0;
            format!("{tag} {dev} {ino} {size} {mtime} {ctime} {}\n", p.display())
        };
        let mut text = self.header.clone();
        text.push('\n');
        for (p, s) in self.known.iter().filter(|(p, _)| plain(p)) {
            text.push_str(&line("C", p, s));
        }
        for (p, s) in self.watched.iter().filter(|(p, _)| plain(p)) {
            text.push_str(&line("D", p, s));
        }
        for (i, p) in self.found.iter().filter(|(_, p)| plain(p)) {
            text.push_str(&format!("F {i} {}\n", p.display()));
        }
        let Some(dir) = path.parent() else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
            use std::io::Write;
            if tmp.write_all(text.as_bytes()).is_ok() {
                let _ = tmp.persist(path);
            }
        }
    }
}

/// Can the sandbox's user reach `path` through its directories? An ordinary caller's access
/// check (in [`readable_by_sandbox`]) covers it; a root caller's sandbox is `nobody`, which needs
/// `o+x` on each (a file in a 0700 directory is out of its reach: nothing to hide, and init,
/// as `nobody`, could not mount over it).
fn traversable_by_sandbox(path: &std::path::Path, caller_is_root: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    !caller_is_root
        || path
            .ancestors()
            .skip(1)
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0))
}

#[cfg(test)]
mod tests {
    use crate::policy::{Mount, MountKind, Policy};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_root_callers_sandbox_reaches_only_through_searchable_directories() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("private");
        std::fs::create_dir(&inner).unwrap();
        let file = inner.join("k3s.yaml");
        std::fs::write(&file, "token: x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!super::traversable_by_sandbox(&file, true));
        assert!(super::traversable_by_sandbox(&file, false));
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert!(super::traversable_by_sandbox(&file, true));
    }

    #[test]
    fn a_redacted_copy_round_trips_through_the_printed_policy() {
        let text = "[global]\nindex-url = https://pypi.internal/simple\n";
        let mount = Mount {
            path: "/etc/pip.conf".into(),
            kind: MountKind::Text {
                content: text.into(),
            },
            source: None,
            why: "credentials outside the home: pip".into(),
        };
        let printed = toml::to_string(&mount).unwrap();
        assert!(printed.contains("kind = \"text\""), "{printed}");
        let back: Mount = toml::from_str(&printed).unwrap();
        assert_eq!(back, mount);
        let _ = Policy::to_toml; // the policy prints its mounts the same way
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    /// A clean verdict is remembered by identity: kept across a save and a load, forgotten when
    /// the file changes (even to the same size, with its mtime set back), and not trusted from
    /// a cache of another header.
    #[test]
    fn clean_verdicts_are_remembered_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pip.conf");
        std::fs::write(
            &file,
            "[global]\nindex-url = https://pypi.internal/simple\n",
        )
        .unwrap();
        let cache_path = dir.path().join("cache/clean");
        let stamp = Stamp::of(&file).unwrap();
        let mut cache = CleanCache::load(Some(&cache_path));
        assert!(!cache.is_clean(&file, stamp));
        cache.mark_clean(&file, stamp);
        cache.save();
        let cache = CleanCache::load(Some(&cache_path));
        assert!(cache.is_clean(&file, stamp), "kept across save and load");

        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(
            &file,
            "[global]\nindex-url = https://u:p@pypi.internal/simpl\n",
        )
        .unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(
            !cache.is_clean(&file, Stamp::of(&file).unwrap()),
            "a change is seen"
        );

        // The list of catalogue files is remembered while no directory it depends on changed.
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/pip.conf"), "[global]\n").unwrap();
        let mut cache = CleanCache::load(Some(&cache_path));
        let names = |found: Vec<(&'static Place, PathBuf)>| -> Vec<PathBuf> {
            found.into_iter().map(|(_, p)| p).collect()
        };
        assert_eq!(names(cache.files(&root)), [root.join("etc/pip.conf")]);
        cache.save();
        let mut cache = CleanCache::load(Some(&cache_path));
        assert!(!cache.watched.is_empty());
        assert_eq!(names(cache.files(&root)), [root.join("etc/pip.conf")]);
        assert!(
            !cache.changed,
            "the remembered list, nothing looked up again"
        );
        std::fs::write(root.join("etc/netrc"), "machine x\n").unwrap();
        let found = names(cache.files(&root));
        assert!(
            found.contains(&root.join("etc/netrc")),
            "a new file is found: {found:?}"
        );
        cache.save();

        let other = std::fs::read_to_string(&cache_path).unwrap().replacen(
            "keepout-system-files-clean",
            "keepout-system-files-clean-old",
            1,
        );
        std::fs::write(&cache_path, other).unwrap();
        assert!(!CleanCache::load(Some(&cache_path)).is_clean(&file, stamp));
    }
}

#[cfg(test)]
mod speed {
    /// `cargo test --release -p keepout-sandbox system_credentials_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn system_credentials_speed() {
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let n = super::mounts(true, None).len();
            println!("{n} mounts in {:.2} ms", t.elapsed().as_secs_f64() * 1000.0);
        }
        let t = std::time::Instant::now();
        let n = keepout_credentials::system::files(Some("/".as_ref()), None).len();
        println!(
            "files(): {n} in {:.2} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
}
