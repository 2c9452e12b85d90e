//! The matching decision on edited copies and look-alikes, end to end through the public API:
//! fingerprints of stolen border-camera photos (the testbed's scene painter: a few cameras,
//! many cars each), then edited copies that must match their own photo and other cars at the
//! same cameras that must not match anything.

use image::{imageops, DynamicImage, Rgb, RgbImage};
use leakwatch_matcher::{
    engine::Query, fingerprint_image, match_bytes, Bank, Engine, MatcherConfig, Sighted,
};

fn jpeg(img: &RgbImage, q: u8) -> Vec<u8> {
    let mut b = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut b, q)
        .encode_image(img)
        .unwrap();
    b
}

fn rotate(img: &RgbImage, deg: f32) -> RgbImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = deg.to_radians().sin_cos();
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (dx, dy) = (x as f32 - w / 2.0, y as f32 - h / 2.0);
        let (sx, sy) = (c * dx + s * dy + w / 2.0, -s * dx + c * dy + h / 2.0);
        if sx >= 0.0 && sy >= 0.0 && sx < w && sy < h {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            Rgb([0, 0, 0])
        }
    })
}

fn screenshot(img: &RgbImage) -> RgbImage {
    let mut page = RgbImage::from_pixel(1200, 900, Rgb([248, 248, 248]));
    for y in 0..70 {
        for x in 0..1200 {
            page.put_pixel(x, y, Rgb([30, 60, 120]));
        }
    }
    for line in 0..30u32 {
        let y = 120 + line * 24;
        for x in (40..340u32).step_by(5) {
            if (x / 5 + line) % 7 != 0 {
                for dy in 0..8 {
                    page.put_pixel(x, y + dy, Rgb([30, 30, 30]));
                }
            }
        }
    }
    let small = imageops::resize(img, 700, 525, imageops::FilterType::Triangle);
    imageops::replace(&mut page, &small, 420, 160);
    page
}

/// Edited copies: (name, encoded bytes).
fn edits(img: &RgbImage) -> Vec<(&'static str, Vec<u8>)> {
    let (w, h) = (img.width(), img.height());
    let mut banner = img.clone();
    for y in h * 85 / 100..h {
        for x in 0..w {
            banner.put_pixel(x, y, Rgb([12, 12, 16]));
        }
    }
    let mut pad = RgbImage::from_pixel(w + w / 5, h + h / 5, Rgb([255, 255, 255]));
    imageops::replace(&mut pad, img, i64::from(w / 10), i64::from(h / 10));
    let crop = imageops::crop_imm(img, w * 4 / 100, h * 4 / 100, w * 92 / 100, h * 92 / 100);
    let mut dark = img.clone();
    for v in dark.iter_mut() {
        *v = (f32::from(*v) * 0.7) as u8;
    }
    vec![
        ("jpeg-30", jpeg(img, 30)),
        ("brightness-30", jpeg(&dark, 85)),
        ("flip", jpeg(&imageops::flip_horizontal(img), 85)),
        ("banner-15", jpeg(&banner, 85)),
        ("crop-4", jpeg(&crop.to_image(), 85)),
        ("pad-10", jpeg(&pad, 85)),
        ("rotate-3", jpeg(&rotate(img, 3.0), 85)),
        ("screenshot", jpeg(&screenshot(img), 85)),
    ]
}

#[test]
fn copies_match_their_photo_and_lookalikes_match_nothing() {
    let world = testbed::generate(&testbed::Config {
        seed: 11,
        stolen_count: 64,
        ..Default::default()
    });
    // 48 stolen photos from 4 cameras (12 cars each); the other 16 are the same cameras with
    // other cars: look-alikes that were never stolen.
    let (stolen, lookalikes) = world.stolen().split_at(48);
    let dir = tempfile::tempdir().unwrap();
    let mut bank = Bank::open(dir.path()).unwrap();
    for (i, p) in stolen.iter().enumerate() {
        let img = DynamicImage::ImageRgb8(p.image.clone());
        let fp = fingerprint_image(&img, p.label.clone(), format!("{i:064x}")).unwrap();
        assert!(bank.insert(fp));
    }
    let config = MatcherConfig::default();
    let engine = Engine::from_bank(&bank, config.params());

    let mut misses = Vec::new();
    for p in stolen.iter().step_by(6) {
        for (edit, bytes) in edits(&p.image) {
            let out = match_bytes(&bytes, &engine, &config, 1).unwrap();
            let best = out.candidates.first();
            if !best.is_some_and(|c| c.matched && c.label == p.label) {
                misses.push(format!("{} {edit}: {best:?}", p.label));
            }
        }
    }
    assert!(misses.is_empty(), "edited copies not matched: {misses:#?}");

    let mut false_alarms = Vec::new();
    for p in lookalikes {
        for bytes in [
            jpeg(&p.image, 85),
            jpeg(&imageops::flip_horizontal(&p.image), 85),
        ] {
            let out = match_bytes(&bytes, &engine, &config, 1).unwrap();
            if let Some(c) = out.candidates.iter().find(|c| c.matched) {
                false_alarms.push(format!("{} matched {} at {}", p.label, c.label, c.distance));
            }
        }
    }
    assert!(
        false_alarms.is_empty(),
        "look-alikes matched: {false_alarms:#?}"
    );
}

