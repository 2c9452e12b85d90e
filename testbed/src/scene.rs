//! Synthetic border-camera photographs and benign filler pictures.
//!
//! The stolen set has to look like what leakwatch really protects: lane-camera
//! close-ups of a car at a crossing, with its plate and the driver behind the
//! windscreen. Every picture is painted from a handful of parameters so the
//! world stays deterministic and small to describe, and so decoys can reuse a
//! camera's background with a different car. The car fills most of the frame,
//! which is what makes two crossings at the same camera look different to a
//! perceptual hash.

use image::{Rgb, RgbImage};

use crate::rng::{mix64, Rng};

/// Width of a camera photo.
pub const PHOTO_WIDTH: u32 = 640;
/// Height of a camera photo.
pub const PHOTO_HEIGHT: u32 = 480;

type Color = [u8; 3];

/// A fixed lane camera: everything in the frame that is not the car.
#[derive(Clone, Debug)]
pub struct Camera {
    sky_top: Color,
    sky_bottom: Color,
    horizon: i32,
    road: Color,
    booth: (i32, i32, i32, Color),
    lane_lines: Vec<(i32, i32)>,
    barrier_y: i32,
    barrier_left: bool,
    pole_x: i32,
    sign: (i32, i32, Color),
    noise_salt: u64,
}

impl Camera {
    /// Camera number `index` of the world seeded with `seed`. Cameras
    /// `0..STOLEN_CAMERAS` took the stolen photos; higher ones are unseen.
    pub fn new(seed: u64, index: usize) -> Self {
        let mut rng = Rng::stream(seed, &format!("camera-{index}"));
        let sky_top = [
            rng.range(60, 140) as u8,
            rng.range(100, 170) as u8,
            rng.range(170, 240) as u8,
        ];
        let sky_bottom = [
            rng.range(170, 230) as u8,
            rng.range(180, 235) as u8,
            rng.range(200, 250) as u8,
        ];
        let horizon = rng.range(120, 190) as i32;
        let g = rng.range(70, 120) as u8;
        let road = [g, g, g.saturating_add(rng.range(0, 12) as u8)];
        let booth_left = rng.chance(0.5);
        let booth_w = rng.range(90, 150) as i32;
        let booth_x = if booth_left {
            rng.range(0, 40) as i32
        } else {
            PHOTO_WIDTH as i32 - booth_w - rng.range(0, 40) as i32
        };
        let booth_color = [
            rng.range(120, 230) as u8,
            rng.range(120, 230) as u8,
            rng.range(100, 220) as u8,
        ];
        let booth_top = rng.range(30, 90) as i32;
        let lines = rng.range(2, 4);
        let lane_lines = (0..lines)
            .map(|_| (rng.range(-200, 840) as i32, rng.range(60, 580) as i32))
            .collect();
        let sign = (
            rng.range(200, 440) as i32,
            rng.range(10, 60) as i32,
            [
                rng.range(0, 60) as u8,
                rng.range(80, 160) as u8,
                rng.range(40, 120) as u8,
            ],
        );
        Self {
            sky_top,
            sky_bottom,
            horizon,
            road,
            booth: (booth_x, booth_w, booth_top, booth_color),
            lane_lines,
            barrier_y: rng.range(150, 230) as i32,
            barrier_left: !booth_left,
            pole_x: rng.range(40, 600) as i32,
            sign,
            noise_salt: rng.next_u64(),
        }
    }

