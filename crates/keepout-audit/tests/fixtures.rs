//! Each check against a fixture home built in a temporary directory: it finds what it should,
//! says where, never prints a secret; and a clean home reports nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use keepout_audit::{audit, Context, Finding, Severity};

fn ctx(home: &Path) -> Context {
    Context::fixture(home)
}

fn write(home: &Path, rel: &str, text: &str) {
    let path = home.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn at(findings: &[Finding], location: &str) -> Vec<Finding> {
    findings
        .iter()
        .filter(|f| f.location.starts_with(location))
        .cloned()
        .collect()
}

const GH: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

#[test]
fn a_clean_home_reports_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Ordinary, harmless files of the same names and places.
    write(h, ".bashrc", "alias ll='ls -l'\nexport EDITOR=vim\n");
    write(
        h,
        ".gitconfig",
        "[user]\n\tname = Alice\n[credential]\n\thelper = !keepout git-credential\n\
         [url \"https://github.com/\"]\n\tinsteadOf = git@github.com:\n\
         [url \"git@github.com:\"]\n\tpushInsteadOf = https://github.com/\n",
    );
    write(
        h,
        ".npmrc",
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
    );
    write(
        h,
        ".ssh/config",
        "Host build\n  ForwardAgent yes\nHost *\n  ServerAliveInterval 30\n",
    );
    write(h, ".ssh/known_hosts", "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n");
    write(
        h,
        ".docker/config.json",
        "{\"auths\":{\"ghcr.io\":{}},\"credsStore\":\"pass\"}\n",
    );
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(h.join(".ssh/id_ed25519"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut c = ctx(h);
    c.project = Some(h.join("project"));
    write(h, "project/.env.example", "TOKEN=\n");
    let findings = audit(&c);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn plaintext_credential_files_with_their_tools() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let files: &[(&str, &str, &str)] = &[
        (
            ".netrc",
            "machine github.com login a password s3cret\n",
            "netrc",
        ),
        (
            ".git-credentials",
            "https://a:s3cret@github.com\n",
            "credential.helper=store",
        ),
        (
            ".pypirc",
            "[pypi]\nusername = __token__\npassword = pypi-x\n",
            "twine",
        ),
        (".npmrc", "//registry.npmjs.org/:_authToken=npm_x\n", "npm"),
        (".yarnrc.yml", "npmAuthToken: abc\n", "yarn"),
        (
            ".cargo/credentials.toml",
            "[registry]\ntoken = \"cio-x\"\n",
            "cargo",
        ),
        (
            ".config/gh/hosts.yml",
            "github.com:\n  oauth_token: gho_x\n",
            "GitHub CLI",
        ),
        (
            ".docker/config.json",
            "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"YTpi\"}}}\n",
            "docker",
        ),
        (
            ".aws/credentials",
            "[default]\naws_access_key_id = x\naws_secret_access_key = y\n",
            "AWS",
        ),
        (
            ".kube/config",
            "users:\n- name: u\n  user:\n    token: abc\n",
            "kubectl",
        ),
        (".config/gcloud/credentials.db", "SQLite", "gcloud"),
        (".azure/msal_token_cache.json", "{}", "Azure"),
        (
            ".gem/credentials",
            "---\n:rubygems_api_key: rubygems_x\n",
            "RubyGems",
        ),
        (
            ".m2/settings.xml",
            "<settings><servers><server><password>p</password></server></servers></settings>\n",
            "Maven",
        ),
        (
            ".gradle/gradle.properties",
            "signing.password=p\n",
            "Gradle",
        ),
        (".pgpass", "db:5432:*:u:p\n", "PostgreSQL"),
        (".my.cnf", "[client]\npassword=p\n", "MySQL"),
        (
            ".terraform.d/credentials.tfrc.json",
            "{\"credentials\":{\"app.terraform.io\":{\"token\":\"x\"}}}\n",
            "Terraform",
        ),
    ];
    for (rel, text, _) in files {
        write(h, rel, text);
    }
    write(h, ".gitconfig", "[credential]\n\thelper = store\n");
    write(h, "project/.env", "API_KEY=abc\n# comment\n");
    let mut c = ctx(h);
    c.project = Some(h.join("project"));
    let findings = audit(&c);
    for (rel, _, tool) in files {
        let here = at(&findings, &format!("~/{rel}"));
        assert_eq!(here.len(), 1, "{rel}: {findings:#?}");
        assert_eq!(here[0].check, "plaintext-credentials");
        assert_eq!(here[0].severity, Severity::High);
        assert!(here[0].title.contains(tool), "{rel}: {}", here[0].title);
    }
    assert_eq!(
        at(&findings, "~/.netrc")[0].fix_command.as_deref(),
        Some("keepout import netrc")
    );
    let store = at(&findings, "~/.gitconfig:2");
    assert_eq!(store[0].check, "git-credential-store", "{findings:#?}");
    assert_eq!(
        at(&findings, "~/project/.env")[0].severity,
        Severity::Medium
    );
    let all = serde_json::to_string(&findings).unwrap();
    assert!(!all.contains("s3cret"), "no secret in the report");
}

#[test]
fn ssh_keys_agent_forwarding() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join(".ssh")).unwrap();
    let keygen = |name: &str, extra: &[&str]| {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519"])
            .args(extra)
            .arg("-f")
            .arg(h.join(".ssh").join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    keygen("id_plain", &["-N", ""]);
    keygen("id_protected", &["-N", "passphrase"]);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "1024", "-m", "PEM", "-N", "", "-f"])
        .arg(h.join(".ssh/id_pem"))
        .output()
        .unwrap();
    assert!(out.status.success());
    keygen("id_open", &["-N", "passphrase"]);
    std::fs::set_permissions(
        h.join(".ssh/id_open"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    write(
        h,
        ".ssh/config",
        "ForwardAgent no\nHost *\n    ForwardAgent yes\n",
    );
    let findings = audit(&ctx(h));
    let checks = |loc: &str| -> Vec<&str> { at(&findings, loc).iter().map(|f| f.check).collect() };
    assert_eq!(
        checks("~/.ssh/id_plain"),
        ["ssh-key-unencrypted"],
        "{findings:#?}"
    );
    assert_eq!(checks("~/.ssh/id_pem"), ["ssh-key-unencrypted"]);
    assert!(
        checks("~/.ssh/id_protected").is_empty(),
        "an encrypted key is fine"
    );
    assert_eq!(checks("~/.ssh/id_open"), ["ssh-key-permissions"]);
    assert_eq!(checks("~/.ssh/config:3"), ["ssh-forward-agent"]);
    assert_eq!(
        at(&findings, "~/.ssh/id_plain")[0].fix_command.as_deref(),
        Some("keepout ssh import ~/.ssh/id_plain")
    );
    // With SSH keys and no `keepout git setup`: fetches can use them.
    let git = at(&findings, "~/.gitconfig");
    assert_eq!(git.len(), 1, "{findings:#?}");
    assert_eq!(
        (git[0].check, git[0].fix_command.as_deref()),
        ("git-setup", Some("keepout git setup"))
    );
}

#[test]
fn an_agent_that_signs_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let key = dir.path().join("k");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let mut c = ctx(&dir.path().join("home"));
    c.env
        .push(("SSH_AUTH_SOCK".into(), sock.display().to_string()));
    c.probe = true;
    c.uid = 4242; // the privilege probes do not apply to a fixture uid
    let empty = audit(&c);
    assert!(
        at(&empty, "SSH_AUTH_SOCK").is_empty(),
        "an agent without keys is fine: {empty:#?}"
    );
    assert!(Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap()
        .status
        .success());
    let findings = audit(&c);
    let _ = agent.kill();
    let _ = agent.wait();
    let here = at(&findings, "SSH_AUTH_SOCK");
    assert_eq!(here.len(), 1, "{findings:#?}");
    assert_eq!(here[0].check, "ssh-agent-unconfirmed");
    // keepout's own agent is not reported.
    c.keepout_agent_socket = Some(sock.clone());
    assert!(at(&audit(&c), "SSH_AUTH_SOCK").is_empty());
}

#[test]
fn tokens_in_environment_rc_files_history_and_git_config() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let pypi = format!("pypi-AgEIcHlwaS5vcmc{}", "x".repeat(40));
    write(
        h,
        ".bashrc",
        &format!("export EDITOR=vim\nexport GITHUB_TOKEN={GH}\n"),
    );
    write(
        h,
        ".zshrc",
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
    );
    write(
        h,
        ".config/fish/config.fish",
        "set -x SLACK xoxb-123456789012-abcdef\n",
    );
    write(
        h,
        ".bash_history",
        &format!("ls\ntwine upload -p {pypi} dist/*\n"),
    );
    write(h, ".gitconfig", "[url \"https://glpat-abcdefghijklmnopqrst@gitlab.com/\"]\n\tinsteadOf = https://gitlab.com/\n");
    write(
        h,
        "project/.git/config",
        &format!("[remote \"origin\"]\n\turl = https://x:{GH}@github.com/a/b\n"),
    );
    let mut c = ctx(h);
    c.project = Some(h.join("project"));
    c.env
        .push(("NPM_TOKEN".into(), format!("npm_{}", "A".repeat(36))));
    let findings = audit(&c);
    let title = |loc: &str| {
        at(&findings, loc)
            .first()
            .map(|f| f.title.clone())
            .unwrap_or_default()
    };
    assert!(
        title("~/.bashrc:2").contains("GitHub token"),
        "{findings:#?}"
    );
    assert!(title("~/.zshrc:1").contains("AWS access key id"));
    assert!(title("~/.config/fish/config.fish:1").contains("Slack token"));
    assert!(title("~/.bash_history:2").contains("PyPI token"));
    assert!(title("~/.gitconfig:1").contains("GitLab token"));
    assert!(
        title(&format!("{}", h.join("project/.git/config:2").display())).contains("GitHub token")
    );
    assert!(title("environment").contains("npm token in the environment variable NPM_TOKEN"));
    let report = serde_json::to_string(&findings).unwrap();
    for secret in [
        GH,
        &pypi,
        "AKIAIOSFODNN7EXAMPLE",
        "glpat-abcdefghijklmnopqrst",
    ] {
        assert!(!report.contains(secret), "{secret} must not be printed");
    }
    assert!(
        report.contains("ghp_…(sha256:"),
        "shown by its first characters and a fingerprint"
    );
}

