//! Executes a [`SandboxPlan`]'s mount steps inside the sandbox's new mount namespace and
//! switches to the new root.
//!
//! Guarantees, once [`build_root`] returns `Ok`: the process's root is a tmpfs that holds only
//! what the plan lists; the host's root is detached (not reachable through `..`, `/proc/self/root`
//! or any mount); every bind is nosuid and nodev, read-only ones recursively read-only; the root
//! itself is read-only. Nothing here propagates back to the host (`/` was made a slave first).
//!
//! Every operation goes through [`Syscalls`]: the sandbox runs this over the kernel, the unit
//! tests below over a recorder, asserting the whole list of operations a plan becomes.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;

use super::report::{SetupError, FIRST_MOUNT_STEP};
use super::sys;
use super::syscall::Syscalls;
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

fn step(what: impl Into<String>) -> impl FnOnce(io::Error) -> SetupError {
    let what = what.into();
    move |e| SetupError::new(what, e)
}

fn opts(s: &str) -> CString {
    CString::new(s).expect("mount options have no NUL bytes")
}

/// `/newroot` + an absolute sandbox path.
fn new_path(p: &Path) -> PathBuf {
    Path::new(NEW).join(p.strip_prefix("/").unwrap_or(p))
}

/// `/oldroot` + an absolute host path.
fn old_path(p: &Path) -> PathBuf {
    Path::new(OLD).join(p.strip_prefix("/").unwrap_or(p))
}

/// The builder: the system calls it makes, and the identity that owns what it creates.
struct Builder<'a, S: Syscalls> {
    sys: &'a mut S,
    id: &'a Identity,
}

