//! The command line as a shell user meets it: a listing piped into `head` ends quietly.

use super::harness::*;

/// Run `keepout ARGS` with its standard output a pipe whose reader is already gone (what
/// `| head -1` becomes once head has its line), as the fixture's runner. Returns (the exit
/// status as Python's subprocess gives it: negative for a signal, stderr).
fn with_closed_stdout(fx: &Fixture, args: &[&str]) -> (i32, String) {
    let script = format!(
        "{PYTHON} -c 'import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)
print(p.returncode)
sys.stdout.write(p.stderr.decode(errors=\"replace\"))' {} {}",
        keepout_bin(),
        args.join(" ")
    );
    let out = fx.outside(&script);
    assert!(out.success(), "the pipe helper ran:{out}");
    let (code, stderr) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
    (code.trim().parse().expect("a status"), stderr.to_string())
}

/// `keepout workspace list | head -1`, `keepout completions bash | head -1`, `keepout doctor |
/// head`, `keepout audit | head`: each stops at the closed pipe without a panic (SIGPIPE, as
/// `ls | head` does, or a clean exit), also with output larger than a pipe holds.
#[test]
fn listings_end_quietly_on_a_closed_pipe() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let home = fx.home.display().to_string();
        for args in [
            &["completions", "bash"][..],
            &["workspace", "list"],
            &["doctor"],
            &["audit", "--home", &home],
        ] {
            let (code, stderr) = with_closed_stdout(&fx, args);
            assert!(
                !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
                "[{r}] keepout {} into a closed pipe: status {code}, stderr:\n{stderr}",
                args.join(" ")
            );
            assert!(
                code == 0 || code == -13 || (args[0] == "audit" && code == 1),
                "[{r}] keepout {} into a closed pipe ends by SIGPIPE or cleanly, not {code}:\n{stderr}",
                args.join(" ")
            );
        }
    }
}

/// The packages one `apt-get install` line names (continuation lines joined), in order.
fn apt_packages(text: &str, after: &str) -> Vec<String> {
    let start = text.find(after).expect("the section") + after.len();
    let rest = &text[start..];
    let at = rest
        .find("apt-get install")
        .expect("an apt-get install line");
    let mut words = Vec::new();
    for line in rest[at..].lines() {
        let continued = line.trim_end().ends_with('\\');
        words.extend(
            line.trim_end()
                .trim_end_matches('\\')
                .split_whitespace()
                .map(str::to_string),
        );
        if !continued {
            break;
        }
    }
    let mut packages: Vec<String> = words
        .into_iter()
        .skip_while(|w| w != "install")
        .skip(1)
        .filter(|w| !w.starts_with('-') && !w.starts_with('>'))
        .collect();
    packages.sort();
    packages
}

/// The README's list of what the tests need is exactly what CI installs.
#[test]
fn the_readme_names_exactly_what_ci_installs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let documented = apt_packages(&readme, "## The two commands");
    let installed = apt_packages(&ci, "apt-get update");
    assert!(!installed.is_empty(), ".ci/run installs packages");
    assert_eq!(
        documented, installed,
        "README.md's apt-get line for the tests and .ci/run's must name the same packages"
    );
}

/// What bash offers after `words` (the last one being completed), through the script
/// `keepout completions bash` prints, sourced in a real bash that finds keepout on its PATH.
fn bash_offers(fx: &Fixture, words: &[&str]) -> Vec<String> {
    let bin_dir = std::path::Path::new(keepout_bin()).parent().unwrap();
    let words_q: Vec<String> = words.iter().map(q).collect();
    let script = format!(
        "export PATH={bin}:$PATH
. <(keepout completions bash) || exit 9
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE={line}
COMP_POINT=${{#COMP_LINE}}
COMP_TYPE=9
_clap_complete_keepout keepout {current} {previous}
printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin = q(bin_dir.display().to_string()),
        words = words_q.join(" "),
        cword = words.len() - 1,
        line = q(words.join(" ")),
        current = q(words[words.len() - 1]),
        previous = q(words[words.len() - 2]),
    );
    let out = run(
        fx.command(&["/bin/bash", "-c", &script]),
        format!("[{}] bash completion of {words:?}", fx.runner),
    );
    assert!(out.success(), "bash ran the completion:{out}");
    out.stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `keepout shell <TAB>` offers this user's workspaces, `--from <TAB>` its layers, `--net
/// py<TAB>` the preset pypi (also after a comma), through the real bash script and binary.
#[test]
fn completions_offer_workspaces_layers_and_presets() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let make = fx.keepout(&["shell", "compl-ws", "--new", "--", "true"]);
        assert!(make.success(), "[{r}] {make}");
        let snap = fx.keepout(&["workspace", "snapshot", "compl-ws", "compl-layer"]);
        assert!(snap.success(), "[{r}] {snap}");

        let shells = bash_offers(&fx, &["keepout", "shell", "compl"]);
        assert!(
            shells.iter().any(|c| c == "compl-ws"),
            "[{r}] keepout shell compl<TAB> offers the workspace: {shells:?}"
        );
        let layers = bash_offers(&fx, &["keepout", "try", "--from", ""]);
        assert!(
            layers.iter().any(|c| c == "compl-layer") && !layers.iter().any(|c| c == "compl-ws"),
            "[{r}] keepout try --from <TAB> offers the layer only: {layers:?}"
        );
        let net = bash_offers(&fx, &["keepout", "run", "--net", "py"]);
        assert!(
            net == ["pypi"],
            "[{r}] keepout run --net py<TAB> offers pypi: {net:?}"
        );
        let after_comma = bash_offers(&fx, &["keepout", "run", "--net", "pypi,cr"]);
        assert!(
            after_comma == ["pypi,crates"],
            "[{r}] keepout run --net pypi,cr<TAB> offers pypi,crates: {after_comma:?}"
        );
        let subcommands = bash_offers(&fx, &["keepout", "wor"]);
        assert!(
            subcommands == ["workspace"],
            "[{r}] keepout wor<TAB> offers workspace: {subcommands:?}"
        );
    }
}

/// keepout is linked with libgcc's unwinder archive instead of `libgcc_s`, a library less for
/// the loader at every start (`crates/keepout/build.rs`): the binary names no `libgcc_s` to
/// load, and a panic still unwinds (shown here in this test binary, which the build script
/// links the same way).
#[test]
fn panics_unwind_without_libgcc_s() {
    let binary = std::fs::read(keepout_bin()).expect("the keepout binary");
    assert!(
        !binary.windows(11).any(|w| w == b"libgcc_s.so"),
        "the binary still needs libgcc_s"
    );
    let caught = std::panic::catch_unwind(|| panic!("unwound through the static unwinder"));
    let message = caught.expect_err("the panic was caught");
    assert_eq!(
        message.downcast_ref::<&str>(),
        Some(&"unwound through the static unwinder")
    );
}
