//! Executes a [`SandboxPlan`]'s mount steps inside the sandbox's new mount namespace and
//! switches to the new root.
//!
//! Guarantees, once [`build_root`] returns `Ok`: the process's root is a tmpfs that holds only
//! what the plan lists; the host's root is detached (not reachable through `..`, `/proc/self/root`
//! or any mount); every bind is nosuid and nodev, read-only ones recursively read-only; the root
//! itself is read-only. Nothing here propagates back to the host (`/` was made a slave first).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::{
    mount, mount_bind, mount_bind_recursive, mount_change, mount_remount, unmount, MountFlags,
    MountPropagationFlags, UnmountFlags,
};

use super::sys;
use super::SetupError;
use crate::plan::{MountStep, SandboxPlan};
use crate::policy::Identity;

/// Where the host's root is while the new root is built.
const OLD: &str = "/oldroot";
/// Where the new root is built.
const NEW: &str = "/newroot";
/// The scratch mount point for the builder's own tmpfs (any existing directory works; the
/// mount is private to the sandbox's mount namespace).
const BASE: &str = "/tmp";

/// Device nodes bound from the host into the new `/dev`.
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// procfs entries that are host-wide kernel knobs: read-only inside.
const PROC_READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// procfs entries that expose kernel internals: hidden inside.
const PROC_MASKED: &[&str] = &[
    "kcore",
    "keys",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "acpi",
    "scsi",
    "kallsyms",
];

fn step<E: Into<io::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> SetupError {
    let what = what.into();
    move |e| SetupError::new(what, e.into())
}

fn opts(s: &str) -> CString {
    CString::new(s).expect("mount options have no NUL bytes")
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("paths have no NUL bytes")
}

/// `/newroot` + an absolute sandbox path.
fn new_path(p: &Path) -> PathBuf {
    Path::new(NEW).join(p.strip_prefix("/").unwrap_or(p))
}

/// `/oldroot` + an absolute host path.
fn old_path(p: &Path) -> PathBuf {
    Path::new(OLD).join(p.strip_prefix("/").unwrap_or(p))
}

fn mkdir_all(p: &Path) -> Result<(), SetupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(p)
        .map_err(step(format!("create mount point {}", p.display())))
}

/// Make sure a mount point of the right type (file or directory) exists at `target`.
fn mount_point(target: &Path, is_dir: bool) -> Result<(), SetupError> {
    if is_dir {
        return mkdir_all(target);
    }
    if let Some(parent) = target.parent() {
        mkdir_all(parent)?;
    }
    if fs::symlink_metadata(target).is_err() {
        fs::File::create(target)
            .map_err(step(format!("create mount point {}", target.display())))?;
    }
    Ok(())
}

fn tmpfs(target: &Path, mode: u32, size_mib: u64, id: &Identity) -> Result<(), SetupError> {
    let data = format!(
        "mode={mode:o},size={size_mib}m,uid={},gid={}",
        id.uid, id.gid
    );
    mount(
        "tmpfs",
        target,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(opts(&data).as_c_str()),
    )
    .map_err(step(format!("mount tmpfs on {}", target.display())))
}

fn bind(
    source: &Path,
    target: &Path,
    read_only: bool,
    prepared: Option<BorrowedFd<'_>>,
) -> Result<(), SetupError> {
    let what = format!("bind {} on {}", source.display(), target.display());
    // Bind through handles opened without following any symlink, never through paths that
    // could be swapped for a symlink in between (another sandbox may share the project).
    let no_symlink = |p: &Path| {
        sys::open_path_no_symlinks(&cstr(p)).map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::other(format!("{} has a symlink in its path", p.display()))
            } else {
                e
            };
            SetupError::new(what.clone(), why)
        })
    };
    // A tree keepout prepared is attached as it is; otherwise the source is opened here.
    let source_fd = match prepared {
        Some(_) => None,
        None => Some(no_symlink(source)?),
    };
    let source_or_tree = prepared
        .or(source_fd.as_ref().map(|fd| fd.as_fd()))
        .expect("one is set");
    let is_dir = rustix::fs::fstat(source_or_tree)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
        .map_err(step(what.clone()))?;
    mount_point(target, is_dir)?;
    let target_fd = no_symlink(target)?;
    match (prepared, source_fd) {
        (Some(tree), _) => sys::move_mount_to(tree, target_fd.as_fd()).map_err(step(what))?,
        (None, source_fd) => {
            let via_proc = |fd: &OwnedFd| format!("{OLD}/proc/self/fd/{}", fd.as_raw_fd());
            let source_fd = source_fd.expect("opened above");
            mount_bind_recursive(via_proc(&source_fd), via_proc(&target_fd)).map_err(step(what))?
        }
    }

    let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    if read_only {
        attrs |= sys::MOUNT_ATTR_RDONLY;
    }
    sys::mount_setattr(&cstr(target), attrs, true).map_err(step(format!(
        "make {} nosuid,nodev{}",
        target.display(),
        if read_only { ",ro" } else { "" }
    )))
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

