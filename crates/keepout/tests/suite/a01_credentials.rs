//! A1: reading credential files. The attacker knows the victim's home path; inside the sandbox
//! that path is a fresh, empty home.

use super::harness::*;

/// Each planted credential file, read by its absolute path: readable outside, missing inside.
#[test]
fn credential_files_unreadable_by_absolute_path() {
    for r in runners() {
        let fx = Fixture::new(&r);
        for (rel, marker) in fx.credentials() {
            let path = fx.home_path(rel);
            let script = format!("cat {}", q(&path));

            let out = fx.outside(&script);
            assert!(
                out.success() && out.stdout.contains(marker.as_str()),
                "[{r}] outside: reading {rel} must work (proves the attack):{out}"
            );
            if *rel == ".ssh/id_ed25519" {
                assert!(
                    out.stdout
                        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
                    "[{r}] the planted key looks like a key:{out}"
                );
            }

            let inn = fx.inside(&[], &script);
            assert!(
                !inn.has(marker),
                "[{r}] inside: {rel} leaked ({marker}):{inn}"
            );
            assert!(
                inn.code == Some(1) && inn.stderr.contains("No such file or directory"),
                "[{r}] inside: {rel} must be missing (cat fails with ENOENT):{inn}"
            );
        }
    }
}

/// `~` inside is an empty fresh home at the same path; outside it holds the planted files.
#[test]
fn home_is_fresh_and_empty() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = "echo \"HOME=$HOME\"; ls -A ~; echo end";

        let out = fx.outside(script);
        assert!(
            out.success() && out.stdout.contains(".ssh") && out.stdout.contains(".netrc"),
            "[{r}] outside: the victim's home lists the credentials:{out}"
        );

        let inn = fx.inside(&[], script);
        let expected = format!("HOME={}\nend\n", fx.home.display());
        assert!(
            inn.success() && inn.stdout == expected,
            "[{r}] inside: $HOME must be the same path and empty (expected {expected:?}):{inn}"
        );
        // And via find: nothing at all beneath it.
        let inn = fx.inside(&[], "find ~ -mindepth 1 | wc -l");
        assert!(
            inn.success() && inn.stdout.trim() == "0",
            "[{r}] inside: the fresh home must hold nothing:{inn}"
        );
    }
}

/// The runner's real home (from /etc/passwd, e.g. /root) is not visible at all.
#[test]
fn real_home_is_not_visible() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let real = r.real_home();
        let script = format!("ls -A {}", q(real.display().to_string()));

        let out = fx.outside(&script);
        assert!(
            out.success() && !out.stdout.trim().is_empty(),
            "[{r}] outside: the real home {} lists files:{out}",
            real.display()
        );

        let inn = fx.inside(&[], &format!("{script}; echo \"rc=$?\""));
        assert!(
            inn.stdout.trim() == "rc=2",
            "[{r}] inside: the real home {} must not exist (ls fails, lists nothing):{inn}",
            real.display()
        );
        let inn = fx.inside(&[], "ls -A /home /root; echo \"rc=$?\"");
        assert!(
            inn.stdout.trim() == "rc=2",
            "[{r}] inside: /home and /root must not exist:{inn}"
        );
    }
}

/// `--home DIR` keeps a home across two runs (write, then read), and nothing else of the
/// victim's home shows up there.
#[test]
fn home_dir_persists_across_runs() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let state = fx.mkdir("state-home");
        let state_s = state.display().to_string();
        let token = format!("persisted-{}", fx.rand);

        let first = fx.inside(
            &["--home", &state_s],
            &format!("mkdir -p ~/.cache && echo {token} > ~/.cache/state.txt"),
        );
        assert!(first.success(), "[{r}] first run writes the home:{first}");
        assert_eq!(
            read(&state.join(".cache/state.txt")).as_deref(),
            Some(format!("{token}\n").as_str()),
            "[{r}] the write landed in the --home directory on the host"
        );

        let second = fx.inside(&["--home", &state_s], "cat ~/.cache/state.txt; ls -A ~");
        assert!(
            second.success() && second.stdout.contains(&token),
            "[{r}] second run reads what the first wrote:{second}"
        );
        assert!(
            !second.stdout.contains(".ssh") && !second.stdout.contains(".netrc"),
            "[{r}] the kept home holds nothing of the victim's home:{second}"
        );
        let netrc = fx.inside(
            &["--home", &state_s],
            &format!("cat {}; echo \"rc=$?\"", q(fx.home_path(".netrc"))),
        );
        assert!(
            !netrc.has(&fx.credential(".netrc")) && netrc.stdout.contains("rc=1"),
            "[{r}] with --home, the victim's .netrc is still unreadable:{netrc}"
        );
    }
}

/// Host secrets under /etc (/etc/shadow): root reads them outside; inside the file is masked
/// (empty or unreadable) for every runner.
#[test]
fn host_secrets_under_etc_are_masked() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = "cat /etc/shadow; echo \"rc=$?\"";
        let out = fx.outside(script);
        if r.is_root() {
            assert!(
                out.stdout.contains("root:") && out.stdout.contains("rc=0"),
                "[{r}] outside: root reads /etc/shadow (proves the attack):{out}"
            );
        } else {
            // An ordinary user cannot read it outside either; inside it must stay that way.
            assert!(
                !out.stdout.contains("root:"),
                "[{r}] outside: /etc/shadow is root's:{out}"
            );
        }
        let inn = fx.inside(&[], script);
        assert!(
            inn.stdout.contains("rc=")
                && !inn.stdout.contains("root:")
                && !inn.stdout.contains(&format!("{TEST_USER}:")),
            "[{r}] inside: /etc/shadow must be masked:{inn}"
        );
    }
}

/// `cd ~ && keepout run ...` (or a repository's `sub -> ..` symlink that lands there) would bind
/// the whole home as the project. keepout refuses a project or --ro/--rw path that is, or
/// contains, the home directory, and the attack that works outside is not attempted.
#[test]
fn the_home_directory_cannot_be_the_project() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let key = fx.credential(".ssh/id_ed25519");
        let out = fx.outside("cd \"$HOME\" && cat .ssh/id_ed25519");
        assert!(
            out.has(&key),
            "[{r}] outside: the key is readable from the home (proves the attack):{out}"
        );

        let home = fx.home.display().to_string();
        for extra in [
            vec!["--project", home.as_str()],
            vec!["--ro", home.as_str()],
            vec!["--rw", home.as_str()],
        ] {
            let inn = fx.inside(&extra, "cat \"$HOME/.ssh/id_ed25519\"");
            assert_eq!(
                inn.code,
                Some(125),
                "[{r}] {extra:?} is refused with keepout's error code:{inn}"
            );
            assert!(
                inn.has("home directory") && !inn.has(&key),
                "[{r}] {extra:?}: says why, leaks nothing:{inn}"
            );
        }
        // A symlink in the project that leads to the home: cd through it, then run.
        std::os::unix::fs::symlink(&fx.home, fx.project.join("up")).unwrap();
        let inn = fx.inside_argv(
            &["--project", &format!("{}/up", fx.project.display())],
            &["cat", ".ssh/id_ed25519"],
        );
        assert_eq!(
            inn.code,
            Some(125),
            "[{r}] a project reached through a symlink to the home is refused:{inn}"
        );
        assert!(!inn.has(&key), "[{r}] nothing leaked:{inn}");
    }
}
