//! Credential files in plain text, each with the tool that wrote it and the way out.

use std::path::Path;

use crate::{read_small, token_scope, Context, Finding, Severity};

/// How to tell that a file holds a credential.
enum Holds {
    /// Any content at all.
    Anything,
    /// A line containing one of these (case-insensitive), whose value is not a `${VAR}`.
    AnyOf(&'static [&'static str]),
    /// docker: `"auth"` entries and no `credsStore`.
    DockerAuths,
}

struct Known {
    /// Relative to the home.
    path: &'static str,
    tool: &'static str,
    holds: Holds,
    fix: &'static str,
    fix_command: Option<&'static str>,
}

const KNOWN: &[Known] = &[
    Known { path: ".netrc", tool: "curl, git, pip and others (netrc)", holds: Holds::AnyOf(&["password"]), fix: "Move the passwords into the vault; git reads them through keepout's credential helper.", fix_command: Some("keepout import netrc") },
    Known { path: ".git-credentials", tool: "git (credential.helper=store)", holds: Holds::Anything, fix: "Move them into the vault and use keepout as git's credential helper.", fix_command: Some("keepout import git-credentials") },
    Known { path: ".pypirc", tool: "twine / setuptools", holds: Holds::AnyOf(&["password"]), fix: "Move the token into the vault; upload with `keepout exec -- twine upload`.", fix_command: Some("keepout import pypirc") },
    Known { path: ".npmrc", tool: "npm", holds: Holds::AnyOf(&["_authtoken", "_auth=", "_password"]), fix: "Move the token into the vault; .npmrc then reads ${NPM_TOKEN}, which `keepout exec` sets.", fix_command: Some("keepout import npmrc") },
    Known { path: ".yarnrc.yml", tool: "yarn", holds: Holds::AnyOf(&["npmauthtoken", "npmauthident"]), fix: "Use `npmAuthToken: \"${NPM_TOKEN}\"` and keep the token in the vault (keepout exec).", fix_command: None },
    Known { path: ".cargo/credentials.toml", tool: "cargo", holds: Holds::AnyOf(&["token"]), fix: "Move the tokens into the vault and use keepout as cargo's credential provider.", fix_command: Some("keepout import cargo") },
    Known { path: ".cargo/credentials", tool: "cargo (old name)", holds: Holds::AnyOf(&["token"]), fix: "Move the tokens into the vault and use keepout as cargo's credential provider.", fix_command: Some("keepout import cargo --file ~/.cargo/credentials") },
    Known { path: ".config/gh/hosts.yml", tool: "GitHub CLI (gh)", holds: Holds::AnyOf(&["oauth_token"]), fix: "Move the token into the vault; run gh through `keepout exec` (GH_TOKEN).", fix_command: Some("keepout import gh") },
    Known { path: ".docker/config.json", tool: "docker login", holds: Holds::DockerAuths, fix: "Use a credential store (`credsStore`, e.g. pass) instead of base64 passwords in the file.", fix_command: None },
    Known { path: ".aws/credentials", tool: "AWS CLI", holds: Holds::AnyOf(&["aws_secret_access_key", "aws_session_token"]), fix: "Use short-lived credentials (aws sso login) or `credential_process` backed by a vault.", fix_command: None },
    Known { path: ".kube/config", tool: "kubectl", holds: Holds::AnyOf(&["token:", "client-key-data", "password:"]), fix: "Use an exec credential plugin instead of tokens and keys in the file.", fix_command: None },
    Known { path: ".config/gcloud/credentials.db", tool: "gcloud", holds: Holds::Anything, fix: "Revoke unused accounts (gcloud auth revoke); prefer short-lived impersonation.", fix_command: None },
    Known { path: ".config/gcloud/access_tokens.db", tool: "gcloud", holds: Holds::Anything, fix: "Revoke unused accounts (gcloud auth revoke).", fix_command: None },
    Known { path: ".config/gcloud/application_default_credentials.json", tool: "gcloud (application default credentials)", holds: Holds::Anything, fix: "gcloud auth application-default revoke when not needed.", fix_command: None },
    Known { path: ".azure/accessTokens.json", tool: "Azure CLI", holds: Holds::Anything, fix: "az logout when not needed.", fix_command: None },
    Known { path: ".azure/msal_token_cache.json", tool: "Azure CLI", holds: Holds::Anything, fix: "az logout when not needed.", fix_command: None },
    Known { path: ".gem/credentials", tool: "RubyGems", holds: Holds::AnyOf(&["api_key"]), fix: "Keep the API key in the vault and publish through `keepout exec` (GEM_HOST_API_KEY).", fix_command: None },
    Known { path: ".m2/settings.xml", tool: "Maven", holds: Holds::AnyOf(&["<password>"]), fix: "Use ${env.VAR} in settings.xml and `keepout exec`, or Maven's password encryption.", fix_command: None },
    Known { path: ".gradle/gradle.properties", tool: "Gradle", holds: Holds::AnyOf(&["password", "token", "secret", "apikey", "api_key"]), fix: "Pass them as ORG_GRADLE_PROJECT_* variables through `keepout exec`.", fix_command: None },
    Known { path: ".pgpass", tool: "PostgreSQL (libpq)", holds: Holds::Anything, fix: "Keep the password in the vault and use PGPASSWORD through `keepout exec`.", fix_command: None },
    Known { path: ".my.cnf", tool: "MySQL client", holds: Holds::AnyOf(&["password"]), fix: "Use mysql_config_editor (obfuscated) or `keepout exec` with MYSQL_PWD.", fix_command: None },
    Known { path: ".terraform.d/credentials.tfrc.json", tool: "Terraform (terraform login)", holds: Holds::AnyOf(&["token"]), fix: "Use TF_TOKEN_<host> through `keepout exec` instead.", fix_command: None },
];

