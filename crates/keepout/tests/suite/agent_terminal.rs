//! `keepout agent` as a new user sets it up: `eval "$(keepout agent --daemon)"` in a real
//! terminal (a tmux pane: a real pty, a real interactive bash), no `XDG_RUNTIME_DIR` (as after
//! `su -`), the default vault and configuration under the fixture's home, a real `ssh` to a real
//! `sshd` on 127.0.0.1. The question appears on the terminal `ssh` runs in and is answered by
//! typing there; refusals are said there; a "5m" yes covers that terminal; the policy follows
//! the configuration file as it is edited. No askpass anywhere.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::agent::{whoami, Sshd};
use super::harness::{
    euid, keepout_bin, pids_with_arg, poll, runners, signal, write_file, Fixture, Runner,
};

const PASSPHRASE: &str = "runner pass";

/// A tmux server of the runner's with one session; killed when dropped.
struct Tmux {
    runner: Runner,
    socket: PathBuf,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

impl Tmux {
    fn start(fx: &Fixture, env: Vec<(String, String)>) -> Tmux {
        Tmux::start_as(&fx.runner, fx, env)
    }

    /// A tmux server of `runner`'s (not necessarily the fixture's).
    fn start_as(runner: &Runner, fx: &Fixture, env: Vec<(String, String)>) -> Tmux {
        let t = Tmux {
            runner: runner.clone(),
            socket: fx.root.join("tmux.sock"),
            env,
            cwd: fx.home.clone(),
        };
        let out = t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "250",
            "-y",
            "50",
            "bash --norc --noprofile -i",
        ]);
        assert!(
            out.status.success(),
            "[{}] tmux new-session: {}",
            t.runner,
            String::from_utf8_lossy(&out.stderr)
        );
        t.wait_for("t:0", "bash-", 1);
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        let mut argv = vec![
            "/usr/bin/tmux".to_string(),
            "-S".into(),
            self.socket.display().to_string(),
            "-f".into(),
            "/dev/null".into(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        self.runner
            .command(&argv, &self.env, &self.cwd)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Type `text` and Enter into `target` (session:window).
    fn type_line(&self, target: &str, text: &str) {
        assert!(self
            .tmux(&["send-keys", "-t", target, "-l", text])
            .status
            .success());
        assert!(self
            .tmux(&["send-keys", "-t", target, "Enter"])
            .status
            .success());
    }

    fn key(&self, target: &str, key: &str) {
        assert!(self
            .tmux(&["send-keys", "-t", target, key])
            .status
            .success());
    }

    /// All of the pane's text, history included, wrapped lines joined.
    fn screen(&self, target: &str) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", target])
                .stdout,
        )
        .into_owned()
    }

