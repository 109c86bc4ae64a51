//! The Linux backend: enforce a [`Policy`] with namespaces, a new root, Landlock and seccomp.
//!
//! Process layout while a command runs:
//!
//! ```text
//! keepout (host)                      waits, forwards signals, reports errors
//!  └─ init (pid 1 in new namespaces)   built the new root; reaps, forwards signals; non-dumpable
//!      └─ the command (pid 2)          new session, no capabilities, no_new_privs, Landlock, seccomp
//! ```
//!
//! Guarantees: the command starts only after every layer is in place (a failing layer is an
//! error, never a silent downgrade, except Landlock features the kernel lacks, which `keepout
//! doctor` reports); init gets SIGKILL when keepout dies, and when init exits the kernel kills
//! every process left in the pid namespace; when the command ends, init kills and reaps every
//! other process of the sandbox before it tells keepout the status, so none is left when the
//! run returns (init itself may still be exiting then: see [`lingering`]); the command inherits
//! no descriptor beyond 0-2.

pub(crate) mod ahead;
pub(crate) mod attach;
mod channel;
mod confine;
mod exec;
pub(crate) mod join;
mod landlock;
mod landlock_mode;
mod lingering;
mod mounts;
mod notifications;
mod report;
pub(crate) mod resources;
pub(crate) mod seccomp;
mod signals;
pub(crate) mod sys;
mod syscall;
mod terminal;

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::process::{Pid, Signal, WaitOptions};

use channel::{recv_fd, send_fd};
use exec::{confine_and_exec, Prepared};
use notifications::Notifications;
use report::{namespace_error, read_report, report, SetupError, SETUP_FAILED};
use signals::{parent_signals, wait_forwarding, FORWARDED_SIGNALS};

use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::plan::SandboxPlan;
use crate::policy::{Identity, Mode, Network, Policy};

pub(crate) use sys::landlock_abi;

/// Can this caller's sandbox get a memory limit? Where, or why not and what would make it work.
/// The error is [`Error::Resources`]: why not, and its hint what would make it work.
pub(crate) fn memory_limit_support() -> Result<String> {
    resources::memory_place()
        .map(|p| p.describe())
        .map_err(|why| Error::Resources {
            message: why,
            hint: resources::memory_hint(None),
        })
}

/// Run the policy; the outcome, the deny-listed system calls the command tried, and the
/// terminal sequences the relay dropped.
pub(crate) fn run(
    policy: &Policy,
    egress: &mut dyn FnMut(std::net::TcpListener),
    resources: &mut resources::Resources,
) -> Result<(Outcome, Vec<String>, Vec<crate::terminal_filter::Dropped>)> {
    match (policy.mode, policy.network) {
        (Mode::Namespaces, _) => run_in_namespaces(policy, egress, resources),
        (Mode::Landlock, Network::Proxied { .. }) => Err(Error::Usage(
            "an allowlisted network (--net NAMES) needs a network namespace: use --mode namespaces"
                .into(),
        )),
        (Mode::Landlock, _) => {
            landlock_mode::run(policy, resources).map(|(o, d)| (o, Vec::new(), d))
        }
    }
}

