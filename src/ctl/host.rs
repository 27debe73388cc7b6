//! This host's interfaces and addresses, as the operator's tools look at them (`init`
//! discovers, `verify` checks, `snapshot` records). Read once over rtnetlink.

use std::net::IpAddr;

use heartwire_hal::inventory::{self, Addr, Link};

/// Interfaces and addresses of this network namespace.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) links: Vec<Link>,
    pub(crate) addrs: Vec<Addr>,
}

impl Host {
    pub(crate) fn read() -> Result<Host, String> {
        Ok(Host {
            links: inventory::links().map_err(|e| format!("listing interfaces: {e}"))?,
            addrs: inventory::addresses().map_err(|e| format!("listing addresses: {e}"))?,
        })
    }

    pub(crate) fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub(crate) fn addrs_of(&self, index: i32) -> impl Iterator<Item = &Addr> {
        self.addrs.iter().filter(move |a| a.index == index)
    }

    /// `up carrier mtu=1500 mac=… addrs=…` or `missing`.
    pub(crate) fn describe(&self, name: &str) -> String {
        let Some(l) = self.link(name) else {
            return "missing".into();
        };
        let addrs: Vec<String> = self
            .addrs_of(l.index)
            .map(|a| format!("{}/{}", a.addr, a.prefix))
            .collect();
        format!(
            "{} {} mtu={} mac={} addrs={}",
            if l.up { "up" } else { "down" },
            if l.carrier { "carrier" } else { "no-carrier" },
            l.mtu,
            l.mac.map_or("-".into(), mac_str),
            if addrs.is_empty() {
                "-".into()
            } else {
                addrs.join(",")
            }
        )
    }

    /// Interfaces up with carrier, not loopback, not named with one of `skip`'s prefixes;
    /// sorted by name.
    pub(crate) fn discover(&self, skip: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = self
            .links
            .iter()
            .filter(|l| l.carrier && !l.loopback)
            .filter(|l| !skip.iter().any(|p| l.name.starts_with(p)))
            .map(|l| l.name.clone())
            .collect();
        v.sort();
        v
    }

    /// The interface among `candidates` with an address whose subnet holds `ip`.
    pub(crate) fn interface_for<'c>(
        &self,
        ip: IpAddr,
        candidates: &'c [String],
    ) -> Option<&'c String> {
        candidates.iter().find(|name| {
            self.link(name).is_some_and(|l| {
                self.addrs_of(l.index)
                    .any(|a| in_subnet(ip, a.addr, a.prefix))
            })
        })
    }
}

/// `02:00:00:00:00:0a`.
pub(crate) fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(crate) fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Whether `a` lies in `net/prefix`.
pub(crate) fn in_subnet(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_and_names() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_subnet(ip("10.0.0.100"), ip("10.0.0.1"), 24));
        assert!(!in_subnet(ip("10.0.1.100"), ip("10.0.0.1"), 24));
        assert!(in_subnet(ip("10.9.9.9"), ip("10.0.0.1"), 0));
        assert!(in_subnet(ip("fd00::64"), ip("fd00::1"), 64));
        assert!(!in_subnet(ip("fd01::64"), ip("fd00::1"), 64));
        assert!(!in_subnet(ip("fd00::64"), ip("10.0.0.1"), 8));
        assert!(is_link_local(ip("fe80::1")) && !is_link_local(ip("fd00::1")));
        assert_eq!(mac_str([2, 0, 0, 0, 0, 0x0a]), "02:00:00:00:00:0a");
    }
}
