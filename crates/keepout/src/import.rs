//! `keepout import netrc | git-credentials | pypirc | cargo | npmrc | gh`: plaintext credential
//! files into the vault.
//!
//! For each: parse, store every credential, read the vault back to verify the round trip, keep
//! the whole original file in the vault (`backup/KIND`), and only then, after a yes, remove the
//! file or rewrite it without the secrets, in a way the tool still works (git through
//! `keepout git-credential`, npm through `${NPM_TOKEN}` in .npmrc, twine, cargo and gh through
//! a scope or the credential provider). Nothing is removed unless everything was stored.
//!
//! A stored secret is never lost: a name holding the same value is left alone ("already
//! stored"); a name holding a different value keeps it, and the new value goes under the next
//! free name (`NAME-2`), unless the user answers otherwise on a terminal (keep both / replace /
//! keep the old one) or gives `--replace`. Each import's whole file is kept as `backup/KIND`,
//! `backup/KIND-2`, ... (the same content once), whatever was chosen.

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
    let advice = netrc_advice(entries.first().map(|e| e.name.as_str()));
    Plan {
        file,
        entries,
        rewrite: Rewrite::Remove,
        advice,
    }
}

/// How to keep git, curl and pip working once ~/.netrc is gone, for the secret `git/HOST/USER`
/// (the first login of the file).
fn netrc_advice(first: Option<&str>) -> String {
    let (host, user) = first
        .and_then(|n| n.strip_prefix("git/"))
        .and_then(|n| n.split_once('/'))
        .unwrap_or(("HOST", "USER"));
    let secret = format!("git/{host}/{user}");
    format!(
        "curl and pip read ~/.netrc: without it they no longer log in by themselves. \
         git gets these logins through `git config --global credential.helper '!keepout git-credential'`. \
         For curl and pip, give the password to the one command that needs it, through a scope \
         (~/.config/keepout/config.toml, see docs/vault.md):\n\
         \x20   [[scope]]\n\
         \x20   name = \"{host}\"\n\
         \x20   dirs = [\"~/src/*\"]\n\
         \x20   env = {{ NETRC_PASSWORD = \"keepout:{secret}\" }}\n\
         \x20 curl: keepout exec -- sh -c 'printf \"machine {host} login {user} password %s\\n\" \"$NETRC_PASSWORD\" | curl --netrc-file /dev/stdin https://{host}/...'\n\
         \x20 pip:  keepout exec -- sh -c 'PIP_INDEX_URL=\"https://{user}:$NETRC_PASSWORD@{host}/simple\" pip install PACKAGE'\n\
         (the password goes through a pipe or the environment, never an argument list; in a URL, \
         %-encode a password with `@`, `:` or `/`)"
    )
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

/// What to do when a name already holds a different value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Choice {
    /// Keep the stored value; store the new one under a new name (`NAME-2`, ...).
    NewName,
    /// Replace the stored value (only asked for, or `--replace`).
    Replace,
    /// Keep the stored value; do not store the new one (it stays in the backup).
    Keep,
}

/// Where one value went.
#[derive(Debug, PartialEq, Eq)]
enum Placed {
    /// Under its name, which was free.
    Stored(String),
    /// The same value was there already, under this name (`NAME` or `NAME-N`).
    Already(String),
    /// Under a new name: `taken` holds a different value, kept.
    Renamed { name: String, taken: String },
    /// The old value of this name was replaced.
    Replaced(String),
    /// Not stored: `taken` holds a different value, kept as the user chose.
    Kept(String),
}

impl Placed {
    /// The name that holds the new value, if it is in the vault.
    fn holder(&self) -> Option<&str> {
        match self {
            Placed::Stored(n) | Placed::Already(n) | Placed::Replaced(n) => Some(n),
            Placed::Renamed { name, .. } => Some(name),
            Placed::Kept(_) => None,
        }
    }
}

/// `name` is `base` or one of its numbered siblings `base-2`, `base-3`, ...
fn in_family(base: &str, name: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 2) && !n.starts_with('0'))
}

/// The first free sibling name of `base`: `base-2`, `base-3`, ...
fn free_name(doc: &keepout_vault::Document, base: &str) -> String {
    (2u32..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| doc.get(n).is_err())
        .expect("a free name exists")
}

