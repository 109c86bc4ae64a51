//! `keepout agent` with real OpenSSH: `ssh-add`, `ssh` against a real `sshd` on 127.0.0.1,
//! `ssh-keygen -Y sign`, `git commit -S` (gpg.format=ssh), `git push` over SSH, and proxy mode
//! in front of OpenSSH's own `ssh-agent`. Approval is driven by a scripted askpass
//! (KEEPOUT_ASKPASS) that records each question and answers what the test wrote in a file.

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{euid, keepout_bin, runners, FIXTURE_PATH};

fn sh(script: &str, cwd: &Path) -> std::process::Output {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(super) fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A home, a runtime dir, a vault, a config and an askpass, all in one temporary directory.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup { dir };
        std::fs::create_dir_all(s.home().join(".ssh")).unwrap();
        std::fs::create_dir_all(s.run()).unwrap();
        std::fs::set_permissions(s.run(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let ask = s.path("askpass");
        std::fs::write(
            &ask,
            format!(
                "#!/bin/sh\nprintf '%s\\n--\\n' \"$1\" >> '{d}/asked'\n\
                 case \"$1\" in *assphrase*) echo 'correct horse'; exit 0;; esac\n\
                 a=$(cat '{d}/answer')\n\
                 [ \"$a\" = hang ] && exec sleep 60\n\
                 [ \"$a\" = yes ]\n",
                d = s.dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&ask, std::fs::Permissions::from_mode(0o755)).unwrap();
        s.answer("yes");
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn home(&self) -> PathBuf {
        self.path("home")
    }

    fn run(&self) -> PathBuf {
        self.path("run")
    }

    fn socket(&self) -> PathBuf {
        self.run().join("keepout/agent.sock")
    }

    fn known_hosts(&self) -> PathBuf {
        self.home().join(".ssh/known_hosts")
    }

    fn env<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        c.env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.run())
            .env("KEEPOUT_VAULT", self.path("data/vault.age"))
            .env("KEEPOUT_CONFIG", self.path("config.toml"))
            .env("KEEPOUT_ASKPASS", self.path("askpass"))
            .env("KEEPOUT_SCRYPT_WORK_FACTOR", "4")
            .env("KEEPOUT_PROMPT_TIMEOUT", "2")
            .env("SSH_AUTH_SOCK", self.socket())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::null())
    }

    fn keepout(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(keepout_bin());
        self.env(&mut c).args(args).output().unwrap()
    }

    /// A command with this setup's environment (SSH_AUTH_SOCK = the keepout agent).
    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        self.env(&mut c).args(args).current_dir(self.home());
        c
    }

    fn answer(&self, a: &str) {
        std::fs::write(self.path("answer"), a).unwrap();
    }

    /// The questions asked so far (passphrase questions left out).
    fn asked(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("asked"))
            .unwrap_or_default()
            .split("\n--\n")
            .filter(|q| !q.trim().is_empty() && !q.contains("assphrase"))
            .map(str::to_string)
            .collect()
    }

    fn config(&self, toml: &str) {
        std::fs::write(self.path("config.toml"), toml).unwrap();
    }

    /// A new key made by ssh-keygen, imported with `keepout ssh import --yes`; its .pub path.
    fn new_key(&self, name: &str, kind: &str) -> PathBuf {
        let file = self.home().join(".ssh").join(name);
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                kind,
                "-N",
                "",
                "-C",
                &format!("{name}@test"),
                "-f",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen: {}", text(&out));
        let out = self.keepout(&["ssh", "import", file.to_str().unwrap(), "--yes"]);
        assert!(out.status.success(), "ssh import: {}", text(&out));
        assert!(!file.exists(), "the plaintext private key was removed");
        file.with_extension("pub")
    }

    fn start_agent(&self, extra: &[&str]) -> Proc {
        let mut c = Command::new(keepout_bin());
        self.env(&mut c)
            .arg("agent")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.path("agent.log")).unwrap());
        let mut child = c.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("SSH_AUTH_SOCK="),
            "agent did not start: {line:?} {}",
            self.log()
        );
        Proc(child)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("agent.log")).unwrap_or_default()
    }
}

