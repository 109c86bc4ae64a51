//! Finding the program a command names, as a shell does, before anything is released to it.
//!
//! Guarantees: a name with a `/` is taken as it is; any other is the first executable file of
//! that name in a directory of PATH (an empty entry is the current directory), as `execvp`
//! finds it; a program that cannot be run says why with the shell's exit status for it (127 not
//! found, 126 found but not executable).

use std::path::{Path, PathBuf};

/// Why a command cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum NotRunnable {
    /// A path (a name with a `/`) where there is no file.
    #[error("{0}: no such file")]
    NoSuchFile(String),
    /// No file of that name in any directory of PATH.
    #[error("{program}: command not found (PATH={path})")]
    NotFound { program: String, path: String },
    #[error("{}: is a directory, not a command", .0.display())]
    Directory(PathBuf),
    #[error(
        "{}: permission denied: the file is not executable (chmod +x it, or name its interpreter, e.g. `sh {}`)",
        .0.display(),
        .0.display()
    )]
    NotExecutable(PathBuf),
}

impl NotRunnable {
    /// The shell's exit status for it: 127 not found, 126 not executable.
    pub fn exit_code(&self) -> i32 {
        match self {
            NotRunnable::NoSuchFile(_) | NotRunnable::NotFound { .. } => 127,
            NotRunnable::Directory(_) | NotRunnable::NotExecutable(_) => 126,
        }
    }
}

/// The shell's exit status when starting a found program failed anyway (`execve`'s error):
/// 127 it is gone, 126 any other reason.
pub fn exec_failure_status(e: &std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

fn is_executable_file(path: &Path) -> bool {
    path.is_file() && rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

fn not_executable(path: &Path) -> NotRunnable {
    if path.is_dir() {
        NotRunnable::Directory(path.to_path_buf())
    } else {
        NotRunnable::NotExecutable(path.to_path_buf())
    }
}

/// Find `program` as `execvp` would, on the search path `path` (the value of `PATH`).
pub fn find_program(program: &str, path: &str) -> Result<PathBuf, NotRunnable> {
    if program.contains('/') {
        let file = PathBuf::from(program);
        if is_executable_file(&file) {
            return Ok(file);
        }
        if file.exists() {
            return Err(not_executable(&file));
        }
        return Err(NotRunnable::NoSuchFile(program.to_string()));
    }
    let mut found_unexecutable = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if is_executable_file(&candidate) {
            return Ok(candidate);
        }
        if candidate.is_file() && found_unexecutable.is_none() {
            found_unexecutable = Some(candidate);
        }
    }
    match found_unexecutable {
        Some(file) => Err(not_executable(&file)),
        None => Err(NotRunnable::NotFound {
            program: program.to_string(),
            path: path.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_failed_exec_exits_as_a_shell_says_it() {
        let e = |kind| std::io::Error::from(kind);
        assert_eq!(exec_failure_status(&e(std::io::ErrorKind::NotFound)), 127);
        assert_eq!(
            exec_failure_status(&e(std::io::ErrorKind::PermissionDenied)),
            126
        );
    }

    fn file(path: &Path, mode: u32) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_first_executable_on_path_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        file(&a.join("tool"), 0o644);
        file(&b.join("tool"), 0o755);
        let path = format!("{}:{}", a.display(), b.display());
        assert_eq!(find_program("tool", &path).unwrap(), b.join("tool"));
    }

    #[test]
    fn a_missing_command_is_127_and_names_path() {
        let e = find_program("no-such-tool-here", "/nonexistent").unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert_eq!(
            e.to_string(),
            "no-such-tool-here: command not found (PATH=/nonexistent)"
        );
        let e = find_program("./no/such", "").unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (127, "./no/such: no such file".into())
        );
    }

    #[test]
    fn a_file_that_is_not_executable_is_126() {
        // Root may execute any file with an execute bit; a file without one is refused to all.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        file(&script, 0o644);
        let e = find_program("script", &dir.path().display().to_string()).unwrap_err();
        assert_eq!(e.exit_code(), 126);
        assert_eq!(
            e.to_string(),
            format!(
                "{0}: permission denied: the file is not executable (chmod +x it, or name its \
                 interpreter, e.g. `sh {0}`)",
                script.display()
            )
        );
        let named = script.display().to_string();
        assert_eq!(find_program(&named, "").unwrap_err().exit_code(), 126);
        let e = find_program(&format!("{}/", dir.path().display()), "").unwrap_err();
        assert!(matches!(e, NotRunnable::Directory(_)), "{e}");
        assert_eq!(e.exit_code(), 126);
    }
}
