//! The proxy: HTTP CONNECT (for HTTPS) and absolute-form plain HTTP, one destination per
//! client connection, every destination checked by name and by address, and everything the
//! client sends searched for the run's decoy values ([`Canaries`]) before it is forwarded.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::address::forbidden;
use crate::allow::Allowlist;
use crate::canary::{Canaries, Form, Found, Scan, ScanState};

/// A destination the proxy did not carry the client to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `host:port` as the client asked for it.
    pub destination: String,
    /// Why, whole: what it was, then in parentheses what to know or do about it.
    pub reason: String,
    /// Why, in a few words, for a one-line summary ("not allowed", "resolves to 127.0.0.1",
    /// "cut: no bytes either way for 60 s"): the reason before its first parenthesis.
    #[serde(skip)]
    pub brief: String,
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
    limits: Limits,
}

/// How long a client connection may live without progress: what bounds the threads a
/// sandbox can hold (with [`MAX_CONNECTIONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head must arrive whole within this, in total (not per byte); a searched
    /// body too, else it is searched as it streams.
    pub head: Duration,
    /// A connection with no bytes either way for this long is cut.
    pub idle: Duration,
    /// A relayed connection is cut after this long in all, busy or not: a sandbox that sends
    /// a byte just before each idle cut cannot hold a thread for ever.
    pub total: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(3600),
        }
    }
}

/// For tests only: `HEAD_MS,IDLE_MS[,TOTAL_MS]` shortens [`Limits`] (a test waits a second, not a
/// minute). Documented in docs/net.md as a test setting.
pub const TEST_LIMITS_VAR: &str = "KEEPOUT_TEST_NET_LIMITS_MS";

impl Limits {
    /// The defaults, or the ones [`TEST_LIMITS_VAR`] sets (an unreadable value, or a zero,
    /// is ignored).
    pub fn from_env() -> Limits {
        let ms = |v: &str| {
            let ms: u64 = v.trim().parse().ok()?;
            (ms > 0).then(|| Duration::from_millis(ms))
        };
        let parsed = std::env::var(TEST_LIMITS_VAR).ok().and_then(|v| {
            let mut parts = v.split(',');
            let head = ms(parts.next()?)?;
            let idle = ms(parts.next()?)?;
            let total = match parts.next() {
                Some(total) => ms(total)?,
                None => Limits::default().total,
            };
            Some(Limits { head, idle, total })
        });
        parsed.unwrap_or_default()
    }
}

