//! Detail: the parts of a photo that tell it from its siblings, at the resolution they need.
//!
//! Two cars of one model at one camera differ in paint, plate and driver. The fine grid of
//! [`crate::grid`] (48×48 cells) sees the driver, but a plate's characters are a few pixels
//! tall there: a box mean over a cell averages a `4` and a `7` into the same grey, so a twin
//! whose paint is close to a stolen photo's can agree with it everywhere the fine grid looks.
//!
//! So every stolen photo also keeps a [`Detail`] print: the signs of the luminance steps of
//! a 64×64 grid over the whole photo and which of them are clear edges (twice the photo's
//! mean step: glyphs, faces, glass — not the texture of paint); 8,064 steps, 2,016 bytes,
//! signs only like the other prints: nothing to rebuild the photo from. It is compared only
//! where the photo is its own ([`DetailWeights`]: an edge its siblings share is the
//! camera's, and weighs little), after aligning the frame on the detail grid itself
//! ([`refine`]), window by window ([`windows`]: 6×6 cells, a few characters of a plate or a
//! face, every 3 cells), away from the edge of the found view (a pad, a page, a cut). A copy
//! — blurred, halved or compressed — keeps the clear edges of the plate's characters and of
//! the driver nearly everywhere; a twin disagrees on them in the window where its plate or
//! its driver differs. [`crate::identity`] names no photo whose worst window disagrees.

use crate::grid::{self, words, Frame, Occlusion, Steps};
use crate::views::{Plane, Rect};

/// Cells per side of the detail grid.
pub const CELLS: usize = 64;
/// Cells per side of a window judged on its own: a few characters of a plate, a face.
pub const WINDOW: usize = 6;
/// Cells between neighbouring windows.
pub const STRIDE: usize = 3;
/// Serialized size of a [`Detail`].
pub const BYTES: usize = 2 * words(CELLS) * 8;
/// Weight a window needs in view to be judged.
const MIN_WINDOW_WEIGHT: f32 = 8.0;
/// A step of the print is strong (compared) when it exceeds this many times the photo's
/// mean step: the clear edges of glyphs, faces and glass, not the texture of paint.
const STRONG: f32 = 2.0;
/// Cells along the edge of the found view that are not compared.
const EDGE: f32 = 1.5;

/// The detail print of one photo (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    steps: Steps,
}

