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
    /// `--disk-reserve`, `--image`).
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
                "--net, --env, --ro, --report, --no-toolchains, --memory, --disk-reserve and \
                 --image do not apply to a joined command: it has what the running one has",
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use keepout_sandbox::{Limits, Mode, Network, RunRequest};

    use super::*;

    /// What the fake sandbox fails with: a workspace error, one it was told to make, or one
    /// with what was being done said first.
    #[derive(Debug)]
    enum Failure {
        Workspace(Error),
        Refused,
        Failed(String, Box<Failure>),
    }

    impl From<Error> for Failure {
        fn from(e: Error) -> Failure {
            Failure::Workspace(e)
        }
    }

    /// What the fake saw, shared with the clone's fake.
    #[derive(Default)]
    struct Seen {
        log: Vec<String>,
        runs: Vec<SandboxRun>,
        /// What each execute returns, in turn (0 when none is left).
        exits: Vec<i32>,
    }

    /// A sandbox that starts nothing: it records what it is asked, and a clone "clones" by
    /// making the project's directory.
    #[derive(Default)]
    struct Fake {
        net: Option<String>,
        read_only: Vec<PathBuf>,
        env: Vec<EnvRule>,
        refuse_net: bool,
        seen: Rc<RefCell<Seen>>,
    }

    impl Fake {
        fn log(&self, line: String) {
            self.seen.borrow_mut().log.push(line);
        }

        fn said(&self) -> Vec<String> {
            self.seen.borrow().log.clone()
        }
    }

    impl Sandbox for Fake {
        type Error = Failure;
        type Allowlist = String;

        fn asked(&self) -> Asked<'_> {
            Asked {
                net: self.net.as_deref(),
                read_only: &self.read_only,
                env: &self.env,
                ..Asked::default()
            }
        }

        fn allowlist(&self, names: &str) -> Result<String, Failure> {
            self.log(format!("allowlist {names}"));
            match self.refuse_net {
                true => Err(Failure::Refused),
                false => Ok(names.into()),
            }
        }

        fn check_limits(&self) -> Result<(), Failure> {
            self.log("limits".into());
            Ok(())
        }

        fn for_clone(&self, clone: &CloneRun) -> Fake {
            self.log(format!("clone net {:?}", clone.net));
            Fake {
                net: clone.net.clone(),
                read_only: clone.read_only.clone(),
                seen: self.seen.clone(),
                ..Fake::default()
            }
        }

        fn policy(&self, run: SandboxRun) -> Result<Policy, Failure> {
            self.log(format!("policy {}", run.command.join(" ")));
            if run.command.get(3).is_some_and(|a| a == "keepout-clone") {
                std::fs::create_dir(run.kept_home.upper.join(&run.command[5])).unwrap();
            }
            self.seen.borrow_mut().runs.push(run.clone());
            let req = RunRequest {
                command: run.command,
                cwd: "/".into(),
                project: None,
                home: None,
                kept_home: Some(run.kept_home),
                review: None,
                read_only: vec![],
                read_write: vec![],
                toolchains: false,
                extra_toolchains: vec![],
                env: run.env,
                network: Network::None,
                mode: Mode::Namespaces,
                limits: Limits::default(),
                caller_env: vec![],
                caller_env_not_utf8: vec![],
                caller_home: "/home/alice".into(),
                caller_uid: 1000,
                caller_gid: 1000,
                allow_sockets: vec![],
                bytecode_cache: None,
            };
            Ok(Policy::build(&req).expect("a policy"))
        }

        fn execute(&self, _: &Policy, allow: Option<&String>, _: &Decoys) -> Result<i32, Failure> {
            self.log(format!("execute through {allow:?}"));
            let mut seen = self.seen.borrow_mut();
            Ok(if seen.exits.is_empty() {
                0
            } else {
                seen.exits.remove(0)
            })
        }

        fn join(&self, _: &Path, command: &[String]) -> Result<i32, Failure> {
            self.log(format!("join {}", command.join(" ")));
            Ok(7)
        }

        fn failed(error: Failure, doing: String) -> Failure {
            Failure::Failed(doing, Box::new(error))
        }

        fn say(&self, notice: Notice<'_>) {
            self.log(notice.to_string());
        }
    }

    fn text(result: Result<i32, Failure>) -> String {
        match result {
            Err(Failure::Workspace(e)) => e.text(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shell_new_checks_then_makes_then_runs_the_shell_in_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let env = vec![EnvRule::Set("A".into(), "1".into())];
        let fake = Fake {
            net: Some("pypi".into()),
            env: env.clone(),
            ..Fake::default()
        };
        fake.seen.borrow_mut().exits = vec![3];
        let req = Shell {
            name: "w",
            new: true,
            layer: None,
            command: &[],
        };
        assert_eq!(shell(&store, &req, &fake).unwrap(), 3);
        assert_eq!(
            fake.said(),
            [
                "allowlist pypi",
                "limits",
                "new workspace w",
                "allowlist pypi",
                &format!("policy {}", home::interactive_shell()),
                "execute through Some(\"pypi\")",
            ]
        );
        let seen = fake.seen.borrow();
        let run = &seen.runs[0];
        let shell_env = EnvRule::Set("SHELL".into(), home::interactive_shell().into());
        let workspace_env = EnvRule::Set("KEEPOUT_WORKSPACE".into(), "w".into());
        assert_eq!(run.env, [workspace_env, shell_env, env[0].clone()]);
        assert_eq!(run.kept_home.workdir, Path::new("w"));
        assert_eq!(run.join_socket, None, "a plain home is not joined");
        assert_eq!(run.home_dirs(), [store.workspace("w").unwrap().home()]);
    }

    #[test]
    fn a_refused_network_makes_nothing_and_says_which_flag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let fake = Fake {
            net: Some("nope".into()),
            refuse_net: true,
            ..Fake::default()
        };
        let req = Shell {
            name: "w",
            new: true,
            layer: None,
            command: &[],
        };
        match shell(&store, &req, &fake) {
            Err(Failure::Failed(doing, cause)) => {
                assert_eq!(doing, "--net nope");
                assert!(matches!(*cause, Failure::Refused));
            }
            other => panic!("{other:?}"),
        }
        assert!(!store.exists("w"));
        assert_eq!(fake.said(), ["allowlist nope"], "nothing after the check");
        // `host` is no allowlist: nothing to check.
        let host = Fake {
            net: Some("host".into()),
            ..Fake::default()
        };
        assert_eq!(shell(&store, &req, &host).unwrap(), 0);
        assert_eq!(host.said()[0], "limits");
        assert!(host.said().iter().all(|l| !l.starts_with("allowlist")));
    }

    #[test]
    fn shell_says_how_to_make_one_or_how_to_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let fake = Fake::default();
        let mut req = Shell {
            name: "w",
            new: false,
            layer: None,
            command: &[],
        };
        assert_eq!(
            text(shell(&store, &req, &fake)),
            "no workspace \"w\" (there are none yet)\n`keepout shell w --new` makes an empty one, \
             `--from LAYER` one on a layer; `keepout try SOURCE` clones into a new one"
        );
        assert!(fake.said().is_empty(), "nothing checked, nothing run");
        store.create("w", None, None, "w", true).unwrap();
        req.new = true;
        assert_eq!(
            text(shell(&store, &req, &fake)),
            "workspace w exists already: `keepout shell w` goes back into it (--new and --from \
             only make new ones)"
        );
        req.new = false;
        let command = ["make".to_string()];
        req.command = &command;
        assert_eq!(shell(&store, &req, &fake).unwrap(), 0);
        assert_eq!(
            fake.said(),
            ["limits", "policy make", "execute through None"]
        );
    }

    fn local_source(dir: &Path) -> PathBuf {
        let source = dir.join("src");
        std::fs::create_dir_all(source.join(".git")).unwrap();
        source
    }

    #[test]
    fn try_clones_inside_with_only_the_source_then_enters() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("store"));
        let source = local_source(dir.path());
        let fake = Fake {
            env: vec![EnvRule::Set("A".into(), "1".into())],
            ..Fake::default()
        };
        fake.seen.borrow_mut().exits = vec![0, 5];
        let command = ["make".to_string()];
        let req = Try {
            given: "src",
            name: None,
            layer: None,
            recursive: false,
            decoys: false,
            command: &command,
        };
        assert_eq!(try_source(&store, dir.path(), &req, &fake).unwrap(), 5);
        let said = fake.said();
        assert_eq!(
            said[..3],
            [
                "limits",
                "clone net None",
                &format!(
                    "cloning {} into workspace src, inside the sandbox (no network)",
                    source.display()
                )
            ]
        );
        assert!(said[3].starts_with("policy sh -c"), "{}", said[3]);
        assert_eq!(
            said[4..],
            [
                "execute through None",
                "workspace src is ready; `keepout shell src` comes back to it",
                "policy make",
                "execute through None",
            ]
        );
        let seen = fake.seen.borrow();
        let workspace_env = EnvRule::Set("KEEPOUT_WORKSPACE".into(), "src".into());
        assert_eq!(
            seen.runs[0].env[0], workspace_env,
            "the clone has the workspace's variable"
        );
        assert!(
            !seen.runs[0].env.contains(&fake.env[0]),
            "and none of the caller's --env"
        );
        assert_eq!(seen.runs[0].kept_home.workdir, Path::new(""), "in the home");
        assert_eq!(
            seen.runs[1].kept_home.workdir,
            Path::new("src"),
            "then the project"
        );
        assert_eq!(seen.runs[1].env.last(), fake.env.last());
        assert_eq!(store.workspace("src").unwrap().meta.project, "src");
    }

    #[test]
    fn a_clone_that_exits_non_zero_keeps_no_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("store"));
        local_source(dir.path());
        let fake = Fake::default();
        fake.seen.borrow_mut().exits = vec![128];
        let req = Try {
            given: "src",
            name: Some("bug-1"),
            layer: None,
            recursive: false,
            decoys: false,
            command: &[],
        };
        assert_eq!(
            text(try_source(&store, dir.path(), &req, &fake)),
            "cloning src failed (git exited 128); no workspace was kept"
        );
        assert!(!store.exists("bug-1"));
        assert!(store.workspaces().unwrap().is_empty());
    }

    #[test]
    fn a_second_run_on_a_layer_joins_or_says_how_to_start_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.create("base", None, None, "base", true).unwrap();
        store.snapshot("base", "l").unwrap();
        let ws = store.workspace("base").unwrap();
        let _first = store.lock(&ws, true).unwrap();
        let fake = Fake {
            env: vec![EnvRule::Set("A".into(), "1".into())],
            ..Fake::default()
        };
        let command = ["ls".to_string()];
        let req = Shell {
            name: "base",
            new: false,
            layer: None,
            command: &command,
        };
        let busy = text(shell(&store, &req, &fake));
        assert!(
            busy.ends_with(
                "then try again. A workspace on a layer takes one run at a time (overlayfs \
                 mounts its home once); `keepout shell NEW --from l` starts another workspace \
                 on the same layer"
            ),
            "{busy}"
        );
        std::fs::write(home::join_socket(&ws), "").unwrap();
        fake.seen.borrow_mut().log.clear();
        assert_eq!(shell(&store, &req, &fake).unwrap(), 7);
        let said = fake.said();
        assert_eq!(said[0], "limits");
        assert!(
            said[1].starts_with(&format!(
                "workspace base is running (pid {}: ",
                std::process::id()
            )),
            "{}",
            said[1]
        );
        assert!(said[1].ends_with("; joining its sandbox: the same home, processes, network and limits, confined as its first command"));
        assert_eq!(
            said[2..],
            [
                "--net, --env, --ro, --report, --no-toolchains, --memory, --disk-reserve and \
                 --image do not apply to a joined command: it has what the running one has",
                "join ls",
            ]
        );
    }

    #[test]
    fn what_a_join_does_not_get_is_said_only_when_asked_for() {
        let asked = Asked::default();
        assert!(!asked.more_than_a_command());
        assert!(Asked {
            more: true,
            ..asked
        }
        .more_than_a_command());
        assert!(Asked {
            net: Some("host"),
            ..asked
        }
        .more_than_a_command());
        assert_eq!(
            Asked {
                net: Some("host"),
                ..asked
            }
            .allowlist(),
            None
        );
        assert_eq!(
            Asked {
                net: Some("pypi"),
                ..asked
            }
            .allowlist(),
            Some("pypi")
        );
    }

    #[test]
    fn notices_in_keepout_s_words() {
        let copied = CopiedLayer {
            layer: "l".into(),
            why: "KEEPOUT_NO_OVERLAY=1".into(),
        };
        let cases = [
            (
                Notice::Copied {
                    name: "w",
                    copied: &copied,
                },
                "overlayfs cannot be used here (KEEPOUT_NO_OVERLAY=1); workspace w starts on a \
                 copy of layer l instead",
            ),
            (
                Notice::Cloning {
                    url: "https://h/r",
                    name: "w",
                    net: Some("h"),
                },
                "cloning https://h/r into workspace w, inside the sandbox (network: h only)",
            ),
            (
                Notice::Made {
                    name: "w",
                    layer: Some("l"),
                },
                "new workspace w on layer l",
            ),
            (
                Notice::Made {
                    name: "w",
                    layer: None,
                },
                "new workspace w",
            ),
            (
                Notice::Joining {
                    name: "w",
                    holder: None,
                },
                "workspace w is running; joining its sandbox: the same home, processes, network \
                 and limits, confined as its first command",
            ),
        ];
        for (notice, said) in cases {
            assert_eq!(notice.to_string(), said);
        }
    }
}
