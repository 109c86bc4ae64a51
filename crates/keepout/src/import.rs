//! `keepout import netrc | git-credentials | pypirc | cargo | npmrc | gh`: plaintext credential
//! files into the vault.
//!
//! For each: parse, store every credential, read the vault back to verify the round trip, keep
//! the whole original file in the vault (`backup/KIND`), and only then, after a yes, remove the
//! file or rewrite it without the secrets, in a way the tool still works (git through
//! `keepout git-credential`, npm through `${NPM_TOKEN}` in .npmrc, twine, cargo and gh through
//! a scope or the credential provider). Nothing is removed unless everything was stored.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use keepout_vault::{name_part, Zeroizing};

use crate::cli::ImportKind;

/// One credential to store.
struct Entry {
    name: String,
    value: Zeroizing<String>,
    note: String,
}

/// What to do with the file once its credentials are in the vault.
enum Rewrite {
    Remove,
    Replace(Zeroizing<String>),
}

struct Plan {
    file: PathBuf,
    entries: Vec<Entry>,
    rewrite: Rewrite,
    advice: String,
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
}

/// `%XX` decoding, as git-credential-store writes user names and passwords.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn plan_netrc(text: &str, file: PathBuf) -> Plan {
    let mut entries = Vec::new();
    let mut tokens = text.split_whitespace().peekable();
    let (mut host, mut login, mut password): (Option<String>, Option<String>, Option<String>) =
        (None, None, None);
    let mut flush =
        |host: &mut Option<String>, login: &mut Option<String>, password: &mut Option<String>| {
            if let (Some(h), Some(p)) = (host.take(), password.take()) {
                let user = login.take().unwrap_or_else(|| "default".into());
                entries.push(Entry {
                    name: format!("git/{}/{}", name_part(&h), name_part(&user)),
                    value: Zeroizing::new(p),
                    note: format!("from ~/.netrc (login {user})"),
                });
            }
            *login = None;
        };
    while let Some(t) = tokens.next() {
        match t {
            "machine" => {
                flush(&mut host, &mut login, &mut password);
                host = tokens.next().map(str::to_string);
            }
            "default" => {
                flush(&mut host, &mut login, &mut password);
                host = Some("default".into());
            }
            "login" => login = tokens.next().map(str::to_string),
            "password" => password = tokens.next().map(str::to_string),
            "account" => {
                tokens.next();
            }
            "macdef" => {
                // A macro runs to the next blank line; whitespace splitting cannot see that, so
                // macros are skipped to the next `machine`.
                while tokens
                    .peek()
                    .is_some_and(|t| *t != "machine" && *t != "default")
                {
                    tokens.next();
                }
            }
            _ => {}
        }
    }
    flush(&mut host, &mut login, &mut password);
    Plan {
        file,
        entries,
        rewrite: Rewrite::Remove,
        advice: "git gets these through `git config --global credential.helper '!keepout git-credential'`; \
                 for curl or pip, put them in a scope and use `keepout exec`."
            .into(),
    }
}

fn plan_git_credentials(text: &str, file: PathBuf) -> Plan {
    let mut entries = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((_, rest)) = line.split_once("://") else {
            continue;
        };
        let Some((userinfo, hostpath)) = rest.rsplit_once('@') else {
            continue;
        };
        let Some((user, pass)) = userinfo.split_once(':') else {
            continue;
        };
        let host = hostpath.split('/').next().unwrap_or("");
        entries.push(Entry {
            name: format!(
                "git/{}/{}",
                name_part(host),
                name_part(&percent_decode(user))
            ),
            value: Zeroizing::new(percent_decode(pass)),
            note: "from ~/.git-credentials".into(),
        });
    }
    Plan {
        file,
        entries,
        rewrite: Rewrite::Remove,
        advice: "Use `git config --global credential.helper '!keepout git-credential'` instead of \
                 credential.helper=store."
            .into(),
    }
}

