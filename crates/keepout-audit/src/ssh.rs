//! SSH: private keys without a passphrase or readable by others, an agent that signs without
//! asking, agent forwarding to every host.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{read_small, Context, Finding, Severity};

/// Whether a private key file's text is unencrypted: `Some(true)` unencrypted, `Some(false)`
/// encrypted, `None` not a private key.
pub fn unencrypted(text: &str) -> Option<bool> {
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        // "openssh-key-v1\0", then the cipher name as an SSH string.
        let rest = bytes.strip_prefix(b"openssh-key-v1\0")?;
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let cipher = rest.get(4..4 + len)?;
        return Some(cipher == b"none");
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Some(false);
    }
    if text.contains("-----BEGIN PRIVATE KEY-----") {
        return Some(true); // PKCS#8, unencrypted
    }
    for kind in ["RSA", "EC", "DSA"] {
        if text.contains(&format!("-----BEGIN {kind} PRIVATE KEY-----")) {
            return Some(!text.contains("Proc-Type: 4,ENCRYPTED"));
        }
    }
    None
}

pub fn check(ctx: &Context, out: &mut Vec<Finding>) {
    let dir = ctx.home.join(".ssh");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            key_file(ctx, &path, out);
        }
    }
    forward_agent(ctx, &dir.join("config"), out);
    agent(ctx, out);
}

fn key_file(ctx: &Context, path: &Path, out: &mut Vec<Finding>) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.ends_with(".pub")
        || name.starts_with("known_hosts")
        || name == "config"
        || name == "authorized_keys"
    {
        return;
    }
    let Some(text) = read_small(path) else { return };
    let Some(unencrypted) = unencrypted(&text) else {
        return;
    };
    let shown = ctx.show(path);
    if unencrypted {
        out.push(Finding {
            check: "ssh-key-unencrypted",
            severity: Severity::High,
            title: "SSH private key without a passphrase".into(),
            location: shown.clone(),
            why: "Any program you run can copy this file and log in as you wherever the key is accepted (GitHub pushes included), from anywhere, for as long as the key lives.".into(),
            fix: "Move it into keepout's vault and sign through `keepout agent`, which asks before every use; or at least add a passphrase (ssh-keygen -p -f KEY).".into(),
            fix_command: Some(format!("keepout ssh import {shown}")),
        });
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            out.push(Finding {
                check: "ssh-key-permissions",
                severity: Severity::High,
                title: format!(
                    "SSH private key readable by others (mode {:o})",
                    meta.permissions().mode() & 0o777
                ),
                location: shown.clone(),
                why:
                    "Other users of this machine can read it; ssh itself refuses to use such a key."
                        .into(),
                fix: format!("chmod 600 {shown}"),
                fix_command: None,
            });
        }
    }
}

/// `ForwardAgent yes` for every host: `Host *`, or before any `Host` line.
fn forward_agent(ctx: &Context, config: &Path, out: &mut Vec<Finding>) {
    let Some(text) = read_small(config) else {
        return;
    };
    let mut everywhere = true; // before the first Host/Match line, options apply to all hosts
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let mut words = l.splitn(2, [' ', '\t', '=']);
        let key = words.next().unwrap_or("").to_ascii_lowercase();
        let value = words
            .next()
            .unwrap_or("")
            .trim()
            .trim_start_matches('=')
            .trim();
        match key.as_str() {
            "host" => everywhere = value.split_whitespace().any(|p| p == "*"),
            "match" => everywhere = value.eq_ignore_ascii_case("all"),
            "forwardagent"
                if everywhere
                    && (value.eq_ignore_ascii_case("yes")
                        || value.starts_with('/')
                        || value.starts_with('$')) =>
            {
                out.push(Finding {
                    check: "ssh-forward-agent",
                    severity: Severity::Medium,
                    title: "the SSH agent is forwarded to every host".into(),
                    location: format!("{}:{}", ctx.show(config), n + 1),
                    why: "Anyone with root on any server you connect to can use your keys while you are connected.".into(),
                    fix: "Remove `ForwardAgent yes` from `Host *`; forward only to hosts that need it (or use ProxyJump).".into(),
                    fix_command: None,
                });
            }
            _ => {}
        }
    }
}

/// An agent at SSH_AUTH_SOCK that holds keys and is not keepout's (which asks).
fn agent(ctx: &Context, out: &mut Vec<Finding>) {
    let Some(sock) = ctx.var("SSH_AUTH_SOCK") else {
        return;
    };
    if ctx.keepout_agent_socket.as_deref() == Some(Path::new(sock)) || !ctx.probe {
        return;
    }
    let listed = std::process::Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", sock)
        .stdin(std::process::Stdio::null())
        .output();
    let Ok(listed) = listed else { return };
    if !listed.status.success() {
        return; // no agent, or no keys
    }
    let keys = String::from_utf8_lossy(&listed.stdout).lines().count();
    out.push(Finding {
        check: "ssh-agent-unconfirmed",
        severity: Severity::High,
        title: format!("an SSH agent holds {keys} key(s) and signs without asking"),
        location: format!("SSH_AUTH_SOCK={sock}"),
        why: "Any program you run can use the keys in this agent, silently, to log in or push anywhere they are accepted.".into(),
        fix: "Use `keepout agent` (it asks before every signature), or `keepout agent --upstream` in front of this one; or add keys with `ssh-add -c`.".into(),
        fix_command: Some(format!("keepout agent --upstream {sock}")),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_kinds() {
        assert_eq!(
            unencrypted("-----BEGIN RSA PRIVATE KEY-----\nabc\n"),
            Some(true)
        );
        assert_eq!(
            unencrypted("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"),
            Some(false)
        );
        assert_eq!(unencrypted("-----BEGIN PRIVATE KEY-----\n"), Some(true));
        assert_eq!(
            unencrypted("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
            Some(false)
        );
        assert_eq!(unencrypted("ssh-ed25519 AAAA"), None);
    }
}
