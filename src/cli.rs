//! The command line: every subcommand, option and its help text. `src/main.rs` parses
//! it and carries the command out; `tools/docgen` renders the same definitions into the
//! man page heartwire(8) and the shell completions, so `--help`, the man page and the
//! completions never disagree.
//!
//! Doc comments here are help text (clap turns them into `--help`); the fields that only
//! flatten a shared group of options carry none, so the lint for them is off.
#![allow(missing_docs)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Default config file.
pub const CONFIG_DEFAULT: &str = "/etc/heartwire/heartwire.toml";

/// What `--version` prints: the release and the wire version (`wire::frame::VERSION`;
/// nodes of different wire versions do not hear each other, README "Upgrades").
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (wire 2)");

/// heartwire: a high-availability cluster agent.
///
/// Two to 32 nodes watch each other over several independent paths at once (raw
/// Ethernet, UDP, RS232 serial lines, a shared disk), tell a broken network from a dead
/// node, and move resource groups (service addresses, SCSI-reserved disks, filesystems,
/// applications) to a survivor: release before acquire, never two owners.
///
/// `heartwire run` is the daemon (one per node, as root); the other commands talk to it
/// over its control socket (/run/heartwire/heartwire.sock) or check and write configs.
/// The configuration: heartwire.toml(5). Exit status: 0 success, 1 a runtime failure
/// (a device, the daemon unreachable, a command not carried out), 2 a usage or
/// configuration error (nothing was changed).
#[derive(Debug, Parser)]
#[command(version = VERSION_LINE, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the cluster daemon.
    Run {
        /// Config file.
        #[arg(short, long, default_value = CONFIG_DEFAULT)]
        config: PathBuf,
        /// Stay attached to the terminal and log to stderr.
        #[arg(long)]
        foreground: bool,
        /// This node's name in the config (default: the host name).
        #[arg(long)]
        node: Option<String>,
        /// Control socket (default: the config's `control_socket`).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Let members of GROUP read `status` and follow `events` (the socket becomes
        /// mode 0660, owned by GROUP; default: the config's `control_socket_group`, else
        /// root only, 0600).
        #[arg(long, value_name = "GROUP")]
        socket_group: Option<String>,
        /// More log detail (-v debug, -vv trace); RUST_LOG overrides.
        #[arg(short, action = clap::ArgAction::Count)]
        verbose: u8,
        /// Pid file, locked while the daemon runs (default when detached:
        /// /run/heartwire/heartwire.pid; in the foreground only when given).
        #[arg(long)]
        pid_file: Option<PathBuf>,
        /// Syslog socket a detached daemon logs to (default: the journal, with its
        /// fields, when journald runs; else /dev/log).
        #[arg(long)]
        log_socket: Option<PathBuf>,
    },
    /// Serve Prometheus metrics and a live page of the cluster (runs heartwire-web,
    /// installed next to heartwire; `heartwire web --help` lists its options).
    #[command(disable_help_flag = true)]
    Web {
        /// heartwire-web's options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Show nodes, paths, their state and counters.
    Status {
        /// Print the JSON document instead of the table.
        #[arg(long)]
        json: bool,
        /// Refresh every SECONDS (default 2) until interrupted, like `crm_mon -i`: the
        /// table redrawn in place, or one JSON document per line with --json.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
        watch: Option<f64>,
        /// How many of the last events the table lists (the daemon keeps 32).
        #[arg(long, value_name = "N", default_value_t = 10)]
        events: usize,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Write a complete, commented config and a cluster key from node names and addresses.
    ///
    /// The key (0600) is written unless one exists; heartbeat interfaces are discovered
    /// on this host when not given.
    Init(crate::ctl::init::InitArgs),
    /// Make the daemon re-read its config file (as SIGHUP does).
    ///
    /// Changed group resources and event commands apply at once, the groups they touch are bounced here, nothing
    /// else moves. Exit 1, with the reason, when the change needs a restart.
    Reload {
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Save, compare and apply cluster snapshots (config and state in one file).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Check a config and this host before use; with the daemon up, every member too.
    ///
    /// Checks interfaces, addresses (ARP / DAD probe),
    /// devices, disks, commands, timeouts, and, with the daemon up, that every member runs
    /// the same config and finds no error in this file on its own host (the file travels
    /// to them over the cluster's paths). Exit 0 clean, 1 warnings, 2 errors.
    Verify {
        #[command(flatten)]
        at: NodeArgs,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
        /// Do not probe the segments for the service addresses.
        #[arg(long)]
        no_probe: bool,
        /// Check this node only; do not ask the members.
        #[arg(long)]
        local: bool,
    },
    /// Push this node's config to every member; all install it, or none does.
    ///
    /// The file travels over the cluster's authenticated paths; each member checks it on its own host and stages it; then every node installs it
    /// atomically and reloads, or, if any member refuses, none does (the reasons are
    /// printed). Needs a cluster key and every node up. Exit 0 installed, 2 otherwise.
    Sync {
        #[command(flatten)]
        at: NodeArgs,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Follow this node's event stream live.
    ///
    /// One line per event with its wall-clock and monotonic time (node, path, network and adapter up/down, views, quorum, group
    /// acquire/release/error, pauses, commands). Runs until interrupted or the daemon
    /// stops (exit 0); exit 1 when the daemon goes away without saying so.
    Events {
        /// One JSON object per line (README: "Event stream") instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Move a resource group to a node (release first, then acquire there).
    Move {
        /// Group name.
        group: String,
        /// Node name.
        node: String,
        #[command(flatten)]
        ctl: CtlArgs,
    },
    /// Bring resource groups online.
    ///
    /// Also clears their "failed" marks and retries a release stuck in error.
    Online {
        /// Group names.
        #[arg(required = true)]
        groups: Vec<String>,
        #[command(flatten)]
        ctl: CtlArgs,
    },
    /// Forget resource groups' failures and retry a release stuck in error.
    ///
    /// Like Pacemaker's `resource cleanup`; the retry uses the commands of the config
    /// loaded now.
    ///
    /// Clears each node's "failed here" mark and the applications' fail counts and
    /// restart budgets; a group left in `error` by a failed stop is released again (fix
    /// the stop command and `heartwire reload` first). Nothing is pinned: the groups go
    /// where their policies put them. Exit 0 once no node reports a failure or an error
    /// for them, 1 otherwise.
    Cleanup {
        /// Group names.
        #[arg(required = true)]
        groups: Vec<String>,
        #[command(flatten)]
        ctl: CtlArgs,
    },
    /// Maintenance mode for the whole cluster: stop managing resources, or resume.
    ///
    /// `on` stops starting, stopping and monitoring anything; `off` manages the
    /// resources again.
    ///
    /// In maintenance the nodes keep their membership, but no group is acquired, released
    /// or moved and no monitor runs: upgrade or restart daemons, or work on an
    /// application by hand, without a failover. A daemon stopped in maintenance leaves
    /// every resource running, and the next start on that node resumes them (a marker
    /// next to the control socket says which). A node that loses quorum still releases
    /// what it holds. Exit 0 once every member follows, 1 otherwise.
    Maintenance {
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// With `off`: end maintenance although configured nodes are not in the view.
        /// Refused without it, since a daemon stopped in maintenance leaves its resources
        /// running; use it only for nodes that are down for good (powered off).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        ctl: CtlArgs,
    },
    /// Take resource groups offline on every node.
    ///
    /// They stay offline until `online`.
    Offline {
        /// Group names.
        #[arg(required = true)]
        groups: Vec<String>,
        #[command(flatten)]
        ctl: CtlArgs,
    },
    /// Stop this node's daemon after releasing its groups.
    ///
    /// The groups go offline everywhere, or, with --takeover, to the next node of each
    /// list; then the daemon exits.
    Stop {
        /// Hand the groups over instead of taking them offline.
        #[arg(long)]
        takeover: bool,
        #[command(flatten)]
        ctl: CtlArgs,
    },
    /// SCSI-3 reservations: show a disk's keys, run the daemon's steps by hand.
    ///
    /// The steps are those the daemon runs for a `reservation` resource and the
    /// tie-breaker.
    #[command(subcommand)]
    Reservation(crate::ctl::storage::ReservationCommand),
    /// The steps the daemon runs for a `filesystem` resource: mount, unmount.
    #[command(subcommand)]
    Filesystem(crate::ctl::storage::FilesystemCommand),
    /// A member's check of a configuration offer, started by the daemon: prints one JSON
    /// verdict line.
    #[command(hide = true, name = "offer-check")]
    OfferCheck {
        /// The staged file.
        #[arg(long)]
        file: PathBuf,
        /// Where it would be installed.
        #[arg(long)]
        target: PathBuf,
        /// This node's name.
        #[arg(long)]
        node: String,
        /// The daemon's control socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// The disk path's I/O process, started by the daemon (stdin/stdout: its socket).
    #[command(hide = true, name = "disk-servant")]
    DiskServant {
        /// Shared device or file.
        #[arg(long)]
        device: String,
        /// Cluster id.
        #[arg(long)]
        cluster: u16,
        /// This node's id.
        #[arg(long)]
        node: u8,
        /// Slots of the layout.
        #[arg(long)]
        slots: u16,
        /// Node ids on the path, comma-separated.
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<u8>,
    },
}

/// Where the daemon is.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Control socket of the daemon to ask.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Config file, to find the control socket.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
}

/// Which config, for which node, and where its daemon is (verify, snapshot).
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Config file (for `snapshot apply`: where to install it).
    #[arg(short, long, default_value = CONFIG_DEFAULT)]
    pub config: PathBuf,
    /// This node's name in the config (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// The daemon's control socket (default: the config's).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

/// Where the daemon is, and how long to wait for a command.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// Seconds to wait for the command to be carried out.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Print the JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write a snapshot of this node's config and the cluster's state (stdout without FILE).
    Save {
        /// Snapshot file.
        file: Option<PathBuf>,
        #[command(flatten)]
        at: NodeArgs,
    },
    /// Show what changed between two snapshots; exit 0 when nothing did, 1 when
    /// something did, 2 when a file is not a snapshot.
    Diff {
        /// The older snapshot.
        a: PathBuf,
        /// The newer snapshot.
        b: PathBuf,
    },
    /// Verify a snapshot's config on this node, install it atomically and reload the
    /// daemon (when one runs). Refused, with the findings, when verify finds errors.
    Apply {
        /// Snapshot file.
        file: PathBuf,
        #[command(flatten)]
        at: NodeArgs,
        /// Do not probe the segments for the service addresses.
        #[arg(long)]
        no_probe: bool,
    },
}

/// The lab's tools: the `heartwire-lab` binary's commands (src/bin/lab.rs).
#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Send hex frames (one per line on stdin) as raw Ethernet payloads.
    SendFrames {
        /// Interface.
        #[arg(long)]
        interface: String,
        /// EtherType.
        #[arg(long, default_value = "0x88b5", value_parser = parse_u16)]
        ethertype: u16,
        /// Destination MAC (default: cluster 0's group; use the cluster's, see README).
        #[arg(long)]
        dst: String,
    },
    /// Print CLOCK_MONOTONIC in ns (the clock heartwire logs with).
    Now,
    /// SIGKILL a process, printing CLOCK_MONOTONIC ns read just before the kill(2) call.
    Kill {
        /// Process id.
        #[arg(long)]
        pid: i32,
    },
    /// Set interfaces down (or up) at once, printing CLOCK_MONOTONIC ns read just before.
    LinkSet {
        /// Interfaces.
        #[arg(long = "interface", required = true)]
        interfaces: Vec<String>,
        /// Set them up instead of down.
        #[arg(long)]
        up: bool,
    },
    /// Lab service: answer every UDP datagram on PORT with NAME and the datagram.
    Responder {
        /// UDP port.
        #[arg(long)]
        port: u16,
        /// Name to answer with.
        #[arg(long)]
        name: String,
    },
    /// Lab client: probe a UDP service every INTERVAL µs for DURATION ms, one line per reply.
    Probe {
        /// Service address, e.g. 10.0.0.100:7000.
        #[arg(long)]
        target: std::net::SocketAddr,
        /// Microseconds between requests.
        #[arg(long, default_value_t = 200)]
        interval_us: u64,
        /// How long to probe, in milliseconds.
        #[arg(long)]
        duration_ms: u64,
        /// Run at SCHED_FIFO priority N: a client that stands for another machine is then
        /// not delayed by what the lab's own nodes do on the shared CPUs.
        #[arg(long)]
        fifo: Option<u8>,
    },
    /// Measure the gaps between heartbeats of one node on an interface.
    Gaps {
        /// Interface.
        #[arg(long)]
        interface: String,
        /// EtherType.
        #[arg(long, default_value = "0x88b5", value_parser = parse_u16)]
        ethertype: u16,
        /// Sender node id.
        #[arg(long)]
        node: u8,
        /// How long to watch, in milliseconds.
        #[arg(long)]
        duration_ms: u64,
    },
    /// Print up to COUNT received frames as hex, one per line.
    Capture {
        /// Interface.
        #[arg(long)]
        interface: String,
        /// EtherType.
        #[arg(long, default_value = "0x88b5", value_parser = parse_u16)]
        ethertype: u16,
        /// Frames to capture.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

pub fn parse_u16(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}`: {e}"))
}