/// How long the accept loop waits when this process is out of file descriptors (or memory)
/// before it tries again: a retry at once would spin a core while nothing can change.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
        Proxy::start_with_limits(listener, allow, own, canaries, resolve, Limits::from_env())
    }

    /// The same with other [`Limits`] (tests: short ones).
    pub fn start_with_limits(
        listener: TcpListener,
        allow: Allowlist,
        own: Vec<IpAddr>,
        canaries: Canaries,
        resolve: Box<Resolver>,
        limits: Limits,
    ) -> Proxy {
        let proxy = Proxy(Arc::new(Shared {
            allow,
            own,
            resolve,
            canaries,
            refusals: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            limits,
        }));
        let p = proxy.clone();
        std::thread::spawn(move || p.accept_loop(listener));
        proxy
    }

    /// Accept and serve clients for as long as the process lives. Out of file descriptors
    /// (or memory), it waits [`ACCEPT_BACKOFF`] before the next try (the waiting clients stay
    /// queued) and records it once.
    fn accept_loop(&self, listener: TcpListener) {
        loop {
            let mut client = match listener.accept() {
                Ok((client, _)) => client,
                Err(e) => {
                    use std::io::ErrorKind;
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) {
                        continue;
                    }
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: nothing changes at once.
                    self.record_refusal(
                        "the proxy",
                        format!(
                            "could not accept connections ({e}); they waited: raise the limit (`ulimit -n`) or open fewer at once"
                        ),
                        RefusalKind::Policy,
                    );
                    std::thread::sleep(ACCEPT_BACKOFF);
                    continue;
                }
            };
            // Counted here, in the order connections arrive; uncounted when served.
            if self.0.open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                self.0.open.fetch_sub(1, Ordering::SeqCst);
                self.refuse_busy(
                    &mut client,
                    &format!("more than {MAX_CONNECTIONS} connections through the proxy at once"),
                );
                continue;
            }
            let p = self.clone();
            let (tx, rx) = std::sync::mpsc::channel::<TcpStream>();
            let spawned = std::thread::Builder::new().spawn(move || {
                if let Ok(client) = rx.recv() {
                    p.serve(client);
                }
                p.0.open.fetch_sub(1, Ordering::SeqCst);
            });
            match spawned {
                Ok(_) => {
                    let _ = tx.send(client);
                }
                Err(e) => {
                    self.0.open.fetch_sub(1, Ordering::SeqCst);
                    self.refuse_busy(
                        &mut client,
                        &format!("no thread for another connection ({e})"),
                    );
                }
            }
        }
    }

    /// Refuse a connection the proxy cannot serve now, without waiting for its request.
    fn refuse_busy(&self, client: &mut TcpStream, why: &str) {
        let reason = format!("{why}: close some before opening more");
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
                brief: reason.split(" (").next().unwrap_or(&reason).to_string(),
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
        let (kind, reason, status, body) = match why {
            Why::Policy(r) => {
                let body = format!("keepout: {destination} refused: {r}\n");
                (RefusalKind::Policy, r, "403 Forbidden", body)
            }
            Why::Unreachable(r) => {
                let body = format!("keepout: {destination} is not reachable: {r}\n");
                (RefusalKind::Unreachable, r, "502 Bad Gateway", body)
            }
            Why::BadRequest(r) => {
                let body = format!("keepout: a bad request: {r}\n");
                let reason = format!("a bad request ({r})");
                (RefusalKind::Policy, reason, "400 Bad Request", body)
            }
        };
        // Recorded before the client hears of it, so a report never misses a refusal.
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
        let limits = self.0.limits;
        // The whole head within `limits.head`, however slowly it trickles in.
        let deadline = Instant::now() + limits.head;
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let read = if left.is_zero() {
                Err(std::io::ErrorKind::TimedOut.into())
            } else {
                let _ = client.set_read_timeout(Some(left));
                client.read(&mut buf)
            };
            let searched = head.len().saturating_sub(2);
            match read {
                Ok(0) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e) => {
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        self.record_refusal(
                            &head_target(&head),
                            format!(
                                "cut: the request did not arrive in {} s (a slow or stalled client)",
                                limits.head.as_secs_f64()
                            ),
                            RefusalKind::Policy,
                        );
                        let _ = client.set_read_timeout(None);
                        answer(
                            &mut client,
                            "408 Request Timeout",
                            "keepout: the request did not arrive in time\n",
                        );
                    }
                    return;
                }
            }
            if let Some(end) = head_end(&head, searched) {
                break end;
            }
            if head.len() > MAX_HEAD {
                let _ = client.set_read_timeout(None);
                let reason = format!("a request head over {} KiB: refused", MAX_HEAD / 1024);
                self.record_refusal(&head_target(&head), reason.clone(), RefusalKind::Policy);
                answer(
                    &mut client,
                    "431 Request Header Fields Too Large",
                    &format!("keepout: {reason}\n"),
                );
                return;
            }
        };
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        // Lines end in CRLF or a bare LF (RFC 9112 2.2 lets a recipient take either).
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
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
        // CONNECT names its port; plain HTTP defaults to 80.
        let (host, port) = match split_host_port(authority, (!connect).then_some(80)) {
            Ok(hp) => hp,
            Err(why) => {
                let _ = client.set_read_timeout(None);
                self.refuse(&mut client, target, Why::BadRequest(why));
                return;
            }
        };
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
                let complete = |body: &[u8], outgoing: &Outgoing| match length {
                    _ if chunked => outgoing.body_done(),
                    Some(l) => body.len() >= l,
                    None => true,
                };
                // Read whole within the head's time (else searched as it streams).
                let deadline = Instant::now() + limits.head;
                while verdict == Ok(None) && !complete(&body, &outgoing) && body.len() <= WHOLE_BODY
                {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let _ = client.set_read_timeout(Some(left.min(CLIENT_STALL)));
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
    /// Not a request the proxy can read (answered 400).
    BadRequest(String),
}

/// Where the end of a request head is in `head` (the index after its empty line), looking
/// from `from` on (what was searched before is not searched again). An empty line ends in
/// CRLF or a bare LF.
fn head_end(head: &[u8], from: usize) -> Option<usize> {
    let from = from.min(head.len());
    head[from..].iter().enumerate().find_map(|(i, b)| {
        let i = from + i;
        if *b != b'\n' {
            return None;
        }
        match head.get(i + 1..) {
            Some([b'\n', ..]) => Some(i + 2),
            Some([b'\r', b'\n', ..]) => Some(i + 3),
            _ => None,
        }
    })
}

/// The target of a request head that may be incomplete (for a report): its second word, or
/// "the proxy" when no request line came.
fn head_target(head: &[u8]) -> String {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line)
        .split_whitespace()
        .nth(1)
        .map(|t| t.chars().take(200).collect())
        .unwrap_or_else(|| "the proxy".to_string())
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

/// `host:port`, `[v6]:port`, or `host` (then `default`, when there is one). A port is 1 to
/// 65535 in decimal digits; anything else is an error saying what was wrong.
fn split_host_port(authority: &str, default: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Err("text after the ] of an IPv6 address".into()),
            },
            None => return Err("an IPv6 address without its ]".into()),
        },
        None => match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("an IPv6 address must be in brackets: [ADDRESS]:PORT".into())
            }
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("no host name".into());
    }
    let port = match (port, default) {
        (Some(p), _) => p
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| p.parse::<u16>().ok())
            .flatten()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {p:?} is not a port (1 to 65535)"))?,
        (None, Some(d)) => d,
        (None, None) => return Err("no port: CONNECT needs HOST:PORT".into()),
    };
    Ok((host.to_string(), port))
}

