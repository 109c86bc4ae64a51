//! A workspace being made, as one guard: until it is committed, dropping it removes it.
//!
//! What this module guarantees: every way a workspace is made ([`Store::create`], `keepout try`'s
//! [`crate::clone::make_clone`], `keepout shell --new`'s [`crate::home::make_to_enter`]) goes
//! through [`NewWorkspace`], so a step that fails (an error, a
//! panic that unwinds) leaves no half-made workspace behind: one still under its hidden name is
//! removed whole, one already published is removed as `keepout workspace rm` would (never while
//! another keepout holds it). A kill -9 is covered by the hidden name: the next open of the
//! store removes what a dead keepout left.

use crate::{
    check_name, io, now, remove_tree, valid_name, write_meta, Error, Result, Store, Workspace,
    WorkspaceMeta, BUILDING, FORMAT_VERSION,
};

/// A workspace that is not finished yet; [`NewWorkspace::commit`] keeps it.
#[derive(Debug)]
pub struct NewWorkspace<'s> {
    store: &'s Store,
    ws: Workspace,
    published: bool,
    committed: bool,
}

impl<'s> NewWorkspace<'s> {
    /// A new workspace under its hidden name (see [`Store::create_hidden`]).
    pub fn hidden(
        store: &'s Store,
        name: &str,
        source: Option<String>,
        layer: Option<&str>,
        project: &str,
        make_project: bool,
    ) -> Result<NewWorkspace<'s>> {
        let ws = store.create_hidden(name, source, layer, project, make_project)?;
        Ok(NewWorkspace {
            store,
            ws,
            published: false,
            committed: false,
        })
    }

    /// A new workspace under its name already (still removed unless committed).
    pub fn published(
        store: &'s Store,
        name: &str,
        source: Option<String>,
        layer: Option<&str>,
        project: &str,
        make_project: bool,
    ) -> Result<NewWorkspace<'s>> {
        let mut new = NewWorkspace::hidden(store, name, source, layer, project, make_project)?;
        new.publish()?;
        Ok(new)
    }

    /// The workspace, for the steps that fill it.
    pub fn workspace(&mut self) -> &mut Workspace {
        &mut self.ws
    }

    /// Put it under its name ([`Store::publish`]); it is still removed unless committed.
    pub fn publish(&mut self) -> Result<()> {
        if !self.published {
            self.store.publish(&mut self.ws)?;
            self.published = true;
        }
        Ok(())
    }

    /// It is whole: keep it.
    pub fn commit(mut self) -> Workspace {
        self.committed = true;
        self.ws.clone()
    }
}

impl Drop for NewWorkspace<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let _ = if self.published {
            self.store.remove(&self.ws.meta.name)
        } else {
            remove_tree(&self.ws.dir)
        };
    }
}

impl Store {
    /// A new, empty workspace (on `layer`, if given), whose project will be `~/PROJECT`.
    /// `make_project`: create that directory now (a clone will make it otherwise).
    pub fn create(
        &self,
        name: &str,
        source: Option<String>,
        layer: Option<&str>,
        project: &str,
        make_project: bool,
    ) -> Result<Workspace> {
        let mut new = NewWorkspace::hidden(self, name, source, layer, project, make_project)?;
        new.publish()?;
        Ok(new.commit())
    }

    /// A new workspace like [`Store::create`]'s, but still under a hidden name
    /// (`workspaces/.building-PID-*`): no command lists or opens it until [`Store::publish`]
    /// puts it under its name, so one that is being filled (a clone) is never seen half-made.
    /// One whose builder died (kill -9) is removed on the next open of the store. Made through
    /// [`NewWorkspace::hidden`], which removes it unless it is committed.
    fn create_hidden(
        &self,
        name: &str,
        source: Option<String>,
        layer: Option<&str>,
        project: &str,
        make_project: bool,
    ) -> Result<Workspace> {
        check_name(name)?;
        if !valid_name(project) {
            return Err(Error::BadName(project.into()));
        }
        if let Some(layer) = layer {
            self.layer(layer)?;
        }
        self.make_dir(&self.workspaces_dir(), false)?;
        self.remove_dead_builds();
        if self.workspaces_dir().join(name).exists() {
            // A damaged one says so (and how to remove it) rather than just "exists".
            self.workspace(name)?;
            return Err(Error::WorkspaceExists(name.into()));
        }
        let partial = tempfile::Builder::new()
            .prefix(&format!("{BUILDING}{}-", std::process::id()))
            .tempdir_in(self.workspaces_dir())
            .map_err(io(&self.workspaces_dir()))?;
        let ws = Workspace {
            dir: partial.path().to_path_buf(),
            meta: WorkspaceMeta {
                version: FORMAT_VERSION,
                name: name.into(),
                source,
                layer: layer.map(str::to_string),
                copied_from: None,
                project: project.into(),
                created: now(),
                last_used: now(),
            },
        };
        self.make_dir(&ws.home(), true)?;
        if make_project {
            self.make_dir(&ws.home().join(project), true)?;
        }
        write_meta(&ws.dir.join("meta.toml"), &ws.meta)?;
        // Only now is it kept: an error above removed it (the TempDir's drop).
        let _ = partial.keep();
        Ok(ws)
    }

