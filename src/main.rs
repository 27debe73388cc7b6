//! `heartwire`: argv → command. Nothing else lives here (STYLE §6).
//!
//! Exit codes: 0 success, 1 runtime failure (a device, the daemon unreachable), 2 usage
//! or configuration error (nothing was changed).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use heartwire::cli::{Cli, Command, CtlArgs, DaemonArgs, NodeArgs, SnapshotCommand};
use heartwire::config;
use heartwire::ctl::request::{CommandReport, Request};
use heartwire::ctl::{client, status::StatusReport};
use heartwire::daemon;
use std::time::Duration;

/// The process exit status.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            foreground,
            node,
            socket,
            socket_group,
            verbose,
            pid_file,
            log_socket,
        } => run(
            &config,
            RunMode {
                foreground,
                pid_file,
                log_socket,
                socket_group,
            },
            node.as_deref(),
            socket,
            verbose,
        ),
        Command::Status {
            json,
            watch,
            events,
            daemon,
        } => match watch {
            None => status(json, events, &daemon),
            Some(every) => watch_status(json, every, events, &daemon),
        },
        Command::Events { json, daemon } => events(json, &daemon),
        Command::Web { args } => web(&args),
        Command::Snapshot(cmd) => snapshot(cmd),
        Command::Reload { daemon } => match socket_of(&daemon) {
            Ok(socket) => reload_daemon(&socket, false),
            Err(e) => e,
        },
        Command::Init(args) => match heartwire::ctl::init::init(&args) {
            Ok(lines) => {
                for l in lines {
                    println!("heartwire: {l}");
                }
                Exit::Ok
            }
            Err(e) => {
                eprintln!("heartwire: init: {e}");
                Exit::Usage
            }
        },
        Command::Verify {
            at,
            json,
            no_probe,
            local,
        } => {
            let opts = heartwire::ctl::verify::Options {
                node: at.node,
                probe: !no_probe,
                socket: at.socket,
                offered: false,
                members: !local,
            };
            let report = heartwire::ctl::verify::verify(&at.config, &opts);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("invariant: json serialises")
                );
            } else {
                print!("{}", report.render());
            }
            return ExitCode::from(report.exit_code());
        }
        Command::Move { group, node, ctl } => operator(&ctl, |timeout| Request::Move {
            group,
            node,
            timeout,
        }),
        Command::Online { groups, ctl } => {
            operator(&ctl, |timeout| Request::Online { groups, timeout })
        }
        Command::Offline { groups, ctl } => {
            operator(&ctl, |timeout| Request::Offline { groups, timeout })
        }
        Command::Cleanup { groups, ctl } => {
            operator(&ctl, |timeout| Request::Cleanup { groups, timeout })
        }
        Command::Maintenance { state, force, ctl } => {
            if force && state == "on" {
                eprintln!("heartwire: maintenance: --force goes with `off` only");
                return ExitCode::from(2);
            }
            operator(&ctl, |timeout| Request::Maintenance {
                on: state == "on",
                force,
                timeout,
            })
        }
        Command::Stop { takeover, ctl } => {
            operator(&ctl, |timeout| Request::Stop { takeover, timeout })
        }
        Command::Reservation(c) => return ExitCode::from(heartwire::ctl::storage::reservation(c)),
        Command::Filesystem(c) => return ExitCode::from(heartwire::ctl::storage::filesystem(c)),
        Command::Sync { at, json } => sync(at, json),
        Command::OfferCheck {
            file,
            target,
            node,
            socket,
        } => {
            let v = heartwire::ctl::offer::check(&file, &target, &node, socket.as_deref());
            println!(
                "{}",
                serde_json::to_string(&v).expect("invariant: json serialises")
            );
            Exit::Ok
        }
        Command::DiskServant {
            device,
            cluster,
            node,
            slots,
            nodes,
        } => {
            let args = daemon::disk::ServantArgs {
                device,
                cluster,
                node,
                slots,
                nodes,
            };
            return ExitCode::from(u8::try_from(daemon::disk::servant_main(&args)).unwrap_or(2));
        }
    }
    .into()
}

