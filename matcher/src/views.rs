//! Where in a found image a stolen photo may sit.
//!
//! A leaker rarely reposts the file as it was: a border is added, the photo is shown inside a
//! web page and screenshotted, it is mirrored. A global hash of the whole found image then
//! describes the wrong picture. This module turns a decoded image into a small luminance
//! [`Plane`] (with an integral image, so any box mean costs four reads) and proposes
//! [`View`]s: rectangles of the plane that may be the stolen photo:
//!
//! - the whole image;
//! - the image with uniform borders trimmed (padding, letterboxing, the fill of a rotation);
//! - photos inside a page (a screenshot): the bounding boxes of the largest connected regions
//!   of cells unlike the page background.
//!
//! Mirrors and quarter turns are not views: they are handled by the hashes' dihedral variants
//! and by [`Plane::oriented`] for verification.

use crate::colour::Chroma;
use image::DynamicImage;

/// Longest side of the plane; enough for a 64×64 hash input and a 24×24 verification grid
/// even when the photo fills only a third of a screenshot.
pub const PLANE_SIDE: u32 = 384;

/// A rectangle in plane pixels, `x0 <= x1`, `y0 <= y1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Rect {
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    /// The sub-rectangle between fractions `t0..t1` of the height.
    pub fn rows(&self, t0: f32, t1: f32) -> Rect {
        Rect {
            y0: self.y0 + t0 * self.height(),
            y1: self.y0 + t1 * self.height(),
            ..*self
        }
    }
    /// Shrinks every side by `f` of the width/height.
    pub fn inset(&self, f: f32) -> Rect {
        let (dx, dy) = (self.width() * f, self.height() * f);
        Rect {
            x0: self.x0 + dx,
            y0: self.y0 + dy,
            x1: self.x1 - dx,
            y1: self.y1 - dy,
        }
    }
    fn near(&self, other: &Rect, tol: f32) -> bool {
        (self.x0 - other.x0).abs() <= tol
            && (self.y0 - other.y0).abs() <= tol
            && (self.x1 - other.x1).abs() <= tol
            && (self.y1 - other.y1).abs() <= tol
    }
}

/// One of the eight symmetries of the square: `transpose` first, then mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Orientation {
    pub transpose: bool,
    pub flip_x: bool,
    pub flip_y: bool,
}

impl Orientation {
    pub const IDENTITY: Orientation = Orientation {
        transpose: false,
        flip_x: false,
        flip_y: false,
    };

    /// All eight, identity first, then the horizontal mirror (the commonest edit).
    pub fn all() -> [Orientation; 8] {
        let o = |transpose, flip_x, flip_y| Orientation {
            transpose,
            flip_x,
            flip_y,
        };
        [
            o(false, false, false),
            o(false, true, false),
            o(false, false, true),
            o(false, true, true),
            o(true, false, false),
            o(true, true, false),
            o(true, false, true),
            o(true, true, true),
        ]
    }

    /// Index in [`Orientation::all`].
    pub fn index(&self) -> usize {
        usize::from(self.transpose) * 4 + usize::from(self.flip_y) * 2 + usize::from(self.flip_x)
    }
}

/// `img` as RGB, downscaled (area averaging) so its longest side is at most `max_side`.
fn reduced(img: &DynamicImage, max_side: u32) -> image::RgbImage {
    let (w, h) = (img.width().max(1), img.height().max(1));
    if w.max(h) > max_side {
        img.thumbnail(max_side, max_side).into_rgb8()
    } else {
        img.to_rgb8()
    }
}

/// A luminance image (0–255 as f32) with its integral image.
#[derive(Debug, Clone)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub px: Vec<f32>,
    /// (width+1)×(height+1) prefix sums.
    integral: Vec<f64>,
}

impl Plane {
    /// Downscales `img` (area averaging) so its longest side is at most `max_side`, and takes
    /// its luminance (BT.601, as PDQ does).
    pub fn from_image(img: &DynamicImage, max_side: u32) -> Plane {
        Plane::from_rgb(&reduced(img, max_side))
    }

    /// The luminance and (when the picture has colour) chroma planes of `img`, downscaled as
    /// [`Plane::from_image`] does.
    pub fn with_chroma(img: &DynamicImage, max_side: u32) -> (Plane, Option<Chroma>) {
        let rgb = reduced(img, max_side);
        (Plane::from_rgb(&rgb), Chroma::of(&rgb))
    }

    fn from_rgb(rgb: &image::RgbImage) -> Plane {
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let px = rgb
            .pixels()
            .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
            .collect();
        Plane::from_luma(w, h, px)
    }

