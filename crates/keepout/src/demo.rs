//! `keepout demo`: a malicious test suite against a planted fake home, without and with keepout.

use anyhow::Result;

use crate::cli::DemoArgs;

pub fn demo(_args: DemoArgs) -> Result<i32> {
    anyhow::bail!("not yet")
}
