//! The raw system calls the sandbox needs that no safe crate wraps: clone into namespaces,
//! fork, exec, signal masks, `mount_setattr`, `close_range`, the Landlock ABI query, and wiping
//! the inherited environment block.
//!
//! This is the only module of keepout with `unsafe`. Each block states why it is sound. The
//! functions are meant to be called from a single-threaded process (keepout forks before it
//! starts any thread), which is what makes `fork`-style clone sound here.

// The one exception to the workspace's `unsafe_code = "deny"`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;

/// Namespace flags for [`clone_process`].
pub const CLONE_NEWUSER: u64 = libc::CLONE_NEWUSER as u64;
pub const CLONE_NEWNS: u64 = libc::CLONE_NEWNS as u64;
pub const CLONE_NEWPID: u64 = libc::CLONE_NEWPID as u64;
pub const CLONE_NEWIPC: u64 = libc::CLONE_NEWIPC as u64;
pub const CLONE_NEWUTS: u64 = libc::CLONE_NEWUTS as u64;
pub const CLONE_NEWNET: u64 = libc::CLONE_NEWNET as u64;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `clone(2)` with fork semantics (same stack, copy-on-write memory) and the given namespace
/// flags. Returns `Ok(None)` in the child and `Ok(Some(pid))` in the parent.
pub fn clone_process(namespace_flags: u64) -> io::Result<Option<libc::pid_t>> {
    let flags = namespace_flags | libc::SIGCHLD as u64;
    // SAFETY: with a NULL stack the raw clone syscall behaves like fork(2): the child gets a
    // copy-on-write copy of the address space and continues on the same stack. The caller is
    // single-threaded (documented above), so no lock held by another thread can be left locked
    // in the child. The pointer arguments are NULL, which the kernel accepts for these flags
    // (no CLONE_PARENT_SETTID/CHILD_SETTID/SETTLS). Unlike fork(3), glibc's atfork handlers do
    // not run and its cached thread id is the parent's; the child therefore uses no pthread
    // functions, `raise` or `abort` (it leaves through `_exit`), only plain system calls.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    let pid = check(ret)?;
    Ok(if pid == 0 {
        None
    } else {
        Some(pid as libc::pid_t)
    })
}

/// `fork(2)`. Returns `Ok(None)` in the child.
pub fn fork() -> io::Result<Option<libc::pid_t>> {
    // SAFETY: fork has no memory-safety preconditions of its own; the caller is single-threaded
    // (the sandbox's init), so the child does not inherit locks held by other threads.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if pid == 0 { None } else { Some(pid) })
}

