//! The TOML schema as serde structs. Spans are kept on every value a later check may need
//! to point at. Serializing one gives the canonical form (see `super::canonical`): keys in
//! schema order, tables sorted, comments and layout dropped, nothing defaulted in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) cluster: RawCluster,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) realtime: Option<RawRealtime>,
    #[serde(rename = "node", default, skip_serializing_if = "Vec::is_empty")]
    pub(super) nodes: Vec<RawNode>,
    #[serde(rename = "path", default, skip_serializing_if = "Vec::is_empty")]
    pub(super) paths: Vec<RawPath>,
    #[serde(rename = "group", default, skip_serializing_if = "Vec::is_empty")]
    pub(super) groups: Vec<RawGroup>,
    #[serde(rename = "event", default, skip_serializing_if = "Vec::is_empty")]
    pub(super) events: Vec<RawEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tie_breaker: Option<RawDevices>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) watchdog: Option<RawWatchdog>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sentinel: Option<RawSentinel>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSentinel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hang_timeout: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) after_crash: Option<Spanned<String>>,
}

/// A shared disk: one path for every node, or one per node.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevices {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) device: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) devices: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatchdog {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) device: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    pub(super) on: Spanned<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) group: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pre: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) post: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) notify: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) name: Spanned<String>,
    pub(super) id: Spanned<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) key_file: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pause_threshold: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) control_socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) control_socket_group: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) two_node: Option<Spanned<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) on_quorum_loss: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealtime {
    pub(super) priority: Spanned<u8>,
    #[serde(default = "yes")]
    pub(super) lock_memory: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cpu: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cpu_dma_latency_us: Option<Spanned<u32>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: Spanned<String>,
    pub(super) id: Spanned<u8>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawKind {
    Ether,
    Udp,
    Serial,
    Disk,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPath {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<RawKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) interval: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timeout: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) network: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) ethertype: Option<Spanned<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) port: Option<Spanned<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) interfaces: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) addresses: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    // serial and disk
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) devices: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) baud: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) name: Spanned<String>,
    pub(super) nodes: Spanned<Vec<Spanned<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) startup: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fallover: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fallback: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) failure_timeout: Option<Spanned<String>>,
    #[serde(rename = "resource", default, skip_serializing_if = "Vec::is_empty")]
    pub(super) resources: Vec<RawResource>,
}

/// One resource; which keys apply depends on `kind` (checked in validation, so an error
/// can name the key and the kind).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResource {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<String>,
    // ip
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) address: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) interface: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) interfaces: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) announce_count: Option<Spanned<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) announce_interval: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) network: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) standby: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) standbys: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    // application
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) start: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stop: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) monitor: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) monitor_interval: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timeout: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) restarts: Option<Spanned<u32>>,
    // reservation and filesystem
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) device: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) devices: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(super) reservation_type: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mountpoint: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fstype: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) options: Option<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fsck: Option<Spanned<bool>>,
}
