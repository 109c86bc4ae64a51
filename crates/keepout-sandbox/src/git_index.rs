//! Reading the flags of a git index that hide a change from `git status` and `git diff`
//! (threat class A14).
//!
//! Three index states make git stop looking at a file: *assume-unchanged* (the `CE_VALID` bit of
//! an entry's flags), *skip-worktree* (the `CE_SKIP_WORKTREE` bit of a version 3+ entry's
//! extended flags) and *fsmonitor-valid* (the bitmap of the `FSMN` extension, trusted when a
//! file-system monitor is configured). A run that sets them on a file it modified hides the
//! change from the maintainer's review.
//!
//! This module only reads: it walks the entries of index versions 2, 3 and 4 (prefix-compressed
//! paths) far enough to name the flagged paths, and notes whether an `FSMN` extension is there.
//! Undoing is left to git itself (`git update-index`), which writes indexes. Guarantee: a file
//! that is not a well-formed index of a known version is an error, never a guess.

use std::collections::BTreeSet;

use crate::error::Error;

/// The flags of one index that hide changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HidingFlags {
    /// Paths marked assume-unchanged (`git update-index --assume-unchanged`).
    pub assume_unchanged: BTreeSet<Vec<u8>>,
    /// Paths marked skip-worktree (`git update-index --skip-worktree`, sparse checkout).
    pub skip_worktree: BTreeSet<Vec<u8>>,
    /// The index carries a file-system monitor extension, whose bitmap marks entries valid.
    pub fsmonitor: bool,
}

const CE_VALID: u16 = 0x8000;
const CE_EXTENDED: u16 = 0x4000;
const CE_NAMEMASK: u16 = 0x0fff;
const CE_SKIP_WORKTREE: u16 = 0x4000;

/// Read the hiding flags of an index. `hash_len` is 20 for SHA-1 repositories, 32 for SHA-256.
pub fn hiding_flags(index: &[u8], hash_len: usize) -> Result<HidingFlags, Error> {
    parse(index, hash_len).map_err(Error::Invalid)
}

