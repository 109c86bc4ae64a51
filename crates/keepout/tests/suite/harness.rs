//! The test harness: who runs the commands ([`Runner`]), the planted victim ([`Fixture`]), and
//! how commands are run (always with a timeout, always with an exact environment).
//!
//! Every test loops over [`runners()`]: the current user, and, when that is root, the
//! unprivileged user `keepout-test` (created on first use). Each runner gets its own
//! [`Fixture`]: a fresh directory under `/tmp` with a fake home full of FAKE credentials and a
//! real git project, owned by the runner. [`Fixture::outside`] runs a shell script as the runner
//! without the sandbox (to prove an attack works), [`Fixture::inside`] runs the same script
//! through `keepout run` (to prove it fails there).
//!
//! Cleanup: the fixture's tree is removed and every process the test started (decoys, servers,
//! marked processes) is killed by pid when the fixture is dropped, also when a test panics.

#![allow(dead_code)]

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Every child gets at most this long; a hang fails the test instead of blocking CI.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// The Python that attack scripts use (Debian 12: `/usr/bin/python3`, 3.11).
pub const PYTHON: &str = "/usr/bin/python3";
/// The unprivileged user the suite creates when it runs as root.
pub const TEST_USER: &str = "keepout-test";
/// `PATH` of every command the suite runs.
pub const FIXTURE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

// ---------------------------------------------------------------------------------------------
// Runners
// ---------------------------------------------------------------------------------------------

/// A user the commands of a test run as.
#[derive(Clone, Debug)]
pub struct Runner {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Run commands through `setpriv` (the test process is root, the runner is not).
    switch_user: bool,
}

impl fmt::Display for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "runner {} (uid {})", self.name, self.uid)
    }
}

impl Runner {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// `argv` as this runner, in `cwd`, with exactly `env` as its environment.
    pub fn command(&self, argv: &[String], env: &[(String, String)], cwd: &Path) -> Command {
        let mut cmd = if self.switch_user {
            // setpriv (util-linux) exists on Debian 12 and execs in place, so the pid we get
            // is the pid of the final program (setpriv -> env -> argv[0]).
            let mut c = Command::new("/usr/bin/setpriv");
            c.arg(format!("--reuid={}", self.uid))
                .arg(format!("--regid={}", self.gid))
                .args(["--init-groups", "--reset-env", "--", "/usr/bin/env", "-i"]);
            for (k, v) in env {
                c.arg(format!("{k}={v}"));
            }
            c.args(argv);
            c
        } else {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]).env_clear().envs(env.iter().cloned());
            c
        };
        cmd.current_dir(cwd);
        cmd
    }

    /// The runner's real home directory according to `/etc/passwd`.
    pub fn real_home(&self) -> PathBuf {
        passwd_entry_by_uid(self.uid)
            .map(|fields| PathBuf::from(&fields[5]))
            .unwrap_or_else(|| panic!("{self}: no /etc/passwd entry"))
    }
}

/// The effective uid of the test process.
pub fn euid() -> u32 {
    proc_status_field("Uid:", 1)
}

fn egid() -> u32 {
    proc_status_field("Gid:", 1)
}

fn proc_status_field(key: &str, index: usize) -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(index + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

fn passwd_entry(pred: impl Fn(&[String]) -> bool) -> Option<Vec<String>> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && pred(f))
}

fn passwd_entry_by_uid(uid: u32) -> Option<Vec<String>> {
    passwd_entry(|f| f[2] == uid.to_string())
}

/// Create `keepout-test` if it does not exist (idempotent: "already exists" is fine).
fn ensure_test_user() -> Runner {
    let useradd = Command::new("useradd")
        .args(["--create-home", "--shell", "/bin/sh", TEST_USER])
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::null())
        .output();
    let entry = passwd_entry(|f| f[0] == TEST_USER).unwrap_or_else(|| {
        panic!(
            "cannot create the unprivileged test user {TEST_USER}: useradd said {:?}",
            useradd.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        )
    });
    Runner {
        name: TEST_USER.into(),
        uid: entry[2].parse().expect("uid"),
        gid: entry[3].parse().expect("gid"),
        switch_user: true,
    }
}

