//! Workspaces and layers (`keepout try`, `keepout shell`, `keepout workspace`), with real git
//! against local repositories, as root and as an unprivileged user. The workspaces live under
//! the fixture's fake home (`~/.local/share/keepout`).

use super::harness::*;

/// A bare clone of the fixture's project, owned by the runner; returns its path.
pub(super) fn bare_repo(fx: &Fixture) -> String {
    let repo = fx.root.join("repro.git");
    let out = fx.outside(&format!(
        "git clone -q --bare . {}",
        q(repo.display().to_string())
    ));
    assert!(out.success(), "[{}] bare clone:{out}", fx.runner);
    repo.display().to_string()
}

/// A new workspace `base`, set up by `script` (sh -c), frozen as the layer `layer`.
fn layer_from_new_workspace(fx: &Fixture, script: &str, layer: &str) {
    let r = &fx.runner;
    let setup = fx.keepout(&["shell", "base", "--new", "--", "sh", "-c", script]);
    assert!(setup.success(), "[{r}] set-up:{setup}");
    let snap = fx.keepout(&["workspace", "snapshot", "base", layer]);
    assert!(snap.success(), "[{r}] snapshot:{snap}");
}

fn store_dir(fx: &Fixture) -> std::path::PathBuf {
    fx.home.join(".local/share/keepout")
}

/// try clones inside the sandbox (the caller's git configuration never applies: outside, a
/// rewrite in ~/.gitconfig breaks the same clone), runs the command in the clone, and a later
/// `shell` finds the home as the first run left it. The workspace never shows the real home.
#[test]
fn try_clones_inside_and_shell_comes_back() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let repo = bare_repo(&fx);
        // The caller's git configuration rewrites the source to nowhere: a clone that reads it
        // (one run as the caller on the host) fails.
        let gitconfig = fx.home.join(".gitconfig");
        write_file(
            &gitconfig,
            &format!("[url \"file:///nonexistent/\"]\n\tinsteadOf = {repo}\n"),
            0o644,
        );
        fx.give_to_runner(&gitconfig);
        let outside = fx.outside(&format!(
            "git clone -q {} {}/outside-clone",
            q(&repo),
            q(fx.root.display().to_string())
        ));
        assert!(
            !outside.success(),
            "[{r}] the caller's config applies outside:{outside}"
        );

        let out = fx.keepout(&[
            "try",
            &repo,
            "--name",
            "bug-1",
            "--",
            "sh",
            "-c",
            "pwd; cat README.md; echo kept > ~/left-here; cat ~/.netrc 2>&1; ls ~",
        ]);
        assert!(out.success(), "[{r}] try:{out}");
        assert!(out.stdout.contains("hello"), "[{r}] the clone's file:{out}");
        assert!(
            out.stdout.lines().next() == Some(&format!("{}/bug-1", fx.home.display())),
            "[{r}] runs in the clone, ~/bug-1 (--name's):{out}"
        );
        assert!(
            !out.stdout.contains(&fx.credential(".netrc")),
            "[{r}] the real ~/.netrc is not in the workspace:{out}"
        );

        let again = fx.keepout(&["shell", "bug-1", "--", "sh", "-c", "pwd; cat ~/left-here"]);
        assert!(again.success(), "[{r}] shell:{again}");
        assert!(
            again.stdout.contains("kept"),
            "[{r}] the home as left:{again}"
        );

        let list = fx.keepout(&["workspace", "list", "--json"]);
        let json: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
        assert_eq!(json["workspaces"][0]["name"], "bug-1", "[{r}] {json}");
        assert_eq!(
            json["workspaces"][0]["source"],
            repo.as_str(),
            "[{r}] {json}"
        );
        assert!(json["workspaces"][0]["last_used"].as_u64().unwrap() > 0);

        let rm = fx.keepout(&["workspace", "rm", "bug-1"]);
        assert!(rm.success(), "[{r}] rm:{rm}");
        assert!(
            !store_dir(&fx).join("workspaces/bug-1").exists(),
            "[{r}] removed"
        );
    }
}

/// A source that is not a git repository, or does not exist, is a clear error and leaves no
/// half-made workspace.
#[test]
fn a_failed_clone_leaves_nothing() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let not_repo = fx.mkdir("not-a-repo");
        let out = fx.keepout(&["try", &not_repo.display().to_string(), "--", "true"]);
        assert!(!out.success(), "[{r}] not a repository:{out}");
        assert!(
            out.stderr.contains("no workspace was kept"),
            "[{r}] says so:{out}"
        );
        let missing = fx.keepout(&["try", "/nonexistent/repo.git"]);
        assert!(
            !missing.success() && missing.stderr.contains("no such directory"),
            "[{r}] missing:{missing}"
        );
        let ssh = fx.keepout(&["try", "git@github.com:a/b.git"]);
        assert!(
            !ssh.success() && ssh.stderr.contains("HTTPS"),
            "[{r}] ssh refused:{ssh}"
        );
        let left: Vec<_> = std::fs::read_dir(store_dir(&fx).join("workspaces"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "[{r}] nothing left behind: {left:?}");
        let shell = fx.keepout(&["shell", "nope", "--", "true"]);
        assert!(
            !shell.success() && shell.stderr.contains("--new"),
            "[{r}] an unknown workspace is an error with the way out:{shell}"
        );
    }
}

