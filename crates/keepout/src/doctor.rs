//! `keepout doctor`: keepout-launch's [`Doctor`] for this caller and config, printed as text or
//! JSON. Exits non-zero when user namespaces are refused or the config is invalid (what
//! `keepout run` would refuse).

use anyhow::Result;
use keepout_launch::doctor::{with_causes, Doctor};

use crate::cli::DoctorArgs;

pub fn doctor(args: DoctorArgs) -> Result<i32> {
    let caller = keepout_launch::Caller::current();
    let config = keepout_launch::LazyConfig::new();
    let workspaces = keepout_workspace::Store::default_root();
    let doctor = Doctor::examine(&caller, &config, &workspaces);
    if let Some(e) = &doctor.toolchains_refused {
        eprintln!(
            "keepout: doctor: `keepout run` would refuse this: {}",
            with_causes(e)
        );
    }
    if args.json {
        println!("{}", doctor.json()?);
    } else {
        print!("{}", doctor.text());
    }
    Ok(if doctor.ok() { 0 } else { 1 })
}
