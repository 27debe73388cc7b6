//! The `heartwire-web` process: an HTTP listener, a thread per connection (at most
//! [`CONNECTIONS_MAX`]), and one thread that follows the node's event stream, keeps the
//! counters of [`EventStats`] and passes each event on to the pages that follow it.
//! Every page and scrape asks the daemon for one status report over the control socket;
//! the daemon's loop serves it as it serves `heartwire status`.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::http::{self, Request};
use super::stats::EventStats;
use super::{metrics, page};
use crate::ctl::client;
use crate::ctl::events::{EventRecord, StreamHello};
use crate::ctl::request::Request as Ctl;
use crate::ctl::status::StatusReport;

/// Connections served at once; more are answered 503.
pub const CONNECTIONS_MAX: usize = 64;
/// Events queued for one page before it is dropped as too slow.
const PAGE_BACKLOG: usize = 256;
/// A comment on an idle event stream this often keeps proxies from closing it.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long a move from the page may take.
const MOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pages and scrapes within this long of each other share one status report: however many
/// clients ask, the daemon serves at most a few a second, one at a time.
const STATUS_FRESH: Duration = Duration::from_millis(250);
/// Event streams open at once (each holds a connection).
const STREAMS_MAX: usize = 16;

/// How the web process runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The daemon's control socket.
    pub socket: PathBuf,
    /// The token a `move` must carry; `None`: read-only.
    pub token: Option<String>,
}

/// State shared by the connection threads and the event follower.
#[derive(Debug)]
struct Shared {
    options: Options,
    stats: Mutex<EventStats>,
    /// The event streams open now: an id each, to be removed when it closes.
    pages: Mutex<Vec<(u64, SyncSender<String>)>>,
    next_page: AtomicUsize,
    connections: AtomicUsize,
    /// The last status answer (the daemon's JSON, or `None`: it did not answer), when it
    /// was asked for and the count of events seen then; held while one is asked for, so
    /// requests wait for it.
    status: Mutex<Option<(std::time::Instant, u64, Option<String>)>>,
    /// Events seen by the follower: a status answer asked before the last one is stale.
    /// (A counter, not the lock: the follower must not wait while a page asks the daemon.)
    events_seen: AtomicU64,
}