/// snapshot freezes a workspace as a layer; a workspace --from it sees the layer's files, and
/// its writes, changes and deletions never reach the layer; layers stack; rm --layers removes
/// only what nothing uses.
#[test]
fn layers_are_read_only_and_stack() {
    for r in runners() {
        let fx = Fixture::new(&r);
        layer_from_new_workspace(
            &fx,
            "mkdir -p ~/.local/bin && printf 'echo tool v1\\n' > ~/.local/bin/tool && echo data > ~/cache",
            "py-base",
        );
        let layer_home = store_dir(&fx).join("layers/py-base/home");
        assert_eq!(read(&layer_home.join("cache")).as_deref(), Some("data\n"));

        let use_it = fx.keepout(&[
                "shell",
                "scratch",
                "--from",
                "py-base",
                "--",
                "sh",
                "-c",
                "sh ~/.local/bin/tool && cat ~/cache && echo changed > ~/cache && rm ~/.local/bin/tool && echo mine > ~/new && pwd",
            ],
        );
        assert!(use_it.success(), "[{r}] on the layer:{use_it}");
        assert!(
            use_it.stdout.contains("tool v1") && use_it.stdout.contains("data"),
            "[{r}] the layer's files are there:{use_it}"
        );
        // The layer, byte for byte as it was.
        assert_eq!(
            read(&layer_home.join("cache")).as_deref(),
            Some("data\n"),
            "[{r}]"
        );
        assert_eq!(
            read(&layer_home.join(".local/bin/tool")).as_deref(),
            Some("echo tool v1\n"),
            "[{r}]"
        );
        assert!(!layer_home.join("new").exists(), "[{r}]");
        // The workspace keeps its own changes; another workspace on the layer does not see them.
        let back = fx.keepout(&[
            "shell",
            "scratch",
            "--",
            "sh",
            "-c",
            "cat ~/cache ~/new; ls ~/.local/bin",
        ]);
        assert!(
            back.stdout.contains("changed")
                && back.stdout.contains("mine")
                && !back.stdout.contains("tool"),
            "[{r}] the workspace's own changes stay:{back}"
        );
        let other = fx.keepout(&[
            "shell", "other", "--from", "py-base", "--", "cat", "../cache",
        ]);
        assert_eq!(
            other.stdout, "data\n",
            "[{r}] a second workspace sees the layer:{other}"
        );

        // Stacking: a snapshot of a workspace on a layer is a layer on that layer.
        let snap2 = fx.keepout(&["workspace", "snapshot", "scratch", "scratch-l"]);
        assert!(snap2.success(), "[{r}] second snapshot:{snap2}");
        let top = fx.keepout(&[
            "shell",
            "top",
            "--from",
            "scratch-l",
            "--",
            "sh",
            "-c",
            "cat ~/cache ~/new; ls ~/.local/bin | wc -l",
        ]);
        assert_eq!(
            top.stdout, "changed\nmine\n0\n",
            "[{r}] stacked layers, whiteouts included:{top}"
        );

        // Layers in use stay; unused ones go with --layers.
        let busy = fx.keepout(&["workspace", "rm", "base", "other", "--layers"]);
        assert!(busy.success(), "[{r}] rm:{busy}");
        assert!(
            layer_home.exists(),
            "[{r}] py-base is still used by scratch-l's chain"
        );
        let all = fx.keepout(&["workspace", "rm", "scratch", "top", "--layers"]);
        assert!(
            all.stdout.contains("removed layer scratch-l")
                && all.stdout.contains("removed layer py-base"),
            "[{r}] unused layers removed:{all}"
        );
        let list = fx.keepout(&["workspace", "list"]);
        assert!(list.stdout.contains("no workspaces yet"), "[{r}] {list}");
    }
}

/// `keepout shell` is interactive bash on a terminal of its own, with a prompt that names the
/// workspace (run under `script`, a real pseudo-terminal).
#[test]
fn shell_is_interactive_with_a_named_prompt() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let make = fx.keepout(&["shell", "dbg", "--new", "--", "true"]);
        assert!(make.success(), "[{r}] {make}");
        let line = format!("{} shell dbg", keepout_bin());
        let out = with_input(
            fx.command(&["script", "-qec", &line, "/dev/null"]),
            "echo inside-$KEEPOUT_WORKSPACE\nexit 3\n",
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("(keepout:dbg)"), "[{r}] prompt:\n{text}");
        assert!(text.contains("inside-dbg"), "[{r}] ran the input:\n{text}");
        assert_eq!(
            out.status.code(),
            Some(3),
            "[{r}] the shell's exit status:\n{text}"
        );
    }
}

