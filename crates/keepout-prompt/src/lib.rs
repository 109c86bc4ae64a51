//! The one way keepout asks the user something (a passphrase, later an approval), shared by the
//! vault and the agent.
//!
//! In order: `KEEPOUT_ASKPASS` when set; else pinentry (GETPIN / CONFIRM) where it is installed
//! and usable, that is when a graphical display is set (`DISPLAY`, `WAYLAND_DISPLAY`) or
//! `KEEPOUT_PINENTRY` names the program; else the terminal (`/dev/tty`, echo off for secrets);
//! else `SSH_ASKPASS`. With none of them, asking fails: never a silent default. A question that
//! gets no answer within the timeout (`KEEPOUT_PROMPT_TIMEOUT` seconds, default 60) is a no: the
//! askpass program is killed, the pinentry closed, the terminal read given up.
//!
//! The askpass protocol is OpenSSH's: the program gets the prompt text as its first argument;
//! for a passphrase it prints the answer on standard output; for an approval its exit status 0
//! means yes, anything else no.
//!
//! Guarantees: an answer is returned in memory that is zeroed when dropped; the terminal's echo
//! is restored even when reading fails.

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};

use rustix::termios::{LocalModes, OptionalActions};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(
        "cannot ask for {what}: no terminal, and neither KEEPOUT_ASKPASS nor SSH_ASKPASS is set"
    )]
    NoWayToAsk { what: String },
    #[error("{program} (askpass) failed: {detail}")]
    Askpass { program: String, detail: String },
    #[error("reading from the terminal failed: {0}")]
    Terminal(std::io::Error),
    #[error("cancelled")]
    Cancelled,
}

