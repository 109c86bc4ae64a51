//! Links the unwinder that Rust's panics use from libgcc's static archive (`libgcc_eh.a`)
//! instead of the shared `libgcc_s`, which the loader would otherwise map and relocate at every
//! start, and whose constructor probes the CPU with `cpuid` (each one a trap to the hypervisor
//! in a virtual machine): together about a tenth of a millisecond of `keepout run`'s start-up
//! (docs/benchmarks.md). With the archive linked first, `libgcc_s` is left unused and, linked
//! `--as-needed` as rustc links it, is not recorded as needed at all.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|features| features.split(',').any(|f| f == "crt-static"));
    if os == "linux" && env == "gnu" && !static_crt {
        println!("cargo:rustc-link-lib=static=gcc_eh");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
