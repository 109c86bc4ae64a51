//! `keepout try` and `keepout shell`, in order: what is checked before any work, how the
//! workspace is made (for `try`, a clone run inside the sandbox), how a run in it starts or joins
//! a running one, and what is taken out of its home after the run. This crate never starts a
//! sandbox: the caller's [`Sandbox`] checks the network and limits a run asks for, makes the
//! run's policy, runs it, and joins a running sandbox.
//!
//! What this module guarantees: every check runs before any work, in the order of
//! [`Store::check_before_work`] (the network only when `--net` names what the proxy allows, not
//! `host`), so a wrong argument clones nothing and makes no workspace; a clone that fails or
//! exits non-zero leaves no workspace ([`make_clone`]) and says so; a run holds its workspace
//! ([`home::enter_or_join`]: one on a layer alone, a second run joining the first's sandbox and
//! told what of its own it does not get), starts with `KEEPOUT_WORKSPACE`, then what entering
//! adds (`SHELL`), then the caller's `--env`, with the decoys in its home and in the home's
//! layers watched from outside, and the mount points its sandbox made in the home
//! are taken out after it ([`home::end_run`]); a workspace named for `shell` that is not there,
//! or is there when a new one is asked for, is an error that says what to do. Nothing here
//! prints: what is to be said goes to [`Sandbox::say`].

use std::fmt;
use std::path::{Path, PathBuf};

use keepout_sandbox::decoys::Decoys;
use keepout_sandbox::{EnvRule, KeptHome, Policy};

use crate::check::Preflight;
use crate::clone::{make_clone, CloneRun, NewClone};
use crate::home::{self, CopiedLayer, Entry};
use crate::source::parse_source;
use crate::{Error, Holder, Store, Workspace};

/// What a run asks for besides its command, as far as this crate checks or uses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// `--net` as given.
    pub net: Option<&'a str>,
    /// `--ro`: each must exist.
    pub read_only: &'a [PathBuf],
    /// `--report`: its directory must exist.
    pub report: Option<&'a Path>,
    /// `--env`: after the workspace's own variables.
    pub env: &'a [EnvRule],
    /// Anything else a joined command cannot have (`--no-toolchains`, `--memory`,
    /// `--disk-reserve`).
    pub more: bool,
}

impl Asked<'_> {
    /// The names the proxy is to allow: `--net`'s, unless it is absent or `host`.
    pub fn allowlist(&self) -> Option<&str> {
        self.net.filter(|n| *n != "host")
    }

    /// Does the run ask for anything a joined command cannot have?
    pub fn more_than_a_command(&self) -> bool {
        self.net.is_some()
            || !self.env.is_empty()
            || !self.read_only.is_empty()
            || self.report.is_some()
            || self.more
    }
}

/// One run for the caller to start in the sandbox, in a workspace's kept home.
#[derive(Debug, Clone)]
pub struct SandboxRun {
    pub command: Vec<String>,
    /// The whole environment it adds: the workspace's, what entering adds, the caller's.
    pub env: Vec<EnvRule>,
    pub kept_home: KeptHome,
    /// Where its sandbox serves a second run to join (a workspace on a layer); `None`: it
    /// cannot be joined.
    pub join_socket: Option<PathBuf>,
}

impl SandboxRun {
    /// What the sandbox's home is made of, topmost first (the home, then its layers): where its
    /// decoys are watched from.
    pub fn home_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.kept_home.upper.clone())
            .chain(self.kept_home.layers.iter().cloned())
            .collect()
    }
}

/// What only the caller does: check what the sandbox and its proxy make of a run, and start
/// the sandbox.
pub trait Sandbox: Sized {
    /// The caller's error; this crate's errors become one.
    type Error: From<Error>;
    /// What the proxy allows, made of `--net`'s names.
    type Allowlist;

