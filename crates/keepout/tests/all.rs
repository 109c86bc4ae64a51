//! keepout's sandbox integration tests: real attacks from the threat model
//! (`../shared/design/threat-model.md`, classes A1-A12), each proven to work without the sandbox
//! and then shown to fail inside `keepout run`, as the current user and (when that is root) as
//! the unprivileged user `keepout-test`. See `suite/harness.rs` for the fixtures.
//!
//! Run with `cargo test -p keepout --test all`.

mod suite;