    /// Wait until `needle` appears `count` times on `target`; the screen then.
    fn wait_for(&self, target: &str, needle: &str, count: usize) -> String {
        let mut screen = String::new();
        let seen = poll(Duration::from_secs(20), || {
            screen = self.screen(target);
            screen.matches(needle).count() >= count
        });
        assert!(
            seen,
            "[{}] {needle:?} (x{count}) did not appear on {target}:\n{screen}",
            self.runner
        );
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// Kills the agent (by its socket argument) when dropped.
struct AgentGuard(String);

impl Drop for AgentGuard {
    fn drop(&mut self) {
        for pid in pids_with_arg(&self.0) {
            signal(pid, "TERM");
        }
        // A stopped agent (the bug some tests catch) leaves TERM pending: KILL then.
        if !poll(Duration::from_secs(2), || pids_with_arg(&self.0).is_empty()) {
            for pid in pids_with_arg(&self.0) {
                signal(pid, "KILL");
            }
        }
    }
}

/// A runner's key in the vault (imported as a user would), a config, an sshd accepting the key.
struct Keyed {
    sshd: Sshd,
    config: PathBuf,
    socket: PathBuf,
}

impl Keyed {
    fn new(fx: &Fixture) -> Keyed {
        let ask = fx.script("ask.sh", &format!("#!/bin/sh\necho '{PASSPHRASE}'\n"));
        let out = fx.outside(&format!(
            "ssh-keygen -q -t ed25519 -N '' -C work@test -f ~/.ssh/work_key && \
             KEEPOUT_NO_CACHE=1 KEEPOUT_SCRYPT_WORK_FACTOR=4 KEEPOUT_ASKPASS={ask} \
             {bin} ssh import ~/.ssh/work_key --yes",
            bin = keepout_bin()
        ));
        assert!(out.success(), "[{}] import: {out}", fx.runner);
        let config = fx.home.join(".config/keepout/config.toml");
        let keyed = Keyed {
            sshd: Sshd::start_in(
                &fx.root.join("sshd"),
                &fx.home.join(".ssh/known_hosts"),
                &fx.home.join(".ssh/work_key.pub"),
            ),
            config,
            socket: fx.home.join(".local/state/keepout/run/agent.sock"),
        };
        fx.give_to_runner(&fx.home.join(".ssh"));
        keyed
    }

    fn set_config(&self, fx: &Fixture, toml: &str) {
        write_file(&self.config, toml, 0o600);
        fx.give_to_runner(&fx.home.join(".config"));
    }

    /// The ssh command line a user types (SSH_AUTH_SOCK from the eval).
    fn ssh(&self, fx: &Fixture, remote: &str) -> String {
        format!(
            "ssh -F none -o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes \
             -o BatchMode=yes -o IdentityFile=none -p {port} {user}@127.0.0.1 {remote}",
            kh = fx.home.join(".ssh/known_hosts").display(),
            port = self.sshd.port,
            user = whoami(),
        )
    }
}

/// The environment of the user's terminal: the fixture's (no XDG_RUNTIME_DIR, no display, no
/// askpass), a TERM and a plain prompt.
fn terminal_env(fx: &Fixture, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = fx
        .env()
        .iter()
        .filter(|(k, _)| k != "SSH_AUTH_SOCK")
        .cloned()
        .collect();
    env.push(("TERM".into(), "xterm-256color".into()));
    env.push(("KEEPOUT_SCRYPT_WORK_FACTOR".into(), "4".into()));
    env.push(("KEEPOUT_PROMPT_TIMEOUT".into(), "30".into()));
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// The README's set-up in a real terminal: the question is asked on the terminal ssh runs in;
/// type-ahead does not answer it; `n` refuses and says so there; `y` logs in (the vault's
/// passphrase asked there too) and reaches neither the shell nor anything else; a "5m" yes
/// covers that terminal for that host (the question says so), not another terminal nor another
/// kind of signature; a
/// background job is not asked on the terminal; an edited
/// configuration applies at once (refusal said on the terminal), and a broken one keeps the
/// last good policy.
#[test]
fn the_daemon_asks_on_the_requesters_terminal() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let k = Keyed::new(&fx);
        let _agent = AgentGuard(k.socket.display().to_string());
        k.set_config(
            &fx,
            "[[ssh.key]]\nname = \"work_key\"\nconfirm = \"5m\"\nhosts = [\"127.0.0.1\"]\n",
        );
        let t = Tmux::start(&fx, terminal_env(&fx, &[]));
        let w0 = "t:0";
        t.type_line(
            w0,
            &format!(
                "eval \"$({} agent --daemon)\"; echo \"sock=$SSH_AUTH_SOCK pid=$SSH_AGENT_PID\"",
                keepout_bin()
            ),
        );
        let screen = t.wait_for(w0, "sock=/", 1);
        assert!(
            screen.contains(&format!("sock={} pid=", k.socket.display())),
            "[{r}] without XDG_RUNTIME_DIR the socket is in the home: {screen}"
        );

        // Type-ahead (a `y` typed while `sleep 1` runs) does not answer; `n` refuses.
        t.type_line(
            w0,
            &format!(
                "sleep 1; {}; echo \"e\"\"xit=$?\"",
                k.ssh(&fx, "echo landed-$((0+1))")
            ),
        );
        t.type_line(w0, "y");
        let screen = t.wait_for(w0, "[y/N]", 1);
        assert!(
            screen.contains("wants to sign with work_key for")
                && screen.contains(&format!("{}@127.0.0.1", whoami()))
                && screen
                    .contains("yes covers work_key for 127.0.0.1 from this terminal for 5 min"),
            "[{r}] the question, on the terminal: {screen}"
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !t.screen(w0).contains("exit="),
            "[{r}] the type-ahead `y` did not answer: {}",
            t.screen(w0)
        );
        t.type_line(w0, "n");
        let screen = t.wait_for(w0, "exit=", 1);
        assert!(
            screen.contains("exit=255") && !screen.contains("landed-1"),
            "[{r}] refused: {screen}"
        );
        assert!(
            screen.contains("keepout agent: refused to sign for")
                && screen.contains("not approved"),
            "[{r}] the refusal is said on the terminal: {screen}"
        );

        // `y`, then the vault's passphrase, on the terminal: logged in.
        t.type_line(
            w0,
            &format!(
                "{}; echo \"e\"\"xit=$?\"",
                k.ssh(&fx, "echo landed-$((1+1))")
            ),
        );
        t.wait_for(w0, "[y/N]", 2);
        t.type_line(w0, "y");
        t.wait_for(w0, "passphrase", 1);
        t.type_line(w0, PASSPHRASE);
        let screen = t.wait_for(w0, "exit=", 2);
        assert!(
            screen.contains("landed-2") && screen.contains("exit=0"),
            "[{r}] approved on the terminal: {screen}"
        );
        assert!(
            !screen.contains(PASSPHRASE),
            "[{r}] the passphrase was not echoed: {screen}"
        );

        // The "5m" yes covers this terminal: two more logins, no question.
        t.type_line(
            w0,
            &format!(
                "{}; {}; echo done-$((4+1))",
                k.ssh(&fx, "echo landed-$((2+1))"),
                k.ssh(&fx, "echo landed-$((3+1))")
            ),
        );
        let screen = t.wait_for(w0, "done-5", 1);
        assert!(
            screen.contains("landed-3") && screen.contains("landed-4"),
            "[{r}] covered: {screen}"
        );
        assert_eq!(
            screen.matches("[y/N]").count(),
            2,
            "[{r}] no more questions: {screen}"
        );
        // Not for a background job of the same session: not covered, and not asked there.
        t.type_line(
            w0,
            &format!(
                "{} </dev/null & wait; echo bg-$((6+1))",
                k.ssh(&fx, "echo landed-$((5+1))")
            ),
        );
        let screen = t.wait_for(w0, "bg-7", 1);
        assert!(
            !screen.contains("landed-6") && screen.matches("[y/N]").count() == 2,
            "[{r}] a background job gets no part of the yes: {screen}"
        );
        // Not for another target from the same terminal: a file signature is asked.
        t.type_line(
            w0,
            "echo m > ~/msg; ssh-keygen -q -Y sign -n file -f ~/.ssh/work_key.pub ~/msg; \
             echo sig-$((9+1))",
        );
        let screen = t.wait_for(w0, "[y/N]", 3);
        assert!(
            screen.contains(
                "yes covers work_key for a git/ssh signature (namespace file) from this terminal"
            ),
            "[{r}] another target is asked: {screen}"
        );
        t.type_line(w0, "n");
        t.wait_for(w0, "sig-10", 1);

        // Another terminal is asked.
        assert!(t
            .tmux(&["new-window", "-t", "t:1", "bash --norc --noprofile -i"])
            .status
            .success());
        let w1 = "t:1";
        t.wait_for(w1, "bash-", 1);
        // A background job there is not asked on the terminal (the shell is reading it).
        t.type_line(
            w1,
            &format!(
                "export SSH_AUTH_SOCK={}; {} </dev/null & wait; echo \"e\"\"xit=$?\"",
                k.socket.display(),
                k.ssh(&fx, "echo landed-$((8+1))")
            ),
        );
        let screen = t.wait_for(w1, "exit=", 1);
        assert!(
            screen.contains("agent refused operation")
                && !screen.contains("landed-9")
                && !screen.contains("[y/N]"),
            "[{r}] a background job is not asked on the terminal: {screen}"
        );
        let log = std::fs::read_to_string(k.socket.with_file_name("agent.log")).unwrap();
        assert!(
            log.contains("is not in its terminal's foreground"),
            "[{r}] and the refusal says why: {log}"
        );
        t.type_line(
            w1,
            &format!(
                "{}; echo \"e\"\"xit=$?\"",
                k.ssh(&fx, "echo landed-$((5+1))")
            ),
        );
        t.wait_for(w1, "[y/N]", 1);
        t.type_line(w1, "y");
        let screen = t.wait_for(w1, "exit=", 2);
        assert!(
            screen.contains("landed-6") && screen.contains("exit=0"),
            "[{r}] another terminal, asked and approved: {screen}"
        );

        // The configuration changes: the running agent follows it, and says why it refuses.
        k.set_config(
            &fx,
            "[[ssh.key]]\nname = \"work_key\"\nconfirm = \"5m\"\nhosts = [\"github.com\"]\n",
        );
        t.type_line(
            w0,
            &format!(
                "{}; echo \"e\"\"xit=$?\"",
                k.ssh(&fx, "echo landed-$((6+1))")
            ),
        );
        let screen = t.wait_for(w0, "exit=", 3);
        assert!(
            !screen.contains("landed-7")
                && screen.contains("127.0.0.1 is not in its hosts (github.com)")
                && screen.contains("keepout ssh list"),
            "[{r}] the edited policy, said on the terminal: {screen}"
        );
        // A broken configuration keeps the last good policy (still github.com only).
        k.set_config(&fx, "[[ssh.key]\nname = \n");
        t.type_line(
            w0,
            &format!(
                "{}; echo \"e\"\"xit=$?\"",
                k.ssh(&fx, "echo landed-$((7+1))")
            ),
        );
        let screen = t.wait_for(w0, "exit=", 4);
        assert!(
            !screen.contains("landed-8")
                && screen.contains("does not parse")
                && screen.contains("last good policy"),
            "[{r}] a broken configuration does not fall open: {screen}"
        );
        assert!(
            !screen.contains("command not found"),
            "[{r}] no answer reached the shell: {screen}"
        );
        let log = std::fs::read_to_string(k.socket.with_file_name("agent.log")).unwrap();
        assert!(
            log.contains("policy reloaded") && log.contains("does not parse"),
            "[{r}] the log says so: {log}"
        );
    }
}

/// With `KEEPOUT_PINENTRY=pinentry-curses`, the daemon's pinentry draws on the requester's
/// terminal (ttyname and ttytype given): OK approves and the passphrase is typed there;
/// Cancel refuses.
#[test]
fn pinentry_curses_asks_on_the_requesters_terminal() {
    if !Path::new("/usr/bin/pinentry-curses").exists() {
        super::harness::note("pinentry-curses is not installed: test skipped");
        return;
    }
    for r in runners() {
        let fx = Fixture::new(&r);
        let k = Keyed::new(&fx);
        let _agent = AgentGuard(k.socket.display().to_string());
        k.set_config(
            &fx,
            "[[ssh.key]]\nname = \"work_key\"\nhosts = [\"127.0.0.1\"]\n",
        );
        let t = Tmux::start(
            &fx,
            terminal_env(&fx, &[("KEEPOUT_PINENTRY", "/usr/bin/pinentry-curses")]),
        );
        let w0 = "t:0";
        t.type_line(
            w0,
            &format!(
                "eval \"$({} agent --daemon)\"; clear; {}; echo \"e\"\"xit=$?\"",
                keepout_bin(),
                k.ssh(&fx, "echo landed-$((0+1))")
            ),
        );
        t.wait_for(w0, "wants to sign with work_key", 1);
        t.wait_for(w0, "<OK>", 1);
        t.key(w0, "Enter");
        t.wait_for(w0, "passphrase", 1);
        t.type_line(w0, PASSPHRASE);
        let screen = t.wait_for(w0, "exit=", 1);
        assert!(
            screen.contains("landed-1") && screen.contains("exit=0"),
            "[{r}] pinentry-curses OK: {screen}"
        );
        t.type_line(
            w0,
            &format!(
                "clear; {}; echo \"e\"\"xit=$?\"",
                k.ssh(&fx, "echo landed-$((1+1))")
            ),
        );
        t.wait_for(w0, "<OK>", 1);
        t.key(w0, "Tab");
        t.key(w0, "Enter");
        let screen = t.wait_for(w0, "exit=", 1);
        assert!(
            screen.contains("exit=255") && !screen.contains("landed-2"),
            "[{r}] pinentry-curses cancelled: {screen}"
        );
    }
}

/// Without XDG_RUNTIME_DIR: the sockets are in ~/.local/state/keepout/run (0700, the user's),
/// whoever created /tmp/keepout-UID first; the unlock cache works; a second
/// `keepout agent --daemon` names the running agent (alive) instead of a process that exits;
/// the sandbox sees none of it.
#[test]
fn daemon_without_runtime_dir_is_private_and_reused() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // Another user (root, for the plain runner) got /tmp/keepout-UID first.
        let squat = PathBuf::from(format!("/tmp/keepout-{}", r.uid));
        if euid() == 0 && !r.is_root() && !squat.exists() {
            std::fs::create_dir(&squat).unwrap();
            fx.remove_on_drop(&squat);
        }
        let socket = fx.home.join(".local/state/keepout/run/agent.sock");
        let _agent = AgentGuard(socket.display().to_string());
        let ask = fx.script("ask.sh", &format!("#!/bin/sh\necho '{PASSPHRASE}'\n"));
        let bad = fx.script("bad.sh", "#!/bin/sh\necho wrong\n");
        // The unlock cache on its own (no agent yet): one passphrase, then none needed.
        let out = fx.outside(&format!(
            "printf v0 | KEEPOUT_ASKPASS={ask} KEEPOUT_SCRYPT_WORK_FACTOR=4 {bin} secret set a/zero \
             && KEEPOUT_ASKPASS={bad} {bin} secret list && {bin} lock",
            bin = keepout_bin()
        ));
        assert!(
            out.success() && out.stdout.contains("a/zero"),
            "[{r}] the unlock cache answers without XDG_RUNTIME_DIR: {out}"
        );
        // As the README says: eval'd by the shell (which must take every line of it).
        let daemon = || {
            let out = fx.outside(&format!(
                "set -e; eval \"$({} agent --daemon)\"; echo \"pid=$SSH_AGENT_PID sock=$SSH_AUTH_SOCK\"",
                keepout_bin()
            ));
            assert!(
                out.success() && !out.stderr.contains("syntax error"),
                "[{r}] eval \"$(keepout agent --daemon)\": {out}"
            );
            let pid: u32 = out
                .stdout
                .split("pid=")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("[{r}] no SSH_AGENT_PID: {out}"));
            (out, pid)
        };
        let (first, pid) = daemon();
        assert!(
            first.stdout.contains(&format!("sock={}", socket.display())),
            "[{r}] the socket is in the home: {first}"
        );
        let dir = socket.parent().unwrap();
        let meta = std::fs::symlink_metadata(dir).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert!(
            meta.is_dir() && meta.uid() == r.uid && meta.permissions().mode() & 0o777 == 0o700,
            "[{r}] {} is the user's, 0700",
            dir.display()
        );
        let (second, again) = daemon();
        assert_eq!(again, pid, "[{r}] the running agent is named: {second}");
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "[{r}] and it is alive"
        );
        // SIGHUP reads the policy again; the agent goes on.
        assert!(signal(pid, "HUP"));
        let log = socket.with_file_name("agent.log");
        assert!(
            poll(Duration::from_secs(5), || std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("SIGHUP: reading the policy again")),
            "[{r}] SIGHUP is logged: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "[{r}] SIGHUP does not stop the agent"
        );
        // The unlock cache (hosted by the agent) works: one passphrase, then none needed.
        let out = fx.outside(&format!(
            "printf v1 | KEEPOUT_ASKPASS={ask} KEEPOUT_SCRYPT_WORK_FACTOR=4 {bin} secret set a/one \
             && KEEPOUT_ASKPASS={bad} {bin} secret list",
            bin = keepout_bin()
        ));
        assert!(
            out.success() && out.stdout.contains("a/one"),
            "[{r}] the unlock cache answers: {out}"
        );
        assert!(dir.join("cache.sock").exists(), "[{r}] cache.sock is there");
        // The sandbox sees neither the directory nor the sockets.
        let out = fx.inside(
            &[],
            &format!(
                "ls -a {d}/ 2>&1; test -e {s} && echo VISIBLE; test -e {d} && echo VISIBLE; true",
                d = dir.display(),
                s = socket.display()
            ),
        );
        assert!(
            !out.has("VISIBLE") && !out.has("agent.sock"),
            "[{r}] inside keepout run: {:?} {:?}",
            out.stdout,
            out.stderr
        );
        let _ = fx.keepout(&["lock"]);
    }
}