/// Which name `value` goes under, without writing: never a silent replacement. `choose` is
/// asked only when `base` holds a different value and no sibling holds this one.
fn decide(
    doc: &keepout_vault::Document,
    base: &str,
    value: &str,
    choose: &mut dyn FnMut(&str, &str) -> Choice,
) -> Placed {
    let same = doc
        .list()
        .into_iter()
        .map(|i| i.name)
        .filter(|n| in_family(base, n))
        .find(|n| doc.get(n).is_ok_and(|s| *s.value == value));
    if let Some(name) = same {
        return Placed::Already(name);
    }
    if doc.get(base).is_err() {
        return Placed::Stored(base.to_string());
    }
    let new_name = free_name(doc, base);
    match choose(base, &new_name) {
        Choice::NewName => Placed::Renamed {
            name: new_name,
            taken: base.to_string(),
        },
        Choice::Replace => Placed::Replaced(base.to_string()),
        Choice::Keep => Placed::Kept(base.to_string()),
    }
}

/// Write what was decided (on an earlier read) into `doc`, under the lock. Whatever changed
/// meanwhile is decided again with the choice already made, so a value stored since is never
/// replaced unless the user chose to replace.
fn apply(
    doc: &mut keepout_vault::Document,
    base: &str,
    value: &Zeroizing<String>,
    note: &str,
    decided: &Placed,
) -> Result<Placed, keepout_vault::VaultError> {
    let choice = match decided {
        Placed::Replaced(_) => Choice::Replace,
        Placed::Kept(_) => Choice::Keep,
        _ => Choice::NewName,
    };
    let placed = decide(doc, base, value, &mut |_, _| choice);
    match &placed {
        Placed::Stored(n) | Placed::Replaced(n) | Placed::Renamed { name: n, .. } => {
            doc.set(n, value.clone(), Some(note.to_string()))?;
        }
        Placed::Already(_) | Placed::Kept(_) => {}
    }
    Ok(placed)
}

/// The question for a name that holds a different value, on the terminal: keep both (the new
/// one under a new name), replace, or keep the old one only.
fn ask_on_terminal(base: &str, new_name: &str) -> Choice {
    let both = format!(
        "{base} is already in the vault with a different value. Keep both, storing the new one as {new_name}?"
    );
    match keepout_prompt::confirm(&both) {
        Ok(true) => return Choice::NewName,
        Ok(false) => {}
        Err(_) => return Choice::NewName,
    }
    let replace = format!(
        "Replace the stored value of {base} with the new one (the old value is then gone)?"
    );
    match keepout_prompt::confirm(&replace) {
        Ok(true) => Choice::Replace,
        Ok(false) => Choice::Keep,
        Err(_) => Choice::NewName,
    }
}

/// What `--replace`, `--yes` and a terminal make of a name that holds a different value.
fn conflict_policy(replace: bool, yes: bool) -> impl FnMut(&str, &str) -> Choice {
    use std::io::IsTerminal;
    let interactive = !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    move |base, new_name| {
        if replace {
            Choice::Replace
        } else if interactive {
            ask_on_terminal(base, new_name)
        } else {
            Choice::NewName
        }
    }
}

fn report(placed: &Placed, note: &str, backup: &str) {
    match placed {
        Placed::Stored(n) => eprintln!("keepout: stored {n} ({note})"),
        Placed::Already(n) => eprintln!("keepout: {n} already stored (the same value; {note})"),
        Placed::Renamed { name, taken } => eprintln!(
            "keepout: {taken} already holds a different value, kept; the new one is stored as {name} ({note}). \
             `--replace` replaces instead; `keepout secret list` shows both"
        ),
        Placed::Replaced(n) => eprintln!("keepout: replaced {n} ({note})"),
        Placed::Kept(n) => eprintln!(
            "keepout: {n} kept as it was; the new value was not stored on its own (it is in {backup})"
        ),
    }
}

