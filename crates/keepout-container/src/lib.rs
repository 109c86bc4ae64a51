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
//!   and, with a local engine, keepout's seccomp deny list on top of the engine's profile
//!   (keepout-sandbox's list: [`with_denials`]);
//! * keepout never pulls (`--pull never`: a missing image is an error that says what to do);
//! * the container is removed when keepout ends, however it ends, and the exit status is the
//!   command's; signals reach the command;
//! * the same after-run check as the native backend undoes what the run left in the project
//!   that the host would run later ([`keepout_sandbox::with_after_run_check`]).
//!
//! * a root caller's project (and `--rw` paths) is writable by the container's `nobody` with a
//!   rootful local engine, as natively: bound from a copy idmapped the native way, attached for
//!   the run where only root may reach it, and detached after it (by the watcher if keepout is
//!   killed).
//!
//! Not yet (each refused: [`Error::NotYet`]): `--mode landlock`; `--net NAMES` and `--review`
//! with docker or a remote podman; a workspace on two or more layers. The deny list with a
//! remote engine, or with docker where containers-common's profile is missing, and the native
//! terminal filter, are left to the engine (docs/container.md).

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
    /// A root caller's writable binds, bound from idmapped copies (see [`rebinds`]).
    rebinds: Vec<Rebind>,
    /// The container's user on the host: root's files in the copies are its.
    host_id: u32,
}

/// Where a root caller's idmapped copies are attached for a rootful engine: one directory per
/// container, each only root may traverse.
const ATTACHED_DIR: &str = "/run/keepout-idmapped";

/// One of a root caller's writable binds (the project, `--rw` paths, a `.git` pointer file,
/// `--review`'s lower layer), bound from a copy attached at `at`.
#[derive(Debug, Clone)]
struct Rebind {
    source: std::path::PathBuf,
    target: std::path::PathBuf,
    at: std::path::PathBuf,
}

/// A rootful engine binds host paths as they are, and its container's user is `nobody`: root's
/// project would be read-only there. For a local rootful engine and a root caller, the binds
/// the native sandbox idmaps (its plan's, decided in one place) are bound instead from copies
/// idmapped the same way, attached under [`ATTACHED_DIR`] for the run (a path with a symlink in
/// it is bound as it is: the copy is made only through a path without one).
fn rebinds(policy: &Policy, engine: &Engine, name: &str) -> Vec<Rebind> {
    let plain = |p: &Path| std::fs::canonicalize(p).is_ok_and(|real| real == p);
    rebinds_where(policy, engine, name, &plain)
}

/// [`rebinds`], with `plain` saying which paths have no symlink in them.
fn rebinds_where(
    policy: &Policy,
    engine: &Engine,
    name: &str,
    plain: &dyn Fn(&Path) -> bool,
) -> Vec<Rebind> {
    // Only with keepout's seccomp rules in force: they refuse set-id modes, and through the
    // copy a file the container's user makes is root's (a set-id root file in root's project).
    let set_id_refused = engine.seccomp_profile.is_some();
    if !policy.identity.idmap_root || engine.rootless || engine.remote || !set_id_refused {
        return Vec::new();
    }
    let dir = Path::new(ATTACHED_DIR).join(name);
    keepout_sandbox::SandboxPlan::for_namespaces(policy)
        .steps
        .iter()
        .filter_map(|step| match step {
            keepout_sandbox::MountStep::Bind {
                source,
                target,
                idmap: true,
                ..
            } => Some((source.clone(), target.clone())),
            // `--review`: the project, the overlay's one lower layer, idmapped as natively.
            keepout_sandbox::MountStep::Overlay {
                lower,
                target,
                idmap_lower: true,
                ..
            } if lower.len() == 1 => Some((lower[0].clone(), target.clone())),
            _ => None,
        })
        // Not the home: `--decoys`' is given to the container's user (chowned), whose files an
        // idmapped copy would leave unmapped; a root `--home DIR` stays root's, read-only there.
        .filter(|(source, target)| plain(source) && *target != policy.home_path)
        .enumerate()
        .map(|(i, (source, target))| Rebind {
            source,
            target,
            at: dir.join(i.to_string()),
        })
        .collect()
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
        let rebinds = rebinds(policy, &engine, &name);
        let rebound: Vec<_> = rebinds
            .iter()
            .map(|r| (r.target.clone(), r.at.clone()))
            .collect();
        let inv = Invocation {
            engine: &engine,
            image,
            name: &name,
            tty,
            seccomp: profile.as_ref().map(|f| f.path()),
            is_dir: &is_dir,
            rebound: &rebound,
        };
        let args = run_args(policy, &inv)?;
        Ok(Plan {
            engine,
            image: image.to_string(),
            name,
            args,
            rebinds,
            host_id: policy.identity.host_uid,
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
        let attached: String = self
            .rebinds
            .iter()
            .map(|r| {
                format!(
                    "\n# {}: {} attached there first, idmapped (root's files the container user's)",
                    r.at.display(),
                    r.source.display()
                )
            })
            .collect();
        let Some(port) = self.proxy_port else {
            return format!("{}{attached}", line(&self.args));
        };
        let mut init = self.engine.global_args();
        init.extend(["init".to_string(), self.name.clone()]);
        format!(
            "{}\n{}\n# keepout's proxy listens on 127.0.0.1:{port} in the container's network namespace\n{}{attached}",
            line(&self.args),
            line(&init),
            line(&args::start_args(&self.engine, &self.name))
        )
    }

    /// The directory of this run's attached copies (under [`ATTACHED_DIR`]), if it has any.
    fn attached_dir(&self) -> Option<&Path> {
        self.rebinds.first().and_then(|r| r.at.parent())
    }

    /// The rebinds' copies attached where the arguments name them (see [`rebinds`]), with the
    /// directory that holds them; a copy that could not be idmapped is said.
    fn attach(&self) -> Result<Vec<keepout_sandbox::AttachedTree>> {
        let Some(dir) = self.attached_dir() else {
            return Ok(Vec::new());
        };
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Attach { path, source }
        };
        use std::os::unix::fs::DirBuilderExt;
        let mut private = std::fs::DirBuilder::new();
        private.mode(0o700).recursive(true);
        private.create(dir).map_err(err(dir))?;
        let mapping = keepout_sandbox::IdMapping::new(self.host_id);
        let mut attached = Vec::new();
        for r in &self.rebinds {
            let tree = match mapping.attach(&r.source, &r.at) {
                Ok(tree) => tree,
                Err(e) => {
                    drop(attached);
                    let _ = std::fs::remove_dir(dir);
                    return Err(err(&r.source)(e));
                }
            };
            if !tree.idmapped() {
                eprintln!(
                    "keepout: warning: {}: its filesystem takes no idmapped mounts; root's files there stay read-only in the container",
                    r.source.display()
                );
            }
            attached.push(tree);
        }
        Ok(attached)
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
        let attached = self.attach()?;
        let mounts = self.attached_dir();
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
                mounts,
                egress,
            )
        });
        drop(attached);
        if let Some(dir) = mounts {
            let _ = std::fs::remove_dir(dir);
        }
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
