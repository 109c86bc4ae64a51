//! `keepout exec`: scopes, every provider, masking, approval.
//!
//! `pass` is real (with a real gpg key made for the test). 1Password's `op` and Bitwarden's `bw`
//! cannot run here (accounts, network): their adapters are tested against small fakes that follow
//! the documented CLI behaviour (`op read [--no-newline] op://vault/item/field` prints the field;
//! `bw get password|username ITEM` prints it, `bw get item ITEM` prints the item as JSON with a
//! `fields` array of `{name, value}`), put first on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::harness::{keepout_bin, with_input};

struct Setup {
    dir: tempfile::TempDir,
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

impl Setup {
    fn new(config: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        write_exec(
            &dir.path().join("askpass.sh"),
            "#!/bin/sh\necho 'correct horse'\n",
        );
        std::fs::create_dir_all(dir.path().join("src/coverage/tests")).unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        let config = config.replace("ROOT", &dir.path().display().to_string());
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Setup { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, cwd: &str) -> Command {
        let mut c = Command::new(keepout_bin());
        c.current_dir(self.root().join(cwd))
            // Never the real home: keepout's own files go to this setup's.
            .env("HOME", self.root())
            .env("KEEPOUT_VAULT", self.root().join("data/vault.age"))
            .env("KEEPOUT_CONFIG", self.root().join("config.toml"))
            .env("KEEPOUT_ASKPASS", self.root().join("askpass.sh"))
            .env("KEEPOUT_SCRYPT_WORK_FACTOR", "4")
            .env("KEEPOUT_NO_CACHE", "1")
            .stdin(Stdio::null());
        c
    }

    fn store(&self, name: &str, value: &str) {
        let mut c = self.cmd("");
        c.args(["secret", "set", name]);
        let out = with_input(c, value);
        assert!(out.status.success(), "{}", text(&out));
    }

    fn exec(&self, cwd: &str, extra: &[&str], script: &str) -> Output {
        let mut c = self.cmd(cwd);
        c.arg("exec").args(extra).args(["--", "sh", "-c", script]);
        c.output().unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const COVERAGE: &str = r#"
[[scope]]
name = "coverage"
dirs = ["ROOT/src/coverage*"]
env = { TWINE_USERNAME = "__token__", TWINE_PASSWORD = "keepout:pypi/coverage" }
"#;

#[test]
fn the_directory_decides_the_scope_and_only_the_command_gets_the_secret() {
    let s = Setup::new(COVERAGE);
    s.store("pypi/coverage", "pypi-EXEC-VALUE");
    let out = s.exec(
        "src/coverage/tests",
        &[],
        "echo \"$TWINE_USERNAME:$TWINE_PASSWORD\"",
    );
    let t = text(&out);
    assert!(
        out.status.success() && t.contains("__token__:pypi-EXEC-VALUE"),
        "{t}"
    );
    let out = s.exec("elsewhere", &[], "true");
    assert_eq!(out.status.code(), Some(7), "no scope: {}", text(&out));
    assert!(
        text(&out).contains("coverage"),
        "the error lists the scopes: {}",
        text(&out)
    );
    let out = s.exec(
        "elsewhere",
        &["--scope", "coverage"],
        "echo $TWINE_PASSWORD",
    );
    assert!(
        text(&out).contains("pypi-EXEC-VALUE"),
        "--scope overrides: {}",
        text(&out)
    );
}

#[test]
fn mask_conceals_values_in_stdout_and_stderr() {
    let s = Setup::new(COVERAGE);
    s.store("pypi/coverage", "pypi-MASK-ME");
    let out = s.exec(
        "src/coverage",
        &["--mask"],
        "echo out $TWINE_PASSWORD; echo err $TWINE_PASSWORD >&2; exit 4",
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(!t.contains("pypi-MASK-ME"), "{t}");
    assert!(
        t.contains("out <concealed by keepout>") && t.contains("err <concealed by keepout>"),
        "{t}"
    );
}

#[test]
fn a_scope_with_confirm_asks_and_a_no_releases_nothing() {
    let s = Setup::new(&format!("{COVERAGE}confirm = true\n"));
    s.store("pypi/coverage", "pypi-CONFIRM");
    let record = s.root().join("asked.txt");
    write_exec(
        &s.root().join("no.sh"),
        &format!("#!/bin/sh\necho \"$1\" >> {}\nexit 1\n", record.display()),
    );
    let out = s
        .cmd("src/coverage")
        .env("KEEPOUT_ASKPASS", s.root().join("no.sh"))
        .args(["exec", "--", "sh", "-c", "echo ran $TWINE_PASSWORD"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(
        !out.status.success() && !t.contains("ran") && t.contains("not approved"),
        "{t}"
    );
    let asked = std::fs::read_to_string(&record).unwrap();
    assert!(
        asked.contains("coverage") && asked.contains("sh -c"),
        "the prompt says which scope and command: {asked}"
    );
    let out = s.exec("src/coverage", &[], "echo ran $TWINE_PASSWORD");
    assert!(
        text(&out).contains("ran pypi-CONFIRM"),
        "a yes releases: {}",
        text(&out)
    );
}

#[test]
fn pass_references_use_the_real_pass_and_gpg() {
    let have = |p: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("pass") || !have("gpg") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install pass and gnupg"
        );
        eprintln!("note: pass or gpg missing; skipped");
        return;
    }
    let s = Setup::new(
        r#"
[[scope]]
name = "p"
dirs = ["ROOT/src/coverage"]
env = { FROM_PASS = "pass:web/pypi" }
"#,
    );
    let gnupg = s.root().join("gnupg");
    let store = s.root().join("password-store");
    std::fs::create_dir_all(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let sh = |script: &str| {
        let out = Command::new("sh")
            .args(["-c", script])
            .env("GNUPGHOME", &gnupg)
            .env("PASSWORD_STORE_DIR", &store)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", text(&out));
    };
    sh("gpg --batch --passphrase '' --quick-gen-key keepout-test@example.invalid default default never");
    sh("pass init keepout-test@example.invalid");
    sh("printf 'pass-VALUE-1\\nlogin: someone\\n' | pass insert -m web/pypi");
    let out = s
        .cmd("src/coverage")
        .env("GNUPGHOME", &gnupg)
        .env("PASSWORD_STORE_DIR", &store)
        .args(["exec", "--", "sh", "-c", "echo \"[$FROM_PASS]\""])
        .output()
        .unwrap();
    assert!(
        text(&out).contains("[pass-VALUE-1]"),
        "the first line of the entry: {}",
        text(&out)
    );
    let _ = Command::new("gpgconf")
        .arg("--kill")
        .arg("all")
        .env("GNUPGHOME", &gnupg)
        .status();
}

/// A directory with fake `op` and `bw` first on PATH (see the module doc for what they follow).
fn fake_tools(root: &Path) -> PathBuf {
    let bin = root.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    write_exec(
        &bin.join("op"),
        r#"#!/bin/sh
# Fake 1Password CLI: `op read [--no-newline] op://vault/item/field`.
[ "$1" = read ] || { echo "[ERROR] unknown command" >&2; exit 1; }
shift
nl=1
[ "$1" = "--no-newline" ] && { nl=0; shift; }
case "$1" in
  op://Private/PyPI/credential) v=op-VALUE-7 ;;
  *) echo "[ERROR] could not read secret '$1': item not found" >&2; exit 1 ;;
esac
if [ $nl = 1 ]; then echo "$v"; else printf %s "$v"; fi
"#,
    );
    write_exec(
        &bin.join("bw"),
        r#"#!/bin/sh
# Fake Bitwarden CLI: `bw get password|username ITEM`, `bw get item ITEM` (JSON).
[ "$1" = get ] || { echo "unknown command" >&2; exit 1; }
[ "$3" = crates ] || { echo "Not found." >&2; exit 1; }
case "$2" in
  password) printf %s bw-PASSWORD-8 ;;
  username) printf %s someone ;;
  item) printf '%s' '{"object":"item","name":"crates","login":{"username":"someone","password":"bw-PASSWORD-8"},"fields":[{"name":"token","value":"bw-FIELD-9","type":1}]}' ;;
  *) echo "unknown object" >&2; exit 1 ;;
esac
"#,
    );
    bin
}

#[test]
fn op_and_bw_references_through_their_cli_protocols() {
    let s = Setup::new(
        r#"
[[scope]]
name = "tools"
dirs = ["ROOT/src/coverage"]
env = { OP_VALUE = "op://Private/PyPI/credential", BW_PASSWORD = "bw://crates/password", BW_FIELD = "bw://crates/token" }
"#,
    );
    let bin = fake_tools(s.root());
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = s
        .cmd("src/coverage")
        .env("PATH", &path)
        .args([
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$OP_VALUE|$BW_PASSWORD|$BW_FIELD\"",
        ])
        .output()
        .unwrap();
    assert!(
        text(&out).contains("op-VALUE-7|bw-PASSWORD-8|bw-FIELD-9"),
        "{}",
        text(&out)
    );

    // A provider's failure: a clear error, exit 8, and the command does not run.
    std::fs::write(
        s.root().join("config.toml"),
        format!(
            "[[scope]]\nname = \"t\"\ndirs = [\"{}/src/coverage\"]\nenv = {{ X = \"op://Private/Missing/x\" }}\n",
            s.root().display()
        ),
    )
    .unwrap();
    let out = s
        .cmd("src/coverage")
        .env("PATH", &path)
        .args(["exec", "--", "echo", "ran"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(8), "{t}");
    assert!(t.contains("item not found") && !t.contains("ran"), "{t}");
}

/// The shell hook in real shells: kvars exports the scope, unkvars removes it, and the prompt
/// hook removes it on leaving the scope's directory or when it expires. bash always; zsh and
/// fish where installed (CI installs them).
#[test]
fn kvars_and_unkvars_in_real_shells() {
    let s = Setup::new(COVERAGE);
    s.store("pypi/coverage", "pypi-HOOK-VALUE");
    let bin_dir = Path::new(keepout_bin())
        .parent()
        .unwrap()
        .display()
        .to_string();
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "bash",
            "bash",
            r#"eval "$(keepout hook bash)"
case "$PROMPT_COMMAND" in *_keepout_prompt*) echo hooked;; esac
cd src/coverage/tests && kvars && echo "A=$TWINE_PASSWORD"
_keepout_prompt; echo "B=$TWINE_PASSWORD"
cd ../../.. && _keepout_prompt; echo "C=[$TWINE_PASSWORD]"
cd src/coverage && kvars 1s && sleep 2 && _keepout_prompt; echo "D=[$TWINE_PASSWORD]"
kvars && unkvars; echo "E=[$TWINE_PASSWORD][$KEEPOUT_KVARS]""#
                .to_string(),
        ),
        (
            "zsh",
            "zsh",
            r#"eval "$(keepout hook zsh)"
(( ${precmd_functions[(I)_keepout_prompt]} )) && echo hooked
cd src/coverage/tests && kvars && echo "A=$TWINE_PASSWORD"
_keepout_prompt; echo "B=$TWINE_PASSWORD"
cd ../../.. && _keepout_prompt; echo "C=[$TWINE_PASSWORD]"
cd src/coverage && kvars 1s && sleep 2 && _keepout_prompt; echo "D=[$TWINE_PASSWORD]"
kvars && unkvars; echo "E=[$TWINE_PASSWORD][$KEEPOUT_KVARS]""#
                .to_string(),
        ),
        (
            "fish",
            "fish",
            r#"keepout hook fish | source
functions -q _keepout_prompt; and echo hooked
cd src/coverage/tests; and kvars; and echo "A=$TWINE_PASSWORD"
_keepout_prompt; echo "B=$TWINE_PASSWORD"
cd ../../..; _keepout_prompt; echo "C=[$TWINE_PASSWORD]"
cd src/coverage; and kvars 1s; and sleep 2; and _keepout_prompt; echo "D=[$TWINE_PASSWORD]"
kvars; and unkvars; echo "E=[$TWINE_PASSWORD][$KEEPOUT_KVARS]""#
                .to_string(),
        ),
    ];
    for (shell, program, script) in cases {
        let installed = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                shell != "bash" && std::env::var_os("CI").is_none(),
                "CI must install {shell}"
            );
            eprintln!("note: {shell} is not installed; its hook is not checked");
            continue;
        }
        let mut c = Command::new(program);
        c.arg("-c")
            .arg(&script)
            .current_dir(s.root())
            .env("PATH", format!("{bin_dir}:/usr/local/bin:/usr/bin:/bin"))
            .env("KEEPOUT_VAULT", s.root().join("data/vault.age"))
            .env("KEEPOUT_CONFIG", s.root().join("config.toml"))
            .env("KEEPOUT_ASKPASS", s.root().join("askpass.sh"))
            .env("KEEPOUT_SCRYPT_WORK_FACTOR", "4")
            .env("KEEPOUT_NO_CACHE", "1")
            .env_remove("PROMPT_COMMAND")
            .stdin(Stdio::null());
        let out = c.output().unwrap();
        let t = text(&out);
        for want in [
            "hooked",
            "A=pypi-HOOK-VALUE",
            "B=pypi-HOOK-VALUE",
            "C=[]",
            "D=[]",
            "E=[][]",
            "were removed",
            "expired",
        ] {
            assert!(t.contains(want), "{shell}: expected {want:?} in:\n{t}");
        }
    }
}
