//! Writes a breach-sized set of border-camera photos as JPEG files: what `bench/import` times
//! `leakwatch fingerprints import` on.
//!
//! Photos come from 8 lane cameras; every fourth is a twin of an earlier crossing at the same
//! camera (same car model and conditions, other paint, plate and driver), as in
//! `bench/robustness`. Each photo is a pure function of the seed and its number, so the
//! files are written in parallel and the set is the same on every machine.
//!
//! ```sh
//! cargo run --release -p leakwatch-testbed --example breach_set -- \
//!     --out DIR --count 100000 [--seed 7] [--quality 90]
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Writes a breach-sized set of border-camera photos (JPEG)")]
struct Args {
    /// Output directory (created).
    #[arg(long)]
    out: PathBuf,
    /// Number of photos.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// JPEG quality.
    #[arg(long, default_value_t = 90)]
    quality: u8,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.count {
                            return Ok(());
                        }
                        let path = args.out.join(format!("photo-{i:06}.jpg"));
                        if path.exists() {
                            continue;
                        }
                        let img = testbed::breach_photo(args.seed, i);
                        let mut bytes = Vec::new();
                        image::codecs::jpeg::JpegEncoder::new_with_quality(
                            &mut bytes,
                            args.quality,
                        )
                        .encode_image(&img)?;
                        std::fs::write(&path, bytes)
                            .with_context(|| format!("writing {}", path.display()))?;
                        if (i + 1).is_multiple_of(10_000) {
                            eprintln!("{} photos written", i + 1);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    println!("wrote {} photos to {}", args.count, args.out.display());
    Ok(())
}