/// Whatever keepout left running for this setup (the unlock cache that a `keepout ssh import`
/// starts when no agent hosts it lives on for its idle minutes): killed with the setup, found by
/// the vault path in its environment.
impl Drop for Setup {
    fn drop(&mut self) {
        let mine = format!("KEEPOUT_VAULT={}", self.path("data/vault.age").display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
            if environ.split(|b| *b == 0).any(|kv| kv == mine.as_bytes()) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

/// A child process killed when dropped.
pub(super) struct Proc(pub(super) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real sshd on 127.0.0.1 that accepts one public key, with its host key in the setup's
/// known_hosts as `[127.0.0.1]:PORT`.
pub(super) struct Sshd {
    _proc: Proc,
    pub(super) port: u16,
}

impl Sshd {
    fn start(s: &Setup, authorized: &Path) -> Sshd {
        Sshd::start_in(&s.path("sshd"), &s.known_hosts(), authorized)
    }

    /// An sshd (as the test's own uid) with its files in `dir`, accepting the keys in
    /// `authorized`; its host key written to `known_hosts` as `[127.0.0.1]:PORT`.
    pub(super) fn start_in(dir: &Path, known_hosts: &Path, authorized: &Path) -> Sshd {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let host_key = dir.join("host_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::copy(authorized, dir.join("authorized_keys")).unwrap();
        if euid() == 0 {
            std::fs::create_dir_all("/run/sshd").unwrap(); // privilege separation directory
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            std::fs::write(
                dir.join("sshd_config"),
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                     StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPidFile none\nPermitRootLogin prohibit-password\n\
                     SetEnv PATH={FIXTURE_PATH}\n",
                    hk = host_key.display(),
                    ak = dir.join("authorized_keys").display()
                ),
            )
            .unwrap();
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(dir.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("log")).unwrap())
                .spawn()
                .expect("sshd (openssh-server) is installed");
            let proc = Proc(child);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
                    std::fs::write(known_hosts, format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
                    return Sshd { _proc: proc, port };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "sshd did not start: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
    }

    /// The ssh options that make the client use only the setup's known_hosts and the agent.
    fn ssh_options(&self, s: &Setup) -> Vec<String> {
        vec![
            "-F".into(),
            "none".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", s.known_hosts().display()),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("IdentityAgent={}", s.socket().display()),
        ]
    }

    fn ssh(&self, s: &Setup, command: &str) -> std::process::Output {
        let mut args = self.ssh_options(s);
        args.extend([
            "-p".into(),
            self.port.to_string(),
            format!("{}@127.0.0.1", whoami()),
            command.into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.cmd("ssh", &args).output().unwrap()
    }
}

/// ssh-add -l lists the vault's keys; an approved login works and the question says who and
/// for which host; a refused one fails; no answer in time fails; a host outside the key's
/// `hosts` fails without a question; a hashed known_hosts still names the host.
#[test]
fn ssh_login_is_asked_for_and_obeys_the_host_rule() {
    let s = Setup::new();
    let public = s.new_key("id_ed25519", "ed25519");
    let sshd = Sshd::start(&s, &public);
    s.config("[[ssh.key]]\nname = \"id_ed25519\"\nconfirm = \"always\"\nhosts = [\"127.0.0.1\"]\n");
    let user = whoami();
    {
        let _agent = s.start_agent(&[]);
        let out = s.cmd("ssh-add", &["-l"]).output().unwrap();
        assert!(
            out.status.success() && text(&out).contains("id_ed25519 (ED25519)"),
            "ssh-add -l: {}",
            text(&out)
        );
        assert!(s.asked().is_empty(), "listing asks nothing");

        let out = sshd.ssh(&s, "echo logged-in");
        assert!(
            text(&out).contains("logged-in"),
            "approved login: {}\n{}",
            text(&out),
            s.log()
        );
        let asked = s.asked();
        assert_eq!(asked.len(), 1, "one question: {asked:?}");
        assert!(
            asked[0].contains("wants to sign with id_ed25519 for")
                && asked[0].contains(&format!("{user}@127.0.0.1"))
                && asked[0].contains("via ssh")
                && asked[0].contains("pid "),
            "the question says who, with what and for where: {}",
            asked[0]
        );

        s.answer("no");
        let out = sshd.ssh(&s, "echo logged-in");
        assert!(
            !out.status.success() && !text(&out).contains("logged-in"),
            "refused login: {}",
            text(&out)
        );
        assert_eq!(s.asked().len(), 2);

        s.answer("hang");
        let start = Instant::now();
        let out = sshd.ssh(&s, "echo logged-in");
        assert!(!out.status.success(), "no answer is a no: {}", text(&out));
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the question timed out"
        );
    }

    // A key limited to other hosts: refused without a question.
    s.config("[[ssh.key]]\nname = \"id_ed25519\"\nhosts = [\"github.com\"]\n");
    s.answer("yes");
    {
        let _agent = s.start_agent(&[]);
        let before = s.asked().len();
        let out = sshd.ssh(&s, "echo logged-in");
        assert!(!out.status.success(), "host not allowed: {}", text(&out));
        assert_eq!(
            s.asked().len(),
            before,
            "no question for a host outside `hosts`"
        );
        assert!(s.log().contains("refused without asking"), "{}", s.log());
    }

    // Hashed known_hosts (ssh-keygen -H): the host is still recognised.
    let out = sh(
        &format!("ssh-keygen -H -f {}", s.known_hosts().display()),
        s.dir.path(),
    );
    assert!(out.status.success(), "ssh-keygen -H: {}", text(&out));
    assert!(std::fs::read_to_string(s.known_hosts())
        .unwrap()
        .starts_with("|1|"));
    s.config("[[ssh.key]]\nname = \"id_ed25519\"\nhosts = [\"127.0.0.1\"]\n");
    {
        let _agent = s.start_agent(&[]);
        let out = sshd.ssh(&s, "echo logged-in");
        assert!(
            text(&out).contains("logged-in"),
            "hashed known_hosts: {}\n{}",
            text(&out),
            s.log()
        );
        assert!(s
            .asked()
            .last()
            .unwrap()
            .contains(&format!("{user}@127.0.0.1")));
    }
}

/// `ssh-keygen -Y sign` and `git commit -S` with gpg.format=ssh: asked for as a git/ssh
/// signature with its namespace, and the signatures verify. `confirm = "5m"`: one yes covers the
/// asking process tree.
#[test]
fn ssh_signatures_for_files_and_git_commits() {
    let s = Setup::new();
    let public = s.new_key("signing", "ecdsa");
    s.config("[[ssh.key]]\nname = \"signing\"\nconfirm = \"always\"\nhosts = [\"github.com\"]\n");
    let _agent = s.start_agent(&[]);
    let home = s.home();
    std::fs::write(home.join("msg"), "hello\n").unwrap();
    let out = s
        .cmd(
            "ssh-keygen",
            &[
                "-Y",
                "sign",
                "-n",
                "file",
                "-f",
                public.to_str().unwrap(),
                "msg",
            ],
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -Y sign: {}\n{}",
        text(&out),
        s.log()
    );
    assert!(
        s.asked()[0].contains("git/ssh signature (namespace file)"),
        "{:?}",
        s.asked()
    );
    let key_line = std::fs::read_to_string(&public).unwrap();
    std::fs::write(home.join("allowed"), format!("me@test {key_line}")).unwrap();
    let out = sh(
        "ssh-keygen -Y verify -f allowed -I me@test -n file -s msg.sig < msg",
        &home,
    );
    assert!(
        out.status.success(),
        "the signature verifies: {}",
        text(&out)
    );

    s.answer("no");
    std::fs::remove_file(home.join("msg.sig")).unwrap();
    let out = s
        .cmd(
            "ssh-keygen",
            &[
                "-Y",
                "sign",
                "-n",
                "file",
                "-f",
                public.to_str().unwrap(),
                "msg",
            ],
        )
        .output()
        .unwrap();
    assert!(
        !out.status.success() && !home.join("msg.sig").exists(),
        "refused: {}",
        text(&out)
    );

    // git commit -S, signed through the agent.
    s.answer("yes");
    let repo = home.join("repo");
    let git = |args: &[&str]| {
        let mut c = s.cmd("git", &[]);
        c.args([
            "-c",
            "user.name=me",
            "-c",
            "user.email=me@test",
            "-c",
            "gpg.format=ssh",
        ])
        .arg("-c")
        .arg(format!("user.signingkey={}", public.display()))
        .arg("-c")
        .arg(format!(
            "gpg.ssh.allowedSignersFile={}",
            home.join("allowed-git").display()
        ))
        .args(args)
        .current_dir(&repo);
        c.output().unwrap()
    };
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.join("allowed-git"),
        format!("me@test namespaces=\"git\" {key_line}"),
    )
    .unwrap();
    assert!(git(&["init", "-q"]).status.success());
    let out = git(&["commit", "-q", "-S", "--allow-empty", "-m", "signed"]);
    assert!(
        out.status.success(),
        "git commit -S: {}\n{}",
        text(&out),
        s.log()
    );
    let q = s.asked().last().unwrap().clone();
    assert!(
        q.contains("namespace git") && q.contains("git commit"),
        "the question names git commit: {q}"
    );
    let out = git(&["verify-commit", "HEAD"]);
    assert!(out.status.success(), "git verify-commit: {}", text(&out));
    s.answer("no");
    let out = git(&["commit", "-q", "-S", "--allow-empty", "-m", "refused"]);
    assert!(
        !out.status.success(),
        "a refused signature fails the commit"
    );
}

/// confirm = "5m" without a terminal: one yes covers the process tree that asked; another
/// tree is asked again. (Each tree runs under `setsid`, without a terminal, even when the suite
/// runs in one: a terminal session is covered as a whole, see agent_terminal.rs.)
#[test]
fn a_timed_approval_covers_one_process_tree() {
    let s = Setup::new();
    let public = s.new_key("id_ed25519", "ed25519");
    s.config("[[ssh.key]]\nname = \"id_ed25519\"\nconfirm = \"5m\"\n");
    let _agent = s.start_agent(&[]);
    let home = s.home();
    std::fs::write(home.join("a"), "a").unwrap();
    std::fs::write(home.join("b"), "b").unwrap();
    // xargs runs ssh-keygen twice: one tree, one question.
    let script = format!(
        "printf 'a\\nb\\n' | xargs -n1 ssh-keygen -q -Y sign -n file -f {}",
        public.display()
    );
    let out = s
        .cmd("setsid", &["-w", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), s.log());
    assert_eq!(
        s.asked().len(),
        1,
        "one question for the tree: {:?}",
        s.asked()
    );
    assert!(s.asked()[0].contains("xargs"), "{:?}", s.asked());
    std::fs::remove_file(home.join("a.sig")).unwrap();
    let out = s
        .cmd(
            "setsid",
            &[
                "-w",
                "sh",
                "-c",
                &script.replace("printf 'a\\nb\\n'", "printf 'a\\n'"),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(s.asked().len(), 2, "another tree is asked again");
}

/// git push over SSH to a repository served by the test's sshd: approved, it lands; refused,
/// it fails and the repository is unchanged.
#[test]
fn git_push_over_ssh_is_asked_for() {
    let s = Setup::new();
    let public = s.new_key("id_ed25519", "ed25519");
    let sshd = Sshd::start(&s, &public);
    s.config("[[ssh.key]]\nname = \"id_ed25519\"\nhosts = [\"127.0.0.1\"]\n");
    let _agent = s.start_agent(&[]);
    let srv = s.path("srv");
    std::fs::create_dir_all(&srv).unwrap();
    assert!(sh("git init -q --bare repo.git", &srv).status.success());
    let work = s.home().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let ssh_command = format!("ssh {}", sshd.ssh_options(&s).join(" "));
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        whoami(),
        sshd.port,
        srv.join("repo.git").display()
    );
    let git = |args: &[&str]| {
        let mut c = s.cmd("git", &["-c", "user.name=me", "-c", "user.email=me@test"]);
        c.args(args)
            .current_dir(&work)
            .env("GIT_SSH_COMMAND", &ssh_command);
        c.output().unwrap()
    };
    assert!(git(&["init", "-q", "-b", "main"]).status.success());
    assert!(git(&["commit", "-q", "--allow-empty", "-m", "one"])
        .status
        .success());
    let out = git(&["push", "-q", &url, "main"]);
    assert!(
        out.status.success(),
        "approved push: {}\n{}",
        text(&out),
        s.log()
    );
    let q = s.asked().last().unwrap().clone();
    assert!(
        q.contains("git push") && q.contains("via ssh") && q.contains("127.0.0.1"),
        "{q}"
    );
    let head = |_: ()| text(&sh("git rev-parse main", &srv.join("repo.git")));
    let landed = head(());
    s.answer("no");
    assert!(git(&["commit", "-q", "--allow-empty", "-m", "two"])
        .status
        .success());
    let out = git(&["push", "-q", &url, "main"]);
    assert!(!out.status.success(), "refused push fails");
    assert_eq!(head(()), landed, "nothing reached the server");
}

/// Proxy mode in front of OpenSSH's own ssh-agent: its keys, keepout's questions and rules;
/// removing keys through keepout is asked for, and a no leaves them.
#[test]
fn proxy_mode_in_front_of_openssh_agent() {
    let s = Setup::new();
    let key = s.home().join(".ssh/upstream_key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "upstream@test", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let upstream = s.path("upstream.sock");
    let _ssh_agent = Proc(
        Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&upstream)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !upstream.exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &upstream)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-add to ssh-agent: {}", text(&out));
    let sshd = Sshd::start(&s, &key.with_extension("pub"));
    // Without keepout, the upstream agent signs for anyone, without asking.
    let mut direct = sshd.ssh_options(&s);
    let last = direct.len() - 1;
    direct[last] = format!("IdentityAgent={}", upstream.display());
    direct.extend([
        "-p".into(),
        sshd.port.to_string(),
        format!("{}@127.0.0.1", whoami()),
        "echo direct".into(),
    ]);
    let out = Command::new("ssh")
        .args(&direct)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        text(&out).contains("direct"),
        "the bare agent signs silently: {}",
        text(&out)
    );

    s.config("[[ssh.key]]\nname = \"upstream@test\"\nhosts = [\"127.0.0.1\"]\n");
    let _agent = s.start_agent(&["--upstream", upstream.to_str().unwrap()]);
    let out = s.cmd("ssh-add", &["-l"]).output().unwrap();
    assert!(
        text(&out).contains("upstream@test"),
        "the upstream's keys: {}",
        text(&out)
    );
    let out = sshd.ssh(&s, "echo proxied");
    assert!(
        text(&out).contains("proxied"),
        "approved: {}\n{}",
        text(&out),
        s.log()
    );
    assert!(s.asked().last().unwrap().contains("upstream@test"));
    s.answer("no");
    let out = sshd.ssh(&s, "echo proxied");
    assert!(!out.status.success(), "refused through the proxy");
    let out = s.cmd("ssh-add", &["-D"]).output().unwrap();
    assert!(
        !out.status.success(),
        "removing keys refused: {}",
        text(&out)
    );
    assert!(s
        .asked()
        .last()
        .unwrap()
        .contains("remove keys from the upstream agent"));
    let out = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &upstream)
        .output()
        .unwrap();
    assert!(
        text(&out).contains("upstream@test"),
        "the key is still upstream"
    );
}

/// keepout's own agent refuses keys added through the socket: untrusted code cannot plant one.
#[test]
fn adding_and_removing_keys_through_the_socket_is_refused() {
    let s = Setup::new();
    s.new_key("id_ed25519", "ed25519");
    let _agent = s.start_agent(&[]);
    let planted = s.home().join("planted");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&planted)
        .status()
        .unwrap()
        .success());
    let out = s
        .cmd("ssh-add", &[planted.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "ssh-add refused: {}", text(&out));
    let out = s.cmd("ssh-add", &["-D"]).output().unwrap();
    assert!(!out.status.success(), "ssh-add -D refused: {}", text(&out));
    let out = s.cmd("ssh-add", &["-l"]).output().unwrap();
    let listed = text(&out);
    assert!(
        listed.contains("id_ed25519") && !listed.contains("planted"),
        "{listed}"
    );
}

/// The agent serves only its own uid (SO_PEERCRED), even to root; and `keepout run` cannot
/// reach it, even when told its path.
#[test]
fn other_uids_and_the_sandbox_cannot_reach_the_agent() {
    let s = Setup::new();
    s.new_key("id_ed25519", "ed25519");
    let _agent = s.start_agent(&[]);
    // Reachable here, without a sandbox:
    let out = s.cmd("ssh-add", &["-l"]).output().unwrap();
    assert!(out.status.success(), "ssh-add -l outside: {}", text(&out));
    // Not from inside `keepout run`, even with SSH_AUTH_SOCK passed in.
    let out = s
        .cmd(
            keepout_bin(),
            &["run", "--env", "SSH_AUTH_SOCK", "--", "ssh-add", "-l"],
        )
        .output()
        .unwrap();
    assert!(
        !out.status.success() && !text(&out).contains("ED25519"),
        "inside the sandbox: {}",
        text(&out)
    );

    if euid() != 0 {
        return; // the other-uid half needs root to run the agent as another user
    }
    let other = runners()
        .into_iter()
        .find(|r| !r.is_root())
        .expect("the test user");
    let s2 = Setup::new();
    let out = Command::new("chown")
        .args(["-R", &format!("{}:{}", other.uid, other.gid)])
        .arg(s2.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let env: Vec<(String, String)> = vec![
        ("HOME".into(), s2.home().display().to_string()),
        ("XDG_RUNTIME_DIR".into(), s2.run().display().to_string()),
        (
            "KEEPOUT_VAULT".into(),
            s2.path("data/vault.age").display().to_string(),
        ),
        (
            "KEEPOUT_CONFIG".into(),
            s2.path("config.toml").display().to_string(),
        ),
        ("PATH".into(), FIXTURE_PATH.into()),
    ];
    let mut cmd = other.command(
        &[keepout_bin().to_string(), "agent".into()],
        &env,
        s2.dir.path(),
    );
    cmd.stdout(Stdio::piped())
        .stderr(std::fs::File::create("/dev/null").unwrap());
    let mut child = Proc(cmd.spawn().unwrap());
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("SSH_AUTH_SOCK="),
        "agent as {other}: {line:?}"
    );
    // Non-dumpable: even its own uid cannot read its memory or environment through /proc
    // (while a plain process of that uid, `sleep`, can be read).
    let pid = child.0.id();
    let read_proc = |p: u32| {
        other
            .command(
                &["cat".into(), format!("/proc/{p}/environ")],
                &env,
                s2.dir.path(),
            )
            .output()
            .unwrap()
    };
    let mut sleeper = Proc(
        other
            .command(&["sleep".into(), "30".into()], &env, s2.dir.path())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        read_proc(sleeper.0.id()).status.success(),
        "an ordinary process of the uid is readable"
    );
    let _ = sleeper.0.kill();
    assert!(
        !read_proc(pid).status.success(),
        "the agent's /proc/PID/environ is not readable"
    );
    // Its owner is served...
    let mut own = other.command(
        &["ssh-add".into(), "-l".into()],
        &[("SSH_AUTH_SOCK".into(), s2.socket().display().to_string())],
        s2.dir.path(),
    );
    let out = own.output().unwrap();
    assert!(
        text(&out).contains("no identities"),
        "the owner is served: {}",
        text(&out)
    );
    // ...root, which can open the socket, is not.
    let out = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", s2.socket())
        .output()
        .unwrap();
    assert!(
        !out.status.success() && !text(&out).contains("no identities"),
        "root refused: {}",
        text(&out)
    );
}

/// RSA (rsa-sha2-256/512) and ECDSA keys log in too; `confirm = "never"` signs without a
/// question (the host rule still applies).
#[test]
fn rsa_and_ecdsa_keys_with_confirm_never() {
    let s = Setup::new();
    let rsa = s.new_key("id_rsa", "rsa");
    let ecdsa = s.new_key("id_ecdsa", "ecdsa");
    let both = s.path("both.pub");
    std::fs::write(
        &both,
        std::fs::read_to_string(&rsa).unwrap() + &std::fs::read_to_string(&ecdsa).unwrap(),
    )
    .unwrap();
    let sshd = Sshd::start(&s, &both);
    s.config(
        "[[ssh.key]]\nname = \"id_rsa\"\nconfirm = \"never\"\nhosts = [\"127.0.0.1\"]\n\n\
         [[ssh.key]]\nname = \"id_ecdsa\"\nconfirm = \"never\"\nhosts = [\"127.0.0.1\"]\n",
    );
    let _agent = s.start_agent(&[]);
    s.answer("no"); // a question would be answered no: none must be asked
    for (name, alg) in [
        ("id_rsa", "rsa-sha2-512"),
        ("id_ecdsa", "ecdsa-sha2-nistp256"),
    ] {
        let mut args = sshd.ssh_options(&s);
        args.extend([
            "-o".into(),
            format!("PubkeyAcceptedAlgorithms={alg}"),
            "-p".into(),
            sshd.port.to_string(),
            format!("{}@127.0.0.1", whoami()),
            "echo logged-in".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = s.cmd("ssh", &args).output().unwrap();
        assert!(
            text(&out).contains("logged-in"),
            "{name} ({alg}): {}\n{}",
            text(&out),
            s.log()
        );
        assert!(
            s.log().contains(&format!("signed with {name}")),
            "{}",
            s.log()
        );
    }
    assert!(s.asked().is_empty(), "confirm = never: {:?}", s.asked());
}

/// `ssh-add -x` locks the agent (no keys listed, no signatures, the vault forgotten) and
/// `ssh-add -X` with the same password unlocks it; a wrong password does not.
#[test]
fn ssh_add_lock_and_unlock() {
    let s = Setup::new();
    let public = s.new_key("id_ed25519", "ed25519");
    s.config("[[ssh.key]]\nname = \"id_ed25519\"\nconfirm = \"never\"\n");
    let _agent = s.start_agent(&[]);
    let pw = s.path("lockpw");
    let ask = |password: &str| {
        std::fs::write(&pw, format!("#!/bin/sh\necho {password}\n")).unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let ssh_add = |flag: &str| {
        let mut c = s.cmd("ssh-add", &[flag]);
        c.env("SSH_ASKPASS", &pw)
            .env("SSH_ASKPASS_REQUIRE", "force");
        c.output().unwrap()
    };
    let sign = || {
        s.cmd(
            "ssh-keygen",
            &[
                "-q",
                "-Y",
                "sign",
                "-n",
                "file",
                "-f",
                public.to_str().unwrap(),
                "m",
            ],
        )
        .output()
        .unwrap()
    };
    std::fs::write(s.home().join("m"), "m").unwrap();
    ask("lock-pw");
    assert!(ssh_add("-x").status.success(), "ssh-add -x");
    let listed = text(&s.cmd("ssh-add", &["-l"]).output().unwrap());
    assert!(
        !listed.contains("id_ed25519"),
        "locked: no keys listed: {listed}"
    );
    assert!(!sign().status.success(), "locked: no signature");
    ask("wrong");
    assert!(
        !ssh_add("-X").status.success(),
        "a wrong password does not unlock"
    );
    ask("lock-pw");
    assert!(ssh_add("-X").status.success(), "ssh-add -X");
    assert!(
        sign().status.success(),
        "unlocked: signs again: {}",
        s.log()
    );
}

/// The words of a systemd `ExecStart=` line as keepout writes them: plain words, or one in
/// double quotes with `\\` and `\"` escaped; `%%` and `$$` are systemd's escapes.
fn exec_start_words(line: &str, runtime_dir: &Path) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let (word, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let mut word = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => word.push(chars.next().expect("an escaped character").1),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => word.push(c),
                }
            }
            (word, &quoted[end..])
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        };
        let word = word
            .replace("%t", &runtime_dir.display().to_string())
            .replace("%%", "%")
            .replace("$$", "$");
        words.push(word);
        rest = after.trim_start();
    }
    words
}

/// `keepout agent --systemd-unit` writes a unit that works wherever keepout is installed: here a
/// path with a space and a `%` in it. systemd-analyze verifies it (the binary it names exists
/// and runs), and its ExecStart, run as systemd would, starts an agent that answers ssh-add.
/// The unit the docs gave before (`%h/.cargo/bin/keepout`) fails that check where keepout was
/// not installed by cargo into this home.
#[test]
fn the_systemd_unit_names_this_binary_wherever_it_is() {
    if !Path::new("/usr/bin/systemd-analyze").exists() {
        super::harness::note("systemd-analyze not installed: the systemd unit test is skipped");
        return;
    }
    let s = Setup::new();
    let installed = s.path("my tools 100%/keepout");
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(keepout_bin(), &installed).unwrap();
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o755)).unwrap();
    let verify = |unit: &str| {
        let file = s.path("keepout-agent.service");
        std::fs::write(&file, unit).unwrap();
        Command::new("/usr/bin/systemd-analyze")
            .arg("verify")
            .arg(&file)
            .env("HOME", s.home())
            .output()
            .unwrap()
    };

