//! The edits a leaker applies before reposting a stolen photo.
//!
//! Each planted leak is one stolen photo passed through one of these
//! transforms and encoded the way a forum or image host would serve it. The
//! transform also states whether leakwatch's 256-bit DCT median hash is
//! expected to see through it: geometric edits (flip, crop, pad, rotation, a
//! screenshot of the page showing the photo) move the picture under the hash
//! grid and are left to a later matcher, and so is an opaque banner, which
//! hides too much of the frame.

use std::io::Cursor;

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ExtendedColorType, ImageEncoder, Rgb, RgbImage};

use crate::rng::Rng;
use crate::scene;

/// One way of re-publishing a stolen photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// Served unchanged as PNG.
    Original,
    /// JPEG re-encode at the given quality.
    Jpeg(u8),
    /// Downscaled to half size.
    Resize50,
    /// Brightness changed by the given percentage.
    Brightness(i32),
    /// Converted to grayscale.
    Grayscale,
    /// Gaussian-like blur (three box passes of the given radius).
    Blur(u32),
    /// A text bar covering the given percentage of the height, top or bottom.
    Banner { top: bool, percent: u32 },
    /// Lossless WebP.
    Webp,
    /// Palette GIF.
    Gif,
    /// Mirrored left to right.
    FlipH,
    /// 4% cut from every edge.
    Crop4,
    /// 8% white border on every edge.
    Pad8,
    // The variants below are used by `examples/robustness_set.rs`, which
    // compiles this module in; the testbed's own world does not use them.
    /// The given percentage of the width and height cut from every edge.
    #[allow(dead_code)]
    Crop(u32),
    /// A solid border of the given percentage of the width and height on
    /// every edge. The colour is not part of the name.
    #[allow(dead_code)]
    Pad { percent: u32, rgb: [u8; 3] },
    /// Rotated by the given degrees about the centre on a canvas of the same
    /// size; the uncovered corners are black. The direction is not part of
    /// the name.
    #[allow(dead_code)]
    Rotate(f32),
    /// The photo shown in a web page and captured whole: scaled into a page
    /// with a header bar, lines of text, a sidebar and a second, unrelated
    /// small picture. The seed chooses the layout and whether the capture is
    /// saved as PNG or JPEG.
    #[allow(dead_code)]
    Screenshot(u64),
}

/// An encoded image ready to serve.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub ext: &'static str,
    pub content_type: &'static str,
}

impl Transform {
    /// Stable name recorded in the truth file, e.g. `jpeg-q42`.
    pub fn name(&self) -> String {
        match *self {
            Transform::Original => "original".into(),
            Transform::Jpeg(q) => format!("jpeg-q{q}"),
            Transform::Resize50 => "resize-50".into(),
            Transform::Brightness(p) if p >= 0 => format!("brightness+{p}"),
            Transform::Brightness(p) => format!("brightness{p}"),
            Transform::Grayscale => "grayscale".into(),
            Transform::Blur(r) => format!("blur-r{r}"),
            Transform::Banner { top, percent } => {
                format!("banner-{}-{percent}", if top { "top" } else { "bottom" })
            }
            Transform::Webp => "webp-lossless".into(),
            Transform::Gif => "gif".into(),
            Transform::FlipH => "flip-h".into(),
            Transform::Crop4 => "crop-4".into(),
            Transform::Pad8 => "pad-8".into(),
            Transform::Crop(p) => format!("crop-{p}"),
            Transform::Pad { percent, .. } => format!("pad-{percent}"),
            Transform::Rotate(d) => format!("rotate-{}", d.abs()),
            Transform::Screenshot(_) => "screenshot".into(),
        }
    }

    /// Whether the edit is pixel-level only, so that even a whole-image 256-bit
    /// DCT hash stays near the original: an opaque banner moves that hash 30–56
    /// bits, too close to the 64+ bits of the nearest decoy, and flips, crops and
    /// pads move it further. leakwatch's matcher catches every transform.
    pub fn expect_dct256(&self) -> bool {
        !matches!(
            self,
            Transform::FlipH
                | Transform::Crop4
                | Transform::Pad8
                | Transform::Banner { .. }
                | Transform::Crop(_)
                | Transform::Pad { .. }
                | Transform::Rotate(_)
                | Transform::Screenshot(_)
        )
    }