impl<S: Syscalls> Builder<'_, S> {
    fn mkdir_all(&mut self, p: &Path) -> Result<(), SetupError> {
        self.sys
            .mkdir_all(p)
            .map_err(step(format!("create mount point {}", p.display())))
    }

    /// Make sure a mount point of the right type (file or directory) exists at `target`.
    fn mount_point(&mut self, target: &Path, is_dir: bool) -> Result<(), SetupError> {
        if is_dir {
            return self.mkdir_all(target);
        }
        if let Some(parent) = target.parent() {
            self.mkdir_all(parent)?;
        }
        if self.sys.lstat(target).is_err() {
            self.sys
                .create_file(target)
                .map_err(step(format!("create mount point {}", target.display())))?;
        }
        Ok(())
    }

    fn tmpfs(&mut self, target: &Path, mode: u32, size_mib: u64) -> Result<(), SetupError> {
        let data = format!(
            "mode={mode:o},size={size_mib}m,uid={},gid={}",
            self.id.uid, self.id.gid
        );
        self.sys
            .mount(
                "tmpfs",
                target,
                "tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV,
                Some(opts(&data).as_c_str()),
            )
            .map_err(step(format!("mount tmpfs on {}", target.display())))
    }

    fn bind(
        &mut self,
        source: &Path,
        target: &Path,
        read_only: bool,
        prepared: Option<&S::Fd>,
    ) -> Result<(), SetupError> {
        let what = format!("bind {} on {}", source.display(), target.display());
        // Bind through handles opened without following any symlink, never through paths that
        // could be swapped for a symlink in between (another sandbox may share the project).
        let no_symlink = |sys: &mut S, p: &Path| {
            sys.open_path(p).map_err(|e| {
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
            None => Some(no_symlink(self.sys, source)?),
        };
        let source_or_tree = prepared.or(source_fd.as_ref()).expect("one is set");
        let is_dir = self
            .sys
            .is_dir(source_or_tree)
            .map_err(step(what.clone()))?;
        self.mount_point(target, is_dir)?;
        let target_fd = no_symlink(self.sys, target)?;
        match (prepared, source_fd) {
            (Some(tree), _) => self.sys.move_mount(tree, &target_fd).map_err(step(what))?,
            (None, source_fd) => {
                let source_fd = source_fd.expect("opened above");
                self.sys
                    .bind_handles(&source_fd, &target_fd)
                    .map_err(step(what))?
            }
        }

        let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
        if read_only {
            attrs |= sys::MOUNT_ATTR_RDONLY;
        }
        self.sys
            .mount_setattr(target, attrs, true)
            .map_err(step(format!(
                "make {} nosuid,nodev{}",
                target.display(),
                if read_only { ",ro" } else { "" }
            )))
    }

    /// overlayfs at `target`: the tree keepout prepared, else one made here over host paths.
    fn overlay(
        &mut self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        prepared: Option<&S::Fd>,
    ) -> Result<(), SetupError> {
        let t = new_path(target);
        self.mkdir_all(&t)?;
        let what = format!("mount overlayfs on {}", target.display());
        let made;
        let tree = match prepared {
            Some(fd) => fd,
            None => {
                let lower: Vec<PathBuf> = lower.iter().map(|l| old_path(l)).collect();
                made = self
                    .sys
                    .overlay(&lower, &old_path(upper), &old_path(work))
                    .map_err(step(what.clone()))?;
                &made
            }
        };
        let target_fd = self.sys.open_path(&t).map_err(step(what.clone()))?;
        self.sys.move_mount(tree, &target_fd).map_err(step(what))
    }

    /// Hide `target` behind an empty read-only file or directory. A target that is gone is an
    /// error when `must_exist` (the policy saw it; it should be there), else nothing to hide.
    fn mask(&mut self, target: &Path, must_exist: bool) -> Result<(), SetupError> {
        let meta = match self.sys.lstat(target) {
            Ok(m) => m,
            Err(e) if must_exist => {
                return Err(SetupError::new(format!("mask {}", target.display()), e))
            }
            Err(_) => return Ok(()),
        };
        // After the first pivot_root the builder's tmpfs is `/`.
        let empty = if meta.is_dir {
            Path::new("/empty-dir")
        } else {
            Path::new("/empty-file")
        };
        self.sys
            .bind(empty, target)
            .map_err(step(format!("mask {}", target.display())))?;
        self.sys
            .mount_setattr(
                target,
                sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                false,
            )
            .map_err(step(format!("mask {} read-only", target.display())))
    }

    /// Show `content` read-only at `target` instead of the host's file: a copy in the builder's
    /// tmpfs (private to this mount namespace, gone with it; `n` names it) bound over the file.
    fn text(&mut self, target: &Path, content: &str, n: usize) -> Result<(), SetupError> {
        let what = format!("show {} without its credentials", target.display());
        let meta = self.sys.lstat(target).map_err(step(what.clone()))?;
        if !meta.is_file {
            return Err(SetupError::new(
                what,
                io::Error::other("not a regular file any more"),
            ));
        }
        // After the first pivot_root the builder's tmpfs is `/`.
        let copy = PathBuf::from(format!("/text-{n}"));
        self.sys
            .write_file(&copy, content)
            .map_err(step(what.clone()))?;
        self.sys.chmod(&copy, 0o444).map_err(step(what.clone()))?;
        self.sys.bind(&copy, target).map_err(step(what.clone()))?;
        self.sys
            .mount_setattr(
                target,
                sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                false,
            )
            .map_err(step(what))
    }

    fn symlink(&mut self, target: &Path, points_to: &Path) -> Result<(), SetupError> {
        let t = new_path(target);
        if let Some(parent) = t.parent() {
            self.mkdir_all(parent)?;
        }
        self.sys
            .symlink(points_to, &t)
            .map_err(step(format!("create symlink {}", target.display())))
    }

    fn dev(&mut self, target: &Path) -> Result<(), SetupError> {
        self.mkdir_all(target)?;
        let data = format!("mode=755,size=1m,uid={},gid={}", self.id.uid, self.id.gid);
        self.sys
            .mount(
                "tmpfs",
                target,
                "tmpfs",
                MountFlags::NOSUID,
                Some(opts(&data).as_c_str()),
            )
            .map_err(step("mount tmpfs on /dev"))?;
        for node in DEV_NODES {
            let host = Path::new(OLD).join("dev").join(node);
            if !self.sys.exists(&host) {
                continue;
            }
            let inside = target.join(node);
            self.sys
                .create_file(&inside)
                .map_err(step(format!("create /dev/{node}")))?;
            self.sys
                .bind(&host, &inside)
                .map_err(step(format!("bind /dev/{node}")))?;
            self.sys
                .mount_setattr(&inside, sys::MOUNT_ATTR_NOSUID, false)
                .map_err(step(format!("make /dev/{node} nosuid")))?;
        }
        let pts = target.join("pts");
        self.mkdir_all(&pts)?;
        self.sys
            .mount(
                "devpts",
                &pts,
                "devpts",
                MountFlags::NOSUID | MountFlags::NOEXEC,
                Some(c"newinstance,ptmxmode=0666,mode=620"),
            )
            .map_err(step("mount a new devpts on /dev/pts"))?;
        let shm = target.join("shm");
        self.mkdir_all(&shm)?;
        self.tmpfs(&shm, 0o1777, 256)?;
        for (name, to) in [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            self.sys
                .symlink(Path::new(to), &target.join(name))
                .map_err(step(format!("create /dev/{name}")))?;
        }
        self.sys
            .remount(
                target,
                MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID,
            )
            .map_err(step("make /dev read-only"))
    }

    fn proc(&mut self, target: &Path) -> Result<(), SetupError> {
        self.mkdir_all(target)?;
        self.sys
            .mount(
                "proc",
                target,
                "proc",
                MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                None,
            )
            .map_err(step("mount a new /proc"))?;
        // The command is never uid 0 on the host and owns nothing in /proc but its own
        // processes' entries, so only the permission bits for "other" apply to it: a file nobody
        // else may write (sysrq-trigger, 0200) or read (kcore, 0400) needs no mount on top.
        // Directories always get one (their files differ).
        let other_may =
            |sys: &mut S, p: &Path, bits: u32| sys.lstat(p).map(|m| m.is_dir || m.mode & bits != 0);
        for name in PROC_READ_ONLY {
            let p = target.join(name);
            if !matches!(other_may(self.sys, &p, 0o002), Ok(true)) {
                continue;
            }
            self.sys
                .bind(&p, &p)
                .map_err(step(format!("bind /proc/{name}")))?;
            self.sys
                .mount_setattr(
                    &p,
                    sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                    false,
                )
                .map_err(step(format!("make /proc/{name} read-only")))?;
        }
        for name in PROC_MASKED {
            let p = target.join(name);
            if matches!(other_may(self.sys, &p, 0o004), Ok(true)) {
                self.mask(&p, false)?;
            }
        }
        Ok(())
    }

    /// The builder's own tmpfs, with the new root's mount point, the host's, and the empty
    /// directory and file masks bind; then into it.
    fn enter_scratch(&mut self) -> Result<(), SetupError> {
        // Nothing we mount may propagate to the host; host unmounts may still propagate in.
        self.sys
            .make_slave_recursive(Path::new("/"))
            .map_err(step(FIRST_MOUNT_STEP))?;
        self.sys
            .mount(
                "tmpfs",
                Path::new(BASE),
                "tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV,
                Some(c"mode=755,size=1m"),
            )
            .map_err(step("mount the builder's tmpfs"))?;
        for dir in ["newroot", "oldroot", "empty-dir"] {
            self.sys
                .mkdir(&Path::new(BASE).join(dir), 0o755)
                .map_err(step("create the builder's directories"))?;
        }
        self.sys
            .chmod(&Path::new(BASE).join("empty-dir"), 0o555)
            .map_err(step("create an empty directory"))?;
        let empty_file = Path::new(BASE).join("empty-file");
        self.sys
            .create_file(&empty_file)
            .map_err(step("create an empty file"))?;
        self.sys
            .chmod(&empty_file, 0o444)
            .map_err(step("create an empty file"))?;
        self.sys
            .pivot_root(Path::new(BASE), &Path::new(BASE).join("oldroot"))
            .map_err(step("pivot_root into the builder's tmpfs"))?;
        self.sys.chdir(Path::new("/")).map_err(step("chdir /"))?;
        self.sys
            .mount(
                "tmpfs",
                Path::new(NEW),
                "tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV,
                Some(c"mode=755,size=1m"),
            )
            .map_err(step("mount the new root"))
    }

    /// Make the new root read-only, switch to it, and let go of the host's.
    fn enter_new_root(&mut self, cwd: &Path) -> Result<(), SetupError> {
        self.sys
            .remount(
                Path::new(NEW),
                MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
            )
            .map_err(step("make the new root read-only"))?;
        self.sys
            .chdir(Path::new(NEW))
            .map_err(step("chdir to the new root"))?;
        self.sys
            .pivot_root(Path::new("."), Path::new("."))
            .map_err(step("pivot_root into the new root"))?;
        self.sys
            .detach(Path::new("."))
            .map_err(step("detach the host's root"))?;
        self.sys.chdir(Path::new("/")).map_err(step("chdir /"))?;
        self.sys.chdir(cwd).map_err(step(format!(
            "enter the working directory {}",
            cwd.display()
        )))
    }
}

/// Build the new root from the plan and make it the process's root. `cwd` is the working
/// directory to enter afterwards (a path inside the sandbox).
/// `detached` holds mount trees keepout prepared (root callers), attached instead of binding.
pub(super) fn build_root<S: Syscalls>(
    sys: &mut S,
    plan: &SandboxPlan,
    id: &Identity,
    cwd: &Path,
    detached: &HashMap<PathBuf, S::Fd>,
) -> Result<(), SetupError> {
    let mut b = Builder { sys, id };
    b.enter_scratch()?;
    for (n, s) in plan.steps.iter().enumerate() {
        match s {
            MountStep::Bind {
                source,
                target,
                read_only,
                ..
            } => b.bind(
                &old_path(source),
                &new_path(target),
                *read_only,
                detached.get(target),
            )?,
            MountStep::Overlay {
                lower,
                upper,
                work,
                target,
                ..
            } => b.overlay(lower, upper, work, target, detached.get(target))?,
            MountStep::Tmpfs { target, size_mib } => {
                let t = new_path(target);
                b.mkdir_all(&t)?;
                let mode = if target == Path::new("/tmp") {
                    0o1777
                } else {
                    0o755
                };
                b.tmpfs(&t, mode, *size_mib)?;
            }
            MountStep::Mask { target } => b.mask(&new_path(target), true)?,
            MountStep::Text { target, content } => b.text(&new_path(target), content, n)?,
            MountStep::Symlink { target, points_to } => b.symlink(target, points_to)?,
            MountStep::Dev { target } => b.dev(&new_path(target))?,
            MountStep::Proc { target } => b.proc(&new_path(target))?,
        }
    }
    b.enter_new_root(cwd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::syscall::recording::{Call, Handle, Recorder};

    const ID: Identity = Identity {
        uid: 1000,
        gid: 1000,
        host_uid: 1000,
        host_gid: 1000,
        idmap_root: false,
    };

    fn bind(source: &str, target: &str, read_only: bool) -> MountStep {
        MountStep::Bind {
            source: source.into(),
            target: target.into(),
            read_only,
            idmap: false,
        }
    }

    fn plan(steps: Vec<MountStep>) -> SandboxPlan {
        SandboxPlan {
            steps,
            landlock: vec![],
        }
    }

    fn record(
        rec: &mut Recorder,
        steps: Vec<MountStep>,
        detached: &HashMap<PathBuf, Handle>,
    ) -> Result<Vec<String>, SetupError> {
        build_root(rec, &plan(steps), &ID, Path::new("/p"), detached)?;
        Ok(rec.lines())
    }

    /// What every build starts and ends with, around the plan's own steps.
    fn around(steps: &[&str]) -> Vec<String> {
        let mut all = vec![
            "make-rslave /",
            "mount tmpfs /tmp nosuid,nodev mode=755,size=1m",
            "mkdir -m 755 /tmp/newroot",
            "mkdir -m 755 /tmp/oldroot",
            "mkdir -m 755 /tmp/empty-dir",
            "chmod 555 /tmp/empty-dir",
            "create /tmp/empty-file",
            "chmod 444 /tmp/empty-file",
            "pivot_root /tmp /tmp/oldroot",
            "chdir /",
            "mount tmpfs /newroot nosuid,nodev mode=755,size=1m",
        ];
        all.extend_from_slice(steps);
        all.extend_from_slice(&[
            "remount /newroot bind,ro,nosuid,nodev",
            "chdir /newroot",
            "pivot_root . .",
            "detach .",
            "chdir /",
            "chdir /p",
        ]);
        all.into_iter().map(String::from).collect()
    }

    #[test]
    fn a_read_write_project_with_protected_names_pinned_read_only() {
        let mut rec = Recorder::new();
        rec.dir("/oldroot/usr")
            .dir("/oldroot/p/.git/hooks")
            .file("/oldroot/p/.envrc", 0o644);
        let lines = record(
            &mut rec,
            vec![
                bind("/usr", "/usr", true),
                bind("/p", "/p", false),
                bind("/p/.git", "/p/.git", false),
                bind("/p/.git/hooks", "/p/.git/hooks", true),
                bind("/p/.envrc", "/p/.envrc", true),
            ],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            lines,
            around(&[
                "open /oldroot/usr",
                "mkdir -p /newroot/usr",
                "open /newroot/usr",
                "rbind /oldroot/usr /newroot/usr",
                "setattr -R /newroot/usr ro,nosuid,nodev",
                "open /oldroot/p",
                "mkdir -p /newroot/p",
                "open /newroot/p",
                "rbind /oldroot/p /newroot/p",
                "setattr -R /newroot/p nosuid,nodev",
                "open /oldroot/p/.git",
                "mkdir -p /newroot/p/.git",
                "open /newroot/p/.git",
                "rbind /oldroot/p/.git /newroot/p/.git",
                "setattr -R /newroot/p/.git nosuid,nodev",
                "open /oldroot/p/.git/hooks",
                "mkdir -p /newroot/p/.git/hooks",
                "open /newroot/p/.git/hooks",
                "rbind /oldroot/p/.git/hooks /newroot/p/.git/hooks",
                "setattr -R /newroot/p/.git/hooks ro,nosuid,nodev",
                // A file: its parent is made, the file itself is there already (the project's
                // bind shows it), so it is not created.
                "open /oldroot/p/.envrc",
                "mkdir -p /newroot/p",
                "open /newroot/p/.envrc",
                "rbind /oldroot/p/.envrc /newroot/p/.envrc",
                "setattr -R /newroot/p/.envrc ro,nosuid,nodev",
            ])
        );
    }

    #[test]
    fn hidden_paths_text_and_symlinks() {
        let mut rec = Recorder::new();
        rec.dir("/oldroot/etc/ssl/private")
            .file("/oldroot/etc/ssh/ssh_host_rsa_key", 0o600)
            .file("/oldroot/etc/gitconfig", 0o644);
        let lines = record(
            &mut rec,
            vec![
                bind("/etc", "/etc", true),
                MountStep::Mask {
                    target: "/etc/ssl/private".into(),
                },
                MountStep::Mask {
                    target: "/etc/ssh/ssh_host_rsa_key".into(),
                },
                MountStep::Text {
                    target: "/etc/gitconfig".into(),
                    content: "[user]\n".into(),
                },
                MountStep::Symlink {
                    target: "/bin".into(),
                    points_to: "usr/bin".into(),
                },
            ],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            lines,
            around(&[
                "open /oldroot/etc",
                "mkdir -p /newroot/etc",
                "open /newroot/etc",
                "rbind /oldroot/etc /newroot/etc",
                "setattr -R /newroot/etc ro,nosuid,nodev",
                "bind /empty-dir /newroot/etc/ssl/private",
                "setattr /newroot/etc/ssl/private ro,nosuid,nodev",
                "bind /empty-file /newroot/etc/ssh/ssh_host_rsa_key",
                "setattr /newroot/etc/ssh/ssh_host_rsa_key ro,nosuid,nodev",
                "write /text-3 \"[user]\\n\"",
                "chmod 444 /text-3",
                "bind /text-3 /newroot/etc/gitconfig",
                "setattr /newroot/etc/gitconfig ro,nosuid,nodev",
                "mkdir -p /newroot",
                "symlink /newroot/bin -> usr/bin",
            ])
        );
    }

    #[test]
    fn a_hidden_path_that_went_away_is_an_error_naming_it() {
        let mut rec = Recorder::new();
        rec.dir("/oldroot/home/alice");
        let err = record(
            &mut rec,
            vec![
                bind("/home/alice", "/home/alice", false),
                MountStep::Mask {
                    target: "/home/alice/.ssh".into(),
                },
            ],
            &HashMap::new(),
        )
        .unwrap_err();
        assert_eq!(err.step, "mask /newroot/home/alice/.ssh");
        assert_eq!(err.error.raw_os_error(), Some(libc::ENOENT));
        // The build stopped there: the sandbox never switched to a root missing a mask.
        assert!(matches!(
            rec.calls().last(),
            Some(Call::MountSetattr { path, .. }) if path == Path::new("/newroot/home/alice")
        ));
    }

    #[test]
    fn a_tmpfs_home_tmp_dev_and_proc() {
        let mut rec = Recorder::new();
        for node in ["null", "zero", "urandom", "tty"] {
            rec.file(format!("/oldroot/dev/{node}"), 0o666);
        }
        // /proc as a new procfs shows it: kcore is root's alone (no mount on top), sysrq-trigger
        // writable by root only, keys readable by all.
        rec.dir("proc:/sys")
            .dir("proc:/irq")
            .dir("proc:/bus")
            .dir("proc:/fs")
            .file("proc:/sysrq-trigger", 0o200)
            .file("proc:/kcore", 0o400)
            .file("proc:/keys", 0o444)
            .dir("proc:/acpi");
        let lines = record(
            &mut rec,
            vec![
                MountStep::Tmpfs {
                    target: "/home/alice".into(),
                    size_mib: 2048,
                },
                MountStep::Tmpfs {
                    target: "/tmp".into(),
                    size_mib: 512,
                },
                MountStep::Dev {
                    target: "/dev".into(),
                },
                MountStep::Proc {
                    target: "/proc".into(),
                },
            ],
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(
            lines,
            around(&[
                "mkdir -p /newroot/home/alice",
                "mount tmpfs /newroot/home/alice nosuid,nodev mode=755,size=2048m,uid=1000,gid=1000",
                "mkdir -p /newroot/tmp",
                "mount tmpfs /newroot/tmp nosuid,nodev mode=1777,size=512m,uid=1000,gid=1000",
                "mkdir -p /newroot/dev",
                "mount tmpfs /newroot/dev nosuid mode=755,size=1m,uid=1000,gid=1000",
                "create /newroot/dev/null",
                "bind /oldroot/dev/null /newroot/dev/null",
                "setattr /newroot/dev/null nosuid",
                "create /newroot/dev/zero",
                "bind /oldroot/dev/zero /newroot/dev/zero",
                "setattr /newroot/dev/zero nosuid",
                "create /newroot/dev/urandom",
                "bind /oldroot/dev/urandom /newroot/dev/urandom",
                "setattr /newroot/dev/urandom nosuid",
                "create /newroot/dev/tty",
                "bind /oldroot/dev/tty /newroot/dev/tty",
                "setattr /newroot/dev/tty nosuid",
                "mkdir -p /newroot/dev/pts",
                "mount devpts /newroot/dev/pts nosuid,noexec newinstance,ptmxmode=0666,mode=620",
                "mkdir -p /newroot/dev/shm",
                "mount tmpfs /newroot/dev/shm nosuid,nodev mode=1777,size=256m,uid=1000,gid=1000",
                "symlink /newroot/dev/ptmx -> pts/ptmx",
                "symlink /newroot/dev/fd -> /proc/self/fd",
                "symlink /newroot/dev/stdin -> /proc/self/fd/0",
                "symlink /newroot/dev/stdout -> /proc/self/fd/1",
                "symlink /newroot/dev/stderr -> /proc/self/fd/2",
                "remount /newroot/dev bind,ro,nosuid",
                "mkdir -p /newroot/proc",
                "mount proc /newroot/proc nosuid,nodev,noexec",
                "bind /newroot/proc/sys /newroot/proc/sys",
                "setattr /newroot/proc/sys ro,nosuid,nodev",
                "bind /newroot/proc/irq /newroot/proc/irq",
                "setattr /newroot/proc/irq ro,nosuid,nodev",
                "bind /newroot/proc/bus /newroot/proc/bus",
                "setattr /newroot/proc/bus ro,nosuid,nodev",
                "bind /newroot/proc/fs /newroot/proc/fs",
                "setattr /newroot/proc/fs ro,nosuid,nodev",
                "bind /empty-file /newroot/proc/keys",
                "setattr /newroot/proc/keys ro,nosuid,nodev",
                "bind /empty-dir /newroot/proc/acpi",
                "setattr /newroot/proc/acpi ro,nosuid,nodev",
            ])
        );
    }

    #[test]
    fn a_review_overlay_made_inside_and_one_prepared_outside() {
        let overlay = |target: &str| MountStep::Overlay {
            lower: vec!["/p".into()],
            upper: "/r/upper".into(),
            work: "/r/work".into(),
            target: target.into(),
            idmap_lower: false,
        };
        let mut rec = Recorder::new();
        rec.dir("/oldroot/r/upper").dir("/oldroot/p");
        let lines = record(&mut rec, vec![overlay("/p")], &HashMap::new()).unwrap();
        assert_eq!(
            lines,
            around(&[
                "mkdir -p /newroot/p",
                "overlay lower=/oldroot/p upper=/oldroot/r/upper work=/oldroot/r/work",
                "open /newroot/p",
                "move-mount [overlay 1] /newroot/p",
            ])
        );

        // A root caller's keepout made the overlay and the project's idmapped bind outside.
        let mut rec = Recorder::new();
        rec.dir("/oldroot/r/upper").dir("/oldroot/q");
        let detached = HashMap::from([
            (
                "/p".into(),
                rec.tree("overlay made by keepout", "/oldroot/r/upper"),
            ),
            ("/q".into(), rec.tree("idmapped /q", "/oldroot/q")),
        ]);
        let lines = record(
            &mut rec,
            vec![overlay("/p"), bind("/q", "/q", false)],
            &detached,
        )
        .unwrap();
        assert_eq!(
            lines,
            around(&[
                "mkdir -p /newroot/p",
                "open /newroot/p",
                "move-mount [overlay made by keepout] /newroot/p",
                "mkdir -p /newroot/q",
                "open /newroot/q",
                "move-mount [idmapped /q] /newroot/q",
                "setattr -R /newroot/q nosuid,nodev",
            ])
        );
    }
}
