//! For what: what the data to be signed is, and for which host.
//!
//! * An SSH user authentication (`SSH_MSG_USERAUTH_REQUEST`): its session id is matched to a
//!   `session-bind@openssh.com` that the same connection sent earlier (OpenSSH 8.9 and later
//!   send one per hop), whose signature by the server's host key over that session id was
//!   verified. The host key is then looked up in the user's known_hosts (plain or hashed
//!   entries) to give it a name. No verified binding, no host: a key limited to `hosts` refuses.
//! * An `ssh-keygen -Y sign` signature (`SSHSIG` data, e.g. git commit signing): its namespace.
//! * Anything else: "unrecognised data".
//!
//! The name comes from known_hosts, which ssh itself trusts; the binding's signature proves the
//! connection is to the holder of that host key, so untrusted code cannot claim to connect to
//! github.com while talking to another server.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use ssh_agent_lib::proto::extension::SessionBind;
use ssh_encoding::Decode;
use ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use ssh_key::public::KeyData;

/// What the data to be signed is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignData {
    UserAuth { session_id: Vec<u8>, user: String },
    SshSig { namespace: String },
    Unknown { len: usize },
}

const SSH_MSG_USERAUTH_REQUEST: u8 = 50;

impl SignData {
    pub fn parse(data: &[u8]) -> SignData {
        if let Some(rest) = data.strip_prefix(b"SSHSIG") {
            let mut r = rest;
            if let Ok(namespace) = String::decode(&mut r) {
                return SignData::SshSig { namespace };
            }
        }
        let mut r = data;
        let parsed = (|| {
            let session_id = Vec::<u8>::decode(&mut r).ok()?;
            if u8::decode(&mut r).ok()? != SSH_MSG_USERAUTH_REQUEST {
                return None;
            }
            let user = String::decode(&mut r).ok()?;
            let _service = String::decode(&mut r).ok()?;
            let method = String::decode(&mut r).ok()?;
            (method == "publickey" || method == "publickey-hostbound-v00@openssh.com")
                .then_some(SignData::UserAuth { session_id, user })
        })();
        parsed.unwrap_or(SignData::Unknown { len: data.len() })
    }
}

/// A verified `session-bind@openssh.com` of one agent connection.
#[derive(Debug, Clone)]
pub struct Binding {
    pub host_key: KeyData,
    pub session_id: Vec<u8>,
    pub is_forwarding: bool,
}

impl Binding {
    /// Accept a binding only when the host key's signature over the session id verifies.
    pub fn verify(bind: &SessionBind) -> Option<Binding> {
        bind.verify_signature().ok()?;
        Some(Binding {
            host_key: bind.host_key.clone(),
            session_id: bind.session_id.clone(),
            is_forwarding: bind.is_forwarding,
        })
    }
}

/// The known_hosts files to read: the user's, the system's, and any configured.
pub fn known_hosts_files(home: Option<&Path>, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(h) = home {
        files.push(h.join(".ssh/known_hosts"));
        files.push(h.join(".ssh/known_hosts2"));
    }
    files.push("/etc/ssh/ssh_known_hosts".into());
    files.push("/etc/ssh/ssh_known_hosts2".into());
    files.extend(extra.iter().cloned());
    files
}

