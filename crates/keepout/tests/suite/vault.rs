//! `keepout secret`: end to end through the binary, with a scripted askpass (no terminal).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::harness::{keepout_bin, with_input};

struct Vault {
    dir: tempfile::TempDir,
}

impl Vault {
    fn new() -> Vault {
        let dir = tempfile::tempdir().unwrap();
        let ask = dir.path().join("askpass.sh");
        std::fs::write(&ask, "#!/bin/sh\necho 'correct horse'\n").unwrap();
        std::fs::set_permissions(&ask, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Vault { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("data/vault.age")
    }

    /// keepout's settings for this vault, on any command (keepout itself, or git or cargo that
    /// run keepout as their helper).
    fn env<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        // Never the real home: keepout's own files (caches, config) go to this vault's.
        c.env("HOME", self.dir.path())
            .env("KEEPOUT_VAULT", self.path())
            .env("KEEPOUT_ASKPASS", self.dir.path().join("askpass.sh"))
            .env("KEEPOUT_SCRYPT_WORK_FACTOR", "4")
            // Each test asks for the passphrase itself; the unlock cache has its own test.
            .env("KEEPOUT_NO_CACHE", "1")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(keepout_bin());
        self.env(&mut c).stdin(Stdio::null());
        c
    }

    fn set(&self, name: &str, value: &str) -> std::process::Output {
        let mut c = self.cmd();
        c.args(["secret", "set", name]);
        with_input(c, value)
    }

    fn names(&self) -> Vec<String> {
        let out = self
            .cmd()
            .args(["secret", "list", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    }
}

#[test]
fn set_list_rm_and_list_never_shows_values() {
    let v = Vault::new();
    assert!(v.set("pypi/coverage", "pypi-VALUE-123\n").status.success());
    assert!(v.set("github/token", "ghp_VALUE_456").status.success());
    let out = v.cmd().args(["secret", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pypi/coverage") && text.contains("github/token"),
        "{text}"
    );
    assert!(!text.contains("VALUE"), "no value is listed: {text}");
    assert!(v
        .cmd()
        .args(["secret", "rm", "github/token"])
        .status()
        .unwrap()
        .success());
    assert_eq!(v.names(), ["pypi/coverage"]);
    // The file on disk holds no value in the clear.
    let raw = std::fs::read(v.path()).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("VALUE"));
}

#[test]
fn wrong_passphrase_exits_3_and_changes_nothing() {
    let v = Vault::new();
    assert!(v.set("a", "x").status.success());
    let before = std::fs::read(v.path()).unwrap();
    let bad = v.dir.path().join("bad.sh");
    std::fs::write(&bad, "#!/bin/sh\necho wrong\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = v
        .cmd()
        .env("KEEPOUT_ASKPASS", &bad)
        .args(["secret", "rm", "a"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    assert_eq!(std::fs::read(v.path()).unwrap(), before);
}

#[test]
fn no_vault_and_no_way_to_ask_are_clear_errors() {
    let v = Vault::new();
    let out = v.cmd().args(["secret", "list"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "no vault yet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(v.set("a", "x").status.success());
    // No askpass and no terminal (setsid: no controlling terminal): say so, never hang.
    let out = Command::new("setsid")
        .args(["-w", keepout_bin(), "secret", "list"])
        .env("KEEPOUT_VAULT", v.path())
        .env_remove("KEEPOUT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env_remove("KEEPOUT_PINENTRY")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cannot ask"), "{err}");
}

/// kill -9 at random moments while secrets are being written: every time, the vault decrypts,
/// and what it holds is a prefix of what was written (old or new, never a torn file).
#[test]
fn kill_9_during_writes_loses_nothing() {
    let v = Vault::new();
    assert!(v.set("seed", "0").status.success());
    let keepout = keepout_bin();
    for round in 0..12u64 {
        let script = format!(
            "i=0; while [ $i -lt 200 ]; do echo v$i | {keepout} secret set r{round}/s$i 2>/dev/null || exit 1; i=$((i+1)); done"
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .envs(
                v.cmd()
                    .get_envs()
                    .filter_map(|(k, val)| val.map(|val| (k.to_owned(), val.to_owned()))),
            )
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(40 + (round * 37) % 200));
        // SIGKILL the whole group: the shell and the keepout in the middle of a write.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
        let names = v.names();
        let mut written: Vec<u64> = names
            .iter()
            .filter_map(|n| {
                n.strip_prefix(&format!("r{round}/s"))
                    .and_then(|i| i.parse().ok())
            })
            .collect();
        written.sort();
        let expected: Vec<u64> = (0..written.len() as u64).collect();
        assert_eq!(
            written, expected,
            "round {round}: a contiguous prefix of the writes survives"
        );
        assert!(
            names.contains(&"seed".to_string()),
            "round {round}: older secrets survive"
        );
    }
}

/// git's own client (`git credential fill | approve | reject`) talking to `keepout
/// git-credential` as its helper.
#[test]
fn git_credential_helper_with_real_git() {
    let v = Vault::new();
    assert!(v
        .set("git/github.com/alice", "ghp_GIT_TOKEN_1")
        .status
        .success());
    let git = |sub: &str, input: &str| {
        let mut c = Command::new("git");
        c.args([
            "-c",
            &format!("credential.helper=!{} git-credential", keepout_bin()),
            "credential",
            sub,
        ])
        .env("GIT_TERMINAL_PROMPT", "0");
        v.env(&mut c);
        with_input(c, input)
    };
    let out = git("fill", "protocol=https\nhost=github.com\n\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("username=alice") && text.contains("password=ghp_GIT_TOKEN_1"),
        "{text}"
    );
    // A host with nothing stored: the helper answers nothing and git (no prompt) fails.
    let out = git("fill", "protocol=https\nhost=gitlab.com\n\n");
    assert!(!out.status.success(), "no credential for gitlab.com");
    // approve stores, reject erases.
    let out = git(
        "approve",
        "protocol=https\nhost=codeberg.org\nusername=bob\npassword=cb-TOKEN\n\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(v.names().contains(&"git/codeberg.org/bob".to_string()));
    let out = git(
        "reject",
        "protocol=https\nhost=codeberg.org\nusername=bob\npassword=cb-TOKEN\n\n",
    );
    assert!(out.status.success());
    assert!(!v.names().contains(&"git/codeberg.org/bob".to_string()));
}

/// cargo's own client (`cargo login` / `cargo logout`) with keepout as its credential provider,
/// and the protocol's `get` request answered with the stored token.
#[test]
fn cargo_credential_provider_with_real_cargo() {
    let v = Vault::new();
    let cargo_home = v.dir.path().join("cargo-home");
    std::fs::create_dir_all(&cargo_home).unwrap();
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[registry]\nglobal-credential-providers = [\"{} cargo-credential\"]\n",
            keepout_bin()
        ),
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |args: &[&str], input: &str| {
        let mut c = Command::new(&cargo);
        c.args(args).env("CARGO_HOME", &cargo_home);
        v.env(&mut c);
        with_input(c, input)
    };
    let out = run(&["login"], "cio-CARGO-TOKEN\n");
    assert!(
        out.status.success(),
        "cargo login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        v.names().contains(&"cargo/crates-io".to_string()),
        "cargo login stored the token in the vault"
    );
    assert!(
        !cargo_home.join("credentials.toml").exists(),
        "and not in a plaintext file"
    );

    let mut get = v.cmd();
    get.arg("--cargo-plugin");
    let out = with_input(
        get,
        "{\"v\":1,\"registry\":{\"index-url\":\"https://github.com/rust-lang/crates.io-index\",\"name\":\"crates-io\"},\"kind\":\"get\",\"operation\":\"publish\",\"name\":\"x\",\"vers\":\"0.1.0\",\"cksum\":\"00\",\"args\":[]}\n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("{\"v\":[1]}") && text.contains("\"token\":\"cio-CARGO-TOKEN\""),
        "{text}"
    );

    let out = run(&["logout"], "");
    assert!(
        out.status.success(),
        "cargo logout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !v.names().contains(&"cargo/crates-io".to_string()),
        "cargo logout removed it"
    );
}

/// Issue 14: with the vault missing and its backup there, cargo's `get` is an error that says
/// so and how to recover (it was "not found", as if no token had ever been stored: cargo then
/// asks for `cargo login`, and a login would make a new vault beside the lost one).
#[test]
fn cargo_credential_says_the_vault_is_missing_beside_its_backup() {
    let v = Vault::new();
    assert!(v.set("cargo/crates-io", "cio-TOKEN").status.success());
    assert!(v.set("other", "x").status.success());
    std::fs::rename(v.path(), v.dir.path().join("moved-away.age")).unwrap();
    let get = |v: &Vault| {
        let mut get = v.cmd();
        get.arg("--cargo-plugin");
        with_input(
            get,
            "{\"v\":1,\"registry\":{\"index-url\":\"https://github.com/rust-lang/crates.io-index\",\"name\":\"crates-io\"},\"kind\":\"get\",\"operation\":\"read\",\"args\":[]}\n",
        )
    };
    let out = get(&v);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"kind\":\"other\"") && text.contains("vault.age.bak"),
        "{text}"
    );
    // With no backup either, there is simply no token: cargo goes on to its next provider.
    std::fs::remove_file(v.dir.path().join("data/vault.age.bak")).unwrap();
    let text = String::from_utf8_lossy(&get(&v).stdout).to_string();
    assert!(text.contains("\"kind\":\"not-found\""), "{text}");
}

/// A sparse cargo registry on 127.0.0.1 that requires authentication (`auth-required`): without
/// the right token every request is 401. It records the Authorization headers it saw.
const CARGO_REGISTRY_SERVER: &str = r#"
import http.server, json, sys
token, seen = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        with open(seen, "a") as f:
            f.write(f"{self.path} {auth}\n")
        if auth != token:
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Cargo")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/index/config.json":
            body = json.dumps({"dl": base + "/dl", "api": base, "auth-required": True})
        elif self.path == "/index/3/d/dep":
            body = json.dumps({"name": "dep", "vers": "1.0.0", "deps": [], "cksum": "0" * 64,
                               "features": {}, "yanked": False})
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_port, flush=True)
srv.serve_forever()
"#;

/// cargo's credential-provider `get`, asked by cargo itself: resolving a dependency from a local
/// registry that requires authentication. The token reaches the registry only from the vault,
/// through keepout; with a wrong token stored, cargo fails.
#[test]
fn cargo_fetches_from_an_auth_required_registry_with_the_vaults_token() {
    let v = Vault::new();
    let seen = v.dir.path().join("seen");
    let mut server = Command::new("python3")
        .args(["-c", CARGO_REGISTRY_SERVER, "cio-LOCAL-TOKEN"])
        .arg(&seen)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let port = port.trim().to_string();

    let cargo_home = v.dir.path().join("cargo-home");
    std::fs::create_dir_all(&cargo_home).unwrap();
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[registries.local]\nindex = \"sparse+http://127.0.0.1:{port}/index/\"\n\
             credential-provider = [\"{}\", \"cargo-credential\"]\n",
            keepout_bin()
        ),
    )
    .unwrap();
    let project = v.dir.path().join("project");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\ndep = { version = \"1\", registry = \"local\" }\n",
    )
    .unwrap();
    std::fs::write(project.join("src/lib.rs"), "").unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let lockfile = || {
        let mut c = Command::new(&cargo);
        c.args(["generate-lockfile"])
            .current_dir(&project)
            .env("CARGO_HOME", &cargo_home)
            .env_remove("CARGO_NET_OFFLINE")
            .stdin(Stdio::null());
        v.env(&mut c).output().unwrap()
    };

    assert!(v.set("cargo/local", "cio-WRONG").status.success());
    let out = lockfile();
    assert!(
        !out.status.success(),
        "a wrong stored token is refused by the registry"
    );
    assert!(
        std::fs::read_to_string(&seen)
            .unwrap()
            .contains(" cio-WRONG"),
        "cargo sent the stored (wrong) token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(v.set("cargo/local", "cio-LOCAL-TOKEN").status.success());
    let out = lockfile();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "cargo generate-lockfile with the vault's token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(project.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"dep\""), "{lock}");
    let seen = std::fs::read_to_string(&seen).unwrap();
    assert!(
        seen.lines().any(|l| l == "/index/3/d/dep cio-LOCAL-TOKEN"),
        "cargo sent the vault's token for the index: {seen}"
    );
}

/// `keepout import netrc`: stored, verified, the original kept encrypted, and the plaintext file
/// removed only after a yes; then git gets the credential through the helper. A no keeps the
/// file.
#[test]
fn import_netrc_then_git_uses_the_vault() {
    let v = Vault::new();
    let home = v.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let netrc = home.join(".netrc");
    let write_netrc = || {
        std::fs::write(
            &netrc,
            "machine github.com\n  login alice\n  password ghp_NETRC_1\n",
        )
        .unwrap()
    };
    write_netrc();
    let no = v.dir.path().join("no.sh");
    std::fs::write(
        &no,
        "#!/bin/sh\n[ -n \"$SSH_ASKPASS_PROMPT\" ] && exit 1\necho 'correct horse'\n",
    )
    .unwrap();
    std::fs::set_permissions(&no, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = v
        .cmd()
        .env("HOME", &home)
        .env("KEEPOUT_ASKPASS", &no)
        .args(["import", "netrc"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(netrc.exists(), "a no keeps the file");
    let names = v.names();
    assert!(
        names.contains(&"git/github.com/alice".to_string())
            && names.contains(&"backup/netrc".to_string()),
        "{names:?}"
    );

    let out = v
        .cmd()
        .env("HOME", &home)
        .args(["import", "netrc"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!netrc.exists(), "a yes removes the plaintext file");

    let mut git = Command::new("git");
    git.args([
        "-c",
        &format!("credential.helper=!{} git-credential", keepout_bin()),
        "credential",
        "fill",
    ])
    .env("HOME", &home)
    .env("GIT_TERMINAL_PROMPT", "0");
    v.env(&mut git);
    let out = with_input(git, "protocol=https\nhost=github.com\n\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("password=ghp_NETRC_1"));
}

/// The unlock cache: one passphrase, then reads and writes without asking; a wrong askpass no
/// longer matters while unlocked; `keepout lock` forgets; another user gets no answer; and the
/// sandbox does not see the socket.
#[test]
fn unlock_cache_asks_once_and_lock_forgets() {
    let v = Vault::new();
    let runtime = v.dir.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let bad = v.dir.path().join("bad.sh");
    std::fs::write(&bad, "#!/bin/sh\necho wrong\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cached = |askpass: &Path, args: &[&str]| {
        let mut c = v.cmd();
        c.env_remove("KEEPOUT_NO_CACHE")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("KEEPOUT_CACHE_IDLE", "60s")
            .env("KEEPOUT_ASKPASS", askpass)
            .args(args);
        c.output().unwrap()
    };
    assert!(v.set("a/one", "1").status.success());
    let good = v.dir.path().join("askpass.sh");
    let out = cached(&good, &["secret", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        runtime.join("keepout/cache.sock").exists(),
        "the cache listens in XDG_RUNTIME_DIR/keepout"
    );
    // Unlocked: even a wrong askpass is not asked.
    let out = cached(&bad, &["secret", "list", "--json"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("a/one"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cached(&bad, &["secret", "rm", "a/one"]);
    assert!(
        out.status.success(),
        "writes use the cached passphrase: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if super::harness::euid() == 0 {
        // Another uid connecting to the socket gets nothing (the directory is 0700 too; open it
        // for this check only).
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::set_permissions(
            runtime.join("keepout"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let sock = runtime.join("keepout/cache.sock");
        std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let probe = format!(
            "import socket\ns=socket.socket(socket.AF_UNIX)\ns.connect('{}')\ntry:\n    s.sendall(b'{{\"op\":\"read\",\"path\":\"{}\"}}\\n')\n    r=s.recv(4096)\nexcept OSError:\n    r=b''\nprint('answer:', r)",
            sock.display(),
            v.path().display()
        );
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                &probe,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("answer: b''"),
            "another user gets no answer: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::set_permissions(
            runtime.join("keepout"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
    }
    // The sandbox does not see the cache.
    let project = v.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let out = Command::new(keepout_bin())
        .env("HOME", v.dir.path())
        .args(["run", "--project"])
        .arg(&project)
        .args(["--", "sh", "-c"])
        .arg(format!("ls {}/keepout/cache.sock", runtime.display()))
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the socket is not visible inside keepout run"
    );

    let out = cached(&bad, &["lock"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("locked"));
    let out = cached(&bad, &["secret", "list"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "after lock the passphrase is asked again: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = cached(&bad, &["lock"]);
}

/// The unlock cache for every runner (root has no memlock limit; an ordinary user has a small
/// one, which once killed the daemon): unlock, then a wrong askpass is not needed; lock.
#[test]
fn unlock_cache_works_for_every_runner() {
    use super::harness::{runners, Fixture};
    for r in runners() {
        let fx = Fixture::new(&r);
        let dir = fx.root.join("cache-test");
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::write(dir.join("ask.sh"), "#!/bin/sh\necho 'runner pass'\n").unwrap();
        std::fs::write(dir.join("bad.sh"), "#!/bin/sh\necho wrong\n").unwrap();
        for f in ["ask.sh", "bad.sh"] {
            std::fs::set_permissions(
                dir.join(f),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
        fx.give_to_runner(&dir);
        std::fs::set_permissions(
            dir.join("run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let run = |askpass: &str, script: &str| {
            let env: Vec<(String, String)> = [
                ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
                ("HOME", fx.home.display().to_string()),
                ("XDG_RUNTIME_DIR", dir.join("run").display().to_string()),
                ("KEEPOUT_VAULT", dir.join("vault.age").display().to_string()),
                ("KEEPOUT_ASKPASS", dir.join(askpass).display().to_string()),
                ("KEEPOUT_CACHE_IDLE", "60s".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let argv = vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                script.replace("KEEPOUT", keepout_bin()),
            ];
            r.command(&argv, &env, &dir)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        let out = run(
            "ask.sh",
            "echo -n v1 | KEEPOUT secret set a/one && KEEPOUT secret list >/dev/null",
        );
        assert!(
            out.status.success(),
            "[{r}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run("bad.sh", "KEEPOUT secret list");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("a/one"),
            "[{r}] unlocked: the cache answers: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run("bad.sh", "KEEPOUT lock && KEEPOUT secret list");
        assert_eq!(
            out.status.code(),
            Some(3),
            "[{r}] after lock: asked again, wrong: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A tiny HTTP server on 127.0.0.1 that requires basic auth and serves `git http-backend`.
const GIT_HTTP_SERVER: &str = r#"
import base64, http.server, os, subprocess, sys
root, user, token = sys.argv[1], sys.argv[2], sys.argv[3]
want = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        if self.headers.get("Authorization", "") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
                   REQUEST_METHOD=self.command, PATH_INFO=path, QUERY_STRING=query,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
                   HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""),
                   GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
                   REMOTE_USER=user, REMOTE_ADDR="127.0.0.1")
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    do_GET = do_POST = handle_one
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_port, flush=True)
srv.serve_forever()
"#;

/// End to end: `git clone` and `git push` over HTTP with basic auth on 127.0.0.1 (a real
/// `git http-backend`), the password coming only from the vault through the helper; a wrong
/// stored token fails.
#[test]
fn git_clone_and_push_over_http_with_the_vault() {
    let v = Vault::new();
    let root = v.dir.path().join("srv");
    std::fs::create_dir_all(&root).unwrap();
    let sh = |script: &str, cwd: &Path| {
        let out = Command::new("sh")
            .args(["-c", script])
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "git init -q --bare repo.git && git init -q seed && cd seed && git -c user.name=a -c user.email=a@b commit -q --allow-empty -m one && git push -q ../repo.git HEAD:refs/heads/main && git -C ../repo.git symbolic-ref HEAD refs/heads/main",
        &root,
    );
    let mut server = Command::new("python3")
        .args(["-c", GIT_HTTP_SERVER])
        .arg(root.display().to_string())
        .args(["alice", "http-TOKEN-42"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{}/repo.git", port.trim());
    let git = |args: &[&str], cwd: &Path| {
        Command::new("git")
            .args([
                "-c",
                &format!("credential.helper=!{} git-credential", keepout_bin()),
            ])
            .args([
                "-c",
                "user.name=a",
                "-c",
                "user.email=a@b",
                "-c",
                "credential.useHttpPath=false",
            ])
            .args(args)
            .current_dir(cwd)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("KEEPOUT_VAULT", v.path())
            .env("KEEPOUT_ASKPASS", v.dir.path().join("askpass.sh"))
            .env("KEEPOUT_SCRYPT_WORK_FACTOR", "4")
            .env("KEEPOUT_NO_CACHE", "1")
            .output()
            .unwrap()
    };
    let host = format!("127.0.0.1-{}", port.trim());
    assert!(v
        .set(&format!("git/{host}/alice"), "wrong-token")
        .status
        .success());
    let out = git(&["clone", "-q", &url, "bad"], &root);
    assert!(
        !out.status.success(),
        "a wrong stored token is refused by the server"
    );
    assert!(v
        .set(&format!("git/{host}/alice"), "http-TOKEN-42")
        .status
        .success());
    let out = git(&["clone", "-q", &url, "work"], &root);
    assert!(
        out.status.success(),
        "clone with the vault's token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let work = root.join("work");
    let out = git(&["commit", "-q", "--allow-empty", "-m", "two"], &work);
    assert!(out.status.success());
    let out = git(&["push", "-q", "origin", "HEAD:main"], &work);
    assert!(
        out.status.success(),
        "push with the vault's token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Command::new("git")
        .args([
            "-C",
            &root.join("repo.git").display().to_string(),
            "log",
            "--oneline",
            "main",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("two"),
        "the push arrived"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// A fake pinentry speaking the Assuan protocol as pinentry does (a real one needs a graphical
/// display and a person): it records every request, answers GETPIN with a passphrase and
/// CONFIRM with yes or no.
const FAKE_PINENTRY: &str = r#"#!/bin/sh
log="$(dirname "$0")/pinentry.log"
echo "OK Pleased to meet you"
while IFS= read -r line; do
    echo "$line" >> "$log"
    case "$line" in
        GETPIN*) echo "D correct horse"; echo OK ;;
        CONFIRM*) if [ -f "$(dirname "$0")/say-no" ]; then echo "ERR 83886179 Operation cancelled <Pinentry>"; else echo OK; fi ;;
        BYE*) echo OK; exit 0 ;;
        *) echo OK ;;
    esac
done
"#;

/// Without KEEPOUT_ASKPASS, a usable pinentry is asked (GETPIN for the passphrase, CONFIRM for
/// an approval), before the terminal.
#[test]
fn pinentry_is_asked_for_passphrases_and_approvals() {
    let v = Vault::new();
    assert!(v.set("a/one", "x").status.success());
    let pin = v.dir.path().join("pin");
    std::fs::create_dir_all(&pin).unwrap();
    let fake = pin.join("pinentry");
    std::fs::write(&fake, FAKE_PINENTRY).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = v
        .cmd()
        .env_remove("KEEPOUT_ASKPASS")
        .env("KEEPOUT_PINENTRY", &fake)
        .args(["secret", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(pin.join("pinentry.log")).unwrap();
    assert!(
        log.contains("GETPIN") && log.contains("Passphrase for"),
        "{log}"
    );

    // An approval: CONFIRM; a no releases nothing.
    let config = v.dir.path().join("config.toml");
    std::fs::write(&config, "[[scope]]\nname = \"c\"\ndirs = [\"/\"]\nenv = { A = \"keepout:a/one\" }\nconfirm = true\n").unwrap();
    std::fs::write(pin.join("say-no"), "").unwrap();
    let exec = |()| {
        v.cmd()
            .env_remove("KEEPOUT_ASKPASS")
            .env("KEEPOUT_PINENTRY", &fake)
            .env("KEEPOUT_CONFIG", &config)
            .args(["exec", "--", "sh", "-c", "echo got=$A"])
            .output()
            .unwrap()
    };
    let out = exec(());
    assert!(!out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("got="));
    std::fs::remove_file(pin.join("say-no")).unwrap();
    let out = exec(());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("got=x"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(pin.join("pinentry.log")).unwrap();
    assert!(
        log.contains("CONFIRM") && log.contains("Release the secrets of scope"),
        "{log}"
    );
}

/// `[vault] recipients/identities` in the configuration: the CLI never asks for a passphrase
/// (no askpass, no terminal here), and exec releases from the X25519 vault.
#[test]
fn an_x25519_vault_from_the_configuration() {
    let have = Command::new("age-keygen").arg("--version").output().is_ok();
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install age (age-keygen)"
        );
        return;
    }
    let v = Vault::new();
    let id = v.dir.path().join("identity.txt");
    assert!(Command::new("age-keygen")
        .arg("-o")
        .arg(&id)
        .output()
        .unwrap()
        .status
        .success());
    let recipient = String::from_utf8(
        Command::new("age-keygen")
            .arg("-y")
            .arg(&id)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let config = v.dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[vault]\nrecipients = [\"{}\"]\nidentities = [\"{}\"]\n[[scope]]\nname = \"s\"\ndirs = [\"/\"]\nenv = {{ T = \"keepout:x/token\" }}\n",
            recipient.trim(),
            id.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str], input: Option<&str>| {
        let mut c = Command::new("setsid");
        c.arg("-w")
            .arg(keepout_bin())
            .args(args)
            .env("KEEPOUT_VAULT", v.path())
            .env("KEEPOUT_CONFIG", &config)
            .env_remove("KEEPOUT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("DISPLAY")
            .env("KEEPOUT_NO_CACHE", "1");
        with_input(c, input.unwrap_or(""))
    };
    let out = run(&["secret", "set", "x/token"], Some("x25519-TOKEN"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["exec", "--", "sh", "-c", "echo got=$T"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("got=x25519-TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&id)
        .arg(v.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("x25519-TOKEN"),
        "stock age -d -i reads it"
    );
}
