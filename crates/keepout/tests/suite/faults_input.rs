//! Bad input loses nothing and reaches no panic (issue 14): real non-UTF-8 bytes in the working
//! directory's path, in the environment and in arguments, and a config.toml with a syntax error
//! or a misspelt table. Each case runs as root and as the plain user; each asserts keepout's own
//! exit status (125, never clap's 2 or a panic's 101), a message that says what is wrong and
//! what to do, and that nothing was left behind.
//!
//! The bytes are made by the runner's shell (`printf '\377'`): the harness passes only UTF-8
//! text, and the shell is the real way such bytes reach keepout.

use std::path::Path;

use super::harness::{keepout_bin, runners, write_file, Fixture, Output};

/// `sh -c script` as the runner, with `$K` the keepout binary and `$ODD` a directory under
/// the fixture whose name ends in the byte 0xff (made by the script when it uses it).
fn sh(fx: &Fixture, script: &str) -> Output {
    fx.outside(&format!(
        "K={bin}; ODD=\"$(printf '%s/odd-\\377' {root})\"; {script}",
        bin = keepout_bin(),
        root = fx.root.display(),
    ))
}

fn assert_no_panic(out: &Output) {
    assert!(
        !out.has("panicked") && out.code != Some(101),
        "keepout panicked:{out}"
    );
}

/// keepout's own failure: exit 125, no panic, and `needle` in what it said.
fn assert_refused(out: &Output, needle: &str) {
    assert_no_panic(out);
    assert_eq!(out.code, Some(125), "expected keepout's own exit 125:{out}");
    assert!(out.has(needle), "expected {needle:?} in the message:{out}");
}

fn reviews_left(home: &Path) -> Vec<String> {
    match std::fs::read_dir(home.join(".local/share/keepout/reviews")) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_non_utf8_working_directory_is_a_clear_error_and_leaves_no_review() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // --print-policy: TOML cannot hold the path; say so, and that the run itself works.
        let out = sh(
            &fx,
            "mkdir -p \"$ODD\" && cd \"$ODD\" && $K run --print-policy -- true",
        );
        assert_refused(&out, "is not UTF-8");
        assert!(out.has("odd-\u{fffd}"), "the path is named:{out}");
        let out = sh(
            &fx,
            "cd \"$ODD\" && $K run -- sh -c 'pwd >/dev/null; echo ran'",
        );
        assert!(
            out.success() && out.stdout.contains("ran"),
            "[{r}] a plain run in the directory works:{out}"
        );
        // --review: refused before anything is made (it used to panic after making
        // reviews/ID/{upper,work}).
        let out = sh(&fx, "cd \"$ODD\" && $K run --review -- true");
        assert_refused(&out, "--review");
        assert!(out.has("is not UTF-8"), "{out}");
        assert_eq!(
            reviews_left(&fx.home),
            Vec::<String>::new(),
            "[{r}] a refused --review leaves no review behind"
        );
    }
}

#[test]
fn audit_reads_an_environment_that_is_not_utf8() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // OLDPWD after `cd` into a non-UTF-8 directory: the everyday way such a value appears.
        let out = sh(
            &fx,
            "mkdir -p \"$ODD\" && cd \"$ODD\" && cd \"$OLDPWD\" && export OLDPWD=\"$ODD\" \
             && $K audit --home \"$HOME\"",
        );
        assert_no_panic(&out);
        assert!(
            matches!(out.code, Some(0..=3)),
            "[{r}] audit reports (its findings' status):{out}"
        );
        assert!(
            out.stdout.starts_with("keepout audit: "),
            "[{r}] the whole report is printed:{out}"
        );
    }
}

