//! The catalogue of what, left in a project, runs code on the maintainer's machine later without
//! them running anything they could have read, or hides a change from them: threat classes A4
//! and A14-A16 (docs/threat-model.md). Plain data and name tests; the walk that uses it is
//! [`crate::project_scan`].
//!
//! * Git directories, at any depth: a `.git` directory, a `.git` file (`gitdir:` pointer), any
//!   directory git would open as a bare repository (`HEAD`, `objects/` and `refs/` in it), and
//!   the submodule repositories under `modules/`. Their [`GIT_CONTROL`] entries decide what git
//!   runs (hooks, `core.fsmonitor`, aliases, filters, `core.pager`...) and where it reads them
//!   from (`commondir`, `gitdir`).
//! * [`EDITOR_AND_TOOL_FILES`]: files that editors, shells and tools act on when the maintainer
//!   opens or enters the directory, or runs their usual command there.
//! * [`BYTECODE_SUFFIXES`]: compiled files an interpreter runs instead of the source beside
//!   them, which no review shows. [`STARTUP_FILES`]: files Python runs at every start.

/// Entries of a git directory that decide what git runs or where it reads its configuration:
/// pinned read-only where they exist, moved aside after the run where they appear.
pub const GIT_CONTROL: &[&str] = &[
    "config",
    "config.worktree",
    "hooks",
    "info",
    "commondir",
    "gitdir",
    "worktrees",
];

/// What kind of entry a catalogue name means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Either,
}

/// One kind of file that runs code later: its name, which entry kinds count, and who runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoRun {
    pub name: &'static str,
    pub kind: Kind,
    pub runs_it: &'static str,
}

const fn entry(name: &'static str, kind: Kind, runs_it: &'static str) -> AutoRun {
    AutoRun {
        name,
        kind,
        runs_it,
    }
}

/// Editor, shell and tool files that run code when the maintainer opens or enters the directory
/// they are in, or runs their usual command there. Any depth: a maintainer opens subfolders too.
pub const EDITOR_AND_TOOL_FILES: &[AutoRun] = &[
    entry(".envrc", Kind::Either, "direnv, when you cd in"),
    entry(
        ".env",
        Kind::File,
        "dotenv loaders (VS Code's Python extension, mise, python-dotenv): NODE_OPTIONS, LD_PRELOAD",
    ),
    entry(
        ".vscode",
        Kind::Dir,
        "VS Code: tasks with runOn folderOpen, settings naming executables, mcp.json",
    ),
    entry(".idea", Kind::Dir, "JetBrains IDEs: run configurations and startup tasks"),
    entry(".cursor", Kind::Dir, "Cursor: rules and MCP servers"),
    entry(".zed", Kind::Dir, "Zed: tasks and language servers"),
    entry(".fleet", Kind::Dir, "JetBrains Fleet: run configurations"),
    entry(".helix", Kind::Dir, "Helix: language servers it starts"),
    entry(".theia", Kind::Dir, "Theia: tasks and settings"),
    entry(".devcontainer", Kind::Dir, "Dev Containers: initializeCommand runs on the host"),
    entry(".devcontainer.json", Kind::File, "Dev Containers: initializeCommand runs on the host"),
    entry(".nvim.lua", Kind::File, "Neovim with 'exrc'"),
    entry(".nvimrc", Kind::File, "Neovim with 'exrc'"),
    entry(".exrc", Kind::File, "vi, Vim and Neovim with 'exrc'"),
    entry(".lazy.lua", Kind::File, "lazy.nvim: a project's plugin spec"),
    entry(".dir-locals.el", Kind::File, "Emacs: eval: local variables"),
    entry(".dir-locals-2.el", Kind::File, "Emacs: eval: local variables"),
    entry("mise.toml", Kind::File, "mise: hooks, tasks and environment"),
    entry(".mise.toml", Kind::File, "mise: hooks, tasks and environment"),
    entry("mise.local.toml", Kind::File, "mise: hooks, tasks and environment"),
    entry(".mise.local.toml", Kind::File, "mise: hooks, tasks and environment"),
    entry(".mise", Kind::Dir, "mise: configuration and tasks"),
    entry(".claude", Kind::Dir, "Claude Code: hooks run commands"),
    entry(".mcp.json", Kind::File, "AI editors: MCP servers they start"),
    entry(".gemini", Kind::Dir, "Gemini CLI: settings and MCP servers"),
    entry(
        ".cargo",
        Kind::Dir,
        "cargo: config.toml sets rustc wrappers, runners and aliases for your next build",
    ),
    entry(".npmrc", Kind::File, "npm: node-options and script-shell for your next npm command"),
    entry(".yarnrc", Kind::File, "yarn: settings for your next yarn command"),
    entry(".yarnrc.yml", Kind::File, "yarn: yarnPath runs a JavaScript file"),
    entry(".pnpmfile.cjs", Kind::File, "pnpm: hooks that run at install"),
    entry("bunfig.toml", Kind::File, "bun: preload scripts"),
    entry(".pdbrc", Kind::File, "pdb: commands it runs when you debug here"),
    entry(".hg", Kind::Dir, "Mercurial: hooks in .hg/hgrc"),
];