fn run_in_namespaces(
    policy: &Policy,
    egress: &mut dyn FnMut(std::net::TcpListener),
    resources: &mut resources::Resources,
) -> Result<(Outcome, Vec<String>, Vec<crate::terminal_filter::Dropped>)> {
    lingering::reap_exited();
    let (mut ahead, end, idmap_made) = match ahead::take(policy) {
        Some(a) => (Some(a.holder), a.end, a.idmap),
        None => (None, crate::RunEnd::AfterExit, None),
    };
    let plan = SandboxPlan::for_namespaces(policy);
    let mut prepared = Prepared::new(policy)?;
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| Error::Setup {
            step: "create a pipe".into(),
            message: e.to_string(),
        })
    };
    let (sync_read, sync_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    // Init writes the command's status here once nothing of the sandbox runs any more.
    let (status_read, status_write) = pipe()?;
    // A connected pair of unix stream sockets: one end for keepout, one for init.
    let socket_pair = |step: &str| {
        rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::Setup {
            step: format!("create {step}"),
            message: e.to_string(),
        })
    };
    // The same, only when `wanted` (else neither end).
    let optional_pair = |wanted: bool, step: &str| -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
        Ok(wanted
            .then(|| socket_pair(step))
            .transpose()?
            .map_or((None, None), |(a, b)| (Some(a), Some(b))))
    };
    let (egress_keepout, egress_init) = optional_pair(
        matches!(policy.network, Network::Proxied { .. }),
        "the proxy's socket pair",
    )?;
    // The command hands its deny filter's notification listener to keepout through this.
    let (notify_keepout, notify_init) = socket_pair("the seccomp notification socket pair")?;
    // Init hands the master of the command's terminal (of the sandbox's devpts) through this.
    let (terminal_keepout, terminal_init) =
        optional_pair(prepared.terminal.is_some(), "the terminal's socket pair")?;
    // keepout hands init the connections of keepouts that join (see `join`) through this.
    let (join_keepout, join_init) =
        optional_pair(policy.join_socket.is_some(), "the join socket pair")?;
    let (detached, idmap_helper) = if policy.identity.idmap_root {
        detached_trees(&plan, policy.identity.host_uid, idmap_made)
    } else {
        (HashMap::new(), None)
    };

    let caller_is_root = rustix::process::geteuid().is_root();
    // Signals for the command wait, blocked, until keepout can pass them on (no thread needed).
    let signals = parent_signals()?;
    // Init's ends, which keepout closes once init has them (init closes keepout's as it starts:
    // every descriptor it does not use).
    let mut init_channels = Some(InitChannels {
        sync_read,
        err_write,
        status: status_write,
        egress: egress_init,
        notify: notify_init,
        terminal: terminal_init,
        join: join_init,
    });
    // What init runs, in its own copy of this memory (so `take` there leaves keepout's as is).
    let mut in_init = || -> std::convert::Infallible {
        init_main(
            policy,
            &plan,
            &prepared,
            &detached,
            init_channels.take().expect("init starts once"),
            caller_is_root,
        )
    };
    let mut flags = sys::CLONE_NEWNS | sys::CLONE_NEWPID | sys::CLONE_NEWIPC | sys::CLONE_NEWUTS;
    // Made ahead (see `ahead`): the user and network namespaces exist, their maps written.
    let from_ahead = ahead
        .as_mut()
        .and_then(|a| a.start_init(flags, &mut in_init).ok());
    let maps_written = from_ahead.is_some();
    let child = match from_ahead {
        Some(pid) => pid,
        None => {
            flags |= sys::CLONE_NEWUSER;
            if policy.network.isolated() {
                flags |= sys::CLONE_NEWNET;
            }
            match sys::clone_process(flags) {
                Ok(None) =>
                {
                    #[allow(unreachable_code)]
                    match in_init() {}
                }
                Ok(Some(pid)) => pid,
                Err(e) => return Err(namespace_error("create the namespaces", e)),
            }
        }
    };
    drop(init_channels);
    // Init has its own copies of the prepared trees: keepout's go now, so that what the last
    // reference's release costs (the kernel waits for an expedited RCU grace period to let go of
    // a mount, 0.3 ms here) falls in init's setup or exit, not in keepout's end of the run.
    drop(detached);
    let child_pid = Pid::from_raw(child).expect("clone returned a positive pid");

    let mapped = match maps_written {
        true => Ok(()),
        false => write_id_maps(child, &policy.identity, caller_is_root),
    };
    if let Err(e) = mapped {
        let _ = rustix::process::kill_process(child_pid, Signal::KILL);
        let _ = rustix::process::waitpid(Some(child_pid), WaitOptions::empty());
        return Err(namespace_error("map the sandbox's user", e));
    }
    // Before init does anything (it waits for the sync byte): the memory cgroup, the disk watch.
    if let Err(e) = resources.attach(child, false) {
        let _ = rustix::process::kill_process(child_pid, Signal::KILL);
        let _ = rustix::process::waitpid(Some(child_pid), WaitOptions::empty());
        return Err(e);
    }
    let _ = rustix::io::write(&sync_write, b"1");
    if let Some(socket) = egress_keepout {
        // Init sends the proxy port's listener before it starts the command (or closes the
        // socket when its setup failed: then the report says why).
        if let Ok(Some(fd)) = recv_fd(&socket) {
            egress(std::net::TcpListener::from(fd));
        }
    }
    // Then the master of the command's terminal, once its devpts is mounted (none: init's
    // setup failed, and the report says why; the relay then has nothing to read).
    let relay = prepared.terminal.take().map(|t| {
        let t = match terminal_keepout.as_ref().map(recv_fd) {
            Some(Ok(Some(master))) => t.with_master(master),
            _ => t,
        };
        t.relay(policy.terminal)
    });
    drop(terminal_keepout);
    // The command sends its notification listener just before exec (or closes the socket when
    // it fails, or when the kernel cannot do user notification: then the filter denies alone).
    let mut notifications = Notifications::new(recv_fd(&notify_keepout).ok().flatten());
    drop(notify_keepout);

    // Served from here on (the command is about to start): a second keepout may join.
    let join_server = match (&policy.join_socket, join_keepout) {
        (Some(path), Some(to_init)) => join::Server::start(path, to_init),
        _ => None,
    };
    let report = read_report(err_read);
    let status = wait_forwarding(
        child_pid,
        Some(&status_read),
        &signals,
        relay.as_ref(),
        resources,
        &mut notifications,
    );
    // Init may still be on its way out: what is left of its exit is the kernel releasing the
    // namespaces (and with the mount namespace every mount, after an RCU grace period). Waited
    // for unless the caller said it need not be (see `RunEnd`), and where the next step needs
    // them gone anyway: the memory cgroup is removed next, and an overlay's upper directory is
    // "in use" until its mount is released.
    let must_be_gone =
        end == crate::RunEnd::AfterExit || resources.has_memory_cgroup() || plan.has_overlay();
    if status.is_ok()
        && rustix::process::waitpid(Some(child_pid), WaitOptions::NOHANG).is_ok_and(|w| w.is_none())
    {
        if must_be_gone {
            let _ = rustix::process::waitpid(Some(child_pid), WaitOptions::empty());
        } else {
            lingering::reap_later(child_pid);
        }
    }
    drop(join_server);
    let dropped = relay.map(terminal::Relay::finish).unwrap_or_default();
    if let Some(helper) = idmap_helper {
        helper.reap();
    }
    if let Some(holder) = ahead {
        if must_be_gone {
            holder.reap();
        } else {
            lingering::hold(holder);
        }
    }
    // Held open until here: init reads EOF on it as "keepout is gone".
    drop(sync_write);
    let tried = notifications.finish();
    if let Some(err) = report {
        return Err(err);
    }
    status.map(|o| (o, tried, dropped))
}

