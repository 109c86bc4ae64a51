//! keepout's SSH agent: asks before every signature and says who asks and for what.
//!
//! It serves the ssh-agent protocol (through `ssh-agent-lib`) on a socket in
//! `keepout_vault::cache::socket_dir()` (`$XDG_RUNTIME_DIR/keepout/`, else
//! `~/.local/state/keepout/run/`), and hosts the vault's unlock cache in the same process.
//!
//! Guarantees:
//! * only peers of the agent's own uid are served (SO_PEERCRED); others are disconnected unread;
//! * every signature follows the key's policy ([`policy`]): a destination outside `hosts` is
//!   refused without a prompt; otherwise the user is asked (unless `confirm = "never"`, or a
//!   `confirm = "5m"` yes still covers that key and host from the asking terminal session, or
//!   without a terminal the asking process tree), with who asks ([`peer`]) and for what
//!   ([`destination`]), where the requester is ([`terminal`]: its own terminal when it is in
//!   that terminal's foreground and the terminal is the user's, or its display); no answer
//!   within the prompt timeout is a no; a refusal's reason is said on that terminal too;
//! * the policy is the configuration file's as it is now: read again when it changes and on
//!   SIGHUP; one that does not parse keeps the last good policy, never none;
//! * keys cannot be added or removed through the socket (refused; in proxy mode, asked);
//! * private keys are read from the unlocked vault for one signature at a time, held only in
//!   memory that is zeroed on drop, never written to disk; the process is non-dumpable and
//!   locks its memory where the limit allows.
//!
//! Around the serving: [`daemon`] starts the agent in the background of a shell (reusing one
//! that answers) and writes the lines for `eval`; [`systemd`] makes its systemd user unit;
//! [`keys::import`] moves a private key into the vault and [`keys::listing`] lists the keys
//! with their policy.

pub mod daemon;
pub mod destination;
mod error;
pub mod keys;
pub mod peer;
pub mod policy;
mod server;
pub mod systemd;
pub mod terminal;

pub use error::Error;
pub use server::{serve, AgentConfig};
pub use ssh_key::PublicKey;