#[test]
fn env_values_and_arguments_that_are_not_utf8_say_so() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // --env NAME of a variable that is set, to bytes: not "not set".
        let out = sh(&fx, "FOO=\"$(printf 'a\\377')\" $K run --env FOO -- true");
        assert_refused(
            &out,
            "FOO is set in your environment, but its value is not UTF-8",
        );
        assert!(!out.has("not set"), "[{r}] FOO is set:{out}");

        // A locale variable that is not UTF-8 is not passed, and keepout says so once.
        let out = sh(
            &fx,
            "LANG=\"$(printf 'C.\\377')\" $K run -- sh -c 'echo \"LANG=${LANG-unset}\"'",
        );
        assert_no_panic(&out);
        assert!(out.success(), "[{r}] the run works:{out}");
        assert!(out.stdout.contains("LANG=unset"), "{out}");
        assert_eq!(
            out.stderr
                .matches("LANG is not passed into the sandbox: its value is not UTF-8")
                .count(),
            1,
            "[{r}] said once:{out}"
        );

        // A non-UTF-8 argument: keepout's 125 and which argument, not the parser's bare 2.
        let out = sh(&fx, "$K run -- ls \"$(printf 'a\\377b')\"");
        assert_refused(&out, "\"a\\xffb\" is not valid UTF-8");
        // Paths given to keepout's own options are taken as bytes.
        let write = fx.script(
            "write-odd.sh",
            &format!(
                "#!/bin/sh\necho x > \"$(printf '%s/odd-\\377' {})/f\"\n",
                fx.root.display()
            ),
        );
        let out = sh(
            &fx,
            &format!("mkdir -p \"$ODD\" && $K run --rw \"$ODD\" -- {write} && cat \"$ODD/f\""),
        );
        assert_no_panic(&out);
        assert!(
            out.success() && out.stdout.contains('x'),
            "[{r}] --rw ODD:{out}"
        );
    }
}

#[test]
fn config_errors_give_line_and_column_and_unknown_tables_are_named() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let config = fx.home.join(".config/keepout/config.toml");
        let write = |text: &str| {
            write_file(&config, text, 0o644);
            fx.give_to_runner(&fx.home.join(".config"));
        };

        write("[run]\nmemory = \"1G\"\n\n[[scope]]\nname = \"x\"\ndirs = [\"/tmp\"\n");
        for args in [&["run", "--", "true"][..], &["exec", "--", "true"]] {
            let out = fx.keepout(args);
            assert_no_panic(&out);
            assert!(!out.success(), "[{r}] {args:?}:{out}");
            assert!(
                out.has("config.toml:6:15: unclosed array")
                    && out.has("    dirs = [\"/tmp\"\n                  ^"),
                "[{r}] {args:?}: path:line:column, the line and a caret:{out}"
            );
        }

        // [[scopes]] for [[scope]]: named, with the known tables, not "no scope matches".
        write("[[scopes]]\nname = \"x\"\ndirs = [\"~\"]\nenv = { A = \"b\" }\n");
        for args in [&["run", "--", "true"][..], &["exec", "--", "true"]] {
            let out = fx.keepout(args);
            assert_no_panic(&out);
            assert!(
                !out.success(),
                "[{r}] {args:?}: a typo is not ignored:{out}"
            );
            assert!(
                out.has("config.toml:1:1: unknown top-level key \"scopes\"")
                    && out.has("[[scope]]")
                    && !out.has("no scope"),
                "[{r}] {args:?}:{out}"
            );
        }
        let out = fx.keepout(&["doctor"]);
        assert!(
            out.has("unknown top-level key \"scopes\""),
            "[{r}] doctor:{out}"
        );

        // A typo inside [run] (`memoryy`): named with the settings there, not ignored.
        write("[run]\nmemoryy = \"1G\"\n");
        let out = fx.keepout(&["run", "--", "true"]);
        assert_no_panic(&out);
        assert!(
            out.code == Some(125)
                && out.has("[run] has no setting memoryy")
                && out.has("toolchains, memory, disk-reserve"),
            "[{r}] a typo in [run] is said:{out}"
        );
    }
}
