//! A18, the host's memory and disk: the sandbox is what the kernel's OOM killer takes first;
//! `--memory` puts it in a memory cgroup of its own; a watcher in keepout stops it before it
//! leaves a writable host filesystem without a reserve for the host.
//!
//! Guarantees:
//! * every process of the sandbox has `oom_score_adj` 1000 (init sets it on itself before it
//!   does anything else; the command inherits it); keepout's own process keeps the caller's;
//! * with a memory limit, init is in the cgroup before it builds the root or starts the command,
//!   so every page the sandbox allocates (its tmpfs included) is charged there; the cgroup is
//!   removed after the run, also when the kernel OOM-killed processes in it; where no limit can
//!   be set, [`Resources::prepare`] fails and nothing runs;
//! * a run does not start when a writable host filesystem it sees is already below the reserve,
//!   and is killed (the whole pid namespace) when one gets there, polled fast enough that a
//!   writer at [`ASSUMED_RATE`] cannot pass the reserve between two polls.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{Access, Mode, OFlags};
use rustix::process::{Pid, Signal};

use crate::error::{Error, Result};
use crate::limits::{human_size, DiskReserve, Stopped};
use crate::outcome::Outcome;
use crate::policy::{MountKind, Policy};

/// Make this process (and everything it starts) the OOM killer's first choice. Any process may
/// raise its own score.
pub(crate) fn raise_oom_score() -> io::Result<()> {
    let fd = rustix::fs::open(
        "/proc/self/oom_score_adj",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::io::write(&fd, b"1000")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Memory: a cgroup of the sandbox's own
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A cgroup directory under which this process can make a memory cgroup.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    version: Version,
    parent: PathBuf,
}

impl Place {
    pub(crate) fn describe(&self) -> String {
        match self.version {
            Version::V2 => format!("cgroup v2, in {}", self.parent.display()),
            Version::V1 => format!("cgroup v1 memory controller, in {}", self.parent.display()),
        }
    }
}

/// One line of `/proc/self/mountinfo`.
struct MountLine {
    dev: String,
    root: String,
    mount_point: PathBuf,
    fstype: String,
    source: String,
    super_opts: String,
}

fn unescape(field: &str) -> String {
    let mut out = Vec::new();
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mountinfo() -> Vec<MountLine> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountLine {
                dev: f.get(2)?.to_string(),
                root: unescape(f.get(3)?),
                mount_point: PathBuf::from(unescape(f.get(4)?)),
                fstype: r.first()?.to_string(),
                source: unescape(r.get(1)?),
                super_opts: r.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// This process's cgroup directory in the hierarchy mounted by `m` at `path` (relative to the
/// hierarchy's root, as `/proc/self/cgroup` has it).
fn cgroup_dir(m: &MountLine, path: &str) -> Option<PathBuf> {
    let rel = if m.root == "/" {
        path
    } else {
        path.strip_prefix(m.root.as_str())?
    };
    Some(m.mount_point.join(rel.trim_start_matches('/')))
}

fn writable(p: &Path) -> bool {
    rustix::fs::access(p, Access::WRITE_OK).is_ok()
}

fn words_contain(file: &Path, word: &str) -> bool {
    std::fs::read_to_string(file).is_ok_and(|t| t.split_whitespace().any(|w| w == word))
}

/// Where this process can make a memory cgroup, or why it cannot (a sentence).
pub(crate) fn memory_place() -> std::result::Result<Place, String> {
    let uid = rustix::process::getuid().as_raw();
    let who = if uid == 0 {
        "root".to_string()
    } else {
        format!("uid {uid}")
    };
    let mounts = mountinfo();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut why = Vec::new();

    // cgroup v2: the nearest cgroup at or above ours that hands the memory controller to its
    // children and that we may write (a systemd user manager's delegated subtree, or root's).
    let v2_path = own.lines().find_map(|l| l.strip_prefix("0::"));
    match (mounts.iter().find(|m| m.fstype == "cgroup2"), v2_path) {
        (Some(m), Some(path)) => match cgroup_dir(m, path) {
            Some(dir) => {
                let mut found = None;
                for d in dir.ancestors() {
                    if words_contain(&d.join("cgroup.subtree_control"), "memory")
                        && writable(d)
                        && writable(&d.join("cgroup.procs"))
                    {
                        found = Some(d.to_path_buf());
                        break;
                    }
                    if d == m.mount_point {
                        break;
                    }
                }
                if let Some(parent) = found {
                    return Ok(Place {
                        version: Version::V2,
                        parent,
                    });
                }
                if !words_contain(&m.mount_point.join("cgroup.controllers"), "memory") {
                    why.push(format!(
                        "cgroup v2 ({}) has no memory controller (it is bound to cgroup v1 here)",
                        m.mount_point.display()
                    ));
                } else {
                    why.push(format!(
                        "the cgroup v2 memory controller is not delegated to {who}: no cgroup at or \
                         above {} enables memory for its children and is writable by {who}",
                        dir.display()
                    ));
                }
            }
            None => why.push("this process's cgroup v2 is outside the mounted hierarchy".into()),
        },
        _ => why.push("no cgroup v2 hierarchy is mounted".into()),
    }

    // cgroup v1: the memory hierarchy, in our own cgroup there (root only, in practice).
    let v1 = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == "memory"));
    let v1_path = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    });
    if let (Some(m), Some(path)) = (v1, v1_path) {
        match cgroup_dir(m, path) {
            Some(dir) if writable(&dir) => {
                return Ok(Place {
                    version: Version::V1,
                    parent: dir,
                })
            }
            Some(dir) => why.push(format!(
                "the cgroup v1 memory controller's cgroup {} is not writable by {who}",
                dir.display()
            )),
            None => why.push("this process's v1 memory cgroup is outside the mount".into()),
        }
    }
    Err(why.join("; "))
}

