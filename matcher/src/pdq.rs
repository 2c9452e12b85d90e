//! PDQ, the 256-bit perceptual image hash with a quality score that other abuse-matching
//! systems share (ThreatExchange exchanges PDQ hashes as 64 hex characters).
//!
//! leakwatch computes PDQ so that its fingerprints can be compared with hashes produced by
//! other PDQ implementations, and so that featureless images (flat colour, tiny icons) can be
//! recognised by their quality score and left unhashed instead of matching everything.
//!
//! The algorithm, as published with the reference implementations:
//!
//! 1. RGB → luminance `Y = 0.299 R + 0.587 G + 0.114 B` in `f32` (grey images are used as is);
//! 2. a Jarosz filter: two passes of a box filter along rows then along columns, the window
//!    being `⌈dimension / 128⌉` (half the decimation step), then decimation to 64×64 by taking
//!    the sample at `⌊(i + ½) · dimension / 64⌋`;
//! 3. quality: the sum of the quantised absolute differences between neighbouring cells of the
//!    64×64, divided by 90 and capped at 100;
//! 4. the 2-D DCT-II of the 64×64 restricted to frequencies 1..=16 along each axis (the DC
//!    term is left out), a 16×16 matrix;
//! 5. bit `16 i + j` is set when coefficient `(i, j)` (row frequency `i`, column frequency
//!    `j`) is strictly greater than the median of the 256 coefficients (the 128th smallest).
//!
//! The arithmetic follows the reference step by step (same `f32` operations in the same
//! order), so the hash of the same pixels agrees with the reference implementation bit for
//! bit in all but knife-edge cases; hashes of the same JPEG differ by the few bits that
//! different JPEG decoders disagree on.
//!
//! The canonical text form is the one every PDQ tool prints: the 256 bits as one big-endian
//! hexadecimal number in which bit `k` has the value `2^k`. [`Hash256`] holds exactly those
//! 32 bytes (`hex::encode` of it is the canonical hex), so [`hamming`] and [`parse_hash`]
//! apply unchanged.
//!
//! [`hamming`]: crate::hashing::hamming
//! [`parse_hash`]: crate::hashing::parse_hash

use std::cell::RefCell;
use std::sync::OnceLock;

use image::DynamicImage;

use crate::hashing::{Hash256, ImageError};

/// Name of the algorithm, as stored with fingerprints and reported in alerts.
pub const PDQ: &str = "pdq";

/// Images with a side below this are not hashed by [`pdq_gated`] with the default gate.
///
/// The hash keeps DCT frequencies 1..=16 of the 64×64 downsample, up to 8 cycles across the
/// image: representing them takes at least 16 source pixels per side (Nyquist), and below
/// about twice that the content is dominated by the JPEG 8×8 block and chroma grid. Images
/// this small on a leak site are icons, emoji, spacers and tracking pixels, never a copy of a
/// camera photo worth an alert.
pub const DEFAULT_MIN_SIDE: u32 = 32;

/// Quality below which [`pdq_gated`] refuses to hash with the default gate: the threshold the
/// PDQ authors recommend for discarding hashes of near-featureless images.
pub const DEFAULT_MIN_QUALITY: u8 = 50;

/// Images smaller than this on either side get an all-zero hash and quality 0, as in the
/// reference implementation.
const MIN_HASHABLE_DIM: usize = 5;

/// A PDQ hash with its quality (0 = featureless, 100 = plenty of detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdq {
    pub hash: Hash256,
    pub quality: u8,
}

impl Pdq {
    /// The canonical 64-character hex form.
    pub fn hex(&self) -> String {
        pdq_hex(&self.hash)
    }
}

