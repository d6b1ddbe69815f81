//! Handing a connected socket from the agent to a run, over the agent's owner-only socket: one
//! byte carrying the descriptor (`SCM_RIGHTS`), so the run uses the very connection the agent
//! made, with nothing copied in between.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::UnixStream;

/// The room one descriptor takes in a control message.
fn space() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) as usize }
}

/// Sends `fd` over `via`.
pub async fn send(via: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    loop {
        via.writable().await?;
        match via.try_io(Interest::WRITABLE, || send_now(via.as_raw_fd(), raw)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return done,
        }
    }
}

fn send_now(socket: RawFd, fd: RawFd) -> io::Result<()> {
    let byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    let mut control = vec![0u8; space()];
    // SAFETY: the header points at `iov` and `control`, which outlive the call; the control
    // message is written inside `control`, which CMSG_SPACE sized for one descriptor.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL)
    };
    match sent {
        1 => Ok(()),
        -1 => Err(io::Error::last_os_error()),
        _ => Err(io::ErrorKind::WriteZero.into()),
    }
}

/// Receives a descriptor [`send`] sent over `via` (close-on-exec).
pub async fn receive(via: &UnixStream) -> io::Result<OwnedFd> {
    loop {
        via.readable().await?;
        match via.try_io(Interest::READABLE, || receive_now(via.as_raw_fd())) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return done,
        }
    }
}

fn receive_now(socket: RawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = vec![0u8; space()];
    // SAFETY: the header points at `iov` and `control`, which outlive the call; a descriptor is
    // read only from a control message the kernel filled in within `control`.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        match libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) {
            -1 => return Err(io::Error::last_os_error()),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {}
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("no descriptor came"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_connected_socket_crosses_over() {
        let (agent, run) = UnixStream::pair().unwrap();
        let (mut kept, handed) = UnixStream::pair().unwrap();
        send(&agent, std::os::fd::AsFd::as_fd(&handed))
            .await
            .unwrap();
        drop(handed);
        let fd = receive(&run).await.unwrap();
        let std = std::os::unix::net::UnixStream::from(fd);
        std.set_nonblocking(true).unwrap();
        let mut received = UnixStream::from_std(std).unwrap();
        kept.write_all(b"tick").await.unwrap();
        let mut got = [0u8; 4];
        received.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"tick");
    }
}
