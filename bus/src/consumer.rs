//! The one consumer loop every role runs: decode → handle → ack / requeue / dead-letter →
//! counters.
//!
//! Each role only says what one message means ([`Handler`]); how deliveries are settled is
//! decided here, once:
//! - a payload that does not decode as the queue's message type can never succeed: it is
//!   counted as `error.bus.undecodable` and dead-lettered at once (`nack` without requeue);
//! - a handler that returns [`Handled::Done`] has published everything the message produced,
//!   so the delivery is acked;
//! - a handler error (a publish that failed) requeues the delivery; the bus's delivery limit
//!   dead-letters a message that keeps failing;
//! - an error settling a delivery (the bus is gone) ends the worker with that error.
//!
//! A role that must hold deliveries past its handler (the indexer acks only after a commit)
//! uses [`decode`], the same first step, in its own batching loop.

use std::sync::Arc;

use async_trait::async_trait;
use schema::Message;

use crate::stats::kinds;
use crate::{Bus, BusError, Delivery, Stats};

/// What a handler did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Everything it produced is published: ack it.
    Done,
}

/// What one role does with one message of type `M`.
#[async_trait]
pub trait Handler<M: Message>: Send + Sync + 'static {
    /// Handles one decoded message. An error means its results could not be published; the
    /// delivery is then requeued for another try.
    async fn handle(&self, bus: &dyn Bus, msg: M) -> Result<Handled, BusError>;
}

/// Where and how many: one [`serve`] call's consumers.
#[derive(Debug, Clone, Copy)]
pub struct Consumers {
    pub queue: &'static str,
    /// Unacked deliveries each consumer may hold.
    pub prefetch: u16,
    /// Concurrent consumers (each handles one message at a time).
    pub workers: usize,
}

/// Decodes a delivery as `M`; an undecodable one is counted and dead-lettered (`Ok(None)`).
pub async fn decode<M: Message>(
    d: Delivery,
    stats: &Stats,
    queue: &str,
) -> Result<Option<(M, Delivery)>, BusError> {
    match M::decode(&d.payload) {
        Ok(m) => Ok(Some((m, d))),
        Err(e) => {
            stats.error(kinds::BUS_UNDECODABLE);
            tracing::warn!(queue, error = %e, "undecodable message, dead-lettering it");
            d.nack(false).await?;
            Ok(None)
        }
    }
}

/// Runs `consumers.workers` consumers of `consumers.queue` through `handler` until the bus
/// closes. Returns the first error that ended a worker.
pub async fn serve<M, H>(
    bus: Arc<dyn Bus>,
    consumers: Consumers,
    stats: Arc<Stats>,
    handler: Arc<H>,
) -> Result<(), BusError>
where
    M: Message + Send + 'static,
    H: Handler<M>,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..consumers.workers.max(1) {
        let mut consumer = bus.consume(consumers.queue, consumers.prefetch).await?;
        let (bus, stats, handler) = (bus.clone(), stats.clone(), handler.clone());
        tasks.spawn(async move {
            while let Some(d) = consumer.next().await {
                let Some((msg, d)) = decode::<M>(d, &stats, consumers.queue).await? else {
                    continue;
                };
                match handler.handle(bus.as_ref(), msg).await {
                    Ok(Handled::Done) => d.ack().await?,
                    Err(e) => {
                        tracing::warn!(queue = consumers.queue, error = %e, "could not publish results, requeueing");
                        d.nack(true).await?;
                    }
                }
            }
            Ok::<(), BusError>(())
        });
    }
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Err(e)) if result.is_ok() => result = Err(e),
            Err(e) if result.is_ok() => {
                result = Err(BusError::Broker(format!("a consumer panicked: {e}")))
            }
            _ => {}
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Family;
    use crate::EmbeddedBus;
    use schema::names;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails the first attempt of every message, then succeeds.
    struct Flaky(AtomicU32);

    #[async_trait]
    impl Handler<schema::CrawlRequest> for Flaky {
        async fn handle(
            &self,
            _bus: &dyn Bus,
            _msg: schema::CrawlRequest,
        ) -> Result<Handled, BusError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(BusError::Broker("first try fails".into()));
            }
            Ok(Handled::Done)
        }
    }

    #[tokio::test]
    async fn undecodable_is_dead_lettered_and_failures_requeued() {
        let bus = EmbeddedBus::new(5);
        let dynbus: Arc<dyn Bus> = Arc::new(bus.clone());
        let req = schema::CrawlRequest {
            url: "http://a.example/".into(),
            kind: schema::ResourceKind::Page,
            depth: 0,
            referrer: None,
            ..Default::default()
        };
        crate::send_to_queue(dynbus.as_ref(), names::CRAWL_REQUESTS, &req)
            .await
            .unwrap();
        dynbus
            .publish("", names::CRAWL_REQUESTS, b"not json".to_vec())
            .await
            .unwrap();
        let stats = Arc::new(Stats::default());
        let handler = Arc::new(Flaky(AtomicU32::new(0)));
        let consumers = Consumers {
            queue: names::CRAWL_REQUESTS,
            prefetch: 1,
            workers: 2,
        };
        let run = tokio::spawn(serve::<schema::CrawlRequest, _>(
            dynbus.clone(),
            consumers,
            stats.clone(),
            handler.clone(),
        ));
        dynbus.wait_idle().await.unwrap();
        dynbus.close();
        run.await.unwrap().unwrap();
        assert_eq!(
            handler.0.load(Ordering::SeqCst),
            2,
            "one failure, one retry"
        );
        assert_eq!(dynbus.dead_lettered().await.unwrap(), 1);
        assert_eq!(bus.dead_letters()[0].1, b"not json");
        assert_eq!(
            stats.by_kind(Family::Error).get("bus.undecodable"),
            Some(&1)
        );
    }
}