/// `keepout ssh import KEY.pub` says it is the public key and which file to give, whether the
/// private key is next to it or not; nothing is stored and nothing removed.
#[test]
fn importing_a_public_key_says_which_file_to_give() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let out = fx.outside("ssh-keygen -q -t ed25519 -N '' -C work@test -f ~/.ssh/work_key");
        assert!(out.success(), "[{r}] ssh-keygen: {out}");
        let public = fx.home.join(".ssh/work_key.pub");
        let private = fx.home.join(".ssh/work_key");
        let out = fx.keepout(&["ssh", "import", public.to_str().unwrap(), "--yes"]);
        assert!(
            !out.success()
                && out.has(&format!(
                    "{} is a public key; import the private key next to it: keepout ssh import {}",
                    public.display(),
                    private.display()
                )),
            "[{r}] a clear error: {out}"
        );
        assert!(!out.has("NUL"), "[{r}] {out}");
        assert!(private.exists() && public.exists(), "[{r}] nothing removed");
        assert!(
            !fx.home.join(".local/share/keepout/vault.age").exists(),
            "[{r}] nothing stored"
        );
        std::fs::remove_file(&private).unwrap();
        let out = fx.keepout(&["ssh", "import", public.to_str().unwrap()]);
        assert!(
            !out.success() && out.has("is a public key") && out.has("is not there"),
            "[{r}] without the private key next to it: {out}"
        );
    }
}

