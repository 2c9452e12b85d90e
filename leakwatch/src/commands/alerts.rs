//! `leakwatch alerts`: every alert raised so far; `follow` prints them as they arrive;
//! `forward` delivers them to a webhook.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bus::AmqpBus;
use schema::{Alert, Message};

use crate::pipeline::{redact, shutdown_signal};

pub fn run(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let alerts = indexer::alerts::load(&data_dir.join(indexer::alerts::ALERTS_FILE))?;
    for a in &alerts {
        print_alert(a, json)?;
    }
    if !json {
        eprintln!("{} alerts", alerts.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_alert(a: &Alert, json: bool) -> anyhow::Result<()> {
    if json {
        super::print_json(a)?;
    } else {
        println!(
            "{}  {:<5}  {}  distance {}  {}  (on {})",
            a.detected_at,
            a.kind.as_str(),
            a.label,
            a.distance,
            a.url,
            a.page_url.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

async fn connect(amqp: &str) -> anyhow::Result<AmqpBus> {
    AmqpBus::connect_with(amqp, None)
        .await
        .with_context(|| format!("failed to connect to {}", redact(amqp)))
}

/// Prints alerts as they arrive until Ctrl-C/SIGTERM.
pub async fn follow(
    data_dir: &Path,
    json: bool,
    amqp: Option<String>,
    queue: Option<String>,
    pattern: &str,
) -> anyhow::Result<ExitCode> {
    let Some(amqp) = amqp else {
        return follow_store(data_dir, json).await;
    };
    let bus = connect(&amqp).await?;
    let mut consumer = bus.consume_alerts(queue.as_deref(), pattern, 16).await?;
    eprintln!("following alerts ({pattern}); Ctrl-C to stop");
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let d = tokio::select! {
            d = consumer.next() => d,
            _ = &mut shutdown => break,
        };
        let Some(d) = d else { break };
        match Alert::decode(&d.payload) {
            Ok(a) => {
                print_alert(&a, json)?;
                use std::io::Write;
                std::io::stdout().flush()?;
                d.ack().await?;
            }
            Err(e) => {
                eprintln!("skipping an undecodable alert message: {e}");
                d.nack(false).await?;
            }
        }
    }
    bus.close();
    bus.disconnect().await;
    if let Some(reason) = bus.failure() {
        anyhow::bail!("lost the broker connection: {reason}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Without a broker: print new alerts as the indexer appends them to the store.
async fn follow_store(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let path = data_dir.join(indexer::alerts::ALERTS_FILE);
    let mut seen: HashSet<String> = HashSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        for a in indexer::alerts::load(&path)? {
            if seen.insert(a.id.clone()) {
                print_alert(&a, json)?;
            }
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = &mut shutdown => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Forwards each alert to `webhook`, acking only after a 2xx; retries with capped
/// exponential backoff and jitter, so a webhook that is down delays alerts but loses none.
pub async fn forward(
    webhook: &str,
    amqp: &str,
    queue: &str,
    max_backoff_secs: u64,
) -> anyhow::Result<ExitCode> {
    let url = url::Url::parse(webhook).with_context(|| format!("invalid webhook URL {webhook}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("the webhook must be an http:// or https:// URL");
    }
    let client = crate::webhook::WebhookClient::new()?;
    let bus = connect(amqp).await?;
    let mut consumer = bus.consume_alerts(Some(queue), "alert.#", 1).await?;
    eprintln!("forwarding alerts from {queue} to {webhook}");
    let max_backoff = Duration::from_secs(max_backoff_secs.max(1));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    'deliveries: loop {
        let d = tokio::select! {
            d = consumer.next() => d,
            _ = &mut shutdown => break,
        };
        let Some(d) = d else { break };
        let id = Alert::decode(&d.payload)
            .map(|a| a.id)
            .unwrap_or_else(|_| "?".into());
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 1u32;
        loop {
            match client.post_json(&url, &d.payload).await {
                Ok(status) if (200..300).contains(&status) => {
                    println!("forwarded alert {id} (HTTP {status}, attempt {attempt})");
                    d.ack().await?;
                    continue 'deliveries;
                }
                Ok(status) => eprintln!("webhook answered HTTP {status} for alert {id}; retrying"),
                Err(e) => eprintln!("webhook failed for alert {id}: {e}; retrying"),
            }
            let wait = backoff + jitter(backoff / 4);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown => {
                    d.nack(true).await?;
                    break 'deliveries;
                }
            }
            backoff = (backoff * 2).min(max_backoff);
            attempt += 1;
        }
    }
    bus.close();
    bus.disconnect().await;
    if let Some(reason) = bus.failure() {
        anyhow::bail!("lost the broker connection: {reason}");
    }
    Ok(ExitCode::SUCCESS)
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
