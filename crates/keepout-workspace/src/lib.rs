//! keepout's workspaces and layers: long-lived sandboxes that are cheap to start over.
//!
//! A **workspace** is a home that keepout keeps for the sandbox, with the project inside it
//! (`~/PROJECT`): `keepout try` clones into a new one, `keepout shell` comes back to it. A
//! **layer** is a workspace's home frozen read-only (`keepout workspace snapshot`); a new
//! workspace made `--from` a layer starts at once on an overlay of it, so the set-up (Pythons,
//! tox environments, caches) is never run again, and layers stack like a Dockerfile's `FROM`.
//!
//! On disk, under the store's root (`$XDG_DATA_HOME/keepout`):
//! ```text
//! workspaces/NAME/meta.toml   name, source, layer, project, created, last used
//! workspaces/NAME/home/       the home itself, or overlayfs's upper directory on a layer
//! workspaces/NAME/work/       overlayfs's work directory (on a layer only)
//! layers/NAME/meta.toml       name, parent layer, the workspace it was made from, created
//! layers/NAME/home/           the frozen home; nothing writes here once it is a layer
//! ```
//!
//! Guarantees:
//! * names are short and plain (`[a-z0-9][a-z0-9._-]*`, at most 64), so no name is a path;
//! * metadata is replaced atomically (a temporary file renamed over it), and a new layer appears
//!   under its name only once it is whole (its directory is renamed into place);
//! * a snapshot never copies: the workspace's home becomes the layer by a rename, and the
//!   workspace goes on, unchanged to look at, on an overlay of it. A snapshot cut off between
//!   the two steps is repaired the next time the workspace is opened;
//! * a layer that a workspace or another layer stands on is never removed, unless asked to
//!   remove it with all of them ([`Store::remove_layer_and_users`]), which removes nothing when
//!   one of those workspaces is in use;
//! * a workspace being made is removed unless it is finished: every way one is made goes
//!   through one guard ([`NewWorkspace`]);
//! * a workspace in use says by whom: its lock file holds the holder's pid ([`Holder`]);
//! * nothing here runs code from a workspace: files are only created, renamed and removed;
//! * for a root caller, everything a sandbox writes to is owned by the sandbox's own host user
//!   ([`Store::with_owner`]), never by root.
//! * an error says what is wrong; its fix, where there is one, is apart ([`Error::hint`]);
//! * this crate never starts a sandbox: where a flow needs a run (the clone of
//!   [`clone::make_clone`], the runs of [`session`]), the caller runs it ([`session::Sandbox`]).

pub mod check;
pub mod clone;
pub mod home;
pub mod listing;
mod overlay;
pub mod remove;
pub mod review;
pub mod session;
pub mod source;

mod new;
pub use new::NewWorkspace;
pub use remove::{Removal, Removed};

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The metadata format this version writes and reads.
const FORMAT_VERSION: u32 = 1;

/// What can go wrong with workspaces, layers and reviews. The message ([`std::fmt::Display`])
/// says what is wrong; where there is a fix, [`Error::hint`] says it, separately, for the
/// caller to show.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a workspace or layer name")]
    BadName(String),
    #[error("no workspace {name:?}{}", list_known(.known))]
    NoWorkspace { name: String, known: Vec<String> },
    #[error("no layer {name:?}{}", list_known(.known))]
    NoLayer { name: String, known: Vec<String> },
    #[error("a workspace named {0:?} exists already")]
    WorkspaceExists(String),
    #[error("workspace {name} is damaged: {why}")]
    DamagedWorkspace { name: String, why: String },
    #[error("a layer named {0:?} exists already")]
    LayerExists(String),
    #[error("layer {layer:?} is in use by {users}")]
    LayerInUse { layer: String, users: String },
    #[error("workspace {name:?} is in use by another keepout{}", describe_holder(.holder))]
    Busy {
        name: String,
        /// The process that holds the workspace, when it is known and still alive.
        holder: Option<Holder>,
    },
    #[error("{path}: {what} was written by a newer keepout (format {found}); this one reads {FORMAT_VERSION}")]
    NewerFormat {
        path: PathBuf,
        what: &'static str,
        found: u32,
    },
    #[error("your tree changed since the run at {}: applying would overwrite that", list_paths(.0))]
    Conflict(Vec<PathBuf>),
    #[error("{path}: damaged metadata: {message}")]
    Damaged { path: PathBuf, message: String },
    #[error("{path}: cannot be written: {message} (keepout's metadata is TOML, which holds only UTF-8 text: a path that is not UTF-8 cannot be recorded in it)", path = .path.display())]
    Unrecordable { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{given}: the shorthand is github:OWNER/REPO")]
    BadShorthand { given: String },
    #[error("{given}: no credentials in the URL; keepout clones with none")]
    CredentialsInUrl { given: String },
    #[error("{given}: no host in the URL")]
    NoHost { given: String },
    #[error("{given}: keepout clones over HTTPS (or from a local path) only: SSH would need your keys, which never enter the sandbox")]
    NotHttps { given: String },
    #[error("{given}: no such directory (and not an https:// URL)")]
    NoSuchSource {
        given: String,
        #[source]
        cause: std::io::Error,
    },
    #[error(
        "{given} is not a git repository, bundle or URL: nothing was cloned, no workspace was kept"
    )]
    NotARepository { given: String },
    #[error("--ro {}: no such file or directory", .0.display())]
    NoReadOnlyPath(PathBuf),
    #[error("--report {}: there is no directory {} to write it in", .report.display(), .dir.display())]
    NoReportDir { report: PathBuf, dir: PathBuf },
    #[error("cannot write {}", .path.display())]
    Bashrc {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot plant the decoys")]
    Decoys(#[source] std::io::Error),
    /// A file keepout made in a home could not be handed to the sandbox's owner.
    #[error(transparent)]
    Chown(std::io::Error),
    #[error("cannot start the pager {pager:?}")]
    Pager {
        pager: String,
        #[source]
        source: std::io::Error,
    },
    /// The pager's input could not be handed to git.
    #[error(transparent)]
    PagerInput(std::io::Error),
    #[error("cannot make {}", .link.display())]
    DiffLink {
        link: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run git for the diff")]
    GitDiff(#[source] std::io::Error),
    #[error("git diff failed for {}", .0.display())]
    DiffFailed(PathBuf),
    #[error("cloning {given} failed (git exited {code}); no workspace was kept")]
    CloneExited { given: String, code: i32 },
    #[error("workspace {0} exists already: `keepout shell {0}` goes back into it (--new and --from only make new ones)")]
    NotNew(String),
    #[error(
        "{}\n`keepout shell {name} --new` makes an empty one, `--from LAYER` one on a layer; `keepout try SOURCE` clones into a new one",
        .why.as_ref().map(|e| e.text()).unwrap_or_else(|| format!("no workspace {name}"))
    )]
    NothingToEnter {
        name: String,
        /// Why it cannot be opened, where it can be said.
        why: Option<Box<Error>>,
    },
    #[error(
        "{}. A workspace on a layer takes one run at a time (overlayfs mounts its home once); `keepout shell NEW --from {layer}` starts another workspace on the same layer",
        .busy.text()
    )]
    BusyOnLayer { busy: Box<Error>, layer: String },
    #[error("cannot watch the workspace's decoys")]
    WatchDecoys(#[source] std::io::Error),
    #[error("layer {layer} is in use by {users}: remove those first (keepout workspace rm WORKSPACE...), or `keepout workspace rm --layer {layer} --force` removes them with it")]
    LayerStaysInUse { layer: String, users: String },
}

