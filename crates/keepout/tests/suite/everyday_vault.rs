//! The vault in everyday use, as a new user meets it (issue 13), for every runner: imports that
//! never lose a stored secret, passphrases asked again (a real terminal: a pty made by Python's
//! `pty` module, and a scripted askpass), weak passphrases, a status line while scrypt runs,
//! durations with units, curl working after `import netrc`, and `exec` of a missing command.

use std::path::PathBuf;
use std::time::Duration;

use super::harness::{keepout_bin, poll, q, read, run, runners, write_file, Fixture, Output};
use super::harness::{FIXTURE_PATH, PYTHON};

/// A strong passphrase (no weak-passphrase question).
const PASS: &str = "correct horse battery";

/// Runs argv in a new pty (the runner's own: the runner opens it) and plays a dialogue: for each
/// `[expect, send]`, wait until `expect` appears in the output after the previous match, then
/// type `send`. Prints everything the terminal showed, then `EXIT <status>`.
const PTY_DRIVER: &str = r#"
import json, os, pty, select, sys, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(spec["argv"][0], spec["argv"])
out = b""
def more(deadline):
    global out
    left = deadline - time.time()
    if left <= 0:
        return False
    r, _, _ = select.select([fd], [], [], left)
    if not r:
        return False
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return False
    if not chunk:
        return False
    out += chunk
    return True
pos = 0
for expect, send in spec["steps"]:
    deadline = time.time() + 30
    while expect.encode() not in out[pos:]:
        if not more(deadline):
            sys.stdout.write(out.decode(errors="replace"))
            print("\nNOT SEEN: " + expect)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.exit(0)
    pos = out.index(expect.encode(), pos) + len(expect)
    time.sleep(0.05)
    os.write(fd, send.encode())
deadline = time.time() + 30
while more(deadline):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print("\nEXIT %d" % os.waitstatus_to_exitcode(status))
"#;

/// One runner's vault, configuration and askpass, in the fixture.
struct Kit<'a> {
    fx: &'a Fixture,
    dir: PathBuf,
}