/// Where overlayfs is refused (forced here with KEEPOUT_NO_OVERLAY=1), a workspace --from a
/// layer starts on a copy of it, says so, and still never changes the layer.
#[test]
fn without_overlayfs_a_workspace_starts_on_a_copy() {
    for r in runners() {
        let fx = Fixture::new(&r);
        layer_from_new_workspace(&fx, "echo data > ~/cache", "lay");
        let out = fx.outside(&format!(
            "KEEPOUT_NO_OVERLAY=1 {} shell c --from lay -- sh -c 'cat ~/cache; echo changed > ~/cache'",
            keepout_bin()
        ));
        assert!(out.success(), "[{r}] {out}");
        assert_eq!(out.stdout, "data\n", "[{r}] the layer's files:{out}");
        assert!(
            out.stderr.contains("starts on a copy of layer lay"),
            "[{r}] says so:{out}"
        );
        let layer_file = store_dir(&fx).join("layers/lay/home/cache");
        assert_eq!(
            read(&layer_file).as_deref(),
            Some("data\n"),
            "[{r}] layer unchanged"
        );
        let list = fx.keepout(&["workspace", "list", "--json"]);
        let json: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
        let c = json["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "c")
            .cloned()
            .unwrap();
        assert_eq!(c["copied_from"], "lay", "[{r}] {json}");
        assert!(c["layer"].is_null(), "[{r}] {json}");
        let back = fx.keepout(&["shell", "c", "--", "cat", "../cache"]);
        assert_eq!(back.stdout, "changed\n", "[{r}] its own copy:{back}");
    }
}

/// An https:// source is cloned through keepout's proxy, with the source's host (and only it)
/// allowed. No git server is reachable from these machines, so the test clones a PyPI page:
/// PyPI itself answers "not found", so the request got out to the named host through the
/// proxy; and a failed clone keeps nothing.
#[test]
fn an_https_clone_reaches_its_host_through_the_proxy() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let probe = fx.outside(&format!(
            "{PYTHON} -c \"import urllib.request; urllib.request.urlopen('https://pypi.org/simple/six/', timeout=20); print('REACHED')\""
        ));
        if !probe.stdout.contains("REACHED") {
            note(&format!(
                "[{r}] this machine does not reach PyPI; skipping:{probe}"
            ));
            return;
        }
        let out = fx.keepout(&["try", "https://pypi.org/simple/six/", "--", "true"]);
        assert!(!out.success(), "[{r}] not a git repository:{out}");
        assert!(
            out.stderr.contains("network: pypi.org only")
                && out
                    .stderr
                    .contains("repository 'https://pypi.org/simple/six/' not found"),
            "[{r}] git reached pypi.org through the proxy, which answered:{out}"
        );
        assert!(
            !out.stderr.contains("keepout: refused"),
            "[{r}] nothing refused on the way:{out}"
        );
        assert!(out.stderr.contains("no workspace was kept"), "[{r}] {out}");
    }
}

/// `try` plants decoy credentials in the new workspace's home (not the real ones: those stay
/// unreadable), and every read of them, in that run or a later `shell`, or through a layer made
/// from it, is reported; `--no-decoys` plants none.
#[test]
fn try_plants_decoys_and_reports_their_reads() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let repo = bare_repo(&fx);
        let out = fx.keepout(&["try", &repo, "--name", "d", "--", "cat", "../.netrc"]);
        assert!(out.success(), "[{r}] {out}");
        assert!(
            out.stdout.contains("keepout-decoy-") && !out.stdout.contains(&fx.credential(".netrc")),
            "[{r}] a decoy, not the real ~/.netrc:{out}"
        );
        assert!(
            out.stderr.contains("decoys read: ~/.netrc"),
            "[{r}] the read is reported:{out}"
        );
        let later = fx.keepout(&["shell", "d", "--", "cat", "../.ssh/id_ed25519"]);
        assert!(
            later.stderr.contains("decoys read: ~/.ssh/id_ed25519"),
            "[{r}] in a later shell too:{later}"
        );
        let quiet = fx.keepout(&["shell", "d", "--", "ls", "-a", ".."]);
        assert!(
            !quiet.stderr.contains("keepout: refused"),
            "[{r}] listing is not reading:{quiet}"
        );
        let snap = fx.keepout(&["workspace", "snapshot", "d", "dl"]);
        assert!(snap.success(), "[{r}] {snap}");
        let layered = fx.keepout(&["shell", "on-d", "--from", "dl", "--", "cat", "../.pypirc"]);
        assert!(
            layered.stderr.contains("decoys read: ~/.pypirc"),
            "[{r}] through a layer:{layered}"
        );
        let none = fx.keepout(&[
            "try",
            &repo,
            "--name",
            "n",
            "--no-decoys",
            "--",
            "ls",
            "-a",
            "..",
        ]);
        assert!(
            none.success() && !none.stdout.contains(".netrc"),
            "[{r}] --no-decoys:{none}"
        );
    }
}

