//! The CLI side: one request, one response.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long the CLI waits for the daemon.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `request` to the daemon at `socket` and returns its JSON answer.
pub fn request(socket: &Path, request: &str) -> Result<String, String> {
    request_waiting(socket, request, Duration::ZERO)
}

/// Why this user may not use the control socket, and how an administrator lets a group
/// read it.
fn permission_hint(socket: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let root_only = "the control socket is root's (mode 0600, and the daemon answers only \
                     root and its own user): run this as root (sudo); to let a group read \
                     status and events, run the daemon with `--socket-group GROUP` (or \
                     `control_socket_group = \"GROUP\"` in [cluster]) and join that group";
    match std::fs::metadata(socket) {
        Ok(m) if m.mode() & 0o060 == 0o060 => {
            let group = heartwire_hal::cred::group_name(m.gid())
                .ok()
                .flatten()
                .unwrap_or_else(|| m.gid().to_string());
            format!(
                "the control socket is mode {:04o}, group `{group}`: status and events need \
                 root or membership of group `{group}` (log in again after joining it)",
                m.mode() & 0o777
            )
        }
        _ => root_only.to_owned(),
    }
}

/// Why the daemon's control socket could not be reached, with what to do about it.
fn unreachable(socket: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot reach the daemon at {}: {e}: {}",
            socket.display(),
            permission_hint(socket)
        ),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "cannot reach the daemon at {}: {e}: is `heartwire run` up on this node? (another \
             socket: --socket, or control_socket in the config)",
            socket.display()
        ),
        _ => format!("cannot reach the daemon at {}: {e}", socket.display()),
    }
}

/// Like [`request`] for a command the daemon answers only when it is done: waits `wait`
/// longer than the usual timeout.
pub fn request_waiting(socket: &Path, request: &str, wait: Duration) -> Result<String, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| unreachable(socket, &e))?;
    s.set_read_timeout(Some(TIMEOUT + wait))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("sending request: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("reading answer: {e}"))?;
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&out) {
        if let Some(serde_json::Value::String(e)) = m.get("error") {
            return Err(format!("daemon refused `{request}`: {e}"));
        }
    }
    Ok(out)
}

/// Sends `request` and hands every line of the answer to `line` until the daemon closes
/// the connection or `line` returns false. No read timeout: a stream may be quiet for
/// hours.
pub fn follow(
    socket: &Path,
    request: &str,
    line: &mut dyn FnMut(&str) -> bool,
) -> Result<(), String> {
    use std::io::BufRead;
    let mut s = UnixStream::connect(socket).map_err(|e| unreachable(socket, &e))?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("sending request: {e}"))?;
    for l in std::io::BufReader::new(s).lines() {
        let l = l.map_err(|e| format!("reading the stream: {e}"))?;
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&l) {
            if let Some(serde_json::Value::String(e)) = m.get("error") {
                return Err(format!("daemon refused `{request}`: {e}"));
            }
        }
        if !line(&l) {
            break;
        }
    }
    Ok(())
}
