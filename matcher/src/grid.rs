//! Verification: is this found image really *that* stolen photo, or another car in the same
//! booth?
//!
//! A global hash cannot tell: two photos from one border camera share the booth, the lane and
//! the light, and differ in a car-sized part of the frame. So every stolen image also keeps a
//! [`Signature`]: for a 24×24 grid of cells over the photo, the sign of the luminance step
//! between neighbouring cells (horizontal and vertical, 1,104 bits) and whether that step is
//! strong (above the image's mean step). It is a hash — no pixels, nothing to reconstruct the
//! photo from — but each bit belongs to a place in the frame.
//!
//! The bank says which places matter. For a stolen photo, its *siblings* are the nearest
//! other photos in the bank (same camera, other cars). A step that the siblings share is
//! background; a strong step the siblings do not share is this photo's own content — the car,
//! the plate, the driver. [`Weights`] turn that into a weight per bit, and a found image is
//! scored by the weighted fraction of disagreeing bits: a copy agrees on the photo's own
//! content, a look-alike only on the background, which weighs little.
//!
//! The found image is rarely aligned with the original (a border cut, a small rotation, a
//! photo inside a screenshot), so [`verify`] searches a small space of frames — scale, offset
//! and angle of the original inside the found image — with integral-image box means, which
//! makes each try cost a few microseconds.

use crate::views::{Plane, Rect};

/// Cells per side of the grid.
pub const GRID: usize = 24;
/// Horizontal steps, then vertical steps.
pub const BITS: usize = 2 * GRID * (GRID - 1);
const WORDS: usize = BITS.div_ceil(64);

/// Signs and strengths of the cell-to-cell luminance steps of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub sign: [u64; WORDS],
    pub strong: [u64; WORDS],
}

impl Signature {
    /// Serialized size in bytes.
    pub const BYTES: usize = 2 * WORDS * 8;