/// A requester without a terminal: with no way to ask, the refusal names why (logged); with
/// `SSH_ASKPASS` in the agent's environment, the question goes to the requester's display
/// (`DISPLAY` and the locale taken from the requester, not the agent, which has no display),
/// and a yes logs in.
#[test]
fn without_a_terminal_the_requesters_display_is_used_or_the_refusal_says_why() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let k = Keyed::new(&fx);
        let _agent = AgentGuard(k.socket.display().to_string());
        k.set_config(&fx, "[[ssh.key]]\nname = \"work_key\"\n");
        let seen = fx.root.join("displays");
        let recorder = fx.script(
            "recorder.sh",
            &format!(
                "#!/bin/sh\ncase \"$1\" in *assphrase*) echo '{PASSPHRASE}'; exit 0;; esac\n\
                 echo \"display=$DISPLAY lc=$LC_MESSAGES\" >> {}\nexit 0\n",
                seen.display()
            ),
        );
        let log = k.socket.with_file_name("agent.log");
        let login = |display: &str| {
            // setsid: the requester has no terminal.
            fx.outside(&format!(
                "eval \"$({bin} agent --daemon)\" >/dev/null && \
                 DISPLAY={display} setsid -w {ssh} </dev/null",
                bin = keepout_bin(),
                ssh = k.ssh(&fx, "echo landed-$((0+1))")
            ))
        };
        let out = login(":97");
        assert!(!out.has("landed-1"), "[{r}] no way to ask: refused: {out}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("there is no way to ask") && text.contains("has no terminal"),
            "[{r}] the refusal says why: {text}"
        );
        for pid in pids_with_arg(&k.socket.display().to_string()) {
            signal(pid, "TERM");
        }
        assert!(poll(Duration::from_secs(5), || pids_with_arg(
            &k.socket.display().to_string()
        )
        .is_empty()));
        let out = fx.outside(&format!(
            "eval \"$(SSH_ASKPASS={recorder} {bin} agent --daemon)\" >/dev/null && \
             DISPLAY=:98 LC_MESSAGES=C.UTF-8 setsid -w {ssh} </dev/null",
            bin = keepout_bin(),
            ssh = k.ssh(&fx, "echo landed-$((1+1))")
        ));
        assert!(out.has("landed-2"), "[{r}] asked on the display: {out}");
        let displays = std::fs::read_to_string(&seen).unwrap_or_default();
        assert_eq!(
            displays.trim(),
            "display=:98 lc=C.UTF-8",
            "[{r}] the requester's display and locale"
        );
    }
}

