//! What the running kernel can enforce, for `keepout doctor` and `--print-policy`.
//!
//! Every probe is harmless and quick: it reads sysctls, asks Landlock for its ABI, and creates
//! (and immediately discards) a user namespace in a short-lived child.

use serde::Serialize;

/// One capability of the kernel and whether keepout can use it here.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The kernel's support for each layer of the sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct KernelSupport {
    pub kernel: String,
    pub landlock_abi: i32,
    pub checks: Vec<Check>,
}

/// Can workspace layers and `--review` (overlayfs) be used with data kept in `dir`? The check
/// `keepout doctor` shows.
#[cfg(target_os = "linux")]
pub fn overlay_check(dir: &std::path::Path) -> Check {
    let result = crate::linux::probe_overlay(dir);
    Check {
        name: "overlayfs (layers, --review)",
        ok: result.is_ok(),
        detail: match result {
            Ok(()) => format!(
                "workspaces start on layers at once; --review works (data in {})",
                dir.display()
            ),
            Err(e) => format!(
                "refused in {} ({e}): a workspace --from a layer starts on a copy of it; --review cannot run",
                dir.display()
            ),
        },
    }
}

/// Can `keepout run --memory` set a limit for this caller? The check `keepout doctor` shows.
#[cfg(target_os = "linux")]
pub fn memory_limit_check() -> Check {
    match crate::linux::memory_limit_support() {
        Ok(place) => Check {
            name: "memory limit (--memory)",
            ok: true,
            detail: format!("keepout makes a memory cgroup per run ({place})"),
        },
        Err(e) => Check {
            name: "memory limit (--memory)",
            ok: false,
            detail: format!("cannot be set: {e}. {}", e.hint().unwrap_or_default()),
        },
    }
}

impl KernelSupport {
    /// Probe the running kernel.
    #[cfg(target_os = "linux")]
    pub fn probe() -> KernelSupport {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let abi = crate::linux::landlock_abi();
        let sysctl = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let mut checks = Vec::new();
        let userns = crate::linux::probe_user_namespace();
        checks.push(Check {
            name: "user namespaces",
            ok: userns.is_ok(),
            detail: match &userns {
                Ok(()) => {
                    "an unprivileged user can create them: `keepout run` works in full".into()
                }
                Err(e) => format!("refused ({e}); use `keepout run --mode landlock`"),
            },
        });
        if let Some(v) = sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") {
            checks.push(Check {
                name: "AppArmor userns restriction",
                ok: v == "0",
                detail: format!("kernel.apparmor_restrict_unprivileged_userns = {v}"),
            });
        }
        checks.push(Check {
            name: "Landlock",
            ok: abi >= 1,
            detail: match abi {
                0 => "not available: the filesystem second wall is missing".into(),
                1..=5 => format!(
                    "ABI {abi}: filesystem rules; no abstract-socket or signal scoping (ABI 6)"
                ),
                _ => {
                    format!("ABI {abi}: filesystem rules, abstract unix socket and signal scoping")
                }
            },
        });
        let seccomp = sysctl("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
        checks.push(Check {
            name: "seccomp filters",
            ok: seccomp.contains("errno"),
            detail: if seccomp.is_empty() {
                "not available".into()
            } else {
                format!("actions: {seccomp}")
            },
        });
        checks.push(Check {
            name: "pid, mount, ipc, uts, net namespaces",
            ok: userns.is_ok(),
            detail: "created together with the user namespace".into(),
        });
        if let Some(v) = sysctl("/proc/sys/dev/tty/legacy_tiocsti") {
            checks.push(Check {
                name: "TIOCSTI",
                ok: true,
                detail: if v == "1" {
                    "legacy_tiocsti=1: terminal injection is possible on this system; keepout blocks it (new session + seccomp)".into()
                } else {
                    "legacy_tiocsti=0: the kernel refuses terminal injection; keepout blocks it too".into()
                },
            });
        }
        KernelSupport {
            kernel,
            landlock_abi: abi,
            checks,
        }
    }
}