/// The eight images obtained by rotating and mirroring an image (the dihedral group of the
/// square), in the order of [`PdqDihedral::hashes`], which is the order the reference tools
/// print them in. In terms of `image::imageops`:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dihedral {
    /// The image as it is.
    Original = 0,
    /// Rotated 90° counter-clockwise (`imageops::rotate270`).
    Rotate90 = 1,
    /// Rotated 180° (`imageops::rotate180`).
    Rotate180 = 2,
    /// Rotated 270° counter-clockwise, i.e. 90° clockwise (`imageops::rotate90`).
    Rotate270 = 3,
    /// Mirrored top to bottom, about the horizontal axis (`imageops::flip_vertical`).
    FlipX = 4,
    /// Mirrored left to right, about the vertical axis (`imageops::flip_horizontal`).
    FlipY = 5,
    /// Transposed, mirrored about the main diagonal: pixel `(x, y)` moves to `(y, x)`.
    FlipPlus1 = 6,
    /// Mirrored about the anti-diagonal: pixel `(x, y)` of a `w×h` image moves to
    /// `(h−1−y, w−1−x)`.
    FlipMinus1 = 7,
}

impl Dihedral {
    /// All eight, in [`PdqDihedral::hashes`] order.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// Stable lower-case name, e.g. for logs.
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "original",
            Dihedral::Rotate90 => "rotate90",
            Dihedral::Rotate180 => "rotate180",
            Dihedral::Rotate270 => "rotate270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flipplus1",
            Dihedral::FlipMinus1 => "flipminus1",
        }
    }
}

/// The PDQ hashes of the eight rotations and mirror images of one image, and its quality
/// (the same for all eight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdqDihedral {
    /// Indexed by `Dihedral as usize`; see [`Dihedral`] for the order.
    pub hashes: [Hash256; 8],
    pub quality: u8,
}

impl PdqDihedral {
    pub fn get(&self, d: Dihedral) -> Hash256 {
        self.hashes[d as usize]
    }
}

/// When [`pdq_gated`] refuses to hash an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityGate {
    /// Refuse images whose width or height is below this ([`ImageError::TooSmall`]).
    pub min_side: u32,
    /// Refuse images whose PDQ quality is below this ([`ImageError::LowQuality`]).
    pub min_quality: u8,
}

impl Default for QualityGate {
    fn default() -> Self {
        QualityGate {
            min_side: DEFAULT_MIN_SIDE,
            min_quality: DEFAULT_MIN_QUALITY,
        }
    }
}

/// The canonical 64-character hex form of a PDQ hash (what `hex::encode` gives, named for
/// clarity). Parse it back with [`crate::hashing::parse_hash`].
pub fn pdq_hex(hash: &Hash256) -> String {
    hex::encode(hash)
}

/// The PDQ hash and quality of a decoded image.
pub fn pdq(img: &DynamicImage) -> Pdq {
    match dct16(img) {
        Some((coeffs, quality)) => Pdq {
            hash: bits(&coeffs),
            quality,
        },
        None => Pdq {
            hash: [0; 32],
            quality: 0,
        },
    }
}

/// The PDQ hashes of all eight rotations and mirror images of `img`, from one downsample and
/// one DCT: mirroring an axis negates the odd-frequency coefficients along it, a quarter turn
/// transposes the coefficient matrix. Each equals [`pdq`] of the transformed image (up to
/// `f32` rounding in coefficients that sit on the median, and, when a side is a multiple of
/// 128 or the filter window is even, the half-pixel asymmetry of the reference downsampler).
pub fn pdq_dihedral(img: &DynamicImage) -> PdqDihedral {
    let Some((c, quality)) = dct16(img) else {
        return PdqDihedral {
            hashes: [[0; 32]; 8],
            quality: 0,
        };
    };
    let mut hashes = [[0u8; 32]; 8];
    let mut t = [[0f32; 16]; 16];
    for d in Dihedral::ALL {
        for (i, row) in c.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                // Frequency of row index i is i + 1: even index = odd frequency, whose basis
                // function is antisymmetric and changes sign under a mirror of that axis.
                let odd_i = i % 2 == 0;
                let odd_j = j % 2 == 0;
                let (neg, transpose) = match d {
                    Dihedral::Original => (false, false),
                    Dihedral::FlipX => (odd_i, false),
                    Dihedral::FlipY => (odd_j, false),
                    Dihedral::Rotate180 => (odd_i ^ odd_j, false),
                    Dihedral::FlipPlus1 => (false, true),
                    // Transpose, then mirror top to bottom: the source column axis becomes
                    // the row axis, so the sign follows the column frequency.
                    Dihedral::Rotate90 => (odd_j, true),
                    Dihedral::Rotate270 => (odd_i, true),
                    Dihedral::FlipMinus1 => (odd_i ^ odd_j, true),
                };
                let v = if neg { -v } else { v };
                if transpose {
                    t[j][i] = v;
                } else {
                    t[i][j] = v;
                }
            }
        }
        hashes[d as usize] = bits(&t);
    }
    PdqDihedral { hashes, quality }
}