/// For a root caller: every bind as a detached copy made here, with root's own access (the
/// sandbox's user is `nobody` on the host and could not even traverse `/root` to reach a
/// `--ro ~/.pyenv`). Writable ones are also idmapped, so that files owned by host root appear
/// owned by `host_id` (the sandbox's user) and what it creates is root's on disk. A path that
/// cannot be prepared so (a filesystem without idmap support) is left to init to bind plainly;
/// keepout says so. Also returns the helper process that made the id mapping, for the caller to
/// reap.
fn detached_trees(
    plan: &SandboxPlan,
    host_id: u32,
    made_ahead: Option<IdMapping>,
) -> (HashMap<PathBuf, OwnedFd>, Option<sys::NamespaceHolder>) {
    let mut trees = HashMap::new();
    let binds: Vec<(&PathBuf, &PathBuf, bool)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            crate::plan::MountStep::Bind {
                source,
                target,
                idmap,
                ..
            } => Some((source, target, *idmap)),
            _ => None,
        })
        .collect();
    let mut userns = None;
    let mut helper = None;
    let idmapped_overlay = plan.steps.iter().any(|s| {
        matches!(
            s,
            crate::plan::MountStep::Overlay {
                idmap_lower: true,
                ..
            }
        )
    });
    if binds.iter().any(|b| b.2) || idmapped_overlay {
        match made_ahead.map_or_else(|| idmap_user_namespace(host_id), Ok) {
            Ok((fd, holder)) => {
                userns = Some(fd);
                helper = Some(holder);
            }
            Err(e) => eprintln!(
                "keepout: warning: cannot create the id mapping for root's files ({e}); writable paths owned by root stay read-only inside"
            ),
        }
    }
    for (source, target, idmap) in binds {
        let c = CString::new(source.as_os_str().as_encoded_bytes()).expect("no NUL in paths");
        let tree =
            sys::open_path_no_symlinks(&c).and_then(|fd| sys::open_tree_clone_fd(fd.as_fd()));
        let tree = match (tree, idmap, &userns) {
            (Ok(t), true, Some(ns)) => sys::mount_setattr_idmap(t.as_fd(), ns.as_fd()).map(|()| t),
            (tree, _, _) => tree,
        };
        match tree {
            Ok(t) => {
                trees.insert(target.clone(), t);
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                // Root, but not over the host's mounts (root inside a container's user
                // namespace): say it once; the sandbox binds everything itself.
                eprintln!(
                    "keepout: warning: root here cannot prepare mounts for the sandbox (a container?); \
                     paths only root can reach stay hidden inside and root's files stay read-only"
                );
                break;
            }
            Err(e) => eprintln!(
                "keepout: warning: cannot prepare {} for the sandbox ({}); {}",
                source.display(),
                crate::error::describe_io(&e),
                if idmap {
                    "files root owns there stay read-only inside"
                } else {
                    "the sandbox binds it itself"
                }
            ),
        }
    }
    // Overlays (a workspace on layers) are made here too, with root's own access: inside, the
    // sandbox's user namespace could not create the whiteouts of deletions as root's files.
    for s in &plan.steps {
        if let crate::plan::MountStep::Overlay {
            lower,
            upper,
            work,
            target,
            idmap_lower,
        } = s
        {
            // The caller's own files (the real project under review) as idmapped trees, as a
            // read-write bind of them would be.
            let lower_trees: io::Result<Vec<OwnedFd>> = match (idmap_lower, &userns) {
                (true, Some(ns)) => lower
                    .iter()
                    .map(|l| {
                        let c = CString::new(l.as_os_str().as_encoded_bytes())
                            .expect("no NUL in paths");
                        let tree = sys::open_path_no_symlinks(&c)
                            .and_then(|fd| sys::open_tree_clone_fd(fd.as_fd()))?;
                        sys::mount_setattr_idmap(tree.as_fd(), ns.as_fd())?;
                        Ok(tree)
                    })
                    .collect(),
                _ => Ok(Vec::new()),
            };
            match lower_trees.and_then(|t| syscall::overlay_tree(lower, &t, upper, work)) {
                Ok(t) => {
                    trees.insert(target.clone(), t);
                }
                Err(e) => eprintln!(
                    "keepout: warning: cannot prepare the overlay for {} ({}); the sandbox tries itself",
                    target.display(),
                    crate::error::describe_io(&e)
                ),
            }
        }
    }
    (trees, helper)
}

