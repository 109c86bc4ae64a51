//! What `keepout workspace list` shows, computed: every workspace and layer with its size on
//! disk, and what is wrong with each damaged workspace; the table it prints
//! ([`Listing::table`]); and the words sizes and ages are shown in.
//!
//! What this module guarantees: one damaged workspace hides none of the others (it is listed
//! among [`Listing::damaged`]); sizes are what the trees take on disk ([`crate::disk_usage`]);
//! nothing is changed but the removal of what dead keepouts left half-made; `--json`'s shape
//! ([`ListingJson`]) has the keys and values it has always had, in the same (alphabetical)
//! order, and the table its columns, widths and words.

use serde::Serialize;

use crate::{disk_usage, Error, Layer, Result, Store, Workspace};

/// A workspace and its home's size.
#[derive(Debug)]
pub struct ListedWorkspace {
    pub workspace: Workspace,
    /// Bytes its home takes on disk.
    pub size: u64,
}

/// A layer and its home's size.
#[derive(Debug)]
pub struct ListedLayer {
    pub layer: Layer,
    /// Bytes its home takes on disk.
    pub size: u64,
}

/// Everything in the store, for a listing.
#[derive(Debug)]
pub struct Listing {
    pub workspaces: Vec<ListedWorkspace>,
    pub layers: Vec<ListedLayer>,
    /// What is wrong with each workspace that cannot be opened.
    pub damaged: Vec<Error>,
}

/// `keepout workspace list --json`: every workspace and layer, and each damaged workspace's
/// error as keepout says it ([`Error::text`]). Fields are in alphabetical order, the order the
/// listing's keys have always come in; an absent value is `null`.
#[derive(Debug, Serialize)]
pub struct ListingJson<'a> {
    pub damaged: Vec<String>,
    pub layers: Vec<LayerJson<'a>>,
    pub workspaces: Vec<WorkspaceJson<'a>>,
}

/// One workspace in [`ListingJson`].
#[derive(Debug, Serialize)]
pub struct WorkspaceJson<'a> {
    pub copied_from: Option<&'a str>,
    pub created: u64,
    pub last_used: u64,
    pub layer: Option<&'a str>,
    pub name: &'a str,
    pub project: &'a str,
    pub size: u64,
    pub source: Option<&'a str>,
}

/// One layer in [`ListingJson`].
#[derive(Debug, Serialize)]
pub struct LayerJson<'a> {
    pub created: u64,
    pub from_workspace: &'a str,
    pub name: &'a str,
    pub parent: Option<&'a str>,
    pub size: u64,
}