/// Hide `target` behind an empty read-only file or directory. A target that is gone is an
/// error when `must_exist` (the policy saw it; it should be there), else nothing to hide.
fn mask(target: &Path, must_exist: bool) -> Result<(), SetupError> {
    let meta = match fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if must_exist => {
            return Err(SetupError::new(format!("mask {}", target.display()), e))
        }
        Err(_) => return Ok(()),
    };
    // After the first pivot_root the builder's tmpfs is `/`.
    let empty = if meta.is_dir() {
        Path::new("/empty-dir")
    } else {
        Path::new("/empty-file")
    };
    mount_bind(empty, target).map_err(step(format!("mask {}", target.display())))?;
    sys::mount_setattr(
        &cstr(target),
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        false,
    )
    .map_err(step(format!("mask {} read-only", target.display())))
}

/// Show `content` read-only at `target` instead of the host's file: a copy in the builder's
/// tmpfs (private to this mount namespace, gone with it; `n` names it) bound over the file.
fn text(target: &Path, content: &str, n: usize) -> Result<(), SetupError> {
    let what = format!("show {} without its credentials", target.display());
    let meta = fs::symlink_metadata(target).map_err(step(what.clone()))?;
    if !meta.is_file() {
        return Err(SetupError::new(
            what,
            io::Error::other("not a regular file any more"),
        ));
    }
    // After the first pivot_root the builder's tmpfs is `/`.
    let copy = PathBuf::from(format!("/text-{n}"));
    fs::write(&copy, content).map_err(step(what.clone()))?;
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o444)).map_err(step(what.clone()))?;
    mount_bind(&copy, target).map_err(step(what.clone()))?;
    sys::mount_setattr(
        &cstr(target),
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        false,
    )
    .map_err(step(what))
}

fn dev(target: &Path, id: &Identity) -> Result<(), SetupError> {
    mkdir_all(target)?;
    let data = format!("mode=755,size=1m,uid={},gid={}", id.uid, id.gid);
    mount(
        "tmpfs",
        target,
        "tmpfs",
        MountFlags::NOSUID,
        Some(opts(&data).as_c_str()),
    )
    .map_err(step("mount tmpfs on /dev"))?;
    for node in DEV_NODES {
        let host = Path::new(OLD).join("dev").join(node);
        if fs::metadata(&host).is_err() {
            continue;
        }
        let inside = target.join(node);
        fs::File::create(&inside).map_err(step(format!("create /dev/{node}")))?;
        mount_bind(&host, &inside).map_err(step(format!("bind /dev/{node}")))?;
        sys::mount_setattr(&cstr(&inside), sys::MOUNT_ATTR_NOSUID, false)
            .map_err(step(format!("make /dev/{node} nosuid")))?;
    }
    let pts = target.join("pts");
    mkdir_all(&pts)?;
    mount(
        "devpts",
        &pts,
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(c"newinstance,ptmxmode=0666,mode=620"),
    )
    .map_err(step("mount a new devpts on /dev/pts"))?;
    let shm = target.join("shm");
    mkdir_all(&shm)?;
    tmpfs(&shm, 0o1777, 256, id)?;
    for (name, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, target.join(name)).map_err(step(format!("create /dev/{name}")))?;
    }
    mount_remount(
        target,
        MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID,
        "",
    )
    .map_err(step("make /dev read-only"))
}

