//! A14: git, anywhere in the tree. Nested clones, bare repositories, gitdir pointers, symlinks
//! inside a git directory and index flags that hide a change: each is first shown to work
//! without the sandbox (the maintainer's later `git status` or `git fetch` really runs or hides
//! it), then shown to fail with keepout: blocked inside, or undone and reported before
//! `keepout run` returns. Plus ordinary work: commits in a repository with a submodule.

use super::harness::*;

/// On a fresh fixture, `attack` runs outside and the maintainer's `later` action proves it
/// (`proved`); on another fresh fixture it runs inside keepout and `later` must find nothing
/// (`proved` false). `setup` prepares each fixture (outside, as the runner). Returns the inside
/// run's output and the fixture, for more checks.
pub fn proven_then_stopped(
    r: &Runner,
    setup: &dyn Fn(&Fixture) -> String,
    attack: &dyn Fn(&Fixture) -> String,
    later: &dyn Fn(&Fixture) -> String,
    proved: &dyn Fn(&Fixture, &Output) -> bool,
) -> (Fixture, Output) {
    let fx = Fixture::new(r);
    let s = fx.outside(&setup(&fx));
    assert!(s.success(), "[{r}] setup:{s}");
    let out = fx.outside(&attack(&fx));
    let after = fx.outside(&later(&fx));
    assert!(
        proved(&fx, &after),
        "[{r}] outside: the maintainer's later action runs or hides what the attack left (proves the attack)\n attack:{out}\n later:{after}"
    );
    drop(fx);

    let fx = Fixture::new(r);
    let s = fx.outside(&setup(&fx));
    assert!(s.success(), "[{r}] setup:{s}");
    let inn = fx.inside(&[], &attack(&fx));
    let after = fx.outside(&later(&fx));
    assert!(
        !proved(&fx, &after),
        "[{r}] inside: after keepout run, the maintainer's later action must find nothing of the attack\n inside:{inn}\n later:{after}"
    );
    (fx, inn)
}

fn nothing(_: &Fixture) -> String {
    "true".into()
}

/// The marker a planted command creates, outside the project (the sandbox cannot reach it).
pub fn marker(fx: &Fixture) -> String {
    fx.root.join("PWNED").display().to_string()
}

/// Did a planted command run (its marker exists)?
pub fn marked(fx: &Fixture, _: &Output) -> bool {
    fx.root.join("PWNED").exists()
}

const GIT: &str = "git -c user.name=t -c user.email=t@t.invalid";

/// A nested clone's config and hooks: changed in place (append), replaced (rename and write)
/// and added to. Pinned read-only inside, so the host's `git status` there runs nothing.
#[test]
fn nested_repository_config_and_hooks() {
    for r in runners() {
        let setup = |_: &Fixture| {
            format!("git init -q vendor/lib && {GIT} -C vendor/lib commit -q --allow-empty -m x")
        };
        let attack = |fx: &Fixture| {
            let m = marker(fx);
            format!(
                "printf '[core]\\n\\tfsmonitor = \"touch {m}; false\"\\n' >> vendor/lib/.git/config; echo append=$?
mv vendor/lib/.git/config vendor/lib/.git/config.old && printf '[core]\\n\\tfsmonitor = \"touch {m}; false\"\\n' > vendor/lib/.git/config; echo replace=$?
printf '#!/bin/sh\\ntouch {m}\\n' > vendor/lib/.git/hooks/pre-commit && chmod +x vendor/lib/.git/hooks/pre-commit; echo hook=$?
true"
            )
        };
        let later = |_: &Fixture| {
            format!("cd vendor/lib && git status --short; {GIT} commit -q --allow-empty -m later")
        };
        let (fx, inn) = proven_then_stopped(&r, &setup, &attack, &later, &marked);
        assert!(
            inn.has("append=") && !inn.has("append=0") && !inn.has("hook=0"),
            "[{r}] inside: the writes fail:{inn}"
        );
        assert!(
            read(&fx.project.join("vendor/lib/.git/config"))
                .is_some_and(|c| !c.contains("fsmonitor")),
            "[{r}] the nested config is unchanged:{inn}"
        );
    }
}