    /// Paints the empty scene.
    pub fn paint(&self, img: &mut RgbImage) {
        let (w, h) = (img.width() as i32, img.height() as i32);
        for y in 0..self.horizon.min(h) {
            let t = y as f64 / self.horizon as f64;
            let c = lerp(self.sky_top, self.sky_bottom, t);
            fill_rect(img, 0, y, w, y + 1, c);
        }
        for y in self.horizon..h {
            let t = (y - self.horizon) as f64 / (h - self.horizon) as f64;
            let c = lerp(shade(self.road, 1.15), shade(self.road, 0.8), t);
            fill_rect(img, 0, y, w, y + 1, c);
        }
        // Lane markings converge towards a vanishing point on the horizon.
        for &(bottom_x, top_x) in &self.lane_lines {
            fill_quad(
                img,
                self.horizon,
                h,
                (top_x - 2, top_x + 2),
                (bottom_x - 12, bottom_x + 12),
                [235, 235, 225],
            );
        }
        // Gantry sign.
        let (sx, sy, sc) = self.sign;
        fill_rect(img, sx - 4, 0, sx + 4, self.horizon, [90, 90, 95]);
        fill_rect(img, sx - 90, sy, sx + 90, sy + 44, sc);
        draw_text(img, "STOP", sx - 60, sy + 8, 6, [240, 240, 240]);
        // Booth with a dark window.
        let (bx, bw, btop, bc) = self.booth;
        fill_rect(img, bx, btop, bx + bw, h, bc);
        fill_rect(img, bx - 8, btop - 16, bx + bw + 8, btop, shade(bc, 0.6));
        fill_rect(
            img,
            bx + 14,
            btop + 30,
            bx + bw - 14,
            btop + 110,
            [40, 50, 60],
        );
        // Pole and barrier arm with red and white stripes.
        fill_rect(img, self.pole_x - 6, 60, self.pole_x + 6, h, [70, 70, 70]);
        let (ax0, ax1) = if self.barrier_left {
            (0, w / 2)
        } else {
            (w / 2, w)
        };
        let mut x = ax0;
        let mut red = true;
        while x < ax1 {
            let c = if red { [200, 30, 30] } else { [245, 245, 245] };
            fill_rect(
                img,
                x,
                self.barrier_y,
                (x + 32).min(ax1),
                self.barrier_y + 12,
                c,
            );
            red = !red;
            x += 32;
        }
    }
}

/// Body style of a car seen from the front.
#[derive(Clone, Copy, Debug)]
enum Body {
    Sedan,
    Hatchback,
    Suv,
    Van,
    Pickup,
}

/// A car at the crossing, with its plate and driver.
#[derive(Clone, Debug)]
pub struct Car {
    body: Body,
    color: Color,
    width: i32,
    center_x: i32,
    bottom: i32,
    plate: String,
    skin: Color,
    shirt: Color,
    driver_right: bool,
    passenger: bool,
    tint: Color,
    lights: Color,
}

const BODY_COLORS: [Color; 12] = [
    [235, 235, 235],
    [25, 25, 28],
    [160, 162, 168],
    [90, 92, 98],
    [180, 20, 25],
    [20, 50, 140],
    [30, 110, 60],
    [230, 190, 30],
    [120, 30, 40],
    [200, 120, 30],
    [100, 150, 200],
    [60, 40, 30],
];

impl Car {
    /// A random car carrying `plate`.
    pub fn random(rng: &mut Rng, plate: &str) -> Self {
        let body = *rng.pick(&[
            Body::Sedan,
            Body::Hatchback,
            Body::Suv,
            Body::Van,
            Body::Pickup,
        ]);
        let mut color = *rng.pick(&BODY_COLORS);
        for c in &mut color {
            *c = (i32::from(*c) + rng.range(-15, 16) as i32).clamp(0, 255) as u8;
        }
        let tone = rng.range(60, 230) as i32;
        Self {
            body,
            color,
            width: rng.range(360, 600) as i32,
            center_x: rng.range(200, 441) as i32,
            bottom: rng.range(440, 480) as i32,
            plate: plate.to_string(),
            skin: [
                tone.min(255) as u8,
                (tone * 3 / 4) as u8,
                (tone * 3 / 5) as u8,
            ],
            shirt: [
                rng.range(0, 200) as u8,
                rng.range(0, 200) as u8,
                rng.range(0, 200) as u8,
            ],
            driver_right: rng.chance(0.8),
            passenger: rng.chance(0.35),
            tint: [
                rng.range(20, 70) as u8,
                rng.range(30, 80) as u8,
                rng.range(40, 95) as u8,
            ],
            lights: [
                rng.range(200, 256) as u8,
                rng.range(200, 256) as u8,
                rng.range(170, 256) as u8,
            ],
        }
    }

