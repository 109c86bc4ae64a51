//! `keepout demo`: the rendering of keepout-demo's two runs of a malicious test suite (without
//! keepout, then inside `keepout run` through this very binary), side by side, and the exit
//! status: 0 when nothing got through inside, 1 when something did.

use std::io::Write;

use anyhow::Result;
use keepout_demo::{Comparison, Keepout, Outcome, Playground, Side};

use crate::cli::DemoArgs;

pub fn demo(args: DemoArgs) -> Result<i32> {
    let playground = Playground::new()?;
    println!(
        "A malicious test suite (examples/evil-test-suite/evil.py) tries the attacks of keepout's"
    );
    println!(
        "threat model against a planted fake home ({}),",
        playground.path().display()
    );
    println!("first run as you, then inside `keepout run`. Running…\n");
    let without = playground.run(Side::Without)?;
    let keepout = Keepout {
        program: std::env::current_exe()?,
        error_status: i32::from(crate::EXIT_KEEPOUT_ERROR),
    };
    let with = playground.run(Side::Inside(&keepout))?;
    let comparison = Comparison::new(&without, &with);

    fn show(o: &Outcome) -> &str {
        match o {
            Outcome::Got => "GOT",
            other => other.as_str(),
        }
    }
    println!(
        "{:<4} {:<42} {:<16} inside keepout",
        "", "attack", "without keepout"
    );
    for row in &comparison.rows {
        println!(
            "{:<4} {:<42} {:<16} {}",
            row.id,
            truncate(&row.attack, 42),
            show(&row.without),
            row.inside.as_ref().map(show).unwrap_or("-")
        );
    }
    println!(
        "\nwithout keepout: {} of {} attacks succeeded\ninside keepout:  {} of {} attacks succeeded",
        comparison.without.succeeded,
        comparison.without.tried,
        comparison.inside.succeeded,
        comparison.inside.tried
    );
    for a in &comparison.leaked {
        println!("  leaked inside: {} {}: {}", a.id, a.attack, a.detail);
    }
    // What `keepout run --report` recorded of the run inside: the system calls it refused (the
    // line `keepout run` prints on stderr, which the demo's throwaway terminal hides).
    let syscalls = playground.refused_syscalls();
    if !syscalls.is_empty() {
        println!(
            "\nkeepout's report of the run inside (--report): refused {} system calls: {}",
            syscalls.len(),
            syscalls.join(" · ")
        );
    }
    if args.keep {
        let kept = playground.keep();
        println!("kept {}", kept.display());
    }
    let _ = std::io::stdout().lock().flush();
    Ok(if comparison.nothing_leaked() { 0 } else { 1 })
}

/// `s` cut to `n` characters, the last one an ellipsis when it was longer.
fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}
