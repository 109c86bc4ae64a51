//! A vault kept with an age plugin identity (the way age-plugin-yubikey is used), through the
//! real age plugin protocol.
//!
//! A hardware-key plugin cannot run here (no YubiKey, no TPM), so the plugin is a stand-in built
//! from `examples/age-plugin-keepouttest.rs` with the `age-plugin` crate: it speaks the real
//! protocol and asks for a PIN through the client's callbacks, as age-plugin-yubikey does. What
//! is tested is keepout's side: plugin recipients and identities, the PIN request reaching
//! keepout's prompt (KEEPOUT_ASKPASS), a wrong PIN and a missing plugin as clear errors.
//!
//! This file holds one test on purpose: it sets PATH and KEEPOUT_ASKPASS for its process, which
//! is safe only while no other test runs in it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use keepout_vault::{Key, VaultError, VaultFile, Zeroizing};

fn plugin_binary() -> PathBuf {
    // target/debug/deps/age_plugin-HASH -> target/debug/examples/age-plugin-keepouttest
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/age-plugin-keepouttest");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test -p keepout-vault` builds it (it is an example)",
        bin.display()
    );
    bin
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn vault_with_an_age_plugin_identity() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(plugin_binary(), bin_dir.join("age-plugin-keepouttest")).unwrap();

    // A new identity, as `age-plugin-yubikey --generate` would print it.
    let out = Command::new(bin_dir.join("age-plugin-keepouttest"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: "))
        .expect("the plugin prints its recipient")
        .to_string();
    assert!(recipient.starts_with("age1keepouttest1"), "{recipient}");
    let identity = dir.path().join("identity.txt");
    std::fs::write(&identity, &text).unwrap();

    let key = Key::Identities {
        recipients: vec![recipient.clone()],
        identity_files: vec![identity.clone()],
    };
    let vault = VaultFile::at(dir.path().join("vault/vault.age"));

    // The PIN prompt goes to keepout's askpass, which records what it was asked.
    let asked = dir.path().join("asked");
    let askpass = dir.path().join("askpass");
    write_script(
        &askpass,
        &format!("echo \"$1\" >> '{}'\necho \"$PIN\"", asked.display()),
    );
    let system_path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{system_path}", bin_dir.display()));
    std::env::set_var("KEEPOUT_ASKPASS", &askpass);
    std::env::set_var("PIN", "4242");

    vault.create(&key).unwrap();
    vault
        .update(&key, |d| {
            d.set("pypi/coverage", Zeroizing::new("pypi-AgE1".into()), None)
        })
        .unwrap();
    let doc = vault.read(&key).unwrap();
    assert_eq!(*doc.get("pypi/coverage").unwrap().value, "pypi-AgE1");
    let prompts = std::fs::read_to_string(&asked).unwrap();
    assert!(
        prompts.contains("Enter the PIN of your keepouttest token"),
        "the plugin's PIN request reached keepout's prompt: {prompts:?}"
    );
    // The file on disk names the plugin's stanza: a standard age file for the plugin.
    let bytes = std::fs::read(vault.path()).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("-> keepouttest"));

    // A wrong PIN: the plugin refuses, keepout says so (exit code 3), nothing changes.
    std::env::set_var("PIN", "0000");
    let err = vault
        .update(&key, |d| d.set("other", Zeroizing::new("x".into()), None))
        .unwrap_err();
    assert!(
        matches!(err, VaultError::Plugin { .. }),
        "wrong PIN: {err:?}"
    );
    assert!(err.to_string().contains("wrong PIN"), "{err}");
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        std::fs::read(vault.path()).unwrap(),
        bytes,
        "nothing was written"
    );

    // The plugin not installed: a clear error that names it, for reading and for writing.
    std::env::set_var("PATH", &system_path);
    std::env::set_var("PIN", "4242");
    let err = vault.read(&key).unwrap_err();
    assert!(
        err.to_string().contains("age-plugin-keepouttest") && err.to_string().contains("PATH"),
        "missing plugin on read: {err}"
    );
    let err = VaultFile::at(dir.path().join("other/vault.age"))
        .create(&key)
        .unwrap_err();
    assert!(
        err.to_string().contains("age-plugin-keepouttest"),
        "missing plugin on write: {err}"
    );
    assert_eq!(std::fs::read(vault.path()).unwrap(), bytes);
}
