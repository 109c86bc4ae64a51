//! Where `keepout try` clones from.
//!
//! What this module guarantees: a source is taken only over HTTP(S) (with no credentials in its
//! URL), as `github:OWNER/REPO`, or as a local repository, bare repository or bundle; SSH and
//! git:// are refused, since keys never enter the sandbox. A local source is only looked at
//! (names, a bundle's first bytes): nothing of it runs.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where a clone comes from and what the sandbox needs to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneSource {
    /// What git clones.
    pub url: String,
    /// The network preset or host the clone needs (`None`: a local path, no network).
    pub net: Option<String>,
    /// A local source, shown read-only inside.
    pub local: Option<PathBuf>,
    /// The repository's name, for the workspace and its project.
    pub name: String,
}

impl CloneSource {
    /// What the workspace records as its source: a local one as an absolute path (so that
    /// `workspace list` means it anywhere), else what was given.
    pub fn recorded(&self, given: &str) -> String {
        match &self.local {
            Some(path) => path.display().to_string(),
            None => given.to_string(),
        }
    }
}

/// The repository's name in the last component of `path` (without `.git`), as a valid name.
pub fn repo_name(path: &str) -> String {
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    crate::sanitize_name(last.strip_suffix(".git").unwrap_or(last), "repo")
}

/// What `source` (as given on the command line; a relative path from `cwd`) clones from.
pub fn parse_source(source: &str, cwd: &Path) -> Result<CloneSource> {
    let given = || source.to_string();
    if let Some(rest) = source.strip_prefix("github:") {
        let rest = rest.trim_start_matches('/');
        if rest.split('/').filter(|p| !p.is_empty()).count() != 2 {
            return Err(Error::BadShorthand { given: given() });
        }
        return Ok(CloneSource {
            url: format!("https://github.com/{rest}"),
            net: Some("github".into()),
            local: None,
            name: repo_name(rest),
        });
    }
    for scheme in ["https://", "http://"] {
        if let Some(rest) = source.strip_prefix(scheme) {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.contains('@') {
                return Err(Error::CredentialsInUrl { given: given() });
            }
            let host = authority.split(':').next().unwrap_or_default();
            if host.is_empty() {
                return Err(Error::NoHost { given: given() });
            }
            return Ok(CloneSource {
                url: source.into(),
                net: Some(host.to_ascii_lowercase()),
                local: None,
                name: repo_name(rest),
            });
        }
    }
    // scp-like `user@host:path` (a local path starts with / or . or has no colon after an @).
    let scp_like = !source.starts_with(['/', '.'])
        && source
            .split_once('@')
            .is_some_and(|(_, rest)| rest.contains(':'));
    if source.starts_with("ssh://") || source.starts_with("git://") || scp_like {
        return Err(Error::NotHttps { given: given() });
    }
    let path = source.strip_prefix("file://").unwrap_or(source);
    let path = cwd.join(path);
    let path = std::fs::canonicalize(&path).map_err(|cause| Error::NoSuchSource {
        given: given(),
        cause,
    })?;
    if !is_repository_or_bundle(&path) {
        return Err(Error::NotARepository { given: given() });
    }
    Ok(CloneSource {
        url: path.display().to_string(),
        net: None,
        name: repo_name(&path.display().to_string()),
        local: Some(path),
    })
}

