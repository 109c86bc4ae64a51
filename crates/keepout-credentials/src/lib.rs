//! Where credentials hide, and how to tell: shared by `keepout run` (which keeps them out of the
//! sandbox) and `keepout audit` (which reports them), so both see the same things.
//!
//! * [`tokens`]: tokens by their published shapes (GitHub, PyPI, npm, AWS, ...), and the
//!   fingerprint that names a token without showing it;
//! * [`detect`]: whether a configuration file's text holds credentials, and the same text with
//!   them removed;
//! * [`redact`]: known secret values concealed in a byte stream as it goes by (`keepout exec
//!   --mask`), also when a value is split across reads;
//! * [`system`]: the catalogue of world-readable files outside the home where tools keep
//!   credentials (`/etc/pip.conf`, `/etc/gitconfig`, a global `npmrc`, ...), and the scan of it.

pub mod detect;
pub mod redact;
pub mod system;
pub mod tokens;