    /// What the run asks for besides its command.
    fn asked(&self) -> Asked<'_>;
    /// What the proxy is to allow, made of `names` ([`Asked::allowlist`]).
    fn allowlist(&self, names: &str) -> Result<Self::Allowlist, Self::Error>;
    /// Check the limits the run asks for (and the configuration's).
    fn check_limits(&self) -> Result<(), Self::Error>;
    /// How the clone of a new workspace runs: with `clone`'s network and read-only paths, and
    /// of what this run asks for only what says how it runs (quiet, toolchains).
    fn for_clone(&self, clone: &CloneRun) -> Self;
    /// The policy of `run`.
    fn policy(&self, run: SandboxRun) -> Result<Policy, Self::Error>;
    /// Run `policy` to its end, through the proxy when `allow` is given, watching `decoys`; its
    /// exit code.
    fn execute(
        &self,
        policy: &Policy,
        allow: Option<&Self::Allowlist>,
        decoys: &Decoys,
    ) -> Result<i32, Self::Error>;
    /// Run `command` in the running sandbox that `socket` serves; its exit code.
    fn join(&self, socket: &Path, command: &[String]) -> Result<i32, Self::Error>;
    /// `error`, with what was being done (`doing`) said first.
    fn failed(error: Self::Error, doing: String) -> Self::Error;
    /// Tell the user `notice`.
    fn say(&self, notice: Notice<'_>);
}

/// What a `try` or `shell` tells the user as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice<'a> {
    /// overlayfs is refused: the new workspace starts on a copy of its layer (said before the
    /// copy is made).
    Copied {
        name: &'a str,
        copied: &'a CopiedLayer,
    },
    /// The clone starts, inside the sandbox, with the source's network only, or none.
    Cloning {
        url: &'a str,
        name: &'a str,
        net: Option<&'a str>,
    },
    /// `try`'s workspace is made; its command comes next.
    Ready { name: &'a str },
    /// `shell --new` or `--from` made the workspace.
    Made {
        name: &'a str,
        layer: Option<&'a str>,
    },
    /// The workspace is running: this run joins its sandbox.
    Joining {
        name: &'a str,
        holder: Option<&'a Holder>,
    },
    /// What the joining run asked for besides its command does not apply.
    JoinIgnores,
}

impl fmt::Display for Notice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Copied { name, copied } => write!(
                f,
                "overlayfs cannot be used here ({}); workspace {name} starts on a copy of layer {} instead",
                copied.why, copied.layer
            ),
            Notice::Cloning { url, name, net } => write!(
                f,
                "cloning {url} into workspace {name}, inside the sandbox{}",
                match net {
                    Some(n) => format!(" (network: {n} only)"),
                    None => " (no network)".into(),
                }
            ),
            Notice::Ready { name } => write!(
                f,
                "workspace {name} is ready; `keepout shell {name}` comes back to it"
            ),
            Notice::Made { name, layer } => write!(
                f,
                "new workspace {name}{}",
                layer.map(|l| format!(" on layer {l}")).unwrap_or_default()
            ),
            Notice::Joining { name, holder } => write!(
                f,
                "workspace {name} is running{}; joining its sandbox: the same home, processes, \
                 network and limits, confined as its first command",
                holder
                    .map(|h| format!(" (pid {}: {})", h.pid, h.command))
                    .unwrap_or_default()
            ),
            Notice::JoinIgnores => f.write_str(
                "--net, --env, --ro, --report, --no-toolchains, --memory and --disk-reserve do \
                 not apply to a joined command: it has what the running one has",
            ),
        }
    }
}

/// `keepout try`: what to clone into a new workspace, and the command to run there.
#[derive(Debug, Clone, Copy)]
pub struct Try<'a> {
    /// The source as given: an https:// URL, `github:OWNER/REPO`, a local repository or bundle.
    pub given: &'a str,
    /// `--name`: the workspace's and the clone's directory's; else a free name made from the
    /// source's, and the source's own for the directory.
    pub name: Option<&'a str>,
    /// `--from`: the layer to start on.
    pub layer: Option<&'a str>,
    /// Clone the submodules too.
    pub recursive: bool,
    /// Plant the decoys.
    pub decoys: bool,
    /// The command to run in the project (none: the interactive shell).
    pub command: &'a [String],
}

