//! The one way keepout asks the user something (a passphrase, an approval), shared by the
//! vault and the agent.
//!
//! In order: `KEEPOUT_ASKPASS` when set; else pinentry (GETPIN / CONFIRM) where it is installed
//! and usable, that is when a graphical display is set (`DISPLAY`, `WAYLAND_DISPLAY`) or
//! `KEEPOUT_PINENTRY` names the program; else the terminal; else `SSH_ASKPASS`. With none of
//! them, asking fails, saying why: never a silent default. A question that gets no answer within
//! the timeout (`KEEPOUT_PROMPT_TIMEOUT` seconds, default 60) is a no: the askpass program is
//! killed with every process it started (it runs in a process group of its own, and the group
//! is killed), the pinentry closed, the terminal read given up.
//!
//! A process asking for itself ([`confirm`], [`secret`]) uses its own display variables and its
//! own terminal (`/dev/tty`). One asking on behalf of another ([`confirm_at`], [`secret_at`]:
//! the agent) is given a [`Place`]: the requester's display and the requester's terminal, found
//! and checked by the caller (same owner, requester in the foreground); pinentry then gets that
//! terminal (`ttyname`, `ttytype`) and that display, and the terminal is asked on before this
//! process's own (which a detached agent does not have).
//!
//! The askpass protocol is OpenSSH's: the program gets the prompt text as its first argument;
//! for a passphrase it prints the answer on standard output; for an approval its exit status 0
//! means yes, anything else no.
//!
//! Guarantees: an answer is returned in memory that is zeroed when dropped; on a terminal, what
//! was typed before the question is discarded first (tcflush), so type-ahead never answers it;
//! the terminal's modes are restored even when reading fails; control characters in what is
//! written to a terminal are shown as `?` (no escape sequences); on a [`Place`]'s terminal, an
//! answer is taken only if the terminal is still the requester's when it comes
//! ([`Terminal::still_ours`]), else it is a no.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use rustix::termios::{InputModes, LocalModes, OptionalActions, OutputModes};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot ask for {what}: {why}")]
    NoWayToAsk { what: String, why: String },
    #[error("{program} (askpass) failed: {detail}")]
    Askpass { program: String, detail: String },
    #[error("reading from the terminal failed: {0}")]
    Terminal(std::io::Error),
    #[error("cancelled")]
    Cancelled,
}

/// A terminal that belongs to someone else's question: the requester's controlling terminal,
/// opened without becoming this process's controlling terminal (`O_NOCTTY`) and checked by the
/// caller.
pub struct Terminal {
    pub file: std::fs::File,
    /// Its path, for pinentry's `ttyname` and for messages.
    pub path: std::path::PathBuf,
    /// The requester's `TERM`, for pinentry's `ttytype`.
    pub term: Option<String>,
    /// Whether it is still right to read it (the requester still there and in the terminal's
    /// foreground): checked again when an answer comes, which is discarded if not.
    pub still_ours: Box<dyn Fn() -> bool + Send + Sync>,
}

/// Where to reach the user when asking for another process: its display and its terminal.
#[derive(Default)]
pub struct Place {
    /// The requester's terminal, when asking on it is safe.
    pub terminal: Option<Terminal>,
    /// Why there is no terminal to ask on (for the refusal reason).
    pub no_terminal: Option<String>,
    /// The requester's `DISPLAY` and `WAYLAND_DISPLAY`.
    pub display: Option<String>,
    pub wayland_display: Option<String>,
    /// The requester's locale (`LANG`, `LC_ALL`, `LC_CTYPE`, `LC_MESSAGES`), for askpass
    /// programs.
    pub locale: Vec<(String, String)>,
}

impl Place {
    fn has_display(&self) -> bool {
        self.display.is_some() || self.wayland_display.is_some()
    }

    /// The environment an askpass program gets for this place: its display and locale.
    fn display_env(&self) -> Vec<(String, String)> {
        let mut env = self.locale.clone();
        if let Some(d) = &self.display {
            env.push(("DISPLAY".into(), d.clone()));
        }
        if let Some(d) = &self.wayland_display {
            env.push(("WAYLAND_DISPLAY".into(), d.clone()));
        }
        env
    }

    fn terminal_problem(&self) -> String {
        self.no_terminal
            .clone()
            .unwrap_or_else(|| "no terminal".to_string())
    }
}

