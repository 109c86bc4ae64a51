//! The proxy: HTTP CONNECT (for HTTPS) and absolute-form plain HTTP, one destination per
//! client connection, every destination checked by name and by address, and everything the
//! client sends searched for the run's decoy values ([`Canaries`]) before it is forwarded.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::address::forbidden;
use crate::allow::Allowlist;
use crate::canary::{Canaries, Form, Found, Scan, ScanState};

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
    /// Client connections being served now (at most [`MAX_CONNECTIONS`]).
    open: AtomicUsize,
}

/// A running proxy. Its threads live as long as the process (a run is one process).
#[derive(Clone)]
pub struct Proxy(Arc<Shared>);

/// A plain-HTTP body up to this size (with a `Content-Length`, or chunked) is read whole and
/// searched before anything is forwarded; a longer one, or one whose client stalls for
/// [`CLIENT_STALL`], is searched as it streams (a chunked one still with its chunks joined), and
/// the connection cut at a find.
const WHOLE_BODY: usize = 1024 * 1024;

/// How long a client may send nothing while its request is read before it is forwarded.
const CLIENT_STALL: Duration = Duration::from_secs(30);

/// Client connections served at once, per run: one more is answered 503 and closed (each
/// connection is a thread or two of keepout's, outside the sandbox's limits).
pub const MAX_CONNECTIONS: usize = 256;

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
            open: AtomicUsize::new(0),
        }));
        let p = proxy.clone();
        std::thread::spawn(move || {
            for mut client in listener.incoming().flatten() {
                // Counted here, in the order connections arrive; uncounted when served.
                if p.0.open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    p.0.open.fetch_sub(1, Ordering::SeqCst);
                    p.refuse_busy(&mut client);
                    continue;
                }
                let p = p.clone();
                std::thread::spawn(move || {
                    p.serve(client);
                    p.0.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        proxy
    }

    /// Refuse a connection over [`MAX_CONNECTIONS`], without waiting for its request.
    fn refuse_busy(&self, client: &mut TcpStream) {
        let reason = format!(
            "more than {MAX_CONNECTIONS} connections through the proxy at once: close some before opening more"
        );
        self.record_refusal("the proxy", reason.clone(), RefusalKind::Policy);
        // Never block the loop that accepts: the answer fits in an empty socket buffer.
        let _ = client.set_nonblocking(true);
        answer(
            client,
            "503 Service Unavailable",
            &format!("keepout: refused: {reason}\n"),
        );
        let _ = client.shutdown(Shutdown::Write);
    }

    fn record_refusal(&self, destination: &str, reason: String, kind: RefusalKind) {
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
        self.record_refusal(destination, reason, kind);
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
        // Each read is searched once, as it comes: linear in the bytes the client sends.
        let header = |want: &str| {
            headers.iter().find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case(want)
                    .then(|| value.trim().to_ascii_lowercase())
            })
        };
        let watching = !self.0.canaries.is_empty();
        // Any Transfer-Encoding line naming chunked (a server may join several).
        let chunked = !connect
            && headers.iter().any(|h| {
                h.split_once(':').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("transfer-encoding")
                        && value.to_ascii_lowercase().contains("chunked")
                })
            });
        let first_place = if connect {
            "the TLS hello (SNI)"
        } else {
            "the body"
        };
        let mut body = head.split_off(end);
        let mut outgoing = Outgoing::new(watching && chunked);
        let mut answered_continue = false;
        let mut verdict = outgoing.feed(&self.0.canaries, &body);
        if watching && !connect && verdict == Ok(None) {
            let length = header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|l| *l <= WHOLE_BODY);
            if chunked || length.is_some() {
                // A client that waits for "100 Continue" before its body gets it from here.
                if header("expect").as_deref() == Some("100-continue") {
                    let _ = client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                    answered_continue = true;
                }
                let _ = client.set_read_timeout(Some(CLIENT_STALL));
                let complete = |body: &[u8], outgoing: &Outgoing| match length {
                    _ if chunked => outgoing.body_done(),
                    Some(l) => body.len() >= l,
                    None => true,
                };
                while verdict == Ok(None) && !complete(&body, &outgoing) && body.len() <= WHOLE_BODY
                {
                    match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            body.extend_from_slice(&buf[..n]);
                            verdict = outgoing.feed(&self.0.canaries, &buf[..n]);
                        }
                    }
                }
            }
        }
        let _ = client.set_read_timeout(None);
        match verdict {
            Ok(None) => {}
            Ok(Some(found)) => {
                self.refuse_sent(&mut client, &destination, first_place, found);
                return;
            }
            Err(malformed) => {
                self.refuse(&mut client, &destination, Why::Policy(malformed));
                return;
            }
        }
        let mut upstream = match self.connect(&host, port) {
            Ok(u) => u,
            Err(why) => {
                self.refuse(&mut client, &destination, why);
                return;
            }
        };
        if connect {
            let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            // Bytes the client sent after the head (a TLS hello, pipelined). A server that
            // hung up already: what the client sends is still searched (in `relay`).
            let _ = upstream.write_all(&body);
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
            let _ = upstream
                .write_all(out.as_bytes())
                .and_then(|()| upstream.write_all(&body));
        }
        let watch = Watch {
            proxy: self.clone(),
            destination,
            first_place,
            outgoing,
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
    /// Where the search of what the client sent stands (a value split across it is found).
    outgoing: Outgoing,
}

