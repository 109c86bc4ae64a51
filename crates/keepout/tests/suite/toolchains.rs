//! The user's own toolchains work inside every `keepout run`, with no flags: rustup's cargo
//! builds a fresh project, pyenv's shims run every installed Python, and the credentials beside
//! them (`~/.cargo/credentials.toml`, a token in `~/.cargo/config.toml`, `~/.npmrc`, a Node
//! installation's global npmrc) stay hidden. `--no-toolchains` leaves them out; the config can
//! add more.
//!
//! The toolchains come from the test process's own home (on the CI machine `/root`, with rustup
//! and pyenv). The unprivileged runner cannot reach `/root` (mode 0700), so it gets them in its
//! own home, as if installed there, as copy-on-write overlays over the originals (no space used,
//! the originals never written): pyenv's shims made anew (they name `PYENV_ROOT`) and its
//! interpreters pointed at their own libraries, in the overlays' upper layers. The suite's reaper
//! unmounts them and removes the test user when the suite ends.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::harness::*;

/// What a toolchain home must have for these tests, relative to the home.
const TOOLCHAIN_DIRS: &[&str] = &[".rustup", ".cargo/bin", ".pyenv"];

/// The home the toolchains are taken from: the test process's own.
fn source_home() -> PathBuf {
    runners()[0].real_home()
}

/// A home with rustup, `~/.cargo/bin` and pyenv for runner `r`: the test process's own home for
/// its own user, copy-on-write overlays of it in the runner's home for the unprivileged one. `None`, with
/// a note, when the test process's home has no rustup or no pyenv to offer.
fn toolchain_home(r: &Runner) -> Option<PathBuf> {
    let source = source_home();
    let missing: Vec<&str> = TOOLCHAIN_DIRS
        .iter()
        .copied()
        .filter(|rel| !source.join(rel).is_dir())
        .collect();
    if !missing.is_empty() {
        note(&format!(
            "toolchains: {} has no {}: the tests of the user's own toolchains are skipped \
             (install rustup and pyenv in that home to run them)",
            source.display(),
            missing.join(", ")
        ));
        return None;
    }
    if r.uid == euid() {
        return Some(source);
    }
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    Some(COPY.get_or_init(|| overlay_toolchains(&source, r)).clone())
}

/// Where the copy-on-write layers of the unprivileged runner's toolchains live: what the copy
/// changes (pyenv's shims, the relocated interpreters) is written here, never into the original.
/// The suite's reaper (harness.rs) unmounts and removes it with the test user.
pub const TOOLCHAIN_LAYERS: &str = "/tmp/keepout-test-toolchains";

/// Show the toolchains of `source` in `r`'s own home, as if installed there: each directory an
/// overlay whose lower layer is the original (read-only to the copy: nothing is linked to or
/// written into the original's files) and whose upper layer is under [`TOOLCHAIN_LAYERS`]. Once
/// per machine and idempotent: a concurrent suite's overlays (seen in mountinfo) are reused;
/// the suite's reaper removes them when the last suite ends. Then pyenv gets its own shims.
fn overlay_toolchains(source: &Path, r: &Runner) -> PathBuf {
    let home = r.real_home();
    assert_ne!(home, source, "[{r}] the copy must not be the original");
    let lock = std::fs::File::create("/run/lock/keepout-test-toolchains.lock").unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for rel in TOOLCHAIN_DIRS {
        let (from, to) = (source.join(rel), home.join(rel));
        if mounted
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&*to.to_string_lossy()))
        {
            continue;
        }
        // A plain directory left by an older suite (hard links then) is removed, links only.
        if to.exists() {
            std::fs::remove_dir_all(&to).unwrap();
        }
        std::fs::create_dir_all(&to).unwrap();
        let layer = Path::new(TOOLCHAIN_LAYERS).join(rel.replace('/', "-"));
        let (upper, work) = (layer.join("upper"), layer.join("work"));
        let _ = std::fs::remove_dir_all(&layer);
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            from.display(),
            upper.display(),
            work.display()
        );
        let mount = std::process::Command::new("mount")
            .args(["-t", "overlay", "keepout-test-toolchains", "-o", &options])
            .arg(&to)
            .output()
            .expect("run mount");
        assert!(
            mount.status.success(),
            "mount -t overlay -o {options} {}: {}",
            to.display(),
            String::from_utf8_lossy(&mount.stderr)
        );
    }
    // The user's own ~/.cargo, as rustup's installer leaves it (bin inside stays root's).
    chown(home.join(".cargo"), Some(r.uid), Some(r.gid)).unwrap();

    // Shims name PYENV_ROOT: the copy's must name the copy. Made by the runner, as pyenv does.
    let pyenv = home.join(".pyenv");
    let shims = pyenv.join("shims");
    let names_the_copy = format!("PYENV_ROOT=\"{}\"", pyenv.display());
    if !read(&shims.join("python3")).is_some_and(|s| s.contains(&names_the_copy)) {
        std::fs::remove_dir_all(&shims).unwrap(); // in the overlay: the original's files stay
        std::fs::create_dir(&shims).unwrap();
        chown(&shims, Some(r.uid), Some(r.gid)).unwrap();
        let env = vec![
            ("HOME".to_string(), home.display().to_string()),
            ("PYENV_ROOT".to_string(), pyenv.display().to_string()),
            (
                "PATH".to_string(),
                format!("{}/bin:{FIXTURE_PATH}", pyenv.display()),
            ),
        ];
        let argv = vec!["pyenv".to_string(), "rehash".to_string()];
        let rehash = run(r.command(&argv, &env, &home), format!("[{r}] pyenv rehash"));
        assert!(rehash.success(), "[{r}] pyenv rehash in the copy:{rehash}");
        assert!(
            read(&shims.join("python3")).is_some_and(|s| s.contains(&names_the_copy)),
            "[{r}] the copy's shims name the copy"
        );
    }
    make_pythons_relocatable(&pyenv, &source.join(".pyenv"));
    home
}

