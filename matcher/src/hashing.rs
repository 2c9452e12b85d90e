//! Decoding untrusted image bytes safely, and the 256-bit hash type the matcher works with.
//!
//! Decoding is bounded: the format is guessed from the bytes (never from a URL or header),
//! dimensions and total allocation are capped before pixels are decoded, so a decompression
//! bomb is an error rather than an out-of-memory. JPEGs can be decoded at a reduced scale
//! ([`decode_for_hash`]), since matching works on a small plane anyway.
//!
//! The perceptual hash itself is PDQ ([`crate::pdq`]); [`hamming`] and [`parse_hash`] work on
//! any 256-bit hash.

use std::io::Cursor;

use image::{DynamicImage, ImageReader};
use serde::{Deserialize, Serialize};

/// 256 bits.
pub type Hash256 = [u8; 32];

/// Bounds on decoding one image.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeLimits {
    pub max_dimension: u32,
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_dimension: 16_384,
            max_alloc_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Why an image could not be hashed. [`ImageError::kind`] names it for counting.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("unrecognised image format")]
    UnknownFormat,
    #[error("image exceeds decoding limits: {0}")]
    TooLarge(String),
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("corrupt or truncated image: {0}")]
    Decode(String),
    #[error("image too small to hash: {width}x{height}, sides below {min_side} px are not hashed")]
    TooSmall {
        width: u32,
        height: u32,
        min_side: u32,
    },
    #[error("image too flat to hash: PDQ quality {quality} is below {min_quality}")]
    LowQuality { quality: u8, min_quality: u8 },
}

impl ImageError {
    pub fn kind(&self) -> &'static str {
        match self {
            ImageError::UnknownFormat => "image.unknown-format",
            ImageError::TooLarge(_) => "image.too-large",
            ImageError::Unsupported(_) => "image.unsupported",
            ImageError::Decode(_) => "image.decode",
            ImageError::TooSmall { .. } => "image.too-small",
            ImageError::LowQuality { .. } => "image.low-quality",
        }
    }
}

/// Decodes bytes of any supported format within `limits`.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<DynamicImage, ImageError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImageError::UnknownFormat);
    }
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    l.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(l);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => ImageError::TooLarge(l.to_string()),
        image::ImageError::Unsupported(u) => ImageError::Unsupported(u.to_string()),
        other => ImageError::Decode(other.to_string()),
    })
}

/// The smaller side [`decode_for_hash`] keeps by default when it decodes a JPEG at a reduced
/// scale. PDQ is not scale invariant: on 1280×720 photos, hashing a 1/4-scale decode
/// (320×180, short side ≥ 128) moves a mean of 12 bits from the full-size hash, a 1/2-scale
/// decode (640×360, ≥ 256) 5 bits, the same as resizing the full decode to those sizes. 256
/// keeps hashes close to those other PDQ tools compute from full-size images.
pub const DEFAULT_HASH_MIN_SIDE: u32 = 256;

/// Decodes bytes for hashing: like [`decode`], but a JPEG is decoded at a reduced scale
/// (1/2, 1/4 or 1/8, by skipping the high DCT frequencies in the decoder) when its smaller
/// side stays at least `min_side` pixels. A perceptual hash looks at a 64×64 downsample, so
/// decoding every pixel of a large photo is wasted work.
///
/// The limits apply to the full-size image, read from the JPEG header before any pixel is
/// decoded: a side above `max_dimension`, or a full-size decode (counted as two bytes per
/// sample, what a progressive JPEG's coefficients take) above `max_alloc_bytes`, is
/// [`ImageError::TooLarge`]. Other formats, and JPEGs in CMYK or with 16-bit samples, go
/// through [`decode`] unchanged. The format is sniffed from the bytes.
pub fn decode_for_hash(
    bytes: &[u8],
    limits: DecodeLimits,
    min_side: u32,
) -> Result<DynamicImage, ImageError> {
    if image::guess_format(bytes).ok() != Some(image::ImageFormat::Jpeg) {
        return decode(bytes, limits);
    }
    // The decoder is not expected to panic, but these bytes come from anywhere.
    match std::panic::catch_unwind(|| decode_jpeg_scaled(bytes, limits, min_side)) {
        Ok(Ok(Some(img))) => Ok(img),
        Ok(Ok(None)) => decode(bytes, limits),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ImageError::Decode("JPEG decoder failed".into())),
    }
}

/// The scale, in eighths (8 = full size), at which a `width×height` JPEG is decoded so that
/// its smaller side is still at least `min_side`.
pub fn jpeg_hash_scale(width: u32, height: u32, min_side: u32) -> u32 {
    let short = width.min(height) as u64;
    [1u32, 2, 4]
        .into_iter()
        .find(|&eighths| (short * eighths as u64).div_ceil(8) >= min_side as u64)
        .unwrap_or(8)
}

