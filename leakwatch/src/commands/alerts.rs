//! `leakwatch alerts`: every alert raised so far; `follow` prints them as they arrive;
//! `forward` delivers them to a webhook.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bus::Bus;
use schema::{Alert, Message};

pub fn list(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let alerts = ::alerts::load(&data_dir.join(::alerts::ALERTS_FILE))?;
    for a in &alerts {
        print_alert(a, json)?;
    }
    if !json {
        eprintln!("{} alerts", alerts.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_alert(a: &Alert, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, a)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}  {:<5}  {}  distance {}  {}  (on {})",
            a.detected_at,
            a.kind.as_str(),
            a.label,
            a.distance,
            a.url,
            a.page_url.as_deref().unwrap_or("-")
        )?;
    }
    out.flush()
}

/// Prints alerts as they arrive until Ctrl-C/SIGTERM: from a queue of its own on the
/// `alerts` exchange with --amqp, else from the data dir's alert store.
pub async fn follow(
    data_dir: &Path,
    json: bool,
    amqp: Option<String>,
    queue: Option<String>,
    pattern: &str,
) -> anyhow::Result<ExitCode> {
    let print = |a: &Alert| print_alert(a, json);
    let Some(amqp) = amqp else {
        let path = data_dir.join(::alerts::ALERTS_FILE);
        ::alerts::follow::store(&path, node::shutdown_signal(), print).await?;
        return Ok(ExitCode::SUCCESS);
    };
    let bus = super::connect_observer(&amqp).await?;
    let consumer = bus.consume_alerts(queue.as_deref(), pattern, 16).await?;
    eprintln!("following alerts ({pattern}); Ctrl-C to stop");
    ::alerts::follow::consumer(consumer, node::shutdown_signal(), print).await?;
    bus.close();
    bus.disconnect().await;
    if let Some(reason) = bus.failure() {
        anyhow::bail!("lost the broker connection: {reason}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `alerts forward` was asked to do.
pub struct ForwardArgs<'a> {
    pub webhook: &'a str,
    pub amqp: &'a str,
    pub queue: &'a str,
    pub max_backoff_secs: u64,
    pub ca_file: Option<&'a Path>,
}

/// Forwards each alert to the webhook, acking only after a 2xx. 5xx, 408, 429 and network or
/// TLS failures are retried with capped exponential backoff and jitter, so a webhook that is
/// down delays alerts but loses none; any other answer (a 4xx: the webhook refuses this alert)
/// dead-letters the alert into `<queue>.dlq` with the status, so later alerts are not blocked.
pub async fn forward(args: ForwardArgs<'_>) -> anyhow::Result<ExitCode> {
    let url = parse_webhook(args.webhook)?;
    let client = crate::webhook::WebhookClient::new(args.ca_file)?;
    let bus = super::connect_observer(args.amqp).await?;
    let mut consumer = bus.consume_alerts(Some(args.queue), "alert.#", 1).await?;
    let shown = crate::webhook::redact(&url);
    eprintln!("forwarding alerts from {} to {shown}", args.queue);
    let fwd = Forwarder {
        client,
        url,
        bus: &bus,
        queue: args.queue,
        max_backoff: Duration::from_secs(args.max_backoff_secs.max(1)),
    };
    let shutdown = node::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let d = tokio::select! {
            d = consumer.next() => d,
            _ = &mut shutdown => break,
        };
        let Some(d) = d else { break };
        if !fwd.deliver(d, &mut shutdown).await? {
            break;
        }
    }
    bus.close();
    bus.disconnect().await;
    if let Some(reason) = bus.failure() {
        anyhow::bail!("lost the broker connection: {reason}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The webhook URL, checked; errors never print it (it may hold a token).
fn parse_webhook(webhook: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(webhook).map_err(|e| anyhow::anyhow!("invalid webhook URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("the webhook must be an http:// or https:// URL");
    }
    if url.host().is_none() {
        anyhow::bail!("the webhook URL has no host");
    }
    Ok(url)
}

/// Whether an HTTP status means "try again later" rather than "never".
fn retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

struct Forwarder<'a> {
    client: crate::webhook::WebhookClient,
    url: url::Url,
    bus: &'a bus::AmqpBus,
    queue: &'a str,
    max_backoff: Duration,
}

impl Forwarder<'_> {
    /// Delivers one alert: acked after a 2xx, dead-lettered on a refusal, retried otherwise.
    /// False when shutdown came first (the alert is requeued).
    async fn deliver(
        &self,
        d: bus::Delivery,
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> anyhow::Result<bool> {
        let id = Alert::decode(&d.payload)
            .map(|a| a.id)
            .unwrap_or_else(|_| "?".into());
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 1u32;
        loop {
            match self.client.post_json(&self.url, &d.payload).await {
                Ok(status) if (200..300).contains(&status) => {
                    println!("forwarded alert {id} (HTTP {status}, attempt {attempt})");
                    d.ack().await?;
                    return Ok(true);
                }
                Ok(status) if !retryable(status) => {
                    let reason = format!("webhook answered HTTP {status}");
                    self.bus
                        .dead_letter(self.queue, &d.payload, status, &reason)
                        .await?;
                    d.ack().await?;
                    let dlq = bus::amqp::dead_letter_queue(self.queue);
                    println!("dead-lettered alert {id} to {dlq} ({reason})");
                    return Ok(true);
                }
                Ok(status) => eprintln!("webhook answered HTTP {status} for alert {id}; retrying"),
                Err(e) => eprintln!("webhook failed for alert {id}: {e}; retrying"),
            }
            let wait = backoff + jitter(backoff / 4);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut *shutdown => {
                    d.nack(true).await?;
                    return Ok(false);
                }
            }
            backoff = (backoff * 2).min(self.max_backoff);
            attempt += 1;
        }
    }
}

/// A pseudo-random duration below `max` (spreads retries of many forwarders apart).
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let max_ns = max.as_nanos().max(1) as u64;
    Duration::from_nanos(nanos.wrapping_mul(6_364_136_223_846_793_005) % max_ns)
}