/// [`pdq`] behind a gate: images too small to carry a meaningful hash, or too flat
/// (low quality), are refused with an [`ImageError`] whose kind (`image.too-small`,
/// `image.low-quality`) says why, so they can be counted rather than hashed.
pub fn pdq_gated(img: &DynamicImage, gate: QualityGate) -> Result<Pdq, ImageError> {
    let (width, height) = (img.width(), img.height());
    if width < gate.min_side || height < gate.min_side {
        return Err(ImageError::TooSmall {
            width,
            height,
            min_side: gate.min_side,
        });
    }
    let p = pdq(img);
    if p.quality < gate.min_quality {
        return Err(ImageError::LowQuality {
            quality: p.quality,
            min_quality: gate.min_quality,
        });
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------

type Mat16 = [[f32; 16]; 16];

/// Images up to this many pixels keep their working buffers between calls on a thread.
const KEEP_BUFFER_PIXELS: usize = 1 << 20;

thread_local! {
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The 16×16 DCT coefficients and the quality, or `None` for an image too small to hash.
fn dct16(img: &DynamicImage) -> Option<(Mat16, u8)> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < MIN_HASHABLE_DIM || h < MIN_HASHABLE_DIM {
        return None;
    }
    let d64 = BUFFERS.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (a, b) = &mut *guard;
        let n = w * h;
        a.clear();
        a.resize(n, 0.0);
        b.clear();
        b.resize(n, 0.0);
        fill_luma(img, a);
        let out = downsample64(a, b, w, h);
        if n > KEEP_BUFFER_PIXELS {
            *a = Vec::new();
            *b = Vec::new();
        }
        out
    });
    let quality = quality(&d64);
    Some((dct64_to_16(&d64), quality))
}

const LUMA_R: f32 = 0.299;
const LUMA_G: f32 = 0.587;
const LUMA_B: f32 = 0.114;

fn luma(r: u8, g: u8, b: u8) -> f32 {
    LUMA_R * r as f32 + LUMA_G * g as f32 + LUMA_B * b as f32
}

/// Luminance of every pixel, row-major. Alpha is ignored, as the reference tools do.
fn fill_luma(img: &DynamicImage, out: &mut [f32]) {
    match img {
        DynamicImage::ImageRgb8(rgb) => {
            for (o, p) in out.iter_mut().zip(rgb.as_raw().chunks_exact(3)) {
                *o = luma(p[0], p[1], p[2]);
            }
        }
        DynamicImage::ImageRgba8(rgba) => {
            for (o, p) in out.iter_mut().zip(rgba.as_raw().chunks_exact(4)) {
                *o = luma(p[0], p[1], p[2]);
            }
        }
        DynamicImage::ImageLuma8(grey) => {
            for (o, &p) in out.iter_mut().zip(grey.as_raw()) {
                *o = p as f32;
            }
        }
        DynamicImage::ImageLumaA8(grey) => {
            for (o, p) in out.iter_mut().zip(grey.as_raw().chunks_exact(2)) {
                *o = p[0] as f32;
            }
        }
        other => {
            // 16-bit and float images: reduce to 8-bit RGB first, as a decoder would.
            let rgb = other.to_rgb8();
            for (o, p) in out.iter_mut().zip(rgb.as_raw().chunks_exact(3)) {
                *o = luma(p[0], p[1], p[2]);
            }
        }
    }
}