/// `Ok(None)`: a JPEG this path does not handle (CMYK, 16-bit); the caller decodes it fully.
fn decode_jpeg_scaled(
    bytes: &[u8],
    limits: DecodeLimits,
    min_side: u32,
) -> Result<Option<DynamicImage>, ImageError> {
    use jpeg_decoder::PixelFormat;
    let jpeg_err = |e: jpeg_decoder::Error| match e {
        jpeg_decoder::Error::Unsupported(u) => ImageError::Unsupported(format!("{u:?}")),
        other => ImageError::Decode(other.to_string()),
    };
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(jpeg_err)?;
    let info = dec
        .info()
        .ok_or_else(|| ImageError::Decode("JPEG header without a frame".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if w == 0 || h == 0 {
        return Err(ImageError::Decode(format!("JPEG of {w}x{h} pixels")));
    }
    if w > limits.max_dimension || h > limits.max_dimension {
        return Err(ImageError::TooLarge(format!(
            "{w}x{h} exceeds {0}x{0}",
            limits.max_dimension
        )));
    }
    let samples = u64::from(w) * u64::from(h) * info.pixel_format.pixel_bytes() as u64;
    if samples.saturating_mul(2) > limits.max_alloc_bytes {
        return Err(ImageError::TooLarge(format!(
            "{w}x{h} JPEG needs more than {} bytes to decode",
            limits.max_alloc_bytes
        )));
    }
    if !matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::RGB24) {
        return Ok(None);
    }
    let eighths = jpeg_hash_scale(w, h, min_side);
    if eighths < 8 {
        let scaled = |d: u32| (d * eighths).div_ceil(8).min(u32::from(u16::MAX)) as u16;
        dec.scale(scaled(w), scaled(h)).map_err(jpeg_err)?;
    }
    dec.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX));
    let pixels = dec.decode().map_err(jpeg_err)?;
    let info = dec
        .info()
        .ok_or_else(|| ImageError::Decode("JPEG without a frame".into()))?;
    let (ow, oh) = (u32::from(info.width), u32::from(info.height));
    let short = || ImageError::Decode("JPEG decoder returned too few pixels".into());
    Ok(Some(match info.pixel_format {
        PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(ow, oh, pixels).ok_or_else(short)?)
        }
        _ => DynamicImage::ImageRgb8(image::RgbImage::from_raw(ow, oh, pixels).ok_or_else(short)?),
    }))
}

/// Whether an image file lacks its format's end marker (JPEG EOI, PNG IEND, GIF trailer):
/// the sign of a cut-off download or a deliberately truncated file.
pub fn looks_truncated(b: &[u8]) -> bool {
    let tail = &b[b.len().saturating_sub(64)..];
    let trimmed = {
        let end = tail
            .iter()
            .rposition(|&c| c != 0 && !c.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        &tail[..end]
    };
    if b.starts_with(&[0xff, 0xd8]) {
        !trimmed.ends_with(&[0xff, 0xd9])
    } else if b.starts_with(b"\x89PNG") {
        !tail.windows(4).any(|w| w == b"IEND")
    } else if b.starts_with(b"GIF8") {
        !trimmed.ends_with(b";")
    } else {
        false
    }
}

/// Hamming distance of two 256-bit hashes.
pub fn hamming(a: &Hash256, b: &Hash256) -> u32 {
    let mut d = 0;
    for i in 0..4 {
        let x = u64::from_le_bytes(a[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let y = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        d += (x ^ y).count_ones();
    }
    d
}

/// Parses a 64-character hex hash.
pub fn parse_hash(hex_str: &str) -> Option<Hash256> {
    let v = hex::decode(hex_str.trim()).ok()?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, RgbImage};

    fn scene(seed: u32) -> RgbImage {
        ImageBuffer::from_fn(320, 240, |x, y| {
            let v = (x.wrapping_mul(seed * 7 + 3) ^ y.wrapping_mul(seed * 13 + 5)) % 256;
            let blob =
                if (x as i32 - (seed * 37 % 320) as i32).pow(2) + (y as i32 - 120).pow(2) < 4000 {
                    255
                } else {
                    0
                };
            Rgb([v as u8, blob, (x + y) as u8])
        })
    }

    fn encode(img: &DynamicImage, fmt: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    #[test]
    fn hostile_images_are_errors() {
        // A PNG header claiming 30000x30000.
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\r".to_vec();
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        let e = decode(&png, DecodeLimits::default()).unwrap_err();
        assert_eq!(e.kind(), "image.too-large", "{e}");
        let jpeg = encode(&DynamicImage::ImageRgb8(scene(3)), image::ImageFormat::Jpeg);
        assert!(!looks_truncated(&jpeg));
        assert!(looks_truncated(&jpeg[..jpeg.len() / 2]));
        let png_ok = encode(&DynamicImage::ImageRgb8(scene(3)), image::ImageFormat::Png);
        assert!(!looks_truncated(&png_ok) && looks_truncated(&png_ok[..png_ok.len() - 20]));
        let e = decode(&jpeg[..jpeg.len() / 2], DecodeLimits::default());
        // A truncated JPEG either fails or decodes partially; it must never panic.
        if let Err(e) = e {
            assert_eq!(e.kind(), "image.decode");
        }
        assert_eq!(
            decode(b"<html>", DecodeLimits::default())
                .unwrap_err()
                .kind(),
            "image.unknown-format"
        );
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn hamming_and_hex() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        b[0] = 0b1011;
        b[31] = 0x80;
        assert_eq!(hamming(&a, &b), 4);
        assert_eq!(parse_hash(&hex::encode(b)), Some(b));
        assert_eq!(parse_hash("zz"), None);
    }
}
