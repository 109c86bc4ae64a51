//! `keepout exec --mask`: the command's output with every secret value replaced by
//! `<concealed by keepout>`, streamed.
//!
//! Guarantee: both streams go through [`keepout_credentials::redact::copy_masked`] (a value
//! split across reads is replaced too); the command's exit code is returned, 128+N for a signal.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use keepout_credentials::redact::copy_masked;

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
    let t1 = std::thread::spawn(move || copy_masked(out, std::io::stdout().lock(), values));
    let t2 = std::thread::spawn(move || copy_masked(err, std::io::stderr().lock(), v2));
    let status = child.wait()?;
    let _ = t1.join();
    let _ = t2.join();
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s));
    Ok(code.unwrap_or(1))
}
