//! Measures how leakwatch's 256-bit DCT median hash separates the planted
//! leaks from decoys and filler, on the served bytes. Run with
//! `--nocapture` to see the distribution used to pick the alert threshold.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use image_hasher::{HashAlg, Hasher, HasherConfig, ImageHash};
use testbed::{Config, SITE_NAMES};

fn hasher() -> Hasher {
    HasherConfig::new()
        .hash_size(16, 16)
        .hash_alg(HashAlg::Median)
        .preproc_dct()
        .to_hasher()
}

fn hash_bytes(h: &Hasher, bytes: &[u8]) -> ImageHash {
    let img = image::load_from_memory(bytes).expect("served image decodes");
    h.hash_image(&img)
}

/// Bits of margin required between the worst caught leak and the closest decoy.
const MARGIN: u32 = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dct256_separates_leaks_from_decoys() {
    // TESTBED_SEED lets the calibration be repeated on other worlds.
    let seed = std::env::var("TESTBED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let running = testbed::start(Config {
        seed,
        ..Config::default()
    })
    .await
    .unwrap();
    let truth = running.truth();
    let h = hasher();
    let stolen: BTreeMap<String, ImageHash> = running
        .world()
        .stolen()
        .iter()
        .map(|p| {
            (
                p.label.clone(),
                h.hash_image(&image::DynamicImage::ImageRgb8(p.image.clone())),
            )
        })
        .collect();
    let nearest = |hash: &ImageHash| -> (u32, String) {
        stolen
            .iter()
            .map(|(l, s)| (s.dist(hash), l.clone()))
            .min()
            .unwrap()
    };

    // Leaks, from the served bytes.
    let mut per_transform: BTreeMap<String, (u32, u32, bool)> = BTreeMap::new();
    let mut max_caught = 0;
    let mut served_images = BTreeSet::new();
    for leak in &truth.leaks {
        let bytes = if leak.data_uri {
            let page = common::get(&leak.page_url).await;
            let html = String::from_utf8(page.body).unwrap();
            let uri = common::attr_values(&html, "src")
                .into_iter()
                .find(|s| s.starts_with("data:image/jpeg;base64,"))
                .expect("data uri on page");
            base64::engine::general_purpose::STANDARD
                .decode(&uri["data:image/jpeg;base64,".len()..])
                .unwrap()
        } else {
            served_images.insert(leak.image_url.clone());
            let resp = common::get(&leak.image_url).await;
            assert_eq!(resp.status, 200, "{}", leak.image_url);
            resp.body
        };
        let hash = hash_bytes(&h, &bytes);
        let d = stolen[&leak.label].dist(&hash);
        let kind = leak
            .transform
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string();
        let e = per_transform
            .entry(kind)
            .or_insert((0, u32::MAX, leak.expect_dct256));
        e.0 = e.0.max(d);
        e.1 = e.1.min(nearest(&hash).0);
        if leak.expect_dct256 {
            max_caught = max_caught.max(d);
            assert_eq!(
                nearest(&hash).1,
                leak.label,
                "{} nearest to wrong photo",
                leak.transform
            );
        }
    }
    println!("leak distance to its original (max per transform; expect_dct256):");
    for (t, (d, _, e)) in &per_transform {
        println!("  {t:<16} max {d:>3}  expect_dct256={e}");
    }

    // Decoys.
    let mut min_decoy = u32::MAX;
    let mut per_kind: BTreeMap<String, u32> = BTreeMap::new();
    for decoy in &truth.decoys {
        served_images.insert(decoy.image_url.clone());
        let resp = common::get(&decoy.image_url).await;
        assert_eq!(resp.status, 200);
        let d = nearest(&hash_bytes(&h, &resp.body)).0;
        let e = per_kind.entry(decoy.kind.clone()).or_insert(u32::MAX);
        *e = (*e).min(d);
        min_decoy = min_decoy.min(d);
    }
    println!("decoy distance to the nearest stolen photo (min per kind):");
    for (k, d) in &per_kind {
        println!("  {k:<22} min {d:>3}");
    }

    // Filler: every other image on the normal sites.
    let mut min_filler = u32::MAX;
    let mut fillers = 0;
    for (i, site) in truth.sites.iter().enumerate() {
        assert_eq!(site.name, SITE_NAMES[i]);
        for (path, r) in running.world().site_resources(i) {
            let url = format!("{}{}", site.base_url, &path[1..]);
            if r.is_page || served_images.contains(&url) {
                continue;
            }
            fillers += 1;
            min_filler = min_filler.min(nearest(&hash_bytes(&h, &r.body)).0);
        }
    }
    println!("filler images: {fillers}, min distance to stolen {min_filler}");

    // Distinct stolen photos.
    let hashes: Vec<&ImageHash> = stolen.values().collect();
    let mut min_pair = u32::MAX;
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            min_pair = min_pair.min(a.dist(b));
        }
    }
    println!("min distance between distinct stolen photos: {min_pair}");
    println!("max caught leak distance {max_caught}, min decoy distance {min_decoy}");

    assert!(
        max_caught + MARGIN <= min_decoy,
        "leaks up to {max_caught}, decoys from {min_decoy}"
    );
    assert!(max_caught + MARGIN <= min_filler);
    assert!(max_caught + MARGIN <= min_pair);
    for (t, (d, _, e)) in &per_transform {
        if !e {
            assert!(
                *d > max_caught,
                "{t} would be caught; mark it expect_dct256"
            );
        }
    }
    running.shutdown().await;
}
