//! `keepout cargo-credential`: cargo's credential-provider protocol, served from the vault by
//! [`keepout_vault::helper::CargoProvider`]. A registry's token is the secret `cargo/REGISTRY`
//! (`cargo/crates-io` for crates.io).
//!
//! Set up in ~/.cargo/config.toml:
//!
//! ```toml
//! [registry]
//! global-credential-providers = ["keepout cargo-credential"]
//! ```

pub fn cargo_credential() -> anyhow::Result<i32> {
    keepout_vault::helper::serve_cargo(crate::secret::session(), crate::secret::vault());
    Ok(0)
}
