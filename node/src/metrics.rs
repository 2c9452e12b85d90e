//! What an operator's monitoring reads from a running node: `/metrics` in the Prometheus text
//! format (every counter of [`bus::Stats`], errors and skips by kind, each role's readiness),
//! `/healthz` (the process answers) and `/readyz` (every role it runs is ready: stores open,
//! bus connected, transport up). Served on `[metrics] listen` / `run --metrics-listen`.
//!
//! Labels are low-cardinality by construction: a counter's kind comes from an error enum or
//! [`bus::stats::kinds`], never from a URL.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bus::stats::{Family, Gauge, Timing, BUCKETS};
use bus::{Counter, Stats};
use serde::{Deserialize, Serialize};

use crate::readiness::Readiness;

/// The `[metrics]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served (`0.0.0.0:9100`); none when unset.
    pub listen: Option<String>,
}

/// The Prometheus text exposition (format 0.0.4) of `stats` and `readiness`.
pub fn render(stats: &Stats, readiness: &Readiness) -> String {
    let mut out = String::new();
    for c in Counter::ALL {
        let name = format!("leakwatch_{}_total", metric_name(c.name()));
        let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", stats.get(c));
    }
    let families = [
        (Family::Error, "leakwatch_errors_total", "kind"),
        (Family::Skipped, "leakwatch_images_skipped_total", "reason"),
        (
            Family::FrontierDropped,
            "leakwatch_frontier_dropped_total",
            "reason",
        ),
    ];
    for (family, name, label) in families {
        let _ = writeln!(out, "# TYPE {name} counter");
        for (kind, n) in stats.by_kind(family) {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", label_value(&kind));
        }
    }
    for t in Timing::ALL {
        let name = format!("leakwatch_{}_seconds", t.name());
        let h = stats.timing(t);
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (le, n) in BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum_secs);
        let _ = writeln!(out, "{name}_count {}", h.count);
    }
    for g in Gauge::ALL {
        let values = stats.gauge(g);
        if values.is_empty() {
            continue;
        }
        let name = format!("leakwatch_{}", g.name());
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (label, v) in values {
            match g.label() {
                Some(l) => {
                    let _ = writeln!(out, "{name}{{{l}=\"{}\"}} {v}", label_value(&label));
                }
                None => {
                    let _ = writeln!(out, "{name} {v}");
                }
            }
        }
    }
    let _ = writeln!(out, "# TYPE leakwatch_role_ready gauge");
    for (role, ready) in readiness.snapshot() {
        let _ = writeln!(
            out,
            "leakwatch_role_ready{{role=\"{}\"}} {}",
            label_value(role.name()),
            u8::from(ready)
        );
    }
    out
}

/// `alerts.raised` → `alerts_raised`: what Prometheus allows in a name.
fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A label value with `\`, `"` and newlines escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The endpoints' router over a node's counters and readiness.
pub fn router(stats: Arc<Stats>, readiness: Readiness) -> Router {
    let metrics = {
        let (stats, readiness) = (stats.clone(), readiness.clone());
        move || async move {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render(&stats, &readiness),
            )
        }
    };
    let ready = move || async move {
        let roles: std::collections::BTreeMap<String, bool> = readiness
            .snapshot()
            .into_iter()
            .map(|(r, ok)| (r.name().to_string(), ok))
            .collect();
        let status = if readiness.all_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = serde_json::to_string(&roles).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
}

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stats: Arc<Stats>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(stats, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    #[test]
    fn every_counter_kind_and_role_is_exposed_under_a_legal_name() {
        let stats = Stats::default();
        stats.incr(Counter::Pages);
        stats.incr(Counter::Pages);
        stats.error("fetch.timeout");
        stats.error("odd\"kind\\x");
        stats.incr_kind(Family::Skipped, "image.too-small");
        let readiness = Readiness::default();
        readiness.expect(Role::Crawler);
        readiness.expect(Role::Indexer);
        readiness.set(Role::Indexer, true);
        stats.observe(Timing::Fetch, std::time::Duration::from_millis(30));
        stats.set_gauge(Gauge::QueueMessages, "leakwatch.images", 12.0);
        stats.set_gauge(Gauge::TransportUp, "", 0.0);
        stats.set_gauge(Gauge::TorBootstrapSeconds, "", 4.5);
        stats.observe(Timing::Fetch, std::time::Duration::from_secs(120));
        let text = render(&stats, &readiness);
        assert!(text.contains("\nleakwatch_fetch_duration_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("\nleakwatch_fetch_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("\nleakwatch_fetch_duration_seconds_bucket{le=\"60\"} 1\n"));
        assert!(text.contains("\nleakwatch_fetch_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(
            text.contains("\nleakwatch_fetch_duration_seconds_count 2\n"),
            "{text}"
        );
        assert!(text.contains("\nleakwatch_index_commit_duration_seconds_count 0\n"));
        assert!(text.contains("\nleakwatch_pages_total 2\n"), "{text}");
        assert!(text.contains("leakwatch_alerts_raised_total 0\n"), "{text}");
        assert!(text.contains("leakwatch_errors_total{kind=\"fetch.timeout\"} 1\n"));
        assert!(text.contains("leakwatch_errors_total{kind=\"odd\\\"kind\\\\x\"} 1\n"));
        assert!(text.contains("leakwatch_images_skipped_total{reason=\"image.too-small\"} 1\n"));
        assert!(text.contains("leakwatch_role_ready{role=\"crawler\"} 0\n"));
        assert!(text.contains("\nleakwatch_queue_messages{queue=\"leakwatch.images\"} 12\n"));
        assert!(text.contains("\nleakwatch_transport_up 0\n"), "{text}");
        assert!(
            text.contains("\nleakwatch_tor_bootstrap_seconds 4.5\n"),
            "{text}"
        );
        // A gauge never set is not exposed (no sites_down before a transport has health).
        assert!(!text.contains("leakwatch_sites_down"), "{text}");
        assert!(text.contains("leakwatch_role_ready{role=\"indexer\"} 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                name.starts_with("leakwatch_")
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
