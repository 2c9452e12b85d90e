//! Benchmark of a bank at breach scale and beyond: a lookup file of N photos (synthetic
//! fingerprints around the real photos the queries are copies of) — its bytes per photo, how
//! long a matcher takes to open it, the matcher's resident memory, and images matched per
//! second — for several sizes in one run. Run through `bench/bank`; see bench/README.md.
//!
//! ```sh
//! cargo run --release -p leakwatch-matcher --example bank_bench -- \
//!     --dir /var/tmp/bank-bench --sizes 100000,10000000 [--queries 64] [--radius 64] [--drop-caches]
//! ```

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Instant;

use image::{DynamicImage, RgbImage};
use leakwatch_matcher::colour::ColourGrid;
use leakwatch_matcher::detail::{self, Detail};
use leakwatch_matcher::grid::Signature;
use leakwatch_matcher::hashing::Hash256;
use leakwatch_matcher::lookup::{self, Lookup, Photos};
use leakwatch_matcher::{fingerprint_image, match_bytes, Engine, Fingerprint, MatcherConfig};

struct Args {
    dir: PathBuf,
    sizes: Vec<usize>,
    queries: usize,
    drop_caches: bool,
    /// Retrieval radius (`[matcher] radius`); the default when `None`.
    radius: Option<u32>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        dir: std::env::temp_dir().join("leakwatch-bank-bench"),
        sizes: vec![100_000, 10_000_000],
        queries: 64,
        drop_caches: false,
        radius: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(value()?),
            "--sizes" => {
                a.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse())
                    .collect::<Result<_, _>>()?
            }
            "--queries" => a.queries = value()?.parse()?,
            "--drop-caches" => a.drop_caches = true,
            "--radius" => a.radius = Some(value()?.parse()?),
            "-h" | "--help" => {
                println!(
                    "bank_bench --dir DIR --sizes N,N,... [--queries Q] [--radius R] [--drop-caches]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

/// SplitMix64: every synthetic fingerprint is a pure function of its index.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn bytes(seed: u64, n: usize) -> Vec<u8> {
    (0..n.div_ceil(8))
        .flat_map(|k| mix(seed ^ (k as u64) << 40).to_le_bytes())
        .take(n)
        .collect()
}

/// `n` photos: made-up fingerprints, with the real ones spread through them.
struct Synthetic {
    n: usize,
    real: Vec<Fingerprint>,
}

impl Synthetic {
    fn real(&self, i: usize) -> Option<&Fingerprint> {
        let stride = (self.n / self.real.len().max(1)).max(1);
        i.is_multiple_of(stride)
            .then(|| self.real.get(i / stride))
            .flatten()
    }
}

impl Photos for Synthetic {
    fn len(&self) -> usize {
        self.n
    }
    fn label(&self, i: usize) -> Cow<'_, str> {
        match self.real(i) {
            Some(fp) => Cow::Borrowed(&fp.label),
            None => Cow::Owned(format!("synthetic-{i:08}")),
        }
    }
    fn regions(&self, i: usize) -> Cow<'_, [Hash256]> {
        match self.real(i) {
            Some(fp) => Cow::Borrowed(&fp.regions),
            None => Cow::Owned(
                (0..4u64)
                    .map(|r| {
                        let b = bytes((i as u64) << 3 | r, 32);
                        b.try_into().unwrap_or([0; 32])
                    })
                    .collect(),
            ),
        }
    }
    fn signature(&self, i: usize) -> Option<Cow<'_, Signature>> {
        match self.real(i) {
            Some(fp) => fp.signature.as_ref().map(Cow::Borrowed),
            None => Signature::from_bytes(&bytes(!(i as u64), Signature::BYTES)).map(Cow::Owned),
        }
    }
    fn colour(&self, i: usize) -> Option<Cow<'_, ColourGrid>> {
        match self.real(i) {
            Some(fp) => fp.colour.as_ref().map(Cow::Borrowed),
            None => {
                let b: Vec<u8> = bytes((i as u64) ^ 0xC0102, leakwatch_matcher::colour::BYTES)
                    .into_iter()
                    .map(|x| x / 4)
                    .collect();
                ColourGrid::from_bytes(&b).map(Cow::Owned)
            }
        }
    }
    fn detail(&self, i: usize) -> Option<Cow<'_, Detail>> {
        match self.real(i) {
            Some(fp) => fp.detail.as_ref().map(Cow::Borrowed),
            None => Detail::from_bytes(&bytes((i as u64) ^ 0xDE7A, detail::BYTES)).map(Cow::Owned),
        }
    }
}

/// A field of /proc/self/status in MiB (`RssAnon`: heap; `RssFile`: mapped file pages).
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut b = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut b, 80)
        .encode_image(img)
        .expect("encode");
    b
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    std::fs::create_dir_all(&a.dir)?;
    // The real photos (copies of which are the queries) and their fingerprints.
    let pairs = testbed::twin_photos(41, a.queries.max(1), 8);
    let real: Vec<Fingerprint> = pairs
        .iter()
        .enumerate()
        .map(|(i, (img, _))| {
            let img = DynamicImage::ImageRgb8(img.clone());
            fingerprint_image(&img, format!("real-{i:03}"), format!("{i:064x}"))
        })
        .collect::<Result<_, _>>()?;
    let queries: Vec<Vec<u8>> = pairs.iter().map(|(img, _)| jpeg(img)).collect();
    let mut config = MatcherConfig::default();
    if let Some(r) = a.radius {
        config.radius = r;
    }
    println!("retrieval radius {}", config.radius);
    println!(
        "{:>12} {:>10} {:>8} {:>8} {:>9} {:>10} {:>10} {:>9} {:>8}",
        "photos",
        "file MB",
        "B/photo",
        "write s",
        "open ms",
        "heap MiB",
        "file MiB",
        "images/s",
        "named"
    );
    for &n in &a.sizes {
        let path = a.dir.join(format!("bank-{n}.lookup"));
        let photos = Synthetic {
            n: n.max(real.len()),
            real: real.clone(),
        };
        let t = Instant::now();
        if !path.exists() {
            lookup::write(&path, [0; 32], &photos)?;
        }
        let write_s = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path)?.len();
        if a.drop_caches {
            // Needs root; a cold open then reads the headers and offsets from disk.
            let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
        }
        let (anon0, file0) = (status_mib("RssAnon:"), status_mib("RssFile:"));
        let t = Instant::now();
        let engine = Engine::mapped(Lookup::open(&path)?, config.params());
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let mut named = 0;
        for q in &queries {
            let out = match_bytes(q, &engine, &config, 1)?;
            if matches!(&out.sighted, Some(leakwatch_matcher::Sighted::Image { label, .. }) if label.starts_with("real-"))
            {
                named += 1;
            }
        }
        let per_s = queries.len() as f64 / t.elapsed().as_secs_f64();
        let anon = status_mib("RssAnon:") - anon0;
        let file = status_mib("RssFile:") - file0;
        println!(
            "{:>12} {:>10.1} {:>8.0} {:>8.1} {:>9.1} {:>10.1} {:>10.1} {:>9.1} {:>5}/{}",
            photos.n,
            size as f64 / 1e6,
            size as f64 / photos.n as f64,
            write_s,
            open_ms,
            anon,
            file,
            per_s,
            named,
            queries.len()
        );
        drop(engine);
    }
    println!(
        "heap / file MiB: growth of this process's anonymous and file-backed resident memory \
         from before the open to after the queries; one thread; 'write s' 0 = file reused"
    );
    Ok(())
}