/// `heartwire sync`: verify here, then have the daemon offer its config to every member.
fn sync(at: NodeArgs, json: bool) -> Exit {
    use heartwire::ctl::verify::{Options, verify};
    let NodeArgs {
        config: file,
        node,
        socket,
    } = at;
    // The file is checked as an offer: not against the config the cluster runs, which
    // it is meant to replace (a mismatch is what sync fixes; refusing it here sent the
    // operator from verify's "fix: heartwire sync" back to verify).
    let opts = Options {
        node,
        probe: true,
        socket: socket.clone(),
        offered: true,
        members: false,
    };
    let local = verify(&file, &opts);
    if local.exit_code() == 2 {
        print!("{}", local.render());
        eprintln!("heartwire: sync refused: verify found errors here; nothing was sent");
        return Exit::Usage;
    }
    let abs = match std::fs::canonicalize(&file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("heartwire: {}: {e}", file.display());
            return Exit::Usage;
        }
    };
    let socket = socket.unwrap_or_else(|| {
        config::control_socket(&file)
            .unwrap_or_else(|_| PathBuf::from(config::CONTROL_SOCKET_DEFAULT))
    });
    let request = Request::Sync {
        file: abs.display().to_string(),
    };
    let answer =
        heartwire::ctl::client::request_waiting(&socket, &request.line(), request.timeout())
            .and_then(|a| {
                serde_json::from_str::<heartwire::ctl::offer::OfferReport>(&a)
                    .map(|r| (a, r))
                    .map_err(|e| format!("unreadable answer: {e}"))
            });
    match answer {
        Ok((raw, report)) => {
            if json {
                println!("{raw}");
            } else {
                print!("{}", report.render());
            }
            if report.result == "installed" {
                Exit::Ok
            } else {
                Exit::Usage
            }
        }
        Err(e) => {
            eprintln!("heartwire: sync: {e}");
            Exit::Usage
        }
    }
}

/// How `run` starts: attached or detached, with which pid file and syslog socket.
struct RunMode {
    foreground: bool,
    pid_file: Option<PathBuf>,
    /// `--log-socket`: syslog there; by default the journal when journald runs, else
    /// /dev/log.
    log_socket: Option<PathBuf>,
    /// `--socket-group`: overrides the config's `control_socket_group`.
    socket_group: Option<String>,
}

/// Where a detached daemon keeps its pid file unless told otherwise.
const PID_FILE_DEFAULT: &str = "/run/heartwire/heartwire.pid";

