//! `listen_in_network_of`: a listener keepout holds, inside another process's network
//! namespace (a container's, for `run --image --net`), reached from inside it and from nowhere
//! else. The other process here is a real one in namespaces of its own (`unshare`), with and
//! without a user namespace of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `unshare FLAGS bash`: waits for a line on stdin, then connects to 127.0.0.1:port in its own
/// network namespace and says hello.
fn reached_from_inside(unshare_flags: &[&str]) {
    if Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("note: unshare missing, not checked");
        return;
    }
    let port = free_port();
    let script = format!(
        "read -r _; exec 3<>/dev/tcp/127.0.0.1/{port} || exit 7; echo hello-from-inside >&3"
    );
    let mut child = Command::new("unshare")
        .args(unshare_flags)
        .args(["bash", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until unshare has exec'd bash in the new namespaces (its net namespace differs).
    let pid = child.id() as i32;
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap() == own
        || !std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .starts_with("bash")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let listener = keepout_sandbox::listen_in_network_of(pid, port).unwrap();
    // Not in this namespace: nothing of ours listens on that port here.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener must be in the other namespace only"
    );
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let (conn, _) = listener.accept().unwrap();
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).unwrap();
    assert_eq!(line, "hello-from-inside\n");
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status} {out}");
}

#[test]
fn a_listener_in_a_network_namespace_with_its_own_user_namespace() {
    reached_from_inside(&["--user", "--map-root-user", "--net"]);
}

#[test]
fn a_listener_in_a_network_namespace_of_this_user_namespace() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("note: a network namespace without a user namespace needs root; not checked");
        return;
    }
    reached_from_inside(&["--net"]);
}

#[test]
fn a_process_that_is_gone_is_an_error() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    let err = keepout_sandbox::listen_in_network_of(pid, free_port()).unwrap_err();
    assert!(err.to_string().contains("/ns/"), "{err}");
}
