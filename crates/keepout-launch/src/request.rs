//! The request a command starts from, made of the caller and the config, and the facts a run
//! needs besides: its network, its `--home`, the project's bytecode cache and a review's
//! project. Guarantees: nothing here asks for anything the caller did not (no network, a fresh
//! home, the cwd as project unless the caller's flags say otherwise); the bytecode cache is
//! keepout's own directory per project, never the project; a dry run (`--print-policy`) makes
//! no `--home`.

use std::path::{Path, PathBuf};

use keepout_sandbox::{EnvRule, Limits, Mode, Network, RunRequest};

use crate::{prepare_home, report, Caller, Config, Error, PreparedHome, Resources};

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

/// What `keepout run`'s command line asks of its request, as plain values (the CLI maps its
/// flags into it).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// `--project DIR` (else the working directory).
    pub project: Option<PathBuf>,
    /// `--home DIR`, kept between runs (else a fresh home).
    pub home: Option<PathBuf>,
    /// `--ro PATH`s.
    pub read_only: Vec<PathBuf>,
    /// `--rw PATH`s.
    pub read_write: Vec<PathBuf>,
    /// `--socket PATH`s the sandbox may connect to.
    pub sockets: Vec<PathBuf>,
    /// The caller's toolchains shown read-only (not `--no-toolchains`).
    pub toolchains: bool,
    /// `--env` rules.
    pub env: Vec<EnvRule>,
    /// `--net SPEC`.
    pub net: Option<String>,
    /// `--mode`.
    pub mode: Mode,
    /// `--max-procs`.
    pub max_processes: u64,
    /// `--tmp-size` in MiB (else the default).
    pub tmp_size_mib: Option<u64>,
    /// `--memory` and `--disk-reserve`.
    pub resources: Resources,
    /// Nothing is to be made (`--print-policy`): a missing `--home` is an error.
    pub dry: bool,
}

/// Start making the run's first namespaces ([`keepout_sandbox::make_namespaces_ahead_for`])
/// from what `opts` alone decide (the mode, the network) and the caller's ids, before the
/// request is built, so that the kernel's work overlaps with building it and the policy.
pub fn make_namespaces_ahead(opts: &RunOptions, end: keepout_sandbox::RunEnd) {
    keepout_sandbox::make_namespaces_ahead_for(
        opts.mode,
        network(opts.net.as_deref()),
        Caller::effective_ids(),
        end,
    );
}

/// A run's request, and what to tell the caller before the run.
#[derive(Debug)]
pub struct RunSetup {
    pub request: RunRequest,
    /// The lines to say before the run ([`report::unpassable_env`], [`report::home_made`]).
    pub notes: Vec<String>,
}

/// The request for `keepout run`: `opts` over [`caller_request`], with the limits of
/// [`Config::limits`]; its `--home` prepared ([`prepare_home`]: made unless `opts.dry`), and in
/// namespaces mode the project's [`bytecode_cache`] (only a speed-up: where it cannot be made,
/// the sandbox's Python keeps its bytecode in the sandbox's /tmp). Checked in this order: the
/// limits, the working directory, the config's toolchains, the home.
pub fn run_request(opts: RunOptions, caller: Caller, config: &Config) -> Result<RunSetup, Error> {
    let base = Limits {
        max_processes: opts.max_processes,
        tmp_size_mib: opts.tmp_size_mib.unwrap_or(Limits::default().tmp_size_mib),
        ..Limits::default()
    };
    let limits = config.limits(&opts.resources, base)?;
    let (uid, mut notes) = (caller.uid, report::unpassable_env(&caller));
    let mut request = RunRequest {
        project: opts.project,
        read_only: opts.read_only,
        read_write: opts.read_write,
        toolchains: opts.toolchains,
        env: opts.env,
        network: network(opts.net.as_deref()),
        mode: opts.mode,
        limits,
        allow_sockets: opts.sockets,
        ..caller_request(opts.command, caller, config)?
    };
    if let Some(home) = opts.home {
        if prepare_home(&home, uid, opts.dry)? == PreparedHome::Made {
            notes.push(report::home_made(&home));
        }
        request.home = Some(home);
    }
    if opts.mode == Mode::Namespaces {
        let project = request.project.as_ref().unwrap_or(&request.cwd);
        if let Ok(project) = std::fs::canonicalize(project) {
            request.bytecode_cache = bytecode_cache(&project, &request).ok();
        }
    }
    Ok(RunSetup { request, notes })
}

