//! Text from the sandbox made safe to print on the maintainer's terminal: file names the run
//! chose can hold escape sequences that erase or rewrite the lines keepout prints about them
//! (threat class A17). [`crate::report`] names paths and destinations through it, and so does
//! the CLI. Guarantee: what [`path`] returns has no C0 or C1 control character, no DEL and no
//! bidirectional control (U+202E and its kin, which reorder the rest of the line as it is
//! shown); each is shown as an escape (`\e`, `\n`, `\x7f`, `\u{9b}`, `\u{202e}`), and a
//! backslash as `\\`.

use std::path::Path;

/// `p` as printable text (lossy UTF-8, controls escaped).
pub fn path(p: &Path) -> String {
    text(&p.to_string_lossy())
}

/// `s` with its control characters escaped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\x1b' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (0x80..0xa0).contains(&(c as u32)) || keepout_prompt::reorders_text(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(text("a\x1b[2Kb"), "a\\e[2Kb");
        assert_eq!(text("x\ny\rz\x7f\u{9b}"), "x\\ny\\rz\\x7f\\u{9b}");
        assert_eq!(text("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(text("plain/é.txt"), "plain/é.txt");
        assert_eq!(text("a\\b"), "a\\\\b");
    }
}