impl<'a> Kit<'a> {
    fn new(fx: &'a Fixture) -> Kit<'a> {
        let dir = fx.mkdir("kit");
        // The askpass logs each question; a passphrase question takes the next line of
        // `answers` (the last one once they run out, PASS when there is none); an approval is
        // a yes unless `answers-confirm` says no.
        write_file(
            &dir.join("ask.sh"),
            &format!(
                "#!/bin/sh\nd={d}\nprintf '%s\\n' \"$1\" >> $d/asked\n\
                 if [ -n \"$SSH_ASKPASS_PROMPT\" ]; then [ \"$(cat $d/answers-confirm 2>/dev/null)\" != no ]; exit; fi\n\
                 if [ -s $d/answers ]; then head -n1 $d/answers; \
                 if [ $(wc -l < $d/answers) -gt 1 ]; then sed -i 1d $d/answers; fi; else echo {PASS:?}; fi\n",
                d = q(dir.display().to_string())
            ),
            0o755,
        );
        write_file(&dir.join("config.toml"), "", 0o644);
        fx.give_to_runner(&dir);
        Kit { fx, dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    fn env(&self, askpass: bool) -> Vec<(String, String)> {
        let mut env = self.fx.env().to_vec();
        env.retain(|(k, _)| k != "PATH");
        env.extend(
            [
                ("PATH", FIXTURE_PATH.to_string()),
                ("KEEPOUT_VAULT", self.path("data/vault.age")),
                ("KEEPOUT_CONFIG", self.path("config.toml")),
                ("KEEPOUT_SCRYPT_WORK_FACTOR", "4".into()),
                ("KEEPOUT_NO_CACHE", "1".into()),
                ("TERM", "xterm".into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        if askpass {
            env.push(("KEEPOUT_ASKPASS".into(), self.path("ask.sh")));
        }
        env
    }

    /// `sh -c script` as the runner, in the project, `KEEPOUT ` (with its space) standing for
    /// the binary; with the scripted askpass.
    fn sh(&self, script: &str) -> Output {
        let script = script.replace("KEEPOUT ", &format!("{} ", keepout_bin()));
        let argv = ["/bin/sh".to_string(), "-c".to_string(), script.clone()];
        let cmd = self
            .fx
            .runner
            .command(&argv, &self.env(true), &self.fx.project);
        run(cmd, format!("[{}] sh -c {}", self.fx.runner, q(script)))
    }

    /// `keepout ARGS` on a real terminal (no askpass), playing `steps`; the terminal's text.
    fn on_terminal(&self, args: &[&str], steps: &[(&str, &str)]) -> String {
        let driver = self.dir.join("drive_terminal.py");
        write_file(&driver, PTY_DRIVER, 0o644);
        let mut argv = vec![keepout_bin().to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let spec = serde_json::json!({ "argv": argv, "steps": steps });
        let full = [
            PYTHON.to_string(),
            driver.display().to_string(),
            spec.to_string(),
        ];
        let cmd = self
            .fx
            .runner
            .command(&full, &self.env(false), &self.fx.project);
        let out = run(
            cmd,
            format!("[{}] on a pty: keepout {}", self.fx.runner, args.join(" ")),
        );
        assert!(out.success(), "the pty driver failed:{out}");
        out.stdout
    }

    fn answers(&self, lines: &[&str]) {
        write_file(&self.dir.join("answers"), &(lines.join("\n") + "\n"), 0o644);
        self.fx.give_to_runner(&self.dir.join("answers"));
    }

    fn asked(&self) -> Vec<String> {
        read(&self.dir.join("asked"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn forget_asked(&self) {
        let _ = std::fs::remove_file(self.dir.join("asked"));
    }

    fn config(&self, text: &str) {
        write_file(&self.dir.join("config.toml"), text, 0o644);
    }

    /// The secrets' names.
    fn names(&self) -> Vec<String> {
        let out = self.sh("KEEPOUT secret list --json");
        assert!(out.success(), "list:{out}");
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The values of `names`, through `keepout exec` and a scope made for it (there is no
    /// command that prints a value).
    fn values(&self, names: &[&str]) -> Vec<String> {
        let env: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("V{i} = \"keepout:{n}\""))
            .collect();
        self.config(&format!(
            "[[scope]]\nname = \"check\"\ndirs = [\"{}\"]\nenv = {{ {} }}\n",
            self.fx.project.display(),
            env.join(", ")
        ));
        let show: Vec<String> = (0..names.len())
            .map(|i| format!("printf '%s\\n--\\n' \"$V{i}\""))
            .collect();
        let out = self.sh(&format!("KEEPOUT exec -- sh -c {}", q(show.join("; "))));
        assert!(out.success(), "exec:{out}");
        out.stdout
            .split("\n--\n")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Item 1: two imports of the same kind, and netrc then git-credentials, keep every stored
/// value and every file's backup; the same file again adds nothing; `--replace` replaces.
#[test]
fn imports_never_lose_a_stored_secret() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        let first = format!("pypi-FAKE-PYPIRC-{}", fx.rand);
        let out = kit.sh("KEEPOUT import pypirc --yes");
        assert!(out.success(), "first import:{out}");
        let other = fx.root.join("other.pypirc");
        let second = format!("pypi-SECOND-{}", fx.rand);
        let other_text = format!("[pypi]\nusername = __token__\npassword = {second}\n");
        let write_other = || {
            write_file(&other, &other_text, 0o600);
            fx.give_to_runner(&other);
        };
        write_other();
        let import_other = format!("KEEPOUT import pypirc --file {} --yes", other.display());
        let out = kit.sh(&import_other);
        assert!(out.success(), "[{r}] second import:{out}");
        assert!(
            out.stderr
                .contains("pypi/pypi already holds a different value, kept")
                && out.stderr.contains("stored as pypi/pypi-2")
                && out.stderr.contains("backup/pypirc-2"),
            "[{r}] the second import says where the new value went:{out}"
        );
        let names = kit.names();
        for n in [
            "pypi/pypi",
            "pypi/pypi-2",
            "backup/pypirc",
            "backup/pypirc-2",
        ] {
            assert!(names.contains(&n.to_string()), "[{r}] {n} in {names:?}");
        }
        let v = kit.values(&[
            "pypi/pypi",
            "pypi/pypi-2",
            "backup/pypirc",
            "backup/pypirc-2",
        ]);
        assert_eq!(v[0], first, "[{r}] the first token is still there");
        assert_eq!(v[1], second, "[{r}] and the second next to it");
        assert!(
            v[2].contains(&first) && v[3] == other_text,
            "[{r}] each file's backup is kept: {v:?}"
        );

        // The same file again: already stored, nothing added.
        write_other();
        let out = kit.sh(&import_other);
        assert!(
            out.success()
                && out.stderr.contains("pypi/pypi-2 already stored")
                && out
                    .stderr
                    .contains("already kept in the vault as backup/pypirc-2"),
            "[{r}] the same file again:{out}"
        );
        let again = kit.names();
        assert_eq!(again, names, "[{r}] nothing was added");

        // --replace opts in to replacing.
        write_file(
            &other,
            "[pypi]\nusername = __token__\npassword = pypi-THIRD\n",
            0o600,
        );
        fx.give_to_runner(&other);
        let out = kit.sh(&format!("{import_other} --replace"));
        assert!(
            out.success() && out.stderr.contains("replaced pypi/pypi"),
            "[{r}]{out}"
        );
        assert_eq!(kit.values(&["pypi/pypi"]), ["pypi-THIRD"], "[{r}]");

        // netrc, then git-credentials: the same name git/github.com/victim, two values.
        let out = kit.sh("KEEPOUT import netrc --yes && KEEPOUT import git-credentials --yes");
        assert!(out.success(), "[{r}] netrc then git-credentials:{out}");
        assert!(
            out.stderr.contains("stored as git/github.com/victim-2"),
            "[{r}]{out}"
        );
        let v = kit.values(&["git/github.com/victim", "git/github.com/victim-2"]);
        assert_eq!(
            v,
            [
                format!("FAKE-NETRC-{}", fx.rand),
                format!("FAKE-GITCRED-{}", fx.rand)
            ],
            "[{r}] both logins are retrievable"
        );
    }
}

/// Item 1 on a real terminal: a name that holds a different value is a question (keep both /
/// replace / keep the old one); "no, no" keeps the old value and stores nothing new under it.
#[test]
fn an_import_asks_on_a_terminal_before_touching_a_stored_secret() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        let out = kit.sh("KEEPOUT import pypirc --yes");
        assert!(out.success(), "[{r}]{out}");
        let other = fx.root.join("other.pypirc");
        write_file(&other, "[pypi]\npassword = pypi-OTHER\n", 0o600);
        fx.give_to_runner(&other);
        let file = other.display().to_string();
        let screen = kit.on_terminal(
            &["import", "pypirc", "--file", &file, "--keep"],
            &[
                ("Passphrase for", &format!("{PASS}\n")),
                ("Keep both, storing the new one as pypi/pypi-2?", "n\n"),
                ("Replace the stored value of pypi/pypi", "n\n"),
            ],
        );
        assert!(
            screen.contains("pypi/pypi kept as it was") && screen.contains("EXIT 0"),
            "[{r}]{screen}"
        );
        assert!(
            screen.contains("unlocking the vault (scrypt")
                && screen.contains("writing the vault (scrypt")
                && screen.contains("reading the vault (scrypt"),
            "[{r}] item 5: each scrypt step of the import has its status line:{screen}"
        );
        let names = kit.names();
        assert!(
            !names.contains(&"pypi/pypi-2".to_string()),
            "[{r}] {names:?}"
        );
        assert_eq!(
            kit.values(&["pypi/pypi", "backup/pypirc-2"]),
            [
                format!("pypi-FAKE-PYPIRC-{}", fx.rand),
                "[pypi]\npassword = pypi-OTHER\n".to_string()
            ],
            "[{r}] the old value kept, the new file in its backup"
        );
        // Without --keep too: the file is then the only working copy of the value not stored
        // on its own, so it is left as it is, and not even offered for removal.
        let screen = kit.on_terminal(
            &["import", "pypirc", "--file", &file],
            &[
                ("Passphrase for", &format!("{PASS}\n")),
                ("Keep both, storing the new one as pypi/pypi-2?", "n\n"),
                ("Replace the stored value of pypi/pypi", "n\n"),
            ],
        );
        assert!(
            screen.contains("left as it is: some of its values were not stored on their own")
                && !screen.contains("Remove ")
                && screen.contains("EXIT 0"),
            "[{r}]{screen}"
        );
        assert!(other.exists(), "[{r}] the file is kept");
    }
}

/// Items 2, 3 and 5 on a real terminal: a weak new passphrase is questioned, two that differ
/// are asked again, and the value, asked after them, is stored; a status line shows while
/// scrypt runs.
#[test]
fn passphrases_on_a_terminal_are_asked_again() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        let screen = kit.on_terminal(
            &["secret", "set", "web/token"],
            &[
                ("New passphrase", "short\n"),
                ("passphrase is weak", ""),
                ("[y/N]", "n\n"),
                ("New passphrase", &format!("{PASS}\n")),
                ("The same passphrase again", "correct horse batterY\n"),
                ("differ; try again", ""),
                ("New passphrase", &format!("{PASS}\n")),
                ("The same passphrase again", &format!("{PASS}\n")),
                ("Value for web/token", "tok-VALUE-1\n"),
            ],
        );
        assert!(
            screen.contains("stored web/token") && screen.contains("EXIT 0"),
            "[{r}] the third passphrase, then the value:{screen}"
        );
        assert!(
            screen.contains("12 or more"),
            "[{r}] the rule is said:{screen}"
        );
        assert!(
            screen.contains("(scrypt") && screen.contains("\u{1b}[K"),
            "[{r}] a status line while scrypt runs, erased after:{screen}"
        );
        assert_eq!(kit.values(&["web/token"]), ["tok-VALUE-1"], "[{r}]");
    }
}

/// Items 4 and 5 on a real terminal: a wrong passphrase gets three tries ("Sorry, try again."
/// between, as sudo), then the error (exit 3); a status line shows while scrypt unlocks, and
/// none at all on a pipe.
#[test]
fn a_wrong_passphrase_on_a_terminal_gets_three_tries() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        let out = kit.sh("echo v | KEEPOUT secret set web/token");
        assert!(out.success(), "[{r}]{out}");
        let screen = kit.on_terminal(
            &["secret", "list"],
            &[
                ("Passphrase for", "wrong one\n"),
                ("Sorry, try again.", ""),
                ("Passphrase for", "wrong two\n"),
                ("Sorry, try again.", ""),
                ("Passphrase for", &format!("{PASS}\n")),
            ],
        );
        assert!(
            screen.contains("web/token") && screen.contains("EXIT 0"),
            "[{r}] right at the third try:{screen}"
        );
        assert!(
            screen.contains("unlocking the vault (scrypt") && screen.contains("\u{1b}[K"),
            "[{r}] a status line while scrypt runs, erased after:{screen}"
        );
        let screen = kit.on_terminal(
            &["secret", "list"],
            &[
                ("Passphrase for", "wrong one\n"),
                ("Passphrase for", "wrong two\n"),
                ("Passphrase for", "wrong three\n"),
            ],
        );
        assert!(
            screen.matches("Sorry, try again.").count() == 2
                && screen.contains("wrong passphrase")
                && screen.contains("EXIT 3"),
            "[{r}] three wrong: the error:{screen}"
        );

        // On a pipe: no status line, only the real messages.
        let out = kit.sh("echo v2 | KEEPOUT secret set web/other 2>&1");
        assert!(
            out.success() && !out.stdout.contains("scrypt") && !out.stdout.contains('\u{1b}'),
            "[{r}] nothing but messages on a pipe:{out}"
        );
    }
}

/// Items 2 and 4 through an askpass (no terminal): differing new passphrases are asked again
/// and the value read from the pipe is stored; a wrong passphrase is asked three times.
#[test]
fn passphrases_through_askpass_are_asked_again() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        kit.answers(&[PASS, "not the same at all", PASS, PASS]);
        let out = kit.sh("printf piped-VALUE | KEEPOUT secret set web/token");
        assert!(out.success(), "[{r}] the second pair matched:{out}");
        assert!(out.stderr.contains("differ; try again"), "[{r}]{out}");
        kit.answers(&[PASS]);
        assert_eq!(kit.values(&["web/token"]), ["piped-VALUE"], "[{r}]");

        kit.forget_asked();
        kit.answers(&["wrong"]);
        let out = kit.sh("KEEPOUT secret list");
        let asked = kit.asked();
        assert!(
            out.code == Some(3)
                && out.stderr.matches("Sorry, try again.").count() == 2
                && asked.len() == 3,
            "[{r}] three tries, then exit 3: {asked:?}{out}"
        );

        // A weak passphrase through the askpass: warned, then the askpass's yes accepts it.
        // (A new vault is made only when its backup is gone too: keepout never creates one
        // over a backup.)
        let vault = fx.root.join("kit/data/vault.age");
        std::fs::remove_file(&vault).unwrap();
        std::fs::remove_file(fx.root.join("kit/data/vault.age.bak")).unwrap();
        kit.forget_asked();
        kit.answers(&["short"]);
        let out = kit.sh("printf v | KEEPOUT secret set a/b");
        assert!(
            out.success() && out.stderr.contains("this passphrase is weak"),
            "[{r}]{out}"
        );
        assert!(
            kit.asked()
                .iter()
                .any(|q| q.contains("Use this passphrase anyway?")),
            "[{r}] {:?}",
            kit.asked()
        );
    }
}

/// A small HTTP server that wants basic auth (user, password from argv) and writes its port:
/// `/simple/demo/` is a package index page (pip's simple API), anything else says hello.
const BASIC_AUTH_SERVER: &str = r#"
import base64, http.server, os, sys
user, password, ready = sys.argv[1], sys.argv[2], sys.argv[3]
want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization", "") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/simple/demo"):
            body = b'<html><body><a href="/files/demo-1.0.tar.gz">demo-1.0.tar.gz</a></body></html>\n'
        else:
            body = b"hello " + user.encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if self.path.startswith("/simple") else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(ready + ".tmp", "w") as f:
    f.write(str(srv.server_port))
os.rename(ready + ".tmp", ready)
srv.serve_forever()
"#;

/// Item 7: `import netrc` says how curl and pip keep working; the curl and pip lines it prints,
/// run as printed (with the test server's URL, and `pip index versions` for `pip install`),
/// log in with the password from the vault.
#[test]
fn after_import_netrc_curl_logs_in_as_the_output_says() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        let password = format!("netrc-PW-{}", fx.rand);
        write_file(
            &fx.home.join(".netrc"),
            &format!("machine 127.0.0.1 login victim password {password}\n"),
            0o600,
        );
        fx.give_to_runner(&fx.home.join(".netrc"));
        let server = fx.script("auth_server.py", BASIC_AUTH_SERVER);
        let ready = fx.root.join("auth-ready");
        fx.background(&[
            PYTHON,
            &server,
            "victim",
            &password,
            &ready.display().to_string(),
        ]);
        assert!(
            poll(Duration::from_secs(20), || ready.exists()),
            "[{r}] server"
        );
        let port = read(&ready).unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        let plain = kit.sh(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --netrc {url}"
        ));
        assert_eq!(
            plain.stdout, "200",
            "[{r}] curl logs in with ~/.netrc:{plain}"
        );