/// Serves on `listener` until the process is killed.
pub fn run(listener: TcpListener, options: Options) -> Result<(), String> {
    let shared = Arc::new(Shared {
        options,
        stats: Mutex::new(EventStats::default()),
        pages: Mutex::new(Vec::new()),
        next_page: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
        status: Mutex::new(None),
        events_seen: AtomicU64::new(0),
    });
    let follower = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || follow(&follower))
        .map_err(|e| format!("cannot start the event follower: {e}"))?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= CONNECTIONS_MAX {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = http::respond(&mut stream, 503, "text/plain", b"too many connections\n");
            continue;
        }
        let conn = Arc::clone(&shared);
        let spawned = std::thread::Builder::new().spawn(move || {
            let _ = stream.set_read_timeout(Some(http::READ_STEP));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
            serve_one(&conn, &mut stream);
            conn.connections.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Follows the node's events for as long as the process runs, reconnecting after the
/// daemon restarts.
fn follow(shared: &Shared) {
    let mut complained = false;
    loop {
        let result = client::follow(&shared.options.socket, "events", &mut |line| {
            if serde_json::from_str::<StreamHello>(line).is_ok() {
                return true;
            }
            if let Ok(record) = serde_json::from_str::<EventRecord>(line) {
                lock(&shared.stats).record(&record);
                // Something changed: the next page or scrape asks the daemon afresh.
                shared.events_seen.fetch_add(1, Ordering::SeqCst);
                lock(&shared.pages).retain(|(_, page)| match page.try_send(line.to_owned()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                });
            }
            true
        });
        match result {
            Err(e) if !complained => {
                eprintln!("heartwire-web: following events: {e} (retrying every second)");
                complained = true;
            }
            Ok(()) => complained = false,
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The daemon's status answer (JSON), at most [`STATUS_FRESH`] old; `None` when it does
/// not answer.
fn status_json(shared: &Shared) -> Option<String> {
    let mut cached = lock(&shared.status);
    let seen = shared.events_seen.load(Ordering::SeqCst);
    match &*cached {
        Some((at, then, answer)) if at.elapsed() < STATUS_FRESH && *then == seen => answer.clone(),
        _ => {
            let answer = client::request(&shared.options.socket, "status").ok();
            *cached = Some((std::time::Instant::now(), seen, answer.clone()));
            answer
        }
    }
}

/// The node's status, `None` when its daemon does not answer.
fn status(shared: &Shared) -> Option<StatusReport> {
    serde_json::from_str(&status_json(shared)?).ok()
}

/// Whether the request's `Host` is this server as the operator reaches it: on a loopback
/// listener only a loopback name, so a web page whose name was rebound to 127.0.0.1 (DNS
/// rebinding) cannot read the cluster through the operator's browser.
fn host_allowed(shared: &Shared, req: &Request) -> bool {
    if !shared.options.listen.ip().is_loopback() {
        return true;
    }
    let Some(host) = req.header("host") else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port == shared.options.listen.port().to_string() => name,
        _ => return false,
    };
    matches!(name, "localhost" | "[::1]")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

fn serve_one(shared: &Shared, stream: &mut TcpStream) {
    let req = match http::read_request(stream) {
        Ok(r) => r,
        Err(e) => {
            let _ = http::respond(
                stream,
                e.status,
                "text/plain",
                format!("{}\n", e.why).as_bytes(),
            );
            return;
        }
    };
    if !host_allowed(shared, &req) {
        let _ = http::respond(
            stream,
            403,
            "text/plain",
            b"this server answers to its own address only (Host)\n",
        );
        return;
    }
    let html = "text/html; charset=utf-8";
    let actions = shared.options.token.is_some();
    let _ = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/metrics") => {
            let s = status(shared);
            let body = metrics::render(s.as_ref(), &lock(&shared.stats));
            http::respond(stream, 200, metrics::CONTENT_TYPE, body.as_bytes())
        }
        ("GET", "/") => {
            let s = status(shared);
            let socket = shared.options.socket.display().to_string();
            let body = page::page(s.as_ref().ok_or(&*socket), &lock(&shared.stats), actions);
            http::respond(stream, 200, html, body.as_bytes())
        }
        ("GET", "/view") => {
            let socket = shared.options.socket.display().to_string();
            let body = page::view(status(shared).as_ref().ok_or(&*socket), actions);
            http::respond(stream, 200, html, body.as_bytes())
        }
        ("GET", "/status.json") => match status_json(shared) {
            Some(answer) => http::respond(stream, 200, "application/json", answer.as_bytes()),
            None => http::respond(stream, 502, "text/plain", b"the daemon does not answer\n"),
        },
        ("GET", "/style.css") => http::respond(stream, 200, "text/css", page::STYLE.as_bytes()),
        ("GET", "/app.js") => {
            http::respond(stream, 200, "text/javascript", page::SCRIPT.as_bytes())
        }
        ("GET", "/events") => {
            events(shared, stream);
            Ok(())
        }
        ("POST", "/move") => {
            let (code, body) = move_group(shared, &req);
            http::respond(
                stream,
                code,
                "text/plain; charset=utf-8",
                format!("{body}\n").as_bytes(),
            )
        }
        (_, "/" | "/metrics" | "/view" | "/status.json" | "/events" | "/move") => {
            http::respond(stream, 405, "text/plain", b"method not allowed\n")
        }
        _ => http::respond(stream, 404, "text/plain", b"not found\n"),
    };
}

/// A server-sent event stream of the node's events, one JSON record each.
fn events(shared: &Shared, stream: &mut TcpStream) {
    let (tx, rx): (SyncSender<String>, Receiver<String>) = mpsc::sync_channel(PAGE_BACKLOG);
    let id = shared.next_page.fetch_add(1, Ordering::SeqCst) as u64;
    {
        let mut pages = lock(&shared.pages);
        if pages.len() >= STREAMS_MAX {
            drop(pages);
            let _ = http::respond(stream, 503, "text/plain", b"too many event streams\n");
            return;
        }
        pages.push((id, tx));
    }
    // Gone from the list when this stream ends, however it ends.
    struct Leave<'s>(&'s Shared, u64);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            lock(&self.0.pages).retain(|(id, _)| *id != self.1);
        }
    }
    let _leave = Leave(shared, id);
    if http::event_stream_head(stream).is_err() {
        return;
    }
    loop {
        let chunk = match rx.recv_timeout(KEEPALIVE) {
            Ok(line) => format!("data: {line}\n\n"),
            Err(mpsc::RecvTimeoutError::Timeout) => ": keepalive\n\n".to_owned(),
            // Dropped by the follower: this page read too slowly.
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if stream
            .write_all(chunk.as_bytes())
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

/// `POST /move` (form `group=...&node=...`): allowed only with actions on and the token.
fn move_group(shared: &Shared, req: &Request) -> (u16, String) {
    let Some(token) = &shared.options.token else {
        return (
            403,
            "actions are off: start heartwire-web with --actions".into(),
        );
    };
    let given = req.header("x-heartwire-token").unwrap_or("");
    if !http::same_secret(given, token) {
        eprintln!("heartwire-web: refused a move: missing or wrong token");
        return (403, "missing or wrong token (X-Heartwire-Token)".into());
    }
    // A page of another site cannot send the token header without a CORS preflight this
    // server never answers; an Origin that is not this server's is refused as well.
    if let (Some(origin), Some(host)) = (req.header("origin"), req.header("host")) {
        if origin.split_once("://").map(|(_, h)| h) != Some(host) {
            return (403, format!("origin {origin} is not this server ({host})"));
        }
    }
    let form = String::from_utf8_lossy(&req.body);
    let (Some(group), Some(node)) = (
        http::form_value(&form, "group"),
        http::form_value(&form, "node"),
    ) else {
        return (400, "the form needs group and node".into());
    };
    let ctl = Ctl::Move {
        group,
        node,
        timeout: MOVE_TIMEOUT,
    };
    if let Err(e) = Ctl::parse(&ctl.line()) {
        return (400, e);
    }
    match client::request_waiting(&shared.options.socket, &ctl.line(), MOVE_TIMEOUT) {
        Ok(answer) => match serde_json::from_str::<crate::ctl::request::CommandReport>(&answer) {
            Ok(r) if r.result == "done" => (200, r.render().trim_end().to_owned()),
            Ok(r) => (409, r.render().trim_end().to_owned()),
            Err(e) => (
                502,
                format!("the daemon's answer is not a command report: {e}"),
            ),
        },
        Err(e) => (502, e),
    }
}
