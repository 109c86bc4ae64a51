//! Who is calling: the one place keepout works out the caller's ids, home, environment and
//! working directory. Guarantees: [`Caller::current`] reads each once; the environment is split
//! into what can be passed on (name and value UTF-8) and the names whose value is not UTF-8 (a
//! name that is not UTF-8 is left out: no flag nor allowlist can name it); the working
//! directory's failure is kept and said only where the directory is needed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::Error;

/// The calling user and the process's surroundings, as keepout starts.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The effective uid.
    pub uid: u32,
    /// The effective gid.
    pub gid: u32,
    /// `$HOME`, when set.
    pub home: Option<PathBuf>,
    /// The environment's variables whose name and value are UTF-8, in the environment's order.
    pub env: Vec<(String, String)>,
    /// The names (UTF-8) of the variables whose value is not UTF-8.
    pub env_not_utf8: Vec<String>,
    cwd: Result<PathBuf, CwdError>,
}

/// Why the working directory could not be read, kept so that it is said where it is needed.
#[derive(Debug, Clone, Copy)]
struct CwdError {
    os: Option<i32>,
    kind: std::io::ErrorKind,
}

impl CwdError {
    fn io(self) -> std::io::Error {
        match self.os {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => self.kind.into(),
        }
    }
}

impl Caller {
    /// The caller of this process.
    pub fn current() -> Caller {
        let (env, env_not_utf8) = split_env(std::env::vars_os());
        let (uid, gid) = Caller::effective_ids();
        Caller {
            uid,
            gid,
            home: std::env::var_os("HOME").map(PathBuf::from),
            env,
            env_not_utf8,
            cwd: std::env::current_dir().map_err(|e| CwdError {
                os: e.raw_os_error(),
                kind: e.kind(),
            }),
        }
    }

    /// A caller made of these facts (for tests and for callers that know them).
    pub fn new(
        uid: u32,
        gid: u32,
        home: Option<PathBuf>,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
        cwd: PathBuf,
    ) -> Caller {
        let (env, env_not_utf8) = split_env(vars);
        Caller {
            uid,
            gid,
            home,
            env,
            env_not_utf8,
            cwd: Ok(cwd),
        }
    }

    /// `$HOME`, or `/` when it is not set.
    pub fn home_or_root(&self) -> &Path {
        self.home.as_deref().unwrap_or(Path::new("/"))
    }

    /// This process's effective uid (what [`Caller::current`] records as `uid`), for a
    /// command that needs no more of the caller.
    pub fn effective_uid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// This process's effective (uid, gid), the ids [`Caller::current`] records.
    pub fn effective_ids() -> (u32, u32) {
        (Caller::effective_uid(), rustix::process::getegid().as_raw())
    }

    /// The working directory, or why it cannot be read.
    pub fn cwd(&self) -> Result<&Path, Error> {
        match &self.cwd {
            Ok(p) => Ok(p),
            Err(e) => Err(Error::NoCwd(e.io())),
        }
    }

    /// The variables the sandbox would pass by default whose value is not UTF-8: they are not
    /// passed (the caller may want to say so, and how to give a UTF-8 one).
    pub fn unpassable_defaults(&self) -> impl Iterator<Item = &str> {
        self.env_not_utf8
            .iter()
            .filter(|name| {
                keepout_sandbox::default_env_allowlist()
                    .iter()
                    .any(|(allowed, _)| allowed == name)
            })
            .map(String::as_str)
    }
}

/// The environment split into UTF-8 variables and the names of those whose value is not.
fn split_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut utf8 = Vec::new();
    let mut not_utf8 = Vec::new();
    for (k, v) in vars {
        // A name that is not UTF-8 cannot be named by --env nor be on the allowlist.
        let Ok(k) = k.into_string() else { continue };
        match v.into_string() {
            Ok(v) => utf8.push((k, v)),
            Err(_) => not_utf8.push(k),
        }
    }
    (utf8, not_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn os(s: &str) -> OsString {
        s.into()
    }

    #[test]
    fn the_environment_is_split_by_whether_it_is_utf8() {
        let bad = OsString::from_vec(vec![b'a', 0xff]);
        let caller = Caller::new(
            1000,
            1000,
            Some("/home/u".into()),
            vec![
                (os("PATH"), os("/usr/bin")),
                (os("LANG"), bad.clone()),
                (bad.clone(), os("x")),
                (os("ODD"), bad),
                (os("HOME"), os("/home/u")),
            ],
            "/w".into(),
        );
        assert_eq!(
            caller.env,
            vec![
                ("PATH".to_string(), "/usr/bin".to_string()),
                ("HOME".to_string(), "/home/u".to_string())
            ]
        );
        assert_eq!(caller.env_not_utf8, vec!["LANG", "ODD"]);
        // LANG is passed by default, ODD is not: only LANG is worth a word.
        assert_eq!(
            caller.unpassable_defaults().collect::<Vec<_>>(),
            vec!["LANG"]
        );
        assert_eq!(caller.cwd().unwrap(), Path::new("/w"));
    }

    #[test]
    fn no_home_is_the_root() {
        let caller = Caller::new(0, 0, None, Vec::new(), "/".into());
        assert_eq!(caller.home_or_root(), Path::new("/"));
    }

    #[test]
    fn an_unreadable_cwd_is_said_where_it_is_needed() {
        let caller = Caller {
            cwd: Err(CwdError {
                os: Some(2),
                kind: std::io::ErrorKind::NotFound,
            }),
            ..Caller::new(0, 0, None, Vec::new(), "/".into())
        };
        let e = caller.cwd().unwrap_err();
        assert_eq!(e.to_string(), "cannot read the current directory");
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(source, std::io::Error::from_raw_os_error(2).to_string());
    }
}
