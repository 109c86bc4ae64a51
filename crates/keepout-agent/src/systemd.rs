//! The systemd user unit that runs the agent (`keepout agent --systemd-unit`).
//!
//! Guarantees: `ExecStart=` names the given executable by the path it is given (the CLI gives
//! its own absolute, resolved path, so the unit works wherever keepout is installed), and every
//! word of it is quoted for systemd: `%` and `$` doubled, a word with anything but plain
//! characters in double quotes with `\` and `"` escaped; paths of the command line are made
//! absolute (the unit does not run where it was made).

use std::path::{Path, PathBuf};

use crate::Error;

/// Quote one word of an `ExecStart=` line: `%` and `$` doubled (systemd's specifiers and
/// variables), and the word in double quotes, with `\` and `"` escaped, when it holds anything
/// but plain characters.
pub fn quote_word(word: &str) -> String {
    let word = word.replace('%', "%%").replace('$', "$$");
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@".contains(&b))
    {
        return word;
    }
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The systemd user unit for the keepout binary `exe`, serving the agent on
/// `$XDG_RUNTIME_DIR/keepout/agent.sock` with these `--upstream` and `--known-hosts`.
pub fn unit(exe: &Path, upstream: Option<&Path>, known_hosts: &[PathBuf]) -> Result<String, Error> {
    let exe = exe.to_str().ok_or(Error::ExeNotUtf8)?;
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .map(|p| quote_word(&p.to_string_lossy()))
            .map_err(Error::Io)
    };
    let mut exec = vec![
        quote_word(exe),
        "agent".to_string(),
        "--socket".to_string(),
        "%t/keepout/agent.sock".to_string(),
    ];
    if let Some(up) = upstream {
        exec.push("--upstream".into());
        exec.push(absolute(up)?);
    }
    for k in known_hosts {
        exec.push("--known-hosts".into());
        exec.push(absolute(k)?);
    }
    Ok(format!(
        "# keepout agent as a systemd user service, made by `keepout agent --systemd-unit`.
#   keepout agent --systemd-unit > ~/.config/systemd/user/keepout-agent.service
#   systemctl --user daemon-reload && systemctl --user enable --now keepout-agent
#   echo 'export SSH_AUTH_SOCK=\"$XDG_RUNTIME_DIR/keepout/agent.sock\"' >> ~/.bashrc
# Questions go where the requester is: on the terminal ssh runs in, or to pinentry / SSH_ASKPASS
# on the requester's display. The policy is read again when the config file changes;
# `systemctl --user reload keepout-agent` (SIGHUP) does it at once. Moved or reinstalled
# keepout elsewhere? Make the unit again.
[Unit]
Description=keepout SSH agent (asks before every signature)

[Service]
ExecStart={}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
NoNewPrivileges=yes

[Install]
WantedBy=default.target
",
        exec.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_others_are_quoted() {
        assert_eq!(quote_word("/usr/bin/keepout"), "/usr/bin/keepout");
        assert_eq!(quote_word("a b"), "\"a b\"");
        assert_eq!(quote_word("100%"), "\"100%%\"");
        assert_eq!(quote_word("$HOME"), "\"$$HOME\"");
        assert_eq!(quote_word(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote_word(""), "\"\"");
    }

    #[test]
    fn the_unit_names_the_binary_and_its_options() {
        let unit = unit(
            Path::new("/opt/my tools/keepout"),
            Some(Path::new("/run/up.sock")),
            &[PathBuf::from("/etc/ssh/extra hosts")],
        )
        .unwrap();
        assert!(
            unit.contains(
                "\nExecStart=\"/opt/my tools/keepout\" agent --socket %t/keepout/agent.sock \
                 --upstream /run/up.sock --known-hosts \"/etc/ssh/extra hosts\"\n"
            ),
            "{unit}"
        );
        assert!(unit.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"));
        assert!(unit.ends_with("WantedBy=default.target\n"));
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let unit = unit(Path::new("/k"), None, &[PathBuf::from("known")]).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let expected = quote_word(&cwd.join("known").to_string_lossy());
        assert!(
            unit.contains(&format!("--known-hosts {expected}\n")),
            "{unit}"
        );
    }

    #[test]
    fn a_path_that_is_not_utf8_cannot_be_named() {
        use std::os::unix::ffi::OsStrExt;
        let exe = Path::new(std::ffi::OsStr::from_bytes(b"/opt/\xff/keepout"));
        assert!(matches!(unit(exe, None, &[]), Err(Error::ExeNotUtf8)));
    }
}