/// A stack for a child that shares this process's memory: an anonymous mapping with a
/// no-access guard page at its low end, so that an overflow faults instead of writing into
/// other memory. Unmapped on drop; its owner keeps it until the child is done with it.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    fn new(len: usize) -> io::Result<ChildStack> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory; the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the first page of the mapping just made, which nothing uses yet.
        if unsafe { libc::mprotect(base, 4096, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer: the high end (x86-64 and aarch64 stacks grow down), 16-byte
    /// aligned as the ABI requires at a call.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, an address inside the same allocation's
        // bounds for pointer arithmetic; it is only handed to clone as the stack's top.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

// SAFETY: a ChildStack owns its mapping outright; the pointer is not shared with other threads
// of this process (only with the child that runs on it, which is reaped before the stack is
// dropped or kept), so it may move between threads (into the pool of spare stacks).
unsafe impl Send for ChildStack {}

/// Stacks of children that have been reaped, kept for the next child of the same kind (a few
/// at most): unmapping one makes the kernel flush the TLB of every CPU that runs this process's
/// memory (another thread's, or a child's sharing it), which in a virtual machine interrupts
/// them; measured at 0.3 ms at a run's end (the ahead holder's stack).
static SPARE_STACKS: std::sync::Mutex<Vec<ChildStack>> = std::sync::Mutex::new(Vec::new());

impl ChildStack {
    /// A stack of `len` bytes: a spare one of that size, or a new mapping.
    fn take(len: usize) -> io::Result<ChildStack> {
        let spare = SPARE_STACKS.lock().ok().and_then(|mut spare| {
            let i = spare.iter().position(|s| s.len == len)?;
            Some(spare.swap_remove(i))
        });
        match spare {
            Some(stack) => Ok(stack),
            None => ChildStack::new(len),
        }
    }

    /// Wait for `pid`, the child that runs on this stack, then keep the stack for the next
    /// child. Should waiting fail, the stack is leaked rather than freed under a child that may
    /// still be running, and `false` says so (the caller leaks what the child uses too).
    fn keep_after(self, pid: libc::pid_t) -> bool {
        let pid = rustix::process::Pid::from_raw(pid).expect("clone returned a pid");
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(_) => {
                self.keep();
                true
            }
            Err(_) => {
                std::mem::forget(self);
                false
            }
        }
    }

    /// Keep this stack for the next child; its own has been reaped (or has exec'd).
    fn keep(self) {
        if let Ok(mut spare) = SPARE_STACKS.lock() {
            if spare.len() < 4 {
                spare.push(self);
            }
        }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; its owners drop it only after the
        // child that ran on it has exec'd or exited.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// The stack of the command's child between clone and exec: the confinement steps and the exec
/// attempts need a few pages; the rest is never touched (`MAP_NORESERVE`).
const SPAWN_STACK: usize = 1 << 20;

// `run` never returns (its type is uninhabited), which the compiler reports about the match.
#[allow(unreachable_code)]
extern "C" fn spawn_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `&mut &mut dyn FnMut() -> std::convert::Infallible` that `spawn_sharing_memory` passed to
    // clone; it lives on the parent's stack, which stays untouched while the parent is
    // suspended (CLONE_VFORK) until this child execs or exits.
    let run = unsafe { &mut *arg.cast::<&mut dyn FnMut() -> std::convert::Infallible>() };
    match run() {}
}

/// Start a child the way `posix_spawn` does: `clone(CLONE_VM | CLONE_VFORK)` on a stack of its
/// own, so nothing of this process's address space is copied, and this process waits until the
/// child has called `execve` successfully or exited. `run` must end in `execve` or
/// [`exit_now`] (it returns [`Infallible`](std::convert::Infallible): never).
///
/// For the sandbox's init, which is a copy of the whole keepout binary and its heap: a fork
/// would copy its page tables and then fault in copies of every page either side writes before
/// the exec; this copies nothing.
///
/// The child runs in this process's memory and with this thread's thread-local storage while
/// this thread is suspended, as if it were this thread; it has its own descriptor table,
/// credentials, signal mask and dispositions, limits, Landlock domain and seccomp filters
/// (none of CLONE_FILES, CLONE_SIGHAND, CLONE_THREAD), so every confinement step it takes is its
/// own. The caller must be single-threaded, so that no other thread runs in the shared memory
/// meanwhile (the init is). What `run` changes in memory (allocations it leaves, values it
/// moves out of its captures) is seen by this process afterwards; `run` should only borrow.
pub fn spawn_sharing_memory(
    run: &mut dyn FnMut() -> std::convert::Infallible,
) -> io::Result<libc::pid_t> {
    let stack = ChildStack::take(SPAWN_STACK)?;
    let mut run = run;
    let arg =
        (&mut run as *mut &mut dyn FnMut() -> std::convert::Infallible).cast::<libc::c_void>();
    // SAFETY: `spawn_entry` matches the callback type clone expects; `stack.top()` is the high
    // end of a writable mapping that outlives the child's use of it (with CLONE_VFORK this call
    // returns only after the child has exec'd, which replaces its memory, or exited); `arg`
    // points to `run` on this frame, alive for the same reason. No CLONE_SETTLS, CLONE_*TID or
    // pidfd arguments, so no further pointers are read.
    let pid = unsafe {
        libc::clone(
            spawn_entry,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        )
    };
    stack.keep();
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

/// A child that only holds a new user namespace open for this process to configure (write its
/// id maps, open `/proc/PID/ns/user`), made without copying this process's memory: it shares it
/// (`CLONE_VM`) and runs on a small stack of its own a loop of raw `read(2)`s on a pipe, then
/// exits when the pipe's write end is closed ([`NamespaceHolder::release`]). It touches nothing
/// else of the shared memory (no allocation, no thread-local storage: rustix makes the system
/// call directly and glibc's clone leaves through the `exit` system call).
pub struct NamespaceHolder {
    pid: libc::pid_t,
    hold: Option<std::os::fd::OwnedFd>,
    /// Freed only after the child has been reaped.
    stack: Option<ChildStack>,
}

extern "C" fn hold_entry(arg: *mut libc::c_void) -> libc::c_int {
    let fds = arg as usize;
    let (read_end, write_end) = ((fds & 0xffff_ffff) as RawFd, (fds >> 32) as RawFd);
    // SAFETY: both are the holder's pipe ends in this child's own copy of the descriptor table
    // (no CLONE_FILES): the write end is closed here, once, so that the parent's close of its
    // own copy is seen as EOF; the read end stays open for as long as this child runs and is
    // only borrowed.
    let read_end = unsafe {
        rustix::io::close(write_end);
        std::os::fd::BorrowedFd::borrow_raw(read_end)
    };
    // Every other descriptor this child's copy of the table holds goes too: in a process with
    // threads, it holds what another thread had open at the clone, such as a second holder's
    // write end, which would keep that holder (and so its owner's reap) waiting for as long as
    // this one lives, and this one the same for the other.
    use std::os::fd::AsRawFd;
    close_all_but(0, &mut [read_end.as_raw_fd()]);
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(read_end, &mut byte) {
            Err(rustix::io::Errno::INTR) => continue,
            _ => return 0,
        }
    }
}

impl NamespaceHolder {
    /// A child in new namespaces `namespace_flags` (CLONE_NEWUSER and the like), holding them
    /// until [`release`](Self::release).
    pub fn spawn(namespace_flags: u64) -> io::Result<NamespaceHolder> {
        let (hold_read, hold_write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(io::Error::from)?;
        let stack = ChildStack::take(64 << 10)?;
        use std::os::fd::AsRawFd;
        let fds =
            hold_read.as_raw_fd() as u32 as usize | (hold_write.as_raw_fd() as u32 as usize) << 32;
        let arg = fds as *mut libc::c_void;
        let flags = namespace_flags as libc::c_int | libc::CLONE_VM | libc::SIGCHLD;
        // SAFETY: `hold_entry` matches clone's callback type and only makes raw system calls
        // on its own stack (see the type's docs), so running concurrently with this process in
        // shared memory races with nothing; `stack` is kept (in the returned holder) until the
        // child is reaped; `arg` holds two descriptor numbers, not a pointer.
        let pid = unsafe { libc::clone(hold_entry, stack.top(), flags, arg) };
        drop(hold_read);
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NamespaceHolder {
            pid,
            hold: Some(hold_write),
            stack: Some(stack),
        })
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Let the child exit (it sees EOF on its pipe); it is reaped by [`reap`](Self::reap) or on
    /// drop.
    pub fn release(&mut self) {
        self.hold = None;
    }

    /// Release the child, wait for it to exit and free its stack.
    pub fn reap(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.hold = None;
        // The child exits as soon as it sees EOF.
        if let Some(stack) = self.stack.take() {
            stack.keep_after(self.pid);
        }
    }
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What an [`AheadHolder`]'s child is given, in the memory it shares with this process. The
/// fields the parent sets after the clone are atomics, published before the go byte is written.
struct AheadJob {
    go_read: RawFd,
    reply_write: RawFd,
    spawner: libc::pid_t,
    isolate_net: bool,
    /// The CPUs this process may run on (`None`: they could not be read, and the child is not
    /// moved): the child starts on the others and takes these back before it clones init, which
    /// the command inherits them from.
    affinity: Option<rustix::thread::CpuSet>,
    init_flags: std::sync::atomic::AtomicU64,
    /// A `*mut &mut dyn FnMut() -> Infallible` on the parent's stack.
    run: std::sync::atomic::AtomicPtr<libc::c_void>,
    /// Init's pid or -errno once the child has cloned it ([`NO_ANSWER`] before): the parent
    /// polls this rather than sleep on the reply pipe, which would need a wake-up (slow for a
    /// CPU the virtual machine has halted) for the one answer it is sure to get soon.
    answer: std::sync::atomic::AtomicI32,
}

const NO_ANSWER: i32 = i32::MIN;

/// The stack the holder's child runs on, and (a copy of it) the init it clones: init runs the
/// whole sandbox set-up there, as deep as it was on keepout's own stack; untouched pages cost
/// nothing (`MAP_NORESERVE`).
const AHEAD_STACK: usize = 8 << 20;

// `run` never returns (its type is uninhabited), which the compiler reports about the match.
#[allow(unreachable_code)]
extern "C" fn ahead_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `AheadJob` the parent boxed and keeps until this child is reaped.
    let job = unsafe { &*arg.cast::<AheadJob>() };
    // SAFETY: descriptors of the table shared with the parent (CLONE_FILES), which the parent
    // closes only after this child has been reaped; only borrowed here.
    let (go, reply) = unsafe {
        (
            std::os::fd::BorrowedFd::borrow_raw(job.go_read),
            std::os::fd::BorrowedFd::borrow_raw(job.reply_write),
        )
    };
    // The shared table keeps the go pipe open after keepout has died: die with it instead.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(job.spawner) {
        return 0;
    }
    // Made here, by this child, so that what it costs is spent while keepout goes on.
    let net: i32 = if job.isolate_net {
        // SAFETY: unsharing the network namespace changes nothing of the memory or the
        // descriptor table that this child shares.
        let made = unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) };
        match made.and_then(|()| loopback_up()) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error(),
        }
    } else {
        0
    };
    let _ = rustix::io::write(reply, &net.to_ne_bytes());
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(go, &mut byte) {
            Ok(1) => break,
            Err(rustix::io::Errno::INTR) => continue,
            _ => return 0,
        }
    }
    // Init and the command run where this process may: the CPUs it had, given back only now,
    // when the parent has surely moved this child (before it wrote the go byte).
    if let Some(cpus) = &job.affinity {
        let _ = rustix::thread::sched_setaffinity(None, cpus);
    }
    use std::sync::atomic::Ordering;
    let flags =
        job.init_flags.load(Ordering::Acquire) | libc::CLONE_PARENT as u64 | libc::SIGCHLD as u64;
    // SAFETY: as in `clone_process`: a NULL stack gives fork semantics, the child (init) a
    // copy-on-write copy of the memory, continuing on its copy of this stack. The parent is
    // blocked reading the reply meanwhile and its other threads have ended (the caller's
    // condition), so the copy holds no lock another thread had taken. CLONE_PARENT makes init
    // the parent's child, not this one's. No pointer arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    if ret == 0 {
        // In init. SAFETY: `run` points to the parent's closure on the parent's stack, which
        // this copy of the memory holds as it was when the parent published it and blocked.
        let run = unsafe {
            &mut *job
                .run
                .load(Ordering::Acquire)
                .cast::<&mut dyn FnMut() -> std::convert::Infallible>()
        };
        match run() {}
    }
    let answer: i32 = if ret < 0 {
        -io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    } else {
        ret as i32
    };
    job.answer.store(answer, Ordering::Release);
    let _ = rustix::io::write(reply, &answer.to_ne_bytes());
    if ret < 0 {
        return 0;
    }
    // Init runs. This child now stays, holding only its go pipe's read end in a table of its
    // own, until the parent lets it go or exits: while it lives the shared memory is not the
    // parent's alone, so the parent's exit does not wait for the kernel to tear that memory
    // down (the last user of it does: this child, after the parent is gone). The table's copy
    // holds the parent's descriptors only for as long as the close takes.
    // SAFETY: unsharing the descriptor table changes nothing of the shared memory; the parent's
    // table is left as it is.
    if unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES) }.is_err() {
        return 0;
    }
    close_all_but(0, &mut [job.go_read]);
    loop {
        match rustix::io::read(go, &mut byte) {
            Err(rustix::io::Errno::INTR) => continue,
            _ => return 0,
        }
    }
}

