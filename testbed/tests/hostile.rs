//! The hostile site's routes behave as documented.

mod common;

use std::io::Read;
use std::time::Duration;

use testbed::Config;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_routes() {
    let running = testbed::start(Config {
        hostile: true,
        stolen_count: 4,
        ..Config::default()
    })
    .await
    .unwrap();
    let base = running.hostile_url().expect("hostile enabled");
    assert_eq!(running.sites().len(), 5);
    assert!(!running.seeds().contains(&base));

    let root = common::get(&base).await;
    let html = String::from_utf8(root.body).unwrap();
    for needle in [
        "/bomb.png",
        "/truncated.jpg",
        "/notimage.jpg",
        "/big",
        "/redirect/0",
        "/deep/0",
        "/slow",
        "/latin1.html",
    ] {
        assert!(html.contains(needle), "{needle}");
    }

    let r = common::get(&format!("{base}redirect/5")).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/redirect/6"));

    let r = common::get(&format!("{base}deep/41")).await;
    assert!(String::from_utf8(r.body).unwrap().contains("/deep/42"));

    let r = common::get(&format!("{base}big")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len() as u64, testbed::BIG_BYTES);

    let r = common::get(&format!("{base}bomb.png")).await;
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert!(r.body.len() < 4 << 20, "{} bytes", r.body.len());
    let dims = image::ImageReader::new(std::io::Cursor::new(&r.body))
        .with_guessed_format()
        .unwrap()
        .into_dimensions()
        .unwrap();
    assert_eq!(dims, (testbed::BOMB_SIDE, testbed::BOMB_SIDE));
    // The IDAT really inflates to every row.
    let idat_len = u32::from_be_bytes(r.body[33..37].try_into().unwrap()) as usize;
    assert_eq!(&r.body[37..41], b"IDAT");
    let zlib = &r.body[41..41 + idat_len];
    let mut inflated = 0u64;
    let mut dec = flate2::read::ZlibDecoder::new(zlib);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = dec.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 0));
        inflated += n as u64;
    }
    let side = u64::from(testbed::BOMB_SIDE);
    assert_eq!(inflated, side * (1 + 3 * side));

    let r = common::get(&format!("{base}truncated.jpg")).await;
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(&r.body[..2], &[0xff, 0xd8]);
    // Cut in the middle of the entropy-coded data: no end-of-image marker.
    // (image 0.25's JPEG decoder still returns a partly grey picture.)
    assert!(!r.body.ends_with(&[0xff, 0xd9]));
    assert!(r.body.len() > 1000);

    let r = common::get(&format!("{base}notimage.jpg")).await;
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert!(r.body.starts_with(b"<!DOCTYPE html>"));

    let r = common::get(&format!("{base}latin1.html")).await;
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.body.contains(&0xe9));
    let text: String = r.body.iter().map(|&b| b as char).collect();
    assert!(text.contains(testbed::LATIN1_PHRASE));
    assert!(text.contains(testbed::LATIN1_ASCII_PHRASE));
    assert!(!text.to_lowercase().contains("charset"));

    // /slow trickles: something arrives quickly, the body does not finish.
    let mut stream = common::open(&format!("{base}slow")).await;
    let mut first = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut first))
        .await
        .expect("first bytes")
        .unwrap();
    assert!(n > 0);
    let mut rest = Vec::new();
    let unfinished =
        tokio::time::timeout(Duration::from_millis(2500), stream.read_to_end(&mut rest)).await;
    assert!(unfinished.is_err(), "slow body ended early");
    drop(stream);

    running.shutdown().await;
}
