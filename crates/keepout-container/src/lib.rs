//! keepout's container backend: `keepout run --image IMAGE` runs the command in the user's own
//! podman (preferred) or docker image under the same [`Policy`] as the native sandbox.
//!
//! One place decides what is visible (keepout-sandbox's [`Policy::build`]); this crate only
//! translates it ([`run_args`], a pure function, asserted whole in its unit tests) and runs the
//! engine ([`Plan::run`]). What it guarantees for a run:
//! * the container sees the image's own system, the project at its own path read-write with
//!   every protected name that exists read-only (the policy's `protected` list: the same list
//!   as the native backend), the policy's masked sockets masked, an empty tmpfs home at the
//!   caller's home path, a fresh /tmp, and no other host path (no engine socket, no agent
//!   socket, no toolchain);
//! * its environment is the policy's and nothing else (the image's `PATH`), whatever the
//!   caller's or the engine's (`--http-proxy=false`);
//! * its user is never 0 (rootless podman: the caller's own ids through `--userns keep-id`;
//!   a root caller: `nobody`), with no capabilities, `no-new-privileges`, a read-only root,
//!   `--pids-limit` (where the engine has a cgroup for it), RLIMIT_NPROC and RLIMIT_NOFILE, the
//!   memory limit when the policy has one (an error where it cannot be enforced), no network,
//!   and, with a local podman, keepout's seccomp deny list on top of the engine's profile
//!   (keepout-sandbox's list: [`with_denials`]);
//! * keepout never pulls (`--pull never`: a missing image is an error that says what to do);
//! * the container is removed when keepout ends, however it ends, and the exit status is the
//!   command's; signals reach the command;
//! * the same after-run check as the native backend undoes what the run left in the project
//!   that the host would run later ([`keepout_sandbox::with_after_run_check`]).
//!
//! Not yet: `--net NAMES` (keepout's proxy), `--review`, `--decoys`, `--report`, `--mode
//! landlock` (each refused: [`Error::NotYet`]); the deny list with docker or a remote podman, and
//! the native terminal filter (left to the engine, as said above and in docs/container.md).
//! A root caller's container runs as `nobody`, so root's project is writable there only where
//! `nobody` may write (rootful podman with runc 1.1 has no idmapped mounts).

mod args;
mod engine;
mod error;
mod run;
mod seccomp;

use std::io::IsTerminal;
use std::path::Path;

pub use args::{run_args, Invocation};
pub use engine::{Engine, EngineKind, LocalFacts};
pub use error::{Error, Result};
pub use run::container_name;
pub use seccomp::with_denials;

use keepout_sandbox::{AfterRun, Network, Policy, RunRequest};

/// The request as `--image` needs it: the image brings its own system and tools, so the
/// caller's toolchains are not shown, and Python's bytecode stays in the sandbox's home.
pub fn adapt_request(req: &mut RunRequest) {
    req.toolchains = false;
    req.extra_toolchains.clear();
    req.bytecode_cache = None;
}

/// `keepout doctor`'s line about the engine `run --image` would use: whether it works, and
/// what it is (version, rootless or not, runtime) and what keepout adds for it, or why not and
/// what to do. No engine at all is no failure: only `--image` needs one. Makes nothing: a
/// podman never used is found, not asked.
pub fn doctor_check() -> (bool, String) {
    match Engine::find(None) {
        Ok((kind, program)) if !Engine::used_before(kind) => {
            return (
                true,
                format!(
                    "{} (not asked: this user's podman was never used, and asking sets up its storage; \
                     after `podman info` once, doctor says more)",
                    program.display()
                ),
            )
        }
        Err(e) => return (true, format!("{e} (only `run --image` needs one)")),
        Ok(_) => {}
    }
    match Engine::ask(None) {
        Ok(engine) => (true, engine.describe()),
        Err(e @ Error::NoEngine { .. }) => (true, format!("{e} (only `run --image` needs one)")),
        Err(e) => {
            let hint = e.hint().map(|h| format!("; {h}")).unwrap_or_default();
            (false, format!("{e}{hint}"))
        }
    }
}

/// The engine's profile at `default` with keepout's deny list, in a new private file.
fn seccomp_file(default: &Path) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let file_err = |source| Error::SeccompFile { source };
    let text = std::fs::read_to_string(default).map_err(file_err)?;
    let denied: Vec<&str> = keepout_sandbox::denied_syscalls()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let profile = with_denials(&text, &denied)?;
    let mut file = tempfile::Builder::new()
        .prefix("keepout-seccomp-")
        .suffix(".json")
        .tempfile()
        .map_err(file_err)?;
    file.write_all(profile.as_bytes()).map_err(file_err)?;
    Ok(file)
}

/// An error for the first of `options` that is set: what `--image` does not do yet.
pub fn refuse_not_yet(options: &[(&str, bool)]) -> Result<()> {
    match options.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(Error::NotYet {
            what: name.to_string(),
        }),
        None => Ok(()),
    }
}