    /// The signature of `rect` of `plane`, axis-aligned: what is stored for a stolen photo.
    pub fn of(plane: &Plane, rect: &Rect) -> Signature {
        let frame = Frame::fit(rect);
        let (sig, _) = sample(plane, &frame);
        sig
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.sign
            .iter()
            .chain(self.strong.iter())
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    pub fn from_bytes(b: &[u8]) -> Option<Signature> {
        if b.len() != Self::BYTES {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let mut s = Signature {
            sign: [0; WORDS],
            strong: [0; WORDS],
        };
        for i in 0..WORDS {
            s.sign[i] = word(i);
            s.strong[i] = word(WORDS + i);
        }
        Some(s)
    }

    fn bit(words: &[u64; WORDS], i: usize) -> bool {
        words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Fraction of strong steps of `self` that `other` has with the same sign.
    pub fn agreement(&self, other: &Signature) -> f32 {
        let mut strong = 0;
        let mut same = 0;
        for w in 0..WORDS {
            let s = self.strong[w];
            strong += s.count_ones();
            same += (s & !(self.sign[w] ^ other.sign[w])).count_ones();
        }
        if strong == 0 {
            0.0
        } else {
            same as f32 / strong as f32
        }
    }
}

/// Per-bit weights of one stolen photo: how much a disagreement on that step says.
#[derive(Debug, Clone)]
pub struct Weights {
    w: Vec<f32>,
    total: f32,
}

impl Weights {
    /// Weights of `own` given its siblings in the bank: strong steps count, less so the more
    /// siblings share them.
    pub fn new(own: &Signature, siblings: &[&Signature]) -> Weights {
        let mut w = vec![0f32; BITS];
        for (i, wi) in w.iter_mut().enumerate() {
            if !Signature::bit(&own.strong, i) {
                continue;
            }
            let shared = if siblings.is_empty() {
                0.0
            } else {
                let sign = Signature::bit(&own.sign, i);
                let n = siblings
                    .iter()
                    .filter(|s| Signature::bit(&s.strong, i) && Signature::bit(&s.sign, i) == sign)
                    .count();
                n as f32 / siblings.len() as f32
            };
            // Every strong step keeps a floor of weight, so a photo whose siblings happen to
            // share most of it is still judged on many steps, not a lucky few.
            *wi = WEIGHT_FLOOR + (1.0 - WEIGHT_FLOOR) * (1.0 - shared).powi(2);
        }
        // A photo whose every strong step is shared (a burst of the same car) would have no
        // weight left: fall back to the strong steps.
        let mut total: f32 = w.iter().sum();
        if total < MIN_WEIGHT {
            for (i, wi) in w.iter_mut().enumerate() {
                *wi = if Signature::bit(&own.strong, i) { 1.0 } else { 0.0 };
            }
            total = w.iter().sum();
        }
        Weights { w, total }
    }

    /// Total weight: how much of this photo is its own.
    pub fn total(&self) -> f32 {
        self.total
    }
}

/// Below this much weight in view, a score says nothing.
const MIN_WEIGHT: f32 = 40.0;
/// What a step outside the found image counts as (a coin toss would be 0.5).
const OUT_OF_VIEW: f32 = 0.3;
/// Weight of a strong step that every sibling shares.
const WEIGHT_FLOOR: f32 = 0.15;

/// Where the stolen photo's frame sits in the found image: centre, size, angle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
    /// Radians, counter-clockwise.
    pub angle: f32,
}

impl Frame {
    pub fn fit(r: &Rect) -> Frame {
        Frame {
            cx: (r.x0 + r.x1) / 2.0,
            cy: (r.y0 + r.y1) / 2.0,
            w: r.width(),
            h: r.height(),
            angle: 0.0,
        }
    }
}

/// Samples the grid cells of `frame` from `plane`: the signature of what lies there, and a
/// validity mask of the steps whose two cells both fall inside the plane.
fn sample(plane: &Plane, frame: &Frame) -> (Signature, [u64; WORDS]) {
    let mut m = [[0f32; GRID]; GRID];
    let mut inside = [[false; GRID]; GRID];
    let (cw, ch) = (frame.w / GRID as f32, frame.h / GRID as f32);
    let (sin, cos) = frame.angle.sin_cos();
    let (pw, ph) = (plane.width as f32, plane.height as f32);
    for (j, (mrow, irow)) in m.iter_mut().zip(inside.iter_mut()).enumerate() {
        let v = (j as f32 + 0.5) * ch - frame.h / 2.0;
        for i in 0..GRID {
            let u = (i as f32 + 0.5) * cw - frame.w / 2.0;
            let x = frame.cx + u * cos - v * sin;
            let y = frame.cy + u * sin + v * cos;
            irow[i] = x >= 0.0 && y >= 0.0 && x < pw && y < ph;
            mrow[i] = plane.box_mean(x - cw / 2.0, y - ch / 2.0, x + cw / 2.0, y + ch / 2.0);
        }
    }
    let mut diffs = [0f32; BITS];
    let mut valid = [0u64; WORDS];
    let mut k = 0;
    for j in 0..GRID {
        for i in 0..GRID - 1 {
            diffs[k] = m[j][i + 1] - m[j][i];
            if inside[j][i] && inside[j][i + 1] {
                valid[k / 64] |= 1 << (k % 64);
            }
            k += 1;
        }
    }
    for j in 0..GRID - 1 {
        for i in 0..GRID {
            diffs[k] = m[j + 1][i] - m[j][i];
            if inside[j][i] && inside[j + 1][i] {
                valid[k / 64] |= 1 << (k % 64);
            }
            k += 1;
        }
    }
    let mean = diffs.iter().map(|d| d.abs()).sum::<f32>() / BITS as f32;
    let mut sig = Signature {
        sign: [0; WORDS],
        strong: [0; WORDS],
    };
    for (k, d) in diffs.iter().enumerate() {
        if *d > 0.0 {
            sig.sign[k / 64] |= 1 << (k % 64);
        }
        if d.abs() > mean {
            sig.strong[k / 64] |= 1 << (k % 64);
        }
    }
    (sig, valid)
}

/// Weighted disagreement of the found image under `frame` with the stolen photo: 0 = every
/// weighted step agrees, about 0.5 = unrelated.
///
/// Steps that fall outside the found image count as a partial disagreement
/// ([`OUT_OF_VIEW`]), so a frame cannot improve much by pushing the part that disagrees out
/// of view, while a cropped copy pays only a little for its missing border.
/// Steps in `occluded` rows (a banner the found image carries) are left out entirely.
fn score(plane: &Plane, frame: &Frame, own: &Signature, weights: &Weights, occluded: &Occlusion) -> f32 {
    let (sig, valid) = sample(plane, frame);
    let (mut bad, mut seen) = (0f32, 0f32);
    for w in 0..WORDS {
        let diff = sig.sign[w] ^ own.sign[w];
        let mut bits = own.strong[w];
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let k = w * 64 + b;
            let wt = weights.w[k];
            if wt == 0.0 || occluded.hides(k, frame, plane) {
                continue;
            }
            seen += wt;
            if valid[w] >> b & 1 == 0 {
                bad += OUT_OF_VIEW * wt;
            } else if diff >> b & 1 == 1 {
                bad += wt;
            }
        }
    }
    if seen < MIN_WEIGHT {
        return 1.0;
    }
    bad / seen
}

/// Rows of the found image hidden by an overlay (a text banner), as plane y ranges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Occlusion {
    pub bands: [(f32, f32); 2],
}

