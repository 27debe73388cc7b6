//! Address announcements after an IP takeover (DESIGN §6): gratuitous ARP for IPv4 (RFC
//! 5227 announcement, request form, plus the reply form older stacks want) and the IPv6
//! unsolicited Neighbor Advertisement with the override flag (RFC 4861 §7.2.6). And the
//! probes `verify` sends before trusting that a service address is free on its segment:
//! the ARP probe (RFC 5227 §2.1.1, sender address 0.0.0.0) and the duplicate address
//! detection Neighbor Solicitation (RFC 4862 §5.4.2, from ::), with the checks that tell
//! a conflicting answer. Built
//! into caller buffers for an AF_PACKET `SOCK_DGRAM` socket (the kernel adds the Ethernet
//! header; the caller passes the destination MAC below).

use core::net::{Ipv4Addr, Ipv6Addr};

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// Ethernet broadcast.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// The Ethernet address of ff02::1 (all nodes).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// Length of an ARP packet for Ethernet/IPv4.
pub const ARP_LEN: usize = 28;
/// Length of the unsolicited NA: IPv6 header, ICMPv6 NA, target link-layer option.
pub const NA_LEN: usize = 40 + 24 + 8;

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// Request form: target hardware address zero, target IP = sender IP.
    Request,
    /// Reply form: target hardware address = sender's.
    Reply,
}

