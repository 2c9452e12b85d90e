//! Writes the image sets that `bench/robustness` measures image matchers on.
//!
//! The stolen set is what leakwatch protects: many crossings at each of a few
//! lane cameras, so every stolen photo has many same-camera look-alikes in the
//! set itself, plus the pictures found in `--extra DIR/stolen` (sample images a
//! Python package ships). A quarter of the camera photos are *twins* of an
//! earlier one: the same car model at the same spot in the same conditions,
//! with another paint, plate and driver ([`Car::twin`]), so a copy of either
//! must name the right one. A third of twins are fleet cars whose plate
//! differs in only one or two characters. The found set is a fixed sample of the stolen set
//! passed through every transform a leaker may apply. The negative set holds
//! pictures that must never raise an image alert: twins of stolen photos that
//! are not in the stolen set (`same-car`, the hardest case: only paint, plate
//! and driver differ), other cars at the same cameras (`same-camera`), photos
//! from cameras that are not in the stolen set, unrelated pictures (and those
//! in `--extra DIR/negative`), and transformed copies of some of them.
//! `truth.json` says, for every query file, which stolen label it should match
//! (or none), the transform, the group and, for frames of a stolen camera, the
//! camera.
//!
//! Everything is deterministic for a given `--seed` and set of extra files.
//! The library keeps its painting modules private, so this program compiles
//! the same sources in directly.
//!
//! ```sh
//! cargo run --release -p leakwatch-testbed --example robustness_set -- \
//!     --out DIR [--seed 7] [--stolen 300] [--sample 60] [--negatives 300] [--extra DIR]
//! ```

#[allow(dead_code)]
#[path = "../src/rng.rs"]
mod rng;
#[allow(dead_code)]
#[path = "../src/scene.rs"]
mod scene;
#[allow(dead_code)]
#[path = "../src/transform.rs"]
mod transform;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use image::RgbImage;
use serde::Serialize;

use rng::Rng;
use scene::{Camera, Car};
use transform::Transform;

/// Cameras that took the stolen photos.
const STOLEN_CAMERAS: usize = 8;
/// Cameras whose photos are not in the stolen set (decoys only).
const OTHER_CAMERAS: usize = 12;
/// Extra pictures larger than this on either side are not used.
const MAX_EXTRA_SIDE: u32 = 4096;

#[derive(Parser, Debug)]
#[command(about = "Writes the stolen, found and negative image sets of bench/robustness")]
struct Args {
    /// Output directory (created; stolen/, found/, negative/ and truth.json go in it).
    #[arg(long)]
    out: PathBuf,
    /// Seed of every generated picture.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Number of stolen camera photos (the extra stolen pictures come on top).
    #[arg(long, default_value_t = 300)]
    stolen: usize,
    /// Number of stolen pictures passed through every transform.
    #[arg(long, default_value_t = 60)]
    sample: usize,
    /// Number of negative pictures (transformed copies of some come on top).
    #[arg(long, default_value_t = 300)]
    negatives: usize,
    /// Directory with `stolen/` and `negative/` subdirectories of extra pictures.
    #[arg(long)]
    extra: Option<PathBuf>,
}

/// One stolen picture, as listed in the truth file.
#[derive(Serialize)]
struct Stolen {
    label: String,
    path: String,
    kind: &'static str,
    camera: Option<usize>,
    /// The earlier stolen photo this one is a twin of (same car model, spot
    /// and conditions; other paint, plate and driver).
    twin_of: Option<String>,
}

/// What a query file should match.
#[derive(Serialize)]
struct Query {
    /// The stolen label it is a copy of, or `None` for a negative.
    expected: Option<String>,
    transform: String,
    /// `found-camera` / `found-extra` for copies of stolen pictures;
    /// `same-car`, `same-camera`, `other-camera` or `unrelated` for negatives.
    group: &'static str,
    /// The picture it was made from (a stolen label or a negative's name).
    source: String,
    /// The stolen camera that took it, for camera frames.
    camera: Option<usize>,
    /// For a `same-car` negative, the stolen photo it is a twin of.
    twin_of: Option<String>,
}

