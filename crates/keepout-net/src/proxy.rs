//! The proxy: HTTP CONNECT (for HTTPS) and absolute-form plain HTTP, one destination per
//! client connection, every destination checked by name and by address, and everything the
//! client sends searched for the run's decoy values ([`Canaries`]) before it is forwarded.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::address::forbidden;
use crate::allow::Allowlist;
use crate::canary::{Canaries, Form, Found, Scan};

/// A destination the proxy did not carry the client to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `host:port` as the client asked for it.
    pub destination: String,
    pub reason: String,
    /// Refused by the policy, or not reachable at all.
    #[serde(skip)]
    pub kind: RefusalKind,
}

/// Why a destination was not reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefusalKind {
    /// The policy said no (a name not allowed, a forbidden address, another port).
    #[default]
    Policy,
    /// Allowed, but the name does not resolve or no address answers.
    Unreachable,
}

/// A request that carried a decoy's value: refused (never forwarded), and recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sent {
    /// `host:port` the client sent it to.
    pub destination: String,
    /// The decoy whose value it was (`~/.netrc`).
    pub decoy: String,
    /// Where in the request: "the URL", "the Authorization header", "the body", "the host
    /// name", "the TLS hello (SNI)", "the tunnel".
    pub place: String,
    pub form: Form,
}

type Resolver = dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

struct Shared {
    allow: Allowlist,
    own: Vec<IpAddr>,
    resolve: Box<Resolver>,
    canaries: Canaries,
    refusals: Mutex<Vec<Refusal>>,
    sent: Mutex<Vec<Sent>>,
}

/// A running proxy. Its threads live as long as the process (a run is one process).
#[derive(Clone)]
pub struct Proxy(Arc<Shared>);

/// A plain-HTTP body up to this size is read whole and searched before anything is forwarded;
/// a longer one (or a chunked one) is searched as it streams, and the connection cut at a find.
const WHOLE_BODY: usize = 1024 * 1024;

/// Ports the proxy carries: HTTPS and HTTP.
const PORTS: &[u16] = &[443, 80];
const MAX_HEAD: usize = 32 * 1024;

impl Proxy {
    /// Serve `listener` (the sandbox's loopback port, handed out of the sandbox); a request
    /// that carries one of `canaries` is refused and recorded ([`Proxy::sent`]).
    pub fn start(
        listener: TcpListener,
        allow: Allowlist,
        own: Vec<IpAddr>,
        canaries: Canaries,
    ) -> Proxy {
        Proxy::start_with_resolver(
            listener,
            allow,
            own,
            canaries,
            Box::new(|host, port| (host, port).to_socket_addrs().map(|a| a.collect())),
        )
    }

