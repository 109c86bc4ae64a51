//! Credentials outside the home: the world-readable files where tools keep tokens for everyone
//! (`/etc/pip.conf` with an `index-url` of `user:password@`, `/etc/gitconfig` with an
//! `http.extraHeader = Authorization: ...`, npm's global `npmrc`, `/etc/environment` exporting a
//! token, ...). A sandbox that shows `/etc`, `/usr` and `/opt` shows these too, and every
//! program a user runs can read them.
//!
//! [`CATALOGUE`] is the one table of them: each place (a path, `*` matching within one name),
//! the tool that reads it, what its credentials look like, and its [`Shape`]. [`files`] lists the
//! ones that exist; [`examine_file`] says what each holds ([`crate::detect`]).
//!
//! Guarantee, for the files this catalogue names and the credentials [`crate::detect`] knows:
//! a file that holds none is shown as it is; one that holds some is shown with them removed
//! (the verdict is checked clean by the same detector) or, when that cannot be done safely
//! (netrc, key files, private key blocks, files over [`MAX_TEXT`]), hidden whole. What it does
//! not promise: files outside this table, credentials of shapes the detector does not know, and
//! other names (hard links) of the same file.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::detect::{examine, Hit, Shape, Verdict};

/// A place where a tool keeps credentials for every user of the machine.
#[derive(Debug)]
pub struct Place {
    /// Absolute, or under the home (`~/`); a `*` matches within one name (`/etc/profile.d/*.sh`).
    pub path: &'static str,
    /// Who reads it.
    pub tool: &'static str,
    /// How credentials look in it.
    pub looks: &'static str,
    pub shape: Shape,
}

const fn p(path: &'static str, tool: &'static str, looks: &'static str, shape: Shape) -> Place {
    Place {
        path,
        tool,
        looks,
        shape,
    }
}

use Shape::{Netrc, Secret, Text};

const URL: &str = "a URL with user:password@ or a token as the user";

