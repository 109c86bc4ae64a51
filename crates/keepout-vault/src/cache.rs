//! The unlock cache: unlock once, not for every command.
//!
//! A small per-user process holds the key and the decrypted document of one vault, and answers on
//! a unix socket in `$XDG_RUNTIME_DIR/keepout/` (else `~/.local/state/keepout/run/`, in the user's
//! own home: never a shared, guessable path), a 0700 directory ([`socket_dir`]). It
//! forgets everything after an idle time (default 5 minutes, `KEEPOUT_CACHE_IDLE`) or on
//! `keepout lock`. That process is `keepout agent` when it runs (the agent signs from the same
//! [`UnlockCache`]); otherwise `keepout cache-daemon`, started on the first unlock, which exits
//! when it forgets.
//!
//! Guarantees: only peers of the same uid are answered (SO_PEERCRED); the daemon is
//! non-dumpable (no ptrace, no core, no /proc/PID/mem for others) and locks its memory where the
//! memlock limit is unlimited (root, or a raised limit; otherwise an encrypted swap is the
//! protection); secrets are held in memory zeroed on drop; when the vault file changes
//! on disk the daemon decrypts it again before answering; a sandbox never sees the socket
//! (`$XDG_RUNTIME_DIR`, the real home and `/tmp` are not in it).
//!
//! Protocol: one JSON line per request and per response.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::document::Document;
use crate::error::VaultError;
use crate::file::{Key, VaultFile};

/// Idle time after which the daemon forgets everything.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);