/// `keepout import KIND`. A stored secret is never lost: a name that holds the same value is
/// left alone, one that holds a different value keeps it (the new value goes under a new name,
/// `NAME-2`), unless the user answers otherwise on a terminal or gives `--replace`; each
/// import's whole file is kept as `backup/KIND`, `backup/KIND-2`, ... (the same content once).
pub fn import(
    kind: ImportKind,
    file: Option<PathBuf>,
    yes: bool,
    keep: bool,
    replace: bool,
) -> Result<i32> {
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
    let session = crate::secret::session();
    let opened = session.for_writing_with_document(&vault)?;
    let backup_base = format!("backup/{label}");
    let backup_note = format!("the whole of {}", plan.file.display());
    // Decide on what the vault holds now (the questions are asked here, with no lock held),
    // then write under the lock.
    let mut choose = conflict_policy(replace, yes);
    let decided: Vec<Placed> = plan
        .entries
        .iter()
        .map(|e| decide(opened.document(), &e.name, &e.value, &mut choose))
        .collect();
    let backup_decided = decide(
        &keepout_vault::Document::new(),
        &backup_base,
        "",
        &mut |_, _| Choice::NewName,
    );
    let ((placed, backup), pass) = session.update(&vault, opened, |doc| {
        let mut placed = Vec::new();
        for (e, d) in plan.entries.iter().zip(&decided) {
            placed.push(apply(doc, &e.name, &e.value, &e.note, d)?);
        }
        // The backup is never replaced: a different file goes under the next free name.
        let backup = apply(doc, &backup_base, &original, &backup_note, &backup_decided)?;
        Ok((placed, backup))
    })?;
    // Verify the round trip before touching the plaintext.
    let doc = session.read(&vault, &pass)?;
    let check = |name: &str, value: &str| -> Result<()> {
        if *doc.get(name)?.value != *value {
            bail!(
                "{name} did not read back as stored; {} was left as it is",
                plan.file.display()
            );
        }
        Ok(())
    };
    for (e, p) in plan.entries.iter().zip(&placed) {
        if let Some(name) = p.holder() {
            check(name, &e.value)?;
        }
    }
    let backup_name = backup.holder().unwrap_or(&backup_base).to_string();
    check(&backup_name, &original)?;
    drop(doc);
    for (e, p) in plan.entries.iter().zip(&placed) {
        report(p, &e.note, &backup_name);
    }
    match &backup {
        Placed::Already(n) => {
            eprintln!(
                "keepout: the whole file was already kept in the vault as {n} (the same content)"
            )
        }
        _ => eprintln!("keepout: the whole file is kept in the vault as {backup_name}"),
    }
    let kept_old = placed.iter().any(|p| matches!(p, Placed::Kept(_)));
    if keep {
        eprintln!("keepout: {} left as it is (--keep)", plan.file.display());
    } else if kept_old {
        // Some of the file's values are not in the vault on their own (the old ones were kept):
        // the file stays the only working copy of those, so it is not touched.
        eprintln!(
            "keepout: {} left as it is: some of its values were not stored on their own (you kept \
             the vault's); import it again with --replace to store them, or remove it yourself",
            plan.file.display()
        );
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

    #[test]
    fn a_stored_value_is_never_replaced_unless_chosen() {
        let mut doc = keepout_vault::Document::new();
        let v = |s: &str| Zeroizing::new(s.to_string());
        let mut never = |_: &str, _: &str| -> Choice { panic!("not asked") };
        assert_eq!(
            decide(&doc, "pypi/pypi", "one", &mut never),
            Placed::Stored("pypi/pypi".into())
        );
        apply(
            &mut doc,
            "pypi/pypi",
            &v("one"),
            "n",
            &Placed::Stored("pypi/pypi".into()),
        )
        .unwrap();
        assert_eq!(
            decide(&doc, "pypi/pypi", "one", &mut never),
            Placed::Already("pypi/pypi".into())
        );
        let renamed = decide(&doc, "pypi/pypi", "two", &mut |_, _| Choice::NewName);
        assert_eq!(
            renamed,
            Placed::Renamed {
                name: "pypi/pypi-2".into(),
                taken: "pypi/pypi".into()
            }
        );
        apply(&mut doc, "pypi/pypi", &v("two"), "n", &renamed).unwrap();
        assert_eq!(*doc.get("pypi/pypi").unwrap().value, "one");
        assert_eq!(*doc.get("pypi/pypi-2").unwrap().value, "two");
        // The second value again: already there, under its new name.
        assert_eq!(
            decide(&doc, "pypi/pypi", "two", &mut never),
            Placed::Already("pypi/pypi-2".into())
        );
        assert!(matches!(
            decide(&doc, "pypi/pypi", "three", &mut |_, n| {
                assert_eq!(n, "pypi/pypi-3");
                Choice::Keep
            }),
            Placed::Kept(_)
        ));
        let replaced = decide(&doc, "pypi/pypi", "three", &mut |_, _| Choice::Replace);
        apply(&mut doc, "pypi/pypi", &v("three"), "n", &replaced).unwrap();
        assert_eq!(*doc.get("pypi/pypi").unwrap().value, "three");
        assert!(!in_family("pypi/pypi", "pypi/pypix") && !in_family("pypi/pypi", "pypi/pypi-02"));
    }
}