/// The users every test runs as: the current user, and `keepout-test` when that is root.
pub fn runners() -> Vec<Runner> {
    static RUNNERS: OnceLock<Vec<Runner>> = OnceLock::new();
    RUNNERS
        .get_or_init(|| {
            Suite::get();
            let uid = euid();
            if uid == 0 {
                let root = Runner {
                    name: "root".into(),
                    uid: 0,
                    gid: 0,
                    switch_user: false,
                };
                vec![root, ensure_test_user()]
            } else {
                note(&format!(
                    "the keepout suite runs as uid {uid}, not root: every test runs as this \
                     user only (run as root to also test as the unprivileged user {TEST_USER})"
                ));
                let name = passwd_entry_by_uid(uid)
                    .map(|f| f[0].clone())
                    .unwrap_or_else(|| format!("uid{uid}"));
                vec![Runner {
                    name,
                    uid,
                    gid: egid(),
                    switch_user: false,
                }]
            }
        })
        .clone()
}

// ---------------------------------------------------------------------------------------------
// The keepout binary
// ---------------------------------------------------------------------------------------------

/// A world-readable copy of the keepout binary (the unprivileged runner may not reach target/).
pub fn keepout_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        remove_stale_bin_dirs();
        let dir = PathBuf::from(format!("/tmp/keepout-test-bin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create the binary's directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dst = dir.join("keepout");
        // Copy in a child process: a writable descriptor to the copy held by this (threaded)
        // process could leak into a concurrent fork and make exec fail with ETXTBSY.
        let status = Command::new("/bin/cp")
            .arg(env!("CARGO_BIN_EXE_keepout"))
            .arg(&dst)
            .status()
            .expect("run cp");
        assert!(
            status.success(),
            "cannot copy the keepout binary to {}",
            dst.display()
        );
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        dst.to_string_lossy().into_owned()
    })
}

/// Copies left by earlier runs of this suite whose process is gone.
fn remove_stale_bin_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("keepout-test-bin-") {
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------------------------

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command, for messages.
    pub what: String,
    /// The exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Does stdout or stderr contain `s`?
    pub fn has(&self, s: &str) -> bool {
        self.stdout.contains(s) || self.stderr.contains(s)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\n  command: {}\n  exit code: {:?}, signal: {:?}\n  --- stdout ---\n{}\n  --- stderr ---\n{}",
            self.what,
            self.code,
            self.signal,
            indent(&self.stdout),
            indent(&self.stderr)
        )
    }
}

fn indent(s: &str) -> String {
    let s: String = if s.len() > 6000 {
        let mut cut = 6000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}\n[... {} bytes cut ...]", &s[..cut], s.len() - cut)
    } else {
        s.to_string()
    };
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

fn capture<R: Read + Send + 'static>(mut r: R) -> Capture {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let b = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
        let _ = tx.send(());
    });
    Capture { buf, done }
}

impl Capture {
    /// What was read; waits a little for the writer to close (a leftover process holding the
    /// pipe must not hang the test).
    fn take(&self) -> String {
        let _ = self.done.recv_timeout(Duration::from_secs(5));
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

/// A started command whose output is captured. Killed (its whole process group) when dropped
/// unfinished.
pub struct Running {
    child: Child,
    what: String,
    out: Capture,
    err: Capture,
    finished: bool,
}

impl Running {
    pub fn spawn(mut cmd: Command, what: String) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = spawn_retrying(&mut cmd, &what);
        let out = capture(child.stdout.take().expect("piped stdout"));
        let err = capture(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            what,
            out,
            err,
            finished: false,
        }
    }

    /// The pid of the command (for `keepout run ...`: of keepout itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the command (at most [`TIMEOUT`]) and collect what it printed.
    pub fn wait(mut self) -> Output {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    kill_group(self.child.id());
                    let _ = self.child.wait();
                    self.finished = true;
                    panic!(
                        "timed out after {TIMEOUT:?}: {}\n  stdout so far:\n{}\n  stderr so far:\n{}",
                        self.what,
                        indent(&String::from_utf8_lossy(&self.out.buf.lock().unwrap())),
                        indent(&String::from_utf8_lossy(&self.err.buf.lock().unwrap()))
                    );
                }
                Err(e) => panic!("cannot wait for {}: {e}", self.what),
            }
        };
        self.finished = true;
        Output {
            what: self.what.clone(),
            code: status.code(),
            signal: status.signal(),
            stdout: self.out.take(),
            stderr: self.err.take(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            kill_group(self.child.id());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_retrying(cmd: &mut Command, what: &str) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(c) => return c,
            // ETXTBSY: a fresh copy of the binary still open for writing in a concurrent fork.
            Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot start {what}: {e}"),
        }
    }
}

