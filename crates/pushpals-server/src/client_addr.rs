//! Who is calling: the peer's address, or, behind a trusted reverse proxy
//! (Caddy, nginx, `tailscale serve`), the address the proxy forwarded.
//! Forwarded headers from anyone else are ignored.

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::HeaderMap;
use axum::serve::IncomingStream;
use std::net::{IpAddr, SocketAddr};

/// The peer's socket address, recorded for each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// The client's address: the forwarded one when the peer is a trusted
/// proxy, else the peer's; `None` without connection information.
pub fn client_ip(
    peer: Option<&ConnectInfo<PeerAddr>>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    peer.map(|info| resolve(info.0.0.ip(), headers, trusted))
}

fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect()
}

/// The rightmost forwarded address that is not a trusted proxy, when the
/// peer is one; the peer otherwise.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let chain = forwarded_for(headers);
    if chain.is_empty() {
        return peer;
    }
    if !trusted.contains(&peer) {
        tracing::warn!(%peer, "ignored X-Forwarded-For from an address that is not a trusted proxy");
        return peer;
    }
    chain
        .iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "10.0.0.9".parse().unwrap();
        let trusted = [proxy];
        let forwarded = headers("203.0.113.7, 127.0.0.1");
        assert_eq!(
            resolve(proxy, &forwarded, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            resolve(stranger, &forwarded, &trusted),
            stranger,
            "spoofed header ignored"
        );
        assert_eq!(resolve(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(resolve(proxy, &headers("garbage"), &trusted), proxy);
    }
}
