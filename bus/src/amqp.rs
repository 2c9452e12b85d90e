//! The bus on RabbitMQ, so each role can run in its own process and scale out.
//!
//! The topology of [`schema::names`] becomes durable **quorum queues** (replicated, with a
//! delivery limit), a fanout exchange for pages and a topic exchange for alerts. Every queue
//! dead-letters into `leakwatch.dlx` with its own name as routing key, which routes to
//! `<queue>.dlq`: a message nacked without requeue, or delivered more often than the limit
//! (a handler that keeps crashing on it), lands there instead of looping. An alert
//! consumer's own durable queue (`alerts follow --queue`, `alerts forward`) gets the same: its
//! `<queue>.dlq`, and [`AmqpBus::dead_letter`] for a consumer that refuses an alert for a
//! reason the broker cannot see (a webhook's 4xx, kept in the `x-leakwatch-status` header).
//!
//! Every publish waits for the broker's **publisher confirm**; consumers ack explicitly. The
//! connection recovers by itself after a broker restart (lapin's auto-recovery reconnects and
//! replays the topology); deliveries that were in flight are redelivered by the broker, and
//! the roles' handlers are idempotent. Recovery is not trusted blindly: a publisher channel
//! left unusable is replaced, a consumer whose stream errors or ends re-subscribes on a fresh
//! channel, an idle consumer checks that its queue still has consumers, and every confirm,
//! ack, cancel and close is bounded in time. After two minutes without a usable
//! connection the bus records the failure and consumers end, so the process exits non-zero
//! and its supervisor restarts it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use schema::names::{self, ExchangeKind as Kind};
use tokio::sync::watch;

use crate::{Acker, Bus, BusError, Consumer, Delivery};

/// Longest wait for the broker to answer an ack, a cancel or a close; past it the channel
/// is taken as lost (the broker redelivers whatever was not acked).
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a consumer waits without a delivery before checking that it still exists.
const CONSUMER_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long lapin's own recovery gets before leakwatch opens a fresh connection.
const LAPIN_RECOVERY_GRACE: std::time::Duration = std::time::Duration::from_secs(8);

/// How long a connection may stay unusable before the process gives up (and exits non-zero
/// for its supervisor to restart it).
const RECOVERY_GIVE_UP: std::time::Duration = std::time::Duration::from_secs(120);

/// Longest wait for a publisher confirm before publishing again.
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Exchange that receives dead letters, routed by the original queue's name.
pub const DEAD_LETTER_EXCHANGE: &str = "leakwatch.dlx";

/// Deliveries of one alert to a consumer's own queue before it is dead-lettered.
pub const ALERT_QUEUE_DELIVERY_LIMIT: u32 = 20;

/// Header of a message a consumer dead-lettered itself: the HTTP status that refused it.
pub const STATUS_HEADER: &str = "x-leakwatch-status";

/// Header of a message a consumer dead-lettered itself: why, in words.
pub const REASON_HEADER: &str = "x-leakwatch-reason";

/// The dead-letter queue of `queue`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

fn broker(e: lapin::Error) -> BusError {
    BusError::Broker(e.to_string())
}

pub use crate::QueueDepth;

struct Shared {
    url: String,
    delivery_limit: Option<u32>,
    /// Replaced by a fresh connection when lapin's recovery does not bring it back.
    connection: Mutex<Arc<Connection>>,
    /// One replacement at a time.
    replacing: tokio::sync::Mutex<()>,
    /// Replaced by a fresh channel when recovery leaves it unusable.
    publisher: Mutex<Channel>,
    closed: watch::Sender<bool>,
    in_flight: AtomicU64,
    failure: Mutex<Option<String>>,
}

/// [`Bus`] on RabbitMQ.
#[derive(Clone)]
pub struct AmqpBus {
    shared: Arc<Shared>,
}

impl AmqpBus {
    /// Connects (`amqp://` or `amqps://`), declares the topology idempotently and enables
    /// publisher confirms. `delivery_limit` is the quorum queues' redelivery cap.
    pub async fn connect(url: &str, delivery_limit: u32) -> Result<AmqpBus, BusError> {
        Self::connect_with(url, Some(delivery_limit)).await
    }