impl Error {
    /// What to do about it, where there is something to do.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::BadName(_) => Some(
                "use lower-case letters, digits, '.', '_' and '-' (at most 64, starting with a \
                 letter or digit)"
                    .into(),
            ),
            Error::WorkspaceExists(name) => Some(format!(
                "keepout shell {name} goes back into it; keepout workspace rm {name} removes it"
            )),
            Error::DamagedWorkspace { name, .. } => {
                Some(format!("`keepout workspace rm {name}` removes it"))
            }
            Error::LayerInUse { .. } => Some("remove those first".into()),
            Error::Busy { holder, .. } => Some(format!(
                "finish that one (exit its shell) or stop it{}, then try again",
                holder
                    .as_ref()
                    .map(|h| format!(" with `kill {}`", h.pid))
                    .unwrap_or_default()
            )),
            Error::Conflict(_) => Some(
                "`keepout review diff` shows the run's changes; `keepout review apply --force` \
                 applies them anyway"
                    .into(),
            ),
            Error::NotHttps { .. } => Some("Use the https:// address".into()),
            Error::NotARepository { .. } => Some(
                "Give a repository's directory, a bare repository, a file made by `git bundle \
                 create`, https://HOST/PATH or github:OWNER/REPO"
                    .into(),
            ),
            Error::NoReadOnlyPath(_) => Some("give a path that exists".into()),
            Error::NoWorkspace { .. }
            | Error::NoLayer { .. }
            | Error::LayerExists(_)
            | Error::NewerFormat { .. }
            | Error::Damaged { .. }
            | Error::Unrecordable { .. }
            | Error::Io { .. }
            | Error::BadShorthand { .. }
            | Error::CredentialsInUrl { .. }
            | Error::NoHost { .. }
            | Error::NoSuchSource { .. }
            | Error::NoReportDir { .. }
            | Error::Bashrc { .. }
            | Error::Decoys(_)
            | Error::Chown(_)
            | Error::Pager { .. }
            | Error::PagerInput(_)
            | Error::DiffLink { .. }
            | Error::GitDiff(_)
            | Error::DiffFailed(_)
            | Error::CloneExited { .. }
            | Error::NotNew(_)
            | Error::NothingToEnter { .. }
            | Error::BusyOnLayer { .. }
            | Error::LayerStaysInUse { .. }
            | Error::WatchDecoys(_) => None,
        }
    }

    /// The message with its fix, where there is one, joined in the words keepout has always
    /// said them in: `(fix)` after an existing name or a missing `--ro` path, `; fix` after a
    /// damaged workspace, `. Fix` after a conflict or a source that cannot be cloned, `: fix`
    /// otherwise.
    pub fn text(&self) -> String {
        let Some(hint) = self.hint() else {
            return self.to_string();
        };
        match self {
            Error::WorkspaceExists(_) | Error::NoReadOnlyPath(_) => format!("{self} ({hint})"),
            Error::DamagedWorkspace { .. } => format!("{self}; {hint}"),
            Error::Conflict(_) | Error::NotHttps { .. } | Error::NotARepository { .. } => {
                format!("{self}. {hint}")
            }
            _ => format!("{self}: {hint}"),
        }
    }
}

/// The keepout process that holds a workspace's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command line, as /proc shows it (empty when it cannot be read).
    pub command: String,
}

fn describe_holder(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) if !h.command.is_empty() => format!(" (pid {}: {})", h.pid, h.command),
        Some(h) => format!(" (pid {})", h.pid),
        None => String::new(),
    }
}

/// At most [`PATHS_SHOWN`] paths, then how many more: an error stays a few lines long.
fn list_paths(paths: &[PathBuf]) -> String {
    let mut text = paths
        .iter()
        .take(PATHS_SHOWN)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > PATHS_SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - PATHS_SHOWN));
    }
    text
}

/// How many paths an error names.
const PATHS_SHOWN: usize = 10;

fn list_known(names: &[String]) -> String {
    if names.is_empty() {
        " (there are none yet)".into()
    } else {
        format!(" (there are: {})", names.join(", "))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Is `name` a valid workspace or layer name?
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(Error::BadName(name.into()))
    }
}

