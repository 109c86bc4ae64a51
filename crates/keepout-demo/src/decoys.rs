//! The decoys of one run, things of the user's that the suite attacks: a `sleep` process, a TCP
//! service on 127.0.0.1, an ssh-agent (OpenSSH's, or a stand-in that answers "no identities")
//! at `HOME/.ssh/agent.sock`, and an abstract unix socket. Dropping [`Decoys`] stops the
//! processes; the listeners are threads that end with the process.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::DemoError;

/// The decoys of one run; dropping it stops them.
pub(crate) struct Decoys {
    pub sleep: Child,
    agent: Option<Child>,
    /// The decoy TCP service's port on 127.0.0.1.
    pub port: u16,
    /// The decoy agent's socket, under the fake home.
    pub agent_sock: PathBuf,
    /// The decoy abstract socket's name (without the leading NUL).
    pub abstract_name: String,
}

impl Drop for Decoys {
    fn drop(&mut self) {
        let _ = self.sleep.kill();
        let _ = self.sleep.wait();
        if let Some(a) = &mut self.agent {
            let _ = a.kill();
            let _ = a.wait();
        }
    }
}

/// Start the decoys for the fake `home`; `label` makes the abstract socket's name unique.
pub(crate) fn start(home: &Path, label: &str) -> Result<Decoys, DemoError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"220 maintainer-internal-service ready\r\n");
        }
    });
    let agent_sock = home.join(".ssh/agent.sock");
    let agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&agent_sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    if agent.is_some() {
        for _ in 0..100 {
            if agent_sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    } else {
        // No OpenSSH here: a stand-in that answers "no identities" like a real agent would.
        let l = UnixListener::bind(&agent_sock)?;
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 5];
                if s.read_exact(&mut buf).is_ok() {
                    let _ = s.write_all(&[0, 0, 0, 5, 12, 0, 0, 0, 0]);
                }
            }
        });
    }
    let abstract_name = format!("keepout-demo-{}-{label}", std::process::id());
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            abstract_name.as_bytes(),
        )?;
    let abs = UnixListener::bind_addr(&addr)?;
    std::thread::spawn(move || {
        for mut s in abs.incoming().flatten() {
            let _ = s.write_all(b"session bus of the maintainer\n");
        }
    });
    // Last, so that an error above leaves no process behind.
    let sleep = Command::new("sleep")
        .arg("300")
        .stdout(Stdio::null())
        .spawn()
        .map_err(DemoError::DecoySleep)?;
    Ok(Decoys {
        sleep,
        agent,
        port,
        agent_sock,
        abstract_name,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Whether process `pid` still exists (a zombie counts as gone: it was waited for or not).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    #[test]
    fn the_decoys_are_up_and_dropping_them_stops_the_processes() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let decoys = super::start(&home, "test").unwrap();
        let sleep = decoys.sleep.id();
        assert!(running(sleep));
        assert!(decoys.agent_sock.starts_with(&home));
        assert!(Path::new(&decoys.agent_sock).exists(), "the agent's socket");
        std::net::TcpStream::connect(("127.0.0.1", decoys.port)).unwrap();
        assert!(decoys.abstract_name.ends_with("-test"));
        drop(decoys);
        assert!(!running(sleep), "the decoy sleep is stopped");
    }
}
