//! The vault file: round trips, every kind of bad input, concurrent writers, and interop with
//! the stock `age` CLI. (Kill -9 during writes is tested end to end through the `keepout`
//! binary, in crates/keepout/tests/suite/vault.rs.)

use std::path::Path;

use keepout_vault::{Key, SecretString, VaultError, VaultFile, Zeroizing};

fn pass(p: &str) -> Key {
    Key::Passphrase(SecretString::from(p.to_string()))
}

fn new_vault(dir: &Path) -> VaultFile {
    let v = VaultFile::at(dir.join("keepout/vault.age")).with_work_factor(4);
    v.create(&pass("correct horse")).unwrap();
    v
}

#[test]
fn set_list_get_remove_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(dir.path());
    let p = pass("correct horse");
    v.update(&p, |d| {
        d.set(
            "pypi/coverage",
            Zeroizing::new("pypi-AgE1".into()),
            Some("upload".into()),
        )
    })
    .unwrap();
    v.update(&p, |d| {
        d.set("github/token", Zeroizing::new("ghp_1".into()), None)
    })
    .unwrap();
    let doc = v.read(&p).unwrap();
    let names: Vec<String> = doc.list().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["github/token", "pypi/coverage"]);
    assert_eq!(*doc.get("pypi/coverage").unwrap().value, "pypi-AgE1");
    v.update(&p, |d| d.remove("github/token")).unwrap();
    assert!(matches!(
        v.read(&p).unwrap().get("github/token"),
        Err(VaultError::NoSuchSecret(_))
    ));
    // The directory is private and the file is not world-readable.
    use std::os::unix::fs::PermissionsExt;
    let dir_mode = std::fs::metadata(v.path().parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "vault directory is 0700");
    let file_mode = std::fs::metadata(v.path()).unwrap().permissions().mode();
    assert_eq!(file_mode & 0o077, 0, "vault file is 0600");
    assert!(v.backup_path().exists(), "the previous version is kept");
}

#[test]
fn wrong_passphrase_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(dir.path());
    let before = std::fs::read(v.path()).unwrap();
    let err = v
        .update(&pass("wrong"), |d| {
            d.set("x", Zeroizing::new("y".into()), None)
        })
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongPassphrase(_)), "{err}");
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        std::fs::read(v.path()).unwrap(),
        before,
        "nothing overwritten"
    );
}

#[test]
fn truncated_and_tampered_files_are_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(dir.path());
    let p = pass("correct horse");
    v.update(&p, |d| d.set("a", Zeroizing::new("secret-a".into()), None))
        .unwrap();
    let good = std::fs::read(v.path()).unwrap();
    let n = good.len();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated payload", good[..n - 7].to_vec()),
        ("truncated header", good[..20].to_vec()),
        ("empty", vec![]),
        ("flipped payload byte", {
            let mut t = good.clone();
            t[n - 1] ^= 0x40;
            t
        }),
        (
            "not age at all",
            b"machine github.com password hunter2\n".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(v.path(), &bytes).unwrap();
        let err = v
            .update(&p, |d| d.set("b", Zeroizing::new("x".into()), None))
            .unwrap_err();
        assert!(matches!(err, VaultError::Corrupted(_)), "{what}: {err}");
        assert_eq!(err.exit_code(), 4, "{what}");
        assert!(
            !err.to_string().contains("secret-a"),
            "{what}: no value in messages"
        );
        assert_eq!(
            std::fs::read(v.path()).unwrap(),
            bytes,
            "{what}: nothing overwritten"
        );
    }
}

