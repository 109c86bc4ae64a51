//! A9: network. Without --net the sandbox has its own network namespace with only `lo`: no
//! route out and no host loopback service (a database, a local agent bridge on 127.0.0.1).
//! With --net the host's network is shared as it is: host loopback IS reachable, by design (the
//! documented escape hatch), but the host's abstract unix sockets still are not.

use super::harness::*;

const INTERFACES_PY: &str = r#"
import socket
print("IFACES", " ".join(sorted(name for _, name in socket.if_nameindex())))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect(("192.0.2.1", 9))  # TEST-NET-1: only asks the routing table, sends nothing
    print("ROUTE ok")
except OSError as e:
    print("ROUTE errno", e.errno, e.strerror)
"#;

const OWN_LOOPBACK_PY: &str = r#"
import socket, threading
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept()
    c.sendall(b"pong")
    c.close()
t = threading.Thread(target=serve)
t.start()
c = socket.create_connection(("127.0.0.1", port), timeout=10)
print("LOOPBACK", c.recv(10).decode())
t.join()
"#;

/// A TCP service on the host's 127.0.0.1: reachable outside; inside without --net the
/// connection is refused (the sandbox's own loopback has nothing listening).
#[test]
fn host_loopback_unreachable_without_net() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let port = fx.serve("tcp", "");
        let script = fx.connect_script("tcp", &port);

        let out = fx.outside(&script);
        assert!(
            out.stdout.contains("CONNECTED hello-from-the-host"),
            "[{r}] outside: the host loopback service answers (proves the attack):{out}"
        );

        let inn = fx.inside(&[], &script);
        assert!(
            inn.stdout.contains("BLOCKED 111 "),
            "[{r}] inside: connecting to the host's 127.0.0.1:{port} must be refused:{inn}"
        );
    }
}

/// Without --net: only `lo`, and no route anywhere. Outside the host has more interfaces and a
/// route (where it has one: the outside half is skipped with a note on a host without).
#[test]
fn only_loopback_and_no_route_without_net() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("interfaces.py", INTERFACES_PY);
        let script = format!("{PYTHON} {py}");

        let out = fx.outside(&script);
        let host_ifaces = out
            .stdout
            .lines()
            .find(|l| l.starts_with("IFACES"))
            .unwrap_or("");
        if host_ifaces.split_whitespace().count() > 2 && out.stdout.contains("ROUTE ok") {
            // More than `lo`, and a route out: the attack has somewhere to go.
        } else {
            note(&format!(
                "[{r}] this host has no interface besides lo or no route: {}",
                out.stdout
            ));
        }

        let inn = fx.inside(&[], &script);
        assert!(
            inn.stdout.lines().any(|l| l == "IFACES lo"),
            "[{r}] inside: the only interface is lo:{inn}"
        );
        assert!(
            inn.stdout.contains("ROUTE errno 101 "),
            "[{r}] inside: no route out (ENETUNREACH):{inn}"
        );
        if have("/usr/sbin/ip") || have("/sbin/ip") {
            let ip = if have("/usr/sbin/ip") {
                "/usr/sbin/ip"
            } else {
                "/sbin/ip"
            };
            let inn = fx.inside(&[], &format!("{ip} -o link show"));
            let names: Vec<&str> = inn
                .stdout
                .lines()
                .filter_map(|l| l.split(':').nth(1).map(str::trim))
                .collect();
            assert!(
                inn.success() && names == ["lo"],
                "[{r}] inside: `ip link` shows only lo:{inn}"
            );
        }
    }
}

/// Without --net the sandbox's own loopback is up: listening and connecting on 127.0.0.1
/// inside works (test suites need it).
#[test]
fn own_loopback_works_without_net() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let py = fx.script("own_loopback.py", OWN_LOOPBACK_PY);
        let inn = fx.inside(&[], &format!("{PYTHON} {py}"));
        assert!(
            inn.success() && inn.stdout.contains("LOOPBACK pong"),
            "[{r}] inside: the sandbox's own loopback works:{inn}"
        );
    }
}

/// With --net the host's network is shared: the host loopback service IS reachable (that is
/// what --net means, and it is documented), while the host's abstract unix socket is not
/// (Landlock scoping; see also a03_sockets).
#[test]
fn with_net_host_loopback_reachable_but_not_abstract_sockets() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let port = fx.serve("tcp", "");
        let name = format!("keepout-test-net-{}", fx.rand);
        fx.serve("abstract", &name);
        let tcp = fx.connect_script("tcp", &port);
        let abs = fx.connect_script("abstract", &name);

        let out = fx.outside(&format!("{tcp}; {abs}"));
        assert!(
            out.stdout.matches("CONNECTED hello-from-the-host").count() == 2,
            "[{r}] outside: both services answer:{out}"
        );

        let inn = fx.inside(&["--net", "host"], &tcp);
        assert!(
            inn.stdout.contains("CONNECTED hello-from-the-host"),
            "[{r}] inside --net: the host network, loopback included, is shared (documented):{inn}"
        );
        let inn = fx.inside(&["--net", "host"], &abs);
        assert!(
            inn.stdout.contains("BLOCKED") && !inn.has("hello-from-the-host"),
            "[{r}] inside --net: the host's abstract socket must stay unreachable:{inn}"
        );
    }
}
