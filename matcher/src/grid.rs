//! Verification: is this found image really *that* stolen photo, or another car in the same
//! booth?
//!
//! A global hash cannot tell: two photos from one border camera share the booth, the lane and
//! the light, and differ in a car-sized part of the frame. So every stolen image also keeps a
//! [`Signature`]: for a grid of cells over the photo, the sign of the luminance step between
//! neighbouring cells (horizontal and vertical) and whether that step is strong (above the
//! image's mean step), at two resolutions: 24×24 cells (1,104 steps) to find the framing, and
//! 48×48 (4,512 steps) to see what tells two cars apart (grille, plate, faces). It is a hash —
//! signs only, nothing to reconstruct the photo from — but each bit belongs to a place in the
//! frame.
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
//! and angle of the original inside the found image — on the coarse grid, with integral-image
//! box means (a few microseconds a try), then scores the fine grid at the best frame.

use crate::views::{Plane, Rect};

/// Cells per side of the coarse grid (framing search).
pub const COARSE: usize = 24;
/// Cells per side of the fine grid (final score).
pub const FINE: usize = 48;

/// Steps of an `n`×`n` grid: horizontal first, then vertical.
pub(crate) const fn steps(n: usize) -> usize {
    2 * n * (n - 1)
}

pub(crate) const fn words(n: usize) -> usize {
    steps(n).div_ceil(64)
}

pub(crate) fn bit(words: &[u64], i: usize) -> bool {
    words[i / 64] >> (i % 64) & 1 == 1
}

/// Signs and strengths of the cell-to-cell luminance steps of one grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steps {
    pub(crate) n: usize,
    pub(crate) sign: Vec<u64>,
    pub(crate) strong: Vec<u64>,
}

impl Steps {
    fn empty(n: usize) -> Steps {
        Steps {
            n,
            sign: vec![0; words(n)],
            strong: vec![0; words(n)],
        }
    }

    pub(crate) fn bytes(n: usize) -> usize {
        2 * words(n) * 8
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        for w in self.sign.iter().chain(self.strong.iter()) {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    pub(crate) fn read(n: usize, b: &[u8]) -> Steps {
        let word = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        let k = words(n);
        // Bits past the last step are cleared: whatever the bytes, no step is out of range.
        let tail = steps(n) % 64;
        let mask = |i: usize, w: u64| {
            if i == k - 1 && tail != 0 {
                w & ((1u64 << tail) - 1)
            } else {
                w
            }
        };
        Steps {
            n,
            sign: (0..k).map(|i| mask(i, word(i))).collect(),
            strong: (0..k).map(|i| mask(i, word(k + i))).collect(),
        }
    }

    /// The steps of the mirror image (left–right) of what `self` describes.
    pub(crate) fn mirrored(&self) -> Steps {
        let n = self.n;
        let mut out = Steps::empty(n);
        let mut set = |k: usize, from: usize, negate: bool| {
            if bit(&self.sign, from) != negate {
                out.sign[k / 64] |= 1 << (k % 64);
            }
            if bit(&self.strong, from) {
                out.strong[k / 64] |= 1 << (k % 64);
            }
        };
        let h = n * (n - 1);
        for j in 0..n {
            for i in 0..n - 1 {
                set(j * (n - 1) + i, j * (n - 1) + (n - 2 - i), true);
            }
        }
        for j in 0..n - 1 {
            for i in 0..n {
                set(h + j * n + i, h + j * n + (n - 1 - i), false);
            }
        }
        out
    }

    /// Per-step weights given the siblings' steps (see the module docs), their total, and the
    /// mask of the strong steps most siblings share (the camera's background).
    pub(crate) fn weights(&self, siblings: &[&Steps]) -> (Vec<f32>, f32, Vec<u64>) {
        let mut w = vec![0f32; steps(self.n)];
        let mut background = vec![0u64; words(self.n)];
        for (i, wi) in w.iter_mut().enumerate() {
            if !bit(&self.strong, i) {
                continue;
            }
            let shared = if siblings.is_empty() {
                0.0
            } else {
                let sign = bit(&self.sign, i);
                let n = siblings
                    .iter()
                    .filter(|s| bit(&s.strong, i) && bit(&s.sign, i) == sign)
                    .count();
                n as f32 / siblings.len() as f32
            };
            if shared >= 0.5 {
                background[i / 64] |= 1 << (i % 64);
            }
            // Every strong step keeps a floor of weight, so a photo whose siblings happen to
            // share most of it is still judged on many steps, not a lucky few.
            *wi = WEIGHT_FLOOR + (1.0 - WEIGHT_FLOOR) * (1.0 - shared).powi(2);
        }
        let total = w.iter().sum();
        (w, total, background)
    }
}

/// The spatial signature of one image (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub coarse: Steps,
    pub fine: Steps,
}

impl Signature {
    /// Serialized size in bytes.
    pub const BYTES: usize = 2 * words(COARSE) * 8 + 2 * words(FINE) * 8;