/// `keepout try`: `source` (relative to `cwd`) cloned, inside the sandbox, into a new
/// workspace, then the command run in its project; its exit code.
pub fn try_source<S: Sandbox>(
    store: &Store,
    cwd: &Path,
    req: &Try,
    sandbox: &S,
) -> Result<i32, S::Error> {
    let source = parse_source(req.given, cwd)?;
    let name = match req.name {
        Some(n) => n.to_string(),
        None => store.free_name(&source.name),
    };
    let project = req.name.unwrap_or(&source.name);
    check_before_work(store, Some(&name), req.layer, sandbox)?;
    let clone = NewClone {
        name: &name,
        project,
        source: &source,
        recorded_source: source.recorded(req.given),
        layer: req.layer,
        recursive: req.recursive,
        decoys: req.decoys,
    };
    let on_copy = |copied: &CopiedLayer| {
        sandbox.say(Notice::Copied {
            name: &name,
            copied,
        })
    };
    let mut ws = make_clone(store, &clone, on_copy, |ws, clone| {
        let clone_sandbox = sandbox.for_clone(&clone);
        sandbox.say(Notice::Cloning {
            url: &source.url,
            name: &name,
            net: source.net.as_deref(),
        });
        match run_in(store, ws, false, clone.command, clone.env, &clone_sandbox) {
            Ok(0) => Ok(()),
            Ok(code) => Err(Error::CloneExited {
                given: req.given.into(),
                code,
            }
            .into()),
            Err(e) => Err(S::failed(
                e,
                format!("cloning {} failed; no workspace was kept", req.given),
            )),
        }
    })?;
    sandbox.say(Notice::Ready { name: &name });
    enter(store, &mut ws, req.command, sandbox)
}

/// `keepout shell`: the workspace to enter, made when asked, and the command to run there.
#[derive(Debug, Clone, Copy)]
pub struct Shell<'a> {
    pub name: &'a str,
    /// `--new`: make an empty one.
    pub new: bool,
    /// `--from`: make one on this layer.
    pub layer: Option<&'a str>,
    /// The command to run in the project (none: the interactive shell).
    pub command: &'a [String],
}

/// `keepout shell`: into the workspace (made, when asked, and only then), the command run in
/// its project; its exit code.
pub fn shell<S: Sandbox>(store: &Store, req: &Shell, sandbox: &S) -> Result<i32, S::Error> {
    let make = req.new || req.layer.is_some();
    let mut ws = if store.exists(req.name) {
        if make {
            // A damaged one says so (and how to remove it) rather than just "exists".
            store.workspace(req.name)?;
            return Err(Error::NotNew(req.name.into()).into());
        }
        check_before_work(store, None, None, sandbox)?;
        store.workspace(req.name)?
    } else if make {
        check_before_work(store, Some(req.name), req.layer, sandbox)?;
        let on_copy = |copied: &CopiedLayer| {
            sandbox.say(Notice::Copied {
                name: req.name,
                copied,
            })
        };
        let ws = home::make_to_enter(store, req.name, req.layer, on_copy)?;
        sandbox.say(Notice::Made {
            name: req.name,
            layer: req.layer,
        });
        ws
    } else {
        let why = store.workspace(req.name).err().map(Box::new);
        return Err(Error::NothingToEnter {
            name: req.name.into(),
            why,
        }
        .into());
    };
    enter(store, &mut ws, req.command, sandbox)
}