/// A repository planted at depth: git in that directory would run its fsmonitor. Moved aside.
#[test]
fn planted_repository_at_depth() {
    for r in runners() {
        let attack = |fx: &Fixture| {
            format!(
                "mkdir -p a/b/c && git init -q a/b/c && git -C a/b/c config core.fsmonitor 'touch {}; false'",
                marker(fx)
            )
        };
        let later = |_: &Fixture| "cd a/b/c && git status --short".to_string();
        let (fx, inn) = proven_then_stopped(&r, &nothing, &attack, &later, &marked);
        assert!(
            inn.stderr.contains("a/b/c/.git") && inn.stderr.contains("moved it to"),
            "[{r}] keepout names what it moved aside:{inn}"
        );
        assert!(!fx.project.join("a/b/c/.git").exists());
    }
}

/// A bare repository (git's default safe.bareRepository=all opens one in any directory), made
/// non-bare with a work tree so that `git status` in it runs its fsmonitor. Moved aside.
#[test]
fn planted_bare_repository() {
    for r in runners() {
        let attack = |fx: &Fixture| {
            format!(
                "git init -q --bare sub/evil.git && git -C sub/evil.git config core.bare false \
                 && git -C sub/evil.git config core.worktree .. \
                 && git -C sub/evil.git config core.fsmonitor 'touch {}; false'",
                marker(fx)
            )
        };
        let later = |_: &Fixture| "cd sub/evil.git && git status --short".to_string();
        let (_fx, inn) = proven_then_stopped(&r, &nothing, &attack, &later, &marked);
        assert!(inn.stderr.contains("sub/evil.git"), "[{r}] named:{inn}");
    }
}

/// A `.git` file pointing at a repository elsewhere in the tree (a linked worktree's or a
/// submodule's pointer), and a `commondir` planted in the project's own `.git` (git then reads
/// the configuration of the directory it names).
#[test]
fn planted_gitdir_pointer_and_commondir() {
    for r in runners() {
        let attack = |fx: &Fixture| {
            format!(
                "cp -R .git .evil && git --git-dir=.evil config core.fsmonitor 'touch {}; false' \
                 && mkdir -p w && printf 'gitdir: ../.evil\\n' > w/.git && echo ../.evil > .git/commondir",
                marker(fx)
            )
        };
        let later = |_: &Fixture| "git status --short; cd w && git status --short".to_string();
        let (fx, _inn) = proven_then_stopped(&r, &nothing, &attack, &later, &marked);
        assert!(!fx.project.join(".git/commondir").exists());
        assert!(!fx.project.join("w/.git").exists());
    }
}

/// A symlink inside `.git`: the maintainer's next `git fetch` writes FETCH_HEAD through it,
/// into a file of their home. Moved aside after the run.
#[test]
fn symlink_inside_git_dir() {
    for r in runners() {
        let attack = |fx: &Fixture| format!("ln -s {} .git/FETCH_HEAD", q(fx.home_path(".bashrc")));
        let later = |_: &Fixture| "git fetch -q . 2>&1; true".to_string();
        let clobbered = |fx: &Fixture, _: &Output| {
            read(&fx.home.join(".bashrc")).is_none_or(|c| !c.contains("the victim's .bashrc"))
        };
        let (fx, inn) = proven_then_stopped(&r, &nothing, &attack, &later, &clobbered);
        assert!(
            inn.stderr.contains(".git/FETCH_HEAD"),
            "[{r}] keepout names the symlink it moved aside:{inn}"
        );
        assert!(
            fx.project.join(".git/FETCH_HEAD").exists(),
            "git fetch wrote its own"
        );
    }
}

