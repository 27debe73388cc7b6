//! The TOML schema as serde structs. Spans are kept on every value a later check may need
//! to point at.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) cluster: RawCluster,
    pub(super) realtime: Option<RawRealtime>,
    #[serde(rename = "node", default)]
    pub(super) nodes: Vec<RawNode>,
    #[serde(rename = "path", default)]
    pub(super) paths: Vec<RawPath>,
    #[serde(rename = "group", default)]
    pub(super) groups: Vec<RawGroup>,
    #[serde(rename = "event", default)]
    pub(super) events: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    pub(super) on: Spanned<String>,
    pub(super) group: Option<Spanned<String>>,
    pub(super) pre: Option<Spanned<String>>,
    pub(super) post: Option<Spanned<String>>,
    pub(super) notify: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) name: Spanned<String>,
    pub(super) id: Spanned<u16>,
    pub(super) key_file: Option<Spanned<String>>,
    pub(super) pause_threshold: Option<Spanned<String>>,
    pub(super) control_socket: Option<String>,
    pub(super) two_node: Option<bool>,
    pub(super) on_quorum_loss: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealtime {
    pub(super) priority: Spanned<u8>,
    #[serde(default = "yes")]
    pub(super) lock_memory: bool,
    pub(super) cpu: Option<u16>,
    pub(super) cpu_dma_latency_us: Option<Spanned<u32>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: Spanned<String>,
    pub(super) id: Spanned<u8>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawKind {
    Ether,
    Udp,
    Serial,
    Disk,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPath {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<RawKind>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) network: Option<Spanned<String>>,
    pub(super) ethertype: Option<Spanned<u16>>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) interfaces: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) addresses: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    // serial and disk
    pub(super) devices: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) baud: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) name: Spanned<String>,
    pub(super) nodes: Spanned<Vec<Spanned<String>>>,
    pub(super) startup: Option<Spanned<String>>,
    pub(super) fallover: Option<Spanned<String>>,
    pub(super) fallback: Option<Spanned<String>>,
    #[serde(rename = "resource", default)]
    pub(super) resources: Vec<RawResource>,
}

/// One resource; which keys apply depends on `kind` (checked in validation, so an error
/// can name the key and the kind).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResource {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<String>,
    // ip
    pub(super) address: Option<Spanned<String>>,
    pub(super) interface: Option<Spanned<String>>,
    pub(super) interfaces: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) announce_count: Option<Spanned<u32>>,
    pub(super) announce_interval: Option<Spanned<String>>,
    pub(super) network: Option<Spanned<String>>,
    pub(super) standby: Option<Spanned<String>>,
    pub(super) standbys: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    // application
    pub(super) start: Option<Spanned<String>>,
    pub(super) stop: Option<Spanned<String>>,
    pub(super) monitor: Option<Spanned<String>>,
    pub(super) monitor_interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) restarts: Option<Spanned<u32>>,
}
