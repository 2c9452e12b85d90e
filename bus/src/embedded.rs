//! The in-process bus: the default, so `leakwatch run` works on one machine with nothing else
//! installed.
//!
//! Each queue is a channel shared by its consumers. The bus counts outstanding deliveries
//! (published, not yet settled) so a caller can wait until the whole pipeline has settled
//! ([`Bus::wait_idle`]). A delivery dropped unsettled is requeued; one redelivered more than
//! the delivery limit is dead-lettered and counted.
//!
//! Queues that carry bulk (images, pages, verdicts) are bounded in bytes: a publisher waits
//! while its queue holds more than the budget, so crawlers that outpace the matchers slow down
//! instead of piling images of up to 10 MiB in memory. The queues between the frontier and
//! the crawlers stay unbounded: each side publishes to the other, and bounding both could
//! deadlock; their messages are small and the frontier bounds how many there are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use schema::names::{self, ExchangeKind};
use tokio::sync::{mpsc, watch, Mutex as AsyncMutex, Notify};

use crate::{Acker, Bus, BusError, Consumer, Delivery, QueueDepth};

struct Envelope {
    payload: Vec<u8>,
    redeliveries: u32,
}

struct Queue {
    tx: mpsc::UnboundedSender<Envelope>,
    rx: Arc<AsyncMutex<mpsc::UnboundedReceiver<Envelope>>>,
    /// Payload bytes waiting in the queue (not yet handed to a consumer).
    queued_bytes: AtomicU64,
    /// Messages waiting in the queue (not yet handed to a consumer).
    queued: AtomicU64,
    /// Consumers subscribed to the queue.
    consumers: AtomicU64,
    /// Publishers wait while `queued_bytes` is over this.
    budget: u64,
    /// Signalled when a consumer takes a message out.
    space: Notify,
}

/// The queues bounded in bytes (nothing their consumers publish comes back to them).
const BOUNDED: [&str; 4] = [
    names::IMAGES,
    names::VERDICTS,
    names::PAGES_FOR_INDEXER,
    names::PAGES_FOR_MATCHER,
];

/// Default byte budget of each bounded queue.
pub const DEFAULT_QUEUE_BYTES: u64 = 128 * 1024 * 1024;

struct Inner {
    queues: HashMap<String, Queue>,
    exchanges: Vec<names::Exchange>,
    outstanding: watch::Sender<u64>,
    closed: watch::Sender<bool>,
    delivery_limit: u32,
    dead_lettered: AtomicU64,
    dead_letters: Mutex<Vec<(String, Vec<u8>)>>,
}

/// In-memory implementation of [`Bus`] with leakwatch's topology.
#[derive(Clone)]
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

impl Default for EmbeddedBus {
    fn default() -> Self {
        Self::new(5)
    }
}

impl EmbeddedBus {
    /// A bus with leakwatch's queues and exchanges; a message delivered more than
    /// `delivery_limit` times is dead-lettered. Bulk queues hold [`DEFAULT_QUEUE_BYTES`].
    pub fn new(delivery_limit: u32) -> Self {
        Self::with_queue_bytes(delivery_limit, DEFAULT_QUEUE_BYTES)
    }