/// A workspace on a layer is one sandbox at a time (two overlays on one upper directory are
/// not allowed): a second run joins the running one, as `docker exec` does: it names the first
/// run's process, shares its home (each sees what the other writes, at once) and its processes,
/// and gets nothing more than the first (its own --net does not apply). A joined interactive
/// shell on a real pty has a terminal `tty` names and SHELL bash. Removing the workspace
/// meanwhile is refused, naming the running process and how to stop it.
#[test]
fn a_second_run_of_a_layered_workspace_joins_the_first() {
    for r in runners() {
        let fx = Fixture::new(&r);
        layer_from_new_workspace(&fx, "true", "lay");
        let make = fx.keepout(&["shell", "w", "--from", "lay", "--", "true"]);
        assert!(make.success(), "[{r}] {make}");
        let first = Running::spawn(
            fx.command(&[
                keepout_bin(),
                "shell",
                "w",
                "--",
                "sh",
                "-c",
                "echo one > ~/one; sleep 6; cat ~/two",
            ]),
            format!("[{r}] first run"),
        );
        assert!(
            poll(std::time::Duration::from_secs(20), || store_dir(&fx)
                .join("workspaces/w/join.sock")
                .exists()),
            "[{r}] the first run serves joins"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        let second = fx.keepout(&[
            "shell",
            "w",
            "--net",
            "pypi",
            "--",
            "sh",
            "-c",
            "cat ~/one; echo two > ~/two; echo proxy=$HTTPS_PROXY; grep -l 'sleep' /proc/[0-9]*/cmdline >/dev/null && echo sees-the-first; exit 5",
        ]);
        assert_eq!(
            second.code,
            Some(5),
            "[{r}] the joined command's status:{second}"
        );
        assert!(
            second.stdout.contains("one\n") && second.stdout.contains("sees-the-first"),
            "[{r}] the same home and processes:{second}"
        );
        assert!(
            second.stdout.contains("proxy=\n") && second.stderr.contains("do not apply"),
            "[{r}] nothing more than the first (no network):{second}"
        );
        assert!(
            second.stderr.contains("joining its sandbox")
                && second.stderr.contains(&format!("pid {}", first.pid())),
            "[{r}] says so, naming the first run:{second}"
        );
        let joined_shell = super::pty::on_pty(
            &fx,
            &[("(keepout:w)", Some("echo SH=$SHELL T=$(tty); exit 4\n"))],
            &[keepout_bin(), "shell", "w"],
        );
        assert_eq!(joined_shell.code, Some(4), "[{r}] {joined_shell}");
        assert!(
            joined_shell.stdout.contains("T=/dev/pts/")
                && (joined_shell.stdout.contains("SH=/bin/bash")
                    || joined_shell.stdout.contains("SH=/usr/bin/bash")),
            "[{r}] a joined shell on a terminal of its own:{joined_shell}"
        );
        // Removing it meanwhile is refused, naming the run and how to stop it.
        let rm = fx.keepout(&["workspace", "rm", "w"]);
        assert!(
            !rm.success()
                && rm.stderr.contains(&format!("pid {}", first.pid()))
                && rm.stderr.contains(&format!("kill {}", first.pid())),
            "[{r}] in use:{rm}"
        );
        let first = first.wait();
        assert!(
            first.success() && first.stdout.contains("two"),
            "[{r}] the first run saw the second's write, and is unharmed:{first}"
        );
        assert!(
            !store_dir(&fx).join("workspaces/w/join.sock").exists(),
            "[{r}] no socket left after the run"
        );
    }
}

/// A layered workspace `w` whose first run (`sleep 600`) serves joins; end it with
/// [`end_first_run`].
fn first_run_to_join(fx: &Fixture) -> Running {
    let r = &fx.runner;
    layer_from_new_workspace(fx, "true", "lay");
    let make = fx.keepout(&["shell", "w", "--from", "lay", "--", "true"]);
    assert!(make.success(), "[{r}] {make}");
    let first = Running::spawn(
        fx.command(&[keepout_bin(), "shell", "w", "--", "sleep", "600"]),
        format!("[{r}] first run"),
    );
    assert!(
        poll(std::time::Duration::from_secs(20), || store_dir(fx)
            .join("workspaces/w/join.sock")
            .exists()),
        "[{r}] the first run serves joins"
    );
    first
}

/// SIGTERM the first run (keepout passes it on: the sandbox ends, and every process in it).
fn end_first_run(fx: &Fixture, first: Running) {
    assert!(
        signal(first.pid(), "TERM"),
        "[{}] stop the first run",
        fx.runner
    );
    let _ = first.wait();
}

/// The host pids of `sleep SECS` (not of a keepout whose command line names it).
fn sleeps(secs: &str) -> Vec<u32> {
    pids_with_arg(secs)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
        .collect()
}

/// A sleep's argument no other test uses (to find it among the host's processes).
fn unique_seconds() -> String {
    (1000 + u32::from_str_radix(&random_hex(2), 16).unwrap()).to_string()
}

/// A joined interactive shell that exits returns at once, although a background job it
/// started lives on in the sandbox (holding the joined terminal): the joining keepout stops
/// relaying keystrokes, passes the last output on and gives the maintainer's terminal back as
/// it found it; what is typed next goes to the maintainer's shell. (Before, it waited for every
/// holder of the joined terminal, until the sandbox ended, relaying keystrokes into it.)
/// `shell w -- sh -c 'sleep N & echo started'` returns too (there the kernel's hangup of the
/// joined session on its leader's exit ends the job, which shares its process group: it
/// returned before as well).
#[test]
fn a_joined_shell_returns_when_it_exits_while_its_background_job_lives_on() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let first = first_run_to_join(&fx);
        let secs = unique_seconds();
        let script = format!(
            "before=$(stty -g); {} shell w; code=$?; [ \"$(stty -g)\" = \"$before\" ] && echo TERMINAL-RESTORED; read line; echo \"GOT=$line\"; exit $code",
            keepout_bin()
        );
        let started = std::time::Instant::now();
        let joined = super::pty::on_pty(
            &fx,
            &[
                (
                    "(keepout:w)",
                    Some(&format!("sleep {secs} &\necho bye; exit 3\n")),
                ),
                ("TERMINAL-RESTORED", Some("typed-after\n")),
            ],
            &["/bin/sh", "-c", &script],
        );
        let took = started.elapsed();
        assert_eq!(joined.code, Some(3), "[{r}] the shell's status:{joined}");
        assert!(
            took < std::time::Duration::from_secs(15),
            "[{r}] returned in {took:?}:{joined}"
        );
        assert!(
            joined.stdout.contains("bye") && joined.stdout.contains("TERMINAL-RESTORED"),
            "[{r}] the last output passed on, the terminal as it was:{joined}"
        );
        assert!(
            joined.stdout.contains("GOT=typed-after"),
            "[{r}] what is typed next is the maintainer's shell's, not the sandbox's:{joined}"
        );
        assert!(
            !sleeps(&secs).is_empty(),
            "[{r}] the background job lives on in the sandbox"
        );
        let secs2 = unique_seconds();
        let started = std::time::Instant::now();
        let command = super::pty::on_pty(
            &fx,
            &[("started", Some(""))],
            &[
                keepout_bin(),
                "shell",
                "w",
                "--",
                "sh",
                "-c",
                &format!("sleep {secs2} & echo started"),
            ],
        );
        let took = started.elapsed();
        assert!(
            command.success() && took < std::time::Duration::from_secs(15),
            "[{r}] returned in {took:?}:{command}"
        );
        // Its output right up to its end comes whole (what is still on its way when it ends).
        let output = super::pty::on_pty(
            &fx,
            &[],
            &[
                keepout_bin(),
                "shell",
                "w",
                "--",
                "sh",
                "-c",
                "yes line | head -n 20000; echo END-OF-OUTPUT",
            ],
        );
        assert!(
            output.success()
                && output.stdout.matches("line").count() == 20000
                && output.stdout.contains("END-OF-OUTPUT"),
            "[{r}] the whole output ({} lines):{}",
            output.stdout.matches("line").count(),
            output.stderr
        );
        // A background job that never stops printing does not hold it either.
        let started = std::time::Instant::now();
        let chatty = super::pty::on_pty(
            &fx,
            &[("started", Some(""))],
            &[
                keepout_bin(),
                "shell",
                "w",
                "--",
                "sh",
                "-c",
                "setsid sh -c 'while :; do echo tick; sleep 0.01; done' & sleep 0.5; echo started",
            ],
        );
        let took = started.elapsed();
        assert!(
            chatty.success() && took < std::time::Duration::from_secs(15),
            "[{r}] returned in {took:?} though a job prints on:{chatty}"
        );
        end_first_run(&fx, first);
        assert!(
            poll(std::time::Duration::from_secs(5), || sleeps(&secs)
                .is_empty()),
            "[{r}] the background job ended with the sandbox"
        );
    }
}

