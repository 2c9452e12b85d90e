//! Single-thread throughput of decode + hash on a directory of JPEGs, for `bench/hashing`.
//!
//! Usage: `hash_bench DIR [--secs S] [--min-side N]`. Every `*.jpg`/`*.jpeg` in DIR is read
//! into memory first; each path is then timed over whole passes of the set until S seconds
//! (default 3) have passed. Prints one `path images/s ms/image` line per path, and how far
//! the PDQ bits of the reduced-scale decode are from those of the full decode. The peer row
//! `dct256_full_decode` is `image_hasher`'s 256-bit DCT hash, which PDQ replaced.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use image_hasher::{HashAlg, HasherConfig};
use leakwatch_matcher::hashing::{self, hamming, DecodeLimits};
use leakwatch_matcher::pdq;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut secs = 3.0f64;
    let mut min_side = hashing::DEFAULT_HASH_MIN_SIDE;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().context("--secs needs a value")?.parse()?,
            "--min-side" => min_side = args.next().context("--min-side needs a value")?.parse()?,
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => bail!("usage: hash_bench DIR [--secs S] [--min-side N]"),
        }
    }
    let dir = dir.context("usage: hash_bench DIR [--secs S] [--min-side N]")?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext.eq_ignore_ascii_case("jpg") || ext.eq_ignore_ascii_case("jpeg") {
            files.push(std::fs::read(&path)?);
        }
    }
    if files.is_empty() {
        bail!("no JPEGs in {}", dir.display());
    }
    let limits = DecodeLimits::default();
    // The peer: `image_hasher`'s 256-bit DCT hash (median), what leakwatch used before PDQ.
    let hasher = HasherConfig::new()
        .hash_size(16, 16)
        .hash_alg(HashAlg::Median)
        .preproc_dct()
        .to_hasher();
    let first = hashing::decode(&files[0], limits)?;
    let scaled = hashing::decode_for_hash(&files[0], limits, min_side)?;
    println!(
        "images {} (first {}x{}, decoded for hashing at {}x{}), min side {min_side}",
        files.len(),
        first.width(),
        first.height(),
        scaled.width(),
        scaled.height()
    );

    let budget = Duration::from_secs_f64(secs);
    let run = |name: &str, f: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<()> {
        let start = Instant::now();
        let mut n = 0u64;
        while n == 0 || start.elapsed() < budget {
            for bytes in &files {
                f(bytes)?;
                n += 1;
            }
        }
        let s = start.elapsed().as_secs_f64();
        println!("{name} {:.1} {:.3}", n as f64 / s, 1e3 * s / n as f64);
        Ok(())
    };
    run("pdq_scaled_decode", &mut |b| {
        let img = hashing::decode_for_hash(b, limits, min_side)?;
        std::hint::black_box(pdq::pdq(&img));
        Ok(())
    })?;
    run("pdq_full_decode", &mut |b| {
        let img = hashing::decode(b, limits)?;
        std::hint::black_box(pdq::pdq(&img));
        Ok(())
    })?;
    run("dct256_full_decode", &mut |b| {
        let img = hashing::decode(b, limits)?;
        std::hint::black_box(hasher.hash_image(&img));
        Ok(())
    })?;
    run("decode_scaled_only", &mut |b| {
        std::hint::black_box(hashing::decode_for_hash(b, limits, min_side)?);
        Ok(())
    })?;
    run("decode_full_only", &mut |b| {
        std::hint::black_box(hashing::decode(b, limits)?);
        Ok(())
    })?;

    let mut dists = Vec::with_capacity(files.len());
    let mut dq = 0i32;
    for b in &files {
        let full = pdq::pdq(&hashing::decode(b, limits)?);
        let fast = pdq::pdq(&hashing::decode_for_hash(b, limits, min_side)?);
        dists.push(hamming(&full.hash, &fast.hash));
        dq = dq.max((full.quality as i32 - fast.quality as i32).abs());
    }
    dists.sort_unstable();
    let mean = dists.iter().sum::<u32>() as f64 / dists.len() as f64;
    println!(
        "scaled_vs_full_bits mean {mean:.2} median {} max {} max_quality_diff {dq}",
        dists[dists.len() / 2],
        dists[dists.len() - 1]
    );
    Ok(())
}
