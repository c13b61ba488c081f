//! Who is calling from where: client IP resolution behind reverse proxies ([`TrustedProxies`])
//! and sets of address ranges ([`IpSet`]), which the IP policies use too.
//!
//! Forwarding headers are written by whoever sent the request, so only the part appended by
//! proxies we trust says anything true. Walking the list from the right and stopping at the first
//! hop we do not trust yields the address that our own outermost proxy saw; everything to the left
//! of it is the client's word and is never believed.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};

pub use crate::ipset::IpSet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The default for [`TrustedProxies::max_forwarded_entries`]: far more hops than a real
/// deployment has, small enough that a header stuffed with entries costs nothing to refuse.
const DEFAULT_MAX_FORWARDED_ENTRIES: usize = 20;

/// At most this many characters of an offending entry are quoted in an error, which ends up in
/// logs: enough to recognise it, too little to flood a log line.
const SHOWN_CHARS: usize = 48;

/// Which proxies are believed when they say who the client is, and how the client IP is read.
///
/// The Gate takes the connection's peer address unless the peer is inside the
/// trusted set. Behind a trusted peer it reads the forwarding header, walks it from the right
/// skipping trusted hops, and returns the first hop it does not trust: the address our outermost
/// trusted proxy saw. It never returns an entry to the left of that one, since those are whatever
/// the client chose to send.
///
/// Only one header is read: the one your proxies append, chosen with
/// [`forwarded_header`](Self::forwarded_header) (`X-Forwarded-For` unless you say otherwise). The
/// other is ignored, since a proxy passes through untouched whatever the client sent in a header
/// it does not write itself: reading it would let the client choose its own address.
///
/// ```
/// use portcullis::client_ip::{ForwardedHeader, IpSet, TrustedProxies};
/// use portcullis::policy::IpRanges;
/// use portcullis::{Gate, RequestView};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Only callers from 198.51.100.0/24 or 2001:db8::/32 may in; our proxies are 10.0.0.0/8.
/// let gate = |proxies: TrustedProxies| {
///     let allowed = IpSet::parse(["198.51.100.0/24", "2001:db8::/32"]).expect("valid ranges");
///     Gate::builder()
///         .trusted_proxies(proxies)
///         .default_policy(IpRanges::new().allow(allowed))
///         .build()
/// };
/// let proxies = TrustedProxies::new(IpSet::parse(["10.0.0.0/8"])?);
/// let request = http::Request::get("/")
///     // The client claimed 192.0.2.1; our proxy 10.0.0.2 appended what it saw.
///     .header("x-forwarded-for", "192.0.2.1, 198.51.100.7, 10.0.0.2")
///     // Our proxies do not write `Forwarded`: this one is the client's, and is not read.
///     .header("forwarded", "for=192.0.2.1")
///     .body(())?;
/// let (parts, ()) = request.into_parts();
/// let via_proxy = RequestView::from_parts(&parts).with_peer(Some("10.0.0.1:4000".parse()?));
/// assert!(gate(proxies.clone())?.check(&via_proxy).await.is_ok()); // 198.51.100.7
/// // The same headers straight from 192.0.2.1, not a proxy: the peer is the client.
/// let direct = RequestView::from_parts(&parts).with_peer(Some("192.0.2.1:4000".parse()?));
/// assert!(gate(proxies.clone())?.check(&direct).await.is_err());
///
/// // Behind proxies that append RFC 7239 `Forwarded` instead, `X-Forwarded-For` is the client's.
/// let request = http::Request::get("/")
///     .header("forwarded", r#"for=192.0.2.1, for="[2001:db8::7]:4711""#)
///     .body(())?;
/// let (parts, ()) = request.into_parts();
/// let via_proxy = RequestView::from_parts(&parts).with_peer(Some("10.0.0.1:4000".parse()?));
/// let gate = gate(proxies.forwarded_header(ForwardedHeader::Forwarded))?;
/// assert!(gate.check(&via_proxy).await.is_ok()); // 2001:db8::7
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TrustedProxies {
    proxies: IpSet,
    header: ForwardedHeader,
    max_forwarded_entries: usize,
}

impl Default for TrustedProxies {
    /// The same as [`TrustedProxies::none`].
    fn default() -> Self {
        Self::none()
    }
}

impl TrustedProxies {
    /// Trusts no proxy: the client IP is always the connection's peer and forwarding headers are
    /// ignored. This is the default, and the only safe setting when clients connect directly.
    pub fn none() -> Self {
        Self::new(IpSet::default())
    }

    /// Believes the forwarding headers of peers inside `proxies`, and skips those addresses when
    /// they appear as hops. List only proxies you run: a trusted address the client controls lets
    /// it choose its own IP. Defaults to an empty set ([`none`](Self::none)).
    pub fn new(proxies: IpSet) -> Self {
        Self {
            proxies,
            header: ForwardedHeader::default(),
            max_forwarded_entries: DEFAULT_MAX_FORWARDED_ENTRIES,
        }
    }

