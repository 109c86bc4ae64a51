//! A2: tokens in the environment. Everything but an allowlist is gone; no process inside
//! exposes a token through /proc/<pid>/environ.

use super::harness::*;

fn assert_no_secret(fx: &Fixture, r: &Runner, what: &str, out: &Output) {
    for (name, value) in fx.secrets() {
        assert!(
            !out.all()
                .lines()
                .any(|l| l.starts_with(&format!("{name}="))),
            "[{r}] {what}: variable {name} leaked:{out}"
        );
        assert!(
            !out.has(&value),
            "[{r}] {what}: the value of {name} leaked:{out}"
        );
    }
}

/// `env` inside holds none of the tokens (names or values), but PATH, HOME and LANG.
#[test]
fn environment_holds_no_tokens() {
    for r in runners() {
        let fx = Fixture::new(&r);

        let out = fx.outside("env");
        assert!(out.success(), "[{r}] outside env:{out}");
        let vars = env_lines(&out.stdout);
        for (name, value) in fx.secrets() {
            assert!(
                vars.contains(&(name.clone(), value.clone())),
                "[{r}] outside: {name} is in the environment (proves the attack):{out}"
            );
        }

        let inn = fx.inside(&[], "env");
        assert!(inn.success(), "[{r}] inside env:{inn}");
        assert_no_secret(&fx, &r, "inside env", &inn);
        let vars = env_lines(&inn.stdout);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("PATH").as_deref(),
            Some(FIXTURE_PATH),
            "[{r}] PATH passes:{inn}"
        );
        assert_eq!(
            get("HOME"),
            Some(fx.home.display().to_string()),
            "[{r}] HOME is the (fresh) home at the same path:{inn}"
        );
        assert_eq!(
            get("LANG").as_deref(),
            Some("C.UTF-8"),
            "[{r}] LANG passes:{inn}"
        );
    }
}

/// `/proc/1/environ` (the sandbox's init) and every other /proc/<pid>/environ inside hold no
/// token. Outside, a process's environ shows them.
#[test]
fn proc_environ_holds_no_tokens() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let token = fx.secret("GITHUB_TOKEN");

        let out = fx.outside("tr '\\0' '\\n' < /proc/$$/environ");
        assert!(
            out.success() && out.stdout.contains(&token),
            "[{r}] outside: /proc/<pid>/environ shows the token (proves the attack):{out}"
        );

        let inn = fx.inside(
            &[],
            "echo '# pid 1'; tr '\\0' '\\n' < /proc/1/environ; echo \"rc=$?\"; \
             for f in /proc/[0-9]*/environ; do echo \"# $f\"; tr '\\0' '\\n' < \"$f\"; done; true",
        );
        assert!(inn.stdout.contains("# pid 1"), "[{r}] the script ran:{inn}");
        assert_no_secret(&fx, &r, "inside /proc/*/environ", &inn);
    }
}

/// `--env NAME` passes exactly that one variable; `--env NAME=VALUE` sets one.
#[test]
fn env_flag_passes_exactly_one_variable() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let token = fx.secret("GITHUB_TOKEN");

        let inn = fx.inside(&["--env", "GITHUB_TOKEN"], "env");
        assert!(
            inn.success()
                && env_lines(&inn.stdout).contains(&("GITHUB_TOKEN".into(), token.clone())),
            "[{r}] --env GITHUB_TOKEN passes it:{inn}"
        );
        for (name, value) in fx
            .secrets()
            .into_iter()
            .filter(|(n, _)| n != "GITHUB_TOKEN")
        {
            assert!(
                !inn.stdout.contains(&format!("{name}=")) && !inn.has(&value),
                "[{r}] --env GITHUB_TOKEN must pass nothing else, but {name} is there:{inn}"
            );
        }

        let inn = fx.inside(&["--env", "KEEPOUT_TEST_SETTING=on-purpose"], "env");
        assert!(
            inn.success()
                && env_lines(&inn.stdout)
                    .contains(&("KEEPOUT_TEST_SETTING".into(), "on-purpose".into())),
            "[{r}] --env A=B sets A:{inn}"
        );
        assert_no_secret(&fx, &r, "inside with --env A=B", &inn);
    }
}
