//! A10: leaked descriptors. The shell that starts keepout has a credential file open on fd 5
//! and the victim's home directory open on fd 7, without close-on-exec (as a careless caller or
//! a vault would); the sandboxed command must inherit neither.

use std::collections::BTreeSet;

use super::harness::*;

/// fd numbers in `ls -l /proc/self/fd` output, with their targets.
fn fds(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            Some((fd, target.to_string()))
        })
        .collect()
}

/// A credential file open on fd 5: the command sees it (and reads the secret through it)
/// outside; inside only 0, 1, 2 (and the descriptor `ls` opens for itself).
#[test]
fn inherited_file_descriptor_is_closed() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let netrc = fx.home_path(".netrc");
        let secret = fx.credential(".netrc");
        let open = format!("exec 5<{}", q(&netrc));

        let out = fx.outside(&format!("{open}; ls -l /proc/self/fd; cat <&5"));
        assert!(
            fds(&out.stdout).iter().any(|(fd, t)| *fd == 5 && t == &netrc) && out.stdout.contains(&secret),
            "[{r}] outside: the child sees fd 5 and reads the secret through it (proves the attack):{out}"
        );

        let inn = fx.outside(&format!(
            "{open}; {} run -- ls -l /proc/self/fd; echo \"rc=$?\"",
            keepout_bin()
        ));
        let seen: BTreeSet<u32> = fds(&inn.stdout).into_iter().map(|(fd, _)| fd).collect();
        assert!(inn.stdout.contains("rc=0"), "[{r}] inside: ls ran:{inn}");
        assert!(
            seen.is_subset(&BTreeSet::from([0, 1, 2, 3])) && !inn.stdout.contains(&netrc),
            "[{r}] inside: only fds 0-2 (and ls's own) may be open, got {seen:?}:{inn}"
        );

        let inn = fx.outside(&format!(
            "{open}; {} run -- sh -c 'cat <&5; echo \"rc=$?\"'",
            keepout_bin()
        ));
        assert!(
            !inn.has(&secret) && inn.stdout.contains("rc=") && !inn.stdout.contains("rc=0"),
            "[{r}] inside: reading fd 5 must fail:{inn}"
        );
    }
}

const DIRFD_PY: &str = r#"
import os, sys
try:
    fd = os.open(".netrc", os.O_RDONLY, dir_fd=7)
    print("READ", os.read(fd, 200).decode().strip())
except OSError as e:
    print("DIRFD errno", e.errno, e.strerror)
"#;

/// The victim's home directory open on fd 7: outside, openat(7, ".netrc") reads the secret
/// (an inherited directory descriptor escapes any mount namespace); inside fd 7 does not exist.
#[test]
fn inherited_directory_descriptor_cannot_escape() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("dirfd.py", DIRFD_PY);
        let secret = fx.credential(".netrc");
        let open = format!("exec 7<{}", q(fx.home.display().to_string()));

        let out = fx.outside(&format!("{open}; {PYTHON} {py}"));
        assert!(
            out.stdout.contains(&format!("READ machine github.com login victim password {secret}")),
            "[{r}] outside: openat on the inherited directory fd reads .netrc (proves the attack):{out}"
        );

        let inn = fx.outside(&format!("{open}; {} run -- {PYTHON} {py}", keepout_bin()));
        assert!(
            !inn.has(&secret) && inn.stdout.contains("DIRFD errno 9 "),
            "[{r}] inside: fd 7 must not exist (EBADF):{inn}"
        );
    }
}