/// Names ending so are VS Code workspace files (tasks and settings, like `.vscode/`).
pub const EDITOR_SUFFIXES: &[(&str, &str)] = &[(
    ".code-workspace",
    "VS Code: a workspace file's tasks and settings",
)];

/// Compiled files an interpreter runs in place of the source beside them: Python's bytecode
/// (timestamp-checked only against the source's size and mtime, which a planted file copies),
/// Emacs's byte-compiled Lisp (loaded even when older than its source).
pub const BYTECODE_SUFFIXES: &[&str] = &[".pyc", ".pyo", ".elc"];

/// Files Python runs at every interpreter start of the environment they are in.
pub const STARTUP_FILES: &[&str] = &["sitecustomize.py", "usercustomize.py"];
/// Suffix of Python's path-configuration files, whose `import` lines run at every start.
pub const STARTUP_SUFFIX: &str = ".pth";

/// Directories whose contents a package manager deletes and recreates as a whole: nothing in
/// them is pinned with a mount (that would make `npm ci` fail with EBUSY); what runs later in
/// them is still checked after the run.
pub const REGENERATED_DIRS: &[&str] = &["node_modules"];

/// The catalogue entry for an entry named `name`, if it runs code later.
pub fn editor_or_tool(name: &[u8], is_dir: bool) -> Option<&'static str> {
    for e in EDITOR_AND_TOOL_FILES {
        if e.name.as_bytes() == name {
            let fits = match e.kind {
                Kind::File => !is_dir,
                Kind::Dir => is_dir,
                Kind::Either => true,
            };
            return fits.then_some(e.runs_it);
        }
    }
    EDITOR_SUFFIXES
        .iter()
        .find(|(suffix, _)| !is_dir && name.ends_with(suffix.as_bytes()))
        .map(|(_, runs_it)| *runs_it)
}

/// Is this file name compiled code (see [`BYTECODE_SUFFIXES`])?
pub fn is_bytecode(name: &[u8]) -> bool {
    BYTECODE_SUFFIXES
        .iter()
        .any(|s| name.ends_with(s.as_bytes()))
}

/// Is this file name one Python runs at start-up (see [`STARTUP_FILES`])?
pub fn is_startup_file(name: &[u8]) -> bool {
    name.ends_with(STARTUP_SUFFIX.as_bytes()) || STARTUP_FILES.iter().any(|s| s.as_bytes() == name)
}

/// Do these entry names make their directory a repository git would open (bare or a `.git`)?
/// git's own test (`is_git_directory`): `HEAD`, `objects/` and `refs/`.
pub fn looks_like_git_dir<'a>(names: impl IntoIterator<Item = (&'a [u8], bool)>) -> bool {
    let (mut head, mut objects, mut refs) = (false, false, false);
    for (name, is_dir) in names {
        match name {
            b"HEAD" if !is_dir => head = true,
            b"objects" if is_dir => objects = true,
            b"refs" if is_dir => refs = true,
            _ => {}
        }
    }
    head && objects && refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert!(editor_or_tool(b".vscode", true).is_some());
        assert!(editor_or_tool(b".vscode", false).is_none());
        // A virtualenv called .env is a directory, not a dotenv file.
        assert!(editor_or_tool(b".env", true).is_none());
        assert!(editor_or_tool(b".env", false).is_some());
        assert!(editor_or_tool(b"proj.code-workspace", false).is_some());
        assert!(editor_or_tool(b"README.md", false).is_none());
        assert!(is_bytecode(b"mod.cpython-311.pyc"));
        assert!(!is_bytecode(b"mod.py"));
        assert!(is_startup_file(b"__editable__.x.pth"));
        assert!(is_startup_file(b"sitecustomize.py"));
        assert!(!is_startup_file(b"site.py"));
        let names: [(&[u8], bool); 3] = [(b"HEAD", false), (b"objects", true), (b"refs", true)];
        assert!(looks_like_git_dir(names));
        let names: [(&[u8], bool); 2] = [(b"HEAD", false), (b"objects", true)];
        assert!(!looks_like_git_dir(names));
    }
}
