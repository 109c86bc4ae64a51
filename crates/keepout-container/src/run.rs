//! Running the container: the engine as a child, signals relayed, the container removed when
//! keepout ends however it ends, the command's exit status.
//!
//! * The container has a name (`keepout-<random>`). A watcher (`sh`, in a process group of its
//!   own so a terminal's ^C does not reach it) holds the read end of a pipe whose write end
//!   only keepout holds: when keepout ends without saying "done" (a crash, SIGKILL), the read
//!   sees end-of-file and the watcher removes the container (`rm --force --time 0`) and the
//!   run's seccomp profile. Where the
//!   engine cannot be told never to detach (docker, a remote podman), it is removed after
//!   every run, in case the command's input detached the engine from it.
//! * With a terminal on stdin the engine is in keepout's foreground process group (it must read
//!   the terminal), so the terminal's signals reach it directly and keepout only relays TERM
//!   and HUP; otherwise it is in a group of its own and keepout relays INT, TERM, HUP, QUIT,
//!   USR1 and USR2: with the engine's own `kill --signal SIG NAME`, so that the engine's client
//!   is left to report the command's exit status (rootless podman 4.3 signalled itself, through
//!   its sig-proxy, exits 0 whatever the command's status), and to the client when that fails
//!   (the container not made yet). `--init` hands them to the command.
//! * The engine's exit status is the command's (the engine's own failures are 125, as
//!   keepout's are); an engine killed by a signal N is 128+N.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

use rustix::process::{kill_process, Pid, Signal};
use tokio::signal::unix::{signal, SignalKind};

use crate::engine::Engine;
use crate::error::{Error, Result};

/// A fresh container name.
pub fn container_name() -> String {
    let mut bytes = [0u8; 6];
    let _ = rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("keepout-{hex}")
}

/// Removes the container unless told the run ended.
struct Watcher {
    pipe: std::io::PipeWriter,
    child: Child,
}