    /// Connects without declaring the role topology (`None`): for observers such as queue
    /// listings and alert consumers, which must not fight the roles over queue arguments.
    pub async fn connect_with(url: &str, delivery_limit: Option<u32>) -> Result<AmqpBus, BusError> {
        let (connection, publisher) = open(url, delivery_limit).await?;
        Ok(AmqpBus {
            shared: Arc::new(Shared {
                url: url.to_string(),
                delivery_limit,
                connection: Mutex::new(Arc::new(connection)),
                replacing: tokio::sync::Mutex::new(()),
                publisher: Mutex::new(publisher),
                closed: watch::channel(false).0,
                in_flight: AtomicU64::new(0),
                failure: Mutex::new(None),
            }),
        })
    }

    fn connection(&self) -> Arc<Connection> {
        match self.shared.connection.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Whether the connection is usable, replacing it with a fresh one when it has been down
    /// for `down_for` already (lapin's own recovery had its chance).
    async fn usable_connection(&self, down_for: std::time::Duration) -> bool {
        if self.connection().status().connected() {
            return true;
        }
        if down_for < LAPIN_RECOVERY_GRACE {
            return false;
        }
        let _one = self.shared.replacing.lock().await;
        let old = self.connection();
        if old.status().connected() {
            return true; // replaced meanwhile
        }
        let opened = tokio::time::timeout(
            SETTLE_TIMEOUT * 2,
            open(&self.shared.url, self.shared.delivery_limit),
        )
        .await;
        match opened {
            Ok(Ok((connection, publisher))) => {
                tracing::warn!("broker connection replaced after recovery did not bring it back");
                if let Ok(mut c) = self.shared.connection.lock() {
                    *c = Arc::new(connection);
                }
                if let Ok(mut p) = self.shared.publisher.lock() {
                    *p = publisher;
                }
                let _ =
                    tokio::time::timeout(SETTLE_TIMEOUT, old.close(200, "replaced".into())).await;
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "broker not reachable yet");
                false
            }
            Err(_) => false,
        }
    }