/// What a client sends, searched as it streams: the bytes as they are and, for a chunked body,
/// its data with the chunks joined (a value split across chunks is found, however small they
/// are). Each byte is searched once: linear in the bytes sent, bounded in memory.
struct Outgoing {
    raw: ScanState,
    chunked: Option<(Dechunker, ScanState)>,
    /// The data of the last bytes fed (reused).
    data: Vec<u8>,
}

impl Outgoing {
    fn new(chunked: bool) -> Outgoing {
        Outgoing {
            raw: ScanState::default(),
            chunked: chunked.then(Default::default),
            data: Vec::new(),
        }
    }

    /// Search the next `bytes`: the first value found, or why a chunked body is not one (it
    /// cannot be searched with its chunks joined, so it is not forwarded).
    fn feed(&mut self, canaries: &Canaries, bytes: &[u8]) -> Result<Option<Found>, String> {
        if canaries.is_empty() {
            return Ok(None);
        }
        let mut scan = Scan::resume(canaries, std::mem::take(&mut self.raw));
        let found = scan.feed(bytes);
        self.raw = scan.into_state();
        if found.is_some() {
            return Ok(found);
        }
        let Some((dechunker, state)) = &mut self.chunked else {
            return Ok(None);
        };
        self.data.clear();
        dechunker.feed(bytes, &mut self.data).map_err(|why| {
            format!("a chunked body that is not well formed ({why}): it was not forwarded")
        })?;
        let mut scan = Scan::resume(canaries, std::mem::take(state));
        let found = scan.feed(&self.data);
        *state = scan.into_state();
        Ok(found)
    }

    /// A chunked body's last chunk (and trailers) came.
    fn body_done(&self) -> bool {
        self.chunked.as_ref().is_some_and(|(d, _)| d.done())
    }
}

