//! `keepout doctor`: what this kernel and machine can enforce.

use anyhow::Result;
use keepout_sandbox::KernelSupport;

use crate::cli::DoctorArgs;

pub fn doctor(args: DoctorArgs) -> Result<i32> {
    let support = KernelSupport::probe();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&support)?);
    } else {
        println!("kernel {}", support.kernel);
        for c in &support.checks {
            println!(
                "  [{}] {:<38} {}",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }
    let userns = support
        .checks
        .iter()
        .any(|c| c.name == "user namespaces" && c.ok);
    Ok(if userns { 0 } else { 1 })
}