fn holds(text: &str, what: &Holds) -> bool {
    match what {
        Holds::Anything => !text.trim().is_empty(),
        Holds::AnyOf(keys) => text.lines().any(|line| {
            let l = line.trim().to_ascii_lowercase();
            !l.starts_with('#')
                && !l.starts_with(';')
                && keys.iter().any(|k| has_value_after(&l, k))
        }),
        Holds::DockerAuths => text.contains("\"auth\"") && !text.contains("\"credsStore\""),
    }
}

/// Whether `key` appears in `line` followed (after `=`, `:`, quotes, `>` or blanks) by a value
/// that is not a `${VAR}` placeholder.
fn has_value_after(line: &str, key: &str) -> bool {
    let Some(pos) = line.find(key) else {
        return false;
    };
    let rest = line[pos + key.len()..].trim_start_matches(['=', ':', ' ', '\t', '"', '\'', '>']);
    !rest.is_empty() && !rest.starts_with('<') && !rest.starts_with("${") && !rest.starts_with("$(")
}

pub fn check(ctx: &Context, out: &mut Vec<Finding>) {
    for k in KNOWN {
        let path = ctx.home.join(k.path);
        let binary = matches!(k.holds, Holds::Anything);
        // The text of a file found holding credentials ("" for binary ones), for its tokens' scopes.
        let found = if binary {
            std::fs::metadata(&path)
                .is_ok_and(|m| m.is_file() && m.len() > 0)
                .then(String::new)
        } else {
            read_small(&path).filter(|t| holds(t, &k.holds))
        };
        if let Some(text) = found {
            let mut title = format!("credentials in plain text, written by {}", k.tool);
            let mut why = "Any program you run (a test suite, a build script, an npm postinstall) can read this file and send it anywhere.".to_string();
            let mut fix = k.fix.to_string();
            let scopes = token_scope::scopes_in(&text);
            if !scopes.is_empty() {
                let labels: Vec<&str> = scopes.iter().map(|scope| scope.label.as_str()).collect();
                title = format!("{title}: {}", labels.join(", "));
                for scope in scopes.iter().rev() {
                    (why, fix) = scope.amend(&why, &fix);
                }
            }
            out.push(Finding {
                check: "plaintext-credentials",
                severity: Severity::High,
                title,
                location: ctx.show(&path),
                why,
                fix,
                fix_command: k.fix_command.map(str::to_string),
            });
        }
    }
    git_credential_store(ctx, out);
    if let Some(project) = &ctx.project {
        env_files(ctx, project, out);
    }
}

/// `credential.helper = store` in the global git config: git will write ~/.git-credentials.
fn git_credential_store(ctx: &Context, out: &mut Vec<Finding>) {
    for e in crate::global_git_config(ctx) {
        if e.section.starts_with("credential") && e.key == "helper" && e.value.starts_with("store")
        {
            out.push(Finding {
                check: "git-credential-store",
                severity: Severity::Medium,
                title: "git stores passwords in plain text (credential.helper = store)".into(),
                location: format!("{}:{}", ctx.show(&e.path), e.line),
                why: "Every password git is given is written to ~/.git-credentials, readable by any program you run.".into(),
                fix: "Use keepout as git's credential helper instead (and import what the store holds: keepout import git-credentials).".into(),
                fix_command: Some("git config --global credential.helper '!keepout git-credential'".into()),
            });
        }
    }
}

/// `.env`, `.env.*` files in the project (top level and one level down).
fn env_files(ctx: &Context, project: &Path, out: &mut Vec<Finding>) {
    let mut dirs = vec![project.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(project) {
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter(|e| e.file_name() != "node_modules" && e.file_name() != "target")
                .map(|e| e.path()),
        );
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_env = name == ".env"
                || (name.starts_with(".env.")
                    && !name.ends_with(".example")
                    && !name.ends_with(".sample")
                    && !name.ends_with(".template"));
            if !is_env {
                continue;
            }
            let Some(text) = read_small(&e.path()) else {
                continue;
            };
            let secrets = text
                .lines()
                .filter(|l| {
                    let l = l.trim();
                    !l.starts_with('#')
                        && l.split_once('=').is_some_and(|(_, v)| !v.trim().is_empty())
                })
                .count();
            if secrets > 0 {
                out.push(Finding {
                    check: "plaintext-credentials",
                    severity: Severity::Medium,
                    title: format!(".env file with {secrets} values"),
                    location: ctx.show(&e.path()),
                    why: "Values in .env files are often tokens and passwords; every tool run in the project can read them.".into(),
                    fix: "Keep the secrets in the vault and give them to the commands that need them with a keepout scope (`keepout exec`).".into(),
                    fix_command: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_values_not_placeholders() {
        assert!(holds(
            "machine h login a password p\n",
            &Holds::AnyOf(&["password"])
        ));
        assert!(!holds(
            "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
            &Holds::AnyOf(&["_authtoken"])
        ));
        assert!(holds(
            "//registry.npmjs.org/:_authToken=npm_x\n",
            &Holds::AnyOf(&["_authtoken"])
        ));
        assert!(!holds("# password = x\n", &Holds::AnyOf(&["password"])));
        assert!(holds(
            "<server><password>p</password></server>",
            &Holds::AnyOf(&["<password>"])
        ));
        assert!(!holds(
            "{\"auths\":{\"x\":{\"auth\":\"a\"}},\"credsStore\":\"pass\"}",
            &Holds::DockerAuths
        ));
    }
}
