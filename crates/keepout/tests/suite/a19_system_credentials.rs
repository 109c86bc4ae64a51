//! A19: credentials outside the home. System-wide files that tools read for every user carry
//! tokens (`/etc/xdg/pip/pip.conf` with an index URL of `user:password@`, git's system config
//! with an `http.extraHeader = Authorization: ...`, `/etc/netrc`), and the sandbox shows `/etc`
//! and `/usr`. Inside, such a file is shown without its credentials, or hidden; a file without
//! credentials is shown as it is.
//!
//! The tests plant real system files with FAKE tokens, so they need root, and plant only files
//! that do not exist yet, removed again afterwards (also on panic). The content cannot change
//! what other tests do: credentials only for `creds.invalid`, which nothing contacts, and pip
//! settings in a section pip does not apply (`[keepout-a19]`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::harness::*;

/// Files (and the directories made for them) planted for one test; removed when dropped.
struct Planted {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Planted {
    fn new() -> Planted {
        Planted {
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }

    /// Write `path` (mode 0644) unless something is there already: then `false`, untouched.
    fn plant(&mut self, path: &str, content: &str) -> bool {
        let path = Path::new(path);
        if std::fs::symlink_metadata(path).is_ok() {
            note(&format!(
                "A19: {} exists on this machine; not planting it (its part of the test is skipped)",
                path.display()
            ));
            return false;
        }
        let mut missing = Vec::new();
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| !d.exists()) {
            missing.push(d.to_path_buf());
            dir = d.parent();
        }
        for d in missing.iter().rev() {
            std::fs::create_dir(d).expect("create a planted file's directory");
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            self.dirs.push(d.clone());
        }
        std::fs::write(path, content).expect("plant a system file");
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        self.files.push(path.to_path_buf());
        true
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Only root may plant system files.
fn as_root(test: &str) -> bool {
    if euid() != 0 {
        note(&format!(
            "A19 {test}: skipped, it plants files in /etc and needs root (CI runs it as root)"
        ));
        return false;
    }
    true
}

/// The system config file of the git on PATH (`/etc/gitconfig`, or `/usr/local/etc/gitconfig`
/// for a git built with prefix /usr/local), from git's own words.
fn git_system_config() -> Option<String> {
    let out = Command::new("git")
        .args(["config", "--system", "--list", "--show-origin"])
        .env_clear()
        .env("PATH", FIXTURE_PATH)
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(rest) = text.split("unable to read config file '").nth(1) {
        return rest.split('\'').next().map(str::to_string);
    }
    text.lines()
        .find_map(|l| l.strip_prefix("file:"))
        .and_then(|l| l.split('\t').next())
        .map(str::to_string)
}

/// A netrc is hidden; pip's config and git's system config are shown without their credentials,
/// and pip and git still read the rest.
#[test]
fn a19_system_credential_files_are_kept_out() {
    if !as_root("a19_system_credential_files_are_kept_out") {
        return;
    }
    let rand = random_hex(6);
    let netrc_secret = format!("FAKE-A19-NETRC-{rand}");
    let pip_secret = format!("FAKE-A19-PIP-{rand}");
    let git_secret = format!("FAKE-A19-GIT-{rand}");
    let mut planted = Planted::new();
    let netrc = planted.plant(
        "/etc/netrc",
        &format!("machine creds.invalid login ci password {netrc_secret}\n"),
    );
    let pip = planted.plant(
        "/etc/xdg/pip/pip.conf",
        &format!(
            "# keepout's A19 test (removed after it)\n[keepout-a19]\n\
             index-url = https://ci:{pip_secret}@creds.invalid/simple\n\
             trusted-host = creds.invalid\n"
        ),
    );
    let git_config = git_system_config();
    let git = match &git_config {
        Some(path) => planted.plant(
            path,
            &format!(
                "# keepout's A19 test (removed after it)\n[http \"https://creds.invalid/\"]\n\
                 \textraHeader = Authorization: Bearer {git_secret}\n[keepout-a19]\n\tvisible = yes\n"
            ),
        ),
        None => {
            note("A19: cannot tell where git's system config is; its part is skipped");
            false
        }
    };
    let have_pip = Command::new(PYTHON)
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());

    for r in runners() {
        let fx = Fixture::new(&r);
        let policy = fx.keepout(&["run", "--print-policy", "--", "true"]);
        assert!(policy.success(), "[{r}] --print-policy:{policy}");
        for secret in [&netrc_secret, &pip_secret, &git_secret] {
            assert!(
                !policy.has(secret),
                "[{r}] the policy shows {secret}:{policy}"
            );
        }

        if netrc {
            let script = "cat /etc/netrc";
            let out = fx.outside(script);
            assert!(
                out.success() && out.has(&netrc_secret),
                "[{r}] outside: /etc/netrc is world-readable (proves the attack):{out}"
            );
            let inn = fx.inside(&[], script);
            assert!(
                inn.success() && inn.stdout.is_empty() && !inn.has(&netrc_secret),
                "[{r}] inside: /etc/netrc must be an empty file:{inn}"
            );
            assert!(
                policy.stdout.contains(
                    "path = \"/etc/netrc\"\nkind = \"masked\"\nwhy = \"credentials outside the home: netrc"
                ),
                "[{r}] --print-policy shows the mask and why:{policy}"
            );
        }

        if pip {
            let script = "cat /etc/xdg/pip/pip.conf";
            let out = fx.outside(script);
            assert!(
                out.success() && out.has(&pip_secret),
                "[{r}] outside: pip's site config shows the index password:{out}"
            );
            let inn = fx.inside(&[], script);
            assert!(
                inn.success()
                    && !inn.has(&pip_secret)
                    && inn.has("index-url = https://creds.invalid/simple\n")
                    && inn.has("trusted-host = creds.invalid\n")
                    && inn.has("# keepout's A19 test"),
                "[{r}] inside: the same file without the user:password@ only:{inn}"
            );
            let inn = fx.inside(&[], "echo x > /etc/xdg/pip/pip.conf");
            assert!(!inn.success(), "[{r}] inside: the copy is read-only:{inn}");
            assert!(
                policy
                    .has("credentials outside the home: pip (XDG site-wide) (URL with credentials"),
                "[{r}] --print-policy says why:{policy}"
            );
            if have_pip {
                let script = format!("{PYTHON} -m pip config list");
                let out = fx.outside(&script);
                assert!(
                    out.success() && out.has(&pip_secret),
                    "[{r}] outside: pip reads it:{out}"
                );
                let inn = fx.inside(&[], &script);
                assert!(
                    inn.success()
                        && inn.has("keepout-a19.index-url='https://creds.invalid/simple'")
                        && !inn.has(&pip_secret),
                    "[{r}] inside: pip reads the index URL without the password:{inn}"
                );
            }
        }

        if git {
            let script =
                "git config --system --get-urlmatch http.extraheader https://creds.invalid/x; \
                          git config --system keepout-a19.visible";
            let out = fx.outside(script);
            assert!(
                out.success() && out.has(&git_secret),
                "[{r}] outside: git sends the token to anyone who asks its config:{out}"
            );
            let inn = fx.inside(&[], script);
            assert!(
                inn.success() && !inn.has(&git_secret) && inn.stdout.ends_with("yes\n"),
                "[{r}] inside: no header, the rest of git's system config still read:{inn}"
            );
            let inn = fx.inside(&[], "git status --short && git log --oneline | wc -l");
            assert!(
                inn.success() && inn.stdout.trim() == "1",
                "[{r}] inside: git still works in the project:{inn}"
            );
        }
    }
    drop(planted);
    for f in ["/etc/netrc", "/etc/xdg/pip/pip.conf"] {
        if (f == "/etc/netrc" && netrc) || (f != "/etc/netrc" && pip) {
            assert!(!Path::new(f).exists(), "{f} removed after the test");
        }
    }
    if let (true, Some(path)) = (git, git_config) {
        assert!(!Path::new(&path).exists(), "{path} removed after the test");
    }
}

/// A system file without credentials is shown as it is: no mount over it, the same bytes.
#[test]
fn a19_a_file_without_credentials_is_shown_unchanged() {
    if !as_root("a19_a_file_without_credentials_is_shown_unchanged") {
        return;
    }
    let content = "# keepout's A19 test (removed after it)\n[Boto]\nproxy = proxy.invalid\nproxy_port = 3128\nhttps_validate_certificates = True\n";
    let mut planted = Planted::new();
    if !planted.plant("/etc/boto.cfg", content) {
        return;
    }
    for r in runners() {
        let fx = Fixture::new(&r);
        let out = fx.outside("cat /etc/boto.cfg");
        assert!(
            out.success() && out.stdout == content,
            "[{r}] outside:{out}"
        );
        let inn = fx.inside(&[], "cat /etc/boto.cfg");
        assert!(
            inn.success() && inn.stdout == content,
            "[{r}] inside: the same bytes:{inn}"
        );
        let policy = fx.keepout(&["run", "--print-policy", "--", "true"]);
        assert!(
            policy.success() && !policy.has("/etc/boto.cfg"),
            "[{r}] nothing is mounted over it:{policy}"
        );
    }
}