/// [`hiding_flags`], with the reason a file is not an index as text.
fn parse(index: &[u8], hash_len: usize) -> Result<HidingFlags, String> {
    let bad = |what: &str| Err(format!("not a git index: {what}"));
    if index.len() < 12 + hash_len || &index[..4] != b"DIRC" {
        return bad("no DIRC header");
    }
    let version = u32::from_be_bytes(index[4..8].try_into().expect("4 bytes"));
    if !(2..=4).contains(&version) {
        return bad(&format!("version {version}"));
    }
    let count = u32::from_be_bytes(index[8..12].try_into().expect("4 bytes")) as usize;
    let end = index.len() - hash_len;
    let mut flags = HidingFlags::default();
    let mut pos = 12;
    let mut previous: Vec<u8> = Vec::new();
    // ctime, mtime (8 each), dev, ino, mode, uid, gid, size (4 each), then the object id.
    let fixed = 40 + hash_len;
    for _ in 0..count {
        let start = pos;
        if pos + fixed + 2 > end {
            return bad("entry past the end");
        }
        pos += fixed;
        let f = u16::from_be_bytes([index[pos], index[pos + 1]]);
        pos += 2;
        let mut extended = 0u16;
        if f & CE_EXTENDED != 0 {
            if version < 3 || pos + 2 > end {
                return bad("extended flags");
            }
            extended = u16::from_be_bytes([index[pos], index[pos + 1]]);
            pos += 2;
        }
        let path = if version == 4 {
            // A varint: how many bytes of the previous path to drop, then the rest, NUL-ended.
            let (strip, used) = varint(&index[pos..end]).ok_or("not a git index: bad varint")?;
            pos += used;
            let nul = index[pos..end]
                .iter()
                .position(|&b| b == 0)
                .ok_or("not a git index: unterminated path")?;
            let keep = previous
                .len()
                .checked_sub(strip as usize)
                .ok_or("not a git index: bad prefix")?;
            let mut path = previous[..keep].to_vec();
            path.extend_from_slice(&index[pos..pos + nul]);
            pos += nul + 1;
            path
        } else {
            let len = (f & CE_NAMEMASK) as usize;
            let nul = if len < CE_NAMEMASK as usize {
                len
            } else {
                index[pos..end]
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or("not a git index: unterminated path")?
            };
            if pos + nul > end {
                return bad("path past the end");
            }
            let path = index[pos..pos + nul].to_vec();
            // Entries are padded with 1-8 NULs to a multiple of 8 bytes.
            let entry_len = (pos + nul - start + 8) & !7;
            pos = start + entry_len;
            path
        };
        if f & CE_VALID != 0 {
            flags.assume_unchanged.insert(path.clone());
        }
        if extended & CE_SKIP_WORKTREE != 0 {
            flags.skip_worktree.insert(path.clone());
        }
        previous = path;
    }
    // Extensions: a 4-byte signature and a 4-byte size each, up to the trailing hash.
    while pos + 8 <= end {
        let signature = &index[pos..pos + 4];
        let size = u32::from_be_bytes(index[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if signature == b"FSMN" {
            flags.fsmonitor = true;
        }
        pos = pos
            .checked_add(8 + size as usize)
            .ok_or("not a git index: extension size")?;
    }
    Ok(flags)
}

/// git's offset varint (`varint.c`): 7 bits a byte, high bit set on all but the last, each
/// continuation adding one.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        if i > 0 {
            value = value.checked_add(1)?.checked_mul(128)?;
        }
        value |= u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

impl HidingFlags {
    /// What `self` hides that `before` did not.
    pub fn added_since(&self, before: &HidingFlags) -> HidingFlags {
        HidingFlags {
            assume_unchanged: self
                .assume_unchanged
                .difference(&before.assume_unchanged)
                .cloned()
                .collect(),
            skip_worktree: self
                .skip_worktree
                .difference(&before.skip_worktree)
                .cloned()
                .collect(),
            fsmonitor: self.fsmonitor,
        }
    }

    /// Nothing is hidden by an entry flag.
    pub fn no_entry_flags(&self) -> bool {
        self.assume_unchanged.is_empty() && self.skip_worktree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &std::path::Path, args: &[&str]) {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// Real git writes the flags; the reader finds exactly those, in every index version,
    /// with a long path and paths that share prefixes (version 4).
    #[test]
    fn reads_what_real_git_writes() {
        for version in ["2", "3", "4"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            git(d, &["init", "-q"]);
            let long = "l".repeat(200);
            let deep = format!("{long}/{long}/f");
            std::fs::create_dir_all(d.join(&deep).parent().unwrap()).unwrap();
            for f in ["a", "ab", "abc/d", "b", &deep] {
                std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
                std::fs::write(d.join(f), f).unwrap();
            }
            git(d, &["add", "-A"]);
            git(d, &["update-index", "--index-version", version]);
            git(d, &["commit", "-qm", "x"]);
            let read = || hiding_flags(&std::fs::read(d.join(".git/index")).unwrap(), 20).unwrap();
            assert_eq!(
                read(),
                HidingFlags::default(),
                "v{version}: nothing flagged"
            );
            git(d, &["update-index", "--assume-unchanged", "ab"]);
            git(d, &["update-index", "--skip-worktree", "abc/d"]);
            git(d, &["update-index", "--skip-worktree", &deep]);
            let flags = read();
            assert_eq!(
                flags.assume_unchanged,
                [b"ab".to_vec()].into_iter().collect(),
                "v{version}"
            );
            let expect: BTreeSet<Vec<u8>> = [b"abc/d".to_vec(), deep.as_bytes().to_vec()]
                .into_iter()
                .collect();
            assert_eq!(flags.skip_worktree, expect, "v{version}");
            assert!(!flags.fsmonitor);
            let before = HidingFlags::default();
            assert_eq!(flags.added_since(&before), flags);
            assert!(flags.added_since(&flags).no_entry_flags());
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(hiding_flags(b"", 20).is_err());
        assert!(hiding_flags(b"DIRC\0\0\0\x09\0\0\0\0aaaaaaaaaaaaaaaaaaaa", 20).is_err());
        let mut truncated = b"DIRC\0\0\0\x02\0\0\0\x05".to_vec();
        truncated.extend([0u8; 40]);
        assert!(hiding_flags(&truncated, 20).is_err());
    }
}
