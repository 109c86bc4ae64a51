//! A12: escape by path tricks: a symlink in the project pointing at the victim's key, `..`
//! from the project, /proc/self/root, /proc/1/root and /proc/1/cwd; a project whose .git/hooks
//! is a symlink (keepout cannot pin it read-only, so it refuses to run).

use super::harness::*;

/// `evil -> <home>/.ssh/id_ed25519` in the project: reading through it yields the key outside,
/// fails inside.
#[test]
fn symlink_in_project_to_ssh_key() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let key = fx.home_path(".ssh/id_ed25519");
        let secret = fx.credential(".ssh/id_ed25519");
        let plant = fx.outside(&format!(
            "ln -s {} evil && ln -s {} evil-home",
            q(&key),
            q(fx.home.display().to_string())
        ));
        assert!(plant.success(), "[{r}] planting the symlinks:{plant}");
        let script = "cat evil; echo \"key=$?\"; cat evil-home/.netrc; echo \"netrc=$?\"";

        let out = fx.outside(script);
        assert!(
            out.stdout.contains(&secret) && out.stdout.contains(&fx.credential(".netrc")),
            "[{r}] outside: reading through the symlinks yields the key and .netrc (proves the attack):{out}"
        );

        let inn = fx.inside(&[], script);
        assert!(
            !inn.has(&secret)
                && !inn.has(&fx.credential(".netrc"))
                && inn.stdout.contains("key=1")
                && inn.stdout.contains("netrc=1"),
            "[{r}] inside: reading through the symlinks must fail:{inn}"
        );
    }
}

/// Other ways to name the victim's home from inside: `..` from the project, /proc/self/root,
/// /proc/1/root, /proc/1/cwd. Each reads .netrc outside; each fails inside.
#[test]
fn proc_root_cwd_and_dotdot_paths_fail() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let secret = fx.credential(".netrc");
        let netrc = fx.home_path(".netrc");
        let depth = fx.project.components().count() - 1;
        let dotdot = format!(
            "{}{}",
            "../".repeat(depth + 2),
            netrc.trim_start_matches('/')
        );
        let rel_from_project = "../home/.netrc";
        // Some hosts protect their pid 1 even from root (e.g. a VM agent as init).
        let host_init_open = std::fs::read_dir("/proc/1/root").is_ok();
        // (path, can it be shown to work outside?)
        let paths = [
            (format!("/proc/self/root{netrc}"), true),
            (dotdot, true),
            (rel_from_project.to_string(), true),
            (format!("/proc/$$/root{netrc}"), true),
            // Outside, /proc/1 is the host's init: root can go through it (its cwd is /), an
            // ordinary user cannot (and /proc/1/cwd only leads to the home when init's cwd is /);
            // where the host refuses even root, the outside half is skipped.
            (
                format!("/proc/1/root{netrc}"),
                r.is_root() && host_init_open,
            ),
            (
                format!("/proc/1/cwd{netrc}"),
                r.is_root()
                    && host_init_open
                    && std::fs::read_link("/proc/1/cwd")
                        .is_ok_and(|c| c == std::path::Path::new("/")),
            ),
            // Inside, pid 1 is the sandbox's init, whose cwd is the project.
            (format!("/proc/1/cwd/{rel_from_project}"), false),
        ];
        for (path, provable) in &paths {
            let script = format!("cat \"{path}\"; echo \"rc=$?\"");
            if *provable {
                let out = fx.outside(&script);
                assert!(
                    out.stdout.contains(&secret),
                    "[{r}] outside: {path} reads .netrc (proves the attack):{out}"
                );
            }
            let inn = fx.inside(&[], &script);
            assert!(
                !inn.has(&secret) && inn.stdout.contains("rc=") && !inn.stdout.contains("rc=0"),
                "[{r}] inside: {path} must not reach the victim's .netrc:{inn}"
            );
        }
    }
}

/// A project whose .git/hooks is a symlink (here into the victim's home, where anything can
/// be planted): outside, a hook written through it lands outside the project; keepout refuses
/// to run such a project (exit 125, a message naming the symlink).
#[test]
fn symlinked_git_hooks_refused() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let elsewhere = fx.mkdir("home/hooks-elsewhere");
        let setup = fx.outside(&format!(
            "rm -rf .git/hooks && ln -s {} .git/hooks",
            q(elsewhere.display().to_string())
        ));
        assert!(setup.success(), "[{r}] making .git/hooks a symlink:{setup}");
        let script = "echo 'echo PWNED' > .git/hooks/pre-commit; echo \"rc=$?\"";

        let out = fx.outside(script);
        assert!(
            out.stdout.contains("rc=0") && elsewhere.join("pre-commit").exists(),
            "[{r}] outside: the write goes through the symlink (proves the attack surface):{out}"
        );
        std::fs::remove_file(elsewhere.join("pre-commit")).unwrap();

        let inn = fx.inside(&[], script);
        assert_eq!(
            inn.code,
            Some(125),
            "[{r}] inside: keepout refuses with 125:{inn}"
        );
        assert!(
            inn.stderr.contains("symlink") && !inn.stdout.contains("rc="),
            "[{r}] inside: the message names the symlink and nothing ran:{inn}"
        );
        assert!(
            !elsewhere.join("pre-commit").exists(),
            "[{r}] inside: nothing was written through the symlink:{inn}"
        );
    }
}
