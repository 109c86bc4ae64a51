//! What the sandbox may write to the maintainer's terminal (threat-model A17).
//!
//! A terminal does more than draw: escape sequences written to it can set the system clipboard
//! (OSC 52) or read it back, set the window title and then ask the terminal to type it back as
//! input (`CSI 21t`: the classic injection into the shell that runs next), query colours, make
//! hyperlinks that lie about their target, talk through tmux to the terminal outside it
//! (`DCS tmux;`), program function keys (DECUDK), move and resize the window, or checksum what
//! is on the screen. The relay of [`crate`]'s pseudo-terminal passes the command's output through
//! a [`Filter`], which keeps what draws text and sets its modes and drops the rest.
//!
//! # What it guarantees
//!
//! * **Passed unchanged, byte for byte**: text (valid UTF-8), C0 controls, colours and
//!   attributes (SGR, including `38:2::r:g:b` forms), cursor movement, erase, insert/delete,
//!   scroll regions, tabs, DEC private modes (`CSI ? … h/l`: alternate screen, bracketed paste,
//!   mouse modes, focus events, synchronized output), keypad modes (`ESC =`, `ESC >`),
//!   character sets (`ESC ( 0`), cursor style, the kitty keyboard protocol, `modifyOtherKeys`,
//!   and the queries whose answer is a short string fixed by the terminal, not by the command:
//!   DA (`CSI c`, `CSI > c`, `CSI = c`), DSR/CPR (`CSI 5n`, `CSI 6n`, `CSI ? … n`), DECRQM
//!   (`CSI ? … $p`), XTVERSION (`CSI > q`), and the text-area size reports `CSI 14/16/18/19 t`.
//!   Full-screen programs (vim, less, htop) need those.
//! * **Dropped**, whole (introducer, body and terminator), and counted by kind (see
//!   [`Filter::dropped`]): every OSC (title, clipboard, hyperlink, colour set and query,
//!   notifications, ...; with [`TerminalPolicy::allow_clipboard`] an OSC 52 clipboard *write* of
//!   plain base64 passes, never a read `?`), every DCS (DECRQSS, XTGETTCAP, tmux passthrough,
//!   sixel, DECUDK), APC, PM, SOS, `ESC %` (leaving UTF-8 would make the terminal read text
//!   bytes as 8-bit controls), and every CSI not in the list above: window operations and title
//!   reports (`CSI … t` but the size reports and the title stack 22/23), media copy
//!   (`CSI i`), keyboard lock (`CSI 2h`), rectangle checksums (`CSI * y`), title modes
//!   (`CSI > t`), graphics attributes, and unknown ones.
//! * **8-bit controls**: 0x9B (CSI), 0x9D (OSC), 0x90 (DCS), 0x98, 0x9E, 0x9F are treated as
//!   their `ESC x` forms, raw or encoded as UTF-8 code points (`C2 9B`); a 0x9B inside a UTF-8
//!   character (`ě` is `C4 9B`) is text. Bytes that are not valid UTF-8 and not a C1 control
//!   are written as U+FFFD, so the terminal's decoder never meets an overlong or broken sequence
//!   that it could read differently (an overlong `C0 9B` is ESC to a lax decoder).
//! * **Chunking does not matter**: the filter is a state machine fed any split of the stream;
//!   the output is the same. It holds back only an unfinished sequence or UTF-8 character, never
//!   text that is complete: [`Filter::feed`] writes everything up to there at once.
//! * **Bounded memory**: at most [`MAX_SEQUENCE`] bytes of a CSI or escape sequence (longer:
//!   dropped), the first bytes of a string to name it, and with `allow_clipboard` an OSC 52 of
//!   at most [`MAX_CLIPBOARD`] bytes (longer: dropped). An unterminated string is skipped, not
//!   stored, until its end (BEL, ST, or any ESC), as the terminal itself would; at the end of the
//!   stream ([`Filter::finish`]) a sequence still open is dropped.
//!
//! The state machine follows Paul Williams' DEC parser (<https://vt100.net/emu/dec_ansi_parser>),
//! which xterm, VTE and alacritty's `vte` implement: ground, escape, escape intermediate, CSI
//! (entry, param and intermediate merged: the bytes are kept and judged at the final byte), CSI
//! ignore, and one string state for OSC, DCS, SOS, PM and APC. C0 controls inside an escape or
//! CSI sequence stay in it, in place (the terminal executes them there); ESC inside a sequence
//! starts a new one; CAN and SUB cancel one. It is written here rather than on `vte` because
//! `vte` hands out parsed parameters, not the bytes, so what it keeps could not be re-emitted
//! byte for byte.
//!
//! What it cannot do: output written to a file and `cat`-ed later is not filtered (only the
//! relay is), and it assumes the maintainer's terminal decodes UTF-8 (a terminal set to an 8-bit
//! charset would read a byte such as the 0x9B in `ě` as CSI).

use serde::{Deserialize, Serialize};

/// What the sandbox's terminal output may do beyond drawing (part of the [`crate::Policy`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TerminalPolicy {
    /// Pass OSC 52 clipboard writes (`--allow-clipboard`); clipboard reads are always dropped.
    #[serde(default)]
    pub allow_clipboard: bool,
}

/// One kind of sequence the filter dropped, and how many times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// What it was, e.g. `OSC 52 clipboard write`, `CSI 21t title report` (printable ASCII).
    pub what: String,
    pub count: u64,
}

/// Most bytes kept of an escape or CSI sequence; a longer one is dropped.
pub const MAX_SEQUENCE: usize = 4096;
/// Most bytes of an OSC 52 clipboard write passed with `allow_clipboard`; a longer one is
/// dropped.
pub const MAX_CLIPBOARD: usize = 1 << 20;
/// The first bytes of a string kept to say what it was.
const NAME_BYTES: usize = 40;
/// Distinct kinds listed; the rest are counted as `other`.
const MAX_KINDS: usize = 32;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const DEL: u8 = 0x7f;
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Str {
    Osc,
    Dcs,
    Sos,
    Pm,
    Apc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Text and C0 controls pass.
    Ground,
    /// Inside a multi-byte UTF-8 character (its bytes so far in `held`): `need` more
    /// continuation bytes, the next one in `lo..=hi`.
    Utf8 { need: u8, lo: u8, hi: u8 },
    /// After ESC.
    Escape,
    /// After ESC and intermediates (0x20-0x2F, in `body`).
    EscapeIntermediate,
    /// After CSI; parameters and intermediates in `body`.
    Csi,
    /// A CSI that is dropped whatever its final byte (malformed or too long).
    CsiIgnore,
    /// The body of a string; `esc`: its last byte was ESC.
    String { kind: Str, esc: bool },
}