/// The first namespaces of a run, made ahead while keepout builds the policy: a child in a new
/// user namespace that, when asked, makes a new network namespace itself, with its loopback up
/// (what that costs the kernel, half a millisecond here, is then spent while keepout goes on),
/// and waits. It is sent to another CPU than this process's (and gives its CPUs back before it
/// clones init): the kernel starts a new child on its parent's CPU, where it would wait for
/// this process to block. On [`start_init`](Self::start_init) it clones the sandbox's init into
/// them, as this process's own child (CLONE_PARENT) and fork-style: init has a copy of this
/// process's memory as it is then, descriptors included, and runs the given closure in it.
///
/// Then it stays, in a descriptor table of its own that holds nothing but its go pipe, until
/// [`release`](Self::release) (or drop) or this process's exit: as long as it lives, this
/// process's exit leaves the release of the memory they share to it, after this process is
/// gone, rather than make whoever waits for this process wait for that too.
///
/// The child shares this process's memory and, until init is cloned, its descriptor table
/// (CLONE_VM, CLONE_FILES) and runs only raw system calls on a stack of its own (rustix: no
/// errno, no allocation, no thread-local storage) while this process runs; it dies with this
/// process (its parent-death signal). The caller must have no other thread running when it
/// calls `start_init`.
pub struct AheadHolder {
    pid: libc::pid_t,
    go: Option<std::os::fd::OwnedFd>,
    reply: std::os::fd::OwnedFd,
    /// What the child uses, freed once it is reaped.
    child: Option<AheadChild>,
}