    /// Applies the transform and encodes the result.
    pub fn apply(&self, img: &RgbImage, banner_text: &str) -> Encoded {
        match *self {
            Transform::Original => png(img),
            Transform::Jpeg(q) => jpeg(img, q),
            Transform::Resize50 => {
                let out =
                    imageops::resize(img, img.width() / 2, img.height() / 2, FilterType::Triangle);
                jpeg(&out, 85)
            }
            Transform::Brightness(p) => {
                let f = 1.0 + f64::from(p) / 100.0;
                let mut out = img.clone();
                for v in out.iter_mut() {
                    *v = (f64::from(*v) * f).round().clamp(0.0, 255.0) as u8;
                }
                jpeg(&out, 85)
            }
            Transform::Grayscale => {
                let gray = DynamicImage::ImageRgb8(img.clone()).into_luma8();
                let mut bytes = Vec::new();
                JpegEncoder::new_with_quality(&mut bytes, 85)
                    .write_image(
                        gray.as_raw(),
                        gray.width(),
                        gray.height(),
                        ExtendedColorType::L8,
                    )
                    .expect("encoding to memory cannot fail");
                Encoded {
                    bytes,
                    ext: "jpg",
                    content_type: "image/jpeg",
                }
            }
            Transform::Blur(r) => png(&box_blur(img, r, 3)),
            Transform::Banner { top, percent } => {
                let mut out = img.clone();
                scene::banner(&mut out, top, f64::from(percent) / 100.0, banner_text);
                jpeg(&out, 80)
            }
            Transform::Webp => {
                let mut bytes = Vec::new();
                WebPEncoder::new_lossless(&mut bytes)
                    .write_image(
                        img.as_raw(),
                        img.width(),
                        img.height(),
                        ExtendedColorType::Rgb8,
                    )
                    .expect("encoding to memory cannot fail");
                Encoded {
                    bytes,
                    ext: "webp",
                    content_type: "image/webp",
                }
            }
            Transform::Gif => {
                let mut bytes = Vec::new();
                {
                    let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
                    enc.encode(
                        img.as_raw(),
                        img.width(),
                        img.height(),
                        ExtendedColorType::Rgb8,
                    )
                    .expect("encoding to memory cannot fail");
                }
                Encoded {
                    bytes,
                    ext: "gif",
                    content_type: "image/gif",
                }
            }
            Transform::FlipH => jpeg(&imageops::flip_horizontal(img), 85),
            Transform::Crop4 => {
                let dx = img.width() * 4 / 100;
                let dy = img.height() * 4 / 100;
                let out =
                    imageops::crop_imm(img, dx, dy, img.width() - 2 * dx, img.height() - 2 * dy)
                        .to_image();
                jpeg(&out, 85)
            }
            Transform::Pad8 => {
                let dx = img.width() * 8 / 100;
                let dy = img.height() * 8 / 100;
                let mut out = RgbImage::from_pixel(
                    img.width() + 2 * dx,
                    img.height() + 2 * dy,
                    image::Rgb([255, 255, 255]),
                );
                imageops::replace(&mut out, img, i64::from(dx), i64::from(dy));
                png(&out)
            }
            Transform::Crop(p) => {
                let dx = img.width() * p.min(40) / 100;
                let dy = img.height() * p.min(40) / 100;
                let out =
                    imageops::crop_imm(img, dx, dy, img.width() - 2 * dx, img.height() - 2 * dy)
                        .to_image();
                jpeg(&out, 85)
            }
            Transform::Pad { percent, rgb } => {
                let dx = img.width() * percent / 100;
                let dy = img.height() * percent / 100;
                let mut out =
                    RgbImage::from_pixel(img.width() + 2 * dx, img.height() + 2 * dy, Rgb(rgb));
                imageops::replace(&mut out, img, i64::from(dx), i64::from(dy));
                png(&out)
            }
            Transform::Rotate(degrees) => jpeg(&rotate(img, degrees), 85),
            Transform::Screenshot(seed) => screenshot(img, seed, banner_text),
        }
    }
}

