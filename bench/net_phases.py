"""The timing half of bench/net_phases.sh, run directly or inside keepout run.

--connections HOST N: N HTTPS connections to HOST, each timed by phase (TCP connect, the
proxy's CONNECT when HTTPS_PROXY is set, TLS handshake, one HEAD request); prints the median
of each phase in ms. --transfer URL: one GET of URL, timed to its last byte; prints ms.
--wheel-url NAME: the URL of NAME's newest manylinux x86_64 wheel for this Python.
"""
import os, re, socket, ssl, statistics, sys, time, urllib.parse, urllib.request


def tunnel_to(host, port):
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    t0 = time.perf_counter()
    if not proxy:
        s = socket.create_connection((host, port), timeout=30)
        t1 = time.perf_counter()
        return s, t1 - t0, 0.0
    u = urllib.parse.urlparse(proxy)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    t1 = time.perf_counter()
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"the proxy closed the CONNECT to {host}")
        head += chunk
    if b" 200" not in head.split(b"\r\n")[0]:
        raise SystemExit(f"the proxy refused {host}: {head.splitlines()[0]!r}")
    return s, t1 - t0, time.perf_counter() - t1


def connections(host, n):
    ctx = ssl.create_default_context()
    phases = {"connect": [], "tunnel": [], "tls": [], "request": [], "total": []}
    for _ in range(n):
        t0 = time.perf_counter()
        s, connect, tunnel = tunnel_to(host, 443)
        t1 = time.perf_counter()
        tls = ctx.wrap_socket(s, server_hostname=host)
        t2 = time.perf_counter()
        tls.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        tls.recv(100)
        t3 = time.perf_counter()
        tls.close()
        for k, v in (("connect", connect), ("tunnel", tunnel), ("tls", t2 - t1),
                     ("request", t3 - t2), ("total", t3 - t0)):
            phases[k].append(v)
    print(" ".join(f"{k}={statistics.median(v) * 1000:.2f}" for k, v in phases.items()))


def transfer(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        while r.read(1 << 20):
            pass
    print(f"{(time.perf_counter() - t0) * 1000:.1f}")


def wheel_url(name):
    page = urllib.request.urlopen(f"https://pypi.org/simple/{name}/", timeout=30).read().decode()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    found = re.findall(rf'href="(https://[^"#]*-{tag}-{tag}-manylinux[^"#]*x86_64[^"#]*\.whl)', page)
    if not found:
        raise SystemExit(f"no manylinux x86_64 wheel of {name} for {tag}")
    print(found[-1])


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "--connections":
        connections(sys.argv[2], int(sys.argv[3]))
    elif what == "--transfer":
        transfer(sys.argv[2])
    elif what == "--wheel-url":
        wheel_url(sys.argv[2])
    else:
        raise SystemExit(__doc__)