/// The streaming filter; see the module documentation.
#[derive(Debug)]
pub struct Filter {
    policy: TerminalPolicy,
    state: State,
    /// The raw bytes of the sequence or character in progress (its introducer first).
    held: Vec<u8>,
    /// A CSI's parameter and intermediate bytes, an escape's intermediates, or the first bytes
    /// of a string (all of an OSC 52 when clipboard writes are allowed).
    body: Vec<u8>,
    /// Bytes of the string so far, kept or not.
    body_len: usize,
    /// The sequence in progress outgrew what is kept.
    overlong: bool,
    dropped: Vec<Dropped>,
}

impl Filter {
    pub fn new(policy: TerminalPolicy) -> Filter {
        Filter {
            policy,
            state: State::Ground,
            held: Vec::new(),
            body: Vec::new(),
            body_len: 0,
            overlong: false,
            dropped: Vec::new(),
        }
    }

    /// What was dropped so far, by kind, in the order first seen.
    pub fn dropped(&self) -> &[Dropped] {
        &self.dropped
    }

    /// Filter the next bytes of the stream, appending what passes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Ground => {
                    // The fast path: runs of ASCII text and whole UTF-8 characters.
                    let rest = &input[i..];
                    let run = rest
                        .iter()
                        .position(|&b| b == ESC || b >= 0x80)
                        .unwrap_or(rest.len());
                    out.extend_from_slice(&rest[..run]);
                    i += run;
                    if let Some(len) = input.get(i..).and_then(whole_character) {
                        out.extend_from_slice(&input[i..i + len]);
                        i += len;
                        continue;
                    }
                }
                State::String { esc: false, .. } if self.body.len() >= self.body_limit() => {
                    // Skipping a string's body that is not kept any more.
                    let rest = &input[i..];
                    let skip = rest
                        .iter()
                        .position(|&b| matches!(b, ESC | BEL | CAN | SUB))
                        .unwrap_or(rest.len());
                    self.body_len += skip;
                    i += skip;
                }
                _ => {}
            }
            if let Some(&b) = input.get(i) {
                if self.step(b, out) {
                    i += 1;
                }
            }
        }
    }

    /// The end of the stream: a sequence still open is dropped, an unfinished character is
    /// written as U+FFFD.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => {}
            State::Utf8 { .. } => out.extend_from_slice(REPLACEMENT),
            State::Escape | State::EscapeIntermediate => self.drop_as("unfinished escape sequence"),
            State::Csi | State::CsiIgnore => self.drop_as("unfinished CSI"),
            State::String { kind, .. } => {
                let what = self.string_name(kind);
                self.drop_as(&what);
            }
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.state = State::Ground;
        self.held.clear();
        self.body.clear();
        self.body_len = 0;
        self.overlong = false;
    }

    fn drop_as(&mut self, what: &str) {
        let what =
            if self.dropped.len() >= MAX_KINDS && !self.dropped.iter().any(|d| d.what == what) {
                "other"
            } else {
                what
            };
        match self.dropped.iter_mut().find(|d| d.what == what) {
            Some(d) => d.count += 1,
            None => self.dropped.push(Dropped {
                what: what.to_string(),
                count: 1,
            }),
        }
        self.reset();
    }

    fn hold(&mut self, b: u8) {
        if self.held.len() < MAX_SEQUENCE {
            self.held.push(b);
        } else {
            self.overlong = true;
        }
    }

    fn emit_held(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.held);
        self.reset();
    }

    fn start(&mut self, state: State) {
        self.body.clear();
        self.body_len = 0;
        self.state = state;
    }

    /// One byte in the current state; `false`: not consumed, look at it again (in the new state).
    fn step(&mut self, b: u8, out: &mut Vec<u8>) -> bool {
        match self.state {
            State::Ground => {
                self.ground(b, out);
                true
            }
            State::Utf8 { need, lo, hi } => {
                if !(lo..=hi).contains(&b) {
                    // A broken character: U+FFFD for what came, then this byte afresh.
                    out.extend_from_slice(REPLACEMENT);
                    self.reset();
                    return false;
                }
                self.held.push(b);
                if need > 1 {
                    self.state = State::Utf8 {
                        need: need - 1,
                        lo: 0x80,
                        hi: 0xbf,
                    };
                } else if self.held[0] == 0xc2 && b <= 0x9f {
                    // U+0080..U+009F: a C1 control, written as UTF-8.
                    self.c1(b, out);
                } else {
                    self.emit_held(out);
                }
                true
            }
            State::Escape | State::EscapeIntermediate => self.escape(b, out),
            State::Csi | State::CsiIgnore => self.csi(b, out),
            State::String { kind, esc } => self.string(kind, esc, b, out),
        }
    }

    fn ground(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            ESC => {
                self.reset();
                self.held.push(ESC);
                self.state = State::Escape;
            }
            0x00..=0x7f => out.push(b),
            0x80..=0x9f => {
                self.reset();
                self.held.push(b);
                self.c1(b, out);
            }
            _ => match utf8_lead(b) {
                Some((need, lo, hi)) => {
                    self.reset();
                    self.held.push(b);
                    self.state = State::Utf8 { need, lo, hi };
                }
                None => out.extend_from_slice(REPLACEMENT),
            },
        }
    }

    /// A C1 control whose bytes are in `held`.
    fn c1(&mut self, c: u8, out: &mut Vec<u8>) {
        let next = match c {
            0x9b => State::Csi,
            0x9d => State::String {
                kind: Str::Osc,
                esc: false,
            },
            0x90 => State::String {
                kind: Str::Dcs,
                esc: false,
            },
            0x98 => State::String {
                kind: Str::Sos,
                esc: false,
            },
            0x9e => State::String {
                kind: Str::Pm,
                esc: false,
            },
            0x9f => State::String {
                kind: Str::Apc,
                esc: false,
            },
            // NEL, IND, RI, HTS, SS2, SS3, ST, ...: they draw, or do nothing.
            _ => return self.emit_held(out),
        };
        self.start(next);
    }

    fn escape(&mut self, b: u8, out: &mut Vec<u8>) -> bool {
        let intermediate = self.state == State::EscapeIntermediate;
        match b {
            ESC => {
                self.reset();
                self.held.push(ESC);
                self.state = State::Escape;
            }
            CAN | SUB => {
                self.reset();
                out.push(b);
            }
            0x00..=0x1f | DEL => self.hold(b),
            0x20..=0x2f => {
                self.hold(b);
                if !intermediate {
                    self.body.clear();
                }
                if self.body.len() < 8 {
                    self.body.push(b);
                } else {
                    self.overlong = true;
                }
                self.state = State::EscapeIntermediate;
            }
            _ if intermediate && (0x30..=0x7e).contains(&b) => {
                if self.overlong {
                    self.drop_as("malformed escape sequence");
                } else if self.body.first() == Some(&b'%') {
                    self.drop_as("ESC % charset switch");
                } else {
                    self.hold(b);
                    self.emit_held(out);
                }
            }
            b'[' => {
                self.hold(b);
                self.start(State::Csi);
            }
            b']' | b'P' | b'X' | b'^' | b'_' => {
                self.hold(b);
                let kind = match b {
                    b']' => Str::Osc,
                    b'P' => Str::Dcs,
                    b'X' => Str::Sos,
                    b'^' => Str::Pm,
                    _ => Str::Apc,
                };
                self.start(State::String { kind, esc: false });
            }
            0x30..=0x7e => {
                if self.overlong {
                    self.drop_as("malformed escape sequence");
                } else {
                    self.hold(b);
                    self.emit_held(out);
                }
            }
            _ => {
                // A byte >= 0x80 cannot continue an escape sequence: drop it, look again.
                self.drop_as("malformed escape sequence");
                return false;
            }
        }
        true
    }

    fn csi(&mut self, b: u8, out: &mut Vec<u8>) -> bool {
        match b {
            ESC => {
                self.drop_as("malformed CSI");
                self.held.push(ESC);
                self.state = State::Escape;
            }
            CAN | SUB => {
                self.drop_as("malformed CSI");
                out.push(b);
            }
            0x00..=0x1f | DEL => self.hold(b),
            0x20..=0x3f => {
                self.hold(b);
                let after_intermediate = (0x30..=0x3f).contains(&b)
                    && self.body.iter().any(|c| (0x20..=0x2f).contains(c));
                if after_intermediate || self.body.len() >= MAX_SEQUENCE {
                    self.state = State::CsiIgnore;
                } else {
                    self.body.push(b);
                }
            }
            0x40..=0x7e => {
                if self.state == State::CsiIgnore || self.overlong {
                    self.drop_as("malformed CSI");
                } else if let Some(what) = csi_verdict(&self.body, b) {
                    self.drop_as(&what);
                } else {
                    self.hold(b);
                    self.emit_held(out);
                }
            }
            _ => {
                self.drop_as("malformed CSI");
                return false;
            }
        }
        true
    }

    /// How many body bytes of the string in progress are kept.
    fn body_limit(&self) -> usize {
        let clipboard = self.policy.allow_clipboard
            && matches!(self.state, State::String { kind: Str::Osc, .. })
            && self.body.starts_with(b"52;");
        if clipboard {
            MAX_CLIPBOARD
        } else {
            NAME_BYTES
        }
    }

    fn string(&mut self, kind: Str, esc: bool, b: u8, out: &mut Vec<u8>) -> bool {
        if esc {
            if b == b'\\' {
                self.end_string(kind, b"\x1b\\", out);
                return true;
            }
            // ESC ended the string unterminated and starts a sequence of its own.
            let what = self.string_name(kind);
            self.drop_as(&what);
            self.held.push(ESC);
            self.state = State::Escape;
            return false;
        }
        match b {
            ESC => self.state = State::String { kind, esc: true },
            BEL if kind == Str::Osc => self.end_string(kind, &[BEL], out),
            CAN | SUB => {
                let what = self.string_name(kind);
                self.drop_as(&what);
            }
            _ => {
                self.body_len += 1;
                if self.body.len() < self.body_limit() {
                    self.body.push(b);
                }
            }
        }
        true
    }

    fn end_string(&mut self, kind: Str, terminator: &[u8], out: &mut Vec<u8>) {
        let whole = self.body_len == self.body.len();
        if kind == Str::Osc && self.policy.allow_clipboard && whole && clipboard_write(&self.body) {
            out.extend_from_slice(&self.held);
            out.extend_from_slice(&self.body);
            out.extend_from_slice(terminator);
            self.reset();
        } else {
            let what = self.string_name(kind);
            self.drop_as(&what);
        }
    }

    fn string_name(&self, kind: Str) -> String {
        let body = &self.body[..self.body.len().min(NAME_BYTES)];
        match kind {
            Str::Osc => osc_name(body, self.body_len <= NAME_BYTES),
            Str::Dcs => dcs_name(body).into(),
            Str::Sos => "SOS".into(),
            Str::Pm => "PM".into(),
            Str::Apc if body.first() == Some(&b'G') => "APC kitty graphics".into(),
            Str::Apc => "APC".into(),
        }
    }
}