/// Turn anything (a repository's name, say) into a valid name: lower-case, other characters
/// replaced by `-`; `fallback` when nothing is left.
pub fn sanitize_name(raw: &str, fallback: &str) -> String {
    let mut out: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    out.truncate(56);
    if out.is_empty() {
        fallback.into()
    } else {
        out
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// How the hidden directory of a workspace being made starts: `.building-PID-`.
const BUILDING: &str = ".building-";

/// The file in a workspace's directory that says a snapshot of it is under way.
const SNAPSHOT_JOURNAL: &str = "snapshot.toml";

/// What a snapshot under way writes before it moves anything: the layer it makes, and the
/// hidden directory (in `layers/`) it builds that layer in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotJournal {
    layer: String,
    partial: String,
}

/// What `meta.toml` of a workspace says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceMeta {
    pub version: u32,
    pub name: String,
    /// Where it came from (`try`'s source), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The layer it stands on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// The layer it started as a copy of, where overlayfs was refused (see [`Store::materialize`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<String>,
    /// The project's directory inside the home (`~/PROJECT`).
    pub project: String,
    /// Seconds since 1970.
    pub created: u64,
    pub last_used: u64,
}

/// What `meta.toml` of a layer says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub version: u32,
    pub name: String,
    /// The layer under this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The workspace it was made from.
    pub from_workspace: String,
    pub created: u64,
}

/// One workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub dir: PathBuf,
    pub meta: WorkspaceMeta,
}

impl Workspace {
    /// The home: the whole of it, or the upper directory over its layers.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// overlayfs's work directory (used on a layer only).
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
}

/// One layer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub dir: PathBuf,
    pub meta: LayerMeta,
}

impl Layer {
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }
}

/// Held while a sandbox runs in a workspace (or while it is snapshot or removed): an advisory
/// lock on `workspaces/NAME/lock`, let go when dropped or when the process dies.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: std::fs::File,
}

/// Where workspaces and layers live, and who owns what sandboxes write.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    owner: Option<(u32, u32)>,
}