#[derive(Serialize)]
struct Truth {
    seed: u64,
    transforms: Vec<String>,
    stolen: Vec<Stolen>,
    queries: BTreeMap<String, Query>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.stolen == 0 {
        bail!("--stolen must be at least 1");
    }
    for sub in ["stolen", "found", "negative"] {
        let dir = args.out.join(sub);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let extra_stolen = read_extra(args.extra.as_deref(), "stolen")?;
    let extra_negative = read_extra(args.extra.as_deref(), "negative")?;
    let transforms = transforms();

    // Stolen set: camera photos, then the extra pictures.
    let cameras: Vec<Camera> = (0..STOLEN_CAMERAS)
        .map(|i| Camera::new(args.seed, i))
        .collect();
    let mut rng = Rng::stream(args.seed, "robustness-stolen");
    let mut stolen = Vec::new();
    let mut images: Vec<RgbImage> = Vec::new();
    let mut crossings: Vec<Crossing> = Vec::new();
    for i in 0..args.stolen {
        let cam = i % STOLEN_CAMERAS;
        // Every fourth photo after the first round of cameras is a twin of the
        // photo one round earlier, at the same camera.
        let twin_of = (i >= STOLEN_CAMERAS && i % 4 == 3).then(|| i - STOLEN_CAMERAS);
        let c = match twin_of {
            Some(j) => crossings[j].twin(&cameras[cam], &mut rng),
            None => Crossing::random(&cameras[cam], &mut rng),
        };
        let label = format!("stolen-{:04}", i + 1);
        let path = write(&args.out, "stolen", &label, &transform::png(&c.image))?;
        stolen.push(Stolen {
            label,
            path,
            kind: "camera",
            camera: Some(cam),
            twin_of: twin_of.map(|j| format!("stolen-{:04}", j + 1)),
        });
        images.push(c.image.clone());
        crossings.push(c);
    }
    for (name, img) in extra_stolen {
        let label = format!("extra-{name}");
        let path = write(&args.out, "stolen", &label, &transform::png(&img))?;
        stolen.push(Stolen {
            label,
            path,
            kind: "extra",
            camera: None,
            twin_of: None,
        });
        images.push(img);
    }

    // Found set: a fixed sample, camera photos and extra pictures in proportion.
    let mut rng = Rng::stream(args.seed, "robustness-sample");
    let (mut cams, mut extras): (Vec<usize>, Vec<usize>) =
        (0..stolen.len()).partition(|&i| stolen[i].kind == "camera");
    rng.shuffle(&mut cams);
    rng.shuffle(&mut extras);
    let sample = args.sample.min(stolen.len());
    let n_extra = if extras.is_empty() {
        0
    } else {
        ((sample * extras.len()) as f64 / stolen.len() as f64)
            .round()
            .max(1.0) as usize
    }
    .min(extras.len())
    .min(sample);
    let mut picked: Vec<usize> = extras[..n_extra].to_vec();
    picked.extend(cams.iter().take(sample - n_extra));
    picked.sort_unstable();
    let mut queries = BTreeMap::new();
    for (k, &i) in picked.iter().enumerate() {
        let s = &stolen[i];
        for (t, name) in per_query_transforms(&transforms, k, &mut rng) {
            let enc = t.apply(&images[i], &banner_text(&mut rng));
            let file = format!("{}__{}", s.label, name);
            let path = write(&args.out, "found", &file, &enc)?;
            queries.insert(
                path,
                Query {
                    expected: Some(s.label.clone()),
                    transform: name,
                    group: if s.kind == "camera" {
                        "found-camera"
                    } else {
                        "found-extra"
                    },
                    source: s.label.clone(),
                    camera: s.camera,
                    twin_of: None,
                },
            );
        }
    }

    // Negative set: 40% twins of stolen camera photos, 20% other cars at the
    // stolen cameras, 20% other cameras, 20% unrelated (the extra negatives
    // first); every fifth also transformed.
    let others: Vec<Camera> = (0..OTHER_CAMERAS)
        .map(|i| Camera::new(args.seed, STOLEN_CAMERAS + i))
        .collect();
    let mut rng = Rng::stream(args.seed, "robustness-negative");
    let n_twin = args.negatives * 2 / 5;
    let n_same = args.negatives * 3 / 5;
    let n_other = args.negatives / 5;
    let mut extra_negative = extra_negative.into_iter();
    for i in 0..args.negatives {
        let (mut camera, mut twin_of) = (None, None);
        let (group, name, img) = if i < n_twin {
            let j = rng.below(crossings.len() as u64) as usize;
            let cam = j % STOLEN_CAMERAS;
            (camera, twin_of) = (Some(cam), Some(stolen[j].label.clone()));
            let img = crossings[j].twin(&cameras[cam], &mut rng).image;
            ("same-car", format!("same-car-{:04}", i + 1), img)
        } else if i < n_same {
            let cam = i % STOLEN_CAMERAS;
            camera = Some(cam);
            let img = Crossing::random(&cameras[cam], &mut rng).image;
            ("same-camera", format!("same-camera-{:04}", i + 1), img)
        } else if i < n_same + n_other {
            let img = Crossing::random(&others[i % OTHER_CAMERAS], &mut rng).image;
            ("other-camera", format!("other-camera-{:04}", i + 1), img)
        } else if let Some((name, img)) = extra_negative.next() {
            ("unrelated", format!("unrelated-extra-{name}"), img)
        } else if i % 2 == 0 {
            let img = scene::landscape(&mut rng);
            ("unrelated", format!("unrelated-{:04}", i + 1), img)
        } else {
            let w = rng.range(200, 900) as u32;
            let h = rng.range(200, 700) as u32;
            let img = scene::filler_picture(&mut rng, w, h);
            ("unrelated", format!("unrelated-{:04}", i + 1), img)
        };
        let enc = if rng.chance(0.5) {
            transform::jpeg(&img, 85)
        } else {
            transform::png(&img)
        };
        let path = write(&args.out, "negative", &name, &enc)?;
        queries.insert(
            path,
            Query {
                expected: None,
                transform: "none".into(),
                group,
                source: name.clone(),
                camera,
                twin_of: twin_of.clone(),
            },
        );
        if i % 5 == 0 {
            let t = transforms[(i / 5) % transforms.len()];
            let tname = row_name(t);
            let enc = t.apply(&img, &banner_text(&mut rng));
            let file = format!("{name}__{tname}");
            let path = write(&args.out, "negative", &file, &enc)?;
            queries.insert(
                path,
                Query {
                    expected: None,
                    transform: tname,
                    group,
                    source: name,
                    camera,
                    twin_of,
                },
            );
        }
    }

    let truth = Truth {
        seed: args.seed,
        transforms: transforms.iter().map(|&t| row_name(t)).collect(),
        stolen,
        queries,
    };
    let path = args.out.join("truth.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&truth)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} stolen, {} found and {} negative files to {}",
        truth.stolen.len(),
        truth
            .queries
            .values()
            .filter(|q| q.expected.is_some())
            .count(),
        truth
            .queries
            .values()
            .filter(|q| q.expected.is_none())
            .count(),
        args.out.display()
    );
    Ok(())
}

/// The transforms every sampled stolen picture goes through. Banners and pads
/// vary per picture (top or bottom, white or black); their names do not.
fn transforms() -> Vec<Transform> {
    vec![
        Transform::Jpeg(30),
        Transform::Jpeg(50),
        Transform::Jpeg(90),
        Transform::Resize50,
        Transform::Brightness(30),
        Transform::Brightness(-30),
        Transform::Grayscale,
        // Three box passes of radius 1: a Gaussian of sigma ≈ 1.4.
        Transform::Blur(1),
        Transform::Webp,
        Transform::FlipH,
        Transform::Banner {
            top: false,
            percent: 15,
        },
        Transform::Crop(3),
        Transform::Crop(5),
        Transform::Pad {
            percent: 5,
            rgb: [255, 255, 255],
        },
        Transform::Pad {
            percent: 10,
            rgb: [255, 255, 255],
        },
        Transform::Rotate(3.0),
        Transform::Screenshot(0),
    ]
}

/// The transforms for the `k`-th sampled picture with their names: banners
/// alternate top and bottom, pads white and black, rotations their direction,
/// and every screenshot gets its own layout.
fn per_query_transforms(base: &[Transform], k: usize, rng: &mut Rng) -> Vec<(Transform, String)> {
    base.iter()
        .map(|&t| {
            let name = row_name(t);
            let t = match t {
                Transform::Banner { percent, .. } => Transform::Banner {
                    top: k.is_multiple_of(2),
                    percent,
                },
                Transform::Pad { percent, .. } => Transform::Pad {
                    percent,
                    rgb: if k.is_multiple_of(2) {
                        [255, 255, 255]
                    } else {
                        [0, 0, 0]
                    },
                },
                Transform::Rotate(d) if k % 2 == 1 => Transform::Rotate(-d),
                Transform::Screenshot(_) => Transform::Screenshot(rng.next_u64()),
                other => other,
            };
            (t, name)
        })
        .collect()
}

/// The name a transform is reported under: banners alternate top and bottom,
/// so the side is left out.
fn row_name(t: Transform) -> String {
    match t {
        Transform::Banner { percent, .. } => format!("banner-{percent}"),
        other => other.name(),
    }
}

/// One crossing at a camera: the car, its plate, the conditions and the photo.
struct Crossing {
    car: Car,
    plate: String,
    conditions: u64,
    image: RgbImage,
}

impl Crossing {
    /// A random car with a random plate.
    fn random(camera: &Camera, rng: &mut Rng) -> Crossing {
        let plate = plate(rng);
        let car = Car::random(rng, &plate);
        let conditions = rng.next_u64();
        let image = scene::camera_photo(camera, Some(&car), conditions);
        Crossing {
            car,
            plate,
            conditions,
            image,
        }
    }

