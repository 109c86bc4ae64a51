//! keepout's seccomp deny list on top of the engine's default profile (podman's
//! `seccompProfilePath`): the same list as the native backend's ([`keepout_sandbox::denied_syscalls`],
//! shared, not copied), each denied with EPERM; `clone3` with ENOSYS (so that the C library
//! falls back to `clone`), and `clone` only without namespace flags, as natively. A pure
//! function of the engine's profile ([`with_denials`]).

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
/// The namespace flags `clone` may not use: the native filter's (CLONE_NEWTIME too).
fn clone_namespaces() -> u64 {
    keepout_sandbox::seccomp_arguments::CLONE_NS_FLAGS
        .iter()
        .fold(0, |all, f| all | f)
}
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
    let set_id = keepout_sandbox::seccomp_arguments::set_id_mode_args();
    let mut special = vec!["clone", "clone3"];
    special.extend(set_id.iter().map(|m| m.name));
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
        "args": [{"index": 0, "value": clone_namespaces(), "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
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
    rules.extend(set_id_rules(&set_id));
    serde_json::to_string_pretty(&doc).map_err(bad)
}

/// A7, as natively: no setuid or setgid file made in the project (the host's, where it would
/// give any local account the owner's identity). Each call that takes a mode is allowed when
/// the mode has neither bit (or, for the open calls, when the flags create nothing) and fails
/// with EPERM when it has one; the conditions do not overlap, so no rule's order matters.
fn set_id_rules(calls: &[keepout_sandbox::seccomp_arguments::ModeArg]) -> Vec<Value> {
    use keepout_sandbox::seccomp_arguments::{CREATING_OPEN_FLAGS, SET_ID_BITS};
    let masked = |index: u8, mask: u64, value: u64| json!({"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"});
    let set_id_bits = SET_ID_BITS.iter().fold(0, |all, b| all | b);
    let creating = CREATING_OPEN_FLAGS.iter().fold(0, |all, f| all | f);
    let mut rules = Vec::new();
    for call in calls {
        let allow = |cond: Value| {
            json!({"names": [call.name], "action": "SCMP_ACT_ALLOW", "args": [cond],
                   "comment": "keepout: a mode without setuid or setgid (A7)"})
        };
        rules.push(allow(masked(call.mode, set_id_bits, 0)));
        if let Some(flags) = call.open_flags {
            rules.push(allow(masked(flags, creating, 0)));
        }
        for &bit in SET_ID_BITS {
            let creates: Vec<Option<u64>> = match call.open_flags {
                Some(_) => CREATING_OPEN_FLAGS.iter().map(|&f| Some(f)).collect(),
                None => vec![None],
            };
            for create in creates {
                let mut args = vec![masked(call.mode, bit, bit)];
                if let (Some(flags), Some(f)) = (call.open_flags, create) {
                    args.push(masked(flags, f, f));
                }
                rules.push(json!({"names": [call.name], "action": "SCMP_ACT_ERRNO",
                    "errnoRet": EPERM, "args": args,
                    "comment": "keepout: no setuid or setgid files (A7)"}));
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_calls_leave_the_allow_rules_and_get_a_rule_of_their_own() {
        let profile = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "clone", "clone3", "keyctl", "unshare", "fchmodat"], "action": "SCMP_ACT_ALLOW"},
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
             "args": [{"index": 0, "value": 0x7E02_0080u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "comment": "keepout: clone without namespace flags (A7)"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "comment": "keepout: clone3's flags cannot be checked; ENOSYS makes the C library use clone"},
            {"names": ["keyctl", "unshare", "bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "comment": "keepout's deny list (A7, A8)"}
        ]});
        let mut got = out.clone();
        let rules = got["syscalls"].as_array_mut().unwrap();
        let set_id = rules.split_off(5);
        assert_eq!(got, want);
        // fchmodat: allowed without a set-id bit, EPERM with either; never unconditionally.
        let fchmodat: Vec<&Value> = set_id
            .iter()
            .filter(|r| r["names"][0] == "fchmodat")
            .collect();
        let masked = |mask: u64, value: u64| json!([{"index": 2, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"}]);
        assert_eq!(fchmodat.len(), 3, "{fchmodat:?}");
        assert_eq!(fchmodat[0]["action"], "SCMP_ACT_ALLOW");
        assert_eq!(fchmodat[0]["args"], masked(0o6000, 0));
        for (rule, bit) in fchmodat[1..].iter().zip([0o4000, 0o2000]) {
            assert_eq!(
                (rule["action"].as_str(), rule["errnoRet"].as_u64()),
                (Some("SCMP_ACT_ERRNO"), Some(1))
            );
            assert_eq!(rule["args"], masked(bit, bit));
        }
        // openat: allowed when nothing is created or the mode has no set-id bit; EPERM for
        // each creating flag with each bit (2 x 2).
        let openat: Vec<&Value> = set_id
            .iter()
            .filter(|r| r["names"][0] == "openat")
            .collect();
        assert_eq!(openat.len(), 6, "{openat:?}");
        assert!(openat[2..]
            .iter()
            .all(|r| r["args"].as_array().unwrap().len() == 2));
    }

    #[test]
    fn a_profile_without_rules_is_an_error() {
        assert!(with_denials("{}", &["bpf"]).is_err());
        assert!(with_denials("not json", &["bpf"]).is_err());
    }
}
