//! A complete node in-process: every role on the embedded bus, the direct transport, the
//! loopback testbed; stopped through its shutdown future, its summary and alert store checked
//! against the testbed's truth.

use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, EmbeddedBus};
use leakwatch_node::{Config, Node, NodeError, NodeOptions, Role, Roles, Transport};

/// Imports the testbed's stolen set and identifiers into `data`.
fn import_truth(tb: &testbed::Running, data: &std::path::Path, config: &Config) {
    let scratch = tempfile::tempdir().unwrap();
    let stolen = scratch.path().join("stolen");
    tb.write_stolen_set(&stolen).unwrap();
    let files = matcher::import::collect_files(&[stolen], |e| panic!("{e}")).unwrap();
    let report = matcher::import::import_images(data, &config.matcher, &files, &mut ()).unwrap();
    assert_eq!(report.added, files.len(), "{report:?}");
    let idents = scratch.path().join("identifiers.txt");
    tb.write_identifiers(&idents).unwrap();
    let mut wl = matcher::Watchlist::open(data).unwrap();
    let imported = wl.import_text(
        &std::fs::read_to_string(&idents).unwrap(),
        matcher::IdentifierKind::Plate,
    );
    assert!(imported.rejected.is_empty() && imported.added > 0);
    wl.save().unwrap();
}

fn config() -> Config {
    let mut config = Config::default();
    config.crawler.workers = 8;
    config.crawler.politeness_delay_ms = 0;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_node_crawls_the_testbed_and_stops_through_its_shutdown_future() {
    let tb = testbed::start(testbed::Config::default()).await.unwrap();
    let truth = tb.truth();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = config();
    import_truth(&tb, &data, &config);

    let mut options = NodeOptions::new(&data, config.clone());
    options.seeds = crawler::Frontier::parse_seeds(&tb.seeds()).unwrap();
    let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::new(config.bus.delivery_limit));
    let transport = Transport::direct(true, &config.crawler.user_agent).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = Node::start(options, Roles::all(), bus.clone(), Some(transport), async {
        let _ = stopped.await;
    });
    let readiness = node.readiness();
    let stats = node.stats();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !readiness.all_ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("roles never became ready");
    tokio::time::timeout(Duration::from_secs(180), bus.wait_idle())
        .await
        .expect("the crawl never settled")
        .unwrap();
    // Settled but still running: only the shutdown future stops it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(readiness.all_ready(), "{:?}", readiness.snapshot());
    stop.send(()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(60), node)
        .await
        .expect("the node did not stop")
        .unwrap();
    assert!(!readiness.is_ready(Role::Indexer));

    assert_eq!(summary.pages as usize, truth.pages, "{summary:?}");
    assert_eq!(summary.pages, stats.get(bus::Counter::Pages));
    assert!(summary.errors.is_empty(), "{summary:?}");
    assert_eq!(summary.dead_lettered, 0);
    assert_eq!(summary.transport, "direct");
    assert_eq!(summary.repeated_alerts, 0);
    assert_eq!(summary.new_alerts as usize, summary.total_alerts);
    assert!(summary.images_hashed > 0 && summary.images >= summary.images_hashed);

    let stored = alerts::load(&data.join(alerts::ALERTS_FILE)).unwrap();
    assert_eq!(stored.len(), summary.total_alerts);
    for leak in &truth.leaks {
        let hit = stored.iter().any(|a| {
            let same_image = if leak.data_uri {
                a.url.starts_with("data:") && a.page_url.as_deref() == Some(&leak.page_url)
            } else {
                a.url == leak.image_url
            };
            a.kind == schema::AlertKind::Image && same_image && a.label == leak.label
        });
        assert!(hit, "planted leak not alerted: {leak:?}");
    }
    for decoy in &truth.decoys {
        // Another car at a stolen camera may be reported as a frame of that camera (a scene
        // alert); no decoy is ever reported as a stolen photo.
        for a in stored.iter().filter(|a| a.url == decoy.image_url) {
            assert!(
                a.kind == schema::AlertKind::Scene && decoy.kind == "same-camera-other-car",
                "decoy alerted: {decoy:?}: {a:?}"
            );
        }
    }
    for t in &truth.text_leaks {
        assert!(
            stored
                .iter()
                .any(|a| a.kind == schema::AlertKind::Text && a.url == t.page_url),
            "text leak not alerted: {t:?}"
        );
    }
    tb.shutdown().await;
}

#[tokio::test]
async fn a_role_that_cannot_start_fails_the_node_and_closes_the_bus() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = EmbeddedBus::new(5);
    let roles: Roles = [Role::Indexer, Role::Crawler].into_iter().collect();
    let node = Node::start(
        NodeOptions::new(tmp.path(), Config::default()),
        roles,
        Arc::new(bus.clone()),
        None,
        std::future::pending(),
    );
    let e = tokio::time::timeout(Duration::from_secs(30), node)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, NodeError::NoTransport), "{e}");
    assert!(bus
        .publish("", schema::names::IMAGES, vec![])
        .await
        .is_err());
}
