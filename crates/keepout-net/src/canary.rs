//! Values that must never leave the sandbox (its decoy credentials), and the search for them in
//! what the sandbox sends through the proxy.
//!
//! Guarantees: a [`Canaries`] finds each value in a byte stream as it is (any letter case), hex-
//! or URL-encoded (every byte `%XX`), base64-encoded (standard or URL-safe alphabet, at any of
//! the three alignments) and base32-encoded (RFC 4648, any case, at any of the five
//! alignments); for a value with a random part of at least [`PIECE`] characters, also that part
//! alone in each of those forms, and any [`PIECE`]-character piece of it, as it is or
//! hex-encoded (a value sent in pieces, e.g. one per DNS label). [`Scan`] finds them across the boundaries of a stream's
//! chunks, and across whitespace (ASCII space, tab, CR, LF: a value wrapped across lines, as
//! `base64` and MIME write it). What is encrypted (inside TLS) or transformed otherwise (XOR, compression, smaller
//! pieces) is not found: that is why keepout refuses to forward what it finds, and also reports
//! the reads of the decoys themselves.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use serde::Serialize;

/// The length of the pieces of a value's random part that are watched for too.
pub const PIECE: usize = 12;

/// A value that must never leave, with the name to report it by (e.g. `~/.netrc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    pub name: String,
    pub value: String,
    /// The value's random part (unique to this run), whose pieces are watched for too; `None`
    /// when the value has none long enough.
    pub random: Option<String>,
}

/// How a value was written where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// As it is (any letter case).
    Plain,
    Base64,
    /// RFC 4648 base32, any case (what DNS tunnels use).
    Base32,
    Hex,
    /// Every byte as `%XX`.
    UrlEncoded,
    /// A piece of its random part (as it is or hex-encoded).
    Piece,
}

impl Form {
    /// How a message says it: "base64-encoded".
    pub fn describe(self) -> &'static str {
        match self {
            Form::Plain => "as it is",
            Form::Base64 => "base64-encoded",
            Form::Base32 => "base32-encoded",
            Form::Hex => "hex-encoded",
            Form::UrlEncoded => "URL-encoded",
            Form::Piece => "a piece of it",
        }
    }
}

/// A value found: which canary (its name) and in what form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub form: Form,
}

/// The values to watch for, compiled into automata: one that ignores letter case (plain, hex,
/// URL-encoded, pieces) and one that does not (base64), both searched in the text with its
/// ASCII whitespace taken out (a value wrapped across lines, as `base64` and MIME write it, is
/// found; a pattern without whitespace found in a text is also found in it with the whitespace
/// taken out); and, for the rare value that has whitespace in it, one searched in the text as it
/// is.
#[derive(Clone, Default)]
pub struct Canaries {
    names: Vec<String>,
    nocase: Option<AhoCorasick>,
    exact: Option<AhoCorasick>,
    spaced: Option<AhoCorasick>,
    /// Pattern index -> (canary index, form), per automaton.
    nocase_of: Vec<(usize, Form)>,
    exact_of: Vec<(usize, Form)>,
    spaced_of: Vec<(usize, Form)>,
    /// The longest pattern without (with) whitespace: how much of a stream's end a [`Scan`]
    /// keeps.
    longest: usize,
    longest_spaced: usize,
}

/// The whitespace taken out before searching: what `base64`, MIME and `xxd -p` wrap lines with.
fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Append `text` to `out` with its ASCII whitespace taken out: eight bytes at a time while they
/// hold none (the usual case, even in random data), the runs between whitespace copied whole.
fn append_without_spaces(out: &mut Vec<u8>, text: &[u8]) {
    /// Whether any of the eight bytes of `word` is whitespace (the "has a zero byte" test, exact
    /// for "any", on the word XORed with each whitespace byte).
    fn has_space(word: u64) -> bool {
        const ONES: u64 = 0x0101_0101_0101_0101;
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & (ONES << 7);
        [b' ', b'\t', b'\r', b'\n']
            .iter()
            .any(|&c| zero(word ^ (ONES * u64::from(c))) != 0)
    }
    out.reserve(text.len());
    let mut run = 0;
    let mut at = |out: &mut Vec<u8>, from: usize, to: usize| {
        for i in from..to {
            if is_space(&text[i]) {
                out.extend_from_slice(&text[run..i]);
                run = i + 1;
            }
        }
    };
    let mut i = 0;
    for word in text.chunks_exact(8) {
        if has_space(u64::from_ne_bytes(word.try_into().unwrap_or_default())) {
            at(out, i, i + 8);
        }
        i += 8;
    }
    at(out, i, text.len());
    out.extend_from_slice(&text[run..]);
}