#[test]
fn privilege_and_persistence() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let bin = h.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let me = std::fs::metadata(h)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    write(
        h,
        ".gitconfig",
        "[core]\n\thooksPath = ~/.githooks\n\tfsmonitor = ~/bin/watch\n",
    );
    let mut c = ctx(h);
    c.uid = me.max(1); // as root the fixture dir is root's: pretend to be its (non-root) owner
    if me == 0 {
        Command::new("chown")
            .args(["1", &bin.display().to_string()])
            .status()
            .unwrap();
        c.uid = 1;
    }
    c.groups = vec!["alice".into(), "docker".into(), "sudo".into()];
    write(
        h,
        "sudoers",
        "root ALL=(ALL) ALL\n%sudo ALL=(ALL) NOPASSWD: ALL\nbob ALL=(ALL) NOPASSWD: ALL\n",
    );
    c.sudoers = vec![h.join("sudoers")];
    c.env = vec![(
        "PATH".into(),
        format!("{}:/usr/bin:/bin:/opt/late", bin.display()),
    )];
    let findings = audit(&c);
    let checks: Vec<(&str, Severity)> = findings.iter().map(|f| (f.check, f.severity)).collect();
    assert!(
        checks.contains(&("privilege", Severity::High)),
        "docker group: {findings:#?}"
    );
    assert!(checks.contains(&("privilege", Severity::Low)), "sudo group");
    assert!(
        checks.contains(&("path-writable", Severity::Medium)),
        "writable PATH entry first"
    );
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.check == "git-global-hook")
            .count(),
        2
    );
    assert_eq!(findings[0].severity, Severity::Critical, "worst first");
    // The same writable directory after the system ones is not a finding.
    c.env = vec![("PATH".into(), format!("/usr/bin:/bin:{}", bin.display()))];
    assert!(!audit(&c).iter().any(|f| f.check == "path-writable"));
}

