//! The command line, defined once: parsing, `--help`, the manual pages (`keepout man`) and the
//! shell completions all come from these definitions. Every flag is defined in one place with
//! one help text: the flags `run`, `try` and `shell` share are [`SandboxArgs`], flattened into
//! each. The help of every command is recorded as a snapshot (src/snapshots/), so a change to
//! it shows in review.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter};
use keepout_sandbox::EnvRule;

#[derive(Parser, Debug)]
#[command(
    name = "keepout",
    version,
    about = "Run other people's code without handing it your credentials",
    long_about = "Run other people's code without handing it your credentials.\n\n\
        `keepout run -- COMMAND` runs COMMAND in a native Linux sandbox: an empty home, no \
        network, the system read-only, your project read-write except the files that run code \
        on your machine later (.git/hooks, .git/config, .git/info, .envrc), a clean \
        environment, no privilege, and no way to reach your other processes, agents or terminal.",
    after_help = "Examples:\n  \
        keepout run -- python3 -m pytest          # no network\n  \
        keepout run --net pypi -- pip install -e .   # PyPI only, through keepout's proxy\n  \
        keepout run -- tox                        # your pyenv, rustup, nvm...: read-only inside\n  \
        keepout run --review -- make test         # writes go aside; then `keepout review`\n  \
        keepout try github:someone/repro -- tox   # clone inside, into a new workspace\n  \
        keepout shell repro                       # back into it later\n  \
        keepout run --print-policy -- true        # what the sandbox would see, as TOML\n  \
        keepout doctor                            # what this kernel can enforce\n  \
        keepout demo                              # watch a malicious test suite fail\n  \
        echo -n TOKEN | keepout secret set pypi/coverage   # into the encrypted vault\n\n\
        Vault exit status: 3 wrong passphrase or identity (or an age plugin refused), 4 damaged\n\
        vault, 5 written by a newer keepout, 6 no such secret or no vault yet."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// `keepout run ...` parsed with the definition of `run` alone: building the definition of
    /// every command costs more than the whole parse (start-up time is measured against
    /// bubblewrap). `None` for any other command line, and whenever that parse does not end in
    /// a `run` to do (`--help`, a mistake): the whole definition then parses the command line
    /// again, so that help texts and errors are exactly its own. A test checks that both parse
    /// the same command lines to the same arguments.
    pub fn run_only(args: &[std::ffi::OsString]) -> Option<RunArgs> {
        use clap::FromArgMatches;
        if args.get(1).is_none_or(|a| a != "run") {
            return None;
        }
        let run = RunArgs::augment_args(clap::Command::new("run"));
        let matches = clap::Command::new("keepout")
            .subcommand(run)
            .try_get_matches_from(args)
            .ok()?;
        RunArgs::from_arg_matches(matches.subcommand_matches("run")?).ok()
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command in the sandbox.
    Run(RunArgs),
    /// Clone a repository inside the sandbox into a new workspace, then run COMMAND there (no
    /// command: a shell). SOURCE: https://HOST/..., github:OWNER/REPO, a local repository, a git
    /// bundle or file://.
    Try(TryArgs),
    /// Go back into a workspace: a shell in its project, or COMMAND. Its home is as you left it.
    Shell(ShellArgs),
    /// List, snapshot (freeze as a read-only layer) and remove workspaces and layers.
    Workspace {
        #[command(subcommand)]
        action: WorkspaceAction,
    },
    /// What a `keepout run --review` changed in the project, risky first; `diff`, `apply` or
    /// `discard` it. Works on the latest review of the current project unless --id says.
    Review(ReviewArgs),
    /// Store, list and remove secrets in the encrypted vault (a standard age file).
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Run a command with the secrets of this directory's scope in its environment (and
    /// nowhere else).
    Exec(ExecArgs),
    /// Print shell functions kvars [DURATION] / unkvars: `eval "$(keepout hook bash)"`
    /// in ~/.bashrc (zsh: ~/.zshrc; fish: `keepout hook fish | source` in config.fish).
    Hook {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// The shell code kvars evaluates (used by the hook).
    #[command(hide = true)]
    HookEnv(HookEnvArgs),
    /// git's credential helper, served from the vault (secrets named git/HOST/USER):
    /// `git config --global credential.helper '!keepout git-credential'`.
    GitCredential {
        #[command(subcommand)]
        action: GitCredentialAction,
    },
    /// cargo's credential provider, served from the vault (tokens named cargo/REGISTRY):
    /// `[registry] global-credential-providers = ["keepout cargo-credential"]`.
    CargoCredential {
        /// Passed by cargo.
        #[arg(long, hide = true)]
        cargo_plugin: bool,
    },
    /// Move credentials from a plaintext file into the vault, then (after a yes) remove the file
    /// or rewrite it without them. The whole original is kept in the vault as backup/KIND
    /// (backup/KIND-2, ... for another file); a stored secret is never replaced silently.
    Import {
        #[arg(value_enum)]
        kind: ImportKind,
        /// The file to import [default: its usual place, e.g. ~/.netrc].
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Remove or rewrite the file without asking.
        #[arg(long, conflicts_with = "keep")]
        yes: bool,
        /// Leave the file as it is.
        #[arg(long)]
        keep: bool,
        /// Replace a stored secret that holds a different value. Without it the stored value
        /// is kept and the new one is stored under a new name (NAME-2), or, on a terminal,
        /// you are asked.
        #[arg(long)]
        replace: bool,
    },
    /// SSH keys in the vault, for `keepout agent`: import, list, remove.
    Ssh {
        #[command(subcommand)]
        action: SshAction,
    },
    /// An SSH agent that asks before every signature, saying who asks and for which host.
    /// Its keys are the vault's (`keepout ssh import`), or, with --upstream, another agent's.
    /// It also keeps the vault unlocked (the unlock cache lives in it while it runs).
    Agent(AgentArgs),
    /// What any program you run could steal or hijack today (credential files, SSH keys and
    /// agents, tokens in dotfiles and history, privilege), worst first, each with the fix.
    /// Exit status: 0 nothing at or above --fail-on, 1 findings, 2 keepout error.
    Audit(AuditArgs),
    /// git, made safe by default: `keepout git setup` makes fetch and clone use HTTPS and push
    /// use SSH (so every push goes through your agent's approval), by URL rewrites in your
    /// global git config.
    Git {
        #[command(subcommand)]
        action: GitAction,
    },
    /// Forget the unlocked vault now (the unlock cache also forgets after 5 idle minutes,
    /// KEEPOUT_CACHE_IDLE).
    Lock,
    /// The unlock cache's process (started by keepout itself).
    #[command(hide = true)]
    CacheDaemon,
    /// Show what this kernel supports (user namespaces, Landlock ABI, seccomp, ...).
    Doctor(DoctorArgs),
    /// Run a malicious "test suite" on a planted fake home, without and then with keepout.
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    /// (`keepout completions bash > ~/.local/share/bash-completion/completions/keepout`; the
    /// script calls keepout back, so workspace and layer names and --net presets complete too).
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print a manual page (roff), generated from this command line: `keepout man | man -l -`
    /// for keepout(1), which lists the subcommands; `keepout man SUBCOMMAND...` for one of
    /// them, e.g. `keepout man workspace rm` for keepout-workspace-rm(1).
    Man {
        /// The subcommand whose page to print (nested ones as words: workspace rm)
        /// [default: keepout's own page].
        #[arg(value_name = "SUBCOMMAND")]
        subcommand: Vec<String>,
    },
}

/// The shells `keepout completions` writes a script for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl CompletionShell {
    pub fn name(self) -> &'static str {
        match self {
            CompletionShell::Bash => "bash",
            CompletionShell::Zsh => "zsh",
            CompletionShell::Fish => "fish",
            CompletionShell::Elvish => "elvish",
            CompletionShell::Powershell => "powershell",
        }
    }
}

