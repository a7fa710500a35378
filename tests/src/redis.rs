//! Private Redis servers for tests: `redis-server` on a free loopback port,
//! no persistence, stopped when dropped (and by the harness if the test
//! dies: the server runs as a child of the test process). One may speak
//! only TLS, with a certificate from a private CA made for it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    tls: Option<Tls>,
}

/// A private CA and the server's certificate and key, signed by it.
#[derive(Debug)]
struct Tls {
    dir: tempfile::TempDir,
}

impl Tls {
    fn make() -> Tls {
        let dir = tempfile::tempdir().expect("temp dir");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl (scripts/test installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(dir.path().join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=feast-rs test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ]);
        Tls { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(None)
    }

    /// A server that speaks only TLS; [`RedisServer::connection_string`]
    /// trusts its CA.
    pub fn start_tls() -> RedisServer {
        RedisServer::start_with(Some(Tls::make()))
    }

    fn start_with(tls: Option<Tls>) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            tls,
        };
        server.spawn();
        server
    }

    /// The private CA's certificate (PEM) of a TLS server.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.file("ca.crt"))
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &port]),
            Some(tls) => {
                let path = |name: &str| tls.file(name).to_str().unwrap().to_owned();
                cmd.args(["--port", "0", "--tls-port", &port])
                    .args(["--tls-cert-file", &path("server.crt")])
                    .args(["--tls-key-file", &path("server.key")])
                    .args(["--tls-ca-cert-file", &path("ca.crt")])
                    .args(["--tls-auth-clients", "no"])
            }
        };
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server (scripts/test installs it: scripts/debian-packages redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Feast's `connection_string` for this server.
    pub fn connection_string(&self) -> String {
        match self.ca_file() {
            None => format!("127.0.0.1:{},db=0", self.port),
            Some(ca) => format!(
                "127.0.0.1:{},db=0,ssl=true,ssl_ca_certs={}",
                self.port,
                ca.display()
            ),
        }
    }

    /// A client connection, for layout assertions (plain servers only).
    pub fn client(&self) -> redis::Connection {
        assert!(self.tls.is_none(), "client() speaks plain TCP");
        redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Kills the server (clients see connections refused); its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a fresh, empty server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: a hung server.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal} {pid}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A frozen server would not die of SIGKILL's pending delivery
            // otherwise; thaw it first.
            self.signal("-CONT");
        }
        self.stop();
    }
}