    /// The signature of `rect` of `plane`, axis-aligned: what is stored for a stolen photo.
    pub fn of(plane: &Plane, rect: &Rect) -> Signature {
        let frame = Frame::fit(rect);
        Signature {
            coarse: sample(plane, &frame, COARSE).0,
            fine: sample(plane, &frame, FINE).0,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        self.coarse.write(&mut out);
        self.fine.write(&mut out);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Signature> {
        if b.len() != Self::BYTES {
            return None;
        }
        let split = Steps::bytes(COARSE);
        Some(Signature {
            coarse: Steps::read(COARSE, &b[..split]),
            fine: Steps::read(FINE, &b[split..]),
        })
    }

    /// The signature of the mirror image (left–right).
    pub fn mirrored(&self) -> Signature {
        Signature {
            coarse: self.coarse.mirrored(),
            fine: self.fine.mirrored(),
        }
    }

    /// Fraction of strong coarse steps of `self` that `other` has with the same sign.
    pub fn agreement(&self, other: &Signature) -> f32 {
        let (mut strong, mut same) = (0, 0);
        for (w, s) in self.coarse.strong.iter().enumerate() {
            strong += s.count_ones();
            same += (s & !(self.coarse.sign[w] ^ other.coarse.sign[w])).count_ones();
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
    coarse: Vec<f32>,
    coarse_total: f32,
    fine: Vec<f32>,
    /// Strong coarse steps that most siblings share: the scene, not the car.
    background: Vec<u64>,
    /// The same on the fine grid: the camera's fixed edges (booth, pole, signs).
    fine_background: Vec<u64>,
}

impl Weights {
    /// Weights of `own` given its siblings in the bank.
    pub fn new(own: &Signature, siblings: &[&Signature]) -> Weights {
        let c: Vec<&Steps> = siblings.iter().map(|s| &s.coarse).collect();
        let f: Vec<&Steps> = siblings.iter().map(|s| &s.fine).collect();
        let (coarse, coarse_total, background) = own.coarse.weights(&c);
        let (fine, _, fine_background) = own.fine.weights(&f);
        Weights {
            coarse,
            coarse_total,
            fine,
            background,
            fine_background,
        }
    }

    /// Total coarse weight: how much of this photo is its own.
    pub fn total(&self) -> f32 {
        self.coarse_total
    }

    /// Whether `other` (a photo's signature) has this photo's background: at least
    /// [`SAME_SCENE`] of its background steps, with the same sign.
    pub fn shares_background(&self, own: &Signature, other: &Signature) -> bool {
        let (mut n, mut same) = (0u32, 0u32);
        for (w, bg) in self.background.iter().enumerate() {
            n += bg.count_ones();
            same += (bg & !(own.coarse.sign[w] ^ other.coarse.sign[w])).count_ones();
        }
        n >= MIN_WEIGHT as u32 && same as f32 >= SAME_SCENE * n as f32
    }
}

/// Below this much weight in view, a score says nothing.
const MIN_WEIGHT: f32 = 40.0;
/// What a step outside the found image counts as (a coin toss would be 0.5).
const OUT_OF_VIEW: f32 = 0.3;
/// Share of a photo's background steps another frame must agree on to be of its camera.
pub const SAME_SCENE: f32 = 0.8;
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
    /// The centres of the `n`×`n` cells of this frame in the found image, row by row, and
    /// the cell size.
    pub fn cell_centres(&self, n: usize) -> (impl Iterator<Item = (f32, f32)> + '_, f32, f32) {
        let (cw, ch) = (self.w / n as f32, self.h / n as f32);
        let (sin, cos) = self.angle.sin_cos();
        let centres = (0..n * n).map(move |c| {
            let (j, i) = (c / n, c % n);
            let v = (j as f32 + 0.5) * ch - self.h / 2.0;
            let u = (i as f32 + 0.5) * cw - self.w / 2.0;
            (self.cx + u * cos - v * sin, self.cy + u * sin + v * cos)
        });
        (centres, cw, ch)
    }

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

/// Samples the `n`×`n` cells of `frame` from `plane`: the steps of what lies there, and a
/// validity mask of the steps whose two cells both fall inside the plane.
pub(crate) fn sample(plane: &Plane, frame: &Frame, n: usize) -> (Steps, Vec<u64>) {
    sample_strong(plane, frame, n, 1.0)
}

/// [`sample`], with a step strong when it exceeds `strong` times the mean step.
pub(crate) fn sample_strong(
    plane: &Plane,
    frame: &Frame,
    n: usize,
    strong: f32,
) -> (Steps, Vec<u64>) {
    let mut m = vec![0f32; n * n];
    let mut inside = vec![false; n * n];
    let (pw, ph) = (plane.width as f32, plane.height as f32);
    let (centres, cw, ch) = frame.cell_centres(n);
    for (c, (x, y)) in centres.enumerate() {
        inside[c] = x >= 0.0 && y >= 0.0 && x < pw && y < ph;
        m[c] = plane.box_mean(x - cw / 2.0, y - ch / 2.0, x + cw / 2.0, y + ch / 2.0);
    }
    let total = steps(n);
    let mut diffs = vec![0f32; total];
    let mut valid = vec![0u64; words(n)];
    let mut k = 0;
    for j in 0..n {
        for i in 0..n - 1 {
            diffs[k] = m[j * n + i + 1] - m[j * n + i];
            if inside[j * n + i] && inside[j * n + i + 1] {
                valid[k / 64] |= 1 << (k % 64);
            }
            k += 1;
        }
    }
    for j in 0..n - 1 {
        for i in 0..n {
            diffs[k] = m[(j + 1) * n + i] - m[j * n + i];
            if inside[j * n + i] && inside[(j + 1) * n + i] {
                valid[k / 64] |= 1 << (k % 64);
            }
            k += 1;
        }
    }
    let mean = diffs.iter().map(|d| d.abs()).sum::<f32>() / total as f32;
    let mut out = Steps::empty(n);
    for (k, d) in diffs.iter().enumerate() {
        if *d > 0.0 {
            out.sign[k / 64] |= 1 << (k % 64);
        }
        if d.abs() > strong * mean {
            out.strong[k / 64] |= 1 << (k % 64);
        }
    }
    (out, valid)
}

/// Weighted disagreement of the found image under `frame` with one grid of the stolen photo:
/// 0 = every weighted step agrees, about 0.5 = unrelated.
///
/// Steps that fall outside the found image count as a partial disagreement
/// ([`OUT_OF_VIEW`]), so a frame cannot improve much by pushing the part that disagrees out
/// of view, while a cropped copy pays only a little for its missing border. Steps in
/// `occluded` rows (a banner the found image carries) are left out entirely.
fn score(plane: &Plane, frame: &Frame, own: &Steps, weights: &[f32], occluded: &Occlusion) -> f32 {
    let (mut bad, mut seen) = (0f32, 0f32);
    compare_steps(
        plane,
        frame,
        own,
        weights,
        occluded,
        |_, wt, in_view, differs| {
            seen += wt;
            if !in_view {
                bad += OUT_OF_VIEW * wt;
            } else if differs {
                bad += wt;
            }
        },
    );
    if seen < MIN_WEIGHT {
        return 1.0;
    }
    bad / seen
}

/// Samples the found image under `frame` and calls `visit(step, weight, in_view, differs)`
/// for every strong, weighted step of `own` outside the occluded rows: whether both its
/// cells lie inside the found image, and whether its sign differs there.
fn compare_steps(
    plane: &Plane,
    frame: &Frame,
    own: &Steps,
    weights: &[f32],
    occluded: &Occlusion,
    mut visit: impl FnMut(usize, f32, bool, bool),
) {
    let (sig, valid) = sample(plane, frame, own.n);
    for (w, (&strong, &valid_w)) in own.strong.iter().zip(&valid).enumerate() {
        let diff = sig.sign[w] ^ own.sign[w];
        let mut bits = strong;
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let k = w * 64 + b;
            let wt = weights[k];
            if wt == 0.0 || occluded.hides(k, own.n, frame) {
                continue;
            }
            visit(k, wt, valid_w >> b & 1 == 1, diff >> b & 1 == 1);
        }
    }
}

/// Cells per side of a block in [`local`]: a plate or a face at the fine grid.
const BLOCK: usize = 6;
/// Weight a block needs in view to be judged on its own.
const MIN_BLOCK_WEIGHT: f32 = 4.0;

/// The step `k` of an `n`-grid as (cell row, cell column) of its first cell.
pub(crate) fn step_cell(k: usize, n: usize) -> (usize, usize) {
    let h = n * (n - 1);
    if k < h {
        (k / (n - 1), k % (n - 1))
    } else {
        ((k - h) / n, (k - h) % n)
    }
}

/// Weighted disagreement of the worst and second-worst [`BLOCK`]-cell block of the grid
/// under `frame`: a copy disagrees a little everywhere (noise, compression), another car of
/// the same model disagrees a lot where it differs (its plate, its driver) and nowhere
/// else, which a score over the whole frame averages away.
pub fn local(
    plane: &Plane,
    frame: &Frame,
    own: &Signature,
    weights: &Weights,
    occluded: &Occlusion,
) -> (f32, f32) {
    let (own, weights) = (&own.fine, &weights.fine);
    let n = own.n;
    let per = n.div_ceil(BLOCK);
    let mut bad = vec![0f32; per * per];
    let mut seen = vec![0f32; per * per];
    compare_steps(
        plane,
        frame,
        own,
        weights,
        occluded,
        |k, wt, in_view, differs| {
            if !in_view {
                return;
            }
            let (row, col) = step_cell(k, n);
            let blk = (row / BLOCK) * per + col / BLOCK;
            seen[blk] += wt;
            if differs {
                bad[blk] += wt;
            }
        },
    );
    let mut scores: Vec<f32> = bad
        .iter()
        .zip(&seen)
        .filter(|(_, &s)| s >= MIN_BLOCK_WEIGHT)
        .map(|(b, s)| b / s)
        .collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    (
        scores.first().copied().unwrap_or(0.0),
        scores.get(1).copied().unwrap_or(0.0),
    )
}

/// Disagreement of the found image under `frame` with the stolen photo's background (the
/// strong fine steps its siblings share: the edges of the booth, the pole, the signs): low
/// for any frame of the same camera, high for another scene, however alike in layout.
/// `None` when too little background is in view to say.
pub fn scene(
    plane: &Plane,
    frame: &Frame,
    own: &Signature,
    weights: &Weights,
    occluded: &Occlusion,
) -> Option<f32> {
    let n = own.fine.n;
    let (sig, valid) = sample(plane, frame, n);
    let (mut bad, mut seen) = (0u32, 0u32);
    for (w, &bg) in weights.fine_background.iter().enumerate() {
        let mut bits = bg & valid[w];
        let diff = sig.sign[w] ^ own.fine.sign[w];
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if occluded.hides(w * 64 + b, n, frame) {
                continue;
            }
            seen += 1;
            bad += (diff >> b & 1) as u32;
        }
    }
    (seen >= MIN_WEIGHT as u32).then(|| bad as f32 / seen as f32)
}

/// Rows of the found image hidden by an overlay (a text banner), as plane y ranges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Occlusion {
    pub bands: [(f32, f32); 2],
}

impl Occlusion {
    /// Whether step `k` of an `n`-grid under `frame` touches an occluded band.
    pub(crate) fn hides(&self, k: usize, n: usize, frame: &Frame) -> bool {
        if self.bands.iter().all(|(a, b)| b <= a) {
            return false;
        }
        let h = n * (n - 1);
        let (row, rows) = if k < h {
            (k / (n - 1), 1)
        } else {
            ((k - h) / n, 2)
        };
        // Bands are whole rows of the found image; the small angle is ignored here.
        let ch = frame.h / n as f32;
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
    let one = |f: &Steps, o: &Steps, w: &[f32]| {
        let (mut bad, mut seen) = (0f32, 0f32);
        for (i, wt) in w.iter().enumerate() {
            if *wt == 0.0 {
                continue;
            }
            seen += wt;
            if bit(&f.sign, i) != bit(&o.sign, i) {
                bad += wt;
            }
        }
        if seen < MIN_WEIGHT {
            1.0
        } else {
            bad / seen
        }
    };
    one(&found.coarse, &own.coarse, &weights.coarse).max(one(&found.fine, &own.fine, &weights.fine))
}

/// The best frame found and its score.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    /// The larger of the coarse score at the best frame and the fine score there.
    pub score: f32,
    pub coarse: f32,
    pub fine: f32,
    /// Where the photo sits in the found image (at the fine grid's best offset).
    pub frame: Frame,
}

/// Searches frames of the stolen photo around `view` in `plane` (the found image, already in
/// the candidate's orientation) on the coarse grid, then scores the fine grid at the best
/// frame (and half a fine cell around it).
///
/// Coarse start: the view itself, the view as a crop of the original (3–8% cut off each side)
/// and small rotations; then coordinate descent on centre, scale, aspect and angle.
pub fn verify(
    plane: &Plane,
    view: &Rect,
    own: &Signature,
    weights: &Weights,
    occluded: &Occlusion,
) -> Verified {
    let base = Frame::fit(view);
    let coarse = |f: &Frame| score(plane, f, &own.coarse, &weights.coarse, occluded);
    let (mut best_score, mut best) = (coarse(&base), base);
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
            let s = coarse(&f);
            if s < best_score {
                (best_score, best) = (s, f);
            }
        }
    }
    // Coordinate descent. The aspect ratio may drift only a little: a leaker crops, but
    // rarely stretches.
    let aspect0 = base.w / base.h;
    let mut step = [
        0.02 * base.w, // cx
        0.02 * base.h, // cy
        0.03 * base.w, // scale (aspect kept)
        0.01 * base.h, // aspect
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
                    let mut f = best;
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
                    let s = coarse(&f);
                    if s + 1e-6 < best_score {
                        (best_score, best) = (s, f);
                        improved = true;
                    }
                }
            }
        }
        for st in &mut step {
            *st /= 2.0;
        }
    }
    let fine_at = |f: &Frame| score(plane, f, &own.fine, &weights.fine, occluded);
    let (dx, dy) = (best.w / FINE as f32 / 2.0, best.h / FINE as f32 / 2.0);
    let (mut fine, mut fine_frame) = (f32::INFINITY, best);
    for oy in [-dy, 0.0, dy] {
        for ox in [-dx, 0.0, dx] {
            let f = Frame {
                cx: best.cx + ox,
                cy: best.cy + oy,
                ..best
            };
            let s = fine_at(&f);
            if s < fine {
                (fine, fine_frame) = (s, f);
            }
        }
    }
    Verified {
        score: best_score.max(fine),
        coarse: best_score,
        fine,
        frame: fine_frame,
    }
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
        assert_eq!(s.mirrored().mirrored(), s);
    }

    #[test]
    fn any_signature_bytes_are_safe_to_score() {
        let junk = vec![0xFFu8; Signature::BYTES];
        let sig = Signature::from_bytes(&junk).unwrap();
        let w = Weights::new(&sig, &[]);
        let p = photo(2);
        let v = verify(&p, &p.full(), &sig, &w, &Occlusion::default());
        assert!(v.score.is_finite());
        let _ = local(&p, &v.frame, &sig, &w, &Occlusion::default());
        let _ = scene(&p, &v.frame, &sig, &w, &Occlusion::default());
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