/// `text` with its ASCII whitespace taken out (borrowed when it has none).
fn without_spaces(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if text.iter().any(is_space) {
        text.iter().copied().filter(|b| !is_space(b)).collect()
    } else {
        text.into()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The base64 forms of `value` at the three alignments (the characters that depend on `value`
/// alone), standard and URL-safe.
fn base64_forms(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(value);
        let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&padded);
        // Characters wholly made of `value`'s bits: from ceil(8*offset/6), and the last one only
        // when the value ends on a 3-byte boundary.
        let start = (8 * offset).div_ceil(6);
        let end = if padded.len() % 3 == 0 {
            text.len()
        } else {
            text.len() - 1
        };
        if end > start {
            let core = &text[start..end];
            out.push(core.to_string());
            out.push(core.replace('+', "-").replace('/', "_"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The base32 forms (RFC 4648 alphabet, the usual one for data in DNS names; matched in any
/// case) of `value` at the five alignments: the characters that depend on `value` alone.
fn base32_forms(value: &[u8]) -> Vec<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    for offset in 0..5usize {
        let mut bits: Vec<bool> = Vec::new();
        for b in std::iter::repeat_n(0u8, offset).chain(value.iter().copied()) {
            bits.extend((0..8).rev().map(|k| b >> k & 1 == 1));
        }
        // Whole 5-bit groups that start at or after the value's first bit.
        let first = (8 * offset).div_ceil(5);
        let whole = bits.len() / 5;
        let text: String = (first..whole)
            .map(|g| {
                let n = bits[g * 5..g * 5 + 5]
                    .iter()
                    .fold(0usize, |n, b| n << 1 | usize::from(*b));
                ALPHABET[n] as char
            })
            .collect();
        if !text.is_empty() {
            out.push(text);
        }
    }
    out
}

impl Canaries {
    /// No values: finds nothing.
    pub fn none() -> Canaries {
        Canaries::default()
    }

    pub fn new(canaries: &[Canary]) -> Canaries {
        let mut nocase = Vec::new();
        let mut exact = Vec::new();
        let mut names = Vec::new();
        for (i, c) in canaries.iter().enumerate() {
            names.push(c.name.clone());
            if c.value.is_empty() {
                continue;
            }
            // The whole value, and its random part alone, in every encoding.
            let random = c.random.as_deref().filter(|r| r.len() >= PIECE);
            for v in std::iter::once(c.value.as_str()).chain(random) {
                let v = v.as_bytes();
                nocase.push((String::from_utf8_lossy(v).into_owned(), i, Form::Plain));
                nocase.push((hex(v), i, Form::Hex));
                nocase.push((
                    v.iter().map(|b| format!("%{b:02x}")).collect(),
                    i,
                    Form::UrlEncoded,
                ));
                for b in base64_forms(v) {
                    exact.push((b, i, Form::Base64));
                }
                for b in base32_forms(v) {
                    nocase.push((b, i, Form::Base32));
                }
            }
            if let Some(random) = random {
                for w in random.as_bytes().windows(PIECE) {
                    nocase.push((String::from_utf8_lossy(w).into_owned(), i, Form::Piece));
                    nocase.push((hex(w), i, Form::Piece));
                }
            }
        }
        // Base64 has no whitespace; a plain value (or its random part) may.
        let (spaced, nocase): (Vec<_>, Vec<_>) = nocase
            .into_iter()
            .partition(|(p, _, _)| p.bytes().any(|b| is_space(&b)));
        let longest_of = |patterns: &[(String, usize, Form)]| {
            patterns.iter().map(|(p, _, _)| p.len()).max().unwrap_or(0)
        };
        let longest = longest_of(&nocase).max(longest_of(&exact));
        let longest_spaced = longest_of(&spaced);
        let build = |patterns: &[(String, usize, Form)], nocase: bool| {
            (!patterns.is_empty()).then(|| {
                AhoCorasickBuilder::new()
                    // A full DFA: a few MiB for the decoys' patterns, and the fastest search
                    // of the bytes an upload sends.
                    .kind(Some(AhoCorasickKind::DFA))
                    .ascii_case_insensitive(nocase)
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(patterns.iter().map(|(p, _, _)| p))
                    .expect("canary patterns are plain strings")
            })
        };
        let index = |patterns: &[(String, usize, Form)]| {
            patterns.iter().map(|(_, i, f)| (*i, *f)).collect()
        };
        Canaries {
            names,
            nocase: build(&nocase, true),
            exact: build(&exact, false),
            spaced: build(&spaced, true),
            nocase_of: index(&nocase),
            exact_of: index(&exact),
            spaced_of: index(&spaced),
            longest,
            longest_spaced,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nocase.is_none() && self.exact.is_none() && self.spaced.is_none()
    }

    /// The first value found in `haystack` (also across its whitespace), the whole value before
    /// a piece of it.
    pub fn find(&self, haystack: &[u8]) -> Option<Found> {
        self.find_in(&without_spaces(haystack), haystack)
    }

    /// The first value found: the patterns without whitespace in `stripped` (the text with its
    /// whitespace taken out), those with whitespace in `raw` (the text as it is).
    fn find_in(&self, stripped: &[u8], raw: &[u8]) -> Option<Found> {
        let mut best: Option<(usize, Form)> = None;
        for (ac, of, haystack) in [
            (&self.nocase, &self.nocase_of, stripped),
            (&self.exact, &self.exact_of, stripped),
            (&self.spaced, &self.spaced_of, raw),
        ] {
            let Some(ac) = ac else { continue };
            for m in ac.find_iter(haystack) {
                let (i, form) = of[m.pattern().as_usize()];
                if best.is_none_or(|(_, f)| f == Form::Piece && form != Form::Piece) {
                    best = Some((i, form));
                }
                if form != Form::Piece {
                    break;
                }
            }
        }
        best.map(|(i, form)| Found {
            name: self.names[i].clone(),
            form,
        })
    }

    /// [`Canaries::find`] in `text`, and in it with `%XX` and `+` decoded (a URL or a form
    /// whose value is partly encoded), and with the dots taken out (a value split across the
    /// labels of a host name).
    pub fn find_in_text(&self, text: &str) -> Option<Found> {
        if self.is_empty() {
            return None;
        }
        let found = [
            self.find(text.as_bytes()),
            self.find(&percent_decode(text.as_bytes())),
            self.find(text.replace('.', "").as_bytes()),
        ];
        let whole = found.iter().flatten().find(|f| f.form != Form::Piece);
        whole.or(found.iter().flatten().next()).cloned()
    }
}

/// `%XX` and `+` decoded; anything else kept as it is.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let digit = |b: &u8| (*b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            if let (Some(h), Some(l)) = (
                text.get(i + 1).and_then(digit),
                text.get(i + 2).and_then(digit),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if text[i] == b'+' { b' ' } else { text[i] });
        i += 1;
    }
    out
}

/// A search through a stream, chunk by chunk: a value split across two chunks is found in the
/// second, and so is one split by whitespace (a line break) anywhere. Each chunk is searched
/// once, with only the end of the stream before it: linear in the bytes fed, bounded in memory.
pub struct Scan<'a> {
    canaries: &'a Canaries,
    state: ScanState,
}

/// Where a [`Scan`] stands: the end of the stream so far (with its whitespace taken out, and
/// as it is), as much as the longest value needs.
#[derive(Debug, Clone, Default)]
pub struct ScanState {
    stripped: Vec<u8>,
    raw: Vec<u8>,
}

impl<'a> Scan<'a> {
    pub fn new(canaries: &'a Canaries) -> Scan<'a> {
        Scan::resume(canaries, ScanState::default())
    }

    /// Go on from the end of another search ([`Scan::into_state`]).
    pub fn resume(canaries: &'a Canaries, state: ScanState) -> Scan<'a> {
        Scan { canaries, state }
    }

    /// Where this search stands, for [`Scan::resume`].
    pub fn into_state(self) -> ScanState {
        self.state
    }

    /// Search `chunk` (with the end of the chunks before it).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Found> {
        let c = self.canaries;
        if c.is_empty() {
            return None;
        }
        let s = &mut self.state;
        append_without_spaces(&mut s.stripped, chunk);
        if c.spaced.is_some() {
            s.raw.extend_from_slice(chunk);
        }
        let found = c.find_in(&s.stripped, &s.raw);
        let keep = |tail: &mut Vec<u8>, longest: usize| {
            let keep = longest.saturating_sub(1);
            if tail.len() > keep {
                tail.drain(..tail.len() - keep);
            }
        };
        keep(&mut s.stripped, c.longest);
        keep(&mut s.raw, c.longest_spaced);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canaries() -> Canaries {
        Canaries::new(&[
            Canary {
                name: "~/.netrc".into(),
                value: "keepout-decoy-run1-q7w8e9r0t1y2u3i4o5p6a7s8".into(),
                random: Some("q7w8e9r0t1y2u3i4o5p6a7s8".into()),
            },
            Canary {
                name: "~/.aws/credentials".into(),
                value: "AKIAKEEPOUTDECOY0000".into(),
                random: None,
            },
        ])
    }

    #[test]
    fn every_form_is_found() {
        let c = canaries();
        let v = "keepout-decoy-run1-q7w8e9r0t1y2u3i4o5p6a7s8";
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let netrc = |form| {
            Some(Found {
                name: "~/.netrc".into(),
                form,
            })
        };
        assert_eq!(c.find(format!("x={v}&y").as_bytes()), netrc(Form::Plain));
        assert_eq!(
            c.find(v.to_uppercase().as_bytes()),
            netrc(Form::Plain),
            "any case"
        );
        for prefix in ["", "a", "ab", "user:"] {
            let text = format!("Authorization: Basic {}", b64(&format!("{prefix}{v}")));
            assert_eq!(c.find(text.as_bytes()), netrc(Form::Base64), "{text}");
        }
        assert_eq!(
            c.find(hex(v.as_bytes()).to_uppercase().as_bytes()),
            netrc(Form::Hex)
        );
        // base32 (what DNS tunnels use), at every alignment, in lower case, across labels.
        for prefix in ["", "a", "ab", "abc", "abcd"] {
            let b32 = base32(format!("{prefix}{v}").as_bytes()).to_lowercase();
            let host = b32
                .as_bytes()
                .chunks(50)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(".")
                + ".evil.example";
            assert_eq!(c.find_in_text(&host), netrc(Form::Base32), "{host}");
        }
        // The random part alone, base64-encoded.
        assert_eq!(
            c.find(b64("q7w8e9r0t1y2u3i4o5p6a7s8").as_bytes()),
            netrc(Form::Base64)
        );
        let pct: String = v.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(c.find(pct.as_bytes()), netrc(Form::UrlEncoded));
        assert_eq!(
            c.find_in_text("q7w8e9.r0t1y2u3.evil.example"),
            netrc(Form::Piece),
            "a piece, across host labels"
        );
        assert_eq!(
            c.find_in_text("/?t=keepout%2Ddecoy-run1-q7w8e9r0t1y2u3i4o5p6a7s8"),
            netrc(Form::Plain),
            "partly URL-encoded"
        );
        assert_eq!(
            c.find(b"id=AKIAKEEPOUTDECOY0000").map(|f| f.name),
            Some("~/.aws/credentials".into())
        );
        // Ordinary traffic, and the fixed words of the decoys alone, are not a value.
        for clean in [
            "GET /simple/six/ HTTP/1.1",
            "keepout-decoy-run1",
            "machine git.decoy.invalid",
            "q7w8e9r0t1y",
        ] {
            assert_eq!(c.find_in_text(clean), None, "{clean}");
        }
        assert_eq!(Canaries::none().find_in_text(v), None);
    }

    /// RFC 4648 base32 with padding, written plainly (the test's own reference).
    fn base32(data: &[u8]) -> String {
        const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut out = String::new();
        for chunk in data.chunks(5) {
            let mut buf = [0u8; 5];
            buf[..chunk.len()].copy_from_slice(chunk);
            let n = buf.iter().fold(0u64, |n, b| n << 8 | u64::from(*b));
            let chars = (chunk.len() * 8).div_ceil(5);
            for k in 0..8 {
                if k < chars {
                    out.push(A[(n >> (35 - 5 * k) & 31) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base32_reference() {
        // RFC 4648's test vectors.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI======");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32_forms(b"fooba")[0], "MZXW6YTB");
    }

    /// `base64 -w 76` (LF) and MIME (CRLF) wrap the encoded text: a line break anywhere in the
    /// value's part is not in the way, in one piece or as a stream fed in small chunks. Hex
    /// wrapped as `xxd -p` writes it too.
    #[test]
    fn wrapped_lines_are_joined() {
        let c = canaries();
        let v = "keepout-decoy-run1-q7w8e9r0t1y2u3i4o5p6a7s8";
        let wrap = |text: &str, width: usize, eol: &str| {
            text.as_bytes()
                .chunks(width)
                .map(|l| String::from_utf8_lossy(l) + eol)
                .collect::<String>()
        };
        for prefix in 0..80 {
            let file = format!(
                "{}machine git.decoy.invalid password {v}\n",
                "#".repeat(prefix)
            );
            let b64 = base64::engine::general_purpose::STANDARD.encode(&file);
            for (width, eol) in [(76, "\n"), (76, "\r\n"), (64, "\n")] {
                let body = wrap(&b64, width, eol);
                let found = c.find(body.as_bytes()).map(|f| f.form);
                assert_eq!(found, Some(Form::Base64), "{prefix} {width} {eol:?}");
                let mut scan = Scan::new(&c);
                let streamed = body
                    .as_bytes()
                    .chunks(7)
                    .find_map(|chunk| scan.feed(chunk))
                    .map(|f| f.form);
                assert_eq!(streamed, Some(Form::Base64), "streamed: {prefix} {width}");
            }
            let xxd = wrap(&hex(file.as_bytes()), 60, "\n");
            assert_eq!(c.find(xxd.as_bytes()).map(|f| f.form), Some(Form::Hex));
        }
        // A value with a space in it is still found as it is.
        let spaced = Canaries::new(&[Canary {
            name: "pass phrase".into(),
            value: "correct horse battery".into(),
            random: None,
        }]);
        assert!(spaced.find(b"x=correct horse battery").is_some());
        let mut scan = Scan::new(&spaced);
        assert!(scan.feed(b"x=correct ho").is_none());
        assert!(scan.feed(b"rse battery").is_some());
    }

    #[test]
    fn a_stream_split_anywhere() {
        let c = canaries();
        let text =
            "POST / HTTP/1.1\r\n\r\npassword=keepout-decoy-run1-q7w8e9r0t1y2u3i4o5p6a7s8&x=1";
        for cut in 1..text.len() {
            let mut scan = Scan::new(&c);
            let first = scan.feed(&text.as_bytes()[..cut]);
            let second = scan.feed(&text.as_bytes()[cut..]);
            assert!(first.or(second).is_some(), "cut at {cut}");
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// How fast a stream is searched (run: cargo test --release -p keepout-net -- --ignored
    /// speed --nocapture); the numbers are in docs/net.md.
    #[test]
    #[ignore]
    fn speed() {
        let canaries: Vec<Canary> = (0..5)
            .map(|i| Canary {
                name: format!("decoy{i}"),
                value: format!("keepout-decoy-abcdef-q7w8e9r0t1y2u3i4o5p6a7s{i}"),
                random: Some(format!("q7w8e9r0t1y2u3i4o5p6a7s{i}")),
            })
            .collect();
        let built = std::time::Instant::now();
        let c = Canaries::new(&canaries);
        println!(
            "built the search for 5 decoys in {:.1} ms",
            built.elapsed().as_secs_f64() * 1000.0
        );
        let mut data = vec![0u8; 64 << 20];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let start = std::time::Instant::now();
        let mut scan = Scan::new(&c);
        for chunk in data.chunks(256 * 1024) {
            assert!(scan.feed(chunk).is_none());
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "searched 64 MiB of random bytes in {:.3} s: {:.0} MiB/s",
            secs,
            64.0 / secs
        );
    }
}
