//! `keepout try`, `keepout shell` and `keepout workspace`: long-lived sandboxes over
//! keepout-workspace's store. This module decides nothing: it hands the command line to
//! keepout-workspace's flows (`session`), starts the sandbox where one asks for a run
//! ([`Launch`]), and prints what comes back. It guarantees that a run in a workspace is launched
//! as `keepout run` launches (the same request from the caller and config, the same limits,
//! network, proxy and lines after it); that the clone is such a run with the source's network
//! (or none) and read-only paths, and of the user's flags only `--quiet` and `--no-toolchains`;
//! that a joined command's failure keeps the sandbox error's exit status.

use anyhow::Result;
use keepout_launch::{Caller, LazyConfig};
use keepout_net::Allowlist;
use keepout_sandbox::{decoys::Decoys, Limits, Policy, RunRequest};
use keepout_workspace::session::{self, Asked, Notice, SandboxRun, Shell, Try};
use keepout_workspace::{clone::CloneRun, listing::snapshot_made, Store};

use crate::cli::{SandboxArgs, ShellArgs, TryArgs, WorkspaceAction};
use crate::review::print_out;
use crate::run;

/// The store, owned as the caller's sandbox needs it ([`Store::for_caller`]).
pub fn store() -> Store {
    Store::for_caller(Store::default_root(), run::caller_uid())
}

/// A workspace run's sandbox as the command line asks for it: who runs it and the config it
/// reads (made once per command, shared by its checks and its runs: a `try` runs twice), and
/// the flags.
struct Launch<'a> {
    caller: &'a Caller,
    config: &'a LazyConfig,
    opts: SandboxArgs,
}

impl<'a> Launch<'a> {
    fn new(caller: &'a Caller, config: &'a LazyConfig, opts: SandboxArgs) -> Launch<'a> {
        Launch {
            caller,
            config,
            opts,
        }
    }
}

impl session::Sandbox for Launch<'_> {
    type Error = anyhow::Error;
    type Allowlist = Allowlist;

    fn asked(&self) -> Asked<'_> {
        let (opts, limits) = (&self.opts, &self.opts.resources);
        let more = opts.no_toolchains
            || limits.memory.is_some()
            || limits.disk_reserve.is_some()
            || opts.image.is_some();
        Asked {
            net: opts.net.as_deref(),
            read_only: &opts.read_only,
            report: opts.report.as_deref(),
            env: &opts.env,
            more,
        }
    }

    fn allowlist(&self, names: &str) -> Result<Allowlist> {
        run::allowlist(self.config, names)
    }

    fn check_limits(&self) -> Result<()> {
        run::limits(self.config, &self.opts.resources, Limits::default()).map(drop)
    }

    fn for_clone(&self, clone: &CloneRun) -> Self {
        let opts = SandboxArgs {
            net: clone.net.clone(),
            read_only: clone.read_only.clone(),
            quiet: self.opts.quiet,
            no_toolchains: self.opts.no_toolchains,
            ..SandboxArgs::default()
        };
        Launch::new(self.caller, self.config, opts)
    }

    fn policy(&self, run: SandboxRun) -> Result<Policy> {
        let (config, opts) = (self.config, &self.opts);
        let mut req = RunRequest {
            kept_home: Some(run.kept_home),
            read_only: opts.read_only.clone(),
            env: run.env,
            network: run::network(opts.net.as_deref()),
            toolchains: !opts.no_toolchains,
            limits: run::limits(config, &opts.resources, Limits::default())?,
            ..run::caller_request(run.command, self.caller.clone(), config)?
        };
        use keepout_sandbox::RunEnd::AfterExit; // the workspace's lock and mount points go next
        match opts.image {
            Some(_) => keepout_container::adapt_request(&mut req),
            None => keepout_sandbox::make_namespaces_ahead(&req, AfterExit),
        }
        let mut policy = Policy::build(&req)?;
        policy.terminal = opts.terminal.policy();
        // A run in an image serves no sandbox to join: a second run waits for the workspace.
        policy.join_socket = run.join_socket.filter(|_| opts.image.is_none());
        Ok(policy)
    }

    fn execute(&self, policy: &Policy, allow: Option<&Allowlist>, decoys: &Decoys) -> Result<i32> {
        let (opts, report) = (&self.opts, self.opts.report.as_deref());
        let image = opts.image.as_deref();
        let plan = image.map(|i| keepout_container::Plan::new(policy, i, opts.engine));
        let plan = plan.transpose()?;
        run::execute(
            policy,
            allow,
            Some(decoys),
            report,
            opts.quiet,
            plan.as_ref(),
        )
    }

    fn join(&self, socket: &std::path::Path, command: &[String]) -> Result<i32> {
        let terminal = self.opts.terminal.policy();
        Ok(keepout_sandbox::join(socket, command, terminal)?)
    }

    fn failed(error: anyhow::Error, doing: String) -> anyhow::Error {
        error.context(doing)
    }

    fn say(&self, notice: Notice<'_>) {
        eprintln!("keepout: {notice}");
    }
}

pub fn try_source(args: TryArgs) -> Result<i32> {
    let (store, caller, config) = (store(), Caller::current(), LazyConfig::new());
    let cwd = caller.cwd().map_err(run::lift)?;
    let req = Try {
        given: &args.source,
        name: args.name.as_deref(),
        layer: args.from.as_deref(),
        recursive: args.recursive,
        decoys: !args.no_decoys,
        command: &args.command,
    };
    let launch = Launch::new(&caller, &config, args.sandbox);
    session::try_source(&store, cwd, &req, &launch)
}

pub fn shell(args: ShellArgs) -> Result<i32> {
    let (store, caller, config) = (store(), Caller::current(), LazyConfig::new());
    let req = Shell {
        name: &args.name,
        new: args.new,
        layer: args.from.as_deref(),
        command: &args.command,
    };
    session::shell(&store, &req, &Launch::new(&caller, &config, args.sandbox))
}

pub fn workspace(action: WorkspaceAction) -> Result<i32> {
    let store = store();
    match action {
        WorkspaceAction::List { json } => {
            // A damaged workspace is named on stderr; the others are listed all the same.
            let listing = store.listing()?;
            for e in &listing.damaged {
                eprintln!("keepout: {}", e.text());
            }
            let out = if json {
                serde_json::to_string_pretty(&listing.json())?
            } else {
                listing.table().join("\n")
            };
            print_out(&(out + "\n"))?;
        }
        WorkspaceAction::Snapshot { workspace, layer } => {
            let size = keepout_workspace::disk_usage(&store.snapshot(&workspace, &layer)?.home());
            println!("{}", snapshot_made(&workspace, &layer, size));
        }
        WorkspaceAction::Rm {
            names,
            layer,
            force,
            layers,
        } => {
            let removal = keepout_workspace::Removal {
                workspaces: &names,
                layers: &layer,
                with_users: force,
                unused_layers: layers,
            };
            if store.remove_as_asked(&removal, |what| println!("removed {what}"))? == 0 && layers {
                println!("no unused layers");
            }
        }
    }
    Ok(0)
}