impl Watcher {
    fn start(
        engine: &Engine,
        name: &str,
        leftover: Option<&Path>,
        mounts: Option<&Path>,
    ) -> Result<Watcher> {
        let (reader, writer) = std::io::pipe().map_err(|source| Error::Wait {
            engine: engine.name().into(),
            source,
        })?;
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            // Only detached and removed if empty, never deleted: a copy still attached is the
            // project itself.
            r#"read -r _ || { "$@" >/dev/null 2>&1; [ -z "$KEEPOUT_LEFTOVER" ] || rm -f -- "$KEEPOUT_LEFTOVER";
               [ -z "$KEEPOUT_MOUNTS" ] || { for m in "$KEEPOUT_MOUNTS"/*; do umount -l "$m"; rmdir "$m"; done;
               rmdir "$KEEPOUT_MOUNTS"; } >/dev/null 2>&1; }"#,
            "keepout-container-watcher",
        ])
        .arg(&engine.program)
        .args(engine.global_args())
        .args(["rm", "--force", "--time", "0", name])
        .env("KEEPOUT_LEFTOVER", leftover.unwrap_or(Path::new("")))
        .env("KEEPOUT_MOUNTS", mounts.unwrap_or(Path::new("")))
        .stdin(reader)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            program: "/bin/sh".into(),
            source,
        })?;
        Ok(Watcher {
            pipe: writer,
            child,
        })
    }

    /// The run ended and the engine removed the container (`--rm`).
    fn done(mut self) {
        let _ = self.pipe.write_all(b"done\n");
        drop(self.pipe);
        let _ = self.child.wait();
    }

    /// The run ended, and the container may still be there (the engine could be detached
    /// from it): the watcher removes it, in the background.
    fn remove(self) {
        drop(self.pipe);
    }
}

/// The proxy's side of a proxied run: the port, and who serves the listener made there.
pub struct Egress<'a> {
    pub port: u16,
    pub serve: &'a mut dyn FnMut(std::net::TcpListener),
}

/// A proxied run's container made (`args` say `create`) and initialised, so that its
/// namespaces exist and its command has not started, then the proxy's port put on its
/// loopback, held by keepout ([`keepout_sandbox::listen_in_network_of`]). `Some(code)`: the
/// engine failed with that exit status (its words are on stderr).
fn prepare(engine: &Engine, args: &[String], name: &str, egress: Egress) -> Result<Option<i32>> {
    let quietly = |args: &[String]| {
        Command::new(&engine.program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|source| Error::Spawn {
                program: engine.program.clone(),
                source,
            })
    };
    let then = |verb: &[&str]| {
        let mut a = engine.global_args();
        a.extend(verb.iter().map(|w| w.to_string()));
        a.push(name.to_string());
        a
    };
    let mut out = quietly(args)?;
    for verb in [&["init"][..], &["inspect", "--format", "{{.State.Pid}}"]] {
        if !out.status.success() {
            return Ok(Some(out.status.code().unwrap_or(125)));
        }
        out = quietly(&then(verb))?;
    }
    let pid = String::from_utf8_lossy(&out.stdout).trim().parse::<i32>();
    let (true, Ok(pid)) = (out.status.success(), pid) else {
        return Ok(Some(out.status.code().filter(|&c| c != 0).unwrap_or(125)));
    };
    let listener = keepout_sandbox::listen_in_network_of(pid, egress.port)
        .map_err(|source| Error::Egress { source })?;
    (egress.serve)(listener);
    Ok(None)
}

/// Run `args` (from [`crate::run_args`]) with the engine; the command's exit status.
/// `leftover`: a file of the run's (its seccomp profile) the watcher removes too when keepout
/// dies without removing it itself; `mounts`: a directory of attached copies (see
/// [`crate::Plan`]) it detaches and removes then. `egress`: a proxied run (`args` create the container,
/// which is then started).
pub fn run(
    engine: &Engine,
    args: &[String],
    name: &str,
    tty_stdin: bool,
    leftover: Option<&Path>,
    mounts: Option<&Path>,
    egress: Option<Egress>,
) -> Result<i32> {
    let detachable = !crate::args::detach_keys_disabled(engine);
    let watcher = Watcher::start(engine, name, leftover, mounts)?;
    let start;
    let args = match egress {
        None => args,
        Some(egress) => {
            if let Some(code) = prepare(engine, args, name, egress)? {
                watcher.remove();
                return Ok(code);
            }
            start = crate::args::start_args(engine, name);
            &start[..]
        }
    };
    let wait_err = |source| Error::Wait {
        engine: engine.name().into(),
        source,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(wait_err)?;
    let status = rt.block_on(async {
        // Signals are taken before the engine starts, so none is lost in between.
        let mut sigs = Vec::new();
        let mut relayed = vec![
            (SignalKind::terminate(), Signal::TERM),
            (SignalKind::hangup(), Signal::HUP),
        ];
        let kinds = [
            (SignalKind::interrupt(), Signal::INT),
            (SignalKind::quit(), Signal::QUIT),
            (SignalKind::user_defined1(), Signal::USR1),
            (SignalKind::user_defined2(), Signal::USR2),
        ];
        if !tty_stdin {
            relayed.extend(kinds);
        } else {
            // Taken but not relayed: the terminal sent them to the engine already.
            for (kind, _) in kinds {
                sigs.push((signal(kind).map_err(wait_err)?, None));
            }
        }
        for (kind, sig) in relayed {
            sigs.push((signal(kind).map_err(wait_err)?, Some(sig)));
        }
        let mut cmd = tokio::process::Command::new(&engine.program);
        cmd.args(args);
        if !tty_stdin {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            program: engine.program.clone(),
            source,
        })?;
        let pid = child.id().and_then(|p| Pid::from_raw(p as i32));
        loop {
            let any_signal = next_signal(&mut sigs);
            tokio::select! {
                status = child.wait() => return status.map_err(wait_err),
                sig = any_signal => {
                    if let (Some(sig), Some(pid)) = (sig, pid) {
                        if !engine_kill(engine, name, sig).await {
                            let _ = kill_process(pid, sig);
                        }
                    }
                }
            }
        }
    });
    let status: ExitStatus = status?;
    match detachable {
        true => watcher.remove(),
        false => watcher.done(),
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(code)
}

/// `ENGINE kill --signal SIG NAME`: did the engine deliver it?
async fn engine_kill(engine: &Engine, name: &str, sig: Signal) -> bool {
    let sig_name = match sig {
        Signal::TERM => "TERM",
        Signal::HUP => "HUP",
        Signal::INT => "INT",
        Signal::QUIT => "QUIT",
        Signal::USR1 => "USR1",
        Signal::USR2 => "USR2",
        _ => return false,
    };
    let status = tokio::process::Command::new(&engine.program)
        .args(engine.global_args())
        .args(["kill", "--signal", sig_name, name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    status.is_ok_and(|s| s.success())
}

/// The next of `sigs` to arrive: the signal to relay, if it is relayed.
async fn next_signal(sigs: &mut [(tokio::signal::unix::Signal, Option<Signal>)]) -> Option<Signal> {
    std::future::poll_fn(|cx| {
        for (stream, relay) in sigs.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*relay);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
