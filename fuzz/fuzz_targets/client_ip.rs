//! `TrustedProxies`' resolution (through `portcullis::__fuzz`) on arbitrary peers and `Forwarded` / `X-Forwarded-For` lines, reading
//! either header. An untrusted peer is always the answer; no peer is never an answer; the header
//! not chosen never changes the answer; nothing panics, and a header with more entries than the
//! cap is refused.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::__fuzz::{ClientIpRefusal, resolve_client_ip};
use portcullis::client_ip::{ForwardedHeader, IpSet, TrustedProxies};

#[derive(Arbitrary, Debug)]
struct Input {
    peer: Peer,
    read_forwarded: bool,
    max_entries: u8,
    lines: Vec<(Header, Vec<u8>)>,
}

#[derive(Arbitrary, Debug)]
enum Peer {
    Missing,
    V4([u8; 4]),
    V6([u8; 16]),
    /// Inside 10.0.0.0/8.
    TrustedV4([u8; 3]),
    /// Inside 2001:db8::/32.
    TrustedV6([u16; 6]),
    /// ::ffff:10.x.y.z, which must be treated as 10.x.y.z.
    MappedTrusted([u8; 3]),
}

#[derive(Arbitrary, Debug)]
enum Header {
    Forwarded,
    XForwardedFor,
    Other,
}

fn proxies() -> &'static TrustedProxies {
    static PROXIES: OnceLock<TrustedProxies> = OnceLock::new();
    PROXIES.get_or_init(|| {
        TrustedProxies::new(
            IpSet::parse(["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"]).expect("valid ranges"),
        )
    })
}

fuzz_target!(|input: Input| {
    let peer = match input.peer {
        Peer::Missing => None,
        Peer::V4(b) => Some(IpAddr::from(b)),
        Peer::V6(b) => Some(IpAddr::from(b)),
        Peer::TrustedV4([a, b, c]) => Some(IpAddr::V4(Ipv4Addr::new(10, a, b, c))),
        Peer::TrustedV6(s) => Some(IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, s[0], s[1], s[2], s[3], s[4], s[5],
        ))),
        Peer::MappedTrusted([a, b, c]) => {
            Some(IpAddr::V6(Ipv4Addr::new(10, a, b, c).to_ipv6_mapped()))
        }
    };
    let mut headers = HeaderMap::new();
    for (header, bytes) in &input.lines {
        let Ok(value) = HeaderValue::from_bytes(bytes) else {
            continue;
        };
        let name = match header {
            Header::Forwarded => HeaderName::from_static("forwarded"),
            Header::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            Header::Other => HeaderName::from_static("x-real-ip"),
        };
        headers.append(name, value);
    }
    let (chosen, other) = if input.read_forwarded {
        (ForwardedHeader::Forwarded, "x-forwarded-for")
    } else {
        (ForwardedHeader::XForwardedFor, "forwarded")
    };
    let max = usize::from(input.max_entries % 32);
    let proxies = proxies()
        .clone()
        .forwarded_header(chosen)
        .max_forwarded_entries(max);
    let result = resolve_client_ip(&proxies, peer, &headers);
    // The header not chosen is the client's word: removing it changes nothing.
    let mut without_other = headers.clone();
    without_other.remove(other);
    assert_eq!(resolve_client_ip(&proxies, peer, &without_other), result);
    match peer.map(|ip| ip.to_canonical()) {
        None => assert_eq!(result, Ok(None)),
        Some(peer) if !proxies_contain(peer) => assert_eq!(result, Ok(Some(peer))),
        Some(peer) => match result {
            Ok(Some(ip)) => assert!(ip == peer || !headers.is_empty()),
            Ok(None) => panic!("a trusted peer gave no client IP"),
            Err(ClientIpRefusal::TooManyEntries { max: cap }) => assert_eq!(cap, max),
            Err(_) => {}
        },
    }
});

fn proxies_contain(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 10 || v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6.segments()[..2] == [0x2001, 0xdb8],
    }
}
