//! The proxy over real sockets: allowed names pass (against the real PyPI these machines
//! reach), everything else is refused and recorded, and nothing reaches this host's own
//! services, whatever the name.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use keepout_net::{own_addresses, Allowlist, Presets, Proxy};

fn start(spec: &str) -> (Proxy, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let allow = Allowlist::parse(spec, &Presets::builtin()).unwrap();
    let proxy = Proxy::start_with_resolver(
        listener,
        allow,
        own_addresses(),
        Box::new(|host, port| {
            if host == "rebind.example" {
                // A public-looking name whose DNS answers 127.0.0.1.
                return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
            }
            std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(|a| a.collect())
        }),
    );
    (proxy, addr)
}

/// Send a request head, return the proxy's first response line.
fn ask(proxy: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn nothing_reaches_this_hosts_own_services() {
    // A service of the maintainer's on 127.0.0.1, reachable directly.
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "reachable without the proxy"
    );
    let (proxy, addr) = start("*");
    for target in [
        "127.0.0.1:443",
        "localhost:443",
        "rebind.example:443",
        "[::1]:443",
        "10.0.0.1:443",
    ] {
        let line = ask(
            addr,
            &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        );
        assert!(line.contains("403"), "{target}: {line}");
    }
    let line = ask(addr, &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"));
    assert!(line.contains("403"), "the service's own port: {line}");
    let line = ask(
        addr,
        "GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert!(line.contains("403"), "plain HTTP to localhost: {line}");
    let refused: Vec<String> = proxy
        .refusals()
        .into_iter()
        .map(|r| format!("{}: {}", r.destination, r.reason))
        .collect();
    assert!(
        refused
            .iter()
            .any(|r| r.starts_with("localhost:443") && r.contains("loopback")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.starts_with("rebind.example:443") && r.contains("127.0.0.1")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.contains("ports 80 and 443") && r.contains("--net host")),
        "{refused:?}"
    );
}

#[test]
fn allowed_registry_passes_and_others_are_refused() {
    // The host itself reaches PyPI (these machines reach the package registries).
    let direct = std::net::ToSocketAddrs::to_socket_addrs(&("pypi.org", 443))
        .ok()
        .and_then(|mut a| a.next())
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(10)).ok());
    if direct.is_none() {
        eprintln!("pypi.org is not reachable from this machine: skipping the allowed half");
    }
    let (proxy, addr) = start("pypi");
    if direct.is_some() {
        let line = ask(
            addr,
            "CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n",
        );
        assert_eq!(line, "HTTP/1.1 200 Connection established");
        // crates.io is reachable from the host too, but not in the allowlist.
        let line = ask(addr, "CONNECT index.crates.io:443 HTTP/1.1\r\n\r\n");
        assert!(line.contains("403"), "{line}");
    }
    let line = ask(addr, "CONNECT evil.example:443 HTTP/1.1\r\n\r\n");
    assert!(line.contains("403"), "{line}");
    let line = ask(
        addr,
        "GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    );
    assert!(line.contains("403"), "{line}");
    let refused = proxy.refusals();
    assert!(refused
        .iter()
        .any(|r| r.destination == "evil.example:443" && r.reason.contains("not allowed")));
    assert!(refused.iter().any(|r| r.destination == "evil.example:80"));
    assert!(
        !refused
            .iter()
            .any(|r| r.destination.starts_with("pypi.org")),
        "{refused:?}"
    );
}