impl Command {
    /// Whether the command only prints (listings, reports, scripts): no sandbox to stop, no
    /// file half-written, no socket or child it writes to. Only these end at once on a closed
    /// pipe (`keepout workspace list | head -1`); every other command keeps SIGPIPE ignored and
    /// finishes its work (a review's apply, an agent writing to a client that left, a pager
    /// quit early inside the apply prompt).
    pub fn only_prints(&self) -> bool {
        match self {
            Command::Workspace {
                action: WorkspaceAction::List { .. },
            }
            | Command::Secret {
                action: SecretAction::List { .. },
            }
            | Command::Ssh {
                action: SshAction::List { .. },
            }
            | Command::Doctor(_)
            | Command::Completions { .. }
            | Command::Man { .. } => true,
            Command::Audit(args) => !args.fix,
            Command::Review(args) => matches!(
                args.action,
                None | Some(ReviewAction::Diff) | Some(ReviewAction::List)
            ),
            _ => false,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum SecretAction {
    /// Store a secret. The value is read from standard input when that is not a terminal,
    /// else asked for without echo. The first `set` creates the vault and asks for a new
    /// passphrase.
    Set {
        /// The secret's name, e.g. pypi/coverage (lower-case letters, digits, . _ - and /).
        name: String,
        /// A note shown by `keepout secret list`.
        #[arg(long)]
        note: Option<String>,
    },
    /// Names and metadata of the stored secrets, never their values.
    List {
        /// Print as JSON (name, created, updated, note; times in seconds since 1970).
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Rm {
        /// The secret's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SshAction {
    /// Move a private key into the vault (secret ssh/NAME; its public half next to the vault),
    /// then (after a yes) remove the plaintext private key file. An encrypted key asks for its
    /// passphrase once; in the vault it is protected by the vault's.
    Import {
        /// The private key file, e.g. ~/.ssh/id_ed25519 (OpenSSH format).
        path: PathBuf,
        /// The key's name in keepout [default: the file name].
        #[arg(long)]
        name: Option<String>,
        /// Remove the private key file without asking.
        #[arg(long, conflicts_with = "keep")]
        yes: bool,
        /// Leave the private key file as it is.
        #[arg(long)]
        keep: bool,
    },
    /// The agent's keys: name, type, fingerprint and policy ([[ssh.key]] in the config).
    List {
        /// Print as JSON (name, algorithm, fingerprint, public_key, confirm, hosts).
        #[arg(long)]
        json: bool,
    },
    /// Remove a key from the vault.
    Rm {
        /// The key's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GitAction {
    /// Fetch and clone over HTTPS, push over SSH, for github.com, gitlab.com and codeberg.org
    /// (or the --host given): url.<https>.insteadOf and url.<ssh>.pushInsteadOf in your global
    /// git config. Idempotent; --undo removes exactly these values.
    Setup(GitSetupArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GitSetupArgs {
    /// A host to set up (repeatable) [default: github.com, gitlab.com, codeberg.org].
    #[arg(long)]
    pub host: Vec<String>,
    /// Print the git commands instead of running them.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the values `git setup` adds.
    #[arg(long)]
    pub undo: bool,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Print the findings as JSON (fields: check, severity, title, location, why, fix,
    /// fix_command; documented in docs/audit.md).
    #[arg(long)]
    pub json: bool,
    /// Audit this directory as the home (a fixture, another user's copy); probes that run
    /// programs (sudo -n, ssh-add -l) are then skipped.
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Audit a repository's release path instead (the one the current directory is in):
    /// which jobs publish, what starts them, how they authenticate, what gates them.
    #[arg(long, value_name = "DIR", num_args = 0..=1, conflicts_with_all = ["home", "fix"])]
    pub repo: Option<Option<PathBuf>>,
    /// With --repo: add the findings of zizmor (installed separately), run offline.
    #[arg(long, requires = "repo")]
    pub zizmor: bool,
    /// With --repo: the read-only token for GitHub's settings: `keepout:NAME` from the vault,
    /// or `gh` for `gh auth token`.
    #[arg(long, value_name = "SOURCE", requires = "repo")]
    pub token: Option<String>,
    /// Walk through the fixes that keepout can do (import into the vault, `keepout git setup`,
    /// keepout as git's credential helper), asking before each; then audit again.
    #[arg(long, conflicts_with = "json")]
    pub fix: bool,
    /// The lowest severity that makes the exit status 1.
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = ["info", "low", "medium", "high", "critical"])]
    pub fail_on: String,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Start in the background, print the `export SSH_AUTH_SOCK=...` line, and return (an
    /// agent already answering on the socket is reused, and named). Decisions are logged to
    /// agent.log next to the socket.
    #[arg(long)]
    pub daemon: bool,
    /// The socket [default: $XDG_RUNTIME_DIR/keepout/agent.sock, else
    /// ~/.local/state/keepout/run/agent.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Proxy mode: put approval and host rules in front of this agent (a YubiKey's,
    /// gpg-agent's, 1Password's, OpenSSH's) and sign with its keys.
    #[arg(long, value_name = "SOCKET")]
    pub upstream: Option<PathBuf>,
    /// Another known_hosts file to name hosts from (also `[ssh] known_hosts` in the config).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Vec<PathBuf>,
    /// Print a systemd user unit that starts this keepout binary (by its absolute path, wherever
    /// it is installed) as the agent, and exit: `keepout agent --systemd-unit >
    /// ~/.config/systemd/user/keepout-agent.service`.
    #[arg(long, conflicts_with_all = ["daemon", "socket"])]
    pub systemd_unit: bool,
    /// Internal (what --daemon starts): leave the terminal's session first, so that the agent
    /// has no controlling terminal of its own.
    #[arg(long, hide = true)]
    pub detached: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportKind {
    /// ~/.netrc
    Netrc,
    /// ~/.git-credentials (credential.helper=store)
    GitCredentials,
    /// ~/.pypirc passwords
    Pypirc,
    /// ~/.cargo/credentials.toml tokens
    Cargo,
    /// ~/.npmrc auth tokens
    Npmrc,
    /// ~/.config/gh/hosts.yml oauth tokens
    Gh,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct HookEnvArgs {
    #[arg(long, value_enum)]
    pub shell: Shell,
    /// How long the variables stay: a number and its unit, 30s, 10m or 1h [default: 10m].
    #[arg(long)]
    pub ttl: Option<String>,
    /// Use this scope instead of the current directory's.
    #[arg(long)]
    pub scope: Option<String>,
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum GitCredentialAction {
    /// Answer git's request with the stored user name and password, if there is one.
    Get,
    /// Keep a credential git used successfully.
    Store,
    /// Forget a credential git found to be wrong.
    Erase,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Namespaces, a new root, Landlock and seccomp (needs unprivileged user namespaces).
    Namespaces,
    /// Landlock, seccomp and a clean environment only (needs no privilege; weaker).
    Landlock,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: the command's own; 128+N if signal N killed it; 125 if keepout \
    itself failed; 126 if the command cannot be executed; 127 if it is not found inside the sandbox."
)]
pub struct RunArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,

    /// Plant decoy credentials (~/.ssh/id_ed25519, ~/.netrc, ~/.aws/credentials, ~/.pypirc,
    /// ~/.config/gh/hosts.yml, with fake values) in the sandbox's fresh home, and report every
    /// read of them (watched from outside the sandbox), saying which reads ordinary tools make;
    /// with --net NAMES, a request that carries a decoy's value is refused and reported as an
    /// ALERT.
    #[arg(long, conflicts_with = "home")]
    pub decoys: bool,

    /// The project directory, visible read-write [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,

    /// Keep the sandbox's home in DIR between runs, made (mode 0700) if it does not exist yet
    /// [default: a fresh empty home each run].
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Also show PATH read-write (repeatable).
    #[arg(long = "rw", value_name = "PATH")]
    pub read_write: Vec<PathBuf>,

    /// Let the sandbox connect to this unix socket in the project (repeatable). Every other
    /// socket there (a dev database's, a forwarded agent's, git's fsmonitor daemon's) is masked.
    #[arg(long = "socket", value_name = "PATH")]
    pub sockets: Vec<PathBuf>,

    /// How to enforce the sandbox.
    #[arg(long, value_enum, default_value_t = ModeArg::Namespaces)]
    pub mode: ModeArg,

    /// Most processes (and threads) the sandbox may have at once.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub max_procs: u64,

    /// Size of the fresh /tmp and of a fresh home, in MiB (tmpfs: RAM) [default: 2048, or an
    /// eighth of RAM when that is less].
    #[arg(long, value_name = "MIB")]
    pub tmp_size: Option<u64>,

    /// Print the policy (what would be visible, the environment, the limits) as TOML and exit.
    #[arg(long)]
    pub print_policy: bool,

    /// Every write to the project goes aside, the real tree is not touched; afterwards
    /// `keepout review` shows the changes, `review diff` the diff, `review apply` puts them in.
    #[arg(long, conflicts_with = "mode")]
    pub review: bool,

    /// The command and its arguments, after `--` or after keepout's own options: everything
    /// from the first word that is not one of keepout's options is the command's
    /// (`keepout run pytest -x` runs `pytest -x`).
    #[arg(
        value_name = "COMMAND",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    pub command: Vec<String>,
}

/// The host's memory and disk (A18), for `run`, `try` and `shell`.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    /// Cap the sandbox's memory (its tmpfs included), e.g. 4G or 512M; the kernel kills in the
    /// sandbox beyond it. Needs a memory cgroup this user may make: root, or cgroup v2 with the
    /// memory controller delegated (keepout says what to do where there is none). Config:
    /// `[run] memory`.
    #[arg(long, value_name = "SIZE", value_parser = keepout_sandbox::limits::parse_size)]
    pub memory: Option<u64>,

    /// Free space to keep for the host on every writable host filesystem the sandbox sees (the
    /// project, --rw paths, a kept home, the workspace store): a share such as 5%, an amount
    /// such as 2G, or a share with a ceiling (5%,10G); the run is stopped before it goes below,
    /// and does not start when it is below already. 0: no watch. [default: 5%,10G: 5% of the
    /// filesystem, at most 10 GiB; config: `[run] disk-reserve`]
    #[arg(long, value_name = "SHARE|SIZE")]
    pub disk_reserve: Option<keepout_sandbox::limits::DiskReserve>,
}

/// What the command may reach besides its project or workspace, the same for `run`, `try` and
/// `shell`: each of these flags is defined here only, once, with one help text.
#[derive(Args, Debug, Clone, Default)]
pub struct SandboxArgs {
    /// Network, through keepout's proxy: presets (pypi, crates, npm, github, gitlab, rubygems,
    /// go, maven, conda), host names and *.domain, comma-separated; '*' for any public host
    /// (never loopback, private addresses or this host's own). HTTP and HTTPS only. `host`: the
    /// host's network as it is (an escape hatch). Without --net: only the sandbox's own loopback.
    #[arg(long, value_name = "NAMES", add = ArgValueCompleter::new(crate::complete::net))]
    pub net: Option<String>,

    /// Write what the run tried as JSON: destinations refused and not reachable, refused
    /// system calls, decoys read and decoy values sent (docs/net.md).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// No summary lines after the run (refused, not reachable, decoys read); an ALERT about a
    /// decoy's value sent is always printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub terminal: TerminalArgs,

    /// Also show PATH read-only, e.g. --ro ~/data; it must exist (repeatable).
    #[arg(long = "ro", value_name = "PATH")]
    pub read_only: Vec<PathBuf>,

    /// Leave out your toolchains, otherwise shown read-only: rustup and ~/.cargo/bin, pyenv,
    /// uv's Pythons, nvm, asdf, mise, sdkman, Go's (and the config's `[run] toolchains`).
    #[arg(long)]
    pub no_toolchains: bool,

    /// Pass your variable NAME into the sandbox, or set NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<EnvRule>,

    #[command(flatten)]
    pub resources: ResourceArgs,

    /// Run the command in this podman or docker image, under the same policy (the project, or
    /// the workspace's home, at its path, protected names read-only, no caller environment, no
    /// network, a non-root user without capabilities); the image must be there already: keepout
    /// never pulls. `try` makes its workspace natively; only the command runs in the image.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// The engine for --image [default: podman, else docker, found on PATH].
    #[arg(long, requires = "image", value_parser = engine())]
    pub engine: Option<keepout_container::EngineKind>,
}

/// What the command's output may do to your terminal (`run`, `try`, `shell`).
#[derive(Args, Debug, Clone, Default)]
pub struct TerminalArgs {
    /// Let the command set your clipboard through the terminal (OSC 52 writes, e.g. vim's or
    /// tmux's yank); reading the clipboard stays refused. Without it, keepout drops every
    /// sequence that acts on your terminal beyond drawing text and colours.
    #[arg(long)]
    pub allow_clipboard: bool,
}

impl TerminalArgs {
    pub fn policy(&self) -> keepout_sandbox::TerminalPolicy {
        keepout_sandbox::TerminalPolicy {
            allow_clipboard: self.allow_clipboard,
        }
    }
}

impl ResourceArgs {
    /// `--memory` and `--disk-reserve` as given.
    pub fn resources(&self) -> keepout_launch::Resources {
        keepout_launch::Resources {
            memory: self.memory,
            disk_reserve: self.disk_reserve,
        }
    }
}

impl From<ModeArg> for keepout_sandbox::Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Namespaces => keepout_sandbox::Mode::Namespaces,
            ModeArg::Landlock => keepout_sandbox::Mode::Landlock,
        }
    }
}

/// `--engine`'s values.
fn engine() -> impl clap::builder::TypedValueParser<Value = keepout_container::EngineKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["podman", "docker"])
        .map(|s| s.parse().expect("a listed engine"))
}

impl RunArgs {
    /// What `keepout run`'s flags ask of its request ([`keepout_launch::run_request`]).
    pub fn options(&self) -> keepout_launch::RunOptions {
        let sandbox = &self.sandbox;
        keepout_launch::RunOptions {
            command: self.command.clone(),
            project: self.project.clone(),
            home: self.home.clone(),
            read_only: sandbox.read_only.clone(),
            read_write: self.read_write.clone(),
            sockets: self.sockets.clone(),
            toolchains: !sandbox.no_toolchains,
            env: sandbox.env.clone(),
            net: sandbox.net.clone(),
            mode: self.mode.into(),
            max_processes: self.max_procs,
            tmp_size_mib: self.tmp_size,
            resources: sandbox.resources.resources(),
            dry: self.print_policy,
        }
    }
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    keepout try https://github.com/someone/repro -- tox\n  \
    keepout try github:someone/repro                 # no command: a shell there\n  \
    keepout try ./bug-123.git --name bug-123 -- pytest -x\n  \
    keepout try --from py-base github:someone/repro -- tox\n\n\
    The clone runs inside the sandbox, with no credentials and none of your git configuration,\n\
    reaching only the repository's host (over HTTPS) or nothing at all (a local path, read-only).\n\
    A clone that fails leaves no workspace behind. Every option is checked before anything is\n\
    cloned or made.")]
#[command(mut_arg("net", |a| a.help(
    "Network for COMMAND (or the shell) after the clone, as for `keepout run --net`; without it, \
     none. The clone itself gets only its source's host (a local source: nothing)")))]