impl Listing {
    /// The listing as `--json` shows it.
    pub fn json(&self) -> ListingJson<'_> {
        ListingJson {
            damaged: self.damaged.iter().map(Error::text).collect(),
            layers: self
                .layers
                .iter()
                .map(|l| {
                    let meta = &l.layer.meta;
                    LayerJson {
                        created: meta.created,
                        from_workspace: &meta.from_workspace,
                        name: &meta.name,
                        parent: meta.parent.as_deref(),
                        size: l.size,
                    }
                })
                .collect(),
            workspaces: self
                .workspaces
                .iter()
                .map(|w| {
                    let meta = &w.workspace.meta;
                    WorkspaceJson {
                        copied_from: meta.copied_from.as_deref(),
                        created: meta.created,
                        last_used: meta.last_used,
                        layer: meta.layer.as_deref(),
                        name: &meta.name,
                        project: &meta.project,
                        size: w.size,
                        source: meta.source.as_deref(),
                    }
                })
                .collect(),
        }
    }

    /// Nothing at all in the store?
    pub fn is_empty(&self) -> bool {
        self.workspaces.is_empty() && self.layers.is_empty() && self.damaged.is_empty()
    }

    /// The listing as text, one string per line, ages counted back from now (see
    /// [`Listing::table_at`]).
    pub fn table(&self) -> Vec<String> {
        self.table_at(crate::now())
    }

    /// The listing as text, one string per line, ages counted back from `now`: a table of the
    /// workspaces (name, source, layer, size, created, last used), then, after an empty line,
    /// one of the layers when there are any; or, when the store holds nothing at all, how to
    /// make a first workspace. The damaged workspaces are not in it (say [`Listing::damaged`]).
    pub fn table_at(&self, now: u64) -> Vec<String> {
        if self.is_empty() {
            return vec!["no workspaces yet: `keepout try SOURCE` clones into one, `keepout shell NAME --new` makes an empty one".into()];
        }
        let mut lines = vec![format!(
            "{:<20} {:<36} {:<14} {:>9}  {:<12} LAST USED",
            "WORKSPACE", "SOURCE", "LAYER", "SIZE", "CREATED"
        )];
        for w in &self.workspaces {
            let meta = &w.workspace.meta;
            lines.push(format!(
                "{:<20} {:<36} {:<14} {:>9}  {:<12} {}",
                meta.name,
                meta.source.as_deref().unwrap_or("-"),
                match (&meta.layer, &meta.copied_from) {
                    (Some(l), _) => l.clone(),
                    (None, Some(c)) => format!("{c} (copy)"),
                    (None, None) => "-".into(),
                },
                human_size(w.size),
                ago_from(meta.created, now),
                ago_from(meta.last_used, now)
            ));
        }
        if !self.layers.is_empty() {
            lines.push(String::new());
            lines.push(format!(
                "{:<20} {:<14} {:<20} {:>9}  CREATED",
                "LAYER", "ON", "FROM WORKSPACE", "SIZE"
            ));
            for l in &self.layers {
                let meta = &l.layer.meta;
                lines.push(format!(
                    "{:<20} {:<14} {:<20} {:>9}  {}",
                    meta.name,
                    meta.parent.as_deref().unwrap_or("-"),
                    meta.from_workspace,
                    human_size(l.size),
                    ago_from(meta.created, now)
                ));
            }
        }
        lines
    }
}

impl Store {
    /// Every workspace (by name), every layer (by name), and the damaged workspaces.
    pub fn listing(&self) -> Result<Listing> {
        let (workspaces, damaged) = self.workspaces_and_damaged()?;
        let layers = self.layers()?;
        Ok(Listing {
            workspaces: workspaces
                .into_iter()
                .map(|w| ListedWorkspace {
                    size: disk_usage(&w.home()),
                    workspace: w,
                })
                .collect(),
            layers: layers
                .into_iter()
                .map(|l| ListedLayer {
                    size: disk_usage(&l.home()),
                    layer: l,
                })
                .collect(),
            damaged,
        })
    }
}

/// What `keepout workspace snapshot` says when `layer` (of `size` bytes) was made from
/// `workspace`: that the workspace goes on, and how to start on the layer.
pub fn snapshot_made(workspace: &str, layer: &str, size: u64) -> String {
    format!(
        "layer {layer} made from workspace {workspace} ({}); workspace {workspace} goes on on top of it.\n\
         Start on it: keepout try --from {layer} SOURCE   or   keepout shell NEW --from {layer}",
        human_size(size)
    )
}

/// A size in bytes as people read it: `512 B`, `1.5 KiB`, ... up to GiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// How long ago `secs` (seconds since 1970) was, from now.
pub fn ago(secs: u64) -> String {
    ago_from(secs, crate::now())
}