/// Jarosz-filters `a` (using `b` as scratch) and decimates it to 64×64.
fn downsample64(a: &mut [f32], b: &mut [f32], w: usize, h: usize) -> [[f32; 64]; 64] {
    let mut out = [[0f32; 64]; 64];
    if w == 64 && h == 64 {
        // Already the working size: the reference uses it as is.
        for (row, src) in out.iter_mut().zip(a.chunks_exact(64)) {
            row.copy_from_slice(src);
        }
        return out;
    }
    let win_rows = jarosz_window(w);
    let win_cols = jarosz_window(h);
    let mut sums = vec![0f32; w];
    for _ in 0..2 {
        box_rows(a, b, w, win_rows);
        box_cols(b, a, w, h, win_cols, &mut sums);
    }
    for (i, row) in out.iter_mut().enumerate() {
        let si = decimate_index(i, h);
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[si * w + decimate_index(j, w)];
        }
    }
    out
}

/// Box window for reducing `dim` samples to 64: half the decimation step, rounded up.
fn jarosz_window(dim: usize) -> usize {
    dim.div_ceil(2 * 64)
}

fn decimate_index(out: usize, dim: usize) -> usize {
    (((out as f64 + 0.5) * dim as f64) / 64.0) as usize
}

/// The reference box filter: output `o` is the mean of inputs `o − (w − half) ..= o + half − 1`
/// clipped to the vector, kept as a running sum (add the entering sample, then subtract the
/// leaving one). `w ≤ src.len()` always holds for PDQ's windows.
fn box_row(src: &[f32], dst: &mut [f32], w: usize) {
    let n = src.len();
    let half = (w + 2) / 2;
    let behind = w - half;
    let mut sum = 0f32;
    let mut count = 0u32;
    for &v in &src[..half - 1] {
        sum += v;
        count += 1;
    }
    for (o, out) in dst.iter_mut().enumerate() {
        let r = o + half - 1;
        if r < n {
            sum += src[r];
            count += 1;
        }
        if o > behind {
            sum -= src[o - behind - 1];
            count -= 1;
        }
        *out = sum / count as f32;
    }
}

/// [`box_row`] along every row of a row-major matrix `w` wide. Eight rows are filtered side
/// by side: each row's running sum is a chain of dependent additions, and interleaving
/// independent chains keeps the processor busy. Each row sees exactly [`box_row`]'s
/// operations.
fn box_rows(src: &[f32], dst: &mut [f32], w: usize, win: usize) {
    const LANES: usize = 8;
    let block = LANES * w;
    let mut src_blocks = src.chunks_exact(block);
    let mut dst_blocks = dst.chunks_exact_mut(block);
    for (s, d) in (&mut src_blocks).zip(&mut dst_blocks) {
        let half = (win + 2) / 2;
        let behind = win - half;
        let mut sums = [0f32; LANES];
        let mut count = 0u32;
        for i in 0..half - 1 {
            for (k, sum) in sums.iter_mut().enumerate() {
                *sum += s[k * w + i];
            }
            count += 1;
        }
        for o in 0..w {
            let r = o + half - 1;
            if r < w {
                for (k, sum) in sums.iter_mut().enumerate() {
                    *sum += s[k * w + r];
                }
                count += 1;
            }
            if o > behind {
                let l = o - behind - 1;
                for (k, sum) in sums.iter_mut().enumerate() {
                    *sum -= s[k * w + l];
                }
                count -= 1;
            }
            let c = count as f32;
            for (k, sum) in sums.iter().enumerate() {
                d[k * w + o] = sum / c;
            }
        }
    }
    for (s, d) in src_blocks
        .remainder()
        .chunks_exact(w)
        .zip(dst_blocks.into_remainder().chunks_exact_mut(w))
    {
        box_row(s, d, win);
    }
}