fn plan_pypirc(text: &str, file: PathBuf) -> Plan {
    let mut entries = Vec::new();
    let mut kept = String::new();
    let mut section = String::new();
    let mut user = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].to_string();
            user.clear();
        } else if let Some((k, v)) = t.split_once('=') {
            match k.trim() {
                "username" => user = v.trim().to_string(),
                "password" => {
                    entries.push(Entry {
                        name: format!("pypi/{}", name_part(&section)),
                        value: Zeroizing::new(v.trim().to_string()),
                        note: format!("from ~/.pypirc [{section}] username {user}"),
                    });
                    continue; // the password line is not kept
                }
                _ => {}
            }
        }
        kept.push_str(line);
        kept.push('\n');
    }
    Plan {
        file,
        entries,
        rewrite: Rewrite::Replace(Zeroizing::new(kept)),
        advice: "twine reads TWINE_PASSWORD: add it to a scope, e.g. \
                 env = { TWINE_USERNAME = \"__token__\", TWINE_PASSWORD = \"keepout:pypi/pypi\" }, \
                 and upload with `keepout exec -- twine upload dist/*`."
            .into(),
    }
}

fn plan_cargo(text: &str, file: PathBuf) -> Result<Plan> {
    let mut doc: toml::Table =
        toml::from_str(text).context("~/.cargo/credentials.toml is not valid TOML")?;
    let mut entries = Vec::new();
    if let Some(token) = doc
        .get_mut("registry")
        .and_then(|r| r.as_table_mut())
        .and_then(|r| r.remove("token"))
    {
        if let Some(t) = token.as_str() {
            entries.push(Entry {
                name: "cargo/crates-io".into(),
                value: Zeroizing::new(t.into()),
                note: "from cargo credentials".into(),
            });
        }
    }
    if let Some(regs) = doc.get_mut("registries").and_then(|r| r.as_table_mut()) {
        for (name, reg) in regs.iter_mut() {
            if let Some(t) = reg.as_table_mut().and_then(|r| r.remove("token")) {
                if let Some(t) = t.as_str() {
                    entries.push(Entry {
                        name: format!("cargo/{}", name_part(name)),
                        value: Zeroizing::new(t.into()),
                        note: "from cargo credentials".into(),
                    });
                }
            }
        }
    }
    let rest = toml::to_string(&doc).unwrap_or_default();
    let only_empty_tables = doc.values().all(|v| {
        v.as_table().is_some_and(|t| {
            t.values()
                .all(|v| v.as_table().is_some_and(|t| t.is_empty()))
                || t.is_empty()
        })
    });
    Ok(Plan {
        file,
        entries,
        rewrite: if only_empty_tables { Rewrite::Remove } else { Rewrite::Replace(Zeroizing::new(rest)) },
        advice: "In ~/.cargo/config.toml: [registry] global-credential-providers = [\"keepout cargo-credential\"]".into(),
    })
}

/// The environment variable a registry's token is read from after the rewrite.
fn npm_var(host: &str) -> String {
    if host == "registry.npmjs.org" {
        "NPM_TOKEN".into()
    } else {
        format!(
            "NPM_TOKEN_{}",
            host.to_ascii_uppercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        )
    }
}

fn plan_npmrc(text: &str, file: PathBuf) -> Plan {
    let mut entries = Vec::new();
    let mut kept = String::new();
    let mut vars = Vec::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            if key.trim().ends_with(":_authToken") && !value.trim().starts_with("${") {
                let host = key
                    .trim()
                    .trim_start_matches("//")
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_string();
                let var = npm_var(&host);
                entries.push(Entry {
                    name: format!("npm/{}", name_part(&host)),
                    value: Zeroizing::new(value.trim().to_string()),
                    note: format!("from ~/.npmrc; npm reads it from ${var}"),
                });
                kept.push_str(&format!("{}=${{{var}}}\n", key.trim()));
                vars.push(format!("{var} = \"keepout:npm/{}\"", name_part(&host)));
                continue;
            }
        }
        kept.push_str(line);
        kept.push('\n');
    }
    Plan {
        file,
        entries,
        rewrite: Rewrite::Replace(Zeroizing::new(kept)),
        advice: format!(
            ".npmrc now reads the token from the environment: add {} to a scope's env.",
            vars.join(", ")
        ),
    }
}

