//! Policy::build on real (temporary) host trees.

use super::*;
use crate::policy::Limits;

fn request(project: &Path) -> RunRequest {
    RunRequest {
        caller_env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("GITHUB_TOKEN".into(), "ghp_secret".into()),
            ("SSH_AUTH_SOCK".into(), "/run/user/1000/ssh".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        ..RunRequest::for_tests(project)
    }
}

#[test]
fn home_and_credentials_are_not_visible() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::build(&request(dir.path())).unwrap();
    let home = policy
        .mounts
        .iter()
        .find(|m| m.path == Path::new("/home/alice"))
        .unwrap();
    assert_eq!(
        home.kind,
        MountKind::Tmpfs {
            size_mib: Limits::default().tmp_size_mib
        }
    );
    for hidden in ["/root", "/home", "/run/user", "/var", "/mnt", "/media"] {
        assert!(
            !policy.mounts.iter().any(|m| m.path == Path::new(hidden)
                && matches!(m.kind, MountKind::ReadOnly | MountKind::ReadWrite)),
            "{hidden} must not be bound"
        );
    }
}

#[test]
fn environment_is_an_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::build(&request(dir.path())).unwrap();
    assert!(!policy.env.contains_key("GITHUB_TOKEN"));
    assert!(!policy.env.contains_key("SSH_AUTH_SOCK"));
    assert_eq!(policy.env["LANG"], "C.UTF-8");
    assert_eq!(policy.env["HOME"], "/home/alice");
}

#[test]
fn git_internals_are_protected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git/hooks")).unwrap();
    std::fs::write(dir.path().join(".git/config"), "").unwrap();
    let policy = Policy::build(&request(dir.path())).unwrap();
    let project = std::fs::canonicalize(dir.path()).unwrap();
    let ro = |p: &str| {
        policy
            .mounts
            .iter()
            .any(|m| m.path == project.join(p) && m.kind == MountKind::Pinned)
    };
    assert!(ro(".git/hooks") && ro(".git/config"));
    let absent: Vec<_> = policy
        .protected
        .iter()
        .filter(|p| !p.exists)
        .map(|p| p.path.clone())
        .collect();
    assert!(absent.contains(&project.join(".envrc")));
    assert!(absent.contains(&project.join(".git/info")));
    // The project comes before the protections that sit on top of it.
    let pos = |p: &Path| policy.mounts.iter().position(|m| m.path == p).unwrap();
    assert!(pos(&project) < pos(&project.join(".git/hooks")));
}

#[test]
fn a_project_that_contains_the_home_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home/alice");
    std::fs::create_dir_all(&home).unwrap();
    let mut req = request(&home);
    req.caller_home = home.clone();
    let err = Policy::build(&req).unwrap_err().to_string();
    assert!(err.contains("home directory"), "{err}");
    req.cwd = dir.path().join("home");
    assert!(
        Policy::build(&req).is_err(),
        "a parent of the home is refused too"
    );
    req.cwd = home.clone();
    std::fs::create_dir_all(home.join("src/repro")).unwrap();
    req.cwd = home.join("src/repro");
    assert!(
        Policy::build(&req).is_ok(),
        "a project inside the home is fine"
    );
    req.read_only = vec![home.clone()];
    assert!(Policy::build(&req).is_err(), "--ro ~ is refused");
}

#[test]
fn dns_follows_a_resolv_conf_symlink_into_run() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("stub-resolv.conf");
    std::fs::write(&target, "nameserver 127.0.0.53\n").unwrap();
    let link = dir.path().join("resolv.conf");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let m = resolv_conf_target(&link).expect("a symlink outside /etc is bound");
    assert_eq!(m.path, std::fs::canonicalize(&target).unwrap());
    assert_eq!(m.kind, MountKind::ReadOnly);
    assert!(
        resolv_conf_target(&target).is_none(),
        "a plain file needs nothing"
    );
}

#[test]
fn masks_go_only_where_the_sandbox_user_could_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(
        !readable_by_sandbox(&secret, true),
        "a root caller's sandbox is `other`"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(readable_by_sandbox(&secret, true));
    assert!(
        readable_by_sandbox(&secret, false),
        "the caller can read its own file"
    );
    assert!(!readable_by_sandbox(&dir.path().join("missing"), false));
}

#[test]
fn symlinked_hooks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::os::unix::fs::symlink("/tmp", dir.path().join(".git/hooks")).unwrap();
    let err = Policy::build(&request(dir.path())).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
}

#[test]
fn root_caller_runs_as_nobody_outside() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(dir.path());
    req.caller_uid = 0;
    req.caller_gid = 0;
    let policy = Policy::build(&req).unwrap();
    assert_ne!(policy.identity.uid, 0);
    assert_eq!(policy.identity.host_uid, ROOT_CALLER_HOST_ID);
}

#[test]
fn toolchains_go_inside_the_fresh_home_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let home = std::fs::canonicalize(dir.path()).unwrap().join("alice");
    for d in [".rustup", ".cargo/bin", ".pyenv"] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    std::fs::write(home.join(".cargo/credentials.toml"), "token").unwrap();
    let project = tempfile::tempdir().unwrap();
    let mut req = request(project.path());
    req.caller_home = home.clone();
    req.toolchains = true;
    req.read_only = vec![home.join(".pyenv")];
    let policy = Policy::build(&req).unwrap();
    let at = |p: &Path| policy.mounts.iter().position(|m| m.path == p);
    let rustup = at(&home.join(".rustup")).expect("rustup is shown");
    assert!(at(&home).unwrap() < rustup, "the home comes first");
    assert_eq!(policy.mounts[rustup].kind, MountKind::ReadOnly);
    assert!(at(&home.join(".cargo/bin")).is_some() && at(&home.join(".cargo")).is_none());
    let pyenv: Vec<_> = policy
        .mounts
        .iter()
        .filter(|m| m.path == home.join(".pyenv"))
        .collect();
    assert_eq!(pyenv.len(), 1, "--ro ~/.pyenv and the toolchain: one mount");
    assert_eq!(
        policy.env["RUSTUP_HOME"],
        home.join(".rustup").to_string_lossy()
    );

    req.toolchains = false;
    let policy = Policy::build(&req).unwrap();
    assert!(!policy.mounts.iter().any(|m| m.why.starts_with("toolchain")));
    assert!(!policy.env.contains_key("RUSTUP_HOME"));
}

#[test]
fn policy_round_trips_through_toml() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = Policy::build(&request(dir.path())).unwrap();
    let text = policy.to_toml().unwrap();
    let back: Policy = toml::from_str(&text).unwrap();
    policy.scans.clear(); // the walks are not part of the printed policy
    assert_eq!(back, policy);
}