    /// The header trusted proxies append the client's address to; only this one is read. Choose
    /// the one your outermost proxy writes: a header it does not write reaches the Gate as the
    /// client sent it. Defaults to [`ForwardedHeader::XForwardedFor`] (nginx, HAProxy, Kong and
    /// most load balancers).
    #[must_use]
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Refuses a forwarding header with more than `max` entries, counted over all its lines,
    /// (400). `0` refuses every forwarding header from a trusted
    /// peer. Defaults to 20.
    #[must_use]
    pub fn max_forwarded_entries(mut self, max: usize) -> Self {
        self.max_forwarded_entries = max;
        self
    }

    /// The client IP of a request that arrived from `peer` with `headers`, normalised with
    /// [`IpAddr::to_canonical`] (an IPv4-mapped address is returned as IPv4).
    ///
    /// - No peer address: `Ok(None)`; headers are not read, as nothing vouches for them.
    /// - A peer outside the trusted set: the peer.
    /// - A trusted peer without the [chosen header](Self::forwarded_header): the peer. The other
    ///   forwarding header is never read.
    /// - Otherwise the chosen header, all its lines in order, walked right to left: trusted hops
    ///   are skipped, the first untrusted hop is the client. When every hop is trusted, the
    ///   leftmost is the client.
    ///
    /// # Errors
    ///
    /// [`ClientIpError::TooManyEntries`] when the header has more entries than
    /// [`max_forwarded_entries`](Self::max_forwarded_entries), and
    /// [`ClientIpError::Unparseable`] when a value is not visible ASCII or the walk reaches an
    /// entry that is not an IP address (`for=unknown`, an obfuscated `for=_hidden`, an empty
    /// entry, garbage): the hop that wrote it is trusted, so the client is unknown and guessing
    /// would let it pick. Entries to the left of the client are never parsed.
    pub(crate) fn resolve(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<Option<IpAddr>, ClientIpError> {
        let Some(peer) = peer.map(|ip| ip.to_canonical()) else {
            return Ok(None);
        };
        if !self.proxies.contains(peer) {
            return Ok(Some(peer));
        }
        let kind = self.header;
        if !headers.contains_key(kind.header_name()) {
            return Ok(Some(peer));
        }

        let entries = self.entries(kind, headers)?;
        let mut client = peer;
        for (index, entry) in entries.iter().enumerate().rev() {
            let ip = kind
                .parse_entry(entry)
                .map_err(|why| {
                    kind.unparseable(format!("entry {} of {}: {why}", index + 1, entries.len()))
                })?
                .to_canonical();
            client = ip;
            if !self.proxies.contains(ip) {
                return Ok(Some(ip));
            }
        }
        Ok(Some(client))
    }

    /// Every entry of every line of the header, in order, refusing more than the cap before
    /// anything is parsed.
    fn entries<'h>(
        &self,
        kind: ForwardedHeader,
        headers: &'h HeaderMap,
    ) -> Result<Vec<&'h str>, ClientIpError> {
        let mut entries = Vec::new();
        for value in headers.get_all(kind.header_name()) {
            let line = value
                .to_str()
                .map_err(|_| kind.unparseable("a value is not visible ASCII".to_owned()))?;
            // Lines are split one by one, which is joining them with commas except that a quote
            // left open by one line (the client's) cannot swallow the next (a proxy's).
            for entry in Elements::new(line, kind == ForwardedHeader::Forwarded) {
                if entries.len() == self.max_forwarded_entries {
                    return Err(ClientIpError::TooManyEntries {
                        header: kind.name(),
                        max: self.max_forwarded_entries,
                    });
                }
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}

/// Why the client IP could not be determined. Either way the request is refused: a client IP that
/// cannot be known must not be guessed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ClientIpError {
    /// The forwarding header has a value that is not visible ASCII, or the walk from the right
    /// reached an entry that is not an IP address.
    #[error("cannot read the client IP from {header}: {detail}")]
    Unparseable {
        /// The header read: `Forwarded` or `X-Forwarded-For`.
        header: &'static str,
        /// What is wrong and where, quoting at most a few dozen characters of the entry.
        detail: String,
    },
    /// The forwarding header has more entries than the configured cap.
    #[error("{header} has more than {max} entries")]
    TooManyEntries {
        /// The header read: `Forwarded` or `X-Forwarded-For`.
        header: &'static str,
        /// The cap, [`TrustedProxies::max_forwarded_entries`].
        max: usize,
    },
}

/// The forwarding header [`TrustedProxies`] reads: the one your proxies write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`, what nginx (`$proxy_add_x_forwarded_for`),
    /// HAProxy (`option forwardfor`), Kong and most load balancers append. The default.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239), for proxies configured to append it.
    /// Quoted IPv6 nodes and ports are understood; `for=unknown` and obfuscated nodes are not
    /// addresses.
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            ForwardedHeader::Forwarded => "Forwarded",
            ForwardedHeader::XForwardedFor => "X-Forwarded-For",
        }
    }

    fn header_name(self) -> HeaderName {
        match self {
            ForwardedHeader::Forwarded => FORWARDED,
            ForwardedHeader::XForwardedFor => X_FORWARDED_FOR,
        }
    }

    fn unparseable(self, detail: String) -> ClientIpError {
        ClientIpError::Unparseable {
            header: self.name(),
            detail,
        }
    }

    fn parse_entry(self, entry: &str) -> Result<IpAddr, String> {
        let node = match self {
            ForwardedHeader::Forwarded => forwarded_for(entry)?,
            ForwardedHeader::XForwardedFor => Cow::Borrowed(entry.trim_matches(is_ows)),
        };
        if node.is_empty() {
            return Err("empty entry".to_owned());
        }
        parse_node(&node).ok_or_else(|| format!("`{}` is not an IP address", shown(&node)))
    }
}

