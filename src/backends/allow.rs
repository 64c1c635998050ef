//! `--proxy-allow`: where the backends of non-admin users' projects may send requests.
//!
//! On a shared instance a proxy endpoint is a way to make the node connect somewhere; this
//! list bounds where. A rule is `*` (anywhere but the addresses below), an IP address or a
//! CIDR (`10.0.0.0/8`, `fd00::/8`), or a host name (`api.internal`). For a restricted backend:
//!
//! - a target URL naming an IP address must fall in an allowed network (or `*`);
//! - a target URL naming a host must name one that is listed (or `*`), and **every address
//!   it resolves to** is checked again when connecting: addresses outside the allowed
//!   networks are dropped, so a name cannot be pointed somewhere else later (DNS
//!   rebinding). List a name *and* the networks it lives in (`api.internal,10.1.0.0/16`);
//! - link-local addresses (`169.254.0.0/16`, `fe80::/10`, where cloud metadata services
//!   answer) and the metadata addresses `fd00:ec2::254` and `100.100.100.200` are refused
//!   even under `*`, unless a listed network contains them;
//! - Docker containers are admin business: a restricted project cannot select them.
//!
//! Projects of admins, and gateway mode, are not restricted. An empty list (the default)
//! allows non-admins no backend at all.

use std::net::IpAddr;

use ipnet::IpNet;

/// The instance's allow list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyAllow {
    any: bool,
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

/// Addresses refused unless a listed network contains them.
fn sensitive(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == std::net::Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| sensitive(IpAddr::V4(v4)))
        }
    }
}

impl ProxyAllow {
    /// Parses the rules of `--proxy-allow` (already split at commas).
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<ProxyAllow, String> {
        let mut allow = ProxyAllow::default();
        for rule in rules {
            let rule = rule.as_ref().trim();
            if rule.is_empty() {
                continue;
            }
            if rule == "*" {
                allow.any = true;
            } else if let Ok(net) = rule.parse::<IpNet>() {
                allow.nets.push(net.trunc());
            } else if let Ok(ip) = rule.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if is_host_name(rule) {
                allow
                    .hosts
                    .push(rule.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(format!(
                    "`{rule}` is not `*`, an IP address, a CIDR (10.0.0.0/8) or a host name"
                ));
            }
        }
        Ok(allow)
    }

    /// May a restricted backend connect to this address?
    pub fn permits_address(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.nets.iter().any(|net| net.contains(&ip)) {
            return true;
        }
        self.any && !sensitive(ip)
    }

    /// May a restricted backend name this host in a target URL? (An IP address is checked
    /// as an address; a name must be listed, and its addresses are checked when connecting.)
    pub fn permits_host(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.permits_address(ip);
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        self.any || self.hosts.contains(&name)
    }

    /// The rules, as given, for messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.any {
            parts.push("*".into());
        }
        parts.extend(self.nets.iter().map(ToString::to_string));
        parts.extend(self.hosts.iter().cloned());
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(",")
        }
    }
}

fn is_host_name(text: &str) -> bool {
    let text = text.trim_end_matches('.');
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(rules: &[&str]) -> ProxyAllow {
        ProxyAllow::parse(rules).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_and_addresses_are_matched_by_containment() {
        let a = allow(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]);
        assert!(a.permits_address(ip("10.200.3.4")));
        assert!(a.permits_address(ip("192.168.1.7")));
        assert!(!a.permits_address(ip("192.168.1.8")));
        assert!(a.permits_address(ip("fd12::1")));
        assert!(
            a.permits_address(ip("::ffff:10.1.1.1")),
            "IPv4 mapped into IPv6"
        );
        assert!(!a.permits_address(ip("127.0.0.1")));
    }

    #[test]
    fn link_local_and_metadata_addresses_need_an_explicit_network() {
        let any = allow(&["*"]);
        assert!(any.permits_address(ip("203.0.113.9")));
        for refused in [
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:169.254.169.254",
        ] {
            assert!(!any.permits_address(ip(refused)), "{refused}");
        }
        let explicit = allow(&["*", "169.254.169.254/32"]);
        assert!(explicit.permits_address(ip("169.254.169.254")));
        assert!(!explicit.permits_address(ip("169.254.1.1")));
    }

    #[test]
    fn names_must_be_listed_and_addresses_in_urls_are_addresses() {
        let a = allow(&["API.internal.", "10.0.0.0/8"]);
        assert!(a.permits_host("api.internal"));
        assert!(a.permits_host("api.INTERNAL"));
        assert!(!a.permits_host("other.internal"));
        assert!(a.permits_host("10.1.2.3"));
        assert!(!a.permits_host("11.1.2.3"));
        assert!(!a.permits_host("[::1]"));
        assert!(allow(&["*"]).permits_host("anything.example"));
        assert!(!allow(&["*"]).permits_host("169.254.169.254"));
        assert!(!ProxyAllow::default().permits_host("localhost"));
    }

    #[test]
    fn bad_rules_are_refused_and_empty_ones_skipped() {
        assert!(ProxyAllow::parse(&["10.0.0.0/33"]).is_err());
        assert!(ProxyAllow::parse(&["not a host"]).is_err());
        assert!(ProxyAllow::parse(&["a..b"]).is_err());
        assert_eq!(
            ProxyAllow::parse(&["", " "]).unwrap(),
            ProxyAllow::default()
        );
        assert_eq!(
            allow(&["*", "10.0.0.0/8", "h"]).describe(),
            "*,10.0.0.0/8,h"
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_and_checking_never_panic(rule in "\\PC{0,40}", host in "\\PC{0,40}") {
            if let Ok(allow) = ProxyAllow::parse(&[rule]) {
                let _ = allow.permits_host(&host);
            }
        }
    }
}