    /// Another car of the same model at the same spot: the same body, size,
    /// position, seating and glass, with another paint, `plate` and driver.
    /// The hard look-alike of a border camera: in outline it is this car.
    ///
    /// Half the time the paint has the same luminance as this one (within a
    /// few levels) and only its hue differs, so a grey copy of one cannot be
    /// told from the other by colour.
    pub fn twin(&self, rng: &mut Rng, plate: &str) -> Self {
        let luma = |c: Color| {
            (299 * i32::from(c[0]) + 587 * i32::from(c[1]) + 114 * i32::from(c[2])) / 1000
        };
        let target = luma(self.color);
        let iso = rng.chance(0.5);
        let mut color = self.color;
        for _ in 0..200 {
            let c = [
                rng.range(0, 256) as u8,
                rng.range(0, 256) as u8,
                rng.range(0, 256) as u8,
            ];
            let hue_apart = (0..3)
                .map(|k| (i32::from(c[k]) - i32::from(self.color[k])).abs())
                .max()
                .unwrap_or(0)
                >= 60;
            let luma_ok = if iso {
                (luma(c) - target).abs() <= 6
            } else {
                (luma(c) - target).abs() >= 25
            };
            if hue_apart && luma_ok {
                color = c;
                break;
            }
        }
        let mut skin = self.skin;
        while skin == self.skin {
            let tone = rng.range(60, 230) as i32;
            skin = [
                tone.min(255) as u8,
                (tone * 3 / 4) as u8,
                (tone * 3 / 5) as u8,
            ];
        }
        Self {
            color,
            plate: plate.to_string(),
            skin,
            shirt: [
                rng.range(0, 200) as u8,
                rng.range(0, 200) as u8,
                rng.range(0, 200) as u8,
            ],
            ..self.clone()
        }
    }

    /// Paints the car over a scene.
    pub fn paint(&self, img: &mut RgbImage) {
        let w = self.width;
        let ratio = match self.body {
            Body::Sedan => 0.55,
            Body::Hatchback => 0.62,
            Body::Suv => 0.72,
            Body::Van => 0.86,
            Body::Pickup => 0.66,
        };
        let h = (f64::from(w) * ratio) as i32;
        let left = self.center_x - w / 2;
        let right = self.center_x + w / 2;
        let bottom = self.bottom;
        let top = bottom - h;
        let waist = bottom - h * 52 / 100;
        // Shadow and tyres.
        fill_ellipse(
            img,
            self.center_x,
            bottom,
            w * 11 / 20,
            h / 12,
            [30, 30, 30],
        );
        fill_rect(
            img,
            left + w / 20,
            bottom - h / 7,
            left + w / 5,
            bottom,
            [15, 15, 15],
        );
        fill_rect(
            img,
            right - w / 5,
            bottom - h / 7,
            right - w / 20,
            bottom,
            [15, 15, 15],
        );
        // Lower body, bumper and grille.
        fill_rect(img, left, waist, right, bottom - h / 10, self.color);
        fill_rect(
            img,
            left + 4,
            bottom - h / 5,
            right - 4,
            bottom - h / 10,
            shade(self.color, 0.55),
        );
        fill_rect(
            img,
            self.center_x - w / 5,
            waist + h / 12,
            self.center_x + w / 5,
            waist + h / 4,
            [35, 35, 38],
        );
        // Headlights.
        let light_y = waist + h / 8;
        fill_ellipse(img, left + w / 8, light_y, w / 12, h / 20, self.lights);
        fill_ellipse(img, right - w / 8, light_y, w / 12, h / 20, self.lights);
        // Cabin and windscreen.
        let cabin_top_half = w * 34 / 100;
        fill_quad(
            img,
            top,
            waist,
            (
                self.center_x - cabin_top_half,
                self.center_x + cabin_top_half,
            ),
            (left + w / 25, right - w / 25),
            shade(self.color, 0.92),
        );
        let inset = w / 18;
        let glass_top = top + h / 14;
        let glass_bottom = waist - h / 20;
        fill_quad(
            img,
            glass_top,
            glass_bottom,
            (
                self.center_x - cabin_top_half + inset,
                self.center_x + cabin_top_half - inset,
            ),
            (left + w / 25 + inset, right - w / 25 - inset),
            self.tint,
        );
        // Mirrors.
        fill_rect(
            img,
            left - w / 18,
            waist - h / 8,
            left,
            waist - h / 20,
            shade(self.color, 0.8),
        );
        fill_rect(
            img,
            right,
            waist - h / 8,
            right + w / 18,
            waist - h / 20,
            shade(self.color, 0.8),
        );
        // Driver (and maybe a passenger) behind the glass.
        let glass_h = glass_bottom - glass_top;
        let seat_dx = w / 5;
        let mut seats = vec![if self.driver_right { seat_dx } else { -seat_dx }];
        if self.passenger {
            seats.push(-seats[0]);
        }
        for dx in seats {
            let cx = self.center_x + dx;
            fill_ellipse(img, cx, glass_bottom, w / 9, glass_h * 2 / 5, self.shirt);
            fill_ellipse(
                img,
                cx,
                glass_top + glass_h * 9 / 20,
                w / 22,
                glass_h * 3 / 10,
                self.skin,
            );
        }
        // Plate: white with block glyphs.
        let plate_w = w * 3 / 10;
        let plate_h = plate_w * 2 / 9;
        let px = self.center_x - plate_w / 2;
        let py = bottom - h / 5 - plate_h / 2;
        fill_rect(
            img,
            px - 3,
            py - 3,
            px + plate_w + 3,
            py + plate_h + 3,
            [20, 20, 20],
        );
        fill_rect(img, px, py, px + plate_w, py + plate_h, [245, 245, 240]);
        let cell = (plate_h - 6) / 5;
        let text_w = self.plate.chars().count() as i32 * 4 * cell;
        draw_text(
            img,
            &self.plate,
            px + (plate_w - text_w) / 2,
            py + (plate_h - 5 * cell) / 2,
            cell.max(1),
            [15, 15, 15],
        );
    }
}

