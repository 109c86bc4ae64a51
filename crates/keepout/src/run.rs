//! `keepout run`: its flags as options ([`RunArgs::options`]) for keepout-launch, which makes the
//! request and its `--home` ([`run_request`]) and words every line and the `--print-policy`
//! document ([`report`]): here they are only printed. The other functions are what `try`,
//! `shell`, `doctor` and the completions share, each a delegation.

use std::path::Path;

use anyhow::{Context, Result};
use keepout_launch::{report, run_request, Caller, Config, LazyConfig};
use keepout_net::Allowlist;
use keepout_sandbox::decoys::Decoys;
use keepout_sandbox::{Limits, Policy, RunRequest};
use keepout_workspace::review::Review;

use crate::cli::{ResourceArgs, RunArgs};
use crate::workspace::store;

pub use keepout_launch::network;

/// A launch error as the CLI carries it: a sandbox error stays one, so that the exit code
/// (126, 127) and the hint are still found by its type.
pub fn lift(e: keepout_launch::Error) -> anyhow::Error {
    match e {
        keepout_launch::Error::Sandbox(e) => e.into(),
        keepout_launch::Error::Container(e) => e.into(),
        e => e.into(),
    }
}

/// The `--net` presets: the built-in ones plus the user's `[net.presets]`.
pub fn presets() -> Result<keepout_net::Presets> {
    Config::load().and_then(|c| c.presets()).map_err(lift)
}

/// The allowlist for `--net NAMES` (not `host`), from the config's presets.
pub fn allowlist(config: &LazyConfig, spec: &str) -> Result<Allowlist> {
    config.get().and_then(|c| c.allowlist(spec)).map_err(lift)
}

/// `base` with `--memory` and `--disk-reserve`, else the config's `[run]` ones.
pub fn limits(config: &LazyConfig, args: &ResourceArgs, base: Limits) -> Result<Limits> {
    let config = config.get().map_err(lift)?;
    config.limits(&args.resources(), base).map_err(lift)
}

/// [`keepout_launch::caller_request`], saying which variables are not passed (not UTF-8).
pub fn caller_request(
    command: Vec<String>,
    caller: Caller,
    cfg: &LazyConfig,
) -> Result<RunRequest> {
    caller.cwd().map_err(lift)?;
    say(report::unpassable_env(&caller));
    keepout_launch::caller_request(command, caller, cfg.get().map_err(lift)?).map_err(lift)
}

/// The caller's effective uid.
pub fn caller_uid() -> u32 {
    Caller::effective_uid()
}

fn say(lines: impl IntoIterator<Item = impl std::fmt::Display>) {
    lines.into_iter().for_each(|line| eprintln!("{line}"));
}

pub fn run(args: RunArgs) -> Result<i32> {
    let opts = args.options();
    if args.sandbox.image.is_none() && !args.print_policy {
        // Made while the request and the policy are built; used when they match (see the docs).
        keepout_launch::make_namespaces_ahead(&opts, keepout_sandbox::RunEnd::AtStatus);
    }
    let config = LazyConfig::new();
    let allow = match args.sandbox.net.as_deref() {
        None | Some("host") => None,
        Some(spec) => Some(allowlist(&config, spec)?),
    };
    let decoys = (args.decoys && !args.print_policy)
        .then(|| keepout_sandbox::decoys::Decoys::plant().context("cannot plant the decoys"))
        .transpose()?;
    let cfg = config.get().map_err(lift)?;
    let setup = run_request(opts, Caller::current(), cfg).map_err(lift)?;
    say(&setup.notes);
    let mut req = setup.request;
    if args.sandbox.image.is_some() {
        keepout_container::adapt_request(&mut req);
    }
    req.home = decoys.as_ref().map(|d| d.home().to_path_buf()).or(req.home); // --decoys' home
    let review = (args.review && !args.print_policy)
        .then(|| start_review(&mut req, &args))
        .transpose()?;
    let code = sandbox(&args, req, allow.as_ref(), decoys.as_ref());
    match review {
        Some(review) => crate::review::after_run(&review, code),
        None => code,
    }
}

/// A new review of the run's project (`--review`), its directories in `req`.
fn start_review(req: &mut RunRequest, args: &RunArgs) -> Result<Review> {
    let project = keepout_launch::review_project(args.project.as_deref(), &req.cwd);
    let review = store().new_review(&project.map_err(lift)?, &args.command)?;
    let (upper, work) = (review.upper(), review.work());
    req.review = Some(keepout_sandbox::ReviewDirs { upper, work });
    Ok(review)
}

/// The policy for `req` (the caller's whole environment dropped with it), printed or run.
fn sandbox(
    args: &RunArgs,
    req: RunRequest,
    allow: Option<&Allowlist>,
    decoys: Option<&Decoys>,
) -> Result<i32> {
    let mut policy = Policy::build(&req)?;
    policy.terminal = args.sandbox.terminal.policy();
    drop(req);
    let (report, quiet) = (args.sandbox.report.as_deref(), args.sandbox.quiet);
    if let Some(image) = &args.sandbox.image {
        // The policy in the engine's container, or its exact command line (--print-policy).
        let plan = keepout_container::Plan::new(&policy, image, args.sandbox.engine)?;
        if args.print_policy {
            println!("{}", plan.command_line());
            return Ok(0);
        }
        return execute(&policy, allow, decoys, report, quiet, Some(&plan));
    }
    let abi = keepout_sandbox::landlock_abi();
    say(report::landlock_warning(abi, &policy.network, policy.mode));
    if !args.print_policy {
        return execute(&policy, allow, decoys, report, quiet, None);
    }
    let store_root = args.review.then(|| store().root().to_path_buf());
    let document = report::policy_document(&policy, abi, allow, store_root.as_deref());
    print!("{}", document.map_err(lift)?);
    Ok(0)
}

/// Run a built policy (keepout's proxy when `allow` is given, watching for the `decoys`' values),
/// say what came of it ([`report::outcome`]), write the JSON `report_path`; the exit code.
/// `image`: in the engine's container that the plan makes.
pub fn execute(
    policy: &Policy,
    allow: Option<&Allowlist>,
    decoys: Option<&Decoys>,
    report_path: Option<&Path>,
    quiet: bool,
    image: Option<&keepout_container::Plan>,
) -> Result<i32> {
    say(report::host_network(&policy.network));
    let outcome = match image {
        Some(plan) => keepout_launch::launch_in_image(policy, plan, allow, decoys),
        None => keepout_launch::launch(policy, allow, decoys),
    };
    let outcome = outcome.map_err(lift)?;
    say(report::outcome(&outcome, &policy.network, quiet));
    if let Some(path) = report_path {
        outcome.write_report(path).map_err(lift)?;
    }
    Ok(outcome.exit_code)
}