/// What an [`AheadHolder`]'s child runs on and reads: its stack, its job, its pipes' ends.
struct AheadChild {
    stack: ChildStack,
    job: Box<AheadJob>,
    ends: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
}

// SAFETY: the holder owns its stack mapping and job outright (the raw pointers in them are
// not shared with any other thread of this process), so it may be moved to another thread.
unsafe impl Send for AheadHolder {}

impl AheadHolder {
    /// Start the child in a new user namespace (and network namespace with `isolate_net`).
    /// Its id maps are the caller's to write (as for any new user namespace: [`Self::pid`]).
    pub fn spawn(isolate_net: bool) -> io::Result<AheadHolder> {
        use std::os::fd::AsRawFd;
        let cloexec = rustix::pipe::PipeFlags::CLOEXEC;
        let (go_read, go_write) = rustix::pipe::pipe_with(cloexec).map_err(io::Error::from)?;
        let (reply_read, reply_write) =
            rustix::pipe::pipe_with(cloexec).map_err(io::Error::from)?;
        let job = Box::new(AheadJob {
            go_read: go_read.as_raw_fd(),
            reply_write: reply_write.as_raw_fd(),
            spawner: rustix::process::getpid().as_raw_nonzero().get(),
            isolate_net,
            affinity: rustix::thread::sched_getaffinity(None).ok(),
            init_flags: std::sync::atomic::AtomicU64::new(0),
            run: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            answer: std::sync::atomic::AtomicI32::new(NO_ANSWER),
        });
        let stack = ChildStack::take(AHEAD_STACK)?;
        let arg = (&*job as *const AheadJob).cast_mut().cast::<libc::c_void>();
        let flags = libc::CLONE_NEWUSER | libc::CLONE_VM | libc::CLONE_FILES | libc::SIGCHLD;
        // SAFETY: `ahead_entry` matches clone's callback type and, until it is told to go, only
        // makes raw system calls on its own stack (see the type's docs), racing with nothing in
        // the shared memory; `stack` and `job` are kept in the returned value until the child is
        // reaped. No CLONE_SETTLS, CLONE_*TID or pidfd arguments.
        let pid = unsafe { libc::clone(ahead_entry, stack.top(), flags, arg) };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel puts a new child on its parent's CPU, where it waits until this process
        // blocks (half a millisecond and more here), although another CPU is idle: the child is
        // sent to the others, to make the namespaces while this process goes on.
        if let Some(cpus) = &job.affinity {
            let mut elsewhere = *cpus;
            elsewhere.unset(rustix::thread::sched_getcpu());
            if elsewhere.count() > 0 {
                let _ = rustix::thread::sched_setaffinity(
                    rustix::process::Pid::from_raw(pid),
                    &elsewhere,
                );
            }
        }
        Ok(AheadHolder {
            pid,
            go: Some(go_write),
            reply: reply_read,
            child: Some(AheadChild {
                stack,
                job,
                ends: (go_read, reply_write),
            }),
        })
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    fn read_reply(&self) -> io::Result<i32> {
        let mut word = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match rustix::io::read(&self.reply, &mut word[got..]) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::ECHILD)),
                Ok(n) => got += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(i32::from_ne_bytes(word))
    }

    /// Clone init with `namespace_flags` (not CLONE_NEWUSER or CLONE_NEWNET: those are the
    /// child's) into the child's namespaces; it runs `run`, which must not return. Init's pid;
    /// an error when the child could not make the network namespace or clone (nothing was
    /// started then). The caller must have no other thread running.
    pub fn start_init(
        &mut self,
        namespace_flags: u64,
        run: &mut dyn FnMut() -> std::convert::Infallible,
    ) -> io::Result<libc::pid_t> {
        let net = self.read_reply()?;
        if net != 0 {
            return Err(io::Error::from_raw_os_error(net));
        }
        let mut run = run;
        use std::sync::atomic::Ordering;
        let job = &self.child.as_ref().expect("not reaped yet").job;
        job.init_flags.store(namespace_flags, Ordering::Release);
        job.run.store(
            (&mut run as *mut &mut dyn FnMut() -> std::convert::Infallible).cast(),
            Ordering::Release,
        );
        let go = self.go.as_ref().expect("started once");
        rustix::io::write(go, b"1").map_err(io::Error::from)?;
        // Until the child has cloned init (`run`, on this frame, stays as it is meanwhile): the
        // answer polled for a while, yielding the CPU (the child may be waiting for this one),
        // then waited for on the pipe.
        let started = std::time::Instant::now();
        let answer = loop {
            let answer = job.answer.load(Ordering::Acquire);
            if answer != NO_ANSWER {
                break answer;
            }
            if started.elapsed() > std::time::Duration::from_millis(5) {
                break self.read_reply()?;
            }
            std::thread::yield_now();
        };
        if answer < 0 {
            self.go = None;
            return Err(io::Error::from_raw_os_error(-answer));
        }
        Ok(answer)
    }

    /// Let the child go (EOF on its pipe) without waiting for it; [`try_reap`](Self::try_reap)
    /// later, or drop, which waits.
    pub fn release(&mut self) {
        self.go = None;
    }

    /// Reap the child if it has exited (freeing its stack); whether it had.
    pub fn try_reap(&mut self) -> bool {
        let Some(pid) = rustix::process::Pid::from_raw(self.pid) else {
            return true;
        };
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG) {
            Ok(None) => false,
            Ok(Some(_)) => {
                if let Some(AheadChild { stack, .. }) = self.child.take() {
                    stack.keep();
                }
                true
            }
            // Not this process's child any more (reaped elsewhere): what it used stays leaked.
            Err(_) => {
                std::mem::forget(self.child.take());
                true
            }
        }
    }

    /// Let the child go (EOF on its pipe), wait for it to exit and free its stack.
    pub fn reap(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.go = None;
        // The job and the pipes' ends too, only once the child is gone.
        if let Some(AheadChild { stack, job, ends }) = self.child.take() {
            if !stack.keep_after(self.pid) {
                std::mem::forget((job, ends));
            }
        }
    }
}