/// No answer on the terminal within the timeout is a no, said there; the terminal is usable
/// after (its modes restored: the next command runs).
#[test]
fn no_answer_on_the_terminal_is_a_no() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let k = Keyed::new(&fx);
        let _agent = AgentGuard(k.socket.display().to_string());
        let mut env = terminal_env(&fx, &[]);
        env.retain(|(k, _)| k != "KEEPOUT_PROMPT_TIMEOUT");
        env.push(("KEEPOUT_PROMPT_TIMEOUT".into(), "2".into()));
        let t = Tmux::start(&fx, env);
        let w0 = "t:0";
        t.type_line(
            w0,
            &format!(
                "eval \"$({} agent --daemon)\"; {}; echo \"e\"\"xit=$?\"",
                keepout_bin(),
                k.ssh(&fx, "echo landed-$((0+1))")
            ),
        );
        t.wait_for(w0, "[y/N]", 1);
        let screen = t.wait_for(w0, "exit=", 1);
        assert!(
            screen.contains("(no answer: no)"),
            "[{r}] no answer, said: {screen}"
        );
        assert!(
            screen.contains("exit=255") && !screen.contains("landed-1"),
            "[{r}] no answer, refused ({} {}): {screen}",
            screen.contains("exit=255"),
            screen.contains("landed-1")
        );
        t.type_line(w0, "echo after-$((1+1))");
        t.wait_for(w0, "after-2", 1);
    }
}