/// A user namespace that maps 0 to `host_id`, for idmapped mounts (see [`detached_trees`]), and
/// the child that made it (gone already; to reap).
type IdMapping = (OwnedFd, sys::NamespaceHolder);

/// A user namespace that maps id 0 to `host_id`, for idmapped mounts. Held by a short-lived
/// child that shares keepout's memory rather than copying it ([`sys::NamespaceHolder`]).
fn idmap_user_namespace(host_id: u32) -> io::Result<IdMapping> {
    let mut holder = sys::NamespaceHolder::spawn(sys::CLONE_NEWUSER)?;
    let proc = PathBuf::from(format!("/proc/{}", holder.pid()));
    let result = (|| {
        std::fs::write(proc.join("uid_map"), format!("0 {host_id} 1\n"))?;
        std::fs::write(proc.join("gid_map"), format!("0 {host_id} 1\n"))?;
        Ok(OwnedFd::from(std::fs::File::open(proc.join("ns/user"))?))
    })();
    // The holder exits now; it is reaped after the run rather than waited for here (start-up
    // time), or when dropped on an error.
    holder.release();
    result.map(|fd| (fd, holder))
}

fn write_id_maps(pid: libc::pid_t, id: &Identity, caller_is_root: bool) -> io::Result<()> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !caller_is_root {
        // An unprivileged writer must give up setgroups before it may write gid_map.
        std::fs::write(proc.join("setgroups"), "deny")?;
    }
    std::fs::write(
        proc.join("uid_map"),
        format!("{} {} 1\n", id.uid, id.host_uid),
    )?;
    std::fs::write(
        proc.join("gid_map"),
        format!("{} {} 1\n", id.gid, id.host_gid),
    )?;
    Ok(())
}

