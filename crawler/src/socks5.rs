//! The SOCKS5 transport, for users who already run a tor daemon (`--transport
//! socks5://HOST:PORT`).
//!
//! A minimal client of RFC 1928 (CONNECT only) with RFC 1929 username/password
//! authentication. Names are always sent to the proxy as domain names (address type 3) and
//! never resolved here, so an `.onion` name or a clearnet name never reaches this machine's
//! DNS. Each site gets its own username/password; with tor's `IsolateSOCKSAuth` (on by
//! default) streams with different credentials never share a circuit. Every read from the
//! proxy is bounded and the whole exchange has a deadline.
//!
//! The proxy would reach whatever a crawled link names, so the SSRF rules of the direct
//! transport apply before anything is sent: IP literals (in any form the URL parser accepts:
//! decimal, octal, hex, IPv6 with embedded IPv4) must be public and `localhost` names are
//! refused, unless private addresses are allowed. A proxy that cannot be reached is a
//! [`FetchError::TransportDown`]: nothing is wrong with the site.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::guard::is_non_public;
use crate::isolation::IsolationGroups;
use crate::onion::{is_onion_host, parse_onion_host};
use crate::transport::{get_over, tls_connector, Fetcher, Limits, RawResponse};
use crate::urls::site_of;
use crate::{FetchError, TorFailure};

/// How long a readiness probe waits for the proxy's greeting.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Consecutive failures of a site before it gets new SOCKS credentials (a new circuit).
const FRESH_AFTER: u32 = 2;

/// Fetches through a SOCKS5 proxy (normally a local tor).
pub struct Socks5Fetcher {
    proxy: String,
    user_agent: String,
    tls: tokio_rustls::TlsConnector,
    groups: IsolationGroups<Arc<(String, String)>>,
    allow_private: bool,
}

impl Socks5Fetcher {
    /// `proxy` is `HOST:PORT` of the SOCKS5 server; `allow_private` lets crawled links name
    /// loopback, private and link-local addresses (tests, local sites).
    pub fn new(proxy: &str, user_agent: &str, allow_private: bool) -> Result<Self, FetchError> {
        // A per-process nonce in the password: two leakwatch processes on one tor do not
        // share circuits either.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ std::process::id() as u128;
        Ok(Socks5Fetcher {
            proxy: proxy.to_string(),
            user_agent: user_agent.to_string(),
            tls: tls_connector().map_err(|e| FetchError::Tls(e.to_string()))?,
            groups: IsolationGroups::new(FRESH_AFTER, move |site, gen| {
                Arc::new((credential(site), format!("{nonce:x}-{gen}")))
            }),
            allow_private,
        })
    }

    async fn exchange(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
        let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
        let target = match url.host() {
            Some(url::Host::Ipv4(ip)) => Target::Ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => Target::Ip(ip.into()),
            Some(url::Host::Domain(d)) if is_onion_host(d) => Target::Name(
                parse_onion_host(d)
                    .map_err(FetchError::BadOnion)?
                    .to_string(),
            ),
            Some(url::Host::Domain(d)) => Target::Name(d.trim_end_matches('.').to_string()),
            None => return Err(FetchError::BadUrl),
        };
        if !self.allow_private {
            check_target(&target)?;
        }
        let creds = self.groups.group(&site_of(url));
        let tcp = tokio::time::timeout(limits.connect_timeout, TcpStream::connect(&self.proxy))
            .await
            .map_err(|_| {
                FetchError::TransportDown(format!(
                    "proxy {} did not accept a connection",
                    self.proxy
                ))
            })?
            .map_err(|e| {
                FetchError::TransportDown(format!("cannot reach proxy {}: {e}", self.proxy))
            })?;
        let _ = tcp.set_nodelay(true);
        let tcp = tokio::time::timeout(
            limits.connect_timeout,
            handshake(
                tcp,
                &target,
                port,
                Some((creds.0.as_str(), creds.1.as_str())),
            ),
        )
        .await
        .map_err(|_| FetchError::Timeout)??;
        get_over(tcp, &self.tls, url, &self.user_agent, limits).await
    }
}

