//! `keepout demo`: keepout-demo's two runs of a malicious test suite (without keepout, then
//! inside `keepout run` through this very binary), printed as keepout-demo words them, and the
//! exit status: 0 when nothing got through inside, 1 when something did.

use std::io::Write;

use anyhow::Result;
use keepout_demo::{Comparison, Keepout, Playground, Side};

use crate::cli::DemoArgs;

pub fn demo(args: DemoArgs) -> Result<i32> {
    let playground = Playground::new()?;
    print!("{}", playground.intro());
    let without = playground.run(Side::Without)?;
    let keepout = Keepout {
        program: std::env::current_exe()?,
        error_status: i32::from(crate::EXIT_KEEPOUT_ERROR),
    };
    let with = playground.run(Side::Inside(&keepout))?;
    let comparison = Comparison::new(&without, &with);
    print!("{}", comparison.text());
    let refused = playground.refused_syscalls();
    print!("{}", keepout_demo::refused_syscalls_text(&refused));
    if args.keep {
        println!("kept {}", playground.keep().display());
    }
    let _ = std::io::stdout().lock().flush();
    Ok(if comparison.nothing_leaked() { 0 } else { 1 })
}
