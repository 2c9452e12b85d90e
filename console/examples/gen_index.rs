//! Writes a synthetic data dir for `bench/console`: an index of many crawled pages (one
//! million by default) with text drawn from a Zipf-distributed vocabulary, boilerplate
//! phrases and a few rare terms, an alert log over some of those pages, and a file of query
//! material (common, mid-frequency and rare words, phrases, hosts, the date range) for the
//! benchmark to draw its searches from. The pages go through `PageIndex::upsert_page`, as
//! the indexer writes them, committed in batches.
//!
//! ```sh
//! cargo run --release -p leakwatch-console --example gen_index -- DATA_DIR \
//!     [--pages 1000000] [--batch 100000] [--alerts 2000] [--seed 7] [--heap-mb 512]
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use schema::FetchedPage;

/// Distinct words of ordinary text (ranked by frequency).
const VOCABULARY: usize = 5_000;
/// Zipf exponent of the word ranks.
const ZIPF_S: f64 = 1.05;
/// Terms that occur in only a handful of pages (a plate, a handle, an address).
const RARE_TERMS: usize = 2_000;
/// Chance that a page carries one rare term.
const RARE_PER_PAGE: f64 = 0.004;
/// Sites crawled.
const HOSTS: usize = 2_000;

/// The commonest words, so that text and queries read like the forums crawled.
const COMMON: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "for",
    "on",
    "with",
    "this",
    "that",
    "it",
    "from",
    "you",
    "all",
    "new",
    "we",
    "are",
    "by",
    "be",
    "have",
    "at",
    "or",
    "not",
    "your",
    "as",
    "but",
    "data",
    "dump",
    "leak",
    "database",
    "full",
    "price",
    "access",
    "files",
    "link",
    "download",
    "sale",
    "fresh",
    "private",
    "update",
    "users",
    "accounts",
    "records",
    "photos",
    "images",
    "archive",
    "passwords",
    "email",
    "emails",
    "camera",
    "cameras",
    "police",
    "border",
    "traffic",
    "plates",
    "plate",
    "vehicle",
    "registration",
    "scan",
    "scans",
    "document",
    "documents",
    "passport",
    "identity",
    "contact",
    "telegram",
    "escrow",
    "vendor",
    "market",
    "forum",
    "thread",
    "post",
    "reply",
    "mirror",
    "onion",
    "tor",
    "btc",
    "monero",
    "wallet",
    "payment",
    "sample",
    "proof",
    "verified",
    "seller",
    "buyer",
    "offer",
    "deal",
    "bulk",
    "batch",
    "part",
    "first",
    "second",
    "last",
    "more",
    "only",
    "here",
    "there",
    "just",
    "now",
    "today",
    "week",
    "month",
    "year",
    "old",
    "big",
    "small",
    "high",
    "quality",
    "original",
    "copy",
    "zip",
    "rar",
    "password",
    "protected",
    "free",
    "paid",
    "vip",
    "members",
    "admin",
    "panel",
    "server",
    "backup",
    "export",
    "import",
    "table",
    "column",
    "name",
    "address",
    "phone",
    "number",
    "city",
    "country",
    "street",
    "date",
    "time",
    "night",
    "day",
    "frames",
    "video",
    "footage",
    "stream",
    "live",
    "feed",
    "hack",
    "hacked",
    "breach",
    "breached",
    "stolen",
    "exposed",
    "government",
    "ministry",
    "agency",
    "company",
    "bank",
    "hospital",
    "school",
    "customer",
    "employee",
    "staff",
    "internal",
    "confidential",
    "secret",
    "report",
    "list",
    "collection",
];

/// Boilerplate that recurs across pages (signatures, rules, offers): what phrase queries hit.
const PHRASES: &[&str] = &[
    "fresh dump of the database",
    "full access to the camera feed",
    "contact me on telegram for samples",
    "escrow accepted for every deal",
    "all plates are readable in the photos",
    "price is negotiable for bulk buyers",
    "download link in the first reply",
    "archive is password protected",
    "no refunds after the download",
    "mirror of the old thread",
    "border camera footage from last month",
    "traffic police database export",
    "verified seller with proof of access",
    "leaked internal documents of the ministry",
    "private collection of scanned passports",
    "read the forum rules before posting",
];

/// SplitMix64: small, fast, reproducible from a seed; no dependency for a generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// A pronounceable word of `syllables` syllables.
fn made_up_word(rng: &mut Rng, syllables: usize) -> String {
    const ONSETS: &[&str] = &[
        "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
        "cr", "dr", "gr", "kr", "pl", "st", "tr", "sh", "ch", "th",
    ];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"];
    const CODAS: &[&str] = &["", "", "", "n", "r", "s", "t", "l", "m", "x", "nd", "rk"];
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(ONSETS[rng.below(ONSETS.len())]);
        w.push_str(VOWELS[rng.below(VOWELS.len())]);
    }
    w.push_str(CODAS[rng.below(CODAS.len())]);
    w
}

