//! The seam between the root builder ([`super::mounts`]) and the kernel: every file-system and
//! mount operation the builder performs, as one trait.
//!
//! Guarantees: [`Kernel`], the implementation the sandbox runs with, makes exactly one system call
//! (or the one `std::fs` call) per method, the same the builder made before it went through this
//! trait, and adds no allocation of its own beyond the C strings the calls need. Tests execute the
//! same builder over [`recording::Recorder`], which makes no system call and records each call as
//! data, so a whole build can be asserted unprivileged.
//!
//! Paths are as the builder sees them: before the first `pivot_root` under the scratch tmpfs,
//! afterwards `/oldroot/...` (the host) and `/newroot/...` (the new root).

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use super::sys;

#[cfg(test)]
pub(crate) mod recording;

/// What `lstat` said about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub is_dir: bool,
    pub is_file: bool,
    /// The permission bits.
    pub mode: u32,
}

/// The operations the root builder needs from the kernel. `Fd` is a handle on an opened path or
/// on a detached mount tree.
pub(crate) trait Syscalls {
    type Fd;

    /// `mount --make-rslave path`: nothing mounted beneath propagates back out.
    fn make_slave_recursive(&mut self, path: &Path) -> io::Result<()>;
    /// `mount(2)` of a new file system (`tmpfs`, `proc`, `devpts`).
    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: Option<&CStr>,
    ) -> io::Result<()>;
    /// A non-recursive bind of `source` onto `target`, by path.
    fn bind(&mut self, source: &Path, target: &Path) -> io::Result<()>;
    /// A recursive bind of what `source` refers to onto what `target` refers to, through their
    /// handles (never their paths again).
    fn bind_handles(&mut self, source: &Self::Fd, target: &Self::Fd) -> io::Result<()>;
    /// Remount the bind at `target` with `flags`.
    fn remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()>;
    /// Detach (lazily unmount) the mount at `target`.
    fn detach(&mut self, target: &Path) -> io::Result<()>;
    /// `mount_setattr(2)`: set `attrs` (`sys::MOUNT_ATTR_*`) on the mount at `path`.
    fn mount_setattr(&mut self, path: &Path, attrs: u64, recursive: bool) -> io::Result<()>;
    /// A handle on exactly what `path` names, refusing any symlink on the way.
    fn open_path(&mut self, path: &Path) -> io::Result<Self::Fd>;
    /// Is the object `fd` refers to a directory?
    fn is_dir(&mut self, fd: &Self::Fd) -> io::Result<bool>;
    /// Attach the detached tree `tree` onto what `target` refers to.
    fn move_mount(&mut self, tree: &Self::Fd, target: &Self::Fd) -> io::Result<()>;
    /// A detached overlayfs mount (see [`overlay_tree`]) over the paths `lower`.
    fn overlay(&mut self, lower: &[PathBuf], upper: &Path, work: &Path) -> io::Result<Self::Fd>;
    /// Create `path` and its missing parents, mode 0755.
    fn mkdir_all(&mut self, path: &Path) -> io::Result<()>;
    /// Create the directory `path` (its parent exists).
    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// Create (or truncate) the regular file `path`.
    fn create_file(&mut self, path: &Path) -> io::Result<()>;
    fn write_file(&mut self, path: &Path, content: &str) -> io::Result<()>;
    /// Create the symbolic link `path` pointing to `points_to`.
    fn symlink(&mut self, points_to: &Path, path: &Path) -> io::Result<()>;
    /// `lstat(2)`.
    fn lstat(&mut self, path: &Path) -> io::Result<FileInfo>;
    /// Does `path` exist (following symlinks)?
    fn exists(&mut self, path: &Path) -> bool;
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn chdir(&mut self, path: &Path) -> io::Result<()>;
}

/// The running kernel.
pub(crate) struct Kernel;

/// `/oldroot` is the host's root while the new root is built; handles are reached through its
/// `/proc/self/fd`.
const HOST_PROC_FD: &str = "/oldroot/proc/self/fd";

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("paths have no NUL bytes")
}

impl Syscalls for Kernel {
    type Fd = OwnedFd;

