//! The seam between the sandbox's setup and the kernel, as two traits: [`Syscalls`], every
//! file-system and mount operation the root builder ([`super::mounts`]) performs, and
//! [`ConfineCalls`], the command's confinement layers ([`super::confine`]).
//!
//! Guarantees: [`Kernel`], the implementation the sandbox runs with, makes per method exactly the
//! calls the setup made before it went through these traits (one system call or `std::fs` call
//! for each [`Syscalls`] method), and adds no allocation of its own beyond the C strings the
//! calls need. Tests run the same setup over [`recording::Recorder`], which makes no system call
//! and records each call as data, so a whole setup can be asserted unprivileged.
//!
//! Paths are as the builder sees them: before the first `pivot_root` under the scratch tmpfs,
//! afterwards `/oldroot/...` (the host) and `/newroot/...` (the new root).

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::process::{Resource, Rlimit};
use seccompiler::BpfProgram;

use super::terminal::Terminal;
use super::{channel, landlock, seccomp, sys};
use crate::plan::LandlockRule;

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

/// The system calls the steps need.
pub(crate) trait ConfineCalls {
    fn setsid(&mut self) -> io::Result<()>;
    fn attach_terminal(&mut self, terminal: &Terminal) -> io::Result<()>;
    fn reset_signals(&mut self);
    fn set_rlimit(&mut self, resource: Resource, limit: u64) -> io::Result<()>;
    fn drop_capabilities(&mut self) -> io::Result<()>;
    fn set_no_new_privs(&mut self) -> io::Result<()>;
    /// Restrict this process to `rules` (terminals on stdio stay reopenable).
    fn landlock(&mut self, rules: &[LandlockRule]) -> io::Result<()>;
    /// Install `filter` with a user-notification listener and send the listener over
    /// `notify`; `false` when the kernel refused the listener (nothing was installed).
    fn seccomp_notifying(&mut self, filter: &BpfProgram, notify: &OwnedFd) -> bool;
    fn seccomp(&mut self, filter: &BpfProgram) -> io::Result<()>;
    /// Mark every descriptor from `first` up close-on-exec.
    fn close_from(&mut self, first: u32) -> io::Result<()>;
}

/// The terminals among descriptors 0-2.
fn stdio_terminals() -> Vec<BorrowedFd<'static>> {
    [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ]
    .into_iter()
    .filter(|fd| {
        use std::os::fd::AsRawFd;
        sys::is_terminal(fd.as_raw_fd())
    })
    .collect()
}

impl ConfineCalls for Kernel {
    fn setsid(&mut self) -> io::Result<()> {
        rustix::process::setsid()?;
        Ok(())
    }

    fn attach_terminal(&mut self, terminal: &Terminal) -> io::Result<()> {
        terminal.attach()
    }

    fn reset_signals(&mut self) {
        sys::reset_signals();
    }

    fn set_rlimit(&mut self, resource: Resource, limit: u64) -> io::Result<()> {
        rustix::process::setrlimit(
            resource,
            Rlimit {
                current: Some(limit),
                maximum: Some(limit),
            },
        )?;
        Ok(())
    }

    /// Drop every capability this process holds, from every set.
    fn drop_capabilities(&mut self) -> io::Result<()> {
        use rustix::thread::{CapabilitySet, CapabilitySets};
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40);
        for cap in 0..=last.min(63) {
            if let Some(c) = CapabilitySet::from_bits(1u64 << cap) {
                let _ = rustix::thread::remove_capability_from_bounding_set(c);
            }
        }
        rustix::thread::clear_ambient_capability_set()?;
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: CapabilitySet::empty(),
                permitted: CapabilitySet::empty(),
                inheritable: CapabilitySet::empty(),
            },
        )?;
        Ok(())
    }

    fn set_no_new_privs(&mut self) -> io::Result<()> {
        rustix::thread::set_no_new_privs(true)?;
        Ok(())
    }

    fn landlock(&mut self, rules: &[LandlockRule]) -> io::Result<()> {
        let terminals = stdio_terminals();
        landlock::restrict(rules, &terminals)
            .map(drop)
            .map_err(io::Error::other)
    }

    fn seccomp_notifying(&mut self, filter: &BpfProgram, notify: &OwnedFd) -> bool {
        match sys::install_filter_with_listener(&seccomp::notifying(filter)) {
            Ok(listener) => {
                let _ = channel::send_fd(notify, listener.as_fd());
                true
            }
            Err(_) => false,
        }
    }

    fn seccomp(&mut self, filter: &BpfProgram) -> io::Result<()> {
        seccompiler::apply_filter(filter).map_err(|e| io::Error::other(e.to_string()))
    }

    fn close_from(&mut self, first: u32) -> io::Result<()> {
        sys::close_range_cloexec(first)
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