impl Occlusion {
    /// Whether step `k` of the grid under `frame` touches an occluded band.
    fn hides(&self, k: usize, frame: &Frame, _plane: &Plane) -> bool {
        if self.bands.iter().all(|(a, b)| b <= a) {
            return false;
        }
        let h = GRID * (GRID - 1);
        let (row, rows) = if k < h {
            (k / (GRID - 1), 1)
        } else {
            ((k - h) / GRID, 2)
        };
        // Ignore the small angle here: bands are whole rows of the found image.
        let ch = frame.h / GRID as f32;
        let top = frame.cy - frame.h / 2.0 + row as f32 * ch;
        let bottom = top + rows as f32 * ch;
        self.bands
            .iter()
            .any(|&(a, b)| b > a && bottom > a && top < b)
    }
}

/// Weighted disagreement of two signatures taken on the same framing (no search): how a
/// sighting recorded earlier is checked against a fingerprint imported later.
pub fn compare(found: &Signature, own: &Signature, weights: &Weights) -> f32 {
    let (mut bad, mut seen) = (0f32, 0f32);
    for (i, wt) in weights.w.iter().enumerate() {
        if *wt == 0.0 {
            continue;
        }
        seen += wt;
        if Signature::bit(&found.sign, i) != Signature::bit(&own.sign, i) {
            bad += wt;
        }
    }
    if seen < MIN_WEIGHT {
        1.0
    } else {
        bad / seen
    }
}

impl Signature {
    /// The signature of the mirror image (left–right) of what `self` describes.
    pub fn mirrored(&self) -> Signature {
        let mut out = Signature {
            sign: [0; WORDS],
            strong: [0; WORDS],
        };
        let mut set = |k: usize, from: usize, negate: bool| {
            let s = Signature::bit(&self.sign, from);
            let strong = Signature::bit(&self.strong, from);
            // A step's sign flips when its direction is reversed; a zero step stays "not up".
            if s != negate {
                out.sign[k / 64] |= 1 << (k % 64);
            }
            if strong {
                out.strong[k / 64] |= 1 << (k % 64);
            }
        };
        let h = GRID * (GRID - 1);
        for j in 0..GRID {
            for i in 0..GRID - 1 {
                set(j * (GRID - 1) + i, j * (GRID - 1) + (GRID - 2 - i), true);
            }
        }
        for j in 0..GRID - 1 {
            for i in 0..GRID {
                set(h + j * GRID + i, h + j * GRID + (GRID - 1 - i), false);
            }
        }
        out
    }
}

/// The best frame found and its score.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub score: f32,
    pub frame: Frame,
}

