//! A feature repo binary's `serve`, started for a test, and a plain HTTP/1.1
//! client over a socket (so that tests can also misbehave on purpose: send
//! nothing, send half a request, hold connections open).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `serve`; stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    /// Runs `bin serve --port 0 extra...` in `repo` and waits for its address.
    pub fn start(bin: &str, repo: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .args(["serve", "--port", "0"])
            .args(extra)
            .current_dir(repo)
            .env_remove("FEAST_REPO_PATH")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("serving on http://")
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
            .to_owned();
        Server { child, addr }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let code = self.child.wait().unwrap().code();
        std::mem::forget(self);
        code
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a new connection.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> Response {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A server that refuses the connection answers before reading, and the
    // write may then fail: the answer is what counts.
    let _ = try_send(&mut conn, addr, method, path, body, true);
    read_response(&mut BufReader::new(conn)).expect("a response")
}

pub fn post(addr: &str, path: &str, body: &str) -> Response {
    request(addr, "POST", path, body)
}

pub fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, "")
}

/// Writes a request; `close` asks the server to close after responding.
pub fn send(conn: &mut TcpStream, addr: &str, method: &str, path: &str, body: &str, close: bool) {
    try_send(conn, addr, method, path, body, close).unwrap();
}

fn try_send(
    conn: &mut TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    close: bool,
) -> std::io::Result<()> {
    let connection = if close { "close" } else { "keep-alive" };
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Reads one response (`Content-Length` bodies); `None` if the connection
/// closed first.
pub fn read_response(r: &mut impl BufRead) -> Option<Response> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
