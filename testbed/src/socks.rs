//! A SOCKS5 proxy on loopback that a test can stop and start again on the same port: the
//! stand-in for a tor daemon that dies (or is restarted) in the middle of a crawl.
//!
//! It speaks what leakwatch's SOCKS5 client sends (RFC 1928 CONNECT, no authentication or
//! RFC 1929 username/password, which it accepts whatever the credentials), connects to the
//! target itself and relays bytes. Stopping it closes the listener and every relayed
//! connection, as a killed daemon would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A running (or stopped) proxy with a fixed address.
pub struct SocksProxy {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    tasks: Option<JoinSet<()>>,
}

impl SocksProxy {
    /// Starts a proxy on a free loopback port.
    pub async fn start() -> std::io::Result<SocksProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut p = SocksProxy {
            addr: listener.local_addr()?,
            connections: Arc::default(),
            tasks: None,
        };
        p.serve(listener);
        Ok(p)
    }

    /// `HOST:PORT` to give to `--transport socks5://…`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// CONNECT requests accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Closes the listener and every relayed connection.
    pub fn stop(&mut self) {
        if let Some(mut t) = self.tasks.take() {
            t.abort_all();
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let (conns, count) = (
            Arc::new(tokio::sync::Mutex::new(JoinSet::new())),
            self.connections.clone(),
        );
        tasks.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let count = count.clone();
                conns.lock().await.spawn(async move {
                    if let Ok(target) = handshake(client).await {
                        count.fetch_add(1, Ordering::SeqCst);
                        let (mut client, mut target) = target;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut target).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }
}

impl Drop for SocksProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Negotiates with the client and connects to its target; returns both streams.
async fn handshake(mut c: TcpStream) -> std::io::Result<(TcpStream, TcpStream)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    c.read_exact(&mut methods).await?;
    if methods.contains(&2) {
        c.write_all(&[5, 2]).await?;
        let mut v = [0u8; 2];
        c.read_exact(&mut v).await?;
        let mut user = vec![0u8; v[1] as usize];
        c.read_exact(&mut user).await?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen).await?;
        let mut pass = vec![0u8; plen[0] as usize];
        c.read_exact(&mut pass).await?;
        c.write_all(&[1, 0]).await?;
    } else {
        c.write_all(&[5, 0]).await?;
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await?;
    if req[1] != 1 {
        return Err(bad("only CONNECT"));
    }
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        3 => {
            let mut n = [0u8; 1];
            c.read_exact(&mut n).await?;
            let mut name = vec![0u8; n[0] as usize];
            c.read_exact(&mut name).await?;
            String::from_utf8(name).map_err(|_| bad("name"))?
        }
        4 => {
            let mut a = [0u8; 16];
            c.read_exact(&mut a).await?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        _ => return Err(bad("address type")),
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    match TcpStream::connect(format!("{host}:{port}")).await {
        Ok(t) => {
            c.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Ok((c, t))
        }
        Err(e) => {
            c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Err(e)
        }
    }
}