fn run(
    file: &std::path::Path,
    mode: RunMode,
    node: Option<&str>,
    socket: Option<PathBuf>,
    verbose: u8,
) -> Exit {
    let mut cfg = match config::load(file, node) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("heartwire: config refused: {e}");
            return Exit::Usage;
        }
    };
    if let Some(group) = mode.socket_group.clone() {
        cfg.control_socket_group = Some(group);
    }
    let local_name = cfg
        .spec
        .nodes
        .iter()
        .find(|n| n.id == cfg.local)
        .map_or("?", |n| n.name.as_str())
        .to_owned();
    // The same verdict as verify's: a UDP address this node binds must be on this host
    // (a wrong --node used to end in `bind UDP … Cannot assign requested address`).
    let here: Vec<std::net::IpAddr> = heartwire_hal::inventory::addresses()
        .map(|a| a.into_iter().map(|a| a.addr).collect())
        .unwrap_or_default();
    for (i, io) in cfg.io.iter().enumerate() {
        if let config::PathIo::Udp { bind, .. } = io {
            if !bind.ip().is_unspecified() && !here.contains(&bind.ip()) {
                let mut have: Vec<String> = here.iter().map(ToString::to_string).collect();
                have.sort();
                eprintln!(
                    "heartwire: node {local_name} (chosen: {}) has UDP address {} on path `{}` \
                     in {}, which is not on this host (it has {}): is this the right node? \
                     Give --node NAME or HEARTWIRE_NODE=NAME",
                    cfg.chosen,
                    bind.ip(),
                    cfg.spec.paths[i].name,
                    file.display(),
                    have.join(", ")
                );
                return Exit::Failure;
            }
        }
    }
    // What verify calls an error about this host's addresses, run refuses too.
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let errors = heartwire::ctl::verify::check_start(file, &text, &cfg);
    for f in &errors {
        eprintln!("heartwire: {}: {} (fix: {})", f.at, f.what, f.fix);
    }
    if !errors.is_empty() {
        eprintln!("heartwire: not started: `heartwire verify` reports the same");
        return Exit::Failure;
    }
    let level = daemon::log::level(verbose);
    let pid_path = match (&mode.pid_file, mode.foreground) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(PathBuf::from(PID_FILE_DEFAULT)),
        (None, true) => None,
    };
    // Taken before detaching, so a second instance is refused on the terminal.
    let mut pid_file = match pid_path.map(|p| heartwire_hal::process::PidFile::lock(&p)) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            eprintln!("heartwire: {e}");
            return Exit::Failure;
        }
        None => None,
    };
    let mut ready_pipe = None;
    if mode.foreground {
        daemon::log::init(&local_name, level);
    } else {
        let journal = mode
            .log_socket
            .is_none()
            .then(|| {
                daemon::log::datagram_socket(std::path::Path::new(daemon::log::JOURNAL_SOCKET)).ok()
            })
            .flatten();
        let syslog_path = mode
            .log_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/log"));
        let journal_sink = journal.is_some();
        let sink = match journal {
            Some(sock) => Ok(sock),
            None => daemon::log::datagram_socket(&syslog_path).map_err(|e| {
                eprintln!(
                    "heartwire: no syslog at {} ({e}): start a syslog daemon, pass --log-socket, \
                     or run with --foreground and keep stderr",
                    syslog_path.display()
                );
            }),
        };
        let Ok(sock) = sink else {
            return Exit::Failure;
        };
        match heartwire_hal::process::detach() {
            Ok(heartwire_hal::process::Detached::Parent(pipe)) => {
                // The daemon owns the pid file now; this process must not remove it.
                std::mem::forget(pid_file.take());
                return wait_ready(pipe);
            }
            Ok(heartwire_hal::process::Detached::Daemon(pipe)) => ready_pipe = Some(pipe),
            Err(e) => {
                eprintln!("heartwire: detaching failed: {e}");
                return Exit::Failure;
            }
        }
        if mode.log_socket.is_none() && journal_sink {
            daemon::log::init_journal(&local_name, level, sock);
        } else {
            daemon::log::init_syslog(&local_name, level, sock);
        }
    }
    if let Some(p) = pid_file.as_mut() {
        if let Err(e) = p.write_pid() {
            log::error!("pid file {}: {e}", p.path().display());
            return Exit::Failure;
        }
    }
    let socket = socket.unwrap_or_else(|| cfg.control_socket.clone());
    let code = if cfg.sentinel.enabled {
        let s = socket.clone();
        daemon::sentinel::run(&cfg, &socket, ready_pipe, &mut |pipe, shared, c| {
            daemon_body(c.clone(), s.clone(), pipe, Some(shared))
        })
    } else {
        daemon_body(cfg, socket, ready_pipe, None)
    };
    drop(pid_file);
    match code {
        0 => Exit::Ok,
        2 => Exit::Usage,
        _ => Exit::Failure,
    }
}

/// The daemon proper: runs until it stops; returns its exit status. `ready_pipe` hears
/// "ready PID" (the service's main process: the sentinel, when there is one) or the
/// error that ended the start.
fn daemon_body(
    cfg: config::Config,
    socket: PathBuf,
    mut ready_pipe: Option<std::fs::File>,
    sentinel: Option<heartwire_hal::sentinel::SharedPage>,
) -> i32 {
    let main = if sentinel.is_some() {
        heartwire_hal::process::parent()
    } else {
        std::process::id()
    };
    let mut ready = || {
        if let Some(mut p) = ready_pipe.take() {
            use std::io::Write;
            let _ = writeln!(p, "ready {main}");
        }
    };
    let result = daemon::run(cfg, socket, &mut ready, sentinel);
    match result {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            if let Some(mut p) = ready_pipe.take() {
                use std::io::Write;
                let _ = writeln!(p, "{e}");
            }
            1
        }
    }
}

/// The operator's side of a detached start: waits for the daemon's first word.
fn wait_ready(mut pipe: std::fs::File) -> Exit {
    use std::io::Read;
    let mut word = String::new();
    let _ = pipe.read_to_string(&mut word);
    let word = word.trim();
    if let Some(pid) = word.strip_prefix("ready ") {
        println!("heartwire: started, pid {pid}");
        Exit::Ok
    } else if word.is_empty() {
        eprintln!("heartwire: the daemon exited before it was ready (see syslog)");
        Exit::Failure
    } else {
        eprintln!("heartwire: {word}");
        Exit::Failure
    }
}

/// The control socket: `--socket`, else the config's, else the default.
fn socket_of(d: &DaemonArgs) -> Result<PathBuf, Exit> {
    match (&d.socket, &d.config) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(c)) => config::control_socket(c).map_err(|e| {
            eprintln!("heartwire: config refused: {e}");
            Exit::Usage
        }),
        (None, None) => Ok(PathBuf::from(config::CONTROL_SOCKET_DEFAULT)),
    }
}

