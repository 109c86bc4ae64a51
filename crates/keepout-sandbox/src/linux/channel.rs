//! Descriptors passed between keepout, init and the command over unix sockets (SCM_RIGHTS):
//! the proxy's listener, the sandbox's terminal, the seccomp listener, joining keepouts' stdio.
//!
//! Guarantee: a received descriptor is close-on-exec; each message carries exactly one.

use std::os::fd::{BorrowedFd, OwnedFd};

/// Send one descriptor over a unix socket (SCM_RIGHTS).
pub(super) fn send_fd(socket: &OwnedFd, fd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let fds = [fd];
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        socket,
        &[std::io::IoSlice::new(b"L")],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Receive one descriptor sent with [`send_fd`]; `None` when the other side closed first.
pub(super) fn recv_fd(socket: &OwnedFd) -> rustix::io::Result<Option<OwnedFd>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    rustix::net::recvmsg(
        socket,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message {
            return Ok(fds.next());
        }
    }
    Ok(None)
}
