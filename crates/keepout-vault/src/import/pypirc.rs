//! `~/.pypirc` (twine): each section's `password` becomes `pypi/SECTION`; the file is rewritten
//! without the password lines (the rest, user names included, stays).

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::plan::{Entry, Plan, Rewrite};
use crate::name_part;

pub(super) fn plan(text: &str, file: PathBuf) -> Plan {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pypirc_loses_only_its_passwords() {
        let p = plan(
            "[distutils]\nindex-servers = pypi\n[pypi]\nusername = __token__\npassword = pypi-x\n",
            "p".into(),
        );
        assert_eq!(p.entries[0].name, "pypi/pypi");
        let Rewrite::Replace(text) = &p.rewrite else {
            panic!()
        };
        assert!(text.contains("username = __token__") && !text.contains("pypi-x"));
    }
}
