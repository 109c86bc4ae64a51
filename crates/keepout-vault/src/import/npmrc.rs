//! `~/.npmrc`: each `//HOST/:_authToken=` becomes `npm/HOST`, and its line reads the token from
//! the environment instead (`${NPM_TOKEN}`, or `${NPM_TOKEN_HOST}` for another registry); a
//! line that already reads from the environment is left alone.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::plan::{Entry, Plan, Rewrite};
use crate::name_part;

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

pub(super) fn plan(text: &str, file: PathBuf) -> Plan {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npmrc_is_rewritten_to_an_environment_variable() {
        let p = plan(
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
    fn other_registries_get_their_own_variable() {
        assert_eq!(npm_var("registry.npmjs.org"), "NPM_TOKEN");
        assert_eq!(
            npm_var("npm.pkg.github.com"),
            "NPM_TOKEN_NPM_PKG_GITHUB_COM"
        );
        let p = plan(
            "//npm.pkg.github.com/:_authToken=ghp_x\n//r.org/:_authToken=${KEPT}\n",
            "n".into(),
        );
        assert_eq!(
            p.entries.len(),
            1,
            "a token already read from the environment is no secret"
        );
        assert_eq!(p.entries[0].name, "npm/npm.pkg.github.com");
    }
}