    /// Ready messages and consumers of every leakwatch queue and dead-letter queue.
    pub async fn depths(&self) -> Result<Vec<QueueDepth>, BusError> {
        let ch = self.connection().create_channel().await.map_err(broker)?;
        let mut out = Vec::new();
        for q in names::all_queues() {
            for name in [q.to_string(), dead_letter_queue(q)] {
                let info = ch
                    .queue_declare(
                        name.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(broker)?;
                out.push(QueueDepth {
                    queue: name,
                    messages: info.message_count(),
                    consumers: info.consumer_count(),
                });
            }
        }
        let _ = ch.close(200, "done".into()).await;
        Ok(out)
    }

    /// Consumes alerts through a queue of the caller's own bound to the alerts exchange:
    /// a durable quorum queue when named (survives restarts: nothing missed), else an
    /// exclusive server-named one that lives as long as this connection.
    pub async fn consume_alerts(
        &self,
        queue: Option<&str>,
        pattern: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let ch = self.connection().create_channel().await.map_err(broker)?;
        ch.exchange_declare(
            names::ALERTS_EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
        let (ch, declared) = match queue {
            Some(name) => self.declare_alert_queue(ch, name).await?,
            None => {
                let q = ch
                    .queue_declare(
                        "".into(),
                        QueueDeclareOptions {
                            exclusive: true,
                            auto_delete: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(broker)?;
                (ch, q)
            }
        };
        let name = declared.name().to_string();
        ch.queue_bind(
            name.as_str().into(),
            names::ALERTS_EXCHANGE.into(),
            pattern.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
        self.consumer_on(ch, &name, prefetch).await
    }

    /// Declares a consumer's durable alert queue with its dead-letter queue. A queue left by
    /// an older leakwatch without one cannot be redeclared with other arguments: it is used
    /// as it is, with a warning (delete it once drained to get the dead-letter queue).
    async fn declare_alert_queue(
        &self,
        ch: Channel,
        name: &str,
    ) -> Result<(Channel, lapin::Queue), BusError> {
        let declared = async {
            declare_dead_letter_queue(&ch, name).await?;
            ch.queue_declare(
                name.into(),
                QueueDeclareOptions::durable(),
                quorum_args(name, Some(name), ALERT_QUEUE_DELIVERY_LIMIT),
            )
            .await
            .map_err(broker)
        }
        .await;
        let error = match declared {
            Ok(q) => return Ok((ch, q)),
            Err(e) => e,
        };
        // The failed declare closed the channel; look at the queue on a fresh one.
        let ch = self.connection().create_channel().await.map_err(broker)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        match ch
            .queue_declare(name.into(), passive, FieldTable::default())
            .await
        {
            Ok(q) => {
                tracing::warn!(
                    queue = name,
                    error = %error,
                    "this queue was declared without a dead-letter queue (by an older leakwatch); \
                     alerts over the delivery limit will be dropped: delete it once drained"
                );
                Ok((ch, q))
            }
            Err(_) => Err(error),
        }
    }

    /// Ready messages and consumers of one queue; `None` when it does not exist.
    pub async fn queue_depth(&self, queue: &str) -> Result<Option<QueueDepth>, BusError> {
        let ch = self.connection().create_channel().await.map_err(broker)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let info = ch
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await;
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, ch.close(200, "done".into())).await;
        Ok(info.ok().map(|q| QueueDepth {
            queue: queue.to_string(),
            messages: q.message_count(),
            consumers: q.consumer_count(),
        }))
    }

    /// Puts `payload`, taken from the consumer queue `queue`, into `<queue>.dlq` with the
    /// HTTP `status` (header `x-leakwatch-status`) and `reason` (`x-leakwatch-reason`) that
    /// refused it, and waits for the broker's confirm. The caller acks the original after.
    pub async fn dead_letter(
        &self,
        queue: &str,
        payload: &[u8],
        status: u16,
        reason: &str,
    ) -> Result<(), BusError> {
        let mut headers = FieldTable::default();
        headers.insert(STATUS_HEADER.into(), AMQPValue::LongInt(i32::from(status)));
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        self.publish_confirmed(DEAD_LETTER_EXCHANGE, queue, payload, Some(headers))
            .await
    }

    async fn consumer_on(
        &self,
        ch: Channel,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Consumer>, BusError> {
        let (tag, inner) = subscribe(&ch, queue, prefetch).await?;
        Ok(Box::new(AmqpConsumer {
            bus: self.clone(),
            channel: ch,
            tag,
            inner,
            closed: self.shared.closed.subscribe(),
            queue: queue.to_string(),
            prefetch,
        }))
    }

    async fn publish_once(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        headers: Option<FieldTable>,
    ) -> Result<Confirmation, lapin::Error> {
        let ch = self.publisher();
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        if let Some(h) = headers {
            props = props.with_headers(h);
        }
        ch.basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            payload,
            props,
        )
        .await?
        .await
    }

    /// Publishes and waits for the broker's confirm. A publish that fails because the
    /// connection dropped is retried (on a fresh channel if recovery left the old one
    /// unusable) until the give-up time; a broker nack is an error for the caller to requeue on.
    async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        headers: Option<FieldTable>,
    ) -> Result<(), BusError> {
        let started = std::time::Instant::now();
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            if self.failure().is_some() {
                return Err(BusError::Closed);
            }
            let attempt = self.publish_once(exchange, routing_key, payload, headers.clone());
            match tokio::time::timeout(CONFIRM_TIMEOUT, attempt).await {
                Ok(Ok(Confirmation::Nack(_))) => {
                    return Err(BusError::Broker("publish not confirmed (nack)".into()))
                }
                Ok(Ok(_)) => return Ok(()),
                // A duplicate from publishing again is harmless; a loss is not.
                Ok(Err(e)) => tracing::warn!(error = %e, "publish failed; retrying"),
                Err(_) => tracing::warn!("publisher confirm timed out; publishing again"),
            }
            if self.gave_up(started, "publish") {
                return Err(BusError::Broker("gave up publishing".into()));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
            if self.usable_connection(started.elapsed()).await {
                self.renew_publisher().await;
            }
        }
    }

    fn publisher(&self) -> Channel {
        match self.shared.publisher.lock() {
            Ok(ch) => ch.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces a publisher channel that the connection's recovery left unusable.
    async fn renew_publisher(&self) {
        if !self.connection().status().connected() || self.publisher().status().connected() {
            return;
        }
        let fresh = async {
            let ch = self.connection().create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            Ok::<_, lapin::Error>(ch)
        };
        if let Ok(Ok(ch)) = tokio::time::timeout(SETTLE_TIMEOUT, fresh).await {
            tracing::warn!("publisher channel replaced after a connection loss");
            if let Ok(mut p) = self.shared.publisher.lock() {
                *p = ch;
            }
        }
    }

    /// Whether the connection stayed unusable past the give-up time; records the failure.
    fn gave_up(&self, since: std::time::Instant, what: &str) -> bool {
        if since.elapsed() < RECOVERY_GIVE_UP {
            return false;
        }
        self.fail(format!(
            "{what}: no usable broker connection for {}s",
            RECOVERY_GIVE_UP.as_secs()
        ));
        true
    }

    fn fail(&self, reason: String) {
        tracing::error!(%reason, "broker connection lost for good");
        if let Ok(mut f) = self.shared.failure.lock() {
            f.get_or_insert(reason);
        }
        self.close();
    }
}

/// Opens a connection with auto-recovery, declares the topology (when given a delivery
/// limit) and opens a confirm-mode publisher channel.
async fn open(url: &str, delivery_limit: Option<u32>) -> Result<(Connection, Channel), BusError> {
    let props = ConnectionProperties::default()
        .enable_auto_recover()
        .with_connection_name("leakwatch".into());
    let connection = Connection::connect(url, props).await.map_err(broker)?;
    let publisher = connection.create_channel().await.map_err(broker)?;
    if let Some(limit) = delivery_limit {
        declare_topology(&publisher, limit).await?;
    }
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(broker)?;
    Ok((connection, publisher))
}

/// Sets the prefetch and starts consuming `queue` on `ch`.
async fn subscribe(
    ch: &Channel,
    queue: &str,
    prefetch: u16,
) -> Result<(String, lapin::Consumer), BusError> {
    ch.basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(broker)?;
    let tag = format!("leakwatch-{}-{}", std::process::id(), next_tag());
    let inner = ch
        .basic_consume(
            queue.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
    Ok((tag, inner))
}

fn next_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// How long a message that carries image bytes may wait in a queue (or its dead-letter
/// queue): a decoded copy of a stolen photo must not outlive its processing by days.
pub const IMAGE_BYTES_TTL_MS: i64 = 24 * 3600 * 1000;
/// Most bytes a queue of image bytes holds; past it the broker refuses new images (the
/// crawler waits and retries) instead of spilling them to disk without bound.
pub const IMAGE_BYTES_MAX: i64 = 2 * 1024 * 1024 * 1024;

/// Queues whose messages carry image bytes: the images queue, the matchers' page queue (its
/// pages travel with their raw response, `data:` images included) and their dead letters.
fn carries_image_bytes(queue: &str) -> bool {
    [names::IMAGES, names::PAGES_FOR_MATCHER]
        .iter()
        .any(|q| queue == *q || queue == dead_letter_queue(q))
}

fn quorum_args(queue: &str, dead_letter_key: Option<&str>, delivery_limit: u32) -> FieldTable {
    let mut args = FieldTable::default();
    if carries_image_bytes(queue) {
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(IMAGE_BYTES_TTL_MS),
        );
        args.insert(
            "x-max-length-bytes".into(),
            AMQPValue::LongLongInt(IMAGE_BYTES_MAX),
        );
        let overflow = if dead_letter_key.is_some() {
            "reject-publish"
        } else {
            "drop-head"
        };
        args.insert("x-overflow".into(), AMQPValue::LongString(overflow.into()));
    }
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(delivery_limit.min(i32::MAX as u32) as i32),
    );
    if let Some(key) = dead_letter_key {
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(key.into()),
        );
    }
    args
}

/// Declares the dead-letter exchange and `<queue>.dlq`, bound to it by `queue`'s name.
async fn declare_dead_letter_queue(ch: &Channel, queue: &str) -> Result<(), BusError> {
    ch.exchange_declare(
        DEAD_LETTER_EXCHANGE.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(broker)?;
    let dlq = dead_letter_queue(queue);
    ch.queue_declare(
        dlq.as_str().into(),
        QueueDeclareOptions::durable(),
        quorum_args(&dlq, None, 1000),
    )
    .await
    .map_err(broker)?;
    ch.queue_bind(
        dlq.as_str().into(),
        DEAD_LETTER_EXCHANGE.into(),
        queue.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(broker)
}

/// Declares exchanges, queues, dead-letter queues and bindings. Idempotent: every process
/// does it at start with the same arguments.
async fn declare_topology(ch: &Channel, delivery_limit: u32) -> Result<(), BusError> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for q in names::all_queues() {
        declare_dead_letter_queue(ch, q).await?;
        ch.queue_declare(
            q.into(),
            QueueDeclareOptions::durable(),
            quorum_args(q, Some(q), delivery_limit),
        )
        .await
        .map_err(broker)?;
    }
    for ex in names::EXCHANGES {
        let kind = match ex.kind {
            Kind::Fanout => ExchangeKind::Fanout,
            Kind::Topic => ExchangeKind::Topic,
        };
        ch.exchange_declare(
            ex.name.into(),
            kind,
            durable_exchange,
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
        for b in ex.bindings {
            ch.queue_bind(
                b.queue.into(),
                ex.name.into(),
                b.pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        }
    }
    Ok(())
}

#[async_trait]
impl Bus for AmqpBus {
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        self.publish_confirmed(exchange, routing_key, &payload, None)
            .await
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BusError> {
        let ch = self.connection().create_channel().await.map_err(broker)?;
        self.consumer_on(ch, queue, prefetch).await
    }

    fn is_connected(&self) -> bool {
        self.connection().status().connected()
    }

    /// The reason the connection was given up, if it was.
    fn failure(&self) -> Option<String> {
        self.shared.failure.lock().ok().and_then(|f| f.clone())
    }

    fn close(&self) {
        self.shared.closed.send_replace(true);
    }

    fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// No ready message in any (non dead-letter) queue and nothing in flight here, three
    /// times in a row a quarter second apart.
    async fn wait_idle(&self) -> Result<(), BusError> {
        let mut quiet = 0;
        while quiet < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let ready: u32 = self
                .depths()
                .await?
                .iter()
                .filter(|d| !d.queue.ends_with(".dlq"))
                .map(|d| d.messages)
                .sum();
            quiet = if ready == 0 && self.in_flight() == 0 {
                quiet + 1
            } else {
                0
            };
        }
        Ok(())
    }

    /// Messages waiting in the dead-letter queues (bounded to a few seconds).
    async fn dead_lettered(&self) -> Result<u64, BusError> {
        let depths = self.queue_depths().await?;
        Ok(depths
            .iter()
            .filter(|q| q.queue.ends_with(".dlq"))
            .map(|q| q.messages as u64)
            .sum())
    }

    async fn queue_depths(&self) -> Result<Vec<QueueDepth>, BusError> {
        tokio::time::timeout(SETTLE_TIMEOUT, self.depths())
            .await
            .map_err(|_| BusError::Broker("timed out listing queue depths".into()))?
    }

    /// Closes the connection after [`Bus::close`] and after in-flight work is settled.
    async fn disconnect(&self) {
        let connection = self.connection();
        let close = connection.close(200, "bye".into());
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, close).await;
    }
}

struct AmqpConsumer {
    bus: AmqpBus,
    channel: Channel,
    tag: String,
    inner: lapin::Consumer,
    closed: watch::Receiver<bool>,
    queue: String,
    prefetch: u16,
}

/// What woke a waiting consumer.
enum Wake {
    Item(Option<Box<lapin::Result<lapin::message::Delivery>>>),
    Closed,
    Check,
}

impl AmqpConsumer {
    /// Whether this consumer is gone on the broker's side although the connection is up:
    /// its channel fails, or its queue holds ready messages with no consumer at all.
    /// (Seen after broker restarts: a consumer that recovery did not re-register.)
    async fn lost(&self) -> bool {
        if !self.bus.connection().status().connected() {
            return false; // recovery is under way; give it time
        }
        let check = self.channel.queue_declare(
            self.queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        );
        match tokio::time::timeout(SETTLE_TIMEOUT, check).await {
            Ok(Ok(q)) => q.message_count() > 0 && q.consumer_count() == 0,
            Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    /// Waits for the connection, then consumes again on a fresh channel (whether or not
    /// recovery restored the old one, a fresh one is known to work). False when closed or
    /// when the give-up time passed.
    async fn reconnect(&mut self) -> bool {
        let started = std::time::Instant::now();
        loop {
            if *self.closed.borrow() || self.bus.gave_up(started, "consume") {
                return false;
            }
            if self.bus.usable_connection(started.elapsed()).await && self.resubscribe().await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Consumes again on a fresh channel; whether that worked.
    async fn resubscribe(&mut self) -> bool {
        let fresh = async {
            let ch = self
                .bus
                .connection()
                .create_channel()
                .await
                .map_err(broker)?;
            let (tag, inner) = subscribe(&ch, &self.queue, self.prefetch).await?;
            Ok::<_, BusError>((ch, tag, inner))
        };
        match tokio::time::timeout(SETTLE_TIMEOUT, fresh).await {
            Ok(Ok((ch, tag, inner))) => {
                tracing::warn!(queue = %self.queue, "consumer was lost; consuming again on a new channel");
                let old = std::mem::replace(&mut self.channel, ch);
                let _ =
                    tokio::time::timeout(SETTLE_TIMEOUT, old.close(200, "replaced".into())).await;
                self.tag = tag;
                self.inner = inner;
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(queue = %self.queue, error = %e, "could not consume again yet");
                false
            }
            Err(_) => {
                tracing::warn!(queue = %self.queue, "could not consume again yet (timeout)");
                false
            }
        }
    }
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        use futures_lite::StreamExt;
        loop {
            if *self.closed.borrow() {
                // Bounded: a channel left broken by a lost connection may never answer.
                let cancel = self
                    .channel
                    .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default());
                let _ = tokio::time::timeout(SETTLE_TIMEOUT, cancel).await;
                return None;
            }
            let wake = tokio::select! {
                item = self.inner.next() => Wake::Item(item.map(Box::new)),
                _ = self.closed.wait_for(|c| *c) => Wake::Closed,
                _ = tokio::time::sleep(CONSUMER_CHECK_INTERVAL) => Wake::Check,
            };
            let item = match wake {
                Wake::Item(item) => item,
                Wake::Closed => continue,
                Wake::Check => {
                    if self.lost().await {
                        self.resubscribe().await;
                    }
                    continue;
                }
            };
            match item.map(|b| *b) {
                Some(Ok(d)) => {
                    let redeliveries =
                        delivery_count(&d.properties).unwrap_or(if d.redelivered { 1 } else { 0 });
                    self.bus.shared.in_flight.fetch_add(1, Ordering::SeqCst);
                    return Some(Delivery::new(
                        d.data,
                        redeliveries,
                        Box::new(AmqpAcker {
                            bus: self.bus.clone(),
                            acker: Some(d.acker),
                        }),
                    ));
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, queue = %self.queue, "consumer interrupted");
                    if !self.reconnect().await {
                        return None;
                    }
                }
                None if *self.closed.borrow() => return None,
                None => {
                    tracing::warn!(queue = %self.queue, "consumer ended by the broker");
                    if !self.reconnect().await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Quorum queues count deliveries in the `x-delivery-count` header.
fn delivery_count(props: &BasicProperties) -> Option<u32> {
    let headers = props.headers().as_ref()?;
    let key: ShortString = "x-delivery-count".into();
    match headers.inner().get(&key)? {
        AMQPValue::LongLongInt(n) => Some(*n as u32),
        AMQPValue::LongInt(n) => Some(*n as u32),
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::ShortInt(n) => Some(*n as u32),
        _ => None,
    }
}

struct AmqpAcker {
    bus: AmqpBus,
    acker: Option<lapin::Acker>,
}

impl AmqpAcker {
    fn settled(&self) {
        self.bus.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        if let Some(a) = self.acker.take() {
            self.settled();
            // If the channel died, the broker redelivers the message; handlers are idempotent.
            match tokio::time::timeout(SETTLE_TIMEOUT, a.ack(BasicAckOptions::default())).await {
                Ok(Ok(_)) => {}
                _ => tracing::warn!("ack lost with its channel; the message will be redelivered"),
            }
        }
        Ok(())
    }

    async fn nack(mut self: Box<Self>, requeue: bool) -> Result<(), BusError> {
        if let Some(a) = self.acker.take() {
            self.settled();
            let opts = BasicNackOptions {
                requeue,
                multiple: false,
            };
            match tokio::time::timeout(SETTLE_TIMEOUT, a.nack(opts)).await {
                Ok(Ok(_)) => {}
                _ => tracing::warn!("nack lost with its channel; the message will be redelivered"),
            }
        }
        Ok(())
    }
}

impl Drop for AmqpAcker {
    fn drop(&mut self) {
        if let Some(a) = self.acker.take() {
            self.settled();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = a
                        .nack(BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        })
                        .await;
                });
            }
        }
    }
}