/// A requester in another mount namespace (a container's or a sandbox's view, where `/dev/pts/0`
/// is another devpts instance's terminal with the same device number as the host's) is not
/// asked on "its" terminal: the refusal says why. The same command outside it is asked.
#[test]
fn a_requester_in_another_mount_namespace_is_not_asked_on_a_terminal() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let k = Keyed::new(&fx);
        let _agent = AgentGuard(k.socket.display().to_string());
        let t = Tmux::start(&fx, terminal_env(&fx, &[]));
        let w0 = "t:0";
        t.type_line(
            w0,
            &format!(
                "eval \"$({} agent --daemon)\"; unshare --map-current-user --mount -- {}; echo \"e\"\"xit=$?\"",
                keepout_bin(),
                k.ssh(&fx, "echo landed-$((0+1))")
            ),
        );
        let screen = t.wait_for(w0, "exit=", 1);
        assert!(
            screen.contains("exit=255")
                && !screen.contains("landed-1")
                && !screen.contains("[y/N]"),
            "[{r}] another mount namespace: refused, not asked: {screen}"
        );
        let log = std::fs::read_to_string(k.socket.with_file_name("agent.log")).unwrap_or_default();
        assert!(
            log.contains("another mount namespace"),
            "[{r}] the reason: {log}"
        );
        // Outside it, the same login is asked on the terminal.
        t.type_line(
            w0,
            &format!(
                "{}; echo \"e\"\"xit=$?\"",
                k.ssh(&fx, "echo landed-$((1+1))")
            ),
        );
        t.wait_for(w0, "[y/N]", 1);
        t.type_line(w0, "n");
        t.wait_for(w0, "exit=", 2);
    }
}