        let out = kit.sh("KEEPOUT import netrc --yes");
        assert!(
            out.success() && !fx.home.join(".netrc").exists(),
            "[{r}]{out}"
        );
        let gone = kit.sh(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --netrc {url}"
        ));
        assert_eq!(
            gone.stdout, "401",
            "[{r}] without ~/.netrc, no login:{gone}"
        );
        for said in [
            "curl and pip read ~/.netrc",
            "keepout:git/127.0.0.1/victim",
            "keepout exec --",
            "pip install",
            "credential.helper",
        ] {
            assert!(
                out.stderr.contains(said),
                "[{r}] the output names {said:?}:{out}"
            );
        }
        // The scope as printed (its dirs set to the project), and the curl line as printed.
        kit.config(&format!(
            "[[scope]]\nname = \"netrc\"\ndirs = [\"{}\"]\nenv = {{ NETRC_PASSWORD = \"keepout:git/127.0.0.1/victim\" }}\n",
            fx.project.display()
        ));
        let curl_line = out
            .stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("curl: "))
            .unwrap_or_else(|| panic!("[{r}] a curl line:{out}"))
            .replace("https://127.0.0.1/...", &url)
            .replace("keepout exec", "KEEPOUT exec")
            .replace("| curl ", "| curl -s ");
        let got = kit.sh(&curl_line);
        assert!(
            got.success() && got.stdout == "hello victim\n",
            "[{r}] the printed curl line logs in: {curl_line}{got}"
        );
        assert!(
            !got.all().contains(&password),
            "[{r}] the password is not shown"
        );
        let pip_line = out
            .stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("pip: "))
            .unwrap_or_else(|| panic!("[{r}] a pip line:{out}"))
            .replace("https://", "http://")
            .replace("127.0.0.1/simple", &format!("127.0.0.1:{port}/simple"))
            .replace("keepout exec", "KEEPOUT exec")
            .replace("pip install PACKAGE", "pip index versions demo");
        let got = kit.sh(&format!(
            "export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_TRUSTED_HOST=127.0.0.1 PIP_NO_INPUT=1; {pip_line}"
        ));
        assert!(
            got.success() && got.stdout.contains("demo (1.0)"),
            "[{r}] the printed pip line logs in: {pip_line}{got}"
        );
    }
}

