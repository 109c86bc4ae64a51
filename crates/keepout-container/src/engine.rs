//! Which engine runs the container, and what this machine needs said to it.
//!
//! [`Engine::discover`] finds podman (preferred) or docker on PATH (or the one `--engine`
//! names), asks it `info` (through the engine's own remote settings, `CONTAINER_HOST`,
//! `podman --remote`, `DOCKER_HOST`, docker contexts: keepout adds nothing for the remote part),
//! and reads from the answer what keepout must pass so that a container starts at all
//! ([`Engine::from_podman_info`], a pure function with unit tests):
//! * podman's crun refuses cgroups v1 and hybrid hierarchies ("cgroups in hybrid mode not
//!   supported"): there keepout uses runc (`--runtime runc`), or says to install it;
//! * rootless podman whose cgroup manager is systemd without a systemd user session, or on
//!   cgroups v1, gets `--cgroup-manager cgroupfs`;
//! * the engine's default open-files limit is above this machine's hard limit ("setrlimit
//!   RLIMIT_NOFILE: Operation not permitted"): keepout passes the hard limit it has itself;
//! * rootless podman without subordinate ids for the user cannot map the image's users: an
//!   error with the command that sets them up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The engines keepout can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Podman,
    Docker,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "podman" => Ok(EngineKind::Podman),
            "docker" => Ok(EngineKind::Docker),
            _ => Err(format!(
                "{s:?} is not an engine keepout knows (podman, docker)"
            )),
        }
    }
}

/// One engine as found on this machine: what it is and what keepout passes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub kind: EngineKind,
    /// The program (the engine's client).
    pub program: PathBuf,
    pub version: String,
    /// The containers run without root on the host (rootless podman, rootless docker).
    pub rootless: bool,
    /// The engine's service is on another machine or socket (podman's `serviceIsRemote`).
    pub remote: bool,
    /// The host's cgroups are v1 or hybrid (no resource limits for rootless containers).
    pub cgroups_v1: bool,
    /// The engine's default OCI runtime.
    pub default_runtime: String,
    /// The runtime keepout passes (`--runtime`), where the default cannot run here.
    pub runtime: Option<String>,
    /// The cgroup manager keepout passes (`--cgroup-manager`), where the default cannot work.
    pub cgroup_manager: Option<String>,
    /// The open-files limit keepout passes (`--ulimit nofile=N:N`): its own hard limit.
    pub nofile: u64,
    /// The most processes keepout lets the container's user have (`--ulimit nproc`): its own
    /// hard limit, when lower than the policy's.
    pub nproc_hard: u64,
    /// The engine's default seccomp profile, a file here (a local podman's; for a local docker,
    /// the same moby profile as podman's file), that keepout's deny list is added to; `None`:
    /// the engine's own profile as it is.
    pub seccomp_profile: Option<PathBuf>,
}

/// What keepout knows of this machine besides the engine's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFacts {
    /// runc is on PATH (for a local engine).
    pub runc: bool,
    /// A systemd user session's bus is there ($XDG_RUNTIME_DIR/bus).
    pub user_bus: bool,
    /// This process's hard RLIMIT_NOFILE and RLIMIT_NPROC.
    pub nofile_hard: u64,
    pub nproc_hard: u64,
    /// The user's name (for the rootless error).
    pub user: String,
    /// This machine's host name (a docker daemon that names another is remote).
    pub hostname: String,
    /// The default seccomp profile podman uses, as a file (containers-common's, moby's profile):
    /// docker keeps its own inside dockerd, so keepout's deny list is added to this one for it.
    pub moby_profile: Option<PathBuf>,
}

/// Where containers-common keeps the default seccomp profile.
const MOBY_PROFILE: &str = "/usr/share/containers/seccomp.json";

impl LocalFacts {
    /// This process's.
    pub fn current() -> LocalFacts {
        use rustix::process::{getrlimit, Resource};
        let hard = |r| getrlimit(r).maximum.unwrap_or(u64::MAX);
        let user_bus =
            std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
        LocalFacts {
            runc: which::which("runc").is_ok(),
            user_bus,
            nofile_hard: hard(Resource::Nofile).min(1 << 20),
            nproc_hard: hard(Resource::Nproc),
            user: std::env::var("USER")
                .unwrap_or_else(|_| format!("uid {}", rustix::process::getuid().as_raw())),
            hostname: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            moby_profile: Some(PathBuf::from(MOBY_PROFILE)).filter(|p| p.is_file()),
        }
    }
}