/// The SSRF rules for what the proxy is asked to reach.
fn check_target(target: &Target) -> Result<(), FetchError> {
    match target {
        Target::Ip(ip) if is_non_public(*ip) => Err(FetchError::PrivateAddress(*ip)),
        Target::Name(n) if n.eq_ignore_ascii_case("localhost") || has_suffix(n, ".localhost") => {
            Err(FetchError::PrivateAddress(
                std::net::Ipv4Addr::LOCALHOST.into(),
            ))
        }
        _ => Ok(()),
    }
}

fn has_suffix(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len()
        && name
            .get(name.len() - suffix.len()..)
            .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
}

/// The SOCKS username for a site: the site itself when it fits, else a digest of it.
fn credential(site: &str) -> String {
    if site.len() <= 255 {
        site.to_string()
    } else {
        use sha3::Digest;
        sha3::Sha3_256::digest(site.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[async_trait]
impl Fetcher for Socks5Fetcher {
    /// Up when the proxy accepts a connection and offers a method leakwatch speaks.
    async fn probe(&self) -> Result<(), FetchError> {
        let down = |why: String| FetchError::TransportDown(format!("proxy {}: {why}", self.proxy));
        let greet = async {
            let mut tcp = TcpStream::connect(&self.proxy)
                .await
                .map_err(|e| down(e.to_string()))?;
            // Version 5, two methods: no authentication, username/password.
            tcp.write_all(&[5, 2, 0, 2])
                .await
                .map_err(|e| down(e.to_string()))?;
            let mut answer = [0u8; 2];
            tcp.read_exact(&mut answer)
                .await
                .map_err(|e| down(e.to_string()))?;
            match answer {
                [5, 0 | 2] => Ok(()),
                other => Err(down(format!("not a SOCKS5 answer: {other:?}"))),
            }
        };
        tokio::time::timeout(PROBE_TIMEOUT, greet)
            .await
            .map_err(|_| down("no answer".into()))?
    }

    async fn get(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
        let r = tokio::time::timeout(limits.timeout, self.exchange(url, limits))
            .await
            .map_err(|_| FetchError::Timeout)
            .and_then(|r| r);
        let transport_failed = matches!(
            r,
            Err(FetchError::Timeout
                | FetchError::Connect(_)
                | FetchError::Tor { .. }
                | FetchError::Socks(_))
        );
        self.groups.record(&site_of(url), !transport_failed);
        r
    }
}

/// Where the proxy should connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Sent as a domain name, resolved (if at all) by the proxy.
    Name(String),
    Ip(std::net::IpAddr),
}

/// Performs the SOCKS5 handshake and CONNECT on `stream`; returns it ready for the payload.
pub async fn handshake<S>(
    mut stream: S,
    target: &Target,
    port: u16,
    creds: Option<(&str, &str)>,
) -> Result<S, FetchError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The proxy hanging up mid-handshake (killed, restarting) says nothing about the site.
    let io = |e: std::io::Error| {
        FetchError::TransportDown(format!("proxy closed the connection in the handshake: {e}"))
    };
    // Greeting: offer username/password (when we have credentials) and no-auth.
    let greeting: &[u8] = if creds.is_some() {
        &[5, 2, 2, 0]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await.map_err(io)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await.map_err(io)?;
    if choice[0] != 5 {
        return Err(FetchError::Socks(format!(
            "not a SOCKS5 proxy (version byte {})",
            choice[0]
        )));
    }
    match (choice[1], creds) {
        (0, _) => {}
        (2, Some((user, pass))) => {
            let (u, p) = (user.as_bytes(), pass.as_bytes());
            if u.is_empty() || u.len() > 255 || p.is_empty() || p.len() > 255 {
                return Err(FetchError::Socks("credentials must be 1-255 bytes".into()));
            }
            let mut msg = vec![1, u.len() as u8];
            msg.extend_from_slice(u);
            msg.push(p.len() as u8);
            msg.extend_from_slice(p);
            stream.write_all(&msg).await.map_err(io)?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await.map_err(io)?;
            if status[1] != 0 {
                return Err(FetchError::Socks("proxy rejected the credentials".into()));
            }
        }
        (0xff, _) => {
            return Err(FetchError::Socks(
                "proxy accepts none of our authentication methods".into(),
            ))
        }
        (m, _) => {
            return Err(FetchError::Socks(format!(
                "proxy chose authentication method {m} that was not offered"
            )))
        }
    }
    // CONNECT.
    let mut req = vec![5, 1, 0];
    match target {
        Target::Name(name) => {
            let b = name.as_bytes();
            if b.is_empty() || b.len() > 255 {
                return Err(FetchError::BadUrl);
            }
            req.push(3);
            req.push(b.len() as u8);
            req.extend_from_slice(b);
        }
        Target::Ip(std::net::IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Target::Ip(std::net::IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 5 {
        return Err(FetchError::Socks(format!(
            "bad reply version byte {}",
            head[0]
        )));
    }
    if head[1] != 0 {
        return Err(reply_error(head[1]));
    }
    // The bound address: at most 1 + 255 + 2 bytes, read and discarded.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io)?;
            len[0] as usize + 2
        }
        t => return Err(FetchError::Socks(format!("bad reply address type {t}"))),
    };
    let mut skip = [0u8; 257];
    stream.read_exact(&mut skip[..rest]).await.map_err(io)?;
    Ok(stream)
}

/// The error for a SOCKS5 reply code, including tor's extended codes for onion services.
fn reply_error(code: u8) -> FetchError {
    let tor = |kind, detail: &str| FetchError::Tor {
        kind,
        detail: detail.to_string(),
    };
    match code {
        1 => FetchError::Socks("general failure".into()),
        2 => tor(TorFailure::Refused, "connection not allowed by ruleset"),
        3 => tor(TorFailure::Circuit, "network unreachable"),
        4 => tor(TorFailure::Refused, "host unreachable"),
        5 => tor(TorFailure::Refused, "connection refused"),
        6 => tor(TorFailure::Timeout, "TTL expired"),
        7 | 8 => FetchError::Socks(format!("proxy does not support this request ({code})")),
        0xf0 => tor(
            TorFailure::OnionNotFound,
            "onion service descriptor not found",
        ),
        0xf1 => tor(
            TorFailure::OnionUnreachable,
            "onion service descriptor invalid",
        ),
        0xf2 => tor(TorFailure::OnionUnreachable, "introduction failed"),
        0xf3 => tor(TorFailure::OnionUnreachable, "rendezvous failed"),
        0xf4 | 0xf5 => tor(
            TorFailure::Refused,
            "onion service needs client authorization",
        ),
        0xf6 => tor(TorFailure::Refused, "invalid onion address"),
        0xf7 => tor(TorFailure::Timeout, "introduction timed out"),
        c => FetchError::Socks(format!("reply code {c}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::net::TcpListener;

    /// What the test proxy saw of one connection.
    #[derive(Debug, Clone, Default)]
    struct Seen {
        methods: Vec<u8>,
        user: String,
        pass: String,
        atyp: u8,
        name: String,
        port: u16,
    }

    /// A SOCKS5 server that accepts username/password, answers CONNECT with `reply` and then
    /// plays the destination: a fixed HTTP response naming the host it was asked for.
    async fn proxy(reply: u8) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut seen = Seen::default();
                    let mut b = [0u8; 2];
                    s.read_exact(&mut b).await.unwrap();
                    let mut m = vec![0u8; b[1] as usize];
                    s.read_exact(&mut m).await.unwrap();
                    seen.methods = m;
                    s.write_all(&[5, 2]).await.unwrap();
                    let mut v = [0u8; 2];
                    s.read_exact(&mut v).await.unwrap();
                    let mut u = vec![0u8; v[1] as usize];
                    s.read_exact(&mut u).await.unwrap();
                    let mut pl = [0u8; 1];
                    s.read_exact(&mut pl).await.unwrap();
                    let mut p = vec![0u8; pl[0] as usize];
                    s.read_exact(&mut p).await.unwrap();
                    seen.user = String::from_utf8(u).unwrap();
                    seen.pass = String::from_utf8(p).unwrap();
                    s.write_all(&[1, 0]).await.unwrap();
                    let mut h = [0u8; 4];
                    s.read_exact(&mut h).await.unwrap();
                    seen.atyp = h[3];
                    if h[3] == 3 {
                        let mut l = [0u8; 1];
                        s.read_exact(&mut l).await.unwrap();
                        let mut n = vec![0u8; l[0] as usize];
                        s.read_exact(&mut n).await.unwrap();
                        seen.name = String::from_utf8(n).unwrap();
                    } else if h[3] == 4 {
                        let mut ip = [0u8; 16];
                        s.read_exact(&mut ip).await.unwrap();
                        seen.name = std::net::Ipv6Addr::from(ip).to_string();
                    } else {
                        let mut ip = [0u8; 4];
                        s.read_exact(&mut ip).await.unwrap();
                        seen.name = std::net::Ipv4Addr::from(ip).to_string();
                    }
                    let mut port = [0u8; 2];
                    s.read_exact(&mut port).await.unwrap();
                    seen.port = u16::from_be_bytes(port);
                    let name = seen.name.clone();
                    log.lock().unwrap().push(seen);
                    // Reply with a domain-typed bound address, as some proxies do.
                    let mut r = vec![5, reply, 0, 3, 4];
                    r.extend_from_slice(b"bind\x00\x50");
                    s.write_all(&r).await.unwrap();
                    if reply != 0 {
                        return;
                    }
                    let mut req = [0u8; 1024];
                    let _ = s.read(&mut req).await;
                    let body = format!("<html>hello from {name}</html>");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        (addr, seen)
    }

    const ONION: &str = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";

    #[tokio::test]
    async fn names_go_to_the_proxy_and_sites_get_their_own_credentials() {
        let (addr, seen) = proxy(0).await;
        let f = Socks5Fetcher::new(&addr, "test-agent", true).unwrap();
        let onion = Url::parse(&format!("http://{}/a", ONION.to_uppercase())).unwrap();
        let r = f.get(&onion, &Limits::default()).await.unwrap();
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains(ONION));
        let onion2 = Url::parse(&format!("http://{ONION}/b")).unwrap();
        f.get(&onion2, &Limits::default()).await.unwrap();
        let paste = Url::parse("http://paste.example:8080/x").unwrap();
        f.get(&paste, &Limits::default()).await.unwrap();
        let ip = Url::parse("http://127.0.0.1:9/").unwrap();
        f.get(&ip, &Limits::default()).await.unwrap();

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].methods, vec![2, 0]);
        // Domain names are sent as names (type 3), never resolved here.
        assert_eq!((seen[0].atyp, seen[0].name.as_str()), (3, ONION));
        assert_eq!(seen[0].port, 80);
        assert_eq!((seen[2].atyp, seen[2].name.as_str()), (3, "paste.example"));
        assert_eq!(seen[2].port, 8080);
        assert_eq!((seen[3].atyp, seen[3].name.as_str()), (1, "127.0.0.1"));
        // One site, one identity; two sites, two.
        assert_eq!(
            (&seen[0].user, &seen[0].pass),
            (&seen[1].user, &seen[1].pass)
        );
        assert_ne!(seen[0].user, seen[2].user);
        assert_ne!(seen[2].user, seen[3].user);
    }

    #[tokio::test]
    async fn tor_reply_codes_become_counted_errors_and_fresh_credentials() {
        let (addr, seen) = proxy(0xf0).await;
        let f = Socks5Fetcher::new(&addr, "a", true).unwrap();
        let u = Url::parse(&format!("http://{ONION}/")).unwrap();
        for _ in 0..2 {
            let e = f.get(&u, &Limits::default()).await.unwrap_err();
            assert_eq!(e.kind(), "tor.onion-not-found");
        }
        f.get(&u, &Limits::default()).await.unwrap_err();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0].pass, seen[1].pass);
        // Two failures in a row: the third attempt uses new credentials (a new circuit).
        assert_ne!(seen[1].pass, seen[2].pass);
        assert_eq!(seen[1].user, seen[2].user);
    }

    #[tokio::test]
    async fn invalid_onions_never_reach_the_proxy() {
        let (addr, seen) = proxy(0).await;
        let f = Socks5Fetcher::new(&addr, "a", true).unwrap();
        let bad = ONION.replacen("2gzy", "2gzz", 1);
        let e = f
            .get(
                &Url::parse(&format!("http://{bad}/")).unwrap(),
                &Limits::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "onion.bad-checksum");
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_silent_or_garbage_proxy_is_bounded() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                // First client: silence. Later ones: an HTTP answer instead of SOCKS.
                if !held.is_empty() {
                    let _ = s.write_all(b"HTTP/1.1 400 Bad\r\n\r\n").await;
                }
                held.push(s);
            }
        });
        let f = Socks5Fetcher::new(&addr, "a", true).unwrap();
        let limits = Limits {
            timeout: Duration::from_millis(600),
            connect_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let u = Url::parse("http://paste.example/").unwrap();
        let start = std::time::Instant::now();
        let e = f.get(&u, &limits).await.unwrap_err();
        assert_eq!(e.kind(), "fetch.timeout");
        assert!(start.elapsed() < Duration::from_secs(2));
        let e = f.get(&u, &limits).await.unwrap_err();
        assert_eq!(e.kind(), "fetch.socks", "{e}");
    }

    #[tokio::test]
    async fn private_targets_never_reach_the_proxy() {
        let (addr, seen) = proxy(0).await;
        let f = Socks5Fetcher::new(&addr, "a", false).unwrap();
        for bad in [
            "http://127.0.0.1/",
            "http://10.1.2.3:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://2130706433/", // 127.0.0.1 in decimal
            "http://0177.0.0.1/", // octal
            "http://0x7f.0.0.1/", // hex
            "http://0x0a000001/", // 10.0.0.1 as one hex number
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://[2002:c0a8:0101::1]/", // 6to4 around 192.168.1.1
            "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", // Teredo client 10.0.0.1
            "http://localhost:15672/",
            "http://api.LOCALHOST/",
        ] {
            let u = Url::parse(bad).unwrap();
            let e = f.get(&u, &Limits::default()).await.unwrap_err();
            assert_eq!(e.kind(), "fetch.private-address", "{bad}: {e}");
        }
        assert!(seen.lock().unwrap().is_empty());
        // Public literals and names still go through.
        for good in [
            "http://93.184.215.14/",
            "http://[2606:4700::1111]/",
            "http://a.test/",
        ] {
            f.get(&Url::parse(good).unwrap(), &Limits::default())
                .await
                .unwrap();
        }
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_proxy_that_is_not_listening_is_a_transport_outage() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let f = Socks5Fetcher::new(&addr, "a", false).unwrap();
        let e = f
            .get(&Url::parse("http://a.test/").unwrap(), &Limits::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "transport.down", "{e}");
    }

    #[test]
    fn long_site_names_fit_the_credential_bound() {
        let long = format!("{}.example", "a".repeat(300));
        let c = credential(&long);
        assert!(c.len() <= 255 && !c.is_empty());
        assert_ne!(c, credential(&format!("b{long}")));
    }
}
