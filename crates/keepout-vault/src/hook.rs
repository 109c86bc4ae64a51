//! The shell side of `kvars` (`keepout hook bash|zsh|fish`, `keepout hook-env`): shell
//! functions in the style of opvars / unopvars, and the code that sets a scope's variables.
//!
//! `kvars [DURATION]` exports the current directory's scope into the shell, for DURATION
//! (default 10m); `unkvars` removes them; a prompt hook removes them when they expire or when the
//! shell leaves the scope's directory. Guarantees: the values reach the shell through a pipe into
//! `eval` (the functions of [`script`] read them from `keepout hook-env`'s output), never a file;
//! every value is quoted for its shell ([`quote`]: quotes, newlines and `$` arrive as they are);
//! the code built here is held in memory that is zeroed on drop. (Every command the shell starts
//! meanwhile sees them: that is what kvars is for; `keepout run` still strips them from the
//! sandbox.)

use std::time::{Duration, SystemTime, SystemTimeError, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::release::ScopeValues;
use crate::VaultError;

/// A shell `kvars` works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

const BASH: &str = r#"# keepout shell hook (bash): kvars [DURATION] / unkvars
kvars() {
    local out
    out="$(command keepout hook-env --shell bash ${1:+--ttl "$1"})" || return
    eval "$out"
}
unkvars() {
    local v
    for v in ${KEEPOUT_KVARS-}; do unset "$v"; done
    unset KEEPOUT_KVARS KEEPOUT_KVARS_EXPIRES KEEPOUT_KVARS_ROOT KEEPOUT_KVARS_SCOPE
}
_keepout_prompt() {
    [ -n "${KEEPOUT_KVARS_EXPIRES-}" ] || return 0
    if [ "$(date +%s)" -ge "$KEEPOUT_KVARS_EXPIRES" ]; then
        echo "keepout: the variables of scope $KEEPOUT_KVARS_SCOPE expired and were removed" >&2
        unkvars
        return 0
    fi
    case "$PWD/" in
        "$KEEPOUT_KVARS_ROOT"/*) ;;
        *) echo "keepout: left $KEEPOUT_KVARS_ROOT: the variables of scope $KEEPOUT_KVARS_SCOPE were removed" >&2
           unkvars ;;
    esac
}
case ";${PROMPT_COMMAND-};" in
    *";_keepout_prompt;"*) ;;
    *) PROMPT_COMMAND="_keepout_prompt${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
esac
"#;

const ZSH: &str = r#"# keepout shell hook (zsh): kvars [DURATION] / unkvars
kvars() {
    local out
    out="$(command keepout hook-env --shell zsh ${1:+--ttl} ${1:+"$1"})" || return
    eval "$out"
}
unkvars() {
    local v
    for v in ${=KEEPOUT_KVARS-}; do unset "$v"; done
    unset KEEPOUT_KVARS KEEPOUT_KVARS_EXPIRES KEEPOUT_KVARS_ROOT KEEPOUT_KVARS_SCOPE
}
_keepout_prompt() {
    [[ -n "${KEEPOUT_KVARS_EXPIRES-}" ]] || return 0
    if (( $(date +%s) >= KEEPOUT_KVARS_EXPIRES )); then
        print -u2 "keepout: the variables of scope $KEEPOUT_KVARS_SCOPE expired and were removed"
        unkvars
        return 0
    fi
    case "$PWD/" in
        "$KEEPOUT_KVARS_ROOT"/*) ;;
        *) print -u2 "keepout: left $KEEPOUT_KVARS_ROOT: the variables of scope $KEEPOUT_KVARS_SCOPE were removed"
           unkvars ;;
    esac
}
autoload -Uz add-zsh-hook
add-zsh-hook precmd _keepout_prompt
"#;

const FISH: &str = r#"# keepout shell hook (fish): kvars [DURATION] / unkvars
function kvars
    set -l ttl
    if set -q argv[1]
        set ttl --ttl $argv[1]
    end
    set -l out (command keepout hook-env --shell fish $ttl | string collect); or return
    eval $out
end
function unkvars
    if set -q KEEPOUT_KVARS
        for v in (string split ' ' -- $KEEPOUT_KVARS)
            set -e $v
        end
    end
    set -e KEEPOUT_KVARS KEEPOUT_KVARS_EXPIRES KEEPOUT_KVARS_ROOT KEEPOUT_KVARS_SCOPE
end
function _keepout_prompt --on-event fish_prompt
    set -q KEEPOUT_KVARS_EXPIRES; or return 0
    if test (date +%s) -ge $KEEPOUT_KVARS_EXPIRES
        echo "keepout: the variables of scope $KEEPOUT_KVARS_SCOPE expired and were removed" >&2
        unkvars
        return 0
    end
    switch "$PWD/"
        case "$KEEPOUT_KVARS_ROOT/*"
        case '*'
            echo "keepout: left $KEEPOUT_KVARS_ROOT: the variables of scope $KEEPOUT_KVARS_SCOPE were removed" >&2
            unkvars
    end
end
"#;

/// The functions `kvars`, `unkvars` and the prompt hook, for `shell`.
pub fn script(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    }
}

/// Quote for bash, zsh (single quotes) or fish (single quotes with backslash escapes).
pub fn quote(shell: Shell, value: &str) -> String {
    match shell {
        Shell::Bash | Shell::Zsh => format!("'{}'", value.replace('\'', r"'\''")),
        Shell::Fish => format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'")),
    }
}

/// How long `kvars` sets the variables for: `text` (`30s`, `10m`, `1h`: a bare number is an
/// error that says so), by default 10 minutes.
pub fn ttl(text: Option<&str>) -> Result<Duration, VaultError> {
    crate::parse_duration(text.unwrap_or("10m")).map_err(VaultError::BadDuration)
}

/// What `keepout hook-env` prints for `shell` (the code that sets the scope's variables, set at
/// `now`, for `ttl`), and the line it says about them.
pub fn env(
    shell: Shell,
    resolved: &ScopeValues,
    ttl: Duration,
    now: SystemTime,
) -> Result<(Zeroizing<String>, String), VaultError> {
    let code = exports(shell, resolved, expires_at(now, ttl)?);
    let said = format!(
        "keepout: {} set for {} (scope {}); `unkvars` removes them",
        resolved.names().join(", "),
        crate::format_duration(ttl),
        resolved.scope
    );
    Ok((code, said))
}

/// When variables set at `now` for `ttl` expire, in seconds since 1970.
pub fn expires_at(now: SystemTime, ttl: Duration) -> Result<u64, SystemTimeError> {
    Ok((now + ttl).duration_since(UNIX_EPOCH)?.as_secs())
}

/// The code for `shell` to evaluate: it exports the scope's variables, and the list of their
/// names, their expiry (`expires`, seconds since 1970), the scope's directory and name that
/// `unkvars` and the prompt hook go by.
pub fn exports(shell: Shell, resolved: &ScopeValues, expires: u64) -> Zeroizing<String> {
    let set = |name: &str, value: &str| match shell {
        Shell::Bash | Shell::Zsh => format!("export {name}={};\n", quote(shell, value)),
        Shell::Fish => format!("set -gx {name} {};\n", quote(shell, value)),
    };
    let mut out = Zeroizing::new(String::new());
    for v in &resolved.values {
        out.push_str(&Zeroizing::new(set(&v.name, &v.value)));
    }
    out.push_str(&set("KEEPOUT_KVARS", &resolved.names().join(" ")));
    out.push_str(&set("KEEPOUT_KVARS_EXPIRES", &expires.to_string()));
    out.push_str(&set(
        "KEEPOUT_KVARS_ROOT",
        &resolved.root.display().to_string(),
    ));
    out.push_str(&set("KEEPOUT_KVARS_SCOPE", &resolved.scope));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resolved;

    fn values(pairs: &[(&str, &str)]) -> ScopeValues {
        ScopeValues {
            scope: "proj".into(),
            root: "/home/u/src/proj".into(),
            values: pairs
                .iter()
                .map(|(name, value)| Resolved {
                    name: name.to_string(),
                    value: Zeroizing::new(value.to_string()),
                    secret: true,
                })
                .collect(),
        }
    }

    #[test]
    fn durations_need_a_unit_and_ten_minutes_is_the_default() {
        assert_eq!(ttl(Some("30s")).unwrap().as_secs(), 30);
        assert_eq!(ttl(Some("2h")).unwrap().as_secs(), 7200);
        assert_eq!(ttl(None).unwrap().as_secs(), 600);
        for bad in ["5", "0m", "x", "5d"] {
            let e = ttl(Some(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 125, "{bad}: {e}");
        }
        assert_eq!(
            ttl(Some("5")).unwrap_err().to_string(),
            "5 what? write 5s, 5m or 5h"
        );
    }

    #[test]
    fn hook_env_says_what_it_set_and_for_how_long() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let (code, said) = env(
            Shell::Bash,
            &values(&[("A", "1")]),
            Duration::from_secs(90),
            now,
        )
        .unwrap();
        assert!(
            code.contains("export KEEPOUT_KVARS_EXPIRES='1090';\n"),
            "{}",
            *code
        );
        assert_eq!(
            said,
            "keepout: A set for 1m 30s (scope proj); `unkvars` removes them"
        );
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote(Shell::Bash, "a'b"), r"'a'\''b'");
        assert_eq!(quote(Shell::Fish, r"a'b\c"), r"'a\'b\\c'");
    }

    #[test]
    fn newlines_and_dollars_stay_inside_the_quotes() {
        for shell in [Shell::Bash, Shell::Zsh] {
            assert_eq!(quote(shell, "a\n$HOME `x`"), "'a\n$HOME `x`'");
        }
        assert_eq!(quote(Shell::Fish, "a\n$HOME"), "'a\n$HOME'");
    }

    #[test]
    fn each_shell_gets_its_own_functions() {
        let bash = script(Shell::Bash);
        assert!(bash.starts_with("# keepout shell hook (bash)"));
        assert!(bash.contains("keepout hook-env --shell bash"));
        assert!(bash.contains("PROMPT_COMMAND=\"_keepout_prompt"));
        let zsh = script(Shell::Zsh);
        assert!(zsh.contains("keepout hook-env --shell zsh"));
        assert!(zsh.contains("add-zsh-hook precmd _keepout_prompt"));
        let fish = script(Shell::Fish);
        assert!(fish.contains("keepout hook-env --shell fish"));
        assert!(fish.contains("function _keepout_prompt --on-event fish_prompt"));
        for s in [bash, zsh, fish] {
            assert!(s.contains("unkvars"));
            assert!(s.contains("KEEPOUT_KVARS_EXPIRES"));
        }
    }

    #[test]
    fn exports_set_the_values_and_what_unkvars_needs() {
        let resolved = values(&[("TOKEN", "it's\n$x"), ("USER_NAME", "u")]);
        assert_eq!(
            exports(Shell::Bash, &resolved, 1_700_000_600).as_str(),
            "export TOKEN='it'\\''s\n$x';\n\
             export USER_NAME='u';\n\
             export KEEPOUT_KVARS='TOKEN USER_NAME';\n\
             export KEEPOUT_KVARS_EXPIRES='1700000600';\n\
             export KEEPOUT_KVARS_ROOT='/home/u/src/proj';\n\
             export KEEPOUT_KVARS_SCOPE='proj';\n"
        );
        assert_eq!(
            exports(Shell::Fish, &resolved, 7).as_str(),
            "set -gx TOKEN 'it\\'s\n$x';\n\
             set -gx USER_NAME 'u';\n\
             set -gx KEEPOUT_KVARS 'TOKEN USER_NAME';\n\
             set -gx KEEPOUT_KVARS_EXPIRES '7';\n\
             set -gx KEEPOUT_KVARS_ROOT '/home/u/src/proj';\n\
             set -gx KEEPOUT_KVARS_SCOPE 'proj';\n"
        );
    }

    #[test]
    fn the_expiry_is_now_and_the_duration() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(expires_at(now, Duration::from_secs(600)).unwrap(), 1_600);
    }
}
