//! The sightings-per-day chart of the coverage page, laid out here and drawn by the
//! template as inline SVG: numbers and dates only, nothing crawled.

use serde::Serialize;

/// One bar of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub day: String,
    pub count: i64,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The chart: `WIDTH`×`HEIGHT` pixels, bars for at most the last `MAX_DAYS` days sighted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub max: i64,
    pub bars: Vec<Bar>,
}

pub const WIDTH: u32 = 720;
pub const HEIGHT: u32 = 160;
pub const MAX_DAYS: usize = 90;

/// Lays out `per_day` (oldest first).
pub fn chart(per_day: &[(String, i64)]) -> Chart {
    let days = &per_day[per_day.len().saturating_sub(MAX_DAYS)..];
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let slot = WIDTH / (days.len().max(1) as u32);
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, count))| {
            let h = ((*count).max(0) as u64 * u64::from(HEIGHT - 20) / max as u64) as u32;
            Bar {
                day: day.clone(),
                count: *count,
                x: i as u32 * slot,
                y: HEIGHT - h,
                width: slot.saturating_sub(2).max(1),
                height: h,
            }
        })
        .collect();
    Chart {
        width: WIDTH,
        height: HEIGHT,
        max,
        bars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day() {
        let c = chart(&[("2026-11-01".into(), 2), ("2026-11-02".into(), 4)]);
        assert_eq!(c.bars.len(), 2);
        assert_eq!(c.bars[1].height, HEIGHT - 20);
        assert_eq!(c.bars[0].height, (HEIGHT - 20) / 2);
        assert_eq!(c.bars[0].y + c.bars[0].height, HEIGHT);
        assert!(c.bars[1].x > c.bars[0].x);
        let many: Vec<_> = (0..200).map(|i| (format!("d{i}"), 1)).collect();
        assert_eq!(chart(&many).bars.len(), MAX_DAYS);
        assert!(chart(&[]).bars.is_empty());
    }
}
