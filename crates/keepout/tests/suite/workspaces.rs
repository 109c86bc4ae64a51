//! Workspaces and layers (`keepout try`, `keepout shell`, `keepout workspace`), with real git
//! against local repositories, as root and as an unprivileged user. The workspaces live under
//! the fixture's fake home (`~/.local/share/keepout`).

use super::harness::*;

/// A bare clone of the fixture's project, owned by the runner; returns its path.
fn bare_repo(fx: &Fixture) -> String {
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
            out.stdout.lines().next() == Some(&format!("{}/repro", fx.home.display())),
            "[{r}] runs in the clone, ~/repro:{out}"
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

/// A workspace on a layer is one run's at a time (two overlays on one upper directory are not
/// allowed): a second run is told it is in use, and the first one's files are unharmed.
#[test]
fn a_layered_workspace_in_use_refuses_a_second_run() {
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
                "echo one > ~/one; sleep 3; cat ~/one",
            ]),
            format!("[{r}] first run"),
        );
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let second = fx.keepout(&["shell", "w", "--", "true"]);
        assert!(
            !second.success() && second.stderr.contains("in use"),
            "[{r}] the second run is refused:{second}"
        );
        let first = first.wait();
        assert!(
            first.success() && first.stdout.contains("one"),
            "[{r}] the first run is unharmed:{first}"
        );
    }
}