    /// As [`EmbeddedBus::new`], with `queue_bytes` for each bulk queue (at least one message
    /// is always let in, whatever its size).
    pub fn with_queue_bytes(delivery_limit: u32, queue_bytes: u64) -> Self {
        let mut queues = HashMap::new();
        for q in names::all_queues() {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.insert(
                q.to_string(),
                Queue {
                    tx,
                    rx: Arc::new(AsyncMutex::new(rx)),
                    queued_bytes: AtomicU64::new(0),
                    queued: AtomicU64::new(0),
                    consumers: AtomicU64::new(0),
                    budget: if BOUNDED.contains(&q) {
                        queue_bytes
                    } else {
                        u64::MAX
                    },
                    space: Notify::new(),
                },
            );
        }
        EmbeddedBus {
            inner: Arc::new(Inner {
                queues,
                exchanges: names::EXCHANGES.to_vec(),
                outstanding: watch::channel(0).0,
                closed: watch::channel(false).0,
                delivery_limit,
                dead_lettered: AtomicU64::new(0),
                dead_letters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Deliveries published and not yet settled.
    pub fn outstanding(&self) -> u64 {
        *self.inner.outstanding.borrow()
    }

    /// The dead-lettered messages with their queue, for inspection.
    pub fn dead_letters(&self) -> Vec<(String, Vec<u8>)> {
        self.inner
            .dead_letters
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    fn queue(&self, queue: &str) -> Result<&Queue, BusError> {
        self.inner
            .queues
            .get(queue)
            .ok_or_else(|| BusError::UnknownQueue(queue.to_string()))
    }

    /// Bytes waiting in `queue`.
    pub fn queued_bytes(&self, queue: &str) -> u64 {
        self.queue(queue)
            .map_or(0, |q| q.queued_bytes.load(Ordering::SeqCst))
    }

    /// Waits until `queue` has room for `len` more bytes, then counts them in.
    async fn reserve(&self, queue: &str, len: u64) -> Result<(), BusError> {
        let q = self.queue(queue)?;
        let mut closed = self.inner.closed.subscribe();
        loop {
            let space = q.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let cur = q.queued_bytes.load(Ordering::SeqCst);
            if cur == 0 || cur.saturating_add(len) <= q.budget {
                let swapped = q.queued_bytes.compare_exchange(
                    cur,
                    cur + len,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                if swapped.is_ok() {
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                _ = &mut space => {}
                _ = closed.wait_for(|c| *c) => return Err(BusError::Closed),
            }
        }
    }

    /// Puts `env` in `queue`; its bytes must already be counted in.
    fn enqueue(&self, queue: &str, env: Envelope) -> Result<(), BusError> {
        let q = self.queue(queue)?;
        self.inner.outstanding.send_modify(|n| *n += 1);
        let len = env.payload.len() as u64;
        q.queued.fetch_add(1, Ordering::SeqCst);
        if q.tx.send(env).is_err() {
            self.inner.outstanding.send_modify(|n| *n -= 1);
            q.queued_bytes.fetch_sub(len, Ordering::SeqCst);
            q.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(BusError::Closed);
        }
        Ok(())
    }

    /// A message left `queue` for a consumer.
    fn dequeued(&self, queue: &str, len: usize) {
        if let Ok(q) = self.queue(queue) {
            q.queued_bytes.fetch_sub(len as u64, Ordering::SeqCst);
            q.queued.fetch_sub(1, Ordering::SeqCst);
            q.space.notify_waiters();
        }
    }

    fn settle(&self) {
        self.inner
            .outstanding
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        if *self.inner.closed.borrow() {
            return Err(BusError::Closed);
        }
        let len = payload.len() as u64;
        if exchange.is_empty() {
            self.reserve(routing_key, len).await?;
            return self.enqueue(
                routing_key,
                Envelope {
                    payload,
                    redeliveries: 0,
                },
            );
        }
        let ex = self
            .inner
            .exchanges
            .iter()
            .find(|e| e.name == exchange)
            .ok_or_else(|| BusError::UnknownExchange(exchange.to_string()))?;
        for b in ex.bindings {
            let routed = match ex.kind {
                ExchangeKind::Fanout => true,
                ExchangeKind::Topic => names::topic_matches(b.pattern, routing_key),
            };
            if routed {
                self.reserve(b.queue, len).await?;
                self.enqueue(
                    b.queue,
                    Envelope {
                        payload: payload.clone(),
                        redeliveries: 0,
                    },
                )?;
            }
        }
        Ok(())
    }

    async fn consume(&self, queue: &str, _prefetch: u16) -> Result<Box<dyn Consumer>, BusError> {
        let q = self
            .inner
            .queues
            .get(queue)
            .ok_or_else(|| BusError::UnknownQueue(queue.to_string()))?;
        q.consumers.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(EmbeddedConsumer {
            bus: self.clone(),
            queue: queue.to_string(),
            rx: q.rx.clone(),
            closed: self.inner.closed.subscribe(),
        }))
    }

    /// Closes the bus: consumers see the end of their stream, publishes fail.
    fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    fn in_flight(&self) -> u64 {
        self.outstanding()
    }

    /// Waits until no delivery is outstanding.
    async fn wait_idle(&self) -> Result<(), BusError> {
        let mut rx = self.inner.outstanding.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
        Ok(())
    }

    async fn dead_lettered(&self) -> Result<u64, BusError> {
        Ok(self.inner.dead_lettered.load(Ordering::Relaxed))
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, BusError> {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let mut depths: Vec<QueueDepth> = self
            .inner
            .queues
            .iter()
            .map(|(name, q)| QueueDepth {
                queue: name.clone(),
                messages: clamp(q.queued.load(Ordering::SeqCst)),
                consumers: clamp(q.consumers.load(Ordering::SeqCst)),
            })
            .collect();
        depths.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(depths)
    }
}

struct EmbeddedConsumer {
    bus: EmbeddedBus,
    queue: String,
    rx: Arc<AsyncMutex<mpsc::UnboundedReceiver<Envelope>>>,
    closed: watch::Receiver<bool>,
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        if *self.closed.borrow() {
            return None;
        }
        let env = {
            let mut rx = self.rx.lock().await;
            tokio::select! {
                env = rx.recv() => env?,
                _ = self.closed.wait_for(|c| *c) => return None,
            }
        };
        self.bus.dequeued(&self.queue, env.payload.len());
        let redeliveries = env.redeliveries;
        let payload = env.payload.clone();
        Some(Delivery::new(
            payload,
            redeliveries,
            Box::new(EmbeddedAcker {
                bus: self.bus.clone(),
                queue: self.queue.clone(),
                env: Some(env),
            }),
        ))
    }
}

struct EmbeddedAcker {
    bus: EmbeddedBus,
    queue: String,
    /// Present until settled; a drop while present requeues.
    env: Option<Envelope>,
}

impl EmbeddedAcker {
    fn requeue_or_dead_letter(&mut self, requeue: bool) {
        let Some(mut env) = self.env.take() else {
            return;
        };
        env.redeliveries += 1;
        if requeue && env.redeliveries <= self.bus.inner.delivery_limit {
            // Re-enqueue before settling so the count never dips to zero in between; a
            // requeue never waits for room (it may run in a destructor).
            if let Ok(q) = self.bus.queue(&self.queue) {
                q.queued_bytes
                    .fetch_add(env.payload.len() as u64, Ordering::SeqCst);
            }
            if self.bus.enqueue(&self.queue, env).is_err() {
                tracing::warn!(queue = %self.queue, "bus closed, message dropped on requeue");
            }
        } else {
            self.bus.inner.dead_lettered.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(queue = %self.queue, redeliveries = env.redeliveries, "message dead-lettered");
            if let Ok(mut d) = self.bus.inner.dead_letters.lock() {
                d.push((self.queue.clone(), env.payload));
            }
        }
        self.bus.settle();
    }
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        if self.env.take().is_some() {
            self.bus.settle();
        }
        Ok(())
    }

    async fn nack(mut self: Box<Self>, requeue: bool) -> Result<(), BusError> {
        self.requeue_or_dead_letter(requeue);
        Ok(())
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        if let Ok(q) = self.bus.queue(&self.queue) {
            q.consumers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for EmbeddedAcker {
    fn drop(&mut self) {
        self.requeue_or_dead_letter(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fanout_reaches_both_page_queues() {
        let bus = EmbeddedBus::default();
        bus.publish(names::PAGES_EXCHANGE, "", b"p".to_vec())
            .await
            .unwrap();
        assert_eq!(bus.outstanding(), 2);
        for q in [names::PAGES_FOR_INDEXER, names::PAGES_FOR_MATCHER] {
            let mut c = bus.consume(q, 1).await.unwrap();
            let d = c.next().await.unwrap();
            assert_eq!(d.payload, b"p");
            d.ack().await.unwrap();
        }
        assert_eq!(bus.outstanding(), 0);
    }

    #[tokio::test]
    async fn topic_routes_alerts_and_unknown_names_fail() {
        let bus = EmbeddedBus::default();
        bus.publish(names::ALERTS_EXCHANGE, "alert.image", b"a".to_vec())
            .await
            .unwrap();
        bus.publish(names::ALERTS_EXCHANGE, "other.key", b"b".to_vec())
            .await
            .unwrap();
        assert_eq!(bus.outstanding(), 1);
        assert!(matches!(
            bus.publish("nope", "", vec![]).await,
            Err(BusError::UnknownExchange(_))
        ));
        assert!(matches!(
            bus.publish("", "nope", vec![]).await,
            Err(BusError::UnknownQueue(_))
        ));
    }

    #[tokio::test]
    async fn dropped_delivery_is_redelivered_then_dead_lettered() {
        let bus = EmbeddedBus::new(2);
        bus.publish("", names::IMAGES, b"poison".to_vec())
            .await
            .unwrap();
        let mut c = bus.consume(names::IMAGES, 1).await.unwrap();
        let d = c.next().await.unwrap();
        assert_eq!(d.redeliveries, 0);
        drop(d); // handler crashed
        let d = c.next().await.unwrap();
        assert_eq!(d.redeliveries, 1);
        d.nack(true).await.unwrap();
        let d = c.next().await.unwrap();
        assert_eq!(d.redeliveries, 2);
        d.nack(true).await.unwrap();
        assert_eq!(bus.dead_lettered().await.unwrap(), 1);
        assert_eq!(bus.outstanding(), 0);
        assert_eq!(bus.dead_letters()[0].1, b"poison");
    }

    #[tokio::test]
    async fn wait_idle_waits_for_the_last_ack_and_close_ends_consumers() {
        let bus = EmbeddedBus::default();
        bus.publish("", names::CRAWL_REQUESTS, b"x".to_vec())
            .await
            .unwrap();
        let mut c = bus.consume(names::CRAWL_REQUESTS, 1).await.unwrap();
        let d = c.next().await.unwrap();
        let idle = tokio::spawn({
            let bus = bus.clone();
            async move { bus.wait_idle().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!idle.is_finished());
        d.ack().await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), idle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        bus.close();
        assert!(c.next().await.is_none());
        assert!(matches!(
            bus.publish("", names::IMAGES, vec![]).await,
            Err(BusError::Closed)
        ));
    }

    #[tokio::test]
    async fn queue_depths_count_ready_messages_and_consumers() {
        let bus = EmbeddedBus::default();
        let depth = |d: &[QueueDepth], q: &str| {
            let d = d.iter().find(|d| d.queue == q).unwrap();
            (d.messages, d.consumers)
        };
        for _ in 0..3 {
            bus.publish("", names::IMAGES, b"x".to_vec()).await.unwrap();
        }
        let d = bus.queue_depths().await.unwrap();
        assert_eq!(d.len(), names::all_queues().len());
        assert_eq!(depth(&d, names::IMAGES), (3, 0));
        assert_eq!(depth(&d, names::CRAWL_REQUESTS), (0, 0));
        let mut c = bus.consume(names::IMAGES, 1).await.unwrap();
        let taken = c.next().await.unwrap();
        assert_eq!(
            depth(&bus.queue_depths().await.unwrap(), names::IMAGES),
            (2, 1)
        );
        // A requeued message is ready again; a dropped consumer is gone.
        taken.nack(true).await.unwrap();
        drop(c);
        assert_eq!(
            depth(&bus.queue_depths().await.unwrap(), names::IMAGES),
            (3, 0)
        );
    }

    #[tokio::test]
    async fn a_full_bulk_queue_holds_its_publishers_back() {
        let bus = EmbeddedBus::with_queue_bytes(5, 1_000);
        let mb = vec![7u8; 600];
        bus.publish("", names::IMAGES, mb.clone()).await.unwrap();
        // The second would pass the budget: it waits for a consumer.
        let b2 = bus.clone();
        let m2 = mb.clone();
        let blocked = tokio::spawn(async move { b2.publish("", names::IMAGES, m2).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!blocked.is_finished());
        assert_eq!(bus.queued_bytes(names::IMAGES), 600);
        // Small control queues are never held back.
        for _ in 0..10 {
            bus.publish("", names::CRAWL_REQUESTS, mb.clone())
                .await
                .unwrap();
        }
        let mut c = bus.consume(names::IMAGES, 1).await.unwrap();
        let d = c.next().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(bus.queued_bytes(names::IMAGES), 600);
        // A requeue goes back in without waiting, even over the budget.
        d.nack(true).await.unwrap();
        assert_eq!(bus.queued_bytes(names::IMAGES), 1_200);
        bus.close();
        assert!(matches!(
            bus.publish("", names::IMAGES, mb).await,
            Err(BusError::Closed)
        ));
    }
}