/// Every place keepout knows. Absolute ones are kept out of sandboxes (the system directories
/// are visible there); `~/` ones sit inside toolchains (masked by `toolchains`) and are for the
/// audit.
#[rustfmt::skip]
pub const CATALOGUE: &[Place] = &[
    // Python
    p("/etc/pip.conf", "pip (site-wide)", URL, Text),
    p("/etc/xdg/pip/pip.conf", "pip (XDG site-wide)", URL, Text),
    p("/usr/pip.conf", "pip (sys.prefix)", URL, Text),
    p("/usr/local/pip.conf", "pip (sys.prefix)", URL, Text),
    p("/opt/*/pip.conf", "pip (a Python's sys.prefix)", URL, Text),
    p("/etc/uv/uv.toml", "uv (system)", "[[index]] url with user:password@", Text),
    p("/etc/xdg/uv/uv.toml", "uv (XDG system)", "[[index]] url with user:password@", Text),
    p("/etc/conda/.condarc", "conda (system)", "channel URLs with user:password@ or /t/TOKEN/", Text),
    p("/etc/conda/condarc", "conda (system)", "channel URLs with user:password@ or /t/TOKEN/", Text),
    p("/etc/conda/condarc.d/*", "conda (system)", "channel URLs with user:password@", Text),
    p("/opt/*/.condarc", "conda (an installation's own)", "channel URLs with user:password@", Text),
    p("/opt/*/condarc", "conda (an installation's own)", "channel URLs with user:password@", Text),
    // JavaScript
    p("/etc/npmrc", "npm (global config, Debian's prefix)", "_authToken=, _auth=, _password=", Text),
    p("/usr/etc/npmrc", "npm (global config, prefix /usr)", "_authToken=, _auth=, _password=", Text),
    p("/usr/local/etc/npmrc", "npm (global config, prefix /usr/local)", "_authToken=, _auth=, _password=", Text),
    p("/opt/*/etc/npmrc", "npm (global config of a Node in /opt)", "_authToken=, _auth=, _password=", Text),
    p("/usr/lib/node_modules/npm/npmrc", "npm (builtin config)", "_authToken=, _auth=", Text),
    p("/usr/local/lib/node_modules/npm/npmrc", "npm (builtin config)", "_authToken=, _auth=", Text),
    p("/usr/share/nodejs/npm/npmrc", "npm (builtin config, Debian)", "_authToken=, _auth=", Text),
    p("/etc/yarnrc", "yarn 1 (global)", "_authToken, registry URL with user:password@", Text),
    p("/usr/local/share/.yarnrc", "yarn 1 (global prefix)", "_authToken, registry URL with user:password@", Text),
    p("~/.nvm/versions/node/*/etc/npmrc", "npm (global config of an nvm Node)", "_authToken=, _auth=", Text),
    p("~/.asdf/installs/nodejs/*/etc/npmrc", "npm (global config of an asdf Node)", "_authToken=, _auth=", Text),
    p("~/.local/share/mise/installs/node/*/etc/npmrc", "npm (global config of a mise Node)", "_authToken=, _auth=", Text),
    p("~/.pyenv/versions/*/pip.conf", "pip (a pyenv Python's sys.prefix)", URL, Text),
    // git
    p("/etc/gitconfig", "git (system config)", "url with userinfo, http.extraHeader = Authorization: ..., insteadOf with a token", Text),
    p("/usr/local/etc/gitconfig", "git (system config, prefix /usr/local)", "url with userinfo, http.extraHeader = Authorization: ...", Text),
    p("/etc/git-credentials", "git (credential.helper = store --file)", URL, Text),
    // Ruby, Java, Rust, Go
    p("/etc/gemrc", "RubyGems (system)", ":sources: with user:password@", Text),
    p("/usr/local/etc/gemrc", "RubyGems (system, prefix /usr/local)", ":sources: with user:password@", Text),
    p("/etc/maven/settings.xml", "Maven (global settings)", "<password>, <passphrase>, <privateKey>", Text),
    p("/usr/share/maven/conf/settings.xml", "Maven (global settings)", "<password>, <passphrase>", Text),
    p("/opt/*/conf/settings.xml", "Maven (an installation's global settings)", "<password>, <passphrase>", Text),
    p("/opt/*/gradle.properties", "Gradle (installation directory)", "...password=, ...token=", Text),
    p("/usr/local/cargo/credentials.toml", "cargo (CARGO_HOME of the rust images)", "token = ...", Text),
    p("/usr/local/cargo/credentials", "cargo (CARGO_HOME of the rust images)", "token = ...", Text),
    p("/usr/local/cargo/config.toml", "cargo (CARGO_HOME of the rust images)", "token = ..., registry URLs", Text),
    p("/usr/local/go/go.env", "go (GOROOT/go.env)", "GOPROXY with user:password@", Text),
    p("/usr/lib/go/go.env", "go (GOROOT/go.env)", "GOPROXY with user:password@", Text),
    // Cloud, containers, clusters
    p("/etc/boto.cfg", "boto, gsutil", "aws_secret_access_key =, gs_secret_access_key =", Text),
    p("/etc/containers/auth.json", "podman, skopeo, buildah", "\"auth\": base64 user:password", Text),
    p("/etc/docker/config.json", "docker (DOCKER_CONFIG=/etc/docker)", "\"auth\": base64 user:password", Text),
    p("/etc/docker/certs.d/*/client.key", "docker (registry client key)", "the whole file", Secret),
    p("/etc/rancher/k3s/k3s.yaml", "k3s's kubeconfig (often made world-readable)", "client-key-data:, token:, password:", Text),
    p("/etc/kubernetes/*.conf", "kubeadm's kubeconfigs", "client-key-data:, token:", Text),
    p("/etc/ceph/*.keyring", "Ceph", "the whole file", Secret),
    p("/opt/*/.credentials", "GitHub Actions runner", "the whole file", Secret),
    p("/opt/*/.credentials_rsaparams", "GitHub Actions runner (its RSA key)", "the whole file", Secret),
    // Network, mounts, package managers
    p("/etc/netrc", "netrc readers given NETRC=/etc/netrc", "machine ... password ...", Netrc),
    p("/etc/apt/auth.conf", "apt", "machine ... password ...", Netrc),
    p("/etc/apt/auth.conf.d/*", "apt", "machine ... password ...", Netrc),
    p("/etc/apt/apt.conf", "apt", "Acquire::http::Proxy with user:password@", Text),
    p("/etc/apt/apt.conf.d/*", "apt", "Acquire::http::Proxy with user:password@", Text),
    p("/etc/apt/sources.list", "apt", "repository URLs with user:password@", Text),
    p("/etc/apt/sources.list.d/*", "apt", "repository URLs with user:password@", Text),
    p("/etc/wgetrc", "wget (system)", "password =, http_password =, proxy_password =", Text),
    p("/etc/subversion/servers", "Subversion (system)", "http-proxy-password =", Text),
    p("/etc/fstab", "mount (cifs, davfs)", "password= in the options", Text),
    p("/etc/mysql/my.cnf", "MySQL clients", "password =", Text),
    p("/etc/my.cnf", "MySQL clients", "password =", Text),
    p("/etc/mysql/conf.d/*", "MySQL clients", "password =", Text),
    p("/etc/postgresql-common/pg_service.conf", "libpq (service file)", "password=", Text),
    // The environment of every login and service
    p("/etc/environment", "pam_env (every login)", "NAME=value with a token or a proxy URL with user:password@", Text),
    p("/etc/environment.d/*", "systemd user sessions", "NAME=value with a token", Text),
    p("/etc/security/pam_env.conf", "pam_env (every login)", "NAME DEFAULT=value with a token", Text),
    p("/etc/profile", "login shells", "export NAME=token", Text),
    p("/etc/profile.d/*", "login shells", "export NAME=token", Text),
    p("/etc/bash.bashrc", "bash", "export NAME=token", Text),
    p("/etc/bashrc", "bash", "export NAME=token", Text),
    p("/etc/zshenv", "zsh", "export NAME=token", Text),
    p("/etc/zsh/zshenv", "zsh", "export NAME=token", Text),
    p("/etc/default/*", "services' environment files", "NAME=token, proxy URLs with user:password@", Text),
    p("/etc/sysconfig/*", "services' environment files", "NAME=token", Text),
    p("/etc/systemd/system/*.service", "systemd units", "Environment=NAME=token", Text),
    p("/etc/systemd/system/*.d/*.conf", "systemd drop-ins", "Environment=NAME=token", Text),
];

