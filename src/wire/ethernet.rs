//! Link-layer constants for raw Ethernet heartbeat paths.

/// Default EtherType: IEEE 802 "local experimental" 0x88B5 (DESIGN §3).
pub const ETHERTYPE_DEFAULT: u16 = 0x88B5;

/// Smallest EtherType value (IEEE 802.3: values below 0x0600 are lengths, not types).
pub const ETHERTYPE_MIN: u16 = 0x0600;

/// Smallest Ethernet payload (IEEE 802.3: 60-byte minimum frame less the 14-byte header).
/// A received payload of exactly this length may carry padding after a shorter frame.
pub const MIN_PAYLOAD: usize = 46;

/// The destination MAC address of a cluster's heartbeats: a locally administered multicast
/// address (first octet 0x03: group bit and local bit set) ending in the cluster id, so two
/// clusters on one segment use different groups and a NIC's filter passes only its own.
///
/// `03:48:57:00:<id hi>:<id lo>` ("HW" in octets 2–3).
pub fn cluster_mac(cluster_id: u16) -> [u8; 6] {
    let [hi, lo] = cluster_id.to_be_bytes();
    [0x03, 0x48, 0x57, 0x00, hi, lo]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_mac_is_local_multicast() {
        let mac = cluster_mac(0x0102);
        assert_eq!(mac, [0x03, 0x48, 0x57, 0x00, 0x01, 0x02]);
        assert_eq!(mac[0] & 0x01, 0x01, "group bit");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered bit");
    }
}
