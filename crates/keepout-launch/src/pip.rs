//! Whether a failed `pip install` met an externally managed Python (PEP 668), so that the
//! caller can say how to install into a virtual environment instead. Guarantee: only files are
//! looked at (PATH, pip's first line, `pyvenv.cfg`, the `EXTERNALLY-MANAGED` marker); nothing is
//! run.

use std::path::PathBuf;

/// When `command` is `pip install ...` (pip, pip3, pip3.N, or python -m pip) whose Python is
/// externally managed (PEP 668: an `EXTERNALLY-MANAGED` file in its standard library, and not a
/// virtual environment), that file. Only files are looked at; nothing is run.
pub fn externally_managed_pip(
    command: &[String],
    env: &std::collections::BTreeMap<String, String>,
) -> Option<PathBuf> {
    use std::path::Path;
    let (program, rest) = command.split_first()?;
    let name = Path::new(program).file_name()?.to_str()?;
    let is_python = |n: &str| {
        n.strip_prefix("python")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    let is_pip = |n: &str| {
        n.strip_prefix("pip")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    let args: &[String] = if is_pip(name) {
        rest
    } else if is_python(name) && rest.len() >= 2 && rest[0] == "-m" && rest[1] == "pip" {
        &rest[2..]
    } else {
        return None;
    };
    if args.first().map(String::as_str) != Some("install") {
        return None;
    }
    let found = |p: &str| -> Option<PathBuf> {
        if p.contains('/') {
            return Some(PathBuf::from(p));
        }
        env.get("PATH")?
            .split(':')
            .map(|d| Path::new(d).join(p))
            .find(|c| c.is_file())
    };
    let program = found(program)?;
    let python = if is_pip(name) {
        // pip's first line: #!/usr/bin/python3
        let text = std::fs::read(&program).ok()?;
        let first = text.split(|b| *b == b'\n').next()?;
        let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?;
        PathBuf::from(line.split_whitespace().next()?)
    } else {
        program
    };
    // A virtual environment's Python (bin/python beside ../pyvenv.cfg) is never managed.
    if python
        .parent()
        .and_then(Path::parent)
        .is_some_and(|venv| venv.join("pyvenv.cfg").exists())
    {
        return None;
    }
    let real = std::fs::canonicalize(&python).ok()?;
    let version = real
        .file_name()?
        .to_str()?
        .strip_prefix("python")?
        .to_string();
    let prefix = real.parent()?.parent()?;
    let marker = prefix
        .join("lib")
        .join(format!("python{version}"))
        .join("EXTERNALLY-MANAGED");
    marker.exists().then_some(marker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// A fake prefix: bin/python3 -> python3.12, bin/pip (#!PREFIX/bin/python3), and
    /// lib/python3.12/EXTERNALLY-MANAGED when `managed`.
    fn prefix(root: &Path, managed: bool) -> PathBuf {
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python3.12"), "").unwrap();
        std::os::unix::fs::symlink("python3.12", bin.join("python3")).unwrap();
        std::fs::write(
            bin.join("pip"),
            format!("#!{}/python3\nimport pip\n", bin.display()),
        )
        .unwrap();
        let lib = root.join("lib/python3.12");
        std::fs::create_dir_all(&lib).unwrap();
        if managed {
            std::fs::write(lib.join("EXTERNALLY-MANAGED"), "[externally-managed]\n").unwrap();
        }
        bin
    }

    fn env(path: &Path) -> BTreeMap<String, String> {
        BTreeMap::from([("PATH".to_string(), path.display().to_string())])
    }

    fn cmd(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn pip_install_into_a_managed_python_finds_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let bin = prefix(dir.path(), true);
        let marker = std::fs::canonicalize(dir.path())
            .unwrap()
            .join("lib/python3.12/EXTERNALLY-MANAGED");
        let env = env(&bin);
        assert_eq!(
            externally_managed_pip(&cmd(&["pip", "install", "x"]), &env),
            Some(marker.clone())
        );
        assert_eq!(
            externally_managed_pip(&cmd(&["python3", "-m", "pip", "install", "x"]), &env),
            Some(marker)
        );
    }

    #[test]
    fn anything_else_is_not_said() {
        let dir = tempfile::tempdir().unwrap();
        let bin = prefix(dir.path(), true);
        let env = env(&bin);
        assert_eq!(externally_managed_pip(&cmd(&["pip", "list"]), &env), None);
        assert_eq!(
            externally_managed_pip(&cmd(&["python3", "x.py"]), &env),
            None
        );
        assert_eq!(
            externally_managed_pip(&cmd(&["pipx", "install", "x"]), &env),
            None
        );
        assert_eq!(externally_managed_pip(&[], &env), None);
        // Not on PATH.
        assert_eq!(
            externally_managed_pip(&cmd(&["pip", "install", "x"]), &BTreeMap::new()),
            None
        );
    }

    #[test]
    fn an_unmanaged_python_or_a_venv_is_not_said() {
        let plain = tempfile::tempdir().unwrap();
        let bin = prefix(plain.path(), false);
        assert_eq!(
            externally_managed_pip(&cmd(&["pip", "install", "x"]), &env(&bin)),
            None
        );
        let venv = tempfile::tempdir().unwrap();
        let bin = prefix(venv.path(), true);
        std::fs::write(venv.path().join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        assert_eq!(
            externally_managed_pip(&cmd(&["pip", "install", "x"]), &env(&bin)),
            None
        );
    }
}