struct Corpus {
    words: Vec<String>,
    /// Cumulative Zipf weights over `words`.
    cdf: Vec<f64>,
    rare: Vec<String>,
    hosts: Vec<String>,
    /// Cumulative weights over `hosts` (a few big forums, many small sites).
    host_cdf: Vec<f64>,
}

impl Corpus {
    fn new(rng: &mut Rng) -> Corpus {
        let mut seen = std::collections::HashSet::new();
        let mut words: Vec<String> = Vec::with_capacity(VOCABULARY);
        for w in COMMON {
            if seen.insert(w.to_string()) {
                words.push(w.to_string());
            }
        }
        while words.len() < VOCABULARY {
            let syllables = rng.between(1, 3);
            let w = made_up_word(rng, syllables);
            if w.len() >= 3 && seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut rare = Vec::with_capacity(RARE_TERMS);
        while rare.len() < RARE_TERMS {
            // Plates, handles, wallet-like tokens: letters and digits, one token each.
            let w = match rare.len() % 3 {
                0 => format!(
                    "{}{}{:04}",
                    made_up_word(rng, 1),
                    ["kx", "zb", "qr"][rng.below(3)],
                    rng.below(10_000)
                ),
                1 => format!("{}{}", made_up_word(rng, 3), rng.below(1000)),
                _ => format!("x{:012x}", rng.next() & 0xFFFF_FFFF_FFFF),
            };
            if seen.insert(w.clone()) {
                rare.push(w);
            }
        }
        let cdf = cumulative((1..=words.len()).map(|r| 1.0 / (r as f64).powf(ZIPF_S)));
        let mut hosts = Vec::with_capacity(HOSTS);
        for i in 0..HOSTS {
            let h = match i % 20 {
                0..=14 => {
                    // A v3 onion address: 56 base32 characters.
                    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
                    let s: String = (0..56).map(|_| alphabet[rng.below(32)] as char).collect();
                    format!("{s}.onion")
                }
                15..=18 => format!("{}-{}.example", made_up_word(rng, 2), i),
                _ => format!("paste{i}.example"),
            };
            hosts.push(h);
        }
        let host_cdf = cumulative((1..=HOSTS).map(|r| 1.0 / (r as f64).powf(0.8)));
        Corpus {
            words,
            cdf,
            rare,
            hosts,
            host_cdf,
        }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        &self.words[pick(&self.cdf, rng.unit())]
    }

    fn host(&self, rng: &mut Rng) -> &str {
        &self.hosts[pick(&self.host_cdf, rng.unit())]
    }

    /// One page's title and text.
    fn page_text(&self, rng: &mut Rng) -> (String, String) {
        let title_words = rng.between(3, 9);
        let mut title = String::new();
        for i in 0..title_words {
            if i > 0 {
                title.push(' ');
            }
            title.push_str(self.word(rng));
        }
        let n = rng.between(60, 360);
        let mut text = String::with_capacity(n * 7);
        let phrase_at: Vec<usize> = (0..rng.below(3)).map(|_| rng.below(n)).collect();
        let rare_at = (rng.unit() < RARE_PER_PAGE).then(|| rng.below(n));
        for i in 0..n {
            if i > 0 {
                text.push(if rng.below(12) == 0 { '.' } else { ' ' });
                if text.ends_with('.') {
                    text.push(' ');
                }
            }
            text.push_str(self.word(rng));
            if phrase_at.contains(&i) {
                text.push(' ');
                text.push_str(PHRASES[rng.below(PHRASES.len())]);
            }
            if rare_at == Some(i) {
                text.push(' ');
                text.push_str(&self.rare[rng.below(self.rare.len())]);
            }
        }
        (title, text)
    }
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    let mut out: Vec<f64> = weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    for v in &mut out {
        *v /= acc;
    }
    out
}

fn pick(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

/// First and last fetch time of the pages: a year of crawling.
const FIRST_FETCH: u64 = 1_748_736_000; // 2025-06-01T00:00:00Z
const SPAN_SECS: u64 = 365 * 86_400;

struct Args {
    data_dir: PathBuf,
    pages: usize,
    batch: usize,
    alerts: usize,
    seed: u64,
    heap_mb: usize,
}

fn args() -> Args {
    let mut a = Args {
        data_dir: PathBuf::new(),
        pages: 1_000_000,
        batch: 100_000,
        alerts: 2_000,
        seed: 7,
        heap_mb: 512,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .unwrap_or_else(|| die(&format!("{name} needs a number")))
        };
        match arg.as_str() {
            "--pages" => a.pages = num("--pages") as usize,
            "--batch" => a.batch = (num("--batch") as usize).max(1),
            "--alerts" => a.alerts = num("--alerts") as usize,
            "--seed" => a.seed = num("--seed"),
            "--heap-mb" => a.heap_mb = num("--heap-mb") as usize,
            "-h" | "--help" => {
                eprintln!(
                    "gen_index DATA_DIR [--pages N] [--batch N] [--alerts N] [--seed N] \
                     [--heap-mb N]"
                );
                std::process::exit(0);
            }
            other if a.data_dir.as_os_str().is_empty() && !other.starts_with('-') => {
                a.data_dir = PathBuf::from(other)
            }
            other => die(&format!("unknown argument {other}")),
        }
    }
    if a.data_dir.as_os_str().is_empty() {
        die("usage: gen_index DATA_DIR [--pages N] ...");
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("gen_index: {msg}");
    std::process::exit(2)
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let a = args();
    if a.data_dir.join(indexer::index::INDEX_DIR).exists() {
        die(&format!(
            "{} already holds an index; give an empty data dir",
            a.data_dir.display()
        ));
    }
    let mut rng = Rng(a.seed);
    let corpus = Corpus::new(&mut rng);
    let idx = indexer::PageIndex::open(&a.data_dir).unwrap_or_else(|e| die(&e.to_string()));
    let mut w = idx
        .writer(a.heap_mb << 20)
        .unwrap_or_else(|e| die(&e.to_string()));
    let started = Instant::now();
    let mut alerted: Vec<(String, String)> = Vec::new();
    let alert_every = (a.pages / a.alerts.max(1)).max(1);
    for i in 0..a.pages {
        let host = corpus.host(&mut rng).to_string();
        let url = format!("http://{host}/t/{i}");
        let (title, text) = corpus.page_text(&mut rng);
        let fetched = FIRST_FETCH + (rng.next() % SPAN_SECS);
        let fetched_at = schema::rfc3339_from_unix(fetched);
        if i % alert_every == alert_every / 2 && alerted.len() < a.alerts {
            alerted.push((url.clone(), schema::rfc3339_from_unix(fetched + 120)));
        }
        let page = FetchedPage {
            sha256: schema::sha256_hex(text.as_bytes()),
            url,
            host,
            title,
            text,
            fetched_at,
            depth: 1,
            links: vec![],
            images: vec![],
            listed_at: None,
            exchange: None,
            body: vec![],
        };
        idx.upsert_page(&w, &page)
            .unwrap_or_else(|e| die(&e.to_string()));
        if (i + 1) % a.batch == 0 || i + 1 == a.pages {
            w.commit().unwrap_or_else(|e| die(&e.to_string()));
            eprintln!(
                "{} pages committed, {:.0} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let indexed = started.elapsed().as_secs_f64();
    w.wait_merging_threads()
        .unwrap_or_else(|e| die(&e.to_string()));
    let total = started.elapsed().as_secs_f64();

    // The alert log: image, scene and text alerts on some of the pages.
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(a.data_dir.join(alerts::ALERTS_FILE))
            .unwrap_or_else(|e| die(&e.to_string())),
    );
    for (n, (page, at)) in alerted.iter().enumerate() {
        let img = format!("{page}/img/{n}.jpg");
        let mut alert = match n % 4 {
            0 | 1 => alerts::image(
                &format!("cam{}-{:04}", n % 8 + 1, n % 997),
                &img,
                Some(page),
                (n % 40) as u32,
                "pdq",
            ),
            2 => alerts::scene(&format!("cam{}", n % 8 + 1), &img, Some(page), 30, &[]),
            _ => alerts::text(
                &format!("plate-{}", n % 500),
                page,
                schema::IdentifierSighting {
                    kind: "plate".into(),
                    masked: "KX*****21".into(),
                    field: "text".into(),
                    offset: 10,
                },
            ),
        };
        alert.detected_at = at.clone();
        serde_json::to_writer(&mut log, &alert).unwrap_or_else(|e| die(&e.to_string()));
        log.write_all(b"\n").unwrap_or_else(|e| die(&e.to_string()));
    }
    log.flush().unwrap_or_else(|e| die(&e.to_string()));

    // What the benchmark draws its queries from.
    let mid: Vec<&String> = corpus.words[500..2_000].iter().collect();
    let material = serde_json::json!({
        "pages": a.pages,
        "alerts": alerted.len(),
        "common": corpus.words[..60],
        "mid": mid,
        "rare": corpus.rare,
        "phrases": PHRASES,
        "sites": corpus.hosts[..50],
        "first_day": &schema::rfc3339_from_unix(FIRST_FETCH)[..10],
        "last_day": &schema::rfc3339_from_unix(FIRST_FETCH + SPAN_SECS - 1)[..10],
    });
    std::fs::write(
        a.data_dir.join("bench-queries.json"),
        serde_json::to_vec_pretty(&material).unwrap_or_default(),
    )
    .unwrap_or_else(|e| die(&e.to_string()));

    let bytes = dir_bytes(&a.data_dir.join(indexer::index::INDEX_DIR));
    let segments = std::fs::read_dir(a.data_dir.join(indexer::index::INDEX_DIR))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
                .count()
        })
        .unwrap_or(0);
    println!(
        "{{\"pages\": {}, \"alerts\": {}, \"index_secs\": {indexed:.1}, \"total_secs\": \
         {total:.1}, \"pages_per_sec\": {:.0}, \"index_bytes\": {bytes}, \"segments\": \
         {segments}}}",
        a.pages,
        alerted.len(),
        a.pages as f64 / total,
    );
}