fn plan_gh(text: &str, file: PathBuf) -> Plan {
    let mut entries = Vec::new();
    let mut kept = String::new();
    let mut host = String::new();
    for line in text.lines() {
        if !line.starts_with(' ') && line.trim_end().ends_with(':') {
            host = line.trim_end().trim_end_matches(':').to_string();
        } else if let Some(v) = line.trim().strip_prefix("oauth_token:") {
            entries.push(Entry {
                name: format!("gh/{}", name_part(&host)),
                value: Zeroizing::new(v.trim().to_string()),
                note: "from gh hosts.yml".into(),
            });
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    Plan {
        file,
        entries,
        rewrite: Rewrite::Replace(Zeroizing::new(kept)),
        advice: "gh reads GH_TOKEN: add GH_TOKEN = \"keepout:gh/github.com\" to a scope's env."
            .into(),
    }
}

fn plan(kind: ImportKind, file: Option<PathBuf>) -> Result<(Plan, &'static str)> {
    let h = home();
    let (default, label) = match kind {
        ImportKind::Netrc => (h.join(".netrc"), "netrc"),
        ImportKind::GitCredentials => (h.join(".git-credentials"), "git-credentials"),
        ImportKind::Pypirc => (h.join(".pypirc"), "pypirc"),
        ImportKind::Cargo => (h.join(".cargo/credentials.toml"), "cargo"),
        ImportKind::Npmrc => (h.join(".npmrc"), "npmrc"),
        ImportKind::Gh => (h.join(".config/gh/hosts.yml"), "gh"),
    };
    let file = file.unwrap_or(default);
    let text = Zeroizing::new(
        std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?,
    );
    let plan = match kind {
        ImportKind::Netrc => plan_netrc(&text, file),
        ImportKind::GitCredentials => plan_git_credentials(&text, file),
        ImportKind::Pypirc => plan_pypirc(&text, file),
        ImportKind::Cargo => plan_cargo(&text, file)?,
        ImportKind::Npmrc => plan_npmrc(&text, file),
        ImportKind::Gh => plan_gh(&text, file),
    };
    Ok((plan, label))
}

/// Replace `file`'s content atomically, keeping its permissions.
fn rewrite_file(file: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    let perms = std::fs::metadata(file)?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".keepout-import-")
        .tempfile_in(dir)?;
    tmp.write_all(content.as_bytes())?;
    tmp.as_file().sync_all()?;
    std::fs::set_permissions(tmp.path(), perms)?;
    tmp.persist(file)?;
    Ok(())
}

pub fn import(kind: ImportKind, file: Option<PathBuf>, yes: bool, keep: bool) -> Result<i32> {
    let (plan, label) = plan(kind, file)?;
    if plan.entries.is_empty() {
        eprintln!("keepout: no credentials found in {}", plan.file.display());
        return Ok(0);
    }
    for e in &plan.entries {
        keepout_vault::check_name(&e.name)
            .with_context(|| format!("cannot name a secret for {}", e.note))?;
    }
    let original = Zeroizing::new(std::fs::read_to_string(&plan.file)?);
    let vault = crate::secret::vault();
    let pass = crate::secret::for_writing(&vault)?;
    let backup = format!("backup/{label}");
    vault.update(&pass, |doc| {
        for e in &plan.entries {
            doc.set(&e.name, e.value.clone(), Some(e.note.clone()))?;
        }
        doc.set(
            &backup,
            original.clone(),
            Some(format!("the whole of {}", plan.file.display())),
        )?;
        Ok(())
    })?;
    // Verify the round trip before touching the plaintext.
    let doc = vault.read(&pass)?;
    for e in &plan.entries {
        if *doc.get(&e.name)?.value != *e.value {
            bail!(
                "{} did not read back as stored; {} was left as it is",
                e.name,
                plan.file.display()
            );
        }
    }
    for e in &plan.entries {
        eprintln!("keepout: stored {} ({})", e.name, e.note);
    }
    eprintln!("keepout: the whole file is kept in the vault as {backup}");
    if keep {
        eprintln!("keepout: {} left as it is (--keep)", plan.file.display());
    } else {
        let action = match &plan.rewrite {
            Rewrite::Remove => format!(
                "Remove {} now that its credentials are in the vault?",
                plan.file.display()
            ),
            Rewrite::Replace(_) => format!("Rewrite {} without its secrets?", plan.file.display()),
        };
        if yes || keepout_prompt::confirm(&action)? {
            match &plan.rewrite {
                Rewrite::Remove => std::fs::remove_file(&plan.file)?,
                Rewrite::Replace(content) => rewrite_file(&plan.file, content)?,
            }
            eprintln!("keepout: done: {}", plan.file.display());
        } else {
            eprintln!("keepout: {} left as it is", plan.file.display());
        }
    }
    eprintln!("keepout: {}", plan.advice);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_entries() {
        let p = plan_netrc(
            "machine github.com login alice password ghp_1\nmachine pypi.org\n  login __token__\n  password pypi-2\nmacdef init\ncd /\n\ndefault login anon password x3\n",
            "n".into(),
        );
        let got: Vec<(String, String)> = p
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.value.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("git/github.com/alice".into(), "ghp_1".into()),
                ("git/pypi.org/__token__".into(), "pypi-2".into()),
                ("git/default/anon".into(), "x3".into())
            ]
        );
    }

    #[test]
    fn git_credentials_are_percent_decoded() {
        let p = plan_git_credentials("https://alice:p%40ss%2Fw@github.com\n", "g".into());
        assert_eq!(p.entries[0].name, "git/github.com/alice");
        assert_eq!(*p.entries[0].value, "p@ss/w");
    }

    #[test]
    fn npmrc_is_rewritten_to_an_environment_variable() {
        let p = plan_npmrc(
            "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_abc\n",
            "n".into(),
        );
        assert_eq!(*p.entries[0].value, "npm_abc");
        let Rewrite::Replace(text) = &p.rewrite else {
            panic!("rewritten")
        };
        assert!(
            text.contains("//registry.npmjs.org/:_authToken=${NPM_TOKEN}")
                && !text.contains("npm_abc")
        );
    }

    #[test]
    fn pypirc_and_gh_lose_only_their_secrets() {
        let p = plan_pypirc(
            "[distutils]\nindex-servers = pypi\n[pypi]\nusername = __token__\npassword = pypi-x\n",
            "p".into(),
        );
        assert_eq!(p.entries[0].name, "pypi/pypi");
        let Rewrite::Replace(text) = &p.rewrite else {
            panic!()
        };
        assert!(text.contains("username = __token__") && !text.contains("pypi-x"));
        let g = plan_gh(
            "github.com:\n    oauth_token: gho_x\n    user: alice\n",
            "h".into(),
        );
        assert_eq!(g.entries[0].name, "gh/github.com");
        let Rewrite::Replace(text) = &g.rewrite else {
            panic!()
        };
        assert!(text.contains("user: alice") && !text.contains("gho_x"));
    }

    #[test]
    fn cargo_tokens() {
        let p = plan_cargo(
            "[registry]\ntoken = \"cio1\"\n[registries.my-reg]\ntoken = \"t2\"\n",
            "c".into(),
        )
        .unwrap();
        let names: Vec<&str> = p.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["cargo/crates-io", "cargo/my-reg"]);
        assert!(
            matches!(p.rewrite, Rewrite::Remove),
            "nothing else in the file: removed"
        );
    }
}