/// Sends an operator command and waits for its answer. Exit 0 when it was carried out,
/// 1 when it was refused or not carried out within the timeout.
fn operator(ctl: &CtlArgs, make: impl FnOnce(Duration) -> Request) -> Exit {
    let socket = match socket_of(&ctl.daemon) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let max = heartwire::ctl::request::COMMAND_TIMEOUT_MAX.as_secs_f64();
    if !(ctl.timeout > 0.0 && ctl.timeout <= max) {
        eprintln!(
            "heartwire: --timeout {} is out of range (0 < seconds <= {max})",
            ctl.timeout
        );
        return Exit::Usage;
    }
    let timeout = Duration::from_secs_f64(ctl.timeout).max(Duration::from_millis(1));
    let req = make(timeout);
    let answer = match client::request_waiting(&socket, &req.line(), timeout) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("heartwire: {e}");
            return Exit::Failure;
        }
    };
    let report = match serde_json::from_str::<CommandReport>(&answer) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heartwire: the daemon's answer is not a command report: {e}");
            return Exit::Failure;
        }
    };
    if ctl.json {
        println!("{answer}");
    } else {
        print!("{}", report.render());
    }
    if matches!(report.result.as_str(), "done" | "stopped") {
        Exit::Ok
    } else {
        Exit::Failure
    }
}

/// One status report: the JSON document as the daemon sent it, or the table.
fn status_text(socket: &std::path::Path, json: bool, events: usize) -> Result<String, String> {
    let answer = client::request(socket, "status")?;
    if json {
        return Ok(format!("{}\n", answer.trim_end()));
    }
    serde_json::from_str::<StatusReport>(&answer)
        .map(|r| r.render(events))
        .map_err(|e| format!("the daemon's answer is not a status report: {e}"))
}

fn status(json: bool, events: usize, daemon: &DaemonArgs) -> Exit {
    let socket = match socket_of(daemon) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match status_text(&socket, json, events) {
        Ok(text) => {
            print!("{text}");
            Exit::Ok
        }
        Err(e) => {
            eprintln!("heartwire: {e}");
            Exit::Failure
        }
    }
}

/// `status --watch`: the report every `every` seconds until interrupted. A daemon that
/// does not answer is said on the screen (or on stderr with --json), and asked again.
fn watch_status(json: bool, every: f64, events: usize, daemon: &DaemonArgs) -> Exit {
    if !(every.is_finite() && (0.1..=3600.0).contains(&every)) {
        eprintln!("heartwire: --watch {every} is out of range (0.1 to 3600 seconds)");
        return Exit::Usage;
    }
    let socket = match socket_of(daemon) {
        Ok(s) => s,
        Err(e) => return e,
    };
    loop {
        let now = heartwire::ctl::events::rfc3339_us(heartwire_hal::clock::realtime_ns());
        match (status_text(&socket, json, events), json) {
            // One document per line (the daemon's is indented).
            (Ok(text), true) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => println!("{v}"),
                Err(e) => eprintln!("heartwire: {now}: the daemon's answer is not JSON: {e}"),
            },
            (Err(e), true) => eprintln!("heartwire: {now}: {e}"),
            // Home, clear, then the report: redrawn in place, as crm_mon does.
            (Ok(text), false) => {
                print!("\x1b[H\x1b[2J{now}  every {every} s (Ctrl-C to stop)\n\n{text}")
            }
            (Err(e), false) => {
                print!("\x1b[H\x1b[2J{now}  every {every} s (Ctrl-C to stop)\n\nheartwire: {e}\n")
            }
        }
        if std::io::Write::flush(&mut std::io::stdout()).is_err() {
            // The reader went away (a closed pipe).
            return Exit::Ok;
        }
        std::thread::sleep(Duration::from_secs_f64(every));
    }
}