    /// A plane from raw luminance, row-major.
    pub fn from_luma(width: usize, height: usize, px: Vec<f32>) -> Plane {
        let (width, height) = (width.max(1), height.max(1));
        let mut px = px;
        px.resize(width * height, 0.0);
        let stride = width + 1;
        let mut integral = vec![0f64; stride * (height + 1)];
        for y in 0..height {
            let mut row = 0f64;
            for x in 0..width {
                row += f64::from(px[y * width + x]);
                integral[(y + 1) * stride + x + 1] = integral[y * stride + x + 1] + row;
            }
        }
        Plane {
            width,
            height,
            px,
            integral,
        }
    }

    pub fn full(&self) -> Rect {
        Rect {
            x0: 0.0,
            y0: 0.0,
            x1: self.width as f32,
            y1: self.height as f32,
        }
    }

    /// Mean over the box `[x0,x1)×[y0,y1)`, clamped to the plane, at least one pixel.
    pub fn box_mean(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> f32 {
        let cl = |v: f32, hi: usize| (v.round().max(0.0) as usize).min(hi);
        let (mut ax, mut ay) = (cl(x0, self.width - 1), cl(y0, self.height - 1));
        let (mut bx, mut by) = (cl(x1, self.width), cl(y1, self.height));
        if bx <= ax {
            bx = (ax + 1).min(self.width);
            ax = bx - 1;
        }
        if by <= ay {
            by = (ay + 1).min(self.height);
            ay = by - 1;
        }
        let s = self.width + 1;
        let sum =
            self.integral[by * s + bx] - self.integral[ay * s + bx] - self.integral[by * s + ax]
                + self.integral[ay * s + ax];
        (sum / ((bx - ax) * (by - ay)) as f64) as f32
    }

    /// The plane's content inside `r`, resampled to `w`×`h` by box means.
    pub fn resample(&self, r: &Rect, w: usize, h: usize) -> Vec<f32> {
        let (cw, ch) = (r.width() / w as f32, r.height() / h as f32);
        let mut out = Vec::with_capacity(w * h);
        for j in 0..h {
            let y0 = r.y0 + j as f32 * ch;
            for i in 0..w {
                let x0 = r.x0 + i as f32 * cw;
                out.push(self.box_mean(x0, y0, x0 + cw, y0 + ch));
            }
        }
        out
    }

    /// The crop `r` as its own plane.
    pub fn crop(&self, r: &Rect) -> Plane {
        let x0 = (r.x0.round().max(0.0) as usize).min(self.width - 1);
        let y0 = (r.y0.round().max(0.0) as usize).min(self.height - 1);
        let x1 = (r.x1.round().max(0.0) as usize).clamp(x0 + 1, self.width);
        let y1 = (r.y1.round().max(0.0) as usize).clamp(y0 + 1, self.height);
        let mut px = Vec::with_capacity((x1 - x0) * (y1 - y0));
        for y in y0..y1 {
            px.extend_from_slice(&self.px[y * self.width + x0..y * self.width + x1]);
        }
        Plane::from_luma(x1 - x0, y1 - y0, px)
    }

    /// The plane transposed and/or mirrored.
    pub fn oriented(&self, o: Orientation) -> Plane {
        if o == Orientation::IDENTITY {
            return self.clone();
        }
        let (w, h) = if o.transpose {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        };
        let mut px = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let (mut sx, mut sy) = (x, y);
                if o.flip_x {
                    sx = w - 1 - sx;
                }
                if o.flip_y {
                    sy = h - 1 - sy;
                }
                if o.transpose {
                    std::mem::swap(&mut sx, &mut sy);
                }
                px.push(self.px[sy * self.width + sx]);
            }
        }
        Plane::from_luma(w, h, px)
    }
}

/// Why a view was proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    Whole,
    Trimmed,
    Embedded,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub kind: ViewKind,
    pub rect: Rect,
}

/// At most this many embedded-photo views per image.
const MAX_EMBEDDED: usize = 2;

/// The views of `plane` worth matching, the whole image first, without near-duplicates.
pub fn views(plane: &Plane) -> Vec<View> {
    let full = plane.full();
    let mut out = vec![View {
        kind: ViewKind::Whole,
        rect: full,
    }];
    let tol = 0.02 * plane.width.max(plane.height) as f32;
    let mut push = |kind, rect: Rect| {
        if rect.width() >= 24.0
            && rect.height() >= 24.0
            && !out.iter().any(|v: &View| v.rect.near(&rect, tol))
        {
            out.push(View { kind, rect });
        }
    };
    let trimmed = trim(plane);
    push(ViewKind::Trimmed, trimmed);
    for r in embedded(plane).into_iter().take(MAX_EMBEDDED) {
        push(ViewKind::Embedded, r);
    }
    out
}

