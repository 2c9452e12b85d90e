//! Colour evidence: two cars of one model at one camera may have the same luminance and
//! differ only in paint. Every signature in [`crate::grid`] is luminance, so a red car and a
//! green one of equal brightness look the same to it; the chroma of a coarse grid tells them
//! apart.
//!
//! A stolen photo keeps a [`ColourGrid`]: the mean chroma (Cb, Cr) of each of 12×12 cells,
//! quantised to a signed byte (288 bytes; like every other print, nothing to rebuild the
//! photo from). A found image is compared with it only when both have colour: a grey copy
//! (or one whose colour is a function of its brightness, like a sepia filter) says nothing
//! about paint and is judged on luminance alone. A global change of colour (white balance,
//! saturation, a darker or brighter copy) scales every cell alike and is divided out by a
//! least-squares gain; what is left is a local change of colour, which is what a repaint is.

use crate::grid::Frame;
use crate::views::{Orientation, Plane};

/// Cells per side of the colour grid.
pub const CELLS: usize = 12;
/// Serialized size of a [`ColourGrid`].
pub const BYTES: usize = CELLS * CELLS * 2;
/// Chroma units per quantisation step (chroma spans about ±128).
const QUANT: f32 = 1.0;
/// A channel at or above this is taken as clipped.
const CLIP: u8 = 250;
/// Share of clipped pixels above which a found cell's colour is not compared.
const MAX_CLIPPED: f32 = 0.2;
/// A picture whose cells' chroma stays within this of grey has no colour to compare.
const GREY: f32 = 6.0;

/// Chroma planes of an image, at the resolution of its luminance plane.
#[derive(Debug, Clone)]
pub struct Chroma {
    pub cb: Plane,
    pub cr: Plane,
    /// 1 where a channel is clipped (at or near 255): a brightened copy loses hue there.
    clipped: Plane,
}

impl Chroma {
    /// Chroma (BT.601 Cb, Cr, centred on 0) of an RGB image already reduced to the
    /// luminance plane's size; `None` when the picture is grey.
    pub fn of(rgb: &image::RgbImage) -> Option<Chroma> {
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let mut cb = Vec::with_capacity(w * h);
        let mut cr = Vec::with_capacity(w * h);
        let mut clipped = Vec::with_capacity(w * h);
        let mut far = 0usize;
        for p in rgb.pixels() {
            clipped.push(if p.0.iter().any(|&c| c >= CLIP) {
                1.0
            } else {
                0.0
            });
            let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            let (u, v) = (0.564 * (b - y), 0.713 * (r - y));
            if u.abs().max(v.abs()) > GREY {
                far += 1;
            }
            cb.push(u);
            cr.push(v);
        }
        // A few coloured pixels (a logo, a caption) do not make a grey copy colourful.
        if far * 50 < w * h {
            return None;
        }
        Some(Chroma {
            cb: Plane::from_luma(w, h, cb),
            cr: Plane::from_luma(w, h, cr),
            clipped: Plane::from_luma(w, h, clipped),
        })
    }

    pub fn oriented(&self, o: Orientation) -> Chroma {
        Chroma {
            cb: self.cb.oriented(o),
            cr: self.cr.oriented(o),
            clipped: self.clipped.oriented(o),
        }
    }

    /// Mean chroma of every cell of `frame`. Cells outside the picture, touching a row range
    /// in `hidden`, or (with `skip_clipped`) much clipped are `None`.
    fn cells(
        &self,
        frame: &Frame,
        hidden: &[(f32, f32)],
        skip_clipped: bool,
    ) -> Vec<Option<(f32, f32)>> {
        let (pw, ph) = (self.cb.width as f32, self.cb.height as f32);
        let (centres, cw, ch) = frame.cell_centres(CELLS);
        centres
            .map(|(x, y)| {
                let covered = hidden
                    .iter()
                    .any(|&(a, b)| b > a && y + ch / 2.0 > a && y - ch / 2.0 < b);
                if x < 0.0 || y < 0.0 || x >= pw || y >= ph || covered {
                    return None;
                }
                let (x0, y0, x1, y1) = (x - cw / 2.0, y - ch / 2.0, x + cw / 2.0, y + ch / 2.0);
                if skip_clipped && self.clipped.box_mean(x0, y0, x1, y1) > MAX_CLIPPED {
                    return None;
                }
                Some((
                    self.cb.box_mean(x0, y0, x1, y1),
                    self.cr.box_mean(x0, y0, x1, y1),
                ))
            })
            .collect()
    }
}

/// The colour print of a stolen photo (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColourGrid {
    /// Cb then Cr per cell, row-major.
    cells: Vec<[i8; 2]>,
}

impl ColourGrid {
    /// The grid of the whole picture, or `None` when it is grey.
    pub fn of(chroma: Option<&Chroma>) -> Option<ColourGrid> {
        let c = chroma?;
        let frame = Frame::fit(&c.cb.full());
        let q = |v: f32| (v / QUANT).round().clamp(-127.0, 127.0) as i8;
        let cells = c
            .cells(&frame, &[], false)
            .into_iter()
            .map(|m| m.map_or([0, 0], |(u, v)| [q(u), q(v)]))
            .collect();
        Some(ColourGrid { cells })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.cells
            .iter()
            .flat_map(|c| [c[0] as u8, c[1] as u8])
            .collect()
    }

