//! A3: agent and keyring sockets: a real ssh-agent, an abstract unix socket (as D-Bus and
//! others use), a socket in a runtime directory under /run (as $XDG_RUNTIME_DIR holds).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::harness::*;

/// A real `ssh-agent -D -a SOCK` with the socket in the victim's home (the fixture's
/// SSH_AUTH_SOCK): `ssh-add -l` reaches it outside, not inside (neither with --net nor in
/// landlock mode).
#[test]
fn ssh_agent_socket_unreachable() {
    assert!(
        have("ssh-agent") && have("ssh-add"),
        "ssh-agent/ssh-add not found: install openssh-client (apt-get install openssh-client); \
         this test needs a real agent"
    );
    for r in runners() {
        let fx = Fixture::new(&r);
        let sock = fx.secret("SSH_AUTH_SOCK");
        fx.background(&["ssh-agent", "-D", "-a", &sock]);
        assert!(
            poll(Duration::from_secs(20), || Path::new(&sock).exists()),
            "[{r}] ssh-agent did not create {sock}"
        );
        let script = format!("SSH_AUTH_SOCK={} ssh-add -l; echo \"rc=$?\"", q(&sock));

        // Exit 0 (identities) or 1 ("The agent has no identities.") both mean: reachable.
        let out = fx.outside(&script);
        assert!(
            out.stdout.contains("rc=0") || out.stdout.contains("rc=1"),
            "[{r}] outside: ssh-add reaches the agent (proves the attack):{out}"
        );

        for extra in [&[][..], &["--net", "host"][..], &["--mode", "landlock"][..]] {
            let inn = fx.inside(extra, &script);
            assert!(
                inn.stdout.contains("rc=2"),
                "[{r}] inside {extra:?}: ssh-add must not reach the agent (exit 2):{inn}"
            );
        }
    }
}

/// An abstract unix socket listening outside: reachable outside; not inside, without --net
/// (own network namespace) and with --net (shared namespace: Landlock scoping must refuse),
/// and not in landlock mode.
#[test]
fn abstract_socket_unreachable_with_and_without_net() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let name = format!("keepout-test-bus-{}", fx.rand);
        fx.serve("abstract", &name);
        let script = fx.connect_script("abstract", &name);

        let out = fx.outside(&script);
        assert!(
            out.stdout.contains("CONNECTED hello-from-the-host"),
            "[{r}] outside: the abstract socket answers (proves the attack):{out}"
        );

        for extra in [&[][..], &["--net", "host"][..], &["--mode", "landlock"][..]] {
            let inn = fx.inside(extra, &script);
            assert!(
                inn.success() && inn.stdout.contains("BLOCKED") && !inn.has("hello-from-the-host"),
                "[{r}] inside {extra:?}: the host's abstract socket must be unreachable:{inn}"
            );
        }
    }
}

/// A per-user runtime directory under /run holding an agent/bus socket (what
/// $XDG_RUNTIME_DIR=/run/user/UID holds: D-Bus, gpg-agent, Wayland): reachable outside, not
/// inside; /run inside is empty.
#[test]
fn runtime_dir_sockets_unreachable() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // Only root can make a directory in /run; an unprivileged suite uses its own
        // $XDG_RUNTIME_DIR if it has one.
        let runtime: PathBuf = if euid() == 0 {
            PathBuf::from(format!("/run/keepout-test-{}", fx.rand))
        } else {
            match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(d) if Path::new(&d).is_dir() => {
                    Path::new(&d).join(format!("keepout-test-{}", fx.rand))
                }
                _ => {
                    note(&format!(
                        "[{r}] no writable runtime directory (not root, no $XDG_RUNTIME_DIR): \
                         runtime_dir_sockets_unreachable checks only that /run is empty inside"
                    ));
                    let inn = fx.inside(&[], "ls -A /run");
                    assert!(
                        inn.success() && inn.stdout.trim().is_empty(),
                        "[{r}] inside: /run must be empty:{inn}"
                    );
                    continue;
                }
            }
        };
        std::fs::create_dir_all(&runtime).unwrap();
        fx.remove_on_drop(&runtime);
        chmod(&runtime, 0o700);
        fx.give_to_runner(&runtime);
        let sock = runtime.join("bus").display().to_string();
        fx.serve("unix", &sock);
        let script = fx.connect_script("unix", &sock);

        let out = fx.outside(&script);
        assert!(
            out.stdout.contains("CONNECTED hello-from-the-host"),
            "[{r}] outside: the runtime-dir socket answers (proves the attack):{out}"
        );
        let out = fx.outside("ls -A /run");
        assert!(
            out.success() && !out.stdout.trim().is_empty(),
            "[{r}] outside: /run has entries:{out}"
        );

        for extra in [&[][..], &["--net", "host"][..], &["--mode", "landlock"][..]] {
            let inn = fx.inside(extra, &script);
            assert!(
                inn.success() && inn.stdout.contains("BLOCKED") && !inn.has("hello-from-the-host"),
                "[{r}] inside {extra:?}: the runtime-dir socket must be unreachable:{inn}"
            );
        }
        let inn = fx.inside(&[], "ls -A /run");
        assert!(
            inn.success() && inn.stdout.trim().is_empty(),
            "[{r}] inside: /run must be empty:{inn}"
        );
    }
}