impl Store {
    /// `$KEEPOUT_DATA_HOME`, else `$XDG_DATA_HOME/keepout`, else `~/.local/share/keepout`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("KEEPOUT_DATA_HOME").filter(|p| !p.is_empty()) {
            return p.into();
        }
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
                    .join(".local/share")
            })
            .join("keepout")
    }

    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store {
            root: root.into(),
            owner: None,
        }
    }

    /// Directories a sandbox writes to (homes, work directories) are made owned by this uid and
    /// gid: a root caller's sandbox runs as `nobody` on the host.
    pub fn with_owner(mut self, uid: u32, gid: u32) -> Store {
        self.owner = Some((uid, gid));
        self
    }

    /// The store at `root` for a caller of effective uid `uid`: for root, whose sandbox runs
    /// as `nobody` on the host ([`keepout_sandbox::ROOT_CALLER_HOST_ID`]), owned by `nobody`
    /// ([`Store::with_owner`]); for anyone else, by the caller.
    pub fn for_caller(root: impl Into<PathBuf>, uid: u32) -> Store {
        let store = Store::new(root);
        if uid == 0 {
            let nobody = keepout_sandbox::ROOT_CALLER_HOST_ID;
            store.with_owner(nobody, nobody)
        } else {
            store
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Who owns what sandboxes write here ([`Store::with_owner`]), if not the caller.
    pub fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }

    fn workspaces_dir(&self) -> PathBuf {
        self.root.join("workspaces")
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// Make a directory (and its parents, private to the caller), then hand it to the owner.
    fn make_dir(&self, path: &Path, for_sandbox: bool) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io(path))?;
        if for_sandbox {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .map_err(io(path))?;
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io(path))?;
            }
        }
        Ok(())
    }

    /// Every workspace, by name.
    pub fn workspaces(&self) -> Result<Vec<Workspace>> {
        self.remove_dead_builds();
        let mut out = Vec::new();
        for name in list_names(&self.workspaces_dir())? {
            out.push(self.workspace(&name)?);
        }
        Ok(out)
    }

    /// Every layer, by name.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        let mut out = Vec::new();
        for name in list_names(&self.layers_dir())? {
            out.push(self.layer(&name)?);
        }
        Ok(out)
    }

    /// Is there a workspace (whole or damaged) named `name`?
    pub fn exists(&self, name: &str) -> bool {
        valid_name(name) && self.workspaces_dir().join(name).is_dir()
    }

    /// Every workspace that can be opened, by name, and what is wrong with each of the others
    /// (a damaged or missing `meta.toml`): one damaged workspace hides none of the others.
    pub fn workspaces_and_damaged(&self) -> Result<(Vec<Workspace>, Vec<Error>)> {
        self.remove_dead_builds();
        let dir = self.workspaces_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_name(n) && dir.join(n).is_dir())
            .collect();
        names.sort();
        let (mut good, mut damaged) = (Vec::new(), Vec::new());
        for name in names {
            match self.workspace(&name) {
                Ok(ws) => good.push(ws),
                Err(e) => damaged.push(e),
            }
        }
        Ok((good, damaged))
    }

    /// One workspace. One whose snapshot was cut off (its home already the layer's) is set on
    /// that layer now.
    pub fn workspace(&self, name: &str) -> Result<Workspace> {
        check_name(name)?;
        let dir = self.workspaces_dir().join(name);
        let meta_path = dir.join("meta.toml");
        if !meta_path.exists() {
            if dir.is_dir() {
                return Err(Error::DamagedWorkspace {
                    name: name.into(),
                    why: "its meta.toml is missing".into(),
                });
            }
            return Err(Error::NoWorkspace {
                name: name.into(),
                known: list_names(&self.workspaces_dir())?,
            });
        }
        let meta: WorkspaceMeta = read_meta(&meta_path, "the workspace").map_err(|e| match e {
            Error::Damaged { path, message } => Error::DamagedWorkspace {
                name: name.into(),
                why: format!("{} cannot be read ({message})", path.display()),
            },
            other => other,
        })?;
        let mut ws = Workspace { dir, meta };
        remove_dead_meta_temps(&ws.dir);
        let journal = ws.dir.join(SNAPSHOT_JOURNAL);
        if journal.exists() {
            // A snapshot was cut off, or is running now (then its keepout holds the lock).
            if let Some(_lock) = self.try_lock_exclusive(&ws)? {
                if journal.exists() {
                    let journal: SnapshotJournal = read_meta(&journal, "the snapshot journal")?;
                    self.recover_snapshot(&mut ws, &journal)?;
                }
            }
        } else if !ws.home().exists() {
            self.finish_snapshot(&mut ws)?;
        }
        Ok(ws)
    }

    pub fn layer(&self, name: &str) -> Result<Layer> {
        check_name(name)?;
        let dir = self.layers_dir().join(name);
        let meta_path = dir.join("meta.toml");
        if !meta_path.exists() {
            return Err(Error::NoLayer {
                name: name.into(),
                known: list_names(&self.layers_dir())?,
            });
        }
        Ok(Layer {
            meta: read_meta(&meta_path, "the layer")?,
            dir,
        })
    }

    /// The homes of `layer` and every layer under it, topmost first (overlayfs's lowerdir order).
    pub fn layer_stack(&self, layer: &str) -> Result<Vec<PathBuf>> {
        let mut stack = Vec::new();
        let mut next = Some(layer.to_string());
        while let Some(name) = next {
            let l = self.layer(&name)?;
            if stack.contains(&l.home()) || stack.len() > 128 {
                return Err(Error::Damaged {
                    path: l.dir.join("meta.toml"),
                    message: "the layers' parents form a loop".into(),
                });
            }
            stack.push(l.home());
            next = l.meta.parent;
        }
        Ok(stack)
    }

    /// What the sandbox needs to run in the workspace: its home (an overlay on its layers, or a
    /// plain directory) and where to start (`project`: its project; `false`: the home itself).
    pub fn kept_home(&self, ws: &Workspace, in_project: bool) -> Result<keepout_sandbox::KeptHome> {
        let layers = match &ws.meta.layer {
            Some(l) => self.layer_stack(l)?,
            None => Vec::new(),
        };
        let work = if layers.is_empty() {
            None
        } else {
            // overlayfs wants an empty work directory of its own; it cleans it itself, but one
            // left by a killed run is cleared here.
            let work = ws.work();
            if work.exists() {
                remove_tree(&work)?;
            }
            self.make_dir(&work, true)?;
            Some(work)
        };
        Ok(keepout_sandbox::KeptHome {
            upper: ws.home(),
            layers,
            work,
            workdir: if in_project {
                PathBuf::from(&ws.meta.project)
            } else {
                PathBuf::new()
            },
        })
    }

    /// Remove what keepouts that are gone (kill -9, a crash) left half-made or half-removed in
    /// `workspaces/`: `.building-PID-*` and `.removing-NAME-PID`, whose PID no longer runs.
    fn remove_dead_builds(&self) {
        let dir = self.workspaces_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let pid = if let Some(rest) = name.strip_prefix(BUILDING) {
                rest.split('-').next()
            } else if name.starts_with(".removing-") {
                name.rsplit('-').next()
            } else {
                None
            };
            let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = remove_tree(&e.path());
            }
        }
    }

    /// Where overlayfs is refused: turn a new workspace on a layer into one that holds a copy of
    /// the layer's files (the merged view of its stack), standing on nothing. Slower to make and
    /// bigger on disk, the same to use.
    pub fn materialize(&self, ws: &mut Workspace) -> Result<()> {
        let Some(layer) = ws.meta.layer.clone() else {
            return Ok(());
        };
        let stack = self.layer_stack(&layer)?;
        for l in stack.iter().rev() {
            self.copy_layer(l, &ws.home())?;
        }
        ws.meta.layer = None;
        ws.meta.copied_from = Some(layer);
        write_meta(&ws.dir.join("meta.toml"), &ws.meta)
    }

    /// Copy one layer over `dest` as overlayfs would show it on top: whiteouts delete, opaque
    /// directories replace, the rest is copied (`copy_file_range`: a reflink where the
    /// filesystem can) and owned by the store's owner.
    fn copy_layer(&self, src: &Path, dest: &Path) -> Result<()> {
        for name in sorted_entries(src)? {
            let (s, d) = (src.join(&name), dest.join(&name));
            let meta = std::fs::symlink_metadata(&s).map_err(io(&s))?;
            let existing = std::fs::symlink_metadata(&d).ok();
            let replace = |keep_dir: bool| -> Result<()> {
                match &existing {
                    Some(m) if m.is_dir() && !keep_dir => remove_tree(&d),
                    Some(m) if !m.is_dir() => std::fs::remove_file(&d).map_err(io(&d)),
                    _ => Ok(()),
                }
            };
            if overlay::is_whiteout(&meta) {
                replace(false)?;
            } else if meta.is_dir() {
                replace(!overlay::is_opaque(&s))?;
                if !d.is_dir() {
                    std::fs::create_dir(&d).map_err(io(&d))?;
                }
                std::fs::set_permissions(&d, meta.permissions()).map_err(io(&d))?;
                self.give(&d)?;
                self.copy_layer(&s, &d)?;
            } else if meta.file_type().is_symlink() {
                replace(false)?;
                let target = std::fs::read_link(&s).map_err(io(&s))?;
                std::os::unix::fs::symlink(target, &d).map_err(io(&d))?;
                self.give(&d)?;
            } else if meta.is_file() {
                replace(false)?;
                std::fs::copy(&s, &d).map_err(io(&d))?;
                self.give(&d)?;
            }
        }
        Ok(())
    }

    /// Hand an entry keepout made to the store's owner (a symlink itself, not its target).
    fn give(&self, path: &Path) -> Result<()> {
        match self.owner {
            Some((uid, gid)) => {
                std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io(path))
            }
            None => Ok(()),
        }
    }

    /// Record that the workspace was used now.
    pub fn touch(&self, ws: &mut Workspace) -> Result<()> {
        ws.meta.last_used = now();
        write_meta(&ws.dir.join("meta.toml"), &ws.meta)
    }

    /// Take the workspace's lock: exclusive (snapshot, remove, a run on layers: two overlays on
    /// one upper directory are not allowed) or shared (a run in a plain workspace).
    pub fn lock(&self, ws: &Workspace, exclusive: bool) -> Result<WorkspaceLock> {
        lock_dir(&ws.dir, &ws.meta.name, exclusive)
    }

    /// Take the workspace's lock exclusively if no one else holds it now, else `None`.
    pub fn try_lock_exclusive(&self, ws: &Workspace) -> Result<Option<WorkspaceLock>> {
        match self.lock(ws, true) {
            Ok(lock) => Ok(Some(lock)),
            Err(Error::Busy { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Record that the workspace's project is `~/project` (a clone that went beside a
    /// directory of its layer).
    pub fn set_project(&self, ws: &mut Workspace, project: &str) -> Result<()> {
        if !valid_name(project) {
            return Err(Error::BadName(project.into()));
        }
        ws.meta.project = project.into();
        write_meta(&ws.dir.join("meta.toml"), &ws.meta)
    }

    /// What the layer stack of `layer` holds at `rel` in its merged view: the topmost entry
    /// wins, a whiteout hides what is under it. `None`: nothing there.
    pub fn layer_entry(&self, layer: &str, rel: &Path) -> Result<Option<std::fs::Metadata>> {
        for home in self.layer_stack(layer)? {
            if let Ok(meta) = std::fs::symlink_metadata(home.join(rel)) {
                return Ok((!overlay::is_whiteout(&meta)).then_some(meta));
            }
        }
        Ok(None)
    }

    /// Freeze the workspace's home as the read-only layer `layer`; the workspace goes on, on an
    /// overlay of it, looking the same.
    ///
    /// Every step is journaled: `workspaces/NAME/snapshot.toml` names the layer and its hidden
    /// directory before anything moves, and is removed only when the workspace stands on the new
    /// layer. A snapshot cut off at any step (kill -9, power loss) is finished, or undone when
    /// the home had not moved yet, the next time the workspace is opened ([`Store::workspace`]).
    pub fn snapshot(&self, workspace: &str, layer: &str) -> Result<Layer> {
        check_name(layer)?;
        let mut ws = self.workspace(workspace)?;
        let _lock = self.lock(&ws, true)?;
        if self.layers_dir().join(layer).exists() {
            return Err(Error::LayerExists(layer.into()));
        }
        self.make_dir(&self.layers_dir(), false)?;
        let journal = SnapshotJournal {
            layer: layer.into(),
            partial: format!(".partial-{layer}-{}-{:x}", std::process::id(), nanos()),
        };
        write_meta(&ws.dir.join(SNAPSHOT_JOURNAL), &journal)?;
        let partial = self.layers_dir().join(&journal.partial);
        let moved = (|| {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&partial)
                .map_err(io(&partial))?;
            let meta = LayerMeta {
                version: FORMAT_VERSION,
                name: layer.into(),
                parent: ws.meta.layer.clone(),
                from_workspace: ws.meta.name.clone(),
                created: now(),
            };
            write_meta(&partial.join("meta.toml"), &meta)?;
            // The home moves into the (still hidden) layer; the rest (the layer appears under
            // its name, the workspace stands on it) is what recovery does too.
            std::fs::rename(ws.home(), partial.join("home")).map_err(io(&ws.home()))
        })();
        if let Err(e) = moved {
            // Undone now rather than on the next open: the home had not moved.
            let _ = self.recover_snapshot(&mut ws, &journal);
            return Err(e);
        }
        self.recover_snapshot(&mut ws, &journal)?;
        self.layer(layer)
    }

    /// Finish (or undo) the snapshot that `journal` describes, from whatever step it reached;
    /// the caller holds the workspace's exclusive lock. Each step is checked before it is done,
    /// so this can itself be cut off and run again.
    fn recover_snapshot(&self, ws: &mut Workspace, journal: &SnapshotJournal) -> Result<()> {
        let path = ws.dir.join(SNAPSHOT_JOURNAL);
        if !valid_name(&journal.layer)
            || !journal.partial.starts_with(".partial-")
            || journal.partial.contains('/')
        {
            return Err(Error::Damaged {
                path,
                message: "it names no layer of this store".into(),
            });
        }
        let partial = self.layers_dir().join(&journal.partial);
        let dir = self.layers_dir().join(&journal.layer);
        if ws.meta.layer.as_deref() != Some(journal.layer.as_str()) {
            if partial.join("home").is_dir() {
                // The home moved into the hidden layer: the layer appears under its name.
                match rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &partial,
                    rustix::fs::CWD,
                    &dir,
                    rustix::fs::RenameFlags::NOREPLACE,
                ) {
                    Ok(()) => {}
                    Err(e) if e == rustix::io::Errno::EXIST || e == rustix::io::Errno::NOTEMPTY => {
                        // Someone else's layer took the name meanwhile: the home goes back.
                        if !ws.home().exists() {
                            std::fs::rename(partial.join("home"), ws.home())
                                .map_err(io(&ws.home()))?;
                        }
                        remove_tree(&partial)?;
                        std::fs::remove_file(&path).map_err(io(&path))?;
                        return Err(Error::LayerExists(journal.layer.clone()));
                    }
                    Err(e) => return Err(io(&dir)(e.into())),
                }
            }
            let made = !ws.home().exists()
                && self.layer(&journal.layer).is_ok_and(|l| {
                    l.meta.from_workspace == ws.meta.name && l.meta.parent == ws.meta.layer
                });
            if made {
                ws.meta.layer = Some(journal.layer.clone());
                write_meta(&ws.dir.join("meta.toml"), &ws.meta)?;
            } else if ws.home().exists() {
                // Cut off before the home moved: nothing happened but a hidden directory.
                remove_tree(&partial)?;
            }
        }
        if !ws.home().exists() {
            self.make_dir(&ws.home(), true)?;
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// A workspace whose home is missing with no snapshot journal (a home removed by hand, or a
    /// snapshot by a keepout that kept no journal): if a layer was made from it on what it
    /// stands on, it stands on that layer now; else its home starts empty.
    fn finish_snapshot(&self, ws: &mut Workspace) -> Result<()> {
        let made = self
            .layers()?
            .into_iter()
            .rfind(|l| l.meta.from_workspace == ws.meta.name && l.meta.parent == ws.meta.layer);
        let Some(made) = made else {
            return self.make_dir(&ws.home(), true);
        };
        ws.meta.layer = Some(made.meta.name.clone());
        write_meta(&ws.dir.join("meta.toml"), &ws.meta)?;
        self.make_dir(&ws.home(), true)
    }

    /// Remove a workspace and everything in it; a damaged one too.
    pub fn remove(&self, name: &str) -> Result<()> {
        match self.workspace(name) {
            Ok(ws) => {
                let lock = self.lock(&ws, true)?;
                self.remove_held(&ws, lock)
            }
            Err(Error::DamagedWorkspace { .. }) => {
                let dir = self.workspaces_dir().join(name);
                let lock = lock_dir(&dir, name, true)?;
                self.remove_dir_held(&dir, name, lock)
            }
            Err(e) => Err(e),
        }
    }

    /// Remove a workspace whose exclusive lock the caller holds.
    fn remove_held(&self, ws: &Workspace, lock: WorkspaceLock) -> Result<()> {
        self.remove_dir_held(&ws.dir, &ws.meta.name, lock)
    }

    fn remove_dir_held(&self, dir: &Path, name: &str, lock: WorkspaceLock) -> Result<()> {
        // Renamed away first, so that a half-removed workspace is never mistaken for one.
        let doomed = self
            .workspaces_dir()
            .join(format!(".removing-{name}-{}", std::process::id()));
        std::fs::rename(dir, &doomed).map_err(io(dir))?;
        drop(lock);
        remove_tree(&doomed)
    }

    /// Which workspaces and layers stand directly on `layer`.
    pub fn users_of(&self, layer: &str) -> Result<Vec<String>> {
        let mut users: Vec<String> = self
            .workspaces()?
            .into_iter()
            .filter(|w| w.meta.layer.as_deref() == Some(layer))
            .map(|w| format!("workspace {}", w.meta.name))
            .collect();
        users.extend(
            self.layers()?
                .into_iter()
                .filter(|l| l.meta.parent.as_deref() == Some(layer))
                .map(|l| format!("layer {}", l.meta.name)),
        );
        Ok(users)
    }

    /// Remove a layer that nothing stands on.
    pub fn remove_layer(&self, name: &str) -> Result<()> {
        let layer = self.layer(name)?;
        let users = self.users_of(name)?;
        if !users.is_empty() {
            return Err(Error::LayerInUse {
                layer: name.into(),
                users: users.join(", "),
            });
        }
        let doomed = self
            .layers_dir()
            .join(format!(".removing-{name}-{}", std::process::id()));
        std::fs::rename(&layer.dir, &doomed).map_err(io(&layer.dir))?;
        remove_tree(&doomed)
    }

    /// Remove every layer that no workspace uses, directly or through other layers. Returns
    /// their names.
    pub fn remove_unused_layers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        loop {
            let unused: Vec<String> = self
                .layers()?
                .into_iter()
                .map(|l| l.meta.name)
                .filter(|n| self.users_of(n).is_ok_and(|u| u.is_empty()))
                .collect();
            if unused.is_empty() {
                return Ok(removed);
            }
            for name in unused {
                self.remove_layer(&name)?;
                removed.push(name);
            }
        }
    }

    /// A name like `base` that no workspace has yet: `base`, `base-2`, `base-3`, ...
    pub fn free_name(&self, base: &str) -> String {
        let base = sanitize_name(base, "workspace");
        if !self.workspaces_dir().join(&base).exists() {
            return base;
        }
        (2..)
            .map(|n| format!("{base}-{n}"))
            .find(|n| !self.workspaces_dir().join(n).exists())
            .expect("some number is free")
    }
}

/// Take the lock of the workspace in `dir` (see [`Store::lock`]).
fn lock_dir(dir: &Path, name: &str, exclusive: bool) -> Result<WorkspaceLock> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    let how = if exclusive {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    } else {
        rustix::fs::FlockOperation::NonBlockingLockShared
    };
    match rustix::fs::flock(&file, how) {
        Ok(()) => {
            // Who holds it, for the message a second run gets (best effort: a shared lock's
            // holders take turns writing here, and any of them is a right answer).
            let _ = file.set_len(0);
            let _ = (&file).write_all(format!("{}\n", std::process::id()).as_bytes());
            Ok(WorkspaceLock { _file: file })
        }
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Busy {
            name: name.into(),
            holder: holder_of(&path),
        }),
        Err(e) => Err(io(&path)(e.into())),
    }
}