/// A joined command gets its arguments as given: empty ones too, and a long one (50 KB, more
/// than the kernel hands over in one read with descriptors) whole. One longer than a join
/// takes (64 KiB) is refused, saying what to do. (Before, empty ones were dropped and a long
/// one was cut short, silently.)
#[test]
fn a_joined_command_gets_every_argument_whole() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let first = first_run_to_join(&fx);
        let empty = fx.keepout(&[
            "shell",
            "w",
            "--",
            "sh",
            "-c",
            "printf '[%s]' \"$@\"",
            "x",
            "",
            "a",
        ]);
        assert!(
            empty.success() && empty.stdout == "[][a]",
            "[{r}] the empty argument kept:{empty}"
        );
        let long = "y".repeat(50_000);
        let whole = fx.keepout(&[
            "shell",
            "w",
            "--",
            "sh",
            "-c",
            "printf %s \"$1\" | wc -c; printf %s \"$2\"",
            "x",
            &long,
            "after",
        ]);
        assert!(
            whole.success() && whole.stdout.trim() == "50000\nafter",
            "[{r}] the 50 KB argument whole, and the next:{}",
            whole.stderr
        );
        let too_long = "z".repeat(70_000);
        let refused = fx.keepout(&["shell", "w", "--", "echo", &too_long]);
        assert!(
            !refused.success()
                && refused.stderr.contains("64 KiB")
                && refused.stderr.contains("in a file"),
            "[{r}] refused, saying what to do:{}",
            refused.stderr
        );
        end_first_run(&fx, first);
    }
}

