//! Lookup throughput of the fingerprint index, for `bench/lookup`: builds a [`MihIndex`]
//! over a bank of raw 256-bit hashes and times radius queries, one at a time on one thread,
//! with the multi-index probe (`within`) and with the brute-force scan (`scan_within`).
//!
//! ```text
//! cargo run --release -p leakwatch-matcher --example lookup_bench -- \
//!     BANK.bin QUERIES.bin OUT_DIR [--radius 15,31] [--budget-secs 20] [--max-queries N]
//! ```
//!
//! BANK.bin and QUERIES.bin are concatenated 32-byte hashes. For every radius and method it
//! prints one line `case method=… radius=… queries=… secs=… qps=… results=…` and writes the
//! result count of every query run to `OUT_DIR/counts-<method>-r<radius>.txt`, so the
//! script can check them against another tool's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use leakwatch_matcher::hashing::Hash256;
use leakwatch_matcher::mih::{scan_kernel, MihIndex};

struct Args {
    bank: PathBuf,
    queries: PathBuf,
    out: PathBuf,
    radii: Vec<u32>,
    budget: Duration,
    max_queries: usize,
}

fn parse_args() -> Result<Args> {
    let mut pos = Vec::new();
    let mut radii = vec![15, 31];
    let mut budget = Duration::from_secs(20);
    let mut max_queries = usize::MAX;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--radius" => {
                let v = it.next().context("--radius needs a value")?;
                radii = v
                    .split(',')
                    .map(|r| r.trim().parse().context("bad --radius"))
                    .collect::<Result<_>>()?;
            }
            "--budget-secs" => {
                let v: f64 = it.next().context("--budget-secs needs a value")?.parse()?;
                budget = Duration::from_secs_f64(v);
            }
            "--max-queries" => {
                max_queries = it.next().context("--max-queries needs a value")?.parse()?;
            }
            _ => pos.push(PathBuf::from(a)),
        }
    }
    let [bank, queries, out] = <[PathBuf; 3]>::try_from(pos)
        .map_err(|_| anyhow::anyhow!("usage: lookup_bench BANK QUERIES OUT_DIR [options]"))?;
    Ok(Args {
        bank,
        queries,
        out,
        radii,
        budget,
        max_queries,
    })
}

fn read_hashes(path: &Path) -> Result<Vec<Hash256>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() % 32 != 0 {
        bail!("{} is not a whole number of 32-byte hashes", path.display());
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Runs `f` over the queries in order until all ran or the budget is spent; returns the
/// result count per query run and the elapsed time.
fn timed(
    queries: &[Hash256],
    budget: Duration,
    mut f: impl FnMut(&Hash256) -> usize,
) -> (Vec<usize>, Duration) {
    let mut counts = Vec::with_capacity(queries.len());
    let start = Instant::now();
    for q in queries {
        counts.push(f(q));
        if start.elapsed() >= budget {
            break;
        }
    }
    (counts, start.elapsed())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let bank = read_hashes(&args.bank)?;
    let mut queries = read_hashes(&args.queries)?;
    queries.truncate(args.max_queries);
    std::fs::create_dir_all(&args.out)?;

    let t = Instant::now();
    let index = MihIndex::build(&bank)?;
    let build = t.elapsed();
    drop(bank);
    println!(
        "index n={} build_secs={:.2} heap_bytes={} bytes_per_hash={:.1} scan_kernel={}",
        index.len(),
        build.as_secs_f64(),
        index.heap_bytes(),
        index.heap_bytes() as f64 / index.len().max(1) as f64,
        scan_kernel()
    );

    let mut out = Vec::new();
    for &radius in &args.radii {
        for method in ["mih", "scan"] {
            let (counts, secs) = timed(&queries, args.budget, |q| match method {
                "mih" => {
                    index.within_into(q, radius, &mut out);
                    out.len()
                }
                _ => index.scan_within(q, radius).len(),
            });
            let secs = secs.as_secs_f64();
            println!(
                "case method={method} radius={radius} queries={} secs={secs:.3} qps={:.1} results={}",
                counts.len(),
                counts.len() as f64 / secs,
                counts.iter().sum::<usize>()
            );
            let text: String = counts.iter().map(|c| format!("{c}\n")).collect();
            std::fs::write(
                args.out.join(format!("counts-{method}-r{radius}.txt")),
                text,
            )?;
        }
    }
    Ok(())
}
