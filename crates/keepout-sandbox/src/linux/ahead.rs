//! The first namespaces of a run, made ahead: while keepout builds the policy, a child makes
//! the sandbox's user namespace and, for a run without the host's network, its network
//! namespace (see [`sys::AheadHolder`]). Making a network namespace is half of what the kernel
//! spends on a sandbox's start here (0.47 ms of `unshare -Un true`'s 2.1), and is then spent
//! while keepout goes on. The run then clones init into them.
//!
//! Guarantee: a run uses namespaces made ahead only when its policy has the same identity (the
//! id maps written) and the same network choice as the request they were made for; otherwise,
//! or without them, it makes its own as before. Nothing runs in them but the holder until init
//! is cloned; they go with the holder when they are not used (and with keepout, when it dies).

use std::sync::Mutex;

use super::{signals, sys, write_id_maps};
use crate::policy::{Identity, Mode, Policy, RunRequest};
use crate::RunEnd;

struct Ahead {
    holder: sys::AheadHolder,
    identity: Identity,
    isolate_net: bool,
    end: RunEnd,
}

static AHEAD: Mutex<Option<Ahead>> = Mutex::new(None);

/// Make them for `req` (a run in namespaces mode), replacing any made before and not used.
/// Failing only costs the gain: the run makes its own.
pub(crate) fn start(req: &RunRequest, end: RunEnd) {
    let stale = AHEAD.lock().ok().and_then(|mut a| a.take());
    drop(stale);
    if req.mode != Mode::Namespaces {
        return;
    }
    let identity = crate::builder::identity(req.caller_uid, req.caller_gid);
    let isolate_net = req.network.isolated();
    let caller_is_root = rustix::process::geteuid().is_root();
    // The holder, and init after it, start with the signals blocked that keepout blocks at a
    // run, so a ^C during init's set-up waits to be forwarded, as it would otherwise.
    let Ok(blocked) = signals::parent_signals() else {
        return;
    };
    let holder = sys::AheadHolder::spawn(isolate_net);
    drop(blocked);
    let Ok(holder) = holder else {
        return;
    };
    if write_id_maps(holder.pid(), &identity, caller_is_root).is_err() {
        return;
    }
    if let Ok(mut slot) = AHEAD.lock() {
        *slot = Some(Ahead {
            holder,
            identity,
            isolate_net,
            end,
        });
    }
}

/// The namespaces made ahead and how the run should end, when they are what `policy` needs
/// (else they go now).
pub(super) fn take(policy: &Policy) -> Option<(sys::AheadHolder, RunEnd)> {
    let ahead = AHEAD.lock().ok()?.take()?;
    (ahead.identity == policy.identity && ahead.isolate_net == policy.network.isolated())
        .then_some((ahead.holder, ahead.end))
}
