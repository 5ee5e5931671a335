//! The client address of a request, resolved behind trusted reverse proxies.
//!
//! Lock-outs, the anonymous rate limit and the audit `client` field all need the address of
//! the client, not of the load balancer in front of the service. [`ClientAddrLayer`] resolves
//! it once per request from the socket peer (`ConnectInfo<SocketAddr>`) and, only when that
//! peer is a trusted proxy, from the header the proxies write: RFC 7239 `Forwarded` (`for=`)
//! or `X-Forwarded-For`. [`audit::client`](crate::audit::client) reads the result, and falls
//! back to the socket peer when the layer is not installed: unconfigured, a forwarding header
//! changes nothing.
//!
//! ```
//! use apiauth_core::client_addr::{ForwardedHeader, TrustedProxies};
//! use axum::{routing::get, Router};
//!
//! // Two load balancers in 10.0.0.0/8 append to X-Forwarded-For.
//! let proxies = TrustedProxies::cidrs(["10.0.0.0/8"])
//!     .unwrap()
//!     .header(ForwardedHeader::XForwardedFor);
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hi" }))
//!     .layer(proxies.layer()); // outermost: before authentication and quotas
//! ```
//!
//! The header is read from the right: each proxy appends the address it received the
//! request from, so the entries a client sent itself come first and only the rightmost ones
//! were written by proxies that can be believed. The client is the first entry, walking from
//! the right, that is not a trusted proxy ([`TrustedProxies::cidrs`]), or the entry a fixed
//! number of hops in ([`TrustedProxies::hops`]). An entry that is not an address (`unknown`,
//! an RFC 7239 §6.3 obfuscated name, garbage) stops the walk at the proxy that wrote it, so a
//! malformed header can never make the address an attacker's choice.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use http::{HeaderMap, HeaderName, Request};
use tower::{Layer, Service};

/// The client address of a request as [`ClientAddrLayer`] resolved it; read it with
/// [`audit::client`](crate::audit::client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// The header a deployment's proxies write the client address into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// RFC 7239 `Forwarded: for=…` (the standard; the default).
    #[default]
    Forwarded,
    /// The de-facto `X-Forwarded-For: client, proxy1, …`.
    XForwardedFor,
}

impl ForwardedHeader {
    fn name(self) -> HeaderName {
        match self {
            ForwardedHeader::Forwarded => http::header::FORWARDED,
            ForwardedHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
        }
    }
}

/// A startup error of [`TrustedProxies`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAddrConfigError {
    /// A proxy range is not `address` or `address/prefix`.
    #[error("`{0}` is not an IP address or CIDR range")]
    BadCidr(String),
    /// A hop count of zero trusts no proxy: use [`TrustedProxies::none`].
    #[error("a hop count must be at least 1")]
    ZeroHops,
}

/// An IP range: an address and how many leading bits of it are fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    net: u128,
    mask: u128,
    v4: bool,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().ok()?;
        let (value, width, v4) = match canonical(addr) {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32, true),
            IpAddr::V6(a) => (u128::from(a), 128u32, false),
        };
        let bits = match bits {
            Some(b) => b.trim().parse::<u32>().ok().filter(|b| *b <= width)?,
            None => width,
        };
        // The mask within the address's own width: `bits` leading ones.
        let ones = u128::MAX.checked_shl(width - bits).unwrap_or(0);
        let mask = if v4 {
            ones & u128::from(u32::MAX)
        } else {
            ones
        };
        Some(Cidr {
            net: value & mask,
            mask,
            v4,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => self.v4 && u128::from(u32::from(a)) & self.mask == self.net,
            IpAddr::V6(a) => !self.v4 && u128::from(a) & self.mask == self.net,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Clone, Debug)]
enum Trust {
    Nobody,
    Cidrs(Arc<[Cidr]>),
    Hops(usize),
}

/// Which peers are reverse proxies whose forwarding header is believed.
///
/// The default, [`none`](Self::none), believes no header: the client is the socket peer.
#[derive(Clone, Debug)]
#[must_use]
pub struct TrustedProxies {
    trust: Trust,
    header: ForwardedHeader,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self::none()
    }
}

/// At most this many entries of a forwarding header are walked; a longer chain resolves to
/// the entry reached there (all of them were trusted proxies).
pub const MAX_HOPS: usize = 32;

impl TrustedProxies {
    /// No proxy is trusted: the client is the socket peer and forwarding headers are ignored.
    pub fn none() -> Self {
        TrustedProxies {
            trust: Trust::Nobody,
            header: ForwardedHeader::default(),
        }
    }