/// `keepout agent &` in the same terminal as the requester: the agent does not read or set its
/// own terminal from the background (it would be stopped, and the login would hang); it
/// refuses at once, saying to use --daemon.
#[test]
fn an_agent_in_the_background_of_the_same_terminal_is_not_stopped() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let k = Keyed::new(&fx);
        let _agent = AgentGuard(k.socket.display().to_string());
        let t = Tmux::start(&fx, terminal_env(&fx, &[]));
        let w0 = "t:0";
        let log = fx.root.join("bg-agent.log");
        t.type_line(
            w0,
            &format!(
                "{bin} agent --socket {sock} >/dev/null 2>{log} & sleep 1; \
                 SSH_AUTH_SOCK={sock} {ssh}; echo \"e\"\"xit=$?\"",
                bin = keepout_bin(),
                sock = k.socket.display(),
                log = log.display(),
                ssh = k.ssh(&fx, "echo landed-$((0+1))")
            ),
        );
        let screen = t.wait_for(w0, "exit=", 1);
        assert!(
            screen.contains("exit=255") && !screen.contains("landed-1"),
            "[{r}] refused: {screen}"
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("runs in its background") && text.contains("--daemon"),
            "[{r}] the reason: {text}"
        );
        let pid = pids_with_arg(&k.socket.display().to_string());
        assert_eq!(pid.len(), 1, "[{r}] the agent runs");
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid[0])).unwrap();
        let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
        assert_ne!(state, Some("T"), "[{r}] the agent is not stopped: {stat}");
    }
}

