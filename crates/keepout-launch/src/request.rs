//! The request a command starts from, made of the caller and the config, and the facts a run
//! needs besides: its network and the project's bytecode cache. Guarantees: nothing here asks
//! for anything the caller did not (no network, a fresh home, the cwd as project unless the
//! caller's flags say otherwise); the bytecode cache is keepout's own directory per project,
//! never the project.

use std::path::{Path, PathBuf};

use keepout_sandbox::{Limits, Mode, Network, RunRequest};

use crate::{Caller, Config, Error};

/// The proxy's port on the sandbox's own loopback (a network namespace of its own: no clash).
pub const PROXY_PORT: u16 = 3128;

/// The sandbox's network for `--net SPEC` (none without it).
pub fn network(spec: Option<&str>) -> Network {
    match spec {
        None => Network::None,
        Some("host") => Network::Host,
        Some(_) => Network::Proxied { port: PROXY_PORT },
    }
}

/// A request for `command` with the caller's facts (working directory, environment, home,
/// ids) and the defaults for everything else: no network, a fresh home, the cwd as project,
/// the caller's toolchains (and the config's `[run] toolchains`) read-only. The caller's
/// environment moves into the request.
pub fn caller_request(
    command: Vec<String>,
    caller: Caller,
    config: &Config,
) -> Result<RunRequest, Error> {
    let cwd = caller.cwd()?.to_path_buf();
    let extra_toolchains = config.toolchains(caller.home.as_deref())?;
    let caller_home = caller.home_or_root().to_path_buf();
    Ok(RunRequest {
        command,
        cwd,
        project: None,
        home: None,
        kept_home: None,
        review: None,
        read_only: Vec::new(),
        read_write: Vec::new(),
        toolchains: true,
        extra_toolchains,
        env: Vec::new(),
        network: Network::None,
        mode: Mode::Namespaces,
        limits: Limits::default(),
        caller_env: caller.env,
        caller_env_not_utf8: caller.env_not_utf8,
        caller_home,
        caller_uid: caller.uid,
        caller_gid: caller.gid,
        allow_sockets: Vec::new(),
        bytecode_cache: None,
    })
}

/// The directory keepout keeps for one project's Python bytecode, made if missing:
/// `$XDG_CACHE_HOME/keepout/pycache/NAME-HASH` (else `~/.cache/...`). The sandbox's Python
/// writes there (`PYTHONPYCACHEPREFIX`) instead of beside the sources, so a run leaves no
/// bytecode in the project and the next run of the same project starts warm. Only sandboxes
/// of this project use it; the host's Python never looks there.
pub fn bytecode_cache(project: &Path, req: &RunRequest) -> Result<PathBuf, Error> {
    use std::hash::{Hash, Hasher};
    let base =
        keepout_sandbox::cache_dir(&req.caller_env, &req.caller_home).ok_or(Error::NoCacheDir)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    project.hash(&mut hasher);
    let name = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let dir = base
        .join("keepout/pycache")
        .join(format!("{name}-{:016x}", hasher.finish()));
    std::fs::create_dir_all(&dir).map_err(|source| Error::BytecodeCache {
        dir: dir.clone(),
        source,
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(home: &Path) -> Caller {
        Caller::new(
            1000,
            1001,
            Some(home.to_path_buf()),
            vec![
                ("PATH".into(), "/usr/bin".into()),
                ("HOME".into(), home.as_os_str().to_owned()),
            ],
            "/work/p".into(),
        )
    }

    #[test]
    fn the_request_carries_the_caller_and_the_config() {
        let config = Config::parse(
            "/c.toml".into(),
            "[run]\ntoolchains = [\"~/opt/zig\"]\n".into(),
        )
        .unwrap();
        let req = caller_request(vec!["true".into()], caller(Path::new("/h")), &config).unwrap();
        assert_eq!(req.command, vec!["true"]);
        assert_eq!(req.cwd, Path::new("/work/p"));
        assert_eq!(req.caller_home, Path::new("/h"));
        assert_eq!((req.caller_uid, req.caller_gid), (1000, 1001));
        assert_eq!(req.extra_toolchains, vec![PathBuf::from("/h/opt/zig")]);
        assert_eq!(req.caller_env.len(), 2);
        assert_eq!(req.network, Network::None);
        assert!(req.toolchains);
    }

    #[test]
    fn networks() {
        assert_eq!(network(None), Network::None);
        assert_eq!(network(Some("host")), Network::Host);
        assert_eq!(network(Some("pypi")), Network::Proxied { port: PROXY_PORT });
    }

    #[test]
    fn the_bytecode_cache_is_per_project_under_the_cache() {
        let home = tempfile::tempdir().unwrap();
        let config = Config::parse("/c.toml".into(), String::new()).unwrap();
        let req = caller_request(vec!["true".into()], caller(home.path()), &config).unwrap();
        let a = bytecode_cache(Path::new("/src/a"), &req).unwrap();
        let b = bytecode_cache(Path::new("/other/a"), &req).unwrap();
        assert!(
            a.starts_with(home.path().join(".cache/keepout/pycache")),
            "{a:?}"
        );
        assert!(a.is_dir());
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().to_str().unwrap().starts_with("a-"));
    }
}