/// Index flags that hide a change: skip-worktree and assume-unchanged on files the run
/// modified. Outside, `git status` shows nothing; after keepout, it shows both changes.
#[test]
fn index_flags_that_hide_changes() {
    for r in runners() {
        let setup = |_: &Fixture| {
            format!("echo 'def test(): pass' > conftest.py && git add conftest.py && {GIT} commit -qm c")
        };
        let attack = |_: &Fixture| {
            "echo 'import os' >> conftest.py && echo evil >> README.md \
             && git update-index --skip-worktree README.md && git update-index --assume-unchanged conftest.py; echo flags=$?"
                .to_string()
        };
        let later = |_: &Fixture| "git status --porcelain".to_string();
        let hidden = |_: &Fixture, o: &Output| !o.stdout.contains("README.md");
        let (fx, inn) = proven_then_stopped(&r, &setup, &attack, &later, &hidden);
        assert!(inn.has("flags=0"), "[{r}] inside, git sets the flags:{inn}");
        let status = fx.outside("git status --porcelain");
        assert!(
            status.stdout.contains(" M README.md") && status.stdout.contains(" M conftest.py"),
            "[{r}] both changes show:{status}"
        );
        assert!(
            inn.stderr.contains("skip-worktree on README.md")
                && inn.stderr.contains("assume-unchanged on conftest.py"),
            "[{r}] keepout says what it cleared:{inn}"
        );
    }
}

/// A fixture whose project has a submodule `sub`, cloned from a local repository beside it.
fn with_a_submodule(r: &Runner) -> Fixture {
    let fx = Fixture::new(r);
    let origin = fx.mkdir("origin");
    let setup = fx.outside(&format!(
        "git init -q {o} && {GIT} -C {o} commit -q --allow-empty -m origin \
         && git -c protocol.file.allow=always submodule add -q {o} sub && {GIT} commit -qm sub",
        o = q(origin.display().to_string())
    ));
    assert!(setup.success(), "[{r}] setup:{setup}");
    fx
}

/// Ordinary work: in a repository with a submodule, `git status` and commits work inside, in
/// the superproject and in the submodule (as root too: the submodule's `.git` pointer is
/// idmapped like the tree, so git sees no "dubious ownership"), and the host sees the commits.
#[test]
fn commits_in_a_repository_with_a_submodule() {
    for r in runners() {
        let fx = with_a_submodule(&r);
        let inn = fx.inside(
            &[],
            &format!(
                "set -e; git status --short; echo x > new.txt && git add new.txt && {GIT} commit -qm inside
                 echo y > sub/f && git -C sub add f && {GIT} -C sub commit -qm insub
                 git status --short; echo done"
            ),
        );
        assert!(
            inn.success() && inn.stdout.contains("done") && !inn.has("dubious"),
            "[{r}] git works inside:{inn}"
        );
        let log = fx.outside("git log --oneline -1; git -C sub log --oneline -1");
        assert!(
            log.stdout.contains("inside") && log.stdout.contains("insub"),
            "[{r}] the host sees both commits:{log}"
        );
        assert!(
            !inn.stderr.contains("moved it to"),
            "[{r}] ordinary git work leaves nothing to move aside:{inn}"
        );
    }
}

/// A hooks directory inside the tree that the repository's config names (`core.hooksPath`, as
/// husky sets `.husky/_`, which its own .gitignore hides from `git status`), and a file the
/// config includes: both are pinned like `.git/hooks` and `.git/config`.
#[test]
fn hooks_path_and_included_config_inside_the_tree() {
    for r in runners() {
        let setup = |_: &Fixture| {
            "mkdir -p .husky/_ && printf '*\\n' > .husky/_/.gitignore && git config core.hooksPath .husky/_ \
             && printf '[user]\\n\\tname = t\\n' > .gitconfig.local && git config include.path ../.gitconfig.local"
                .to_string()
        };
        let attack = |fx: &Fixture| {
            let m = marker(fx);
            format!(
                "printf '#!/bin/sh\\ntouch {m}\\n' > .husky/_/pre-commit && chmod +x .husky/_/pre-commit; echo hook=$?
                 printf '[core]\\n\\tfsmonitor = \"touch {m}; false\"\\n' >> .gitconfig.local; echo include=$?"
            )
        };
        let later =
            |_: &Fixture| format!("git status --short; {GIT} commit -q --allow-empty -m later");
        let (_fx, inn) = proven_then_stopped(&r, &setup, &attack, &later, &marked);
        assert!(
            inn.has("hook=") && !inn.has("hook=0") && !inn.has("include=0"),
            "[{r}] inside, both writes fail:{inn}"
        );
    }
}