/// What to do when no memory limit can be set (the hint of the error, and `keepout doctor`).
pub(crate) fn memory_hint(limit: Option<u64>) -> String {
    let size = limit
        .map(|l| human_size(l).replace(' ', "").replace("iB", ""))
        .unwrap_or_else(|| "4G".into());
    format!(
        "Cap keepout as a whole instead: `systemd-run --user --scope -p MemoryMax={size} keepout run ...` \
         (with a systemd user session), or have the memory controller delegated to your user \
         (systemd does so for user@.service with Delegate=memory; then keepout makes its own cgroup there), \
         or run as root; or leave out --memory."
    )
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A memory cgroup made for one run; removed when dropped.
pub(crate) struct MemoryCgroup {
    dir: PathBuf,
    version: Version,
    limit: u64,
}

impl MemoryCgroup {
    pub(crate) fn create(limit: u64) -> Result<MemoryCgroup> {
        let place = memory_place().map_err(|why| Error::Resources {
            message: format!(
                "--memory {}: keepout cannot set a memory limit here: {why}",
                human_size(limit)
            ),
            hint: memory_hint(Some(limit)),
        })?;
        sweep_stale(&place.parent);
        let pid = std::process::id();
        let dir = place.parent.join(format!(
            "keepout-{pid}-{}",
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let setup = |e: io::Error, what: &str| Error::Setup {
            step: format!("{what} ({})", place.describe()),
            message: crate::error::describe_io(&e),
        };
        std::fs::create_dir(&dir).map_err(|e| setup(e, "make the sandbox's memory cgroup"))?;
        let cg = MemoryCgroup {
            dir,
            version: place.version,
            limit,
        };
        let written = match cg.version {
            Version::V2 => cg.write("memory.max", limit).map(|()| {
                // No swap beyond the limit (absent without swap accounting).
                let _ = cg.write("memory.swap.max", 0);
            }),
            Version::V1 => cg.write("memory.limit_in_bytes", limit).map(|()| {
                // Memory and swap together (absent without swap accounting).
                let _ = cg.write("memory.memsw.limit_in_bytes", limit);
            }),
        };
        written.map_err(|e| setup(e, "set the memory limit"))?;
        Ok(cg)
    }

    fn write(&self, file: &str, value: u64) -> io::Result<()> {
        std::fs::write(self.dir.join(file), value.to_string())
    }

    /// Move `pid` (and so everything it starts later) into the cgroup.
    pub(crate) fn add(&self, pid: i32) -> Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).map_err(|e| Error::Setup {
            step: format!(
                "put the sandbox in its memory cgroup {}",
                self.dir.display()
            ),
            message: crate::error::describe_io(&e),
        })
    }

    /// How many processes the kernel's OOM killer killed in the cgroup.
    fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The run's processes are gone (init was reaped and took its namespace with it), but
        // the kernel may take a moment to let go of the cgroup.
        for i in 0..100 {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(Duration::from_millis(if i < 10 { 1 } else { 10 })),
            }
        }
        eprintln!(
            "keepout: warning: cannot remove the sandbox's memory cgroup {}",
            self.dir.display()
        );
    }
}

