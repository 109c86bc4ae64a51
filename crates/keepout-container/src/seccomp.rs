//! keepout's seccomp deny list on top of the engine's default profile (podman's
//! `seccompProfilePath`): the same list as the native backend's ([`keepout_sandbox::denied_syscalls`],
//! shared, not copied), each denied with EPERM; `clone3` with ENOSYS (so that the C library
//! falls back to `clone`), and `clone` only without namespace flags, as natively. A pure
//! function of the engine's profile ([`with_denials`]).

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
const CLONE_NAMESPACES: u64 = 0x7E02_0000;
const EPERM: u64 = 1;
const ENOSYS: u64 = 38;

/// `profile` (an engine's seccomp profile, JSON) with `denied` refused: taken out of every
/// rule that allows them, and a rule that refuses them added.
pub fn with_denials(profile: &str, denied: &[&str]) -> Result<String> {
    let bad = |source| Error::Seccomp { source };
    let mut doc: Value = serde_json::from_str(profile).map_err(bad)?;
    let rules = doc
        .get_mut("syscalls")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::Seccomp {
            source: serde::de::Error::custom("no \"syscalls\" list"),
        })?;
    let special = ["clone", "clone3"];
    for rule in rules.iter_mut() {
        if rule.get("action").and_then(Value::as_str) != Some("SCMP_ACT_ALLOW") {
            continue;
        }
        if let Some(names) = rule.get_mut("names").and_then(Value::as_array_mut) {
            names.retain(|n| {
                n.as_str()
                    .is_none_or(|n| !denied.contains(&n) && !special.contains(&n))
            });
        }
    }
    rules.retain(|rule| {
        rule.get("names")
            .and_then(Value::as_array)
            .is_none_or(|n| !n.is_empty())
    });
    rules.push(json!({
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        "comment": "keepout: clone without namespace flags (A7)",
    }));
    rules.push(json!({
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": ENOSYS,
        "comment": "keepout: clone3's flags cannot be checked; ENOSYS makes the C library use clone",
    }));
    rules.push(json!({
        "names": denied,
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EPERM,
        "comment": "keepout's deny list (A7, A8)",
    }));
    serde_json::to_string_pretty(&doc).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_calls_leave_the_allow_rules_and_get_a_rule_of_their_own() {
        let profile = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "clone", "clone3", "keyctl", "unshare"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["userfaultfd"], "action": "SCMP_ACT_ERRNO"}
        ]}"#;
        let out: Value =
            serde_json::from_str(&with_denials(profile, &["keyctl", "unshare", "bpf"]).unwrap())
                .unwrap();
        let want = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["userfaultfd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "comment": "keepout: clone without namespace flags (A7)"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "comment": "keepout: clone3's flags cannot be checked; ENOSYS makes the C library use clone"},
            {"names": ["keyctl", "unshare", "bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "comment": "keepout's deny list (A7, A8)"}
        ]});
        assert_eq!(out, want);
    }

    #[test]
    fn a_profile_without_rules_is_an_error() {
        assert!(with_denials("{}", &["bpf"]).is_err());
        assert!(with_denials("not json", &["bpf"]).is_err());
    }
}