/// The elements of one header line: split at commas, outside quoted strings when `quotes` is set.
/// An unterminated quote runs to the end of the line, leaving an element that will not parse.
struct Elements<'a> {
    rest: Option<&'a str>,
    quotes: bool,
}

impl<'a> Elements<'a> {
    fn new(line: &'a str, quotes: bool) -> Self {
        Self {
            rest: Some(line),
            quotes,
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in rest.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' if self.quotes => quoted = !quoted,
                b',' if !quoted => {
                    self.rest = Some(&rest[i + 1..]);
                    return Some(&rest[..i]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(rest)
    }
}

/// The `for` parameter of one `Forwarded` element, unquoted (RFC 7239 §4:
/// `forwarded-pair *( ";" forwarded-pair )`, `forwarded-pair = token "=" value`).
///
/// Parameter names match case-insensitively and other parameters are ignored. Whitespace is
/// tolerated around `;`. An unquoted value may also hold `:`, `[` and `]`, which RFC 7239 requires
/// to be quoted but some proxies do not; the structure itself is parsed strictly, so a quote
/// the client left open can never turn a proxy's element into a different valid one.
fn forwarded_for(element: &str) -> Result<Cow<'_, str>, String> {
    let mut rest = element.trim_matches(is_ows);
    if rest.is_empty() {
        return Err("empty element".to_owned());
    }
    let mut found = None;
    loop {
        let name_len = rest.bytes().take_while(|&b| is_tchar(b)).count();
        let (name, after) = rest.split_at(name_len);
        let after = match after.strip_prefix('=') {
            Some(after) if !name.is_empty() => after,
            _ => return Err(format!("malformed parameter in `{}`", shown(element))),
        };
        let (value, after) = if after.starts_with('"') {
            quoted_string(after)
                .ok_or_else(|| format!("unterminated quoted string in `{}`", shown(element)))?
        } else {
            let len = after.bytes().take_while(|&b| is_value_char(b)).count();
            (Cow::Borrowed(&after[..len]), &after[len..])
        };
        if name.eq_ignore_ascii_case("for") && found.replace(value).is_some() {
            return Err(format!("`for` appears twice in `{}`", shown(element)));
        }
        let after = after.trim_start_matches(is_ows);
        if after.is_empty() {
            break;
        }
        rest = match after.strip_prefix(';') {
            Some(next) => next.trim_start_matches(is_ows),
            None => return Err(format!("malformed parameter in `{}`", shown(element))),
        };
    }
    found.ok_or_else(|| format!("no `for` parameter in `{}`", shown(element)))
}

/// A quoted-string at the start of `s` (RFC 9110 §5.6.4), unescaped, and what follows it.
fn quoted_string(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let body = s.strip_prefix('"')?;
    let mut unescaped: Option<String> = None;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = match unescaped {
                    Some(owned) => Cow::Owned(owned),
                    None => Cow::Borrowed(&body[..i]),
                };
                return Some((value, &body[i + 1..]));
            }
            '\\' => {
                let (_, next) = chars.next()?;
                unescaped
                    .get_or_insert_with(|| body[..i].to_owned())
                    .push(next);
            }
            c => {
                if let Some(owned) = &mut unescaped {
                    owned.push(c);
                }
            }
        }
    }
    None
}

/// An RFC 7239 §6 node: `a.b.c.d`, `a.b.c.d:port`, `[v6]`, `[v6]:port`, and, as
/// `X-Forwarded-For` writes it, a bare `v6`. Ports may be obfuscated (`_abc`). `unknown` and
/// obfuscated node names (`_hidden`) are not addresses and give `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(bracketed) = node.strip_prefix('[') {
        let (addr, after) = bracketed.split_once(']')?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    // A bare IPv6 address is taken whole: `2001:db8::1:80` is an address, not one with a port.
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    let (addr, port) = node.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// `port = 1*5DIGIT` (at most 65535) or `obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")`.
fn is_port(port: &str) -> bool {
    if let Some(obfuscated) = port.strip_prefix('_') {
        return !obfuscated.is_empty()
            && obfuscated
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    }
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65535)
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_value_char(b: u8) -> bool {
    is_tchar(b) || matches!(b, b':' | b'[' | b']')
}