/// Remove cgroups that a keepout killed with SIGKILL left behind (empty ones only: the kernel
/// refuses to remove a cgroup with processes).
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("keepout-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Disk: keep a reserve on every writable host filesystem
// ---------------------------------------------------------------------------------------------

/// The write rate the watcher is tuned for (a fast NVMe disk, or a tmpfs): between two polls,
/// a writer this fast (or as fast as the last two polls measured, if faster) uses at most a
/// quarter of the room left above the reserve.
pub(crate) const ASSUMED_RATE: u64 = 2 << 30;
/// The longest time between two polls (room left: 2 GiB and more at [`ASSUMED_RATE`]).
pub(crate) const MAX_INTERVAL: Duration = Duration::from_millis(250);
/// The shortest (room left: 8 MiB and less at [`ASSUMED_RATE`]).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// How long the watcher allows for the kill to take effect (and for its own wake-up on a busy
/// machine): the sandbox is stopped early when, at the rate measured, it would use the room
/// left within this time plus the next interval.
pub(crate) const KILL_MARGIN: Duration = Duration::from_millis(10);

/// A writable host filesystem the sandbox sees.
struct Filesystem {
    /// An `O_PATH` descriptor of the directory (statvfs on it, never by path again).
    dir: OwnedFd,
    role: String,
    /// The directory's path and its filesystem's device number, for [`Filesystem::device`].
    path: PathBuf,
    dev: u64,
}

impl Filesystem {
    /// The filesystem as `df` names it: worked out only when a message needs it (from
    /// /proc/self/mountinfo, which costs more to read than the rest of the watch's set-up).
    fn device(&self) -> String {
        device_name(&self.path, self.dev)
    }
}

struct Usage {
    free: u64,
    total: u64,
}

impl Filesystem {
    fn usage(&self) -> io::Result<Usage> {
        let s = rustix::fs::fstatvfs(&self.dir)?;
        // f_bavail, not f_bfree: root's reserved blocks are the host's, not the sandbox's.
        Ok(Usage {
            free: s.f_bavail.saturating_mul(s.f_frsize),
            total: s.f_blocks.saturating_mul(s.f_frsize),
        })
    }
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// The writable host directories of the policy, each with what it is.
fn writable_host_dirs(policy: &Policy) -> Vec<(PathBuf, String)> {
    let mut dirs = Vec::new();
    for m in &policy.mounts {
        let host = m.source.clone().unwrap_or_else(|| m.path.clone());
        let role = match &m.kind {
            MountKind::ReadWrite if Some(&m.path) == policy.project.as_ref() => {
                if policy.mode == crate::policy::Mode::Landlock {
                    continue; // read-only in landlock mode
                }
                "project".to_string()
            }
            MountKind::ReadWrite if m.path == policy.home_path => "home".into(),
            MountKind::ReadWrite if policy.mode == crate::policy::Mode::Landlock => {
                if !policy.requested_rw.contains(&m.path) {
                    continue;
                }
                "--rw".into()
            }
            MountKind::ReadWrite => {
                if policy
                    .project
                    .as_ref()
                    .is_some_and(|p| m.path.starts_with(p))
                {
                    continue; // inside the project (a pinned .git): its filesystem already
                }
                "--rw".into()
            }
            MountKind::Kept => "workspace".into(),
            MountKind::Overlay { .. } if Some(&m.path) == policy.project.as_ref() => {
                "review".into()
            }
            MountKind::Overlay { .. } => "workspace".into(),
            _ => continue,
        };
        dirs.push((host, role));
    }
    dirs
}

/// The device of the filesystem at `dir`, as `df` names it.
fn device_name(dir: &Path, st_dev: u64) -> String {
    let dev = format!(
        "{}:{}",
        rustix::fs::major(st_dev),
        rustix::fs::minor(st_dev)
    );
    let best = mountinfo()
        .into_iter()
        .filter(|m| m.dev == dev && dir.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count());
    match best {
        Some(m) if m.source.starts_with('/') => m.source,
        Some(m) => format!("{} on {}", m.fstype, m.mount_point.display()),
        None => dir.display().to_string(),
    }
}

/// Where the disk watcher says what it stopped.
type StoppedSlot = Arc<Mutex<Option<Stopped>>>;

/// Everything a run's limits need: made before the sandbox starts, attached to it once it
/// exists, finished after it.
pub(crate) struct Resources {
    memory: Option<MemoryCgroup>,
    reserve: DiskReserve,
    filesystems: Vec<Filesystem>,
    /// The watcher's stop channel (it ends when this is dropped) and where it puts what it did:
    /// set before it kills, so it is there when the run's end is seen. The thread is not joined
    /// (on a busy machine it may not even have run yet when a short run ends).
    watcher: Option<(mpsc::Sender<()>, StoppedSlot)>,
    /// The watcher, not started yet: when to start it, and what starts it. A run shorter than
    /// the watcher's first interval (its first poll is made at once, in `attach`) never needs
    /// the thread; see [`Resources::start_watch_in`].
    deferred: Option<(std::time::Instant, Box<dyn FnOnce() -> WatcherHandle>)>,
}

type WatcherHandle = (mpsc::Sender<()>, StoppedSlot);

impl Resources {
    /// Make the memory cgroup (or fail: no limit can be set here), and check that every
    /// writable host filesystem of the policy has its reserve free.
    pub(crate) fn prepare(policy: &Policy) -> Result<Resources> {
        let mut r = Resources {
            memory: None,
            reserve: policy.limits.disk_reserve,
            filesystems: Vec::new(),
            watcher: None,
            deferred: None,
        };
        if !r.reserve.is_off() {
            for (dir, role) in writable_host_dirs(policy) {
                r.watch(&dir, &role)?;
            }
        }
        if let Some(limit) = policy.limits.memory_bytes {
            r.memory = Some(MemoryCgroup::create(limit)?);
        }
        Ok(r)
    }

    /// Is the run in a memory cgroup of its own (removed after the run)?
    pub(crate) fn has_memory_cgroup(&self) -> bool {
        self.memory.is_some()
    }

    /// Watch `dir`'s filesystem too (unless it is watched already); fail when it is already
    /// below the reserve.
    pub(crate) fn watch(&mut self, dir: &Path, role: &str) -> Result<()> {
        if self.reserve.is_off() {
            return Ok(());
        }
        let fd = match rustix::fs::open(dir, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(_) => return Ok(()), // not there (yet): the policy's own checks say so
        };
        let Ok(st) = rustix::fs::fstat(&fd) else {
            return Ok(());
        };
        let same_fs =
            |f: &Filesystem| rustix::fs::fstat(&f.dir).is_ok_and(|s| s.st_dev == st.st_dev);
        if let Some(f) = self.filesystems.iter_mut().find(|f| same_fs(f)) {
            if !f.role.split(", ").any(|r| r == role) {
                f.role = format!("{}, {role}", f.role);
            }
            return Ok(());
        }
        let fs = Filesystem {
            dir: fd,
            role: role.to_string(),
            path: dir.to_path_buf(),
            dev: st.st_dev,
        };
        if let Ok(u) = fs.usage() {
            let reserve = self.reserve.bytes_of(u.total);
            if u.free < reserve {
                return Err(Error::Resources {
                    message: format!(
                        "not starting the run: {} ({}) has only {:.1}% free ({}); keepout keeps a reserve of {} for the host (--disk-reserve)",
                        fs.device(),
                        fs.role,
                        share(u.free, u.total),
                        human_size(u.free),
                        describe_reserve(self.reserve, u.total),
                    ),
                    hint: "Free some space there, or keep a smaller reserve: --disk-reserve 1% (or an amount such as \
                           512M; 0 turns the watch off), or `disk-reserve = \"1%\"` under [run] in ~/.config/keepout/config.toml."
                        .into(),
                });
            }
        }
        self.filesystems.push(fs);
        Ok(())
    }

    /// The sandbox exists as `pid` (init, or in landlock mode the command, which leads its own
    /// process group): put it in the memory cgroup and start watching the disks.
    pub(crate) fn attach(&mut self, pid: i32, kill_group: bool) -> Result<()> {
        if let Some(cg) = &self.memory {
            cg.add(pid)?;
        }
        if self.filesystems.is_empty() {
            return Ok(());
        }
        let raw = Pid::from_raw(pid).expect("a positive pid");
        let pidfd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
            .map_err(|e| Error::Setup {
                step: "watch the sandbox (pidfd_open)".into(),
                message: e.to_string(),
            })?;
        // The sandbox's pid namespace, read while init is still dumpable (it becomes
        // non-dumpable before it builds the root).
        let pid_ns = (!kill_group)
            .then(|| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok())
            .flatten();
        let filesystems = std::mem::take(&mut self.filesystems);
        let reserve = self.reserve;
        // The watcher's first poll, now: it says how long the room lasts at the assumed pace,
        // so the thread (which polls again as it starts) need not exist before then.
        let first = first_interval(&filesystems, reserve);
        let samples = first.as_ref().map(|(_, s)| s.clone());
        let start = move || {
            let (stop, stopped) = mpsc::channel();
            let slot = Arc::new(Mutex::new(None));
            let what = slot.clone();
            std::thread::spawn(move || {
                watch_disks(&filesystems, reserve, samples, &stopped, &|s: &Stopped| {
                    if let Ok(mut w) = what.lock() {
                        *w = Some(s.clone());
                    }
                    let _ = rustix::process::pidfd_send_signal(&pidfd, Signal::KILL);
                    if kill_group {
                        let _ = rustix::process::kill_process_group(raw, Signal::KILL);
                    }
                    if let Some(ns) = &pid_ns {
                        kill_namespace(ns);
                    }
                })
            });
            (stop, slot)
        };
        match first {
            Some((after, _)) => {
                self.deferred = Some((std::time::Instant::now() + after, Box::new(start)));
            }
            None => self.watcher = Some(start()),
        }
        Ok(())
    }

    /// How long the caller may wait before the disk watcher must run, starting it once that
    /// time has come (`None`: nothing to wait for).
    pub(crate) fn start_watch_in(&mut self) -> Option<Duration> {
        let (at, _) = self.deferred.as_ref()?;
        let now = std::time::Instant::now();
        if now < *at {
            return Some(*at - now);
        }
        let (_, start) = self.deferred.take().expect("checked");
        self.watcher = Some(start());
        None
    }

    /// After the run: what stopped it (the disk watcher, the memory limit); removes the cgroup.
    pub(crate) fn finish(self, outcome: Option<Outcome>) -> Vec<Stopped> {
        let mut stopped = Vec::new();
        if let Some((stop, slot)) = self.watcher {
            drop(stop);
            if let Some(s) = slot.lock().ok().and_then(|mut s| s.take()) {
                stopped.push(s);
            }
        }
        if let Some(cg) = self.memory {
            let kills = cg.oom_kills();
            if kills > 0 {
                stopped.push(Stopped::MemoryLimit {
                    limit: cg.limit,
                    kills,
                    command_killed: matches!(
                        outcome,
                        Some(Outcome::Exited(137)) | Some(Outcome::Signaled(9))
                    ),
                });
            }
        }
        stopped
    }
}

/// SIGKILL every process of the pid namespace `ns` (as `/proc/PID/ns/pid` names it) directly:
/// the kernel would kill them once init has died, but init may wait for a CPU on a busy machine
/// while the writer goes on writing.
fn kill_namespace(ns: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l == ns) {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
    }
}

fn describe_reserve(reserve: DiskReserve, total: u64) -> String {
    match reserve {
        DiskReserve::Share(_) => format!("{reserve} ({})", human_size(reserve.bytes_of(total))),
        // The share when it is under the ceiling ("5% (6.4 MiB)"), else the ceiling.
        DiskReserve::ShareAtMost(h, max) if DiskReserve::Share(h).bytes_of(total) < max => {
            let share = DiskReserve::Share(h);
            format!("{share} ({})", human_size(share.bytes_of(total)))
        }
        DiskReserve::ShareAtMost(h, max) => {
            format!(
                "{} (the ceiling of {})",
                human_size(max),
                DiskReserve::Share(h)
            )
        }
        DiskReserve::Bytes(b) => human_size(b),
    }
}

/// Poll the filesystems until `stop` says so (or hangs up); kill the sandbox when one of them is
/// below its reserve, or would be before the next poll at the rate it is filling.
/// The interval [`watch_disks`] would wait after its first poll, made now: `None` when a
/// filesystem is already at its reserve or cannot be read (then the watcher starts at once).
fn first_interval(filesystems: &[Filesystem], reserve: DiskReserve) -> Option<(Duration, Samples)> {
    let mut interval = MAX_INTERVAL;
    let mut samples = Vec::new();
    for fs in filesystems {
        let u = fs.usage().ok()?;
        samples.push(Some((Instant::now(), u.free)));
        let reserve_bytes = reserve.bytes_of(u.total);
        if u.free < reserve_bytes {
            return None;
        }
        let room = u.free - reserve_bytes;
        let next = Duration::from_secs_f64(room as f64 / ASSUMED_RATE as f64 / 4.0)
            .clamp(MIN_INTERVAL, MAX_INTERVAL);
        interval = interval.min(next);
    }
    Some((interval, samples))
}

/// The last poll of each filesystem (when, free bytes), from which the next one measures the
/// rate it fills at.
type Samples = Vec<Option<(Instant, u64)>>;

fn watch_disks(
    filesystems: &[Filesystem],
    reserve: DiskReserve,
    first: Option<Samples>,
    stop: &mpsc::Receiver<()>,
    kill: &dyn Fn(&Stopped),
) -> Option<Stopped> {
    let mut last: Samples = first.unwrap_or_else(|| vec![None; filesystems.len()]);
    loop {
        let mut interval = MAX_INTERVAL;
        for (fs, last) in filesystems.iter().zip(last.iter_mut()) {
            let Ok(u) = fs.usage() else { continue };
            let now = Instant::now();
            let reserve_bytes = reserve.bytes_of(u.total);
            // The rate it fills at, from the previous poll.
            let rate = match *last {
                Some((then, free)) if free > u.free => {
                    let dt = now.duration_since(then).as_secs_f64().max(1e-4);
                    ((free - u.free) as f64 / dt) as u64
                }
                _ => 0,
            };
            *last = Some((now, u.free));
            let room = u.free.saturating_sub(reserve_bytes);
            let pace = ASSUMED_RATE.max(rate.saturating_mul(3) / 2);
            let next = Duration::from_secs_f64(room as f64 / pace as f64 / 4.0)
                .clamp(MIN_INTERVAL, MAX_INTERVAL);
            // Would the measured rate use up the room before the next poll and the kill?
            let at_rate = rate as f64 * (next + KILL_MARGIN).as_secs_f64();
            if u.free < reserve_bytes || (room as f64) < at_rate {
                let stopped = Stopped::DiskReserve {
                    device: fs.device(),
                    role: fs.role.clone(),
                    free_percent: share(u.free, u.total),
                    reserve: describe_reserve(reserve, u.total),
                    filling_per_second: (u.free >= reserve_bytes).then_some(rate),
                };
                kill(&stopped);
                return Some(stopped);
            }
            interval = interval.min(next);
        }
        match stop.recv_timeout(interval) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_fs() -> Filesystem {
        Filesystem {
            dir: rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap(),
            role: "test".into(),
            path: "/".into(),
            dev: 0,
        }
    }

    /// The watcher costs a thread and a poll, and ends as soon as the run does (not at its next
    /// timer, up to 250 ms later): what `keepout run -- true` pays for it.
    #[test]
    fn the_watcher_is_cheap_and_stops_at_once() {
        let mut times = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            let (stop, stopped) = mpsc::channel();
            let fs = vec![root_fs()];
            let t = std::thread::spawn(move || {
                watch_disks(&fs, DiskReserve::Bytes(1), None, &stopped, &|_| {})
            });
            drop(stop);
            assert_eq!(t.join().unwrap(), None);
            times.push(start.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        eprintln!(
            "watcher start, one poll, stop: median {median:?}, max {:?}",
            times[49]
        );
        assert!(median < Duration::from_millis(5), "{times:?}");
    }

    /// A filesystem below the reserve: the watcher kills at its first poll and says where.
    #[test]
    fn the_watcher_kills_below_the_reserve() {
        let (_stop, stopped) = mpsc::channel();
        let killed = std::sync::atomic::AtomicBool::new(false);
        let s = watch_disks(
            &[root_fs()],
            DiskReserve::Share(10_000),
            None,
            &stopped,
            &|_| killed.store(true, Ordering::Relaxed),
        );
        assert!(killed.load(Ordering::Relaxed));
        match s {
            Some(Stopped::DiskReserve {
                device,
                role,
                filling_per_second: None,
                ..
            }) => assert_eq!((device.as_str(), role.as_str()), ("/", "test")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }
}
