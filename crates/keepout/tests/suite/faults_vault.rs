//! Faults and bad input lose nothing (issue 14), for the vault and its prompt: a missing vault
//! whose backup is there, a machine that is slow at the wrong moment, an askpass that hangs
//! after starting processes of its own. Each fault is real: a moved file, a process slowed by
//! strace's syscall delay injection, a real askpass script with real children.

use std::path::PathBuf;
use std::time::Duration;

use super::harness::{
    have, keepout_bin, note, pids_with_arg, poll, q, run, runners, signal, write_file, Fixture,
    Output, FIXTURE_PATH,
};

const PASS: &str = "correct horse battery";

/// One runner's vault and askpass, in the fixture.
struct Kit<'a> {
    fx: &'a Fixture,
    dir: PathBuf,
}

impl<'a> Kit<'a> {
    fn new(fx: &'a Fixture) -> Kit<'a> {
        let dir = fx.mkdir("kit");
        write_file(
            &dir.join("ask.sh"),
            &format!("#!/bin/sh\necho {}\n", q(PASS)),
            0o755,
        );
        write_file(&dir.join("config.toml"), "", 0o644);
        fx.give_to_runner(&dir);
        Kit { fx, dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn vault(&self) -> PathBuf {
        self.path("data/vault.age")
    }

    fn backup(&self) -> PathBuf {
        self.path("data/vault.age.bak")
    }

    /// `sh -c script` as the runner, `KEEPOUT ` (with its space) standing for the binary, with
    /// the vault's settings (scrypt work factor `work_factor`) and `extra` variables.
    fn sh_with(&self, script: &str, work_factor: u8, extra: &[(&str, String)]) -> Output {
        let script = script.replace("KEEPOUT ", &format!("{} ", keepout_bin()));
        let mut env = self.fx.env().to_vec();
        env.retain(|(k, _)| k != "PATH");
        env.extend(
            [
                ("PATH", FIXTURE_PATH.to_string()),
                ("KEEPOUT_VAULT", self.vault().display().to_string()),
                (
                    "KEEPOUT_CONFIG",
                    self.path("config.toml").display().to_string(),
                ),
                ("KEEPOUT_ASKPASS", self.path("ask.sh").display().to_string()),
                ("KEEPOUT_SCRYPT_WORK_FACTOR", work_factor.to_string()),
                ("KEEPOUT_NO_CACHE", "1".into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let argv = ["/bin/sh".to_string(), "-c".to_string(), script.clone()];
        let cmd = self.fx.runner.command(&argv, &env, &self.fx.project);
        run(cmd, format!("[{}] sh -c {}", self.fx.runner, q(script)))
    }

    fn sh(&self, script: &str) -> Output {
        self.sh_with(script, 4, &[])
    }
}

/// A missing vault with its backup there is reported (exit 9, the backup named, how to restore
/// it), never replaced: `secret set` refuses to create a new vault, which would have replaced
/// the backup, the only copy of the secrets left; the restore the hint gives brings them back.
#[test]
fn a_missing_vault_with_its_backup_is_reported_and_never_replaced() {
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let kit = Kit::new(&fx);
        let made = kit
            .sh("printf one | KEEPOUT secret set a/one && printf two | KEEPOUT secret set a/two");
        assert!(made.success(), "[{runner}] setup:{made}");
        let moved = kit.sh(&format!(
            "mv {} {}",
            q(kit.vault().display().to_string()),
            q(kit.path("elsewhere.age").display().to_string())
        ));
        assert!(moved.success(), "[{runner}] mv:{moved}");
        let backup_before = std::fs::read(kit.backup()).expect("the backup is there");

        let list = kit.sh("KEEPOUT secret list");
        assert_eq!(
            list.code,
            Some(9),
            "[{runner}] list says the vault is missing:{list}"
        );
        assert!(
            list.stderr.contains("vault.age.bak is there")
                && list
                    .stderr
                    .contains(&format!("cp -p {}", kit.backup().display())),
            "[{runner}] list names the backup and how to restore it:{list}"
        );
        assert!(!list.stderr.contains("no vault"), "[{runner}]:{list}");

        let set = kit.sh("printf three | KEEPOUT secret set a/three");
        assert_eq!(
            set.code,
            Some(9),
            "[{runner}] set refuses to create a new vault:{set}"
        );
        assert!(
            set.stderr.contains("vault.age.bak is there"),
            "[{runner}]:{set}"
        );
        let rm = kit.sh("KEEPOUT secret rm a/one");
        assert_eq!(rm.code, Some(9), "[{runner}] rm:{rm}");
        assert!(!kit.vault().exists(), "[{runner}] no new vault was made");
        assert_eq!(
            std::fs::read(kit.backup()).unwrap(),
            backup_before,
            "[{runner}] the backup is untouched"
        );

        // git's credential helper says it too (on stderr, which git shows), and answers nothing.
        let git =
            kit.sh("printf 'protocol=https\\nhost=example.org\\n\\n' | KEEPOUT git-credential get");
        assert!(
            git.success()
                && git.stdout.is_empty()
                && git.stderr.contains("is missing but its backup"),
            "[{runner}] git-credential get:{git}"
        );

        // The restore the hint gives: the secrets of the backup (the write before the last).
        let restored = kit.sh(&format!(
            "cp -p {} {} && KEEPOUT secret list --json",
            q(kit.backup().display().to_string()),
            q(kit.vault().display().to_string())
        ));
        assert!(
            restored.success() && restored.stdout.contains("a/one"),
            "[{runner}] restored from the backup:{restored}"
        );
    }
}

/// A healthy vault stays readable when the machine is slow at the moment keepout starts
/// decrypting: age's scrypt identity used to set its limit from one timed scrypt run (limit =
/// what takes a second now, plus 4), so a run slowed by load called a vault written at 2^15
/// "damaged" (exit 4, "Excessive work parameter"). Here the slowness is real and deterministic:
/// strace delays every munmap of keepout's main thread by 1.2 s, which makes that timed run
/// (it frees its 1 MiB) take over a second. keepout's own limit (2^22) does not move.
#[test]
fn a_slow_moment_never_makes_a_healthy_vault_damaged() {
    if !have("strace") {
        note("strace is not installed: cannot slow keepout down at the measured moment");
        return;
    }
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let kit = Kit::new(&fx);
        let made = kit.sh_with("printf one | KEEPOUT secret set a/one", 15, &[]);
        assert!(made.success(), "[{runner}] setup:{made}");
        let bytes = std::fs::read(kit.vault()).unwrap();
        assert_eq!(
            keepout_vault::scrypt_work_factor(&bytes),
            Some(15),
            "[{runner}] the vault was written at 2^15"
        );
        // Without -f: only keepout's main thread, where the passphrase identity is made.
        let slow = kit.sh(
            "strace -qq -o /dev/null -e trace=munmap -e inject=munmap:delay_exit=1200000 \
             KEEPOUT secret list --json",
        );
        assert!(
            slow.success() && slow.stdout.contains("a/one"),
            "[{runner}] a healthy vault read while the machine is slow:{slow}"
        );
        assert!(!slow.all().contains("Excessive work"), "[{runner}]:{slow}");
    }
}

/// A file whose scrypt stanza asks for more than keepout's maximum gets a clear error before any
/// scrypt work (no minutes of CPU and gigabytes of memory), and is not written over.
#[test]
fn a_vault_above_the_work_factor_limit_is_refused_clearly() {
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let kit = Kit::new(&fx);
        let made = kit.sh("printf one | KEEPOUT secret set a/one");
        assert!(made.success(), "[{runner}] setup:{made}");
        let text = std::fs::read(kit.vault()).unwrap();
        let at = text
            .windows(10)
            .position(|w| w == b"-> scrypt ")
            .expect("an scrypt stanza");
        let end = at + text[at..].iter().position(|b| *b == b'\n').unwrap();
        let mut forged = text[..end - 1].to_vec(); // drop the "4"
        forged.extend_from_slice(b"30");
        forged.extend_from_slice(&text[end..]);
        std::fs::write(kit.vault(), &forged).unwrap();
        let list = kit.sh("KEEPOUT secret list");
        assert_eq!(list.code, Some(4), "[{runner}]:{list}");
        assert!(
            list.stderr
                .contains("scrypt work factor is 2^30, above the 2^22"),
            "[{runner}] says why:{list}"
        );
        assert_eq!(
            std::fs::read(kit.vault()).unwrap(),
            forged,
            "[{runner}] untouched"
        );
    }
}

/// The "damaged" message says what the backup lacks: it is the version before the last write,
/// older, so copying it over the vault loses that write; never a bare "copy it over".
#[test]
fn the_damaged_hint_says_what_the_backup_lacks() {
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let kit = Kit::new(&fx);
        let made = kit.sh(
            "printf one | KEEPOUT secret set a/one && sleep 1.1 && printf two | KEEPOUT secret set a/two",
        );
        assert!(made.success(), "[{runner}] setup:{made}");
        let mut bytes = std::fs::read(kit.vault()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(kit.vault(), &bytes).unwrap();
        let list = kit.sh("KEEPOUT secret list");
        assert_eq!(list.code, Some(4), "[{runner}]:{list}");
        assert!(
            list.stderr.contains("is the version before the last write")
                && list.stderr.contains("seconds older")
                && list.stderr.contains("it lacks that last write")
                && list.stderr.contains("mv vault.age vault.age.damaged"),
            "[{runner}] the hint says what would be lost:{list}"
        );
    }
}

/// After the prompt's timeout the askpass is killed with everything it started: it runs in a
/// process group of its own and the group is killed. The askpass here starts a child (marked
/// by a unique argument) and hangs.
#[test]
fn an_askpass_that_times_out_leaves_no_process_behind() {
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let kit = Kit::new(&fx);
        let made = kit.sh("printf one | KEEPOUT secret set a/one");
        assert!(made.success(), "[{runner}] setup:{made}");
        let marker = format!("keepout-askpass-child-{}", fx.rand);
        let hang = kit.path("hang.sh");
        write_file(
            &hang,
            &format!(
                "#!/bin/sh\nexec 2>/dev/null\n\
                 sh -c 'sleep 1000; : \"$0\"' {m} </dev/null >/dev/null &\n\
                 sleep 1000\n",
                m = q(&marker)
            ),
            0o755,
        );
        fx.give_to_runner(&hang);
        let timed_out = kit.sh_with(
            "KEEPOUT secret list",
            4,
            &[
                ("KEEPOUT_ASKPASS", hang.display().to_string()),
                ("KEEPOUT_PROMPT_TIMEOUT", "2".into()),
            ],
        );
        let gone = poll(Duration::from_secs(3), || pids_with_arg(&marker).is_empty());
        let left = pids_with_arg(&marker);
        for pid in &left {
            // Its own child (the sleep) first, then it.
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                signal(child, "KILL");
            }
            signal(*pid, "KILL");
        }
        assert!(
            !timed_out.success(),
            "[{runner}] no answer is a no:{timed_out}"
        );
        assert!(
            gone,
            "[{runner}] the askpass's child {left:?} outlived the timeout:{timed_out}"
        );
    }
}

/// A write killed outright (SIGKILL through strace's fault injection) at each of its steps:
/// after the new content is written (its fsync), at the backup's link and rename, and at the
/// rename into place. Each time the vault holds the whole old or the whole new secrets, and what the kill
/// left beside it (the new content never renamed, `.bak.new`) is gone after the next write
/// (it stayed there for ever: one encrypted copy of the vault per interrupted write).
#[test]
fn a_write_killed_at_each_step_leaves_nothing_behind() {
    if !have("strace") {
        note("strace is not installed: cannot kill a write at a chosen step");
        return;
    }
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let kit = Kit::new(&fx);
        let made = kit
            .sh("printf one | KEEPOUT secret set a/one && printf two | KEEPOUT secret set a/two");
        assert!(made.success(), "[{runner}] setup:{made}");
        for (step, inject) in [
            // (each step's name differs in length: the next write's secret is named after it)
            ("after the new content's fsync", "fsync:signal=KILL:when=1"),
            ("at the backup's link", "link,linkat:signal=KILL:when=1"),
            // std renames the staged backup with rename(2), tempfile persists with renameat(2):
            // strace counts each syscall on its own.
            ("at the backup's rename", "rename:signal=KILL:when=1"),
            (
                "at the rename into place",
                "renameat,renameat2:signal=KILL:when=1",
            ),
        ] {
            let killed = kit.sh(&format!(
                "printf new | strace -qq -o /dev/null -e inject={inject} KEEPOUT secret set a/killed; \
                 echo status=$?"
            ));
            assert!(
                killed.stdout.contains("status=137"),
                "[{runner}] {step}: killed by SIGKILL:{killed}"
            );
            let list = kit.sh("KEEPOUT secret list --json");
            assert!(
                list.success() && list.stdout.contains("a/one") && list.stdout.contains("a/two"),
                "[{runner}] {step}: the vault is whole:{list}"
            );
            let next = kit.sh(&format!(
                "printf three | KEEPOUT secret set 'a/next-{}'",
                step.len()
            ));
            assert!(next.success(), "[{runner}] {step}: the next write:{next}");
            let left: Vec<String> = std::fs::read_dir(kit.path("data"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !["vault.age", "vault.age.bak", "vault.age.lock"].contains(&n.as_str()))
                .collect();
            assert!(
                left.is_empty(),
                "[{runner}] {step}: the next write left {left:?} beside the vault"
            );
        }
    }
}

/// A full disk: the vault on a small tmpfs (mounted in a user and mount namespace of the
/// runner's own, `unshare -rm`), filled up before a write. The write fails with an error that
/// names the disk's state, the vault still holds every secret, nothing is left beside it, and
/// once there is room again the next write works.
#[test]
fn a_full_disk_fails_the_write_and_loses_nothing() {
    if !have("unshare") {
        note("unshare is not installed: cannot mount a small tmpfs for the vault");
        return;
    }
    for runner in runners() {
        let fx = Fixture::new(&runner);
        let kit = Kit::new(&fx);
        let data = kit.path("data");
        let out = kit.sh(&format!(
            "mkdir -p {data} && unshare -rm sh -c '
                mount -t tmpfs -o size=1m,mode=0700 tmpfs {data} || exit 90
                printf one | KEEPOUT secret set a/one || exit 91
                dd if=/dev/zero of={data}/fill bs=4k 2>/dev/null
                printf two | KEEPOUT secret set a/two; echo status=$?
                KEEPOUT secret list --json
                echo left: $(ls -A {data})
                rm {data}/fill
                printf three | KEEPOUT secret set a/three && echo written
                KEEPOUT secret list --json'",
            data = q(data.display().to_string())
        ));
        if out.code == Some(90) {
            note(&format!(
                "[{runner}] cannot mount a tmpfs in a user namespace here:{out}"
            ));
            continue;
        }
        assert!(
            out.stdout.contains("status=") && !out.stdout.contains("status=0"),
            "[{runner}] the write failed:{out}"
        );
        assert!(
            out.stderr.contains("No space left on device"),
            "[{runner}] the error says why:{out}"
        );
        assert!(
            out.stderr.contains("The vault is unchanged") && !out.stderr.contains(".new-"),
            "[{runner}] and that nothing was lost, naming no file that is gone:{out}"
        );
        assert!(
            out.stdout
                .contains("left: fill vault.age vault.age.bak vault.age.lock")
                || out.stdout.contains("left: fill vault.age vault.age.lock"),
            "[{runner}] nothing beside the vault:{out}"
        );
        assert!(
            out.stdout.contains("written") && out.stdout.matches("a/one").count() == 2,
            "[{runner}] every secret kept, and the next write works:{out}"
        );
        assert!(out.stdout.contains("a/three"), "[{runner}]:{out}");
    }
}