/// pid 1 of the sandbox. Never returns.
/// Init's ends of its channels to keepout.
struct InitChannels {
    /// "your id maps are written" (one byte), then EOF when keepout is gone.
    sync_read: OwnedFd,
    /// Setup failures, reported as text; closed on exec.
    err_write: OwnedFd,
    /// The command's exit status (4 bytes), written once every other process is gone.
    status: OwnedFd,
    /// Where the proxy port's listener goes (`Network::Proxied` only).
    egress: Option<OwnedFd>,
    /// Passed on to the command, which sends its seccomp listener through it.
    notify: OwnedFd,
    /// Where the master of the sandbox's own terminal goes (when the command gets one).
    terminal: Option<OwnedFd>,
    /// Connections of keepouts that join the sandbox (see [`join`]), when it may be joined.
    join: Option<OwnedFd>,
}

fn init_main(
    policy: &Policy,
    plan: &SandboxPlan,
    prepared: &Prepared,
    detached: &HashMap<PathBuf, OwnedFd>,
    channels: InitChannels,
    caller_is_root: bool,
) -> ! {
    let InitChannels {
        sync_read,
        err_write,
        status,
        egress,
        notify,
        terminal,
        join,
    } = channels;
    // Init holds nothing of keepout's but what it uses: it outlives keepout's return (a lock
    // keepout was given must not stay taken), and the command must not inherit more.
    {
        use std::os::fd::AsRawFd;
        let mut keep: Vec<std::os::fd::RawFd> = [&sync_read, &err_write, &status, &notify]
            .iter()
            .map(|fd| fd.as_raw_fd())
            .collect();
        keep.extend(
            [&egress, &terminal, &join]
                .iter()
                .filter_map(|f| f.as_ref().map(|fd| fd.as_raw_fd())),
        );
        keep.extend(detached.values().map(|fd| fd.as_raw_fd()));
        keep.extend(prepared.terminal.iter().flat_map(|t| t.descriptors()));
        sys::close_all_but(3, &mut keep);
    }
    let setup = || -> std::result::Result<Option<terminal::Terminal>, SetupError> {
        let e =
            |step: &'static str| move |err: rustix::io::Errno| SetupError::new(step, err.into());
        // The OOM killer's first choice, inherited by everything the sandbox starts (A18).
        resources::raise_oom_score()
            .map_err(|err| SetupError::new("raise oom_score_adj to 1000", err))?;
        // Wait until keepout has written our uid/gid maps; EOF means keepout is gone.
        let mut sync = std::fs::File::from(sync_read);
        let mut byte = [0u8; 1];
        if !matches!(sync.read(&mut byte), Ok(1)) {
            sys::exit_now(SETUP_FAILED);
        }
        if caller_is_root {
            sys::clear_groups().map_err(|err| SetupError::new("drop supplementary groups", err))?;
        }
        let id = &policy.identity;
        let (uid, gid) = (
            rustix::process::Uid::from_raw(id.uid),
            rustix::process::Gid::from_raw(id.gid),
        );
        rustix::thread::set_thread_res_gid(gid, gid, gid)
            .map_err(e("switch to the sandbox's group"))?;
        rustix::thread::set_thread_res_uid(uid, uid, uid)
            .map_err(e("switch to the sandbox's user"))?;
        // Only now: the kernel clears the parent-death signal when the host uid changes (a root
        // caller's sandbox runs as nobody). Then make sure keepout did not die before it was set:
        // keepout holds the pipe's write end until the end, so EOF means it is gone.
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
            .map_err(e("die with keepout (PR_SET_PDEATHSIG)"))?;
        rustix::fs::fcntl_setfl(&sync, rustix::fs::OFlags::NONBLOCK)
            .map_err(e("check that keepout is alive"))?;
        if matches!(sync.read(&mut byte), Ok(0)) {
            sys::exit_now(SETUP_FAILED);
        }
        drop(sync);
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .map_err(e("make init non-dumpable"))?;
        sys::wipe_exec_environment()
            .map_err(|err| SetupError::new("wipe init's environment", err))?;
        rustix::system::sethostname(b"keepout").map_err(e("set the hostname"))?;
        if policy.network.isolated() {
            sys::bring_loopback_up().map_err(|err| SetupError::new("bring up loopback", err))?;
        }
        if let (Network::Proxied { port }, Some(egress)) = (policy.network, &egress) {
            // The proxy's port on the sandbox's loopback, bound here (in the sandbox's network
            // namespace) and handed out to keepout, which accepts on it from outside. Nothing
            // in the sandbox keeps it open.
            let listener = std::net::TcpListener::bind(("127.0.0.1", port))
                .map_err(|err| SetupError::new("listen on the proxy port", err))?;
            send_fd(egress, listener.as_fd())
                .map_err(|err| SetupError::new("hand the proxy port to keepout", err.into()))?;
        }
        drop(egress);
        mounts::build_root(&mut syscall::Kernel, plan, id, &policy.cwd, detached)?;
        // The command's terminal, from the sandbox's own devpts; keepout relays its master.
        let own_terminal = match (&prepared.terminal, &terminal) {
            (Some(t), Some(socket)) => {
                let own = t
                    .remade_in_devpts(std::path::Path::new("/dev/pts/ptmx"))
                    .map_err(|err| {
                        SetupError::new("open a terminal of the sandbox's devpts", err)
                    })?;
                send_fd(socket, own.master())
                    .map_err(|err| SetupError::new("hand the terminal to keepout", err.into()))?;
                Some(own)
            }
            _ => None,
        };
        drop(terminal);
        Ok(own_terminal)
    };
    let own_terminal = match setup() {
        Ok(t) => t,
        Err(err) => {
            report(err_write.as_fd(), "setup", &err.step, &err.error);
            sys::exit_now(SETUP_FAILED);
        }
    };

    let mut waited: Vec<i32> = FORWARDED_SIGNALS.to_vec();
    waited.push(libc::SIGCHLD);
    let signals = sys::SignalSet::new(&waited);
    let _ = signals.block();
    let _ = rustix::process::setsid();
    // Started sharing init's memory rather than as a fork of it (see
    // `sys::spawn_sharing_memory`): init is a copy of all of keepout. The child only borrows;
    // the descriptors it hands on are its own duplicates, in its own descriptor table.
    let mut command = || -> std::convert::Infallible {
        match (err_write.try_clone(), notify.try_clone()) {
            (Ok(err), Ok(notify)) => {
                command_main(plan, prepared, own_terminal.as_ref(), policy, err, notify)
            }
            (Err(err), _) | (_, Err(err)) => {
                report(err_write.as_fd(), "setup", "start the command", &err);
                sys::exit_now(SETUP_FAILED)
            }
        }
    };
    let child = match sys::spawn_sharing_memory(&mut command) {
        Ok(pid) => pid,
        Err(err) => {
            report(err_write.as_fd(), "setup", "start the command", &err);
            sys::exit_now(SETUP_FAILED);
        }
    };
    drop(err_write);
    drop(notify);
    drop(own_terminal);
    let join = join.as_ref().map(|j| (j, plan, prepared, policy));
    init_loop(child, &signals, &status, join)
}

