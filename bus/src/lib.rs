//! The bus that leakwatch's roles talk through.
//!
//! Roles publish messages to exchanges (or straight to a queue through the default exchange
//! `""`) and consume from queues with explicit acknowledgement, exactly as on AMQP. The
//! [`Bus`] trait is the seam: the [`embedded`] implementation keeps everything in memory so a
//! single process needs nothing installed, and an AMQP implementation puts the same topology on
//! RabbitMQ so each role can run in its own process.
//!
//! The contract every role relies on:
//! - a delivery stays *outstanding* until it is acked or nacked; a delivery dropped without
//!   either is requeued, so a crashed handler loses nothing;
//! - handlers publish what a message produced *before* acking it, so "no message outstanding"
//!   means the whole pipeline has settled (this is how `run --once` knows it is done);
//! - a message nacked more often than the delivery limit is dead-lettered instead of looping.

pub mod amqp;
pub mod consumer;
pub mod embedded;

use async_trait::async_trait;

pub use amqp::AmqpBus;
pub use embedded::EmbeddedBus;

/// Errors from a bus implementation.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is closed")]
    Closed,
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("unknown exchange {0:?}")]
    UnknownExchange(String),
    #[error("broker error: {0}")]
    Broker(String),
}

/// Publishing and consuming. Cheap to share behind an `Arc`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` to `exchange` with `routing_key`. The default exchange `""` routes
    /// to the queue named by the routing key. Returns once the message is safely enqueued
    /// (for a broker: confirmed).
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: Vec<u8>,
    ) -> Result<(), BusError>;

    /// Starts consuming `queue`. Several consumers of one queue share its messages.
    /// `prefetch` bounds how many unacked deliveries this consumer may hold.
    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BusError>;

    /// Why the bus gave up (e.g. the broker connection could not be recovered). Roles end
    /// when their consumers end; the process checks this to exit non-zero.
    fn failure(&self) -> Option<String> {
        None
    }

    /// Whether the bus can carry messages now: a broker's connection is up (the embedded bus
    /// always can). Readiness follows it, so a role cut off from its broker is not ready.
    fn is_connected(&self) -> bool {
        true
    }

    /// Stops every consumer of this bus: `next()` returns `None` from now on. Deliveries
    /// already handed out can still be settled, and publishing may still work.
    fn close(&self);

    /// Whether [`Bus::close`] was called (a role waiting on something else gives up).
    fn is_closed(&self) -> bool;

    /// Whether queued messages outlive this process (a broker's do; the embedded bus's die
    /// with it). State that must agree with the queues is kept durable only when they are.
    fn is_durable(&self) -> bool {
        false
    }

    /// Deliveries handed to this process's consumers (embedded: published anywhere in the
    /// process) and not yet settled.
    fn in_flight(&self) -> u64;

    /// Waits until every message is processed: nothing queued and nothing in flight. On a
    /// broker this is only meaningful when every role runs in this process.
    async fn wait_idle(&self) -> Result<(), BusError>;

    /// Messages dead-lettered so far (embedded: by this process; broker: waiting in the
    /// dead-letter queues).
    async fn dead_lettered(&self) -> Result<u64, BusError>;

    /// Ready messages and consumers of every queue (dead-letter queues included): what
    /// `/metrics` shows as queue lag and what KEDA scales on.
    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, BusError>;

    /// Releases the connection after [`Bus::close`] once in-flight work is settled.
    async fn disconnect(&self) {}
}

/// Ready-message and consumer counts of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
}

/// A stream of deliveries from one queue.
#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; `None` once the bus is closed.
    async fn next(&mut self) -> Option<Delivery>;
}

/// Settles one delivery. Implemented by each bus.
#[async_trait]
pub trait Acker: Send {
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    async fn nack(self: Box<Self>, requeue: bool) -> Result<(), BusError>;
}

/// One message handed to a consumer.
pub struct Delivery {
    pub payload: Vec<u8>,
    /// How many times this message was delivered before (0 on first delivery).
    pub redeliveries: u32,
    acker: Box<dyn Acker>,
}

impl Delivery {
    pub fn new(payload: Vec<u8>, redeliveries: u32, acker: Box<dyn Acker>) -> Self {
        Delivery {
            payload,
            redeliveries,
            acker,
        }
    }

    /// Done with it: the broker forgets it.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Failed: requeue it for another try, or (requeue = false) dead-letter it.
    pub async fn nack(self, requeue: bool) -> Result<(), BusError> {
        self.acker.nack(requeue).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("bytes", &self.payload.len())
            .field("redeliveries", &self.redeliveries)
            .finish()
    }
}

/// Publishes a schema message to an exchange.
pub async fn publish_msg<M: schema::Message>(
    bus: &dyn Bus,
    exchange: &str,
    routing_key: &str,
    msg: &M,
) -> Result<(), BusError> {
    bus.publish(exchange, routing_key, msg.encode()).await
}

/// Publishes a schema message straight to a queue (default exchange).
pub async fn send_to_queue<M: schema::Message>(
    bus: &dyn Bus,
    queue: &str,
    msg: &M,
) -> Result<(), BusError> {
    bus.publish("", queue, msg.encode()).await
}

pub mod stats;
pub use consumer::{serve, Consumers, Handled, Handler};
pub use stats::{Counter, Stats};
