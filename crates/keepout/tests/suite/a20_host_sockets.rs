//! A20: a host service listening on a unix socket inside the project (a dev database's socket
//! directory, a forwarded agent): reachable outside, masked inside unless `--socket` names it.

use super::harness::*;

const SERVER: &str = "import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b'pong from the host'); c.close()
";

const CLIENT: &str = "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('run/db.sock'); print(s.recv(100).decode())\" 2>&1";

#[test]
fn host_socket_in_the_project_is_masked() {
    for r in runners() {
        let fx = Fixture::new(&r);
        std::fs::create_dir_all(fx.project.join("run")).unwrap();
        fx.give_to_runner(&fx.project.join("run"));
        let server = fx.project.join("run/server.py");
        std::fs::write(&server, SERVER).unwrap();
        let sock = fx.project.join("run/db.sock");
        fx.background(&[
            "python3",
            &server.display().to_string(),
            &sock.display().to_string(),
        ]);
        assert!(
            poll(std::time::Duration::from_secs(10), || sock.exists()),
            "the server listens"
        );

        let out = fx.outside(CLIENT);
        assert!(
            out.has("pong from the host"),
            "[{r}] outside: the socket answers (proves it):{out}"
        );
        let inn = fx.inside(&[], CLIENT);
        assert!(
            !inn.has("pong"),
            "[{r}] inside: the host's socket is not reachable:{inn}"
        );
        let allowed = fx.inside(&["--socket", "run/db.sock"], CLIENT);
        assert!(
            allowed.has("pong from the host"),
            "[{r}] --socket lets the sandbox connect:{allowed}"
        );
        let policy = fx.keepout(&["run", "--print-policy", "--", "true"]);
        assert!(
            policy.has("run/db.sock") && policy.has("unix socket"),
            "[{r}] --print-policy shows the mask:{policy}"
        );
    }
}