/// Reap every child; pass signals on; when the command ends, [`finish`]. With `join`, also start
/// the commands of keepouts that join the sandbox, and tell each its command's status.
fn init_loop(
    command: libc::pid_t,
    signals: &sys::SignalSet,
    status_pipe: &OwnedFd,
    join: Option<(&OwnedFd, &SandboxPlan, &Prepared, &Policy)>,
) -> ! {
    let command_pid = Pid::from_raw(command).expect("fork returned a positive pid");
    let mut joined: Vec<join::Joined> = Vec::new();
    loop {
        let sig = match join {
            None => match signals.wait() {
                Ok(sig) => sig,
                Err(_) => sys::exit_now(SETUP_FAILED),
            },
            Some((from_keepout, plan, prepared, policy)) => {
                use rustix::event::{PollFd, PollFlags};
                // New connections, and what the joining keepouts send (signals, or EOF when
                // one went away).
                let watched: Vec<usize> = (0..joined.len())
                    .filter(|&i| joined[i].watched().is_some())
                    .collect();
                let mut fds = vec![PollFd::new(from_keepout, PollFlags::IN)];
                for &i in &watched {
                    fds.push(PollFd::from_borrowed_fd(
                        joined[i].watched().expect("filtered"),
                        PollFlags::IN,
                    ));
                }
                let ready =
                    rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default()))
                        .is_ok_and(|n| n > 0);
                let accept = ready && fds[0].revents().contains(PollFlags::IN);
                let served: Vec<usize> = watched
                    .iter()
                    .zip(&fds[1..])
                    .filter(|(_, fd)| ready && !fd.revents().is_empty())
                    .map(|(&i, _)| i)
                    .collect();
                drop(fds);
                for i in served {
                    joined[i].serve();
                }
                if accept {
                    if let Some(started) =
                        join::accept_in_init(from_keepout, plan, prepared, policy)
                    {
                        joined.push(started);
                    }
                }
                match signals.wait_timeout(std::time::Duration::from_millis(50)) {
                    Ok(Some(sig)) => sig,
                    Ok(None) => libc::SIGCHLD, // look for ended children anyway
                    Err(_) => sys::exit_now(SETUP_FAILED),
                }
            }
        };
        if sig != libc::SIGCHLD {
            if let Some(s) = Signal::from_named_raw(sig) {
                if rustix::process::kill_process_group(command_pid, s).is_err() {
                    let _ = rustix::process::kill_process(command_pid, s);
                }
            }
            continue;
        }
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) if pid == command_pid => {
                    let code = exit_code(status);
                    finish(code, status_pipe);
                }
                Ok(Some((pid, status))) => {
                    if let Some(at) = joined.iter().position(|j| j.pid() == pid) {
                        joined.swap_remove(at).report_exit(exit_code(status));
                    }
                    continue;
                }
                _ => break,
            }
        }
    }
}