    pub fn from_bytes(b: &[u8]) -> Option<ColourGrid> {
        if b.len() != BYTES {
            return None;
        }
        Some(ColourGrid {
            cells: b
                .chunks_exact(2)
                .map(|c| [c[0] as i8, c[1] as i8])
                .collect(),
        })
    }

    /// The grid of the mirror image (left–right).
    pub fn mirrored(&self) -> ColourGrid {
        let mut cells = self.cells.clone();
        for row in cells.chunks_exact_mut(CELLS) {
            row.reverse();
        }
        ColourGrid { cells }
    }

    /// How far the found picture's colour under `frame` is from this grid, after the best
    /// global gain: the mean chroma distance of the worst 3×3 block of cells away from the
    /// top and bottom edges (chroma units; 0 = same paint). `None` when too little of the
    /// photo is in view.
    /// Rows in `hidden` (a banner over the copy) are left out.
    pub fn distance(&self, found: &Chroma, frame: &Frame, hidden: &[(f32, f32)]) -> Option<f32> {
        let seen = found.cells(frame, hidden, true);
        let own: Vec<(f32, f32)> = self
            .cells
            .iter()
            .map(|c| (f32::from(c[0]) * QUANT, f32::from(c[1]) * QUANT))
            .collect();
        let pairs: Vec<(usize, (f32, f32))> = seen
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .collect();
        if pairs.len() < CELLS * CELLS / 2 {
            return None;
        }
        // Least-squares gain g in found ≈ g·own, kept to a plausible range.
        let (mut fo, mut oo) = (0f32, 0f32);
        for &(i, (u, v)) in &pairs {
            fo += u * own[i].0 + v * own[i].1;
            oo += own[i].0 * own[i].0 + own[i].1 * own[i].1;
        }
        let g = if oo > 0.0 {
            (fo / oo).clamp(0.5, 2.0)
        } else {
            1.0
        };
        let mut err = vec![None; CELLS * CELLS];
        for &(i, (u, v)) in &pairs {
            // An achromatic cell (a banner, a caption bar, a faded corner) says nothing of
            // paint: it is not compared.
            if u.abs().max(v.abs()) < GREY {
                continue;
            }
            let (ou, ov) = (g * own[i].0, g * own[i].1);
            let (du, dv) = (u - ou, v - ov);
            // A change along the photo's own chroma (more or less saturated, as clipping
            // in a brightened copy does) counts half; a change of hue counts in full.
            let norm = (ou * ou + ov * ov).sqrt();
            let e = if norm > GREY {
                let along = (du * ou + dv * ov) / norm;
                let across = (du * ov - dv * ou) / norm;
                (across * across + 0.25 * along * along).sqrt()
            } else {
                (du * du + dv * dv).sqrt()
            };
            err[i] = Some(e);
        }
        // Blocks touching the top or bottom row of cells are not judged: that is where
        // banners and captions go, and a repaint shows in the middle anyway.
        let mut worst = 0f32;
        for by in 1..CELLS - 3 {
            for bx in 0..CELLS - 2 {
                let (mut sum, mut n) = (0f32, 0);
                for y in by..by + 3 {
                    for x in bx..bx + 3 {
                        if let Some(e) = err[y * CELLS + x] {
                            sum += e;
                            n += 1;
                        }
                    }
                }
                if n >= 6 {
                    worst = worst.max(sum / n as f32);
                }
            }
        }
        Some(worst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn car(paint: [u8; 3]) -> RgbImage {
        RgbImage::from_fn(120, 90, |x, y| {
            if (40..90).contains(&x) && (30..70).contains(&y) {
                Rgb(paint)
            } else {
                Rgb([90, 140, 200])
            }
        })
    }

    #[test]
    fn a_repaint_is_far_and_a_darker_copy_is_near() {
        let red = car([180, 40, 40]);
        let grid = ColourGrid::of(Chroma::of(&red).as_ref()).unwrap();
        assert_eq!(ColourGrid::from_bytes(&grid.to_bytes()), Some(grid.clone()));
        let frame = Frame::fit(&Plane::from_luma(120, 90, vec![0.0; 120 * 90]).full());
        let same = grid
            .distance(&Chroma::of(&red).unwrap(), &frame, &[])
            .unwrap();
        assert!(same < 2.0, "{same}");
        let dark = RgbImage::from_fn(120, 90, |x, y| {
            let p = red.get_pixel(x, y);
            Rgb(p.0.map(|c| (u16::from(c) * 7 / 10) as u8))
        });
        let d = grid
            .distance(&Chroma::of(&dark).unwrap(), &frame, &[])
            .unwrap();
        assert!(d < 6.0, "darker copy: {d}");
        // Same brightness, other hue.
        let green = car([40, 105, 40]);
        let g = grid
            .distance(&Chroma::of(&green).unwrap(), &frame, &[])
            .unwrap();
        assert!(g > 30.0, "repaint: {g}");
    }

    #[test]
    fn a_grey_picture_has_no_colour() {
        let grey = RgbImage::from_fn(64, 64, |x, _| Rgb([x as u8 * 3; 3]));
        assert!(Chroma::of(&grey).is_none());
    }
}