/// A relayed connection's last sign of life, shared by its two directions: one with no bytes
/// either way for [`Limits::idle`], or open for [`Limits::total`], is cut (by whichever
/// direction sees it first) and recorded.
struct Liveness {
    start: Instant,
    /// Milliseconds since `start` of the last bytes read either way.
    last: AtomicU64,
    idle: Duration,
    total: Duration,
    cut: AtomicBool,
    proxy: Proxy,
    destination: String,
}

impl Liveness {
    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    /// How long until the connection is cut, for being idle or for its age (zero: now).
    fn left(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        let age = self.start.elapsed();
        (last + self.idle)
            .saturating_sub(age)
            .min(self.total.saturating_sub(age))
    }

    /// Cut both directions (`a` and `b` are the two sockets), recorded once, with why.
    fn cut(&self, a: &TcpStream, b: &TcpStream) {
        if !self.cut.swap(true, Ordering::SeqCst) {
            let why = if self.start.elapsed() >= self.total {
                format!(
                    "cut: open for {} s, the most a connection may live",
                    self.total.as_secs_f64()
                )
            } else {
                format!(
                    "cut: no bytes either way for {} s (an idle connection)",
                    self.idle.as_secs_f64()
                )
            };
            self.proxy
                .record_refusal(&self.destination, why, RefusalKind::Policy);
        }
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Copy `from` to `to` in large chunks until EOF, then pass the EOF on; with `watch`, each
/// chunk is searched first, and at a decoy's value (or a chunked body that is not well formed)
/// the connection is cut before that chunk goes on. A watched client whose server hung up is
/// still read and searched until it stops sending (or stalls for [`CLIENT_STALL`]): a value it
/// sends is reported, though it reaches no one. No bytes either way for the idle limit (a read
/// or a write that waits that long): both directions are cut ([`Liveness`]).
fn pump(mut from: TcpStream, mut to: TcpStream, mut watch: Option<Watch>, live: &Liveness) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut place = watch.as_ref().map(|w| w.first_place).unwrap_or("");
    let mut server_gone = false;
    let _ = to.set_write_timeout(Some(live.idle));
    loop {
        if !server_gone {
            let left = live.left();
            if left.is_zero() {
                live.cut(&from, &to);
                return;
            }
            let _ = from.set_read_timeout(Some(left.max(Duration::from_millis(10))));
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Err(e) if timed_out(&e) && !server_gone => continue,
            Err(_) => break,
            Ok(n) => {
                live.touch();
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
                if !server_gone {
                    if let Err(e) = to.write_all(&buf[..n]) {
                        if timed_out(&e) {
                            live.cut(&from, &to);
                            return;
                        }
                        if watch.is_none() {
                            break;
                        }
                        server_gone = true;
                        let _ = from.set_read_timeout(Some(CLIENT_STALL));
                    }
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Copy both ways until both sides are done (or the connection is idle too long); what the
/// client sends is watched.
fn relay(client: TcpStream, upstream: TcpStream, watch: Watch) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let live = Arc::new(Liveness {
        start: Instant::now(),
        last: AtomicU64::new(0),
        idle: watch.proxy.0.limits.idle,
        total: watch.proxy.0.limits.total,
        cut: AtomicBool::new(false),
        proxy: watch.proxy.clone(),
        destination: watch.destination.clone(),
    });
    let l = live.clone();
    let up = std::thread::Builder::new().spawn(move || pump(client, u2, Some(watch), &l));
    match up {
        Ok(up) => {
            pump(upstream, c2, None, &live);
            let _ = up.join();
        }
        Err(e) => live.proxy.record_refusal(
            &live.destination,
            format!("cut: no thread for the connection's other direction ({e})"),
            RefusalKind::Policy,
        ),
    }
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
        let ok = |a: &str, d: Option<u16>, h: &str, p: u16| {
            assert_eq!(split_host_port(a, d), Ok((h.to_string(), p)), "{a}");
        };
        ok("pypi.org:443", Some(80), "pypi.org", 443);
        ok("pypi.org", Some(80), "pypi.org", 80);
        ok("[::1]:443", Some(80), "::1", 443);
        ok("[::1]", Some(80), "::1", 80);
        ok("pypi.org:65535", None, "pypi.org", 65535);
        for bad in [
            "pypi.org:99999",
            "pypi.org:0",
            "pypi.org:+443",
            "pypi.org:",
            "pypi.org:44 3",
            "pypi.org",
            ":443",
            "[::1]",
            "[::1]x",
            "[::1:443",
            "::1:443",
        ] {
            assert!(split_host_port(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn head_ends() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\r\n", 0), Some(22));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }
}