/// How long before `now` `secs` was: `just now`, `N min ago`, `N h ago`, `N days ago`.
pub fn ago_from(secs: u64, now: u64) -> String {
    let d = now.saturating_sub(secs);
    match d {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86399 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_says_how_to_start_on_it() {
        assert_eq!(
            snapshot_made("w", "l", 2048),
            "layer l made from workspace w (2.0 KiB); workspace w goes on on top of it.\n\
             Start on it: keepout try --from l SOURCE   or   keepout shell NEW --from l"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_size(3 << 40), "3072.0 GiB");
    }

    #[test]
    fn ages() {
        assert_eq!(ago_from(1000, 1000), "just now");
        assert_eq!(ago_from(1000, 1059), "just now");
        assert_eq!(ago_from(1000, 1060), "1 min ago");
        assert_eq!(ago_from(0, 7200), "2 h ago");
        assert_eq!(ago_from(0, 3 * 86400 + 5), "3 days ago");
        assert_eq!(ago_from(2000, 1000), "just now", "a time ahead is now");
    }

    #[test]
    fn a_damaged_workspace_hides_none_of_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path());
        assert!(s.listing().unwrap().is_empty());
        let ws = s.create("good", None, None, "good", true).unwrap();
        std::fs::write(ws.home().join("good/f"), vec![0u8; 10_000]).unwrap();
        let bad = s.create("bad", None, None, "bad", true).unwrap();
        std::fs::remove_file(bad.dir.join("meta.toml")).unwrap();
        s.snapshot("good", "l").unwrap();
        let listing = s.listing().unwrap();
        assert_eq!(listing.workspaces.len(), 1);
        assert_eq!(listing.workspaces[0].workspace.meta.name, "good");
        assert_eq!(listing.layers.len(), 1);
        assert!(listing.layers[0].size >= 10_000);
        assert!(matches!(
            listing.damaged.as_slice(),
            [Error::DamagedWorkspace { name, .. }] if name == "bad"
        ));
    }

    /// A workspace on a layer, the layer, and a damaged workspace.
    fn sample() -> Listing {
        use crate::{LayerMeta, WorkspaceMeta};
        Listing {
            workspaces: vec![ListedWorkspace {
                workspace: Workspace {
                    dir: "/s/workspaces/w".into(),
                    meta: WorkspaceMeta {
                        version: 1,
                        name: "w".into(),
                        source: Some("https://h/x".into()),
                        layer: Some("l".into()),
                        copied_from: None,
                        project: "x".into(),
                        created: 10,
                        last_used: 20,
                    },
                },
                size: 4096,
            }],
            layers: vec![ListedLayer {
                layer: Layer {
                    dir: "/s/layers/l".into(),
                    meta: LayerMeta {
                        version: 1,
                        name: "l".into(),
                        parent: None,
                        from_workspace: "v".into(),
                        created: 5,
                    },
                },
                size: 8192,
            }],
            damaged: vec![Error::DamagedWorkspace {
                name: "d".into(),
                why: "its meta.toml is missing".into(),
            }],
        }
    }

    /// The JSON is what the CLI wrote before the shape was a type: key for key, value for value,
    /// byte for byte.
    #[test]
    fn json_is_the_listing_as_it_always_was() {
        let listing = sample();
        let before = serde_json::json!({
            "workspaces": [{
                "name": "w", "source": "https://h/x", "layer": "l", "copied_from": null,
                "project": "x", "size": 4096, "created": 10, "last_used": 20,
            }],
            "layers": [{
                "name": "l", "parent": null, "from_workspace": "v", "size": 8192, "created": 5,
            }],
            "damaged": [
                "workspace d is damaged: its meta.toml is missing; `keepout workspace rm d` \
                 removes it"
            ],
        });
        assert_eq!(
            serde_json::to_string_pretty(&listing.json()).unwrap(),
            serde_json::to_string_pretty(&before).unwrap()
        );
    }

    /// The table, column for column, as `keepout workspace list` has always printed it.
    #[test]
    fn the_table_has_its_columns_and_the_layers_after_an_empty_line() {
        let mut listing = sample();
        let now = 20 + 2 * 3600;
        assert_eq!(
            listing.table_at(now),
            [
                "WORKSPACE            SOURCE                               LAYER               SIZE  CREATED      LAST USED",
                "w                    https://h/x                          l                4.0 KiB  2 h ago      2 h ago",
                "",
                "LAYER                ON             FROM WORKSPACE            SIZE  CREATED",
                "l                    -              v                      8.0 KiB  2 h ago",
            ]
        );
        let meta = &mut listing.workspaces[0].workspace.meta;
        (meta.layer, meta.copied_from, meta.source) = (None, Some("l".into()), None);
        listing.layers.clear();
        let lines = listing.table_at(now);
        assert_eq!(lines.len(), 2, "no layers, no layer table: {lines:?}");
        assert!(
            lines[1].starts_with(
                "w                    -                                    l (copy)       "
            ),
            "{:?}",
            lines[1]
        );
        // Only damaged workspaces: the header, no rows.
        listing.workspaces.clear();
        assert_eq!(listing.table_at(now).len(), 1);
        listing.damaged.clear();
        assert_eq!(
            listing.table_at(now),
            ["no workspaces yet: `keepout try SOURCE` clones into one, `keepout shell NAME --new` makes an empty one"]
        );
    }
}
