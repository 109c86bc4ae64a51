//! The translation asserted whole, as data.

use std::path::Path;

use keepout_sandbox::Policy;

use super::*;

/// A policy as the builder makes it for uid 1000 in /work/p (`--print-policy`'s TOML).
fn policy(extra: &str) -> Policy {
    let text = format!(
        r#"
mode = "namespaces"
command = ["python3", "-m", "pytest", "-x"]
cwd = "/work/p/tests"
project = "/work/p"
network = "none"
home = "fresh"
home-path = "/home/alice"
[identity]
uid = 1000
gid = 1000
host-uid = 1000
host-gid = 1000
idmap-root = false
[limits]
max-processes = 2048
tmp-size-mib = 512
core-dumps = false
{extra}
[env]
HOME = "/home/alice"
KEEPOUT_SANDBOX = "1"
LANG = "C.UTF-8"
PATH = "/home/alice/.cargo/bin:/usr/bin:/bin"
TERM = "xterm"
[[protected]]
path = "/work/p/.git/hooks"
exists = true
[[protected]]
path = "/work/p/.git/config"
exists = true
[[protected]]
path = "/work/p/.vscode"
exists = true
[[protected]]
path = "/work/p/.envrc"
exists = false
[[mount]]
path = "/usr"
kind = "read-only"
why = "system"
[[mount]]
path = "/bin"
kind = "symlink"
target = "usr/bin"
why = "system"
[[mount]]
path = "/etc"
kind = "read-only"
why = "system"
[[mount]]
path = "/etc/ssh/ssh_host_rsa_key.pub"
kind = "masked"
why = "host secret under /etc"
[[mount]]
path = "/etc/pip.conf"
kind = "text"
content = ""
why = "system credentials removed"
[[mount]]
path = "/dev"
kind = "dev"
why = "safe device nodes only"
[[mount]]
path = "/proc"
kind = "proc"
why = "own"
[[mount]]
path = "/tmp"
kind = "tmpfs"
size_mib = 512
why = "fresh"
[[mount]]
path = "/run"
kind = "tmpfs"
size_mib = 16
why = "fresh"
[[mount]]
path = "/var/tmp"
kind = "symlink"
target = "/tmp"
why = "programs expect it"
[[mount]]
path = "/home/alice"
kind = "tmpfs"
size_mib = 512
why = "the sandbox's home"
[[mount]]
path = "/work/p"
kind = "read-write"
why = "the project"
[[mount]]
path = "/work/p/.git"
kind = "read-write"
why = "pinned in place"
[[mount]]
path = "/work/p/.vscode"
kind = "pinned"
why = "VS Code"
[[mount]]
path = "/work/p/.git/config"
kind = "pinned"
why = "git"
[[mount]]
path = "/work/p/.git/hooks"
kind = "pinned"
why = "git"
[[mount]]
path = "/work/p/run/db.sock"
kind = "masked"
why = "a host socket"
[[mount]]
path = "/work/p/node_modules/.cache/sockets"
kind = "masked"
why = "a directory of host sockets"
"#
    );
    toml::from_str(&text).expect("a policy")
}

fn engine(kind: EngineKind, rootless: bool, cgroups_v1: bool) -> Engine {
    Engine {
        kind,
        program: format!("/usr/bin/{}", kind.name()).into(),
        version: "4.3.1".into(),
        rootless,
        remote: false,
        cgroups_v1,
        default_runtime: "crun".into(),
        runtime: cgroups_v1.then(|| "runc".into()),
        cgroup_manager: (rootless && cgroups_v1).then(|| "cgroupfs".into()),
        nofile: 20000,
        nproc_hard: 96365,
        seccomp_profile: None,
    }
}

fn args(policy: &Policy, engine: &Engine, tty: bool) -> Result<Vec<String>> {
    let is_dir = |p: &Path| p.ends_with("sockets");
    let inv = Invocation {
        engine,
        image: "localhost/py:3.12",
        name: "keepout-0123456789ab",
        tty,
        seccomp: None,
        is_dir: &is_dir,
        rebound: &[],
    };
    run_args(policy, &inv)
}

/// The words after the image: the command, as it was.
const COMMAND: [&str; 5] = ["localhost/py:3.12", "python3", "-m", "pytest", "-x"];

