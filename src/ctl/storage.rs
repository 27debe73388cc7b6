//! `heartwire reservation …` and `heartwire filesystem …`: the storage steps the daemon
//! runs as children (acquire, release, the tie-breaker race, mount, unmount), and
//! `reservation show` for the operator. Each prints what it does, a line at a time (the
//! daemon logs the lines under the resource's name), and exits 0 on success, 1 on an
//! error, 3 when the tie-breaker race was lost.

use std::time::Duration;

use heartwire_hal::scsi::Device;

use crate::storage::filesystem;
use crate::storage::reservation::{self as pr, Kind, Race};

/// Exit code of a lost tie-breaker race.
pub const LOST: u8 = 3;

/// What the node is: cluster id and node id (they make the key).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Who {
    /// The cluster's id.
    #[arg(long)]
    pub cluster: u16,
    /// This node's id.
    #[arg(long)]
    pub node: u8,
}

impl Who {
    /// This node's key.
    fn key(self) -> u64 {
        pr::key(self.cluster, self.node)
    }

    /// The keys of nodes `ids` of the same cluster.
    fn keys(self, ids: &[u8]) -> Vec<u64> {
        ids.iter().map(|n| pr::key(self.cluster, *n)).collect()
    }
}

/// `heartwire reservation`.
#[derive(Debug, clap::Subcommand)]
pub enum ReservationCommand {
    /// Shows a disk's registered keys and reservation, naming the nodes of a cluster.
    Show {
        /// The disk (a /dev/sd* or /dev/sg* node).
        device: String,
        /// Name keys of this cluster id as its nodes.
        #[arg(long)]
        cluster: Option<u16>,
    },
    /// Registers and reserves for this node, preempting the previous owner (the daemon
    /// runs this to acquire a `reservation` resource).
    Acquire {
        /// The disk.
        #[arg(long)]
        device: String,
        /// The cluster and this node.
        #[command(flatten)]
        who: Who,
        /// Reservation type (see the README).
        #[arg(long, default_value = "write-exclusive-registrants-only")]
        r#type: String,
        /// The cluster's other node ids (preempted one by one where keys cannot be read).
        #[arg(long, value_delimiter = ',')]
        others: Vec<u8>,
    },
    /// Releases and unregisters (the daemon's release of a `reservation` resource).
    Release {
        /// The disk.
        #[arg(long)]
        device: String,
        /// The cluster and this node.
        #[command(flatten)]
        who: Who,
        /// Reservation type.
        #[arg(long, default_value = "write-exclusive-registrants-only")]
        r#type: String,
    },
    /// Registers this node on the tie-breaker disk.
    TieRegister {
        /// The tie-breaker disk.
        #[arg(long)]
        device: String,
        /// The cluster and this node.
        #[command(flatten)]
        who: Who,
    },
    /// Races for the tie-breaker against the given nodes (exit 0: won, 3: lost).
    TieBreak {
        /// The tie-breaker disk.
        #[arg(long)]
        device: String,
        /// The cluster and this node.
        #[command(flatten)]
        who: Who,
        /// Node ids on the other side.
        #[arg(long, value_delimiter = ',')]
        rivals: Vec<u8>,
    },
}

/// `heartwire filesystem`.
#[derive(Debug, clap::Subcommand)]
pub enum FilesystemCommand {
    /// fsck (optionally) and mount.
    Mount {
        /// The block device.
        #[arg(long)]
        device: String,
        /// Where to mount it.
        #[arg(long)]
        mountpoint: String,
        /// Filesystem type.
        #[arg(long)]
        fstype: String,
        /// Mount options.
        #[arg(long, default_value = "defaults")]
        options: String,
        /// Run `fsck -a` first.
        #[arg(long)]
        fsck: bool,
        /// When the device is already mounted there (left by an earlier run), the time
        /// between SIGTERM and SIGKILL to its holders before it is unmounted, in ms.
        #[arg(long, default_value_t = 5000)]
        grace_ms: u64,
    },
    /// Signals the processes holding the mount, then unmounts.
    Unmount {
        /// The mount point.
        #[arg(long)]
        mountpoint: String,
        /// Time between SIGTERM and SIGKILL, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        grace_ms: u64,
    },
}

fn say(line: String) {
    println!("{line}");
}

fn kind_of(name: &str) -> Result<Kind, String> {
    pr::kind_named(name).ok_or_else(|| {
        format!(
            "unknown reservation type `{name}`: expected {}",
            pr::kind_names()
        )
    })
}

fn open(device: &str) -> Result<Device, String> {
    Device::open(device).map_err(|e| e.to_string())
}

/// Runs a `heartwire reservation` command; the exit code.
pub fn reservation(cmd: ReservationCommand) -> u8 {
    match run_reservation(cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("heartwire: {e}");
            1
        }
    }
}

