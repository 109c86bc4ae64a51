//! The unlock cache: unlock once, not for every command.
//!
//! A small per-user process (`keepout cache-daemon`, started on the first unlock) holds the
//! passphrase and the decrypted document of one vault, and answers on a unix socket in
//! `$XDG_RUNTIME_DIR/keepout/` (else `/tmp/keepout-UID/`), a 0700 directory. It forgets
//! everything and exits after an idle time (default 5 minutes, `KEEPOUT_CACHE_IDLE`) or on
//! `keepout lock`. The same process is meant to become `keepout agent`'s home.
//!
//! Guarantees: only peers of the same uid are answered (SO_PEERCRED); the daemon is
//! non-dumpable (no ptrace, no core, no /proc/PID/mem for others) and locks its memory where the
//! memlock limit is unlimited (root, or a raised limit; otherwise an encrypted swap is the
//! protection); secrets are held in memory zeroed on drop; when the vault file changes
//! on disk the daemon decrypts it again before answering; a sandbox never sees the socket
//! (`$XDG_RUNTIME_DIR` and `/tmp` are not in it).
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
use crate::file::VaultFile;

/// Idle time after which the daemon forgets everything.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);

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

/// The cache's directory: `$XDG_RUNTIME_DIR/keepout`, else `/tmp/keepout-UID`; created 0700 and
/// refused if it is not ours or not private.
pub fn socket_dir() -> Result<PathBuf, VaultError> {
    let uid = rustix::process::getuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        Some(run) => run.join("keepout"),
        None => PathBuf::from(format!("/tmp/keepout-{uid}")),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| VaultError::io("cannot create", &dir, e))?;
    }
    let meta =
        std::fs::symlink_metadata(&dir).map_err(|e| VaultError::io("cannot read", &dir, e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(VaultError::Config(format!(
            "{} must be a directory owned by you with mode 0700",
            dir.display()
        )));
    }
    Ok(dir)
}

pub fn socket_path() -> Result<PathBuf, VaultError> {
    Ok(socket_dir()?.join("cache.sock"))
}

fn ask(request: &Request) -> Option<Response> {
    let path = socket_path().ok()?;
    let mut stream = UnixStream::connect(path).ok()?;
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

/// What the daemon holds.
struct Held {
    path: PathBuf,
    passphrase: SecretString,
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

fn load(path: &Path, passphrase: &SecretString) -> Result<Held, VaultError> {
    let doc = VaultFile::at(path).read(&crate::file::Key::Passphrase(passphrase.clone()))?;
    Ok(Held {
        path: path.to_path_buf(),
        passphrase: passphrase.clone(),
        document: doc.to_toml(),
        identity: identity(path).unwrap_or_default(),
    })
}

fn handle(held: &mut Option<Held>, request: Request) -> (Response, bool) {
    let fail = |e: &str| Response {
        ok: false,
        error: Some(e.into()),
        ..Default::default()
    };
    match request {
        Request::Lock => (
            Response {
                ok: true,
                ..Default::default()
            },
            true,
        ),
        Request::Unlock { path, passphrase } => {
            match load(&path, &SecretString::from(passphrase)) {
                Ok(h) => {
                    *held = Some(h);
                    (
                        Response {
                            ok: true,
                            ..Default::default()
                        },
                        false,
                    )
                }
                Err(e) => (fail(&e.to_string()), false),
            }
        }
        Request::Read { path } | Request::Passphrase { path }
            if held.as_ref().is_none_or(|h| h.path != path) =>
        {
            (fail("locked"), false)
        }
        Request::Read { path } => {
            let h = held.as_mut().expect("checked");
            if identity(&path) != Some(h.identity) {
                match load(&path, &h.passphrase) {
                    Ok(new) => *h = new,
                    Err(e) => return (fail(&e.to_string()), false),
                }
            }
            (
                Response {
                    ok: true,
                    document: Some(h.document.to_string()),
                    ..Default::default()
                },
                false,
            )
        }
        Request::Passphrase { .. } => {
            let h = held.as_ref().expect("checked");
            (
                Response {
                    ok: true,
                    passphrase: Some(h.passphrase.expose_secret().to_string()),
                    ..Default::default()
                },
                false,
            )
        }
    }
}

/// The daemon: serve until idle for `idle` or told to lock. Never call it in a process that
/// holds anything else of value: it makes the process non-dumpable and locks its memory.
pub fn serve(idle: Duration) -> Result<(), VaultError> {
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    // Lock all memory, present and future, so nothing is swapped out, but only where the
    // memlock limit is unlimited: decrypting a vault takes scrypt's working memory (up to
    // hundreds of MiB), and a locked allocation beyond a small limit would kill the daemon.
    if rustix::process::getrlimit(rustix::process::Resource::Memlock)
        .current
        .is_none()
    {
        let _ = rustix::mm::mlockall(
            rustix::mm::MlockAllFlags::CURRENT | rustix::mm::MlockAllFlags::FUTURE,
        );
    }
    let socket = socket_path()?;
    if UnixStream::connect(&socket).is_ok() {
        return Ok(()); // another daemon answers already
    }
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).map_err(|e| VaultError::io("cannot listen on", &socket, e))?;
    let me = rustix::process::getuid();
    let mut held: Option<Held> = None;
    let mut last = Instant::now();
    loop {
        let left = idle.saturating_sub(last.elapsed());
        if left.is_zero() {
            break;
        }
        let mut fds = [rustix::event::PollFd::new(
            &listener,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        let peer = rustix::net::sockopt::socket_peercred(&stream).map(|c| c.uid);
        if peer != Ok(me) {
            continue; // another user: not even an answer
        }
        last = Instant::now();
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = Zeroizing::new(String::new());
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let Ok(request) = serde_json::from_str::<Request>(&line) else {
            continue;
        };
        let (mut response, stop) = handle(&mut held, request);
        let mut out = Zeroizing::new(serde_json::to_string(&response).unwrap_or_default());
        if let Some(mut d) = response.document.take() {
            d.zeroize();
        }
        if let Some(mut p) = response.passphrase.take() {
            p.zeroize();
        }
        out.push('\n');
        let _ = (&stream).write_all(out.as_bytes());
        if stop {
            break;
        }
    }
    drop(held);
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
