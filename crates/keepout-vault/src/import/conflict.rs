//! Where an imported value goes when its name may be taken: never a silent replacement.
//!
//! Guarantees: a name holding the same value is left alone ([`Placed::Already`], also when a
//! numbered sibling `NAME-N` holds it); a name holding a different value keeps it, and the new
//! value goes under the first free sibling ([`Placed::Renamed`]), unless the caller's choice is
//! to replace or to keep the old one only; [`apply`] decides again on the content under the lock
//! with the choice already made, so a value stored meanwhile is not replaced unless that was
//! chosen.

use zeroize::Zeroizing;

use crate::{Document, VaultError};

/// What to do when a name already holds a different value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Choice {
    /// Keep the stored value; store the new one under a new name (`NAME-2`, ...).
    NewName,
    /// Replace the stored value (only asked for, or `--replace`).
    Replace,
    /// Keep the stored value; do not store the new one (it stays in the backup).
    Keep,
}

/// Where one value went.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    /// Under its name, which was free.
    Stored(String),
    /// The same value was there already, under this name (`NAME` or `NAME-N`).
    Already(String),
    /// Under a new name: `taken` holds a different value, kept.
    Renamed { name: String, taken: String },
    /// The old value of this name was replaced.
    Replaced(String),
    /// Not stored: `taken` holds a different value, kept as the user chose.
    Kept(String),
}

impl Placed {
    /// The name that holds the new value, if it is in the vault.
    pub fn holder(&self) -> Option<&str> {
        match self {
            Placed::Stored(n) | Placed::Already(n) | Placed::Replaced(n) => Some(n),
            Placed::Renamed { name, .. } => Some(name),
            Placed::Kept(_) => None,
        }
    }
}

/// `name` is `base` or one of its numbered siblings `base-2`, `base-3`, ...
pub fn in_family(base: &str, name: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 2) && !n.starts_with('0'))
}

/// The first free sibling name of `base`: `base-2`, `base-3`, ...
pub fn free_name(doc: &Document, base: &str) -> String {
    (2u32..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| doc.get(n).is_err())
        .expect("a free name exists")
}

/// Which name `value` goes under, without writing: never a silent replacement. `choose` is
/// asked only when `base` holds a different value and no sibling holds this one.
pub fn decide(
    doc: &Document,
    base: &str,
    value: &str,
    choose: &mut dyn FnMut(&str, &str) -> Choice,
) -> Placed {
    let same = doc
        .list()
        .into_iter()
        .map(|i| i.name)
        .filter(|n| in_family(base, n))
        .find(|n| doc.get(n).is_ok_and(|s| *s.value == value));
    if let Some(name) = same {
        return Placed::Already(name);
    }
    if doc.get(base).is_err() {
        return Placed::Stored(base.to_string());
    }
    let new_name = free_name(doc, base);
    match choose(base, &new_name) {
        Choice::NewName => Placed::Renamed {
            name: new_name,
            taken: base.to_string(),
        },
        Choice::Replace => Placed::Replaced(base.to_string()),
        Choice::Keep => Placed::Kept(base.to_string()),
    }
}

/// Write what was decided (on an earlier read) into `doc`, under the lock. Whatever changed
/// meanwhile is decided again with the choice already made, so a value stored since is never
/// replaced unless the user chose to replace.
pub fn apply(
    doc: &mut Document,
    base: &str,
    value: &Zeroizing<String>,
    note: &str,
    decided: &Placed,
) -> Result<Placed, VaultError> {
    let choice = match decided {
        Placed::Replaced(_) => Choice::Replace,
        Placed::Kept(_) => Choice::Keep,
        _ => Choice::NewName,
    };
    let placed = decide(doc, base, value, &mut |_, _| choice);
    match &placed {
        Placed::Stored(n) | Placed::Replaced(n) | Placed::Renamed { name: n, .. } => {
            doc.set(n, value.clone(), Some(note.to_string()))?;
        }
        Placed::Already(_) | Placed::Kept(_) => {}
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_value_is_never_replaced_unless_chosen() {
        let mut doc = Document::new();
        let v = |s: &str| Zeroizing::new(s.to_string());
        let mut never = |_: &str, _: &str| -> Choice { panic!("not asked") };
        assert_eq!(
            decide(&doc, "pypi/pypi", "one", &mut never),
            Placed::Stored("pypi/pypi".into())
        );
        apply(
            &mut doc,
            "pypi/pypi",
            &v("one"),
            "n",
            &Placed::Stored("pypi/pypi".into()),
        )
        .unwrap();
        assert_eq!(
            decide(&doc, "pypi/pypi", "one", &mut never),
            Placed::Already("pypi/pypi".into())
        );
        let renamed = decide(&doc, "pypi/pypi", "two", &mut |_, _| Choice::NewName);
        assert_eq!(
            renamed,
            Placed::Renamed {
                name: "pypi/pypi-2".into(),
                taken: "pypi/pypi".into()
            }
        );
        apply(&mut doc, "pypi/pypi", &v("two"), "n", &renamed).unwrap();
        assert_eq!(*doc.get("pypi/pypi").unwrap().value, "one");
        assert_eq!(*doc.get("pypi/pypi-2").unwrap().value, "two");
        // The second value again: already there, under its new name.
        assert_eq!(
            decide(&doc, "pypi/pypi", "two", &mut never),
            Placed::Already("pypi/pypi-2".into())
        );
        assert!(matches!(
            decide(&doc, "pypi/pypi", "three", &mut |_, n| {
                assert_eq!(n, "pypi/pypi-3");
                Choice::Keep
            }),
            Placed::Kept(_)
        ));
        let replaced = decide(&doc, "pypi/pypi", "three", &mut |_, _| Choice::Replace);
        apply(&mut doc, "pypi/pypi", &v("three"), "n", &replaced).unwrap();
        assert_eq!(*doc.get("pypi/pypi").unwrap().value, "three");
        assert!(!in_family("pypi/pypi", "pypi/pypix") && !in_family("pypi/pypi", "pypi/pypi-02"));
    }

    #[test]
    fn a_value_stored_meanwhile_is_not_replaced() {
        // Decided on an earlier read, where the name was free; another value came in since.
        let mut doc = Document::new();
        let decided = decide(&doc, "npm/r.org", "mine", &mut |_, _| panic!("not asked"));
        assert_eq!(decided, Placed::Stored("npm/r.org".into()));
        doc.set("npm/r.org", Zeroizing::new("theirs".into()), None)
            .unwrap();
        let placed = apply(
            &mut doc,
            "npm/r.org",
            &Zeroizing::new("mine".into()),
            "n",
            &decided,
        )
        .unwrap();
        assert_eq!(
            placed,
            Placed::Renamed {
                name: "npm/r.org-2".into(),
                taken: "npm/r.org".into()
            }
        );
        assert_eq!(*doc.get("npm/r.org").unwrap().value, "theirs");
        assert_eq!(*doc.get("npm/r.org-2").unwrap().value, "mine");
        assert_eq!(placed.holder(), Some("npm/r.org-2"));
    }
}
