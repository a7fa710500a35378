//! A fault-injecting HTTP proxy in front of the Kinesis emulator: it passes
//! calls through, or answers chosen ones with the errors AWS (and its fault
//! injection service) returns, in AWS's JSON error shape. It also records
//! when each operation was called, to check pacing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// An error to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
}

impl Fault {
    pub const THROTTLED: Fault = Fault {
        status: 400,
        code: "ProvisionedThroughputExceededException",
        message: "Rate exceeded for shard in stream under account.",
    };
    pub const INTERNAL_FAILURE: Fault = Fault {
        status: 500,
        code: "InternalFailure",
        message: "Internal service failure.",
    };
    pub const SERVICE_UNAVAILABLE: Fault = Fault {
        status: 503,
        code: "ServiceUnavailable",
        message: "Service unavailable.",
    };
    pub const EXPIRED_ITERATOR: Fault = Fault {
        status: 400,
        code: "ExpiredIteratorException",
        message: "Iterator expired. The iterator was created at time before the current time.",
    };
    pub const ACCESS_DENIED: Fault = Fault {
        status: 400,
        code: "AccessDeniedException",
        message: "User is not authorized to perform: kinesis:GetRecords",
    };
}

#[derive(Debug, Default)]
struct State {
    /// Operation -> the fault every call gets, until cleared.
    always: BTreeMap<String, Fault>,
    /// Every connection is dropped unanswered (a partition).
    down: bool,
    /// Operation (`GetRecords`) -> faults still to answer with, in order.
    planned: BTreeMap<String, Vec<Fault>>,
    /// (operation, call number from 0) -> the fault that call gets.
    at: BTreeMap<(String, usize), Fault>,
    /// Operation -> when each call arrived (answered or passed through).
    calls: BTreeMap<String, Vec<Instant>>,
    /// Operation -> faults answered.
    injected: BTreeMap<String, usize>,
}

/// A running proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
    closed: Arc<AtomicBool>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let closed = Arc::new(AtomicBool::new(false));
        {
            let (state, closed) = (state.clone(), closed.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if closed.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || serve(conn, upstream, &state));
                }
            });
        }
        FaultProxy {
            port,
            state,
            closed,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers the next `n` calls of `operation` (such as `GetRecords`) with `fault`.
    pub fn fail_next(&self, operation: &str, n: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.planned
            .entry(operation.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(fault, n));
    }

    /// Answers call number `index` (from 0, counting from the proxy's start)
    /// of `operation` with `fault`.
    pub fn fail_call(&self, operation: &str, index: usize, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .at
            .insert((operation.to_owned(), index), fault);
    }

    /// Answers every call of `operation` with `fault` until
    /// [`clear`](Self::clear).
    pub fn fail_all(&self, operation: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .always
            .insert(operation.to_owned(), fault);
    }

    /// Drops every call unanswered (the service unreachable) until
    /// [`clear`](Self::clear).
    pub fn partition(&self) {
        self.state.lock().unwrap().down = true;
    }

    /// Ends [`fail_all`](Self::fail_all) and [`partition`](Self::partition).
    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        s.always.clear();
        s.down = false;
    }

    /// When each call of `operation` arrived.
    pub fn calls(&self, operation: &str) -> Vec<Instant> {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(operation)
            .cloned()
            .unwrap_or_default()
    }

    /// How many calls of `operation` got an injected fault.
    pub fn injected(&self, operation: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .injected
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Faults planned but not yet answered.
    pub fn pending_faults(&self, operation: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .planned
            .get(operation)
            .map_or(0, Vec::len)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One HTTP/1.1 request or response: the head and the body.
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<String> {
        String::from_utf8_lossy(&self.head)
            .lines()
            .skip(1)
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
    }
}

/// Reads one message (`Content-Length` bodies only, as the SDK and the
/// emulator send). `None` at end of stream.
fn read_message(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Message> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head: Vec<u8> = buf.drain(..head_end).collect();
    let mut msg = Message {
        head,
        body: Vec::new(),
    };
    let len: usize = msg
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    msg.body = buf.drain(..len).collect();
    Some(msg)
}

fn serve(mut client: TcpStream, upstream: u16, state: &Mutex<State>) {
    let mut buf = Vec::new();
    while let Some(req) = read_message(&mut client, &mut buf) {
        let operation = req
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next().map(str::to_owned))
            .unwrap_or_default();
        if state.lock().unwrap().down {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        let fault = {
            let mut s = state.lock().unwrap();
            let calls = s.calls.entry(operation.clone()).or_default();
            let index = calls.len();
            calls.push(Instant::now());
            let planned = s.planned.entry(operation.clone()).or_default();
            let fault = (!planned.is_empty())
                .then(|| planned.remove(0))
                .or_else(|| s.at.remove(&(operation.clone(), index)))
                .or_else(|| s.always.get(&operation).copied());
            if fault.is_some() {
                *s.injected.entry(operation.clone()).or_default() += 1;
            }
            fault
        };
        let response = match fault {
            Some(f) => {
                let body = format!(
                    "{{\"__type\":\"{}\",\"message\":\"{}\"}}",
                    f.code, f.message
                );
                let reason = match f.status {
                    400 => "Bad Request",
                    500 => "Internal Server Error",
                    503 => "Service Unavailable",
                    _ => "Error",
                };
                let head = format!(
                    "HTTP/1.1 {} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\n\r\n",
                    f.status,
                    body.len()
                );
                Message {
                    head: head.into_bytes(),
                    body: body.into_bytes(),
                }
            }
            None => match forward(&req, upstream) {
                Some(r) => r,
                None => {
                    // The emulator is gone: so is this connection.
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
            },
        };
        if client.write_all(&response.head).is_err() || client.write_all(&response.body).is_err() {
            return;
        }
    }
}

fn forward(req: &Message, upstream: u16) -> Option<Message> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    up.write_all(&req.head).ok()?;
    up.write_all(&req.body).ok()?;
    let mut buf = Vec::new();
    read_message(&mut up, &mut buf)
}
