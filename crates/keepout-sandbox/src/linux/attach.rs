//! A root caller's writable paths for another runtime (a rootful container engine, which binds
//! host paths by name): the path's mount tree, copied and idmapped as the native sandbox's own
//! binds are (files host root owns appear owned by the sandbox's user, and what that user makes
//! is root's on disk), attached on the host at a place only root may traverse.
//!
//! Guarantees: the copy is made through a handle opened without following any symlink; where
//! it cannot be idmapped (a filesystem without idmapped mounts) the plain copy is attached, so the
//! engine still finds the path's contents there, only with root's files not writable, and
//! [`AttachedTree::idmapped`] says so; the attachment is detached (lazily: an engine may still be
//! letting go of it) and its directory removed when the value is dropped. A caller killed
//! before that leaves it attached: the caller's own watcher must undo it (keepout-container's
//! does).

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::sys;

/// A tree attached at a path of the host's (see the module docs).
#[derive(Debug)]
pub struct AttachedTree {
    at: PathBuf,
    idmapped: bool,
}

impl AttachedTree {
    /// Were root's files made the sandbox's user's (false: the plain copy, read-only to it)?
    pub fn idmapped(&self) -> bool {
        self.idmapped
    }
}

impl Drop for AttachedTree {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.at, rustix::mount::UnmountFlags::DETACH);
        // The mount point: a directory, or an empty file for a file's tree.
        let _ = std::fs::remove_dir(&self.at).or_else(|_| std::fs::remove_file(&self.at));
    }
}

/// The id mapping of a run's copies (host root's files as `host_id`'s), made once for all of
/// them, as the native sandbox makes one for its binds.
pub struct IdMapping {
    /// The mapping's user namespace; `None` where it could not be made (plain copies then).
    userns: Option<std::os::fd::OwnedFd>,
}

impl IdMapping {
    /// Root's files as `host_id`'s. The namespace's holder is gone once this returns: the
    /// namespace lives on in the descriptor kept here.
    pub fn new(host_id: u32) -> IdMapping {
        let userns = super::idmap_user_namespace(host_id)
            .ok()
            .map(|(userns, holder)| {
                holder.reap();
                userns
            });
        IdMapping { userns }
    }

    /// Attach a copy of `source`'s mount tree at `at` (a new directory or file, made here, whose
    /// parent only root may traverse), idmapped with this mapping.
    pub fn attach(&self, source: &Path, at: &Path) -> io::Result<AttachedTree> {
        attach(source, at, self.userns.as_ref())
    }
}

fn attach(
    source: &Path,
    at: &Path,
    userns: Option<&std::os::fd::OwnedFd>,
) -> io::Result<AttachedTree> {
    let c = CString::new(source.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let handle = sys::open_path_no_symlinks(&c)?;
    let is_dir = rustix::fs::fstat(&handle)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let tree = sys::open_tree_clone_fd(handle.as_fd())?;
    let idmapped =
        userns.is_some_and(|ns| sys::mount_setattr_idmap(tree.as_fd(), ns.as_fd()).is_ok());
    // A mount point of the tree's kind: a directory, or an empty file (a `.git` pointer file).
    if is_dir {
        std::fs::create_dir(at)?;
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(at)?;
    }
    let attached = AttachedTree {
        at: at.to_path_buf(),
        idmapped,
    };
    let target = rustix::fs::open(
        at,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    sys::move_mount_to(tree.as_fd(), target.as_fd())?;
    Ok(attached)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// As root: root's file appears owned by `host_id` through the attachment, a file made there
    /// as that user is root's on disk, and dropping it detaches it and removes its directory.
    #[test]
    fn roots_files_are_the_host_ids_through_the_attachment() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("note: needs root: not tested");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        // The host id must reach the attachment (an engine binds it as root: no such need).
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap();
        let source = tmp.path().join("project");
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("f"), "x").unwrap();
        let at = tmp.path().join("at");
        let mapping = IdMapping::new(65534);
        let attached = mapping.attach(&source, &at).expect("attached");
        assert!(
            attached.idmapped(),
            "this machine's filesystems take idmapped mounts"
        );
        assert_eq!(std::fs::metadata(at.join("f")).unwrap().uid(), 65534);
        let made = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "touch"])
            .arg(at.join("made"))
            .status()
            .unwrap();
        assert!(
            made.success(),
            "the host id writes root's directory through it"
        );
        assert_eq!(std::fs::metadata(source.join("made")).unwrap().uid(), 0);
        drop(attached);
        assert!(!at.exists(), "detached and removed");
        assert!(source.join("f").exists(), "the source is untouched");

        // A file's tree (a worktree's `.git` pointer file) is attached on a file.
        let file_at = tmp.path().join("file-at");
        let attached = mapping.attach(&source.join("f"), &file_at).expect("a file");
        assert_eq!(std::fs::read_to_string(&file_at).unwrap(), "x");
        assert_eq!(std::fs::metadata(&file_at).unwrap().uid(), 65534);
        drop(attached);
        assert!(!file_at.exists(), "the file mount point removed");
    }
}