impl Drop for AheadHolder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What [`listen_in_network_of`]'s child is given and gives back, in the memory it shares.
struct ListenJob {
    /// The user namespace to join first (-1: the target is in this process's own).
    user_ns: RawFd,
    net_ns: RawFd,
    port: u16,
    /// The listening socket's descriptor, or -errno.
    result: i32,
}

extern "C" fn listen_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ListenJob` on `listen_in_network_of`'s frame, which is suspended
    // (CLONE_VFORK) until this child exits; nothing else touches it meanwhile.
    let job = unsafe { &mut *arg.cast::<ListenJob>() };
    let step = || -> rustix::io::Result<RawFd> {
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        // SAFETY: both descriptors are open in the shared table (CLONE_FILES) for as long as
        // the parent waits for this child; they are only borrowed.
        let (user, net) = unsafe {
            (
                (job.user_ns >= 0).then(|| std::os::fd::BorrowedFd::borrow_raw(job.user_ns)),
                std::os::fd::BorrowedFd::borrow_raw(job.net_ns),
            )
        };
        if let Some(user) = user {
            move_into_link_name_space(user, Some(LinkNameSpaceType::User))?;
        }
        move_into_link_name_space(net, Some(LinkNameSpaceType::Network))?;
        // An engine's "no network" namespace may have left its loopback down.
        bring_loopback_up().map_err(|e| {
            rustix::io::Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO))
        })?;
        let socket = rustix::net::socket_with(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )?;
        let addr = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, job.port);
        rustix::net::bind(&socket, &addr)?;
        rustix::net::listen(&socket, 128)?;
        use std::os::fd::IntoRawFd;
        Ok(socket.into_raw_fd())
    };
    job.result = match step() {
        Ok(fd) => fd,
        Err(e) => -e.raw_os_error(),
    };
    0
}

/// A TCP socket listening on 127.0.0.1:`port` inside the network namespace of process `pid`
/// (a container's), owned by this process: connections made there are accepted here, and
/// nothing in the namespace holds the socket.
///
/// Made by a child that shares this process's memory and descriptor table (`CLONE_VM |
/// CLONE_FILES | CLONE_VFORK`, on a small stack of its own) and joins the namespaces (the
/// process's user namespace first, when it has one of its own: a rootless engine's), which a
/// process with threads cannot do itself. The child makes only system calls (no allocation,
/// no thread-local storage but `errno`, while this thread is suspended), so this may be called
/// from a process with other threads.
pub fn listen_in_network_of(pid: libc::pid_t, port: u16) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::MetadataExt;
    let ns = |kind: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{kind}"))
            .map_err(|e| io::Error::new(e.kind(), format!("/proc/{pid}/ns/{kind}: {e}")))
    };
    let (user_ns, net_ns) = (ns("user")?, ns("net")?);
    let own_user = std::fs::metadata("/proc/self/ns/user")?;
    let target_user = user_ns.metadata()?;
    let same_user = (own_user.dev(), own_user.ino()) == (target_user.dev(), target_user.ino());
    let mut job = ListenJob {
        user_ns: if same_user { -1 } else { user_ns.as_raw_fd() },
        net_ns: net_ns.as_raw_fd(),
        port,
        result: -libc::ECHILD,
    };
    let stack = ChildStack::take(64 << 10)?;
    let flags = libc::CLONE_VM | libc::CLONE_FILES | libc::CLONE_VFORK | libc::SIGCHLD;
    let arg = (&mut job as *mut ListenJob).cast::<libc::c_void>();
    // SAFETY: `listen_entry` matches clone's callback type and makes only system calls on its
    // own stack; `stack` and `job` outlive it (CLONE_VFORK: clone returns once the child has
    // exited, and the child is reaped before `stack` is freed).
    let child = unsafe { libc::clone(listen_entry, stack.top(), flags, arg) };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    let reaped = rustix::process::Pid::from_raw(child)
        .map(|p| rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()));
    match reaped {
        Some(Ok(_)) => stack.keep(),
        _ => std::mem::forget(stack),
    }
    if job.result < 0 {
        return Err(io::Error::from_raw_os_error(-job.result));
    }
    // SAFETY: the child left this new descriptor in the shared table; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(job.result) })
}