#[test]
fn credentials_in_system_wide_files() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let npm = format!("npm_{}", "Ab12".repeat(9));
    write(
        r,
        "etc/pip.conf",
        "[global]\nindex-url = https://ci:FAKE-PIP-SECRET@pypi.internal/simple\n",
    );
    write(
        r,
        "etc/gitconfig",
        "[http \"https://git.internal/\"]\n\textraHeader = Authorization: Basic RkFLRS1HSVQ=\n",
    );
    write(
        r,
        "etc/environment",
        &format!("PATH=/usr/bin:/bin\nNPM_TOKEN={npm}\n"),
    );
    write(r, "etc/netrc", "machine h login u password FAKE-NETRC\n");
    // Settings without credentials are no finding.
    write(r, "usr/local/etc/npmrc", "cafile=/etc/ssl/certs/ca.crt\n");
    write(
        r,
        "etc/xdg/pip/pip.conf",
        "[global]\nindex-url = https://pypi.internal/simple\n",
    );
    write(
        r,
        "etc/maven/settings.xml",
        "<settings>\n<!--\n<server><password>repopwd</password></server>\n-->\n</settings>\n",
    );
    write(
        h,
        ".nvm/versions/node/v20.11.0/etc/npmrc",
        "//registry.npmjs.org/:_authToken=FAKE-NVM-TOKEN\n",
    );

    let mut c = ctx(h);
    c.system_root = Some(r.to_path_buf());
    let findings: Vec<Finding> = audit(&c)
        .into_iter()
        .filter(|f| f.check == "system-credentials")
        .collect();
    let locations: Vec<&str> = findings.iter().map(|f| f.location.as_str()).collect();
    assert_eq!(
        locations,
        [
            "/etc/environment",
            "/etc/gitconfig",
            "/etc/netrc",
            "/etc/pip.conf",
            "~/.nvm/versions/node/v20.11.0/etc/npmrc"
        ],
        "{findings:#?}"
    );
    for f in &findings {
        assert_eq!(f.severity, Severity::High);
        assert!(!f.fix.is_empty() && !f.why.is_empty());
    }
    assert!(findings[3].title.contains("pip") && findings[3].title.contains("user:password"));
    assert!(findings[1].title.contains("Authorization header"));
    assert!(findings[0].title.contains("credential value (line 2)"));
    let all = serde_json::to_string(&findings).unwrap();
    for secret in [
        "FAKE-PIP-SECRET",
        "RkFLRS1HSVQ",
        &npm,
        "FAKE-NETRC",
        "FAKE-NVM",
    ] {
        assert!(!all.contains(secret), "{secret} shown: {all}");
    }

    // Auditing another home: the system is not looked at, the toolchains in the home are.
    c.system_root = None;
    let locations: Vec<String> = audit(&c)
        .into_iter()
        .filter(|f| f.check == "system-credentials")
        .map(|f| f.location)
        .collect();
    assert_eq!(locations, ["~/.nvm/versions/node/v20.11.0/etc/npmrc"]);
}