#[derive(Deserialize)]
struct PodmanInfo {
    host: PodmanHost,
    version: PodmanVersion,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodmanHost {
    cgroup_manager: String,
    cgroup_version: String,
    oci_runtime: PodmanRuntime,
    #[serde(default)]
    id_mappings: Option<IdMappings>,
    security: PodmanSecurity,
    #[serde(default)]
    service_is_remote: bool,
}

#[derive(Deserialize)]
struct PodmanRuntime {
    name: String,
}

#[derive(Deserialize)]
struct IdMappings {
    #[serde(default)]
    uidmap: Option<Vec<IdMap>>,
}

#[derive(Deserialize)]
struct IdMap {
    size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodmanSecurity {
    rootless: bool,
    #[serde(default)]
    seccomp_enabled: bool,
    #[serde(default)]
    seccomp_profile_path: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PodmanVersion {
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerInfo {
    server_version: String,
    #[serde(default)]
    cgroup_version: String,
    #[serde(default)]
    default_runtime: String,
    #[serde(default)]
    security_options: Vec<String>,
    /// The daemon's host name.
    #[serde(default)]
    name: String,
}

impl Engine {
    /// The engine's program: `wanted`, else podman, else docker, found on PATH.
    pub fn find(wanted: Option<EngineKind>) -> Result<(EngineKind, PathBuf)> {
        let candidates = match wanted {
            Some(kind) => vec![kind],
            None => vec![EngineKind::Podman, EngineKind::Docker],
        };
        let found = candidates
            .iter()
            .find_map(|&kind| which::which(kind.name()).ok().map(|p| (kind, p)));
        found.ok_or_else(|| Error::NoEngine {
            wanted: match wanted {
                Some(kind) => format!("{} is not on PATH", kind.name()),
                None => "neither podman nor docker is on PATH".to_string(),
            },
        })
    }

    /// Has this user's podman been used here (its storage exists, or it is remote)? Asking a
    /// podman that was never used sets up its storage in the home: `doctor` does not.
    pub fn used_before(kind: EngineKind) -> bool {
        if kind == EngineKind::Docker || std::env::var_os("CONTAINER_HOST").is_some() {
            return true;
        }
        if rustix::process::geteuid().is_root() {
            return Path::new("/var/lib/containers/storage").exists();
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
        data.is_some_and(|d| d.join("containers/storage").exists())
    }

    /// The engine to use ([`Engine::find`]) and what it said of itself. `podman info` takes
    /// about half a second, so its answer is kept (in `~/.cache/keepout/`) for as long as nothing it
    /// depends on changed (the program, its configuration files, the remote settings, the
    /// user); [`Engine::forget`] drops it (after the engine refused a container).
    pub fn discover(wanted: Option<EngineKind>) -> Result<Engine> {
        Engine::discover_kept(wanted, true)
    }

    /// [`Engine::discover`] asking the engine afresh, keeping nothing (`keepout doctor`).
    pub fn ask(wanted: Option<EngineKind>) -> Result<Engine> {
        Engine::discover_kept(wanted, false)
    }

    fn discover_kept(wanted: Option<EngineKind>, keep: bool) -> Result<Engine> {
        let (kind, program) = Engine::find(wanted)?;
        let cache = InfoCache::new(kind, &program).filter(|_| keep);
        let info = match cache.as_ref().and_then(InfoCache::get) {
            Some(info) => info,
            None => {
                let info = info(kind, &program)?;
                if let Some(cache) = &cache {
                    cache.put(&info);
                }
                info
            }
        };
        let local = LocalFacts::current();
        match kind {
            EngineKind::Podman => Engine::from_podman_info(program, &info, &local),
            EngineKind::Docker => Engine::from_docker_info(program, &info, &local),
        }
    }

    /// The engine as podman's `info --format json` describes it, on a machine with `local`.
    pub fn from_podman_info(program: PathBuf, json: &str, local: &LocalFacts) -> Result<Engine> {
        let info: PodmanInfo = serde_json::from_str(json).map_err(|source| Error::InfoFormat {
            engine: "podman".into(),
            source,
        })?;
        let host = info.host;
        let seccomp_profile = match &host.security {
            s if s.seccomp_enabled && !host.service_is_remote => s.seccomp_profile_path.clone(),
            _ => None,
        };
        let cgroups_v1 = host.cgroup_version != "v2";
        let rootless = host.security.rootless;
        let remote = host.service_is_remote;
        if rootless {
            let mapped: u64 = host
                .id_mappings
                .and_then(|m| m.uidmap)
                .map(|maps| maps.iter().map(|m| m.size).sum())
                .unwrap_or(0);
            if mapped <= 1 {
                return Err(Error::RootlessNotSetUp {
                    engine: "podman".into(),
                    user: local.user.clone(),
                });
            }
        }
        let runtime = if host.oci_runtime.name == "crun" && cgroups_v1 {
            // A remote machine's runc cannot be seen from here: say runc and let it answer.
            if !local.runc && !remote {
                return Err(Error::NoRuntime {
                    engine: "podman".into(),
                });
            }
            Some("runc".to_string())
        } else {
            None
        };
        let cgroup_manager = (rootless
            && !remote
            && host.cgroup_manager == "systemd"
            && (cgroups_v1 || !local.user_bus))
            .then(|| "cgroupfs".to_string());
        Ok(Engine {
            kind: EngineKind::Podman,
            program,
            version: info.version.version,
            rootless,
            remote,
            cgroups_v1,
            default_runtime: host.oci_runtime.name,
            runtime,
            cgroup_manager,
            nofile: local.nofile_hard,
            nproc_hard: local.nproc_hard,
            seccomp_profile,
        })
    }

    /// The engine as `docker info --format '{{json .}}'` describes it.
    pub fn from_docker_info(program: PathBuf, json: &str, local: &LocalFacts) -> Result<Engine> {
        let info: DockerInfo = serde_json::from_str(json).map_err(|source| Error::InfoFormat {
            engine: "docker".into(),
            source,
        })?;
        // Remote: reached over the network, or a daemon (through a forwarded socket, a docker
        // context) on a machine of another name.
        let remote = std::env::var("DOCKER_HOST").is_ok_and(|h| !h.starts_with("unix://"))
            || (!info.name.is_empty() && info.name != local.hostname);
        let seccomp = info
            .security_options
            .iter()
            .any(|o| o.contains("name=seccomp"));
        Ok(Engine {
            kind: EngineKind::Docker,
            program,
            version: info.server_version,
            rootless: info.security_options.iter().any(|o| o.contains("rootless")),
            remote,
            cgroups_v1: info.cgroup_version != "2",
            default_runtime: info.default_runtime,
            runtime: None,
            cgroup_manager: None,
            nofile: local.nofile_hard,
            nproc_hard: local.nproc_hard,
            seccomp_profile: local.moby_profile.clone().filter(|_| seccomp && !remote),
        })
    }

    /// Drop the kept `info` answer: the next run asks the engine again.
    pub fn forget(&self) {
        if let Some(cache) = InfoCache::new(self.kind, &self.program) {
            let _ = std::fs::remove_file(cache.path);
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The options that go before the engine's subcommand (`podman --runtime runc run ...`).
    pub fn global_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(runtime) = &self.runtime {
            args.extend(["--runtime".to_string(), runtime.clone()]);
        }
        if let Some(manager) = &self.cgroup_manager {
            args.extend(["--cgroup-manager".to_string(), manager.clone()]);
        }
        args
    }

    /// A command for the engine with its global options, the caller's environment (for the
    /// engine's own settings: CONTAINER_HOST, DOCKER_HOST, XDG_RUNTIME_DIR...).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(self.global_args());
        cmd
    }

    /// Is `image` in the engine's storage? (keepout never pulls.)
    pub fn has_image(&self, image: &str) -> Result<bool> {
        let mut cmd = self.command();
        match self.kind {
            EngineKind::Podman => cmd.args(["image", "exists", image]),
            EngineKind::Docker => cmd.args(["image", "inspect", "--format", "x", image]),
        };
        let status = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| Error::Spawn {
                program: self.program.clone(),
                source,
            })?;
        Ok(status.success())
    }

    /// One line for `keepout doctor`: engine, version, rootless or not, runtime, what keepout adds.
    pub fn describe(&self) -> String {
        let mut added = self.global_args();
        added.push(format!(
            "--ulimit nofile={0}:{0} --ulimit nproc",
            self.nofile
        ));
        let limits = if self.rootless && self.cgroups_v1 {
            "; no cgroup for a rootless container on cgroups v1: no --pids-limit (RLIMIT_NPROC holds) and no --memory"
        } else {
            ""
        };
        format!(
            "{} {} ({}{}, cgroups {}, runtime {}); keepout adds: {}{limits}",
            self.name(),
            self.version,
            if self.rootless { "rootless" } else { "rootful" },
            if self.remote { ", remote" } else { "" },
            if self.cgroups_v1 { "v1/hybrid" } else { "v2" },
            self.runtime.as_deref().unwrap_or(&self.default_runtime),
            added.join(" ")
        )
    }
}

/// The engine's last `info` answer, kept in `~/.cache/keepout/` with the key it is valid
/// for: the program and its modification time, the engine's configuration files' modification
/// times, the remote settings and the user.
struct InfoCache {
    path: PathBuf,
    key: String,
}

impl InfoCache {
    fn new(kind: EngineKind, program: &Path) -> Option<InfoCache> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let dir = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home.as_ref().map(|h| h.join(".cache")))?;
        let mtime = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos())
        };
        let mut key = format!(
            "{} {} {} uid={}",
            kind.name(),
            program.display(),
            mtime(program),
            rustix::process::geteuid().as_raw()
        );
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config")));
        let mut configs: Vec<PathBuf> = [
            "/etc/containers/containers.conf",
            "/etc/containers/storage.conf",
            "/usr/share/containers/containers.conf",
            "/etc/subuid",
            "/etc/subgid",
        ]
        .map(PathBuf::from)
        .to_vec();
        if let Some(c) = config_home {
            configs.push(c.join("containers/containers.conf"));
            configs.push(c.join("containers/storage.conf"));
        }
        for c in &configs {
            key.push_str(&format!(" {}", mtime(c)));
        }
        for var in [
            "CONTAINER_HOST",
            "CONTAINER_CONNECTION",
            "CONTAINERS_CONF",
            "CONTAINERS_STORAGE_CONF",
            "XDG_DATA_HOME",
            "XDG_RUNTIME_DIR",
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_CONFIG",
        ] {
            let value = std::env::var(var).unwrap_or_default();
            key.push_str(&format!(" {var}={value}"));
        }
        let path = dir.join(format!("keepout/engine-{}.json", kind.name()));
        Some(InfoCache { path, key })
    }

