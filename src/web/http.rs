//! Just enough HTTP/1.1 for `heartwire-web`: one request per connection (`Connection:
//! close`), `GET` and `POST` with a `Content-Length` body, bounded sizes. Written here
//! rather than taken from a server library: three routes and a stream need no more, and
//! the libraries bring a thread pool and keep-alive handling this does not use.

use std::io::{self, Read, Write};

/// Longest request head (request line and headers) accepted.
pub const HEAD_MAX: usize = 8192;
/// Longest request body accepted (a move's form).
pub const BODY_MAX: usize = 4096;
/// Longest one read may wait (the socket's read timeout).
pub const READ_STEP: std::time::Duration = std::time::Duration::from_secs(2);
/// Longest a whole request may take to arrive: a client that trickles it in byte by byte
/// does not hold a connection slot for longer.
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string (after `?`), possibly empty.
    pub query: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request was not read: answered with the status given.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRequest {
    /// HTTP status to answer with.
    pub status: u16,
    /// What was wrong.
    pub why: String,
}

fn bad(status: u16, why: &str) -> BadRequest {
    BadRequest {
        status,
        why: why.to_owned(),
    }
}

/// Reads one request from `r`.
pub fn read_request(r: &mut impl Read) -> Result<Request, BadRequest> {
    let started = std::time::Instant::now();
    let late = || started.elapsed() > REQUEST_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        match find(&buf, b"\r\n\r\n") {
            Some(i) if i <= HEAD_MAX => break i,
            Some(_) => return Err(bad(431, "request head too long")),
            None => {}
        }
        if buf.len() > HEAD_MAX {
            return Err(bad(431, "request head too long"));
        }
        if late() {
            return Err(bad(408, "the request took too long to arrive"));
        }
        match r.read(&mut chunk) {
            Ok(0) => return Err(bad(400, "connection closed before the request ended")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad(408, &format!("reading the request: {e}"))),
        }
    };
    let head =
        std::str::from_utf8(&buf[..head_end]).map_err(|_| bad(400, "request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(bad(400, "malformed request line"));
    }
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Err(bad(400, "malformed header line"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: buf[head_end + 4..].to_vec(),
    };
    let length = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(400, "bad Content-Length"))?,
    };
    if req.header("transfer-encoding").is_some() {
        return Err(bad(
            411,
            "chunked bodies are not accepted; send Content-Length",
        ));
    }
    if length > BODY_MAX {
        return Err(bad(413, "request body too long"));
    }
    while req.body.len() < length {
        if late() {
            return Err(bad(408, "the request took too long to arrive"));
        }
        match r.read(&mut chunk) {
            Ok(0) => return Err(bad(400, "connection closed before the body ended")),
            Ok(n) => req.body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad(408, &format!("reading the body: {e}"))),
        }
    }
    req.body.truncate(length);
    Ok(req)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The reason phrase of the statuses this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes a whole response and closes the exchange (`Connection: close`).
pub fn respond(w: &mut impl Write, status: u16, content_type: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'self'\r\n\
         Connection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// The head of a server-sent event stream.
pub fn event_stream_head(w: &mut impl Write) -> io::Result<()> {
    w.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          Connection: close\r\n\r\n",
    )?;
    w.flush()
}

/// The value of `key` in a form (`a=1&b=2`, percent-encoded), if present and valid.
pub fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (decode(k)? == key).then(|| decode(v)).flatten()
    })
}

/// Percent-decoding (`+` is a space); `None` for a bad escape or invalid UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> Result<Request, BadRequest> {
        read_request(&mut raw.as_bytes())
    }

    #[test]
    fn requests_are_read_and_bad_ones_refused_with_their_status() {
        let r = read("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("GET", "/metrics", "x=1")
        );
        assert_eq!(r.header("host"), Some("a"));
        let r = read("POST /move HTTP/1.1\r\nContent-Length: 14\r\n\r\ngroup=db&node=b").unwrap();
        assert_eq!(r.body, b"group=db&node=");
        assert_eq!(
            form_value("group=db%2Fx&node=b+c", "group").as_deref(),
            Some("db/x")
        );
        assert_eq!(
            form_value("group=db&node=b+c", "node").as_deref(),
            Some("b c")
        );
        assert_eq!(form_value("group=%zz", "group"), None);
        assert_eq!(read("GET /\r\n\r\n").unwrap_err().status, 400);
        assert_eq!(
            read("GET / HTTP/1.1\r\nbroken\r\n\r\n").unwrap_err().status,
            400
        );
        assert_eq!(read("GET / HTTP/1.1\r\n").unwrap_err().status, 400);
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(HEAD_MAX));
        assert_eq!(read(&long).unwrap_err().status, 431);
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            BODY_MAX + 1
        );
        assert_eq!(read(&big).unwrap_err().status, 413);
        assert_eq!(
            read("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(read(chunked).unwrap_err().status, 411);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