/// The project and its protected names, the masked sockets, the tmpfs: the same for every
/// engine and identity but the home's owner option.
fn mounts(home_owner: &str) -> Vec<String> {
    [
        "--tmpfs",
        "/tmp:rw,nosuid,nodev,size=512m,mode=1777",
        "--tmpfs",
        "/run:rw,nosuid,nodev,size=16m,mode=0755",
        "--tmpfs",
        "/var/tmp:rw,nosuid,nodev,size=64m,mode=1777",
        "--tmpfs",
        &format!("/home/alice:rw,nosuid,nodev,size=512m,mode=0700,{home_owner}"),
        "--volume",
        "/work/p:/work/p:rw",
        "--volume",
        "/work/p/.git:/work/p/.git:rw",
        "--volume",
        "/work/p/.vscode:/work/p/.vscode:ro",
        "--volume",
        "/work/p/.git/config:/work/p/.git/config:ro",
        "--volume",
        "/work/p/.git/hooks:/work/p/.git/hooks:ro",
        "--volume",
        "/dev/null:/work/p/run/db.sock:ro",
        "--tmpfs",
        "/work/p/node_modules/.cache/sockets:ro,nosuid,nodev,noexec,size=4k,mode=0555",
        "--env",
        "HOME=/home/alice",
        "--env",
        "KEEPOUT_SANDBOX=1",
        "--env",
        "LANG=C.UTF-8",
        "--env",
        "TERM=xterm",
        "--workdir",
        "/work/p/tests",
    ]
    .map(String::from)
    .to_vec()
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}

#[test]
fn rootless_podman_on_hybrid_cgroups_runs_the_policy_as_the_callers_own_user() {
    let got = args(&policy(""), &engine(EngineKind::Podman, true, true), false).unwrap();
    let mut want = words(&[
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "run",
        "--rm",
        "--name",
        "keepout-0123456789ab",
        "--pull",
        "never",
        "--interactive",
        "--detach-keys",
        "",
        "--http-proxy=false",
        "--init",
        "--userns",
        "keep-id",
        "--user",
        "1000:1000",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--read-only-tmpfs=false",
        "--security-opt",
        "mask=/sys",
        "--network",
        "none",
        "--ipc",
        "private",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=2048:2048",
        "--ulimit",
        "core=0:0",
    ]);
    // No --pids-limit: a rootless container on cgroups v1 has no cgroup (RLIMIT_NPROC holds).
    want.extend(mounts("U"));
    want.extend(words(&COMMAND));
    assert_eq!(got, want);
}

#[test]
fn a_root_caller_with_rootful_podman_runs_as_nobody_with_cgroup_limits() {
    let mut policy = policy("memory-bytes = 1073741824");
    policy.identity.host_uid = 65534;
    policy.identity.host_gid = 65534;
    policy.identity.idmap_root = true;
    let got = args(&policy, &engine(EngineKind::Podman, false, false), true).unwrap();
    let mut want = words(&[
        "run",
        "--rm",
        "--name",
        "keepout-0123456789ab",
        "--pull",
        "never",
        "--interactive",
        "--tty",
        "--detach-keys",
        "",
        "--http-proxy=false",
        "--init",
        "--user",
        "65534:65534",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--read-only-tmpfs=false",
        "--security-opt",
        "mask=/sys",
        "--network",
        "none",
        "--ipc",
        "private",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=2048:2048",
        "--ulimit",
        "core=0:0",
        "--pids-limit",
        "2048",
        "--memory",
        "1073741824b",
        "--memory-swap",
        "1073741824b",
    ]);
    want.extend(mounts("U"));
    want.extend(words(&COMMAND));
    assert_eq!(got, want);
}

#[test]
fn docker_gets_no_podman_options_and_an_owned_home() {
    let got = args(
        &policy(""),
        &engine(EngineKind::Docker, false, false),
        false,
    )
    .unwrap();
    let mut want = words(&[
        "run",
        "--rm",
        "--name",
        "keepout-0123456789ab",
        "--pull",
        "never",
        "--interactive",
        "--init",
        "--user",
        "1000:1000",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--network",
        "none",
        "--ipc",
        "private",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=2048:2048",
        "--ulimit",
        "core=0:0",
        "--pids-limit",
        "2048",
    ]);
    want.extend(mounts("uid=1000,gid=1000"));
    want.extend(words(&COMMAND));
    assert_eq!(got, want);
}