    /// Proxies are the peers in these ranges (`10.0.0.0/8`, `2001:db8::/32`, or a single
    /// address). A request from any other peer is taken at its socket address, whatever its
    /// headers say, and a forwarded entry inside a range is skipped as one more proxy.
    pub fn cidrs<I, S>(ranges: I) -> Result<Self, ClientAddrConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cidrs = ranges
            .into_iter()
            .map(|r| {
                let r = r.as_ref();
                Cidr::parse(r).ok_or_else(|| ClientAddrConfigError::BadCidr(r.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies {
            trust: Trust::Cidrs(cidrs.into()),
            header: ForwardedHeader::default(),
        })
    }

    /// Exactly `n` proxies stand in front of the service, whatever their addresses: the
    /// client is the `n`-th entry from the right of the header. Only for a service that
    /// cannot be reached except through those proxies (a peer that bypasses them chooses its
    /// own address); prefer [`cidrs`](Self::cidrs).
    pub fn hops(n: usize) -> Result<Self, ClientAddrConfigError> {
        if n == 0 {
            return Err(ClientAddrConfigError::ZeroHops);
        }
        Ok(TrustedProxies {
            trust: Trust::Hops(n),
            header: ForwardedHeader::default(),
        })
    }

    /// The header the proxies write. Default: RFC 7239 `Forwarded`. Name exactly the one your
    /// proxies set: a client can send the other one itself.
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether a peer is a trusted proxy (with a hop count, every peer is).
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        match &self.trust {
            Trust::Nobody => false,
            Trust::Cidrs(c) => c.iter().any(|c| c.contains(peer)),
            Trust::Hops(_) => true,
        }
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let name = self.header.name();
        // Each proxy appends: later header lines, and later entries within a line, are
        // nearer to us (RFC 7239 §4, RFC 9110 §5.3 on combining field lines).
        let mut entries = headers
            .get_all(&name)
            .iter()
            .rev()
            .flat_map(|v| v.as_bytes().rsplit(|b| *b == b','))
            .map(|e| match self.header {
                ForwardedHeader::Forwarded => forwarded_for(e),
                ForwardedHeader::XForwardedFor => node(e),
            });
        let mut last = peer;
        match &self.trust {
            Trust::Nobody => peer,
            Trust::Hops(n) => {
                for _ in 0..(*n).min(MAX_HOPS) {
                    match entries.next() {
                        Some(Some(ip)) => last = ip,
                        // No more entries: the leftmost one a proxy wrote. Not an address:
                        // the proxy that wrote it is as near as we can tell.
                        Some(None) | None => break,
                    }
                }
                last
            }
            Trust::Cidrs(_) => {
                for _ in 0..MAX_HOPS {
                    match entries.next() {
                        Some(Some(ip)) => {
                            last = ip;
                            if !self.trusts(ip) {
                                break;
                            }
                        }
                        Some(None) | None => break,
                    }
                }
                last
            }
        }
    }

    /// The layer that resolves the client address of every request into a [`ClientAddr`]
    /// extension. Put it outermost, so that every layer inside sees the extension.
    pub fn layer(self) -> ClientAddrLayer {
        ClientAddrLayer {
            proxies: Arc::new(self),
        }
    }
}

/// The address of an RFC 7239 forwarded-element's `for=` parameter (§4, §5.2), if it is one.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    element.split(|b| *b == b';').find_map(|pair| {
        let pair = trim(pair);
        let eq = pair.iter().position(|b| *b == b'=')?;
        let (k, v) = (&pair[..eq], &pair[eq + 1..]);
        if !trim(k).eq_ignore_ascii_case(b"for") {
            return None;
        }
        let v = trim(v);
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        Some(node(v))
    })?
}

/// A node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711` or a bare
/// IPv6 address (as `X-Forwarded-For` writes it). `unknown`, obfuscated names and anything
/// else are `None`.
fn node(raw: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(trim(raw)).ok()?;
    if s.len() > 64 {
        return None;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, _) = rest.split_once(']')?;
        return v6
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|a| canonical(a.into()));
    }
    s.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// The layer made by [`TrustedProxies::layer`].
#[derive(Clone)]
pub struct ClientAddrLayer {
    proxies: Arc<TrustedProxies>,
}

impl fmt::Debug for ClientAddrLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAddrLayer")
            .field("proxies", &self.proxies)
            .finish()
    }
}

impl<S> Layer<S> for ClientAddrLayer {
    type Service = ClientAddrService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientAddrService {
            inner,
            proxies: self.proxies.clone(),
        }
    }
}

/// The service made by [`ClientAddrLayer`].
#[derive(Clone, Debug)]
pub struct ClientAddrService<S> {
    inner: S,
    proxies: Arc<TrustedProxies>,
}