    /// Put a workspace made by [`Store::create_hidden`] under its name: one rename, so it
    /// appears whole or not at all. A workspace of that name made meanwhile is never replaced
    /// ([`Error::WorkspaceExists`]; the hidden one is left to the caller).
    pub fn publish(&self, ws: &mut Workspace) -> Result<()> {
        let name = ws.meta.name.clone();
        let dir = self.workspaces_dir().join(&name);
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &ws.dir,
            rustix::fs::CWD,
            &dir,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|e| {
            if e == rustix::io::Errno::EXIST || e == rustix::io::Errno::NOTEMPTY {
                Error::WorkspaceExists(name.clone())
            } else {
                io(&dir)(e.into())
            }
        })?;
        ws.dir = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("keepout"));
        (dir, store)
    }

    fn entries(s: &Store) -> usize {
        std::fs::read_dir(s.root().join("workspaces"))
            .unwrap()
            .count()
    }

    #[test]
    fn a_hidden_one_dropped_is_removed_whole() {
        let (_d, s) = store();
        let mut new = NewWorkspace::hidden(&s, "w", None, None, "w", true).unwrap();
        let dir = new.workspace().dir.clone();
        std::fs::write(new.workspace().home().join("w/f"), "x").unwrap();
        assert!(dir.is_dir());
        assert!(!s.exists("w"), "not under its name yet");
        drop(new);
        assert!(!dir.exists());
        assert_eq!(entries(&s), 0);
    }

    #[test]
    fn a_published_one_dropped_is_removed() {
        let (_d, s) = store();
        let new = NewWorkspace::published(&s, "w", None, None, "w", true).unwrap();
        assert!(s.exists("w"));
        drop(new);
        assert!(!s.exists("w"));
        assert_eq!(entries(&s), 0, "nothing half-removed either");
    }

    #[test]
    fn a_committed_one_is_kept() {
        let (_d, s) = store();
        let mut new = NewWorkspace::hidden(&s, "w", Some("src".into()), None, "w", true).unwrap();
        new.publish().unwrap();
        let ws = new.commit();
        assert!(ws.home().join("w").is_dir());
        assert_eq!(
            s.workspace("w").unwrap().meta.source.as_deref(),
            Some("src")
        );
        // Committed while still hidden: kept too (under its hidden name, for the caller).
        let new = NewWorkspace::hidden(&s, "v", None, None, "v", false).unwrap();
        let hidden = new.commit();
        assert!(hidden.dir.is_dir());
    }

    #[test]
    fn a_failed_step_leaves_nothing() {
        let (_d, s) = store();
        let fill = |new: &mut NewWorkspace| -> Result<()> {
            std::fs::write(new.workspace().home().join("half"), "x").unwrap();
            Err(crate::Error::BadName("step".into()))
        };
        let made = (|| -> Result<Workspace> {
            let mut new = NewWorkspace::hidden(&s, "w", None, None, "w", false)?;
            fill(&mut new)?;
            new.publish()?;
            Ok(new.commit())
        })();
        assert!(made.is_err());
        assert!(!s.exists("w"));
        assert_eq!(entries(&s), 0);
    }

    #[test]
    fn a_name_taken_meanwhile_is_not_replaced_and_the_new_one_goes() {
        let (_d, s) = store();
        let mut new = NewWorkspace::hidden(&s, "w", Some("mine".into()), None, "w", false).unwrap();
        let theirs = s
            .create("w", Some("theirs".into()), None, "w", false)
            .unwrap();
        assert!(matches!(
            new.publish(),
            Err(crate::Error::WorkspaceExists(_))
        ));
        drop(new);
        assert_eq!(
            s.workspace("w").unwrap().meta.source.as_deref(),
            Some("theirs")
        );
        assert_eq!(theirs.meta.name, "w");
        assert_eq!(entries(&s), 1);
    }
}