/// A child's status as an exit code: its own, or 128 + the signal that ended it.
fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
        .unwrap_or(SETUP_FAILED)
}

/// The command ended with `code`: kill every other process of the sandbox (what it left running
/// in the background, joined commands), reap them all, and only then tell keepout the status and
/// exit with it. keepout returns on the status: nothing of the sandbox runs any more, and the
/// rest of init's exit (the kernel releasing the namespaces) need not be waited for.
fn finish(code: i32, status_pipe: &OwnedFd) -> ! {
    let _ = sys::kill_all_others();
    // Until ECHILD: no child is left, so no process of the namespace is (every process in it
    // descends from init, or was handed to it when its parent died).
    while let Ok(Some(_)) | Err(rustix::io::Errno::INTR) =
        rustix::process::wait(WaitOptions::empty())
    {}
    let _ = rustix::io::write(status_pipe, &code.to_ne_bytes());
    sys::exit_now(code)
}

fn command_main(
    plan: &SandboxPlan,
    prepared: &Prepared,
    terminal: Option<&terminal::Terminal>,
    policy: &Policy,
    err_write: OwnedFd,
    notify: OwnedFd,
) -> ! {
    confine_and_exec(
        &plan.landlock,
        prepared,
        terminal,
        policy,
        err_write,
        Some(notify),
    )
}

