//! A [`Syscalls`] double for unit tests: makes no system call, records every call that changes
//! something as a [`Call`], and answers the questions (`lstat`, `exists`, `is_dir`) from a small
//! model of the file system.
//!
//! Guarantee: [`Recorder::calls`] lists, in order, every mutating call the code under test made,
//! and nothing else (queries are answered, not recorded). The model is a map from the paths the
//! builder names to what is there: what the test declares, plus what recorded calls create.
//! A bind or `move_mount` shows its source's declared entries beneath its target, and a new
//! `fstype` mount shows the entries declared under `fstype:` (e.g. `proc:/sys`), so a test
//! declares host files once, at their host paths. `pivot_root` is recorded, not emulated.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;

use rustix::process::Resource;
use seccompiler::BpfProgram;

use super::{ConfineCalls, FileInfo, Syscalls};
use crate::linux::sys;
use crate::linux::terminal::Terminal;
use crate::plan::LandlockRule;

/// A handle the recorder gave out: the path it was opened on, or the tree it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Handle {
    Path(PathBuf),
    /// A detached mount tree (made by keepout outside the sandbox, or by [`Syscalls::overlay`]),
    /// showing `shows` (a path of the model) wherever it is attached.
    Tree {
        name: String,
        shows: PathBuf,
    },
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handle::Path(p) => write!(f, "{}", p.display()),
            Handle::Tree { name, .. } => write!(f, "[{name}]"),
        }
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    MakeSlaveRecursive(PathBuf),
    Mount {
        fstype: String,
        target: PathBuf,
        flags: String,
        data: Option<String>,
    },
    Bind {
        source: PathBuf,
        target: PathBuf,
    },
    BindHandles {
        source: Handle,
        target: Handle,
    },
    Remount {
        target: PathBuf,
        flags: String,
    },
    Detach(PathBuf),
    MountSetattr {
        path: PathBuf,
        attrs: String,
        recursive: bool,
    },
    OpenPath(PathBuf),
    MoveMount {
        tree: Handle,
        target: Handle,
    },
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
    MkdirAll(PathBuf),
    Mkdir(PathBuf, u32),
    Chmod(PathBuf, u32),
    CreateFile(PathBuf),
    WriteFile(PathBuf, String),
    Symlink {
        path: PathBuf,
        points_to: PathBuf,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chdir(PathBuf),
    Setsid,
    AttachTerminal,
    ResetSignals,
    Rlimit(&'static str, u64),
    DropCapabilities,
    NoNewPrivs,
    Landlock(Vec<LandlockRule>),
    /// A seccomp filter of this many instructions, with a listener sent to keepout.
    SeccompNotifying(usize),
    Seccomp(usize),
    CloseFrom(u32),
}

/// The names of the set flags, in the order `mount(8)` would write them, joined with `,`.
fn mount_flags(flags: MountFlags) -> String {
    let known = [
        (MountFlags::BIND, "bind"),
        (MountFlags::RDONLY, "ro"),
        (MountFlags::NOSUID, "nosuid"),
        (MountFlags::NODEV, "nodev"),
        (MountFlags::NOEXEC, "noexec"),
    ];
    let unknown = known.iter().fold(flags, |rest, (flag, _)| rest - *flag);
    assert!(unknown.is_empty(), "name {unknown:?} in the recorder");
    known
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

fn mount_attrs(attrs: u64) -> String {
    [
        (sys::MOUNT_ATTR_RDONLY, "ro"),
        (sys::MOUNT_ATTR_NOSUID, "nosuid"),
        (sys::MOUNT_ATTR_NODEV, "nodev"),
    ]
    .iter()
    .filter(|(bit, _)| attrs & bit != 0)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

/// One line per call, close to the shell command that would do the same.
impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::MakeSlaveRecursive(p) => write!(f, "make-rslave {}", p.display()),
            Call::Mount {
                fstype,
                target,
                flags,
                data,
            } => {
                write!(f, "mount {fstype} {} {flags}", target.display())?;
                match data {
                    Some(d) => write!(f, " {d}"),
                    None => Ok(()),
                }
            }
            Call::Bind { source, target } => {
                write!(f, "bind {} {}", source.display(), target.display())
            }
            Call::BindHandles { source, target } => write!(f, "rbind {source} {target}"),
            Call::Remount { target, flags } => write!(f, "remount {} {flags}", target.display()),
            Call::Detach(p) => write!(f, "detach {}", p.display()),
            Call::MountSetattr {
                path,
                attrs,
                recursive,
            } => write!(
                f,
                "setattr{} {} {attrs}",
                if *recursive { " -R" } else { "" },
                path.display()
            ),
            Call::OpenPath(p) => write!(f, "open {}", p.display()),
            Call::MoveMount { tree, target } => write!(f, "move-mount {tree} {target}"),
            Call::Overlay { lower, upper, work } => write!(
                f,
                "overlay lower={} upper={} work={}",
                lower
                    .iter()
                    .map(|p| p.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(":"),
                upper.display(),
                work.display()
            ),
            Call::MkdirAll(p) => write!(f, "mkdir -p {}", p.display()),
            Call::Mkdir(p, mode) => write!(f, "mkdir -m {mode:o} {}", p.display()),
            Call::Chmod(p, mode) => write!(f, "chmod {mode:o} {}", p.display()),
            Call::CreateFile(p) => write!(f, "create {}", p.display()),
            Call::WriteFile(p, content) => write!(f, "write {} {content:?}", p.display()),
            Call::Symlink { path, points_to } => {
                write!(f, "symlink {} -> {}", path.display(), points_to.display())
            }
            Call::PivotRoot { new_root, put_old } => {
                write!(f, "pivot_root {} {}", new_root.display(), put_old.display())
            }
            Call::Chdir(p) => write!(f, "chdir {}", p.display()),
            Call::Setsid => write!(f, "setsid"),
            Call::AttachTerminal => write!(f, "attach-terminal"),
            Call::ResetSignals => write!(f, "reset-signals"),
            Call::Rlimit(what, n) => write!(f, "rlimit {what} {n}"),
            Call::DropCapabilities => write!(f, "drop-capabilities"),
            Call::NoNewPrivs => write!(f, "no_new_privs"),
            Call::Landlock(rules) => {
                write!(f, "landlock")?;
                for r in rules {
                    write!(f, " {}={:?}", r.path.display(), r.access)?;
                }
                Ok(())
            }
            Call::SeccompNotifying(n) => write!(f, "seccomp {n} instructions, listener sent"),
            Call::Seccomp(n) => write!(f, "seccomp {n} instructions"),
            Call::CloseFrom(n) => write!(f, "cloexec {n}.."),
        }
    }
}

const DIR: FileInfo = FileInfo {
    is_dir: true,
    is_file: false,
    mode: 0o755,
};
const FILE: FileInfo = FileInfo {
    is_dir: false,
    is_file: true,
    mode: 0o644,
};

/// The recording double.
#[derive(Default)]
pub(crate) struct Recorder {
    calls: Vec<Call>,
    /// What is at each path, declared or created.
    entries: BTreeMap<PathBuf, FileInfo>,
    /// Mount point -> the model path whose entries show there (latest mount last).
    mounts: Vec<(PathBuf, PathBuf)>,
    trees: usize,
    /// The call to fail: the first whose line starts with this.
    pub fail_on: Option<&'static str>,
    /// The kernel has no seccomp user notification (no listener).
    pub no_listener: bool,
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder::default()
    }

    /// Declare a directory (and its parents) in the model.
    pub(crate) fn dir(&mut self, path: impl AsRef<Path>) -> &mut Recorder {
        for a in path.as_ref().ancestors() {
            self.entries.entry(a.to_path_buf()).or_insert(DIR);
        }
        self
    }

    /// Declare a regular file (and its parent directories) with these permission bits.
    pub(crate) fn file(&mut self, path: impl AsRef<Path>, mode: u32) -> &mut Recorder {
        let path = path.as_ref();
        if let Some(parent) = path.parent() {
            self.dir(parent);
        }
        self.entries
            .insert(path.to_path_buf(), FileInfo { mode, ..FILE });
        self
    }

    /// A detached tree named `name` that shows the model's `shows`, as keepout prepares them for
    /// root callers.
    pub(crate) fn tree(&self, name: &str, shows: impl AsRef<Path>) -> Handle {
        Handle::Tree {
            name: name.into(),
            shows: shows.as_ref().to_path_buf(),
        }
    }

    /// The calls so far, one line each (see [`Call`]'s `Display`).
    pub(crate) fn lines(&self) -> Vec<String> {
        self.calls.iter().map(Call::to_string).collect()
    }

    pub(crate) fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Record `call`; it fails (EPERM, still recorded) when its line starts with `fail_on`.
    fn record(&mut self, call: Call) -> io::Result<()> {
        let fails = self
            .fail_on
            .is_some_and(|prefix| call.to_string().starts_with(prefix));
        self.calls.push(call);
        if fails {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(())
    }

    /// What is at `path`: declared or created there, else what the latest mount above it shows
    /// (which hides whatever was beneath it before).
    fn lookup(&self, path: &Path) -> Option<FileInfo> {
        if let Some(info) = self.entries.get(path) {
            return Some(*info);
        }
        let (rest, shows) = self.mounts.iter().rev().find_map(|(point, shows)| {
            let rest = path.strip_prefix(point).ok()?;
            (!rest.as_os_str().is_empty()).then_some((rest, shows))
        })?;
        self.lookup(&shows.join(rest))
    }

    fn shows(&self, handle: &Handle) -> PathBuf {
        match handle {
            Handle::Path(p) => p.clone(),
            Handle::Tree { shows, .. } => shows.clone(),
        }
    }

    fn mounted(&mut self, point: &Path, shows: PathBuf) {
        self.mounts.push((point.to_path_buf(), shows));
    }
}

fn not_found() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl Syscalls for Recorder {
    type Fd = Handle;

    fn make_slave_recursive(&mut self, path: &Path) -> io::Result<()> {
        self.record(Call::MakeSlaveRecursive(path.into()))?;
        Ok(())
    }

    fn mount(
        &mut self,
        _source: &str,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: Option<&CStr>,
    ) -> io::Result<()> {
        self.record(Call::Mount {
            fstype: fstype.into(),
            target: target.into(),
            flags: mount_flags(flags),
            data: data.map(|d| d.to_string_lossy().into_owned()),
        })?;
        self.mounted(target, PathBuf::from(format!("{fstype}:")));
        Ok(())
    }

    fn bind(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        self.record(Call::Bind {
            source: source.into(),
            target: target.into(),
        })?;
        self.mounted(target, source.to_path_buf());
        Ok(())
    }

    fn bind_handles(&mut self, source: &Handle, target: &Handle) -> io::Result<()> {
        self.record(Call::BindHandles {
            source: source.clone(),
            target: target.clone(),
        })?;
        let (point, shows) = (self.shows(target), self.shows(source));
        self.mounted(&point, shows);
        Ok(())
    }

    fn remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()> {
        self.record(Call::Remount {
            target: target.into(),
            flags: mount_flags(flags),
        })?;
        Ok(())
    }

    fn detach(&mut self, target: &Path) -> io::Result<()> {
        self.record(Call::Detach(target.into()))?;
        Ok(())
    }

    fn mount_setattr(&mut self, path: &Path, attrs: u64, recursive: bool) -> io::Result<()> {
        self.record(Call::MountSetattr {
            path: path.into(),
            attrs: mount_attrs(attrs),
            recursive,
        })?;
        Ok(())
    }

    fn open_path(&mut self, path: &Path) -> io::Result<Handle> {
        self.record(Call::OpenPath(path.into()))?;
        self.lookup(path).ok_or_else(not_found)?;
        Ok(Handle::Path(path.into()))
    }

    fn is_dir(&mut self, fd: &Handle) -> io::Result<bool> {
        let shows = self.shows(fd);
        Ok(self.lookup(&shows).ok_or_else(not_found)?.is_dir)
    }

    fn move_mount(&mut self, tree: &Handle, target: &Handle) -> io::Result<()> {
        self.record(Call::MoveMount {
            tree: tree.clone(),
            target: target.clone(),
        })?;
        let (point, shows) = (self.shows(target), self.shows(tree));
        self.mounted(&point, shows);
        Ok(())
    }

    fn overlay(&mut self, lower: &[PathBuf], upper: &Path, work: &Path) -> io::Result<Handle> {
        self.record(Call::Overlay {
            lower: lower.to_vec(),
            upper: upper.into(),
            work: work.into(),
        })?;
        self.trees += 1;
        Ok(Handle::Tree {
            name: format!("overlay {}", self.trees),
            shows: upper.into(),
        })
    }

    fn mkdir_all(&mut self, path: &Path) -> io::Result<()> {
        self.record(Call::MkdirAll(path.into()))?;
        if self.lookup(path).is_none() {
            self.dir(path);
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(Call::Mkdir(path.into(), mode))?;
        self.entries.insert(path.into(), FileInfo { mode, ..DIR });
        Ok(())
    }

    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(Call::Chmod(path.into(), mode))?;
        Ok(())
    }

    fn create_file(&mut self, path: &Path) -> io::Result<()> {
        self.record(Call::CreateFile(path.into()))?;
        self.entries.insert(path.into(), FILE);
        Ok(())
    }

    fn write_file(&mut self, path: &Path, content: &str) -> io::Result<()> {
        self.record(Call::WriteFile(path.into(), content.into()))?;
        self.entries.insert(path.into(), FILE);
        Ok(())
    }

    fn symlink(&mut self, points_to: &Path, path: &Path) -> io::Result<()> {
        self.record(Call::Symlink {
            path: path.into(),
            points_to: points_to.into(),
        })?;
        Ok(())
    }

    fn lstat(&mut self, path: &Path) -> io::Result<FileInfo> {
        self.lookup(path).ok_or_else(not_found)
    }

    fn exists(&mut self, path: &Path) -> bool {
        self.lookup(path).is_some()
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.record(Call::PivotRoot {
            new_root: new_root.into(),
            put_old: put_old.into(),
        })?;
        Ok(())
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        self.record(Call::Chdir(path.into()))?;
        Ok(())
    }
}

impl ConfineCalls for Recorder {
    fn setsid(&mut self) -> io::Result<()> {
        self.record(Call::Setsid)
    }

    fn attach_terminal(&mut self, _terminal: &Terminal) -> io::Result<()> {
        self.record(Call::AttachTerminal)
    }

    fn reset_signals(&mut self) {
        let _ = self.record(Call::ResetSignals);
    }

    fn set_rlimit(&mut self, resource: Resource, limit: u64) -> io::Result<()> {
        let name = match resource {
            Resource::Nproc => "nproc",
            Resource::Core => "core",
            _ => "other",
        };
        self.record(Call::Rlimit(name, limit))
    }

    fn drop_capabilities(&mut self) -> io::Result<()> {
        self.record(Call::DropCapabilities)
    }

    fn set_no_new_privs(&mut self) -> io::Result<()> {
        self.record(Call::NoNewPrivs)
    }

    fn landlock(&mut self, rules: &[LandlockRule]) -> io::Result<()> {
        self.record(Call::Landlock(rules.to_vec()))
    }

    fn seccomp_notifying(&mut self, filter: &BpfProgram, _notify: &std::os::fd::OwnedFd) -> bool {
        !self.no_listener && self.record(Call::SeccompNotifying(filter.len())).is_ok()
    }

    fn seccomp(&mut self, filter: &BpfProgram) -> io::Result<()> {
        self.record(Call::Seccomp(filter.len()))
    }

    fn close_from(&mut self, first: u32) -> io::Result<()> {
        self.record(Call::CloseFrom(first))
    }
}