impl<S, B> Service<Request<B>> for ClientAddrService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
            let ip = self.proxies.resolve(peer.ip(), req.headers());
            req.extensions_mut().insert(ClientAddr(ip));
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &str, lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        for l in lines {
            h.append(&name, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    fn xff() -> TrustedProxies {
        TrustedProxies::cidrs(["10.0.0.0/8", "2001:db8::/32"])
            .unwrap()
            .header(ForwardedHeader::XForwardedFor)
    }

    #[test]
    fn unconfigured_is_the_peer_whatever_the_headers() {
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        let f = headers("forwarded", &["for=203.0.113.9"]);
        let none = TrustedProxies::none();
        assert_eq!(none.resolve(ip("10.1.1.1"), &h), ip("10.1.1.1"));
        assert_eq!(none.resolve(ip("10.1.1.1"), &f), ip("10.1.1.1"));
    }

    #[test]
    fn a_header_from_an_untrusted_peer_is_ignored() {
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(xff().resolve(ip("198.51.100.7"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn the_first_untrusted_entry_from_the_right_is_the_client() {
        // The client forged `1.2.3.4`; the proxies appended the real 203.0.113.9, then each
        // other's addresses.
        let h = headers("x-forwarded-for", &["1.2.3.4, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(xff().resolve(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // The same chain over several field lines.
        let h = headers("x-forwarded-for", &["1.2.3.4", "203.0.113.9", "10.0.0.2"]);
        assert_eq!(xff().resolve(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // Only proxies: the leftmost one.
        let h = headers("x-forwarded-for", &["10.0.0.3, 10.0.0.2"]);
        assert_eq!(xff().resolve(ip("10.0.0.1"), &h), ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(
            xff().resolve(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn garbage_stops_at_the_proxy_that_wrote_it() {
        for bad in ["unknown", "not-an-ip", "", "999.1.1.1", "_hidden"] {
            let h = headers("x-forwarded-for", &[&format!("1.2.3.4, {bad}")]);
            assert_eq!(xff().resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"), "{bad:?}");
        }
    }

    #[test]
    fn the_other_header_is_not_read() {
        // The proxies write X-Forwarded-For; a client's own `Forwarded` changes nothing.
        let h = headers("forwarded", &["for=1.2.3.4"]);
        assert_eq!(xff().resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn rfc7239_forwarded_nodes() {
        let p = TrustedProxies::cidrs(["10.0.0.0/8"]).unwrap();
        // RFC 7239 §4 and §7.5 examples.
        let cases = [
            (r#"for="_gazonk""#, "10.0.0.1"),
            (r#"For="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            ("for=unknown", "10.0.0.1"),
            (r#"for="192.0.2.60:8080""#, "192.0.2.60"),
            ("proto=https", "10.0.0.1"),
            ("for=192.0.2.43, for=10.0.0.9;proto=https", "192.0.2.43"),
        ];
        for (value, want) in cases {
            let h = headers("forwarded", &[value]);
            assert_eq!(p.resolve(ip("10.0.0.1"), &h), ip(want), "{value}");
        }
    }

    #[test]
    fn hop_count_takes_the_nth_from_the_right() {
        let one = TrustedProxies::hops(1)
            .unwrap()
            .header(ForwardedHeader::XForwardedFor);
        let two = TrustedProxies::hops(2)
            .unwrap()
            .header(ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.2.3.4, 203.0.113.9, 192.0.2.1"]);
        assert_eq!(one.resolve(ip("192.0.2.200"), &h), ip("192.0.2.1"));
        assert_eq!(two.resolve(ip("192.0.2.200"), &h), ip("203.0.113.9"));
        let short = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(two.resolve(ip("192.0.2.200"), &short), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::hops(0).unwrap_err(),
            ClientAddrConfigError::ZeroHops
        );
    }

    #[test]
    fn ranges_and_mapped_addresses() {
        let p = TrustedProxies::cidrs(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]).unwrap();
        assert!(p.trusts(ip("10.255.0.1")));
        assert!(p.trusts(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 is IPv4");
        assert!(p.trusts(ip("192.0.2.7")));
        assert!(!p.trusts(ip("192.0.2.8")));
        assert!(p.trusts(ip("2001:db8:1::1")));
        assert!(!p.trusts(ip("2001:db9::1")));
        assert!(!p.trusts(ip("11.0.0.1")));
        let all = TrustedProxies::cidrs(["0.0.0.0/0"]).unwrap();
        assert!(all.trusts(ip("203.0.113.1")));
        assert!(
            !all.trusts(ip("2001:db8::1")),
            "an IPv4 range holds no IPv6 address"
        );
        for bad in ["10.0.0.0/33", "2001:db8::/129", "ten", "10.0.0.0/x", ""] {
            assert!(TrustedProxies::cidrs([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_long_chain_is_walked_only_so_far() {
        let chain = vec!["10.0.0.5"; 1000].join(", ");
        let h = headers("x-forwarded-for", &[&format!("203.0.113.9, {chain}")]);
        // Every entry is a proxy up to the bound: the answer is a proxy, never the forged
        // far-left value, and the walk is bounded.
        assert_eq!(xff().resolve(ip("10.0.0.1"), &h), ip("10.0.0.5"));
    }
}