/// [`box_row`] along every column of a `w×h` row-major matrix, walking the rows in order so
/// memory is read sequentially; each column sees exactly the operations of a 1-D pass.
fn box_cols(src: &[f32], dst: &mut [f32], w: usize, h: usize, win: usize, sums: &mut [f32]) {
    let half = (win + 2) / 2;
    let behind = win - half;
    let row = |i: usize| &src[i * w..(i + 1) * w];
    sums.fill(0.0);
    let mut count = 0u32;
    for i in 0..half - 1 {
        for (s, &v) in sums.iter_mut().zip(row(i)) {
            *s += v;
        }
        count += 1;
    }
    for (o, out) in dst.chunks_exact_mut(w).enumerate() {
        let r = o + half - 1;
        let add = r < h;
        let sub = o > behind;
        match (add, sub) {
            (true, true) => {
                let (ra, rs) = (row(r), row(o - behind - 1));
                for ((s, &va), &vs) in sums.iter_mut().zip(ra).zip(rs) {
                    *s += va;
                    *s -= vs;
                }
            }
            (true, false) => {
                for (s, &v) in sums.iter_mut().zip(row(r)) {
                    *s += v;
                }
                count += 1;
            }
            (false, true) => {
                for (s, &v) in sums.iter_mut().zip(row(o - behind - 1)) {
                    *s -= v;
                }
                count -= 1;
            }
            (false, false) => {}
        }
        let c = count as f32;
        for (d, &s) in out.iter_mut().zip(sums.iter()) {
            *d = s / c;
        }
    }
}

/// Sum of quantised neighbour differences of the 64×64, scaled to 0..=100.
fn quality(m: &[[f32; 64]; 64]) -> u8 {
    let step = |u: f32, v: f32| (((u - v) * 100.0) / 255.0) as i32;
    let mut sum: i64 = 0;
    for pair in m.windows(2) {
        for (&u, &v) in pair[0].iter().zip(pair[1].iter()) {
            sum += i64::from(step(u, v).abs());
        }
    }
    for row in m.iter() {
        for pair in row.windows(2) {
            sum += i64::from(step(pair[0], pair[1]).abs());
        }
    }
    (sum / 90).min(100) as u8
}

/// `D[u][x] = √(2/64) · cos(π/128 · (u + 1) · (2x + 1))` for u in 0..16: DCT-II basis rows for
/// frequencies 1..=16, computed in `f64` and rounded to `f32` as the reference does.
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static D: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    D.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut d = [[0f32; 64]; 16];
        for (u, row) in d.iter_mut().enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                let angle =
                    (std::f64::consts::PI / 2.0 / 64.0) * (u + 1) as f64 * (2 * x + 1) as f64;
                *v = (scale as f64 * angle.cos()) as f32;
            }
        }
        d
    })
}

