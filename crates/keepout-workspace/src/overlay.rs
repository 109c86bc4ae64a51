//! How overlayfs marks, in an upper directory, what it hides of the layers under it: a whiteout
//! for an entry deleted, an opaque directory for one replaced whole. Only looked at, never
//! made: nothing here writes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// overlayfs's whiteout: a character device 0/0.
pub fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Is `dir` an opaque directory (it replaced the lower one whole)? `userxattr` mounts mark it
/// `user.overlay.opaque`, privileged ones `trusted.overlay.opaque`.
pub fn is_opaque(dir: &Path) -> bool {
    ["user.overlay.opaque", "trusted.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut buf = [0u8; 4];
            rustix::fs::lgetxattr(dir, *name, &mut buf[..]).is_ok_and(|n| n >= 1 && buf[0] == b'y')
        })
}