    /// The same with another resolver (tests: a name that resolves to 127.0.0.1).
    pub fn start_with_resolver(
        listener: TcpListener,
        allow: Allowlist,
        own: Vec<IpAddr>,
        canaries: Canaries,
        resolve: Box<Resolver>,
    ) -> Proxy {
        let proxy = Proxy(Arc::new(Shared {
            allow,
            own,
            resolve,
            canaries,
            refusals: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
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

    /// What was refused or could not be reached so far.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.0
            .refusals
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The requests that carried a decoy's value so far (none of them was forwarded).
    pub fn sent(&self) -> Vec<Sent> {
        self.0.sent.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn refuse(&self, client: &mut TcpStream, destination: &str, why: Why) {
        let (kind, reason) = match why {
            Why::Policy(r) => (RefusalKind::Policy, r),
            Why::Unreachable(r) => (RefusalKind::Unreachable, r),
        };
        // Recorded before the client hears of it, so a report never misses a refusal.
        let (status, body) = match kind {
            RefusalKind::Policy => (
                "403 Forbidden",
                format!("keepout: {destination} refused: {reason}\n"),
            ),
            RefusalKind::Unreachable => (
                "502 Bad Gateway",
                format!("keepout: {destination} is not reachable: {reason}\n"),
            ),
        };
        if let Ok(mut r) = self.0.refusals.lock() {
            let refusal = Refusal {
                destination: destination.to_string(),
                reason,
                kind,
            };
            if !r.contains(&refusal) {
                r.push(refusal);
            }
        }
        answer(client, status, &body);
    }

    /// Record a decoy's value found on its way to `destination`.
    fn record_sent(&self, destination: &str, place: &str, found: Found) {
        if let Ok(mut s) = self.0.sent.lock() {
            let sent = Sent {
                destination: destination.to_string(),
                decoy: found.name,
                place: place.to_string(),
                form: found.form,
            };
            if !s.contains(&sent) {
                s.push(sent);
            }
        }
    }

    /// Refuse a request that carries a decoy's value (recorded first).
    fn refuse_sent(&self, client: &mut TcpStream, destination: &str, place: &str, found: Found) {
        let body = format!(
            "keepout: refused: this request carries the value of a decoy credential ({}, in {place}); it was not forwarded\n",
            found.name
        );
        self.record_sent(destination, place, found);
        answer(client, "403 Forbidden", &body);
    }

    /// The first decoy value in the request's head: its target (as the host name, for a
    /// CONNECT) and each header. Searched before any name is resolved: a value in a host name
    /// would otherwise leave in the DNS query.
    fn search_head(
        &self,
        connect: bool,
        target: &str,
        headers: &[&str],
    ) -> Option<(String, Found)> {
        let c = &self.0.canaries;
        if let Some(found) = c.find_in_text(target) {
            let place = if connect { "the host name" } else { "the URL" };
            return Some((place.into(), found));
        }
        for h in headers {
            if let Some(found) = c.find_in_text(h) {
                let name = h.split(':').next().unwrap_or("").trim();
                return Some((format!("the {name} header"), found));
            }
        }
        None
    }

    /// Check `host:port` and connect to the checked address.
    fn connect(&self, host: &str, port: u16) -> Result<TcpStream, Why> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !PORTS.contains(&port) {
            return Err(Why::Policy(format!(
                "port {port}: only HTTP and HTTPS (ports 80 and 443) are carried; use `--net host` for other protocols"
            )));
        }
        if !self.0.allow.allows(host) {
            return Err(Why::Policy(format!(
                "not allowed (allowed: {})",
                self.0.allow.spec()
            )));
        }
        let unresolved = |detail: String| {
            Why::Unreachable(format!(
                "could not resolve {host} ({detail}): check the name, and that this machine's DNS answers"
            ))
        };
        let addrs = (self.0.resolve)(host, port).map_err(|e| unresolved(e.to_string()))?;
        if addrs.is_empty() {
            return Err(unresolved("no addresses".into()));
        }
        // All addresses must be public: a name that mixes in 127.0.0.1 is an attack.
        for a in &addrs {
            if let Some(why) = forbidden(a.ip(), &self.0.own) {
                return Err(Why::Policy(format!("resolves to {} ({why})", a.ip())));
            }
        }
        let mut last = String::new();
        for a in &addrs {
            match TcpStream::connect_timeout(a, Duration::from_secs(15)) {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("{}: {e}", a.ip()),
            }
        }
        Err(Why::Unreachable(format!("cannot connect: {last}")))
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
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
        let mut parts = request_line.split_whitespace();
        let (method, target, version) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("HTTP/1.1"),
        );
        let connect = method.eq_ignore_ascii_case("CONNECT");
        let (authority, path) = if connect {
            (target, "")
        } else {
            match target.strip_prefix("http://") {
                Some(rest) => match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                },
                None => {
                    let _ = client.set_read_timeout(None);
                    self.refuse(
                        &mut client,
                        target,
                        Why::Policy(
                            "not a proxy request (absolute http:// URL or CONNECT expected)".into(),
                        ),
                    );
                    return;
                }
            }
        };
        let (host, port) = split_host_port(authority, if connect { 443 } else { 80 });
        let destination = show(&host, port);
        if let Some((place, found)) = self.search_head(connect, target, &headers) {
            self.refuse_sent(&mut client, &destination, &place, found);
            return;
        }
        // Plain HTTP, when there are values to watch for: a body of a stated, moderate length,
        // or a chunked one up to that length, is read whole and searched (a chunked one also
        // with its chunks joined: a value split across chunks) before anything is forwarded.
        let mut body = head.split_off(end);
        let mut answered_continue = false;
        if !connect && !self.0.canaries.is_empty() {
            let header = |want: &str| {
                headers.iter().find_map(|h| {
                    let (name, value) = h.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case(want)
                        .then(|| value.trim().to_ascii_lowercase())
                })
            };
            let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
            let length = header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|l| *l <= WHOLE_BODY);
            if chunked || length.is_some() {
                // A client that waits for "100 Continue" before its body gets it from here.
                if header("expect").as_deref() == Some("100-continue") {
                    let _ = client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                    answered_continue = true;
                }
                let complete = |body: &[u8]| match length {
                    _ if chunked => dechunk(body).1,
                    Some(l) => body.len() >= l,
                    None => true,
                };
                while !complete(&body) && body.len() <= WHOLE_BODY {
                    match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&buf[..n]),
                    }
                }
                if chunked {
                    if let Some(found) = self.0.canaries.find(&dechunk(&body).0) {
                        let _ = client.set_read_timeout(None);
                        self.refuse_sent(&mut client, &destination, "the body", found);
                        return;
                    }
                }
            }
        }
        let _ = client.set_read_timeout(None);
        let mut scan = Scan::new(&self.0.canaries);
        if let Some(found) = scan.feed(&body) {
            let place = if connect {
                "the TLS hello (SNI)"
            } else {
                "the body"
            };
            self.refuse_sent(&mut client, &destination, place, found);
            return;
        }
        let mut upstream = match self.connect(&host, port) {
            Ok(u) => u,
            Err(why) => {
                self.refuse(&mut client, &destination, why);
                return;
            }
        };
        let first_place = if connect {
            let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            // Bytes the client sent after the head (a TLS hello, pipelined).
            if upstream.write_all(&body).is_err() {
                return;
            }
            "the TLS hello (SNI)"
        } else {
            let mut out = format!("{method} {path} {version}\r\n");
            for l in &headers {
                let name = l
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if name.starts_with("proxy-")
                    || name == "connection"
                    || name == "keep-alive"
                    || (answered_continue && name == "expect")
                {
                    continue;
                }
                out.push_str(l);
                out.push_str("\r\n");
            }
            // One request per connection: the next one may be for another host.
            out.push_str("Connection: close\r\n\r\n");
            if upstream.write_all(out.as_bytes()).is_err() || upstream.write_all(&body).is_err() {
                return;
            }
            "the body"
        };
        let watch = Watch {
            proxy: self.clone(),
            destination,
            first_place,
            scan_tail: scan.into_tail(),
        };
        relay(client, upstream, watch);
    }
}