/// The plane without uniform borders: rows/columns at the edge whose pixels all stay near the
/// border colour. At most 45% of a side is cut.
pub fn trim(plane: &Plane) -> Rect {
    let (w, h) = (plane.width, plane.height);
    let at = |x: usize, y: usize| plane.px[y * w + x];
    // Border colour: median of the outermost ring.
    let mut ring: Vec<f32> = (0..w)
        .flat_map(|x| [at(x, 0), at(x, h - 1)])
        .chain((0..h).flat_map(|y| [at(0, y), at(w - 1, y)]))
        .collect();
    ring.sort_by(f32::total_cmp);
    let bg = ring[ring.len() / 2];
    let tol = 10.0;
    // A line is background when at most 2% of its pixels stray from the colour.
    let row_bg = |y: usize, x0: usize, x1: usize| {
        let off = (x0..x1).filter(|&x| (at(x, y) - bg).abs() > tol).count();
        off * 50 <= (x1 - x0)
    };
    let col_bg = |x: usize, y0: usize, y1: usize| {
        let off = (y0..y1).filter(|&y| (at(x, y) - bg).abs() > tol).count();
        off * 50 <= (y1 - y0)
    };
    let (max_x, max_y) = (w * 45 / 100, h * 45 / 100);
    let (mut t, mut b, mut l, mut r) = (0, h, 0, w);
    while t < max_y && row_bg(t, 0, w) {
        t += 1;
    }
    while h - b < max_y && b > t + 1 && row_bg(b - 1, 0, w) {
        b -= 1;
    }
    while l < max_x && col_bg(l, t, b) {
        l += 1;
    }
    while w - r < max_x && r > l + 1 && col_bg(r - 1, t, b) {
        r -= 1;
    }
    Rect {
        x0: l as f32,
        y0: t as f32,
        x1: r as f32,
        y1: b as f32,
    }
}