#[test]
fn a_newer_format_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.age");
    let mut r = age::scrypt::Recipient::new(SecretString::from("p".to_string()));
    r.set_work_factor(4);
    let bytes = age::encrypt(&r, b"version = 9\n[secrets]\n").unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let v = VaultFile::at(&path).with_work_factor(4);
    let err = v
        .update(&pass("p"), |d| d.set("x", Zeroizing::new("y".into()), None))
        .unwrap_err();
    assert!(
        matches!(err, VaultError::NewerFormat { found: 9, .. }),
        "{err}"
    );
    assert_eq!(err.exit_code(), 5);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(dir.path());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let v = v.clone();
            std::thread::spawn(move || {
                for j in 0..5 {
                    let name = format!("t{i}/s{j}");
                    v.update(&pass("correct horse"), |d| {
                        d.set(&name, Zeroizing::new(format!("v{i}{j}")), None)
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let doc = v.read(&pass("correct horse")).unwrap();
    assert_eq!(doc.list().len(), 40, "every writer's secrets are there");
}

#[test]
fn the_stock_age_cli_decrypts_the_vault() {
    // Real `age` (Debian package `age`), which reads a passphrase only from a terminal: `script`
    // gives it one. Skipped with a note where either is missing; CI installs both.
    let have = |p: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("age") || !have("script") {
        eprintln!("note: `age` or `script` is not installed; interop not checked (apt-get install age bsdutils)");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install age and bsdutils"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(dir.path());
    let p = pass("correct horse");
    v.update(&p, |d| {
        d.set(
            "pypi/coverage",
            Zeroizing::new("pypi-interop-value".into()),
            None,
        )
    })
    .unwrap();
    let out_path = dir.path().join("plain.toml");
    let cmd = format!("age -d -o {} {}", out_path.display(), v.path().display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    std::thread::sleep(std::time::Duration::from_millis(300));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let plain = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        plain.contains("version = 1") && plain.contains("pypi-interop-value"),
        "{plain}"
    );
}

/// `[vault] recipients/identities`: an X25519 vault, no passphrase; the stock `age -d -i`
/// decrypts it, and a wrong identity is refused without a write.
#[test]
fn an_x25519_vault_with_identity_files() {
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let id_path = dir.path().join("identity.txt");
    use age::secrecy::ExposeSecret;
    std::fs::write(
        &id_path,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let key = Key::Identities {
        recipients: vec![identity.to_public().to_string()],
        identity_files: vec![id_path.clone()],
    };
    let v = VaultFile::at(dir.path().join("vault.age"));
    v.create(&key).unwrap();
    v.update(&key, |d| {
        d.set("x/y", Zeroizing::new("x25519-value".into()), None)
    })
    .unwrap();
    assert_eq!(
        *v.read(&key).unwrap().get("x/y").unwrap().value,
        "x25519-value"
    );

    let other = age::x25519::Identity::generate();
    let other_path = dir.path().join("other.txt");
    std::fs::write(
        &other_path,
        format!("{}\n", other.to_string().expose_secret()),
    )
    .unwrap();
    let wrong = Key::Identities {
        recipients: vec![other.to_public().to_string()],
        identity_files: vec![other_path],
    };
    let before = std::fs::read(v.path()).unwrap();
    assert!(v
        .update(&wrong, |d| d.set("z", Zeroizing::new("z".into()), None))
        .is_err());
    assert_eq!(
        std::fs::read(v.path()).unwrap(),
        before,
        "nothing written with the wrong identity"
    );

    if std::process::Command::new("age")
        .arg("--version")
        .output()
        .is_ok()
    {
        let out = std::process::Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&id_path)
            .arg(v.path())
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("x25519-value"),
            "stock age decrypts it"
        );
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must install age");
    }
}

/// `update_from` starts from a document read earlier only while the file is the version it was
/// read from: a write in between (another process) is read again, never lost.
#[test]
fn update_from_an_earlier_read_never_loses_a_write_in_between() {
    let dir = tempfile::tempdir().unwrap();
    let v = new_vault(dir.path());
    let p = pass("correct horse");
    let earlier = v.read_versioned(&p).unwrap();
    assert_eq!(
        Some(earlier.1),
        v.version(),
        "nothing wrote: the same version"
    );
    // Another writer, after the read.
    v.update(&p, |d| {
        d.set("other/writer", Zeroizing::new("o".into()), None)
    })
    .unwrap();
    assert_ne!(Some(earlier.1), v.version(), "a write changes the version");
    v.update_from(&p, Some(earlier), |d| {
        d.set("mine", Zeroizing::new("m".into()), None)
    })
    .unwrap();
    let names: Vec<String> = v
        .read(&p)
        .unwrap()
        .list()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["mine", "other/writer"], "both writes are there");
    // Unchanged since the read: the earlier document is used (and the result is the same).
    let earlier = v.read_versioned(&p).unwrap();
    v.update_from(&p, Some(earlier), |d| d.remove("mine"))
        .unwrap();
    let names: Vec<String> = v
        .read(&p)
        .unwrap()
        .list()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["other/writer"]);
}