/// Items 6 and 8: a duration needs its unit and is shown exactly; `exec` of a missing command
/// says "command not found" with PATH (127), of a file that is not executable says so (126),
/// both before any passphrase is asked.
#[test]
fn durations_and_commands_that_cannot_run() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        let out = kit.sh("echo v | KEEPOUT secret set web/token");
        assert!(out.success(), "[{r}]{out}");
        kit.config(&format!(
            "[[scope]]\nname = \"web\"\ndirs = [\"{}\"]\nenv = {{ TOKEN = \"keepout:web/token\" }}\n",
            fx.project.display()
        ));
        let out = kit.sh("KEEPOUT hook-env --shell bash --ttl 30 > /dev/null");
        assert!(
            !out.success() && out.stderr.contains("30 what? write 30s, 30m or 30h"),
            "[{r}] a bare number is refused:{out}"
        );
        let out = kit.sh("KEEPOUT hook-env --shell bash --ttl 1s > /dev/null");
        assert!(
            out.success() && out.stderr.contains("set for 1s"),
            "[{r}] 1s is said as 1s:{out}"
        );
        let out = kit.sh("KEEPOUT hook-env --shell bash --ttl 90m > /dev/null");
        assert!(out.stderr.contains("set for 1h 30m"), "[{r}]{out}");
        // The unlock cache's idle time, read by a daemon whose output goes nowhere: said by
        // the command that starts it. (The daemon is told to lock, and exits, at once.)
        let run_dir = fx.mkdir("run");
        super::harness::chmod(&run_dir, 0o700);
        let out = kit.sh(&format!(
            "export XDG_RUNTIME_DIR={} KEEPOUT_NO_CACHE=; KEEPOUT_CACHE_IDLE=30 KEEPOUT secret list >/dev/null; KEEPOUT lock",
            run_dir.display()
        ));
        assert!(
            out.stderr.contains("KEEPOUT_CACHE_IDLE=30: 30 what? write 30s, 30m or 30h; the unlock cache forgets after 5m instead"),
            "[{r}]{out}"
        );

        kit.forget_asked();
        let out = kit.sh("KEEPOUT exec -- nosuchcmd --flag");
        assert!(
            out.code == Some(127)
                && out.stderr.contains(&format!(
                    "nosuchcmd: command not found (PATH={FIXTURE_PATH})"
                )),
            "[{r}]{out}"
        );
        let plain = fx.project.join("notexec.sh");
        write_file(&plain, "#!/bin/sh\necho ran\n", 0o644);
        fx.give_to_runner(&plain);
        let out = kit.sh("KEEPOUT exec -- ./notexec.sh");
        assert!(
            out.code == Some(126) && out.stderr.contains("not executable"),
            "[{r}]{out}"
        );
        assert!(
            kit.asked().is_empty(),
            "[{r}] no passphrase asked for a command that cannot run: {:?}",
            kit.asked()
        );
    }
}

