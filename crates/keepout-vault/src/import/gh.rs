//! gh's `hosts.yml`: each host's `oauth_token` becomes `gh/HOST`; the file is rewritten without
//! the token lines.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::plan::{Entry, Plan, Rewrite};
use crate::name_part;

pub(super) fn plan(text: &str, file: PathBuf) -> Plan {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gh_loses_only_its_tokens() {
        let g = plan(
            "github.com:\n    oauth_token: gho_x\n    user: alice\n",
            "h".into(),
        );
        assert_eq!(g.entries[0].name, "gh/github.com");
        let Rewrite::Replace(text) = &g.rewrite else {
            panic!()
        };
        assert!(text.contains("user: alice") && !text.contains("gho_x"));
    }
}