/// A planted repository under a directory whose name holds terminal sequences (erase the line,
/// move up): keepout's message about it must not be erased or rewritten on the maintainer's
/// terminal, so the name is printed with its control characters escaped.
#[test]
fn names_with_escape_sequences_are_printed_escaped() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let inn = fx.inside(
            &[],
            "d=$(printf 'x\\033[2K\\033[1A') && mkdir -p \"$d\" && git init -q \"$d\"",
        );
        assert!(inn.success(), "[{r}]{inn}");
        assert!(
            !inn.stderr.contains('\x1b') && inn.stderr.contains("x\\e[2K\\e[1A/.git"),
            "[{r}] the name is shown escaped:{inn}"
        );
    }
}

/// A `--rw` directory is a tree of the host's too: a repository there gets the same pins, and
/// what the run plants there is moved aside.
#[test]
fn rw_directories_are_protected_like_the_project() {
    for r in runners() {
        for inside in [false, true] {
            let fx = Fixture::new(&r);
            let other = fx.mkdir("other");
            let o = q(other.display().to_string());
            let s = fx.outside(&format!("git init -q {o}"));
            assert!(s.success(), "{s}");
            let m = marker(&fx);
            let attack = format!(
                "printf '[core]\\n\\tfsmonitor = \"touch {m}; false\"\\n' >> {o}/.git/config; echo config=$?
                 mkdir -p {o}/sub && git init -q {o}/sub && git -C {o}/sub config core.fsmonitor 'touch {m}; false'; echo sub=$?"
            );
            let run = if inside {
                fx.inside(&["--rw", &other.display().to_string()], &attack)
            } else {
                fx.outside(&attack)
            };
            let later = fx.outside(&format!(
                "git -C {o} status --short; git -C {o}/sub status --short"
            ));
            if !inside {
                assert!(
                    marked(&fx, &later),
                    "[{r}] outside: git there runs it (proves the attack):{run}{later}"
                );
                continue;
            }
            assert!(
                run.has("config=") && !run.has("config=0"),
                "[{r}] the config is pinned:{run}"
            );
            assert!(
                !marked(&fx, &later),
                "[{r}] nothing runs later:{run}{later}"
            );
            assert!(
                run.stderr.contains("other/sub/.git"),
                "[{r}] the planted repository is named:{run}"
            );
        }
    }
}

/// Ordinary work under `--review`: commits in a repository with a submodule go aside, and
/// `review apply` (git's control entries left alone, its objects and refs applied) gives the
/// host both commits.
#[test]
fn commits_with_a_submodule_under_review() {
    for r in runners() {
        let fx = with_a_submodule(&r);
        let inn = fx.inside(
            &["--review"],
            &format!(
                "set -e; echo x > new.txt && git add new.txt && {GIT} commit -qm inside
                 echo y > sub/f && git -C sub add f && {GIT} -C sub commit -qm insub; echo done"
            ),
        );
        assert!(
            inn.has("done") && !inn.has("dubious"),
            "[{r}] git works under review:{inn}"
        );
        let apply = fx.keepout(&["review", "apply"]);
        assert!(apply.success(), "[{r}] apply:{apply}");
        let log =
            fx.outside("git log --oneline -1; git -C sub log --oneline -1; git status --short");
        assert!(
            log.stdout.contains("inside") && log.stdout.contains("insub"),
            "[{r}] the host has both commits after apply:{log}{apply}"
        );
    }
}