/// Does `path` look like something `git clone` takes: a directory with a `.git` (a work tree),
/// a bare repository (`HEAD`, `objects/`, `refs/`), or a git bundle (its first line)? Only
/// names are looked at and a bundle's first bytes read: nothing of the source runs.
pub fn is_repository_or_bundle(path: &Path) -> bool {
    if path.is_dir() {
        return path.join(".git").exists()
            || (path.join("HEAD").is_file()
                && path.join("objects").is_dir()
                && path.join("refs").is_dir());
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    [&b"# v2 git bundle"[..], &b"# v3 git bundle"[..]]
        .iter()
        .any(|sig| head[..read].starts_with(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_init(dir: &Path, bare: bool) {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["init", "-q"]);
        if bare {
            cmd.arg("--bare");
        }
        assert!(cmd.arg(dir).status().unwrap().success(), "git init");
    }

    #[test]
    fn sources() {
        let cwd = Path::new("/");
        let gh = parse_source("github:someone/repro", cwd).unwrap();
        assert_eq!(gh.url, "https://github.com/someone/repro");
        assert_eq!(gh.net.as_deref(), Some("github"));
        assert_eq!(gh.name, "repro");
        let https = parse_source("https://gitlab.com/a/b.git", cwd).unwrap();
        assert_eq!(https.net.as_deref(), Some("gitlab.com"));
        assert_eq!(https.name, "b");
        assert!(parse_source("git@github.com:a/b.git", cwd).is_err());
        assert!(parse_source("git://github.com/a/b", cwd).is_err());
        // A local path may hold an @.
        assert!(parse_source("/nonexistent/repo@v1", cwd)
            .unwrap_err()
            .to_string()
            .contains("no such directory"));
        assert!(parse_source("ssh://github.com/a/b", cwd).is_err());
        assert!(parse_source("https://me:tok@github.com/a/b", cwd).is_err());
        assert!(parse_source("github:onlyowner", cwd).is_err());
        let repo = tempfile::tempdir().unwrap();
        git_init(repo.path(), false);
        let url = format!("file://{}", repo.path().display());
        let local = parse_source(&url, cwd).unwrap();
        assert_eq!(local.local.as_deref(), Some(repo.path()));
        assert_eq!(local.net, None);
        // A directory that is no repository is named as such.
        assert!(parse_source("file:///usr", cwd)
            .unwrap_err()
            .to_string()
            .contains("is not a git repository, bundle or URL"));
        assert!(parse_source("./definitely-not-here", cwd).is_err());
    }

    #[test]
    fn github_shorthand() {
        let cwd = Path::new("/");
        let gh = parse_source("github://owner/Name.git", cwd).unwrap();
        assert_eq!(gh.url, "https://github.com/owner/Name.git");
        assert_eq!(gh.name, "name");
        assert_eq!(gh.local, None);
        for bad in ["github:", "github:a", "github:a/b/c"] {
            assert!(
                matches!(
                    parse_source(bad, cwd),
                    Err(Error::BadShorthand { ref given }) if given == bad
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn gitlab_is_no_shorthand_but_its_url_is_taken() {
        let cwd = tempfile::tempdir().unwrap();
        // Only github: is a shorthand: gitlab:a/b is a (missing) local path.
        assert!(matches!(
            parse_source("gitlab:a/b", cwd.path()),
            Err(Error::NoSuchSource { .. })
        ));
        let url = parse_source("https://GitLab.com:443/group/sub/proj/", cwd.path()).unwrap();
        assert_eq!(url.net.as_deref(), Some("gitlab.com"));
        assert_eq!(url.name, "proj");
        assert_eq!(url.url, "https://GitLab.com:443/group/sub/proj/");
    }

    #[test]
    fn urls_refused_with_a_reason_and_a_hint() {
        let cwd = Path::new("/");
        assert!(matches!(
            parse_source("https:///path", cwd),
            Err(Error::NoHost { .. })
        ));
        assert!(matches!(
            parse_source("http://user@host/x", cwd),
            Err(Error::CredentialsInUrl { .. })
        ));
        let ssh = parse_source("git@host:a/b", cwd).unwrap_err();
        assert!(matches!(ssh, Error::NotHttps { .. }));
        assert_eq!(ssh.hint().as_deref(), Some("Use the https:// address"));
        let http = parse_source("http://example.org/x/y.git", cwd).unwrap();
        assert_eq!(http.net.as_deref(), Some("example.org"));
        assert_eq!(http.name, "y");
    }

    #[test]
    fn local_paths_bare_repositories_and_bundles() {
        let dir = tempfile::tempdir().unwrap();
        git_init(&dir.path().join("work"), false);
        git_init(&dir.path().join("bare.git"), true);
        std::fs::write(dir.path().join("b.bundle"), "# v2 git bundle\n").unwrap();
        std::fs::write(dir.path().join("plain"), "not a bundle").unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let work = parse_source("work", dir.path()).unwrap();
        assert_eq!(work.local.as_deref(), Some(real.join("work").as_path()));
        assert_eq!(work.url, real.join("work").display().to_string());
        assert_eq!(work.recorded("work"), work.url);
        let bare = parse_source("./bare.git", dir.path()).unwrap();
        assert_eq!(bare.name, "bare");
        assert!(parse_source("b.bundle", dir.path()).is_ok());
        let plain = parse_source("plain", dir.path()).unwrap_err();
        assert!(matches!(plain, Error::NotARepository { .. }));
        assert!(plain.hint().is_some());
        let url = parse_source("https://h/x", dir.path()).unwrap();
        assert_eq!(url.recorded("https://h/x"), "https://h/x");
    }
}