/// Larger files are not read: hidden whole in a sandbox, left out of the audit.
pub const MAX_TEXT: u64 = 256 << 10;

/// What [`examine_file`] calls a file over [`MAX_TEXT`].
pub const TOO_LARGE: &str = "too large to examine";

/// The existing regular files (symlinks followed) of the catalogue: absolute places under `root`
/// (`/` for the real system) and `~/` places under `home`, each when given. In catalogue order,
/// each once.
pub fn files(root: Option<&Path>, home: Option<&Path>) -> Vec<(&'static Place, PathBuf)> {
    files_and_watch(root, home).0
}

/// [`files`], and the directories whose change could change that answer: each directory a
/// pattern listed, the directory of each file found, and, for each place that does not exist,
/// its deepest existing ancestor (creating the file, or a directory on its way, changes that
/// directory's mtime). While none of them changed, the same files are there.
pub fn files_and_watch(
    root: Option<&Path>,
    home: Option<&Path>,
) -> (Vec<(&'static Place, PathBuf)>, Vec<PathBuf>) {
    let mut out: Vec<(&'static Place, PathBuf)> = Vec::new();
    let mut watch: Vec<PathBuf> = Vec::new();
    // Many patterns share a directory (/opt/*/...): each is listed once.
    let mut listings: HashMap<PathBuf, Vec<OsString>> = HashMap::new();
    for place in CATALOGUE {
        let (base, rel) = match place.path.strip_prefix("~/") {
            Some(rel) => match home {
                Some(home) => (home, rel),
                None => continue,
            },
            None => match root {
                Some(root) => (root, place.path.trim_start_matches('/')),
                None => continue,
            },
        };
        for path in expand(base, rel, &mut listings) {
            match std::fs::metadata(&path) {
                Ok(m) => {
                    if let Some(dir) = path.parent() {
                        watch.push(dir.to_path_buf());
                    }
                    if m.is_file() && !out.iter().any(|(_, p)| *p == path) {
                        out.push((place, path));
                    }
                }
                Err(_) => {
                    if let Some(dir) = path
                        .ancestors()
                        .skip(1)
                        .find(|a| std::fs::symlink_metadata(a).is_ok())
                    {
                        watch.push(dir.to_path_buf());
                    }
                }
            }
        }
    }
    watch.extend(listings.into_keys());
    watch.sort();
    watch.dedup();
    (out, watch)
}

/// The paths under `base` that match `pattern` (relative; `*` within one component), sorted.
fn expand(
    base: &Path,
    pattern: &str,
    listings: &mut HashMap<PathBuf, Vec<OsString>>,
) -> Vec<PathBuf> {
    let mut found = vec![base.to_path_buf()];
    for component in pattern.split('/') {
        let mut next = Vec::new();
        for dir in found {
            match component.split_once('*') {
                None => next.push(dir.join(component)),
                Some((prefix, suffix)) => {
                    let listing = listings.entry(dir.clone()).or_insert_with(|| {
                        let mut names: Vec<OsString> = std::fs::read_dir(&dir)
                            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
                            .unwrap_or_default();
                        names.sort();
                        names
                    });
                    let names: Vec<_> = listing
                        .iter()
                        .filter(|n| {
                            let n = n.as_encoded_bytes();
                            n.len() >= prefix.len() + suffix.len()
                                && n.starts_with(prefix.as_bytes())
                                && n.ends_with(suffix.as_bytes())
                        })
                        .collect();
                    next.extend(names.into_iter().map(|n| dir.join(n)));
                }
            }
        }
        found = next;
    }
    found
}

/// What `path` holds, read as `shape` (see [`crate::detect::examine`]).
pub fn examine_file(path: &Path, shape: Shape) -> std::io::Result<Verdict> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_TEXT {
        return Ok(Verdict::Mask {
            hits: vec![Hit {
                line: 0,
                kind: TOO_LARGE,
                shown: String::new(),
            }],
        });
    }
    // Sized from the file, so that one read takes it (and one more sees its end).
    let mut bytes = Vec::with_capacity(len as usize + 1);
    file.take(MAX_TEXT + 1).read_to_end(&mut bytes)?;
    Ok(examine(&String::from_utf8_lossy(&bytes), shape))
}

/// "URL with credentials (user:password@) (line 3), credential value (line 5)": what was found,
/// for messages; never a value.
pub fn describe(hits: &[Hit]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for h in hits {
        let part = if h.line == 0 {
            h.kind.to_string()
        } else {
            format!("{} (line {})", h.kind, h.line)
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_well_formed() {
        for place in CATALOGUE {
            assert!(
                place.path.starts_with('/') || place.path.starts_with("~/"),
                "{}",
                place.path
            );
            assert!(
                place.path.split('/').all(|c| c.matches('*').count() <= 1),
                "{}",
                place.path
            );
        }
    }

    #[test]
    fn files_under_a_root_and_a_home() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for rel in [
            "etc/pip.conf",
            "etc/profile.d/a.sh",
            "etc/profile.d/b.sh",
            "home/.nvm/versions/node/v20/etc/npmrc",
        ] {
            std::fs::create_dir_all(r.join(rel).parent().unwrap()).unwrap();
            std::fs::write(r.join(rel), "x").unwrap();
        }
        std::fs::create_dir_all(r.join("etc/uv/uv.toml")).unwrap(); // a directory: not a file
        let found: Vec<PathBuf> = files(Some(r), Some(&r.join("home")))
            .into_iter()
            .map(|(_, p)| p.strip_prefix(r).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            found,
            [
                "etc/pip.conf",
                "home/.nvm/versions/node/v20/etc/npmrc",
                "etc/profile.d/a.sh",
                "etc/profile.d/b.sh"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(files(Some(r), None).len(), 3);
        assert_eq!(files(None, Some(&r.join("home"))).len(), 1);
    }
}
