//! `leakwatch alerts`: every alert raised so far; `follow` prints them as they arrive;
//! `forward` delivers them to a webhook.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
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
    let bus = super::connect_observer(amqp).await?;
    let mut consumer = bus.consume_alerts(Some(queue), "alert.#", 1).await?;
    eprintln!("forwarding alerts from {queue} to {webhook}");
    let max_backoff = Duration::from_secs(max_backoff_secs.max(1));
    let shutdown = node::shutdown_signal();
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