/// The length of the whole, valid UTF-8 character (of two bytes or more) at the start of
/// `bytes`, when it is one and not a C1 control.
fn whole_character(bytes: &[u8]) -> Option<usize> {
    let (need, lo, hi) = utf8_lead(*bytes.first()?)?;
    let len = need as usize + 1;
    let rest = bytes.get(1..len)?;
    let ok = (lo..=hi).contains(&rest[0])
        && rest[1..].iter().all(|b| (0x80..=0xbf).contains(b))
        && !(bytes[0] == 0xc2 && rest[0] <= 0x9f);
    ok.then_some(len)
}

/// For a UTF-8 lead byte: how many continuation bytes follow, and the range of the first.
fn utf8_lead(b: u8) -> Option<(u8, u8, u8)> {
    Some(match b {
        0xc2..=0xdf => (1, 0x80, 0xbf),
        0xe0 => (2, 0xa0, 0xbf),
        0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
        0xed => (2, 0x80, 0x9f),
        0xf0 => (3, 0x90, 0xbf),
        0xf1..=0xf3 => (3, 0x80, 0xbf),
        0xf4 => (3, 0x80, 0x8f),
        _ => return None,
    })
}

/// The first numeric parameter of `params` (digits up to `;` or `:`), if any.
fn first_param(params: &[u8]) -> Option<u32> {
    let digits: Vec<u8> = params
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return None;
    }
    Some(digits.iter().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

/// `None`: the CSI with parameter/intermediate bytes `body` and final byte `fin` passes;
/// otherwise what it is, for the report.
fn csi_verdict(body: &[u8], fin: u8) -> Option<String> {
    let (prefix, rest) = match body.first() {
        Some(&p @ 0x3c..=0x3f) => (p, &body[1..]),
        _ => (0, body),
    };
    let split = rest
        .iter()
        .position(|b| (0x20..=0x2f).contains(b))
        .unwrap_or(rest.len());
    let (params, inter) = rest.split_at(split);
    let marker = if prefix == 0 {
        String::new()
    } else {
        char::from(prefix).to_string()
    };
    let generic = || {
        format!(
            "CSI {marker}{}{}",
            String::from_utf8_lossy(inter),
            char::from(fin)
        )
    };
    if params.iter().any(|b| (0x3c..=0x3f).contains(b)) {
        return Some(generic());
    }
    let first = first_param(params);
    let pass = match (prefix, inter, fin) {
        // Cursor movement, erase, insert/delete, scroll, tabs, repeat, SGR, modes, DA, DSR/CPR,
        // scroll region and margins, save/restore cursor.
        (
            0,
            b"",
            b'@'..=b'M'
            | b'P'
            | b'S'
            | b'T'
            | b'X'
            | b'Z'
            | b'^'
            | b'`'
            | b'a'..=b'h'
            | b'j'..=b'n'
            | b'r'
            | b's'
            | b'u',
        ) => !(fin == b'h' && params.split(|&c| c == b';').any(|p| p == b"2")),
        // XTWINOPS: only the text area's size reports and the title stack.
        (0, b"", b't') => matches!(first, Some(14 | 16 | 18 | 19 | 22 | 23)),
        // DECSET/DECRST and their save/restore, selective erase, DEC DSR, kitty keyboard query,
        // modifyOtherKeys query, tab stops.
        (b'?', b"", b'h' | b'l' | b'r' | b's' | b'J' | b'K' | b'n' | b'u' | b'm' | b'W') => true,
        // DECRQM: is mode N set (answer: fixed digits).
        (0 | b'?', b"$", b'p') => true,
        // DA2, modifyOtherKeys, XTVERSION, kitty keyboard push, pointer mode, shift-escape.
        (b'>', b"", b'c' | b'm' | b'n' | b'q' | b'u' | b'p' | b's') => true,
        (b'=', b"", b'c' | b'u') | (b'<', b"", b'u') => true,
        // Cursor style, scroll left/right, soft reset, conformance level, protection.
        (0, b" ", b'q' | b'@' | b'A') | (0, b"!", b'p') | (0, b"\"", b'p' | b'q') => true,
        // Rectangular area operations (they draw), insert/delete columns, attribute extent.
        (0, b"$", b'r' | b't' | b'v' | b'x' | b'z' | b'{') | (0, b"'", b'}' | b'~') => true,
        (0, b"*", b'x') => true,
        _ => false,
    };
    if pass {
        return None;
    }
    Some(match (prefix, inter, fin) {
        (0, b"", b't') => match first {
            Some(21) => "CSI 21t title report".into(),
            Some(20) => "CSI 20t icon label report".into(),
            Some(n) => format!("CSI {n}t window op"),
            None => "CSI t window op".into(),
        },
        (0, b"", b'h') => "CSI 2h keyboard lock".into(),
        (_, b"", b'i') => format!("CSI {marker}i media copy"),
        (0, b"*", b'y') => "CSI *y checksum report".into(),
        (b'>', b"", b't' | b'T') => format!("CSI >{} title mode", char::from(fin)),
        _ => generic(),
    })
}

/// What an OSC with this (start of its) body is; `whole`: the body is all there.
fn osc_name(body: &[u8], whole: bool) -> String {
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 {
        return "OSC".into();
    }
    let n = first_param(body).unwrap_or(0);
    let payload = body.get(digits + 1..).unwrap_or_default();
    let query = payload.contains(&b'?');
    match n {
        0 => "OSC 0 title".into(),
        1 => "OSC 1 icon title".into(),
        2 => "OSC 2 title".into(),
        4 | 5 | 10..=19 if query => format!("OSC {n} colour query"),
        4 | 5 | 10..=19 => format!("OSC {n} colour set"),
        104 | 105 | 110..=119 => format!("OSC {n} colour reset"),
        7 => "OSC 7 working directory".into(),
        8 => "OSC 8 hyperlink".into(),
        9 | 99 | 777 => format!("OSC {n} notification"),
        50 => "OSC 50 font".into(),
        52 => {
            let data = payload.splitn(2, |&c| c == b';').nth(1);
            if whole && data == Some(b"?") {
                "OSC 52 clipboard read".into()
            } else {
                "OSC 52 clipboard write".into()
            }
        }
        133 => "OSC 133 prompt mark".into(),
        1337 => "OSC 1337 iTerm2".into(),
        _ => format!("OSC {n}"),
    }
}

/// What a DCS with this (start of its) body is.
fn dcs_name(body: &[u8]) -> &'static str {
    if body.starts_with(b"tmux;") {
        return "DCS tmux passthrough";
    }
    let params = body
        .iter()
        .take_while(|b| (0x30..=0x3f).contains(*b))
        .count();
    let rest = &body[params..];
    let inter = rest
        .iter()
        .take_while(|b| (0x20..=0x2f).contains(*b))
        .count();
    match (&rest[..inter], rest.get(inter)) {
        (b"$", Some(b'q')) => "DCS $q status request (DECRQSS)",
        (b"+", Some(b'q')) => "DCS +q capability request (XTGETTCAP)",
        (b"+", Some(b'p')) => "DCS +p set capability (XTSETTCAP)",
        (b"", Some(b'q')) => "DCS sixel graphics",
        (b"", Some(b'|')) => "DCS | user-defined keys (DECUDK)",
        (b"", Some(b'{')) => "DCS { soft font (DECDLD)",
        _ => "DCS",
    }
}