/// The plain user in a `su -` login from root's terminal (no XDG_RUNTIME_DIR): the terminal's
/// device stays root's, so the agent cannot open it by its path. Started there with `eval
/// "$(keepout agent --daemon)"`, the agent holds the terminal it was started in and asks on it:
/// `y` and the passphrase there log in (a wrong one first gets "Sorry, try again."). A second `su -` login (another terminal the agent was
/// not started in) is refused at once, with the reason said there and what to do; the socket
/// is in the user's home. (Only when the suite runs as root.)
#[test]
fn a_su_login_is_asked_on_the_terminal_the_agent_was_started_in() {
    if euid() != 0 {
        super::harness::note("needs root (su from root's terminal): skipped");
        return;
    }
    let all = runners();
    let root = all.iter().find(|r| r.is_root()).unwrap();
    for r in all.iter().filter(|r| !r.is_root()) {
        let fx = Fixture::new(r);
        let k = Keyed::new(&fx);
        k.set_config(
            &fx,
            "[[ssh.key]]\nname = \"work_key\"\nconfirm = \"always\"\nhosts = [\"127.0.0.1\"]\n",
        );
        let _agent = AgentGuard(k.socket.display().to_string());
        let t = Tmux::start_as(
            root,
            &fx,
            vec![
                ("PATH".into(), super::harness::FIXTURE_PATH.into()),
                ("TERM".into(), "xterm-256color".into()),
                ("HOME".into(), fx.root.display().to_string()),
            ],
        );
        let su_login = |w: &str| {
            // A plain `su -` (`su -c` would start a new session without the terminal).
            t.type_line(w, &format!("su - {}", r.name));
            // The login shell's prompt first: what is typed while su sets the session up may be
            // discarded with the terminal's pending input.
            t.wait_for(w, "\n$", 1);
            t.type_line(
                w,
                &format!(
                    "exec env HOME={} bash --norc --noprofile -i",
                    fx.home.display()
                ),
            );
            t.wait_for(w, "bash-5.2$", 1);
        };
        let w0 = "t:0";
        su_login(w0);
        t.type_line(
            w0,
            &format!(
                "cd; eval \"$({bin} agent --daemon)\"; echo \"sock=$SSH_AUTH_SOCK\"; {ssh}; \
                 echo \"e\"\"xit=$?\"",
                bin = keepout_bin(),
                ssh = k.ssh(&fx, "echo landed-$((0+1))")
            ),
        );
        let screen = t.wait_for(w0, "[y/N]", 1);
        assert!(
            screen.contains(&format!("sock={}", k.socket.display()))
                && screen.contains("wants to sign with work_key for"),
            "[{r}] su -: asked on the terminal the agent was started in: {screen}"
        );
        t.type_line(w0, "y");
        // A wrong passphrase gets another try, as sudo gives.
        t.wait_for(w0, "passphrase", 1);
        t.type_line(w0, "not the passphrase");
        t.wait_for(w0, "Sorry, try again.", 1);
        t.wait_for(w0, "passphrase", 2);
        t.type_line(w0, PASSPHRASE);
        let screen = t.wait_for(w0, "exit=", 1);
        assert!(
            screen.contains("landed-1") && screen.contains("exit=0"),
            "[{r}] su -: approved on that terminal, logged in: {screen}"
        );

        // Another `su -` login: its terminal is root's and not the one the agent holds.
        assert!(t
            .tmux(&["new-window", "-t", "t:1", "bash --norc --noprofile -i"])
            .status
            .success());
        let w1 = "t:1";
        t.wait_for(w1, "bash-", 1);
        su_login(w1);
        t.type_line(
            w1,
            &format!(
                "cd; export SSH_AUTH_SOCK={sock}; {ssh}; echo \"e\"\"xit=$?\"",
                sock = k.socket.display(),
                ssh = k.ssh(&fx, "echo landed-$((1+1))")
            ),
        );
        let screen = t.wait_for(w1, "exit=", 1);
        assert!(
            screen.contains("exit=255")
                && !screen.contains("landed-2")
                && !screen.contains("[y/N]"),
            "[{r}] a second su - login: refused, not asked: {screen}"
        );
        let log = std::fs::read_to_string(k.socket.with_file_name("agent.log")).unwrap_or_default();
        assert!(
            log.contains("belongs to uid 0") && log.contains("`su` login"),
            "[{r}] the reason: {log}"
        );
    }
}

/// A home so deep that the socket path would not fit a unix socket address (108 bytes): a
/// clear error that says what to do, not a failure to bind; and a socket directory that is not
/// the user's is refused, saying so.
#[test]
fn a_socket_directory_too_long_or_not_private_is_refused_clearly() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let deep = fx.home.join("d".repeat(60)).join("e".repeat(30));
        let out = fx.outside(&format!(
            "mkdir -p {d} && HOME={d} {bin} agent --daemon",
            d = deep.display(),
            bin = keepout_bin()
        ));
        assert!(
            !out.success()
                && out.has("too long for a unix socket path")
                && out.has("set XDG_RUNTIME_DIR"),
            "[{r}] {out}"
        );
        let run = fx.home.join(".local/state/keepout/run");
        let out = fx.outside(&format!(
            "mkdir -p {d} && chmod 755 {d} && {bin} agent --daemon",
            d = run.display(),
            bin = keepout_bin()
        ));
        assert!(
            !out.success() && out.has("not private (chmod 700 it)"),
            "[{r}] {out}"
        );
    }
}
