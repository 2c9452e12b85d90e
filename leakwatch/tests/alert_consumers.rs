//! Alert consumers against a real RabbitMQ: the consumer queues of `alerts follow --queue` and
//! `alerts forward` have dead-letter queues; the forwarder dead-letters an alert its webhook
//! refuses (4xx) with the status and goes on with the next, retries 5xx, never prints a
//! webhook's secrets, and reaches a webhook behind a private CA on an IPv6 literal.
//!
//! Each test runs in a vhost of its own. The broker is `LEAKWATCH_TEST_AMQP_URL` (default the
//! local one, which `scripts/test.sh` starts when none answers); nextest runs this binary in
//! the `rabbitmq` group, one test at a time beside the broker-restart test.

#[path = "support/hook_server.rs"]
mod hook_server;
#[path = "support/services.rs"]
#[allow(dead_code)]
mod services;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bus::Bus;
use hook_server::HookServer;
use schema::{Alert, AlertKind};
use services::Vhost;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// A leakwatch process with its output in files; killed when dropped.
struct Proc {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    fn start(name: &str, dir: &Path, args: &[&str]) -> Proc {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(BIN)
            .args(args)
            .env("LEAKWATCH_LOG", "warn")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn leakwatch");
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    /// stdout and stderr so far.
    fn output(&self) -> (String, String) {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        (read(&self.stdout), read(&self.stderr))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alert(label: &str) -> Alert {
    let url = format!("http://x.onion/{label}.jpg");
    Alert {
        id: Alert::id_for(AlertKind::Image, label, &url),
        kind: AlertKind::Image,
        url,
        page_url: Some("http://x.onion/".into()),
        label: label.into(),
        distance: 2,
        algorithm: "pdq+grid".into(),
        detected_at: schema::now_rfc3339(),
        page_fetched_at: None,
        listed_at: None,
        context: Vec::new(),
        identifier: None,
    }
}

/// Polls `done` every 200 ms; panics with `what` (and `proc`'s stderr) after `timeout`.
async fn wait_for(
    what: &str,
    timeout: Duration,
    proc: Option<&Proc>,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            let err = proc.map(|p| p.output().1).unwrap_or_default();
            panic!("timed out waiting for {what}\n{err}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `queue` exists with a consumer.
async fn wait_for_consumer(bus: &bus::AmqpBus, queue: &str, proc: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(d) = bus.queue_depth(queue).await.unwrap() {
            if d.consumers > 0 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no consumer on {queue}:\n{}",
            proc.output().1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn depth(bus: &bus::AmqpBus, queue: &str) -> Option<u32> {
    bus.queue_depth(queue).await.unwrap().map(|d| d.messages)
}

/// Takes one message from `queue` with lapin directly: its payload and headers.
async fn take_one(url: &str, queue: &str) -> (Vec<u8>, lapin::types::FieldTable) {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let msg = ch
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("a message in the queue");
    let headers = msg.properties.headers().clone().unwrap_or_default();
    let data = msg.data.clone();
    let _ = conn.close(200, "bye".into()).await;
    (data, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_dead_letters_a_4xx_with_its_status_and_delivers_the_alerts_after_it() {
    let vhost = Vhost::new("fwd-4xx");
    // "refused" is a 422 for ever; "accepted" fails once with a 503, then goes through.
    let first_try = std::sync::atomic::AtomicBool::new(true);
    let server = HookServer::start("127.0.0.1:0", None, move |r| {
        let a: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        match a["label"].as_str() {
            Some("refused") => 422,
            _ if first_try.swap(false, std::sync::atomic::Ordering::SeqCst) => 503,
            _ => 204,
        }
    })
    .await;
    let hook = format!(
        "http://bot:pa55word@127.0.0.1:{}/hook?token=s3cr3t-t0ken",
        server.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let queue = "leakwatch.alerts.webhook";
    let args = [
        "alerts",
        "forward",
        "--amqp",
        &vhost.url,
        "--webhook",
        &hook,
    ];
    let fwd = Proc::start(
        "forward",
        dir.path(),
        &[&args[..], &["--max-backoff-secs", "1"]].concat(),
    );
    let bus = bus::AmqpBus::connect_with(&vhost.url, None).await.unwrap();
    wait_for_consumer(&bus, queue, &fwd).await;

    let (refused, accepted) = (alert("refused"), alert("accepted"));
    for a in [&refused, &accepted] {
        bus::publish_msg(&bus, schema::names::ALERTS_EXCHANGE, "alert.image", a)
            .await
            .unwrap();
    }
    let got = |label: &str| {
        server
            .requests()
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(label))
            .count()
    };
    wait_for(
        "the alert after the refused one",
        Duration::from_secs(30),
        Some(&fwd),
        || got("\"accepted\"") == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // nothing more may arrive
    assert_eq!(got("\"refused\""), 1, "a 4xx is not retried");
    assert_eq!(
        got("\"accepted\""),
        2,
        "a 5xx is retried, then delivered once"
    );

    let dlq = format!("{queue}.dlq");
    assert_eq!(depth(&bus, &dlq).await, Some(1));
    assert_eq!(depth(&bus, queue).await, Some(0));
    let (payload, headers) = take_one(&vhost.url, &dlq).await;
    let dead: Alert = serde_json::from_slice(&payload).unwrap();
    assert_eq!(dead.id, refused.id);
    let status = headers
        .inner()
        .get(&lapin::types::ShortString::from(bus::amqp::STATUS_HEADER))
        .cloned();
    assert_eq!(
        status,
        Some(lapin::types::AMQPValue::LongInt(422)),
        "{headers:?}"
    );

    let (out, err) = fwd.output();
    assert!(
        out.contains(&format!("dead-lettered alert {}", refused.id)),
        "{out}"
    );
    assert!(
        out.contains(&format!("forwarded alert {}", accepted.id)),
        "{out}"
    );
    // The webhook's secrets are never printed.
    for secret in ["s3cr3t-t0ken", "pa55word", "bot:"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} printed:\n{out}\n{err}"
        );
    }
    assert!(err.contains("/hook?token=REDACTED"), "{err}");
    bus.close();
    bus.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_redelivered_past_the_limit_lands_in_the_consumer_queues_dlq() {
    let vhost = Vhost::new("alert-limit");
    let bus = bus::AmqpBus::connect_with(&vhost.url, None).await.unwrap();
    let mut c = bus
        .consume_alerts(Some("soc-desk"), "alert.#", 1)
        .await
        .unwrap();
    let a = alert("keeps-failing");
    bus::publish_msg(&bus, schema::names::ALERTS_EXCHANGE, "alert.image", &a)
        .await
        .unwrap();
    let mut deliveries = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while depth(&bus, "soc-desk.dlq").await != Some(1) {
        assert!(
            Instant::now() < deadline,
            "never dead-lettered after {deliveries} deliveries"
        );
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(500), c.next()).await {
            deliveries += 1;
            d.nack(true).await.unwrap(); // the consumer failed; try again
        }
    }
    let limit = bus::amqp::ALERT_QUEUE_DELIVERY_LIMIT;
    assert!(
        (limit..=limit + 1).contains(&deliveries),
        "delivered {deliveries} times with a limit of {limit}"
    );
    let (payload, _) = take_one(&vhost.url, "soc-desk.dlq").await;
    assert_eq!(serde_json::from_slice::<Alert>(&payload).unwrap().id, a.id);
    bus.close();
    bus.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_with_a_queue_dead_letters_an_undecodable_alert_and_prints_the_next() {
    let vhost = Vhost::new("follow-dlq");
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "alerts", "follow", "--json", "--queue", "soc-desk", "--amqp", &vhost.url,
    ];
    let follow = Proc::start("follow", dir.path(), &args);
    let bus = bus::AmqpBus::connect_with(&vhost.url, None).await.unwrap();
    wait_for_consumer(&bus, "soc-desk", &follow).await;
    bus.publish(
        schema::names::ALERTS_EXCHANGE,
        "alert.text",
        b"\xff not an alert".to_vec(),
    )
    .await
    .unwrap();
    let a = alert("after-the-poison");
    bus::publish_msg(&bus, schema::names::ALERTS_EXCHANGE, "alert.image", &a)
        .await
        .unwrap();
    wait_for(
        "the alert after the poison",
        Duration::from_secs(20),
        Some(&follow),
        || follow.output().0.contains(&a.id),
    )
    .await;
    // The broker may report the dead-letter queue's depth a moment after the next alert went
    // through.
    let deadline = Instant::now() + Duration::from_secs(10);
    while depth(&bus, "soc-desk.dlq").await != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the poison was never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (payload, _) = take_one(&vhost.url, "soc-desk.dlq").await;
    assert_eq!(payload, b"\xff not an alert");
    bus.close();
    bus.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_reaches_a_private_ca_webhook_on_an_ipv6_literal_with_ca_file() {
    let vhost = Vhost::new("fwd-tls");
    let server = HookServer::start("[::1]:0", Some(hook_server::test_tls()), |_| 200).await;
    let hook = format!("https://[::1]:{}/hook", server.port());
    let ca = hook_server::data_file("webhook-ca.pem");
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "alerts",
        "forward",
        "--amqp",
        &vhost.url,
        "--webhook",
        &hook,
        "--ca-file",
        ca.to_str().unwrap(),
    ];
    let fwd = Proc::start("forward", dir.path(), &args);
    let bus = bus::AmqpBus::connect_with(&vhost.url, None).await.unwrap();
    wait_for_consumer(&bus, "leakwatch.alerts.webhook", &fwd).await;
    let a = alert("over-tls");
    bus::publish_msg(&bus, schema::names::ALERTS_EXCHANGE, "alert.image", &a)
        .await
        .unwrap();
    wait_for(
        "the alert over TLS",
        Duration::from_secs(20),
        Some(&fwd),
        || !server.requests().is_empty(),
    )
    .await;
    let got = server.requests();
    assert!(String::from_utf8_lossy(&got[0].body).contains(&a.id));
    assert_eq!(got[0].host, format!("[::1]:{}", server.port()));
    wait_for(
        "the forwarder's report",
        Duration::from_secs(5),
        Some(&fwd),
        || {
            fwd.output()
                .0
                .contains(&format!("forwarded alert {}", a.id))
        },
    )
    .await;
    bus.close();
    bus.disconnect().await;
}