    let old = "[Unit]\nDescription=keepout\n[Service]\n\
               ExecStart=%h/.cargo/bin/keepout agent --socket %t/keepout/agent.sock\n\
               [Install]\nWantedBy=default.target\n";
    let real_home = std::env::var("HOME").unwrap_or_default();
    if !Path::new(&real_home).join(".cargo/bin/keepout").exists() {
        let out = verify(old);
        assert!(
            !out.status.success(),
            "the old fixed-path unit fails verification without ~/.cargo/bin/keepout: {}",
            text(&out)
        );
    }

    let mut made = Command::new(&installed);
    s.env(&mut made).args(["agent", "--systemd-unit"]);
    let made = made.output().unwrap();
    assert!(made.status.success(), "--systemd-unit: {}", text(&made));
    let unit = String::from_utf8(made.stdout).unwrap();
    let out = verify(&unit);
    assert!(
        out.status.success(),
        "systemd-analyze verify accepts the unit:\n{unit}\n{}",
        text(&out)
    );
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words = exec_start_words(exec, &s.run());
    assert_eq!(
        Path::new(&words[0]),
        installed.canonicalize().unwrap(),
        "ExecStart names the binary that made the unit:\n{unit}"
    );
    let mut agent = Command::new(&words[0]);
    s.env(&mut agent)
        .args(&words[1..])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.path("agent.log")).unwrap());
    let _agent = Proc(agent.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.socket().exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let listed = s.cmd("ssh-add", &["-l"]).output().unwrap();
    assert!(
        matches!(listed.status.code(), Some(0) | Some(1))
            && !text(&listed).contains("Could not open"),
        "the unit's agent answers ssh-add -l: {} (agent log: {})",
        text(&listed),
        s.log()
    );
}