/// Rotation about the centre with bilinear sampling, same canvas size.
fn rotate(img: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let (sin, cos) = f64::from(degrees).to_radians().sin_cos();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let mut out = RgbImage::new(w, h);
    for (x, y, px) in out.enumerate_pixels_mut() {
        // Inverse mapping: where in the source this output pixel comes from.
        let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
        let sx = cos * dx - sin * dy + cx - 0.5;
        let sy = sin * dx + cos * dy + cy - 0.5;
        if sx < 0.0 || sy < 0.0 || sx > f64::from(w - 1) || sy > f64::from(h - 1) {
            continue;
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (sx - f64::from(x0), sy - f64::from(y0));
        for c in 0..3 {
            let v = |xx: u32, yy: u32| f64::from(img.get_pixel(xx, yy).0[c]);
            let top = v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx;
            let bottom = v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx;
            px.0[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// The photo as part of a captured web page; see [`Transform::Screenshot`].
fn screenshot(img: &RgbImage, seed: u64, text: &str) -> Encoded {
    let mut rng = Rng::new(seed);
    // The photo is shown at 45–100% of its size, at most 900 pixels wide.
    let scale = (rng.range(45, 101) as f64 / 100.0).min(900.0 / f64::from(img.width()));
    let pw = ((f64::from(img.width()) * scale).round() as u32).max(1);
    let ph = ((f64::from(img.height()) * scale).round() as u32).max(1);
    let photo = imageops::resize(img, pw, ph, FilterType::Triangle);
    let header = rng.range(48, 90) as u32;
    let sidebar = rng.range(180, 280) as u32;
    let sidebar_left = rng.chance(0.5);
    let margin = rng.range(16, 48) as u32;
    let lines_above = rng.range(1, 5) as u32;
    let lines_below = rng.range(2, 7) as u32;
    let line_h = 22;
    let content_w = (pw + 2 * margin).max(rng.range(600, 900) as u32);
    let width = content_w + sidebar;
    let height = header + margin + (lines_above + lines_below) * line_h + ph + 2 * margin;
    let page = rng.range(236, 256) as u8;
    let mut out = RgbImage::from_pixel(width, height, Rgb([page, page, page]));
    // Header bar with the site's name.
    let bar = [
        rng.range(10, 90) as u8,
        rng.range(10, 90) as u8,
        rng.range(20, 120) as u8,
    ];
    fill(&mut out, 0, 0, width, header, bar);
    let cell = (header / 12).max(2) as i32;
    scene::draw_text(
        &mut out,
        text,
        16,
        (header as i32 - 5 * cell) / 2,
        cell,
        [240, 240, 240],
    );
    // Sidebar with a small unrelated picture and a few links.
    let (sx, cx) = if sidebar_left {
        (0, sidebar)
    } else {
        (content_w, 0)
    };
    fill(
        &mut out,
        sx,
        header,
        sidebar,
        height - header,
        [225, 228, 232],
    );
    let thumb_w = sidebar - 40;
    let thumb = scene::filler_picture(&mut rng, thumb_w, thumb_w * 3 / 4);
    imageops::replace(&mut out, &thumb, i64::from(sx + 20), i64::from(header + 20));
    let mut y = header + 40 + thumb_w * 3 / 4;
    while y + line_h < height {
        let words = link_text(&mut rng, 3, 13);
        scene::draw_text(
            &mut out,
            &words,
            (sx + 20) as i32,
            y as i32,
            2,
            [40, 70, 160],
        );
        y += line_h + 6;
    }
    // Text above and below the photo.
    let x0 = cx + margin;
    let mut y = header + margin;
    for _ in 0..lines_above {
        let words = link_text(&mut rng, 20, 60);
        scene::draw_text(&mut out, &words, x0 as i32, y as i32, 2, [50, 50, 50]);
        y += line_h;
    }
    imageops::replace(&mut out, &photo, i64::from(x0), i64::from(y));
    y += ph + margin;
    for _ in 0..lines_below {
        let words = link_text(&mut rng, 20, 60);
        scene::draw_text(&mut out, &words, x0 as i32, y as i32, 2, [50, 50, 50]);
        y += line_h;
    }
    if rng.chance(0.5) {
        png(&out)
    } else {
        jpeg(&out, rng.range(70, 93) as u8)
    }
}

/// A line of pseudo-words of `lo..hi` characters (drawn with block glyphs,
/// so only its texture matters).
fn link_text(rng: &mut Rng, lo: i64, hi: i64) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789      ";
    let len = rng.range(lo, hi);
    (0..len)
        .map(|_| char::from(CHARS[rng.below(CHARS.len() as u64) as usize]))
        .collect()
}

/// Fills the `w`×`h` rectangle at (`x`, `y`), clipped to the image.
fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, rgb: [u8; 3]) {
    for yy in y..(y + h).min(img.height()) {
        for xx in x..(x + w).min(img.width()) {
            img.put_pixel(xx, yy, Rgb(rgb));
        }
    }
}

/// Encodes as PNG.
pub fn png(img: &RgbImage) -> Encoded {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("encoding to memory cannot fail");
    Encoded {
        bytes,
        ext: "png",
        content_type: "image/png",
    }
}

/// Encodes as baseline JPEG at `quality`.
pub fn jpeg(img: &RgbImage, quality: u8) -> Encoded {
    let mut cursor = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut cursor, quality)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("encoding to memory cannot fail");
    Encoded {
        bytes: cursor.into_inner(),
        ext: "jpg",
        content_type: "image/jpeg",
    }
}

/// Repeated separable box blur, which approaches a Gaussian.
fn box_blur(img: &RgbImage, radius: u32, passes: u32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut buf: Vec<f32> = img.as_raw().iter().map(|&v| f32::from(v)).collect();
    let mut tmp = vec![0f32; buf.len()];
    let r = radius as isize;
    let norm = 1.0 / (2 * r + 1) as f32;
    for _ in 0..passes {
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0.0;
                    for d in -r..=r {
                        let xx = (x as isize + d).clamp(0, w as isize - 1) as usize;
                        s += buf[(y * w + xx) * 3 + c];
                    }
                    tmp[(y * w + x) * 3 + c] = s * norm;
                }
            }
        }
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0.0;
                    for d in -r..=r {
                        let yy = (y as isize + d).clamp(0, h as isize - 1) as usize;
                        s += tmp[(yy * w + x) * 3 + c];
                    }
                    buf[(y * w + x) * 3 + c] = s * norm;
                }
            }
        }
    }
    let raw = buf
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    RgbImage::from_raw(img.width(), img.height(), raw).expect("same dimensions")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        })
    }

    fn decode(enc: &Encoded) -> RgbImage {
        image::load_from_memory(&enc.bytes)
            .expect("decodes")
            .to_rgb8()
    }

    #[test]
    fn rotation_by_zero_is_the_identity_and_small_rotations_fill_the_corners() {
        let img = gradient(64, 48);
        assert_eq!(rotate(&img, 0.0).as_raw(), img.as_raw());
        let r = rotate(&img, 3.0);
        assert_eq!(r.dimensions(), img.dimensions());
        assert_eq!(r.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(r.get_pixel(63, 47).0, [0, 0, 0]);
        let (c, rc) = (img.get_pixel(32, 24).0, r.get_pixel(32, 24).0);
        assert!(
            c.iter().zip(rc).all(|(a, b)| a.abs_diff(b) <= 3),
            "{c:?} vs {rc:?}"
        );
    }

    #[test]
    fn crop_and_pad_change_the_frame_by_the_percentage() {
        let img = gradient(200, 100);
        let cropped = decode(&Transform::Crop(5).apply(&img, ""));
        assert_eq!(cropped.dimensions(), (180, 90));
        let padded = decode(
            &Transform::Pad {
                percent: 10,
                rgb: [0, 0, 0],
            }
            .apply(&img, ""),
        );
        assert_eq!(padded.dimensions(), (240, 120));
        assert_eq!(padded.get_pixel(5, 5).0, [0, 0, 0]);
        assert_eq!(padded.get_pixel(20, 10).0, img.get_pixel(0, 0).0);
        assert_eq!(Transform::Crop(3).name(), "crop-3");
        assert_eq!(Transform::Rotate(-3.0).name(), "rotate-3");
    }

    #[test]
    fn screenshots_embed_the_photo_in_a_larger_page_chosen_by_the_seed() {
        let img = gradient(320, 240);
        let a = Transform::Screenshot(1).apply(&img, "SITE");
        let b = Transform::Screenshot(1).apply(&img, "SITE");
        assert_eq!(a.bytes, b.bytes);
        let pages: Vec<RgbImage> = (1..6)
            .map(|s| decode(&Transform::Screenshot(s).apply(&img, "SITE")))
            .collect();
        for page in &pages {
            assert!(page.width() > 320 && page.height() > 240 * 45 / 100);
        }
        assert!(pages
            .windows(2)
            .any(|w| w[0].dimensions() != w[1].dimensions()));
    }
}