/// How long any question waits for an answer, seconds: `KEEPOUT_PROMPT_TIMEOUT`, default 60.
fn timeout_secs() -> u16 {
    std::env::var("KEEPOUT_PROMPT_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(60)
}

/// Wait for `child` until the timeout; kill it then. `None`: it did not answer in time.
fn wait_or_kill(
    child: &mut std::process::Child,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(timeout_secs().into());
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Wait until the terminal has input, up to the timeout.
fn tty_readable(tty: &std::fs::File) -> Result<bool, PromptError> {
    let mut fds = [rustix::event::PollFd::new(
        tty,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: timeout_secs().into(),
        tv_nsec: 0,
    };
    loop {
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(PromptError::Terminal(e.into())),
        }
    }
}

/// The pinentry program to use, if one is usable here.
fn pinentry_program() -> Option<String> {
    if let Some(p) = env_program("KEEPOUT_PINENTRY") {
        return Some(p);
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| env_program(v).is_some());
    display.then(|| "pinentry".to_string())
}

fn pinentry_error(e: pinentry::Error) -> PromptError {
    match e {
        pinentry::Error::Cancelled | pinentry::Error::Timeout => PromptError::Cancelled,
        other => PromptError::Askpass {
            program: "pinentry".into(),
            detail: other.to_string(),
        },
    }
}

/// Ask for a secret (passphrase or value): `prompt` is shown, nothing typed is echoed.
pub fn secret(prompt: &str) -> Result<Zeroizing<String>, PromptError> {
    if let Some(program) = env_program("KEEPOUT_ASKPASS") {
        return askpass_secret(&program, prompt);
    }
    if let Some(mut input) = pinentry_program().and_then(pinentry::PassphraseInput::with_binary) {
        use secrecy::ExposeSecret;
        let answer = input
            .with_title("keepout")
            .with_description(prompt.trim_end_matches([':', ' ']))
            .with_prompt("Passphrase:")
            .with_timeout(timeout_secs())
            .interact()
            .map_err(pinentry_error)?;
        return Ok(Zeroizing::new(answer.expose_secret().to_string()));
    }
    match terminal_secret(prompt) {
        Err(PromptError::Terminal(e))
            if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {}
        Err(PromptError::Terminal(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(program) = env_program("SSH_ASKPASS") {
        return askpass_secret(&program, prompt);
    }
    Err(PromptError::NoWayToAsk {
        what: prompt.trim_end_matches([':', ' ']).to_string(),
    })
}

/// Ask for approval: `Ok(true)` only on an explicit yes. An askpass program approves with exit
/// status 0 (OpenSSH's `SSH_ASKPASS_PROMPT=confirm` convention is set for it); on the terminal,
/// `y` or `yes`.
pub fn confirm(prompt: &str) -> Result<bool, PromptError> {
    if let Some(program) = env_program("KEEPOUT_ASKPASS") {
        return askpass_confirm(&program, prompt);
    }
    if let Some(mut dialog) = pinentry_program().and_then(pinentry::ConfirmationDialog::with_binary)
    {
        return match dialog
            .with_title("keepout")
            .with_timeout(timeout_secs())
            .confirm(prompt)
        {
            Ok(yes) => Ok(yes),
            Err(pinentry::Error::Cancelled | pinentry::Error::Timeout) => Ok(false),
            Err(e) => Err(pinentry_error(e)),
        };
    }
    match terminal_confirm(prompt) {
        Err(PromptError::Terminal(e))
            if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {}
        Err(PromptError::Terminal(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(program) = env_program("SSH_ASKPASS") {
        return askpass_confirm(&program, prompt);
    }
    Err(PromptError::NoWayToAsk {
        what: "approval".into(),
    })
}

fn askpass_confirm(program: &str, prompt: &str) -> Result<bool, PromptError> {
    let fail = |e: std::io::Error| PromptError::Askpass {
        program: program.to_string(),
        detail: e.to_string(),
    };
    let mut child = Command::new(program)
        .arg(prompt)
        .env("SSH_ASKPASS_PROMPT", "confirm")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(fail)?;
    Ok(wait_or_kill(&mut child)
        .map_err(fail)?
        .is_some_and(|s| s.success()))
}

fn terminal_confirm(prompt: &str) -> Result<bool, PromptError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(PromptError::Terminal)?;
    (&tty)
        .write_all(format!("{prompt} [y/N] ").as_bytes())
        .map_err(PromptError::Terminal)?;
    if !tty_readable(&tty)? {
        let _ = (&tty).write_all(b"\n(no answer: no)\n");
        return Ok(false);
    }
    let mut line = String::new();
    std::io::BufReader::new(&tty)
        .read_line(&mut line)
        .map_err(PromptError::Terminal)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn env_program(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn askpass_secret(program: &str, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
    let fail = |detail: String| PromptError::Askpass {
        program: program.to_string(),
        detail,
    };
    let mut child = Command::new(program)
        .arg(prompt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    // Read the answer on a thread so that an askpass that never answers can be killed.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let status = wait_or_kill(&mut child).map_err(|e| fail(e.to_string()))?;
    if status.is_none() {
        // No answer in time; the reader thread ends when the pipe closes.
        return Err(PromptError::Cancelled);
    }
    let out = reader
        .join()
        .map_err(|_| fail("reading the answer failed".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if !status.is_some_and(|s| s.success()) {
        return Err(PromptError::Cancelled);
    }
    let mut text = Zeroizing::new(
        String::from_utf8(out.to_vec()).map_err(|_| fail("answer is not UTF-8".into()))?,
    );
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Restores the terminal's modes when dropped.
struct EchoOff<'a> {
    tty: &'a std::fs::File,
    saved: rustix::termios::Termios,
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(self.tty, OptionalActions::Now, &self.saved);
    }
}

fn terminal_secret(prompt: &str) -> Result<Zeroizing<String>, PromptError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(PromptError::Terminal)?;
    let saved = rustix::termios::tcgetattr(&tty).map_err(|e| PromptError::Terminal(e.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    (&tty)
        .write_all(prompt.as_bytes())
        .map_err(PromptError::Terminal)?;
    let guard = EchoOff { tty: &tty, saved };
    rustix::termios::tcsetattr(&tty, OptionalActions::Flush, &quiet)
        .map_err(|e| PromptError::Terminal(e.into()))?;
    if !tty_readable(&tty)? {
        return Err(PromptError::Cancelled);
    }
    let mut line = Zeroizing::new(String::new());
    let n = std::io::BufReader::new(&tty)
        .read_line(&mut line)
        .map_err(PromptError::Terminal)?;
    drop(guard);
    if n == 0 {
        return Err(PromptError::Cancelled);
    }
    if line.ends_with('\n') {
        line.pop();
    }
    Ok(line)
}