/// Bands at the top and bottom of `r` that look like an overlay (a reposter's text banner):
/// rows dominated by one exact colour, contiguous from the edge, 3–25% of the height. Returned
/// as plane y ranges (empty when none).
pub fn overlay_bands(plane: &Plane, r: &Rect) -> [(f32, f32); 2] {
    let (x0, x1) = (
        (r.x0.max(0.0) as usize).min(plane.width - 1),
        (r.x1.max(0.0) as usize).min(plane.width),
    );
    let (y0, y1) = (
        (r.y0.max(0.0) as usize).min(plane.height - 1),
        (r.y1.max(0.0) as usize).min(plane.height),
    );
    if x1 <= x0 + 8 || y1 <= y0 + 8 {
        return [(0.0, 0.0); 2];
    }
    let flat_row = |y: usize| {
        let row = &plane.px[y * plane.width + x0..y * plane.width + x1];
        let mut hist = [0usize; 128];
        for &p in row {
            hist[(p.clamp(0.0, 255.0) as usize) / 2] += 1;
        }
        // Most pixels within ±2 of the commonest value: a fill, not texture or noise.
        let best = (0..128)
            .map(|i: usize| {
                hist[i.saturating_sub(1)..(i + 2).min(128)]
                    .iter()
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0);
        best * 100 >= row.len() * 45
    };
    let h = y1 - y0;
    let (min, max) = (h * 3 / 100, h / 4);
    let mut top = y0;
    while top < y0 + max && flat_row(top) {
        top += 1;
    }
    let mut bottom = y1;
    while bottom > y1 - max && flat_row(bottom - 1) {
        bottom -= 1;
    }
    let band = |a: usize, b: usize| {
        if b - a >= min.max(2) {
            (a as f32, b as f32)
        } else {
            (0.0, 0.0)
        }
    };
    [band(y0, top), band(bottom, y1)]
}

/// Luminance difference from the page background that counts as content.
const OFF_BG: f32 = 8.0;

/// Side of the cells in which [`embedded`] looks for photographic content.
const CELL: usize = 4;

/// Bounding boxes of the largest connected regions of content cells — cells mostly unlike the
/// page background — most cells first. Text on a page is mostly background between the glyphs,
/// so it rarely forms a region as large and as full as a photo; what it does form is rejected
/// later by verification.
pub fn embedded(plane: &Plane) -> Vec<Rect> {
    let (w, h) = (plane.width, plane.height);
    let (cw, ch) = (w / CELL, h / CELL);
    if cw < 8 || ch < 8 {
        return Vec::new();
    }
    // Page background: the commonest luminance (bins of 4).
    let mut hist = [0usize; 64];
    for &p in &plane.px {
        hist[(p.clamp(0.0, 255.0) as usize) / 4] += 1;
    }
    let mode = hist
        .iter()
        .enumerate()
        .max_by_key(|(_, &c)| c)
        .map_or(0, |(i, _)| i);
    let bg = mode as f32 * 4.0 + 2.0;
    let mut solid = vec![false; cw * ch];
    for cy in 0..ch {
        for cx in 0..cw {
            let mut off = 0usize;
            for y in cy * CELL..(cy + 1) * CELL {
                for x in cx * CELL..(cx + 1) * CELL {
                    let p = plane.px[y * w + x];
                    if (p - bg).abs() > OFF_BG {
                        off += 1;
                    }
                }
            }
            solid[cy * cw + cx] = off * 10 >= CELL * CELL * 6;
        }
    }
    // Components of content cells, 8-connected after bridging one-cell gaps: a photo is one
    // component however many flat or page-coloured patches it has inside; its bounding box is
    // the photo.
    let mut grown = solid.clone();
    for cy in 0..ch {
        for cx in 0..cw {
            if solid[cy * cw + cx] {
                continue;
            }
            let l = cx > 0 && solid[cy * cw + cx - 1];
            let r = cx + 1 < cw && solid[cy * cw + cx + 1];
            let u = cy > 0 && solid[(cy - 1) * cw + cx];
            let d = cy + 1 < ch && solid[(cy + 1) * cw + cx];
            grown[cy * cw + cx] = (l && r) || (u && d);
        }
    }
    let mut label = vec![u32::MAX; cw * ch];
    let mut boxes: Vec<(usize, (usize, usize, usize, usize))> = Vec::new();
    let mut stack = Vec::new();
    for start in 0..cw * ch {
        if !grown[start] || label[start] != u32::MAX {
            continue;
        }
        let id = boxes.len() as u32;
        let (mut x0, mut y0, mut x1, mut y1, mut n) = (cw, ch, 0, 0, 0usize);
        label[start] = id;
        stack.push(start);
        while let Some(c) = stack.pop() {
            let (x, y) = (c % cw, c / cw);
            n += 1;
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            for dy in -1i32..=1 {
                for dx in -1i32..=1 {
                    let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                    if nx < 0 || ny < 0 || nx >= cw as i32 || ny >= ch as i32 {
                        continue;
                    }
                    let nc = ny as usize * cw + nx as usize;
                    if grown[nc] && label[nc] == u32::MAX {
                        label[nc] = id;
                        stack.push(nc);
                    }
                }
            }
        }
        boxes.push((n, (x0, y0, x1, y1)));
    }
    // Large, mostly filled components, most cells first.
    boxes.retain(|&(n, (x0, y0, x1, y1))| {
        let area = (x1 - x0) * (y1 - y0);
        area * 25 >= cw * ch && n * 10 >= area * 6
    });
    boxes.sort_by_key(|b| std::cmp::Reverse(b.0));
    // A caption or a paragraph touching the photo joins its region; shave off edge rows and
    // columns that are mostly page (text lines are).
    let frac = |x0: usize, y0: usize, x1: usize, y1: usize| {
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                n += usize::from(solid[y * cw + x]);
            }
        }
        n as f32 / ((x1 - x0) * (y1 - y0)).max(1) as f32
    };
    let shave = |(mut x0, mut y0, mut x1, mut y1): (usize, usize, usize, usize)| loop {
        let before = (x0, y0, x1, y1);
        if y1 - y0 > 2 && frac(x0, y0, x1, y0 + 1) < 0.7 {
            y0 += 1;
        }
        if y1 - y0 > 2 && frac(x0, y1 - 1, x1, y1) < 0.7 {
            y1 -= 1;
        }
        if x1 - x0 > 2 && frac(x0, y0, x0 + 1, y1) < 0.7 {
            x0 += 1;
        }
        if x1 - x0 > 2 && frac(x1 - 1, y0, x1, y1) < 0.7 {
            x1 -= 1;
        }
        if before == (x0, y0, x1, y1) {
            return (x0, y0, x1, y1);
        }
    };
    let found: Vec<(usize, usize, usize, usize)> = boxes
        .into_iter()
        .take(MAX_EMBEDDED)
        .map(|(_, b)| shave(b))
        .collect();
    found
        .into_iter()
        .map(|(x0, y0, x1, y1)| {
            refine(
                plane,
                Rect {
                    x0: (x0 * CELL) as f32,
                    y0: (y0 * CELL) as f32,
                    x1: (x1 * CELL) as f32,
                    y1: (y1 * CELL) as f32,
                },
                bg,
            )
        })
        .collect()
}