    /// The same car model at the same spot in the same conditions, with
    /// another paint, plate and driver, and its own sensor noise. A third of
    /// twins are fleet cars: their plate differs from this one's in only one
    /// or two characters, so the plate alone barely tells them apart.
    fn twin(&self, camera: &Camera, rng: &mut Rng) -> Crossing {
        let plate = if rng.chance(1.0 / 3.0) {
            near_plate(&self.plate, rng)
        } else {
            plate(rng)
        };
        let car = self.car.twin(rng, &plate);
        let image = scene::camera_photo_in(camera, Some(&car), self.conditions, rng.next_u64());
        Crossing {
            car,
            plate,
            conditions: self.conditions,
            image,
        }
    }
}

const PLATE_LETTERS: &[u8] = b"ABCEHKMOPTXY";

fn plate(rng: &mut Rng) -> String {
    let l =
        |rng: &mut Rng| char::from(PLATE_LETTERS[rng.below(PLATE_LETTERS.len() as u64) as usize]);
    format!(
        "{}{}{}-{:04}",
        l(rng),
        l(rng),
        rng.below(10),
        rng.below(10_000)
    )
}

/// A plate of the same format that differs from `plate` in one or two
/// characters (a letter for a letter, a digit for a digit).
fn near_plate(plate: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<u8> = plate.bytes().collect();
    let places: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] != b'-').collect();
    let changes = 1 + rng.below(2) as usize;
    let mut changed = Vec::new();
    while changed.len() < changes.min(places.len()) {
        let i = places[rng.below(places.len() as u64) as usize];
        if changed.contains(&i) {
            continue;
        }
        let pool: &[u8] = if chars[i].is_ascii_digit() {
            b"0123456789"
        } else {
            PLATE_LETTERS
        };
        let old = chars[i];
        while chars[i] == old {
            chars[i] = pool[rng.below(pool.len() as u64) as usize];
        }
        changed.push(i);
    }
    String::from_utf8(chars).unwrap_or_else(|_| plate.to_string())
}

