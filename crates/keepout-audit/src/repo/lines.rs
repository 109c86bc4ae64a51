//! Where things are in a workflow's text, for `file:line` locations: the line of a job's key
//! under `jobs:`, the lines where its steps start, and the first line of a range that holds a
//! key or a piece of text. The workflow's meaning comes from github-actions-models; this only
//! finds lines, by indentation, and falls back to the nearest enclosing line it knows (never a
//! wrong file, at worst the job's or the file's first line).
//!
//! Lines are 1-based; ranges are `[start, end)` of 1-based line numbers.

/// A workflow's text, split into lines once.
pub struct SourceLines<'a> {
    lines: Vec<&'a str>,
}

/// The indentation of a line that holds YAML (not blank, not a comment).
fn indent_of(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    (!trimmed.is_empty() && !trimmed.starts_with('#')).then(|| line.len() - trimmed.len())
}

/// Whether `line` (trimmed) is the mapping key `key` (`key:` alone or followed by a value),
/// quoted or not.
fn is_key(trimmed: &str, key: &str) -> bool {
    [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .any(|k| {
            trimmed
                .strip_prefix(k.as_str())
                .is_some_and(|rest| rest.starts_with(':'))
        })
}

impl<'a> SourceLines<'a> {
    pub fn new(text: &'a str) -> SourceLines<'a> {
        SourceLines {
            lines: text.lines().collect(),
        }
    }

    /// One past the last line.
    pub fn end(&self) -> usize {
        self.lines.len() + 1
    }

    fn line(&self, n: usize) -> &'a str {
        self.lines.get(n.wrapping_sub(1)).copied().unwrap_or("")
    }

    /// The end of the block that starts at line `start`: the first later line indented no
    /// deeper than `start` (blank lines and comments do not end it).
    pub fn block_end(&self, start: usize) -> usize {
        let Some(base) = indent_of(self.line(start)) else {
            return self.end();
        };
        (start + 1..self.end())
            .find(|&n| indent_of(self.line(n)).is_some_and(|i| i <= base))
            .unwrap_or(self.end())
    }

    /// The first line in `[from, to)` that is the key `key` at the shallowest indentation that
    /// line range has for it.
    pub fn key_line(&self, from: usize, to: usize, key: &str) -> Option<usize> {
        (from..to)
            .filter(|&n| {
                let l = self.line(n);
                let t = l.trim_start().trim_start_matches("- ");
                indent_of(l).is_some() && is_key(t, key)
            })
            .min_by_key(|&n| indent_of(self.line(n)))
    }

    /// The first line in `[from, to)` that contains `needle`.
    pub fn containing(&self, from: usize, to: usize, needle: &str) -> Option<usize> {
        (from..to).find(|&n| self.line(n).contains(needle))
    }

    /// The line of the top-level key `key` (`on:`, `permissions:`, `jobs:`).
    pub fn top_key(&self, key: &str) -> Option<usize> {
        (1..self.end()).find(|&n| {
            let l = self.line(n);
            indent_of(l) == Some(0) && is_key(l, key)
        })
    }

    /// The line of job `job`'s key under `jobs:`.
    pub fn job(&self, job: &str) -> Option<usize> {
        let jobs = self.top_key("jobs")?;
        let end = self.block_end(jobs);
        let depth = (jobs + 1..end).find_map(|n| indent_of(self.line(n)))?;
        (jobs + 1..end).find(|&n| {
            let l = self.line(n);
            indent_of(l) == Some(depth) && is_key(l.trim_start(), job)
        })
    }

    /// The first line of each step of the job whose key is at line `job`, in order.
    pub fn steps(&self, job: usize) -> Vec<usize> {
        let end = self.block_end(job);
        let Some(steps) = self.key_line(job + 1, end, "steps") else {
            return Vec::new();
        };
        let steps_end = self.block_end(steps);
        // `steps:` followed by items at its own indentation (`- uses:` under `steps:`) is
        // YAML too: the block then ends at the first line at that depth that is no item.
        let base = indent_of(self.line(steps)).unwrap_or(0);
        let first_item = (steps + 1..end).find(|&n| indent_of(self.line(n)).is_some());
        let Some(first_item) = first_item else {
            return Vec::new();
        };
        let item_indent = indent_of(self.line(first_item)).unwrap_or(0);
        let mut starts = Vec::new();
        for n in first_item..end {
            let l = self.line(n);
            let Some(i) = indent_of(l) else {
                continue;
            };
            let item = l.trim_start().starts_with('-');
            if i < item_indent
                || (i == item_indent && !item)
                || (item_indent > base && n >= steps_end)
            {
                break;
            }
            if i == item_indent && item {
                starts.push(n);
            }
        }
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKFLOW: &str = "\
name: release
on:
  push:
    tags: ['v*']

permissions:
  contents: read

jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      # a comment between steps
      - name: Build
        run: |
          python -m build
  \"publish\":
    needs: [build]
    steps:
    - name: Publish
      uses: pypa/gh-action-pypi-publish@release/v1
      with:
        password: ${{ secrets.PYPI_API_TOKEN }}
    - run: echo done
";

    #[test]
    fn jobs_are_found_under_jobs_at_their_depth_quoted_or_not() {
        let src = SourceLines::new(WORKFLOW);
        assert_eq!(src.top_key("jobs"), Some(9));
        assert_eq!(src.top_key("permissions"), Some(6));
        assert_eq!(src.job("build"), Some(10));
        assert_eq!(src.job("publish"), Some(18));
        assert_eq!(src.job("steps"), None, "a key deeper down is no job");
        assert_eq!(src.job("missing"), None);
    }

    #[test]
    fn steps_start_at_their_dash_with_either_indentation() {
        let src = SourceLines::new(WORKFLOW);
        assert_eq!(src.steps(10), vec![13, 15]);
        assert_eq!(src.steps(18), vec![21, 25]);
        assert_eq!(src.block_end(10), 18);
        assert_eq!(src.key_line(21, 25, "uses"), Some(22));
        assert_eq!(src.key_line(15, 18, "run"), Some(16));
        assert_eq!(
            src.key_line(13, 15, "uses"),
            Some(13),
            "`- uses:` is the key"
        );
        assert_eq!(
            src.containing(18, src.end(), "secrets.PYPI_API_TOKEN"),
            Some(24)
        );
    }

    #[test]
    fn a_job_without_steps_has_none() {
        let src = SourceLines::new("jobs:\n  call:\n    uses: ./.github/workflows/x.yml\n");
        assert_eq!(src.job("call"), Some(2));
        assert!(src.steps(2).is_empty());
    }
}