/// Write one line to the place's terminal (a refusal's reason, where the user is looking).
/// Nothing happens without a terminal.
pub fn tell(place: &Place, line: &str) {
    if let Some(t) = &place.terminal {
        if (t.still_ours)() {
            let _ = (&t.file).write_all(format!("\r{}\r\n", printable(line)).as_bytes());
        }
    }
}

/// How long any question waits for an answer, seconds: `KEEPOUT_PROMPT_TIMEOUT`, default 60.
fn timeout_secs() -> u16 {
    std::env::var("KEEPOUT_PROMPT_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(60)
}

/// An askpass program run in a process group of its own (its id is the child's), so that a
/// timeout kills what it started too ([`wait_or_kill`]).
fn askpass_command(program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    c.process_group(0);
    c
}

/// Wait for `child` (the leader of its own process group, [`askpass_command`]) until the
/// timeout; kill its whole group then. `None`: it did not answer in time.
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
            // The group first (the askpass and what it started, which may hold its output
            // pipe), then the child itself in case it left the group.
            if let Some(group) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
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

/// The pinentry program to use, if one is usable here: `KEEPOUT_PINENTRY`, or `pinentry` when a
/// display is known (this process's, or the place's). `None` also when it would have nowhere to
/// show: for a place with neither a display nor a terminal.
fn pinentry_program(place: Option<&Place>) -> Option<String> {
    let own_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| env_program(v).is_some());
    let display = own_display || place.is_some_and(Place::has_display);
    if let Some(p) = env_program("KEEPOUT_PINENTRY") {
        let somewhere = match place {
            None => true,
            Some(pl) => display || pl.terminal.is_some(),
        };
        return somewhere.then_some(p);
    }
    display.then(|| "pinentry".to_string())
}

/// pinentry's options for a place: its terminal (flushed first) and its display.
fn pinentry_options(place: Option<&Place>) -> pinentry::unix::Options<'_> {
    let mut options = pinentry::unix::Options::builder();
    if let Some(pl) = place {
        if let Some(t) = &pl.terminal {
            let _ = rustix::termios::tcflush(&t.file, rustix::termios::QueueSelector::IFlush);
            if let Some(path) = t.path.to_str() {
                options = options.tty_name(path);
            }
            if let Some(term) = &t.term {
                options = options.tty_type(term);
            }
        }
        if let Some(d) = &pl.display {
            options = options.x11_display(d);
        }
        if let Some(d) = &pl.wayland_display {
            options = options.wayland_display(d);
        }
    }
    options.build()
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
    ask_secret(None, prompt)
}

/// [`secret`] for another process, at its `place`.
pub fn secret_at(place: &Place, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
    ask_secret(Some(place), prompt)
}

fn ask_secret(place: Option<&Place>, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
    if let Some(program) = env_program("KEEPOUT_ASKPASS") {
        return askpass_secret(&program, prompt, place);
    }
    // A pinentry that cannot show its dialog (no usable display or terminal) is not an answer:
    // the next way is tried, and its error is the one returned if none is left.
    let mut pinentry_failed = None;
    if let Some(mut input) =
        pinentry_program(place).and_then(pinentry::PassphraseInput::with_binary)
    {
        use secrecy::ExposeSecret;
        match input
            .with_title("keepout")
            .with_description(prompt.trim_end_matches([':', ' ']))
            .with_prompt("Passphrase:")
            .with_timeout(timeout_secs())
            .with_unix_options(pinentry_options(place))
            .interact()
        {
            Ok(answer) if place.is_none_or(still_ours) => {
                return Ok(Zeroizing::new(answer.expose_secret().to_string()))
            }
            Ok(_) => return Err(PromptError::Cancelled),
            Err(pinentry::Error::Cancelled | pinentry::Error::Timeout) => {
                return Err(PromptError::Cancelled)
            }
            Err(e) => pinentry_failed = Some(pinentry_error(e)),
        }
    }
    if let Some(t) = place.and_then(|p| p.terminal.as_ref()) {
        return terminal_secret(&t.file, prompt).and_then(|answer| {
            if (t.still_ours)() {
                Ok(answer)
            } else {
                Err(PromptError::Cancelled)
            }
        });
    }
    match open_own_tty(place.is_some()).and_then(|tty| terminal_secret(&tty, prompt)) {
        Err(e) if no_tty(&e) => {}
        other => return other,
    }
    if let Some(program) = env_program("SSH_ASKPASS") {
        return askpass_secret(&program, prompt, place);
    }
    Err(nowhere(
        prompt.trim_end_matches([':', ' ']),
        place,
        pinentry_failed,
    ))
}