/// The idle time: `KEEPOUT_CACHE_IDLE` (`30s`, `15m`, `1h`), else [`DEFAULT_IDLE`]. A value that
/// is not a duration gives the default and a message saying so, for the caller to show.
pub fn idle_from_env() -> (Duration, Option<String>) {
    let Ok(text) = std::env::var("KEEPOUT_CACHE_IDLE") else {
        return (DEFAULT_IDLE, None);
    };
    match crate::parse_duration(&text) {
        Ok(d) => (d, None),
        Err(e) => (
            DEFAULT_IDLE,
            Some(format!(
                "KEEPOUT_CACHE_IDLE={text}: {e}; the unlock cache forgets after {} instead",
                crate::format_duration(DEFAULT_IDLE)
            )),
        ),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Request {
    Unlock { path: PathBuf, passphrase: String },
    Read { path: PathBuf },
    Passphrase { path: PathBuf },
    Lock,
}

#[derive(Serialize, Deserialize, Default)]
struct Response {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passphrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The longest socket path the kernel takes (`sun_path` is 108 bytes, one for the NUL).
const SUN_PATH_MAX: usize = 107;

/// The directory of keepout's sockets (the unlock cache's `cache.sock`, the agent's
/// `agent.sock`): `$XDG_RUNTIME_DIR/keepout` when that is set (absolute), else
/// `$XDG_STATE_HOME/keepout/run` (by default `~/.local/state/keepout/run`, under the user's own
/// home) — never a guessable shared path such as
/// `/tmp/keepout-UID`, which another local user could create first. Created 0700; refused, with
/// what to do, when it is a symlink, not a directory, not owned by the caller or not private, or
/// when its sockets' paths would not fit in a unix socket address (108 bytes).
pub fn socket_dir() -> Result<PathBuf, VaultError> {
    let uid = rustix::process::getuid().as_raw();
    let dir = socket_dir_location()?;
    if std::fs::symlink_metadata(&dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| VaultError::io("cannot create the socket directory", &dir, e))?;
    }
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| VaultError::io("cannot read the socket directory", &dir, e))?;
    let problem = if meta.file_type().is_symlink() {
        Some("it is a symlink".to_string())
    } else if !meta.is_dir() {
        Some("it is not a directory".to_string())
    } else if meta.uid() != uid {
        Some(format!(
            "it is owned by uid {}, not by you (uid {uid})",
            meta.uid()
        ))
    } else if meta.permissions().mode() & 0o077 != 0 {
        Some(format!(
            "its mode is {:o}, not private (chmod 700 it)",
            meta.permissions().mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(p) => Err(VaultError::io(
            "refusing the socket directory",
            &dir,
            std::io::Error::other(format!(
                "{p}; remove it (keepout creates it again, 0700) or set XDG_RUNTIME_DIR"
            )),
        )),
        None => Ok(dir),
    }
}

/// Where [`socket_dir`] is, without making it: for a client that only looks for a socket
/// there (the cache's clients, `keepout audit`), so a lookup leaves nothing behind in a home.
pub fn socket_dir_location() -> Result<PathBuf, VaultError> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let state =
        absolute("XDG_STATE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".local/state")));
    let dir =
        match (absolute("XDG_RUNTIME_DIR"), state) {
            (Some(run), _) => run.join("keepout"),
            (None, Some(state)) => state.join("keepout/run"),
            (None, None) => return Err(VaultError::Config(
                "neither XDG_RUNTIME_DIR nor HOME is set: nowhere private for keepout's sockets; \
                 set one of them"
                    .into(),
            )),
        };
    // The longest name placed in it is "cache.sock" / "agent.sock" (10 bytes) after a '/'.
    if dir.as_os_str().len() + 11 > SUN_PATH_MAX {
        return Err(VaultError::Config(format!(
            "the socket directory {} is too long for a unix socket path ({} bytes at most); \
             set XDG_RUNTIME_DIR to a shorter private directory",
            dir.display(),
            SUN_PATH_MAX - 11
        )));
    }
    Ok(dir)
}

pub fn socket_path() -> Result<PathBuf, VaultError> {
    Ok(socket_dir()?.join("cache.sock"))
}

fn ask(request: &Request) -> Option<Response> {
    let path = socket_dir_location().ok()?.join("cache.sock");
    let mut stream = UnixStream::connect(path).ok()?;
    // Only our own uid's cache gets a request (some carry the passphrase, every answer is
    // trusted): a socket put there by anyone else is not spoken to.
    let server = rustix::net::sockopt::socket_peercred(&stream).ok()?;
    if server.uid != rustix::process::geteuid() {
        return None;
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut line = Zeroizing::new(serde_json::to_string(request).ok()?);
    line.push('\n');
    stream.write_all(line.as_bytes()).ok()?;
    let mut answer = Zeroizing::new(String::new());
    BufReader::new(stream).read_line(&mut answer).ok()?;
    serde_json::from_str(&answer).ok()
}

/// The cached document of the vault at `path`, if the cache holds it.
pub fn cached_document(path: &Path) -> Option<Document> {
    let r = ask(&Request::Read {
        path: path.to_path_buf(),
    })?;
    let text = Zeroizing::new(r.document?);
    Document::from_toml(&text).ok()
}

/// The cached passphrase of the vault at `path` (for writing), if the cache holds it.
pub fn cached_passphrase(path: &Path) -> Option<SecretString> {
    let r = ask(&Request::Passphrase {
        path: path.to_path_buf(),
    })?;
    r.passphrase.map(SecretString::from)
}

/// Forget everything (`keepout lock`). Returns whether a cache was running.
pub fn lock() -> bool {
    ask(&Request::Lock).is_some()
}

/// Hand a verified passphrase to the cache, starting the daemon with `daemon` (a command that
/// runs [`serve`]) if none answers. Best effort: the caller goes on either way.
pub fn remember(path: &Path, passphrase: &SecretString, mut daemon: std::process::Command) {
    let unlock = Request::Unlock {
        path: path.to_path_buf(),
        passphrase: passphrase.expose_secret().to_string(),
    };
    if ask(&unlock).is_some_and(|r| r.ok) {
        return;
    }
    if daemon
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_err()
    {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if ask(&unlock).is_some_and(|r| r.ok) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the cache holds.
struct Held {
    path: PathBuf,
    key: Key,
    document: Zeroizing<String>,
    /// (dev, inode, mtime, size) of the file the document was read from.
    identity: (u64, u64, i64, u64),
}

fn identity(path: &Path) -> Option<(u64, u64, i64, u64)> {
    std::fs::metadata(path).ok().map(|m| {
        (
            m.dev(),
            m.ino(),
            m.mtime_nsec() + m.mtime() * 1_000_000_000,
            m.size(),
        )
    })
}

fn load(path: &Path, key: &Key) -> Result<Held, VaultError> {
    let doc = VaultFile::at(path).read(key)?;
    Ok(Held {
        path: path.to_path_buf(),
        key: key.clone(),
        document: doc.to_toml(),
        identity: identity(path).unwrap_or_default(),
    })
}

/// The unlocked vault, in memory: what the cache daemon serves and what `keepout agent` signs
/// from. It forgets everything after `idle` without use, or on [`UnlockCache::lock`].
pub struct UnlockCache {
    idle: Duration,
    state: std::sync::Mutex<(Option<Held>, Instant)>,
}

impl UnlockCache {
    pub fn new(idle: Duration) -> UnlockCache {
        UnlockCache {
            idle,
            state: std::sync::Mutex::new((None, Instant::now())),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (Option<Held>, Instant)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forget the vault if it has not been used for the idle time; true when it is locked.
    pub fn expire(&self) -> bool {
        let mut st = self.state();
        if st.1.elapsed() >= self.idle {
            st.0 = None;
        }
        st.0.is_none()
    }

    /// Open the vault at `path` with `key` and hold it.
    pub fn unlock(&self, path: &Path, key: &Key) -> Result<(), VaultError> {
        let held = load(path, key)?;
        *self.state() = (Some(held), Instant::now());
        Ok(())
    }

    /// Forget everything now.
    pub fn lock(&self) {
        self.state().0 = None;
    }

    /// The document of the vault at `path`: `None` when locked (or another vault is held). When
    /// the file changed on disk, it is decrypted again with the held key first.
    pub fn document(&self, path: &Path) -> Option<Result<Document, VaultError>> {
        self.expire();
        let mut st = self.state();
        let h = st.0.as_mut().filter(|h| h.path == path)?;
        if identity(path) != Some(h.identity) {
            match load(path, &h.key) {
                Ok(new) => *h = new,
                Err(e) => return Some(Err(e)),
            }
        }
        let doc = Document::from_toml(&h.document);
        st.1 = Instant::now();
        Some(doc)
    }

    fn document_text(&self, path: &Path) -> Result<Zeroizing<String>, String> {
        match self.document(path) {
            None => Err("locked".into()),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(d)) => Ok(d.to_toml()),
        }
    }

    fn passphrase(&self, path: &Path) -> Option<SecretString> {
        self.expire();
        let mut st = self.state();
        let p = match &st.0 {
            Some(Held {
                path: p,
                key: Key::Passphrase(pass),
                ..
            }) if p == path => pass.clone(),
            _ => return None,
        };
        st.1 = Instant::now();
        Some(p)
    }

    /// Answer one request; the bool says whether the caller asked to lock.
    fn handle(&self, request: Request) -> (Response, bool) {
        let fail = |e: &str| Response {
            ok: false,
            error: Some(e.into()),
            ..Default::default()
        };
        let ok = Response {
            ok: true,
            ..Default::default()
        };
        match request {
            Request::Lock => {
                self.lock();
                (ok, true)
            }
            Request::Unlock { path, passphrase } => {
                match self.unlock(&path, &Key::Passphrase(SecretString::from(passphrase))) {
                    Ok(()) => (ok, false),
                    Err(e) => (fail(&e.to_string()), false),
                }
            }
            Request::Read { path } => match self.document_text(&path) {
                Ok(text) => (
                    Response {
                        ok: true,
                        document: Some(text.to_string()),
                        ..Default::default()
                    },
                    false,
                ),
                Err(e) => (fail(&e), false),
            },
            Request::Passphrase { path } => match self.passphrase(&path) {
                Some(p) => (
                    Response {
                        ok: true,
                        passphrase: Some(p.expose_secret().to_string()),
                        ..Default::default()
                    },
                    false,
                ),
                None => (fail("locked"), false),
            },
        }
    }
}

/// Make this process fit to hold secrets: non-dumpable (no ptrace, no core, no /proc/PID/mem for
/// others), and all memory locked where the memlock limit is unlimited. (Decrypting a vault
/// takes scrypt's working memory, up to hundreds of MiB; a locked allocation beyond a small
/// limit would kill the process, so below an unlimited limit an encrypted swap is the
/// protection.)
pub fn harden_process() {
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    if rustix::process::getrlimit(rustix::process::Resource::Memlock)
        .current
        .is_none()
    {
        let _ = rustix::mm::mlockall(
            rustix::mm::MlockAllFlags::CURRENT | rustix::mm::MlockAllFlags::FUTURE,
        );
    }
}

/// Bind the cache socket, taking it over from a standalone cache daemon if one answers (that
/// daemon is told to lock, and exits). For `keepout agent`, which then hosts the cache.
pub fn take_over_socket() -> Result<UnixListener, VaultError> {
    let socket = socket_path()?;
    if ask(&Request::Lock).is_some() {
        let start = Instant::now();
        while socket.exists() && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = std::fs::remove_file(&socket);
    UnixListener::bind(&socket).map_err(|e| VaultError::io("cannot listen on", &socket, e))
}

/// Answer one connection on the cache socket; true when the peer asked to lock.
fn serve_one(cache: &UnlockCache, stream: UnixStream) -> bool {
    let me = rustix::process::getuid();
    let peer = rustix::net::sockopt::socket_peercred(&stream).map(|c| c.uid);
    if peer != Ok(me) {
        return false; // another user: not even an answer
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = Zeroizing::new(String::new());
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return false;
    }
    let Ok(request) = serde_json::from_str::<Request>(&line) else {
        return false;
    };
    let (mut response, stop) = cache.handle(request);
    let mut out = Zeroizing::new(serde_json::to_string(&response).unwrap_or_default());
    if let Some(mut d) = response.document.take() {
        d.zeroize();
    }
    if let Some(mut p) = response.passphrase.take() {
        p.zeroize();
    }
    out.push('\n');
    let _ = (&stream).write_all(out.as_bytes());
    stop
}

/// Wait until `listener` has a connection or `left` passes; false on timeout.
fn wait_readable(listener: &UnixListener, left: Duration) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        listener,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: left.as_secs() as i64,
        tv_nsec: left.subsec_nanos() as i64,
    };
    loop {
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Serve the cache socket for a process that lives on when the vault locks (`keepout agent`):
/// a lock request or the idle time forget the vault, nothing ends the loop.
pub fn serve_shared(listener: UnixListener, cache: &UnlockCache) {
    loop {
        if wait_readable(&listener, Duration::from_secs(1)) {
            if let Ok((stream, _)) = listener.accept() {
                serve_one(cache, stream);
            }
        }
        cache.expire();
    }
}

/// The standalone daemon: serve until idle for `idle` or told to lock. Never call it in a process
/// that holds anything else of value: it makes the process non-dumpable and locks its memory.
pub fn serve(idle: Duration) -> Result<(), VaultError> {
    harden_process();
    let socket = socket_path()?;
    if UnixStream::connect(&socket).is_ok() {
        return Ok(()); // another daemon (or the agent) answers already
    }
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).map_err(|e| VaultError::io("cannot listen on", &socket, e))?;
    let cache = UnlockCache::new(idle);
    let mut last = Instant::now();
    loop {
        let left = idle.saturating_sub(last.elapsed());
        if left.is_zero() || !wait_readable(&listener, left) {
            break;
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        last = Instant::now();
        if serve_one(&cache, stream) {
            break;
        }
    }
    cache.lock();
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
