//! keepout-demo: a malicious test suite (examples/evil-test-suite/evil.py, built in) against a
//! planted fake home, first without keepout and then inside `keepout run`, and what each attack
//! got on each side.
//!
//! Guarantees: everything the demo writes lives under one [`Playground`] directory (fake
//! credentials, a throwaway git project, the suite's reports), removed when the playground is
//! dropped unless it is [kept](Playground::keep); every decoy process a run starts (a `sleep`,
//! an `ssh-agent`) is stopped before [`Playground::run`] returns, also when the suite fails
//! (one exception, as before the move: when the decoy abstract socket cannot be bound, the
//! `ssh-agent` started just before it is left running). Nothing of the real home is read or
//! written. keepout itself is reached only as a program ([`Keepout`]), so
//! this crate depends on no other part of keepout.
//!
//! What the demo says is made here as text, printing nothing: [`Playground::intro`] before the
//! runs, [`Comparison::text`] for the table and the counts, [`refused_syscalls_text`] for what
//! keepout's report of the run inside recorded.

mod compare;
mod decoys;
mod error;
mod plant;
mod suite;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use compare::{Comparison, Row, Tally};
pub use error::DemoError;
pub use suite::{Attempt, Outcome};

/// The keepout program the second run goes through: `PROGRAM run --report FILE -- python3 …`.
#[derive(Debug, Clone)]
pub struct Keepout {
    /// The keepout binary (the CLI passes its own executable).
    pub program: PathBuf,
    /// The exit status keepout gives when it fails itself (it could not start the sandbox).
    pub error_status: i32,
}

/// Which of the two runs: as the user, or inside `keepout run`.
#[derive(Debug, Clone, Copy)]
pub enum Side<'a> {
    Without,
    Inside(&'a Keepout),
}

impl Side<'_> {
    /// The subdirectory of the playground this run plants in, also the decoys' label.
    fn name(&self) -> &'static str {
        match self {
            Side::Without => "without",
            Side::Inside(_) => "with",
        }
    }
}

/// The demo's one temporary directory (`keepout-demo-XXXXXX` in the system's temporary
/// directory, mode 0755 so that the sandbox's user can reach it); removed on drop.
pub struct Playground {
    dir: tempfile::TempDir,
}

impl Playground {
    pub fn new() -> Result<Playground, DemoError> {
        let dir = tempfile::Builder::new().prefix("keepout-demo-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        Ok(Playground { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Plant a fresh home and project for `side`, start its decoys, run the suite once and
    /// return what each attack got (persistence judged on the host's files).
    pub fn run(&self, side: Side<'_>) -> Result<Vec<Attempt>, DemoError> {
        suite::run(&self.path().join(side.name()), side)
    }

    /// The system calls `keepout run --report` recorded as refused in the run inside (none
    /// when there was no such run or its report cannot be read).
    pub fn refused_syscalls(&self) -> Vec<String> {
        suite::refused_syscalls(&self.path().join("with").join(suite::KEEPOUT_REPORT))
    }

    /// What the demo says before the two runs (which take a while).
    pub fn intro(&self) -> String {
        format!(
            "A malicious test suite (examples/evil-test-suite/evil.py) tries the attacks of \
             keepout's\nthreat model against a planted fake home ({}),\nfirst run as you, then \
             inside `keepout run`. Running…\n\n",
            self.path().display()
        )
    }

    /// Keep the directory instead of removing it; returns where it is.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

/// What `keepout run --report` recorded of the run inside: the system calls it refused (the
/// line `keepout run` prints on stderr, which the demo's throwaway terminal hides); nothing when
/// it refused none.
pub fn refused_syscalls_text(syscalls: &[String]) -> String {
    if syscalls.is_empty() {
        return String::new();
    }
    format!(
        "\nkeepout's report of the run inside (--report): refused {} system calls: {}\n",
        syscalls.len(),
        syscalls.join(" · ")
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::{plant, refused_syscalls_text, Playground, Side};

    #[test]
    fn the_intro_names_the_suite_and_the_fake_home() {
        let playground = Playground::new().unwrap();
        assert_eq!(
            playground.intro(),
            format!(
                "A malicious test suite (examples/evil-test-suite/evil.py) tries the attacks of \
                 keepout's\nthreat model against a planted fake home ({}),\nfirst run as you, \
                 then inside `keepout run`. Running…\n\n",
                playground.path().display()
            )
        );
    }

    #[test]
    fn the_refused_system_calls_are_one_line_after_a_blank_one() {
        assert_eq!(refused_syscalls_text(&[]), "");
        assert_eq!(
            refused_syscalls_text(&["ptrace".into(), "bpf".into()]),
            "\nkeepout's report of the run inside (--report): refused 2 system calls: ptrace · bpf\n"
        );
    }

    #[test]
    fn dropping_the_playground_removes_all_it_planted() {
        let playground = Playground::new().unwrap();
        let dir = playground.path().to_path_buf();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("keepout-demo-"));
        let planted = plant::plant(&dir.join(Side::Without.name())).unwrap();
        assert!(planted.home.join(".netrc").is_file());
        drop(playground);
        assert!(!dir.exists(), "{} is gone", dir.display());
    }

    #[test]
    fn a_kept_playground_stays() {
        let playground = Playground::new().unwrap();
        plant::plant(&playground.path().join("with")).unwrap();
        let kept = playground.keep();
        assert!(kept.join("with/home/alice/.netrc").is_file());
        std::fs::remove_dir_all(&kept).unwrap();
    }

    #[test]
    fn no_report_inside_means_no_refused_system_calls() {
        let playground = Playground::new().unwrap();
        assert!(playground.refused_syscalls().is_empty());
    }
}