/// Without a terminal, a signal to the joining keepout goes on to its command (SIGTERM: the
/// command ends, the keepout's status says so), and a joining keepout killed outright takes its
/// command with it: nothing it started stays behind in the sandbox. (Before, the keepout died
/// and its command ran on.)
#[test]
fn a_joined_command_ends_with_the_joining_keepout() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let first = first_run_to_join(&fx);
        for sig in ["TERM", "KILL"] {
            let secs = unique_seconds();
            let joiner = Running::spawn(
                fx.command(&[keepout_bin(), "shell", "w", "--", "sleep", &secs]),
                format!("[{r}] joined sleep"),
            );
            assert!(
                poll(std::time::Duration::from_secs(20), || !sleeps(&secs)
                    .is_empty()),
                "[{r}] the joined sleep runs"
            );
            assert!(
                signal(joiner.pid(), sig),
                "[{r}] SIG{sig} the joining keepout"
            );
            assert!(
                poll(std::time::Duration::from_secs(5), || sleeps(&secs)
                    .is_empty()),
                "[{r}] SIG{sig}: the joined sleep is gone from the sandbox"
            );
            let joiner = joiner.wait();
            if sig == "TERM" {
                assert_eq!(
                    joiner.code,
                    Some(128 + 15),
                    "[{r}] the command's status (SIGTERM):{joiner}"
                );
            }
        }
        end_first_run(&fx, first);
    }
}

/// The workspaces (names) in the fixture's store, half-made ones included.
fn left_in_store(fx: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store_dir(fx).join("workspaces"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `--name` names the clone's directory too; `try --from` a layer that holds a clone of the
/// same repository at that place updates it (fetch and checkout of the source's HEAD, inside)
/// and says so; a layer whose directory there is another repository gets the clone beside it,
/// under a free name, which becomes the workspace's project.
#[test]
fn try_from_a_layer_that_holds_the_clone() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let repo = bare_repo(&fx);
        let named = fx.keepout(&["try", &repo, "--name", "bug-7", "--", "pwd"]);
        assert!(named.success(), "[{r}] {named}");
        assert_eq!(
            named.stdout.trim(),
            fx.home.join("bug-7").display().to_string(),
            "[{r}] --name is the clone's directory:{named}"
        );

        let first = fx.keepout(&["try", &repo, "--", "true"]);
        assert!(first.success(), "[{r}] {first}");
        let snap = fx.keepout(&["workspace", "snapshot", "repro", "with-clone"]);
        assert!(snap.success(), "[{r}] {snap}");
        // The source moves on after the layer was made.
        let push = fx.outside(&format!(
            "echo v2 > README.md && git commit -qam v2 && git push -q {} HEAD",
            q(&repo)
        ));
        assert!(push.success(), "[{r}] {push}");
        let again = fx.keepout(&[
            "try",
            "--from",
            "with-clone",
            &repo,
            "--",
            "sh",
            "-c",
            "pwd; cat README.md",
        ]);
        assert!(
            again.success(),
            "[{r}] the layer's clone is updated:{again}"
        );
        assert_eq!(
            again.stdout,
            format!("{}/repro\nv2\n", fx.home.display()),
            "[{r}] in ~/repro, at the source's HEAD:{again}"
        );
        assert!(
            again.stderr.contains("updating it"),
            "[{r}] says so:{again}"
        );

        // Another repository of the same name: cloned beside the layer's.
        let other = fx.mkdir("other/repro");
        let init = fx.outside(&format!(
            "cd {} && git init -q && echo other > OTHER && git add OTHER && git -c user.name=t -c user.email=t@t.invalid commit -qm o",
            q(other.display().to_string())
        ));
        assert!(init.success(), "[{r}] {init}");
        let beside = fx.keepout(&[
            "try",
            "--from",
            "with-clone",
            &other.display().to_string(),
            "--name",
            "repro",
            "--",
            "sh",
            "-c",
            "pwd; ls",
        ]);
        // `repro` is taken by the first workspace: refused before anything is cloned.
        assert!(
            !beside.success()
                && beside.stderr.contains("exists already")
                && !beside.stderr.contains("cloning"),
            "[{r}] {beside}"
        );
        let beside = fx.keepout(&[
            "try",
            "--from",
            "with-clone",
            &other.display().to_string(),
            "--",
            "sh",
            "-c",
            "pwd; ls",
        ]);
        assert!(beside.success(), "[{r}] {beside}");
        assert_eq!(
            beside.stdout,
            format!("{}/repro-2\nOTHER\n", fx.home.display()),
            "[{r}] cloned beside, and that is the project:{beside}"
        );
        assert!(
            beside.stderr.contains("cloning beside it, into ~/repro-2"),
            "[{r}] says so:{beside}"
        );
    }
}