/// Everything the run asks for that can be wrong, checked before any work: see
/// [`Store::check_before_work`].
fn check_before_work<S: Sandbox>(
    store: &Store,
    new_name: Option<&str>,
    layer: Option<&str>,
    sandbox: &S,
) -> Result<(), S::Error> {
    let asked = sandbox.asked();
    let preflight = Preflight {
        new_name,
        layer,
        read_only: asked.read_only,
        report: asked.report,
    };
    store.check_before_work(
        &preflight,
        || match asked.allowlist() {
            Some(names) => sandbox
                .allowlist(names)
                .map(drop)
                .map_err(|e| S::failed(e, format!("--net {names}"))),
            None => Ok(()),
        },
        || sandbox.check_limits(),
    )
}

/// The command (or the interactive shell) in the workspace's project.
fn enter<S: Sandbox>(
    store: &Store,
    ws: &mut Workspace,
    command: &[String],
    sandbox: &S,
) -> Result<i32, S::Error> {
    let (command, env) = home::entering(command);
    run_in(store, ws, true, command, env, sandbox)
}

/// Run `command` in the workspace (in its project, or in its home when `in_project` is false),
/// in a sandbox of its own or joining the running one.
fn run_in<S: Sandbox>(
    store: &Store,
    ws: &mut Workspace,
    in_project: bool,
    command: Vec<String>,
    extra_env: Vec<EnvRule>,
    sandbox: &S,
) -> Result<i32, S::Error> {
    let lock = match home::enter_or_join(store, ws) {
        Ok(Entry::Own(lock)) => lock,
        Ok(Entry::Join { socket, holder }) => {
            return join(ws, &socket, holder.as_ref(), command, sandbox)
        }
        Err(busy @ Error::Busy { .. }) if ws.meta.layer.is_some() => {
            let layer = ws.meta.layer.clone().unwrap_or_default();
            let busy = Box::new(busy);
            return Err(Error::BusyOnLayer { busy, layer }.into());
        }
        Err(e) => return Err(e.into()),
    };
    let kept_home = store.kept_home(ws, in_project)?;
    store.touch(ws)?;
    let allow = sandbox.asked().allowlist().map(|n| sandbox.allowlist(n));
    let allow = allow.transpose()?;
    let mut env = vec![EnvRule::Set(
        "KEEPOUT_WORKSPACE".into(),
        ws.meta.name.clone(),
    )];
    env.extend(extra_env);
    env.extend(sandbox.asked().env.iter().cloned());
    let run = SandboxRun {
        command,
        env,
        kept_home: kept_home.clone(),
        // A workspace on a layer takes one sandbox at a time: a second run joins this one.
        join_socket: ws.meta.layer.is_some().then(|| home::join_socket(ws)),
    };
    // Decoys in the home (planted by `try`, or in a layer under it) are watched from outside.
    let decoys = Decoys::watch(&run.home_dirs()).map_err(Error::WatchDecoys)?;
    let policy = sandbox.policy(run)?;
    let mount_points = home::mount_points_to_make(&policy, &kept_home);
    let code = sandbox.execute(&policy, allow.as_ref(), &decoys);
    home::end_run(store, ws, lock, &mount_points);
    code
}

/// A second run of a workspace on a layer, while the first runs: `command` joins the first's
/// sandbox (its namespaces, its home, its network and limits, confined exactly as the first
/// command is), as `docker exec` does. What this run asked for besides its command does not
/// apply, and the user is told so.
fn join<S: Sandbox>(
    ws: &Workspace,
    socket: &Path,
    holder: Option<&Holder>,
    command: Vec<String>,
    sandbox: &S,
) -> Result<i32, S::Error> {
    let name = &ws.meta.name;
    sandbox.say(Notice::Joining { name, holder });
    if sandbox.asked().more_than_a_command() {
        sandbox.say(Notice::JoinIgnores);
    }
    let command = home::joining(command);
    sandbox
        .join(socket, &command)
        .map_err(|e| S::failed(e, format!("joining workspace {name}'s running sandbox")))
}