fn banner_text(rng: &mut Rng) -> String {
    format!("LEAK {:05}", rng.below(100_000))
}

/// Writes `enc` as `DIR/sub/name.ext`; returns the path relative to `dir`.
fn write(dir: &Path, sub: &str, name: &str, enc: &transform::Encoded) -> anyhow::Result<String> {
    let rel = format!("{sub}/{name}.{}", enc.ext);
    let path = dir.join(&rel);
    std::fs::write(&path, &enc.bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(rel)
}

/// The pictures in `extra/sub`, sorted by file name, as (stem, image).
fn read_extra(extra: Option<&Path>, sub: &str) -> anyhow::Result<Vec<(String, RgbImage)>> {
    let Some(extra) = extra else {
        return Ok(Vec::new());
    };
    let dir = extra.join(sub);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .context("extra picture without a UTF-8 name")?
            .to_string();
        let reader = image::ImageReader::open(&p)
            .with_context(|| format!("opening {}", p.display()))?
            .with_guessed_format()?;
        let (w, h) = reader.into_dimensions()?;
        if w > MAX_EXTRA_SIDE || h > MAX_EXTRA_SIDE {
            eprintln!("skipping {}: {w}x{h} is too large", p.display());
            continue;
        }
        let img = image::open(&p)
            .with_context(|| format!("decoding {}", p.display()))?
            .to_rgb8();
        out.push((stem, img));
    }
    Ok(out)
}
