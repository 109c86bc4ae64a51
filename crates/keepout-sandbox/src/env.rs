//! The sandbox's environment: an allowlist, never a denylist.
//!
//! Guarantee: the command's environment holds only (1) the caller's variables whose exact names
//! are in [`default_env_allowlist`], (2) what keepout sets (`HOME`, `USER`, `LOGNAME`, `TMPDIR`,
//! `SHELL`, `KEEPOUT_SANDBOX`, the proxy variables with `--net NAMES`, and for the caller's
//! toolchains the paths their tools need: `RUSTUP_HOME`, `CARGO_HOME`, `PYENV_ROOT`, ...,
//! plus pyenv's version directories appended to `PATH`), and (3) what the user passed by name
//! with `--env`, which wins. A variable's name pattern never lets it through: `LC_*` is the
//! fixed list of locale categories, not a prefix, so `LC_TOKEN` stays outside.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::policy::{EnvRule, RunRequest};
use crate::toolchains::Survey;

/// The caller's variables that pass into the sandbox, and why each is safe and useful.
pub fn default_env_allowlist() -> &'static [(&'static str, &'static str)] {
    &[
        (
            "PATH",
            "find programs; every directory in it is still subject to the mount rules",
        ),
        ("LANG", "locale"),
        ("LANGUAGE", "locale"),
        ("LC_ALL", "locale"),
        ("LC_CTYPE", "locale"),
        ("LC_NUMERIC", "locale"),
        ("LC_TIME", "locale"),
        ("LC_COLLATE", "locale"),
        ("LC_MONETARY", "locale"),
        ("LC_MESSAGES", "locale"),
        ("LC_PAPER", "locale"),
        ("LC_NAME", "locale"),
        ("LC_ADDRESS", "locale"),
        ("LC_TELEPHONE", "locale"),
        ("LC_MEASUREMENT", "locale"),
        ("LC_IDENTIFICATION", "locale"),
        ("TERM", "terminal type, for colour and line editing"),
        ("COLORTERM", "terminal colour support"),
        ("NO_COLOR", "the user's colour preference"),
        ("COLUMNS", "terminal width"),
        ("LINES", "terminal height"),
        ("TZ", "time zone"),
    ]
}

/// The fallback `PATH` when the caller has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

pub(crate) fn build_env(
    req: &RunRequest,
    home: &Path,
    toolchains: &Survey,
) -> Result<BTreeMap<String, String>> {
    let allow = default_env_allowlist();
    let mut env: BTreeMap<String, String> = req
        .caller_env
        .iter()
        .filter(|(k, _)| allow.iter().any(|(name, _)| name == k))
        .cloned()
        .collect();
    env.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.into());
    let user = if req.caller_uid == 0 {
        "sandbox".to_string()
    } else {
        lookup(&req.caller_env, "USER")
            .unwrap_or("sandbox")
            .to_string()
    };
    for (k, v) in [
        ("HOME", home.to_string_lossy().into_owned()),
        ("USER", user.clone()),
        ("LOGNAME", user),
        ("TMPDIR", "/tmp".into()),
        ("SHELL", "/bin/sh".into()),
        ("KEEPOUT_SANDBOX", "1".into()),
        // Python's bytecode goes outside the project: no .pyc the run writes beside a source
        // can then be mistaken for one Python wrote (see `quarantine`), and none is needed.
        (
            "PYTHONPYCACHEPREFIX",
            match &req.bytecode_cache {
                Some(_) => crate::policy::BYTECODE_CACHE.into(),
                None => home
                    .join(".cache/keepout-pycache")
                    .to_string_lossy()
                    .into_owned(),
            },
        ),
    ] {
        env.insert(k.into(), v);
    }
    if let crate::policy::Network::Proxied { port } = req.network {
        // What curl, pip, uv, git, cargo, npm and most HTTP libraries read.
        let url = format!("http://127.0.0.1:{port}");
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "npm_config_proxy",
            "npm_config_https_proxy",
            "PIP_PROXY",
            "CARGO_HTTP_PROXY",
        ] {
            env.insert(k.into(), url.clone());
        }
        env.insert("NO_PROXY".into(), String::new());
        env.insert("no_proxy".into(), String::new());
    }
    env.extend(toolchains.env.iter().cloned());
    let path = env.entry("PATH".into()).or_default();
    for dir in &toolchains.path_tail {
        let dir = dir.to_string_lossy();
        if !path.split(':').any(|d| d == dir) {
            path.push(':');
            path.push_str(&dir);
        }
    }
    for rule in &req.env {
        match rule {
            EnvRule::Set(k, v) => {
                env.insert(k.clone(), v.clone());
            }
            EnvRule::Pass(k) => match lookup(&req.caller_env, k) {
                Some(v) => {
                    env.insert(k.clone(), v.to_string());
                }
                None if req.caller_env_not_utf8.contains(k) => {
                    return Err(Error::Usage(format!(
                        "--env {k}: {k} is set in your environment, but its value is not UTF-8, \
                         and keepout passes only UTF-8 values into the sandbox \
                         (use --env {k}=VALUE to set a UTF-8 one)"
                    )))
                }
                None => {
                    return Err(Error::Usage(format!(
                    "--env {k}: {k} is not set in your environment (use --env {k}=VALUE to set it)"
                )))
                }
            },
        }
    }
    Ok(env)
}

fn lookup<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_rule_parses_names_and_assignments() {
        assert_eq!(
            "FOO".parse::<EnvRule>().unwrap(),
            EnvRule::Pass("FOO".into())
        );
        assert_eq!(
            "FOO=a=b".parse::<EnvRule>().unwrap(),
            EnvRule::Set("FOO".into(), "a=b".into())
        );
        assert!("".parse::<EnvRule>().is_err());
        assert!("A-B".parse::<EnvRule>().is_err());
    }

    #[test]
    fn locale_names_are_exact_not_a_prefix() {
        let allow = default_env_allowlist();
        assert!(allow.iter().any(|(n, _)| *n == "LC_ALL"));
        assert!(!allow.iter().any(|(n, _)| *n == "LC_TOKEN"));
    }
}