/// The start of an entry for an error message. Entries are visible ASCII (checked before
/// splitting), so cutting at a byte index cannot split a character.
fn shown(entry: &str) -> Cow<'_, str> {
    match entry.get(..SHOWN_CHARS) {
        Some(start) if start.len() < entry.len() => Cow::Owned(format!("{start}…")),
        _ => Cow::Borrowed(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Trusts 10.0.0.0/8 and fd00::/8.
    fn proxies() -> TrustedProxies {
        TrustedProxies::new(IpSet::parse(["10.0.0.0/8", "fd00::/8"]).unwrap())
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for &(name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn xff(value: &str) -> HeaderMap {
        headers(&[("x-forwarded-for", value)])
    }

    fn fwd(value: &str) -> HeaderMap {
        headers(&[("forwarded", value)])
    }

    const PROXY: &str = "10.0.0.1";

    /// Trusts 10.0.0.0/8 and fd00::/8, reading `header`.
    fn reading(header: ForwardedHeader) -> TrustedProxies {
        proxies().forwarded_header(header)
    }

    /// Resolves behind [`PROXY`], reading the one forwarding header the fixture holds (fixtures
    /// with both headers call [`reading`] themselves).
    fn resolve(headers: &HeaderMap) -> Result<Option<IpAddr>, ClientIpError> {
        let header = if headers.contains_key(FORWARDED) {
            ForwardedHeader::Forwarded
        } else {
            ForwardedHeader::XForwardedFor
        };
        reading(header).resolve(Some(ip(PROXY)), headers)
    }

    fn client(headers: &HeaderMap) -> IpAddr {
        resolve(headers).unwrap().unwrap()
    }

    fn unparseable(headers: &HeaderMap) -> String {
        match resolve(headers) {
            Err(err @ ClientIpError::Unparseable { .. }) => err.to_string(),
            other => panic!("expected Unparseable, got {other:?}"),
        }
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_forwards() {
        let peer = ip("203.0.113.9");
        for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            for forged in [
                xff("10.0.0.5"),
                xff("198.51.100.1, 10.0.0.5"),
                fwd("for=10.0.0.5"),
                fwd("for=unknown"),
                xff("garbage"),
                xff(&"1.1.1.1,".repeat(100)),
                fwd(&"for=1.1.1.1,".repeat(100)),
            ] {
                assert_eq!(reading(header).resolve(Some(peer), &forged), Ok(Some(peer)));
            }
        }
    }

    #[test]
    fn x_forwarded_for_is_read_by_default() {
        assert_eq!(ForwardedHeader::default(), ForwardedHeader::XForwardedFor);
        let h = xff("198.51.100.1");
        assert_eq!(
            proxies().resolve(Some(ip(PROXY)), &h),
            Ok(Some(ip("198.51.100.1")))
        );
    }

    /// A proxy that appends only X-Forwarded-For passes a client's `Forwarded` through untouched
    /// (and the other way round): the header not chosen is the client's word and never read.
    #[test]
    fn only_the_chosen_header_is_read() {
        let xff_proxy = reading(ForwardedHeader::XForwardedFor);
        let fwd_proxy = reading(ForwardedHeader::Forwarded);
        let peer = Some(ip(PROXY));
        // Reading X-Forwarded-For: a forged Forwarded, before or after it, changes nothing.
        for h in [
            headers(&[
                ("forwarded", "for=192.0.2.1"),
                ("x-forwarded-for", "198.51.100.1"),
            ]),
            headers(&[
                ("x-forwarded-for", "198.51.100.1"),
                ("forwarded", "for=192.0.2.1"),
            ]),
            headers(&[
                ("x-forwarded-for", "198.51.100.1, 10.0.0.2"),
                ("forwarded", "for=unknown"),
            ]),
            headers(&[
                ("x-forwarded-for", "198.51.100.1"),
                ("forwarded", &"for=192.0.2.1,".repeat(100)),
            ]),
        ] {
            assert_eq!(
                xff_proxy.resolve(peer, &h),
                Ok(Some(ip("198.51.100.1"))),
                "{h:?}"
            );
        }
        // A lone forged Forwarded is no forwarding header at all: the client is the peer.
        assert_eq!(xff_proxy.resolve(peer, &fwd("for=192.0.2.1")), Ok(peer));
        assert_eq!(xff_proxy.resolve(peer, &fwd("for=unknown")), Ok(peer));

        // Reading Forwarded: a forged X-Forwarded-For changes nothing.
        for h in [
            headers(&[
                ("x-forwarded-for", "192.0.2.1"),
                ("forwarded", "for=198.51.100.1"),
            ]),
            headers(&[
                ("forwarded", "for=198.51.100.1;proto=https"),
                ("x-forwarded-for", "192.0.2.1"),
            ]),
            headers(&[
                ("forwarded", "for=198.51.100.1"),
                ("x-forwarded-for", "garbage"),
            ]),
            headers(&[
                ("forwarded", "for=198.51.100.1"),
                ("x-forwarded-for", &"192.0.2.1,".repeat(100)),
            ]),
        ] {
            assert_eq!(
                fwd_proxy.resolve(peer, &h),
                Ok(Some(ip("198.51.100.1"))),
                "{h:?}"
            );
        }
        assert_eq!(fwd_proxy.resolve(peer, &xff("192.0.2.1")), Ok(peer));
        assert_eq!(fwd_proxy.resolve(peer, &xff("garbage")), Ok(peer));

        // A bad chosen header is an error, never a fall back to the other one.
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("forwarded", "for=unknown"),
        ]);
        assert!(matches!(
            fwd_proxy.resolve(peer, &h),
            Err(ClientIpError::Unparseable {
                header: "Forwarded",
                ..
            })
        ));
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.1, garbage"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        assert!(matches!(
            xff_proxy.resolve(peer, &h),
            Err(ClientIpError::Unparseable {
                header: "X-Forwarded-For",
                ..
            })
        ));
    }

    #[test]
    fn trusting_nobody_always_gives_the_peer() {
        let peer = ip("10.0.0.1");
        for trust in [TrustedProxies::none(), TrustedProxies::default()] {
            assert_eq!(
                trust.resolve(Some(peer), &xff("198.51.100.1")),
                Ok(Some(peer))
            );
        }
    }

    #[test]
    fn unknown_peer_gives_unknown_client() {
        assert_eq!(proxies().resolve(None, &xff("198.51.100.1")), Ok(None));
        assert_eq!(
            TrustedProxies::none().resolve(None, &HeaderMap::new()),
            Ok(None)
        );
    }

    #[test]
    fn trusted_peer_without_forwarding_header_is_the_client() {
        let h = headers(&[("x-real-ip", "198.51.100.1"), ("via", "1.1 proxy")]);
        assert_eq!(client(&h), ip(PROXY));
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let cases = [
            ("198.51.100.1", "198.51.100.1"),
            ("198.51.100.1, 10.0.0.2", "198.51.100.1"),
            ("6.6.6.6, 198.51.100.1, 10.0.0.2, 10.9.9.9", "198.51.100.1"),
            ("10.0.0.7, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
            // The client claims to be a trusted proxy: it is still the rightmost untrusted hop.
            ("10.0.0.7, 6.6.6.6, 198.51.100.1", "198.51.100.1"),
            ("fd00::9, 2001:db8::7, fd00::1", "2001:db8::7"),
            ("2001:db8::7, 10.0.0.3, fd00::1", "2001:db8::7"),
        ];
        for (value, want) in cases {
            assert_eq!(client(&xff(value)), ip(want), "{value}");
        }
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        assert_eq!(client(&xff("10.0.0.7, 10.0.0.8, fd00::1")), ip("10.0.0.7"));
        assert_eq!(client(&xff("10.0.0.7")), ip("10.0.0.7"));
    }

    #[test]
    fn garbage_reached_by_the_walk_is_an_error() {
        for value in [
            "garbage",
            "198.51.100.1, garbage",
            "198.51.100.1, garbage, 10.0.0.2",
            "198.51.100.1, 1.2.3",
            "198.51.100.1, 1.2.3.4.5",
            "198.51.100.1, 010.0.0.1",
            "198.51.100.1, 1.2.3.4:99999",
            "198.51.100.1, 1.2.3.4:",
            "198.51.100.1, fe80::1%eth0",
            "198.51.100.1, [2001:db8::1",
            "198.51.100.1, [1.2.3.4]",
            "198.51.100.1, \"1.2.3.4\"",
            "198.51.100.1, unknown",
            "10.0.0.2, _hidden",
        ] {
            unparseable(&xff(value));
        }
    }

    #[test]
    fn garbage_left_of_the_client_is_never_read() {
        assert_eq!(
            client(&xff("garbage, 198.51.100.1, 10.0.0.2")),
            ip("198.51.100.1")
        );
        assert_eq!(client(&xff(", , x, 198.51.100.1")), ip("198.51.100.1"));
        assert_eq!(
            client(&fwd("for=unknown, for=\"x,y\", for=198.51.100.1")),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn error_messages_say_which_header_and_entry() {
        let message = unparseable(&xff("198.51.100.1, foo, 10.0.0.2"));
        assert_eq!(
            message,
            "cannot read the client IP from X-Forwarded-For: entry 2 of 3: `foo` is not an IP address"
        );
        let message = unparseable(&fwd("for=unknown"));
        assert_eq!(
            message,
            "cannot read the client IP from Forwarded: entry 1 of 1: `unknown` is not an IP address"
        );
        let long = format!("198.51.100.1, {}", "a".repeat(500));
        let message = unparseable(&xff(&long));
        assert!(message.len() < 150, "{message}");
        assert!(message.contains("aaa…`"), "{message}");
    }

    #[test]
    fn too_many_entries_is_an_error() {
        let chain = |n: usize| vec!["198.51.100.1"; n].join(", ");
        assert_eq!(client(&xff(&chain(20))), ip("198.51.100.1"));
        let err = resolve(&xff(&chain(21))).unwrap_err();
        assert_eq!(
            err,
            ClientIpError::TooManyEntries {
                header: "X-Forwarded-For",
                max: 20
            }
        );
        assert_eq!(err.to_string(), "X-Forwarded-For has more than 20 entries");
        // The cap counts every line, and empty entries.
        let lines = headers(&[
            ("x-forwarded-for", chain(3).as_str()),
            ("x-forwarded-for", ",,"),
        ]);
        let trust = proxies().max_forwarded_entries(5);
        assert!(matches!(
            trust.resolve(Some(ip(PROXY)), &lines),
            Err(ClientIpError::TooManyEntries { max: 5, .. })
        ));
        let trust = proxies().max_forwarded_entries(0);
        assert!(
            trust
                .resolve(Some(ip(PROXY)), &xff("198.51.100.1"))
                .is_err()
        );
        let long_fwd = vec!["for=198.51.100.1"; 21].join(",");
        assert!(matches!(
            resolve(&fwd(&long_fwd)),
            Err(ClientIpError::TooManyEntries {
                header: "Forwarded",
                ..
            })
        ));
    }

    #[test]
    fn multiple_header_lines_are_read_in_order() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.1, 10.0.0.3"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(client(&h), ip("198.51.100.1"));
        let h = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("forwarded", "for=198.51.100.1"),
            ("forwarded", "for=10.0.0.2;proto=https"),
        ]);
        assert_eq!(client(&h), ip("198.51.100.1"));
        // A quote the client left open stays on its own line.
        let h = headers(&[
            ("forwarded", "for=\"6.6.6.6"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        assert_eq!(client(&h), ip("198.51.100.1"));
    }

    #[test]
    fn forwarded_quoted_ipv6_and_ports() {
        let cases = [
            (r#"for="[2001:db8::1]:4711""#, "2001:db8::1"),
            (r#"for="[2001:db8::1]""#, "2001:db8::1"),
            (r#"for="198.51.100.1:4711""#, "198.51.100.1"),
            (r#"for="198.51.100.1:_abc-1""#, "198.51.100.1"),
            (r#"for="[2001:db8::1]:_port""#, "2001:db8::1"),
            (r#"for=198.51.100.1"#, "198.51.100.1"),
            (r#"for="198.51.100.1""#, "198.51.100.1"),
            (r#"for="198.51.100.\1""#, "198.51.100.1"),
            // Unquoted forms RFC 7239 forbids but some proxies write.
            (r#"for=198.51.100.1:4711"#, "198.51.100.1"),
            (r#"for=[2001:db8::1]:4711"#, "2001:db8::1"),
        ];
        for (value, want) in cases {
            assert_eq!(client(&fwd(value)), ip(want), "{value}");
        }
    }

    #[test]
    fn forwarded_parameters() {
        let cases = [
            ("For=198.51.100.1", "198.51.100.1"),
            ("FOR=198.51.100.1", "198.51.100.1"),
            (
                "by=10.0.0.1;for=198.51.100.1;host=example.com;proto=https",
                "198.51.100.1",
            ),
            (
                "by=\"[fd00::1]\" ; for=198.51.100.1 ; proto=https",
                "198.51.100.1",
            ),
            ("for=198.51.100.1;ext=\"a,b;c=d\"", "198.51.100.1"),
            (
                "for=6.6.6.6, for=198.51.100.1;by=10.0.0.2, for=10.0.0.2;proto=http",
                "198.51.100.1",
            ),
            ("for=198.51.100.1 ,\tfor=10.0.0.2", "198.51.100.1"),
        ];
        for (value, want) in cases {
            assert_eq!(client(&fwd(value)), ip(want), "{value}");
        }
    }

    #[test]
    fn forwarded_malformed_elements_are_errors() {
        for value in [
            "for=unknown",
            "for=UNKNOWN",
            "for=_hidden",
            "for=\"_hidden:80\"",
            "for=\"[2001:db8::1]:99999\"",
            "for=\"[2001:db8::1]\"x",
            "for=\"198.51.100.1",
            "for=",
            "for=\"\"",
            "proto=https",
            "for=198.51.100.1;for=198.51.100.2",
            "for=198.51.100.1;",
            "for = 198.51.100.1",
            ";for=198.51.100.1",
            "for=198.51.100.1 proto=https",
            "=198.51.100.1",
            "for=\" 198.51.100.1\"",
            "for=2001:db8::1:80:80:80:80:80",
            "198.51.100.1",
        ] {
            unparseable(&fwd(value));
        }
    }

    #[test]
    fn x_forwarded_for_ports_and_brackets_are_stripped() {
        let cases = [
            ("198.51.100.1:4711", "198.51.100.1"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            // Bare IPv6 with a numeric last group is an address, not address and port.
            ("2001:db8::1:80", "2001:db8::1:80"),
        ];
        for (value, want) in cases {
            assert_eq!(client(&xff(value)), ip(want), "{value}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_normalised() {
        let trust = proxies();
        // A mapped peer inside 10.0.0.0/8 is trusted.
        let peer = ip("::ffff:10.0.0.1");
        assert_eq!(
            trust.resolve(Some(peer), &xff("198.51.100.1")),
            Ok(Some(ip("198.51.100.1")))
        );
        // A mapped untrusted peer is returned as IPv4.
        let peer = ip("::ffff:203.0.113.9");
        assert_eq!(
            trust.resolve(Some(peer), &xff("198.51.100.1")),
            Ok(Some(ip("203.0.113.9")))
        );
        // Mapped hops are skipped when trusted and returned as IPv4.
        assert_eq!(
            client(&xff("::ffff:198.51.100.1, ::ffff:10.0.0.2")),
            ip("198.51.100.1")
        );
        assert_eq!(
            client(&fwd(
                r#"for="[::ffff:198.51.100.1]:80", for="[::ffff:10.0.0.2]""#
            )),
            ip("198.51.100.1")
        );
        assert_eq!(client(&xff("::ffff:10.0.0.2")), ip("10.0.0.2"));
        assert_eq!(
            trust.resolve(Some(ip("::ffff:10.0.0.1")), &HeaderMap::new()),
            Ok(Some(ip("10.0.0.1")))
        );
    }

    #[test]
    fn empty_values_are_errors() {
        unparseable(&xff(""));
        unparseable(&xff("  "));
        unparseable(&fwd(""));
        unparseable(&xff("198.51.100.1,"));
        unparseable(&xff("198.51.100.1, , 10.0.0.2"));
        unparseable(&headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", ""),
        ]));
        unparseable(&fwd("for=198.51.100.1, , for=10.0.0.2"));
    }

    #[test]
    fn whitespace_around_commas_is_ignored() {
        assert_eq!(
            client(&xff(" 198.51.100.1 ,10.0.0.2\t, 10.0.0.3 ")),
            ip("198.51.100.1")
        );
        assert_eq!(client(&xff("198.51.100.1,10.0.0.2")), ip("198.51.100.1"));
        assert_eq!(
            client(&fwd(" for=198.51.100.1\t,  for=10.0.0.2 ")),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn non_ascii_values_are_errors() {
        for bytes in [&b"198.51.100.1, 10.0.0.\xff"[..], b"\xc3\xa9, 198.51.100.1"] {
            let mut h = HeaderMap::new();
            h.insert(X_FORWARDED_FOR, HeaderValue::from_bytes(bytes).unwrap());
            assert_eq!(
                resolve(&h),
                Err(ClientIpError::Unparseable {
                    header: "X-Forwarded-For",
                    detail: "a value is not visible ASCII".to_owned()
                })
            );
        }
    }

    // --- properties ---

    /// One hop of a forwarding chain.
    #[derive(Clone, Debug)]
    enum Hop {
        Trusted(IpAddr),
        Untrusted(IpAddr),
        Garbage(&'static str),
    }

    /// How an address is written, so the properties cover every accepted spelling.
    #[derive(Clone, Copy, Debug)]
    struct Style {
        port: bool,
        mapped: bool,
        quoted: bool,
        spaces: bool,
    }

    const XFF_GARBAGE: [&str; 6] = ["unknown", "_hidden", "", "1.2.3", "[::1", "1.2.3.4:0x50"];
    const FWD_GARBAGE: [&str; 6] = [
        "for=unknown",
        "for=_hidden",
        "proto=https",
        "for=\"[::1]\"x",
        "for=1.2.3.4;for=1.2.3.5",
        "",
    ];

    /// Distinct addresses per position, so a result tells which hop it came from.
    fn hop(index: usize) -> impl Strategy<Value = Hop> {
        let i = index as u8;
        let garbage = (0..XFF_GARBAGE.len()).prop_map(|g| Hop::Garbage(XFF_GARBAGE[g]));
        prop_oneof![
            4 => prop_oneof![
                Just(Hop::Trusted(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))),
                Just(Hop::Trusted(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i.into())))),
            ],
            4 => prop_oneof![
                Just(Hop::Untrusted(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)))),
                Just(Hop::Untrusted(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i.into())))),
            ],
            1 => garbage,
        ]
    }

    fn chain() -> impl Strategy<Value = Vec<Hop>> {
        (1usize..12).prop_flat_map(|n| (0..n).map(hop).collect::<Vec<_>>())
    }

    fn style() -> impl Strategy<Value = Style> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(port, mapped, quoted, spaces)| Style {
                port,
                mapped,
                quoted,
                spaces,
            },
        )
    }

    fn render(hop: &Hop, style: Style, forwarded: bool) -> String {
        let addr = match *hop {
            Hop::Trusted(a) | Hop::Untrusted(a) => a,
            Hop::Garbage(g) => {
                // Same garbage index in either header, so the model does not care which.
                let i = XFF_GARBAGE.iter().position(|x| *x == g).unwrap();
                return if forwarded { FWD_GARBAGE[i] } else { g }.to_owned();
            }
        };
        let addr = match addr {
            IpAddr::V4(v4) if style.mapped => IpAddr::V6(v4.to_ipv6_mapped()),
            a => a,
        };
        let node = match (addr, style.port) {
            (IpAddr::V4(a), false) => a.to_string(),
            (IpAddr::V4(a), true) => format!("{a}:4711"),
            (IpAddr::V6(a), false) if !forwarded && !style.quoted => a.to_string(),
            (IpAddr::V6(a), false) => format!("[{a}]"),
            (IpAddr::V6(a), true) => format!("[{a}]:4711"),
        };
        let entry = if !forwarded {
            node
        } else if style.quoted || node.contains(['[', ':']) {
            format!("for=\"{node}\"")
        } else {
            format!("for={node}")
        };
        if style.spaces {
            format!(" {entry}\t")
        } else {
            entry
        }
    }

    /// Renders the chain as one header, broken into lines at `breaks`.
    fn render_headers(
        hops: &[Hop],
        styles: &[Style],
        breaks: &[bool],
        forwarded: bool,
    ) -> HeaderMap {
        let name = if forwarded {
            "forwarded"
        } else {
            "x-forwarded-for"
        };
        let mut lines = vec![String::new()];
        for (i, hop) in hops.iter().enumerate() {
            if i > 0 && breaks[i % breaks.len()] {
                lines.push(String::new());
            } else if i > 0 {
                lines.last_mut().unwrap().push(',');
            }
            let entry = render(hop, styles[i % styles.len()], forwarded);
            lines.last_mut().unwrap().push_str(&entry);
        }
        let lines: Vec<(&str, &str)> = lines.iter().map(|l| (name, l.as_str())).collect();
        headers(&lines)
    }

    fn chosen(forwarded: bool) -> ForwardedHeader {
        if forwarded {
            ForwardedHeader::Forwarded
        } else {
            ForwardedHeader::XForwardedFor
        }
    }

    /// What the contract says, hop by hop.
    fn model(hops: &[Hop]) -> Result<IpAddr, ()> {
        for hop in hops.iter().rev() {
            match *hop {
                Hop::Trusted(_) => continue,
                Hop::Untrusted(a) => return Ok(a),
                Hop::Garbage(_) => return Err(()),
            }
        }
        match hops[0] {
            Hop::Trusted(a) => Ok(a),
            _ => unreachable!("the walk ended on a trusted hop"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn never_left_of_the_rightmost_untrusted_hop(
            hops in chain(),
            styles in prop::collection::vec(style(), 1..5),
            breaks in prop::collection::vec(prop::bool::weighted(0.2), 1..5),
            forwarded in any::<bool>(),
            mapped_peer in any::<bool>(),
        ) {
            let h = render_headers(&hops, &styles, &breaks, forwarded);
            let peer = if mapped_peer { ip("::ffff:10.0.0.1") } else { ip("10.0.0.1") };
            let got = reading(chosen(forwarded)).resolve(Some(peer), &h);
            match model(&hops) {
                Ok(want) => prop_assert_eq!(got.clone(), Ok(Some(want)), "{:?}", h),
                Err(()) => prop_assert!(
                    matches!(got, Err(ClientIpError::Unparseable { .. })), "{:?} gave {:?}", h, got
                ),
            }
            if let Ok(Some(got)) = got {
                let position = hops.iter().position(|hop| {
                    matches!(*hop, Hop::Trusted(a) | Hop::Untrusted(a) if a == got)
                });
                let rightmost_untrusted = hops.iter().rposition(|hop| matches!(hop, Hop::Untrusted(_)));
                if let (Some(position), Some(rightmost)) = (position, rightmost_untrusted) {
                    prop_assert!(position >= rightmost, "{:?} gave hop {}", h, position);
                }
                prop_assert!(position.is_some(), "{:?} gave an address no hop has", h);
            }
        }

        #[test]
        fn a_client_cannot_choose_its_address(
            prefix in "[ -~]{0,60}",
            client in prop_oneof![
                Just(ip("198.51.100.1")),
                Just(ip("2001:db8::1")),
                Just(ip("::ffff:198.51.100.1")),
            ],
            trusted_hops in 0usize..3,
            separate_line in any::<bool>(),
            forwarded in any::<bool>(),
            other_header in prop::option::of("[ -~]{0,60}"),
        ) {
            // Whatever the client sends, each of our proxies appends the address it saw.
            let style = Style { port: false, mapped: false, quoted: false, spaces: true };
            let mut appended = vec![render(&Hop::Untrusted(client), style, forwarded)];
            for i in 0..trusted_hops {
                let hop = Hop::Trusted(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 2)));
                appended.push(render(&hop, style, forwarded));
            }
            let appended = appended.join(",");
            let name = if forwarded { "forwarded" } else { "x-forwarded-for" };
            let mut h = if separate_line {
                headers(&[(name, prefix.as_str()), (name, appended.as_str())])
            } else {
                headers(&[(name, format!("{prefix},{appended}").as_str())])
            };
            // Our proxies do not touch the header they do not write: the client fills it freely.
            if let Some(forged) = &other_header {
                let other = if forwarded { X_FORWARDED_FOR } else { FORWARDED };
                h.append(other, HeaderValue::from_str(forged).unwrap());
            }
            let trust = reading(chosen(forwarded));
            let got = trust.resolve(Some(ip(PROXY)), &h);
            let want = client.to_canonical();
            match got {
                Ok(Some(ip)) => prop_assert_eq!(ip, want, "{:?}", h),
                Ok(None) => prop_assert!(false, "no client for {:?}", h),
                // Only the client's own request fails: a quote it left open on our line, or a cap.
                Err(ClientIpError::Unparseable { .. }) => {
                    prop_assert!(forwarded && !separate_line && prefix.contains('"'), "{:?}", h)
                }
                Err(ClientIpError::TooManyEntries { .. }) => prop_assert!(prefix.contains(','), "{:?}", h),
            }
            // Under the cap, X-Forwarded-For always finds the client.
            if !forwarded && prefix.matches(',').count() + 3 + trusted_hops <= 20 {
                prop_assert_eq!(trust.resolve(Some(ip(PROXY)), &h), Ok(Some(want)));
            }
        }

        #[test]
        fn arbitrary_headers_never_panic(
            lines in prop::collection::vec("[\t -~]{0,80}", 1..4),
            forwarded in any::<bool>(),
        ) {
            let name = if forwarded { "forwarded" } else { "x-forwarded-for" };
            let pairs: Vec<(&str, &str)> = lines.iter().map(|l| (name, l.as_str())).collect();
            let h = headers(&pairs);
            if let Ok(Some(got)) = reading(chosen(forwarded)).resolve(Some(ip(PROXY)), &h) {
                // Whatever came out is an address some hop wrote (IPv6 has many spellings, and
                // quoted-pairs and mapped forms change IPv4 ones, so only plain IPv4 is checked).
                let text = lines.join(",");
                let respelled = got.is_ipv6() || text.contains(['\\', '[']) || text.contains("::");
                prop_assert!(
                    got == ip(PROXY) || respelled || text.contains(&got.to_string()),
                    "{:?} gave {}", lines, got
                );
            }
        }
    }
}