/// Run a command to completion with the timeout.
pub fn run(cmd: Command, what: String) -> Output {
    Running::spawn(cmd, what).wait()
}

/// Send `sig` (a name such as "KILL") to one process. True when the signal was delivered.
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("/bin/sh")
        .args(["-c", &format!("kill -s {sig} {pid}")])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// SIGKILL a process group that this harness created (its leader's pid).
fn kill_group(pgid: u32) {
    let _ = Command::new("/bin/sh")
        .args(["-c", &format!("kill -s KILL -- -{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Host pids whose command line has `arg` as one whole argument.
pub fn pids_with_arg(arg: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            if cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Poll `cond` every 20 ms until it holds or `limit` passes. True when it held.
pub fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Random lowercase hex, `bytes` bytes of it.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Quote for `sh`.
pub fn q(s: impl AsRef<str>) -> String {
    format!("'{}'", s.as_ref().replace('\'', r"'\''"))
}

/// Tell the person running the suite something: a test that checked less than it says (a tool
/// or a registry missing, a kernel setting). Written straight to stderr at once (libtest does
/// not capture it) and again, with every other note, after libtest's summary (see [`Suite`]):
/// a pass that skipped something says so where the result is read.
pub fn note(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "note: {msg}");
    let suite = Suite::get();
    let _ = std::fs::OpenOptions::new()
        .append(true)
        .open(&suite.notes)
        .and_then(|mut f| writeln!(f, "  {}", msg.replace('\n', " ")));
}

// ---------------------------------------------------------------------------------------------
// The suite's lifetime: what happens after the last test
// ---------------------------------------------------------------------------------------------

/// The suite process's lifetime, seen from outside it. libtest runs nothing after the last test,
/// so the first use starts a reaper: a detached shell that waits until this process has ended
/// (the lock this process holds is released by the kernel, also on a crash or SIGKILL), prints
/// the notes after libtest's summary, and, when the suite ran as root, once no other run of
/// the suite holds the shared suite lock: unmounts what tests mounted in the test user's home
/// and fixtures, removes the test user with its home, the toolchains' overlay layers and the
/// binary copies. Nothing the suite creates outlives it (`KEEPOUT_TEST_KEEP=1`: the test user
/// and its overlays stay, to be looked at).
pub struct Suite {
    /// This run's notes, one per line (printed and removed by the reaper).
    notes: PathBuf,
    /// Held for the process's life: the reaper waits for it; runs as root also hold the
    /// shared suite lock, so one run's cleanup never removes the user from under another's.
    _alive: Vec<std::fs::File>,
}

/// Held shared by every run of the suite as root; the reaper cleans up under it exclusively.
const SUITE_LOCK: &str = "/run/lock/keepout-test-suite.lock";

impl Suite {
    pub fn get() -> &'static Suite {
        static SUITE: OnceLock<Suite> = OnceLock::new();
        SUITE.get_or_init(Suite::start)
    }

    fn start() -> Suite {
        use rustix::fs::{flock, FlockOperation};
        let pid = std::process::id();
        let notes = PathBuf::from(format!("/tmp/keepout-test-notes-{pid}"));
        let alive_path = PathBuf::from(format!("/tmp/keepout-test-alive-{pid}.lock"));
        std::fs::write(&notes, "").expect("create the notes file");
        let alive = std::fs::File::create(&alive_path).expect("create the suite's lock");
        flock(&alive, FlockOperation::LockExclusive).expect("lock the suite's lock");
        let mut held = vec![alive];
        let root = euid() == 0;
        if root {
            let shared = std::fs::File::create(SUITE_LOCK).expect("create the suite lock");
            flock(&shared, FlockOperation::LockShared).expect("take the shared suite lock");
            held.push(shared);
        }
        // KEEPOUT_TEST_KEEP=1 keeps the test user and its toolchain overlays (to look at them).
        let keep = std::env::var_os("KEEPOUT_TEST_KEEP").is_some_and(|v| v == "1");
        let cleanup = if root && !keep {
            format!(
                r#"exec 9>{SUITE_LOCK}; flock -x 9
home=$(getent passwd {TEST_USER} | cut -d: -f6)
pkill -KILL -u {TEST_USER} 2>/dev/null && sleep 0.2
awk -v h="${{home:-/nonexistent}}/" '{{ if (index($5, h) == 1 || index($5, "/tmp/keepout-fx-") == 1) print $5 }}' /proc/self/mountinfo   | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
[ -n "$home" ] && userdel -r {TEST_USER} 2>/dev/null
rm -rf /tmp/keepout-test-toolchains /tmp/keepout-test-bin-*"#
            )
        } else {
            String::new()
        };
        // keepout's own places in the real home, as they are now: the reaper says if the suite
        // changed them (a test that ran keepout with the real HOME).
        let real_home = std::env::var("HOME").unwrap_or_default();
        let watched = [
            ".cache/keepout",
            ".local/share/keepout",
            ".local/state/keepout",
            ".config/keepout",
        ]
        .map(|rel| q(format!("{real_home}/{rel}")))
        .join(" ");
        let stamp = format!("stat -c '%n %Y' {watched} 2>/dev/null");
        let before = Command::new("/bin/sh")
            .args(["-c", &stamp])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let home_before = PathBuf::from(format!("/tmp/keepout-test-home-{pid}"));
        std::fs::write(&home_before, before).expect("note the real home's state");
        let script = format!(
            r#"flock -x {alive} true
{stamp} | diff -q {home_before} - >/dev/null || {{
  printf '\nkeepout suite: WARNING: a test wrote into the real home (%s): keepout ran with the real HOME\n' "$({stamp} | tr '\n' ' ')" >&2
}}
rm -f {home_before}
if [ -s {notes} ]; then
  printf '
keepout suite: these tests passed without checking everything (notes):
' >&2
  awk '!seen[$0]++' {notes} >&2
fi
rm -f {notes} {alive}
{cleanup}"#,
            alive = alive_path.display(),
            notes = notes.display(),
            home_before = home_before.display(),
        );
        // Started in the background of a shell that exits at once (waited for here): the reaper
        // is nobody's child while it waits, and outlives this process.
        let mut reaper = Command::new("/bin/sh");
        reaper
            .args(["-c", "/bin/sh -c \"$1\" &", "sh", &script])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0);
        let started = reaper.status().expect("start the suite's reaper");
        assert!(started.success(), "start the suite's reaper: {started}");
        Suite {
            notes,
            _alive: held,
        }
    }
}

/// Does this program exist (an absolute path, or a name on [`FIXTURE_PATH`])?
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    FIXTURE_PATH
        .split(':')
        .any(|d| Path::new(d).join(program).exists())
}

/// Parse `KEY=value` lines (e.g. `env` output).
pub fn env_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The fixture
// ---------------------------------------------------------------------------------------------

/// The victim: a fake home with FAKE credentials and a real git project, owned by the runner.
pub struct Fixture {
    pub runner: Runner,
    /// Random, unique to this fixture; part of every planted secret.
    pub rand: String,
    /// The fixture's directory (canonical), `0755`.
    pub root: PathBuf,
    /// The victim's fake home (`$HOME` of every command).
    pub home: PathBuf,
    /// A git repository; the working directory of every command.
    pub project: PathBuf,
    env: Vec<(String, String)>,
    credentials: Vec<(&'static str, String)>,
    background: Mutex<Vec<Child>>,
    markers: Mutex<Vec<String>>,
    extra_dirs: Mutex<Vec<PathBuf>>,
    dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub fn new(runner: &Runner) -> Fixture {
        let rand = random_hex(6);
        let dir = tempfile::Builder::new()
            .prefix("keepout-fx-")
            .tempdir_in("/tmp")
            .expect("create the fixture directory");
        let root = dir.path().canonicalize().expect("canonical fixture dir");
        chmod(&root, 0o755);
        let home = root.join("home");
        let project = root.join("project");
        std::fs::create_dir_all(&project).unwrap();

        let credentials: Vec<(&'static str, String, String)> = vec![
            (
                ".ssh/id_ed25519",
                format!("FAKE-KEY-{rand}"),
                format!(
                    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA FAKE-KEY-{rand}\n-----END OPENSSH PRIVATE KEY-----\n"
                ),
            ),
            (
                ".netrc",
                format!("FAKE-NETRC-{rand}"),
                format!("machine github.com login victim password FAKE-NETRC-{rand}\n"),
            ),
            (
                ".git-credentials",
                format!("FAKE-GITCRED-{rand}"),
                format!("https://victim:FAKE-GITCRED-{rand}@github.com\n"),
            ),
            (
                ".pypirc",
                format!("FAKE-PYPIRC-{rand}"),
                format!("[pypi]\nusername = __token__\npassword = pypi-FAKE-PYPIRC-{rand}\n"),
            ),
            (
                ".config/gh/hosts.yml",
                format!("FAKE-GH-{rand}"),
                format!("github.com:\n    oauth_token: gho_FAKE-GH-{rand}\n    user: victim\n"),
            ),
            (
                ".cargo/credentials.toml",
                format!("FAKE-CARGO-{rand}"),
                format!("[registry]\ntoken = \"FAKE-CARGO-{rand}\"\n"),
            ),
            (
                ".npmrc",
                format!("FAKE-NPM-{rand}"),
                format!("//registry.npmjs.org/:_authToken=FAKE-NPM-{rand}\n"),
            ),
            (
                ".aws/credentials",
                format!("FAKE-AWS-{rand}"),
                format!(
                    "[default]\naws_access_key_id = AKIAFAKE\naws_secret_access_key = FAKE-AWS-{rand}\n"
                ),
            ),
            (
                ".docker/config.json",
                format!("FAKE-DOCKER-{rand}"),
                format!(
                    "{{\"auths\": {{\"https://index.docker.io/v1/\": {{\"auth\": \"FAKE-DOCKER-{rand}\"}}}}}}\n"
                ),
            ),
        ];
        for (rel, _, content) in &credentials {
            write_file(&home.join(rel), content, 0o600);
        }
        write_file(
            &home.join(".bashrc"),
            "# the victim's .bashrc\nalias ll='ls -l'\n",
            0o644,
        );
        write_file(
            &home.join(".profile"),
            "# the victim's .profile\n. \"$HOME/.bashrc\"\n",
            0o644,
        );
        chmod(&home.join(".ssh"), 0o700);
        chmod(&home, 0o755);
        chmod(&project, 0o755);

        let name = runner.name.clone();
        let env: Vec<(String, String)> = vec![
            ("HOME".into(), home.display().to_string()),
            ("PATH".into(), FIXTURE_PATH.into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("USER".into(), name.clone()),
            ("LOGNAME".into(), name),
            ("GITHUB_TOKEN".into(), format!("ghp_FAKE{rand}gh")),
            ("PYPI_TOKEN".into(), format!("pypi-FAKE{rand}pypi")),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                format!("FAKEAWSSECRET{rand}"),
            ),
            (
                "SSH_AUTH_SOCK".into(),
                home.join(".ssh/agent.sock").display().to_string(),
            ),
            ("LC_TOKEN".into(), format!("secret-LC-{rand}")),
            ("MY_APP_PASSWORD".into(), format!("FAKEPASSWORD{rand}")),
        ];

        let fx = Fixture {
            runner: runner.clone(),
            rand,
            root,
            home,
            project,
            env,
            credentials: credentials.into_iter().map(|(r, m, _)| (r, m)).collect(),
            background: Mutex::new(Vec::new()),
            markers: Mutex::new(Vec::new()),
            extra_dirs: Mutex::new(Vec::new()),
            dir: Some(dir),
        };
        fx.give_to_runner(&fx.root);
        let git = fx.outside(
            "git init -q . && git config user.name 'Keepout Test' \
             && git config user.email test@keepout.invalid \
             && echo 'hello' > README.md && git add README.md && git commit -qm initial",
        );
        assert!(git.success(), "[{runner}] fixture: git init failed:{git}");
        fx
    }

    /// `chown -R` a path (under the fixture) to the runner, when the test process is root.
    pub fn give_to_runner(&self, path: &Path) {
        if euid() != 0 {
            return;
        }
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.runner.uid, self.runner.gid))
            .arg(path)
            .status()
            .expect("run chown");
        assert!(st.success(), "chown -R {} failed", path.display());
    }

    /// A new directory under the fixture, owned by the runner.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(&p).unwrap();
        chmod(&p, 0o755);
        self.give_to_runner(&p);
        p
    }

    /// The environment of every command: HOME, PATH, LANG, USER, LOGNAME and the fake tokens.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The fake tokens in the environment (name, value).
    pub fn secrets(&self) -> Vec<(String, String)> {
        let public = ["HOME", "PATH", "LANG", "USER", "LOGNAME"];
        self.env
            .iter()
            .filter(|(k, _)| !public.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    pub fn secret(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no fixture variable {name}"))
    }

    /// The planted credential files: (path relative to home, the marker string in the file).
    pub fn credentials(&self) -> &[(&'static str, String)] {
        &self.credentials
    }

    /// The marker string planted in one credential file.
    pub fn credential(&self, rel: &str) -> String {
        self.credentials
            .iter()
            .find(|(r, _)| *r == rel)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("no planted credential {rel}"))
    }

    /// Absolute path of a planted file in the fake home, as a string.
    pub fn home_path(&self, rel: &str) -> String {
        self.home.join(rel).display().to_string()
    }

    /// Run argv as the runner, cwd = project, with the fixture's environment.
    pub fn command(&self, argv: &[&str]) -> Command {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        self.runner.command(&argv, &self.env, &self.project)
    }

    /// `sh -c script` as the runner, without the sandbox.
    pub fn outside(&self, script: &str) -> Output {
        let what = format!("[{}] outside: sh -c {}", self.runner, q(script));
        run(self.command(&["/bin/sh", "-c", script]), what)
    }

    /// The `keepout run <extra> --` prefix.
    fn keepout_argv<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut argv = vec![keepout_bin(), "run"];
        argv.extend_from_slice(extra);
        argv.push("--");
        argv
    }

    /// `keepout ARGS...` (any subcommand) as the runner, in the project, with the fixture's
    /// environment.
    pub fn keepout(&self, args: &[&str]) -> Output {
        let mut argv = vec![keepout_bin()];
        argv.extend_from_slice(args);
        let what = format!("[{}] {}", self.runner, argv.join(" "));
        run(self.command(&argv), what)
    }

    /// `keepout run <extra> -- sh -c script` as the runner.
    pub fn inside(&self, extra: &[&str], script: &str) -> Output {
        self.spawn_inside(extra, script).wait()
    }

    /// `keepout run <extra> -- argv...` as the runner.
    pub fn inside_argv(&self, extra: &[&str], argv: &[&str]) -> Output {
        let mut full = self.keepout_argv(extra);
        full.extend_from_slice(argv);
        let what = format!("[{}] {}", self.runner, full.join(" "));
        run(self.command(&full), what)
    }

    /// Start `keepout run <extra> -- sh -c script` and return without waiting.
    pub fn spawn_inside(&self, extra: &[&str], script: &str) -> Running {
        let mut full = self.keepout_argv(extra);
        full.extend_from_slice(&["sh", "-c", script]);
        let what = format!(
            "[{}] inside: keepout run {} -- sh -c {}",
            self.runner,
            extra.join(" "),
            q(script)
        );
        Running::spawn(self.command(&full), what)
    }

    /// Start `sh -c script` as the runner and return without waiting.
    pub fn spawn_outside(&self, script: &str) -> Running {
        let what = format!("[{}] outside: sh -c {}", self.runner, q(script));
        Running::spawn(self.command(&["/bin/sh", "-c", script]), what)
    }

    /// Start a long-lived helper (decoy, server) as the runner; killed when the fixture drops.
    /// Returns its pid (the program's own: the runner switch execs in place).
    pub fn background(&self, argv: &[&str]) -> u32 {
        let mut cmd = self.command(argv);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = spawn_retrying(&mut cmd, &argv.join(" "));
        let pid = child.id();
        self.background.lock().unwrap().push(child);
        pid
    }

    /// Write a helper script into the project (visible inside and outside); returns its path.
    pub fn script(&self, name: &str, content: &str) -> String {
        let p = self.project.join(name);
        write_file(&p, content, 0o755);
        self.give_to_runner(&p);
        p.display().to_string()
    }

    /// A unique marker to put in a process's argv; processes carrying it are killed on drop.
    pub fn marker(&self, label: &str) -> String {
        let m = format!("keepout-marker-{}-{label}", self.rand);
        self.markers.lock().unwrap().push(m.clone());
        m
    }

    /// Remove this directory (outside the fixture tree) when the fixture drops.
    pub fn remove_on_drop(&self, dir: &Path) {
        self.extra_dirs.lock().unwrap().push(dir.to_path_buf());
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for mut c in self.background.lock().unwrap().drain(..) {
            kill_group(c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
        for m in self.markers.lock().unwrap().iter() {
            for pid in pids_with_arg(m) {
                signal(pid, "KILL");
            }
        }
        for d in self.extra_dirs.lock().unwrap().drain(..) {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if dir.close().is_err() {
                // Something left it unwritable; make it writable and try once more.
                let _ = Command::new("chmod")
                    .args(["-R", "u+rwx"])
                    .arg(&path)
                    .status();
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, p.display()));
}

/// Write a file (creating its parent directories) with `mode`.
pub fn write_file(p: &Path, content: &str, mode: u32) {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    chmod(p, mode);
}

/// The file's content, or `None` when it does not exist.
pub fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

// ---------------------------------------------------------------------------------------------
// Decoy servers (started outside the sandbox, as the runner) and a client to probe them
// ---------------------------------------------------------------------------------------------

const SERVER_PY: &str = r#"
import os, socket, sys
kind, addr, ready = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "tcp":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    info = str(s.getsockname()[1])
elif kind == "abstract":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(b"\0" + addr.encode())
    info = addr
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(addr)
    info = addr
s.listen(64)
with open(ready + ".tmp", "w") as f:
    f.write(info)
os.rename(ready + ".tmp", ready)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"hello-from-the-host\n")
    finally:
        c.close()
"#;

const CLIENT_PY: &str = r#"
import socket, sys
kind, addr = sys.argv[1], sys.argv[2]
try:
    if kind == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = ("127.0.0.1", int(addr))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = b"\0" + addr.encode() if kind == "abstract" else addr
    s.settimeout(10)
    s.connect(target)
    print("CONNECTED", s.recv(100).decode().strip())
except OSError as e:
    print("BLOCKED", e.errno, e.strerror)
"#;

impl Fixture {
    /// Start a decoy server as the runner: `kind` is "tcp" (127.0.0.1, a free port),
    /// "abstract" (abstract unix socket `addr`) or "unix" (socket file `addr`). Returns the
    /// address to give [`Fixture::connect_script`] (the port for tcp).
    pub fn serve(&self, kind: &str, addr: &str) -> String {
        let server = self.script("decoy_server.py", SERVER_PY);
        let ready = self.root.join(format!("ready-{}", random_hex(4)));
        let ready_s = ready.display().to_string();
        self.background(&[PYTHON, &server, kind, addr, &ready_s]);
        assert!(
            poll(Duration::from_secs(20), || ready.exists()),
            "[{}] the decoy {kind} server did not start",
            self.runner
        );
        read(&ready).expect("ready file")
    }

    /// A shell command that connects to a decoy server and prints `CONNECTED <greeting>` or
    /// `BLOCKED <errno> <message>`.
    pub fn connect_script(&self, kind: &str, addr: &str) -> String {
        let client = self.script("decoy_client.py", CLIENT_PY);
        format!("{PYTHON} {} {kind} {}", q(client), q(addr))
    }
}

/// Run `cmd` with `input` on its standard input; its output captured.
pub fn with_input(mut cmd: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