fn run_reservation(cmd: ReservationCommand) -> Result<u8, String> {
    let log = &mut say;
    match cmd {
        ReservationCommand::Show { device, cluster } => show(&device, cluster).map(|()| 0),
        ReservationCommand::Acquire {
            device,
            who,
            r#type,
            others,
        } => {
            let mut dev = open(&device)?;
            match kind_of(&r#type)? {
                Kind::Scsi2 => pr::acquire_scsi2(&dev, log).map_err(|e| e.to_string())?,
                Kind::Persistent(ty) => {
                    match pr::acquire(&mut dev, who.cluster, who.key(), ty, log) {
                        Ok(()) => {}
                        Err(pr::PrError::Cmd(e)) if e.unsupported() => {
                            say(format!("{e}: using the block layer's IOC_PR ioctls"));
                            pr::acquire_ioctl(&dev, who.key(), &who.keys(&others), ty, log)
                                .map_err(|e| e.to_string())?;
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Ok(0)
        }
        ReservationCommand::Release {
            device,
            who,
            r#type,
        } => {
            let mut dev = open(&device)?;
            let key = who.key();
            match kind_of(&r#type)? {
                Kind::Scsi2 => {
                    dev.release6(pr::COMMAND_TIMEOUT)
                        .map_err(|e| e.to_string())?;
                    say("released (SCSI-2 RELEASE(6))".into());
                }
                Kind::Persistent(ty) => match pr::release(&mut dev, key, ty, log) {
                    Ok(()) => {}
                    Err(pr::PrError::Cmd(e)) if e.unsupported() => {
                        pr::release_ioctl(&dev, key, ty, log).map_err(|e| e.to_string())?;
                    }
                    Err(e) => return Err(e.to_string()),
                },
            }
            Ok(0)
        }
        ReservationCommand::TieRegister { device, who } => {
            let mut dev = open(&device)?;
            let key = who.key();
            // Quiet when already registered: the daemon checks every few seconds.
            if pr::tie_register(&mut dev, key, log).map_err(|e| e.to_string())?
                == pr::Registration::Made
            {
                say(format!("registered key {key:#018x} on the tie-breaker"));
            }
            Ok(0)
        }
        ReservationCommand::TieBreak {
            device,
            who,
            rivals,
        } => {
            let mut dev = open(&device)?;
            match pr::tie_break(&mut dev, who.key(), &who.keys(&rivals), log)
                .map_err(|e| e.to_string())?
            {
                Race::Won => {
                    say("won the tie-breaker".into());
                    Ok(0)
                }
                Race::Lost => {
                    say("lost the tie-breaker".into());
                    Ok(LOST)
                }
            }
        }
    }
}

fn show(device: &str, cluster: Option<u16>) -> Result<(), String> {
    let dev = open(device)?;
    let t = pr::COMMAND_TIMEOUT;
    let e = |e: heartwire_hal::scsi::CmdError| e.to_string();
    let inq = dev.inquiry(t).map_err(e)?;
    println!(
        "{device}: {} {} {} (SPC version {})",
        inq.vendor, inq.product, inq.revision, inq.version
    );
    match dev.report_capabilities(t) {
        Ok(c) => {
            let types: Vec<&str> = pr::KINDS
                .iter()
                .filter(|k| matches!(k, Kind::Persistent(ty) if c.supports(*ty)))
                .map(|k| pr::type_name(*k))
                .collect();
            println!("  types: {}", types.join(", "));
        }
        Err(err) => println!("  capabilities: {err}"),
    }
    let name = |k: u64| {
        let who = cluster.and_then(|c| pr::key_node(k, c));
        who.map_or_else(String::new, |n| format!(" (node id {n})"))
    };
    let keys = dev.read_keys(t).map_err(e)?;
    println!("  generation: {}", keys.generation);
    if keys.keys.is_empty() {
        println!("  registered: none");
    }
    for k in &keys.keys {
        println!("  registered: {k:#018x}{}", name(*k));
    }
    match dev.read_reservation(t).map_err(e)? {
        Some(r) => println!(
            "  reservation: {:#018x}{} type {}",
            r.key,
            name(r.key),
            r.ty.map_or("unknown", |ty| pr::type_name(Kind::Persistent(ty)))
        ),
        None => println!("  reservation: none"),
    }
    Ok(())
}

/// Runs a `heartwire filesystem` command; the exit code.
pub fn filesystem(cmd: FilesystemCommand) -> u8 {
    let log = &mut say;
    let r = match cmd {
        FilesystemCommand::Mount {
            device,
            mountpoint,
            fstype,
            options,
            fsck,
            grace_ms,
        } => filesystem::mount(
            &device,
            &mountpoint,
            (&fstype, &options),
            fsck,
            Duration::from_millis(grace_ms),
            log,
        ),
        FilesystemCommand::Unmount {
            mountpoint,
            grace_ms,
        } => filesystem::unmount(&mountpoint, Duration::from_millis(grace_ms), log),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("heartwire: {e}");
            1
        }
    }
}