/// A camera photo: `camera`'s scene with `car` (or an empty lane), plus
/// sensor noise keyed by `noise_seed`.
pub fn camera_photo(camera: &Camera, car: Option<&Car>, noise_seed: u64) -> RgbImage {
    camera_photo_in(camera, car, noise_seed, noise_seed)
}

/// A camera photo taken in the conditions `conditions_seed` chooses (traffic
/// in the next lane, an officer, the gantry's shadow), with the sensor noise
/// of `noise_seed`: two crossings a moment apart share the conditions.
pub fn camera_photo_in(
    camera: &Camera,
    car: Option<&Car>,
    conditions_seed: u64,
    noise_seed: u64,
) -> RgbImage {
    let mut img = RgbImage::new(PHOTO_WIDTH, PHOTO_HEIGHT);
    camera.paint(&mut img);
    // Per-crossing conditions: traffic in the next lane, an officer, and the
    // shadow of the gantry, which moves with the time of day.
    let mut rng = Rng::new(conditions_seed);
    if rng.chance(0.6) {
        let w = rng.range(120, 220) as i32;
        let top = rng.range(150, 260) as i32;
        let c = random_color(&mut rng);
        let x = if rng.chance(0.5) {
            -w / 3
        } else {
            PHOTO_WIDTH as i32 - 2 * w / 3
        };
        fill_rect(&mut img, x, top, x + w, top + w * 3 / 5, c);
        fill_rect(
            &mut img,
            x + w / 8,
            top + w / 10,
            x + w - w / 8,
            top + w / 4,
            [40, 45, 55],
        );
    }
    if rng.chance(0.5) {
        let x = rng.range(20, 620) as i32;
        let feet = rng.range(300, 420) as i32;
        let c = random_color(&mut rng);
        fill_rect(&mut img, x - 14, feet - 110, x + 14, feet, c);
        fill_ellipse(&mut img, x, feet - 122, 11, 13, [180, 140, 110]);
    }
    if let Some(car) = car {
        car.paint(&mut img);
    }
    if rng.chance(0.7) {
        let x0 = rng.range(-300, 640) as i32;
        let width = rng.range(120, 320) as i32;
        let slant = rng.range(-200, 200) as i32;
        let depth = rng.range(45, 70) as f64 / 100.0;
        let h = PHOTO_HEIGHT as i32;
        for y in camera.horizon..h {
            let t = f64::from(y - camera.horizon) / f64::from(h - camera.horizon);
            let xa = x0 + (f64::from(slant) * t) as i32;
            for x in xa.max(0)..(xa + width).min(PHOTO_WIDTH as i32) {
                let px = img.get_pixel_mut(x as u32, y as u32);
                px.0 = shade(px.0, depth);
            }
        }
    }
    add_noise(&mut img, noise_seed ^ camera.noise_salt, 6);
    img
}

