//! Values concealed in a byte stream: every occurrence of a secret value replaced by
//! [`REPLACEMENT`], as the stream goes by (`keepout exec --mask` shows a command's output
//! through it).
//!
//! Guarantee: a value is replaced even when it is split across reads; only the longest tail that
//! could still become a value is held back, so prompts and partial lines appear at once. A value
//! that contains another is replaced whole.

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

#[cfg(test)]
mod tests {
    use super::*;

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
