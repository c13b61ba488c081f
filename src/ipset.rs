//! [`IpSet`]: a set of CIDR ranges with `O(log n)` lookups, for trusted proxies and IP policies.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};

use crate::error::ConfigError;

/// A set of IPv4 and IPv6 ranges, answering "is this address inside?" with a binary search.
///
/// The ranges are kept sorted, merged and non-overlapping, so a lookup among 100,000 ranges takes
/// about 17 comparisons, and [`len`](Self::len) counts merged ranges, not the input.
///
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 host it maps: probes are
/// normalised with [`IpAddr::to_canonical`], and a range lying inside `::ffff:0:0/96`
/// (`::ffff:10.0.0.0/104`) is stored as the IPv4 range it maps (`10.0.0.0/8`). A wider IPv6 range
/// that happens to cover the mapped block (`::/0`, `::/64`) stays an IPv6 range and contains no
/// IPv4 address: `::/0` means "every IPv6 client", and `0.0.0.0/0` must be listed to mean "every
/// IPv4 client" too. This way a dual-stack socket reporting `::ffff:a.b.c.d` and an IPv4 socket
/// reporting `a.b.c.d` always get the same answer.
///
/// ```
/// use portcullis::client_ip::IpSet;
///
/// let set = IpSet::parse(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])?;
/// assert!(set.contains("10.1.2.3".parse()?));
/// assert!(set.contains("::ffff:10.1.2.3".parse()?));
/// assert!(!set.contains("192.0.2.8".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    /// Inclusive `(first, last)` ranges, sorted, with a gap of at least one address between two.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpSet {
    /// Parses CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`) and bare addresses (a host: `/32` or
    /// `/128`). Surrounding whitespace is ignored.
    ///
    /// Refused, with an error naming the entry: anything that is not an address or CIDR, a prefix
    /// longer than the address, an IPv4 octet with a leading zero (`010.0.0.1`, which some tools
    /// read as octal), an IPv6 zone (`fe80::1%eth0`), and a range with host bits set
    /// (`10.1.2.3/8`), because widening a typo to a whole network silently would trust or
    /// allow far more than was meant.
    pub fn parse<I, S>(ranges: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for entry in ranges {
            let entry = entry.as_ref();
            let net = parse_net(entry.trim())
                .map_err(|why| ConfigError::new(format!("invalid IP range `{entry}`: {why}")))?;
            nets.push(net);
        }
        Ok(Self::from_nets(nets))
    }

    /// A set of already parsed networks. Host bits of a network are ignored (`10.1.2.3/8` is
    /// `10.0.0.0/8`), as [`IpNet::trunc`] would.
    pub fn from_nets(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(net) => v4.push((net.network().into(), net.broadcast().into())),
                IpNet::V6(net) => {
                    // Both ends map to IPv4 exactly when the whole range lies inside
                    // `::ffff:0:0/96`; a wider range keeps its IPv6 meaning (see the type docs).
                    match (
                        net.network().to_ipv4_mapped(),
                        net.broadcast().to_ipv4_mapped(),
                    ) {
                        (Some(first), Some(last)) => v4.push((first.into(), last.into())),
                        _ => v6.push((net.network().into(), net.broadcast().into())),
                    }
                }
            }
        }
        Self {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    /// Whether `ip` (normalised with [`IpAddr::to_canonical`]) is inside one of the ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => lookup(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => lookup(&self.v6, u128::from(ip)),
        }
    }

    /// The number of ranges after merging overlapping and adjacent ones (`10.0.0.0/9` and
    /// `10.128.0.0/9` count as one).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the set contains no address at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

impl FromIterator<IpNet> for IpSet {
    fn from_iter<T: IntoIterator<Item = IpNet>>(iter: T) -> Self {
        Self::from_nets(iter)
    }
}

/// Lists the set as the fewest CIDRs covering each merged range, so configuration dumps and
/// `Gate` debug output read like the configuration that built them.
impl fmt::Debug for IpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v4 = self.v4.iter().flat_map(|&(first, last)| {
            Ipv4Subnets::new(Ipv4Addr::from(first), Ipv4Addr::from(last), 0).map(IpNet::V4)
        });
        let v6 = self.v6.iter().flat_map(|&(first, last)| {
            Ipv6Subnets::new(Ipv6Addr::from(first), Ipv6Addr::from(last), 0).map(IpNet::V6)
        });
        f.write_str("IpSet ")?;
        f.debug_set()
            .entries(v4.chain(v6).map(DisplayAsDebug))
            .finish()
    }
}

