//! keepout's sandbox: run one command with no credentials, no privilege and no way back out.
//!
//! The crate has two halves that meet in one plain data type:
//!
//! * [`Policy`] says what the sandboxed command sees: which host paths are visible read-only or
//!   read-write, which are masked, what its environment is, whether it has a network, its limits.
//!   A policy is built from a [`RunRequest`] by [`Policy::build`], is serialisable (`keepout run
//!   --print-policy` prints it as TOML), and can be asserted on in tests without running anything.
//! * A backend enforces a policy. The Linux backend ([`run`]) needs no external binary and no
//!   privilege: user, mount, pid, ipc, uts and (unless the network is shared) network namespaces,
//!   a new root built from the policy, Landlock over the same rules, a seccomp deny list,
//!   `no_new_privs`, no capabilities, a new session, rlimits and a small init as pid 1.
//!
//! What the crate guarantees, when [`run`] returns `Ok`: the command ran with exactly the
//! environment in the policy, saw only the paths in the policy, and no process it started is
//! still alive. Every raw system call lives in `linux::sys`, the only module with `unsafe`.

pub mod autorun;
mod builder;
pub mod decoys;
mod env;
mod error;
pub mod git_index;
pub mod kernel;
pub mod limits;
mod outcome;
mod path_safety;
mod plan;
mod policy;
pub mod project_scan;
mod quarantine;
mod system_credentials;
pub mod terminal_filter;
pub mod toolchains;

#[cfg(target_os = "linux")]
mod linux;

pub use builder::cache_dir;
pub use env::default_env_allowlist;
pub use error::{Error, Result, EXIT_KEEPOUT};
pub use kernel::KernelSupport;
pub use outcome::Outcome;
pub use plan::{LandlockAccess, LandlockRule, MountStep, SandboxPlan};
pub use policy::{
    EnvRule, HomeSpec, KeptHome, Limits, Mode, Mount, MountKind, Network, Policy, ProtectedPath,
    ReviewDirs, RunRequest, PROTECTED_NAMES, ROOT_CALLER_HOST_ID,
};
pub use quarantine::{AfterRun, IndexFlagsCleared, Quarantined};
pub use terminal_filter::{Dropped, TerminalPolicy};

/// What a run produced.
#[derive(Debug)]
pub struct RunReport {
    pub outcome: Outcome,
    /// What the command left in the project that runs later or hides a change, and what
    /// keepout did about it after the run (see [`AfterRun`]).
    pub after: AfterRun,
    /// Deny-listed system calls the command tried (refused with EPERM), each once:
    /// `keyctl`, `ioctl TIOCSTI`, ... (namespaces mode, where the kernel has user notification).
    pub refused_syscalls: Vec<String>,
    /// Terminal sequences the command wrote and the relay dropped, by kind (see
    /// [`terminal_filter`]); empty when the command had no terminal.
    pub terminal_dropped: Vec<Dropped>,
    /// What a limit did to the run: the disk watcher stopped it, the memory limit killed in it.
    pub stopped: Vec<limits::Stopped>,
}

/// Run `policy.command` under the policy and wait for it; then move aside anything it planted
/// in the project that the host would run later (see [`Quarantined`]).
///
/// Signals that keepout receives (INT, TERM, HUP, QUIT, USR1, USR2, WINCH, CONT) are forwarded to
/// the command. The sandbox is killed if keepout dies.
#[cfg(target_os = "linux")]
pub fn run(policy: &Policy) -> Result<RunReport> {
    run_with_egress(policy, &mut |_| {})
}

/// Make the first namespaces of a run for `req` now, while its policy is built: a user
/// namespace and, unless the run keeps the host's network, a network namespace, which the
/// kernel takes a while to make. [`run`] uses them when its policy has the same identity and
/// network choice, and then returns as `end` says; otherwise it makes its own, as it does when
/// this was not called, and returns after the sandbox's init has exited.
#[cfg(target_os = "linux")]
pub fn make_namespaces_ahead(req: &RunRequest, end: RunEnd) {
    linux::ahead::start(req, end)
}

/// [`make_namespaces_ahead`] before the request is built, from what the namespaces depend on:
/// the run's mode, its network and the caller's (uid, gid).
#[cfg(target_os = "linux")]
pub fn make_namespaces_ahead_for(
    mode: Mode,
    network: Network,
    caller_ids: (u32, u32),
    end: RunEnd,
) {
    linux::ahead::start_for(mode, network, caller_ids, end)
}