/// `B = D A Dᵀ`, restricted to the 16 lowest non-DC frequencies; sums run in index order.
fn dct64_to_16(a: &[[f32; 64]; 64]) -> Mat16 {
    let d = dct_matrix();
    let mut t = [[0f32; 64]; 16];
    for (u, trow) in t.iter_mut().enumerate() {
        for (k, arow) in a.iter().enumerate() {
            let dk = d[u][k];
            // t[u][j] = Σ_k d[u][k] · a[k][j], accumulated in k order for every j.
            for (tv, &av) in trow.iter_mut().zip(arow.iter()) {
                *tv += dk * av;
            }
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (u, brow) in b.iter_mut().enumerate() {
        for (v, bv) in brow.iter_mut().enumerate() {
            let mut s = 0f32;
            for (&tv, &dv) in t[u].iter().zip(d[v].iter()) {
                s += tv * dv;
            }
            *bv = s;
        }
    }
    b
}

/// Bit `16 i + j` set when `c[i][j]` exceeds the median (the 128th smallest), stored so that
/// the bytes read as PDQ's big-endian hex.
fn bits(c: &Mat16) -> Hash256 {
    let mut sorted = [0f32; 256];
    for (dst, src) in sorted.chunks_exact_mut(16).zip(c.iter()) {
        dst.copy_from_slice(src);
    }
    let (_, &mut median, _) = sorted.select_nth_unstable_by(127, f32::total_cmp);
    let mut out = [0u8; 32];
    for (i, row) in c.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if v > median {
                let k = i * 16 + j;
                out[31 - k / 8] |= 1 << (k % 8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{hamming, parse_hash};
    use image::{imageops, ImageBuffer, Rgb, RgbImage};

    /// A photo-like scene: smooth gradients, a few shapes, a little texture.
    fn scene(w: u32, h: u32, seed: u32) -> RgbImage {
        let s = seed as f32;
        ImageBuffer::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let mut r = 40.0 + 120.0 * fx + 30.0 * (fy * (3.0 + s)).sin();
            let mut g = 60.0 + 100.0 * fy + 40.0 * (fx * (5.0 + s) + fy).cos();
            let mut b = 90.0 + 60.0 * (fx * 7.0 - fy * (2.0 + s)).sin();
            let (cx, cy) = (0.3 + 0.05 * s, 0.6 - 0.04 * s);
            if (fx - cx).powi(2) + (fy - cy).powi(2) < 0.03 {
                r += 80.0;
                g -= 30.0;
            }
            if fx > 0.65 && fx < 0.9 && fy > 0.15 && fy < 0.45 {
                b += 90.0;
            }
            // A mosaic of cells a few percent of the image wide, like windows, tiles or
            // foliage: detail at the scale PDQ looks at, so that the quality is high.
            let (cx, cy) = (x * 23 / w, y * 17 / h);
            let cell =
                ((cx + 31 * seed).wrapping_mul(2_654_435_761) ^ cy.wrapping_mul(40_503)) >> 7;
            let m = (cell % 61) as f32 - 30.0;
            r += m;
            g += m;
            b += m * 0.5;
            let noise = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 13) % 13;
            let t = noise as f32 - 6.0;
            let c = |v: f32| (v + t).clamp(0.0, 255.0) as u8;
            Rgb([c(r), c(g), c(b)])
        })
    }

    fn anti_transpose(img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        ImageBuffer::from_fn(h, w, |x, y| *img.get_pixel(w - 1 - y, h - 1 - x))
    }

    fn transformed(img: &RgbImage, d: Dihedral) -> RgbImage {
        match d {
            Dihedral::Original => img.clone(),
            Dihedral::Rotate90 => imageops::rotate270(img),
            Dihedral::Rotate180 => imageops::rotate180(img),
            Dihedral::Rotate270 => imageops::rotate90(img),
            Dihedral::FlipX => imageops::flip_vertical(img),
            Dihedral::FlipY => imageops::flip_horizontal(img),
            Dihedral::FlipPlus1 => {
                let (w, h) = img.dimensions();
                ImageBuffer::from_fn(h, w, |x, y| *img.get_pixel(y, x))
            }
            Dihedral::FlipMinus1 => anti_transpose(img),
        }
    }

    #[test]
    fn dihedral_hashes_equal_hashes_of_transformed_images() {
        // 330×270: odd filter windows (3 and 3) and sides that are not multiples of 128, so
        // the reference downsampler is exactly symmetric and the hashes must be identical.
        let img = scene(330, 270, 1);
        let all = pdq_dihedral(&DynamicImage::ImageRgb8(img.clone()));
        let mut distinct = std::collections::HashSet::new();
        for d in Dihedral::ALL {
            let direct = pdq(&DynamicImage::ImageRgb8(transformed(&img, d)));
            assert_eq!(
                pdq_hex(&all.get(d)),
                direct.hex(),
                "{} differs from hashing the {} image",
                d.name(),
                d.name()
            );
            assert_eq!(direct.quality, all.quality);
            distinct.insert(all.get(d));
        }
        assert_eq!(distinct.len(), 8, "the eight variants must differ");
        assert_eq!(
            all.get(Dihedral::Original),
            pdq(&DynamicImage::ImageRgb8(img)).hash
        );
    }

    #[test]
    fn dihedral_hashes_are_close_for_camera_sizes() {
        // 1280×720: even windows (10 and 6) and a side that is a multiple of 128, where the
        // reference downsampler is off by half a pixel under mirroring; still a few bits.
        // The sample taken for output cell o is pixel 20·o + 10 while its mirror image is
        // 20·(63 − o) + 9, and the 10-wide box is [o − 4, o + 5]: a one-pixel shift in 20.
        let img = scene(1280, 720, 2);
        let all = pdq_dihedral(&DynamicImage::ImageRgb8(img.clone()));
        let mut report = Vec::new();
        for d in Dihedral::ALL {
            let direct = pdq(&DynamicImage::ImageRgb8(transformed(&img, d)));
            let dist = hamming(&all.get(d), &direct.hash);
            report.push(format!("{} {dist}", d.name()));
            assert!(dist <= 16, "{}: {dist} bits", d.name());
        }
        assert!(report[0].ends_with(" 0"));
        println!(
            "dihedral vs transformed 1280x720, bits: {}",
            report.join(", ")
        );
    }

    #[test]
    fn hash_is_stable_under_resize_and_reencode_and_separates_scenes() {
        let a = DynamicImage::ImageRgb8(scene(640, 480, 3));
        let b = DynamicImage::ImageRgb8(scene(640, 480, 4));
        let pa = pdq(&a);
        assert_eq!(pa.quality, 100);
        assert_eq!(pa.hash.iter().map(|b| b.count_ones()).sum::<u32>(), 128);
        let small = a.resize_exact(320, 240, imageops::FilterType::Triangle);
        assert!(hamming(&pa.hash, &pdq(&small).hash) <= 16);
        let mut jpeg = std::io::Cursor::new(Vec::new());
        a.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
        let back = image::load_from_memory(jpeg.get_ref()).unwrap();
        assert!(hamming(&pa.hash, &pdq(&back).hash) <= 16);
        assert!(hamming(&pa.hash, &pdq(&b).hash) >= 64);
        // Alpha and grey variants go through their own luma paths.
        assert_eq!(pdq(&DynamicImage::ImageRgba8(a.to_rgba8())), pa);
        let grey = DynamicImage::ImageLuma8(a.to_luma8());
        assert!(hamming(&pa.hash, &pdq(&grey).hash) <= 16);
    }

    #[test]
    fn flat_and_tiny_images_are_gated_with_a_reason() {
        let flat = DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 150, Rgb([90, 90, 90])));
        assert_eq!(pdq(&flat).quality, 0);
        let e = pdq_gated(&flat, QualityGate::default()).unwrap_err();
        assert_eq!(e.kind(), "image.low-quality", "{e}");
        let icon = DynamicImage::ImageRgb8(scene(31, 200, 5));
        let e = pdq_gated(&icon, QualityGate::default()).unwrap_err();
        assert_eq!(e.kind(), "image.too-small", "{e}");
        let dot = DynamicImage::ImageRgb8(scene(3, 3, 5));
        assert_eq!(
            pdq(&dot),
            Pdq {
                hash: [0; 32],
                quality: 0
            }
        );
        let photo = DynamicImage::ImageRgb8(scene(32, 48, 5));
        let ok = pdq_gated(&photo, QualityGate::default()).unwrap();
        assert!(ok.quality >= DEFAULT_MIN_QUALITY);
        assert_eq!(ok, pdq(&photo));
        // A gentle gradient has some structure but little: quality between the extremes.
        let ramp = DynamicImage::ImageRgb8(ImageBuffer::from_fn(256, 256, |x, _| {
            Rgb([x as u8 / 4, x as u8 / 4, x as u8 / 4])
        }));
        let q = pdq(&ramp).quality;
        assert!(q < DEFAULT_MIN_QUALITY, "ramp quality {q}");
        let lenient = QualityGate {
            min_side: 1,
            min_quality: 0,
        };
        assert!(pdq_gated(&ramp, lenient).is_ok());
    }

    #[test]
    fn hex_round_trips_in_canonical_bit_order() {
        // Bit k has the value 2^k of a big-endian 256-bit number: bit 0 is the last hex digit.
        let mut h = [0u8; 32];
        h[31] = 1;
        h[0] = 0x80;
        assert_eq!(
            pdq_hex(&h),
            "8000000000000000000000000000000000000000000000000000000000000001"
        );
        assert_eq!(parse_hash(&pdq_hex(&h)), Some(h));
        // The 16×16 coefficient matrix puts row i in hex digits 60-4i .. 63-4i.
        let mut c = [[0f32; 16]; 16];
        for (i, row) in c.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = if i == 0 {
                    100.0 + j as f32
                } else {
                    -((i * 16 + j) as f32)
                };
            }
        }
        // All of rows 0-7 are above the median, rows 8-15 below: the low 128 bits are set.
        let hex = pdq_hex(&bits(&c));
        assert_eq!(hex, format!("{}{}", "0".repeat(32), "f".repeat(32)));
        // A permutation of 0..256: bit k is set iff its value is 128 or more; hex digit d
        // (from the left) holds bits 255-4d (its high bit) down to 252-4d.
        let value = |k: usize| ((k * 37 + 11) % 256) as f32;
        for (i, row) in c.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = value(i * 16 + j);
            }
        }
        let expected: String = (0..64)
            .map(|d| {
                let top = 255 - 4 * d;
                let nibble = (0..4).fold(0u32, |n, b| n << 1 | u32::from(value(top - b) >= 128.0));
                char::from_digit(nibble, 16).unwrap()
            })
            .collect();
        assert_eq!(pdq_hex(&bits(&c)), expected);
    }

    #[test]
    fn box_filter_matches_a_direct_mean() {
        let src: Vec<f32> = (0..37).map(|i| ((i * 7919) % 101) as f32).collect();
        for w in 1..=9 {
            let mut dst = vec![0f32; src.len()];
            box_row(&src, &mut dst, w);
            let half = (w + 2) / 2;
            for (o, &got) in dst.iter().enumerate() {
                let lo = o.saturating_sub(w - half);
                let hi = (o + half - 1).min(src.len() - 1);
                let want = src[lo..=hi].iter().sum::<f32>() / (hi - lo + 1) as f32;
                assert!((got - want).abs() < 1e-3, "w={w} o={o}: {got} vs {want}");
            }
            // The column pass does the same arithmetic as the row pass, column by column.
            let mut cols = vec![0f32; src.len()];
            let mut sums = vec![0f32; 1];
            box_cols(&src, &mut cols, 1, src.len(), w, &mut sums);
            assert_eq!(cols, dst);
        }
    }

    #[test]
    fn interleaved_row_pass_is_the_plain_row_pass() {
        let (w, h) = (53, 19); // two blocks of eight rows and a remainder of three
        let src: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 257) as f32 * 0.37)
            .collect();
        for win in [1, 2, 3, 6] {
            let mut fast = vec![0f32; w * h];
            box_rows(&src, &mut fast, w, win);
            let mut plain = vec![0f32; w * h];
            for (s, d) in src.chunks_exact(w).zip(plain.chunks_exact_mut(w)) {
                box_row(s, d, win);
            }
            assert_eq!(fast, plain, "window {win}");
        }
    }

    #[test]
    fn hashing_is_usable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Pdq>();
        assert_send_sync::<PdqDihedral>();
        let img = DynamicImage::ImageRgb8(scene(300, 200, 6));
        let here = pdq(&img);
        let there = std::thread::scope(|s| s.spawn(|| pdq(&img)).join().unwrap());
        assert_eq!(here, there);
    }
}