#[test]
fn nothing_of_the_hosts_system_toolchains_or_path_is_passed() {
    let got = args(&policy(""), &engine(EngineKind::Podman, true, true), false).unwrap();
    let joined = got.join(" ");
    for absent in [
        "/usr:", "/etc", "ssh_host", "pip.conf", ".cargo", "PATH=", "/proc", "/dev:",
    ] {
        assert!(!joined.contains(absent), "{absent} in {joined}");
    }
    assert!(!got
        .iter()
        .any(|w| w.contains(".sock:") && !w.starts_with("/dev/null:")));
}

#[test]
fn a_protected_name_the_mounts_do_not_list_is_still_read_only() {
    let mut policy = policy("");
    policy.protected.push(keepout_sandbox::ProtectedPath {
        path: "/work/p/.git/info".into(),
        exists: true,
    });
    let got = args(&policy, &engine(EngineKind::Podman, true, true), false).unwrap();
    let at = got
        .iter()
        .position(|w| w == "/work/p/.git/info:/work/p/.git/info:ro")
        .expect("the protected name, read-only");
    assert_eq!(got[at - 1], "--volume");
    assert!(
        !got.iter().any(|w| w.contains(".envrc")),
        "absent: watched after the run only"
    );
}

#[test]
fn what_the_container_backend_does_not_do_yet_is_refused_not_weakened() {
    let mut proxied = policy("");
    proxied.network = keepout_sandbox::Network::Proxied { port: 3128 };
    let err = args(&proxied, &engine(EngineKind::Docker, false, true), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--image with --net NAMES (keepout's proxy) and docker is not supported yet"
    );
    let mut remote = engine(EngineKind::Podman, true, true);
    remote.remote = true;
    let err = args(&proxied, &remote, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--image with --net NAMES (keepout's proxy) and a remote podman is not supported yet"
    );
    let mut landlock = policy("");
    landlock.mode = keepout_sandbox::Mode::Landlock;
    let err = args(&landlock, &engine(EngineKind::Podman, true, true), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--image with --mode landlock is not supported yet"
    );
    let memory = policy("memory-bytes = 1073741824");
    let err = args(&memory, &engine(EngineKind::Podman, true, true), false).unwrap_err();
    assert!(matches!(err, Error::Unenforceable { .. }), "{err}");
    let mut colon = policy("");
    colon.mounts.push(keepout_sandbox::Mount {
        path: "/work/p:x".into(),
        kind: keepout_sandbox::MountKind::ReadWrite,
        source: None,
        why: "--rw".into(),
    });
    let err = args(&colon, &engine(EngineKind::Podman, true, true), false).unwrap_err();
    assert!(matches!(err, Error::PathSyntax { .. }), "{err}");
}

#[test]
fn the_host_network_is_the_hosts_and_core_dumps_are_kept_when_asked() {
    let mut policy = policy("");
    policy.network = keepout_sandbox::Network::Host;
    policy.limits.core_dumps = true;
    let got = args(&policy, &engine(EngineKind::Podman, false, false), false).unwrap();
    let at = got.iter().position(|w| w == "--network").unwrap();
    assert_eq!(got[at + 1], "host");
    assert!(!got.iter().any(|w| w.starts_with("core=")));
}

#[test]
fn the_command_line_is_shell_quoted() {
    let engine = engine(EngineKind::Podman, true, true);
    let plan = Plan {
        engine: engine.clone(),
        image: "img".into(),
        name: "keepout-x".into(),
        args: words(&["run", "--detach-keys", "", "img", "sh", "-c", "echo $HOME"]),
        tty_stdin: false,
        proxy_port: None,
        seccomp: None,
        rebinds: Vec::new(),
        host_id: 1000,
    };
    assert_eq!(
        plan.command_line(),
        "/usr/bin/podman run --detach-keys '' img sh -c 'echo $HOME'"
    );
    // A proxied run: the three command lines, and where the proxy's port is made.
    let proxied = Plan {
        args: words(&["create", "img", "true"]),
        proxy_port: Some(3128),
        ..plan
    };
    assert_eq!(
        proxied.command_line(),
        "/usr/bin/podman create img true\n\
         /usr/bin/podman --runtime runc --cgroup-manager cgroupfs init keepout-x\n\
         # keepout's proxy listens on 127.0.0.1:3128 in the container's network namespace\n\
         /usr/bin/podman --runtime runc --cgroup-manager cgroupfs start --attach --interactive \
         --detach-keys '' keepout-x"
    );
}

#[test]
fn the_adapted_request_shows_no_toolchain_and_keeps_bytecode_in_the_home() {
    let mut req = keepout_sandbox::RunRequest {
        command: vec!["true".into()],
        cwd: "/work/p".into(),
        project: None,
        home: None,
        kept_home: None,
        review: None,
        read_only: vec![],
        read_write: vec![],
        toolchains: true,
        extra_toolchains: vec!["/opt/zig".into()],
        env: vec![],
        network: keepout_sandbox::Network::None,
        mode: keepout_sandbox::Mode::Namespaces,
        limits: Default::default(),
        caller_env: vec![],
        caller_env_not_utf8: vec![],
        caller_home: "/home/alice".into(),
        caller_uid: 1000,
        caller_gid: 1000,
        allow_sockets: vec![],
        bytecode_cache: Some("/home/alice/.cache/keepout/pycache/p".into()),
    };
    adapt_request(&mut req);
    assert!(!req.toolchains && req.extra_toolchains.is_empty() && req.bytecode_cache.is_none());
}

#[test]
fn the_extendedseccomp_profile_is_passed_after_no_new_privileges() {
    let engine = engine(EngineKind::Podman, true, true);
    let is_dir = |_: &Path| false;
    let inv = Invocation {
        engine: &engine,
        image: "img",
        name: "keepout-x",
        tty: false,
        seccomp: Some(Path::new("/tmp/keepout-seccomp-x.json")),
        is_dir: &is_dir,
        rebound: &[],
    };
    let got = run_args(&policy(""), &inv).unwrap();
    let at = got.iter().position(|w| w == "no-new-privileges").unwrap();
    assert_eq!(
        got[at + 1..at + 3],
        ["--security-opt", "seccomp=/tmp/keepout-seccomp-x.json"]
    );
}

/// `--net NAMES`: the container is made (`create`), not run, with no network but its own
/// loopback (where keepout puts the proxy's port before starting it), and started attached,
/// never detaching on a key.
#[test]
fn a_proxied_run_creates_the_container_without_a_network_then_starts_it() {
    let mut proxied = policy("");
    proxied.network = keepout_sandbox::Network::Proxied { port: 3128 };
    let podman = engine(EngineKind::Podman, true, true);
    let got = args(&proxied, &podman, false).unwrap();
    let plain = args(&policy(""), &podman, false).unwrap();
    let verb = |a: &[String]| a.iter().position(|w| w == "run" || w == "create");
    assert_eq!(got[verb(&got).unwrap()], "create");
    assert_eq!(plain[verb(&plain).unwrap()], "run");
    let at = got.iter().position(|w| w == "--network").unwrap();
    assert_eq!(got[at + 1], "none");
    assert!(!got.iter().any(|w| w == "--detach-keys"), "{got:?}");
    assert_eq!(
        crate::args::start_args(&podman, "keepout-0123456789ab"),
        [
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "start",
            "--attach",
            "--interactive",
            "--detach-keys",
            "",
            "keepout-0123456789ab"
        ]
    );
}

/// `--review`: the project is podman's overlay volume, its writes in the review's upper
/// directory; docker and a workspace's several layers are refused, not weakened.
#[test]
fn a_review_is_an_overlay_volume_over_the_project() {
    let overlay = |layers: Vec<&str>, upper: &str| {
        let mut p = policy("");
        p.mounts
            .retain(|m| m.path != std::path::Path::new("/work/p"));
        p.mounts.push(keepout_sandbox::Mount {
            path: "/work/p".into(),
            kind: keepout_sandbox::MountKind::Overlay {
                layers: layers.into_iter().map(Into::into).collect(),
                work: "/store/r1/work".into(),
                callers_layers: true,
            },
            source: Some(upper.into()),
            why: "--review".into(),
        });
        p
    };
    let podman = engine(EngineKind::Podman, true, true);
    let got = args(&overlay(vec!["/work/p"], "/store/r1/upper"), &podman, false).unwrap();
    let at = got
        .iter()
        .position(|w| w == "/work/p:/work/p:O,upperdir=/store/r1/upper,workdir=/store/r1/work")
        .expect("the overlay volume");
    assert_eq!(got[at - 1], "--volume");
    assert!(
        !got.iter().any(|w| w.starts_with("/work/p:/work/p:rw")),
        "never the project itself read-write: {got:?}"
    );
    let err = args(
        &overlay(vec!["/work/p"], "/store/r1/upper"),
        &engine(EngineKind::Docker, false, true),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--image with --review and docker is not supported yet"
    );
    let err = args(&overlay(vec!["/ws/l2", "/ws/l1"], "/ws/up"), &podman, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--image with a workspace on 2 layers (podman's overlay volume takes one) is not supported yet"
    );
    let err = args(
        &overlay(vec!["/work/p"], "/store/r,1/upper"),
        &podman,
        false,
    )
    .unwrap_err();
    assert!(matches!(err, Error::PathSyntax { .. }), "{err}");
}

/// A root caller's writable binds with a local rootful engine (podman or docker) come from the
/// idmapped copies keepout attaches (the native plan's idmapped binds: the project and its git
/// directory here), and only those; never for a rootless or remote engine, a plain caller, or
/// an engine without keepout's seccomp profile.
#[test]
fn a_root_callers_writable_binds_come_from_their_attached_copies() {
    let mut root = policy("");
    root.identity.host_uid = 65534;
    root.identity.host_gid = 65534;
    root.identity.idmap_root = true;
    let all = |_: &Path| true;
    let profiled = |kind| Engine {
        seccomp_profile: Some("/usr/share/containers/seccomp.json".into()),
        ..engine(kind, false, false)
    };
    let rootful = profiled(EngineKind::Podman);
    let found = rebinds_where(&root, &rootful, "keepout-x", &all);
    let pairs: Vec<(String, String, String)> = found
        .iter()
        .map(|r| {
            let s = |p: &std::path::Path| p.display().to_string();
            (s(&r.source), s(&r.target), s(&r.at))
        })
        .collect();
    let at = |i: usize| format!("/run/keepout-idmapped/keepout-x/{i}");
    assert_eq!(
        pairs,
        vec![
            ("/work/p".into(), "/work/p".into(), at(0)),
            ("/work/p/.git".into(), "/work/p/.git".into(), at(1)),
        ]
    );
    let docker = profiled(EngineKind::Docker);
    assert_eq!(rebinds_where(&root, &docker, "keepout-x", &all).len(), 2);
    // Without keepout's profile (its set-id rules), root's project stays read-only.
    let unprofiled = engine(EngineKind::Docker, false, false);
    assert!(rebinds_where(&root, &unprofiled, "keepout-x", &all).is_empty());
    let rootless = engine(EngineKind::Podman, true, false);
    assert!(rebinds_where(&root, &rootless, "keepout-x", &all).is_empty());
    let mut remote = rootful.clone();
    remote.remote = true;
    assert!(rebinds_where(&root, &remote, "keepout-x", &all).is_empty());
    assert!(rebinds_where(&policy(""), &rootful, "keepout-x", &all).is_empty());
    let with_symlink = |p: &Path| p != Path::new("/work/p");
    assert_eq!(
        rebinds_where(&root, &rootful, "keepout-x", &with_symlink).len(),
        1
    );

    let rebound: Vec<_> = found
        .iter()
        .map(|r| (r.target.clone(), r.at.clone()))
        .collect();
    let is_dir = |p: &Path| p.ends_with("sockets");
    let inv = Invocation {
        engine: &rootful,
        image: "localhost/py:3.12",
        name: "keepout-x",
        tty: false,
        seccomp: None,
        is_dir: &is_dir,
        rebound: &rebound,
    };
    let got = run_args(&root, &inv).unwrap();
    let volumes: Vec<&str> = got
        .windows(2)
        .filter(|w| w[0] == "--volume")
        .map(|w| w[1].as_str())
        .collect();
    assert!(
        volumes.contains(&"/run/keepout-idmapped/keepout-x/0:/work/p:rw"),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&"/run/keepout-idmapped/keepout-x/1:/work/p/.git:rw"),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&"/work/p/.git/hooks:/work/p/.git/hooks:ro"),
        "the protected names from the host, read-only: {volumes:?}"
    );
    assert!(
        !volumes.iter().any(|v| v.starts_with("/work/p:")),
        "{volumes:?}"
    );
}