fn snapshot(cmd: SnapshotCommand) -> Exit {
    use heartwire::ctl::snapshot::{self, Snapshot};
    use heartwire::ctl::verify::Options;
    let read = |p: &std::path::Path| -> Result<Snapshot, String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Snapshot::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
    };
    match cmd {
        SnapshotCommand::Save { file, at } => {
            let opts = Options {
                node: at.node,
                probe: false,
                socket: at.socket,
                offered: false,
                members: false,
            };
            let snap = match snapshot::save(&at.config, &opts) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("heartwire: snapshot: {e}");
                    return Exit::Usage;
                }
            };
            let text = snap.render();
            match file {
                None => {
                    print!("{text}");
                    Exit::Ok
                }
                Some(f) => match config::install_atomically(&f, text.as_bytes(), 0o644) {
                    Ok(()) => {
                        println!("heartwire: snapshot written to {}", f.display());
                        Exit::Ok
                    }
                    Err(e) => {
                        eprintln!("heartwire: {}: {e}", f.display());
                        Exit::Failure
                    }
                },
            }
        }
        SnapshotCommand::Diff { a, b } => match (read(&a), read(&b)) {
            (Ok(sa), Ok(sb)) => {
                let d =
                    snapshot::diff(&sa, &sb, &a.display().to_string(), &b.display().to_string());
                print!("{}", d.text);
                if d.differs { Exit::Failure } else { Exit::Ok }
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("heartwire: {e}");
                Exit::Usage
            }
        },
        SnapshotCommand::Apply { file, at, no_probe } => {
            let NodeArgs {
                config: target,
                node,
                socket,
            } = at;
            let snap = match read(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("heartwire: {e}");
                    return Exit::Usage;
                }
            };
            let opts = Options {
                node,
                probe: !no_probe,
                socket: socket.clone(),
                offered: false,
                members: false,
            };
            let report = snapshot::check_apply(&snap, &target, &opts);
            print!("{}", report.render());
            if report.exit_code() == 2 {
                eprintln!(
                    "heartwire: snapshot apply refused: verify found errors; nothing was installed"
                );
                return Exit::Usage;
            }
            if let Err(e) = config::install_atomically(&target, snap.config.as_bytes(), 0o644) {
                eprintln!("heartwire: installing {}: {e}", target.display());
                return Exit::Failure;
            }
            println!("heartwire: installed {}", target.display());
            let socket = socket.unwrap_or_else(|| {
                config::control_socket(&target)
                    .unwrap_or_else(|_| PathBuf::from(config::CONTROL_SOCKET_DEFAULT))
            });
            reload_daemon(&socket, true)
        }
    }
}

/// Asks the daemon at `socket` to reload its config. With `missing_ok`, no daemon is not
/// an error (the config takes effect at its next start).
fn reload_daemon(socket: &std::path::Path, missing_ok: bool) -> Exit {
    if missing_ok && std::os::unix::net::UnixStream::connect(socket).is_err() {
        println!(
            "heartwire: no daemon at {}: the config takes effect when it starts",
            socket.display()
        );
        return Exit::Ok;
    }
    match client::request(socket, "reload") {
        Ok(answer) => {
            let detail = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or(answer);
            println!("heartwire: reloaded: {detail}");
            Exit::Ok
        }
        Err(e) => {
            eprintln!("heartwire: the daemon did not reload: {e}");
            Exit::Failure
        }
    }
}

/// Runs `heartwire-web` (the binary next to this one, else from PATH) in this process.
fn web(args: &[std::ffi::OsString]) -> Exit {
    use std::os::unix::process::CommandExt as _;
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("heartwire-web"))
        .filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("heartwire-web"));
    let e = std::process::Command::new(&program).args(args).exec();
    eprintln!(
        "heartwire: cannot run {}: {e} (install heartwire-web next to heartwire)",
        program.display()
    );
    Exit::Failure
}

fn events(json: bool, daemon: &DaemonArgs) -> Exit {
    use heartwire::ctl::events::{EventRecord, StreamHello};
    let socket = match socket_of(daemon) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut ended = false;
    let mut bad = None;
    let result = client::follow(&socket, "events", &mut |line| {
        if let Ok(h) = serde_json::from_str::<StreamHello>(line) {
            match h.end {
                None => eprintln!(
                    "heartwire: following the events of node {} (cluster {})",
                    h.node, h.cluster
                ),
                Some(why) => {
                    eprintln!("heartwire: the daemon on {} {why}: end of stream", h.node);
                    ended = true;
                }
            }
            return !ended;
        }
        match serde_json::from_str::<EventRecord>(line) {
            Ok(_) if json => println!("{line}"),
            Ok(r) => println!("{}", r.render()),
            Err(e) => {
                bad = Some(format!(
                    "the daemon sent something that is not an event: {e}"
                ));
                return false;
            }
        }
        true
    });
    match (result, bad) {
        (Err(e), _) | (Ok(()), Some(e)) => {
            eprintln!("heartwire: {e}");
            Exit::Failure
        }
        (Ok(()), None) if ended => Exit::Ok,
        (Ok(()), None) => {
            eprintln!("heartwire: the daemon closed the stream without ending it (it died?)");
            Exit::Failure
        }
    }
}
