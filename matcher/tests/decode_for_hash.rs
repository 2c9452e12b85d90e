//! Reduced-scale JPEG decoding for hashing: same PDQ bits within a few, same limits and
//! format sniffing as the full decode.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Rgb, RgbImage};
use leakwatch_matcher::hashing::{
    self, decode, decode_for_hash, hamming, jpeg_hash_scale, DecodeLimits,
};
use leakwatch_matcher::pdq;

/// Photo-like: gradients, blocks, a disc, and per-pixel texture.
fn photo(w: u32, h: u32, seed: u32) -> RgbImage {
    let s = seed as f32;
    ImageBuffer::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let mut v = [
            50.0 + 150.0 * fy + 30.0 * (fx * (4.0 + s)).sin(),
            80.0 + 90.0 * fx,
            120.0 + 60.0 * (fx * 3.0 + fy * (6.0 + s)).cos(),
        ];
        if (fx - 0.4 - 0.03 * s).powi(2) + (fy - 0.5).powi(2) < 0.04 {
            v[0] += 70.0;
        }
        if (x / 97 + y / 61 + seed).is_multiple_of(5) {
            v[2] -= 60.0;
        }
        // Cells a few percent of the image wide (windows, tiles): detail at PDQ's scale.
        let cell =
            ((x * 19 / w).wrapping_mul(2_654_435_761) ^ (y * 13 / h).wrapping_mul(40_503)) >> 9;
        let m = (cell % 71) as f32 - 35.0;
        v[0] += m;
        v[1] += m;
        let t = ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) >> 11) % 17;
        let c = |a: f32| (a + t as f32 - 8.0).clamp(0.0, 255.0) as u8;
        Rgb([c(v[0]), c(v[1]), c(v[2])])
    })
}

fn jpeg(img: &DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

#[test]
fn scale_keeps_the_short_side_above_the_minimum() {
    assert_eq!(jpeg_hash_scale(1280, 720, 128), 2); // 320x180
    assert_eq!(jpeg_hash_scale(4000, 3000, 128), 1); // 500x375
    assert_eq!(jpeg_hash_scale(640, 480, 128), 4); // 320x240: 1/4 would be 120 high
    assert_eq!(jpeg_hash_scale(200, 150, 128), 8);
    assert_eq!(jpeg_hash_scale(1024, 1024, 128), 1);
}

/// PDQ is not scale invariant: the hash of a downscaled copy differs from the original's by
/// a few bits, more the smaller the copy. Decoding at a reduced scale must cost no more than
/// that: its hash is compared with the full decode resized (triangle filter) to the same
/// size, and, for the short side ≥ 256 used for hashing, with the full decode itself.
#[test]
fn scaled_decode_gives_nearly_the_same_pdq() {
    let mut report = Vec::new();
    let sizes = [
        (1280, 720),
        (1024, 768),
        (900, 1600),
        (2000, 1333),
        (4000, 3000),
    ];
    for (i, (w, h)) in sizes.into_iter().enumerate() {
        let bytes = jpeg(&DynamicImage::ImageRgb8(photo(w, h, i as u32)));
        let full = decode(&bytes, DecodeLimits::default()).unwrap();
        assert_eq!((full.width(), full.height()), (w, h));
        let pf = pdq::pdq(&full);
        for min_side in [128, 256] {
            let fast = decode_for_hash(&bytes, DecodeLimits::default(), min_side).unwrap();
            let eighths = jpeg_hash_scale(w, h, min_side);
            assert!(eighths < 8, "{w}x{h} should be scaled for {min_side}");
            assert_eq!(fast.width(), (w * eighths).div_ceil(8));
            assert_eq!(fast.height(), (h * eighths).div_ceil(8));
            assert!(fast.width().min(fast.height()) >= min_side);
            let ps = pdq::pdq(&fast);
            let resized = full.resize_exact(fast.width(), fast.height(), FilterType::Triangle);
            let to_full = hamming(&pf.hash, &ps.hash);
            let to_resized = hamming(&pdq::pdq(&resized).hash, &ps.hash);
            report.push(format!(
                "{w}x{h} at 1/{} ({}x{}): {to_full} bits from full, {to_resized} from resized",
                8 / eighths,
                fast.width(),
                fast.height()
            ));
            assert!(to_resized <= 12, "{}", report.last().unwrap());
            if min_side >= 256 {
                assert!(to_full <= 16, "{}", report.last().unwrap());
            }
            assert!((pf.quality as i32 - ps.quality as i32).abs() <= 10);
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn small_jpegs_and_other_formats_decode_as_before() {
    let img = DynamicImage::ImageRgb8(photo(200, 150, 9));
    let bytes = jpeg(&img);
    let a = decode(&bytes, DecodeLimits::default()).unwrap();
    let b = decode_for_hash(&bytes, DecodeLimits::default(), 128).unwrap();
    assert_eq!((b.width(), b.height()), (200, 150));
    assert!(hamming(&pdq::pdq(&a).hash, &pdq::pdq(&b).hash) <= 12);

    let mut png = Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let p = decode_for_hash(png.get_ref(), DecodeLimits::default(), 128).unwrap();
    assert_eq!(p.to_rgb8(), img.to_rgb8());

    let grey = DynamicImage::ImageLuma8(img.to_luma8());
    let g = decode_for_hash(&jpeg(&grey), DecodeLimits::default(), 64).unwrap();
    assert!(matches!(g, DynamicImage::ImageLuma8(_)));
}

/// Rewrites the frame size in a JPEG's SOF0 header.
fn with_frame_size(mut bytes: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
    let sof = bytes
        .windows(2)
        .position(|p| p == [0xff, 0xc0])
        .expect("baseline JPEG");
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

#[test]
fn hostile_jpegs_are_errors_not_allocations_or_panics() {
    let bytes = jpeg(&DynamicImage::ImageRgb8(photo(320, 240, 3)));
    let limits = DecodeLimits::default();
    // Beyond max_dimension.
    let e =
        decode_for_hash(&with_frame_size(bytes.clone(), 60_000, 60_000), limits, 128).unwrap_err();
    assert_eq!(e.kind(), "image.too-large", "{e}");
    // Within max_dimension but over the allocation budget: refused from the header alone.
    let e =
        decode_for_hash(&with_frame_size(bytes.clone(), 16_000, 16_000), limits, 128).unwrap_err();
    assert_eq!(e.kind(), "image.too-large", "{e}");
    let tight = DecodeLimits {
        max_dimension: 16_384,
        max_alloc_bytes: 100_000,
    };
    assert_eq!(
        decode_for_hash(&bytes, tight, 128).unwrap_err().kind(),
        "image.too-large"
    );
    // Truncated, corrupted and non-image bytes.
    for cut in [bytes.len() / 2, 200, 20, 3] {
        if let Err(e) = decode_for_hash(&bytes[..cut], limits, 128) {
            assert!(
                ["image.decode", "image.unsupported", "image.unknown-format"].contains(&e.kind()),
                "{e}"
            );
        }
    }
    let mut flipped = bytes.clone();
    for i in (600..flipped.len() - 2).step_by(97) {
        flipped[i] ^= 0x5a;
    }
    let _ = decode_for_hash(&flipped, limits, 128);
    assert_eq!(
        decode_for_hash(b"<html>", limits, 128).unwrap_err().kind(),
        "image.unknown-format"
    );
    assert_eq!(
        hashing::decode_for_hash(&[0xff, 0xd8, 0xff], limits, 128)
            .unwrap_err()
            .kind(),
        "image.decode"
    );
}