/// An OSC 52 body that writes the clipboard: `52;` selections `;` base64 (not `?`).
fn clipboard_write(body: &[u8]) -> bool {
    let Some(rest) = body.strip_prefix(b"52;") else {
        return false;
    };
    let Some(semi) = rest.iter().position(|&c| c == b';') else {
        return false;
    };
    let (targets, data) = (&rest[..semi], &rest[semi + 1..]);
    targets
        .iter()
        .all(|c| matches!(c, b'c' | b'p' | b'q' | b's' | b'0'..=b'7'))
        && data
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
}

/// The one-line summary: `3 sequences: OSC 52 clipboard write · OSC 2 title ×2`.
pub fn summary(dropped: &[Dropped]) -> Option<String> {
    let total: u64 = dropped.iter().map(|d| d.count).sum();
    if total == 0 {
        return None;
    }
    let shown: Vec<String> = dropped
        .iter()
        .take(6)
        .map(|d| match d.count {
            1 => d.what.clone(),
            n => format!("{} ×{n}", d.what),
        })
        .collect();
    let more = dropped.len().saturating_sub(6);
    Some(format!(
        "{total} sequence{}: {}{}",
        if total == 1 { "" } else { "s" },
        shown.join(" · "),
        if more > 0 {
            format!(" · and {more} more kinds")
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(policy: TerminalPolicy, chunks: &[&[u8]]) -> (Vec<u8>, Vec<Dropped>) {
        let mut f = Filter::new(policy);
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        f.finish(&mut out);
        (out, f.dropped().to_vec())
    }

    /// The input whole, split in two at every byte, and byte by byte: always the same result.
    fn filter_with(policy: TerminalPolicy, input: &[u8]) -> (Vec<u8>, Vec<Dropped>) {
        let whole = run_with(policy, &[input]);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(
                run_with(policy, &[a, b]),
                whole,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run_with(policy, &bytes), whole, "byte by byte");
        whole
    }

    fn filter(input: &[u8]) -> (Vec<u8>, Vec<Dropped>) {
        filter_with(TerminalPolicy::default(), input)
    }

    fn kinds(dropped: &[Dropped]) -> Vec<&str> {
        dropped.iter().map(|d| d.what.as_str()).collect()
    }

    /// `input` passes byte for byte and nothing is dropped.
    fn passes(input: &[u8]) {
        let (out, dropped) = filter(input);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(input),
            "must pass unchanged"
        );
        assert_eq!(out, input);
        assert!(dropped.is_empty(), "nothing dropped: {dropped:?}");
    }

    /// `a SEQ b` comes out as `ab`, and SEQ is reported as `what`.
    fn dropped_as(seq: &[u8], what: &str) {
        let input = [b"a".as_slice(), seq, b"b"].concat();
        let (out, dropped) = filter(&input);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ab",
            "{:?} must be dropped",
            String::from_utf8_lossy(seq)
        );
        assert_eq!(
            kinds(&dropped),
            [what],
            "{:?}",
            String::from_utf8_lossy(seq)
        );
    }

    #[test]
    fn text_and_controls_pass() {
        passes(b"hello, world\r\n\tx\x08y\x07\x0e\x0f\x7f");
        passes("ě Ŝ œ — “quotes” 日本語 🦀 \u{10ffff}".as_bytes());
        // 0x9B, 0x9C and 0x9D as UTF-8 continuation bytes are text, not CSI, ST or OSC.
        passes(b"\xc4\x9b21t \xc5\x9c \xe2\x80\x9d52;c;QQ==\x07");
    }

    #[test]
    fn drawing_passes_byte_exact() {
        for seq in [
            "\x1b[0m\x1b[1;31mred\x1b[0m",
            "\x1b[38;5;196m\x1b[48;2;10;20;30m\x1b[38:2::255:0:0m\x1b[4:3m\x1b[58:5:1m",
            "\x1b[H\x1b[2J\x1b[3J\x1b[10;20H\x1b[5A\x1b[B\x1b[3C\x1b[D\x1b[E\x1b[F\x1b[7G\x1b[K\x1b[1K",
            "\x1b[3;20r\x1b[r\x1b[2L\x1b[3M\x1b[4P\x1b[5@\x1b[6X\x1b[S\x1b[T\x1b[3b\x1b[5d\x1b[10`",
            "\x1b[?1049h\x1b[?1049l\x1b[?2004h\x1b[?2004l\x1b[?25l\x1b[?25h\x1b[?7l",
            "\x1b[?1000h\x1b[?1002h\x1b[?1006h\x1b[?1015h\x1b[?1004h\x1b[?2026h\x1b[?1h\x1b=\x1b[?1l\x1b>",
            "\x1b7\x1b8\x1b[s\x1b[u\x1bM\x1bD\x1bE\x1bH\x1bc\x1b(0qqq\x1b(B\x1b)0\x1b#8",
            "\x1b[2 q\x1b[!p\x1b[62;1\"p\x1b[>4;2m\x1b[>4m\x1b[>1u\x1b[<u\x1b[=1;1u\x1b[?u",
            "\x1b[?1049$p\x1b[12$p\x1b[4h\x1b[4l\x1b[20h\x1b[g\x1b[3g\x1b[I\x1b[Z",
            // Queries with fixed answers: DA1, DA2, DA3, DSR, CPR, DECXCPR, XTVERSION, sizes.
            "\x1b[c\x1b[0c\x1b[>c\x1b[>0c\x1b[=c\x1b[5n\x1b[6n\x1b[?6n\x1b[>q\x1b[18t\x1b[14t\x1b[16t\x1b[19t",
            // The title stack (vim pushes and pops it).
            "\x1b[22;0t\x1b[22;2t\x1b[23;0t\x1b[23;2t",
            // C0 controls inside a sequence stay in place; U+009B (CSI) that draws passes.
            "\x1b[1\r;31m\u{9b}0m\u{85}",
        ] {
            passes(seq.as_bytes());
        }
        // The 8-bit forms as raw bytes (not UTF-8): CSI 1m, NEL.
        passes(b"\x9b1;32mgreen\x9b0m\x85");
    }

    /// Output modelled on what vim 9 writes at start and quit with TERM=xterm-256color (written
    /// by hand from its termcap entries, not a capture; the suite runs the real vim).
    #[test]
    fn vim_like_output_passes_byte_exact() {
        let vim = concat!(
            "\x1b[?1049h\x1b[22;0;0t\x1b[>4;2m\x1b[?1h\x1b=\x1b[H\x1b[2J\x1b]11;?\x07",
            "\x1b[?2004h\x1b[1;24r\x1b[?12h\x1b[?12l\x1b[22;2t\x1b[22;1t\x1b[27m\x1b[23m\x1b[29m",
            "\x1b[m\x1b[H\x1b[2J\x1b[?25l\x1b[24;1H\"x.txt\" [New]\x1b[2;1H\x1b[94m~                 ",
            "\x1b[3;1H~                 \x1b[m\x1b[24;63H0,0-1\x1b[9CAll\x1b[1;1H\x1b[?25h",
            "\x1b[?1004h\x1b[?2004l\x1b[>4;m\x1b[23;2t\x1b[23;1t\x1b[?1004l\x1b[?1l\x1b>",
            "\x1b[?1049l\x1b[23;0;0t",
        );
        let (out, dropped) = filter(vim.as_bytes());
        // All of it but the background-colour query passes.
        assert_eq!(
            String::from_utf8_lossy(&out),
            vim.replace("\x1b]11;?\x07", "")
        );
        assert_eq!(kinds(&dropped), ["OSC 11 colour query"]);
    }

    #[test]
    fn osc_is_dropped() {
        dropped_as(b"\x1b]52;c;YXR0YWNr\x07", "OSC 52 clipboard write");
        dropped_as(b"\x1b]52;c;YXR0YWNr\x1b\\", "OSC 52 clipboard write");
        dropped_as(b"\x1b]52;c;?\x07", "OSC 52 clipboard read");
        dropped_as(b"\x1b]52;;?\x1b\\", "OSC 52 clipboard read");
        dropped_as(b"\x1b]8;;https://evil.example/\x1b\\", "OSC 8 hyperlink");
        dropped_as(b"\x1b]0;; rm -rf ~\n\x07", "OSC 0 title");
        dropped_as(b"\x1b]1;icon\x07", "OSC 1 icon title");
        dropped_as(b"\x1b]2;title\x1b\\", "OSC 2 title");
        dropped_as(b"\x1b]4;1;?\x07", "OSC 4 colour query");
        dropped_as(b"\x1b]4;1;rgb:ff/00/00\x07", "OSC 4 colour set");
        dropped_as(b"\x1b]10;?\x07", "OSC 10 colour query");
        dropped_as(b"\x1b]11;?\x1b\\", "OSC 11 colour query");
        dropped_as(b"\x1b]12;#ff0000\x07", "OSC 12 colour set");
        dropped_as(b"\x1b]104\x07", "OSC 104 colour reset");
        dropped_as(b"\x1b]7;file://host/tmp\x07", "OSC 7 working directory");
        dropped_as(b"\x1b]777;notify;a;b\x07", "OSC 777 notification");
        dropped_as(b"\x1b]1337;File=x\x07", "OSC 1337 iTerm2");
        dropped_as(b"\x1b]50;?\x07", "OSC 50 font");
        dropped_as(b"\x1b]l\x07", "OSC");
        dropped_as(b"\x1b]\x07", "OSC");
        dropped_as(b"\x1b]123456;x\x07", "OSC");
    }

    /// The "click" text of a dropped hyperlink stays; only the link goes.
    #[test]
    fn a_hyperlinks_text_stays() {
        let (out, dropped) = filter(b"\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\");
        assert_eq!(out, b"click");
        assert_eq!(dropped[0].count, 2);
    }

    #[test]
    fn dcs_apc_pm_sos_are_dropped() {
        dropped_as(b"\x1bPtmux;hello\x1b\\", "DCS tmux passthrough");
        dropped_as(b"\x1bP$qm\x1b\\", "DCS $q status request (DECRQSS)");
        dropped_as(
            b"\x1bP+q544e\x1b\\",
            "DCS +q capability request (XTGETTCAP)",
        );
        dropped_as(b"\x1bP0;0;0q#0;2;0;0;0#0~~@@\x1b\\", "DCS sixel graphics");
        dropped_as(b"\x1bPq\"1;1;1;1#0~\x1b\\", "DCS sixel graphics");
        dropped_as(
            b"\x1bP1;1|17/6563686f\x1b\\",
            "DCS | user-defined keys (DECUDK)",
        );
        dropped_as(b"\x1bP\x1b\\", "DCS");
        dropped_as(b"\x1b_Gf=100;AAAA\x1b\\", "APC kitty graphics");
        dropped_as(b"\x1b_hello\x1b\\", "APC");
        dropped_as(b"\x1b^privacy\x1b\\", "PM");
        dropped_as(b"\x1bXstart of string\x1b\\", "SOS");
    }

    /// tmux passthrough with the inner ESC doubled: the DCS ends at the first inner ESC (as in
    /// the DEC parser), and the OSC 52 inside is dropped in its own right.
    #[test]
    fn tmux_passthrough_inner_sequence_is_dropped_too() {
        // The ST left over after the inner BEL passes: alone it does nothing.
        let (out, dropped) = filter(b"a\x1bPtmux;\x1b\x1b]52;c;YXR0YWNr\x07\x1b\\b");
        assert_eq!(out, b"a\x1b\\b");
        assert_eq!(
            kinds(&dropped),
            ["DCS tmux passthrough", "OSC 52 clipboard write"]
        );
        let (out, dropped) = filter(b"a\x1bPtmux;\x1b]2;t\x07\x1b\\b");
        assert_eq!(out, b"a\x1b\\b");
        assert_eq!(kinds(&dropped), ["DCS tmux passthrough", "OSC 2 title"]);
    }

    #[test]
    fn csi_beyond_drawing_is_dropped() {
        dropped_as(b"\x1b[21t", "CSI 21t title report");
        dropped_as(b"\x1b[20t", "CSI 20t icon label report");
        dropped_as(b"\x1b[8;100;300t", "CSI 8t window op");
        dropped_as(b"\x1b[4;2000;2000t", "CSI 4t window op");
        dropped_as(b"\x1b[3;0;0t", "CSI 3t window op");
        dropped_as(b"\x1b[2t", "CSI 2t window op");
        dropped_as(b"\x1b[11t", "CSI 11t window op");
        dropped_as(b"\x1b[13t", "CSI 13t window op");
        dropped_as(b"\x1b[t", "CSI t window op");
        dropped_as(b"\x1b[>0t", "CSI >t title mode");
        dropped_as(b"\x1b[>3T", "CSI >T title mode");
        dropped_as(b"\x1b[5i", "CSI i media copy");
        dropped_as(b"\x1b[?5i", "CSI ?i media copy");
        dropped_as(b"\x1b[2h", "CSI 2h keyboard lock");
        dropped_as(b"\x1b[4;2h", "CSI 2h keyboard lock");
        dropped_as(b"\x1b[1;1;1;1;1;1*y", "CSI *y checksum report");
        dropped_as(b"\x1b[?1;1;0S", "CSI ?S");
        dropped_as(b"\x1b[#P", "CSI #P");
        dropped_as(b"\x1b[1;2'z", "CSI 'z");
        dropped_as(b"\x1b[1$w", "CSI $w");
        dropped_as(b"\x1b[1q", "CSI q");
        // A private marker after the first byte, a parameter after an intermediate.
        dropped_as(b"\x1b[1?h", "CSI h");
        dropped_as(b"\x1b[1 1q", "malformed CSI");
    }

    #[test]
    fn eight_bit_forms_are_dropped_too() {
        // Raw C1 bytes.
        dropped_as(b"\x9b21t", "CSI 21t title report");
        dropped_as(b"\x9d52;c;YXR0YWNr\x07", "OSC 52 clipboard write");
        dropped_as(b"\x9d2;t\x1b\\", "OSC 2 title");
        dropped_as(b"\x90$qm\x1b\\", "DCS $q status request (DECRQSS)");
        dropped_as(b"\x9f_x\x1b\\", "APC");
        dropped_as(b"\x9ex\x1b\\", "PM");
        dropped_as(b"\x98x\x1b\\", "SOS");
        // C1 code points encoded as UTF-8 (U+009B, U+009D).
        dropped_as(b"\xc2\x9b21t", "CSI 21t title report");
        dropped_as(b"\xc2\x9d52;c;YXR0YWNr\x07", "OSC 52 clipboard write");
        dropped_as(b"\xc2\x90tmux;x\x1b\\", "DCS tmux passthrough");
    }

    /// Bytes that are not UTF-8 become U+FFFD, so no decoder can read them as a control: an
    /// overlong `C0 9B` is ESC to a lax one; here the 9B after it is a C1 CSI of its own.
    #[test]
    fn broken_utf8_becomes_replacement_characters() {
        let (out, dropped) = filter(b"a\xffb\xc3(c\xe2\x82d\xf0\x9f\x98");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\u{fffd}b\u{fffd}(c\u{fffd}d\u{fffd}"
        );
        assert!(dropped.is_empty());
        // C0 9B is an overlong ESC: C0 becomes U+FFFD, so `9B P` is the CSI DCH we judged.
        let (out, dropped) = filter(b"\xc0\x9bP$q\x1b\\x");
        assert_eq!(out, b"\xef\xbf\xbd\x9bP$q\x1b\\x");
        assert!(dropped.is_empty());
        // E0 80 9B (overlong ESC): E0 is broken, 80 is a C1 control (PAD), 9B starts a CSI.
        let (out, dropped) = filter(b"\xe0\x80\x9b21tz");
        assert_eq!(out, b"\xef\xbf\xbd\x80z");
        assert_eq!(kinds(&dropped), ["CSI 21t title report"]);
    }

    #[test]
    fn charset_switch_away_from_utf8_is_dropped() {
        dropped_as(b"\x1b%@", "ESC % charset switch");
        dropped_as(b"\x1b%G", "ESC % charset switch");
    }

    #[test]
    fn cancel_and_restart() {
        // CAN ends a CSI (dropped); ESC restarts a sequence.
        let (out, dropped) = filter(b"\x1b[21\x18t\x1b\x1b[1mx");
        assert_eq!(out, b"\x18t\x1b[1mx");
        assert_eq!(kinds(&dropped), ["malformed CSI"]);
        // An OSC interrupted by ESC [: dropped, and the CSI after it is judged on its own.
        let (out, dropped) = filter(b"\x1b]2;x\x1b[31mred\x1b]2;y\x1b[21t");
        assert_eq!(out, b"\x1b[31mred");
        assert_eq!(kinds(&dropped), ["OSC 2 title", "CSI 21t title report"]);
        assert_eq!(dropped[0].count, 2);
        // A byte >= 0x80 breaks an escape sequence; the byte stays text.
        let (out, dropped) = filter("\x1bé\x1b[1é".as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), "éé");
        assert_eq!(
            kinds(&dropped),
            ["malformed escape sequence", "malformed CSI"]
        );
    }

    #[test]
    fn an_unfinished_sequence_at_the_end_is_dropped() {
        for (input, what) in [
            (&b"x\x1b"[..], "unfinished escape sequence"),
            (b"x\x1b(", "unfinished escape sequence"),
            (b"x\x1b[2", "unfinished CSI"),
            (b"x\x1b]52;c;YQ==", "OSC 52 clipboard write"),
            (b"x\x1b]2;title\x1b", "OSC 2 title"),
            (b"x\x1bPtmux;", "DCS tmux passthrough"),
        ] {
            let (out, dropped) = filter(input);
            assert_eq!(out, b"x");
            assert_eq!(kinds(&dropped), [what]);
        }
        let (out, _) = filter(b"x\xe2\x82");
        assert_eq!(String::from_utf8(out).unwrap(), "x\u{fffd}");
    }

    /// Plain text is never held back: what a read completes goes out with it.
    #[test]
    fn complete_text_is_not_held_back() {
        let mut f = Filter::new(TerminalPolicy::default());
        let mut out = Vec::new();
        f.feed(b"progress 10%\r\x1b[1;32m", &mut out);
        assert_eq!(out, b"progress 10%\r\x1b[1;32m");
        out.clear();
        // Held: only the unfinished sequence and character.
        f.feed(b"ok \xe2\x9c", &mut out);
        assert_eq!(out, b"ok ");
        out.clear();
        f.feed(b"\x93 \x1b[3", &mut out);
        assert_eq!(out, "✓ ".as_bytes());
        out.clear();
        f.feed(b"1mred", &mut out);
        assert_eq!(out, b"\x1b[31mred");
    }

    /// A string that never ends costs no memory: it is skipped, and what follows its end passes.
    #[test]
    fn an_endless_string_is_not_stored() {
        for policy in [
            TerminalPolicy::default(),
            TerminalPolicy {
                allow_clipboard: true,
            },
        ] {
            let mut f = Filter::new(policy);
            let mut out = Vec::new();
            f.feed(b"\x1b]52;c;", &mut out);
            let chunk = vec![b'A'; 1 << 16];
            for _ in 0..64 {
                f.feed(&chunk, &mut out);
            }
            assert!(out.is_empty());
            assert!(f.body.len() <= MAX_CLIPBOARD && f.held.len() <= MAX_SEQUENCE);
            f.feed(b"\x07after", &mut out);
            assert_eq!(out, b"after");
            assert_eq!(kinds(f.dropped()), ["OSC 52 clipboard write"]);
        }
        // A CSI that goes on and on is dropped at its final byte.
        let mut f = Filter::new(TerminalPolicy::default());
        let mut out = Vec::new();
        f.feed(b"\x1b[", &mut out);
        for _ in 0..100 {
            f.feed(&[b'1'; 1000], &mut out);
        }
        assert!(f.held.len() <= MAX_SEQUENCE && f.body.len() <= MAX_SEQUENCE);
        f.feed(b"mx", &mut out);
        assert_eq!(out, b"x");
        assert_eq!(kinds(f.dropped()), ["malformed CSI"]);
    }

    #[test]
    fn allow_clipboard_passes_writes_only() {
        let allow = TerminalPolicy {
            allow_clipboard: true,
        };
        for write in [
            &b"\x1b]52;c;YXR0YWNr\x07"[..],
            b"\x1b]52;c;YXR0YWNr\x1b\\",
            b"\x1b]52;pc;\x07",
            b"\x9d52;s0;QQ==\x07",
        ] {
            let (out, dropped) = filter_with(allow, write);
            assert_eq!(out, write);
            assert!(dropped.is_empty());
        }
        for (read, what) in [
            (&b"\x1b]52;c;?\x07"[..], "OSC 52 clipboard read"),
            (b"\x1b]52;;?\x1b\\", "OSC 52 clipboard read"),
            (b"\x1b]52;c;not base64!\x07", "OSC 52 clipboard write"),
            (b"\x1b]52;c;YQ==\x1b[1m", "OSC 52 clipboard write"),
            (b"\x1b]52;c\x07", "OSC 52 clipboard write"),
            (b"\x1b]2;title\x07", "OSC 2 title"),
        ] {
            let (out, dropped) = filter_with(allow, read);
            assert!(!out.starts_with(b"\x1b]"), "{read:?}");
            assert_eq!(kinds(&dropped), [what]);
        }
        // Longer than MAX_CLIPBOARD: dropped.
        let mut big = b"\x1b]52;c;".to_vec();
        big.extend(std::iter::repeat_n(b'Q', MAX_CLIPBOARD + 10));
        big.push(BEL);
        let (out, dropped) = run_with(allow, &[&big]);
        assert!(out.is_empty());
        assert_eq!(kinds(&dropped), ["OSC 52 clipboard write"]);
    }

    #[test]
    fn kinds_are_bounded_and_summarised() {
        let mut f = Filter::new(TerminalPolicy::default());
        let mut out = Vec::new();
        for n in 0..1000 {
            f.feed(format!("\x1b]{}0;x\x07", 2000 + n).as_bytes(), &mut out);
        }
        assert_eq!(f.dropped().len(), MAX_KINDS + 1);
        assert_eq!(f.dropped().last().unwrap().what, "other");
        assert_eq!(f.dropped().iter().map(|d| d.count).sum::<u64>(), 1000);
        let (_, dropped) = filter(b"\x1b]52;c;QQ==\x07\x1b]2;a\x07\x1b]2;b\x07\x1b[21t");
        assert_eq!(
            summary(&dropped).unwrap(),
            "4 sequences: OSC 52 clipboard write · OSC 2 title ×2 · CSI 21t title report"
        );
        assert_eq!(summary(&[]), None);
    }

    /// One stream with every kind, split everywhere: the same as whole.
    #[test]
    fn a_mixed_stream_survives_any_chunking() {
        let stream = concat!(
            "\x1b[1;31mFAILED\x1b[0m ě \x1b]52;c;YQ==\x07\x1b[?1049h\x1b]2;t\x1b\\",
            "\u{9b}21t\x1bP$qm\x1b\\\x1b[6n\x1b_x\x1b\\🦀\x1b[21t\x1b(0q\x1b(B\x1b[K",
        );
        let (out, dropped) = filter(stream.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\x1b[1;31mFAILED\x1b[0m ě \x1b[?1049h\x1b[6n🦀\x1b(0q\x1b(B\x1b[K"
        );
        assert_eq!(
            kinds(&dropped),
            [
                "OSC 52 clipboard write",
                "OSC 2 title",
                "CSI 21t title report",
                "DCS $q status request (DECRQSS)",
                "APC"
            ]
        );
    }

    /// Throughput on coloured text (as `cat` of a test log): run with
    /// `cargo test --release -p keepout-sandbox throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement; run in release"]
    fn throughput() {
        let line = "\x1b[32mPASSED\x1b[0m tests/test_módulo.py::test_ünïcode[param-42] \x1b[1m✓\x1b[0m 0.01s\r\n";
        let mut data = Vec::new();
        while data.len() < 64 << 20 {
            data.extend_from_slice(line.as_bytes());
        }
        let plain =
            "plain ascii text of a build log line, nothing special here at all\n".repeat(1 << 20);
        for (name, input) in [
            ("coloured UTF-8", &data[..]),
            ("plain ASCII", plain.as_bytes()),
        ] {
            let mut f = Filter::new(TerminalPolicy::default());
            let mut out = Vec::with_capacity(16384);
            let start = std::time::Instant::now();
            for chunk in input.chunks(16384) {
                out.clear();
                f.feed(chunk, &mut out);
            }
            let secs = start.elapsed().as_secs_f64();
            let mib = input.len() as f64 / (1 << 20) as f64;
            eprintln!(
                "{name}: {mib:.0} MiB in {secs:.3}s = {:.0} MiB/s",
                mib / secs
            );
            assert!(f.dropped().is_empty());
        }
    }
}