/// The host names known_hosts gives `key`: plain entries by their patterns (negations and
/// wildcards left out), hashed ones when one of `candidates` (bare or as `[host]:port` for one of
/// `ports`) hashes to them. `[host]:port` is reported as `host`. Revoked keys have no names.
pub fn names_for(
    key: &KeyData,
    files: &[PathBuf],
    candidates: &[String],
    ports: &[u16],
) -> Vec<String> {
    let mut names = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        // Line by line: one line ssh-key cannot parse (a newer key type) must not hide the rest.
        let entries: Vec<Entry> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.parse::<Entry>().ok())
            .collect();
        if entries
            .iter()
            .any(|e| e.marker() == Some(&Marker::Revoked) && e.public_key().key_data() == key)
        {
            return Vec::new();
        }
        for e in entries {
            if e.marker().is_some() || e.public_key().key_data() != key {
                continue;
            }
            match e.host_patterns() {
                HostPatterns::Patterns(patterns) => {
                    for p in patterns {
                        if p.starts_with('!') || p.contains(['*', '?']) {
                            continue;
                        }
                        names.push(bare_host(p));
                    }
                }
                HostPatterns::HashedName { salt, hash } => {
                    for c in candidates {
                        let forms = std::iter::once(c.clone())
                            .chain(ports.iter().map(|p| format!("[{c}]:{p}")));
                        if forms.into_iter().any(|f| hashed(salt, &f) == *hash) {
                            names.push(c.clone());
                        }
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// `[host]:port` -> `host`; anything else as it is, lower-cased.
fn bare_host(pattern: &str) -> String {
    let p = pattern.to_ascii_lowercase();
    match p.strip_prefix('[').and_then(|r| r.split_once("]:")) {
        Some((host, _port)) => host.to_string(),
        None => p,
    }
}

/// HMAC-SHA1 of the name with the salt: how `ssh-keygen -H` hashes known_hosts names.
fn hashed(salt: &[u8], name: &str) -> [u8; 20] {
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_encoding::Encode;

    fn userauth(session: &[u8], user: &str, method: &str) -> Vec<u8> {
        let mut v = Vec::new();
        session.to_vec().encode(&mut v).unwrap();
        50u8.encode(&mut v).unwrap();
        user.encode(&mut v).unwrap();
        "ssh-connection".encode(&mut v).unwrap();
        method.encode(&mut v).unwrap();
        v
    }

    #[test]
    fn recognises_what_is_signed() {
        assert_eq!(
            SignData::parse(&userauth(b"sid", "git", "publickey")),
            SignData::UserAuth {
                session_id: b"sid".to_vec(),
                user: "git".into()
            }
        );
        assert!(matches!(
            SignData::parse(&userauth(b"sid", "git", "password")),
            SignData::Unknown { .. }
        ));
        let mut sig = b"SSHSIG".to_vec();
        "git".encode(&mut sig).unwrap();
        assert_eq!(
            SignData::parse(&sig),
            SignData::SshSig {
                namespace: "git".into()
            }
        );
        assert_eq!(SignData::parse(b"junk"), SignData::Unknown { len: 4 });
    }

    #[test]
    fn known_hosts_plain_hashed_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let other =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHHv4sdWXq3DyYeYPxSgYFsSGNwrJMbDzKfEN5JKsMDE";
        let kd = ssh_key::PublicKey::from_openssh(key)
            .unwrap()
            .key_data()
            .clone();
        // |1|salt|hash for "[127.0.0.1]:2222", computed here the way ssh-keygen -H does.
        let salt = [7u8; 20];
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed_line = format!(
            "|1|{}|{} {key}",
            b64.encode(salt),
            b64.encode(hashed(&salt, "[127.0.0.1]:2222"))
        );
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            format!("github.com,140.82.121.4 {key}\n*.example.org {key}\nelsewhere {other}\n{hashed_line}\nnot a valid line\n"),
        )
        .unwrap();
        let files = [file.clone()];
        assert_eq!(
            names_for(&kd, &files, &[], &[22]),
            ["140.82.121.4", "github.com"]
        );
        assert_eq!(
            names_for(&kd, &files, &["127.0.0.1".into()], &[22, 2222]),
            ["127.0.0.1", "140.82.121.4", "github.com"]
        );
        assert!(names_for(&kd, &files, &["127.0.0.1".into()], &[22])
            .iter()
            .all(|n| n != "127.0.0.1"));
        std::fs::write(&file, format!("github.com {key}\n@revoked * {key}\n")).unwrap();
        assert!(names_for(&kd, &files, &[], &[22]).is_empty());
    }
}