impl Plan {
    /// After a `--review` run in rootless podman: overlayfs's own `work/work` directory, which
    /// the container's root made (a subordinate id, mode 0) and the caller could not remove,
    /// removed by the engine in its user namespace (`podman unshare`), so that the review can
    /// be dropped. Best effort: a failure leaves only that empty scratch directory.
    fn clear_overlay_work(&self, policy: &Policy) {
        if !self.engine.rootless || self.engine.remote || self.engine.kind != EngineKind::Podman {
            return;
        }
        for m in &policy.mounts {
            if let keepout_sandbox::MountKind::Overlay { work, .. } = &m.kind {
                let _ = std::process::Command::new(&self.engine.program)
                    .args(["unshare", "rm", "-rf", "--"])
                    .arg(work.join("work"))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// One run, decided: the engine and its exact argument list.
#[derive(Debug, Clone)]
pub struct Plan {
    pub engine: Engine,
    pub image: String,
    pub name: String,
    pub args: Vec<String>,
    tty_stdin: bool,
    /// `Network::Proxied`'s port: the run is create, init, the proxy, start.
    proxy_port: Option<u16>,
    /// The seccomp profile the arguments name, kept for as long as the plan.
    seccomp: Option<std::sync::Arc<tempfile::NamedTempFile>>,
}

impl Plan {
    /// Find the engine (`wanted`, else podman, else docker) and translate `policy` for `image`.
    pub fn new(policy: &Policy, image: &str, wanted: Option<EngineKind>) -> Result<Plan> {
        let engine = Engine::discover(wanted)?;
        Plan::with_engine(policy, image, engine)
    }

    /// [`Plan::new`] with an engine already found.
    pub fn with_engine(policy: &Policy, image: &str, engine: Engine) -> Result<Plan> {
        let tty_stdin = std::io::stdin().is_terminal();
        let tty = tty_stdin && std::io::stdout().is_terminal();
        let name = container_name();
        let is_dir = |p: &Path| p.is_dir();
        let profile = engine
            .seccomp_profile
            .as_deref()
            .map(seccomp_file)
            .transpose()?;
        let inv = Invocation {
            engine: &engine,
            image,
            name: &name,
            tty,
            seccomp: profile.as_ref().map(|f| f.path()),
            is_dir: &is_dir,
        };
        let args = run_args(policy, &inv)?;
        Ok(Plan {
            engine,
            image: image.to_string(),
            name,
            args,
            tty_stdin,
            proxy_port: match policy.network {
                Network::Proxied { port } => Some(port),
                _ => None,
            },
            seccomp: profile.map(std::sync::Arc::new),
        })
    }

    /// The exact command line keepout runs, shell-quoted (`--print-policy`); for a proxied run
    /// the three it runs, one per line, with where the proxy's port is made between them.
    pub fn command_line(&self) -> String {
        let program = self.engine.program.display().to_string();
        let line = |args: &[String]| {
            let words = std::iter::once(program.as_str()).chain(args.iter().map(String::as_str));
            shlex::try_join(words).unwrap_or_else(|_| args.join(" "))
        };
        let Some(port) = self.proxy_port else {
            return line(&self.args);
        };
        let mut init = self.engine.global_args();
        init.extend(["init".to_string(), self.name.clone()]);
        format!(
            "{}\n{}\n# keepout's proxy listens on 127.0.0.1:{port} in the container's network namespace\n{}",
            line(&self.args),
            line(&init),
            line(&args::start_args(&self.engine, &self.name))
        )
    }

    /// Run it (the image must be in the engine's storage), with the after-run check; the
    /// command's exit status and what was undone.
    /// The image is looked for only when the engine refused to start (it never pulls: a
    /// missing image is its refusal), which also drops the kept `info` answer.
    /// With `Network::Proxied`, `egress` gets the listener of the proxy's port in the
    /// container's network namespace before the command starts, as the native backend's does.
    pub fn run(
        &self,
        policy: &Policy,
        egress: &mut dyn FnMut(std::net::TcpListener),
    ) -> Result<(i32, AfterRun)> {
        let (code, after) = keepout_sandbox::with_after_run_check(policy, || {
            let profile = self.seccomp.as_ref().map(|f| f.path());
            let egress = match policy.network {
                Network::Proxied { port } => Some(run::Egress {
                    port,
                    serve: egress,
                }),
                _ => None,
            };
            run::run(
                &self.engine,
                &self.args,
                &self.name,
                self.tty_stdin,
                profile,
                egress,
            )
        });
        self.clear_overlay_work(policy);
        match code? {
            125 => {
                self.engine.forget();
                if !self.engine.has_image(&self.image)? {
                    return Err(Error::ImageMissing {
                        image: self.image.clone(),
                        engine: self.engine.name().into(),
                    });
                }
                Err(Error::Refused {
                    engine: self.engine.name().into(),
                })
            }
            code => Ok((code, after)),
        }
    }
}

#[cfg(test)]
mod tests;