/// An HTTP/1.1 chunked body (RFC 9112 7.1) decoded as it arrives: each byte is looked at once,
/// whatever the sizes of the reads, and only the current size or trailer line is kept (at most
/// [`MAX_CHUNK_LINE`]). Lines may end in CRLF or a bare LF (as lenient servers take them);
/// extensions after `;` and trailers are skipped (the bytes as they are are searched too).
/// Anything else (a size that is not hex, or does not fit in 64 bits with its line end, data
/// longer than its size) is an error: what a server might read otherwise is not searched.
#[derive(Debug, Default)]
struct Dechunker {
    state: ChunkState,
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// In a chunk-size line.
    #[default]
    Size,
    /// In a chunk's data: this many bytes to come.
    Data(u64),
    /// After a chunk's data: its line end.
    DataEnd,
    /// After the last chunk: trailer lines, up to an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// The longest chunk-size or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

impl Dechunker {
    /// Decode the next `bytes`, appending the chunks' data to `data`. Bytes after the end of
    /// the body are not the body's: they are left alone.
    fn feed(&mut self, mut bytes: &[u8], data: &mut Vec<u8>) -> Result<(), String> {
        while !bytes.is_empty() {
            match self.state {
                ChunkState::Done => return Ok(()),
                ChunkState::Data(left) => {
                    let take = usize::try_from(left).map_or(bytes.len(), |l| l.min(bytes.len()));
                    data.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    // take <= left: no underflow.
                    self.state = match left - take as u64 {
                        0 => ChunkState::DataEnd,
                        left => ChunkState::Data(left),
                    };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailers => {
                    let Some(eol) = bytes.iter().position(|b| *b == b'\n') else {
                        self.line.extend_from_slice(bytes);
                        return self.check_line_length();
                    };
                    self.line.extend_from_slice(&bytes[..eol]);
                    self.check_line_length()?;
                    bytes = &bytes[eol + 1..];
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.state = self.after_line(&line)?;
                    line.clear();
                    self.line = line;
                }
            }
        }
        Ok(())
    }

    fn check_line_length(&self) -> Result<(), String> {
        if self.line.len() > MAX_CHUNK_LINE {
            return Err(format!("a line longer than {MAX_CHUNK_LINE} bytes"));
        }
        Ok(())
    }

    /// The state after a whole `line` (without its line end) in a line state.
    fn after_line(&self, line: &[u8]) -> Result<ChunkState, String> {
        let shown = || {
            let text = String::from_utf8_lossy(line);
            let short: String = text.chars().take(24).collect();
            if short.len() < text.len() {
                format!("{short}...")
            } else {
                short
            }
        };
        match self.state {
            ChunkState::DataEnd if line.is_empty() => Ok(ChunkState::Size),
            ChunkState::DataEnd => Err("a chunk longer than its size".into()),
            ChunkState::Trailers if line.is_empty() => Ok(ChunkState::Done),
            ChunkState::Trailers => Ok(ChunkState::Trailers),
            _ => {
                let digits = line.split(|b| *b == b';').next().unwrap_or_default();
                let digits = digits.trim_ascii();
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
                    return Err(format!("not a chunk size: {:?}", shown()));
                }
                let size = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u64::from_str_radix(d, 16).ok())
                    .filter(|size| size.checked_add(2).is_some())
                    .ok_or_else(|| format!("a chunk size too large: {:?}", shown()))?;
                Ok(match size {
                    0 => ChunkState::Trailers,
                    size => ChunkState::Data(size),
                })
            }
        }
    }

