//! `heartwire-lab`: the netns lab's tools (raw frame capture and injection, CLOCK_MONOTONIC,
//! a SIGKILL or links taken down stamped right before the syscall, a UDP service and its
//! probing client, the gaps between one node's heartbeats). The tests, the benches and
//! `make demo` drive the lab with them; they are not part of the daemon's binary (its size
//! target) and not a stable interface (DESIGN §9).

use std::process::ExitCode;

use clap::Parser;
use heartwire::cli::DebugCommand;

/// heartwire-lab: the lab's tools (not a stable interface).
#[derive(Debug, Parser)]
#[command(name = "heartwire-lab", version = heartwire::cli::VERSION_LINE)]
struct Args {
    #[command(subcommand)]
    command: DebugCommand,
}

fn main() -> ExitCode {
    run(Args::parse().command)
}

fn run(cmd: DebugCommand) -> ExitCode {
    use heartwire::ctl::debug;
    let result = match cmd {
        DebugCommand::SendFrames {
            interface,
            ethertype,
            dst,
        } => {
            let Some(mac) = debug::parse_mac(&dst) else {
                eprintln!("heartwire-lab: --dst `{dst}` is not a MAC address");
                return ExitCode::from(2);
            };
            let frames = std::io::read_to_string(std::io::stdin()).unwrap_or_default();
            debug::send_frames(&interface, ethertype, mac, &frames)
                .map(|n| eprintln!("sent {n} frame(s)"))
        }
        DebugCommand::Kill { pid } => {
            let at = heartwire_hal::clock::monotonic_ns();
            heartwire_hal::process::signal(pid, heartwire_hal::process::SIGKILL)
                .map(|()| println!("{at}"))
                .map_err(|e| format!("kill {pid}: {e}"))
        }
        DebugCommand::LinkSet { interfaces, up } => debug::link_set(&interfaces, up),
        DebugCommand::Responder { port, name } => debug::responder(port, &name),
        DebugCommand::Probe {
            target,
            interval_us,
            duration_ms,
            fifo,
        } => fifo
            .map_or(Ok(()), |p| {
                heartwire_hal::sched::set_fifo(p).map_err(|e| format!("probe: {e}"))
            })
            .and_then(|()| {
                debug::probe(
                    target,
                    std::time::Duration::from_micros(interval_us),
                    std::time::Duration::from_millis(duration_ms),
                )
            }),
        DebugCommand::Now => {
            println!("{}", heartwire_hal::clock::monotonic_ns());
            Ok(())
        }
        DebugCommand::Gaps {
            interface,
            ethertype,
            node,
            duration_ms,
        } => debug::gaps(
            &interface,
            ethertype,
            node,
            std::time::Duration::from_millis(duration_ms),
        )
        .map(|s| print!("{s}")),
        DebugCommand::Capture {
            interface,
            ethertype,
            count,
            timeout_ms,
        } => debug::capture(
            &interface,
            ethertype,
            count,
            std::time::Duration::from_millis(timeout_ms),
        )
        .map(|s| print!("{s}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heartwire-lab: {e}");
            ExitCode::FAILURE
        }
    }
}
