//! keepout's egress: which destinations a sandbox may reach, and the proxy that enforces it.
//!
//! Guarantees:
//! * only names the [`Allowlist`] allows are carried, over HTTP (absolute-form requests) or
//!   HTTPS (CONNECT to port 443 or 80); any other protocol or port is refused;
//! * the proxy resolves names itself and connects to the address it checked, never the name
//!   again, so an allowed name that resolves (or rebinds) to a loopback, private, link-local,
//!   CGNAT, multicast, unspecified or broadcast address, or to one of this host's own addresses,
//!   is refused: the maintainer's own services stay out of reach even with `--net '*'`;
//! * every refusal is recorded ([`Refusal`]) for the run's report, a policy's refusal apart
//!   from a destination that cannot be reached (a name that does not resolve);
//! * nothing the client sends is forwarded before it is searched for the run's decoy values
//!   ([`Canaries`]): the request line, every header, a plain-HTTP body, the bytes of a CONNECT
//!   tunnel (a TLS hello's SNI is in the clear); a host name is searched before it is resolved,
//!   so a value in it does not leave in a DNS query either. A request that carries one is
//!   refused and recorded ([`Sent`]); inside TLS nothing can be seen. A chunked body is
//!   searched with its chunks joined, to its end, and one that is not well formed is refused;
//!   everything is searched also with its whitespace taken out (wrapped base64); each byte is
//!   searched once, so the work is linear in what the client sends;
//! * at most [`MAX_CONNECTIONS`] client connections are served at once; one more is refused.

mod address;
mod allow;
mod canary;
mod proxy;

pub use address::{forbidden, own_addresses};
pub use allow::{Allowlist, NetError, Presets};
pub use canary::{Canaries, Canary, Form, Found, Scan, ScanState, PIECE};
pub use proxy::{Limits, Proxy, Refusal, RefusalKind, Sent, MAX_CONNECTIONS, TEST_LIMITS_VAR};