/// A benign picture of random shapes: avatars, product shots, holiday photos.
pub fn filler_picture(rng: &mut Rng, width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    let (w, h) = (width as i32, height as i32);
    let a = random_color(rng);
    let b = random_color(rng);
    let horizontal = rng.chance(0.5);
    for y in 0..h {
        for x in 0..w {
            let t = if horizontal {
                f64::from(x) / f64::from(w)
            } else {
                f64::from(y) / f64::from(h)
            };
            img.put_pixel(x as u32, y as u32, Rgb(lerp(a, b, t)));
        }
    }
    for _ in 0..rng.range(3, 9) {
        let c = random_color(rng);
        let cx = rng.range(0, i64::from(w)) as i32;
        let cy = rng.range(0, i64::from(h)) as i32;
        let rx = rng.range(i64::from(w) / 12 + 1, i64::from(w) / 3 + 2) as i32;
        let ry = rng.range(i64::from(h) / 12 + 1, i64::from(h) / 3 + 2) as i32;
        if rng.chance(0.5) {
            fill_ellipse(&mut img, cx, cy, rx, ry, c);
        } else {
            fill_rect(&mut img, cx - rx, cy - ry, cx + rx, cy + ry, c);
        }
    }
    add_noise(&mut img, rng.next_u64(), 4);
    img
}

/// A different kind of unrelated photo-sized picture: a landscape with hills.
pub fn landscape(rng: &mut Rng) -> RgbImage {
    let mut img = filler_picture(rng, PHOTO_WIDTH, PHOTO_HEIGHT);
    let (w, h) = (PHOTO_WIDTH as i32, PHOTO_HEIGHT as i32);
    let ground = random_color(rng);
    let base = rng.range(200, 380) as i32;
    let amp = rng.range(20, 90) as f64;
    let freq = rng.range(2, 7) as f64;
    for x in 0..w {
        let top = base + (amp * (f64::from(x) / f64::from(w) * freq).sin()) as i32;
        fill_rect(&mut img, x, top, x + 1, h, ground);
    }
    add_noise(&mut img, rng.next_u64(), 5);
    img
}

fn random_color(rng: &mut Rng) -> Color {
    [
        rng.below(256) as u8,
        rng.below(256) as u8,
        rng.below(256) as u8,
    ]
}

/// Overlays a text banner (a bar of block glyphs) on the top or bottom
/// `fraction` of the image, like a reposter's watermark.
pub fn banner(img: &mut RgbImage, top: bool, fraction: f64, text: &str) {
    let (w, h) = (img.width() as i32, img.height() as i32);
    let bar = (f64::from(h) * fraction) as i32;
    let y0 = if top { 0 } else { h - bar };
    fill_rect(img, 0, y0, w, y0 + bar, [12, 12, 16]);
    let cell = ((bar - 8) / 5).max(1);
    draw_text(
        img,
        text,
        10,
        y0 + (bar - 5 * cell) / 2,
        cell,
        [250, 220, 40],
    );
}

/// Draws `text` in a 3×5 block font with `cell`-pixel blocks.
pub fn draw_text(img: &mut RgbImage, text: &str, x: i32, y: i32, cell: i32, color: Color) {
    for (i, ch) in text.chars().enumerate() {
        let bits = glyph(ch);
        let gx = x + i as i32 * 4 * cell;
        for row in 0..5 {
            for col in 0..3 {
                if bits & (1 << (row * 3 + col)) != 0 {
                    let px = gx + col * cell;
                    let py = y + row * cell;
                    fill_rect(img, px, py, px + cell, py + cell, color);
                }
            }
        }
    }
}