/// The error when no way to ask is left: each way, and why it is not one.
fn nowhere(what: &str, place: Option<&Place>, pinentry: Option<PromptError>) -> PromptError {
    let terminal = place.map_or_else(|| "no terminal".into(), Place::terminal_problem);
    let display = match pinentry {
        Some(e) => format!("pinentry could not ask ({e})"),
        None => "no display (DISPLAY, WAYLAND_DISPLAY) and KEEPOUT_PINENTRY unset".into(),
    };
    PromptError::NoWayToAsk {
        what: what.to_string(),
        why: format!("{terminal}; {display}; neither KEEPOUT_ASKPASS nor SSH_ASKPASS is set"),
    }
}

/// Whether the place's terminal (if the answer came through it) is still the requester's.
fn still_ours(place: &Place) -> bool {
    place.terminal.as_ref().is_none_or(|t| (t.still_ours)())
}

/// This process's own terminal. Asking for another process (`for_place`), it is used only
/// while this process is in its foreground: a background agent reading it would be stopped
/// (SIGTTIN), and the shell is the one reading it then.
fn open_own_tty(for_place: bool) -> Result<std::fs::File, PromptError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(PromptError::Terminal)?;
    if for_place {
        let foreground = rustix::termios::tcgetpgrp(&tty).ok();
        if foreground != Some(rustix::process::getpgrp()) {
            return Err(PromptError::Terminal(std::io::Error::from_raw_os_error(
                rustix::io::Errno::NXIO.raw_os_error(),
            )));
        }
    }
    Ok(tty)
}

/// Whether the error says there is no terminal at all (no controlling terminal: ENXIO).
fn no_tty(e: &PromptError) -> bool {
    match e {
        PromptError::Terminal(e) => {
            e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error())
                || e.kind() == std::io::ErrorKind::NotFound
        }
        _ => false,
    }
}

/// Ask for approval: `Ok(true)` only on an explicit yes. An askpass program approves with exit
/// status 0 (OpenSSH's `SSH_ASKPASS_PROMPT=confirm` convention is set for it); on the terminal,
/// `y` or `yes`.
pub fn confirm(prompt: &str) -> Result<bool, PromptError> {
    ask_confirm(None, prompt)
}

/// [`confirm`] for another process, at its `place`.
pub fn confirm_at(place: &Place, prompt: &str) -> Result<bool, PromptError> {
    ask_confirm(Some(place), prompt)
}

fn ask_confirm(place: Option<&Place>, prompt: &str) -> Result<bool, PromptError> {
    if let Some(program) = env_program("KEEPOUT_ASKPASS") {
        return askpass_confirm(&program, prompt, place);
    }
    let mut pinentry_failed = None;
    if let Some(mut dialog) =
        pinentry_program(place).and_then(pinentry::ConfirmationDialog::with_binary)
    {
        match dialog
            .with_title("keepout")
            .with_timeout(timeout_secs())
            .with_unix_options(pinentry_options(place))
            .confirm(prompt)
        {
            Ok(yes) => return Ok(yes && place.is_none_or(still_ours)),
            Err(pinentry::Error::Cancelled | pinentry::Error::Timeout) => return Ok(false),
            Err(e) => pinentry_failed = Some(pinentry_error(e)),
        }
    }
    if let Some(t) = place.and_then(|p| p.terminal.as_ref()) {
        return terminal_confirm(&t.file, prompt).map(|yes| yes && (t.still_ours)());
    }
    match open_own_tty(place.is_some()).and_then(|tty| terminal_confirm(&tty, prompt)) {
        Err(e) if no_tty(&e) => {}
        other => return other,
    }
    if let Some(program) = env_program("SSH_ASKPASS") {
        return askpass_confirm(&program, prompt, place);
    }
    Err(nowhere("approval", place, pinentry_failed))
}

fn askpass_confirm(
    program: &str,
    prompt: &str,
    place: Option<&Place>,
) -> Result<bool, PromptError> {
    let fail = |e: std::io::Error| PromptError::Askpass {
        program: program.to_string(),
        detail: e.to_string(),
    };
    let mut child = askpass_command(program)
        .arg(prompt)
        .envs(place.map(Place::display_env).unwrap_or_default())
        .env("SSH_ASKPASS_PROMPT", "confirm")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(fail)?;
    Ok(wait_or_kill(&mut child)
        .map_err(fail)?
        .is_some_and(|s| s.success()))
}