/// The unlock cache's clients speak only to their own uid's cache: a listener another user (here
/// root) put at the cache's socket gets no request, so never the passphrase that an unlock
/// sends. (Only for the plain runner when the suite runs as root.)
#[test]
fn the_unlock_cache_is_asked_only_when_it_is_our_own() {
    for r in runners().into_iter().filter(|r| !r.is_root()) {
        if super::harness::euid() != 0 {
            break;
        }
        let fx = Fixture::new(&r);
        let kit = Kit::new(&fx);
        let made = kit.sh("printf v1 | KEEPOUT secret set web/one");
        assert!(made.success(), "[{r}]{made}");
        // Root listens at the runner's cache socket (a 0700 directory of the runner's: root
        // can), recording what it is sent.
        let dir = fx.home.join(".local/state/keepout/run");
        std::fs::create_dir_all(&dir).unwrap();
        let chown = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", r.uid, r.gid))
            .arg(fx.home.join(".local"))
            .status()
            .unwrap();
        assert!(chown.success());
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let socket = dir.join("cache.sock");
        let log = fx.root.join("heard");
        let listener = format!(
            "import os, socket, sys\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.bind({sock:?}); os.chmod({sock:?}, 0o777); s.listen(8)\n\
             open({ready:?}, 'w').close()\n\
             while True:\n\
             \x20   c, _ = s.accept()\n\
             \x20   data = c.recv(65536)\n\
             \x20   if data: open({log:?}, 'ab').write(data + b'\\n')\n\
             \x20   c.sendall(b'{{\"ok\": true}}\\n'); c.close()\n",
            sock = socket.display().to_string(),
            ready = fx.root.join("ready").display().to_string(),
            log = log.display().to_string(),
        );
        let script = fx.root.join("listener.py");
        write_file(&script, &listener, 0o644);
        let mut server = std::process::Command::new(PYTHON)
            .arg(&script)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            poll(Duration::from_secs(10), || fx.root.join("ready").exists()),
            "the listener started"
        );
        // With the cache on (as by default), an unlock would send the passphrase to it.
        let mut env = kit.env(true);
        env.retain(|(k, _)| k != "KEEPOUT_NO_CACHE");
        let argv = [keepout_bin().to_string(), "secret".into(), "list".into()];
        let out = run(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] keepout secret list"),
        );
        let _ = server.kill();
        let _ = server.wait();
        let heard = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            out.success() && out.stdout.contains("web/one"),
            "[{r}] the vault is read without the cache:{out}"
        );
        assert!(
            heard.is_empty(),
            "[{r}] root's listener was sent nothing (it heard: {heard:?})"
        );
    }
}
