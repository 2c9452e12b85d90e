//! A webhook receiver for tests: plain HTTP or TLS (a certificate from the checked-in test
//! CA, valid for `localhost`, 127.0.0.1 and ::1), one request per connection, answering each
//! POST with the status its `respond` function picks and keeping what it received.
//!
//! The certificate and key under `tests/data/` exist only for these tests (made with openssl,
//! valid until 2126); nothing else trusts them.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub target: String,
    pub host: String,
    pub body: Vec<u8>,
}

pub struct HookServer {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

type Respond = Arc<dyn Fn(&Received) -> u16 + Send + Sync>;

impl HookServer {
    /// Listens on `addr` (e.g. `[::1]:0`), with TLS when `tls` is given.
    pub async fn start(
        addr: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        respond: impl Fn(&Received) -> u16 + Send + Sync + 'static,
    ) -> HookServer {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let respond: Respond = Arc::new(respond);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let kept = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (kept, respond, acceptor) = (kept.clone(), respond.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(tcp).await {
                                serve(s, &kept, &respond).await;
                            }
                        }
                        None => serve(tcp, &kept, &respond).await,
                    }
                });
            }
        });
        HookServer {
            port,
            received,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    kept: &Mutex<Vec<Received>>,
    respond: &Respond,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let got = Received {
        target: head.split_whitespace().nth(1).unwrap_or("").to_string(),
        host: header("host").unwrap_or_default(),
        body: buf[head_end..head_end + len].to_vec(),
    };
    let status = respond(&got);
    kept.lock().unwrap().push(got);
    let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(reply.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A file of `tests/data/`.
pub fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The server side of the test certificate.
pub fn test_tls() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(data_file("webhook-server.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(data_file("webhook-server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(config)
}
