//! Values concealed in a byte stream: every occurrence of a secret value replaced by
//! [`REPLACEMENT`], as the stream goes by (`keepout exec --mask` shows a command's output
//! through it).
//!
//! Guarantee: a value is replaced even when it is split across reads; only the longest tail that
//! could still become a value is held back, so prompts and partial lines appear at once. A value
//! that contains another is replaced whole. [`copy_masked`] streams a reader into a writer
//! through a [`Masker`], flushing after every read.

use std::io::{Read, Write};

pub const REPLACEMENT: &[u8] = b"<concealed by keepout>";

/// Replaces the values in a byte stream.
pub struct Masker {
    values: Vec<Vec<u8>>,
    pending: Vec<u8>,
}

impl Masker {
    pub fn new(values: Vec<Vec<u8>>) -> Masker {
        let mut values: Vec<Vec<u8>> = values.into_iter().filter(|v| !v.is_empty()).collect();
        // Longer values first, so that a value containing another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Masker {
            values,
            pending: Vec::new(),
        }
    }

    /// Feed bytes; returns what can be shown now.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        self.scan(false)
    }

    /// The stream ended: everything left, with the values in it replaced.
    pub fn finish(&mut self) -> Vec<u8> {
        self.scan(true)
    }

    fn scan(&mut self, at_end: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pending.len());
        let mut i = 0;
        'scan: while i < self.pending.len() {
            let rest = &self.pending[i..];
            // A value could start here and finish in a later read (a longer one even when a
            // shorter one already matches): wait, unless the stream has ended.
            if !at_end
                && self
                    .values
                    .iter()
                    .any(|v| v.len() > rest.len() && v.starts_with(rest))
            {
                break;
            }
            for v in &self.values {
                if rest.starts_with(v) {
                    out.extend_from_slice(REPLACEMENT);
                    i += v.len();
                    continue 'scan;
                }
            }
            out.push(self.pending[i]);
            i += 1;
        }
        self.pending.drain(..i);
        out
    }
}

/// Copy `from` into `to` with `values` replaced, flushing after each read, until `from` ends
/// or fails (the rest then shown) or `to` fails (then nothing more is written).
pub fn copy_masked(mut from: impl Read, mut to: impl Write, values: Vec<Vec<u8>>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_copied_with_its_values_concealed() {
        let mut out = Vec::new();
        let input = &b"user alice\ntoken hunter2, again hunter2"[..];
        copy_masked(input, &mut out, vec![b"hunter2".to_vec()]);
        assert_eq!(
            out,
            b"user alice\ntoken <concealed by keepout>, again <concealed by keepout>"
        );
    }

    /// Takes `room` bytes, then fails.
    struct Full {
        room: usize,
        got: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if bytes.len() > self.room {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.room -= bytes.len();
            self.got.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_that_fails_ends_the_copy() {
        let mut to = Full {
            room: 0,
            got: Vec::new(),
        };
        copy_masked(&b"abc"[..], &mut to, vec![b"x".to_vec()]);
        assert!(to.got.is_empty());
    }

    fn mask_in_pieces(input: &[u8], piece: usize, values: &[&str]) -> Vec<u8> {
        let mut m = Masker::new(values.iter().map(|v| v.as_bytes().to_vec()).collect());
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            out.extend(m.feed(chunk));
        }
        out.extend(m.finish());
        out
    }

    #[test]
    fn values_are_replaced_across_read_boundaries() {
        let input = b"token=pypi-SECRET123 and again pypi-SECRET123!";
        let want = b"token=<concealed by keepout> and again <concealed by keepout>!".to_vec();
        for piece in 1..input.len() {
            assert_eq!(
                mask_in_pieces(input, piece, &["pypi-SECRET123"]),
                want,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_prompt_is_not_held_back() {
        let mut m = Masker::new(vec![b"hunter2".to_vec()]);
        assert_eq!(m.feed(b"Password: "), b"Password: ");
        assert_eq!(m.feed(b"hun"), b"", "could still become the value");
        assert_eq!(m.feed(b"ted"), b"hunted");
    }

    #[test]
    fn a_value_at_the_very_end_is_replaced() {
        for piece in 1..4 {
            assert_eq!(
                mask_in_pieces(b"x abc", piece, &["abc", "abcdef"]),
                b"x <concealed by keepout>".to_vec()
            );
        }
    }

    #[test]
    fn longer_values_win() {
        assert_eq!(
            mask_in_pieces(b"abcdef", 2, &["abc", "abcdef"]),
            REPLACEMENT.to_vec()
        );
    }
}