/// `execve(2)`. Only returns on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: `path` and every element are NUL-terminated C strings that outlive the call; both
    // pointer arrays are NULL-terminated as execve requires.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Zero the strings of the environment block this process was exec'd with.
///
/// The sandbox's init is created by clone, not exec, so `/proc/1/environ` would show keepout's
/// own environment (tokens included). Init is also made non-dumpable, which already makes that
/// file unreadable to the sandbox; this is the second wall.
pub fn wipe_exec_environment() -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // /proc/[pid]/stat fields 50 and 51 (1-based) are env_start and env_end; `fields` starts at
    // field 3.
    let parse = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<usize>().ok());
    let (Some(start), Some(end)) = (parse(50), parse(51)) else {
        return Err(io::Error::other("no env_start/env_end in /proc/self/stat"));
    };
    if end <= start || end - start > (64 << 20) {
        return Err(io::Error::other("implausible environment block"));
    }
    // SAFETY: [env_start, env_end) is the environment string area that the kernel placed on this
    // process's initial stack at exec time; it is mapped and writable for the life of the
    // process, and nothing in this child process reads it after this point (keepout captured the
    // environment it needs as owned Strings before cloning).
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    Ok(())
}

/// The Landlock ABI version of the running kernel; 0 when Landlock is absent or disabled.
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) only returns an integer; no memory is
    // read or written.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0) as i32
}

