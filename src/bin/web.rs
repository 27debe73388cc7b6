//! `heartwire-web`: metrics and a live page for one node (see `heartwire::web`). Its own
//! binary, so the daemon's stays small and has no HTTP code; `heartwire web` runs it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use heartwire::web::server::{self, Options};

/// heartwire-web: Prometheus metrics and a live page of the cluster, from one node's
/// control socket.
///
/// Serves `/metrics` (Prometheus text format), `/` (the cluster: nodes, groups and their
/// resources, paths, the last events; live), `/status.json` and `/events` (server-sent
/// events). Read-only unless `--actions`: then a group dragged onto another node on the
/// page is moved there, if the request carries the token of `--token-file`.
#[derive(Debug, Parser)]
#[command(name = "heartwire-web", version = heartwire::cli::VERSION_LINE)]
struct Args {
    /// Address and port to listen on (another host can reach it only if you say so).
    #[arg(long, default_value = "127.0.0.1:9797")]
    listen: SocketAddr,
    /// Control socket of the daemon (default: the config's `control_socket`).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Config file, to find the control socket.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Let the page move groups (drag and drop), with the token of --token-file.
    #[arg(long)]
    actions: bool,
    /// The token a move must carry (mode 0600; written with a new random token if it
    /// does not exist). Open the page as http://ADDRESS/#token=TOKEN.
    #[arg(long, default_value = "/etc/heartwire/web.token")]
    token_file: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let socket = match (&args.socket, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => match heartwire::config::control_socket(c) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("heartwire-web: config refused: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => PathBuf::from(heartwire::config::CONTROL_SOCKET_DEFAULT),
    };
    let token = if args.actions {
        match token(&args.token_file) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("heartwire-web: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    // Bound first: "serving" is said only once it is true.
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("heartwire-web: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "heartwire-web: serving http://{} for the daemon at {} ({})",
        args.listen,
        socket.display(),
        if token.is_some() {
            format!(
                "actions on: moves need the token in {}",
                args.token_file.display()
            )
        } else {
            "read-only".to_owned()
        }
    );
    let options = Options {
        listen: args.listen,
        socket,
        token,
    };
    match server::run(listener, options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heartwire-web: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The token in `file` (it must be private: mode 0600 or stricter), or a new one written
/// there.
fn token(file: &Path) -> Result<String, String> {
    match std::fs::metadata(file) {
        Ok(m) => {
            if m.mode() & 0o077 != 0 {
                return Err(format!(
                    "token file {} is mode {:04o}: others could read it (chmod 600 it)",
                    file.display(),
                    m.mode() & 0o777
                ));
            }
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("token file {}: {e}", file.display()))?;
            let t = text.trim();
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "token file {}: the token must be at least 16 printable characters",
                    file.display()
                ));
            }
            Ok(t.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut raw = [0u8; 24];
            heartwire_hal::random::fill(&mut raw).map_err(|e| format!("randomness: {e}"))?;
            let t: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file)
                .map_err(|e| format!("writing token file {}: {e}", file.display()))?;
            writeln!(f, "{t}")
                .map_err(|e| format!("writing token file {}: {e}", file.display()))?;
            eprintln!("heartwire-web: wrote a new token to {}", file.display());
            Ok(t)
        }
        Err(e) => Err(format!("token file {}: {e}", file.display())),
    }
}