fn proc(target: &Path) -> Result<(), SetupError> {
    mkdir_all(target)?;
    mount(
        "proc",
        target,
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(step("mount a new /proc"))?;
    // The command is never uid 0 on the host and owns nothing in /proc but its own processes'
    // entries, so only the permission bits for "other" apply to it: a file nobody else may write
    // (sysrq-trigger, 0200) or read (kcore, 0400) needs no mount on top. Directories always get
    // one (their files differ).
    let other_may = |p: &Path, bits: u32| {
        fs::symlink_metadata(p).map(|m| m.is_dir() || m.permissions().mode() & bits != 0)
    };
    for name in PROC_READ_ONLY {
        let p = target.join(name);
        if !matches!(other_may(&p, 0o002), Ok(true)) {
            continue;
        }
        mount_bind(&p, &p).map_err(step(format!("bind /proc/{name}")))?;
        sys::mount_setattr(
            &cstr(&p),
            sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
            false,
        )
        .map_err(step(format!("make /proc/{name} read-only")))?;
    }
    for name in PROC_MASKED {
        let p = target.join(name);
        if matches!(other_may(&p, 0o004), Ok(true)) {
            mask(&p, false)?;
        }
    }
    Ok(())
}

/// The step name of the first mount, where a user namespace without capabilities fails.
const FIRST_MOUNT_STEP: &str = "make / a slave mount";

pub(super) fn is_first_mount_step(step: &str) -> bool {
    step == FIRST_MOUNT_STEP
}

/// Build the new root from the plan and make it the process's root. `cwd` is the working
/// directory to enter afterwards (a path inside the sandbox).
/// `detached` holds mount trees keepout prepared (root callers), attached instead of binding.
pub(super) fn build_root(
    plan: &SandboxPlan,
    id: &Identity,
    cwd: &Path,
    detached: &HashMap<PathBuf, OwnedFd>,
) -> Result<(), SetupError> {
    // Nothing we mount may propagate to the host; host unmounts may still propagate in.
    mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(step(FIRST_MOUNT_STEP))?;
    mount(
        "tmpfs",
        BASE,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(c"mode=755,size=1m"),
    )
    .map_err(step("mount the builder's tmpfs"))?;
    for dir in ["newroot", "oldroot", "empty-dir"] {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(Path::new(BASE).join(dir))
            .map_err(step("create the builder's directories"))?;
    }
    fs::set_permissions(
        Path::new(BASE).join("empty-dir"),
        fs::Permissions::from_mode(0o555),
    )
    .map_err(step("create an empty directory"))?;
    let empty_file = Path::new(BASE).join("empty-file");
    fs::File::create(&empty_file).map_err(step("create an empty file"))?;
    fs::set_permissions(&empty_file, fs::Permissions::from_mode(0o444))
        .map_err(step("create an empty file"))?;
    rustix::process::pivot_root(BASE, Path::new(BASE).join("oldroot"))
        .map_err(step("pivot_root into the builder's tmpfs"))?;
    rustix::process::chdir("/").map_err(step("chdir /"))?;

    mount(
        "tmpfs",
        NEW,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(c"mode=755,size=1m"),
    )
    .map_err(step("mount the new root"))?;

    for (n, s) in plan.steps.iter().enumerate() {
        match s {
            MountStep::Bind {
                source,
                target,
                read_only,
                ..
            } => {
                let tree = detached.get(target).map(|fd| fd.as_fd());
                bind(&old_path(source), &new_path(target), *read_only, tree)?
            }
            MountStep::Overlay {
                lower,
                upper,
                work,
                target,
                ..
            } => {
                let t = new_path(target);
                mkdir_all(&t)?;
                let what = format!("mount overlayfs on {}", target.display());
                let made;
                let tree = match detached.get(target) {
                    Some(fd) => fd.as_fd(),
                    None => {
                        let lower: Vec<PathBuf> = lower.iter().map(|l| old_path(l)).collect();
                        made = overlay_tree(&lower, &[], &old_path(upper), &old_path(work))
                            .map_err(step(what.clone()))?;
                        made.as_fd()
                    }
                };
                let target_fd =
                    sys::open_path_no_symlinks(&cstr(&t)).map_err(step(what.clone()))?;
                sys::move_mount_to(tree, target_fd.as_fd()).map_err(step(what))?;
            }
            MountStep::Tmpfs { target, size_mib } => {
                let t = new_path(target);
                mkdir_all(&t)?;
                let mode = if target == Path::new("/tmp") {
                    0o1777
                } else {
                    0o755
                };
                tmpfs(&t, mode, *size_mib, id)?;
            }
            MountStep::Mask { target } => mask(&new_path(target), true)?,
            MountStep::Text { target, content } => text(&new_path(target), content, n)?,
            MountStep::Symlink { target, points_to } => {
                let t = new_path(target);
                if let Some(parent) = t.parent() {
                    mkdir_all(parent)?;
                }
                symlink(points_to, &t)
                    .map_err(step(format!("create symlink {}", target.display())))?;
            }
            MountStep::Dev { target } => dev(&new_path(target), id)?,
            MountStep::Proc { target } => proc(&new_path(target))?,
        }
    }

    mount_remount(
        NEW,
        MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
        "",
    )
    .map_err(step("make the new root read-only"))?;
    rustix::process::chdir(NEW).map_err(step("chdir to the new root"))?;
    rustix::process::pivot_root(".", ".").map_err(step("pivot_root into the new root"))?;
    unmount(".", UnmountFlags::DETACH).map_err(step("detach the host's root"))?;
    rustix::process::chdir("/").map_err(step("chdir /"))?;
    rustix::process::chdir(cwd).map_err(step(format!(
        "enter the working directory {}",
        cwd.display()
    )))?;
    Ok(())
}
