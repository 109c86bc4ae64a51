//! `keepout workspace rm`: workspaces and layers removed together, as one request.
//!
//! What this module guarantees: every workspace and layer named is checked before anything is
//! removed (a damaged workspace counts as there: removing it is the way out of it), so a wrong
//! name removes nothing; then the workspaces go, then the layers (with what stands on them only
//! when asked, see [`crate::Store::remove_layer_and_users`]), then, when asked, every layer
//! nothing uses. Each removal is told to the caller as it is done, so that what was removed
//! before a later step fails is known.

use crate::{Error, Result, Store};

/// What to remove.
#[derive(Debug, Clone, Copy, Default)]
pub struct Removal<'a> {
    pub workspaces: &'a [String],
    pub layers: &'a [String],
    /// Remove each layer with every workspace and layer that stands on it.
    pub with_users: bool,
    /// Then remove every layer that nothing uses.
    pub unused_layers: bool,
}

/// One thing removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Workspace(String),
    Layer(String),
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Removed::Workspace(name) => write!(f, "workspace {name}"),
            Removed::Layer(name) => write!(f, "layer {name}"),
        }
    }
}

impl Store {
    /// Remove `layer` and everything that stands on it, directly or through other layers:
    /// workspaces first, then layers from the top down. Every one of those workspaces is locked
    /// first; if one is in use, nothing is removed. Returns what was removed, in order, the
    /// named layer last.
    pub fn remove_layer_and_users(&self, layer: &str) -> Result<Vec<Removed>> {
        self.layer(layer)?;
        let (workspaces, layers) = (self.workspaces()?, self.layers()?);
        // Layers on `layer`, breadth first: a layer comes after the one it stands on.
        let mut doomed_layers = vec![layer.to_string()];
        let mut i = 0;
        while i < doomed_layers.len() {
            for l in &layers {
                if l.meta.parent.as_deref() == Some(doomed_layers[i].as_str())
                    && !doomed_layers.contains(&l.meta.name)
                {
                    doomed_layers.push(l.meta.name.clone());
                }
            }
            i += 1;
        }
        let mut held = Vec::new();
        for ws in workspaces.into_iter().filter(|w| {
            w.meta
                .layer
                .as_ref()
                .is_some_and(|l| doomed_layers.contains(l))
        }) {
            let lock = self.lock(&ws, true)?;
            held.push((ws, lock));
        }
        let mut removed = Vec::new();
        for (ws, lock) in held {
            self.remove_held(&ws, lock)?;
            removed.push(Removed::Workspace(ws.meta.name.clone()));
        }
        for l in doomed_layers.iter().rev() {
            self.remove_layer(l)?;
            removed.push(Removed::Layer(l.clone()));
        }
        Ok(removed)
    }

    /// Carry out `removal` (see the module doc), telling `removed` of each removal as it is
    /// done. Returns how many unused layers were removed (0 when not asked).
    pub fn remove_all(
        &self,
        removal: &Removal,
        mut removed: impl FnMut(&Removed),
    ) -> Result<usize> {
        for name in removal.workspaces {
            match self.workspace(name) {
                Ok(_) | Err(Error::DamagedWorkspace { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for l in removal.layers {
            self.layer(l)?;
        }
        for name in removal.workspaces {
            self.remove(name)?;
            removed(&Removed::Workspace(name.clone()));
        }
        for l in removal.layers {
            if removal.with_users {
                for what in self.remove_layer_and_users(l)? {
                    removed(&what);
                }
            } else {
                self.remove_layer(l)?;
                removed(&Removed::Layer(l.clone()));
            }
        }
        if !removal.unused_layers {
            return Ok(0);
        }
        let unused = self.remove_unused_layers()?;
        for l in &unused {
            removed(&Removed::Layer(l.clone()));
        }
        Ok(unused.len())
    }

    /// `keepout workspace rm`: [`Store::remove_all`], where a layer in use, unless it was asked
    /// to go with what stands on it, is [`Error::LayerStaysInUse`], which names both ways out.
    pub fn remove_as_asked(
        &self,
        removal: &Removal,
        removed: impl FnMut(&Removed),
    ) -> Result<usize> {
        match self.remove_all(removal, removed) {
            Err(Error::LayerInUse { layer, users }) if !removal.with_users => {
                Err(Error::LayerStaysInUse { layer, users })
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_wrong_name_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        s.create("a", None, None, "a", false).unwrap();
        let ws = names(&["a", "missing"]);
        let err = s
            .remove_all(
                &Removal {
                    workspaces: &ws,
                    ..Default::default()
                },
                |r| panic!("{r} removed"),
            )
            .unwrap_err();
        assert!(matches!(err, Error::NoWorkspace { .. }));
        assert!(s.exists("a"));
    }

    #[test]
    fn workspaces_then_layers_then_the_unused_ones() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        s.create("base", None, None, "base", true).unwrap();
        s.snapshot("base", "l1").unwrap();
        s.create("on", None, Some("l1"), "on", false).unwrap();
        s.create("damaged", None, None, "d", false).unwrap();
        std::fs::write(dir.path().join("workspaces/damaged/meta.toml"), "[").unwrap();
        let (ws, ls) = (names(&["damaged"]), names(&["l1"]));
        let in_use = s.remove_all(
            &Removal {
                workspaces: &ws,
                layers: &ls,
                ..Default::default()
            },
            |_| {},
        );
        assert!(matches!(in_use, Err(Error::LayerInUse { .. })));
        assert!(!s.exists("damaged"), "removed before the layer was refused");
        let mut said = Vec::new();
        let unused = s
            .remove_all(
                &Removal {
                    workspaces: &names(&["base"]),
                    layers: &ls,
                    with_users: true,
                    unused_layers: true,
                },
                |r| said.push(r.to_string()),
            )
            .unwrap();
        assert_eq!(unused, 0);
        assert_eq!(said, ["workspace base", "workspace on", "layer l1"]);
    }

    #[test]
    fn a_layer_in_use_names_both_ways_out_unless_its_users_go_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        s.create("base", None, None, "base", true).unwrap();
        s.snapshot("base", "l1").unwrap();
        let ls = names(&["l1"]);
        let removal = Removal {
            layers: &ls,
            ..Default::default()
        };
        let err = s.remove_as_asked(&removal, |_| {}).unwrap_err();
        assert_eq!(
            err.text(),
            "layer l1 is in use by workspace base: remove those first (keepout workspace rm \
             WORKSPACE...), or `keepout workspace rm --layer l1 --force` removes them with it"
        );
        let forced = Removal {
            with_users: true,
            ..removal
        };
        assert_eq!(s.remove_as_asked(&forced, |_| {}).unwrap(), 0);
        assert!(!s.exists("base"));
    }
}