/// A 15-bit 3×5 block pattern for a character. Digits and a few letters are
/// drawn legibly; other characters get a stable pseudo-random pattern.
fn glyph(ch: char) -> u16 {
    const DIGITS: [u16; 10] = [
        0b111_101_101_101_111,
        0b111_010_010_011_010,
        0b111_001_111_100_111,
        0b111_100_111_100_111,
        0b100_100_111_101_101,
        0b111_100_111_001_111,
        0b111_101_111_001_111,
        0b100_100_100_100_111,
        0b111_101_111_101_111,
        0b111_100_111_101_111,
    ];
    match ch {
        ' ' => 0,
        '-' => 0b000_000_111_000_000,
        '.' => 0b010_000_000_000_000,
        '0'..='9' => DIGITS[ch as usize - '0' as usize],
        _ => {
            let bits = (mix64(ch as u64) & 0x7fff) as u16;
            bits | 0b010_000_000_000_101
        }
    }
}

fn lerp(a: Color, b: Color, t: f64) -> Color {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| (f64::from(a[i]) * (1.0 - t) + f64::from(b[i]) * t).round() as u8)
}

fn shade(c: Color, f: f64) -> Color {
    c.map(|v| (f64::from(v) * f).round().clamp(0.0, 255.0) as u8)
}

fn fill_rect(img: &mut RgbImage, x0: i32, y0: i32, x1: i32, y1: i32, c: Color) {
    let (w, h) = (img.width() as i32, img.height() as i32);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

fn fill_ellipse(img: &mut RgbImage, cx: i32, cy: i32, rx: i32, ry: i32, c: Color) {
    let (rx, ry) = (rx.max(1), ry.max(1));
    let (w, h) = (img.width() as i32, img.height() as i32);
    for y in (cy - ry).max(0)..(cy + ry + 1).min(h) {
        let dy = f64::from(y - cy) / f64::from(ry);
        let half = (1.0 - dy * dy).max(0.0).sqrt() * f64::from(rx);
        let x0 = (f64::from(cx) - half).round() as i32;
        let x1 = (f64::from(cx) + half).round() as i32;
        for x in x0.max(0)..(x1 + 1).min(w) {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

/// Fills a trapezoid with horizontal top and bottom edges.
fn fill_quad(img: &mut RgbImage, y0: i32, y1: i32, top: (i32, i32), bottom: (i32, i32), c: Color) {
    let h = img.height() as i32;
    let span = (y1 - y0).max(1);
    for y in y0.max(0)..y1.min(h) {
        let t = f64::from(y - y0) / f64::from(span);
        let xa = f64::from(top.0) + (f64::from(bottom.0) - f64::from(top.0)) * t;
        let xb = f64::from(top.1) + (f64::from(bottom.1) - f64::from(top.1)) * t;
        fill_rect(img, xa.round() as i32, y, xb.round() as i32, y + 1, c);
    }
}

fn add_noise(img: &mut RgbImage, seed: u64, amplitude: i32) {
    let span = (2 * amplitude + 1) as u64;
    for (x, y, px) in img.enumerate_pixels_mut() {
        let r = mix64(seed ^ (u64::from(y) << 32 | u64::from(x)));
        for (i, v) in px.0.iter_mut().enumerate() {
            let n = ((r >> (i * 16)) & 0xffff) % span;
            *v = (i32::from(*v) + n as i32 - amplitude).clamp(0, 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_deterministic() {
        let cam = Camera::new(7, 0);
        let car = Car::random(&mut Rng::new(3), "KX7-4821");
        let a = camera_photo(&cam, Some(&car), 1);
        let b = camera_photo(&cam, Some(&car), 1);
        assert_eq!(a.as_raw(), b.as_raw());
        let empty = camera_photo(&cam, None, 1);
        assert_ne!(a.as_raw(), empty.as_raw());
    }
}