/// The live process named in a lock file, if any.
fn holder_of(lock: &Path) -> Option<Holder> {
    let pid: u32 = std::fs::read_to_string(lock).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let command = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Holder { pid, command })
}

/// Bytes a directory tree takes on disk (allocated blocks; hard links counted once per walk).
pub fn disk_usage(path: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

/// Remove a tree that a sandbox wrote: never following a symlink, and giving directories back
/// their owner's access first (overlayfs leaves a `work` directory with mode 000).
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700));
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    std::fs::remove_dir_all(path).map_err(io(path))
}

/// The names in a directory keepout reads through (a layer, a review's upper directory), in
/// order, so that what is done with them is done the same way every time.
fn sorted_entries(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    Ok(names)
}

fn list_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_name(n) && dir.join(n).join("meta.toml").exists())
        .collect();
    names.sort();
    Ok(names)
}

fn read_meta<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::Damaged {
            path: path.into(),
            message: "it is not UTF-8 text".into(),
        },
        _ => io(path)(e),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| Error::Damaged {
        path: path.into(),
        message: e.message().to_string(),
    })?;
    let found = table
        .get("version")
        .and_then(|v| v.as_integer())
        .unwrap_or(0);
    if found > FORMAT_VERSION as i64 {
        return Err(Error::NewerFormat {
            path: path.into(),
            what,
            found: found as u32,
        });
    }
    toml::from_str(&text).map_err(|e| Error::Damaged {
        path: path.into(),
        message: e.message().to_string(),
    })
}

