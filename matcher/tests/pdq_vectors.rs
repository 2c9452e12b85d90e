//! PDQ against the reference test vectors of the ThreatExchange PDQ distribution (see
//! `tests/data/pdq/SOURCE.md`): published hashes and the reference implementation's hashes
//! and qualities on the same images.
//!
//! Two kinds of check:
//! - on `square-256x256.pillow.png`, the pixels the reference hashed (lossless), the hash and
//!   all eight dihedral hashes must be bit-for-bit the reference's;
//! - on the JPEGs, leakwatch's JPEG decoder differs from the one used to produce the vectors by
//!   a level or two on some pixels (IDCT rounding, chroma upsampling), which moves DCT
//!   coefficients lying near the median across it. For images of quality ≥ 50 the distance
//!   must be at most [`JPEG_TOLERANCE`] bits; PDQ matches at ≤ 31, and the ThreatExchange
//!   implementations accept 16 between each other, so 8 leaves room for no more than
//!   decoder noise. Flat images (quality < 50, which PDQ says not to trust) only have to keep
//!   a quality below 50.

use std::path::{Path, PathBuf};

use leakwatch_matcher::hashing::{self, hamming, parse_hash, DecodeLimits};
use leakwatch_matcher::pdq::{self, Dihedral};

const JPEG_TOLERANCE: u32 = 8;
const QUALITY_TOLERANCE: i32 = 5;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pdq")
}

struct Vector {
    file: String,
    width: u32,
    height: u32,
    published: [u8; 32],
    reference: [u8; 32],
    quality: u8,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(data().join("expected.tsv")).unwrap();
    let v: Vec<Vector> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Vector {
                file: f[0].to_string(),
                width: f[1].parse().unwrap(),
                height: f[2].parse().unwrap(),
                published: parse_hash(f[3]).unwrap(),
                reference: parse_hash(f[4]).unwrap(),
                quality: f[5].parse().unwrap(),
            }
        })
        .collect();
    assert!(v.len() >= 8, "expected.tsv lists {} images", v.len());
    v
}

fn load(file: &str) -> image::DynamicImage {
    let bytes = std::fs::read(data().join(file)).unwrap();
    hashing::decode(&bytes, DecodeLimits::default()).unwrap()
}

#[test]
fn jpeg_vectors_are_within_decoder_tolerance() {
    let mut report = Vec::new();
    for v in vectors() {
        let img = load(&v.file);
        assert_eq!(
            (img.width(), img.height()),
            (v.width, v.height),
            "{}",
            v.file
        );
        let got = pdq::pdq(&img);
        let d_pub = hamming(&got.hash, &v.published);
        let d_ref = hamming(&got.hash, &v.reference);
        report.push(format!(
            "{:<20} published {:>3} bits, reference {:>3} bits, quality {:>3} (reference {:>3})",
            v.file, d_pub, d_ref, got.quality, v.quality
        ));
        let dq = got.quality as i32 - v.quality as i32;
        assert!(dq.abs() <= QUALITY_TOLERANCE, "{}: quality {dq:+}", v.file);
        if v.quality >= pdq::DEFAULT_MIN_QUALITY {
            assert!(got.quality >= pdq::DEFAULT_MIN_QUALITY, "{}", v.file);
            assert!(
                d_ref <= JPEG_TOLERANCE,
                "{}: {d_ref} bits from reference",
                v.file
            );
            assert!(
                d_pub <= JPEG_TOLERANCE,
                "{}: {d_pub} bits from published",
                v.file
            );
        } else {
            assert!(got.quality < pdq::DEFAULT_MIN_QUALITY, "{}", v.file);
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn reference_pixels_hash_exactly() {
    let img = load("square-256x256.pillow.png");
    let v = vectors()
        .into_iter()
        .find(|v| v.file == "square-256x256.jpg")
        .unwrap();
    let got = pdq::pdq(&img);
    assert_eq!(got.hex(), hex::encode(v.reference));
    assert_eq!(got.quality, v.quality);

    let text = std::fs::read_to_string(data().join("dihedral.tsv")).unwrap();
    let expected: Vec<(String, [u8; 32])> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, hash) = l.split_once('\t').unwrap();
            (name.to_string(), parse_hash(hash).unwrap())
        })
        .collect();
    assert_eq!(expected.len(), 8);
    let all = pdq::pdq_dihedral(&img);
    assert_eq!(all.quality, v.quality);
    for (d, (name, hash)) in Dihedral::ALL.into_iter().zip(&expected) {
        assert_eq!(d.name(), name);
        assert_eq!(pdq::pdq_hex(&all.get(d)), hex::encode(hash), "{name}");
    }
}

#[test]
fn gate_refuses_the_flat_vectors_and_keeps_the_rest() {
    for v in vectors() {
        let img = load(&v.file);
        let gated = pdq::pdq_gated(&img, pdq::QualityGate::default());
        if v.quality < pdq::DEFAULT_MIN_QUALITY {
            assert_eq!(gated.unwrap_err().kind(), "image.low-quality", "{}", v.file);
        } else {
            assert!(gated.is_ok(), "{}", v.file);
        }
    }
}
