//! `keepout hook bash|zsh|fish`: shell functions in the style of opvars / unopvars.
//!
//! `kvars [DURATION]` exports the current directory's scope into the shell, for DURATION
//! (default 10m); `unkvars` removes them; a prompt hook removes them when they expire or when the
//! shell leaves the scope's directory. The values reach the shell through a pipe into `eval`,
//! never a file. (Every command the shell starts meanwhile sees them: that is what kvars is for;
//! `keepout run` still strips them from the sandbox.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use crate::cli::{HookEnvArgs, Shell};

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

pub fn hook(shell: Shell) -> Result<i32> {
    print!(
        "{}",
        match shell {
            Shell::Bash => BASH,
            Shell::Zsh => ZSH,
            Shell::Fish => FISH,
        }
    );
    Ok(0)
}

/// `30s`, `10m`, `1h`: a number and its unit (a bare number is an error that says so).
pub fn parse_duration(text: &str) -> Result<Duration> {
    keepout_vault::parse_duration(text).map_err(|e| anyhow::anyhow!(e))
}

/// Quote for bash, zsh (single quotes) or fish (single quotes with backslash escapes).
fn quote(shell: Shell, value: &str) -> String {
    match shell {
        Shell::Bash | Shell::Zsh => format!("'{}'", value.replace('\'', r"'\''")),
        Shell::Fish => format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'")),
    }
}

/// `keepout hook-env`: the shell code that sets the scope's variables (used by `kvars`).
pub fn hook_env(args: HookEnvArgs) -> Result<i32> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        bail!("`keepout hook-env` prints secrets for the kvars function to evaluate; it will not print them on a terminal (use kvars, from `keepout hook SHELL`)");
    }
    let ttl = parse_duration(args.ttl.as_deref().unwrap_or("10m"))?;
    let resolved = crate::exec::scope_values(args.scope.as_deref(), "this shell (kvars)")?;
    let expires = (SystemTime::now() + ttl)
        .duration_since(UNIX_EPOCH)?
        .as_secs();
    let set = |name: &str, value: &str| match args.shell {
        Shell::Bash | Shell::Zsh => format!("export {name}={};\n", quote(args.shell, value)),
        Shell::Fish => format!("set -gx {name} {};\n", quote(args.shell, value)),
    };
    let mut out = String::new();
    let names: Vec<&str> = resolved.values.iter().map(|v| v.name.as_str()).collect();
    for v in &resolved.values {
        out.push_str(&set(&v.name, &v.value));
    }
    out.push_str(&set("KEEPOUT_KVARS", &names.join(" ")));
    out.push_str(&set("KEEPOUT_KVARS_EXPIRES", &expires.to_string()));
    out.push_str(&set(
        "KEEPOUT_KVARS_ROOT",
        &resolved.root.display().to_string(),
    ));
    out.push_str(&set("KEEPOUT_KVARS_SCOPE", &resolved.scope));
    print!("{out}");
    eprintln!(
        "keepout: {} set for {} (scope {}); `unkvars` removes them",
        names.join(", "),
        keepout_vault::format_duration(ttl),
        resolved.scope
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert!(
            parse_duration("5").is_err()
                && parse_duration("0m").is_err()
                && parse_duration("x").is_err()
                && parse_duration("5d").is_err()
        );
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote(Shell::Bash, "a'b"), r"'a'\''b'");
        assert_eq!(quote(Shell::Fish, r"a'b\c"), r"'a\'b\\c'");
    }
}