    fn get(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Kept {
            key: String,
            info: String,
        }
        let text = std::fs::read_to_string(&self.path).ok()?;
        let kept: Kept = serde_json::from_str(&text).ok()?;
        (kept.key == self.key).then_some(kept.info)
    }

    /// Keep `info` (atomically; a failure only means asking again next time).
    fn put(&self, info: &str) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let text = serde_json::json!({"key": self.key, "info": info}).to_string();
        let _ = std::fs::create_dir_all(dir).and_then(|()| {
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        });
    }
}

/// The engine's `info` as JSON.
fn info(kind: EngineKind, program: &Path) -> Result<String> {
    let format = match kind {
        EngineKind::Podman => "json",
        EngineKind::Docker => "{{json .}}",
    };
    let out = Command::new(program)
        .args(["info", "--format", format])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Info {
            engine: kind.name().into(),
            stderr: stderr.trim().lines().last().unwrap_or("").to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalFacts {
        LocalFacts {
            runc: true,
            user_bus: false,
            nofile_hard: 20000,
            nproc_hard: 96365,
            user: "alice".into(),
            hostname: "laptop".into(),
            moby_profile: Some("/usr/share/containers/seccomp.json".into()),
        }
    }

    fn podman_info(
        runtime: &str,
        cgroups: &str,
        manager: &str,
        rootless: bool,
        ids: u64,
    ) -> String {
        format!(
            r#"{{"host": {{"cgroupManager": "{manager}", "cgroupVersion": "{cgroups}",
                "ociRuntime": {{"name": "{runtime}", "path": "/usr/bin/{runtime}"}},
                "idMappings": {{"uidmap": [{{"container_id": 0, "host_id": 1000, "size": 1}},
                                         {{"container_id": 1, "host_id": 100000, "size": {ids}}}]}},
                "security": {{"rootless": {rootless}}}, "serviceIsRemote": false}},
              "version": {{"Version": "4.3.1"}}}}"#
        )
    }

    #[test]
    fn crun_on_hybrid_cgroups_is_replaced_by_runc_and_systemd_by_cgroupfs() {
        let info = podman_info("crun", "v1", "systemd", true, 65536);
        let engine = Engine::from_podman_info("/usr/bin/podman".into(), &info, &local()).unwrap();
        assert_eq!(engine.runtime.as_deref(), Some("runc"));
        assert_eq!(engine.cgroup_manager.as_deref(), Some("cgroupfs"));
        assert!(engine.rootless && engine.cgroups_v1 && !engine.remote);
        assert_eq!(engine.version, "4.3.1");
        assert_eq!(
            engine.global_args(),
            ["--runtime", "runc", "--cgroup-manager", "cgroupfs"]
        );
    }

    #[test]
    fn what_works_as_it_is_gets_nothing_added() {
        let info = podman_info("crun", "v2", "cgroupfs", false, 0);
        let engine = Engine::from_podman_info("/usr/bin/podman".into(), &info, &local()).unwrap();
        assert_eq!(engine.global_args(), Vec::<String>::new());
        let info = podman_info("runc", "v1", "cgroupfs", true, 65536);
        let engine = Engine::from_podman_info("/usr/bin/podman".into(), &info, &local()).unwrap();
        assert_eq!(engine.global_args(), Vec::<String>::new());
        assert_eq!(engine.nofile, 20000);
    }

    #[test]
    fn crun_on_hybrid_cgroups_without_runc_says_to_install_it() {
        let info = podman_info("crun", "v1", "cgroupfs", false, 0);
        let facts = LocalFacts {
            runc: false,
            ..local()
        };
        let err = Engine::from_podman_info("/usr/bin/podman".into(), &info, &facts).unwrap_err();
        assert!(matches!(err, Error::NoRuntime { .. }), "{err}");
        assert!(err.hint().unwrap().contains("apt-get install runc"));
    }

    #[test]
    fn rootless_without_subordinate_ids_says_how_to_set_them_up() {
        let info = podman_info("runc", "v1", "cgroupfs", true, 0);
        let err = Engine::from_podman_info("/usr/bin/podman".into(), &info, &local()).unwrap_err();
        assert!(matches!(err, Error::RootlessNotSetUp { .. }), "{err}");
        assert!(err.hint().unwrap().contains("usermod --add-subuids"));
        assert!(err.to_string().contains("alice"));
    }

    #[test]
    fn a_kept_info_answer_is_used_only_under_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keepout/engine-podman.json");
        let kept = InfoCache {
            path: path.clone(),
            key: "podman /usr/bin/podman 1 uid=1000".into(),
        };
        assert_eq!(kept.get(), None, "nothing kept yet");
        kept.put("{\"host\": {}}");
        assert_eq!(kept.get().as_deref(), Some("{\"host\": {}}"));
        let changed = InfoCache {
            path,
            key: "podman /usr/bin/podman 2 uid=1000".into(),
        };
        assert_eq!(
            changed.get(),
            None,
            "a changed program, config or setting asks again"
        );
    }

    #[test]
    fn an_answer_that_is_not_podman_info_is_an_error() {
        let err = Engine::from_podman_info("/p".into(), "{}", &local()).unwrap_err();
        assert!(matches!(err, Error::InfoFormat { .. }));
    }

    /// docker's `info`: a daemon on this machine (its name is this host's) is local, so a root
    /// caller's project gets its idmapped copy and `--net` its proxy; one that names another
    /// machine (a forwarded socket, a docker context) is remote.
    #[test]
    fn a_docker_daemon_on_another_machine_is_remote() {
        if std::env::var_os("DOCKER_HOST").is_some() {
            return;
        }
        let info = |name: &str| {
            format!(
                r#"{{"ServerVersion":"20.10.24","CgroupVersion":"1","DefaultRuntime":"runc","SecurityOptions":["name=seccomp,profile=default"],"Name":"{name}"}}"#
            )
        };
        let here = Engine::from_docker_info("/d".into(), &info("laptop"), &local()).unwrap();
        assert!(!here.remote && !here.rootless && here.cgroups_v1);
        assert_eq!(
            here.seccomp_profile.as_deref(),
            Some(Path::new("/usr/share/containers/seccomp.json")),
            "a local docker gets keepout's deny list on the moby profile"
        );
        let there = Engine::from_docker_info("/d".into(), &info("build-box"), &local()).unwrap();
        assert!(there.remote && there.seccomp_profile.is_none());
    }
}