/// Close every descriptor from `first` up but those in `keep` (sorted here, in place), in this
/// process's own table. Allocates nothing and leaves errno alone (close_range with valid
/// arguments does not fail), so a child sharing its parent's memory may call it. For a child
/// that holds a copy of its parent's table: the caller must not use or drop, afterwards, any
/// value of the copied memory that owns one of the closed descriptors (the sandbox's init,
/// which leaves through `_exit`, only uses its own).
pub fn close_all_but(first: u32, keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut first = first;
    let kept = keep.iter().filter_map(|&fd| u32::try_from(fd).ok());
    for fd in kept.chain(std::iter::once(u32::MAX)) {
        if fd > first {
            // SAFETY: close_range only closes descriptors of this process's table; the caller
            // keeps what it uses (see above). Closing an unused number is no error.
            unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0 as libc::c_uint) };
        }
        first = first.max(fd.saturating_add(1));
    }
}

/// Mark every descriptor from `first` upward close-on-exec.
pub fn close_range_cloexec(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on this process's descriptors.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Mount attribute bits for [`mount_setattr_recursive`].
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(path)`: set `attrs` on the mount at `path` and, if `recursive`, every mount
/// beneath it (a read-only bind of `/usr` stays read-only in its submounts too).
pub fn mount_setattr(path: &CStr, attrs: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is a valid C string; `attr` is a properly initialised `struct mount_attr`
    // whose size is passed alongside it.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            if recursive {
                libc::AT_RECURSIVE as libc::c_uint
            } else {
                0
            } | libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// A set of signals.
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    pub fn new(signals: &[i32]) -> SignalSet {
        // SAFETY: sigemptyset initialises the set fully; sigaddset only writes into it.
        unsafe {
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            SignalSet(set)
        }
    }

    /// A signalfd for these signals (which the caller has blocked): readable while one of them
    /// is pending for this thread or process; non-blocking, close-on-exec.
    pub fn signalfd(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: the set is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &self.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor signalfd just returned, owned by nothing else.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }

    /// Block these signals for the calling thread.
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: the set is initialised; a NULL old-set pointer is allowed.
        let r = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Unblock these signals for the calling thread.
    pub fn unblock(&self) {
        // SAFETY: the set is initialised; a NULL old-set pointer is allowed.
        unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &self.0, std::ptr::null_mut()) };
    }

    /// Wait at most `timeout` for one of these (blocked) signals: its number, or `None` when
    /// none came in time.
    pub fn wait_timeout(&self, timeout: std::time::Duration) -> io::Result<Option<i32>> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        loop {
            // SAFETY: the set and the timespec are initialised and outlive the call; a NULL
            // siginfo pointer is allowed.
            let r = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
            if r >= 0 {
                return Ok(Some(r));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
    }

    /// Wait for one of these (blocked) signals and return its number.
    pub fn wait(&self) -> io::Result<i32> {
        loop {
            // SAFETY: the set is initialised; a NULL siginfo pointer is allowed.
            let r = unsafe { libc::sigwaitinfo(&self.0, std::ptr::null_mut()) };
            if r >= 0 {
                return Ok(r);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Unblock every signal and give SIGPIPE back its default action, as a command expects (Rust
/// ignores SIGPIPE, and an ignored signal stays ignored across exec; handlers are reset by exec
/// itself, and other ignored signals are the caller's choice, passed on as any launcher does).
pub fn reset_signals() {
    // SAFETY: an empty, initialised set and the SIG_DFL disposition.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Is this descriptor a terminal?
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// `_exit(2)`: leave the process now, without running destructors or atexit handlers (the
/// right way out of a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// `kill(-1, SIGKILL)`: every process this one may signal, but itself (and, in a pid namespace,
/// every process of that namespace but its init, which is the caller). `Ok` when at least one
/// got the signal, `ESRCH` when there was none.
pub fn kill_all_others() -> io::Result<()> {
    // SAFETY: kill takes two integers and has no memory effects.
    if unsafe { libc::kill(-1, libc::SIGKILL) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bring the `lo` interface of the current network namespace up.
/// Nothing to do when it is up already (made ahead: see [`AheadHolder`]).
pub fn bring_loopback_up() -> io::Result<()> {
    loopback_up().map_err(io::Error::from)
}

/// [`bring_loopback_up`] in raw system calls (rustix's: no errno), as the ahead holder's child
/// may use them.
fn loopback_up() -> rustix::io::Result<()> {
    use rustix::ioctl::{ioctl, Opcode, Updater};
    const GET: Opcode = libc::SIOCGIFFLAGS as Opcode;
    const SET: Opcode = libc::SIOCSIFFLAGS as Opcode;
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    // SAFETY: `ifreq` is plain old data, and zero is a valid value for all of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: both requests take a `struct ifreq` with a NUL-terminated name within IFNAMSIZ,
    // and read and write only that struct.
    unsafe { ioctl(&sock, Updater::<GET, libc::ifreq>::new(&mut req))? };
    // SAFETY: the union member the two requests use.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    if flags & up != up {
        req.ifr_ifru.ifru_flags = flags | up;
        // SAFETY: as above.
        unsafe { ioctl(&sock, Updater::<SET, libc::ifreq>::new(&mut req))? };
    }
    Ok(())
}

/// `setgroups(0, NULL)`: drop every supplementary group (possible only where the user
/// namespace's `setgroups` file says "allow", i.e. when the caller is root).
///
/// The system call itself, for this thread: glibc's `setgroups` applies the change to every
/// thread it knows of and waits for them, and in a child cloned from a process with several
/// threads (a test harness calling the library) it waits for threads that are not there.
pub fn clear_groups() -> io::Result<()> {
    rustix::thread::set_thread_groups(&[]).map_err(io::Error::from)
}

/// Make the detached mount tree `tree` idmapped through the user namespace `userns`
/// (recursively), and nosuid, nodev.
pub fn mount_setattr_idmap(
    tree: std::os::fd::BorrowedFd<'_>,
    userns: std::os::fd::BorrowedFd<'_>,
) -> io::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    use std::os::fd::AsRawFd;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: the descriptors are live for the call; the empty path with AT_EMPTY_PATH refers to
    // `tree` itself; `attr` is an initialised `struct mount_attr` of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// `move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`:
/// attach a detached tree onto the object the `target` handle refers to.
pub fn move_mount_to(
    tree: std::os::fd::BorrowedFd<'_>,
    target: std::os::fd::BorrowedFd<'_>,
) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are live; the empty paths are valid C strings.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `openat2(path, O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: a handle on
/// exactly what `path` names, refusing any symlink in any component. Binding through this handle
/// (not through the path again) closes the window in which a symlink could be swapped in.
pub fn open_path_no_symlinks(path: &CStr) -> io::Result<std::os::fd::OwnedFd> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `path` is a valid C string and `how` an initialised `struct open_how` whose size is
    // passed; on success the kernel returns a new descriptor that nothing else owns.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    use std::os::fd::FromRawFd;
    // SAFETY: see above.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `open_tree(fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | AT_RECURSIVE)`: a detached copy of the
/// mount tree at the object `fd` refers to.
pub fn open_tree_clone_fd(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    use std::os::fd::AsRawFd;
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint;
    // SAFETY: the descriptor is live and the empty path is a valid C string; the returned
    // descriptor is new and owned by no one else.
    let tree =
        check(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })?;
    use std::os::fd::FromRawFd;
    // SAFETY: see above.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(tree as RawFd) })
}

/// Install a seccomp filter (no_new_privs must be set) and return its user-notification
/// listener: the filter's `SECCOMP_RET_USER_NOTIF` calls wait for an answer on it.
pub fn install_filter_with_listener(
    filter: &[seccompiler::sock_filter],
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: seccompiler's sock_filter is #[repr(C)] {u16 code, u8 jt, u8 jf, u32 k}, the same
    // layout as the kernel's (and libc's) struct sock_filter; `prog` points at `filter`, which
    // outlives the call, and the kernel copies the program before returning.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// One system call waiting for keepout's answer.
pub struct Notification {
    pub id: u64,
    pub nr: i32,
    pub args: [u64; 6],
}

/// Take the next notification from a listener (blocks until there is one).
pub fn notification_recv(listener: std::os::fd::BorrowedFd<'_>) -> io::Result<Notification> {
    use std::os::fd::AsRawFd;
    // SAFETY: seccomp_notif is plain data; all-zero is a valid value, and the kernel requires
    // the buffer zeroed.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one struct seccomp_notif into `n`, which is exactly that size.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notification {
        id: n.id,
        nr: n.data.nr,
        args: n.data.args,
    })
}