/// Can this process create a user namespace? Tries it in a short-lived child.
pub(crate) fn probe_user_namespace() -> std::result::Result<(), String> {
    match sys::clone_process(sys::CLONE_NEWUSER | sys::CLONE_NEWNS | sys::CLONE_NEWPID) {
        Ok(None) => sys::exit_now(0),
        Ok(Some(pid)) => {
            let pid = Pid::from_raw(pid).expect("positive pid");
            match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
                Ok(Some((_, s))) if s.exit_status() == Some(0) => Ok(()),
                _ => Err("the probe child failed".into()),
            }
        }
        Err(e) => Err(crate::error::describe_io(&e)),
    }
}

/// Can overlayfs layers be mounted on `dir`'s filesystem the way a sandbox of this caller
/// mounts them (with `userxattr`: outside the sandbox for root, inside a user namespace mapped
/// to the caller otherwise)? Tried on empty directories made in `dir`, which are removed again
/// whatever the outcome (overlayfs leaves a mode-0 `work/work` that a plain user cannot remove
/// as it is); so are the caller's probe directories that earlier versions left there (older
/// than a minute: not another probe's, under way).
pub(crate) fn probe_overlay(dir: &std::path::Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    const PREFIX: &str = ".keepout-overlay-probe-";
    // Make every directory in it the owner's to list and empty again.
    fn open_up(dir: &std::path::Path) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&entry.path());
            }
        }
    }
    let me = rustix::process::geteuid().as_raw();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(PREFIX)
            && entry.metadata().is_ok_and(|m| {
                m.is_dir()
                    && m.uid() == me
                    && m.modified()
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age.as_secs() > 60)
            });
        if stale {
            open_up(&entry.path());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix(PREFIX)
        .tempdir_in(dir)
        .map_err(|e| format!("cannot make a directory in {}: {e}", dir.display()))?;
    let result = probe_overlay_in(scratch.path());
    open_up(scratch.path());
    let path = scratch.path().to_path_buf();
    scratch
        .close()
        .map_err(|e| format!("cannot remove the probe directory {}: {e}", path.display()))?;
    result
}

fn probe_overlay_in(scratch: &std::path::Path) -> std::result::Result<(), String> {
    let [lower, upper, work] = ["lower", "upper", "work"].map(|d| scratch.join(d));
    for d in [&lower, &upper, &work] {
        std::fs::create_dir(d).map_err(|e| e.to_string())?;
    }
    let attempt = || syscall::overlay_tree(std::slice::from_ref(&lower), &[], &upper, &work);
    if rustix::process::geteuid().is_root() {
        return attempt()
            .map(drop)
            .map_err(|e| crate::error::describe_io(&e));
    }
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let (ready_read, ready_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| e.to_string())?;
    match sys::clone_process(sys::CLONE_NEWUSER | sys::CLONE_NEWNS) {
        Ok(None) => {
            drop(ready_write);
            let mut byte = [0u8; 1];
            let _ = std::fs::File::from(ready_read).read(&mut byte);
            sys::exit_now(match attempt() {
                Ok(_) => 0,
                Err(e) => e.raw_os_error().unwrap_or(1),
            })
        }
        Ok(Some(child)) => {
            drop(ready_read);
            let proc = PathBuf::from(format!("/proc/{child}"));
            let mapped = std::fs::write(proc.join("setgroups"), "deny")
                .and_then(|()| std::fs::write(proc.join("uid_map"), format!("{uid} {uid} 1\n")))
                .and_then(|()| std::fs::write(proc.join("gid_map"), format!("{gid} {gid} 1\n")));
            drop(ready_write);
            let pid = Pid::from_raw(child).expect("positive pid");
            let status = rustix::process::waitpid(Some(pid), WaitOptions::empty());
            mapped.map_err(|e| e.to_string())?;
            match status {
                Ok(Some((_, s))) if s.exit_status() == Some(0) => Ok(()),
                Ok(Some((_, s))) => Err(match s.exit_status() {
                    Some(errno) => crate::error::describe_io(&io::Error::from_raw_os_error(errno)),
                    None => "the probe child failed".into(),
                }),
                _ => Err("the probe child failed".into()),
            }
        }
        Err(e) => Err(crate::error::describe_io(&e)),
    }
}
