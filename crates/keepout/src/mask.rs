//! `keepout exec --mask`: the command's output with every secret value replaced by
//! `<concealed by keepout>`, streamed.
//!
//! Guarantee: both streams go through [`keepout_credentials::redact::Masker`] (a value split
//! across reads is replaced too); the command's exit code is returned, 128+N for a signal.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use keepout_credentials::redact::Masker;

fn pump(mut from: impl Read, mut to: impl Write, values: Vec<Vec<u8>>) {
    let mut masker = Masker::new(values);
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let shown = masker.feed(&buf[..n]);
                if to.write_all(&shown).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
    let _ = to.write_all(&masker.finish());
    let _ = to.flush();
}

/// Run `cmd` with its standard output and error masked; returns its exit code (128+N for a
/// signal).
pub fn run_masked(mut cmd: Command, values: Vec<Vec<u8>>) -> Result<i32> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let v2 = values.clone();
    let t1 = std::thread::spawn(move || pump(out, std::io::stdout().lock(), values));
    let t2 = std::thread::spawn(move || pump(err, std::io::stderr().lock(), v2));
    let status = child.wait()?;
    let _ = t1.join();
    let _ = t2.join();
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}
