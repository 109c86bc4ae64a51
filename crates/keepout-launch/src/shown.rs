//! Text from the sandbox made safe to print on the maintainer's terminal: file names the run
//! chose can hold escape sequences that erase or rewrite the lines keepout prints about them
//! (threat class A17). [`crate::report`] names paths and destinations through it, and so does
//! the CLI. Guarantee: what [`path`] returns has no C0 or C1 control character, no DEL and no
//! bidirectional control (U+202E and its kin, which reorder the rest of the line as it is
//! shown); each is shown as an escape (`\e`, `\n`, `\x7f`, `\u{9b}`, `\u{202e}`), and a
//! backslash as `\\`. The command line's own arguments that are not UTF-8 are named so too
//! ([`not_utf8_arguments`]).

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

/// What clap's bare "invalid UTF-8 was detected" means for this command line: which arguments,
/// shown with their bytes escaped, and what to do.
pub fn not_utf8_arguments(args: impl Iterator<Item = std::ffi::OsString>) -> String {
    let bad: Vec<String> = args
        .enumerate()
        .filter(|(_, a)| a.to_str().is_none())
        .map(|(i, a)| format!("argument {i} \"{}\"", escaped_bytes(a.as_encoded_bytes())))
        .collect();
    format!(
        "{} not valid UTF-8; keepout takes its arguments, and the command it runs, as UTF-8 text \
         only. Rename the file, or reach it through a glob or a script inside the sandbox \
         (keepout run -- sh -c 'ls ./*')",
        match bad.as_slice() {
            [one] => format!("{one} is"),
            _ => format!("{} are", bad.join(", ")),
        }
    )
}

/// `bytes` as printable text: its UTF-8 parts with controls escaped, every other byte as `\xNN`.
pub fn escaped_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&text(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
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

    #[test]
    fn arguments_not_utf8_are_named_with_their_bytes_escaped() {
        use std::os::unix::ffi::OsStringExt;
        let arg = |b: &[u8]| std::ffi::OsString::from_vec(b.to_vec());
        assert_eq!(escaped_bytes(b"caf\xe9\x1b"), "caf\\xe9\\e");
        let one = not_utf8_arguments([arg(b"keepout"), arg(b"run"), arg(b"f\xff")].into_iter());
        assert!(
            one.starts_with("argument 2 \"f\\xff\" is not valid UTF-8"),
            "{one}"
        );
        let two = not_utf8_arguments([arg(b"\xfe"), arg(b"ok"), arg(b"\xff")].into_iter());
        assert!(
            two.starts_with("argument 0 \"\\xfe\", argument 2 \"\\xff\" are"),
            "{two}"
        );
    }
}