/// Restores the terminal's modes when dropped.
struct Restore<'a> {
    tty: &'a std::fs::File,
    saved: rustix::termios::Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(self.tty, OptionalActions::Now, &self.saved);
    }
}

/// Put `tty` in line mode (echo on or off), type-ahead discarded; its modes come back on drop.
fn line_mode(tty: &std::fs::File, echo: bool) -> Result<Restore<'_>, PromptError> {
    let saved = rustix::termios::tcgetattr(tty).map_err(|e| PromptError::Terminal(e.into()))?;
    let mut mode = saved.clone();
    mode.local_modes.insert(LocalModes::ICANON);
    if echo {
        mode.local_modes.insert(LocalModes::ECHO);
    } else {
        mode.local_modes.remove(LocalModes::ECHO);
        mode.local_modes.insert(LocalModes::ECHONL);
    }
    mode.input_modes.insert(InputModes::ICRNL);
    mode.output_modes
        .insert(OutputModes::OPOST | OutputModes::ONLCR);
    let guard = Restore { tty, saved };
    // Flush: what was typed before the question (type-ahead) never answers it.
    rustix::termios::tcsetattr(tty, OptionalActions::Flush, &mode)
        .map_err(|e| PromptError::Terminal(e.into()))?;
    Ok(guard)
}

/// One line from `tty` (in line mode: one read returns at most one line), without what
/// follows it.
fn read_line(tty: &std::fs::File) -> Result<Zeroizing<String>, PromptError> {
    let mut buf = Zeroizing::new(vec![0u8; 1024]);
    let n = (&*tty).read(&mut buf).map_err(PromptError::Terminal)?;
    let line = buf[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(Zeroizing::new(String::from_utf8_lossy(line).into_owned()))
}

fn terminal_confirm(tty: &std::fs::File, prompt: &str) -> Result<bool, PromptError> {
    let guard = line_mode(tty, true)?;
    (&*tty)
        .write_all(format!("{} [y/N] ", printable(prompt)).as_bytes())
        .map_err(PromptError::Terminal)?;
    if !tty_readable(tty)? {
        let _ = (&*tty).write_all(b"\n(no answer: no)\n");
        return Ok(false);
    }
    let line = read_line(tty)?;
    drop(guard);
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `text` with control characters (escape sequences included) shown as `?`, newlines kept: what
/// goes to a terminal names processes by their argv, which they choose.
/// Whether `c` is a bidirectional control (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
/// U+061C): shown on a terminal, it reorders the text after it, so a name that holds one can
/// make a question or a file name read as something else.
pub fn reorders_text(c: char) -> bool {
    matches!(c as u32, 0x202a..=0x202e | 0x2066..=0x2069 | 0x200e | 0x200f | 0x061c)
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' || !(c.is_control() || reorders_text(c)) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn env_program(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

fn askpass_secret(
    program: &str,
    prompt: &str,
    place: Option<&Place>,
) -> Result<Zeroizing<String>, PromptError> {
    let fail = |detail: String| PromptError::Askpass {
        program: program.to_string(),
        detail,
    };
    let mut child = askpass_command(program)
        .arg(prompt)
        .envs(place.map(Place::display_env).unwrap_or_default())
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

fn terminal_secret(tty: &std::fs::File, prompt: &str) -> Result<Zeroizing<String>, PromptError> {
    let guard = line_mode(tty, false)?;
    (&*tty)
        .write_all(printable(prompt).as_bytes())
        .map_err(PromptError::Terminal)?;
    if !tty_readable(tty)? {
        let _ = (&*tty).write_all(b"\n(no answer)\n");
        return Err(PromptError::Cancelled);
    }
    let mut buf = Zeroizing::new(vec![0u8; 4096]);
    let n = (&*tty).read(&mut buf).map_err(PromptError::Terminal)?;
    drop(guard);
    if n == 0 {
        return Err(PromptError::Cancelled);
    }
    let line = buf[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8(line.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| PromptError::Terminal(std::io::Error::other("the answer is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_not_written_to_a_terminal() {
        assert_eq!(
            printable("git \u{1b}]0;x\u{7}push\nnext\u{9b}"),
            "git ?]0;x?push\nnext?"
        );
        assert_eq!(
            printable("ssh evil\u{202e}moc.buhtig"),
            "ssh evil?moc.buhtig",
            "a bidirectional override cannot make the host read backwards"
        );
    }
}