/// `keepout ssh import` never replaces a stored key: another key under the same name (a new
/// key made later under the same file name) is refused, the stored one kept and the file left;
/// the same key again is "already in the vault".
#[test]
fn ssh_import_never_replaces_a_stored_key() {
    let s = Setup::new();
    let first_pub = s.new_key("id_dup", "ed25519");
    let fingerprint = |pubfile: &Path| {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(pubfile)
            .output()
            .unwrap();
        text(&out).split_whitespace().nth(1).unwrap().to_string()
    };
    let first_fp = fingerprint(&first_pub);
    // A new key, made later under the same file name.
    let file = s.home().join(".ssh/id_dup");
    std::fs::remove_file(&first_pub).unwrap();
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "second@test", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let second_fp = fingerprint(&file.with_extension("pub"));
    assert_ne!(first_fp, second_fp);
    let out = s.keepout(&["ssh", "import", file.to_str().unwrap(), "--yes"]);
    assert!(
        !out.status.success()
            && text(&out).contains("already holds another key named id_dup")
            && text(&out).contains("nothing was changed"),
        "another key under a stored name is refused: {}",
        text(&out)
    );
    assert!(file.exists(), "the new key's file is left as it is");
    let list = s.keepout(&["ssh", "list"]);
    assert!(
        text(&list).contains(&first_fp) && !text(&list).contains(&second_fp),
        "the stored key is the first one: {}",
        text(&list)
    );
    // The new one under its own name: stored beside it.
    let out = s.keepout(&[
        "ssh",
        "import",
        file.to_str().unwrap(),
        "--name",
        "id_dup-2",
        "--keep",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // The same key again: already there, nothing replaced.
    let out = s.keepout(&[
        "ssh",
        "import",
        file.to_str().unwrap(),
        "--name",
        "id_dup-2",
        "--keep",
    ]);
    assert!(
        out.status.success() && text(&out).contains("already in the vault"),
        "the same key again: {}",
        text(&out)
    );
    let list = s.keepout(&["ssh", "list"]);
    assert!(
        text(&list).contains(&first_fp) && text(&list).contains(&second_fp),
        "both keys are there: {}",
        text(&list)
    );
}