    fn make_slave_recursive(&mut self, path: &Path) -> io::Result<()> {
        rustix::mount::mount_change(
            path,
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )?;
        Ok(())
    }

    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: Option<&CStr>,
    ) -> io::Result<()> {
        rustix::mount::mount(source, target, fstype, flags, data)?;
        Ok(())
    }

    fn bind(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        rustix::mount::mount_bind(source, target)?;
        Ok(())
    }

    fn bind_handles(&mut self, source: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
        let via_proc = |fd: &OwnedFd| format!("{HOST_PROC_FD}/{}", fd.as_raw_fd());
        rustix::mount::mount_bind_recursive(via_proc(source), via_proc(target))?;
        Ok(())
    }

    fn remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()> {
        rustix::mount::mount_remount(target, flags, "")?;
        Ok(())
    }

    fn detach(&mut self, target: &Path) -> io::Result<()> {
        rustix::mount::unmount(target, UnmountFlags::DETACH)?;
        Ok(())
    }

    fn mount_setattr(&mut self, path: &Path, attrs: u64, recursive: bool) -> io::Result<()> {
        sys::mount_setattr(&cstr(path), attrs, recursive)
    }

    fn open_path(&mut self, path: &Path) -> io::Result<OwnedFd> {
        sys::open_path_no_symlinks(&cstr(path))
    }

    fn is_dir(&mut self, fd: &OwnedFd) -> io::Result<bool> {
        let st = rustix::fs::fstat(fd)?;
        Ok(rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
    }

    fn move_mount(&mut self, tree: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
        sys::move_mount_to(tree.as_fd(), target.as_fd())
    }

    fn overlay(&mut self, lower: &[PathBuf], upper: &Path, work: &Path) -> io::Result<OwnedFd> {
        overlay_tree(lower, &[], upper, work)
    }

    fn mkdir_all(&mut self, path: &Path) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        fs::DirBuilder::new().mode(mode).create(path)
    }

    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn create_file(&mut self, path: &Path) -> io::Result<()> {
        fs::File::create(path).map(drop)
    }

    fn write_file(&mut self, path: &Path, content: &str) -> io::Result<()> {
        fs::write(path, content)
    }

    fn symlink(&mut self, points_to: &Path, path: &Path) -> io::Result<()> {
        symlink(points_to, path)
    }

    fn lstat(&mut self, path: &Path) -> io::Result<FileInfo> {
        let m = fs::symlink_metadata(path)?;
        Ok(FileInfo {
            is_dir: m.is_dir(),
            is_file: m.is_file(),
            mode: m.permissions().mode(),
        })
    }

    fn exists(&mut self, path: &Path) -> bool {
        fs::metadata(path).is_ok()
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        rustix::process::pivot_root(new_root, put_old)?;
        Ok(())
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        rustix::process::chdir(path)?;
        Ok(())
    }
}

/// A detached overlayfs mount: `lower` (topmost first) under `upper`, with overlayfs's `work`
/// directory; nosuid, nodev. Its own metadata goes in `user.overlay.*` extended attributes
/// (`userxattr`), which is what a mount in a user namespace needs, so a layer reads the same
/// whether a root caller's keepout made the mount outside the sandbox or an ordinary caller's
/// sandbox made it inside its user namespace. Attach it with `move_mount`.
/// The lower layers are `lower_trees` (mount trees, e.g. idmapped, topmost first) when given,
/// else the paths `lower`.
pub(super) fn overlay_tree(
    lower: &[PathBuf],
    lower_trees: &[OwnedFd],
    upper: &Path,
    work: &Path,
) -> io::Result<OwnedFd> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_fd, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen,
        FsMountFlags, FsOpenFlags, MountAttrFlags,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    if lower_trees.is_empty() {
        let lowerdir = lower
            .iter()
            .map(|p| p.to_string_lossy())
            .collect::<Vec<_>>()
            .join(":");
        fsconfig_set_string(&fs, "lowerdir", lowerdir.as_str())?;
    } else {
        for tree in lower_trees {
            fsconfig_set_fd(&fs, "lowerdir+", tree)?;
        }
    }
    fsconfig_set_string(&fs, "upperdir", upper)?;
    fsconfig_set_string(&fs, "workdir", work)?;
    fsconfig_set_flag(&fs, "userxattr")?;
    fsconfig_create(&fs)?;
    Ok(fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?)
}