/// Twins: the same car model at the same spot in the same conditions, with another paint,
/// plate and driver. Both of some pairs are stolen (a copy must name the right one); of the
/// others only the first is, and its twin must never raise an image alert.
#[test]
fn twins_are_told_apart_and_never_named() {
    let pairs = testbed::twin_photos(23, 24, 4);
    let dir = tempfile::tempdir().unwrap();
    let mut bank = Bank::open(dir.path()).unwrap();
    let mut add = |img: &RgbImage, label: String| {
        let fp = fingerprint_image(&DynamicImage::ImageRgb8(img.clone()), label, {
            schema::sha256_hex(img.as_raw())
        })
        .unwrap();
        assert!(bank.insert(fp));
    };
    for (i, (a, b)) in pairs.iter().enumerate() {
        add(a, format!("a-{i}"));
        if i % 2 == 0 {
            add(b, format!("b-{i}"));
        }
    }
    // Saved, and matched as a matcher does: from the bank's lookup file, mapped.
    bank.save().unwrap();
    let config = MatcherConfig::default();
    let engine = leakwatch_matcher::open_engine(dir.path(), config.params()).unwrap();
    assert!(engine.is_mapped());
    assert_eq!(engine.len(), 36);
    let sighted = |img: &RgbImage| {
        match_bytes(&jpeg(img, 80), &engine, &config, 1)
            .unwrap()
            .sighted
    };
    let (mut named, mut wrong, mut false_alerts, mut scenes) = (0, Vec::new(), Vec::new(), 0);
    for (i, (a, b)) in pairs.iter().enumerate() {
        let mut copies = vec![(format!("a-{i}"), a)];
        if i % 2 == 0 {
            copies.push((format!("b-{i}"), b));
        }
        for (label, img) in copies {
            match sighted(img) {
                Some(Sighted::Image { label: got, .. }) if got == label => named += 1,
                Some(Sighted::Image { label: got, .. }) => wrong.push(format!("{label} as {got}")),
                _ => {}
            }
        }
        if i % 2 == 1 {
            match sighted(b) {
                Some(Sighted::Image { label, .. }) => {
                    false_alerts.push(format!("twin {i}: {label}"))
                }
                Some(Sighted::Scene { .. }) => scenes += 1,
                None => {}
            }
        }
    }
    assert!(wrong.is_empty(), "copies named the wrong photo: {wrong:?}");
    assert!(
        false_alerts.is_empty(),
        "twins named as stolen: {false_alerts:?}"
    );
    // 36 copies in all; a copy whose twin is stolen too may be reported as a scene instead.
    assert!(named >= 30, "only {named} of 36 copies named");
    assert!(
        scenes >= 6,
        "only {scenes} of 12 twins reported as scene sightings"
    );
}

#[test]
fn recorded_views_find_a_sighting_after_the_fact() {
    let world = testbed::generate(&testbed::Config {
        seed: 5,
        stolen_count: 24,
        ..Default::default()
    });
    let photos = world.stolen();
    // A sighting recorded while the bank did not have the photo yet.
    let img =
        image::load_from_memory(&jpeg(&imageops::flip_horizontal(&photos[3].image), 80)).unwrap();
    let hashes = leakwatch_matcher::engine::sighting_hashes(&Query::from_image(&img).unwrap());
    // Through the message form, as the index keeps them.
    let views: Vec<_> = hashes
        .iter()
        .map(schema::ImageHash::from)
        .filter_map(|h| leakwatch_matcher::engine::SightingHash::from_message(&h))
        .filter_map(|h| h.view().cloned())
        .collect();
    assert!(!views.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let mut bank = Bank::open(dir.path()).unwrap();
    for (i, p) in photos.iter().enumerate() {
        let img = DynamicImage::ImageRgb8(p.image.clone());
        bank.insert(fingerprint_image(&img, p.label.clone(), format!("{i:064x}")).unwrap());
    }
    let engine = Engine::from_bank(&bank, MatcherConfig::default().params());
    let best = engine.score_recorded(&views, 1);
    let best = best.first().expect("a candidate");
    assert!(best.matched, "{best:?}");
    assert_eq!(bank.get(best.entry).unwrap().label, photos[3].label);
}