/// The project a `--review` run records (`project`, else `cwd`), canonical; checked before
/// anything is made: a review records its project in its meta.toml (TOML: UTF-8 only), and a
/// review that cannot be recorded must leave nothing behind.
pub fn review_project(project: Option<&Path>, cwd: &Path) -> Result<PathBuf, Error> {
    let path = project.unwrap_or(cwd);
    let project = std::fs::canonicalize(path).map_err(|source| Error::NoProject {
        path: path.to_path_buf(),
        source,
    })?;
    match project.to_str() {
        Some(_) => Ok(project),
        None => Err(Error::ReviewPathNotUtf8 { path: project }),
    }
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

    fn options(command: &str) -> RunOptions {
        RunOptions {
            command: vec![command.into()],
            project: None,
            home: None,
            read_only: vec!["/ro".into()],
            read_write: vec!["/rw".into()],
            sockets: vec!["/p/s.sock".into()],
            toolchains: false,
            env: vec![EnvRule::Set("A".into(), "b".into())],
            net: Some("pypi".into()),
            mode: Mode::Landlock,
            max_processes: 7,
            tmp_size_mib: None,
            resources: Resources {
                memory: Some(1 << 20),
                disk_reserve: None,
            },
            dry: false,
        }
    }

    #[test]
    fn the_run_request_is_the_options_over_the_callers() {
        let config = Config::parse("/c.toml".into(), "[run]\nmemory = \"4G\"\n".into()).unwrap();
        let setup = run_request(options("make"), caller(Path::new("/h")), &config).unwrap();
        let req = setup.request;
        assert_eq!(req.command, vec!["make"]);
        assert_eq!(req.cwd, Path::new("/work/p"));
        assert_eq!((req.project, req.home), (None, None));
        assert_eq!(req.read_only, vec![PathBuf::from("/ro")]);
        assert_eq!(req.read_write, vec![PathBuf::from("/rw")]);
        assert_eq!(req.allow_sockets, vec![PathBuf::from("/p/s.sock")]);
        assert!(!req.toolchains);
        assert_eq!(req.env.len(), 1);
        assert_eq!(req.network, Network::Proxied { port: PROXY_PORT });
        assert_eq!(req.mode, Mode::Landlock);
        // The flag wins over the config; the rest of the limits are the defaults.
        assert_eq!(
            req.limits,
            Limits {
                max_processes: 7,
                memory_bytes: Some(1 << 20),
                ..Limits::default()
            }
        );
        assert_eq!(req.caller_uid, 1000);
        // Landlock mode: no bytecode cache; nothing to say.
        assert_eq!(req.bytecode_cache, None);
        assert!(setup.notes.is_empty());
    }

    #[test]
    fn the_configs_limits_are_checked() {
        let config = Config::parse("/c.toml".into(), "[run]\nmemory = true\n".into()).unwrap();
        let mut opts = options("true");
        opts.resources = Resources::default();
        let e = run_request(opts, caller(Path::new("/h")), &config).unwrap_err();
        assert!(matches!(e, Error::BadLimit { key: "memory", .. }), "{e:?}");
    }

    #[test]
    fn a_missing_home_is_made_and_said_unless_dry() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse("/c.toml".into(), String::new()).unwrap();
        let home = dir.path().join("kept");
        let uid = Caller::effective_uid();
        let caller = || Caller::new(uid, 0, None, Vec::new(), dir.path().to_path_buf());
        let with_home = |dry| RunOptions {
            home: Some(home.clone()),
            dry,
            ..options("true")
        };
        let e = run_request(with_home(true), caller(), &config).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "--home {} does not exist yet; `keepout run` makes it (mode 0700) when it runs",
                home.display()
            )
        );
        assert!(!home.exists());
        let setup = run_request(with_home(false), caller(), &config).unwrap();
        assert!(home.is_dir());
        assert_eq!(setup.request.home.as_deref(), Some(home.as_path()));
        assert_eq!(setup.notes, vec![report::home_made(&home)]);
        let again = run_request(with_home(false), caller(), &config).unwrap();
        assert!(again.notes.is_empty(), "said once: {:?}", again.notes);
    }

    #[test]
    fn namespaces_mode_gets_the_projects_bytecode_cache() {
        let home = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let config = Config::parse("/c.toml".into(), String::new()).unwrap();
        let opts = RunOptions {
            project: Some(project.path().to_path_buf()),
            mode: Mode::Namespaces,
            ..options("true")
        };
        let req = run_request(opts, caller(home.path()), &config)
            .unwrap()
            .request;
        let canonical = std::fs::canonicalize(project.path()).unwrap();
        assert_eq!(
            req.bytecode_cache,
            Some(bytecode_cache(&canonical, &req).unwrap())
        );
    }

    #[test]
    fn a_review_records_a_canonical_utf8_project() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(review_project(None, dir.path()).unwrap(), canonical);
        let inner = dir.path().join("p");
        std::fs::create_dir(&inner).unwrap();
        assert_eq!(
            review_project(Some(&dir.path().join("p/../p")), Path::new("/")).unwrap(),
            canonical.join("p")
        );
        let e = review_project(Some(&dir.path().join("gone")), Path::new("/")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot find the project {}",
                dir.path().join("gone").display()
            )
        );
        let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"odd-\xff"));
        std::fs::create_dir(&odd).unwrap();
        let e = review_project(None, &odd).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "--review: the project's path {}/odd-\u{fffd} is not UTF-8, and a review records \
                 it in its meta.toml, which holds only UTF-8 text; rename the directory (or a \
                 parent), or run without --review",
                canonical.display()
            )
        );
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