pub struct TryArgs {
    /// What to clone: https://HOST/PATH, github:OWNER/REPO, a local repository (a work tree or a
    /// bare one), a git bundle, or file://PATH.
    pub source: String,
    /// The workspace's name, and the clone's directory (~/NAME) [default: the repository's
    /// name, made unique].
    #[arg(long)]
    pub name: Option<String>,
    /// Start on this layer (`keepout workspace snapshot`): its home, tools and caches are there.
    /// A clone of the same repository already in the layer at the clone's place (~/REPO, or
    /// ~/NAME with --name) is updated (git fetch and checkout of the source's HEAD, inside);
    /// anything else there makes the clone go beside it, under a free name.
    #[arg(long, value_name = "LAYER", add = ArgValueCandidates::new(crate::complete::layers))]
    pub from: Option<String>,
    /// Clone submodules too.
    #[arg(long)]
    pub recursive: bool,
    /// No decoy credentials in the new workspace's home (by default it gets a fake
    /// ~/.ssh/id_ed25519, ~/.netrc, ~/.aws/credentials, ~/.pypirc and ~/.config/gh/hosts.yml,
    /// and every read of them is reported after each run there).
    #[arg(long)]
    pub no_decoys: bool,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// The command to run in the clone [default: an interactive shell there].
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    keepout shell bug-123                          # a shell in its project\n  \
    keepout shell bug-123 -- pytest tests/test_x.py\n  \
    keepout shell base --new --net pypi            # a new, empty workspace\n  \
    keepout shell scratch --from py-base           # a new workspace on a layer")]
pub struct ShellArgs {
    /// The workspace. While a run of a workspace on a layer goes on, another `keepout shell`
    /// of it joins that run's sandbox (as `docker exec` does), with nothing more than it has.
    #[arg(add = ArgValueCandidates::new(crate::complete::workspaces))]
    pub name: String,
    /// Make it, empty (a project directory ~/NAME and nothing else), when it does not exist.
    #[arg(long, conflicts_with = "from")]
    pub new: bool,
    /// Make it on this layer when it does not exist.
    #[arg(long, value_name = "LAYER", add = ArgValueCandidates::new(crate::complete::layers))]
    pub from: Option<String>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// The command to run in the workspace's project [default: an interactive shell there].
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    keepout run --review -- make test   # writes go aside\n  \
    keepout review                      # added / modified / deleted, risky first\n  \
    keepout review diff                 # the diff, with git's colours, in your pager\n  \
    keepout review apply                # into the tree (never through a symlink)\n  \
    keepout review discard")]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub action: Option<ReviewAction>,
    /// The review that `review`, `diff`, `apply` and `discard` work on (`keepout review list`
    /// shows them) [default: the latest of this project].
    #[arg(long, global = true, value_name = "ID")]
    pub id: Option<String>,
    /// Print the changes as JSON, every one (nothing grouped): path, kind:
    /// added|modified|deleted, entry: file|dir|symlink, risk, link_target.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ReviewAction {
    /// The changes as a diff (git diff --no-index; colours as your git shows them), through your
    /// git's pager when standard output is a terminal.
    Diff,
    /// Put the changes into the project: atomically per file, never through a symlink, never
    /// outside the project; git's files (any .git, at any depth) and editor and tool files
    /// (.envrc, .vscode/, .idea/, .npmrc...) stay as they are unless --include-git; new
    /// symlinks out of the project are left out unless --include-symlinks; bytecode always.
    Apply {
        /// Also apply changes to git's files and to editor and tool files.
        #[arg(long)]
        include_git: bool,
        /// Also apply new symlinks that point outside the project.
        #[arg(long)]
        include_symlinks: bool,
        /// Apply even where your tree changed since the run (your edits there are replaced).
        #[arg(long)]
        force: bool,
    },
    /// Drop the changes.
    Discard,
    /// Every review kept, newest last.
    List,
}

#[derive(Subcommand, Debug)]
pub enum WorkspaceAction {
    /// Workspaces (name, source, layer, size, created, last used) and layers.
    List {
        /// Print as JSON (workspaces: name, source, layer, project, size, created, last_used;
        /// layers: name, parent, from_workspace, size, created; times in seconds since 1970).
        #[arg(long)]
        json: bool,
    },
    /// Freeze a workspace's home as a read-only layer; the workspace goes on, on top of it.
    /// New workspaces start on it at once: `keepout try --from LAYER` / `keepout shell NEW --from LAYER`.
    Snapshot {
        /// The workspace.
        #[arg(add = ArgValueCandidates::new(crate::complete::workspaces))]
        workspace: String,
        /// The new layer's name.
        layer: String,
    },
    /// Remove workspaces; --layer NAME removes a layer, --layers every layer nothing stands on.
    #[command(after_help = "Examples:\n  \
        keepout workspace rm bug-123               # a workspace and everything in it\n  \
        keepout workspace rm --layer py-base       # a layer nothing stands on\n  \
        keepout workspace rm --layer py-base --force   # and every workspace and layer on it\n  \
        keepout workspace rm --layers              # every layer no workspace uses")]
    Rm {
        /// The workspaces.
        #[arg(
            required_unless_present_any = ["layers", "layer"],
            add = ArgValueCandidates::new(crate::complete::workspaces)
        )]
        names: Vec<String>,
        /// Remove this layer (repeatable). One that a workspace or layer stands on is refused,
        /// naming them, unless --force.
        #[arg(long, value_name = "NAME", add = ArgValueCandidates::new(crate::complete::layers))]
        layer: Vec<String>,
        /// With --layer: also remove every workspace and layer that stands on it, directly or
        /// through other layers (each is named). Nothing is removed if one of those workspaces
        /// is in use.
        #[arg(long, requires = "layer")]
        force: bool,
        /// Remove the layers that no workspace uses any more.
        #[arg(long)]
        layers: bool,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Scopes are [[scope]] tables in ~/.config/keepout/config.toml ($KEEPOUT_CONFIG):\n  \
    [[scope]]\n  \
    name = \"coverage\"\n  \
    dirs = [\"~/src/coverage*\"]\n  \
    env = { TWINE_USERNAME = \"__token__\", TWINE_PASSWORD = \"keepout:pypi/coverage\" }\n  \
    confirm = false   # true: ask before releasing\n\n\
    References: keepout:NAME (the vault), pass:PATH, op://vault/item/field, bw://item/field;\n\
    anything else is a literal. Exit status: the command's own; 7 no scope matches; 8 pass, op or\n\
    bw failed; 3-6 as for `keepout secret`."
)]
pub struct ExecArgs {
    /// Use this scope instead of the one the current directory matches.
    #[arg(long, value_name = "NAME")]
    pub scope: Option<String>,
    /// Replace the secrets' values in the command's output with <concealed by keepout>.
    #[arg(long)]
    pub mask: bool,
    /// The command and its arguments.
    #[arg(last = true, value_name = "COMMAND", required = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo's temporary directory and print where it is.
    #[arg(long)]
    pub keep: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The width the recorded help is wrapped at, whatever terminal the tests run in.
    const WIDTH: usize = 100;