/// Answer notification `id`: the call fails with `errno`.
pub fn notification_deny(
    listener: std::os::fd::BorrowedFd<'_>,
    id: u64,
    errno: i32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: -errno,
        flags: 0,
    };
    // SAFETY: the ioctl reads one struct seccomp_notif_resp from `resp`, which is exactly that.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second holder made while the first's pipe is open gets a copy of its write end (the
    /// clone copies the whole table); it must close it, or releasing the first waits for the
    /// second, and two such holders wait for each other (a hang seen with tests on threads).
    #[test]
    fn a_holder_keeps_no_other_holder_waiting() {
        let Ok(mut first) = NamespaceHolder::spawn(CLONE_NEWUSER) else {
            eprintln!("note: no unprivileged user namespaces here: not tested");
            return;
        };
        let second = NamespaceHolder::spawn(CLONE_NEWUSER).expect("a second holder");
        first.release();
        let pid = rustix::process::Pid::from_raw(first.pid()).expect("a pid");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let exited = loop {
            match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG) {
                Ok(Some(_)) => break true,
                _ if std::time::Instant::now() > until => break false,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        // Reaped here already: its stack may go (the drop's own wait then fails and keeps it).
        std::mem::forget(first);
        second.reap();
        assert!(
            exited,
            "the first holder exits on release while the second lives"
        );
    }
}
