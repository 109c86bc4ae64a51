//! The planted victim: a fake home with FAKE credentials where the real ones would be, and a
//! throwaway git project holding the malicious suite. Everything is written under the one
//! directory given, nothing elsewhere.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The malicious test suite, built into the binary.
pub(crate) const EVIL_PY: &str = include_str!("../../../examples/evil-test-suite/evil.py");

/// Fake credentials, written where the real ones would be (path under the home, content).
pub(crate) const PLANTED: &[(&str, &str)] = &[
    (".ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-DEMO-KEY-b3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
    (".ssh/id_rsa", "-----BEGIN RSA PRIVATE KEY-----\nFAKE-DEMO-KEY\n-----END RSA PRIVATE KEY-----\n"),
    (".netrc", "machine github.com login alice password ghp_FAKEdemo0000000000000000000000000000\n"),
    (".git-credentials", "https://alice:ghp_FAKEdemo0000000000000000000000000000@github.com\n"),
    (".pypirc", "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmcFAKEDEMO\n"),
    (".config/gh/hosts.yml", "github.com:\n    oauth_token: gho_FAKEdemo000000000000000000000000000\n    user: alice\n"),
    (".cargo/credentials.toml", "[registry]\ntoken = \"cioFAKEdemo0000000000000000000000\"\n"),
    (".npmrc", "//registry.npmjs.org/:_authToken=npm_FAKEdemo000000000000000000000000000\n"),
    (".aws/credentials", "[default]\naws_access_key_id = AKIAFAKEDEMO00000000\naws_secret_access_key = FAKEdemo/secret\n"),
    (".docker/config.json", "{\"auths\": {\"https://index.docker.io/v1/\": {\"auth\": \"YWxpY2U6RkFLRQ==\"}}}\n"),
    (".bashrc", "# alice's bashrc\n"),
    (".profile", "# alice's profile\n"),
];

/// What was planted content `rel` had ("" for a path that was not planted).
pub(crate) fn planted_content(rel: &str) -> &'static str {
    PLANTED
        .iter()
        .find(|(r, _)| *r == rel)
        .map(|(_, c)| *c)
        .unwrap_or("")
}

/// Where the victim lives under the planted root.
#[derive(Debug, Clone)]
pub(crate) struct Planted {
    /// `ROOT/home/alice`, with [`PLANTED`] in it.
    pub home: PathBuf,
    /// `ROOT/src/their-repro`: a git repository (`git init`, or a minimal `.git` without git)
    /// with evil.py in it.
    pub project: PathBuf,
}

/// Plant the fake home and the project under `root`.
pub(crate) fn plant(root: &Path) -> std::io::Result<Planted> {
    let home = root.join("home/alice");
    let project = root.join("src/their-repro");
    for (rel, content) in PLANTED {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().expect("has parent"))?;
        std::fs::write(&p, content)?;
    }
    std::fs::set_permissions(
        home.join(".ssh/id_ed25519"),
        std::fs::Permissions::from_mode(0o600),
    )?;
    std::fs::create_dir_all(&project)?;
    std::fs::write(project.join("evil.py"), EVIL_PY)?;
    let git = Command::new("git")
        .args(["init", "-q", "."])
        .current_dir(&project)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !git.map(|s| s.success()).unwrap_or(false) {
        std::fs::create_dir_all(project.join(".git/hooks"))?;
        std::fs::write(
            project.join(".git/config"),
            "[core]\n\trepositoryformatversion = 0\n",
        )?;
    }
    Ok(Planted { home, project })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::{plant, planted_content, EVIL_PY, PLANTED};

    /// Every path under `dir`, symlinks not followed.
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().unwrap().is_dir() {
                walk(&p, out);
            }
        }
    }

    #[test]
    fn every_planted_file_exists_with_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let planted = plant(dir.path()).unwrap();
        assert_eq!(planted.home, dir.path().join("home/alice"));
        assert_eq!(planted.project, dir.path().join("src/their-repro"));
        for (rel, content) in PLANTED {
            let got = std::fs::read_to_string(planted.home.join(rel)).unwrap();
            assert_eq!(&got, content, "{rel}");
        }
        let mode = std::fs::metadata(planted.home.join(".ssh/id_ed25519"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let suite = std::fs::read_to_string(planted.project.join("evil.py")).unwrap();
        assert_eq!(suite, EVIL_PY);
        assert!(planted.project.join(".git/config").is_file());
        assert!(planted.project.join(".git/hooks").is_dir());
    }

    #[test]
    fn nothing_is_written_outside_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        plant(&root).unwrap();
        let top: Vec<_> = std::fs::read_dir(outer.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(top, ["root"], "only the root beside it");
        let mut all = Vec::new();
        walk(&root, &mut all);
        assert!(all.len() > PLANTED.len(), "{all:?}");
        let root = root.canonicalize().unwrap();
        for p in all {
            if let Ok(target) = p.canonicalize() {
                assert!(target.starts_with(&root), "{} leads out", p.display());
            }
        }
    }

    #[test]
    fn planted_content_is_what_was_written() {
        assert_eq!(planted_content(".bashrc"), "# alice's bashrc\n");
        assert_eq!(planted_content(".not-planted"), "");
    }
}