/// Searches frames of the stolen photo around `view` in `plane` (the found image, already in
/// the candidate's orientation) and returns the best score.
///
/// Coarse start: the view itself, the view as a crop of the original (3–8% cut off each side)
/// and small rotations; then coordinate descent on centre, size and angle.
pub fn verify(
    plane: &Plane,
    view: &Rect,
    own: &Signature,
    weights: &Weights,
    occluded: &Occlusion,
) -> Verified {
    let base = Frame::fit(view);
    let score = |f: &Frame| score(plane, f, own, weights, occluded);
    let mut best = Verified {
        score: score(&base),
        frame: base,
    };
    let deg = std::f32::consts::PI / 180.0;
    for grow in [1.0f32, 1.06, 1.1, 1.16] {
        for angle in [0.0f32, -3.0 * deg, 3.0 * deg] {
            if grow == 1.0 && angle == 0.0 {
                continue;
            }
            let f = Frame {
                w: base.w * grow,
                h: base.h * grow,
                angle,
                ..base
            };
            let s = score(&f);
            if s < best.score {
                best = Verified { score: s, frame: f };
            }
        }
    }
    // Coordinate descent on centre, scale, aspect and angle. The aspect ratio may drift only
    // a little: a leaker crops, but rarely stretches.
    let aspect0 = base.w / base.h;
    let mut step = [
        0.02 * base.w, // cx
        0.02 * base.h, // cy
        0.03 * base.w, // w (scale, aspect kept)
        0.01 * base.h, // h (aspect)
        1.0 * deg,     // angle
    ];
    for _round in 0..4 {
        let mut improved = true;
        let mut guard = 0;
        while improved && guard < 12 {
            improved = false;
            guard += 1;
            for (p, st) in step.iter().enumerate() {
                for sgn in [-1.0f32, 1.0] {
                    let mut f = best.frame;
                    match p {
                        0 => f.cx += sgn * st,
                        1 => f.cy += sgn * st,
                        2 => {
                            let k = (f.w + sgn * st) / f.w;
                            f.w *= k;
                            f.h *= k;
                        }
                        3 => f.h += sgn * st,
                        _ => f.angle += sgn * st,
                    }
                    let aspect = f.w / f.h.max(1.0);
                    if f.w < 8.0
                        || f.h < 8.0
                        || f.angle.abs() > 5.0 * deg
                        || (aspect / aspect0 - 1.0).abs() > 0.04
                    {
                        continue;
                    }
                    let s = score(&f);
                    if s + 1e-6 < best.score {
                        best = Verified { score: s, frame: f };
                        improved = true;
                    }
                }
            }
        }
        for st in &mut step {
            *st /= 2.0;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "camera": fixed background; `car` paints a distinct block pattern in the middle.
    fn photo(car: u32) -> Plane {
        let (w, h) = (240usize, 160usize);
        let mut px = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let bg = 60.0 + ((x / 20 + y / 16) % 3) as f32 * 40.0;
                let in_car = (80..170).contains(&x) && (70..130).contains(&y);
                let v = if in_car {
                    let k = car.wrapping_mul(2654435761) >> ((x / 15 + 3 * (y / 12)) % 24);
                    40.0 + (k % 5) as f32 * 45.0
                } else {
                    bg
                };
                px.push(v);
            }
        }
        Plane::from_luma(w, h, px)
    }

    #[test]
    fn copy_scores_low_and_lookalike_high() {
        let cars: Vec<Plane> = (1..=6).map(photo).collect();
        let sigs: Vec<Signature> = cars.iter().map(|p| Signature::of(p, &p.full())).collect();
        let siblings: Vec<&Signature> = sigs[1..].iter().collect();
        let w = Weights::new(&sigs[0], &siblings);
        let none = Occlusion::default();
        let own = verify(&cars[0], &cars[0].full(), &sigs[0], &w, &none);
        assert!(own.score < 0.02, "{own:?}");
        let other = verify(&cars[1], &cars[1].full(), &sigs[0], &w, &none);
        assert!(other.score > 0.25, "{other:?}");
        // A 5% crop of the copy still verifies.
        let crop = cars[0].crop(&cars[0].full().inset(0.05));
        let v = verify(&crop, &crop.full(), &sigs[0], &w, &none);
        assert!(v.score < 0.1, "{v:?}");
    }

    #[test]
    fn mirrored_signature_is_the_signature_of_the_mirror() {
        let p = photo(5);
        let s = Signature::of(&p, &p.full());
        let m = p.oriented(crate::views::Orientation {
            transpose: false,
            flip_x: true,
            flip_y: false,
        });
        let sm = Signature::of(&m, &m.full());
        let w = Weights::new(&sm, &[]);
        assert!(compare(&s.mirrored(), &sm, &w) < 0.02);
        assert!(compare(&s, &sm, &w) > 0.2);
        assert_eq!(s.mirrored().mirrored().strong, s.strong);
    }

    #[test]
    fn signature_bytes_round_trip() {
        let p = photo(3);
        let s = Signature::of(&p, &p.full());
        assert_eq!(Signature::from_bytes(&s.to_bytes()), Some(s.clone()));
        assert_eq!(Signature::from_bytes(&[0; 3]), None);
        assert!((s.agreement(&s) - 1.0).abs() < 1e-6);
    }
}