/// Every argument of `try` and `shell --new` is checked before anything is cloned or made: a
/// wrong `--net` name (the error names the presets), a missing layer, a missing `--ro` path, a
/// bad or taken name, a plain file as the source. Nothing is left behind.
#[test]
fn bad_arguments_are_refused_before_any_work() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let repo = bare_repo(&fx);
        let net = fx.keepout(&["try", "--net", "pyip", &repo, "--", "true"]);
        assert!(!net.success(), "[{r}] {net}");
        assert!(
            net.stderr.contains("pyip")
                && net.stderr.contains("pypi")
                && net.stderr.contains("github"),
            "[{r}] names the valid presets:{net}"
        );
        assert!(
            !net.stderr.contains("cloning"),
            "[{r}] nothing cloned:{net}"
        );
        assert_eq!(
            left_in_store(&fx),
            Vec::<String>::new(),
            "[{r}] no workspace"
        );

        let file = fx.keepout(&["try", "README.md"]);
        assert!(
            !file.success()
                && file
                    .stderr
                    .contains("README.md is not a git repository, bundle or URL"),
            "[{r}] a plain file:{file}"
        );
        assert!(
            !file.stderr.contains("bundle header"),
            "[{r}] no raw git error:{file}"
        );
        for (args, says) in [
            (vec!["try", "--from", "nope", &repo], "no layer \"nope\""),
            (
                vec!["try", "--ro", "/nonexistent/x", &repo],
                "--ro /nonexistent/x",
            ),
            (
                vec!["try", "--name", "Bad/Name", &repo],
                "not a workspace or layer name",
            ),
            (vec!["try", "--memory", "lots", &repo], "lots"),
            (vec!["shell", "fresh", "--new", "--net", "pyip"], "pypi"),
            (vec!["shell", "fresh", "--from", "nope"], "no layer"),
        ] {
            let out = fx.keepout(&args);
            assert!(
                !out.success() && out.stderr.contains(says) && !out.stderr.contains("cloning"),
                "[{r}] {args:?}: says {says:?}:{out}"
            );
        }
        assert_eq!(left_in_store(&fx), Vec::<String>::new(), "[{r}] still none");

        // A bundle is a source (its first line says so).
        let bundle = fx.root.join("repro.bundle");
        let made = fx.outside(&format!(
            "git bundle create -q {} HEAD",
            q(bundle.display().to_string())
        ));
        assert!(made.success(), "[{r}] {made}");
        let out = fx.keepout(&[
            "try",
            &bundle.display().to_string(),
            "--",
            "cat",
            "README.md",
        ]);
        assert!(
            out.success() && out.stdout == "hello\n",
            "[{r}] cloned from the bundle:{out}"
        );
    }
}