struct DisplayAsDebug(IpNet);

impl fmt::Debug for DisplayAsDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One CIDR or bare address. The address goes through `std`'s parser rather than ipnet's
/// `FromStr`, because ipnet accepts leading zeros in IPv4 octets and std does not.
fn parse_net(entry: &str) -> Result<IpNet, String> {
    if entry.is_empty() {
        return Err("empty entry".to_owned());
    }
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (entry, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IP address"))?;
    let Some(prefix) = prefix else {
        return Ok(IpNet::from(addr));
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    // Only plain decimal: `u8::from_str` would also take `+8`, and `08` reads like octal.
    let canonical_digits =
        prefix.bytes().all(|b| b.is_ascii_digit()) && (prefix == "0" || !prefix.starts_with('0'));
    let net = prefix
        .parse::<u8>()
        .ok()
        .filter(|_| canonical_digits)
        .and_then(|len| IpNet::new(addr, len).ok())
        .ok_or_else(|| format!("prefix length `{prefix}` is not a number from 0 to {max}"))?;
    if net.addr() != net.network() {
        return Err(format!(
            "host bits are set (the network is `{}`)",
            net.trunc()
        ));
    }
    Ok(net)
}

/// An address as an integer, with the successor needed to merge adjacent ranges.
trait Point: Copy + Ord {
    fn successor(self) -> Option<Self>;
}

impl Point for u32 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Point for u128 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// Sorts and merges overlapping or adjacent inclusive ranges, so lookups need only look at the
/// last range starting at or before the probe.
fn merge<T: Point>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match merged.last_mut() {
            Some(prev) if first <= prev.1 || prev.1.successor() == Some(first) => {
                prev.1 = prev.1.max(last);
            }
            _ => merged.push((first, last)),
        }
    }
    merged.shrink_to_fit();
    merged
}