/// pyenv builds a shared libpython and writes the installation's `lib` into the interpreter's
/// RUNPATH (`/root/.pyenv/versions/3.12.1/lib`), out of the copy's user's reach (the loader would
/// then find the system's libpython3.11, or none). Point each interpreter of the copy at its own
/// `lib`: `$ORIGIN/../lib` written over the old path (NUL-padded, so every offset stays), in a
/// new file in the overlay's upper layer. The original is untouched; a patched copy is left as it is.
fn make_pythons_relocatable(copy: &Path, original: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let relative = b"$ORIGIN/../lib";
    for version in std::fs::read_dir(copy.join("versions")).unwrap().flatten() {
        let name = version.file_name().to_string_lossy().into_owned();
        let mut old = format!("{}/versions/{name}/lib", original.display()).into_bytes();
        old.push(0);
        for entry in std::fs::read_dir(version.path().join("bin"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(mut bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let Some(at) = bytes.windows(old.len()).position(|w| w == old) else {
                continue;
            };
            if !bytes.starts_with(b"\x7fELF") || old.len() <= relative.len() {
                continue;
            }
            bytes[at..at + old.len()].fill(0);
            bytes[at..at + relative.len()].copy_from_slice(relative);
            let name = entry.file_name().to_string_lossy().into_owned();
            let patched = entry
                .path()
                .with_file_name(format!(".{name}.keepout-relocated"));
            std::fs::write(&patched, &bytes).unwrap();
            std::fs::set_permissions(&patched, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&patched, entry.path()).unwrap();
        }
    }
}

/// The fixture's environment with `home` as HOME and the toolchains on PATH, as the user's shell
/// would have them (rustup's installer and pyenv's `init` put them first). `home` may be the
/// test process's real home: keepout's own files (config, reviews, caches) go to the fixture's
/// home through the XDG variables, so the suite never writes into the real one.
fn toolchain_env(fx: &Fixture, home: &Path) -> Vec<(String, String)> {
    let h = home.display();
    let mut env: Vec<(String, String)> = fx
        .env()
        .iter()
        .map(|(k, v)| match k.as_str() {
            "HOME" => (k.clone(), h.to_string()),
            "PATH" => (
                k.clone(),
                format!("{h}/.cargo/bin:{h}/.pyenv/shims:{h}/.pyenv/bin:{FIXTURE_PATH}"),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    for (var, rel) in [
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ] {
        env.push((var.into(), fx.home_path(rel)));
    }
    env
}

/// `keepout run <extra> -- sh -c script` as the fixture's runner with `env`, in the project.
fn inside_with(fx: &Fixture, env: &[(String, String)], extra: &[&str], script: &str) -> Output {
    let mut argv: Vec<String> = vec![keepout_bin().into(), "run".into()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv.extend(["--", "sh", "-c", script].map(String::from));
    let what = format!(
        "[{}] inside: keepout run {} -- sh -c {}",
        fx.runner,
        extra.join(" "),
        q(script)
    );
    run(fx.runner.command(&argv, env, &fx.project), what)
}

/// `sh -c script` as the fixture's runner with `env`, without the sandbox.
fn outside_with(fx: &Fixture, env: &[(String, String)], script: &str) -> Output {
    let argv: Vec<String> = ["/bin/sh", "-c", script].map(String::from).to_vec();
    let what = format!("[{}] outside: sh -c {}", fx.runner, q(script));
    run(fx.runner.command(&argv, env, &fx.project), what)
}

#[test]
fn cargo_builds_a_new_project_with_no_flags() {
    for r in runners() {
        let Some(home) = toolchain_home(&r) else {
            return;
        };
        let fx = Fixture::new(&r);
        let env = toolchain_env(&fx, &home);
        let build = inside_with(
            &fx,
            &env,
            &[],
            "cargo new x && cd x && cargo build && ./target/debug/x",
        );
        assert!(
            build.success() && build.stdout.contains("Hello, world!"),
            "[{r}] inside, with no flags: cargo new, cargo build, and the program runs:{build}"
        );
        assert!(
            fx.project.join("x/target/debug/x").is_file(),
            "[{r}] the build is in the project on the host"
        );

        // The toolchain is read-only; CARGO_HOME is the sandbox's own, fresh and writable.
        let h = home.display();
        let layout = inside_with(
            &fx,
            &env,
            &[],
            &format!(
                "echo \"RUSTUP_HOME=$RUSTUP_HOME CARGO_HOME=$CARGO_HOME\"; \
                 touch {h}/.rustup/planted 2>/dev/null && echo WROTE-RUSTUP; \
                 touch {h}/.cargo/bin/planted 2>/dev/null && echo WROTE-CARGO-BIN; \
                 test -e {h}/.cargo/registry && echo HOST-REGISTRY; \
                 mkdir -p {h}/.cargo/registry && touch {h}/.cargo/registry/x && echo CACHE-WRITABLE"
            ),
        );
        assert!(
            layout
                .stdout
                .contains(&format!("RUSTUP_HOME={h}/.rustup CARGO_HOME={h}/.cargo"))
                && layout.stdout.contains("CACHE-WRITABLE")
                && !layout.has("WROTE-")
                && !layout.has("HOST-REGISTRY"),
            "[{r}] inside: RUSTUP_HOME is the real one, read-only; CARGO_HOME is fresh:{layout}"
        );
        assert!(
            !home.join(".rustup/planted").exists() && !home.join(".cargo/bin/planted").exists(),
            "[{r}] nothing written inside reached the toolchain"
        );

        let without = inside_with(&fx, &env, &["--no-toolchains"], "cargo --version");
        assert!(
            without.code == Some(127),
            "[{r}] --no-toolchains: cargo is not found inside:{without}"
        );
    }
}

#[test]
fn pyenv_shims_run_every_installed_python() {
    for r in runners() {
        let Some(home) = toolchain_home(&r) else {
            return;
        };
        let versions: Vec<String> = std::fs::read_dir(home.join(".pyenv/versions"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let Some(v312) = versions.iter().find(|v| v.starts_with("3.12.")) else {
            note(&format!(
                "toolchains: pyenv in {} has no 3.12; the pyenv test is skipped",
                home.display()
            ));
            return;
        };
        let fx = Fixture::new(&r);
        let env = toolchain_env(&fx, &home);
        let script = "python -V 2>&1; python3 -V 2>&1; \
                      python3.12 -c 'import sys; print(\"py\", sys.version.split()[0], sys.executable)'";
        let outside = outside_with(&fx, &env, "python -V 2>&1; python3 -V 2>&1");
        assert!(
            outside.success(),
            "[{r}] outside: pyenv's python runs:{outside}"
        );
        let inside = inside_with(&fx, &env, &[], script);
        let pyenv = home.join(".pyenv").display().to_string();
        assert!(
            inside.success()
                && inside.stdout.starts_with(&outside.stdout)
                && inside
                    .stdout
                    .contains(&format!("py {v312} {pyenv}/versions/{v312}/bin/python3.12")),
            "[{r}] inside, with no flags: python and python3 are the selected version, as \
             outside ({}), and python3.12 runs through the shims:{inside}",
            outside.stdout.trim()
        );

        let readonly = inside_with(
            &fx,
            &env,
            &[],
            &format!("echo \"PYENV_ROOT=$PYENV_ROOT\"; touch {pyenv}/planted && echo WROTE"),
        );
        assert!(
            readonly.stdout.contains(&format!("PYENV_ROOT={pyenv}")) && !readonly.has("WROTE"),
            "[{r}] inside: PYENV_ROOT is the real pyenv, read-only:{readonly}"
        );

        let without = inside_with(&fx, &env, &["--no-toolchains"], "python3.12 -c 'print(1)'");
        assert!(
            without.code == Some(127),
            "[{r}] --no-toolchains: python3.12 is not found inside:{without}"
        );
    }
}

/// Another home's toolchain directories bind-mounted read-only into a fixture's home (nothing
/// linked to or written into the original), unmounted before the fixture is removed, also when
/// the test fails (the suite's reaper unmounts any a killed suite left).
struct Mounted(Vec<PathBuf>);

impl Mounted {
    fn bind_read_only(&mut self, from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for args in [&["--bind"][..], &["-o", "remount,bind,ro"]] {
            let mount = std::process::Command::new("mount")
                .args(args)
                .arg(from)
                .arg(to)
                .output()
                .expect("run mount");
            assert!(
                mount.status.success(),
                "mount {args:?} {} {}: {}",
                from.display(),
                to.display(),
                String::from_utf8_lossy(&mount.stderr)
            );
            if args[0] == "--bind" {
                self.0.push(to.to_path_buf());
            }
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = std::process::Command::new("umount").arg(p).status();
        }
    }
}

#[test]
fn credentials_beside_the_toolchains_stay_hidden() {
    for r in runners() {
        let Some(toolchains) = toolchain_home(&r) else {
            return;
        };
        // The fixture's home already holds ~/.cargo/credentials.toml and ~/.npmrc; add rustup,
        // cargo's bin beside them, a token in ~/.cargo/config.toml, and nvm with a global npmrc.
        let fx = Fixture::new(&r);
        let mut mounted = Mounted(Vec::new());
        for rel in [".rustup", ".cargo/bin"] {
            mounted.bind_read_only(&toolchains.join(rel), &fx.home.join(rel));
        }
        let config_token = format!("FAKE-CARGO-CONFIG-{}", fx.rand);
        let nvm_token = format!("FAKE-NVM-NPMRC-{}", fx.rand);
        write_file(
            &fx.home.join(".cargo/config.toml"),
            &format!("[registry]\ntoken = \"{config_token}\"\n"),
            0o600,
        );
        write_file(
            &fx.home.join(".nvm/versions/node/v20.0.0/etc/npmrc"),
            &format!("//registry.npmjs.org/:_authToken={nvm_token}\n"),
            0o600,
        );
        write_file(&fx.home.join(".nvm/nvm.sh"), "# nvm\n", 0o644);
        fx.give_to_runner(&fx.home.join(".cargo/config.toml"));
        fx.give_to_runner(&fx.home.join(".nvm"));

        let env = toolchain_env(&fx, &fx.home);
        let files = [
            ".cargo/credentials.toml",
            ".cargo/config.toml",
            ".npmrc",
            ".nvm/versions/node/v20.0.0/etc/npmrc",
        ]
        .map(|rel| q(fx.home_path(rel)))
        .join(" ");
        let secrets = [
            fx.credential(".cargo/credentials.toml"),
            fx.credential(".npmrc"),
            config_token,
            nvm_token,
        ];
        let outside = outside_with(&fx, &env, &format!("cat {files}"));
        assert!(
            secrets.iter().all(|s| outside.stdout.contains(s)),
            "[{r}] outside: the runner reads every planted credential:{outside}"
        );
        let inside = inside_with(
            &fx,
            &env,
            &[],
            &format!("cargo --version && ls -A ~/.cargo && ls ~/.nvm && cat {files}"),
        );
        assert!(
            inside.stdout.contains("cargo ") && inside.stdout.contains("nvm.sh"),
            "[{r}] inside: cargo runs and nvm is there:{inside}"
        );
        assert!(
            secrets.iter().all(|s| !inside.has(s)),
            "[{r}] inside: no planted credential is readable:{inside}"
        );
        assert!(
            inside.stdout.lines().any(|l| l == "bin") && !inside.stdout.contains("config.toml"),
            "[{r}] inside: of ~/.cargo only bin is there:{inside}"
        );

        let policy = inside_with(&fx, &env, &["--print-policy"], "true");
        assert!(
            policy
                .stdout
                .contains("why = \"toolchain: rustup (read-only)\"")
                && policy
                    .stdout
                    .contains("why = \"toolchain: cargo-bin (read-only)\"")
                && policy
                    .stdout
                    .contains("why = \"toolchain: nvm (read-only)\"")
                && policy.stdout.contains("etc/npmrc\"\nkind = \"masked\""),
            "[{r}] --print-policy lists the toolchains and the masked npmrc:{policy}"
        );
        let policy = inside_with(&fx, &env, &["--print-policy", "--no-toolchains"], "true");
        assert!(
            policy.success() && !policy.stdout.contains("toolchain"),
            "[{r}] --print-policy --no-toolchains lists none:{policy}"
        );
        drop(mounted);
    }
}

#[test]
fn the_config_adds_a_toolchain_and_never_the_home() {
    for r in runners() {
        let fx = Fixture::new(&r);
        write_file(
            &fx.home.join("opt/zig/bin/zig"),
            "#!/bin/sh\necho zig-from-the-config\n",
            0o755,
        );
        fx.give_to_runner(&fx.home.join("opt"));
        let config = fx.root.join("config.toml");
        write_file(&config, "[run]\ntoolchains = [\"~/opt/zig\"]\n", 0o644);
        let mut env = fx.env().to_vec();
        env.push(("KEEPOUT_CONFIG".into(), config.display().to_string()));

        let inside = inside_with(&fx, &env, &[], "~/opt/zig/bin/zig");
        assert!(
            inside.success() && inside.stdout.contains("zig-from-the-config"),
            "[{r}] inside: the config's toolchain runs:{inside}"
        );
        let without = inside_with(&fx, &env, &["--no-toolchains"], "~/opt/zig/bin/zig");
        assert!(
            without.code == Some(127),
            "[{r}] --no-toolchains leaves the config's out too:{without}"
        );

        write_file(&config, "[run]\ntoolchains = [\"~\"]\n", 0o644);
        let refused = inside_with(&fx, &env, &[], "true");
        assert!(
            refused.code == Some(125) && refused.has("[run] toolchains"),
            "[{r}] a config that would show the home is refused:{refused}"
        );
    }
}

#[test]
fn doctor_lists_the_pythons_a_sandbox_can_run() {
    for r in runners() {
        let Some(home) = toolchain_home(&r) else {
            return;
        };
        let fx = Fixture::new(&r);
        let env = toolchain_env(&fx, &home);
        let argv: Vec<String> = vec![keepout_bin().into(), "doctor".into(), "--json".into()];
        let doctor = run(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] keepout doctor --json"),
        );
        let report: serde_json::Value = serde_json::from_str(&doctor.stdout)
            .unwrap_or_else(|e| panic!("[{r}] doctor --json is JSON ({e}):{doctor}"));
        let pyenv = home.join(".pyenv").display().to_string();
        let pythons: Vec<(String, String)> = report["pythons"]
            .as_array()
            .expect("pythons")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for v in std::fs::read_dir(home.join(".pyenv/versions"))
            .unwrap()
            .flatten()
        {
            let version = v.file_name().to_string_lossy().into_owned();
            let minor: Vec<&str> = version.split('.').take(2).collect();
            let name = format!("python{}", minor.join("."));
            let path = format!("{pyenv}/versions/{version}/bin/{name}");
            assert!(
                pythons.contains(&(name.clone(), path.clone())),
                "[{r}] doctor lists {name} at {path}:{doctor}"
            );
        }
        assert!(
            report["landlock_abi"].is_number() && report["toolchains"].is_array(),
            "[{r}] doctor --json keeps the kernel's fields and adds the toolchains:{doctor}"
        );
    }
}

/// Ordinary work under `--review`: `cargo new` and `cargo build` write aside, `review apply`
/// puts the crate and its build into the tree, and the program runs on the host.
#[test]
fn cargo_build_under_review() {
    for r in runners() {
        let Some(home) = toolchain_home(&r) else {
            return;
        };
        let fx = Fixture::new(&r);
        let env = toolchain_env(&fx, &home);
        let build = inside_with(
            &fx,
            &env,
            &["--review"],
            "cargo new x && cd x && cargo build",
        );
        assert!(build.success(), "[{r}] cargo build under --review:{build}");
        assert!(
            !fx.project.join("x").exists(),
            "[{r}] nothing in the tree yet"
        );
        // The review is kept where this environment's keepout keeps its data.
        let argv: Vec<String> = [keepout_bin(), "review", "apply"]
            .map(String::from)
            .to_vec();
        let apply = run(
            fx.runner.command(&argv, &env, &fx.project),
            format!("[{r}] keepout review apply"),
        );
        assert!(apply.success(), "[{r}] apply:{apply}");
        let ran = fx.outside("./x/target/debug/x");
        assert!(
            ran.stdout.contains("Hello, world!"),
            "[{r}] the applied build runs:{ran}{apply}"
        );
    }
}
