//! keepout's egress: which destinations a sandbox may reach, and the proxy that enforces it.
//!
//! Guarantees:
//! * only names the [`Allowlist`] allows are carried, over HTTP (absolute-form requests) or
//!   HTTPS (CONNECT to port 443 or 80); any other protocol or port is refused;
//! * the proxy resolves names itself and connects to the address it checked, never the name
//!   again, so an allowed name that resolves (or rebinds) to a loopback, private, link-local,
//!   CGNAT, multicast, unspecified or broadcast address, or to one of this host's own addresses,
//!   is refused: the maintainer's own services stay out of reach even with `--net '*'`;
//! * every refusal is recorded ([`Refusal`]) for the run's report.

mod address;
mod allow;
mod proxy;

pub use address::{forbidden, own_addresses};
pub use allow::{Allowlist, NetError, Presets};
pub use proxy::{Proxy, Refusal};