/// `workspace rm --layer NAME` removes a layer nothing stands on; one in use is refused, naming
/// its users, and stays; `--force` removes it with everything on it, naming each.
#[test]
fn a_layer_is_removed_by_name() {
    for r in runners() {
        let fx = Fixture::new(&r);
        layer_from_new_workspace(&fx, "echo data > ~/cache", "lay");
        let on = fx.keepout(&["shell", "on-lay", "--from", "lay", "--", "true"]);
        assert!(on.success(), "[{r}] {on}");
        let snap = fx.keepout(&["workspace", "snapshot", "on-lay", "upper"]);
        assert!(snap.success(), "[{r}] {snap}");
        let lonely = fx.keepout(&["shell", "lonely", "--new", "--", "true"]);
        assert!(lonely.success(), "[{r}] {lonely}");
        let snap = fx.keepout(&["workspace", "snapshot", "lonely", "unused"]);
        assert!(snap.success(), "[{r}] {snap}");
        let rm = fx.keepout(&["workspace", "rm", "lonely"]);
        assert!(rm.success(), "[{r}] {rm}");

        let unused = fx.keepout(&["workspace", "rm", "--layer", "unused"]);
        assert!(
            unused.success() && unused.stdout.contains("removed layer unused"),
            "[{r}] {unused}"
        );
        assert!(!store_dir(&fx).join("layers/unused").exists(), "[{r}] gone");

        let busy = fx.keepout(&["workspace", "rm", "--layer", "lay"]);
        assert!(!busy.success(), "[{r}] in use:{busy}");
        assert!(
            busy.stderr.contains("workspace base")
                && busy.stderr.contains("layer upper")
                && busy.stderr.contains("--force"),
            "[{r}] names who uses it and the way out:{busy}"
        );
        assert!(
            store_dir(&fx).join("layers/lay/home/cache").exists(),
            "[{r}] kept"
        );
        let missing = fx.keepout(&["workspace", "rm", "--layer", "nope"]);
        assert!(
            !missing.success() && missing.stderr.contains("no layer \"nope\""),
            "[{r}] {missing}"
        );

        let force = fx.keepout(&["workspace", "rm", "--layer", "lay", "--force"]);
        assert!(force.success(), "[{r}] {force}");
        for what in [
            "workspace base",
            "workspace on-lay",
            "layer upper",
            "layer lay",
        ] {
            assert!(
                force.stdout.contains(&format!("removed {what}")),
                "[{r}] {what}:{force}"
            );
        }
        let list = fx.keepout(&["workspace", "list"]);
        assert!(list.stdout.contains("no workspaces yet"), "[{r}] {list}");
    }
}

/// The directories the sandbox made in a workspace's home only to mount something on (here a
/// local source under the home, shown read-only during the clone) are gone after the run, and
/// so never frozen into a layer; a directory the command made stays.
#[test]
fn mount_points_are_not_left_in_the_home() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let src = fx.home.join("src/proj");
        let clone = fx.outside(&format!("git clone -q . {}", q(src.display().to_string())));
        assert!(clone.success(), "[{r}] {clone}");
        let out = fx.keepout(&[
            "try",
            &src.display().to_string(),
            "--",
            "mkdir",
            "-p",
            "../mine/src",
        ]);
        assert!(out.success(), "[{r}] {out}");
        let home = store_dir(&fx).join("workspaces/proj/home");
        assert!(home.join("proj/README.md").exists(), "[{r}] the clone");
        assert!(
            !home.join("src").exists(),
            "[{r}] no ~/src/proj mount point left: {:?}",
            std::fs::read_dir(&home)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect::<Vec<_>>()
        );
        assert!(
            home.join("mine/src").is_dir(),
            "[{r}] the command's own directory stays"
        );
        let snap = fx.keepout(&["workspace", "snapshot", "proj", "lay"]);
        assert!(snap.success(), "[{r}] {snap}");
        assert!(
            !store_dir(&fx).join("layers/lay/home/src").exists(),
            "[{r}] nor in the layer"
        );
    }
}

/// In `keepout shell` on a real pseudo-terminal, SHELL names the shell that runs (bash), and
/// `tty` names its terminal (one of the sandbox's own devpts, which it can see), not "not a
/// tty".
#[test]
fn the_shell_knows_its_shell() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let make = fx.keepout(&["shell", "sh1", "--new", "--", "true"]);
        assert!(make.success(), "[{r}] {make}");
        let out = super::pty::on_pty(
            &fx,
            &[(
                "(keepout:sh1)",
                Some("echo SH=$SHELL; echo TTY=$(tty); exit\n"),
            )],
            &[keepout_bin(), "shell", "sh1"],
        );
        assert!(out.success(), "[{r}] {out}");
        assert!(
            out.stdout.contains("SH=/bin/bash") || out.stdout.contains("SH=/usr/bin/bash"),
            "[{r}] SHELL is bash:{out}"
        );
        assert!(
            out.stdout.contains("TTY=/dev/pts/"),
            "[{r}] the shell is on a terminal that `tty` names:{out}"
        );
    }
}

/// Every flag's help is true for its command: `shell --help` speaks of no clone; `try`'s says
/// what the clone gets; `workspace rm` has --layer and --force.
#[test]
fn help_fits_each_command() {
    let fx = Fixture::new(&runners()[0]);
    let shell = fx.keepout(&["shell", "--help"]);
    assert!(shell.success(), "{shell}");
    assert!(
        !shell.stdout.to_lowercase().contains("clone"),
        "shell --help:{shell}"
    );
    let try_ = fx.keepout(&["try", "--help"]);
    assert!(
        try_.stdout.contains("The clone itself gets only"),
        "try --help:{try_}"
    );
    let rm = fx.keepout(&["workspace", "rm", "--help"]);
    assert!(
        rm.stdout.contains("--layer <NAME>") && rm.stdout.contains("--force"),
        "workspace rm --help:{rm}"
    );
}