fn lookup<T: Point>(ranges: &[(T, T)], probe: T) -> bool {
    let after = ranges.partition_point(|&(first, _)| first <= probe);
    after
        .checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&(_, last)| probe <= last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::{Ipv4Net, Ipv6Net};
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(ranges: &[&str]) -> IpSet {
        IpSet::parse(ranges).unwrap()
    }

    fn parse_error(entry: &str) -> String {
        IpSet::parse([entry]).unwrap_err().message().to_owned()
    }

    /// The oracle: the textbook meaning of a mapped range, written independently of `from_nets`.
    fn canonical_net(net: IpNet) -> IpNet {
        match net {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
                Some(v4) => IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).unwrap()),
                None => net,
            },
            _ => net,
        }
    }

    fn naive(nets: &[IpNet], ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        nets.iter()
            .map(|&n| canonical_net(n))
            .any(|n| n.contains(&ip))
    }

    fn assert_invariants(set: &IpSet) {
        fn check<T: Point + fmt::Debug>(ranges: &[(T, T)]) {
            for &(first, last) in ranges {
                assert!(first <= last, "{ranges:?}");
            }
            for pair in ranges.windows(2) {
                let gap_start = pair[0]
                    .1
                    .successor()
                    .expect("a range before another ends early");
                assert!(gap_start < pair[1].0, "overlap or adjacency: {ranges:?}");
            }
        }
        check(&set.v4);
        check(&set.v6);
    }

    #[test]
    fn bare_addresses_are_host_routes() {
        let s = set(&["192.0.2.7", "2001:db8::1"]);
        assert!(s.contains(ip("192.0.2.7")));
        assert!(!s.contains(ip("192.0.2.6")));
        assert!(!s.contains(ip("192.0.2.8")));
        assert!(s.contains(ip("2001:db8::1")));
        assert!(!s.contains(ip("2001:db8::2")));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn mapped_probes_are_looked_up_as_ipv4() {
        let s = set(&["10.0.0.0/8"]);
        assert!(s.contains(ip("::ffff:10.1.2.3")));
        assert!(s.contains(ip("::ffff:a01:203")));
        assert!(!s.contains(ip("::ffff:11.0.0.0")));
    }

    #[test]
    fn mapped_ranges_are_stored_as_ipv4() {
        let s = set(&["::ffff:10.0.0.0/104", "::ffff:192.0.2.7"]);
        assert_eq!(s, set(&["10.0.0.0/8", "192.0.2.7/32"]));
        assert!(s.contains(ip("10.255.255.255")));
        assert!(s.contains(ip("::ffff:192.0.2.7")));
        assert!(s.v6.is_empty());
        // `::ffff:0:0/96` is the whole IPv4 space.
        assert_eq!(set(&["::ffff:0:0/96"]), set(&["0.0.0.0/0"]));
    }

    #[test]
    fn wide_ipv6_ranges_do_not_cover_ipv4() {
        let s = set(&["::/0"]);
        assert!(s.contains(ip("2001:db8::1")));
        assert!(s.contains(ip("::")));
        assert!(!s.contains(ip("192.0.2.1")));
        assert!(!s.contains(ip("::ffff:192.0.2.1")));
        // An IPv4-compatible address (`::a.b.c.d`, deprecated) is not mapped: it stays IPv6.
        assert!(s.contains(ip("::192.0.2.1")));
    }

    #[test]
    fn zero_prefixes_cover_their_family() {
        let s = set(&["0.0.0.0/0"]);
        assert!(s.contains(ip("0.0.0.0")));
        assert!(s.contains(ip("255.255.255.255")));
        assert!(!s.contains(ip("::1")));
        let s = set(&["0.0.0.0/0", "::/0"]);
        assert!(s.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let s = set(&[
            "10.128.0.0/9",
            "10.0.0.0/9",
            "10.1.0.0/16",
            "11.0.0.0/8",
            "13.0.0.0/8",
        ]);
        assert_eq!(s.len(), 2);
        assert!(s.contains(ip("11.255.255.255")));
        assert!(!s.contains(ip("12.0.0.0")));
        let top = set(&["255.255.255.255", "255.255.255.254/31", "0.0.0.0"]);
        assert_eq!(top.len(), 2);
        assert!(top.contains(ip("255.255.255.255")));
        assert!(!top.contains(ip("0.0.0.1")));
    }

    #[test]
    fn empty_set_contains_nothing() {
        let s = IpSet::default();
        assert!(s.is_empty());
        assert_eq!(s.len(), 0);
        assert!(!s.contains(ip("0.0.0.0")));
        assert!(!s.contains(ip("::")));
        assert_eq!(IpSet::parse(Vec::<String>::new()).unwrap(), s);
    }

    #[test]
    fn whitespace_around_an_entry_is_ignored() {
        assert_eq!(set(&[" 10.0.0.0/8\t"]), set(&["10.0.0.0/8"]));
    }

    #[test]
    fn parse_errors_name_the_entry() {
        let cases = [
            (
                "10.0.0.0/33",
                "prefix length `33` is not a number from 0 to 32",
            ),
            (
                "2001:db8::/129",
                "prefix length `129` is not a number from 0 to 128",
            ),
            ("10.0.0.0/", "prefix length `` is not"),
            ("10.0.0.0/+8", "prefix length `+8` is not"),
            ("10.0.0.0/08", "prefix length `08` is not"),
            ("10.0.0.0/8/8", "prefix length `8/8` is not"),
            ("not-an-ip", "`not-an-ip` is not an IP address"),
            ("010.0.0.1", "`010.0.0.1` is not an IP address"),
            ("10.0.0", "`10.0.0` is not an IP address"),
            ("fe80::1%eth0", "`fe80::1%eth0` is not an IP address"),
            ("[2001:db8::1]", "is not an IP address"),
            ("", "empty entry"),
            (
                "10.1.2.3/8",
                "host bits are set (the network is `10.0.0.0/8`)",
            ),
            (
                "2001:db8::1/32",
                "host bits are set (the network is `2001:db8::/32`)",
            ),
        ];
        for (entry, want) in cases {
            let message = parse_error(entry);
            assert!(
                message.starts_with(&format!("invalid IP range `{entry}`: ")),
                "{entry}: {message}"
            );
            assert!(message.contains(want), "{entry}: {message}");
        }
    }

    #[test]
    fn the_first_bad_entry_is_reported() {
        let err = IpSet::parse(["10.0.0.0/8", "bad", "worse"]).unwrap_err();
        assert!(err.message().contains("`bad`"), "{err}");
    }

    #[test]
    fn from_nets_ignores_host_bits() {
        let net = IpNet::V4(Ipv4Net::new("10.1.2.3".parse().unwrap(), 8).unwrap());
        assert_eq!(IpSet::from_nets([net]), set(&["10.0.0.0/8"]));
        assert_eq!([net].into_iter().collect::<IpSet>(), set(&["10.0.0.0/8"]));
    }

    #[test]
    fn debug_lists_minimal_cidrs() {
        let s = set(&[
            "10.0.0.0/9",
            "10.128.0.0/9",
            "192.0.2.7",
            "::ffff:1.2.3.0/120",
            "fd00::/8",
        ]);
        assert_eq!(
            format!("{s:?}"),
            "IpSet {1.2.3.0/24, 10.0.0.0/8, 192.0.2.7/32, fd00::/8}"
        );
    }

    fn v4_net() -> impl Strategy<Value = IpNet> {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, p)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), p).unwrap()))
    }

    /// IPv6 networks anywhere, near the mapped block, and inside it, so both sides of the
    /// normalisation are exercised.
    fn v6_net() -> impl Strategy<Value = IpNet> {
        let anywhere = (any::<u128>(), 0u8..=128);
        let mapped =
            (any::<u32>(), 96u8..=128).prop_map(|(a, p)| (0xffff_0000_0000 | u128::from(a), p));
        let near_mapped = (any::<u64>(), 64u8..=128).prop_map(|(a, p)| (u128::from(a), p));
        prop_oneof![anywhere, mapped, near_mapped]
            .prop_map(|(a, p)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), p).unwrap()))
    }

    fn net() -> impl Strategy<Value = IpNet> {
        prop_oneof![v4_net(), v6_net()]
    }

    fn probe() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
            any::<u32>().prop_map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())),
            any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
            any::<u64>().prop_map(|a| IpAddr::V6(u128::from(a).into())),
        ]
    }

    /// The first and last address of `net`, the ones just outside it, and the mapped forms of
    /// all four.
    fn edges(net: IpNet) -> Vec<IpAddr> {
        let mut out = Vec::new();
        match net {
            IpNet::V4(n) => {
                let (first, last) = (u32::from(n.network()), u32::from(n.broadcast()));
                for a in [
                    Some(first),
                    Some(last),
                    first.checked_sub(1),
                    last.checked_add(1),
                ]
                .into_iter()
                .flatten()
                {
                    out.push(IpAddr::V4(a.into()));
                    out.push(IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()));
                }
            }
            IpNet::V6(n) => {
                let (first, last) = (u128::from(n.network()), u128::from(n.broadcast()));
                for a in [
                    Some(first),
                    Some(last),
                    first.checked_sub(1),
                    last.checked_add(1),
                ]
                .into_iter()
                .flatten()
                {
                    let a = Ipv6Addr::from(a);
                    out.push(IpAddr::V6(a));
                    if let Some(v4) = a.to_ipv4_mapped() {
                        out.push(IpAddr::V4(v4));
                    }
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn contains_matches_a_naive_scan(
            nets in prop::collection::vec(net(), 0..40),
            probes in prop::collection::vec(probe(), 1..64),
        ) {
            let set = IpSet::from_nets(nets.iter().copied());
            assert_invariants(&set);
            prop_assert!(set.len() <= nets.len());
            prop_assert_eq!(set.is_empty(), nets.is_empty());
            for ip in probes {
                prop_assert_eq!(set.contains(ip), naive(&nets, ip), "{} in {:?}", ip, nets);
            }
        }

        #[test]
        fn range_edges_match_a_naive_scan(nets in prop::collection::vec(net(), 1..24)) {
            let set = IpSet::from_nets(nets.iter().copied());
            for &net in &nets {
                for ip in edges(net) {
                    prop_assert_eq!(set.contains(ip), naive(&nets, ip), "{} in {:?}", ip, nets);
                }
                for ip in edges(canonical_net(net)) {
                    prop_assert_eq!(set.contains(ip), naive(&nets, ip), "{} in {:?}", ip, nets);
                }
            }
        }

        #[test]
        fn parse_agrees_with_from_nets(nets in prop::collection::vec(net(), 0..24)) {
            let text: Vec<String> = nets.iter().map(|n| n.trunc().to_string()).collect();
            let parsed = IpSet::parse(&text).unwrap();
            prop_assert_eq!(parsed, IpSet::from_nets(nets));
        }

        #[test]
        fn order_of_ranges_does_not_matter(
            mut nets in prop::collection::vec(net(), 0..24),
        ) {
            let set = IpSet::from_nets(nets.iter().copied());
            nets.reverse();
            prop_assert_eq!(set, IpSet::from_nets(nets));
        }
    }
}