/// Grows a cell-aligned rectangle pixel by pixel while the next line is still mostly
/// off-background (cells only capture whole 4-pixel steps).
fn refine(plane: &Plane, r: Rect, bg: f32) -> Rect {
    let w = plane.width;
    let off = |x: usize, y: usize| (plane.px[y * w + x] - bg).abs() > OFF_BG;
    let (mut x0, mut y0, mut x1, mut y1) =
        (r.x0 as usize, r.y0 as usize, r.x1 as usize, r.y1 as usize);
    let line_ok = |n: usize, len: usize| n * 10 >= len * 8;
    for _ in 0..CELL {
        if y0 > 0 && line_ok((x0..x1).filter(|&x| off(x, y0 - 1)).count(), x1 - x0) {
            y0 -= 1;
        }
        if y1 < plane.height && line_ok((x0..x1).filter(|&x| off(x, y1)).count(), x1 - x0) {
            y1 += 1;
        }
        if x0 > 0 && line_ok((y0..y1).filter(|&y| off(x0 - 1, y)).count(), y1 - y0) {
            x0 -= 1;
        }
        if x1 < plane.width && line_ok((y0..y1).filter(|&y| off(x1, y)).count(), y1 - y0) {
            x1 += 1;
        }
    }
    Rect {
        x0: x0 as f32,
        y0: y0 as f32,
        x1: x1 as f32,
        y1: y1 as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(w: usize, h: usize, seed: u32) -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as u32, (i / w) as u32);
                (40 + (x.wrapping_mul(seed) ^ y.wrapping_mul(31)) % 150) as f32
            })
            .collect()
    }

    #[test]
    fn box_mean_matches_direct_sum() {
        let p = Plane::from_luma(7, 5, (0..35).map(|v| v as f32).collect());
        let direct: f32 = [8.0, 9.0, 10.0, 15.0, 16.0, 17.0].iter().sum::<f32>() / 6.0;
        assert!((p.box_mean(1.0, 1.0, 4.0, 3.0) - direct).abs() < 1e-4);
        // Degenerate and out-of-range boxes clamp to at least one pixel.
        assert_eq!(p.box_mean(100.0, 100.0, 100.0, 100.0), 34.0);
    }

    #[test]
    fn trim_removes_padding_only() {
        let (w, h) = (120, 80);
        let inner = textured(100, 60, 7);
        let mut px = vec![255.0; w * h];
        for y in 0..60 {
            for x in 0..100 {
                px[(y + 10) * w + x + 10] = inner[y * 100 + x];
            }
        }
        let r = trim(&Plane::from_luma(w, h, px));
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (10.0, 10.0, 110.0, 70.0));
        let plain = Plane::from_luma(100, 60, inner);
        assert_eq!(trim(&plain), plain.full());
    }

    #[test]
    fn embedded_finds_a_photo_in_a_page() {
        // A white page with a flat header bar, text-like speckle and a photo.
        let (w, h) = (300, 240);
        let mut px = vec![250.0; w * h];
        for y in 0..20 {
            for x in 0..w {
                px[y * w + x] = 60.0;
            }
        }
        for y in (40..220).step_by(9) {
            for x in (10..90).step_by(3) {
                px[y * w + x] = 20.0;
            }
        }
        let photo = textured(160, 120, 13);
        for y in 0..120 {
            for x in 0..160 {
                px[(y + 60) * w + x + 120] = photo[y * 160 + x];
            }
        }
        let found = embedded(&Plane::from_luma(w, h, px));
        let r = found.first().expect("photo found");
        assert!(
            (r.x0 - 120.0).abs() <= 1.0
                && (r.y0 - 60.0).abs() <= 1.0
                && (r.x1 - 280.0).abs() <= 1.0
                && (r.y1 - 180.0).abs() <= 1.0,
            "{r:?}"
        );
    }

    #[test]
    fn orientations_are_the_eight_symmetries() {
        let p = Plane::from_luma(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mut seen = std::collections::HashSet::new();
        for o in Orientation::all() {
            let q = p.oriented(o);
            assert_eq!(Orientation::all()[o.index()], o);
            seen.insert(q.px.iter().map(|v| *v as u8).collect::<Vec<_>>());
        }
        assert_eq!(seen.len(), 8);
        let t = p.oriented(Orientation {
            transpose: true,
            flip_x: false,
            flip_y: false,
        });
        assert_eq!((t.width, t.height), (2, 3));
        assert_eq!(t.px, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