/// How the temporary files of [`write_meta`] start: `.meta-PID-`.
const META_TEMP: &str = ".meta-";

/// Remove the temporary files that a [`write_meta`] cut off (its process gone) left in `dir`.
fn remove_dead_meta_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(META_TEMP))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Write metadata atomically: a temporary file beside it, synced, renamed over it.
fn write_meta<T: Serialize>(path: &Path, meta: &T) -> Result<()> {
    let dir = path.parent().expect("metadata lives in a directory");
    let text = toml::to_string(meta).map_err(|e| Error::Unrecordable {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{META_TEMP}{}-", std::process::id()))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(text.as_bytes()).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_with_a_path_that_is_not_utf8_is_an_error_not_a_panic() {
        use std::os::unix::ffi::OsStrExt;
        #[derive(Serialize)]
        struct WithPath {
            project: PathBuf,
        }
        let dir = tempfile::tempdir().unwrap();
        let meta = WithPath {
            project: PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/\xff")),
        };
        let err = write_meta(&dir.path().join("meta.toml"), &meta).unwrap_err();
        assert!(
            matches!(err, Error::Unrecordable { .. }) && err.to_string().contains("only UTF-8"),
            "{err}"
        );
        assert!(!dir.path().join("meta.toml").exists(), "nothing written");
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("keepout"));
        (dir, store)
    }

    #[test]
    fn a_root_caller_s_store_is_owned_by_its_sandbox_s_user() {
        let nobody = keepout_sandbox::ROOT_CALLER_HOST_ID;
        assert_eq!(Store::for_caller("/s", 0).owner(), Some((nobody, nobody)));
        assert_eq!(Store::for_caller("/s", 1000).owner(), None);
        assert_eq!(Store::for_caller("/s", 1000).root(), Path::new("/s"));
    }

    #[test]
    fn names_are_plain() {
        assert!(valid_name("bug-123"));
        assert!(valid_name("py3.12_base"));
        for bad in ["", "-x", ".x", "A", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert_eq!(sanitize_name("Repro.Git!", "w"), "repro.git-");
        assert_eq!(sanitize_name("///", "w"), "w");
    }

    #[test]
    fn create_list_touch_remove() {
        let (_d, s) = store();
        assert!(s.workspaces().unwrap().is_empty());
        let ws = s
            .create("bug-1", Some("github:a/b".into()), None, "b", true)
            .unwrap();
        assert!(ws.home().join("b").is_dir());
        assert!(matches!(
            s.create("bug-1", None, None, "b", true),
            Err(Error::WorkspaceExists(_))
        ));
        let mut ws = s.workspace("bug-1").unwrap();
        assert_eq!(ws.meta.source.as_deref(), Some("github:a/b"));
        s.touch(&mut ws).unwrap();
        assert_eq!(s.free_name("bug-1"), "bug-1-2");
        assert_eq!(s.workspaces().unwrap().len(), 1);
        s.remove("bug-1").unwrap();
        assert!(matches!(
            s.workspace("bug-1"),
            Err(Error::NoWorkspace { .. })
        ));
        // Nothing half-made is left behind.
        assert_eq!(
            std::fs::read_dir(s.root().join("workspaces"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn snapshot_moves_the_home_into_a_layer_and_stacks() {
        let (_d, s) = store();
        let ws = s.create("base", None, None, "base", true).unwrap();
        std::fs::write(ws.home().join("tool"), "v1").unwrap();
        let layer = s.snapshot("base", "py-base").unwrap();
        assert_eq!(
            std::fs::read_to_string(layer.home().join("tool")).unwrap(),
            "v1"
        );
        let ws = s.workspace("base").unwrap();
        assert_eq!(ws.meta.layer.as_deref(), Some("py-base"));
        assert_eq!(std::fs::read_dir(ws.home()).unwrap().count(), 0);
        // A second snapshot of the same workspace stacks on the first.
        std::fs::write(ws.home().join("more"), "v2").unwrap();
        let top = s.snapshot("base", "py-more").unwrap();
        assert_eq!(top.meta.parent.as_deref(), Some("py-base"));
        assert_eq!(
            s.layer_stack("py-more").unwrap(),
            vec![top.home(), layer.home()]
        );
        let kept = s.kept_home(&s.workspace("base").unwrap(), true).unwrap();
        assert_eq!(kept.layers.len(), 2);
        assert!(kept.work.as_ref().unwrap().is_dir());
        assert_eq!(kept.workdir, Path::new("base"));
        // Layers in use are kept; unused ones go when asked.
        assert!(matches!(
            s.remove_layer("py-base"),
            Err(Error::LayerInUse { .. })
        ));
        s.remove("base").unwrap();
        assert_eq!(
            s.remove_unused_layers().unwrap(),
            vec!["py-more".to_string(), "py-base".to_string()]
        );
    }

    #[test]
    fn a_copy_of_a_layer_stack_is_its_merged_view() {
        let (_d, s) = store();
        let ws = s.create("base", None, None, "base", true).unwrap();
        std::fs::write(ws.home().join("keep"), "1").unwrap();
        std::fs::write(ws.home().join("gone"), "1").unwrap();
        std::fs::create_dir(ws.home().join("dir")).unwrap();
        std::fs::write(ws.home().join("dir/old"), "1").unwrap();
        s.snapshot("base", "l1").unwrap();
        // The upper layer as overlayfs would leave it: a changed file, a symlink, and (as a
        // plain file here: making a whiteout needs privilege) no whiteout.
        let ws = s.workspace("base").unwrap();
        std::fs::write(ws.home().join("keep"), "2").unwrap();
        std::os::unix::fs::symlink("keep", ws.home().join("link")).unwrap();
        s.snapshot("base", "l2").unwrap();
        let mut copy = s.create("copy", None, Some("l2"), "copy", false).unwrap();
        s.materialize(&mut copy).unwrap();
        let copy = s.workspace("copy").unwrap();
        assert_eq!(copy.meta.layer, None);
        assert_eq!(copy.meta.copied_from.as_deref(), Some("l2"));
        assert_eq!(
            std::fs::read_to_string(copy.home().join("keep")).unwrap(),
            "2"
        );
        assert_eq!(
            std::fs::read_to_string(copy.home().join("dir/old")).unwrap(),
            "1"
        );
        assert_eq!(
            std::fs::read_link(copy.home().join("link")).unwrap(),
            Path::new("keep")
        );
        // Nothing depends on the layers any more.
        assert!(s
            .users_of("l2")
            .unwrap()
            .iter()
            .all(|u| !u.contains("copy")));
    }

    #[test]
    fn a_cut_off_snapshot_is_finished_on_open() {
        let (_d, s) = store();
        let ws = s.create("base", None, None, "base", true).unwrap();
        std::fs::write(ws.home().join("f"), "x").unwrap();
        s.snapshot("base", "l1").unwrap();
        // Simulate the cut: the workspace's metadata still says no layer, its home is gone.
        let mut meta = s.workspace("base").unwrap().meta;
        meta.layer = None;
        write_meta(&ws.dir.join("meta.toml"), &meta).unwrap();
        remove_tree(&ws.home()).unwrap();
        let ws = s.workspace("base").unwrap();
        assert_eq!(ws.meta.layer.as_deref(), Some("l1"));
        assert!(ws.home().is_dir());
    }

    #[test]
    fn newer_and_damaged_metadata_are_clear_errors() {
        let (_d, s) = store();
        let ws = s.create("w", None, None, "w", false).unwrap();
        std::fs::write(ws.dir.join("meta.toml"), "version = 9\nname = 'w'\n").unwrap();
        assert!(matches!(
            s.workspace("w"),
            Err(Error::NewerFormat { found: 9, .. })
        ));
        std::fs::write(ws.dir.join("meta.toml"), "not toml [").unwrap();
        assert!(matches!(
            s.workspace("w"),
            Err(Error::DamagedWorkspace { .. })
        ));
    }

    #[test]
    fn a_busy_workspace_cannot_be_removed() {
        let (_d, s) = store();
        let ws = s.create("w", None, None, "w", false).unwrap();
        let _held = s.lock(&ws, false).unwrap();
        match s.remove("w") {
            Err(Error::Busy {
                holder: Some(h), ..
            }) => assert_eq!(h.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
    }

    /// Each error with a fix, in the words keepout said before the fix was kept apart.
    #[test]
    fn errors_say_their_fixes_in_the_same_words() {
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::BadName("X".into()),
                "\"X\" is not a workspace or layer name: use lower-case letters, digits, '.', '_' \
                 and '-' (at most 64, starting with a letter or digit)",
            ),
            (
                Error::WorkspaceExists("w".into()),
                "a workspace named \"w\" exists already (keepout shell w goes back into it; \
                 keepout workspace rm w removes it)",
            ),
            (
                Error::DamagedWorkspace {
                    name: "w".into(),
                    why: "its meta.toml is missing".into(),
                },
                "workspace w is damaged: its meta.toml is missing; `keepout workspace rm w` \
                 removes it",
            ),
            (
                Error::LayerInUse {
                    layer: "l".into(),
                    users: "workspace w".into(),
                },
                "layer \"l\" is in use by workspace w: remove those first",
            ),
            (
                Error::Busy {
                    name: "w".into(),
                    holder: Some(Holder {
                        pid: 7,
                        command: "keepout shell w".into(),
                    }),
                },
                "workspace \"w\" is in use by another keepout (pid 7: keepout shell w): finish \
                 that one (exit its shell) or stop it with `kill 7`, then try again",
            ),
            (
                Error::Busy {
                    name: "w".into(),
                    holder: None,
                },
                "workspace \"w\" is in use by another keepout: finish that one (exit its shell) \
                 or stop it, then try again",
            ),
            (
                Error::Conflict(vec!["a".into(), "b/c".into()]),
                "your tree changed since the run at a, b/c: applying would overwrite that. \
                 `keepout review diff` shows the run's changes; `keepout review apply --force` \
                 applies them anyway",
            ),
            (
                Error::NotHttps {
                    given: "git@h:x".into(),
                },
                "git@h:x: keepout clones over HTTPS (or from a local path) only: SSH would need \
                 your keys, which never enter the sandbox. Use the https:// address",
            ),
            (
                Error::NotARepository { given: "p".into() },
                "p is not a git repository, bundle or URL: nothing was cloned, no workspace was \
                 kept. Give a repository's directory, a bare repository, a file made by `git \
                 bundle create`, https://HOST/PATH or github:OWNER/REPO",
            ),
            (
                Error::NoReadOnlyPath("/x".into()),
                "--ro /x: no such file or directory (give a path that exists)",
            ),
            (
                Error::NoReportDir {
                    report: "d/r.json".into(),
                    dir: "d".into(),
                },
                "--report d/r.json: there is no directory d to write it in",
            ),
            (
                Error::BadShorthand {
                    given: "github:x".into(),
                },
                "github:x: the shorthand is github:OWNER/REPO",
            ),
            (
                Error::CredentialsInUrl {
                    given: "https://u@h/x".into(),
                },
                "https://u@h/x: no credentials in the URL; keepout clones with none",
            ),
        ];
        for (error, said) in cases {
            assert_eq!(error.text(), said, "{error:?}");
        }
    }
}