/// Writes a gratuitous ARP for `ip` at `mac`.
pub fn gratuitous_arp(buf: &mut [u8; ARP_LEN], op: ArpOp, mac: [u8; 6], ip: Ipv4Addr) {
    buf[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    buf[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    buf[4] = 6;
    buf[5] = 4;
    let (code, tha) = match op {
        ArpOp::Request => (1u16, [0u8; 6]),
        ArpOp::Reply => (2u16, mac),
    };
    buf[6..8].copy_from_slice(&code.to_be_bytes());
    buf[8..14].copy_from_slice(&mac);
    buf[14..18].copy_from_slice(&ip.octets());
    buf[18..24].copy_from_slice(&tha);
    buf[24..28].copy_from_slice(&ip.octets());
}

/// Writes an unsolicited Neighbor Advertisement for `ip` at `mac`, to all nodes, with the
/// override flag set.
pub fn unsolicited_na(buf: &mut [u8; NA_LEN], mac: [u8; 6], ip: Ipv6Addr) {
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let icmp_len: u16 = 32;
    buf.fill(0);
    buf[0] = 0x60;
    buf[4..6].copy_from_slice(&icmp_len.to_be_bytes());
    buf[6] = 58; // ICMPv6
    buf[7] = 255; // hop limit (RFC 4861 requires 255)
    buf[8..24].copy_from_slice(&ip.octets());
    buf[24..40].copy_from_slice(&dst.octets());
    let icmp = &mut buf[40..];
    icmp[0] = 136; // Neighbor Advertisement
    icmp[4] = 0x20; // O (override); not R (router), not S (solicited)
    icmp[8..24].copy_from_slice(&ip.octets());
    icmp[24] = 2; // option: target link-layer address
    icmp[25] = 1; // length in units of 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    let sum = icmpv6_checksum(&ip, &dst, &buf[40..]);
    buf[42..44].copy_from_slice(&sum.to_be_bytes());
}

/// Length of the DAD Neighbor Solicitation: IPv6 header and ICMPv6 NS, no options.
pub const NS_LEN: usize = 40 + 24;

/// Writes an ARP probe for `ip` from `mac` (sender IP 0.0.0.0, RFC 5227 §2.1.1).
pub fn arp_probe(buf: &mut [u8; ARP_LEN], mac: [u8; 6], ip: Ipv4Addr) {
    gratuitous_arp(buf, ArpOp::Request, mac, ip);
    buf[14..18].fill(0);
}

/// Whether an ARP packet shows `ip` in use by another host (not `own`): a reply or an
/// announcement with `ip` as sender. Returns its MAC. Another host's *probe* (sender
/// 0.0.0.0) is not use: it is someone else asking the same question — the members of a
/// `sync` check the same config at the same moment.
pub fn arp_conflict(pkt: &[u8], ip: Ipv4Addr, own: [u8; 6]) -> Option<[u8; 6]> {
    if pkt.len() < ARP_LEN || pkt[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let sha: [u8; 6] = pkt[8..14].try_into().ok()?;
    if sha == own {
        return None;
    }
    let spa = Ipv4Addr::new(pkt[14], pkt[15], pkt[16], pkt[17]);
    (spa == ip).then_some(sha)
}

/// The solicited-node multicast address of `ip` and its Ethernet address.
pub fn solicited_node(ip: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let o = ip.octets();
    let a = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    let g = a.octets();
    (a, [0x33, 0x33, g[12], g[13], g[14], g[15]])
}

/// Writes a duplicate address detection Neighbor Solicitation for `ip`: from ::, to its
/// solicited-node group, no link-layer option (RFC 4862 §5.4.2).
pub fn ns_probe(buf: &mut [u8; NS_LEN], ip: Ipv6Addr) {
    let (dst, _) = solicited_node(ip);
    buf.fill(0);
    buf[0] = 0x60;
    buf[4..6].copy_from_slice(&24u16.to_be_bytes());
    buf[6] = 58;
    buf[7] = 255;
    buf[24..40].copy_from_slice(&dst.octets());
    buf[40] = 135; // Neighbor Solicitation
    buf[48..64].copy_from_slice(&ip.octets());
    let sum = icmpv6_checksum(&Ipv6Addr::UNSPECIFIED, &dst, &buf[40..]);
    buf[42..44].copy_from_slice(&sum.to_be_bytes());
}

/// Whether an IPv6 packet shows `ip` in use: a Neighbor Advertisement for it. Another
/// host's duplicate address detection (an NS from ::) is not use, as for ARP probes.
/// `from` is the frame's source MAC; frames from `own` are ignored.
pub fn ns_conflict(pkt: &[u8], ip: Ipv6Addr, from: [u8; 6], own: [u8; 6]) -> bool {
    if from == own || pkt.len() < 64 || pkt[0] >> 4 != 6 || pkt[6] != 58 {
        return false;
    }
    pkt[48..64] == ip.octets() && pkt[40] == 136
}

/// The ICMPv6 checksum: one's complement sum over the pseudo-header and the message.
fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |b| u32::from(*b));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(msg.len()).expect("invariant: small");
    add(&len.to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).expect("invariant: folded to 16 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

    #[test]
    fn arp_forms() {
        let mut b = [0u8; ARP_LEN];
        gratuitous_arp(&mut b, ArpOp::Request, MAC, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(
            b,
            [
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 10, 10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 10, 0,
                0, 100
            ]
        );
        gratuitous_arp(&mut b, ArpOp::Reply, MAC, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(b[6..8], [0, 2]);
        assert_eq!(b[18..24], MAC);
    }

    #[test]
    fn na_checksum_verifies() {
        let mut b = [0u8; NA_LEN];
        let ip: Ipv6Addr = "fd00::64".parse().unwrap();
        unsolicited_na(&mut b, MAC, ip);
        assert_eq!(b[40], 136);
        assert_eq!(b[44], 0x20, "override flag");
        // Summing the message with its checksum in place gives zero.
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(icmpv6_checksum(&ip, &dst, &b[40..]), 0);
        assert_eq!(b[64..72], [2, 1, 2, 0, 0, 0, 0, 0x0a]);
    }

    #[test]
    fn arp_probe_and_conflicts() {
        let ip = Ipv4Addr::new(10, 0, 0, 100);
        let mut probe = [0u8; ARP_LEN];
        arp_probe(&mut probe, MAC, ip);
        assert_eq!(probe[14..18], [0, 0, 0, 0], "sender IP 0.0.0.0");
        assert_eq!(probe[24..28], ip.octets());
        assert_eq!(arp_conflict(&probe, ip, MAC), None, "our own probe");
        let other = [0x02, 0, 0, 0, 0, 0x0b];
        let mut theirs = [0u8; ARP_LEN];
        arp_probe(&mut theirs, other, ip);
        assert_eq!(
            arp_conflict(&theirs, ip, MAC),
            None,
            "a simultaneous probe is another checker, not an owner"
        );
        gratuitous_arp(&mut theirs, ArpOp::Reply, other, ip);
        assert_eq!(
            arp_conflict(&theirs, ip, MAC),
            Some(other),
            "an owner's reply"
        );
        gratuitous_arp(&mut theirs, ArpOp::Reply, other, Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(arp_conflict(&theirs, ip, MAC), None, "another address");
        assert_eq!(arp_conflict(&theirs[..20], ip, MAC), None, "short");
    }

    #[test]
    fn dad_probe_and_conflicts() {
        let ip: Ipv6Addr = "fd00::1:64".parse().unwrap();
        let (group, mac) = solicited_node(ip);
        assert_eq!(group, "ff02::1:ff01:64".parse::<Ipv6Addr>().unwrap());
        assert_eq!(mac, [0x33, 0x33, 0xff, 0x01, 0x00, 0x64]);
        let mut ns = [0u8; NS_LEN];
        ns_probe(&mut ns, ip);
        assert_eq!(
            icmpv6_checksum(&Ipv6Addr::UNSPECIFIED, &group, &ns[40..]),
            0
        );
        let other = [0x02, 0, 0, 0, 0, 0x0b];
        assert!(!ns_conflict(&ns, ip, MAC, MAC), "our own");
        assert!(!ns_conflict(&ns, ip, other, MAC), "another host's DAD");
        let mut na = [0u8; NA_LEN];
        unsolicited_na(&mut na, other, ip);
        assert!(ns_conflict(&na, ip, other, MAC), "an owner's advertisement");
        unsolicited_na(&mut na, other, "fd00::2".parse().unwrap());
        assert!(!ns_conflict(&na, ip, other, MAC));
    }
}