    /// Every visible command under `cmd` (itself first), as (its words, e.g. "keepout workspace
    /// rm", the command). clap's own `help` subcommand is left out.
    fn visible(cmd: &clap::Command, words: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((words.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            if !sub.is_hide_set() && sub.get_name() != "help" {
                visible(sub, format!("{words} {}", sub.get_name()), out);
            }
        }
    }

    /// The quick parse of `keepout run` gives what the whole definition gives, for every kind
    /// of argument `run` takes, and leaves help and mistakes to the whole definition.
    #[test]
    fn run_alone_parses_as_the_whole_command_line_does() {
        use clap::Parser;
        let lines: &[&[&str]] = &[
            &["run", "--", "true"],
            &["run", "true"],
            &["run", "--net", "pypi", "--", "pip", "install", "-e", "."],
            &[
                "run", "--mode", "landlock", "--ro", "/opt/x", "--rw", "/tmp/y", "--", "make",
                "-j2",
            ],
            &[
                "run",
                "--review",
                "--project",
                "/tmp",
                "--home",
                "/tmp/h",
                "--",
                "sh",
                "-c",
                "x --y",
            ],
            &[
                "run",
                "--print-policy",
                "--no-toolchains",
                "--memory",
                "2G",
                "--",
                "true",
            ],
            &[
                "run",
                "--env",
                "A=1",
                "--env",
                "LANG",
                "-q",
                "--allow-clipboard",
                "--",
                "env",
            ],
            &[
                "run",
                "--socket",
                "/tmp/s",
                "--max-procs",
                "9",
                "--tmp-size",
                "64",
                "--",
                "sh",
            ],
            &[
                "run",
                "--disk-reserve",
                "10%",
                "--mode",
                "namespaces",
                "--",
                "x",
            ],
            &[
                "run",
                "--report",
                "/tmp/r.json",
                "--decoys",
                "--",
                "pytest",
                "-k",
                "not slow",
            ],
            &["run", "python3", "-m", "pytest", "--help"],
        ];
        let mut parsed = 0;
        for line in lines {
            let args: Vec<std::ffi::OsString> = std::iter::once("keepout")
                .chain(line.iter().copied())
                .map(Into::into)
                .collect();
            let full = Cli::try_parse_from(&args).map(|c| format!("{:?}", c.command));
            let quick = Cli::run_only(&args).map(|r| format!("{:?}", super::Command::Run(r)));
            match full {
                Ok(full) => {
                    assert_eq!(quick.as_deref(), Some(full.as_str()), "{line:?}");
                    parsed += 1;
                }
                Err(e) => panic!("{line:?} is a valid command line: {e}"),
            }
        }
        assert_eq!(parsed, lines.len());
        for line in [
            &["run", "--help"][..],
            &["run", "--nonsense", "--", "true"],
            &["run"],
            &["review"],
        ] {
            let args: Vec<std::ffi::OsString> = std::iter::once("keepout")
                .chain(line.iter().copied())
                .map(Into::into)
                .collect();
            assert!(Cli::run_only(&args).is_none(), "{line:?}");
        }
    }

    /// `--help` of keepout and of every subcommand, as recorded in src/snapshots/: a change to a
    /// help text, a flag, a default or the order shows there (`cargo insta review` to accept).
    #[test]
    fn help_of_every_command_is_as_recorded() {
        let mut root = Cli::command().term_width(WIDTH).max_term_width(WIDTH);
        root.build();
        let mut all = Vec::new();
        visible(&root, "keepout".into(), &mut all);
        assert!(all.len() > 20, "every subcommand is there: {}", all.len());
        for (words, mut cmd) in all {
            let help = cmd.render_long_help().to_string();
            insta::assert_snapshot!(format!("help-{}", words.replace(' ', "-")), help, &words);
        }
    }

    /// Each flag `run`, `try` and `shell` share has one definition, so one help text, except
    /// where `try` says what the clone itself gets (`--net`).
    #[test]
    fn the_shared_flags_have_one_help() {
        let mut root = Cli::command();
        root.build();
        let help = |sub: &str, flag: &str| {
            root.find_subcommand(sub)
                .and_then(|c| c.get_arguments().find(|a| a.get_long() == Some(flag)))
                .and_then(|a| a.get_help())
                .map(|h| h.to_string())
                .unwrap_or_else(|| panic!("{sub} has --{flag} with a help"))
        };
        for flag in [
            "report",
            "quiet",
            "allow-clipboard",
            "ro",
            "no-toolchains",
            "env",
            "memory",
            "disk-reserve",
        ] {
            assert_eq!(help("run", flag), help("try", flag), "--{flag}");
            assert_eq!(help("run", flag), help("shell", flag), "--{flag}");
        }
        assert_eq!(help("run", "net"), help("shell", "net"));
        assert!(help("try", "net").contains("The clone itself gets only"));
    }
}