/// When [`run`] returns, for a run prepared with [`make_namespaces_ahead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// As soon as the command's status is known. Every process of the sandbox has been killed
    /// and reaped by then, and init holds none of the caller's descriptors (it closed them as
    /// it started); it may still be exiting, and until it has, the kernel still holds the
    /// sandbox's mounts. For a caller that reports and exits.
    AtStatus,
    /// Once the sandbox's init has exited too: its mounts are released and nothing of the
    /// caller's is held any more (what a caller that goes on to use the same files needs).
    AfterExit,
}

/// For another backend's `Network::Proxied` (a container): a socket listening on
/// 127.0.0.1:`port` inside the network namespace of process `pid`, held here, to hand to the
/// proxy as [`run_with_egress`]'s `egress` gets it. The namespace's user namespace is joined
/// first when it is not this process's own (a rootless engine's), which needs the same
/// privilege over it as the engine has.
#[cfg(target_os = "linux")]
pub fn listen_in_network_of(pid: i32, port: u16) -> std::io::Result<std::net::TcpListener> {
    linux::sys::listen_in_network_of(pid, port).map(std::net::TcpListener::from)
}

/// For another backend (a rootful container engine, which binds host paths by name): copies of
/// mount trees attached on the host, idmapped as the native sandbox's writable binds of a root
/// caller are, so that root's files there are the sandbox user's (see `linux::attach`).
#[cfg(target_os = "linux")]
pub use linux::attach::{AttachedTree, IdMapping};

/// [`run`], for a policy with `Network::Proxied`: `egress` gets the listening socket of the
/// sandbox's proxy port (bound inside the sandbox's network namespace) as soon as it exists, and
/// serves it from outside for as long as it likes (keepout's proxy). Dropping it leaves the
/// sandbox without a network.
pub fn run_with_egress(
    policy: &Policy,
    egress: &mut dyn FnMut(std::net::TcpListener),
) -> Result<RunReport> {
    let mut resources = linux::resources::Resources::prepare(policy)?;
    let watch = quarantine::Watch::start(policy);
    let result = linux::run(policy, egress, &mut resources);
    let after = watch.finish();
    let stopped = resources.finish(result.as_ref().ok().map(|r| r.0));
    let (outcome, refused_syscalls, terminal_dropped) = result?;
    Ok(RunReport {
        outcome,
        after,
        refused_syscalls,
        terminal_dropped,
        stopped,
    })
}

/// Run another backend that enforces `policy` (a container engine: keepout-container) under
/// the same after-run check as the native one: the writable trees are walked before `run` and
/// what it left that the host would run later is undone afterwards (see [`AfterRun`]).
pub fn with_after_run_check<T>(policy: &Policy, run: impl FnOnce() -> T) -> (T, AfterRun) {
    let watch = quarantine::Watch::start(policy);
    let out = run();
    (out, watch.finish())
}

/// Join the running sandbox that serves `socket` (its policy's `join_socket`): run `command`
/// there, in its namespaces, confined exactly as its first command (see `linux::join`), with
/// this process's terminal relayed and filtered by `terminal`. The command's exit status.
#[cfg(target_os = "linux")]
pub fn join(socket: &std::path::Path, command: &[String], terminal: TerminalPolicy) -> Result<i32> {
    linux::join::join(socket, command, terminal)
}

/// Can this caller's sandbox get a memory limit (`--memory`)? Where, or why not and what would
/// make it work.
#[cfg(target_os = "linux")]
pub fn memory_limit_support() -> Result<String> {
    linux::memory_limit_support()
}

/// The Landlock ABI of the running kernel; 0 when Landlock is absent or disabled.
#[cfg(target_os = "linux")]
pub fn landlock_abi() -> i32 {
    linux::landlock_abi()
}

/// What the seccomp filter refuses by argument, for another backend's profile (the container's):
/// the calls that take a file mode (a setuid or setgid bit refused), the open flags that give
/// the mode a meaning, those bits, and the namespace flags `clone` may not use.
pub mod seccomp_arguments {
    pub use crate::linux::seccomp::{
        set_id_mode_args, ModeArg, CLONE_NS_FLAGS, CREATING_OPEN_FLAGS, SET_ID_BITS,
    };
}

/// The system calls the seccomp filter denies outright, each with the threat it answers.
#[cfg(target_os = "linux")]
pub fn denied_syscalls() -> Vec<(&'static str, &'static str)> {
    linux::seccomp::denied_syscalls()
        .iter()
        .map(|d| (d.name.trim_start_matches("SYS_"), d.why))
        .collect()
}
