//! The proxy: HTTP CONNECT (for HTTPS) and absolute-form plain HTTP, one destination per
//! client connection, every destination checked by name and by address.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::address::forbidden;
use crate::allow::Allowlist;

/// A destination the proxy refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `host:port` as the client asked for it.
    pub destination: String,
    pub reason: String,
}

type Resolver = dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

struct Shared {
    allow: Allowlist,
    own: Vec<IpAddr>,
    resolve: Box<Resolver>,
    refusals: Mutex<Vec<Refusal>>,
}

/// A running proxy. Its threads live as long as the process (a run is one process).
#[derive(Clone)]
pub struct Proxy(Arc<Shared>);

/// Ports the proxy carries: HTTPS and HTTP.
const PORTS: &[u16] = &[443, 80];
const MAX_HEAD: usize = 32 * 1024;

impl Proxy {
    /// Serve `listener` (the sandbox's loopback port, handed out of the sandbox).
    pub fn start(listener: TcpListener, allow: Allowlist, own: Vec<IpAddr>) -> Proxy {
        Proxy::start_with_resolver(
            listener,
            allow,
            own,
            Box::new(|host, port| (host, port).to_socket_addrs().map(|a| a.collect())),
        )
    }

    /// The same with another resolver (tests: a name that resolves to 127.0.0.1).
    pub fn start_with_resolver(
        listener: TcpListener,
        allow: Allowlist,
        own: Vec<IpAddr>,
        resolve: Box<Resolver>,
    ) -> Proxy {
        let proxy = Proxy(Arc::new(Shared {
            allow,
            own,
            resolve,
            refusals: Mutex::new(Vec::new()),
        }));
        let p = proxy.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let p = p.clone();
                std::thread::spawn(move || p.serve(client));
            }
        });
        proxy
    }

    /// What was refused so far.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.0
            .refusals
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    fn refuse(&self, client: &mut TcpStream, destination: &str, reason: String) {
        // Recorded before the client hears of it, so a report never misses a refusal.
        let body = format!("keepout: {destination} refused: {reason}\n");
        if let Ok(mut r) = self.0.refusals.lock() {
            let refusal = Refusal {
                destination: destination.to_string(),
                reason,
            };
            if !r.contains(&refusal) {
                r.push(refusal);
            }
        }
        let _ = write!(
            client,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    /// Check `host:port` and connect to the checked address.
    fn connect(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !PORTS.contains(&port) {
            return Err(format!(
                "port {port}: only HTTP and HTTPS (ports 80 and 443) are carried; use `--net host` for other protocols"
            ));
        }
        if !self.0.allow.allows(host) {
            return Err(format!("not allowed (allowed: {})", self.0.allow.spec()));
        }
        let addrs = (self.0.resolve)(host, port).map_err(|e| format!("cannot resolve: {e}"))?;
        if addrs.is_empty() {
            return Err("cannot resolve: no addresses".into());
        }
        // All addresses must be public: a name that mixes in 127.0.0.1 is an attack.
        for a in &addrs {
            if let Some(why) = forbidden(a.ip(), &self.0.own) {
                return Err(format!("resolves to {} ({why})", a.ip()));
            }
        }
        let mut last = String::new();
        for a in &addrs {
            match TcpStream::connect_timeout(a, Duration::from_secs(15)) {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("{}: {e}", a.ip()),
            }
        }
        Err(format!("cannot connect: {last}"))
    }

    fn serve(&self, mut client: TcpStream) {
        let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if head.len() > MAX_HEAD {
                return;
            }
        };
        let _ = client.set_read_timeout(None);
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split_whitespace();
        let (method, target, version) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("HTTP/1.1"),
        );
        if method.eq_ignore_ascii_case("CONNECT") {
            let (host, port) = split_host_port(target, 443);
            let destination = show(&host, port);
            match self.connect(&host, port) {
                Ok(mut upstream) => {
                    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    // Bytes the client sent after the head (a TLS hello, pipelined).
                    let _ = upstream.write_all(&head[end..]);
                    relay(client, upstream);
                }
                Err(reason) => self.refuse(&mut client, &destination, reason),
            }
            return;
        }
        // Plain HTTP: absolute-form target.
        let Some(rest) = target.strip_prefix("http://") else {
            self.refuse(
                &mut client,
                target,
                "not a proxy request (absolute http:// URL or CONNECT expected)".into(),
            );
            return;
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = split_host_port(authority, 80);
        let destination = show(&host, port);
        match self.connect(&host, port) {
            Ok(mut upstream) => {
                let mut out = format!("{method} {path} {version}\r\n");
                for l in lines.filter(|l| !l.is_empty()) {
                    let name = l
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    if name.starts_with("proxy-") || name == "connection" || name == "keep-alive" {
                        continue;
                    }
                    out.push_str(l);
                    out.push_str("\r\n");
                }
                // One request per connection: the next one may be for another host.
                out.push_str("Connection: close\r\n\r\n");
                if upstream.write_all(out.as_bytes()).is_err()
                    || upstream.write_all(&head[end..]).is_err()
                {
                    return;
                }
                relay(client, upstream);
            }
            Err(reason) => self.refuse(&mut client, &destination, reason),
        }
    }
}

/// `host:port`, `[v6]:port`.
fn show(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn split_host_port(authority: &str, default: u16) -> (String, u16) {
    // [v6]:port, host:port, host
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            let port = p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(default);
            return (h.to_string(), port);
        }
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().unwrap_or(0)),
        _ => (authority.to_string(), default),
    }
}

/// Copy `from` to `to` in large chunks until EOF, then pass the EOF on.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Copy both ways until both sides are done.
fn relay(client: TcpStream, upstream: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || pump(client, u2));
    pump(upstream, c2);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(
            split_host_port("pypi.org:443", 80),
            ("pypi.org".into(), 443)
        );
        assert_eq!(split_host_port("pypi.org", 80), ("pypi.org".into(), 80));
        assert_eq!(split_host_port("[::1]:443", 80), ("::1".into(), 443));
    }
}
