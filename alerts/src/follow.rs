//! Following alerts as they arrive, until a shutdown future resolves (a test passes any
//! future; the binary passes Ctrl-C/SIGTERM).
//!
//! - [`store`]: without a broker, by re-reading the store the indexer appends to;
//! - [`consumer`]: from a queue bound to the `alerts` exchange, acking each alert only after
//!   the callback handled it (an undecodable message is dead-lettered).

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use bus::Consumer;
use schema::{Alert, Message};

/// How often the store is re-read.
const POLL: Duration = Duration::from_millis(500);

/// Why following stopped early.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// The callback failed (e.g. stdout closed).
    #[error("alert handler failed: {0}")]
    Handler(#[source] std::io::Error),
}

/// Calls `on_alert` for every alert in the store at `path`, first the ones already there,
/// then each new one, until `shutdown` resolves.
pub async fn store(
    path: &Path,
    shutdown: impl Future<Output = ()>,
    mut on_alert: impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<(), FollowError> {
    let mut seen: HashSet<String> = HashSet::new();
    tokio::pin!(shutdown);
    loop {
        for a in crate::load(path)? {
            if seen.insert(a.id.clone()) {
                on_alert(&a).map_err(FollowError::Handler)?;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// Calls `on_alert` for every alert `consumer` delivers, acking it afterwards, until the
/// consumer ends or `shutdown` resolves.
pub async fn consumer(
    mut consumer: Box<dyn Consumer>,
    shutdown: impl Future<Output = ()>,
    mut on_alert: impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<(), FollowError> {
    tokio::pin!(shutdown);
    loop {
        let d = tokio::select! {
            d = consumer.next() => d,
            _ = &mut shutdown => return Ok(()),
        };
        let Some(d) = d else { return Ok(()) };
        match Alert::decode(&d.payload) {
            Ok(a) => {
                on_alert(&a).map_err(FollowError::Handler)?;
                d.ack().await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "skipping an undecodable alert message");
                d.nack(false).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_follow_sees_old_and_new_alerts_once_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = crate::AlertStore::open(dir.path()).unwrap();
        st.insert(&crate::image("a", "http://x/1", None, 1, "pdq"))
            .unwrap();
        let path = dir.path().join(crate::ALERTS_FILE);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut got = Vec::new();
        let follow = store(
            &path,
            async {
                let _ = rx.await;
            },
            |a| {
                got.push(a.url.clone());
                Ok(())
            },
        );
        let writer = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            st.insert(&crate::image("b", "http://x/2", None, 1, "pdq"))
                .unwrap();
            st.insert(&crate::image("a", "http://x/1", None, 1, "pdq"))
                .unwrap();
            tokio::time::sleep(POLL * 2).await;
            tx.send(()).unwrap();
        };
        let (r, ()) = tokio::join!(follow, writer);
        r.unwrap();
        assert_eq!(got, ["http://x/1", "http://x/2"]);
    }
}