/// Why a destination was not reached.
enum Why {
    Policy(String),
    Unreachable(String),
}

/// Answer the client with `status` and a one-line `body`, then close.
fn answer(client: &mut TcpStream, status: &str, body: &str) {
    // One write: a client that reads once sees the whole answer.
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(text.as_bytes());
}

/// What the client sends upstream is searched for as long as the connection lasts.
struct Watch {
    proxy: Proxy,
    destination: String,
    /// Where the first bytes after the head go: the TLS hello in a tunnel, else the body.
    first_place: &'static str,
    /// The end of what was searched already (a value split across it is found).
    scan_tail: Vec<u8>,
}

/// A chunked body's data so far, and whether the body is complete (its last, empty chunk
/// seen). Trailers are not searched; extensions after `;` are ignored.
fn dechunk(body: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    let mut rest = body;
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (data, false);
        };
        let line = String::from_utf8_lossy(&rest[..eol]);
        let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
        else {
            // Not chunked after all: what is there is searched as it is, too.
            data.extend_from_slice(rest);
            return (data, true);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (data, true);
        }
        let take = size.min(rest.len());
        data.extend_from_slice(&rest[..take]);
        if rest.len() < size + 2 {
            return (data, false);
        }
        rest = &rest[size + 2..];
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

/// Copy `from` to `to` in large chunks until EOF, then pass the EOF on; with `watch`, each
/// chunk is searched first, and at a decoy's value the connection is cut before that chunk goes
/// on.
fn pump(mut from: TcpStream, mut to: TcpStream, watch: Option<Watch>) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut scan = watch
        .as_ref()
        .map(|w| Scan::resume(&w.proxy.0.canaries, w.scan_tail.clone()));
    let mut place = watch.as_ref().map(|w| w.first_place).unwrap_or("");
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let (Some(w), Some(scan)) = (&watch, &mut scan) {
                    if let Some(found) = scan.feed(&buf[..n]) {
                        w.proxy.record_sent(&w.destination, place, found);
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                        return;
                    }
                    if place == "the TLS hello (SNI)" {
                        place = "the tunnel";
                    }
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Copy both ways until both sides are done; what the client sends is watched.
fn relay(client: TcpStream, upstream: TcpStream, watch: Watch) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || pump(client, u2, Some(watch)));
    pump(upstream, c2, None);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"),
            (b"abcde".to_vec(), true)
        );
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd"), (b"abcd".to_vec(), false));
        assert_eq!(dechunk(b"3\r\nab"), (b"ab".to_vec(), false));
    }

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