    fn done(&self) -> bool {
        self.state == ChunkState::Done
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
/// chunk is searched first, and at a decoy's value (or a chunked body that is not well formed)
/// the connection is cut before that chunk goes on. A watched client whose server hung up is
/// still read and searched until it stops sending (or stalls for [`CLIENT_STALL`]): a value it
/// sends is reported, though it reaches no one.
fn pump(mut from: TcpStream, mut to: TcpStream, mut watch: Option<Watch>) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut place = watch.as_ref().map(|w| w.first_place).unwrap_or("");
    let mut server_gone = false;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(w) = &mut watch {
                    let verdict = w.outgoing.feed(&w.proxy.0.canaries, &buf[..n]);
                    if verdict != Ok(None) {
                        match verdict {
                            Ok(Some(found)) => w.proxy.record_sent(&w.destination, place, found),
                            Err(why) => w.proxy.record_refusal(
                                &w.destination,
                                format!("{why}; the connection was cut"),
                                RefusalKind::Policy,
                            ),
                            Ok(None) => {}
                        }
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                        return;
                    }
                    if place == "the TLS hello (SNI)" {
                        place = "the tunnel";
                    }
                }
                if !server_gone && to.write_all(&buf[..n]).is_err() {
                    if watch.is_none() {
                        break;
                    }
                    server_gone = true;
                    let _ = from.set_read_timeout(Some(CLIENT_STALL));
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

    /// `body` decoded `step` bytes at a time: the data, and whether the body is complete.
    fn dechunk(body: &[u8], step: usize) -> Result<(Vec<u8>, bool), String> {
        let mut d = Dechunker::default();
        let mut data = Vec::new();
        for piece in body.chunks(step) {
            d.feed(piece, &mut data)?;
        }
        Ok((data, d.done()))
    }

    #[test]
    fn chunked_bodies() {
        for step in 1..40 {
            let ok = |body: &[u8], data: &[u8], done| {
                assert_eq!(
                    dechunk(body, step),
                    Ok((data.to_vec(), done)),
                    "step {step}"
                );
            };
            ok(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n", b"abcde", true);
            ok(b"3\r\nabc\r\n2\r\nd", b"abcd", false);
            ok(b"3\r\nab", b"ab", false);
            ok(
                b"A \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nnext",
                b"0123456789",
                true,
            );
            // Bare LF line ends, as lenient servers take them.
            ok(b"3\nabc\n0\n\n", b"abc", true);
        }
    }

    /// What is not a chunked body is refused, never searched as something else: a size that
    /// is not hex, that overflows 64 bits (or would with its line end: `size + 2` once
    /// panicked in a debug build and wrapped in a release one), data longer than its size,
    /// an endless size line.
    #[test]
    fn malformed_chunked_bodies() {
        for body in [
            &b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n"[..],
            b"fffffffffffffffd\r\nabc",
            b"10000000000000000\r\nabc",
            b"+5\r\nabcde\r\n",
            b"0x5\r\nabcde\r\n",
            b"zz\r\n",
            b"\r\n",
            b"3\r\nabcdef\r\n0\r\n\r\n",
        ] {
            let shown = String::from_utf8_lossy(body);
            let result = dechunk(body, body.len());
            if body.starts_with(b"fffffffffffffffd") {
                // Fits, with its line end: an endless chunk, decoded as it comes.
                assert_eq!(result, Ok((b"abc".to_vec(), false)), "{shown}");
            } else {
                assert!(result.is_err(), "{shown}: {result:?}");
            }
        }
        let long = [b'1'; MAX_CHUNK_LINE + 1];
        assert!(dechunk(&long, 7).is_err());
    }

    /// A 1 MiB chunked body of 1-byte chunks, fed a few bytes at a time (as a client that
    /// writes slowly makes the proxy read it): each byte decoded and searched once.
    #[test]
    fn tiny_chunks_are_linear() {
        let decoy = "keepout-decoy-test-h2k9x4m7p3q8r5t1w6y0z2b4";
        let canaries = Canaries::new(&[crate::Canary {
            name: "~/.netrc".into(),
            value: decoy.into(),
            random: Some("h2k9x4m7p3q8r5t1w6y0z2b4".into()),
        }]);
        let mut body = Vec::new();
        while body.len() < (1 << 20) - 400 {
            body.extend_from_slice(b"1\r\na\r\n");
        }
        for b in decoy.bytes() {
            body.extend_from_slice(&[b'1', b'\r', b'\n', b, b'\r', b'\n']);
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let start = std::time::Instant::now();
        let mut outgoing = Outgoing::new(true);
        let found = body
            .chunks(5)
            .find_map(|piece| outgoing.feed(&canaries, piece).unwrap());
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(found.map(|f| f.name), Some("~/.netrc".into()));
        // 2.5 s in a debug build here, 0.5 s in a release one; joining the body again after
        // each read took about 6 minutes (release) for this.
        assert!(secs < 30.0, "{secs:.2} s for 1 MiB in 5-byte reads");
        eprintln!("1 MiB of 1-byte chunks in 5-byte reads: {secs:.3} s");
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