impl Detail {
    /// The print of `rect` of `plane`, axis-aligned.
    pub fn of(plane: &Plane, rect: &Rect) -> Detail {
        Detail {
            steps: grid::sample_strong(plane, &Frame::fit(rect), CELLS, STRONG).0,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BYTES);
        self.steps.write(&mut out);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Detail> {
        (b.len() == BYTES).then(|| Detail {
            steps: Steps::read(CELLS, b),
        })
    }

    /// The print of the mirror image (left–right).
    pub fn mirrored(&self) -> Detail {
        Detail {
            steps: self.steps.mirrored(),
        }
    }
}

/// Per-step weights of one photo's detail print, from its siblings' (as
/// [`grid::Weights`]).
#[derive(Debug, Clone)]
pub struct DetailWeights {
    weights: Vec<f32>,
}

impl DetailWeights {
    pub fn new(own: &Detail, siblings: &[&Detail]) -> DetailWeights {
        let sibs: Vec<&Steps> = siblings.iter().map(|d| &d.steps).collect();
        DetailWeights {
            weights: own.steps.weights(&sibs).0,
        }
    }
}

/// Weighted disagreement of the found image with `own`, per window of [`WINDOW`]×[`WINDOW`]
/// cells (every [`STRIDE`] cells, overlapping), after aligning `frame` on the detail grid
/// ([`refine`]): the worst window, and the worst window that does not overlap it (0 =
/// agrees; about 0.5 = unrelated). Cells within [`EDGE`] cells of the edge of `view` (the
/// found photo's extent) are left out. `None` when no window has enough weight in view.
pub fn windows(
    plane: &Plane,
    view: &Rect,
    frame: &Frame,
    own: &Detail,
    weights: &DetailWeights,
    occluded: &Occlusion,
) -> Option<(f32, f32)> {
    let frame = refine(plane, view, frame, own, weights, occluded);
    let per = (CELLS - WINDOW) / STRIDE + 1;
    let (bad, seen) = per_cell(plane, view, &frame, own, weights, occluded);
    let best: Vec<f32> = (0..per * per)
        .map(|i| {
            let (r, c) = ((i / per) * STRIDE, (i % per) * STRIDE);
            let s = seen.window(r, c, WINDOW);
            if s >= MIN_WINDOW_WEIGHT {
                bad.window(r, c, WINDOW) / s
            } else {
                f32::INFINITY
            }
        })
        .collect();
    let (worst_at, worst) = best
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let (wr, wc) = (worst_at / per, worst_at % per);
    let apart = best
        .iter()
        .enumerate()
        .filter(|&(i, s)| {
            let (r, c) = (i / per, i % per);
            s.is_finite()
                && (r.abs_diff(wr) * STRIDE >= WINDOW || c.abs_diff(wc) * STRIDE >= WINDOW)
        })
        .map(|(_, s)| *s)
        .fold(0.0, f32::max);
    Some((*worst, apart))
}

/// The frame near `frame` under which the found image agrees best with `own` on the detail
/// grid: coordinate descent on centre, scale, aspect and angle in steps of a fraction of a
/// cell. The frame search of [`grid::verify`] works on coarser grids; at the detail grid's
/// resolution a crop's or a pad's framing is off by a cell or two at the edges.
fn refine(
    plane: &Plane,
    view: &Rect,
    frame: &Frame,
    own: &Detail,
    weights: &DetailWeights,
    occluded: &Occlusion,
) -> Frame {
    let score = |f: &Frame| {
        let (bad, seen) = per_cell(plane, view, f, own, weights, occluded);
        let s = seen.window(0, 0, CELLS);
        if s > 0.0 {
            bad.window(0, 0, CELLS) / s
        } else {
            1.0
        }
    };
    let (mut best, mut best_score) = (*frame, score(frame));
    let (cw, ch) = (frame.w / CELLS as f32, frame.h / CELLS as f32);
    let mut step = [0.5 * cw, 0.5 * ch, 0.5 * cw, 0.5 * ch, 0.3f32.to_radians()];
    for _round in 0..3 {
        let mut improved = true;
        let mut guard = 0;
        while improved && guard < 8 {
            (improved, guard) = (false, guard + 1);
            for (p, st) in step.iter().enumerate() {
                for sgn in [-1.0f32, 1.0] {
                    let mut f = best;
                    match p {
                        0 => f.cx += sgn * st,
                        1 => f.cy += sgn * st,
                        2 => f.w += 2.0 * sgn * st,
                        3 => f.h += 2.0 * sgn * st,
                        _ => f.angle += sgn * st,
                    }
                    let s = score(&f);
                    if s + 1e-6 < best_score {
                        (best_score, best, improved) = (s, f, true);
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

/// Per-cell sums with window sums in constant time (a summed-area table).
struct Sums {
    table: Vec<f32>,
}

impl Sums {
    fn of(cells: &[f32]) -> Sums {
        let n = CELLS + 1;
        let mut table = vec![0f32; n * n];
        for r in 0..CELLS {
            let mut row = 0f32;
            for c in 0..CELLS {
                row += cells[r * CELLS + c];
                table[(r + 1) * n + c + 1] = table[r * n + c + 1] + row;
            }
        }
        Sums { table }
    }

    /// The sum over the window of [`WINDOW`] cells from cell (`r`, `c`).
    fn window(&self, r: usize, c: usize, size: usize) -> f32 {
        let n = CELLS + 1;
        let (r1, c1) = (r + size, c + size);
        self.table[r1 * n + c1] - self.table[r * n + c1] - self.table[r1 * n + c]
            + self.table[r * n + c]
    }
}

/// Weighted disagreeing and seen weight per cell (a step counts at its first cell) under
/// one frame.
fn per_cell(
    plane: &Plane,
    view: &Rect,
    frame: &Frame,
    own: &Detail,
    weights: &DetailWeights,
    occluded: &Occlusion,
) -> (Sums, Sums) {
    let (mut bad, mut seen) = (vec![0f32; CELLS * CELLS], vec![0f32; CELLS * CELLS]);
    let (found, _) = grid::sample(plane, frame, CELLS);
    // Cells near the edge of the view read its border (a pad, a page, a cut), not the photo.
    let (centres, cw, ch) = frame.cell_centres(CELLS);
    let (mx, my) = (EDGE * cw, EDGE * ch);
    let inside: Vec<bool> = centres
        .map(|(x, y)| {
            x >= view.x0 + mx && x < view.x1 - mx && y >= view.y0 + my && y < view.y1 - my
        })
        .collect();
    let own = &own.steps;
    for (w, &strong) in own.strong.iter().enumerate() {
        let mut bits = strong;
        let diff = found.sign[w] ^ own.sign[w];
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let k = w * 64 + b;
            let wt = weights.weights[k];
            if wt == 0.0 || occluded.hides(k, CELLS, frame) {
                continue;
            }
            let (row, col) = grid::step_cell(k, CELLS);
            let next = if k < CELLS * (CELLS - 1) { 1 } else { CELLS };
            let at = row * CELLS + col;
            if !inside[at] || !inside[at + next] {
                continue;
            }
            seen[at] += wt;
            if diff >> b & 1 == 1 {
                bad[row * CELLS + col] += wt;
            }
        }
    }
    (Sums::of(&bad), Sums::of(&seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plate: white with dark glyphs, one 3×5 glyph per character of `text`, `cell`
    /// pixels a block, on a grey car.
    fn plate(text: &[u16], cell: usize) -> Plane {
        let (w, h) = (240usize, 180usize);
        let mut px = vec![90.0f32; w * h];
        let (x0, y0) = (60usize, 100usize);
        for y in y0 - 4..y0 + 5 * cell + 4 {
            for x in x0 - 4..x0 + text.len() * 4 * cell + 4 {
                px[y * w + x] = 240.0;
            }
        }
        for (i, g) in text.iter().enumerate() {
            for row in 0..5 {
                for col in 0..3 {
                    if g >> (row * 3 + col) & 1 == 1 {
                        for y in 0..cell {
                            for x in 0..cell {
                                let (gx, gy) = (x0 + (i * 4 + col) * cell + x, y0 + row * cell + y);
                                px[gy * w + gx] = 20.0;
                            }
                        }
                    }
                }
            }
        }
        // A fixed background edge (a booth) the siblings share.
        for y in 0..h {
            for x in 0..30 {
                px[y * w + x] = 200.0;
            }
        }
        Plane::from_luma(w, h, px)
    }

    const GLYPHS: [u16; 6] = [
        0b111_101_101_101_111,
        0b111_010_010_011_010,
        0b111_001_111_100_111,
        0b111_100_111_100_111,
        0b100_100_111_101_101,
        0b111_100_111_001_111,
    ];

    #[test]
    fn a_fleet_plate_two_characters_apart_disagrees_where_the_copy_agrees() {
        let own = plate(&GLYPHS, 4);
        let twin = plate(
            &[
                GLYPHS[0], GLYPHS[1], GLYPHS[4], GLYPHS[0], GLYPHS[4], GLYPHS[5],
            ],
            4,
        );
        let other = plate(
            &[
                GLYPHS[5], GLYPHS[3], GLYPHS[1], GLYPHS[0], GLYPHS[2], GLYPHS[4],
            ],
            4,
        );
        let d = Detail::of(&own, &own.full());
        assert_eq!(Detail::from_bytes(&d.to_bytes()), Some(d.clone()));
        assert_eq!(d.mirrored().mirrored(), d);
        let sib = Detail::of(&other, &other.full());
        let w = DetailWeights::new(&d, &[&sib]);
        let view = own.full();
        let frame = Frame::fit(&view);
        let none = Occlusion::default();
        let copy = windows(&own, &view, &frame, &d, &w, &none).unwrap();
        assert!(copy.0 < 0.05, "{copy:?}");
        let t = windows(&twin, &view, &frame, &d, &w, &none).unwrap();
        assert!(t.0 > 0.3, "{t:?}");
    }
}
